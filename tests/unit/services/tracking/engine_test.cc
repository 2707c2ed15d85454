// Tests of the tracking engine's normalisation (services/tracking/engine.h): Segment payloads,
// skew correction, the time policy, activity types and page categories.

#include "services/tracking/engine.h"

#include <google/protobuf/util/json_util.h>

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "common/rules/time_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::tracking {
namespace {

using events::v1::Activity;
using events::v1::InboundActivity;
using ::testing::HasSubstr;

absl::Time At(const std::string& rfc3339) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &error)) {
    ADD_FAILURE() << "bad time " << rfc3339 << ": " << error;
  }
  return t;
}

InboundActivity FromJson(const std::string& json) {
  InboundActivity inbound;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &inbound, options);
  EXPECT_TRUE(status.ok()) << status.message();
  return inbound;
}

config::v1::TrackingConfig Config() {
  config::v1::TrackingConfig config;
  auto add = [&](const char* category, const char* pattern) {
    auto* rule = config.add_page_categories();
    rule->set_category(category);
    rule->set_url_pattern(pattern);
  };
  add("pricing", "/pricing");
  add("blog", "^/blog/");
  add("docs", R"(^https?://docs\.example\.com)");
  add("home", R"(^https?://www\.example\.com/?$)");
  add("competitor", R"((?i)rival\.com)");
  config.set_dedup_window_hours(24);
  config.set_anonymous_cap(500);
  return config;
}

ActivityNormalizer Normalizer() {
  absl::StatusOr<ActivityNormalizer> normalizer = ActivityNormalizer::Create(Config());
  EXPECT_TRUE(normalizer.ok()) << normalizer.status();
  return std::move(*normalizer);
}

const absl::Time kFallback = At("2030-01-01T00:00:00Z");

// A minimal valid track call received at `received_at`.
InboundActivity Track(const std::string& event, absl::Time received_at) {
  InboundActivity in;
  in.set_type("track");
  in.set_message_id("m-1");
  in.set_user_id("u-1");
  in.set_event(event);
  *in.mutable_received_at() = rules::ToTimestamp(received_at);
  return in;
}

// ---- The Segment spec's example payloads ----------------------------------------------------

constexpr char kSegmentIdentify[] = R"json({
  "anonymousId": "507f191e810c19729de860ea",
  "channel": "browser",
  "context": {
    "ip": "8.8.8.8",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/40.0.2214.115 Safari/537.36"
  },
  "integrations": {
    "All": false,
    "Mixpanel": true,
    "Salesforce": true
  },
  "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
  "receivedAt": "2015-02-23T22:28:55.387Z",
  "sentAt": "2015-02-23T22:28:55.111Z",
  "timestamp": "2015-02-23T22:28:55.111Z",
  "traits": {
    "name": "Peter Gibbons",
    "email": "peter@example.com",
    "plan": "premium",
    "logins": 5,
    "address": {
      "street": "6th St",
      "city": "San Francisco",
      "state": "CA",
      "postalCode": "94103",
      "country": "USA"
    }
  },
  "type": "identify",
  "userId": "97980cfea0067",
  "version": "1.1"
})json";

constexpr char kSegmentTrack[] = R"json({
  "anonymousId": "23adfd82-aa0f-45a7-a756-24f2a7a4c895",
  "context": {
    "library": {
      "name": "analytics.js",
      "version": "2.11.1"
    },
    "page": {
      "path": "/academy/",
      "referrer": "",
      "search": "",
      "title": "Analytics Academy",
      "url": "https://segment.com/academy/"
    },
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/46.0.2490.86 Safari/537.36",
    "ip": "108.0.78.21"
  },
  "event": "Course Clicked",
  "integrations": {},
  "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
  "properties": {
    "title": "Intro to Analytics"
  },
  "receivedAt": "2015-12-12T19:11:01.266Z",
  "sentAt": "2015-12-12T19:11:01.169Z",
  "timestamp": "2015-12-12T19:11:01.249Z",
  "type": "track",
  "userId": "AiUGstSDIg",
  "originalTimestamp": "2015-12-12T19:11:01.152Z"
})json";

constexpr char kSegmentPage[] = R"json({
  "anonymousId": "507f191e810c19729de860ea",
  "channel": "browser",
  "context": {
    "ip": "8.8.8.8",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/40.0.2214.115 Safari/537.36"
  },
  "integrations": {
    "All": true,
    "Mixpanel": false,
    "Salesforce": false
  },
  "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
  "name": "Home",
  "properties": {
    "title": "Welcome | Initech",
    "url": "http://www.example.com"
  },
  "receivedAt": "2015-02-23T22:28:55.387Z",
  "sentAt": "2015-02-23T22:28:55.111Z",
  "timestamp": "2015-02-23T22:28:55.111Z",
  "type": "page",
  "userId": "97980cfea0067",
  "version": "1.1"
})json";

TEST(SegmentExampleTest, IdentifyNormalises) {
  const InboundActivity in = FromJson(kSegmentIdentify);
  EXPECT_EQ(in.traits().fields().at("email").string_value(), "peter@example.com");
  absl::StatusOr<Activity> activity = Normalizer().Normalize(in, kFallback);
  ASSERT_TRUE(activity.ok()) << activity.status();
  EXPECT_EQ(activity->type(), "identify");
  EXPECT_EQ(activity->message_id(), "022bb90c-bbac-11e4-8dfc-aa07a5b093db");
  EXPECT_EQ(activity->anonymous_id(), "507f191e810c19729de860ea");
  // timestamp == sentAt: no skew, so the event happened when it was received.
  EXPECT_EQ(rules::ToTime(activity->occurred_at()), At("2015-02-23T22:28:55.387Z"));
  EXPECT_EQ(DedupKeyFor(in), "022bb90c-bbac-11e4-8dfc-aa07a5b093db");
}

TEST(SegmentExampleTest, TrackNormalises) {
  const InboundActivity in = FromJson(kSegmentTrack);
  absl::StatusOr<Activity> activity = Normalizer().Normalize(in, kFallback);
  ASSERT_TRUE(activity.ok()) << activity.status();
  EXPECT_EQ(activity->type(), "course_clicked");
  EXPECT_EQ(activity->name(), "Course Clicked");
  EXPECT_EQ(activity->url(), "");  // only page views carry a url
  EXPECT_EQ(activity->properties().fields().at("title").string_value(), "Intro to Analytics");
  // received − (sent − originalTimestamp) = 01.266 − (01.169 − 01.152): Segment's own
  // corrected timestamp, not corrected a second time.
  EXPECT_EQ(rules::ToTime(activity->occurred_at()), At("2015-12-12T19:11:01.249Z"));
}

TEST(SegmentExampleTest, PageNormalises) {
  const InboundActivity in = FromJson(kSegmentPage);
  absl::StatusOr<Activity> activity = Normalizer().Normalize(in, kFallback);
  ASSERT_TRUE(activity.ok()) << activity.status();
  EXPECT_EQ(activity->type(), "page_view");
  EXPECT_EQ(activity->name(), "Home");
  EXPECT_EQ(activity->url(), "http://www.example.com");
  EXPECT_EQ(activity->page_category(), "home");
  EXPECT_EQ(rules::ToTime(activity->occurred_at()), At("2015-02-23T22:28:55.387Z"));
}

// ---- Skew correction ----------------------------------------------------------------------

struct SkewCase {
  std::string name;
  std::string timestamp;
  std::string sent_at;
  std::string received_at;
  std::string original_timestamp;
  std::string want;
};

class SkewCorrectionTest : public ::testing::TestWithParam<SkewCase> {};

TEST_P(SkewCorrectionTest, CorrectsLikeSegment) {
  const SkewCase& c = GetParam();
  InboundActivity in;
  auto set = [](const std::string& value, google::protobuf::Timestamp* field) {
    if (!value.empty()) *field = rules::ToTimestamp(At(value));
  };
  set(c.timestamp, in.mutable_timestamp());
  set(c.sent_at, in.mutable_sent_at());
  set(c.received_at, in.mutable_received_at());
  set(c.original_timestamp, in.mutable_original_timestamp());
  if (c.timestamp.empty()) in.clear_timestamp();
  if (c.sent_at.empty()) in.clear_sent_at();
  if (c.received_at.empty()) in.clear_received_at();
  if (c.original_timestamp.empty()) in.clear_original_timestamp();
  EXPECT_EQ(CorrectedEventTime(in, At("2024-05-01T13:00:00Z")), At(c.want));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SkewCorrectionTest,
    ::testing::Values(
        // Device clock 2 h behind: received − (sent − timestamp).
        SkewCase{"DeviceClockBehind", "2024-05-01T10:00:00Z", "2024-05-01T10:00:05Z",
                 "2024-05-01T12:00:10Z", "", "2024-05-01T12:00:05Z"},
        // Device clock 1 h ahead; the batch was sent 30 s after the event.
        SkewCase{"DeviceClockAhead", "2024-05-01T13:00:00Z", "2024-05-01T13:00:30Z",
                 "2024-05-01T12:00:31Z", "", "2024-05-01T12:00:01Z"},
        SkewCase{"OnlyTimestamp", "2024-05-01T10:00:00Z", "", "", "", "2024-05-01T10:00:00Z"},
        // The fallback is a processing time and must not drive the correction.
        SkewCase{"NoReceivedAt", "2024-05-01T10:00:00Z", "2024-05-01T10:00:05Z", "", "",
                 "2024-05-01T10:00:00Z"},
        SkewCase{"TimestampAndReceivedAt", "2024-05-01T10:00:00Z", "", "2024-05-01T12:00:00Z", "",
                 "2024-05-01T10:00:00Z"},
        SkewCase{"OnlyReceivedAt", "", "", "2024-05-01T12:00:00Z", "", "2024-05-01T12:00:00Z"},
        SkewCase{"NothingUsesTheFallback", "", "", "", "", "2024-05-01T13:00:00Z"},
        // Segment-forwarded: the raw device time is originalTimestamp.
        SkewCase{"OriginalTimestampIsTheDeviceTime", "2024-05-01T12:00:05Z", "2024-05-01T10:00:05Z",
                 "2024-05-01T12:00:10Z", "2024-05-01T10:00:00Z", "2024-05-01T12:00:05Z"},
        SkewCase{"OnlyOriginalTimestamp", "", "", "", "2024-05-01T10:00:00Z",
                 "2024-05-01T10:00:00Z"}),
    [](const ::testing::TestParamInfo<SkewCase>& info) { return info.param.name; });

// ---- Time policy --------------------------------------------------------------------------

struct PolicyCase {
  std::string name;
  absl::Duration event_offset;  // event time − receive time, as the device reports it
  bool accepted;
  absl::Duration want_offset;  // occurred_at − receive time
};

class TimePolicyTest : public ::testing::TestWithParam<PolicyCase> {};

TEST_P(TimePolicyTest, ClampsTheFutureAndRejectsTheAncient) {
  const absl::Time received = At("2024-05-01T12:00:00Z");
  InboundActivity in = Track("Demo Requested", received);
  *in.mutable_timestamp() = rules::ToTimestamp(received + GetParam().event_offset);
  absl::StatusOr<Activity> activity = Normalizer().Normalize(in, kFallback);
  ASSERT_EQ(activity.ok(), GetParam().accepted) << activity.status();
  if (activity.ok()) {
    EXPECT_EQ(rules::ToTime(activity->occurred_at()), received + GetParam().want_offset);
  } else {
    EXPECT_EQ(activity.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(activity.status().message()), HasSubstr("too old"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, TimePolicyTest,
    ::testing::Values(
        PolicyCase{"SlightlyInTheFutureIsKept", absl::Hours(23), true, absl::Hours(23)},
        PolicyCase{"ExactlyADayAheadIsKept", absl::Hours(24), true, absl::Hours(24)},
        PolicyCase{"MoreThanADayAheadIsClamped", absl::Hours(25), true, absl::ZeroDuration()},
        PolicyCase{"FarFutureIsClamped", absl::Hours(24 * 400), true, absl::ZeroDuration()},
        PolicyCase{"LastYearIsKept", -absl::Hours(24 * 364), true, -absl::Hours(24 * 364)},
        PolicyCase{"ExactlyAYearOldIsKept", -absl::Hours(24 * 365), true, -absl::Hours(24 * 365)},
        PolicyCase{"OlderThanAYearIsRejected", -absl::Hours(24 * 366), false,
                   absl::ZeroDuration()}),
    [](const ::testing::TestParamInfo<PolicyCase>& info) { return info.param.name; });

TEST(TimePolicyTest, TheFallbackIsTheReceiveTimeWhenReceivedAtIsMissing) {
  InboundActivity in = Track("Demo Requested", kFallback);
  in.clear_received_at();
  *in.mutable_timestamp() = rules::ToTimestamp(kFallback + absl::Hours(48));
  absl::StatusOr<Activity> activity = Normalizer().Normalize(in, kFallback);
  ASSERT_TRUE(activity.ok()) << activity.status();
  EXPECT_EQ(rules::ToTime(activity->occurred_at()), kFallback);
}

// ---- Validation ---------------------------------------------------------------------------

struct RejectCase {
  std::string name;
  std::function<void(InboundActivity&)> mutate;
  std::string message;
};

class RejectTest : public ::testing::TestWithParam<RejectCase> {};

TEST_P(RejectTest, IsInvalidArgumentNamingTheProblem) {
  InboundActivity in = Track("Demo Requested", At("2024-05-01T12:00:00Z"));
  in.set_anonymous_id("anon-1");
  GetParam().mutate(in);
  absl::StatusOr<Activity> activity = Normalizer().Normalize(in, kFallback);
  ASSERT_FALSE(activity.ok());
  EXPECT_EQ(activity.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(activity.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RejectTest,
    ::testing::Values(
        RejectCase{"UnsupportedType", [](InboundActivity& in) { in.set_type("screen"); },
                   "type \"screen\" is not supported"},
        RejectCase{"MissingType", [](InboundActivity& in) { in.clear_type(); },
                   "expected identify, track or page"},
        RejectCase{"MissingMessageId", [](InboundActivity& in) { in.set_message_id(" "); },
                   "message_id is required"},
        RejectCase{"NoIdentity",
                   [](InboundActivity& in) {
                     in.clear_user_id();
                     in.clear_anonymous_id();
                   },
                   "user_id or anonymous_id is required"},
        RejectCase{"TrackWithoutEvent", [](InboundActivity& in) { in.set_event("  "); },
                   "event is required for track calls"},
        RejectCase{"TrackWithPunctuationOnly", [](InboundActivity& in) { in.set_event("!!!"); },
                   "has no letters or digits"},
        RejectCase{"TrackWithHugeName",
                   [](InboundActivity& in) { in.set_event(std::string(200, 'x')); },
                   "longer than 128"},
        RejectCase{"BrokenTimestamp",
                   [](InboundActivity& in) { in.mutable_sent_at()->set_nanos(-1); },
                   "sent_at is not a valid timestamp"}),
    [](const ::testing::TestParamInfo<RejectCase>& info) { return info.param.name; });

TEST(NormalizeTest, TypeIsCaseInsensitiveAndEitherIdSuffices) {
  InboundActivity in = Track("Demo Requested", At("2024-05-01T12:00:00Z"));
  in.set_type(" TRACK ");
  EXPECT_TRUE(Normalizer().Normalize(in, kFallback).ok());
  in.clear_user_id();
  in.set_anonymous_id("anon-1");
  absl::StatusOr<Activity> activity = Normalizer().Normalize(in, kFallback);
  ASSERT_TRUE(activity.ok());
  EXPECT_EQ(activity->anonymous_id(), "anon-1");
}

// ---- Activity types -----------------------------------------------------------------------

struct TypeCase {
  std::string event;
  std::string type;
};

class TrackTypeTest : public ::testing::TestWithParam<TypeCase> {};

TEST_P(TrackTypeTest, MapsEventNamesToActivityTypes) {
  EXPECT_EQ(TrackActivityType(GetParam().event), GetParam().type);
  absl::StatusOr<Activity> activity =
      Normalizer().Normalize(Track(GetParam().event, At("2024-05-01T12:00:00Z")), kFallback);
  ASSERT_TRUE(activity.ok()) << activity.status();
  EXPECT_EQ(activity->type(), GetParam().type);
  EXPECT_EQ(activity->name(), GetParam().event);
}

INSTANTIATE_TEST_SUITE_P(
    Aliases, TrackTypeTest,
    ::testing::Values(
        TypeCase{"Email Opened", "email_open"}, TypeCase{"Email Link Clicked", "email_click"},
        TypeCase{"Email Clicked", "email_click"}, TypeCase{"Form Submitted", "form_submit"},
        TypeCase{"Demo Requested", "demo_request"},
        TypeCase{"Webinar Attended", "webinar_attended"}, TypeCase{"Download", "download"},
        TypeCase{"Asset Downloaded", "download"}, TypeCase{"Whitepaper Downloaded", "download"},
        TypeCase{"Chat Started", "chat"}, TypeCase{"Order Completed", "purchase"},
        TypeCase{"Unsubscribed", "unsubscribe"}, TypeCase{"Email Bounced", "bounce"},
        TypeCase{"Competitor Visited", "competitor_visit"},
        // Aliases are compared in snake_case, so spelling variants map too.
        TypeCase{"email_opened", "email_open"}, TypeCase{"demoRequested", "demo_request"},
        TypeCase{"FORM SUBMITTED", "form_submit"},
        // Anything else is its own snake_case type.
        TypeCase{"Pricing Calculator Used", "pricing_calculator_used"},
        TypeCase{"Course Clicked", "course_clicked"}));

struct SnakeCaseCase {
  std::string in;
  std::string want;
};

class SnakeCaseTest : public ::testing::TestWithParam<SnakeCaseCase> {};

TEST_P(SnakeCaseTest, Converts) { EXPECT_EQ(SnakeCase(GetParam().in), GetParam().want); }

INSTANTIATE_TEST_SUITE_P(Names, SnakeCaseTest,
                         ::testing::Values(SnakeCaseCase{"Demo Requested", "demo_requested"},
                                           SnakeCaseCase{"demoRequested", "demo_requested"},
                                           SnakeCaseCase{"DemoRequested", "demo_requested"},
                                           SnakeCaseCase{"HTMLPageViewed", "html_page_viewed"},
                                           SnakeCaseCase{"Add-to-Cart!", "add_to_cart"},
                                           SnakeCaseCase{"  spaced   out  ", "spaced_out"},
                                           SnakeCaseCase{"Step 2 Completed", "step_2_completed"},
                                           SnakeCaseCase{"version2Released", "version2_released"},
                                           SnakeCaseCase{"ALLCAPS", "allcaps"},
                                           SnakeCaseCase{"already_snake", "already_snake"},
                                           SnakeCaseCase{"Café Visited", "café_visited"},
                                           SnakeCaseCase{"", ""}, SnakeCaseCase{"!!!", ""}));

// ---- Page views ---------------------------------------------------------------------------

struct PageCase {
  std::string name;
  std::function<void(InboundActivity&)> setup;
  std::string url;
  std::string category;
};

class PageCategoryTest : public ::testing::TestWithParam<PageCase> {};

TEST_P(PageCategoryTest, FirstMatchingRuleWins) {
  InboundActivity in;
  in.set_type("page");
  in.set_message_id("m-1");
  in.set_anonymous_id("anon-1");
  GetParam().setup(in);
  absl::StatusOr<Activity> activity = Normalizer().Normalize(in, At("2024-05-01T12:00:00Z"));
  ASSERT_TRUE(activity.ok()) << activity.status();
  EXPECT_EQ(activity->type(), "page_view");
  EXPECT_EQ(activity->url(), GetParam().url);
  EXPECT_EQ(activity->page_category(), GetParam().category);
}

void SetString(google::protobuf::Struct* s, const std::string& key, const std::string& value) {
  (*s->mutable_fields())[key].set_string_value(value);
}

google::protobuf::Struct* ContextPage(InboundActivity& in) {
  return (*in.mutable_context()->mutable_fields())["page"].mutable_struct_value();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PageCategoryTest,
    ::testing::Values(
        PageCase{"UrlMatches",
                 [](InboundActivity& in) {
                   SetString(in.mutable_properties(), "url",
                             "https://www.example.com/pricing?plan=pro");
                 },
                 "https://www.example.com/pricing?plan=pro", "pricing"},
        PageCase{"PathFromTheUrlMatches",
                 [](InboundActivity& in) {
                   SetString(in.mutable_properties(), "url",
                             "https://www.example.com/blog/lead-scoring#top");
                 },
                 "https://www.example.com/blog/lead-scoring#top", "blog"},
        PageCase{
            "PathPropertyMatches",
            [](InboundActivity& in) { SetString(in.mutable_properties(), "path", "/blog/hello"); },
            "", "blog"},
        PageCase{"ContextPageIsUsedWhenPropertiesLackTheUrl",
                 [](InboundActivity& in) {
                   SetString(ContextPage(in), "url", "https://docs.example.com/start");
                 },
                 "https://docs.example.com/start", "docs"},
        PageCase{"FirstRuleWins",
                 [](InboundActivity& in) {
                   SetString(in.mutable_properties(), "url",
                             "https://www.example.com/blog/pricing-explained");
                 },
                 "https://www.example.com/blog/pricing-explained", "pricing"},
        PageCase{"NoRuleMatches",
                 [](InboundActivity& in) {
                   SetString(in.mutable_properties(), "url", "https://www.example.com/about");
                 },
                 "https://www.example.com/about", ""},
        PageCase{"ACompetitorReferrer",
                 [](InboundActivity& in) {
                   SetString(in.mutable_properties(), "url", "https://www.example.com/about");
                   SetString(ContextPage(in), "referrer", "https://www.RIVAL.com/compare");
                 },
                 "https://www.example.com/about", "competitor"},
        PageCase{"ANonCompetitorReferrerIsNotACategory",
                 [](InboundActivity& in) {
                   SetString(in.mutable_properties(), "url", "https://www.example.com/about");
                   SetString(in.mutable_properties(), "referrer",
                             "https://www.example.com/pricing");
                 },
                 "https://www.example.com/about", ""}),
    [](const ::testing::TestParamInfo<PageCase>& info) { return info.param.name; });

TEST(PageViewTest, NameFallsBackToTheNameProperty) {
  InboundActivity in;
  in.set_type("page");
  in.set_message_id("m-1");
  in.set_user_id("u-1");
  SetString(in.mutable_properties(), "name", "Pricing");
  absl::StatusOr<Activity> activity = Normalizer().Normalize(in, At("2024-05-01T12:00:00Z"));
  ASSERT_TRUE(activity.ok());
  EXPECT_EQ(activity->name(), "Pricing");
}

TEST(TouchIdTest, ComesFromEitherPropertySpelling) {
  const absl::Time t = At("2024-05-01T12:00:00Z");
  InboundActivity in = Track("Email Opened", t);
  SetString(in.mutable_properties(), "touch_id", "touch-1");
  EXPECT_EQ(Normalizer().Normalize(in, t)->touch_id(), "touch-1");

  in = Track("Email Opened", t);
  SetString(in.mutable_properties(), "touchId", "touch-2");
  EXPECT_EQ(Normalizer().Normalize(in, t)->touch_id(), "touch-2");

  in = Track("Email Opened", t);
  (*in.mutable_properties()->mutable_fields())["touchId"].set_number_value(12345);
  EXPECT_EQ(Normalizer().Normalize(in, t)->touch_id(), "12345");

  in = Track("Email Opened", t);
  EXPECT_EQ(Normalizer().Normalize(in, t)->touch_id(), "");
}

// ---- Configuration ------------------------------------------------------------------------

TEST(ConfigTest, EveryBadRuleIsReported) {
  config::v1::TrackingConfig config;
  auto* bad_regex = config.add_page_categories();
  bad_regex->set_category("pricing");
  bad_regex->set_url_pattern("(unclosed");
  auto* no_category = config.add_page_categories();
  no_category->set_url_pattern("/blog");
  auto* no_pattern = config.add_page_categories();
  no_pattern->set_category("docs");
  config.set_dedup_window_hours(-1);
  config.set_anonymous_cap(-5);
  absl::StatusOr<ActivityNormalizer> normalizer = ActivityNormalizer::Create(config);
  ASSERT_FALSE(normalizer.ok());
  EXPECT_EQ(normalizer.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(normalizer.status().message());
  EXPECT_THAT(message, HasSubstr("page_categories[0].url_pattern \"(unclosed\" is not a valid"));
  EXPECT_THAT(message, HasSubstr("page_categories[1].category is required"));
  EXPECT_THAT(message, HasSubstr("page_categories[2].url_pattern is required"));
  EXPECT_THAT(message, HasSubstr("dedup_window_hours must not be negative"));
  EXPECT_THAT(message, HasSubstr("anonymous_cap must not be negative"));
}

TEST(ConfigTest, AnEmptyConfigIsValid) {
  EXPECT_TRUE(ActivityNormalizer::Create(config::v1::TrackingConfig()).ok());
}

TEST(ConfigTest, CategoriesAreLowerCased) {
  config::v1::TrackingConfig config;
  auto* rule = config.add_page_categories();
  rule->set_category(" Pricing ");
  rule->set_url_pattern("/pricing");
  absl::StatusOr<ActivityNormalizer> normalizer = ActivityNormalizer::Create(config);
  ASSERT_TRUE(normalizer.ok());
  InboundActivity in;
  in.set_type("page");
  in.set_message_id("m");
  in.set_user_id("u");
  SetString(in.mutable_properties(), "url", "https://x.com/pricing");
  EXPECT_EQ(normalizer->Normalize(in, kFallback)->page_category(), "pricing");
}

TEST(DedupKeyTest, IsTheMessageId) {
  InboundActivity in;
  in.set_message_id("ajs-123");
  EXPECT_EQ(DedupKeyFor(in), "ajs-123");
}

}  // namespace
}  // namespace leadflow::tracking
