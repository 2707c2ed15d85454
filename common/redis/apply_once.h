#pragma once

// ApplyOnce: the apply-once primitive of ARCHITECTURE.md §4.1. An input's event id is checked and
// recorded atomically with the state change it causes, and the outputs the change produced are
// memoised with it, so a re-delivered input changes nothing and yields the same outputs again.
//
// How it works (read → plan → apply, optimistic concurrency, Redis's WATCH / MULTI / EXEC):
//   1. One round trip, on one connection: WATCH the dedup key, the lead's tombstone and the
//      versioned state records the caller names (or, for records it says are guarded, their
//      guard key; for the dedup key and tombstone, where the caller names an anchor record,
//      that record), then read them (and Redis's clock).
//   2. If the dedup key exists, its memo is returned (kDuplicate). If the lead was erased, nothing
//      happens (kErased). Otherwise the caller's planner turns the state into a Plan: records to
//      write or delete, extra commands (index updates), and the memo (serialised outputs).
//   3. One round trip: MULTI, the plan's writes and commands, the dedup record with the memo,
//      the registration of every key in the lead's key registry (so erasure can delete them
//      all), EXEC. Lasting keys go in the registry set; the expiring dedup records go in
//      `<registry>:expiring`, ordered by expiry and pruned on every apply, so the registry of a
//      long-lived lead stays bounded. Redis runs the transaction only if no watched key moved
//      since the WATCH (a concurrent writer: another replica, a gRPC command); otherwise nothing
//      is applied and Run() reads and plans again, up to a bound (then ABORTED, which consumers
//      treat as transient).
// No Lua runs on the way: a script spent about half of Redis's work per apply in its VM and
// glue (docs/BENCHMARKS.md), where a transaction runs the same writes as plain commands.
// A batch goes in transactions of at most 64 distinct watched keys, one after the other on the
// same connection (Redis 7.0 compares each key WATCH adds with every key the connection
// already watches, so its cost grows with the square of the keys), each round trip carrying
// one transaction's MULTI ... EXEC and the next one's WATCH and reads. Where several requests of
// a transaction write the same record, only the last write is sent (the others' effects are in
// it, since each request plans on the record as the ones before it leave it).
//
// State records are hashes {v: version, d: data, i: incarnation}; version 0 means "absent". The
// planner must be a pure function of the state it is given: it may run more than once.
//
// Keys should share the lead's hash tag (see keys.h). Extra commands may name other keys (e.g. a
// global index); that is fine on one Redis and is the documented limit for Redis Cluster.
//
// Thread safety: Run() may be called concurrently; races resolve through the version check.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/redis/client.h"
#include "common/redis/lua_script.h"

namespace leadflow::redis {

namespace internal {
struct RecordWrite;  // one record write queued in a transaction (apply_once.cc)
}  // namespace internal

// A state record as read.
struct Versioned {
  std::string key;
  int64_t version = 0;              // 0: absent
  std::optional<std::string> data;  // nullopt when absent
  // Random id given when the record was created and kept by its updates, so a record deleted
  // and recreated never passes for the one that was read. Empty for records written before
  // incarnations existed (their data is compared instead). Maintained by ApplyOnce alone.
  std::string incarnation;
};

struct Write {
  std::string key;                            // must be one of the request's state_keys
  std::optional<std::string> data;            // nullopt deletes the record
  absl::Duration ttl = absl::ZeroDuration();  // zero: no expiry
};

struct Plan {
  std::vector<Write> writes;
  // Commands run atomically after the writes (ZADD to a schedule, SET of an index...).
  std::vector<Args> extra_commands;
  // Keys created by extra_commands that belong to the lead and must go on erasure.
  std::vector<std::string> register_keys;
  // Returned verbatim to every re-delivery of the same input.
  std::string memo;
  // Incarnations (16 hex digits, NewIncarnation()) this plan gives records it writes, by key;
  // a record written and not listed keeps the one it has (a record created gets a random one).
  // A caller that plans a later request on the state these writes leave (RunBatchOnRead with
  // chained records) gives each a fresh one, so that the later request's check passes only if
  // this plan was applied: with the incarnation kept, a conflicting writer that moved the
  // version by one would pass for this plan's write.
  std::vector<std::pair<std::string, std::string>> incarnations;
};

struct ApplyOnceRequest {
  // Records the input: `<service>:{lead}:applied:<event_id>` (see keys.h). Empty for a checked
  // write that needs no record of its own (its caller tells a repeat apart from the records,
  // as nurturing's delivery confirmation does): the plan is applied if the records are still as
  // planned on, and nothing is remembered; the result's memo is the plan's.
  std::string dedup_key;
  // How long the input is remembered; re-deliveries later than this apply again.
  absl::Duration dedup_ttl = absl::Hours(24 * 7);
  // Records read and version-checked; writes may touch only these.
  std::vector<std::string> state_keys;
  // Those of state_keys whose data the planner never reads and that its plan never writes (a
  // record only checked, as nurturing's delivery confirmation checks the enrollment record):
  // read without their data (Versioned::data is nullopt, unless a request of the same batch
  // reads the record with it; version and incarnation as stored) and watched like the others.
  // A plan that writes one is refused (INTERNAL).
  std::vector<std::string> check_only_keys;
  // Those of state_keys that are not watched themselves: records many requests read and few
  // writes change (routing's rep presence), whose every writer also changes `guard_key`, which
  // is watched in their place. Redis compares each key a connection watches with every key it
  // already watches, so one guard instead of tens of shared records keeps a transaction's WATCH
  // short and lets more requests share it. Read and checked like the others; without a
  // guard_key they are watched.
  std::vector<std::string> guarded_keys;
  std::string guard_key;
  // The lead's key registry; empty to skip registration.
  std::string registry_key;
  // False: the records are not added to the registry, only the apply-once record is (under
  // `<registry>:expiring`), for a service whose records other leads share (routing's team
  // counters: erasing one lead must leave them) and whose erasure deletes its own by name.
  bool register_records = true;
  // The lead's erasure tombstone; empty to skip the check.
  std::string tombstone_key;
  // One of state_keys, neither guarded nor check-only: the lead's own record, which the lead's
  // erasure deletes (through the registry or Erase's extra keys) and which every plan for this
  // input that has any effect writes (nurturing's enrollment; routing's assignment, for a lead
  // it routes). Where the records are given (RunBatchOnRead), the anchor's watch stands in for
  // the dedup key's: another applier of the same input writes the anchor too, so either
  // transaction aborts the other. Where the given anchor exists, it stands in for the
  // tombstone's as well: an erasure deletes it. Those keys are then read but not watched, which
  // halves what a typical request watches (see WATCH's cost above). A plan that does not write
  // the anchor (or deletes it where it is absent, which moves no watch) is finished alone with
  // Run(), which watches everything. Empty: the dedup key and the tombstone are watched.
  std::string anchor_key;
};

enum class ApplyOutcome {
  kApplied,    // the plan was applied now
  kDuplicate,  // the input had been applied before; memo is the original one
  kErased,     // the lead was erased; nothing applied, memo empty
};

struct ApplyResult {
  ApplyOutcome outcome = ApplyOutcome::kApplied;
  std::string memo;
};

// A new record's incarnation: 64 random bits as 16 hex digits. For the rare script outside
// ApplyOnce that creates a versioned record itself (it must write `i` with this).
std::string NewIncarnation();

// Commands, for a Plan's extra_commands, that move every key registered in `from_registry` —
// lasting members and expiring apply-once records — into `to_registry` and delete
// `from_registry`: what merging one lead into another does with the absorbed lead's keys, so
// that erasing the survivor erases them too.
std::vector<Args> AdoptRegistryCommands(const std::string& to_registry,
                                        const std::string& from_registry);

class ApplyOnce {
 public:
  using Planner = absl::FunctionRef<absl::StatusOr<Plan>(const std::vector<Versioned>& state)>;

  explicit ApplyOnce(RedisClient& client, int max_attempts = 16);

  // Errors: the planner's own error (returned as is, nothing applied); UNAVAILABLE when Redis is
  // unreachable; ABORTED when the records kept changing under us.
  absl::StatusOr<ApplyResult> Run(const ApplyOnceRequest& request, Planner planner);

  // What an input already applied under `request.dedup_key` gave — its memo (kDuplicate), or
  // kErased — without applying anything: nullopt when no record is there (never applied, or
  // expired). For outboxes re-sending an applied effect's events (outbox.h).
  absl::StatusOr<std::optional<ApplyResult>> Recorded(const ApplyOnceRequest& request);

  // Run() for many requests (mostly different leads) in as few transactions as the watch
  // limit allows: a round trip watches and reads the requests' dedup keys, tombstones and
  // records, the next applies their plans (MULTI ... EXEC) and reads for the next transaction.
  // Requests are planned in order, each on the records as the plans before it leave them, so
  // the result is that of running them one after the other; a request that depends on a key
  // an earlier plan's extra commands name is finished alone with Run(). If another writer
  // moved a watched key before EXEC, nothing of that transaction applied and its requests are
  // tried again (a few times, then each alone). `planner(i, records)` plans request i and
  // may be called more than once. Results are in request order, each with its own status; an
  // UNAVAILABLE Redis fails every request whose transaction it did not answer.
  using BatchPlanner =
      absl::FunctionRef<absl::StatusOr<Plan>(size_t i, const std::vector<Versioned>& state)>;
  std::vector<absl::StatusOr<ApplyResult>> RunBatch(const std::vector<ApplyOnceRequest>& requests,
                                                    BatchPlanner planner);
  // RunBatch() for a caller that has just read every request's records itself (it needed them
  // to know the dedup keys): `read[i]` holds request i's state_keys records, as Read() gave
  // them (or as the caller's earlier plans in this batch leave them: chained records, see
  // Plan::incarnations), and they are planned on as given. Under the WATCH each is compared
  // with the record as the transaction finds it (version and incarnation, only those are read
  // again); a request whose records moved is finished alone with Run(), which reads afresh.
  std::vector<absl::StatusOr<ApplyResult>> RunBatchOnRead(
      const std::vector<ApplyOnceRequest>& requests,
      const std::vector<std::vector<Versioned>>& read, BatchPlanner planner);

  // Reads versioned records (for queries, or for RunBatchOnRead; no dedup involved).
  absl::StatusOr<std::vector<Versioned>> Read(const std::vector<std::string>& keys);

  // Deletes every key in the lead's registry plus `extra_keys`, and leaves a tombstone for
  // `tombstone_ttl` so late events of the lead are ignored. Idempotent.
  absl::Status Erase(const std::string& registry_key, const std::string& tombstone_key,
                     absl::Duration tombstone_ttl, const std::vector<std::string>& extra_keys);

 private:
  // RunBatch and RunBatchOnRead: `given` null reads the records in the transaction.
  std::vector<absl::StatusOr<ApplyResult>> RunBatchImpl(
      const std::vector<ApplyOnceRequest>& requests,
      const std::vector<std::vector<Versioned>>* given, BatchPlanner planner);

  // The requests of a transaction that it did not finish.
  struct Rest {
    std::vector<size_t> alone;  // records moved or unknown here: finish each with Run()
    std::vector<size_t> again;  // the transaction was aborted: try them again
  };
  // Which of a request's markers its anchor's watch stands in for (ApplyOnceRequest::anchor_key).
  struct Cover {
    bool dedup = false;
    bool tombstone = false;
    size_t anchor = 0;  // the anchor's index in state_keys
  };
  static Cover CoverOf(const ApplyOnceRequest& request, const std::vector<Versioned>* given);
  // One chunk of a transaction: what its round trip read, then what it queued.
  struct Chunk {
    std::vector<size_t> requests;                        // indices into the batch, in order
    std::vector<Cover> covers;                           // by position in `requests`
    absl::flat_hash_map<std::string, size_t> record_at;  // record key → record_keys index
    std::vector<std::string> record_keys;
    absl::flat_hash_set<std::string> markers;  // the dedup keys, tombstones and guards
    std::vector<Args> transaction;             // MULTI ... EXEC, or empty
    struct Queued {
      size_t request;
      size_t first;  // its commands: transaction[first, end)
      size_t end;
      std::string memo;
    };
    std::vector<Queued> queued;
  };
  // Applies requests[which] (steps 1 to 3 above) in transactions on one connection. Sets the
  // result of every request it finishes and lists the others in `rest`. An error status (Redis
  // unreachable, a reply that makes no sense) leaves the unfinished requests unfinished.
  absl::Status Transact(absl::Span<const ApplyOnceRequest> requests,
                        const std::vector<size_t>& which,
                        const std::vector<std::vector<Versioned>>* given, BatchPlanner planner,
                        std::vector<absl::StatusOr<ApplyResult>>& results, Rest& rest);
  // Appends the chunk's WATCH and reads to `commands`.
  static void AppendReads(absl::Span<const ApplyOnceRequest> requests,
                          const std::vector<std::vector<Versioned>>* given, Chunk& chunk,
                          std::vector<Args>& commands);
  // Plans the chunk's requests on what its reads (replies from `reads_from`) found and fills
  // its transaction.
  static absl::Status PlanChunk(absl::Span<const ApplyOnceRequest> requests,
                                const std::vector<std::vector<Versioned>>* given,
                                BatchPlanner planner, const std::vector<Reply>& replies,
                                size_t reads_from, Chunk& chunk,
                                std::vector<absl::StatusOr<ApplyResult>>& results, Rest& rest);
  // Removes from the chunk's transaction the writes of a record that a later request of the
  // same transaction writes again (a team record most leads of a wave update): the last write
  // sets the same record, so Redis runs and logs one HSET instead of one per request.
  static void DropOverwrittenWrites(const std::vector<internal::RecordWrite>& record_writes,
                                    const absl::flat_hash_set<std::string>& named_by_commands,
                                    Chunk& chunk);
  // Takes the `count` replies to the chunk's transaction (from replies[0]).
  static void FinishChunk(const std::vector<Reply>& replies, size_t count, Chunk& chunk,
                          std::vector<absl::StatusOr<ApplyResult>>& results, Rest& rest);

  RedisClient& client_;
  const int max_attempts_;
  const LuaScript erase_script_;
};

}  // namespace leadflow::redis
