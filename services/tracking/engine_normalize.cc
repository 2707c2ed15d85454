// ActivityNormalizer and the pure helpers it is built from.

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/rules/time_util.h"
#include "services/tracking/engine.h"

namespace leadflow::tracking {

namespace {

using events::v1::Activity;
using events::v1::InboundActivity;
using google::protobuf::Struct;
using google::protobuf::Value;
using rules::ToTime;
using rules::ToTimestamp;

constexpr size_t kMaxTypeLength = 128;

// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the Timestamp spec's range.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

bool IsValidTimestamp(const google::protobuf::Timestamp& ts) {
  return ts.seconds() >= kMinTimestampSeconds && ts.seconds() <= kMaxTimestampSeconds &&
         ts.nanos() >= 0 && ts.nanos() <= 999'999'999;
}

// Segment / marketing event names (in snake_case) and the canonical activity type of each.
const absl::flat_hash_map<std::string, std::string>& TrackAliases() {
  static const auto* const kAliases = new absl::flat_hash_map<std::string, std::string>{
      {"email_opened", "email_open"},
      {"email_link_clicked", "email_click"},
      {"email_clicked", "email_click"},
      {"form_submitted", "form_submit"},
      {"demo_requested", "demo_request"},
      {"webinar_attended", "webinar_attended"},
      {"download", "download"},
      {"asset_downloaded", "download"},
      {"whitepaper_downloaded", "download"},
      {"file_downloaded", "download"},
      {"chat_started", "chat"},
      {"order_completed", "purchase"},
      {"unsubscribed", "unsubscribe"},
      {"email_unsubscribed", "unsubscribe"},
      {"email_bounced", "bounce"},
      {"competitor_visited", "competitor_visit"},
  };
  return *kAliases;
}

// The string value of `key` in `s`; numbers are written without a fraction when integral
// (touch ids sometimes arrive as numbers). "" when absent or of another kind.
std::string StringField(const Struct& s, absl::string_view key) {
  auto it = s.fields().find(std::string(key));
  if (it == s.fields().end()) return "";
  const Value& value = it->second;
  switch (value.kind_case()) {
    case Value::kStringValue:
      return value.string_value();
    case Value::kNumberValue: {
      const double number = value.number_value();
      if (std::isfinite(number) && number == std::floor(number) && std::fabs(number) < 1e15) {
        return absl::StrCat(static_cast<int64_t>(number));
      }
      return absl::StrFormat("%g", number);
    }
    default:
      return "";
  }
}

// The struct value of `key` in `s`, or an empty struct.
const Struct& StructField(const Struct& s, absl::string_view key) {
  auto it = s.fields().find(std::string(key));
  if (it == s.fields().end() || it->second.kind_case() != Value::kStructValue) {
    return Struct::default_instance();
  }
  return it->second.struct_value();
}

// The string field `property` of properties, else of context.page: Segment libraries put page
// data in one or the other.
std::string PageField(const InboundActivity& in, absl::string_view property) {
  std::string value = StringField(in.properties(), property);
  if (value.empty()) value = StringField(StructField(in.context(), "page"), property);
  return value;
}

// The path of a URL: from the first '/' after "scheme://host" up to '?' or '#'.
std::string PathOfUrl(absl::string_view url) {
  size_t start = url.find("://");
  start = start == absl::string_view::npos ? 0 : start + 3;
  const size_t slash = url.find('/', start);
  if (slash == absl::string_view::npos) return "/";
  const size_t end = url.find_first_of("?#", slash);
  return std::string(url.substr(slash, end == absl::string_view::npos ? end : end - slash));
}

bool PartialMatch(absl::string_view text, const re2::RE2& pattern) {
  return !text.empty() &&
         re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), pattern);
}

}  // namespace

struct ActivityNormalizer::CategoryRule {
  std::string category;
  std::unique_ptr<re2::RE2> pattern;
};

std::string DedupKeyFor(const InboundActivity& inbound) { return inbound.message_id(); }

absl::Time CorrectedEventTime(const InboundActivity& in, absl::Time received_at_fallback) {
  const bool has_device_time = in.has_original_timestamp() || in.has_timestamp();
  if (has_device_time && in.has_sent_at() && in.has_received_at()) {
    const absl::Time device_time =
        ToTime(in.has_original_timestamp() ? in.original_timestamp() : in.timestamp());
    return ToTime(in.received_at()) - (ToTime(in.sent_at()) - device_time);
  }
  if (in.has_timestamp()) return ToTime(in.timestamp());
  if (in.has_original_timestamp()) return ToTime(in.original_timestamp());
  return in.has_received_at() ? ToTime(in.received_at()) : received_at_fallback;
}

std::string SnakeCase(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 4);
  bool pending_separator = false;
  char previous = '\0';  // previous byte of the current word, '\0' at a word start
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    const bool word_char = u >= 0x80 || absl::ascii_isalnum(u);
    if (!word_char) {
      pending_separator = !out.empty();
      previous = '\0';
      continue;
    }
    if (absl::ascii_isupper(u) && previous != '\0') {
      const bool after_lower = absl::ascii_islower(static_cast<unsigned char>(previous)) ||
                               absl::ascii_isdigit(static_cast<unsigned char>(previous));
      // "HTMLPage": the 'P' starts a word because a lower-case letter follows it.
      const bool acronym_end = absl::ascii_isupper(static_cast<unsigned char>(previous)) &&
                               i + 1 < text.size() &&
                               absl::ascii_islower(static_cast<unsigned char>(text[i + 1]));
      if (after_lower || acronym_end) pending_separator = true;
    }
    if (pending_separator) out.push_back('_');
    pending_separator = false;
    out.push_back(absl::ascii_tolower(u));
    previous = c;
  }
  return out;
}

std::string TrackActivityType(absl::string_view event) {
  std::string type = SnakeCase(event);
  if (auto it = TrackAliases().find(type); it != TrackAliases().end()) return it->second;
  return type;
}

absl::StatusOr<ActivityNormalizer> ActivityNormalizer::Create(
    const config::v1::TrackingConfig& config) {
  std::vector<std::string> errors;
  std::vector<CategoryRule> rules;
  for (int i = 0; i < config.page_categories_size(); ++i) {
    const config::v1::PageCategoryRule& rule = config.page_categories(i);
    const std::string path = absl::StrCat("page_categories[", i, "]");
    std::string category = absl::AsciiStrToLower(absl::StripAsciiWhitespace(rule.category()));
    if (category.empty()) errors.push_back(absl::StrCat(path, ".category is required"));
    if (rule.url_pattern().empty()) {
      errors.push_back(absl::StrCat(path, ".url_pattern is required"));
      continue;
    }
    re2::RE2::Options options;
    options.set_log_errors(false);
    auto pattern = std::make_unique<re2::RE2>(rule.url_pattern(), options);
    if (!pattern->ok()) {
      errors.push_back(absl::StrCat(path, ".url_pattern \"", rule.url_pattern(),
                                    "\" is not a valid RE2 pattern: ", pattern->error()));
      continue;
    }
    rules.push_back(CategoryRule{std::move(category), std::move(pattern)});
  }
  if (config.dedup_window_hours() < 0) errors.push_back("dedup_window_hours must not be negative");
  if (config.anonymous_cap() < 0) errors.push_back("anonymous_cap must not be negative");
  if (!errors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid tracking config: ", absl::StrJoin(errors, "; ")));
  }
  return ActivityNormalizer(std::move(rules));
}

ActivityNormalizer::ActivityNormalizer(std::vector<CategoryRule> rules)
    : rules_(std::move(rules)) {}
ActivityNormalizer::ActivityNormalizer(ActivityNormalizer&&) noexcept = default;
ActivityNormalizer& ActivityNormalizer::operator=(ActivityNormalizer&&) noexcept = default;
ActivityNormalizer::~ActivityNormalizer() = default;

std::string ActivityNormalizer::PageCategory(absl::string_view url, absl::string_view path,
                                             absl::string_view referrer) const {
  for (const CategoryRule& rule : rules_) {
    if (PartialMatch(url, *rule.pattern) || PartialMatch(path, *rule.pattern)) {
      return rule.category;
    }
  }
  // Arriving from a competitor's site is a signal too.
  for (const CategoryRule& rule : rules_) {
    if (rule.category == "competitor" && PartialMatch(referrer, *rule.pattern)) {
      return rule.category;
    }
  }
  return "";
}

absl::StatusOr<Activity> ActivityNormalizer::Normalize(const InboundActivity& in,
                                                       absl::Time received_at_fallback) const {
  const std::string type = absl::AsciiStrToLower(absl::StripAsciiWhitespace(in.type()));
  if (type != "identify" && type != "track" && type != "page") {
    return absl::InvalidArgumentError(absl::StrCat(
        "type \"", in.type(), "\" is not supported; expected identify, track or page"));
  }
  if (absl::StripAsciiWhitespace(in.message_id()).empty()) {
    return absl::InvalidArgumentError("message_id is required");
  }
  if (absl::StripAsciiWhitespace(in.user_id()).empty() &&
      absl::StripAsciiWhitespace(in.anonymous_id()).empty()) {
    return absl::InvalidArgumentError("user_id or anonymous_id is required");
  }
  const std::pair<const char*, const google::protobuf::Timestamp*> timestamps[] = {
      {"timestamp", in.has_timestamp() ? &in.timestamp() : nullptr},
      {"sent_at", in.has_sent_at() ? &in.sent_at() : nullptr},
      {"received_at", in.has_received_at() ? &in.received_at() : nullptr},
      {"original_timestamp", in.has_original_timestamp() ? &in.original_timestamp() : nullptr},
  };
  for (const auto& [name, ts] : timestamps) {
    if (ts != nullptr && !IsValidTimestamp(*ts)) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is not a valid timestamp"));
    }
  }

  // Time policy (engine.h).
  const absl::Time received_at =
      in.has_received_at() ? ToTime(in.received_at()) : received_at_fallback;
  absl::Time occurred_at = CorrectedEventTime(in, received_at_fallback);
  if (occurred_at > received_at + kMaxFutureSkew) occurred_at = received_at;
  if (occurred_at < received_at - kMaxEventAge) {
    return absl::InvalidArgumentError(absl::StrCat(
        "event is too old: it happened at ", absl::FormatTime(occurred_at, absl::UTCTimeZone()),
        ", more than 365 days before it was received at ",
        absl::FormatTime(received_at, absl::UTCTimeZone())));
  }

  Activity activity;
  activity.set_message_id(in.message_id());
  activity.set_anonymous_id(in.anonymous_id());
  *activity.mutable_occurred_at() = ToTimestamp(occurred_at);
  if (in.has_properties()) *activity.mutable_properties() = in.properties();

  if (type == "identify") {
    activity.set_type("identify");
  } else if (type == "track") {
    if (absl::StripAsciiWhitespace(in.event()).empty()) {
      return absl::InvalidArgumentError("event is required for track calls");
    }
    std::string activity_type = TrackActivityType(in.event());
    if (activity_type.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("event \"", in.event(), "\" has no letters or digits"));
    }
    if (activity_type.size() > kMaxTypeLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("event name is longer than ", kMaxTypeLength, " characters"));
    }
    activity.set_type(std::move(activity_type));
    activity.set_name(in.event());
  } else {
    activity.set_type("page_view");
    activity.set_name(in.name().empty() ? StringField(in.properties(), "name") : in.name());
    const std::string url = PageField(in, "url");
    std::string path = PageField(in, "path");
    if (path.empty() && !url.empty()) path = PathOfUrl(url);
    activity.set_url(url);
    activity.set_page_category(PageCategory(url, path, PageField(in, "referrer")));
  }

  std::string touch_id = StringField(in.properties(), "touch_id");
  if (touch_id.empty()) touch_id = StringField(in.properties(), "touchId");
  activity.set_touch_id(std::move(touch_id));
  return activity;
}

}  // namespace leadflow::tracking
