#include "common/kafka/rejoin_budget.h"

#include "gtest/gtest.h"

namespace leadflow::kafka {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

TEST(RejoinBudgetTest, GrantsUpToTheLimitWithinTheWindowThenRefuses) {
  RejoinBudget budget(3, absl::Minutes(10));
  EXPECT_TRUE(budget.TryAcquire(kStart));
  EXPECT_TRUE(budget.TryAcquire(kStart + absl::Minutes(1)));
  EXPECT_TRUE(budget.TryAcquire(kStart + absl::Minutes(2)));
  EXPECT_FALSE(budget.TryAcquire(kStart + absl::Minutes(3)));
  EXPECT_FALSE(budget.TryAcquire(kStart + absl::Minutes(9)));
}

TEST(RejoinBudgetTest, ARefusalIsNotCountedAgainstLaterRejoins) {
  RejoinBudget budget(1, absl::Minutes(10));
  EXPECT_TRUE(budget.TryAcquire(kStart));
  EXPECT_FALSE(budget.TryAcquire(kStart + absl::Minutes(5)));
  // Ten minutes after the one granted, not after the refusal.
  EXPECT_TRUE(budget.TryAcquire(kStart + absl::Minutes(10)));
}

TEST(RejoinBudgetTest, RejoinsOlderThanTheWindowNoLongerCount) {
  RejoinBudget budget(2, absl::Minutes(10));
  EXPECT_TRUE(budget.TryAcquire(kStart));
  EXPECT_TRUE(budget.TryAcquire(kStart + absl::Minutes(6)));
  EXPECT_FALSE(budget.TryAcquire(kStart + absl::Minutes(9)));
  // The first has left the window; the second still counts.
  EXPECT_TRUE(budget.TryAcquire(kStart + absl::Minutes(10)));
  EXPECT_FALSE(budget.TryAcquire(kStart + absl::Minutes(15)));
  EXPECT_TRUE(budget.TryAcquire(kStart + absl::Minutes(16)));
}

TEST(RejoinBudgetTest, ZeroRefusesEveryRejoin) {
  RejoinBudget budget(0, absl::Minutes(10));
  EXPECT_FALSE(budget.TryAcquire(kStart));
}

}  // namespace
}  // namespace leadflow::kafka
