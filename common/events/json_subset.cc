#include "common/events/json_subset.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"

namespace leadflow::events {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using nlohmann::json;

// Deeper input is left to protobuf (its own recursion limit applies there).
constexpr int kMaxDepth = 32;

// The field `key` names, by proto name or JSON name; null when none (or when the two lookups
// disagree, which protobuf would resolve by rules not repeated here).
const FieldDescriptor* FieldNamed(const Descriptor& d, const std::string& key) {
  const FieldDescriptor* by_name = d.FindFieldByName(key);
  const FieldDescriptor* by_json = nullptr;
  for (int i = 0; i < d.field_count(); ++i) {
    if (d.field(i)->json_name() == key) {
      by_json = d.field(i);
      break;
    }
  }
  if (by_name != nullptr && by_json != nullptr && by_name != by_json) return nullptr;
  return by_name != nullptr ? by_name : by_json;
}

bool IsWellKnown(const Descriptor& d) {
  return absl::StartsWith(d.file()->name(), "google/protobuf/");
}

bool Fill(const json& object, Message* message, int depth);

// Sets one singular value (or adds one element of a repeated field) of type `f` from `v`.
bool SetValue(const json& v, const FieldDescriptor* f, Message* m, const Reflection* r, int depth) {
  const bool repeated = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      if (f->type() != FieldDescriptor::TYPE_STRING || !v.is_string()) return false;
      const std::string& s = v.get_ref<const std::string&>();
      repeated ? r->AddString(m, f, s) : r->SetString(m, f, s);
      return true;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      if (!v.is_boolean()) return false;
      repeated ? r->AddBool(m, f, v.get<bool>()) : r->SetBool(m, f, v.get<bool>());
      return true;
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64: {
      if (!v.is_number_integer()) return false;  // also false for floats
      int64_t n = 0;
      if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
        n = static_cast<int64_t>(u);
      } else {
        n = v.get<int64_t>();
      }
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
        if (n < std::numeric_limits<int32_t>::min() || n > std::numeric_limits<int32_t>::max()) {
          return false;
        }
        const auto n32 = static_cast<int32_t>(n);
        repeated ? r->AddInt32(m, f, n32) : r->SetInt32(m, f, n32);
      } else {
        repeated ? r->AddInt64(m, f, n) : r->SetInt64(m, f, n);
      }
      return true;
    }
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64: {
      if (!v.is_number_unsigned()) return false;
      const uint64_t u = v.get<uint64_t>();
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32) {
        if (u > std::numeric_limits<uint32_t>::max()) return false;
        const auto u32 = static_cast<uint32_t>(u);
        repeated ? r->AddUInt32(m, f, u32) : r->SetUInt32(m, f, u32);
      } else {
        repeated ? r->AddUInt64(m, f, u) : r->SetUInt64(m, f, u);
      }
      return true;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      if (!v.is_string()) return false;
      const google::protobuf::EnumValueDescriptor* e =
          f->enum_type()->FindValueByName(v.get_ref<const std::string&>());
      if (e == nullptr) return false;
      repeated ? r->AddEnum(m, f, e) : r->SetEnum(m, f, e);
      return true;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Descriptor& type = *f->message_type();
      Message* child = repeated ? r->AddMessage(m, f) : r->MutableMessage(m, f);
      if (type.full_name() == "google.protobuf.Timestamp") {
        if (!v.is_string()) return false;
        return google::protobuf::util::TimeUtil::FromString(
            v.get_ref<const std::string&>(), static_cast<google::protobuf::Timestamp*>(child));
      }
      if (IsWellKnown(type)) return false;
      return Fill(v, child, depth + 1);
    }
    default:  // float, double
      return false;
  }
}

// A map<string, string> field from a JSON object.
bool SetMap(const json& v, const FieldDescriptor* f, Message* m, const Reflection* r) {
  const Descriptor& entry = *f->message_type();
  const FieldDescriptor* key = entry.map_key();
  const FieldDescriptor* value = entry.map_value();
  if (!v.is_object() || key->type() != FieldDescriptor::TYPE_STRING ||
      value->type() != FieldDescriptor::TYPE_STRING) {
    return false;
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it->is_string()) return false;
    Message* e = r->AddMessage(m, f);
    e->GetReflection()->SetString(e, key, it.key());
    e->GetReflection()->SetString(e, value, it->get_ref<const std::string&>());
  }
  return true;
}

bool Fill(const json& object, Message* message, int depth) {
  if (!object.is_object() || depth > kMaxDepth) return false;
  const Descriptor& d = *message->GetDescriptor();
  const Reflection* r = message->GetReflection();
  std::vector<const FieldDescriptor*> seen;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const FieldDescriptor* f = FieldNamed(d, it.key());
    if (f == nullptr || f->real_containing_oneof() != nullptr) return false;
    for (const FieldDescriptor* s : seen) {
      if (s == f) return false;  // the same field under both its names
    }
    seen.push_back(f);
    const json& v = *it;
    if (f->is_map()) {
      if (!SetMap(v, f, message, r)) return false;
    } else if (f->is_repeated()) {
      if (!v.is_array()) return false;
      for (const json& element : v) {
        if (!SetValue(element, f, message, r, depth)) return false;
      }
    } else if (!SetValue(v, f, message, r, depth)) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool DecodeJsonSubset(std::string_view json_text, google::protobuf::Message* out) {
  // nlohmann's lexer reads a NUL byte as the end of the input (and would accept "{}\0junk").
  if (json_text.find('\0') != std::string_view::npos) return false;
  // Keys repeated within one object are declined: nlohmann keeps the last, and what protobuf
  // does with them is left to protobuf. Nulls anywhere are declined too.
  std::vector<std::vector<std::string>> keys;
  bool declined = false;
  const json::parser_callback_t watch = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& k = parsed.get_ref<const std::string&>();
        for (const std::string& seen : keys.back()) {
          if (seen == k) declined = true;
        }
        keys.back().push_back(k);
        break;
      }
      case json::parse_event_t::value:
        if (parsed.is_null()) declined = true;
        break;
      default:
        break;
    }
    return true;
  };
  const json parsed = json::parse(json_text.begin(), json_text.end(), watch,
                                  /*allow_exceptions=*/false);
  if (declined || parsed.is_discarded() || !parsed.is_object()) return false;
  out->Clear();
  return Fill(parsed, out, 0);
}

}  // namespace leadflow::events
