#include "common/kafka/offset_tracker.h"

#include <optional>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::kafka {
namespace {

using ::testing::AnyOf;
using ::testing::Eq;
using ::testing::Le;
using ::testing::Optional;

const TopicPartition kTp{"leads.inbound", 0};
const TopicPartition kOther{"leads.inbound", 1};

TEST(OffsetTrackerTest, SingleMessageCommitsOnePastItsOffset) {
  OffsetTracker tracker;
  const uint64_t gen = tracker.Begin(kTp, 41);
  EXPECT_EQ(tracker.InFlight(), 1u);
  EXPECT_THAT(tracker.Complete(kTp, 41, gen), Optional(42));
  EXPECT_EQ(tracker.InFlight(), 0u);
}

// Each row: offsets begun (in order), then the order they complete in, and the commit offset
// expected after each completion (nullopt: the commit point must not move past anything
// unfinished, so nothing new to report).
struct OrderCase {
  std::string name;
  std::vector<int64_t> begun;
  std::vector<int64_t> completed;
  std::vector<std::optional<int64_t>> commits;
};

class OffsetTrackerOrderTest : public ::testing::TestWithParam<OrderCase> {};

TEST_P(OffsetTrackerOrderTest, CommitPointNeverPassesAnUnfinishedOffset) {
  const OrderCase& c = GetParam();
  OffsetTracker tracker;
  uint64_t gen = 0;
  for (int64_t o : c.begun) gen = tracker.Begin(kTp, o);
  std::vector<int64_t> unfinished = c.begun;
  for (size_t i = 0; i < c.completed.size(); ++i) {
    const int64_t o = c.completed[i];
    std::erase(unfinished, o);
    std::optional<int64_t> commit = tracker.Complete(kTp, o, gen);
    SCOPED_TRACE(::testing::Message() << "after completing " << o);
    if (c.commits[i].has_value()) {
      EXPECT_THAT(commit, Optional(*c.commits[i]));
    } else {
      // Either nothing new, or a commit point that is still at or below every unfinished offset.
      EXPECT_THAT(commit, AnyOf(Eq(std::nullopt), Optional(Le(unfinished.front()))));
    }
  }
  EXPECT_EQ(tracker.InFlight(), unfinished.size());
}

INSTANTIATE_TEST_SUITE_P(
    Orders, OffsetTrackerOrderTest,
    ::testing::Values(OrderCase{"InOrder", {0, 1, 2}, {0, 1, 2}, {1, 2, 3}},
                      OrderCase{"LastFirst", {0, 1, 2}, {2, 1, 0}, {std::nullopt, std::nullopt, 3}},
                      OrderCase{"MiddleFirst", {0, 1, 2}, {1, 0, 2}, {std::nullopt, 2, 3}},
                      OrderCase{"FirstThenLast", {0, 1, 2}, {0, 2, 1}, {1, std::nullopt, 3}},
                      OrderCase{
                          "GapsInOffsets", {10, 15, 30}, {30, 10, 15}, {std::nullopt, 15, 31}}),
    [](const ::testing::TestParamInfo<OrderCase>& info) { return info.param.name; });

TEST(OffsetTrackerTest, CompletionOfAStaleGenerationIsIgnored) {
  OffsetTracker tracker;
  const uint64_t old_gen = tracker.Begin(kTp, 5);
  tracker.Begin(kTp, 6);
  tracker.Reset(kTp);  // e.g. revoked, or rewound after a failed delivery
  EXPECT_FALSE(tracker.IsCurrent(kTp, old_gen));

  const uint64_t new_gen = tracker.Begin(kTp, 5);
  EXPECT_NE(new_gen, old_gen);
  EXPECT_TRUE(tracker.IsCurrent(kTp, new_gen));
  // The old run of offset 6 finishing must not move the new run's commit point.
  EXPECT_EQ(tracker.Complete(kTp, 6, old_gen), std::nullopt);
  EXPECT_EQ(tracker.Complete(kTp, 5, old_gen), std::nullopt);
  EXPECT_EQ(tracker.InFlight(), 1u);
  EXPECT_THAT(tracker.Complete(kTp, 5, new_gen), Optional(6));
}

TEST(OffsetTrackerTest, ResetForgetsInFlightWorkOfThatPartitionOnly) {
  OffsetTracker tracker;
  tracker.Begin(kTp, 0);
  tracker.Begin(kTp, 1);
  const uint64_t other_gen = tracker.Begin(kOther, 7);
  EXPECT_EQ(tracker.InFlight(), 3u);

  tracker.Reset(kTp);
  EXPECT_EQ(tracker.InFlight(), 1u);
  EXPECT_TRUE(tracker.IsCurrent(kOther, other_gen));
  EXPECT_THAT(tracker.Complete(kOther, 7, other_gen), Optional(8));
  EXPECT_EQ(tracker.InFlight(), 0u);
}

TEST(OffsetTrackerTest, ResetOfAnUnknownPartitionIsHarmless) {
  OffsetTracker tracker;
  tracker.Reset(kTp);
  EXPECT_EQ(tracker.InFlight(), 0u);
  const uint64_t gen = tracker.Begin(kTp, 0);
  EXPECT_THAT(tracker.Complete(kTp, 0, gen), Optional(1));
}

TEST(OffsetTrackerTest, PartitionsCommitIndependently) {
  OffsetTracker tracker;
  const uint64_t a = tracker.Begin(kTp, 0);
  const uint64_t b = tracker.Begin(kOther, 100);
  tracker.Begin(kTp, 1);
  // Partition 1 finishing does not wait for partition 0's unfinished offset 1.
  EXPECT_THAT(tracker.Complete(kOther, 100, b), Optional(101));
  EXPECT_THAT(tracker.Complete(kTp, 0, a), Optional(1));
}

TEST(OffsetTrackerTest, CompletingTheSameOffsetTwiceCountsOnce) {
  OffsetTracker tracker;
  const uint64_t gen = tracker.Begin(kTp, 0);
  tracker.Begin(kTp, 1);
  EXPECT_THAT(tracker.Complete(kTp, 0, gen), Optional(1));
  EXPECT_EQ(tracker.Complete(kTp, 0, gen), std::nullopt);
  EXPECT_EQ(tracker.InFlight(), 1u);
  EXPECT_THAT(tracker.Complete(kTp, 1, gen), Optional(2));
}

TEST(OffsetTrackerTest, CompletingAnOffsetThatNeverBeganChangesNothing) {
  OffsetTracker tracker;
  const uint64_t gen = tracker.Begin(kTp, 3);
  EXPECT_EQ(tracker.Complete(kTp, 9, gen), std::nullopt);
  EXPECT_EQ(tracker.InFlight(), 1u);
  EXPECT_EQ(tracker.Complete(kOther, 3, gen), std::nullopt);
}

TEST(OffsetTrackerTest, CommitPointOnlyMovesForward) {
  OffsetTracker tracker;
  uint64_t gen = 0;
  for (int64_t o = 0; o < 5; ++o) gen = tracker.Begin(kTp, o);
  std::optional<int64_t> last;
  for (int64_t o : {3, 0, 4, 1, 2}) {
    if (std::optional<int64_t> c = tracker.Complete(kTp, o, gen)) {
      if (last.has_value()) {
        EXPECT_GT(*c, *last);
      }
      last = c;
    }
  }
  EXPECT_THAT(last, Optional(5));
}

}  // namespace
}  // namespace leadflow::kafka
