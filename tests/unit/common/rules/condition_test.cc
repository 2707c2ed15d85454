// Tests for common/rules: LeadFields, compiled conditions, validation and the time helpers.
#include "common/rules/condition.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/rules/field_source.h"
#include "common/rules/time_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace leadflow::rules {
namespace {

using config::v1::Condition;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

template <typename T>
T ParseText(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

ConditionList ParseConditions(const std::vector<std::string>& texts) {
  ConditionList list;
  for (const std::string& text : texts) *list.Add() = ParseText<Condition>(text);
  return list;
}

events::v1::LeadProfile ExampleProfile() {
  return ParseText<events::v1::LeadProfile>(R"pb(
    lead_id: "L1"
    email: "ada@shoeco.co.uk"
    first_name: "Ada"
    company: "ShoeCo Ltd"
    job_title: "VP Marketing"
    seniority: SENIORITY_SENIOR
    job_function: "marketing"
    company_size: 250
    industry: "retail"
    country: "GB"
    time_zone: "Europe/London"
    interests: [ "boots", "shoes" ]
    custom { key: "plan" value: "Pro" }
    consents {
      channel: CHANNEL_EMAIL
      granted: true
      at { seconds: 100 }
    }
    consents {
      channel: CHANNEL_SMS
      granted: false
      at { seconds: 100 }
    }
    do_not_contact: false
    sources: [ "ads", "web_form" ]
    first_touch { source: "web_form" utm_campaign: "spring-launch" }
    created_at { seconds: 1717200000 }
  )pb");
}

events::v1::ScoreSnapshot ExampleScore() {
  return ParseText<events::v1::ScoreSnapshot>(R"pb(
    fit: 35
    engagement: 59.5
    total: 94.5
    category: CATEGORY_SALES_READY
    interest: INTEREST_NOT_NOW
    stage: STAGE_ENGAGED
    segments: [ "decision-makers", "hot" ]
    conversion_probability: 0.25
  )pb");
}

events::v1::LeadAggregates ExampleAggregates() {
  return ParseText<events::v1::LeadAggregates>(R"pb(
    by_type {
      key: "demo_request"
      value { total: 1 last_1d: 1 last_7d: 1 last_30d: 1 last_90d: 1 }
    }
    by_type {
      key: "page_view"
      value { total: 12 last_1d: 2 last_7d: 5 last_30d: 9 last_90d: 12 }
    }
    by_page_category {
      key: "pricing"
      value { total: 4 last_1d: 0 last_7d: 3 last_30d: 4 last_90d: 4 }
    }
    visits: 6
    seconds_on_site: 1800
  )pb");
}

class LeadConditionTest : public ::testing::Test {
 protected:
  events::v1::LeadProfile profile_ = ExampleProfile();
  events::v1::ScoreSnapshot score_ = ExampleScore();
  events::v1::LeadAggregates aggregates_ = ExampleAggregates();
  LeadFields fields_{profile_, &score_, &aggregates_};
};

struct EvaluateCase {
  std::string name;
  std::string condition;
  bool expected;
};

TEST_F(LeadConditionTest, EveryTestKindEvaluatesAsSpecified) {
  const std::vector<EvaluateCase> cases = {
      // equals: case-insensitive.
      {"equals ignores case", R"pb(field: "country" equals: "gb")pb", true},
      {"equals a different value fails", R"pb(field: "country" equals: "DE")pb", false},
      {"negated equals holds for a different value",
       R"pb(field: "country" equals: "DE" negate: true)pb", true},
      // in.
      {"in holds when the value is listed", R"pb(field: "country"
                                                 in { values: [ "UK", "GB" ] })pb",
       true},
      {"in ignores case", R"pb(field: "industry"
                               in { values: [ "RETAIL" ] })pb",
       true},
      {"in fails when the value is not listed", R"pb(field: "country"
                                                     in { values: [ "US", "CA" ] })pb",
       false},
      {"negated in holds when the value is not listed", R"pb(field: "country"
                                                             in { values: [ "US" ] }
                                                             negate: true)pb",
       true},
      // range: min inclusive, max exclusive, open bounds, non-numbers never match.
      {"range holds inside", R"pb(field: "company_size"
                                  range { min: 50 max: 1000 })pb",
       true},
      {"range min is inclusive", R"pb(field: "company_size"
                                      range { min: 250 })pb",
       true},
      {"range max is exclusive", R"pb(field: "company_size"
                                      range { max: 250 })pb",
       false},
      {"range with no bounds holds for any number", R"pb(field: "company_size"
                                                         range {})pb",
       true},
      {"range on a non-numeric value is false", R"pb(field: "country"
                                                     range { min: 0 })pb",
       false},
      {"negated range on a non-numeric value is true", R"pb(field: "country"
                                                            range { min: 0 }
                                                            negate: true)pb",
       true},
      {"range works on fractional scores", R"pb(field: "score"
                                                range { min: 94.5 })pb",
       true},
      // matches: RE2 full match, case-sensitive unless (?i).
      {"matches is a full match", R"pb(field: "job_title" matches: "VP .*")pb", true},
      {"matches does not accept a partial match", R"pb(field: "job_title" matches: "Marketing")pb",
       false},
      {"matches is case-sensitive", R"pb(field: "job_title" matches: "vp .*")pb", false},
      {"matches honours (?i)", R"pb(field: "job_title" matches: "(?i)vp .*")pb", true},
      {"negated matches", R"pb(field: "email" matches: ".*@gmail\\.com" negate: true)pb", true},
      // missing.
      {"missing holds for an empty field", R"pb(field: "phone" missing: true)pb", true},
      {"missing fails for a present field", R"pb(field: "email" missing: true)pb", false},
      {"missing false holds for a present field", R"pb(field: "email" missing: false)pb", true},
      {"negated missing means present", R"pb(field: "phone" missing: true negate: true)pb", false},
      {"unset enum reads as missing", R"pb(field: "region" missing: true)pb", true},
      // Repeated fields: any element.
      {"repeated field holds when any element equals", R"pb(field: "interests" equals: "shoes")pb",
       true},
      {"repeated field with in", R"pb(field: "interests"
                                      in { values: [ "hats", "boots" ] })pb",
       true},
      {"negated repeated equals means no element equals",
       R"pb(field: "interests" equals: "shoes" negate: true)pb", false},
      {"repeated field with no match", R"pb(field: "interests" equals: "hats")pb", false},
      {"repeated field is not missing", R"pb(field: "interests" missing: true)pb", false},
      {"repeated sources", R"pb(field: "sources" equals: "ads")pb", true},
      // Enums by lower-case name without prefix.
      {"seniority by name", R"pb(field: "seniority" equals: "senior")pb", true},
      {"category by name", R"pb(field: "category" equals: "sales_ready")pb", true},
      {"interest by name", R"pb(field: "interest" equals: "not_now")pb", true},
      {"stage by name", R"pb(field: "stage" equals: "engaged")pb", true},
      {"granted consents list channels", R"pb(field: "consents" equals: "email")pb", true},
      {"refused consent is not listed", R"pb(field: "consents" equals: "sms")pb", false},
      // Other lead fields.
      {"bools always have a value", R"pb(field: "do_not_contact" equals: "false")pb", true},
      {"source is the first-touch source", R"pb(field: "source" equals: "web_form")pb", true},
      {"custom attributes", R"pb(field: "custom.plan" equals: "pro")pb", true},
      {"absent custom attribute is missing", R"pb(field: "custom.tier" missing: true)pb", true},
      {"nested message field", R"pb(field: "first_touch.utm_campaign" equals: "spring-launch")pb",
       true},
      {"timestamps read as RFC 3339", R"pb(field: "created_at" matches: "2024-06-01T00:00:00Z")pb",
       true},
      // Score fields.
      {"segments are repeated", R"pb(field: "segments" equals: "hot")pb", true},
      {"conversion probability", R"pb(field: "conversion_probability"
                                      range { min: 0.2 })pb",
       true},
      {"fit", R"pb(field: "fit" equals: "35")pb", true},
      // Activity fields.
      {"activity count in a window", R"pb(field: "activity.page_view.7d" equals: "5")pb", true},
      {"page category count", R"pb(field: "page.pricing.7d"
                                   range { min: 3 })pb",
       true},
      {"all-time count", R"pb(field: "activity.page_view.total"
                              range { min: 12 max: 13 })pb",
       true},
      {"a never-seen activity counts zero",
       R"pb(field: "activity.webinar_attended.90d" equals: "0")pb", true},
      {"visits", R"pb(field: "visits"
                      range { min: 5 })pb",
       true},
  };
  for (const EvaluateCase& c : cases) {
    absl::StatusOr<CompiledCondition> condition =
        CompiledCondition::Compile(ParseText<Condition>(c.condition), "test.when[0]");
    ASSERT_TRUE(condition.ok()) << c.name << ": " << condition.status();
    EXPECT_EQ(condition->Evaluate(fields_), c.expected) << c.name;
  }
}

TEST_F(LeadConditionTest, ScoreAndActivityFieldsAreAbsentWithoutTheirSources) {
  const LeadFields profile_only(profile_);
  EXPECT_THAT(profile_only.Values("score"), IsEmpty());
  EXPECT_THAT(profile_only.Values("segments"), IsEmpty());
  EXPECT_THAT(profile_only.Values("activity.page_view.7d"), IsEmpty());
  EXPECT_THAT(profile_only.Values("country"), ElementsAre("GB"));
}

TEST(LeadFieldsTest, ValuesAreRenderedAsDocumented) {
  const events::v1::LeadProfile profile = ExampleProfile();
  const events::v1::ScoreSnapshot score = ExampleScore();
  const events::v1::LeadAggregates aggregates = ExampleAggregates();
  const LeadFields fields(profile, &score, &aggregates);
  EXPECT_THAT(fields.Values("company_size"), ElementsAre("250"));
  EXPECT_THAT(fields.Values("seniority"), ElementsAre("senior"));
  EXPECT_THAT(fields.Values("interests"), ElementsAre("boots", "shoes"));
  EXPECT_THAT(fields.Values("score"), ElementsAre("94.5"));
  EXPECT_THAT(fields.Values("conversion_probability"), ElementsAre("0.25"));
  EXPECT_THAT(fields.Values("category"), ElementsAre("sales_ready"));
  EXPECT_THAT(fields.Values("created_at"), ElementsAre("2024-06-01T00:00:00Z"));
  EXPECT_THAT(fields.Values("consents"), ElementsAre("email"));
  EXPECT_THAT(fields.Values("consents.channel"), ElementsAre("email", "sms"));
  EXPECT_THAT(fields.Values("page.pricing.30d"), ElementsAre("4"));
  EXPECT_THAT(fields.Values("page.blog.30d"), ElementsAre("0"));
  EXPECT_THAT(fields.Values("seconds_on_site"), ElementsAre("1800"));
  EXPECT_THAT(fields.Values("no_such_field"), IsEmpty());
}

TEST(LeadFieldsTest, UnknownNumbersAndEmptyStringsReadAsAbsent) {
  events::v1::LeadProfile profile;
  profile.set_company_size(0);
  profile.add_interests("");
  const LeadFields fields(profile);
  EXPECT_THAT(fields.Values("company_size"), IsEmpty());
  EXPECT_THAT(fields.Values("interests"), IsEmpty());
  EXPECT_THAT(fields.Values("seniority"), IsEmpty());
  EXPECT_THAT(fields.Values("first_touch.source"), IsEmpty());
  EXPECT_THAT(fields.Values("do_not_contact"), ElementsAre("false"));
}

TEST(LeadFieldsTest, SourceFallsBackToTheFirstRecordedSource) {
  events::v1::LeadProfile profile;
  profile.add_sources("referral");
  profile.add_sources("ads");
  EXPECT_THAT(LeadFields(profile).Values("source"), ElementsAre("referral"));
  profile.mutable_first_touch()->set_source("event");
  EXPECT_THAT(LeadFields(profile).Values("source"), ElementsAre("event"));
}

TEST(LeadFieldsTest, TheLatestConsentRecordPerChannelWins) {
  const auto profile = ParseText<events::v1::LeadProfile>(R"pb(
    consents {
      channel: CHANNEL_EMAIL
      granted: true
      at { seconds: 200 }
    }
    consents {
      channel: CHANNEL_EMAIL
      granted: false
      at { seconds: 100 }
    }
    consents {
      channel: CHANNEL_SMS
      granted: false
      at { seconds: 100 }
    }
    consents {
      channel: CHANNEL_SMS
      granted: true
      at { seconds: 300 }
    }
  )pb");
  EXPECT_THAT(LeadFields(profile).Values("consents"), ElementsAre("email", "sms"));
  ASSERT_NE(LatestConsent(profile, events::v1::CHANNEL_EMAIL), nullptr);
  EXPECT_TRUE(LatestConsent(profile, events::v1::CHANNEL_EMAIL)->granted());
  EXPECT_EQ(LatestConsent(profile, events::v1::CHANNEL_PHONE), nullptr);
}

TEST(EnumValueNameTest, StripsThePrefixOfTheZeroValue) {
  EXPECT_EQ(EnumValueName(events::v1::SENIORITY_EXECUTIVE), "executive");
  EXPECT_EQ(EnumValueName(events::v1::SENIORITY_INDIVIDUAL_CONTRIBUTOR), "individual_contributor");
  EXPECT_EQ(EnumValueName(events::v1::CATEGORY_SALES_READY), "sales_ready");
  EXPECT_EQ(EnumValueName(events::v1::INTEREST_NOT_NOW), "not_now");
  EXPECT_EQ(EnumValueName(events::v1::STAGE_LOST), "lost");
  EXPECT_EQ(EnumValueName(events::v1::CHANNEL_NEWSLETTER), "newsletter");
}

TEST(FormatNumberTest, UsesTheShortestRoundTripForm) {
  EXPECT_EQ(FormatNumber(12), "12");
  EXPECT_EQ(FormatNumber(0.1), "0.1");
  EXPECT_EQ(FormatNumber(-12.5), "-12.5");
  EXPECT_EQ(FormatNumber(1234567), "1234567");
}

TEST(CompiledConditionsTest, AllConditionsMustHoldAndTheEmptyListAlwaysHolds) {
  const events::v1::LeadProfile profile = ExampleProfile();
  const LeadFields fields(profile);
  const auto both = CompiledConditions::Compile(
      ParseConditions({R"pb(field: "country" equals: "GB")pb", R"pb(field: "interests"
                                                                    equals: "shoes")pb"}),
      "r.when");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_TRUE(both->Evaluate(fields));
  const auto one_fails = CompiledConditions::Compile(
      ParseConditions({R"pb(field: "country" equals: "GB")pb", R"pb(field: "interests"
                                                                    equals: "hats")pb"}),
      "r.when");
  ASSERT_TRUE(one_fails.ok());
  EXPECT_FALSE(one_fails->Evaluate(fields));
  EXPECT_TRUE(CompiledConditions().Evaluate(fields));
  EXPECT_EQ(CompiledConditions().Describe(), "always");
  EXPECT_EQ(both->Describe(), "country = GB and interests contains shoes");
}

struct DescribeCase {
  std::string condition;
  std::string expected;
};

TEST(CompiledConditionTest, DescribeReadsAsASentenceFragment) {
  const std::vector<DescribeCase> cases = {
      {R"pb(field: "country"
            in { values: [ "GB", "UK" ] })pb",
       "country in [GB, UK]"},
      {R"pb(field: "country"
            in { values: [ "GB" ] }
            negate: true)pb",
       "country not in [GB]"},
      {R"pb(field: "country" equals: "GB")pb", "country = GB"},
      {R"pb(field: "country" equals: "GB" negate: true)pb", "country != GB"},
      {R"pb(field: "interests" equals: "shoes")pb", "interests contains shoes"},
      {R"pb(field: "interests" equals: "shoes" negate: true)pb",
       "interests does not contain shoes"},
      {R"pb(field: "interests"
            in { values: [ "shoes", "boots" ] })pb",
       "interests contains any of [shoes, boots]"},
      {R"pb(field: "company_size"
            range { min: 50 max: 1000 })pb",
       "50 <= company_size < 1000"},
      {R"pb(field: "company_size"
            range { min: 50 })pb",
       "company_size >= 50"},
      {R"pb(field: "score"
            range { max: 40.5 })pb",
       "score < 40.5"},
      {R"pb(field: "company_size"
            range { min: 50 }
            negate: true)pb",
       "not (company_size >= 50)"},
      {R"pb(field: "job_title" matches: "(?i).*vp.*")pb", "job_title matches /(?i).*vp.*/"},
      {R"pb(field: "phone" missing: true)pb", "phone is missing"},
      {R"pb(field: "phone" missing: false)pb", "phone is present"},
      {R"pb(field: "phone" missing: true negate: true)pb", "phone is present"},
  };
  for (const DescribeCase& c : cases) {
    const auto condition = CompiledCondition::Compile(ParseText<Condition>(c.condition), "t");
    ASSERT_TRUE(condition.ok()) << c.condition;
    EXPECT_EQ(condition->Describe(), c.expected);
  }
}

struct InvalidCase {
  std::string name;
  std::vector<std::string> conditions;
  std::string expected_message;
};

TEST(CompiledConditionsTest, InvalidDefinitionsAreRejectedWithThePathAndRule) {
  const std::vector<InvalidCase> cases = {
      {"empty field",
       {R"pb(field: "country" equals: "GB")pb", R"pb(equals: "x")pb"},
       "routing.rules[2].when[1].field: empty field name (rule 'uk')"},
      {"no test",
       {R"pb(field: "country")pb"},
       "routing.rules[2].when[0].test: condition on 'country' has no test"},
      {"bad regex",
       {R"pb(field: "job_title" matches: "(unclosed")pb"},
       "routing.rules[2].when[0].matches: invalid regular expression '(unclosed'"},
      {"empty in",
       {R"pb(field: "country"
             in {})pb"},
       "routing.rules[2].when[0].in: empty value list"},
      {"empty range",
       {R"pb(field: "company_size"
             range { min: 10 max: 10 })pb"},
       "routing.rules[2].when[0].range: empty range: min 10 must be below max 10"},
  };
  for (const InvalidCase& c : cases) {
    const auto compiled =
        CompiledConditions::Compile(ParseConditions(c.conditions), "routing.rules[2].when", "uk");
    ASSERT_FALSE(compiled.ok()) << c.name;
    EXPECT_EQ(compiled.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(compiled.status().message(), HasSubstr(c.expected_message)) << c.name;
    EXPECT_THAT(compiled.status().message(), HasSubstr("(rule 'uk')")) << c.name;
  }
}

struct ValidateCase {
  std::string name;
  std::string condition;
  uint32_t groups;
  std::string expected_message;  // empty: valid
};

TEST(ValidateLeadFieldsTest, FieldNamesTypesAndValuesAreChecked) {
  const uint32_t routing = kProfileFields | kScoreFields;
  const std::vector<ValidateCase> cases = {
      {"misspelt field", R"pb(field: "contry" equals: "GB")pb", routing,
       "routing.rules[2].when[0].field: unknown field 'contry'"},
      {"profile field", R"pb(field: "country" equals: "GB")pb", routing, ""},
      {"nested field", R"pb(field: "last_touch.utm_source" equals: "x")pb", routing, ""},
      {"a message is not a value", R"pb(field: "first_touch" missing: true)pb", routing,
       "unknown field 'first_touch'"},
      {"custom attribute", R"pb(field: "custom.plan"
                                range { min: 1 })pb",
       routing, ""},
      {"custom needs a key", R"pb(field: "custom." equals: "x")pb", routing,
       "unknown field 'custom.'"},
      {"score field where there is no score", R"pb(field: "score"
                                                   range { min: 1 })pb",
       kProfileFields | kActivityFields,
       "routing.rules[2].when[0].field: field 'score' is a score field, which these rules cannot "
       "see"},
      {"activity field where there are no aggregates",
       R"pb(field: "page.pricing.7d" equals: "1")pb", routing,
       "field 'page.pricing.7d' is an activity field"},
      {"activity field with a valid window", R"pb(field: "activity.demo_request.90d"
                                                  range {})pb",
       kAllFields, ""},
      {"activity field with an invalid window", R"pb(field: "activity.demo_request.2d"
                                                     range {})pb",
       kAllFields, "unknown field 'activity.demo_request.2d'"},
      {"range on text", R"pb(field: "country"
                             range { min: 1 })pb",
       routing, "routing.rules[2].when[0].range: field 'country' is not numeric"},
      {"misspelt enum value", R"pb(field: "seniority" equals: "execuitve")pb", routing,
       "routing.rules[2].when[0].equals: 'execuitve' is not a value of 'seniority' (one of "
       "executive, senior, manager, individual_contributor, student)"},
      {"enum value in a list", R"pb(field: "category"
                                    in { values: [ "warm", "hot" ] })pb",
       routing, "routing.rules[2].when[0].in.values[1]: 'hot' is not a value of 'category'"},
      {"enum value in any case", R"pb(field: "category" equals: "SALES_READY")pb", routing, ""},
      {"bool value", R"pb(field: "do_not_contact" equals: "yes")pb", routing,
       "'yes' is not a value of 'do_not_contact' (true or false)"},
  };
  for (const ValidateCase& c : cases) {
    const absl::Status status =
        ValidateLeadFields(ParseConditions({c.condition}), "routing.rules[2].when", c.groups);
    if (c.expected_message.empty()) {
      EXPECT_TRUE(status.ok()) << c.name << ": " << status;
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.name;
      EXPECT_THAT(status.message(), HasSubstr(c.expected_message)) << c.name;
    }
  }
}

TEST(CompileLeadConditionsTest, ReportsStructureBeforeUnknownFieldsAndNamesTheRule) {
  const auto no_test = CompileLeadConditions(ParseConditions({R"pb(field: "contry")pb"}),
                                             "nurture.tracks[0].enroll_when", kAllFields, "cold");
  ASSERT_FALSE(no_test.ok());
  EXPECT_THAT(no_test.status().message(), HasSubstr("has no test"));
  const auto unknown =
      CompileLeadConditions(ParseConditions({R"pb(field: "contry" equals: "GB")pb"}),
                            "nurture.tracks[0].enroll_when", kAllFields, "cold");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "nurture.tracks[0].enroll_when[0].field: unknown field 'contry' (rule 'cold')");
}

TEST(TimeUtilTest, ClockTimesParseStrictly) {
  EXPECT_EQ(ParseClockMinutes("09:30"), 570);
  EXPECT_EQ(ParseClockMinutes("00:00"), 0);
  EXPECT_EQ(ParseClockMinutes("23:59"), 1439);
  EXPECT_EQ(ParseClockMinutes("24:00"), std::nullopt);
  EXPECT_EQ(ParseClockMinutes("24:00", true), 1440);
  EXPECT_EQ(ParseClockMinutes("9:30"), std::nullopt);
  EXPECT_EQ(ParseClockMinutes("12:60"), std::nullopt);
  EXPECT_EQ(ParseClockMinutes("25:00", true), std::nullopt);
  EXPECT_EQ(ParseClockMinutes("ab:cd"), std::nullopt);
}

TEST(TimeUtilTest, OnlyRealIanaZonesLoad) {
  EXPECT_TRUE(LoadIanaTimeZone("Europe/London").ok());
  EXPECT_TRUE(LoadIanaTimeZone("America/New_York").ok());
  EXPECT_TRUE(LoadIanaTimeZone("UTC").ok());
  EXPECT_FALSE(LoadIanaTimeZone("").ok());
  EXPECT_FALSE(LoadIanaTimeZone("Mars/Olympus_Mons").ok());
  EXPECT_FALSE(LoadIanaTimeZone("localtime").ok());
  EXPECT_FALSE(LoadIanaTimeZone("../../etc/passwd").ok());
  EXPECT_FALSE(LoadIanaTimeZone("Europe//London").ok());
  EXPECT_EQ(TimeZoneOr("nowhere", absl::UTCTimeZone()).name(), "UTC");
}

TEST(TimeUtilTest, TimestampsRoundTrip) {
  const absl::Time t = absl::FromUnixSeconds(1717200000) + absl::Milliseconds(250);
  EXPECT_EQ(ToTime(ToTimestamp(t)), t);
  const absl::Time before_epoch = absl::FromUnixSeconds(-10) + absl::Milliseconds(500);
  EXPECT_EQ(ToTime(ToTimestamp(before_epoch)), before_epoch);
  EXPECT_EQ(ToTimestamp(absl::InfiniteFuture()).seconds(), 253402300799);
}

TEST(TimeUtilTest, WeekdaysAreIsoNumbered) {
  EXPECT_EQ(IsoWeekday(absl::CivilDay(2024, 6, 3)), 1);  // a Monday
  EXPECT_EQ(IsoWeekday(absl::CivilDay(2024, 6, 9)), 7);  // a Sunday
}

}  // namespace
}  // namespace leadflow::rules
