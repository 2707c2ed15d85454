#include "services/tracking/segment_json.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
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

// `depth`: how deep in nested messages the one being filled sits, the call's properties, traits
// or context Struct being 1 (a Struct holds map entries, which hold Values, which may hold a
// Struct or a ListValue of Values): protobuf's parser refuses more than kMaxMessageDepth.
absl::Status TooDeep() { return Invalid("nested too deeply"); }

absl::Status ToValue(const Json& value, int depth, google::protobuf::Value* out);

absl::Status ToStruct(const Json& object, int depth, google::protobuf::Struct* out) {
  if (depth > kMaxMessageDepth) return TooDeep();
  auto& fields = *out->mutable_fields();
  for (const auto& [key, value] : object.items()) {
    if (depth + 1 > kMaxMessageDepth) return TooDeep();  // the map entry
    if (absl::Status s = ToValue(value, depth + 2, &fields[key]); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ToValue(const Json& value, int depth, google::protobuf::Value* out) {
  if (depth > kMaxMessageDepth) return TooDeep();
  switch (value.type()) {
    case Json::value_t::null:
      out->set_null_value(google::protobuf::NULL_VALUE);
      return absl::OkStatus();
    case Json::value_t::boolean:
      out->set_bool_value(value.get<bool>());
      return absl::OkStatus();
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: {
      const double number = value.get<double>();
      if (!std::isfinite(number)) return Invalid("a number out of range");
      out->set_number_value(number);
      return absl::OkStatus();
    }
    case Json::value_t::string:
      out->set_string_value(value.get_ref<const std::string&>());
      return absl::OkStatus();
    case Json::value_t::object:
      return ToStruct(value, depth + 1, out->mutable_struct_value());
    case Json::value_t::array: {
      if (depth + 1 > kMaxMessageDepth) return TooDeep();
      google::protobuf::ListValue* list = out->mutable_list_value();
      for (const Json& element : value) {
        if (absl::Status s = ToValue(element, depth + 2, list->add_values()); !s.ok()) return s;
      }
      return absl::OkStatus();
    }
    case Json::value_t::binary:
    case Json::value_t::discarded:
      break;
  }
  return Invalid("an unexpected value");
}

// The proto field a JSON key names: its lowerCamel JSON name or its proto name.
enum class Field {
  kUnknown,
  kType,
  kMessageId,
  kUserId,
  kAnonymousId,
  kEvent,
  kName,
  kProperties,
  kTraits,
  kContext,
  kTimestamp,
  kSentAt,
  kReceivedAt,
  kOriginalTimestamp,
};

Field FieldNamed(absl::string_view key) {
  if (key == "type") return Field::kType;
  if (key == "messageId" || key == "message_id") return Field::kMessageId;
  if (key == "userId" || key == "user_id") return Field::kUserId;
  if (key == "anonymousId" || key == "anonymous_id") return Field::kAnonymousId;
  if (key == "event") return Field::kEvent;
  if (key == "name") return Field::kName;
  if (key == "properties") return Field::kProperties;
  if (key == "traits") return Field::kTraits;
  if (key == "context") return Field::kContext;
  if (key == "timestamp") return Field::kTimestamp;
  if (key == "sentAt" || key == "sent_at") return Field::kSentAt;
  if (key == "receivedAt" || key == "received_at") return Field::kReceivedAt;
  if (key == "originalTimestamp" || key == "original_timestamp") return Field::kOriginalTimestamp;
  return Field::kUnknown;
}

absl::Status SetString(const std::string& key, const Json& value, std::string* out) {
  if (!value.is_string()) return Invalid(absl::StrCat("field ", key, ": expected a string"));
  *out = value.get_ref<const std::string&>();
  return absl::OkStatus();
}

absl::Status SetStruct(const std::string& key, const Json& value, google::protobuf::Struct* out) {
  if (!value.is_object()) return Invalid(absl::StrCat("field ", key, ": expected an object"));
  out->Clear();
  return ToStruct(value, 1, out);
}

absl::Status SetTimestamp(const std::string& key, const Json& value,
                          google::protobuf::Timestamp* out) {
  // protobuf's own RFC 3339 parser, the one its JSON mapping uses (and its range: years 1-9999).
  if (!value.is_string() ||
      !google::protobuf::util::TimeUtil::FromString(value.get_ref<const std::string&>(), out)) {
    return Invalid(absl::StrCat("field ", key, ": expected an RFC 3339 timestamp"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeSegmentJson(std::string_view json, events::v1::InboundActivity* out) {
  out->Clear();
  Json call;
  try {
    call = Json::parse(json.begin(), json.end());
  } catch (const Json::parse_error& e) {
    return Invalid(e.what());
  }
  if (!call.is_object()) return Invalid("expected an object");
  for (const auto& [key, value] : call.items()) {
    const Field field = FieldNamed(key);
    if (field == Field::kUnknown || value.is_null()) continue;  // the rest of a Segment call
    absl::Status s;
    switch (field) {
      case Field::kType:
        s = SetString(key, value, out->mutable_type());
        break;
      case Field::kMessageId:
        s = SetString(key, value, out->mutable_message_id());
        break;
      case Field::kUserId:
        s = SetString(key, value, out->mutable_user_id());
        break;
      case Field::kAnonymousId:
        s = SetString(key, value, out->mutable_anonymous_id());
        break;
      case Field::kEvent:
        s = SetString(key, value, out->mutable_event());
        break;
      case Field::kName:
        s = SetString(key, value, out->mutable_name());
        break;
      case Field::kProperties:
        s = SetStruct(key, value, out->mutable_properties());
        break;
      case Field::kTraits:
        s = SetStruct(key, value, out->mutable_traits());
        break;
      case Field::kContext:
        s = SetStruct(key, value, out->mutable_context());
        break;
      case Field::kTimestamp:
        s = SetTimestamp(key, value, out->mutable_timestamp());
        break;
      case Field::kSentAt:
        s = SetTimestamp(key, value, out->mutable_sent_at());
        break;
      case Field::kReceivedAt:
        s = SetTimestamp(key, value, out->mutable_received_at());
        break;
      case Field::kOriginalTimestamp:
        s = SetTimestamp(key, value, out->mutable_original_timestamp());
        break;
      case Field::kUnknown:
        break;
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace leadflow::tracking
