#include "common/redis/apply_once.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/redis/keys.h"

namespace leadflow::redis {
namespace internal {

// The commands of one record write in a transaction: transaction[first, end), an HSET and its
// PEXPIRE / PERSIST, or a DEL.
struct RecordWrite {
  std::string key;
  size_t first;
  size_t end;
  bool deletes;
};

}  // namespace internal

namespace {

using internal::RecordWrite;

// KEYS: [registry, tombstone, extra...]  ARGV: [tombstone_ttl_ms]
constexpr char kEraseScript[] = R"lua(
local members = redis.call('SMEMBERS', KEYS[1])
for _, k in ipairs(members) do redis.call('DEL', k) end
local expiring = KEYS[1] .. ':expiring'
for _, k in ipairs(redis.call('ZRANGE', expiring, 0, -1)) do redis.call('DEL', k) end
redis.call('DEL', KEYS[1], expiring)
for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return #members
)lua";

constexpr size_t kIncarnationDigits = 16;

// A batch whose transaction was aborted (a watched key moved between its read and its EXEC) is
// tried again as a batch this many times in all before its requests are finished one by one.
constexpr int kBatchRounds = 3;

// At most this many keys are watched at once (ApplyOnce::Transact says why).
constexpr size_t kMaxWatchedKeys = 64;

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// The result of a request no transaction has finished yet.
absl::Status NotRun() { return absl::UnknownError("apply-once: not run"); }

bool IsAbsent(const Versioned& v) { return v.version == 0 && !v.data.has_value(); }

// A record written before incarnations existed: it is told apart by its data.
bool IsLegacy(const Versioned& v) {
  return !IsAbsent(v) && v.incarnation.size() != kIncarnationDigits;
}

bool IsCheckOnly(const ApplyOnceRequest& request, const std::string& key) {
  for (const std::string& k : request.check_only_keys) {
    if (k == key) return true;
  }
  return false;
}

// Whether the request's WATCH of `key` is left to its guard (ApplyOnceRequest::guard_key).
bool IsGuarded(const ApplyOnceRequest& request, const std::string& key) {
  if (request.guard_key.empty()) return false;
  for (const std::string& k : request.guarded_keys) {
    if (k == key) return true;
  }
  return false;
}

// Whether `plan` writes `anchor` as standing in for the request's markers requires: sets it, or
// deletes it where it exists (deleting an absent key moves no watch).
bool WritesAnchor(const Plan& plan, const std::string& anchor, const Versioned& was) {
  for (const Write& w : plan.writes) {
    if (w.key == anchor) return w.data.has_value() || !IsAbsent(was);
  }
  return false;
}

// Fields are read in the order v, i[, d]: a check needs no data unless the record is legacy.
Args ReadRecordCommand(const std::string& key, bool with_data) {
  if (with_data) return {"HMGET", key, "v", "i", "d"};
  return {"HMGET", key, "v", "i"};
}

absl::StatusOr<Versioned> ParseRecord(const std::string& key, const Reply& r) {
  if (r.is_error()) return ErrorReplyToStatus(r);
  // A reply of another shape means replies and commands went out of step: never read it as
  // an absent record.
  if (r.type != Reply::Type::kArray || r.elements.size() < 2 || r.elements.size() > 3) {
    return absl::InternalError(absl::StrCat("unexpected reply to HMGET ", key));
  }
  Versioned v{key, 0, std::nullopt, ""};
  if (r.elements[0].is_nil()) return v;
  if (!absl::SimpleAtoi(r.elements[0].str, &v.version)) {
    return absl::DataLossError(absl::StrCat("corrupt version in ", key));
  }
  if (!r.elements[1].is_nil()) v.incarnation = r.elements[1].str;
  if (r.elements.size() > 2 && !r.elements[2].is_nil()) v.data = r.elements[2].str;
  return v;
}

// Whether `planned` (a record as a plan was made on it) is the record `now` is. A version alone
// restarts after a delete, so the incarnation is compared too: a record deleted and recreated
// since `planned` was read is another record. `now` holds data when `planned` is legacy.
bool SameRecord(const Versioned& planned, const Versioned& now) {
  if (IsAbsent(planned)) return now.version == 0;
  if (!IsLegacy(planned)) {
    return now.version == planned.version && now.incarnation == planned.incarnation;
  }
  return now.version == planned.version && now.incarnation.empty() && now.data == planned.data;
}

// Unix milliseconds from a TIME reply.
absl::StatusOr<int64_t> ServerMillis(const Reply& time) {
  int64_t seconds = 0;
  int64_t micros = 0;
  if (time.elements.size() != 2 || !absl::SimpleAtoi(time.elements[0].str, &seconds) ||
      !absl::SimpleAtoi(time.elements[1].str, &micros)) {
    return absl::InternalError("redis TIME: unexpected reply");
  }
  return seconds * 1000 + micros / 1000;
}

// Appends to `transaction` the commands that apply `plan` over `state` (the records it was
// planned on), lists the record writes among them in `record_writes` and returns the records
// as they leave them; INTERNAL, appending nothing, for a plan that writes a key it did not read
// or gives a malformed incarnation.
absl::StatusOr<std::vector<Versioned>> QueueApply(const ApplyOnceRequest& request,
                                                  const std::vector<Versioned>& state,
                                                  const Plan& plan, int64_t now_ms,
                                                  std::vector<Args>& transaction,
                                                  std::vector<RecordWrite>& record_writes) {
  for (const Write& w : plan.writes) {
    bool known = false;
    for (const std::string& k : request.state_keys) known |= (k == w.key);
    if (!known) return absl::InternalError(absl::StrCat("plan writes unread key ", w.key));
    if (IsCheckOnly(request, w.key)) {
      return absl::InternalError(absl::StrCat("plan writes check-only key ", w.key));
    }
  }
  for (const auto& [key, incarnation] : plan.incarnations) {
    if (incarnation.size() != kIncarnationDigits) {
      return absl::InternalError(absl::StrCat("plan gives ", key, " a malformed incarnation"));
    }
  }
  std::vector<Versioned> written;
  Args register_keys = {"SADD", request.registry_key};
  std::vector<Args> commands;
  for (const Versioned& v : state) {
    const Write* write = nullptr;
    for (const Write& w : plan.writes) {
      if (w.key == v.key) write = &w;
    }
    if (write == nullptr) continue;
    const size_t first = transaction.size() + commands.size();
    if (!write->data.has_value()) {
      record_writes.push_back({v.key, first, first + 1, /*deletes=*/true});
      commands.push_back({"DEL", v.key});
      written.push_back({v.key, 0, std::nullopt, ""});
      continue;
    }
    std::string incarnation;
    for (const auto& [key, chosen] : plan.incarnations) {
      if (key == v.key) incarnation = chosen;
    }
    // A record created now (or written before incarnations existed) gets a new incarnation,
    // and is registered: every writer of the lead passes its registry, so an update finds its
    // record registered. A plan may choose the incarnation (see Plan::incarnations).
    const bool fresh = IsAbsent(v) || IsLegacy(v);
    if (incarnation.empty() && fresh) incarnation = NewIncarnation();
    const std::string version = absl::StrCat(v.version + 1);
    if (incarnation.empty()) {
      commands.push_back({"HSET", v.key, "v", version, "d", *write->data});
    } else {
      commands.push_back({"HSET", v.key, "v", version, "d", *write->data, "i", incarnation});
      if (request.register_records) register_keys.push_back(v.key);
    }
    if (write->ttl > absl::ZeroDuration()) {
      commands.push_back({"PEXPIRE", v.key, absl::StrCat(Millis(write->ttl))});
    } else if (!IsAbsent(v)) {
      commands.push_back({"PERSIST", v.key});  // a key created now has no expiry to drop
    }
    record_writes.push_back(
        {v.key, first, transaction.size() + commands.size(), /*deletes=*/false});
    written.push_back(
        {v.key, v.version + 1, write->data, incarnation.empty() ? v.incarnation : incarnation});
  }
  register_keys.insert(register_keys.end(), plan.register_keys.begin(), plan.register_keys.end());
  const std::string expires_at = absl::StrCat(now_ms + Millis(request.dedup_ttl));
  if (!request.registry_key.empty() && register_keys.size() > 2) {
    commands.push_back(std::move(register_keys));
  }
  commands.insert(commands.end(), plan.extra_commands.begin(), plan.extra_commands.end());
  if (request.dedup_key.empty()) {  // a checked write: no apply-once record
    transaction.insert(transaction.end(), std::make_move_iterator(commands.begin()),
                       std::make_move_iterator(commands.end()));
    return written;
  }
  // The dedup record expires at the time the registry lists it under, exactly.
  commands.push_back({"SET", request.dedup_key, plan.memo, "PXAT", expires_at});
  if (!request.registry_key.empty()) {
    // Apply-once records expire; they are listed by expiry time so the list stays bounded.
    const std::string expiring = ExpiringRegistryKey(request.registry_key);
    commands.push_back({"ZREMRANGEBYSCORE", expiring, "-inf", absl::StrCat(now_ms)});
    commands.push_back({"ZADD", expiring, expires_at, request.dedup_key});
  }
  transaction.insert(transaction.end(), std::make_move_iterator(commands.begin()),
                     std::make_move_iterator(commands.end()));
  return written;
}

}  // namespace

std::string NewIncarnation() {
  thread_local absl::BitGen gen;
  return absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
}

std::vector<Args> AdoptRegistryCommands(const std::string& to, const std::string& from) {
  // The expiring records keep the later expiry of the two (equal unless both hold one key).
  return {{"SUNIONSTORE", to, to, from},
          {"ZUNIONSTORE", ExpiringRegistryKey(to), "2", ExpiringRegistryKey(to),
           ExpiringRegistryKey(from), "AGGREGATE", "MAX"},
          {"DEL", from, ExpiringRegistryKey(from)}};
}

ApplyOnce::Cover ApplyOnce::CoverOf(const ApplyOnceRequest& r,
                                    const std::vector<Versioned>* given) {
  Cover cover;
  // Only on given records: the anchor's state must be known before the WATCH goes out.
  if (given == nullptr || r.anchor_key.empty() || IsGuarded(r, r.anchor_key) ||
      IsCheckOnly(r, r.anchor_key)) {
    return cover;
  }
  for (size_t k = 0; k < r.state_keys.size(); ++k) {
    if (r.state_keys[k] != r.anchor_key) continue;
    const Versioned& anchor = (*given)[k];
    cover.anchor = k;
    cover.dedup = !r.dedup_key.empty();
    // A legacy record may predate the registry, which erasure deletes through.
    cover.tombstone = !r.tombstone_key.empty() && !IsAbsent(anchor) && !IsLegacy(anchor);
    break;
  }
  return cover;
}

ApplyOnce::ApplyOnce(RedisClient& client, int max_attempts)
    : client_(client), max_attempts_(max_attempts), erase_script_(kEraseScript) {}

absl::StatusOr<std::vector<Versioned>> ApplyOnce::Read(const std::vector<std::string>& keys) {
  std::vector<Args> commands;
  commands.reserve(keys.size());
  for (const std::string& k : keys) commands.push_back(ReadRecordCommand(k, true));
  absl::StatusOr<std::vector<Reply>> replies = client_.Pipeline(commands);
  if (!replies.ok()) return replies.status();
  if (replies->size() != keys.size()) return absl::InternalError("short pipeline reply");
  std::vector<Versioned> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::StatusOr<Versioned> v = ParseRecord(keys[i], (*replies)[i]);
    if (!v.ok()) return v.status();
    out.push_back(*std::move(v));
  }
  return out;
}

absl::StatusOr<std::optional<ApplyResult>> ApplyOnce::Recorded(const ApplyOnceRequest& request) {
  // The planner runs only when there is no record: then nothing is applied.
  bool recorded = true;
  absl::StatusOr<ApplyResult> applied = Run(request, [&](const std::vector<Versioned>&) {
    recorded = false;
    return absl::StatusOr<Plan>(absl::CancelledError("no apply-once record"));
  });
  if (!recorded) return std::optional<ApplyResult>();
  if (!applied.ok()) return applied.status();
  return std::optional<ApplyResult>(*std::move(applied));
}

absl::StatusOr<ApplyResult> ApplyOnce::Run(const ApplyOnceRequest& request, Planner planner) {
  if (!request.dedup_key.empty() && request.dedup_ttl < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("apply-once: dedup_ttl must be at least 1 ms");
  }
  const absl::Span<const ApplyOnceRequest> one(&request, 1);
  for (int attempt = 0; attempt < max_attempts_; ++attempt) {
    std::vector<absl::StatusOr<ApplyResult>> result(1, NotRun());
    Rest rest;
    absl::Status s = Transact(
        one, {0}, nullptr,
        [&](size_t, const std::vector<Versioned>& state) { return planner(state); }, result, rest);
    if (!s.ok()) return s;
    if (rest.alone.empty() && rest.again.empty()) return std::move(result[0]);
    // A record moved under us: read and plan again.
  }
  return absl::AbortedError(
      absl::StrCat("apply-once: state kept changing for ", request.dedup_key));
}

absl::Status ApplyOnce::Transact(absl::Span<const ApplyOnceRequest> requests,
                                 const std::vector<size_t>& which,
                                 const std::vector<std::vector<Versioned>>* given,
                                 BatchPlanner planner,
                                 std::vector<absl::StatusOr<ApplyResult>>& results, Rest& rest) {
  return client_.WithSession([&](RedisSession& session) -> absl::Status {
    // The requests go in chunks of at most kMaxWatchedKeys watched keys (Redis compares each
    // key a connection watches with every key it already watches: one WATCH of a whole batch
    // costs it time quadratic in the keys). Each round trip carries one chunk's MULTI ... EXEC
    // and the next chunk's WATCH and reads, so n chunks take n + 1 round trips, and a chunk
    // reads what the chunks before it wrote.
    Chunk planned;  // planned, its transaction sent with the next round trip
    size_t next = 0;
    bool watching = false;
    while (next < which.size() || !planned.transaction.empty()) {
      Chunk chunk;
      // The keys it watches, distinct (shared records count once); guarded records do not
      // count, their guard does.
      absl::flat_hash_set<absl::string_view> keys;
      while (next < which.size()) {
        const ApplyOnceRequest& r = requests[which[next]];
        const Cover cover = CoverOf(r, given == nullptr ? nullptr : &(*given)[which[next]]);
        std::vector<absl::string_view> watched;
        if (!r.dedup_key.empty() && !cover.dedup) watched.push_back(r.dedup_key);
        if (!r.tombstone_key.empty() && !cover.tombstone) watched.push_back(r.tombstone_key);
        if (!r.guard_key.empty()) watched.push_back(r.guard_key);
        for (const std::string& key : r.state_keys) {
          if (!IsGuarded(r, key)) watched.push_back(key);
        }
        size_t added = 0;
        for (absl::string_view key : watched) added += keys.contains(key) ? 0 : 1;
        if (!chunk.requests.empty() && keys.size() + added > kMaxWatchedKeys) break;
        keys.insert(watched.begin(), watched.end());
        chunk.requests.push_back(which[next++]);
        chunk.covers.push_back(cover);
      }
      std::vector<Args> commands = std::move(planned.transaction);
      const size_t exec_replies = commands.size();
      // A chunk that queued nothing left its WATCH: EXEC would have dropped it.
      if (exec_replies == 0 && watching) commands.push_back({"UNWATCH"});
      const size_t reads_from = commands.size();
      if (!chunk.requests.empty()) AppendReads(requests, given, chunk, commands);
      watching = !chunk.requests.empty();
      absl::StatusOr<std::vector<Reply>> replies = session.Pipeline(commands);
      if (!replies.ok()) return replies.status();
      if (replies->size() != commands.size()) return absl::InternalError("short pipeline reply");
      if (exec_replies > 0) FinishChunk(*replies, exec_replies, planned, results, rest);
      planned = std::move(chunk);
      if (planned.requests.empty()) break;
      if (absl::Status s =
              PlanChunk(requests, given, planner, *replies, reads_from, planned, results, rest);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  });
}

void ApplyOnce::AppendReads(absl::Span<const ApplyOnceRequest> requests,
                            const std::vector<std::vector<Versioned>>* given, Chunk& chunk,
                            std::vector<Args>& commands) {
  std::vector<bool> with_data;
  std::vector<bool> watched;  // by record_keys index
  Args watch = {"WATCH"};
  absl::flat_hash_set<absl::string_view> watched_markers;
  for (size_t p = 0; p < chunk.requests.size(); ++p) {
    const size_t i = chunk.requests[p];
    const ApplyOnceRequest& r = requests[i];
    const Cover& cover = chunk.covers[p];
    // Each key once: Redis would look through the whole watch list to find it watched. A marker
    // the request's anchor stands in for is left out (still a marker: see PlanChunk).
    for (const auto& [key, covered] :
         {std::pair<const std::string&, bool>(r.dedup_key, cover.dedup),
          {r.tombstone_key, cover.tombstone},
          {r.guard_key, false}}) {
      if (key.empty()) continue;
      chunk.markers.insert(key);
      if (!covered && watched_markers.insert(key).second) watch.push_back(key);
    }
    for (size_t k = 0; k < r.state_keys.size(); ++k) {
      auto [it, inserted] = chunk.record_at.try_emplace(r.state_keys[k], chunk.record_keys.size());
      if (inserted) {
        chunk.record_keys.push_back(r.state_keys[k]);
        with_data.push_back(false);
        watched.push_back(false);
      }
      // Watched once, unless every request of the chunk that reads it leaves it to its guard.
      if (!watched[it->second] && !IsGuarded(r, r.state_keys[k])) {
        watched[it->second] = true;
        watch.push_back(r.state_keys[k]);
      }
      // Planned on as read here (no records given), or a legacy record told apart by its data.
      const bool needs_data =
          given == nullptr ? !IsCheckOnly(r, r.state_keys[k]) : IsLegacy((*given)[i][k]);
      if (needs_data) with_data[it->second] = true;
    }
  }
  commands.push_back(std::move(watch));
  commands.push_back({"TIME"});
  for (size_t i : chunk.requests) {
    if (!requests[i].dedup_key.empty()) commands.push_back({"GET", requests[i].dedup_key});
    if (!requests[i].tombstone_key.empty()) {
      commands.push_back({"EXISTS", requests[i].tombstone_key});
    }
  }
  for (size_t k = 0; k < chunk.record_keys.size(); ++k) {
    commands.push_back(ReadRecordCommand(chunk.record_keys[k], with_data[k]));
  }
}

absl::Status ApplyOnce::PlanChunk(absl::Span<const ApplyOnceRequest> requests,
                                  const std::vector<std::vector<Versioned>>* given,
                                  BatchPlanner planner, const std::vector<Reply>& replies,
                                  size_t reads_from, Chunk& chunk,
                                  std::vector<absl::StatusOr<ApplyResult>>& results, Rest& rest) {
  if (replies[reads_from].is_error()) return ErrorReplyToStatus(replies[reads_from]);
  absl::StatusOr<int64_t> now_ms = ServerMillis(replies[reads_from + 1]);
  if (!now_ms.ok()) return now_ms.status();
  size_t at = reads_from + 2;
  size_t records_from = at;
  for (size_t i : chunk.requests) {
    records_from +=
        (requests[i].dedup_key.empty() ? 0 : 1) + (requests[i].tombstone_key.empty() ? 0 : 1);
  }
  // `current`: each record as this chunk leaves it so far (as read, then as the plans queued
  // before write it), so a later request on the same record plans on the earlier's write, as
  // if they ran one after the other.
  std::vector<Versioned> current;
  current.reserve(chunk.record_keys.size());
  for (size_t k = 0; k < chunk.record_keys.size(); ++k) {
    absl::StatusOr<Versioned> v = ParseRecord(chunk.record_keys[k], replies[records_from + k]);
    if (!v.ok()) return v.status();
    current.push_back(*std::move(v));
  }

  // Plan each request in order and queue its writes. Keys that a queued plan's extra commands
  // name (or a dedup record it sets) are no longer known here: a later request that depends on
  // one is finished alone, after this transaction.
  absl::flat_hash_set<std::string> touched;
  absl::flat_hash_set<std::string> named_by_commands;  // record keys a plan's commands name
  std::vector<RecordWrite> record_writes;
  chunk.transaction = {{"MULTI"}};
  for (size_t p = 0; p < chunk.requests.size(); ++p) {
    const size_t i = chunk.requests[p];
    const ApplyOnceRequest& r = requests[i];
    static const Reply* const kNoRecord = new Reply();
    const Reply& memo = r.dedup_key.empty() ? *kNoRecord : replies[at++];
    const Reply& tombstone = r.tombstone_key.empty() ? *kNoRecord : replies[at++];
    // Out of step, a record's reply could pass for a memo (a duplicate) or a tombstone: the
    // input would be dropped. Shapes are checked, and a wrong one fails the whole chunk.
    if (!memo.is_nil() && !memo.is_error() && memo.type != Reply::Type::kString) {
      return absl::InternalError(absl::StrCat("unexpected reply to GET ", r.dedup_key));
    }
    if (!tombstone.is_nil() && !tombstone.is_error() && tombstone.type != Reply::Type::kInteger) {
      return absl::InternalError(absl::StrCat("unexpected reply to EXISTS ", r.tombstone_key));
    }
    const bool erased = tombstone.type == Reply::Type::kInteger && tombstone.integer == 1;
    if (memo.is_error() || tombstone.is_error()) {
      results[i] = ErrorReplyToStatus(memo.is_error() ? memo : tombstone);
      continue;
    }
    if (!memo.is_nil()) {
      results[i] = ApplyResult{ApplyOutcome::kDuplicate, memo.str};
      continue;
    }
    if (erased) {
      results[i] = ApplyResult{ApplyOutcome::kErased, ""};
      continue;
    }
    bool depends_on_touched = touched.contains(r.dedup_key) || touched.contains(r.tombstone_key);
    bool moved = false;
    std::vector<Versioned> copied;  // the records as read (the caller's need no copy)
    if (given == nullptr) copied.reserve(r.state_keys.size());
    for (size_t k = 0; k < r.state_keys.size(); ++k) {
      depends_on_touched |= touched.contains(r.state_keys[k]);
      const Versioned& now = current[chunk.record_at.at(r.state_keys[k])];
      if (given == nullptr) {
        copied.push_back(now);
      } else {
        moved |= !SameRecord((*given)[i][k], now);
      }
    }
    if (depends_on_touched || moved) {
      rest.alone.push_back(i);
      continue;
    }
    const std::vector<Versioned>& state = given == nullptr ? copied : (*given)[i];
    absl::StatusOr<Plan> plan = planner(i, state);
    if (!plan.ok()) {
      results[i] = plan.status();
      continue;
    }
    // A marker left unwatched for an anchor this plan does not write would go unguarded.
    const Cover& cover = chunk.covers[p];
    if ((cover.dedup || cover.tombstone) &&
        !WritesAnchor(*plan, r.state_keys[cover.anchor], state[cover.anchor])) {
      rest.alone.push_back(i);
      continue;
    }
    const size_t first = chunk.transaction.size();
    absl::StatusOr<std::vector<Versioned>> written =
        QueueApply(r, state, *plan, *now_ms, chunk.transaction, record_writes);
    if (!written.ok()) {
      results[i] = written.status();
      continue;
    }
    for (Versioned& v : *written) current[chunk.record_at.at(v.key)] = std::move(v);
    if (!r.dedup_key.empty()) touched.insert(r.dedup_key);
    for (const Args& command : plan->extra_commands) {
      for (size_t a = 1; a < command.size(); ++a) {
        if (chunk.record_at.contains(command[a]) || chunk.markers.contains(command[a])) {
          touched.insert(command[a]);
          named_by_commands.insert(command[a]);
        }
      }
    }
    chunk.queued.push_back({i, first, chunk.transaction.size(), std::move(plan->memo)});
  }
  if (chunk.queued.empty()) {
    chunk.transaction.clear();  // nothing to apply
  } else {
    DropOverwrittenWrites(record_writes, named_by_commands, chunk);
    chunk.transaction.push_back({"EXEC"});
  }
  return absl::OkStatus();
}

void ApplyOnce::DropOverwrittenWrites(const std::vector<RecordWrite>& record_writes,
                                      const absl::flat_hash_set<std::string>& named_by_commands,
                                      Chunk& chunk) {
  // Per record: its writes in the transaction, in order. A record written once is left alone;
  // so is one that is deleted (its recreation relies on the DEL dropping the old fields and
  // expiry) or named by a plan's own commands (which may read or change it in between).
  absl::flat_hash_map<absl::string_view, std::vector<const RecordWrite*>> by_key;
  for (const RecordWrite& w : record_writes) by_key[w.key].push_back(&w);
  std::vector<bool> dropped(chunk.transaction.size(), false);
  bool any = false;
  for (auto& [key, writes] : by_key) {
    if (writes.size() < 2 || named_by_commands.contains(key)) continue;
    if (std::any_of(writes.begin(), writes.end(),
                    [](const RecordWrite* w) { return w->deletes; })) {
      continue;
    }
    // The last write sets the record as the earlier would have left it, and its own expiry
    // (PEXPIRE or PERSIST: the record exists by then). Only an incarnation given by an earlier
    // write (the record's creation) would be missing from it.
    Args& last = chunk.transaction[writes.back()->first];
    for (size_t w = writes.size() - 1; w-- > 0;) {
      const Args& earlier = chunk.transaction[writes[w]->first];
      if (last.size() == 6 && earlier.size() == 8) {
        last.push_back(earlier[6]);
        last.push_back(earlier[7]);
      }
      for (size_t k = writes[w]->first; k < writes[w]->end; ++k) dropped[k] = true;
      any = true;
    }
  }
  if (!any) return;
  std::vector<Args> kept;
  kept.reserve(chunk.transaction.size());
  size_t q = 0;
  for (size_t k = 0; k < chunk.transaction.size(); ++k) {
    while (q < chunk.queued.size() && chunk.queued[q].first == k) {
      chunk.queued[q++].first = kept.size();
    }
    if (!dropped[k]) kept.push_back(std::move(chunk.transaction[k]));
  }
  while (q < chunk.queued.size()) chunk.queued[q++].first = kept.size();
  // Each request's range ends where the next one's starts (the last one's, at the end).
  for (size_t r = 0; r < chunk.queued.size(); ++r) {
    chunk.queued[r].end = r + 1 < chunk.queued.size() ? chunk.queued[r + 1].first : kept.size();
  }
  chunk.transaction = std::move(kept);
}

void ApplyOnce::FinishChunk(const std::vector<Reply>& replies, size_t count, Chunk& chunk,
                            std::vector<absl::StatusOr<ApplyResult>>& results, Rest& rest) {
  // replies[0, count): MULTI's, one per queued command, EXEC's.
  const Reply& exec = replies[count - 1];
  if (replies[0].is_error() || (!exec.is_nil() && !exec.is_error() && !exec.is_array())) {
    // MULTI refused (its commands then ran one by one) or replies out of step: report the
    // requests failed; a retry finds what did apply by its dedup record.
    const absl::Status failed = replies[0].is_error()
                                    ? ErrorReplyToStatus(replies[0])
                                    : absl::InternalError("unexpected reply to EXEC");
    for (const Chunk::Queued& q : chunk.queued) results[q.request] = failed;
    return;
  }
  if (exec.is_nil()) {
    // A watched key moved: nothing applied.
    for (const Chunk::Queued& q : chunk.queued) rest.again.push_back(q.request);
    return;
  }
  if (exec.is_error()) {
    // EXECABORT: a command was refused as it was queued (OOM, a malformed extra command) and
    // nothing ran. Its request gets the error; the others are tried again without it.
    const size_t again_before = rest.again.size();
    for (const Chunk::Queued& q : chunk.queued) {
      auto refused = std::find_if(replies.begin() + q.first, replies.begin() + q.end,
                                  [](const Reply& reply) { return reply.is_error(); });
      if (refused != replies.begin() + q.end) {
        results[q.request] = ErrorReplyToStatus(*refused);
      } else {
        rest.again.push_back(q.request);
      }
    }
    if (rest.again.size() - again_before == chunk.queued.size()) {
      for (const Chunk::Queued& q : chunk.queued) results[q.request] = ErrorReplyToStatus(exec);
      rest.again.resize(again_before);
    }
    return;
  }
  for (Chunk::Queued& q : chunk.queued) {
    // Like a script, a transaction does not roll back: a command that fails as it runs
    // (WRONGTYPE on a key another program wrote) leaves the others applied; the request
    // reports the error. exec.elements[k] answers transaction[k + 1].
    absl::Status failed = exec.elements.size() >= q.end - 1
                              ? absl::OkStatus()
                              : absl::InternalError("EXEC: one reply per queued command expected");
    for (size_t k = q.first; failed.ok() && k < q.end; ++k) {
      failed = ErrorReplyToStatus(exec.elements[k - 1]);
    }
    if (failed.ok()) {
      results[q.request] = ApplyResult{ApplyOutcome::kApplied, std::move(q.memo)};
    } else {
      results[q.request] = failed;
    }
  }
}

std::vector<absl::StatusOr<ApplyResult>> ApplyOnce::RunBatch(
    const std::vector<ApplyOnceRequest>& requests, BatchPlanner planner) {
  return RunBatchImpl(requests, nullptr, planner);
}

std::vector<absl::StatusOr<ApplyResult>> ApplyOnce::RunBatchOnRead(
    const std::vector<ApplyOnceRequest>& requests, const std::vector<std::vector<Versioned>>& read,
    BatchPlanner planner) {
  if (read.size() != requests.size()) {
    return std::vector<absl::StatusOr<ApplyResult>>(
        requests.size(), absl::InternalError("RunBatchOnRead: one record set per request"));
  }
  return RunBatchImpl(requests, &read, planner);
}

std::vector<absl::StatusOr<ApplyResult>> ApplyOnce::RunBatchImpl(
    const std::vector<ApplyOnceRequest>& requests, const std::vector<std::vector<Versioned>>* given,
    BatchPlanner planner) {
  const size_t n = requests.size();
  std::vector<absl::StatusOr<ApplyResult>> results(n, NotRun());
  std::vector<size_t> which;
  for (size_t i = 0; i < n; ++i) {
    if (!requests[i].dedup_key.empty() && requests[i].dedup_ttl < absl::Milliseconds(1)) {
      results[i] = absl::InvalidArgumentError("apply-once: dedup_ttl must be at least 1 ms");
    } else if (given != nullptr && (*given)[i].size() != requests[i].state_keys.size()) {
      results[i] = absl::InternalError("apply-once: records do not match the request's keys");
    } else {
      which.push_back(i);
    }
  }
  Rest rest;
  for (int round = 0; round < kBatchRounds && !which.empty(); ++round) {
    Rest this_round;
    absl::Status s = Transact(requests, which, given, planner, results, this_round);
    if (!s.ok()) {
      // Redis unreachable or answering nonsense: every request not finished fails with it
      // (those of transactions whose EXEC was answered keep their results).
      for (auto& r : results) {
        if (!r.ok() && r.status() == NotRun()) r = s;
      }
      return results;
    }
    rest.alone.insert(rest.alone.end(), this_round.alone.begin(), this_round.alone.end());
    which = std::move(this_round.again);
  }
  // What is left is finished one by one, in input order (a request planned on another's writes
  // then comes after it), each with a fresh read.
  rest.alone.insert(rest.alone.end(), which.begin(), which.end());
  std::sort(rest.alone.begin(), rest.alone.end());
  for (size_t i : rest.alone) {
    results[i] =
        Run(requests[i], [&](const std::vector<Versioned>& state) { return planner(i, state); });
  }
  return results;
}

absl::Status ApplyOnce::Erase(const std::string& registry_key, const std::string& tombstone_key,
                              absl::Duration tombstone_ttl,
                              const std::vector<std::string>& extra_keys) {
  Args keys = {registry_key, tombstone_key};
  keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
  absl::StatusOr<Reply> reply =
      erase_script_.Run(client_, keys, {absl::StrCat(std::max<int64_t>(1, Millis(tombstone_ttl)))});
  return reply.status();
}

}  // namespace leadflow::redis
