#pragma once

// RunEvery: the loop of a service's background task (a scheduler pass every `period`).
//
// Fixed rate, not fixed delay: passes start `period` apart, start to start, so a pass that does
// N units of work each period does N / period per second, whatever the pass itself takes. (A
// fixed delay after each pass would halve the nurturing scheduler's configured drain rate when
// a full pass takes as long as the period.) A pass that runs longer than `period` is followed at
// once; the starts it missed are not made up in a burst.
//
// The pause between passes is real (monotonic) time: this is the edge where a background task
// meets the wall clock. The passes themselves take their time from the injected Clock.

#include "absl/functional/function_ref.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace leadflow::runtime {

// How long to wait after a pass that took `pass_took` before the next one starts.
absl::Duration DelayBeforeNextPass(absl::Duration period, absl::Duration pass_took);

// Waits `period`, then runs `pass` every `period` (as above) until `stop` is notified. Returns
// when `stop` is notified between passes; a pass in progress is not interrupted.
void RunEvery(absl::Duration period, const absl::Notification& stop,
              absl::FunctionRef<void()> pass);

}  // namespace leadflow::runtime
