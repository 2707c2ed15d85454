#pragma once

// RoutingStore: routing's Redis key schema, in one place (ARCHITECTURE.md §5).
//
//   routing:{<lead_id>}:assignment          versioned record: the RoutingAssignment (protobuf)
//   routing:{<lead_id>}:applied:<event_id>  apply-once record of an input, memo = its outputs
//   routing:{<lead_id>}:keys:expiring       the lead's key registry: its apply-once records by
//                                           expiry (pruned on apply; erasure deletes them)
//   routing:{<lead_id>}:erased              erasure tombstone (30 days)
//   routing:team:{<team_id>}:state          versioned record: the RoutingTeamState (protobuf):
//                                           rotation cursor and per-rep counters, shared by the
//                                           team's leads
//   routing:team:{<team_id>}:queue          sorted set: leads waiting in the team queue, scored
//                                           by queue time (ms)
//   routing:rep:<rep_id>:open               sorted set: leads the rep holds open, scored by
//                                           assignment time (ms)
//   routing:rep:{<rep_id>}:presence         versioned record: the rep's RepPresence (protobuf),
//                                           set by SetAvailability; absent = available
//   routing:rep:{<rep_id>}:applied:<req>    apply-once record of a SetAvailability request id;
//                                           memo = the stored RepPresence
//   routing:presence:changes                counter: every presence write increments it in its
//                                           transaction; decisions watch it instead of each
//                                           presence record they read (ApplyOnceRequest::
//                                           guard_key)
//   routing:overrides                       versioned record: RoutingOverrides (protobuf), the
//                                           teams created or replaced by UpsertTeam / UpsertRep
//   routing:overrides:applied:<version>     apply-once record of one override write (one per
//                                           version of the record; kept one day)
//   routing:sla                             sorted set: leads assigned and not yet accepted or
//                                           contacted, scored by their SLA deadline (ms), and
//                                           queued leads of teams with a queue timeout, scored
//                                           by when the wait escalates; the pass reads only the
//                                           due ones
//   routing:outbox                          sorted set of "<event id>|<lead id>": a pass's
//                                           decision applied but its events not yet
//                                           acknowledged by the broker, scored by when it was
//                                           applied (ms); a later pass re-sends the memo
//   routing:{<lead_id>}:applied:sla:...     apply-once records of the scheduler's decisions: SLA
//   routing:{<lead_id>}:applied:drain:...   breaches, queue drains, queue timeouts and index
//   routing:{<lead_id>}:applied:queue-...   fixes (synthetic input ids "<what>:<lead>:<episode>:
//                                           <attempt>:<assigned ms>"; memo = the events)
//
// A routing decision is one atomic apply over the lead's assignment and its team's state, so
// two replicas can never assign one lead twice or push a rep over a cap: the second one's
// version check fails and it re-plans on the new counters. The team record and the two sorted
// sets are shared between leads and carry no lead hash tag (the documented Redis Cluster limit).
// The team record must never be registered in a lead's registry (erasing the lead would wipe the
// team's counters): routing applies pass the lead's registry with every record unregistered
// (ApplyOnceRequest::register_records false), so it lists the lead's apply-once records (under
// `:expiring`, until they expire), and Erase deletes the assignment by name.
//
// Thread safety: all methods may be called concurrently.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

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
  static std::string RepPresenceKey(const std::string& rep_id);
  static std::string PresenceRequestKey(const std::string& rep_id, const std::string& request_id);
  static std::string PresenceChangesKey();
  // The command every write of a presence record adds to its transaction (see the key schema).
  static redis::Args CountPresenceChange();
  static std::string OverridesKey();
  static std::string OverridesWriteKey(int64_t version);
  static std::string SlaIndexKey();
  static std::string OutboxKey();
  // An outbox member (see the key schema) and its parts.
  static std::string OutboxMember(const std::string& event_id, const std::string& lead_id);
  static bool ParseOutboxMember(const std::string& member, std::string* event_id,
                                std::string* lead_id);

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

  // The stored team overrides and the record's version (0 and empty when none).
  absl::StatusOr<std::pair<int64_t, internal::v1::RoutingOverrides>> LoadOverrides();
  // Presence of each rep id (reps never set are absent from the map).
  absl::StatusOr<absl::flat_hash_map<std::string, internal::v1::RepPresence>> LoadPresence(
      const std::vector<std::string>& rep_ids);

  // Up to `limit` lead ids whose SLA deadline is at or before `now`, earliest first.
  absl::StatusOr<std::vector<std::string>> DueSla(absl::Time now, int limit);
  // Up to `limit` outbox members recorded at or before `before`, oldest first.
  absl::StatusOr<std::vector<std::string>> StaleOutbox(absl::Time before, int limit);
  // Runs one command (index maintenance of the passes).
  absl::Status Command(const redis::Args& args);

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
