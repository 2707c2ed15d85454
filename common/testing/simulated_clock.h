#pragma once

// A clock that only moves when a test says so.
//
// Thread safety: all methods may be called concurrently.

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/runtime/clock.h"

namespace leadflow::testing {

class SimulatedClock final : public runtime::Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1'767'225'600))  // 2026-01-01
      : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leadflow::testing
