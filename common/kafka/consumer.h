#pragma once

// Consumer: a group member reading assigned partitions, with manual offset storage.
//
// Contract (the at-least-once half of ARCHITECTURE.md §4):
// - Offsets are committed only when stored with StoreOffset(); auto-commit commits stored
//   offsets periodically and Commit() commits them now. Nothing is stored implicitly.
// - Poll() returns at most one message, nullopt on timeout, or an error that the caller should
//   treat as fatal (transient broker trouble is retried inside librdkafka and only logged). It
//   waits at most `timeout`; a negative timeout waits not at all (never "for ever").
// - Rebalance notifications are delivered to the RebalanceListener from inside Poll(), on the
//   polling thread, before the assignment changes: OnRevoked() is the last chance to finish and
//   commit work of the partitions being taken away.
//
// Thread safety: one thread (the consumer loop) calls every method.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/message.h"

namespace leadflow::kafka {

class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  virtual void OnAssigned(const std::vector<TopicPartition>& partitions) = 0;
  virtual void OnRevoked(const std::vector<TopicPartition>& partitions) = 0;
};

class Consumer {
 public:
  Consumer() = default;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  virtual ~Consumer() = default;

  // `listener` must outlive the consumer; may be null.
  virtual absl::Status Subscribe(const std::vector<std::string>& topics,
                                 RebalanceListener* listener) = 0;
  virtual absl::StatusOr<std::optional<ConsumedMessage>> Poll(absl::Duration timeout) = 0;
  // Marks everything before `next_offset` on `tp` as done.
  virtual absl::Status StoreOffset(const TopicPartition& tp, int64_t next_offset) = 0;
  // Repositions `tp` so that `offset` is the next message returned (redelivery).
  virtual absl::Status Seek(const TopicPartition& tp, int64_t offset) = 0;
  // Stops / restarts fetching on every assigned partition while staying in the group (used while
  // a dependency is down, so the group keeps its heartbeat and rebalances still arrive).
  virtual absl::Status PauseAll() = 0;
  virtual absl::Status ResumeAll() = 0;
  // Synchronously commits stored offsets. OK when there was nothing to commit.
  virtual absl::Status Commit() = 0;
  // Commits, leaves the group and releases the handle. Idempotent.
  virtual void Close() = 0;
};

}  // namespace leadflow::kafka
