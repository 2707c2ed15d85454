#pragma once

// ScoringStore: scoring's Redis key schema, in one place (ARCHITECTURE.md §5).
//
//   scoring:{<lead_id>}:state               versioned record: the ScoringLeadState (protobuf)
//   scoring:{<lead_id>}:history             list of the ScoreSnapshots emitted on leads.scored,
//                                           newest first, capped (ExplainScore's history); pushed
//                                           by the same atomic apply that emits the snapshot, so
//                                           the state record is not rewritten with ~7 kB of
//                                           history on every input. (Records written before
//                                           this list existed keep theirs in the state's
//                                           `history` field until their next apply moves it.)
//   scoring:{<lead_id>}:applied:<event_id>  apply-once record of an input, memo = its outputs
//   scoring:{<lead_id>}:keys                the lead's key registry (erasure deletes every member)
//   scoring:{<lead_id>}:erased              erasure tombstone (30 days)
//   scoring:segment:<segment_id>            set of the lead ids in a segment (ListSegmentMembers)
//   scoring:model                           versioned record: the learned ConversionModelState;
//                                           rewritten atomically with each trained outcome's
//                                           apply-once record (scoring:{<lead>}:applied:<id>)
//   scoring:leads                           sorted set (all scores 0) of every lead with a state,
//                                           walked in lexical order by the re-score after a rules
//                                           change
//   scoring:decay:schedule                  sorted set: lead id -> when time alone may next change
//                                           its score (Unix ms; engine NextChangeAt)
//   scoring:decay:inflight                  sorted set: lead id claimed by a decay pass -> lease
//                                           expiry (Unix ms)
//   scoring:decay:claimed                   hash: lead id -> the due time it was claimed at, so an
//                                           expired claim goes back with the same due time (and
//                                           the re-score replays the same event id)
//   scoring:rescore                         hash: fingerprint (rules being re-scored for), cursor
//                                           (last lead id done), done (fingerprint finished)
//   scoring:rescore:lock                    the replica that runs the re-score (SET NX PX lease)
//
// The schedule and the lead index are updated inside the same atomic apply as the state record,
// like the segment sets; only Claim, Reclaim and Release move leads between the decay sets on
// their own, atomically (the model of nurturing's scheduler, services/nurturing/store.h).
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
#include "common/redis/lua_script.h"
#include "leadflow/internal/v1/scoring_state.pb.h"

namespace leadflow::scoring {

inline constexpr char kService[] = "scoring";

class ScoringStore {
 public:
  explicit ScoringStore(redis::RedisClient& client);

  static std::string StateKey(const std::string& lead_id);
  static std::string HistoryKey(const std::string& lead_id);
  // For Plan::extra_commands: `snapshot` first in the lead's history, keeping `size` at most.
  static std::vector<redis::Args> PushHistoryCommands(const std::string& lead_id,
                                                      const events::v1::ScoreSnapshot& snapshot,
                                                      int size);
  // For Plan::extra_commands: the history as `history` (newest first), replacing the list;
  // moves a history kept in the state record (the earlier layout) into the list.
  static std::vector<redis::Args> ReplaceHistoryCommands(
      const std::string& lead_id,
      const google::protobuf::RepeatedPtrField<events::v1::ScoreSnapshot>& history);
  static std::string SegmentKey(const std::string& segment_id);
  static const std::string& ModelKey();
  static const std::string& LeadsKey();
  static const std::string& ScheduleKey();
  static const std::string& InflightKey();
  static const std::string& ClaimedKey();
  static const std::string& RescoreKey();
  static const std::string& RescoreLockKey();

  // For Plan::extra_commands: ZADD the lead to the decay schedule at `due`, or ZREM it (nullopt).
  static redis::Args ScheduleCommand(const std::string& lead_id, std::optional<absl::Time> due);
  // For Plan::extra_commands: the lead belongs to the lead index.
  static redis::Args IndexCommand(const std::string& lead_id);

  // The stored model, or nullopt when no outcome has trained one yet.
  absl::StatusOr<std::optional<internal::v1::ConversionModelState>> LoadModel();
  // The stored model's record version (0: none): a cheap check whether a cached copy is current.
  absl::StatusOr<int64_t> ModelVersion();

  // A lead claimed from the decay schedule, and the due time it was claimed at.
  struct Claimed {
    std::string lead_id;
    absl::Time due;
  };
  // Atomically moves up to `limit` leads due at `now` (earliest first) from the schedule to the
  // in-flight set, leased until now + lease. Two callers never get the same lead.
  absl::StatusOr<std::vector<Claimed>> Claim(absl::Time now, absl::Duration lease, int limit);
  // Atomically moves up to `limit` leads whose lease expired at `now` back to the schedule at the
  // due time they were claimed at (an earlier time already there is kept). Returns how many.
  absl::StatusOr<int> Reclaim(absl::Time now, int limit);
  // Ends claims (their re-score is applied and its events acknowledged).
  absl::Status Release(const std::vector<std::string>& lead_ids);
  // When the lead is due in the decay schedule; nullopt when it is not in it.
  absl::StatusOr<std::optional<absl::Time>> ScheduledAt(const std::string& lead_id);

  // Up to `limit` lead ids of the index after `after` (lexical order; empty: from the start).
  absl::StatusOr<std::vector<std::string>> LeadsAfter(const std::string& after, int limit);
  // How many lead ids of the index come after `after` (all when empty).
  absl::StatusOr<int64_t> CountLeadsAfter(const std::string& after);

  // The re-score's progress record (absent fields read empty).
  struct RescoreProgress {
    std::string fingerprint;  // rules being re-scored for
    std::string cursor;       // last lead id done ("" = none yet)
    std::string done;         // fingerprint whose re-score finished
  };
  absl::StatusOr<RescoreProgress> LoadRescore();
  absl::Status SaveRescore(const RescoreProgress& progress);
  // Takes or extends the re-score lock for `owner` until now + lease; false when another owner
  // holds it.
  absl::StatusOr<bool> LockRescore(const std::string& owner, absl::Duration lease);

  // The lead's state, or nullopt if scoring never heard of it (or it was erased).
  // The lead's emitted snapshots, newest first: the history list, or for a record not applied
  // since the list existed, the history its state holds.
  absl::StatusOr<std::vector<events::v1::ScoreSnapshot>> LoadHistory(
      const std::string& lead_id, const internal::v1::ScoringLeadState& state);

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
  const redis::LuaScript claim_script_;
  const redis::LuaScript reclaim_script_;
  const redis::LuaScript lock_script_;
};

}  // namespace leadflow::scoring
