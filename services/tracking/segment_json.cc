#include "services/tracking/segment_json.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace leadflow::tracking {
namespace {

using Json = nlohmann::json;

absl::Status Invalid(absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("invalid JSON InboundActivity: ", reason));
}

// A field of the call as the schema has it, found by its lowerCamel JSON name or its proto name
// (InboundActivity's fields are strings, Structs and Timestamps; the unit test checks that every
// field is one of these, so the decoder covers the schema as it grows).
struct CallField {
  enum Kind { kUnknown, kString, kStruct, kTimestamp, kUnsupported };
  const google::protobuf::FieldDescriptor* field = nullptr;
  Kind kind = kUnknown;
};

CallField FieldNamed(const std::string& key) {
  // Both names of every field, as the JSON mapping accepts them (built once; read-only after).
  static const auto* const by_name = [] {
    auto* names = new absl::flat_hash_map<std::string, const google::protobuf::FieldDescriptor*>();
    const google::protobuf::Descriptor* call = events::v1::InboundActivity::descriptor();
    for (int i = 0; i < call->field_count(); ++i) {
      names->emplace(call->field(i)->json_name(), call->field(i));
      names->emplace(call->field(i)->name(), call->field(i));
    }
    return names;
  }();
  auto it = by_name->find(key);
  if (it == by_name->end()) return {};
  const google::protobuf::FieldDescriptor* f = it->second;
  if (f->is_repeated()) return {f, CallField::kUnsupported};
  if (f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) return {f, CallField::kString};
  if (f->message_type() == google::protobuf::Struct::descriptor()) return {f, CallField::kStruct};
  if (f->message_type() == google::protobuf::Timestamp::descriptor()) {
    return {f, CallField::kTimestamp};
  }
  return {f, CallField::kUnsupported};
}

// nlohmann-json's SAX events turned into the message, in document order, as protobuf's JSON
// mapping fills it: a field given twice keeps the last value (a Struct given twice merges), a
// key repeated within one Struct is refused, `null` leaves a field unset.
class SegmentSax final : public nlohmann::json_sax<Json> {
 public:
  explicit SegmentSax(events::v1::InboundActivity* out) : out_(out) {}

  absl::Status status() const { return status_; }

  bool null() override {
    if (!Scalar()) return status_.ok();
    if (Frame* f = Top(); f->kind == Frame::kCall) return true;  // an unset field
    if (google::protobuf::Value* v = NextValue()) v->set_null_value(google::protobuf::NULL_VALUE);
    return status_.ok();
  }
  bool boolean(bool value) override {
    if (!Scalar()) return status_.ok();
    if (Top()->kind == Frame::kCall) return WrongType();
    if (google::protobuf::Value* v = NextValue()) v->set_bool_value(value);
    return status_.ok();
  }
  bool number_integer(int64_t value) override { return Number(static_cast<double>(value)); }
  bool number_unsigned(uint64_t value) override { return Number(static_cast<double>(value)); }
  bool number_float(double value, const std::string&) override { return Number(value); }
  bool string(std::string& value) override {
    if (!Scalar()) return status_.ok();
    if (Top()->kind == Frame::kCall) return CallString(value);
    if (google::protobuf::Value* v = NextValue()) v->set_string_value(std::move(value));
    return status_.ok();
  }
  bool binary(Json::binary_t&) override { return Fail(Invalid("an unexpected value")); }

  bool start_object(std::size_t) override {
    if (skipping_ > 0 || StartSkipping()) return Nest();
    if (stack_.empty()) {
      stack_.push_back({Frame::kCall, 0, nullptr, nullptr, {}, {}});
      return true;
    }
    Frame* top = Top();
    if (top->kind == Frame::kCall) {
      google::protobuf::Struct* s = CallStruct();
      if (s == nullptr) return WrongType();
      stack_.push_back({Frame::kStruct, 1, s, nullptr, {}, {}});
      return true;
    }
    const int depth = ValueDepth();
    google::protobuf::Value* v = NextValue();
    if (v == nullptr) return false;
    if (depth + 1 > kMaxMessageDepth) return Fail(Invalid("nested too deeply"));
    stack_.push_back({Frame::kStruct, depth + 1, v->mutable_struct_value(), nullptr, {}, {}});
    return true;
  }
  bool key(std::string& key) override {
    if (skipping_ > 0) return true;
    Frame* top = Top();
    if (top->kind == Frame::kCall) {
      if (key.empty()) return Fail(Invalid("a field without a name"));  // as the mapping says
      field_ = FieldNamed(key);
      field_key_ = std::move(key);
    } else {
      top->key = std::move(key);
    }
    return true;
  }
  bool end_object() override {
    if (skipping_ > 0) return Unnest();
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (skipping_ > 0 || StartSkipping()) return Nest();
    if (stack_.empty()) return Fail(Invalid("expected an object"));
    if (Top()->kind == Frame::kCall) return WrongType();
    const int depth = ValueDepth();
    google::protobuf::Value* v = NextValue();
    if (v == nullptr) return false;
    if (depth + 1 > kMaxMessageDepth) return Fail(Invalid("nested too deeply"));
    stack_.push_back({Frame::kList, depth + 1, nullptr, v->mutable_list_value(), {}, {}});
    return true;
  }
  bool end_array() override {
    if (skipping_ > 0) return Unnest();
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return Fail(Invalid(e.what()));
  }

 private:
  // An object or array being filled: the call itself, a Struct, or a ListValue. `depth`: how
  // deep in nested messages it sits (a call's properties, traits or context Struct is 1).
  struct Frame {
    enum Kind { kCall, kStruct, kList } kind;
    int depth;
    google::protobuf::Struct* fields;
    google::protobuf::ListValue* list;
    std::string key;  // kStruct: the key of the value that comes next
    // A call's Struct (depth 1): the keys this JSON object gave, as the Struct may hold keys of
    // an earlier occurrence of the same field.
    absl::flat_hash_set<std::string> keys;
  };

  Frame* Top() { return &stack_.back(); }

  bool Fail(absl::Status status) {
    if (status_.ok()) status_ = std::move(status);
    return false;
  }
  bool WrongType() {
    const char* expected = "a string";
    if (field_.kind == CallField::kStruct) expected = "an object";
    if (field_.kind == CallField::kTimestamp) expected = "an RFC 3339 timestamp";
    if (field_.kind == CallField::kUnsupported) expected = "a type this decoder knows";
    return Fail(Invalid(absl::StrCat("field ", field_key_, ": expected ", expected)));
  }

  // The value of a field this does not know is skipped, however deep it nests (as protobuf's
  // parser skips it).
  bool StartSkipping() {
    if (stack_.empty() || Top()->kind != Frame::kCall || field_.kind != CallField::kUnknown)
      return false;
    skipping_ = 0;
    return true;
  }
  bool Nest() {
    ++skipping_;
    return true;
  }
  bool Unnest() {
    --skipping_;
    return true;
  }

  // For a scalar: false when it is skipped (inside an unknown field, or an unknown field's own
  // value) or is the top-level value (then status_ says why).
  bool Scalar() {
    if (skipping_ > 0) return false;
    if (stack_.empty()) {
      Fail(Invalid("expected an object"));
      return false;
    }
    return !(Top()->kind == Frame::kCall && field_.kind == CallField::kUnknown);
  }

  // How deep the next value of the Struct or ListValue on top sits.
  int ValueDepth() { return Top()->depth + (Top()->kind == Frame::kStruct ? 2 : 1); }

  // The next Value of the Struct or ListValue on top; null (status_ set) when too deep or a key
  // is repeated.
  google::protobuf::Value* NextValue() {
    Frame* top = Top();
    const int depth = ValueDepth();
    if (depth > kMaxMessageDepth) {
      Fail(Invalid("nested too deeply"));
      return nullptr;
    }
    if (top->kind == Frame::kList) return top->list->add_values();
    auto [it, inserted] = top->fields->mutable_fields()->insert({top->key, {}});
    if (!inserted) {
      // A call's Struct given twice: the second's keys replace the first's. Within one JSON
      // object a key may not repeat.
      if (top->depth != 1 || !top->keys.insert(top->key).second) {
        Fail(Invalid(absl::StrCat("repeated key '", top->key, "'")));
        return nullptr;
      }
      it->second.Clear();
      return &it->second;
    }
    if (top->depth == 1) top->keys.insert(top->key);
    return &it->second;
  }

  bool Number(double value) {
    if (!Scalar()) return status_.ok();
    if (Top()->kind == Frame::kCall) return WrongType();
    if (!std::isfinite(value)) return Fail(Invalid("a number out of range"));
    if (google::protobuf::Value* v = NextValue()) v->set_number_value(value);
    return status_.ok();
  }

  google::protobuf::Message* CallMessage() {
    return out_->GetReflection()->MutableMessage(out_, field_.field);
  }

  google::protobuf::Struct* CallStruct() {
    if (field_.kind != CallField::kStruct) return nullptr;
    return static_cast<google::protobuf::Struct*>(CallMessage());
  }

  bool CallString(std::string& value) {
    if (field_.kind == CallField::kString) {
      out_->GetReflection()->SetString(out_, field_.field, std::move(value));
      return true;
    }
    // protobuf's own RFC 3339 parser, the one its JSON mapping uses (and its range: years 1-9999).
    if (field_.kind != CallField::kTimestamp ||
        !google::protobuf::util::TimeUtil::FromString(
            value, static_cast<google::protobuf::Timestamp*>(CallMessage()))) {
      return WrongType();
    }
    return true;
  }

  events::v1::InboundActivity* const out_;
  absl::Status status_;
  std::vector<Frame> stack_;
  CallField field_;        // of the call's key read last
  std::string field_key_;  // that key as written
  int skipping_ = 0;       // JSON levels open inside an unknown field's value
};

}  // namespace

absl::Status DecodeSegmentJson(std::string_view json, events::v1::InboundActivity* out) {
  out->Clear();
  // nlohmann-json's lexer reads a NUL byte as the end of the input; JSON has none outside a
  // string, and inside one it must be escaped.
  if (json.find('\0') != std::string_view::npos) return Invalid("a NUL byte");
  SegmentSax sax(out);
  const bool parsed = Json::sax_parse(json.begin(), json.end(), &sax);
  if (!sax.status().ok()) return sax.status();
  if (!parsed) return Invalid("does not parse");
  return absl::OkStatus();
}

}  // namespace leadflow::tracking
