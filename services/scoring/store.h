#pragma once

// ScoringStore: scoring's Redis key schema, in one place (ARCHITECTURE.md §5).
//
//   scoring:{<lead_id>}:state               versioned record: the ScoringLeadState (protobuf)
//   scoring:{<lead_id>}:applied:<event_id>  apply-once record of an input, memo = its outputs
//   scoring:{<lead_id>}:keys                the lead's key registry (erasure deletes every member)
//   scoring:{<lead_id>}:erased              erasure tombstone (30 days)
//   scoring:segment:<segment_id>            set of the lead ids in a segment (ListSegmentMembers)
//
// Segment sets are updated inside the same atomic apply as the state record (SADD on entering,
// SREM on leaving), so they never disagree with the stored scores. They are shared between
// leads, so they carry no lead hash tag: on Redis Cluster the apply would span slots (the
// documented limit, as for capture's indexes).
//
// Thread safety: all methods may be called concurrently.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/redis/apply_once.h"
#include "common/redis/client.h"
#include "leadflow/internal/v1/scoring_state.pb.h"

namespace leadflow::scoring {

inline constexpr char kService[] = "scoring";

class ScoringStore {
 public:
  explicit ScoringStore(redis::RedisClient& client) : client_(client), apply_(client) {}

  static std::string StateKey(const std::string& lead_id);
  static std::string SegmentKey(const std::string& segment_id);

  // The lead's state, or nullopt if scoring never heard of it (or it was erased).
  absl::StatusOr<std::optional<internal::v1::ScoringLeadState>> LoadState(
      const std::string& lead_id);

  struct SegmentPage {
    std::vector<std::string> lead_ids;
    // Empty at the end.
    std::string next_page_token;
  };
  // Up to `page_size` members of a segment, from `page_token` (empty: the start). Paging follows
  // SSCAN's guarantee: a member present for the whole walk is returned at least once; one added
  // or removed meanwhile may or may not be. INVALID_ARGUMENT for a malformed token.
  absl::StatusOr<SegmentPage> ListSegmentMembers(const std::string& segment_id, int page_size,
                                                 const std::string& page_token);

  redis::ApplyOnce& apply() { return apply_; }

  // Deletes every trace of a lead: its registered keys (state, apply-once records) and its
  // membership of every segment, whether one of `known_segment_ids` (the rules in force) or one
  // its stored score names; leaves the tombstone. Idempotent.
  absl::Status Erase(const std::string& lead_id, const std::vector<std::string>& known_segment_ids,
                     absl::Duration tombstone_ttl);

 private:
  redis::RedisClient& client_;
  redis::ApplyOnce apply_;
};

}  // namespace leadflow::scoring
