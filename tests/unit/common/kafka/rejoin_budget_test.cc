#include "common/kafka/rejoin_budget.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace leadflow::kafka {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

// A budget, then rejoins asked for at minutes after kStart with the answer each must get.
struct BudgetCase {
  std::string name;
  size_t max_rejoins;
  absl::Duration window;
  std::vector<std::pair<int, bool>> asks;  // (minute, granted)
};

class RejoinBudgetTest : public ::testing::TestWithParam<BudgetCase> {};

TEST_P(RejoinBudgetTest, GrantsWhatTheWindowAllows) {
  const BudgetCase& c = GetParam();
  RejoinBudget budget(c.max_rejoins, c.window);
  for (const auto& [minute, granted] : c.asks) {
    EXPECT_EQ(budget.TryAcquire(kStart + absl::Minutes(minute)), granted) << "minute " << minute;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RejoinBudgetTest,
    ::testing::Values(
        // Up to the limit within the window, then refused until the window moves on.
        BudgetCase{"UpToTheLimitThenRefused",
                   3,
                   absl::Minutes(10),
                   {{0, true}, {1, true}, {2, true}, {3, false}, {9, false}}},
        // A refusal is not counted: ten minutes after the one granted, not after the refusal.
        BudgetCase{
            "ARefusalIsNotCounted", 1, absl::Minutes(10), {{0, true}, {5, false}, {10, true}}},
        // Rejoins older than the window no longer count; those inside it still do.
        BudgetCase{"OldRejoinsLeaveTheWindow",
                   2,
                   absl::Minutes(10),
                   {{0, true}, {6, true}, {9, false}, {10, true}, {15, false}, {16, true}}},
        BudgetCase{"ZeroRefusesEveryRejoin", 0, absl::Minutes(10), {{0, false}, {60, false}}}),
    [](const ::testing::TestParamInfo<BudgetCase>& info) { return info.param.name; });

}  // namespace
}  // namespace leadflow::kafka
