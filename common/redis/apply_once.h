#pragma once

// ApplyOnce: the apply-once primitive of ARCHITECTURE.md §4.1. An input's event id is checked and
// recorded atomically with the state change it causes, and the outputs the change produced are
// memoised with it, so a re-delivered input changes nothing and yields the same outputs again.
//
// How it works (read → plan → apply, optimistic concurrency):
//   1. One pipelined round trip reads the dedup key, the lead's tombstone and the versioned
//      state records the caller names.
//   2. If the dedup key exists, its memo is returned (kDuplicate). If the lead was erased, nothing
//      happens (kErased). Otherwise the caller's planner turns the state into a Plan: records to
//      write or delete, extra commands (index updates), and the memo (serialised outputs).
//   3. A Lua script re-checks the dedup key, the tombstone and every record's version, and only
//      then applies the plan, records the dedup key with the memo, and registers every key in the
//      lead's key registry (so erasure can delete them all). Lasting keys go in the registry set;
//      the expiring dedup records go in `<registry>:expiring`, ordered by expiry and pruned on
//      every apply, so the registry of a long-lived lead stays bounded. If a version moved (a
//      concurrent writer: another replica, a gRPC command), it changes nothing and Run() re-reads
//      and re-plans, up to a bound (then ABORTED, which consumers treat as transient).
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

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis/client.h"
#include "common/redis/lua_script.h"

namespace leadflow::redis {

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
  // Records the input: `<service>:{lead}:applied:<event_id>` (see keys.h).
  std::string dedup_key;
  // How long the input is remembered; re-deliveries later than this apply again.
  absl::Duration dedup_ttl = absl::Hours(24 * 7);
  // Records read and version-checked; writes may touch only these.
  std::vector<std::string> state_keys;
  // The lead's key registry; empty to skip registration.
  std::string registry_key;
  // The lead's erasure tombstone; empty to skip the check.
  std::string tombstone_key;
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

  // Run() for many independent requests (different leads), pipelined: one round trip probes
  // every dedup key and tombstone, one reads every record, one applies every plan — each plan
  // still its own atomic, version-checked script, so the guarantees are Run()'s. A request whose
  // records changed in between (or whose script Redis had not loaded) is finished alone with
  // Run(). `planner(i, records)` plans request i and may be called more than once. Results are
  // in request order, each with its own status; an UNAVAILABLE Redis fails them all.
  using BatchPlanner =
      absl::FunctionRef<absl::StatusOr<Plan>(size_t i, const std::vector<Versioned>& state)>;
  std::vector<absl::StatusOr<ApplyResult>> RunBatch(const std::vector<ApplyOnceRequest>& requests,
                                                    BatchPlanner planner);
  // RunBatch() for a caller that has just read every request's records itself (it needed them
  // to know the dedup keys): `read[i]` holds request i's state_keys records, as Read() gave
  // them, and they are planned on without a second read. The scripts check them as usual; a
  // request whose records moved meanwhile is finished alone with Run(), which reads afresh.
  //
  // `probe`: kFirst probes the dedup keys and tombstones before planning, so a re-delivered
  // input costs no plan. kInScript skips that round trip and leaves duplicates and erasures to
  // the scripts' own checks (the same outcomes): for callers whose dedup keys are seldom taken
  // (one per decision on a record version) and whose plans are cheap to make and to drop. Not
  // for chained plans: a duplicate found only by its script would break the chain after it.
  enum class Probe { kFirst, kInScript };
  std::vector<absl::StatusOr<ApplyResult>> RunBatchOnRead(
      const std::vector<ApplyOnceRequest>& requests, std::vector<std::vector<Versioned>> read,
      BatchPlanner planner, Probe probe = Probe::kFirst);

  // Reads versioned records (for queries, or for RunBatchOnRead; no dedup involved).
  absl::StatusOr<std::vector<Versioned>> Read(const std::vector<std::string>& keys);

  // Deletes every key in the lead's registry plus `extra_keys`, and leaves a tombstone for
  // `tombstone_ttl` so late events of the lead are ignored. Idempotent.
  absl::Status Erase(const std::string& registry_key, const std::string& tombstone_key,
                     absl::Duration tombstone_ttl, const std::vector<std::string>& extra_keys);

 private:
  // RunBatch and RunBatchOnRead: `read` null reads the records after the probe.
  std::vector<absl::StatusOr<ApplyResult>> RunBatchImpl(
      const std::vector<ApplyOnceRequest>& requests, std::vector<std::vector<Versioned>>* read,
      BatchPlanner planner, Probe probe);

  // The EVALSHA arguments of `plan` over the records read; INTERNAL for a plan that writes a
  // key it did not read.
  absl::Status ScriptArgs(const ApplyOnceRequest& request, const std::vector<Versioned>& state,
                          const Plan& plan, Args* keys, Args* args) const;

  RedisClient& client_;
  const int max_attempts_;
  const LuaScript apply_script_;
  const LuaScript erase_script_;
};

}  // namespace leadflow::redis
