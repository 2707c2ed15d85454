#include "common/runtime/periodic.h"

#include "gtest/gtest.h"

namespace leadflow::runtime {
namespace {

TEST(DelayBeforeNextPassTest, KeepsStartsOnePeriodApart) {
  EXPECT_EQ(DelayBeforeNextPass(absl::Milliseconds(150), absl::ZeroDuration()),
            absl::Milliseconds(150));
  EXPECT_EQ(DelayBeforeNextPass(absl::Milliseconds(150), absl::Milliseconds(100)),
            absl::Milliseconds(50));
}

TEST(DelayBeforeNextPassTest, FollowsALongPassAtOnceWithoutCatchingUp) {
  EXPECT_EQ(DelayBeforeNextPass(absl::Milliseconds(150), absl::Milliseconds(150)),
            absl::ZeroDuration());
  EXPECT_EQ(DelayBeforeNextPass(absl::Milliseconds(150), absl::Milliseconds(700)),
            absl::ZeroDuration());
}

TEST(DelayBeforeNextPassTest, TreatsAClockStepBackAsAnInstantPass) {
  EXPECT_EQ(DelayBeforeNextPass(absl::Milliseconds(150), absl::Milliseconds(-20)),
            absl::Milliseconds(150));
}

TEST(RunEveryTest, RunsNothingWhenStoppedBeforeTheFirstPass) {
  absl::Notification stop;
  stop.Notify();
  int passes = 0;
  RunEvery(absl::ZeroDuration(), stop, [&] { ++passes; });
  EXPECT_EQ(passes, 0);
}

TEST(RunEveryTest, FinishesThePassInProgressAndStopsBeforeTheNext) {
  absl::Notification stop;
  int passes = 0;
  RunEvery(absl::ZeroDuration(), stop, [&] {
    if (++passes == 3) stop.Notify();
  });
  EXPECT_EQ(passes, 3);
}

}  // namespace
}  // namespace leadflow::runtime
