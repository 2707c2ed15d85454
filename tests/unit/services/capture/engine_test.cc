// Tests of the capture engine (services/capture/engine.h): validation, normalisation, matching,
// merging. Plain values, explicit times, no I/O.

#include "services/capture/engine.h"

#include <google/protobuf/util/message_differencer.h>
#include <phonenumbers/phonenumberutil.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/rules/time_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/capture/engine_text.h"

namespace leadflow::capture {
namespace {

using events::v1::Attribution;
using events::v1::Consent;
using events::v1::LeadProfile;
using events::v1::LeadSubmission;
using google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// ---- Fixtures -----------------------------------------------------------------------------

absl::Time At(const std::string& rfc3339) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &error)) {
    ADD_FAILURE() << "bad time " << rfc3339 << ": " << error;
  }
  return t;
}

const absl::Time kT0 = At("2024-05-01T09:00:00Z");
const absl::Time kT1 = At("2024-05-02T09:00:00Z");
const absl::Time kT2 = At("2024-05-03T09:00:00Z");
const absl::Time kT3 = At("2024-05-04T09:00:00Z");

config::v1::CaptureConfig Config() {
  config::v1::CaptureConfig config;
  for (const char* source : {"web_form", "Ads", "event", "referral", "phone", "import"}) {
    config.add_known_sources(source);
  }
  config.set_default_phone_region("US");
  return config;
}

// A submission that passes validation.
LeadSubmission ValidSubmission() {
  LeadSubmission s;
  s.set_source("web_form");
  s.set_email("jane.doe@acme.com");
  s.set_first_name("jane");
  s.set_last_name("doe");
  s.set_company("Acme Inc.");
  return s;
}

NormalizedSubmission Normalized(const LeadSubmission& s, absl::Time received_at = kT3) {
  absl::StatusOr<NormalizedSubmission> n = Normalizer(Config()).Normalize(s, received_at);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? *n : NormalizedSubmission();
}

// A normalised submission submitted at `at`.
NormalizedSubmission SubmittedAt(LeadSubmission s, absl::Time at) {
  *s.mutable_submitted_at() = rules::ToTimestamp(at);
  return Normalized(s, at);
}

bool ProtoEquals(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return MessageDifferencer::Equals(a, b);
}

Consent MakeConsent(events::v1::Channel channel, bool granted, absl::Time at,
                    const std::string& source = "") {
  Consent c;
  c.set_channel(channel);
  c.set_granted(granted);
  *c.mutable_at() = rules::ToTimestamp(at);
  c.set_source(source);
  return c;
}

// ---- Violations helpers -------------------------------------------------------------------

TEST(ViolationsTest, RoundTripThroughTheStatusPayload) {
  google::rpc::BadRequest request;
  auto* v = request.add_field_violations();
  v->set_field("email");
  v->set_description("is bad");
  const absl::Status status = InvalidArgumentWithViolations("invalid", request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(status.GetPayload(kBadRequestTypeUrl).has_value());
  EXPECT_TRUE(ProtoEquals(ViolationsOf(status), request));
}

TEST(ViolationsTest, StatusWithoutPayloadHasNoViolations) {
  EXPECT_EQ(ViolationsOf(absl::OkStatus()).field_violations_size(), 0);
  EXPECT_EQ(ViolationsOf(absl::InvalidArgumentError("x")).field_violations_size(), 0);
}

// ---- Validation ---------------------------------------------------------------------------

struct ViolationCase {
  std::string name;
  std::function<void(LeadSubmission&)> mutate;
  std::string field;
  std::string description;
};

class ValidationTest : public ::testing::TestWithParam<ViolationCase> {};

TEST_P(ValidationTest, RejectsWithTheFieldAndReason) {
  LeadSubmission s = ValidSubmission();
  GetParam().mutate(s);
  const absl::StatusOr<NormalizedSubmission> result = Normalizer(Config()).Normalize(s, kT3);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  const google::rpc::BadRequest violations = ViolationsOf(result.status());
  ASSERT_EQ(violations.field_violations_size(), 1) << result.status();
  EXPECT_EQ(violations.field_violations(0).field(), GetParam().field);
  EXPECT_THAT(violations.field_violations(0).description(), HasSubstr(GetParam().description));
  // The summary names the field too, for logs and the DLQ.
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(GetParam().field));
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ValidationTest,
    ::testing::Values(
        ViolationCase{"NeitherEmailNorPhone", [](LeadSubmission& s) { s.clear_email(); }, "email",
                      "at least one of email and phone is required"},
        ViolationCase{"BlankEmailAndPhone",
                      [](LeadSubmission& s) {
                        s.set_email("  ");
                        s.set_phone("\t");
                      },
                      "email", "at least one of email and phone is required"},
        ViolationCase{"EmailWithoutAt", [](LeadSubmission& s) { s.set_email("jane.acme.com"); },
                      "email", "exactly one '@'"},
        ViolationCase{"EmailWithSpace", [](LeadSubmission& s) { s.set_email("jane doe@acme.com"); },
                      "email", "white space"},
        ViolationCase{"EmailWithoutDotInDomain",
                      [](LeadSubmission& s) { s.set_email("jane@acme"); }, "email",
                      "domain must contain a '.'"},
        ViolationCase{"EmailTooLong",
                      [](LeadSubmission& s) {
                        s.set_email(absl::StrCat("a@", std::string(60, 'b'), ".",
                                                 std::string(60, 'c'), ".", std::string(60, 'd'),
                                                 ".", std::string(70, 'e'), ".com"));
                      },
                      "email", "at most 254"},
        ViolationCase{"LocalPartTooLong",
                      [](LeadSubmission& s) { s.set_email(std::string(65, 'a') + "@acme.com"); },
                      "email", "local part must be at most 64"},
        ViolationCase{"PhoneTooShort", [](LeadSubmission& s) { s.set_phone("12"); }, "phone",
                      "too short"},
        ViolationCase{"PhoneNotANumber", [](LeadSubmission& s) { s.set_phone("call me"); }, "phone",
                      "is not a phone number"},
        ViolationCase{"PhoneNotValid", [](LeadSubmission& s) { s.set_phone("+1 555 555 5555"); },
                      "phone", "is not a valid number for +1 (US)"},
        ViolationCase{"PhoneWrongLengthForCountry",
                      [](LeadSubmission& s) {
                        s.set_phone("030 12");
                        s.set_country("DE");
                      },
                      "phone", "+49 (DE)"},
        ViolationCase{"UnknownCountry", [](LeadSubmission& s) { s.set_country("Atlantis"); },
                      "country", "is not a known country: \"Atlantis\""},
        ViolationCase{"FirstNameTooLong",
                      [](LeadSubmission& s) { s.set_first_name(std::string(101, 'a')); },
                      "first_name", "at most 100 characters (has 101)"},
        ViolationCase{"LastNameTooLongInCharacters",
                      [](LeadSubmission& s) {
                        std::string name;
                        for (int i = 0; i < 101; ++i) name += "ü";
                        s.set_last_name(name);
                      },
                      "last_name", "at most 100 characters (has 101)"},
        ViolationCase{"CompanyTooLong",
                      [](LeadSubmission& s) { s.set_company(std::string(201, 'c')); }, "company",
                      "at most 200 characters"},
        ViolationCase{"JobTitleTooLong",
                      [](LeadSubmission& s) { s.set_job_title(std::string(201, 't')); },
                      "job_title", "at most 200 characters"},
        ViolationCase{
            "CustomValueTooLong",
            [](LeadSubmission& s) { (*s.mutable_custom())["notes"] = std::string(1001, 'n'); },
            "custom[\"notes\"]", "at most 1000 characters"},
        ViolationCase{"TooManyCustomKeys",
                      [](LeadSubmission& s) {
                        for (int i = 0; i < 51; ++i)
                          (*s.mutable_custom())[absl::StrCat("k", i)] = "v";
                      },
                      "custom", "at most 50 keys (has 51)"},
        ViolationCase{"EmptyCustomKey",
                      [](LeadSubmission& s) { (*s.mutable_custom())["  "] = "v"; },
                      "custom[\"  \"]", "key must not be empty"},
        ViolationCase{"TooManyInterests",
                      [](LeadSubmission& s) {
                        for (int i = 0; i < 51; ++i) s.add_interests(absl::StrCat("topic", i));
                      },
                      "interests", "at most 50 entries (has 51)"},
        ViolationCase{"InvalidUtf8InCity", [](LeadSubmission& s) { s.set_city("Paris\xFF"); },
                      "city", "valid UTF-8"},
        ViolationCase{"InvalidUtf8InCustomValue",
                      [](LeadSubmission& s) { (*s.mutable_custom())["k"] = "\xC3"; },
                      "custom[\"k\"]", "valid UTF-8"},
        ViolationCase{"InvalidUtf8InCustomKey",
                      [](LeadSubmission& s) { (*s.mutable_custom())["k\xFF"] = "v"; },
                      "custom[\"k\\xff\"]", "key must be valid UTF-8"},
        ViolationCase{"InvalidUtf8InInterest",
                      [](LeadSubmission& s) {
                        s.add_interests("shoes");
                        s.add_interests("\xED\xA0\x80");
                      },
                      "interests[1]", "valid UTF-8"},
        ViolationCase{"UnknownSource", [](LeadSubmission& s) { s.set_source("carrier_pigeon"); },
                      "source", "is unknown; known sources: web_form, ads, event"},
        ViolationCase{"MissingSource", [](LeadSubmission& s) { s.clear_source(); }, "source",
                      "is required"},
        ViolationCase{"ConsentWithoutChannel",
                      [](LeadSubmission& s) { s.add_consents()->set_granted(true); },
                      "consents[0].channel", "is required"},
        ViolationCase{"ConsentWithUnknownChannel",
                      [](LeadSubmission& s) {
                        s.add_consents()->set_channel(events::v1::CHANNEL_EMAIL);
                        s.add_consents()->set_channel(static_cast<events::v1::Channel>(99));
                      },
                      "consents[1].channel", "is not a known channel (99)"},
        ViolationCase{"NegativeCompanySize", [](LeadSubmission& s) { s.set_company_size(-1); },
                      "company_size", "must not be negative"},
        ViolationCase{"MalformedLanguage", [](LeadSubmission& s) { s.set_language("english"); },
                      "language", "BCP-47"},
        ViolationCase{"SubmittedAtOutOfRange",
                      [](LeadSubmission& s) { s.mutable_submitted_at()->set_nanos(2'000'000'000); },
                      "submitted_at", "not a valid timestamp"}),
    [](const ::testing::TestParamInfo<ViolationCase>& info) { return info.param.name; });

TEST(ValidationTest, CollectsEveryViolationInFieldOrder) {
  LeadSubmission s = ValidSubmission();
  s.set_source("fax");
  s.set_email("nope");
  s.set_phone("call me");
  s.set_country("Atlantis");
  s.add_consents();
  const absl::StatusOr<NormalizedSubmission> result = Normalizer(Config()).Normalize(s, kT3);
  ASSERT_FALSE(result.ok());
  std::vector<std::string> fields;
  const google::rpc::BadRequest violations = ViolationsOf(result.status());
  for (const auto& v : violations.field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ElementsAre("source", "email", "phone", "country", "consents[0].channel"));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("invalid lead submission"));
}

TEST(ValidationTest, AnySourceIsAcceptedWhenNoneAreConfigured) {
  config::v1::CaptureConfig config = Config();
  config.clear_known_sources();
  LeadSubmission s = ValidSubmission();
  s.set_source("Carrier_Pigeon");
  absl::StatusOr<NormalizedSubmission> n = Normalizer(config).Normalize(s, kT3);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->submission.source(), "carrier_pigeon");
}

TEST(ValidationTest, KnownSourcesAreCaseInsensitive) {
  LeadSubmission s = ValidSubmission();
  s.set_source(" ADS ");
  EXPECT_EQ(Normalized(s).submission.source(), "ads");
}

TEST(ValidationTest, NationalPhoneNeedsARegion) {
  config::v1::CaptureConfig config = Config();
  config.clear_default_phone_region();
  LeadSubmission s = ValidSubmission();
  s.set_phone("650 253 0000");
  const absl::StatusOr<NormalizedSubmission> result = Normalizer(config).Normalize(s, kT3);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(ViolationsOf(result.status()).field_violations(0).description(),
              HasSubstr("international prefix"));
  // With a country it needs no default region.
  s.set_country("US");
  EXPECT_TRUE(Normalizer(config).Normalize(s, kT3).ok());
}

TEST(ValidationTest, PhoneAloneIsEnough) {
  LeadSubmission s = ValidSubmission();
  s.clear_email();
  s.set_phone("+1 650 253 0000");
  EXPECT_EQ(Normalized(s).submission.phone(), "+16502530000");
}

TEST(ValidationTest, PhoneValidityIsLibphonenumbersForEveryRegionsExampleNumbersAndNearMisses) {
  // The normaliser checks a number against its calling code's main region first and falls back
  // to IsValidNumber: it must accept exactly what IsValidNumber accepts, in every region
  // (including those sharing a calling code: +1's, +44's, +7's) and for numbers just off.
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  std::set<std::string> regions;
  util.GetSupportedRegions(&regions);
  const Normalizer normalizer(Config());
  int checked = 0;
  int valid = 0;
  for (const std::string& region : regions) {
    for (PhoneNumberUtil::PhoneNumberType type :
         {PhoneNumberUtil::FIXED_LINE, PhoneNumberUtil::MOBILE, PhoneNumberUtil::TOLL_FREE,
          PhoneNumberUtil::PREMIUM_RATE, PhoneNumberUtil::SHARED_COST, PhoneNumberUtil::VOIP,
          PhoneNumberUtil::PERSONAL_NUMBER, PhoneNumberUtil::PAGER, PhoneNumberUtil::UAN,
          PhoneNumberUtil::VOICEMAIL}) {
      PhoneNumber example;
      if (!util.GetExampleNumberForType(region, type, &example)) continue;
      std::string e164;
      util.Format(example, PhoneNumberUtil::E164, &e164);
      const std::string shorter = e164.substr(0, e164.size() - 1);
      for (const std::string& candidate :
           {e164, e164 + "1", shorter, shorter + (e164.back() == '9' ? "0" : "9")}) {
        PhoneNumber parsed;
        const bool expected =
            util.Parse(candidate, "ZZ", &parsed) == PhoneNumberUtil::NO_PARSING_ERROR &&
            util.IsPossibleNumberWithReason(parsed) == PhoneNumberUtil::IS_POSSIBLE &&
            util.IsValidNumber(parsed);
        const absl::StatusOr<std::string> got = normalizer.NormalizePhone(candidate, "");
        EXPECT_EQ(got.ok(), expected) << candidate << " (" << region << ") " << got.status();
        if (expected && got.ok()) {
          std::string want;
          util.Format(parsed, PhoneNumberUtil::E164, &want);
          EXPECT_EQ(*got, want) << candidate;
        }
        ++checked;
        valid += expected ? 1 : 0;
      }
    }
  }
  EXPECT_GT(checked, 2000);
  EXPECT_GT(valid, 800);
}

// ---- Normalisation ------------------------------------------------------------------------

struct PhoneCase {
  std::string phone;
  std::string country;
  std::string want;
};

class PhoneNormalizationTest : public ::testing::TestWithParam<PhoneCase> {};

TEST_P(PhoneNormalizationTest, BecomesE164) {
  LeadSubmission s = ValidSubmission();
  s.set_phone(GetParam().phone);
  s.set_country(GetParam().country);
  const NormalizedSubmission n = Normalized(s);
  EXPECT_EQ(n.submission.phone(), GetParam().want);
  EXPECT_EQ(n.phone_e164, GetParam().want);
  // Look-ups normalise the same way.
  absl::StatusOr<std::string> direct =
      Normalizer(Config()).NormalizePhone(GetParam().phone, GetParam().country);
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(*direct, GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Phones, PhoneNormalizationTest,
    ::testing::Values(
        // Default region (US) when the submission has no country.
        PhoneCase{"(650) 253-0000", "", "+16502530000"},
        PhoneCase{"650.253.0000", "", "+16502530000"},
        PhoneCase{"+1 650-253-0000", "", "+16502530000"},
        PhoneCase{"1-650-253-0000", "", "+16502530000"},
        PhoneCase{"+1 (650) 253-0000 ext. 123", "", "+16502530000"},
        // The submission's country, by code or name.
        PhoneCase{"020 7031 3000", "GB", "+442070313000"},
        PhoneCase{"020 7031 3000", "United Kingdom", "+442070313000"},
        PhoneCase{"030 901820", "Deutschland", "+4930901820"},
        PhoneCase{"01 42 68 53 00", "FRA", "+33142685300"},
        PhoneCase{"98765 43210", "India", "+919876543210"},
        PhoneCase{"(02) 9374 4000", "Australia", "+61293744000"},
        PhoneCase{"044 668 18 00", "CH", "+41446681800"},
        // An explicit country code wins over the country; an IDD prefix is understood.
        PhoneCase{"+44 20 7031 3000", "DE", "+442070313000"},
        PhoneCase{"0044 20 7031 3000", "Germany", "+442070313000"},
        PhoneCase{"011 44 20 7031 3000", "", "+442070313000"},
        // A country that is not a phone region falls back to the default region.
        PhoneCase{"650 253 0000", "Antarctica", "+16502530000"}));

TEST(NormalizeTest, TrimsAndNormalisesEveryField) {
  LeadSubmission s;
  s.set_request_id(" req-1 ");
  s.set_source(" Web_Form ");
  s.set_email("  Jane.Doe@ACME.com ");
  s.set_phone(" (650) 253-0000 ");
  s.set_first_name("  jANE  ");
  s.set_last_name(" o'neil-SMITH ");
  s.set_company("  Acme   Widgets,  Inc. ");
  s.set_job_title("  VP   Marketing ");
  s.set_company_size(250);
  s.set_industry(" Software  Development ");
  s.set_country(" united states ");
  s.set_region("  California ");
  s.set_city(" San   Francisco ");
  s.set_language("EN_us");
  s.set_time_zone(" America/Los_Angeles ");
  s.add_interests(" Shoes ");
  s.add_interests("shoes");
  s.add_interests("  ");
  s.add_interests("Running  Gear");
  (*s.mutable_custom())[" tier "] = " gold ";
  (*s.mutable_custom())["empty"] = "  ";
  s.mutable_attribution()->set_source(" Ads ");
  s.mutable_attribution()->set_utm_campaign(" Spring_Sale ");
  s.set_anonymous_id(" anon-1 ");
  s.set_external_id(" crm-9 ");

  const NormalizedSubmission n = Normalized(s, kT3);
  const LeadSubmission& out = n.submission;
  EXPECT_EQ(out.request_id(), "req-1");
  EXPECT_EQ(out.source(), "web_form");
  EXPECT_EQ(out.email(), "jane.doe@acme.com");
  EXPECT_EQ(out.phone(), "+16502530000");
  EXPECT_EQ(out.first_name(), "Jane");
  EXPECT_EQ(out.last_name(), "O'Neil-Smith");
  EXPECT_EQ(out.company(), "Acme Widgets, Inc.");
  EXPECT_EQ(out.job_title(), "VP   Marketing");  // kept as given, only trimmed
  EXPECT_EQ(out.company_size(), 250);
  EXPECT_EQ(out.industry(), "software development");
  EXPECT_EQ(out.country(), "US");
  EXPECT_EQ(out.region(), "California");
  EXPECT_EQ(out.city(), "San Francisco");
  EXPECT_EQ(out.language(), "en-US");
  EXPECT_EQ(out.time_zone(), "America/Los_Angeles");
  EXPECT_THAT(out.interests(), ElementsAre("shoes", "running gear"));
  EXPECT_THAT(out.custom(), UnorderedElementsAre(Pair("tier", "gold")));
  EXPECT_EQ(out.attribution().source(), "ads");
  EXPECT_EQ(out.attribution().utm_campaign(), "Spring_Sale");
  EXPECT_EQ(out.anonymous_id(), "anon-1");
  EXPECT_EQ(out.external_id(), "crm-9");
  EXPECT_EQ(rules::ToTime(out.submitted_at()), kT3);

  EXPECT_EQ(n.email_match_key, "jane.doe@acme.com");
  EXPECT_EQ(n.email_domain, "acme.com");
  EXPECT_EQ(n.phone_e164, "+16502530000");
  EXPECT_EQ(n.company_match_key, "acmewidgets");
  EXPECT_EQ(n.name_key, "jane oneilsmith");
  EXPECT_EQ(n.seniority, events::v1::SENIORITY_SENIOR);
  EXPECT_EQ(n.job_function, "marketing");
}

TEST(NormalizeTest, SubmittedAtDefaultsToAndIsClampedToReceiveTime) {
  LeadSubmission s = ValidSubmission();
  EXPECT_EQ(rules::ToTime(Normalized(s, kT2).submission.submitted_at()), kT2);
  *s.mutable_submitted_at() = rules::ToTimestamp(kT1);
  EXPECT_EQ(rules::ToTime(Normalized(s, kT2).submission.submitted_at()), kT1);
  *s.mutable_submitted_at() = rules::ToTimestamp(kT3);  // client clock ahead
  EXPECT_EQ(rules::ToTime(Normalized(s, kT2).submission.submitted_at()), kT2);
}

TEST(NormalizeTest, ConsentsDefaultToTheSubmissionsTimeAndSource) {
  LeadSubmission s = ValidSubmission();
  *s.mutable_submitted_at() = rules::ToTimestamp(kT1);
  s.add_consents()->set_channel(events::v1::CHANNEL_EMAIL);
  *s.add_consents() = MakeConsent(events::v1::CHANNEL_SMS, true, kT0, "call-recording");
  const LeadSubmission out = Normalized(s, kT2).submission;
  ASSERT_EQ(out.consents_size(), 2);
  EXPECT_EQ(rules::ToTime(out.consents(0).at()), kT1);
  EXPECT_EQ(out.consents(0).source(), "web_form");
  EXPECT_EQ(rules::ToTime(out.consents(1).at()), kT0);
  EXPECT_EQ(out.consents(1).source(), "call-recording");
}

TEST(NormalizeTest, EmailVerifiedNeedsAnEmail) {
  LeadSubmission s = ValidSubmission();
  s.set_email_verified(true);
  EXPECT_TRUE(Normalized(s).submission.email_verified());
  s.clear_email();
  s.set_phone("+16502530000");
  EXPECT_FALSE(Normalized(s).submission.email_verified());
}

TEST(NormalizeTest, GmailAddressesShareAMatchKey) {
  LeadSubmission a = ValidSubmission();
  a.set_email("Jane.Doe+news@googlemail.com");
  LeadSubmission b = ValidSubmission();
  b.set_email("janedoe@GMAIL.com");
  EXPECT_EQ(Normalized(a).email_match_key, "janedoe@gmail.com");
  EXPECT_EQ(Normalized(a).email_match_key, Normalized(b).email_match_key);
  EXPECT_EQ(Normalized(a).submission.email(), "jane.doe+news@googlemail.com");
}

TEST(NormalizeTest, IsDeterministic) {
  LeadSubmission s = ValidSubmission();
  for (int i = 0; i < 20; ++i) (*s.mutable_custom())[absl::StrCat("key", i)] = absl::StrCat(i);
  const NormalizedSubmission a = Normalized(s);
  const NormalizedSubmission b = Normalized(s);
  EXPECT_TRUE(ProtoEquals(a.submission, b.submission));
  EXPECT_EQ(a.email_match_key, b.email_match_key);
  EXPECT_EQ(a.company_match_key, b.company_match_key);
}

// ---- Jaro-Winkler -------------------------------------------------------------------------

struct SimilarityCase {
  std::string a;
  std::string b;
  double want;
};

class JaroWinklerTest : public ::testing::TestWithParam<SimilarityCase> {};

TEST_P(JaroWinklerTest, MatchesPublishedValues) {
  EXPECT_NEAR(JaroWinkler(GetParam().a, GetParam().b), GetParam().want, 0.0005);
  EXPECT_NEAR(JaroWinkler(GetParam().b, GetParam().a), GetParam().want, 0.0005);  // symmetric
}

INSTANTIATE_TEST_SUITE_P(Values, JaroWinklerTest,
                         ::testing::Values(SimilarityCase{"MARTHA", "MARHTA", 0.961},
                                           SimilarityCase{"DWAYNE", "DUANE", 0.840},
                                           SimilarityCase{"DIXON", "DICKSONX", 0.813},
                                           SimilarityCase{"JELLYFISH", "SMELLYFISH", 0.896},
                                           SimilarityCase{"same", "same", 1.0},
                                           SimilarityCase{"", "", 1.0},
                                           SimilarityCase{"abc", "", 0.0},
                                           SimilarityCase{"abc", "xyz", 0.0},
                                           // Code points, not bytes: one differing letter, not two.
                                           SimilarityCase{"müller", "muller", 0.9}));

// ---- Matching -----------------------------------------------------------------------------

LeadProfile Lead(const std::string& id, absl::Time created_at) {
  LeadProfile lead;
  lead.set_lead_id(id);
  *lead.mutable_created_at() = rules::ToTimestamp(created_at);
  return lead;
}

TEST(MatchTest, NoCandidatesMeansANewLead) {
  const MatchDecision decision = Match(Normalized(ValidSubmission()), {});
  EXPECT_FALSE(decision.match.has_value());
  EXPECT_THAT(decision.also_matched_lead_ids, IsEmpty());
}

TEST(MatchTest, EmailBeatsPhoneBeatsExternalId) {
  LeadSubmission s = ValidSubmission();
  s.set_phone("+16502530000");
  s.set_external_id("crm-1");
  const NormalizedSubmission n = Normalized(s);

  LeadProfile by_external = Lead("by-external", kT0);
  by_external.add_external_ids("crm-1");
  LeadProfile by_phone = Lead("by-phone", kT1);
  by_phone.set_phone("+16502530000");
  LeadProfile by_email = Lead("by-email", kT2);
  by_email.set_email("Jane.Doe@acme.com");

  MatchDecision decision = Match(n, {by_external, by_phone, by_email});
  ASSERT_TRUE(decision.match.has_value());
  EXPECT_EQ(decision.match->key(), "email");
  EXPECT_EQ(decision.match->matched_lead_id(), "by-email");
  EXPECT_EQ(decision.match->similarity(), 1.0);
  EXPECT_THAT(decision.also_matched_lead_ids, ElementsAre("by-phone", "by-external"));

  decision = Match(n, {by_external, by_phone});
  ASSERT_TRUE(decision.match.has_value());
  EXPECT_EQ(decision.match->key(), "phone");
  EXPECT_EQ(decision.match->matched_lead_id(), "by-phone");

  decision = Match(n, {by_external});
  ASSERT_TRUE(decision.match.has_value());
  EXPECT_EQ(decision.match->key(), "external_id");
  EXPECT_EQ(decision.match->matched_lead_id(), "by-external");
}

TEST(MatchTest, GmailSpellingsMatchExactly) {
  LeadSubmission s = ValidSubmission();
  s.set_email("jane.doe+crm@gmail.com");
  LeadProfile lead = Lead("lead-1", kT0);
  lead.set_email("janedoe@googlemail.com");
  const MatchDecision decision = Match(Normalized(s), {lead});
  ASSERT_TRUE(decision.match.has_value());
  EXPECT_EQ(decision.match->key(), "email");
}

TEST(MatchTest, TiesGoToTheOldestLeadWhateverTheCandidateOrder) {
  const NormalizedSubmission n = Normalized(ValidSubmission());
  LeadProfile newer = Lead("b-newer", kT2);
  newer.set_email("jane.doe@acme.com");
  LeadProfile older = Lead("c-older", kT1);
  older.set_email("jane.doe@acme.com");
  LeadProfile same_age = Lead("d-same-age", kT1);
  same_age.set_email("jane.doe@acme.com");
  for (const auto& candidates : std::vector<std::vector<LeadProfile>>{
           {newer, older, same_age}, {same_age, newer, older}, {older, same_age, newer}}) {
    const MatchDecision decision = Match(n, candidates);
    ASSERT_TRUE(decision.match.has_value());
    EXPECT_EQ(decision.match->matched_lead_id(), "c-older");
    EXPECT_THAT(decision.also_matched_lead_ids, ElementsAre("d-same-age", "b-newer"));
  }
}

TEST(MatchTest, CandidatesWithoutIdOrRepeatedAreIgnored) {
  const NormalizedSubmission n = Normalized(ValidSubmission());
  LeadProfile no_id;
  no_id.set_email("jane.doe@acme.com");
  LeadProfile lead = Lead("lead-1", kT0);
  lead.set_email("jane.doe@acme.com");
  const MatchDecision decision = Match(n, {no_id, lead, lead});
  ASSERT_TRUE(decision.match.has_value());
  EXPECT_EQ(decision.match->matched_lead_id(), "lead-1");
  EXPECT_THAT(decision.also_matched_lead_ids, IsEmpty());
}

TEST(MatchTest, AnonymousIdsNeverMatch) {
  LeadSubmission s = ValidSubmission();
  s.set_anonymous_id("cookie-1");
  LeadProfile lead = Lead("lead-1", kT0);
  lead.add_anonymous_ids("cookie-1");
  EXPECT_FALSE(Match(Normalized(s), {lead}).match.has_value());
}

struct FuzzyCase {
  std::string name;
  std::string first_name;
  std::string last_name;
  std::string company;
  std::string email;
  double threshold;
  bool matches;
};

class FuzzyMatchTest : public ::testing::TestWithParam<FuzzyCase> {};

// The submission is always Jon Smith, jon.smith@<email domain>, of the given company; the
// candidate is John Smith of Acme Inc. with john.smith@acme.com.
TEST_P(FuzzyMatchTest, NeedsSimilarNameAndSameCompanyOrDomain) {
  const FuzzyCase& c = GetParam();
  LeadSubmission s;
  s.set_source("web_form");
  s.set_first_name(c.first_name);
  s.set_last_name(c.last_name);
  s.set_company(c.company);
  s.set_email(c.email);
  LeadProfile lead = Lead("lead-1", kT0);
  lead.set_first_name("John");
  lead.set_last_name("Smith");
  lead.set_company("Acme Inc.");
  lead.set_email("john.smith@acme.com");
  const MatchDecision decision = Match(Normalized(s), {lead}, c.threshold);
  EXPECT_EQ(decision.match.has_value(), c.matches);
  if (decision.match.has_value()) {
    EXPECT_EQ(decision.match->key(), "fuzzy_name");
    EXPECT_EQ(decision.match->matched_lead_id(), "lead-1");
    EXPECT_GE(decision.match->similarity(), c.threshold);
    EXPECT_LT(decision.match->similarity(), 1.0 + 1e-9);
    // A fuzzy match is only ever looked for among leads sharing a block (CaptureStore).
    const std::vector<std::string> a = NameBlockCodes(s.first_name(), s.last_name());
    const std::vector<std::string> b = NameBlockCodes(lead.first_name(), lead.last_name());
    EXPECT_TRUE(std::any_of(a.begin(), a.end(), [&b](const std::string& code) {
      return std::find(b.begin(), b.end(), code) != b.end();
    }));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FuzzyMatchTest,
    ::testing::Values(
        FuzzyCase{"SimilarNameSameCompany", "Jon", "Smith", "ACME, Inc", "jon@gmail.com", 0.92,
                  true},
        FuzzyCase{"SameNameSameCompanyKeyDifferentSpelling", "john", "SMITH", "Acme Incorporated",
                  "js@gmail.com", 0.92, true},
        FuzzyCase{"SimilarNameSameEmployerDomain", "Jon", "Smith", "", "jsmith@acme.com", 0.92,
                  true},
        FuzzyCase{"SimilarNameSameFreeMailDomainIsNoEvidence", "Jon", "Smith", "",
                  "jon.smith@yahoo.com", 0.0, false},
        FuzzyCase{"SimilarNameOtherCompany", "Jon", "Smith", "Globex", "jon@gmail.com", 0.92,
                  false},
        FuzzyCase{"DifferentNameSameCompany", "Jane", "Smythe", "Acme", "jane@gmail.com", 0.92,
                  false},
        FuzzyCase{"BelowAStricterThreshold", "Jon", "Smith", "Acme", "jon@gmail.com", 0.99, false},
        FuzzyCase{"FirstNameAloneIsNotEnough", "John", "", "Acme", "john@gmail.com", 0.0, false}),
    [](const ::testing::TestParamInfo<FuzzyCase>& info) { return info.param.name; });

TEST(MatchTest, ASharedFreeMailDomainDoesNotBlockTogether) {
  LeadSubmission s;
  s.set_source("web_form");
  s.set_first_name("John");
  s.set_last_name("Smith");
  s.set_email("john.smith.1980@gmail.com");
  LeadProfile lead = Lead("lead-1", kT0);
  lead.set_first_name("John");
  lead.set_last_name("Smith");
  lead.set_email("jsmith@gmail.com");
  EXPECT_FALSE(Match(Normalized(s), {lead}, 0.0).match.has_value());
}

TEST(MatchTest, ExactKeysBeatAFuzzyMatch) {
  LeadSubmission s = ValidSubmission();  // Jane Doe, jane.doe@acme.com, Acme Inc.
  LeadProfile fuzzy = Lead("fuzzy", kT0);
  fuzzy.set_first_name("Jane");
  fuzzy.set_last_name("Doe");
  fuzzy.set_company("Acme");
  LeadProfile exact = Lead("exact", kT1);
  exact.set_email("jane.doe@acme.com");
  const MatchDecision decision = Match(Normalized(s), {fuzzy, exact});
  ASSERT_TRUE(decision.match.has_value());
  EXPECT_EQ(decision.match->matched_lead_id(), "exact");
}

TEST(MatchTest, TheMostSimilarFuzzyCandidateWins) {
  LeadSubmission s = ValidSubmission();
  s.set_email("jane@gmail.com");
  s.set_first_name("Jane");
  s.set_last_name("Doe");
  LeadProfile close = Lead("close", kT1);
  close.set_first_name("Jane");
  close.set_last_name("Doe");
  close.set_company("Acme");
  LeadProfile closer_but_newer = Lead("near", kT0);
  closer_but_newer.set_first_name("Janet");
  closer_but_newer.set_last_name("Doe");
  closer_but_newer.set_company("Acme");
  const MatchDecision decision = Match(Normalized(s), {closer_but_newer, close});
  ASSERT_TRUE(decision.match.has_value());
  EXPECT_EQ(decision.match->matched_lead_id(), "close");
  EXPECT_DOUBLE_EQ(decision.match->similarity(), 1.0);
}

// ---- Merge --------------------------------------------------------------------------------

// A lead created from `s` at `at`.
LeadProfile ExistingLead(const LeadSubmission& s, absl::Time at) {
  return NewLead(SubmittedAt(s, at), "lead-1", at);
}

TEST(NewLeadTest, CopiesTheSubmissionAndStartsTheHistory) {
  LeadSubmission s = ValidSubmission();
  s.set_phone("+16502530000");
  s.set_job_title("CEO");
  s.set_email_verified(true);
  s.add_interests("shoes");
  (*s.mutable_custom())["tier"] = "gold";
  *s.add_consents() = MakeConsent(events::v1::CHANNEL_SMS, true, kT0);
  *s.add_consents() = MakeConsent(events::v1::CHANNEL_EMAIL, true, kT0);
  s.mutable_attribution()->set_utm_campaign("spring");
  s.set_anonymous_id("anon-1");
  s.set_external_id("crm-1");
  const LeadProfile lead = NewLead(SubmittedAt(s, kT1), "lead-1", kT3);

  EXPECT_EQ(lead.lead_id(), "lead-1");
  EXPECT_EQ(lead.email(), "jane.doe@acme.com");
  EXPECT_TRUE(lead.email_verified());
  EXPECT_EQ(lead.phone(), "+16502530000");
  EXPECT_EQ(lead.first_name(), "Jane");
  EXPECT_EQ(lead.company(), "Acme Inc.");
  EXPECT_EQ(lead.seniority(), events::v1::SENIORITY_EXECUTIVE);
  EXPECT_EQ(lead.job_function(), "executive");
  EXPECT_THAT(lead.interests(), ElementsAre("shoes"));
  EXPECT_THAT(lead.custom(), UnorderedElementsAre(Pair("tier", "gold")));
  ASSERT_EQ(lead.consents_size(), 2);  // ordered by channel
  EXPECT_EQ(lead.consents(0).channel(), events::v1::CHANNEL_EMAIL);
  EXPECT_EQ(lead.consents(1).channel(), events::v1::CHANNEL_SMS);
  EXPECT_THAT(lead.sources(), ElementsAre("web_form"));
  EXPECT_EQ(lead.first_touch().source(), "web_form");
  EXPECT_EQ(lead.first_touch().utm_campaign(), "spring");
  EXPECT_EQ(rules::ToTime(lead.first_touch().at()), kT1);
  EXPECT_TRUE(ProtoEquals(lead.first_touch(), lead.last_touch()));
  EXPECT_THAT(lead.anonymous_ids(), ElementsAre("anon-1"));
  EXPECT_THAT(lead.external_ids(), ElementsAre("crm-1"));
  EXPECT_EQ(rules::ToTime(lead.created_at()), kT1);
  EXPECT_EQ(rules::ToTime(lead.updated_at()), kT1);
}

TEST(NewLeadTest, UsesNowWithoutASubmissionTime) {
  NormalizedSubmission n;
  n.submission.set_email("a@b.co");
  const LeadProfile lead = NewLead(n, "lead-1", kT2);
  EXPECT_EQ(rules::ToTime(lead.created_at()), kT2);
  EXPECT_EQ(rules::ToTime(lead.first_touch().at()), kT2);
}

TEST(NewEpisodeTest, CarriesThePersonOverAndStartsTheEpisodeAfresh) {
  LeadSubmission first = ValidSubmission();
  first.set_phone("+16502530000");
  first.add_interests("shoes");
  (*first.mutable_custom())["tier"] = "gold";
  *first.add_consents() = MakeConsent(events::v1::CHANNEL_EMAIL, true, kT0);
  first.set_external_id("crm-1");
  first.mutable_attribution()->set_utm_campaign("spring");
  LeadProfile converted = ExistingLead(first, kT0);
  *converted.mutable_converted_at() = rules::ToTimestamp(kT1);
  converted.set_contact_id(converted.lead_id());

  LeadSubmission back = ValidSubmission();
  back.set_source("referral");
  back.add_interests("bags");
  back.mutable_attribution()->set_utm_campaign("autumn");
  const MergeResult episode = NewEpisode(converted, SubmittedAt(back, kT2), "lead-2", kT3);
  const LeadProfile& lead = episode.lead;

  EXPECT_EQ(lead.lead_id(), "lead-2");
  EXPECT_EQ(lead.contact_id(), "lead-1");
  EXPECT_EQ(lead.episode(), 2);
  EXPECT_EQ(lead.previous_lead_id(), "lead-1");
  EXPECT_FALSE(lead.has_converted_at());
  // Who the person is carries over ...
  EXPECT_EQ(lead.email(), "jane.doe@acme.com");
  EXPECT_EQ(lead.phone(), "+16502530000");
  EXPECT_EQ(lead.first_name(), "Jane");
  EXPECT_THAT(lead.external_ids(), ElementsAre("crm-1"));
  ASSERT_EQ(lead.consents_size(), 1);
  // ... what the episode is about starts from the new submission.
  EXPECT_THAT(lead.interests(), ElementsAre("bags"));
  EXPECT_TRUE(lead.custom().empty());
  EXPECT_THAT(lead.sources(), ElementsAre("referral"));
  EXPECT_EQ(lead.first_touch().utm_campaign(), "autumn");
  EXPECT_EQ(rules::ToTime(lead.created_at()), kT2);
  EXPECT_THAT(episode.changed_fields,
              ::testing::IsSupersetOf({"lead_id", "email", "contact_id", "episode", "interests"}));

  // The next conversion and return: episode 3 of the same contact.
  LeadProfile second = lead;
  *second.mutable_converted_at() = rules::ToTimestamp(kT3);
  const MergeResult third = NewEpisode(second, SubmittedAt(back, kT3), "lead-3", kT3);
  EXPECT_EQ(third.lead.contact_id(), "lead-1");
  EXPECT_EQ(third.lead.episode(), 3);
  EXPECT_EQ(third.lead.previous_lead_id(), "lead-2");
}

TEST(MergeTest, NewerNonEmptyValuesWin) {
  LeadSubmission first = ValidSubmission();
  first.set_city("Berlin");
  first.set_company_size(10);
  const LeadProfile existing = ExistingLead(first, kT1);

  LeadSubmission second = ValidSubmission();
  second.set_company("Globex Corp");
  second.set_city("");  // empty never erases
  second.set_company_size(50);
  const MergeResult merged = Merge(existing, SubmittedAt(second, kT2), kT3);

  EXPECT_EQ(merged.lead.company(), "Globex Corp");
  EXPECT_EQ(merged.lead.city(), "Berlin");
  EXPECT_EQ(merged.lead.company_size(), 50);
  EXPECT_EQ(rules::ToTime(merged.lead.updated_at()), kT2);
  EXPECT_THAT(merged.changed_fields, ElementsAre("company", "company_size", "last_touch"));
}

TEST(MergeTest, AnOlderSubmissionOnlyFillsGaps) {
  LeadSubmission first = ValidSubmission();
  const LeadProfile existing = ExistingLead(first, kT2);

  LeadSubmission older = ValidSubmission();
  older.set_company("Globex");
  older.set_city("Paris");
  older.set_job_title("CEO");
  older.set_company_size(50);
  const MergeResult merged = Merge(existing, SubmittedAt(older, kT1), kT3);

  EXPECT_EQ(merged.lead.company(), "Acme Inc.");  // kept
  EXPECT_EQ(merged.lead.city(), "Paris");         // filled
  EXPECT_EQ(merged.lead.job_title(), "CEO");
  EXPECT_EQ(merged.lead.seniority(), events::v1::SENIORITY_EXECUTIVE);
  EXPECT_EQ(merged.lead.company_size(), 50);
  EXPECT_EQ(rules::ToTime(merged.lead.updated_at()), kT2);  // max
  // The older submission is the real first touch; the last touch stays.
  EXPECT_EQ(rules::ToTime(merged.lead.first_touch().at()), kT1);
  EXPECT_EQ(rules::ToTime(merged.lead.last_touch().at()), kT2);
  EXPECT_THAT(merged.changed_fields, ElementsAre("job_title", "seniority", "job_function",
                                                 "company_size", "city", "first_touch"));
}

TEST(MergeTest, ASubmissionAtTheSameInstantCountsAsNewer) {
  const LeadProfile existing = ExistingLead(ValidSubmission(), kT1);
  LeadSubmission same_time = ValidSubmission();
  same_time.set_company("Globex");
  EXPECT_EQ(Merge(existing, SubmittedAt(same_time, kT1), kT3).lead.company(), "Globex");
}

TEST(MergeTest, AnIdenticalResubmissionChangesNothing) {
  const LeadProfile existing = ExistingLead(ValidSubmission(), kT1);
  const MergeResult merged = Merge(existing, SubmittedAt(ValidSubmission(), kT1), kT3);
  EXPECT_THAT(merged.changed_fields, IsEmpty());
  EXPECT_TRUE(ProtoEquals(merged.lead, existing));
}

TEST(MergeTest, UpdatedAtIsNeverAChangedField) {
  const LeadProfile existing = ExistingLead(ValidSubmission(), kT1);
  LeadSubmission later = ValidSubmission();
  *later.mutable_attribution()->mutable_at() = existing.last_touch().at();
  const MergeResult merged = Merge(existing, SubmittedAt(later, kT2), kT3);
  EXPECT_EQ(rules::ToTime(merged.lead.updated_at()), kT2);
  EXPECT_THAT(merged.changed_fields, IsEmpty());
}

struct EmailMergeCase {
  std::string name;
  std::string existing_email;
  bool existing_verified;
  std::string submitted_email;
  bool submitted_verified;
  absl::Time submitted_at;
  std::string want_email;
  bool want_verified;
};

class EmailMergeTest : public ::testing::TestWithParam<EmailMergeCase> {};

TEST_P(EmailMergeTest, VerifiedAddressesAreProtected) {
  const EmailMergeCase& c = GetParam();
  LeadSubmission first = ValidSubmission();
  first.set_email(c.existing_email);
  first.set_email_verified(c.existing_verified);
  const LeadProfile existing = ExistingLead(first, kT1);
  LeadSubmission second = ValidSubmission();
  second.set_email(c.submitted_email);
  second.set_email_verified(c.submitted_verified);
  const MergeResult merged = Merge(existing, SubmittedAt(second, c.submitted_at), kT3);
  EXPECT_EQ(merged.lead.email(), c.want_email);
  EXPECT_EQ(merged.lead.email_verified(), c.want_verified);
  const bool email_changed = c.want_email != c.existing_email;
  EXPECT_EQ(std::count(merged.changed_fields.begin(), merged.changed_fields.end(), "email"),
            email_changed ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EmailMergeTest,
    ::testing::Values(
        EmailMergeCase{"VerifiedIsNotReplacedByUnverified", "jane@acme.com", true,
                       "jane@globex.com", false, kT2, "jane@acme.com", true},
        EmailMergeCase{"VerifiedIsReplacedByNewerVerified", "jane@acme.com", true,
                       "jane@globex.com", true, kT2, "jane@globex.com", true},
        EmailMergeCase{"UnverifiedIsReplacedByNewerUnverified", "jane@acme.com", false,
                       "jane@globex.com", false, kT2, "jane@globex.com", false},
        EmailMergeCase{"UnverifiedIsReplacedByNewerVerified", "jane@acme.com", false,
                       "jane@globex.com", true, kT2, "jane@globex.com", true},
        EmailMergeCase{"OlderDoesNotReplace", "jane@acme.com", false, "jane@globex.com", true, kT0,
                       "jane@acme.com", false},
        EmailMergeCase{"SameMailboxVerifiedMarksItVerifiedEvenWhenOlder", "jane@acme.com", false,
                       "JANE@acme.com", true, kT0, "jane@acme.com", true},
        EmailMergeCase{"SameGmailMailboxKeepsVerifiedSpelling", "jane.doe@gmail.com", true,
                       "janedoe@gmail.com", false, kT2, "jane.doe@gmail.com", true}),
    [](const ::testing::TestParamInfo<EmailMergeCase>& info) { return info.param.name; });

TEST(MergeTest, DoNotContactIsSticky) {
  LeadSubmission first = ValidSubmission();
  first.set_do_not_contact(true);
  const LeadProfile opted_out = ExistingLead(first, kT1);
  const MergeResult merged = Merge(opted_out, SubmittedAt(ValidSubmission(), kT2), kT3);
  EXPECT_TRUE(merged.lead.do_not_contact());
  EXPECT_THAT(merged.changed_fields, ::testing::Not(::testing::Contains("do_not_contact")));

  const LeadProfile contactable = ExistingLead(ValidSubmission(), kT1);
  LeadSubmission opt_out = ValidSubmission();
  opt_out.set_do_not_contact(true);
  const MergeResult now_opted_out = Merge(contactable, SubmittedAt(opt_out, kT0), kT3);
  EXPECT_TRUE(now_opted_out.lead.do_not_contact());  // even from an older submission
  EXPECT_THAT(now_opted_out.changed_fields, ::testing::Contains("do_not_contact"));
}

TEST(MergeTest, FirstTouchIsKeptAndLastTouchFollowsTheNewestSubmission) {
  LeadSubmission first = ValidSubmission();
  first.mutable_attribution()->set_utm_campaign("launch");
  const LeadProfile existing = ExistingLead(first, kT1);

  LeadSubmission second = ValidSubmission();
  second.set_source("ads");
  second.mutable_attribution()->set_utm_campaign("retargeting");
  second.mutable_attribution()->set_referrer("https://ads.example.com");
  const MergeResult merged = Merge(existing, SubmittedAt(second, kT2), kT3);

  EXPECT_TRUE(ProtoEquals(merged.lead.first_touch(), existing.first_touch()));
  EXPECT_EQ(merged.lead.last_touch().utm_campaign(), "retargeting");
  EXPECT_EQ(merged.lead.last_touch().source(), "ads");  // filled from the submission
  EXPECT_EQ(merged.lead.last_touch().referrer(), "https://ads.example.com");
  EXPECT_EQ(rules::ToTime(merged.lead.last_touch().at()), kT2);
  EXPECT_THAT(merged.changed_fields, ElementsAre("sources", "last_touch"));
}

TEST(MergeTest, ListsAccumulateUniqueInOrderOfFirstAppearance) {
  LeadSubmission first = ValidSubmission();
  first.add_interests("shoes");
  first.add_interests("bags");
  first.set_anonymous_id("anon-1");
  first.set_external_id("crm-1");
  const LeadProfile existing = ExistingLead(first, kT1);

  LeadSubmission second = ValidSubmission();
  second.set_source("event");
  second.add_interests("bags");
  second.add_interests("hats");
  second.set_anonymous_id("anon-2");
  second.set_external_id("crm-1");
  // Older, yet lists still accumulate: they are sets, not values to overwrite.
  const MergeResult merged = Merge(existing, SubmittedAt(second, kT0), kT3);

  EXPECT_THAT(merged.lead.interests(), ElementsAre("shoes", "bags", "hats"));
  EXPECT_THAT(merged.lead.sources(), ElementsAre("web_form", "event"));
  EXPECT_THAT(merged.lead.anonymous_ids(), ElementsAre("anon-1", "anon-2"));
  EXPECT_THAT(merged.lead.external_ids(), ElementsAre("crm-1"));
  EXPECT_THAT(merged.changed_fields,
              ElementsAre("interests", "sources", "first_touch", "anonymous_ids"));
}

TEST(MergeTest, ConsentsKeepTheLatestPerChannel) {
  LeadSubmission first = ValidSubmission();
  *first.add_consents() = MakeConsent(events::v1::CHANNEL_EMAIL, true, kT1, "form-a");
  *first.add_consents() = MakeConsent(events::v1::CHANNEL_SMS, true, kT1, "form-a");
  *first.add_consents() = MakeConsent(events::v1::CHANNEL_PHONE, true, kT1, "form-a");
  const LeadProfile existing = ExistingLead(first, kT1);

  LeadSubmission second = ValidSubmission();
  *second.add_consents() = MakeConsent(events::v1::CHANNEL_EMAIL, false, kT2, "unsubscribe");
  *second.add_consents() = MakeConsent(events::v1::CHANNEL_SMS, false, kT0, "old-import");
  *second.add_consents() = MakeConsent(events::v1::CHANNEL_PHONE, false, kT1, "call");
  *second.add_consents() = MakeConsent(events::v1::CHANNEL_NEWSLETTER, true, kT2, "form-b");
  const MergeResult merged = Merge(existing, SubmittedAt(second, kT2), kT3);

  ASSERT_EQ(merged.lead.consents_size(), 4);
  // email: the later withdrawal wins.
  EXPECT_EQ(merged.lead.consents(0).channel(), events::v1::CHANNEL_EMAIL);
  EXPECT_FALSE(merged.lead.consents(0).granted());
  EXPECT_EQ(merged.lead.consents(0).source(), "unsubscribe");
  // sms: the older withdrawal loses to the later grant.
  EXPECT_EQ(merged.lead.consents(1).channel(), events::v1::CHANNEL_SMS);
  EXPECT_TRUE(merged.lead.consents(1).granted());
  // phone: same instant, the withdrawal wins.
  EXPECT_EQ(merged.lead.consents(2).channel(), events::v1::CHANNEL_PHONE);
  EXPECT_FALSE(merged.lead.consents(2).granted());
  // newsletter: new channel.
  EXPECT_EQ(merged.lead.consents(3).channel(), events::v1::CHANNEL_NEWSLETTER);
  EXPECT_TRUE(merged.lead.consents(3).granted());
  EXPECT_THAT(merged.changed_fields, ElementsAre("consents", "last_touch"));
}

TEST(MergeTest, CustomAttributesMergeKeyByKey) {
  LeadSubmission first = ValidSubmission();
  (*first.mutable_custom())["a"] = "1";
  (*first.mutable_custom())["b"] = "2";
  const LeadProfile existing = ExistingLead(first, kT1);

  LeadSubmission second = ValidSubmission();
  (*second.mutable_custom())["b"] = "3";
  (*second.mutable_custom())["c"] = "4";

  const MergeResult newer = Merge(existing, SubmittedAt(second, kT2), kT3);
  EXPECT_THAT(newer.lead.custom(),
              UnorderedElementsAre(Pair("a", "1"), Pair("b", "3"), Pair("c", "4")));

  const MergeResult older = Merge(existing, SubmittedAt(second, kT0), kT3);
  EXPECT_THAT(older.lead.custom(),
              UnorderedElementsAre(Pair("a", "1"), Pair("b", "2"), Pair("c", "4")));
  EXPECT_THAT(older.changed_fields, ElementsAre("custom", "first_touch"));
}

TEST(MergeTest, MergingIntoAnEmptyRecordListsEverythingTheSubmissionSets) {
  LeadSubmission s = ValidSubmission();
  s.set_phone("+16502530000");
  const MergeResult merged = Merge(LeadProfile(), SubmittedAt(s, kT1), kT3);
  EXPECT_THAT(merged.changed_fields,
              ElementsAre("email", "phone", "first_name", "last_name", "company", "sources",
                          "first_touch", "last_touch"));
}

TEST(MergeTest, IsDeterministic) {
  LeadSubmission first = ValidSubmission();
  for (int i = 0; i < 10; ++i) (*first.mutable_custom())[absl::StrCat("k", i)] = "v";
  const LeadProfile existing = ExistingLead(first, kT1);
  LeadSubmission second = ValidSubmission();
  for (int i = 5; i < 15; ++i) (*second.mutable_custom())[absl::StrCat("k", i)] = "w";
  *second.add_consents() = MakeConsent(events::v1::CHANNEL_SMS, true, kT2);
  const NormalizedSubmission n = SubmittedAt(second, kT2);
  const MergeResult a = Merge(existing, n, kT3);
  const MergeResult b = Merge(existing, n, kT3);
  EXPECT_TRUE(ProtoEquals(a.lead, b.lead));
  EXPECT_EQ(a.changed_fields, b.changed_fields);
}

// ---- MergeLeads ---------------------------------------------------------------------------

// A lead `id` created from `s` at `created`.
LeadProfile LeadFrom(const std::string& id, const LeadSubmission& s, absl::Time created) {
  return NewLead(SubmittedAt(s, created), id, created);
}

LeadSubmission ByPhone() {
  LeadSubmission s;
  s.set_source("event");
  s.set_phone("+16502530000");
  s.set_first_name("jane");
  s.set_last_name("doe");
  s.set_city("Boston");
  return s;
}

TEST(MergeLeadsTest, TheNewerRecordsValuesWinAndTheOlderOneFillsGaps) {
  LeadSubmission a = ValidSubmission();
  a.set_city("Berlin");
  const LeadProfile survivor = LeadFrom("lead-a", a, kT0);
  LeadSubmission b = ByPhone();
  b.set_job_title("CEO");
  const LeadProfile absorbed = LeadFrom("lead-b", b, kT1);  // newer

  const MergeResult merged = MergeLeads(survivor, absorbed, kT3);
  EXPECT_EQ(merged.lead.lead_id(), "lead-a");
  EXPECT_EQ(merged.lead.email(), "jane.doe@acme.com");  // b has none: kept
  EXPECT_EQ(merged.lead.phone(), "+16502530000");       // filled
  EXPECT_EQ(merged.lead.city(), "Boston");              // newer wins
  EXPECT_EQ(merged.lead.job_title(), "CEO");
  EXPECT_EQ(merged.lead.seniority(), events::v1::SENIORITY_EXECUTIVE);
  EXPECT_EQ(merged.lead.company(), "Acme Inc.");

  // The other way round the older record only fills gaps.
  const MergeResult reverse = MergeLeads(absorbed, survivor, kT3);
  EXPECT_EQ(reverse.lead.lead_id(), "lead-b");
  EXPECT_EQ(reverse.lead.city(), "Boston");
  EXPECT_EQ(reverse.lead.email(), "jane.doe@acme.com");
}

TEST(MergeLeadsTest, TouchesAndTimesSpanBothRecords) {
  const LeadProfile survivor = LeadFrom("lead-a", ValidSubmission(), kT1);
  LeadProfile absorbed = LeadFrom("lead-b", ByPhone(), kT0);  // first seen earlier
  *absorbed.mutable_last_touch()->mutable_at() = rules::ToTimestamp(kT2);
  absorbed.mutable_last_touch()->set_utm_campaign("late");
  *absorbed.mutable_updated_at() = rules::ToTimestamp(kT2);

  const MergeResult merged = MergeLeads(survivor, absorbed, kT3);
  EXPECT_EQ(rules::ToTime(merged.lead.first_touch().at()), kT0);
  EXPECT_EQ(merged.lead.first_touch().source(), "event");
  EXPECT_EQ(rules::ToTime(merged.lead.last_touch().at()), kT2);
  EXPECT_EQ(merged.lead.last_touch().utm_campaign(), "late");
  EXPECT_EQ(rules::ToTime(merged.lead.created_at()), kT0);
  EXPECT_EQ(rules::ToTime(merged.lead.updated_at()), kT2);
  EXPECT_THAT(merged.lead.sources(), ElementsAre("web_form", "event"));
}

TEST(MergeLeadsTest, ListsAccumulateAndDoNotContactIsSticky) {
  LeadSubmission a = ValidSubmission();
  a.add_interests("shoes");
  a.set_anonymous_id("anon-1");
  a.set_external_id("crm-1");
  LeadProfile survivor = LeadFrom("lead-a", a, kT0);
  LeadSubmission b = ByPhone();
  b.add_interests("bags");
  b.add_interests("shoes");
  b.set_anonymous_id("anon-2");
  b.set_do_not_contact(true);
  LeadProfile absorbed = LeadFrom("lead-b", b, kT1);
  absorbed.add_external_ids("crm-2");
  absorbed.add_external_ids("crm-1");

  const MergeResult merged = MergeLeads(survivor, absorbed, kT3);
  EXPECT_THAT(merged.lead.interests(), ElementsAre("shoes", "bags"));
  EXPECT_THAT(merged.lead.anonymous_ids(), ElementsAre("anon-1", "anon-2"));
  EXPECT_THAT(merged.lead.external_ids(), ElementsAre("crm-1", "crm-2"));
  EXPECT_TRUE(merged.lead.do_not_contact());
  // And sticky the other way: a newer record without it does not clear it.
  survivor.set_do_not_contact(true);
  absorbed.set_do_not_contact(false);
  EXPECT_TRUE(MergeLeads(survivor, absorbed, kT3).lead.do_not_contact());
}

TEST(MergeLeadsTest, AVerifiedEmailIsNeverReplacedByAnUnverifiedOne) {
  LeadSubmission a = ValidSubmission();
  a.set_email_verified(true);
  const LeadProfile survivor = LeadFrom("lead-a", a, kT0);
  LeadSubmission b = ByPhone();
  b.set_email("jane@other.example");  // newer, unverified
  const LeadProfile absorbed = LeadFrom("lead-b", b, kT1);
  const MergeResult merged = MergeLeads(survivor, absorbed, kT3);
  EXPECT_EQ(merged.lead.email(), "jane.doe@acme.com");
  EXPECT_TRUE(merged.lead.email_verified());
}

TEST(MergeLeadsTest, ConsentsKeepTheLatestPerChannelAndCustomMergesKeyByKey) {
  LeadSubmission a = ValidSubmission();
  *a.add_consents() = MakeConsent(events::v1::CHANNEL_EMAIL, true, kT0);
  (*a.mutable_custom())["tier"] = "gold";
  (*a.mutable_custom())["region"] = "emea";
  const LeadProfile survivor = LeadFrom("lead-a", a, kT0);
  LeadSubmission b = ByPhone();
  *b.add_consents() = MakeConsent(events::v1::CHANNEL_EMAIL, false, kT1);
  *b.add_consents() = MakeConsent(events::v1::CHANNEL_SMS, true, kT1);
  (*b.mutable_custom())["tier"] = "silver";
  (*b.mutable_custom())["owner"] = "max";
  const LeadProfile absorbed = LeadFrom("lead-b", b, kT1);

  const MergeResult merged = MergeLeads(survivor, absorbed, kT3);
  ASSERT_EQ(merged.lead.consents_size(), 2);
  EXPECT_EQ(merged.lead.consents(0).channel(), events::v1::CHANNEL_EMAIL);
  EXPECT_FALSE(merged.lead.consents(0).granted()) << "the later withdrawal wins";
  EXPECT_EQ(merged.lead.consents(1).channel(), events::v1::CHANNEL_SMS);
  EXPECT_THAT(
      merged.lead.custom(),
      UnorderedElementsAre(Pair("tier", "silver"), Pair("region", "emea"), Pair("owner", "max")));
}

TEST(MergeLeadsTest, ChangedFieldsListWhatDiffersFromTheSurvivor) {
  const LeadProfile survivor = LeadFrom("lead-a", ValidSubmission(), kT0);
  LeadSubmission b = ByPhone();
  b.set_first_name("jane");
  const LeadProfile absorbed = LeadFrom("lead-b", b, kT1);
  const MergeResult merged = MergeLeads(survivor, absorbed, kT3);
  EXPECT_THAT(merged.changed_fields, ElementsAre("phone", "city", "sources", "last_touch"));
  EXPECT_EQ(merged.changed_fields, ChangedFields(survivor, merged.lead));
  // Merging a record into itself (another id, same content) adds nothing.
  LeadProfile twin = survivor;
  twin.set_lead_id("lead-twin");
  EXPECT_THAT(MergeLeads(survivor, twin, kT3).changed_fields, IsEmpty());
}

TEST(MergeLeadsTest, KeepsTheSurvivorsIdentityAndEpisodeLinks) {
  LeadProfile survivor = LeadFrom("lead-a", ValidSubmission(), kT1);
  survivor.set_contact_id("contact-1");
  survivor.set_episode(2);
  survivor.set_previous_lead_id("lead-0");
  const LeadProfile absorbed = LeadFrom("lead-b", ByPhone(), kT2);
  const MergeResult merged = MergeLeads(survivor, absorbed, kT3);
  EXPECT_EQ(merged.lead.lead_id(), "lead-a");
  EXPECT_EQ(merged.lead.contact_id(), "contact-1");
  EXPECT_EQ(merged.lead.episode(), 2);
  EXPECT_EQ(merged.lead.previous_lead_id(), "lead-0");
}

TEST(MergeLeadsTest, IsDeterministic) {
  LeadSubmission a = ValidSubmission();
  (*a.mutable_custom())["k1"] = "v1";
  (*a.mutable_custom())["k2"] = "v2";
  const LeadProfile survivor = LeadFrom("lead-a", a, kT0);
  LeadSubmission b = ByPhone();
  (*b.mutable_custom())["k2"] = "w2";
  (*b.mutable_custom())["k3"] = "w3";
  const LeadProfile absorbed = LeadFrom("lead-b", b, kT1);
  // Equal as messages (protobuf map wire order is unspecified), and equal change lists.
  const MergeResult first = MergeLeads(survivor, absorbed, kT3);
  for (int i = 0; i < 10; ++i) {
    const MergeResult again = MergeLeads(survivor, absorbed, kT3);
    EXPECT_TRUE(ProtoEquals(again.lead, first.lead));
    EXPECT_EQ(again.changed_fields, first.changed_fields);
  }
}

TEST(MergeRedirectTest, NamesOnlyTheSurvivor) {
  const LeadProfile redirect = MergeRedirect("lead-b", "lead-a");
  EXPECT_TRUE(IsMergeRedirect(redirect));
  EXPECT_EQ(redirect.lead_id(), "lead-b");
  EXPECT_EQ(redirect.merged_into_lead_id(), "lead-a");
  EXPECT_THAT(ChangedFields(LeadProfile(), redirect),
              ElementsAre("lead_id", "merged_into_lead_id"));
  EXPECT_FALSE(IsMergeRedirect(LeadFrom("lead-a", ValidSubmission(), kT0)));
}

TEST(MatchTest, ReportsLeadsMatchedByOtherExactKeysForMerging) {
  LeadProfile by_email = Lead("by-email", kT1);
  by_email.set_email("jane.doe@acme.com");
  LeadProfile by_phone = Lead("by-phone", kT0);
  by_phone.set_phone("+16502530000");
  LeadProfile by_ext = Lead("by-ext", kT0);
  by_ext.add_external_ids("crm-9");
  LeadSubmission s = ValidSubmission();
  s.set_phone("+16502530000");
  s.set_external_id("crm-9");
  const MatchDecision decision = Match(Normalized(s), {by_ext, by_phone, by_email});
  ASSERT_TRUE(decision.match.has_value());
  EXPECT_EQ(decision.match->matched_lead_id(), "by-email");
  EXPECT_THAT(decision.also_matched_lead_ids, ElementsAre("by-phone", "by-ext"));
}

// ---- Configuration ------------------------------------------------------------------------

TEST(FuzzyThresholdTest, DefaultsWhenUnsetAndTakesAValueInRange) {
  config::v1::CaptureConfig config;
  EXPECT_EQ(*FuzzyThresholdOf(config), kDefaultFuzzyThreshold);
  config.set_fuzzy_threshold(0.85);
  EXPECT_EQ(*FuzzyThresholdOf(config), 0.85);
  config.set_fuzzy_threshold(1.0);
  EXPECT_EQ(*FuzzyThresholdOf(config), 1.0);
}

TEST(FuzzyThresholdTest, RejectsValuesOutsideZeroToOne) {
  for (double bad : {-0.1, 1.0001, 2.0, std::nan("")}) {
    config::v1::CaptureConfig config;
    config.set_fuzzy_threshold(bad);
    absl::StatusOr<double> t = FuzzyThresholdOf(config);
    EXPECT_TRUE(absl::IsInvalidArgument(t.status())) << bad;
    if (!t.ok()) {
      EXPECT_THAT(t.status().message(), HasSubstr("fuzzy_threshold"));
    }
  }
}

TEST(FuzzyThresholdTest, AHigherThresholdRejectsAMatchTheDefaultAccepts) {
  LeadProfile lead = Lead("lead-1", kT0);
  lead.set_first_name("Jon");
  lead.set_last_name("Doe");
  lead.set_company("Acme");
  LeadSubmission s = ValidSubmission();
  s.set_email("john.doe@acme-corp.example");
  s.set_first_name("John");
  s.set_last_name("Doe");
  const NormalizedSubmission n = Normalized(s);
  const double similarity = JaroWinkler(n.name_key, "jon doe");
  ASSERT_GE(similarity, kDefaultFuzzyThreshold);
  ASSERT_LT(similarity, 0.99);
  EXPECT_TRUE(Match(n, {lead}).match.has_value());
  EXPECT_FALSE(Match(n, {lead}, 0.99).match.has_value());
}

}  // namespace
}  // namespace leadflow::capture
