#pragma once

// OffsetTracker: which offset of each partition may be committed.
//
// Messages of a partition finish out of order (their output events are acknowledged by the
// broker in any order), but a committed offset says "everything before me is done". The tracker
// keeps the in-flight offsets of each partition and reports the commit point: the lowest
// unfinished offset, or one past the highest finished when nothing is in flight.
//
// A partition's generation changes when its in-flight work is abandoned (revocation, rewind);
// completions of an older generation are ignored so they can never move the commit point of
// work that will be redone.
//
// Thread safety: not thread-safe; the consumer loop owns it.

#include <cstdint>
#include <optional>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "common/kafka/message.h"

namespace leadflow::kafka {

class OffsetTracker {
 public:
  // Records that `offset` started. Returns the partition's generation, to pass to Complete().
  uint64_t Begin(const TopicPartition& tp, int64_t offset);

  // Records that `offset` finished. Returns the new commit offset if it advanced; nullopt if it
  // did not or if `generation` is stale.
  std::optional<int64_t> Complete(const TopicPartition& tp, int64_t offset, uint64_t generation);

  // Forgets the partition's in-flight work (it will be redelivered) and bumps its generation.
  void Reset(const TopicPartition& tp);

  // Number of offsets in flight across all partitions.
  size_t InFlight() const { return in_flight_total_; }
  // The lowest unfinished offset of `tp`, if any.
  std::optional<int64_t> OldestInFlight(const TopicPartition& tp) const;
  // Whether `generation` is still the current one of `tp`.
  bool IsCurrent(const TopicPartition& tp, uint64_t generation) const;

 private:
  struct PartitionState {
    uint64_t generation = 0;
    std::set<int64_t> in_flight;
    int64_t highest_begun = -1;
    int64_t committed = -1;  // last commit offset reported
  };
  absl::flat_hash_map<TopicPartition, PartitionState> partitions_;
  size_t in_flight_total_ = 0;
  uint64_t next_generation_ = 1;
};

}  // namespace leadflow::kafka
