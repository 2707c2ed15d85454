#pragma once

// NurturingStore: nurturing's Redis key schema, in one place (ARCHITECTURE.md §5).
//
//   nurturing:{<lead_id>}:enrollment              versioned record: NurtureLeadState (protobuf)
//   nurturing:{<lead_id>}:applied:<event_id>      apply-once record of a consumed event
//                                                 (leads.scored, .outcomes, .routed, .activity);
//                                                 memo = its nurture.enrollments events
//   nurturing:{<lead_id>}:applied:req:<id>        apply-once record of a gRPC command; memo =
//                                                 the Enrollment it answered and its events
//   nurturing:{<lead_id>}:applied:due:<version>   apply-once record of a scheduler decision that
//                                                 sent nothing (the record's version makes it
//                                                 unique; kept one day)
//   nurturing:{<lead_id>}:touch:<touch_id>        apply-once record of a touch decision; memo =
//                                                 the encoded touch (and enrolment events of the
//                                                 same decision), re-sent verbatim
//   nurturing:{<lead_id>}:delivered:<touch_id>    apply-once record of a touch's delivery report
//                                                 (the slow path of ConfirmDelivered, below)
//   nurturing:{<lead_id>}:delivery                versioned record: the id of the last touch
//                                                 whose delivery ConfirmDelivered recorded
//   nurturing:{<lead_id>}:keys                    the lead's key registry (erasure deletes all)
//   nurturing:{<lead_id>}:erased                  erasure tombstone (30 days)
//   nurturing:schedule                            sorted set of lead ids, score = when the
//                                                 scheduler must look at the lead (Unix ms)
//   nurturing:inflight                            sorted set of lead ids claimed by a scheduler,
//                                                 score = lease expiry (Unix ms)
//   nurturing:outbox                              sorted set of scheduler decisions whose
//                                                 enrolment events await the broker's
//                                                 acknowledgement (OutboxMember: the lead and the
//                                                 decision's apply-once key), score = when they
//                                                 were last sent (Unix ms)
//
// A lead is in at most one of the two sets: in the schedule while it waits for a time, in the
// in-flight set from a claim until the decision is written (or, for a touch, until the broker
// acknowledged it), in neither when only an event or a command can move it. Every change to a
// lead's place in the schedule is an extra command of the atomic apply that changes its record
// (see enrollment.h WakeUpAt), so the two never disagree; only Claim and Reclaim move leads
// between the sets on their own, atomically. The two sets are global (no hash tag): on Redis
// Cluster they would live in one slot, and the apply transactions would span slots (documented
// limit, as for capture's indexes).
//
// A lead's state is its enrollment record read together with its delivery record: when the
// latter names the touch the former still has in flight, that touch was delivered (ParseState
// clears it). Every apply over the lead reads and version-checks both (StateKeys), so a
// delivery recorded between a read and an apply is a conflict, never a lost wake-up.
//
// Thread safety: all methods may be called concurrently, from any number of replicas.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis/apply_once.h"
#include "common/redis/client.h"
#include "common/redis/lua_script.h"
#include "common/redis/outbox.h"
#include "leadflow/internal/v1/nurturing_state.pb.h"

namespace leadflow::nurturing {

// A lead's record as read: version 0 means there is none (the state is then empty).
struct StoredState {
  int64_t version = 0;
  std::string incarnation;       // of the enrollment record (apply_once.h)
  int64_t delivery_version = 0;  // of the delivery record
  internal::v1::NurtureLeadState state;
};

// A touch the broker acknowledged, as ConfirmDelivered records it.
struct DeliveredTouch {
  std::string lead_id;
  std::string touch_id;
  // The enrollment record as the decision that sent the touch left it (version, incarnation),
  // and when the lead is due once the touch is delivered (WakeUpAt of that state).
  int64_t version = 0;
  std::string incarnation;
  std::optional<absl::Time> due_after;
};

// What ConfirmDelivered did with one touch.
enum class DeliveryRecorded {
  kRecorded,         // delivery recorded, lead rescheduled and released
  kAlreadyRecorded,  // a report of the same touch did it before (a re-sent touch)
  kRecordMoved,      // the enrollment changed since the send: confirm through apply-once
};

class NurturingStore {
 public:
  explicit NurturingStore(redis::RedisClient& client);

  static std::string EnrollmentKey(const std::string& lead_id);
  static std::string ScoredKey(const std::string& lead_id, const std::string& event_id);
  static std::string RequestKey(const std::string& lead_id, const std::string& request_id);
  static std::string DecisionKey(const std::string& lead_id, int64_t version);
  static std::string TouchKey(const std::string& lead_id, const std::string& touch_id);
  static std::string DeliveredKey(const std::string& lead_id, const std::string& touch_id);
  static std::string DeliveryKey(const std::string& lead_id);
  // The records every apply over the lead reads: {EnrollmentKey, DeliveryKey}.
  static std::vector<std::string> StateKeys(const std::string& lead_id);
  static std::string RegistryKey(const std::string& lead_id);
  static std::string TombstoneKey(const std::string& lead_id);
  static const std::string& ScheduleKey();
  static const std::string& InflightKey();
  // The scheduler's outbox (common/redis/outbox.h): members redis::OutboxMember(lead id, the
  // decision's apply-once key).
  static const std::string& OutboxKey();

  // The command that puts the lead where `wake_up_at` says: ZADD to the schedule at that time,
  // or ZREM from it when nullopt. For Plan::extra_commands.
  static redis::Args ScheduleCommand(const std::string& lead_id,
                                     std::optional<absl::Time> wake_up_at);
  // ZREM from the in-flight set, for Plan::extra_commands.
  static redis::Args ReleaseCommand(const std::string& lead_id);

  // Parses the StateKeys records read through apply(); an absent enrollment gives an empty
  // state. A touch in flight that the delivery record names is cleared (delivered).
  static absl::StatusOr<StoredState> ParseState(const std::vector<redis::Versioned>& records);
  absl::StatusOr<StoredState> Load(const std::string& lead_id);

  // Atomically moves up to `limit` leads due at `now` (score <= now, earliest first) from the
  // schedule to the in-flight set with a lease until `now + lease`, and returns them. Two
  // callers never get the same lead.
  absl::StatusOr<std::vector<std::string>> Claim(absl::Time now, absl::Duration lease, int limit);
  // Atomically moves up to `limit` leads whose lease expired at `now` back to the schedule, due
  // now (an earlier due time already there is kept). Returns them.
  absl::StatusOr<std::vector<std::string>> Reclaim(absl::Time now, int limit);
  // For each touch, in one round trip: if the enrollment record is still as the send left it,
  // records the delivery in the lead's delivery record, puts the lead back in the schedule at
  // `due_after` and releases its claim — atomically, one checked write per touch (an apply-once
  // transaction without an apply-once record) instead of an apply-once rewrite of the
  // enrollment. Results in input order; a touch whose enrollment kept changing is kRecordMoved.
  absl::StatusOr<std::vector<DeliveryRecorded>> ConfirmDelivered(
      const std::vector<DeliveredTouch>& touches);

  // The scheduler's outbox, on OutboxKey().
  redis::Outbox& outbox() { return outbox_; }

  // Takes the lead out of both sets (after an erasure).
  absl::Status Forget(const std::string& lead_id);

  // When the lead is due in the schedule / its lease expires; nullopt when not in the set.
  absl::StatusOr<std::optional<absl::Time>> ScheduledAt(const std::string& lead_id);
  absl::StatusOr<std::optional<absl::Time>> LeaseExpiry(const std::string& lead_id);

  // Deletes every key of the lead (registry members and the record), leaves a tombstone for
  // `tombstone_ttl`, and takes the lead out of the schedule and the in-flight set.
  absl::Status Erase(const std::string& lead_id, absl::Duration tombstone_ttl);

  redis::ApplyOnce& apply() { return apply_; }

 private:
  absl::StatusOr<std::optional<absl::Time>> ScoreIn(const std::string& key,
                                                    const std::string& lead_id);

  redis::RedisClient& client_;
  redis::ApplyOnce apply_;
  redis::Outbox outbox_;
  const redis::LuaScript move_due_script_;  // Claim and Reclaim
};

}  // namespace leadflow::nurturing
