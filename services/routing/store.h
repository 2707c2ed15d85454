#pragma once

// RoutingStore: routing's Redis key schema, in one place (ARCHITECTURE.md §5).
//
//   routing:{<lead_id>}:assignment          versioned record: the RoutingAssignment (protobuf)
//   routing:{<lead_id>}:applied:<event_id>  apply-once record of an input, memo = its outputs
//   routing:{<lead_id>}:keys                the lead's key registry (erasure deletes every member)
//   routing:{<lead_id>}:erased              erasure tombstone (30 days)
//   routing:team:{<team_id>}:state          versioned record: the RoutingTeamState (protobuf):
//                                           rotation cursor and per-rep counters, shared by the
//                                           team's leads
//   routing:team:{<team_id>}:queue          sorted set: leads waiting in the team queue, scored
//                                           by queue time (ms)
//   routing:rep:<rep_id>:open               sorted set: leads the rep holds open, scored by
//                                           assignment time (ms)
//
// A routing decision is one atomic apply over the lead's assignment and its team's state, so
// two replicas can never assign one lead twice or push a rep over a cap: the second one's
// version check fails and it re-plans on the new counters. The team record and the two sorted
// sets are shared between leads and carry no lead hash tag (the documented Redis Cluster limit).
// The team record must never be registered in a lead's registry (erasing the lead would wipe the
// team's counters), so routing applies pass no registry key and register the lead's own keys
// with an explicit SADD (see LeadKeysToRegister).
//
// Thread safety: all methods may be called concurrently.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis/apply_once.h"
#include "common/redis/client.h"
#include "leadflow/internal/v1/routing_state.pb.h"

namespace leadflow::routing {

inline constexpr char kService[] = "routing";

class RoutingStore {
 public:
  explicit RoutingStore(redis::RedisClient& client) : client_(client), apply_(client) {}

  static std::string AssignmentKey(const std::string& lead_id);
  static std::string TeamStateKey(const std::string& team_id);
  static std::string TeamQueueKey(const std::string& team_id);
  static std::string RepOpenKey(const std::string& rep_id);
  // The command that registers a lead's own keys touched by an apply (its assignment record and
  // the apply-once record `dedup_key`) for erasure; goes into Plan.extra_commands.
  static redis::Args LeadKeysToRegister(const std::string& lead_id, const std::string& dedup_key);

  // The lead's assignment, or nullopt if it was never routed (or was erased).
  absl::StatusOr<std::optional<internal::v1::RoutingAssignment>> LoadAssignment(
      const std::string& lead_id);
  // Assignments of several leads, in order; leads without one are skipped.
  absl::StatusOr<std::vector<internal::v1::RoutingAssignment>> LoadAssignments(
      const std::vector<std::string>& lead_ids);
  // The team's shared state (empty when the team never routed a lead).
  absl::StatusOr<internal::v1::RoutingTeamState> LoadTeamState(const std::string& team_id);

  // Up to `limit` lead ids of a rep's open leads / a team's queue, oldest first.
  absl::StatusOr<std::vector<std::string>> RepOpenLeads(const std::string& rep_id, int limit);
  absl::StatusOr<std::vector<std::string>> TeamQueue(const std::string& team_id, int limit);

  redis::ApplyOnce& apply() { return apply_; }

  // Deletes every trace of a lead: its registered keys (assignment, apply-once records) and its
  // entries in the queues of `team_ids` and the open sets of `rep_ids` (every team and rep the
  // caller knows of); leaves the tombstone. The caller releases the lead's counters in the team
  // record first. Idempotent.
  absl::Status Erase(const std::string& lead_id, const std::vector<std::string>& team_ids,
                     const std::vector<std::string>& rep_ids, absl::Duration tombstone_ttl);

 private:
  absl::StatusOr<std::vector<std::string>> OldestMembers(const std::string& key, int limit);

  redis::RedisClient& client_;
  redis::ApplyOnce apply_;
};

}  // namespace leadflow::routing
