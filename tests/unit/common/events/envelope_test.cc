#include "common/events/envelope.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::events {
namespace {

using ::testing::MatchesRegex;

TEST(EnvelopeTest, DeriveEventIdIsDeterministic) {
  EXPECT_EQ(DeriveEventId("captured", "msg-123"), DeriveEventId("captured", "msg-123"));
  // Pinned (SHA-256 of "captured\0msg-123", version and variant bits set): a change of the
  // derivation would give replayed inputs new ids and defeat downstream de-duplication.
  EXPECT_EQ(DeriveEventId("captured", "msg-123"), "966a2c8b-19bd-5f79-85c4-61d69cee4956");
}

TEST(EnvelopeTest, DistinctInputsGiveDistinctIds) {
  const std::vector<std::pair<std::string, std::string>> inputs = {
      {"captured", "msg-1"}, {"captured", "msg-2"}, {"scored", "msg-1"}, {"ab", "c"},
      {"a", "bc"},           {"", "abc"},           {"abc", ""},         {"", ""},
  };
  std::set<std::string> ids;
  for (const auto& [kind, input] : inputs) ids.insert(DeriveEventId(kind, input));
  EXPECT_EQ(ids.size(), inputs.size());
}

TEST(EnvelopeTest, EventIdIsAVersion5StyleUuid) {
  for (const char* input : {"a", "msg-123", "", "\xff\x00"}) {
    EXPECT_THAT(
        DeriveEventId("captured", input),
        MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  }
}

class TimestampRoundTripTest : public ::testing::TestWithParam<absl::Time> {};

TEST_P(TimestampRoundTripTest, TimeSurvivesProtoAndBack) {
  const absl::Time t = GetParam();
  const google::protobuf::Timestamp ts = ToProto(t);
  EXPECT_GE(ts.nanos(), 0);
  EXPECT_LT(ts.nanos(), 1'000'000'000);
  EXPECT_EQ(FromProto(ts), t);
}

INSTANTIATE_TEST_SUITE_P(
    Times, TimestampRoundTripTest,
    ::testing::Values(absl::UnixEpoch(), absl::FromUnixSeconds(1'767'225'600),
                      absl::FromUnixNanos(1'767'225'600'123'456'789),
                      absl::FromUnixNanos(-1),              // just before the epoch
                      absl::FromUnixNanos(-1'500'000'000),  // 1.5 s before
                      // 2255: ToProto goes through int64 nanoseconds, so times after
                      // 2262-04-11 are clamped (reported; not asserted here).
                      absl::FromUnixSeconds(9'000'000'000)));

TEST(EnvelopeTest, NegativeTimesNormaliseNanosToBePositive) {
  const google::protobuf::Timestamp ts = ToProto(absl::FromUnixNanos(-1'500'000'000));
  EXPECT_EQ(ts.seconds(), -2);
  EXPECT_EQ(ts.nanos(), 500'000'000);
}

TEST(EnvelopeTest, FromProtoOrUsesTheFallbackOnlyForAnUnsetTimestamp) {
  const absl::Time fallback = absl::FromUnixSeconds(42);
  EXPECT_EQ(FromProtoOr(google::protobuf::Timestamp(), fallback), fallback);
  google::protobuf::Timestamp set;
  set.set_seconds(7);
  EXPECT_EQ(FromProtoOr(set, fallback), absl::FromUnixSeconds(7));
}

TEST(EnvelopeTest, MakeEnvelopeFillsEveryFieldAndDefaultsTraceToCausation) {
  EnvelopeFields f;
  f.event_id = "e-1";
  f.lead_id = "lead-1";
  f.occurred_at = absl::FromUnixSeconds(100);
  f.produced_at = absl::FromUnixSeconds(200);
  f.causation_id = "cause-1";
  f.producer = "capture";
  leadflow::events::v1::Envelope e = MakeEnvelope(f);
  EXPECT_EQ(e.event_id(), "e-1");
  EXPECT_EQ(e.lead_id(), "lead-1");
  EXPECT_EQ(e.occurred_at().seconds(), 100);
  EXPECT_EQ(e.produced_at().seconds(), 200);
  EXPECT_EQ(e.causation_id(), "cause-1");
  EXPECT_EQ(e.trace_id(), "cause-1");
  EXPECT_EQ(e.schema_version(), kSchemaVersion);
  EXPECT_EQ(e.producer(), "capture");

  f.trace_id = "trace-9";
  EXPECT_EQ(MakeEnvelope(f).trace_id(), "trace-9");
}

}  // namespace
}  // namespace leadflow::events
