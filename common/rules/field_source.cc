#include "common/rules/field_source.h"

#include <algorithm>
#include <charconv>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/rules/time_util.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"

namespace leadflow::rules {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr absl::string_view kCustomPrefix = "custom.";
constexpr absl::string_view kActivityPrefix = "activity.";
constexpr absl::string_view kPagePrefix = "page.";

bool IsTimestamp(const Descriptor* descriptor) {
  return descriptor == google::protobuf::Timestamp::descriptor();
}

std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", ToTime(timestamp), absl::UTCTimeZone());
}

// Splits "a.b.c" into "a" and "b.c".
std::pair<absl::string_view, absl::string_view> SplitHead(absl::string_view path) {
  const size_t dot = path.find('.');
  if (dot == absl::string_view::npos) return {path, absl::string_view()};
  return {path.substr(0, dot), path.substr(dot + 1)};
}

// "activity.<type>.<window>" / "page.<category>.<window>": the key and the window, or nullopt.
// The window is the part after the last dot, so keys may themselves contain dots.
struct CountField {
  bool page = false;
  absl::string_view key;
  absl::string_view window;
};

bool IsWindowName(absl::string_view window) {
  return window == "total" || window == "1d" || window == "7d" || window == "30d" ||
         window == "90d";
}

std::optional<CountField> ParseCountField(absl::string_view field) {
  CountField out;
  if (absl::ConsumePrefix(&field, kActivityPrefix)) {
    out.page = false;
  } else if (absl::ConsumePrefix(&field, kPagePrefix)) {
    out.page = true;
  } else {
    return std::nullopt;
  }
  const size_t dot = field.rfind('.');
  if (dot == absl::string_view::npos || dot == 0) return std::nullopt;
  out.key = field.substr(0, dot);
  out.window = field.substr(dot + 1);
  if (!IsWindowName(out.window)) return std::nullopt;
  return out;
}

int64_t WindowCount(const events::v1::ActivityCounts& counts, absl::string_view window) {
  if (window == "1d") return counts.last_1d();
  if (window == "7d") return counts.last_7d();
  if (window == "30d") return counts.last_30d();
  if (window == "90d") return counts.last_90d();
  return counts.total();
}

// Appends a singular scalar. proto3 defaults read as absent (LeadProfile uses them for
// "unknown"), except bools, whose false is a real answer ("do_not_contact = false").
void AppendSingular(const Message& message, const FieldDescriptor& field,
                    std::vector<std::string>& out) {
  const Reflection& reflection = *message.GetReflection();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string value = reflection.GetString(message, &field);
      if (!value.empty()) out.push_back(std::move(value));
      return;
    }
    case FieldDescriptor::CPPTYPE_INT32:
      if (int32_t v = reflection.GetInt32(message, &field); v != 0) out.push_back(absl::StrCat(v));
      return;
    case FieldDescriptor::CPPTYPE_INT64:
      if (int64_t v = reflection.GetInt64(message, &field); v != 0) out.push_back(absl::StrCat(v));
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      if (uint32_t v = reflection.GetUInt32(message, &field); v != 0) {
        out.push_back(absl::StrCat(v));
      }
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      if (uint64_t v = reflection.GetUInt64(message, &field); v != 0) {
        out.push_back(absl::StrCat(v));
      }
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      if (double v = reflection.GetDouble(message, &field); v != 0) out.push_back(FormatNumber(v));
      return;
    case FieldDescriptor::CPPTYPE_FLOAT:
      if (float v = reflection.GetFloat(message, &field); v != 0) out.push_back(FormatNumber(v));
      return;
    case FieldDescriptor::CPPTYPE_BOOL:
      out.push_back(reflection.GetBool(message, &field) ? "true" : "false");
      return;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* value = reflection.GetEnum(message, &field);
      if (value->number() != 0) out.push_back(EnumValueName(*value));
      return;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return;  // handled by the caller
  }
}

// Appends every element of a repeated scalar; elements are kept as they are (an empty string
// element is still skipped, so "missing" means "no usable value").
void AppendRepeated(const Message& message, const FieldDescriptor& field,
                    std::vector<std::string>& out) {
  const Reflection& reflection = *message.GetReflection();
  const int size = reflection.FieldSize(message, &field);
  for (int i = 0; i < size; ++i) {
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string value = reflection.GetRepeatedString(message, &field, i);
        if (!value.empty()) out.push_back(std::move(value));
        break;
      }
      case FieldDescriptor::CPPTYPE_INT32:
        out.push_back(absl::StrCat(reflection.GetRepeatedInt32(message, &field, i)));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        out.push_back(absl::StrCat(reflection.GetRepeatedInt64(message, &field, i)));
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        out.push_back(absl::StrCat(reflection.GetRepeatedUInt32(message, &field, i)));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        out.push_back(absl::StrCat(reflection.GetRepeatedUInt64(message, &field, i)));
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        out.push_back(FormatNumber(reflection.GetRepeatedDouble(message, &field, i)));
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        out.push_back(FormatNumber(reflection.GetRepeatedFloat(message, &field, i)));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        out.push_back(reflection.GetRepeatedBool(message, &field, i) ? "true" : "false");
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const google::protobuf::EnumValueDescriptor* value =
            reflection.GetRepeatedEnum(message, &field, i);
        if (value->number() != 0) out.push_back(EnumValueName(*value));
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;  // handled by the caller
    }
  }
}

// Reads `path` ("country", "first_touch.source", "consents.channel") from `message` by
// reflection, so every profile field is available to rules without a hand-written switch that
// would go stale when the proto grows.
void AppendByPath(const Message& message, absl::string_view path, std::vector<std::string>& out) {
  // Plain variables, not a structured binding: the lambda below captures `rest`, which
  // clang < 16 does not allow for bindings (the fuzzers are built with clang).
  const std::pair<absl::string_view, absl::string_view> split = SplitHead(path);
  const absl::string_view head = split.first;
  const absl::string_view rest = split.second;
  const FieldDescriptor* field = message.GetDescriptor()->FindFieldByName(std::string(head));
  if (field == nullptr || field->is_map()) return;  // maps: only "custom.<key>", handled above
  const Reflection& reflection = *message.GetReflection();

  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    if (!rest.empty()) return;
    if (field->is_repeated()) {
      AppendRepeated(message, *field, out);
    } else {
      AppendSingular(message, *field, out);
    }
    return;
  }

  auto visit = [&](const Message& sub) {
    if (IsTimestamp(sub.GetDescriptor())) {
      if (rest.empty()) {
        const auto& timestamp = static_cast<const google::protobuf::Timestamp&>(sub);
        if (timestamp.seconds() != 0 || timestamp.nanos() != 0) {
          out.push_back(FormatTimestamp(timestamp));
        }
      }
      return;
    }
    if (!rest.empty()) AppendByPath(sub, rest, out);
  };
  if (field->is_repeated()) {
    const int size = reflection.FieldSize(message, field);
    for (int i = 0; i < size; ++i) visit(reflection.GetRepeatedMessage(message, field, i));
  } else if (reflection.HasField(message, field)) {
    visit(reflection.GetMessage(message, field));
  }
}

// The catalogue side of AppendByPath: what a dotted path into `descriptor` names.
std::optional<FieldInfo> LookupByPath(const Descriptor* descriptor, absl::string_view path,
                                      bool repeated_so_far) {
  const auto [head, rest] = SplitHead(path);
  const FieldDescriptor* field = descriptor->FindFieldByName(std::string(head));
  if (field == nullptr || field->is_map()) return std::nullopt;
  const bool repeated = repeated_so_far || field->is_repeated();
  FieldInfo info;
  info.group = kProfileFields;
  info.repeated = repeated;
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (IsTimestamp(field->message_type())) {
      if (!rest.empty()) return std::nullopt;
      info.kind = ValueKind::kTimestamp;
      return info;
    }
    if (rest.empty()) return std::nullopt;  // a message is not a value; name one of its fields
    return LookupByPath(field->message_type(), rest, repeated);
  }
  if (!rest.empty()) return std::nullopt;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      info.kind = ValueKind::kString;
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      info.kind = ValueKind::kBool;
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      info.kind = ValueKind::kEnum;
      info.enum_type = field->enum_type();
      break;
    default:
      info.kind = ValueKind::kNumber;
      break;
  }
  return info;
}

FieldInfo Info(ValueKind kind, FieldGroup group, bool repeated = false,
               const EnumDescriptor* enum_type = nullptr) {
  FieldInfo info;
  info.kind = kind;
  info.group = group;
  info.repeated = repeated;
  info.enum_type = enum_type;
  return info;
}

// Score fields, by name. Kept in one table so Values() and the catalogue cannot disagree.
std::optional<FieldInfo> LookupScoreField(absl::string_view field) {
  if (field == "score" || field == "fit" || field == "engagement" ||
      field == "conversion_probability") {
    return Info(ValueKind::kNumber, kScoreFields);
  }
  if (field == "category") {
    return Info(ValueKind::kEnum, kScoreFields, false, events::v1::Category_descriptor());
  }
  if (field == "interest") {
    return Info(ValueKind::kEnum, kScoreFields, false, events::v1::InterestState_descriptor());
  }
  if (field == "stage") {
    return Info(ValueKind::kEnum, kScoreFields, false, events::v1::LifecycleStage_descriptor());
  }
  if (field == "segments") return Info(ValueKind::kString, kScoreFields, true);
  return std::nullopt;
}

void AppendScoreValues(const events::v1::ScoreSnapshot& score, absl::string_view field,
                       std::vector<std::string>& out) {
  if (field == "score") {
    out.push_back(FormatNumber(score.total()));
  } else if (field == "fit") {
    out.push_back(FormatNumber(score.fit()));
  } else if (field == "engagement") {
    out.push_back(FormatNumber(score.engagement()));
  } else if (field == "conversion_probability") {
    out.push_back(FormatNumber(score.conversion_probability()));
  } else if (field == "category") {
    if (score.category() != events::v1::CATEGORY_UNSPECIFIED) {
      out.push_back(EnumValueName(score.category()));
    }
  } else if (field == "interest") {
    if (score.interest() != events::v1::INTEREST_UNSPECIFIED) {
      out.push_back(EnumValueName(score.interest()));
    }
  } else if (field == "stage") {
    if (score.stage() != events::v1::STAGE_UNSPECIFIED) {
      out.push_back(EnumValueName(score.stage()));
    }
  } else if (field == "segments") {
    for (const std::string& segment : score.segments()) {
      if (!segment.empty()) out.push_back(segment);
    }
  }
}

}  // namespace

std::string EnumValueName(const google::protobuf::EnumValueDescriptor& value) {
  absl::string_view name = value.name();
  // The prefix is whatever the type's zero value carries before "UNSPECIFIED"; deriving it
  // keeps enums whose prefix is not their type name (InterestState -> INTEREST_) right.
  const google::protobuf::EnumValueDescriptor* zero = value.type()->FindValueByNumber(0);
  if (zero != nullptr) {
    absl::string_view zero_name = zero->name();
    if (absl::ConsumeSuffix(&zero_name, "UNSPECIFIED")) absl::ConsumePrefix(&name, zero_name);
  }
  return absl::AsciiStrToLower(name);
}

const events::v1::Consent* LatestConsent(const events::v1::LeadProfile& profile,
                                         events::v1::Channel channel) {
  const events::v1::Consent* latest = nullptr;
  for (const events::v1::Consent& consent : profile.consents()) {
    if (consent.channel() != channel) continue;
    // ">=" so that, at equal times, the later record (the newer merge) wins.
    if (latest == nullptr || ToTime(consent.at()) >= ToTime(latest->at())) latest = &consent;
  }
  return latest;
}

std::string FormatNumber(double value) {
  char buffer[64];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (result.ec != std::errc()) return absl::StrCat(value);
  return std::string(buffer, result.ptr);
}

std::optional<FieldInfo> LookupLeadField(absl::string_view field) {
  if (field.empty()) return std::nullopt;
  if (absl::string_view key = field; absl::ConsumePrefix(&key, kCustomPrefix)) {
    if (key.empty()) return std::nullopt;
    return Info(ValueKind::kString, kProfileFields);
  }
  if (field == "source") return Info(ValueKind::kString, kProfileFields);
  if (field == "consents") {
    return Info(ValueKind::kEnum, kProfileFields, true, events::v1::Channel_descriptor());
  }
  if (std::optional<FieldInfo> score = LookupScoreField(field)) return score;
  if (field == "visits" || field == "seconds_on_site") {
    return Info(ValueKind::kNumber, kActivityFields);
  }
  if (absl::StartsWith(field, kActivityPrefix) || absl::StartsWith(field, kPagePrefix)) {
    if (!ParseCountField(field).has_value()) return std::nullopt;
    return Info(ValueKind::kNumber, kActivityFields);
  }
  return LookupByPath(events::v1::LeadProfile::descriptor(), field, false);
}

std::vector<std::string> LeadFields::Values(absl::string_view field) const {
  std::vector<std::string> out;
  if (absl::string_view key = field; absl::ConsumePrefix(&key, kCustomPrefix)) {
    const auto it = profile_.custom().find(std::string(key));
    if (it != profile_.custom().end() && !it->second.empty()) out.push_back(it->second);
    return out;
  }
  if (field == "source") {
    // The source that brought the lead in first: the first-touch attribution when capture
    // recorded one, else the oldest entry of `sources`.
    if (!profile_.first_touch().source().empty()) {
      out.push_back(profile_.first_touch().source());
    } else if (!profile_.sources().empty() && !profile_.sources(0).empty()) {
      out.push_back(profile_.sources(0));
    }
    return out;
  }
  if (field == "consents") {
    // Channels the lead may be contacted on, in order of first appearance.
    std::vector<events::v1::Channel> seen;
    for (const events::v1::Consent& consent : profile_.consents()) {
      const events::v1::Channel channel = consent.channel();
      if (channel == events::v1::CHANNEL_UNSPECIFIED ||
          std::find(seen.begin(), seen.end(), channel) != seen.end()) {
        continue;
      }
      seen.push_back(channel);
      const events::v1::Consent* latest = LatestConsent(profile_, channel);
      if (latest != nullptr && latest->granted()) out.push_back(EnumValueName(channel));
    }
    return out;
  }
  if (LookupScoreField(field).has_value()) {
    if (score_ != nullptr) AppendScoreValues(*score_, field, out);
    return out;
  }
  if (field == "visits") {
    if (aggregates_ != nullptr) out.push_back(absl::StrCat(aggregates_->visits()));
    return out;
  }
  if (field == "seconds_on_site") {
    if (aggregates_ != nullptr) out.push_back(absl::StrCat(aggregates_->seconds_on_site()));
    return out;
  }
  if (std::optional<CountField> count = ParseCountField(field)) {
    if (aggregates_ == nullptr) return out;
    const auto& counts = count->page ? aggregates_->by_page_category() : aggregates_->by_type();
    const auto it = counts.find(std::string(count->key));
    // Never seen is a count of zero, not an unknown: the aggregates are complete.
    out.push_back(absl::StrCat(it == counts.end() ? 0 : WindowCount(it->second, count->window)));
    return out;
  }
  AppendByPath(profile_, field, out);
  return out;
}

}  // namespace leadflow::rules
