#include "common/kafka/offset_tracker.h"

namespace leadflow::kafka {

uint64_t OffsetTracker::Begin(const TopicPartition& tp, int64_t offset) {
  PartitionState& p = partitions_[tp];
  if (p.generation == 0) p.generation = next_generation_++;
  if (p.in_flight.insert(offset).second) ++in_flight_total_;
  if (offset > p.highest_begun) p.highest_begun = offset;
  return p.generation;
}

std::optional<int64_t> OffsetTracker::Complete(const TopicPartition& tp, int64_t offset,
                                               uint64_t generation) {
  auto it = partitions_.find(tp);
  if (it == partitions_.end() || it->second.generation != generation) return std::nullopt;
  PartitionState& p = it->second;
  if (p.in_flight.erase(offset) == 0) return std::nullopt;
  --in_flight_total_;
  const int64_t commit = p.in_flight.empty() ? p.highest_begun + 1 : *p.in_flight.begin();
  if (commit <= p.committed) return std::nullopt;
  p.committed = commit;
  return commit;
}

void OffsetTracker::Reset(const TopicPartition& tp) {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return;
  in_flight_total_ -= it->second.in_flight.size();
  partitions_.erase(it);
}

std::optional<int64_t> OffsetTracker::OldestInFlight(const TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  if (it == partitions_.end() || it->second.in_flight.empty()) return std::nullopt;
  return *it->second.in_flight.begin();
}

bool OffsetTracker::IsCurrent(const TopicPartition& tp, uint64_t generation) const {
  auto it = partitions_.find(tp);
  return it != partitions_.end() && it->second.generation == generation;
}

}  // namespace leadflow::kafka
