#pragma once

// RejoinBudget: how many times a consumer may replace its fenced group membership before the
// fencing is taken for what it says.
//
// A static member (group.instance.id, KIP-345) is fenced when the coordinator sees another join
// with its instance id. After a broker restart that other join can be the member's own,
// abandoned JoinGroup (KAFKA-20985): rejoining with a fresh handle is then the cure. Two live
// replicas configured with the same instance id would fence each other forever instead; a
// bounded number of rejoins per window tells the two cases apart and turns the second into the
// fatal error it is (a configuration fault an operator must fix).
//
// Pure: the caller passes the time. Not thread-safe (the consumer loop's thread owns it).

#include <cstddef>
#include <deque>

#include "absl/time/time.h"

namespace leadflow::kafka {

class RejoinBudget {
 public:
  RejoinBudget(size_t max_rejoins, absl::Duration window)
      : max_rejoins_(max_rejoins), window_(window) {}

  // True, and the rejoin counted, when fewer than max_rejoins were granted in the window
  // ending at `now`.
  bool TryAcquire(absl::Time now) {
    while (!granted_.empty() && granted_.front() <= now - window_) granted_.pop_front();
    if (granted_.size() >= max_rejoins_) return false;
    granted_.push_back(now);
    return true;
  }

 private:
  const size_t max_rejoins_;
  const absl::Duration window_;
  std::deque<absl::Time> granted_;  // times of the rejoins granted within the window
};

}  // namespace leadflow::kafka
