#include "common/log/log.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace leadflow::log {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct RedactCase {
  std::string name;
  std::string input;
  std::string expected;
};

class RedactTest : public ::testing::TestWithParam<RedactCase> {};

TEST_P(RedactTest, MasksPersonalDataAndNothingElse) {
  EXPECT_EQ(Redact(GetParam().input), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Emails, RedactTest,
    ::testing::Values(
        RedactCase{"Plain", "contact jane.doe@example.com now", "contact j***@e***.com now"},
        RedactCase{"PlusTagAndSubdomain", "a.b+tag@mail.example.co.uk", "a***@m***.uk"},
        RedactCase{"UpperCase", "<JANE@EXAMPLE.COM>", "<J***@E***.COM>"},
        RedactCase{"Two", "from a@b.io to c@d.io", "from a***@b***.io to c***@d***.io"},
        RedactCase{"InJson", R"({"email":"jane@example.com"})", R"({"email":"j***@e***.com"})"},
        RedactCase{"AtWithoutLocalPart", "ping @team about it", "ping @team about it"}),
    [](const ::testing::TestParamInfo<RedactCase>& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(
    Phones, RedactTest,
    ::testing::Values(RedactCase{"E164", "phone +14155552671", "phone +14***71"},
                      RedactCase{"E164Spaced", "phone +44 20 7946 0958.", "phone +44***58."},
                      RedactCase{"E164Dashed", "+49-30-901820-12", "+49***12"},
                      RedactCase{"NationalSpaced", "call 020 7946 0958 today",
                                 "call 02***58 today"},
                      RedactCase{"Dashed", "415-555-2671", "41***71"},
                      RedactCase{"Dotted", "415.555.2671", "41***71"}),
    [](const ::testing::TestParamInfo<RedactCase>& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(
    LeftAlone, RedactTest,
    ::testing::Values(RedactCase{"Offset", "stored offset 123456789012 on partition 3",
                                 "stored offset 123456789012 on partition 3"},
                      RedactCase{"Counters", "took 15 ms, 3 retries, 20000 in flight",
                                 "took 15 ms, 3 retries, 20000 in flight"},
                      RedactCase{"TopicPartitionOffset", "leads.inbound/2@1234567",
                                 "leads.inbound/2@1234567"},
                      RedactCase{"HexId", "lead 8f1c2d3e4f5a6b7c", "lead 8f1c2d3e4f5a6b7c"},
                      RedactCase{"Version", "librdkafka 2.0.2", "librdkafka 2.0.2"},
                      RedactCase{"ShortPlus", "+5 points", "+5 points"},
                      RedactCase{"Empty", "", ""}),
    [](const ::testing::TestParamInfo<RedactCase>& info) { return info.param.name; });

// "(415) 555-2671" is how most US numbers are written; a ")" followed by a space must not end the
// phone number and let its subscriber part through.
TEST(RedactTest, PhoneNumbersWithTheAreaCodeInParenthesesAreMasked) {
  for (const char* text : {"call (415) 555-2671", "call +1 (415) 555-2671", "(415) 555 2671"}) {
    const std::string out = Redact(text);
    EXPECT_THAT(out, Not(HasSubstr("555"))) << text << " → " << out;
    EXPECT_THAT(out, HasSubstr("***")) << text << " → " << out;
  }
}

TEST(RedactTest, NoDigitOfAMaskedPhoneSurvivesBeyondThePrefixAndSuffix) {
  const std::string out = Redact("+44 20 7946 0958");
  EXPECT_THAT(out, Not(HasSubstr("7946")));
  EXPECT_THAT(out, Not(HasSubstr("20 7")));
}

TEST(LogTest, JsonLogLinesAreRedactedWhateverTheCallSiteWrote) {
  ASSERT_TRUE(InitLogging("capture", "json", "info").ok());
  ::testing::internal::CaptureStderr();
  spdlog::info("lead jane@example.com phone +44 20 7946 0958 said \"hi\"");
  spdlog::debug("below the level");
  spdlog::default_logger()->flush();
  const std::string out = ::testing::internal::GetCapturedStderr();
  ASSERT_THAT(out, Not(HasSubstr("below the level")));
  nlohmann::json line = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(line.is_discarded()) << "not one JSON object: " << out;
  EXPECT_EQ(line["service"], "capture");
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["msg"], "lead j***@e***.com phone +44***58 said \"hi\"");
  EXPECT_TRUE(line.contains("ts"));
  EXPECT_TRUE(line.contains("thread"));
}

TEST(LogTest, TextLogLinesAreRedactedToo) {
  ASSERT_TRUE(InitLogging("routing", "text", "debug").ok());
  ::testing::internal::CaptureStderr();
  spdlog::debug("assigned jane@example.com");
  spdlog::default_logger()->flush();
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, HasSubstr("routing"));
  EXPECT_THAT(out, HasSubstr("assigned j***@e***.com"));
  EXPECT_THAT(out, Not(HasSubstr("jane@")));
}

TEST(LogTest, UnknownLevelIsRejected) {
  absl::Status s = InitLogging("capture", "text", "loud");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("loud"));
}

TEST(RateLimitedLogTest, SuppressesWithinTheIntervalAndCountsWhatItSuppressed) {
  RateLimitedLog limiter(absl::Hours(1));
  int64_t suppressed = -1;
  EXPECT_TRUE(limiter.ShouldLog(&suppressed));
  EXPECT_EQ(suppressed, 0);
  for (int i = 0; i < 3; ++i) {
    int64_t untouched = -1;
    EXPECT_FALSE(limiter.ShouldLog(&untouched));
    EXPECT_EQ(untouched, -1);
  }
}

TEST(RateLimitedLogTest, ZeroIntervalLogsEverything) {
  RateLimitedLog limiter(absl::ZeroDuration());
  for (int i = 0; i < 3; ++i) {
    int64_t suppressed = -1;
    EXPECT_TRUE(limiter.ShouldLog(&suppressed));
    EXPECT_EQ(suppressed, 0);
  }
}

}  // namespace
}  // namespace leadflow::log
