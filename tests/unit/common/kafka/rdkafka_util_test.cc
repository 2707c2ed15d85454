#include "common/kafka/rdkafka_util.h"

#include <limits>

#include "gtest/gtest.h"

namespace leadflow::kafka {
namespace {

// librdkafka reads -1 ms as "wait for ever"; a deadline that passed must mean "do not wait".
TEST(TimeoutMsTest, ADeadlineThatPassedNeverBecomesForEver) {
  EXPECT_EQ(TimeoutMs(-absl::Microseconds(1500)), 0);
  EXPECT_EQ(TimeoutMs(-absl::Milliseconds(1)), 0);
  EXPECT_EQ(TimeoutMs(-absl::Hours(1)), 0);
  EXPECT_EQ(TimeoutMs(-absl::InfiniteDuration()), 0);
}

TEST(TimeoutMsTest, WholeMillisecondsUpToTheLargestInt) {
  EXPECT_EQ(TimeoutMs(absl::ZeroDuration()), 0);
  EXPECT_EQ(TimeoutMs(absl::Microseconds(1900)), 1);
  EXPECT_EQ(TimeoutMs(absl::Seconds(5)), 5000);
  EXPECT_EQ(TimeoutMs(absl::Hours(24 * 365)), std::numeric_limits<int>::max());
  EXPECT_EQ(TimeoutMs(absl::InfiniteDuration()), std::numeric_limits<int>::max());
}

}  // namespace
}  // namespace leadflow::kafka
