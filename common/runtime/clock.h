#pragma once

// The one source of time in leadflow (ARCHITECTURE.md §4.5: time is injected).
//
// Logic never reads the system clock directly: it takes a `Clock&`. Production code passes
// `Clock::Real()`; tests pass a `leadflow::testing::SimulatedClock` and move time by hand, so a
// 30-day nurture track or a score half-life runs in milliseconds.
//
// Thread safety: implementations must allow concurrent calls to Now().

#include "absl/time/time.h"

namespace leadflow::runtime {

class Clock {
 public:
  virtual ~Clock() = default;

  // The current time.
  virtual absl::Time Now() const = 0;

  // The process-wide real clock. Never null; lives forever.
  static const Clock& Real();
};

}  // namespace leadflow::runtime
