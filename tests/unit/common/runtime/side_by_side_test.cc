#include "common/runtime/side_by_side.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace leadflow::runtime {
namespace {

TEST(RunSideBySideTest, RunsEveryPieceOnceAllAtOnceTheFirstOnTheCallersThread) {
  constexpr size_t kPieces = 4;
  absl::Mutex mu;
  size_t started = 0;
  std::vector<int> runs(kPieces, 0);
  std::vector<bool> saw_all(kPieces, false);
  std::vector<std::thread::id> thread_of(kPieces);
  RunSideBySide(kPieces, [&](size_t i) {
    absl::MutexLock lock(&mu);
    ++runs[i];
    thread_of[i] = std::this_thread::get_id();
    ++started;
    // Run one after the other, no piece would see the others start: each waits for all.
    auto all_started = [&] { return started == kPieces; };
    saw_all[i] = mu.AwaitWithTimeout(absl::Condition(&all_started), absl::Seconds(10));
  });
  for (size_t i = 0; i < kPieces; ++i) {
    EXPECT_EQ(runs[i], 1) << i;
    EXPECT_TRUE(saw_all[i]) << i;
    for (size_t j = 0; j < i; ++j) EXPECT_NE(thread_of[i], thread_of[j]) << i << " " << j;
  }
  EXPECT_EQ(thread_of[0], std::this_thread::get_id());
}

TEST(RunSideBySideTest, NoPiecesRunsNothingAndOnePieceStaysOnTheCallersThread) {
  std::atomic<int> runs{0};
  RunSideBySide(0, [&](size_t) { ++runs; });
  EXPECT_EQ(runs.load(), 0);
  std::thread::id ran_on;
  RunSideBySide(1, [&](size_t) {
    ++runs;
    ran_on = std::this_thread::get_id();
  });
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(SliceUpTest, CutsIntoConsecutiveSlicesOfAtLeastTheMinimumAsManyAsAllowed) {
  const Slices three = SliceUp(100, 3, 16);
  ASSERT_EQ(three.count, 3u);
  EXPECT_EQ(three.begin(0), 0u);
  EXPECT_EQ(three.end(0), three.begin(1));
  EXPECT_EQ(three.end(1), three.begin(2));
  EXPECT_EQ(three.end(2), 100u);
  EXPECT_EQ(three.end(1) - three.begin(1), 33u);
  EXPECT_EQ(SliceUp(100, 8, 16).count, 6u) << "16 items each at least";
  EXPECT_EQ(SliceUp(31, 4, 16).count, 1u);
  EXPECT_EQ(SliceUp(32, 4, 16).count, 2u);
  EXPECT_EQ(SliceUp(1000, 1, 16).count, 1u);
  EXPECT_EQ(SliceUp(1000, 0, 16).count, 1u);
  EXPECT_EQ(SliceUp(0, 4, 16).count, 1u);
  EXPECT_EQ(SliceUp(0, 4, 16).end(0), 0u);
  EXPECT_EQ(SliceUp(5, 4, 0).count, 4u) << "a minimum of 0 counts as 1";
}

}  // namespace
}  // namespace leadflow::runtime
