#include "common/runtime/periodic.h"

#include <algorithm>
#include <chrono>

namespace leadflow::runtime {

absl::Duration DelayBeforeNextPass(absl::Duration period, absl::Duration pass_took) {
  return std::max(absl::ZeroDuration(), period - std::max(absl::ZeroDuration(), pass_took));
}

void RunEvery(absl::Duration period, const absl::Notification& stop,
              absl::FunctionRef<void()> pass) {
  absl::Duration delay = period;
  while (!stop.WaitForNotificationWithTimeout(delay)) {
    const auto started = std::chrono::steady_clock::now();
    pass();
    delay =
        DelayBeforeNextPass(period, absl::FromChrono(std::chrono::steady_clock::now() - started));
  }
}

}  // namespace leadflow::runtime
