#pragma once

// WaitFor: the one way tests synchronise with asynchronous work (a loop on another thread, a
// broker, a child process). It polls a condition until it holds or a deadline passes, so a test
// waits exactly as long as needed and fails with a clear assertion instead of hanging or racing
// a bare sleep.
//
//   ASSERT_TRUE(WaitFor([&] { return consumer.stored_offset(tp) == 3; }, absl::Seconds(5)));
//
// The condition runs on the calling thread; it must synchronise whatever it reads.

#include <algorithm>
#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace leadflow::testing {

// Returns true as soon as `condition()` is true, false if it is still false after `deadline`.
// The condition is evaluated at least once, and once more at the deadline.
inline bool WaitFor(std::function<bool()> condition, absl::Duration deadline,
                    absl::Duration poll = absl::Milliseconds(10)) {
  const absl::Time end = absl::Now() + deadline;
  for (;;) {
    if (condition()) return true;
    const absl::Time now = absl::Now();
    if (now >= end) return false;
    absl::SleepFor(std::min(poll, end - now));
  }
}

}  // namespace leadflow::testing
