#pragma once

// Test input shared by scoring's integration tests: an aggregate with `n` activities in every
// rolling window, the last at `last_at`.

#include <cstdint>

#include "absl/time/time.h"
#include "common/events/envelope.h"
#include "leadflow/events/v1/activity.pb.h"

namespace leadflow::scoring {

inline events::v1::ActivityCounts Counts(int64_t n, absl::Time last_at) {
  events::v1::ActivityCounts counts;
  counts.set_total(n);
  counts.set_last_1d(n);
  counts.set_last_7d(n);
  counts.set_last_30d(n);
  counts.set_last_90d(n);
  *counts.mutable_last_at() = events::ToProto(last_at);
  return counts;
}

}  // namespace leadflow::scoring
