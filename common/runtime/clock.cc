#include "common/runtime/clock.h"

#include "absl/time/clock.h"

namespace leadflow::runtime {
namespace {

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock& Clock::Real() {
  static const SystemClock* const kClock = new SystemClock();
  return *kClock;
}

}  // namespace leadflow::runtime
