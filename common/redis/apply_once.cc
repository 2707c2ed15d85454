#include "common/redis/apply_once.h"

#include <openssl/sha.h>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leadflow::redis {
namespace {

// KEYS: [dedup, tombstone|"", registry|"", state_1 .. state_n]
// ARGV: [dedup_ttl_ms, memo, n,
//        per state key: expected_version, op ("keep"|"set"|"del"), data, ttl_ms,
//                       check: "" if absent when read, the record's incarnation (16 hex
//                       digits) if it has one, else the sha1 of its data (40 hex digits: a
//                       record written before incarnations existed),
//                       new incarnation: for a record this plan creates (or gives one), else "",
//        n_register, register keys...,
//        n_extra, per extra command: argc, args...]
// Returns {0} applied, {1, memo} duplicate, {2, key} version conflict, {3} erased.
//
// Why an incarnation: a version alone restarts after a delete, so a record deleted and
// recreated between our read and our apply would pass the version check. Each record created
// here gets a random incarnation `i` that its updates keep; comparing it costs one small field,
// where comparing the data read (as before) copied and hashed the whole record inside Redis.
constexpr char kApplyScript[] = R"lua(
local memo = redis.call('GET', KEYS[1])
if memo then return {1, memo} end
if KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return {3} end
local n = tonumber(ARGV[3])
local a = 4
-- Records absent when read must still be absent: one EXISTS for all of them (a plan often
-- reads many records that do not exist, e.g. routing's presence of reps who never set one).
local absent = {}
for i = 1, n do
  local key = KEYS[3 + i]
  local check = ARGV[a + 4]
  if check == '' then
    absent[#absent + 1] = key
  elseif #check == 16 then
    local rec = redis.call('HMGET', key, 'v', 'i')
    if tonumber(rec[1] or '0') ~= tonumber(ARGV[a]) or rec[2] ~= check then return {2, key} end
  else
    local rec = redis.call('HMGET', key, 'v', 'd', 'i')
    if rec[3] or tonumber(rec[1] or '0') ~= tonumber(ARGV[a]) or
        redis.sha1hex(rec[2] or '') ~= check then
      return {2, key}
    end
  end
  a = a + 6
end
if #absent > 0 and redis.call('EXISTS', unpack(absent)) ~= 0 then return {2, absent[1]} end
a = 4
local registry = KEYS[3]
for i = 1, n do
  local key = KEYS[3 + i]
  local op = ARGV[a + 1]
  if op == 'set' then
    if ARGV[a + 5] == '' then
      redis.call('HSET', key, 'v', tonumber(ARGV[a]) + 1, 'd', ARGV[a + 2])
    else
      -- Created now (or written before incarnations existed): a new incarnation.
      redis.call('HSET', key, 'v', tonumber(ARGV[a]) + 1, 'd', ARGV[a + 2], 'i', ARGV[a + 5])
      -- A record is registered when it is created (or first given an incarnation): every
      -- writer of the lead passes its registry, so an update finds its record registered.
      if registry ~= '' then redis.call('SADD', registry, key) end
    end
    local ttl = tonumber(ARGV[a + 3])
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) else redis.call('PERSIST', key) end
  elseif op == 'del' then
    redis.call('DEL', key)
  end
  a = a + 6
end
local nreg = tonumber(ARGV[a]); a = a + 1
for i = 1, nreg do
  if registry ~= '' then redis.call('SADD', registry, ARGV[a]) end
  a = a + 1
end
local nextra = tonumber(ARGV[a]); a = a + 1
for i = 1, nextra do
  local argc = tonumber(ARGV[a]); a = a + 1
  local cmd = {}
  for j = 1, argc do cmd[j] = ARGV[a]; a = a + 1 end
  redis.call(unpack(cmd))
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
if registry ~= '' then
  -- Apply-once records expire; they are listed by expiry time so the list stays bounded.
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local expiring = registry .. ':expiring'
  redis.call('ZREMRANGEBYSCORE', expiring, '-inf', now_ms)
  redis.call('ZADD', expiring, now_ms + tonumber(ARGV[1]), KEYS[1])
end
return {0}
)lua";

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

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

std::string Sha1Hex(const std::string& data) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  std::string out;
  for (unsigned char b : digest) absl::StrAppendFormat(&out, "%02x", b);
  return out;
}

}  // namespace

std::string NewIncarnation() {
  thread_local absl::BitGen gen;
  return absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
}

std::vector<Args> AdoptRegistryCommands(const std::string& to, const std::string& from) {
  // The expiring records keep the later expiry of the two (equal unless both hold one key).
  return {{"SUNIONSTORE", to, to, from},
          {"ZUNIONSTORE", to + ":expiring", "2", to + ":expiring", from + ":expiring", "AGGREGATE",
           "MAX"},
          {"DEL", from, from + ":expiring"}};
}

ApplyOnce::ApplyOnce(RedisClient& client, int max_attempts)
    : client_(client),
      max_attempts_(max_attempts),
      apply_script_(kApplyScript),
      erase_script_(kEraseScript) {}

namespace {

// The records of `keys` from the HMGET k v d replies at replies[first ...].
absl::StatusOr<std::vector<Versioned>> ParseRecords(const std::vector<std::string>& keys,
                                                    const std::vector<Reply>& replies,
                                                    size_t first) {
  if (replies.size() < first + keys.size()) return absl::InternalError("short pipeline reply");
  std::vector<Versioned> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const Reply& r = replies[first + i];
    if (r.is_error()) return ErrorReplyToStatus(r);
    Versioned v{keys[i], 0, std::nullopt, ""};
    if (r.elements.size() == 3 && !r.elements[0].is_nil()) {
      if (!absl::SimpleAtoi(r.elements[0].str, &v.version)) {
        return absl::DataLossError(absl::StrCat("corrupt version in ", keys[i]));
      }
      if (!r.elements[1].is_nil()) v.data = r.elements[1].str;
      if (!r.elements[2].is_nil()) v.incarnation = r.elements[2].str;
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<Versioned>> ApplyOnce::Read(const std::vector<std::string>& keys) {
  std::vector<Args> commands;
  commands.reserve(keys.size());
  for (const std::string& k : keys) commands.push_back({"HMGET", k, "v", "d", "i"});
  absl::StatusOr<std::vector<Reply>> replies = client_.Pipeline(commands);
  if (!replies.ok()) return replies.status();
  return ParseRecords(keys, *replies, 0);
}

absl::StatusOr<ApplyResult> ApplyOnce::Run(const ApplyOnceRequest& request, Planner planner) {
  // Redis does not roll a script back: reject what would fail half-way before anything runs.
  if (request.dedup_ttl < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("apply-once: dedup_ttl must be at least 1 ms");
  }
  for (int attempt = 0; attempt < max_attempts_; ++attempt) {
    // One round trip: the dedup key and the tombstone (a duplicate or an erased lead needs no
    // planning) and the records to plan on. Reading the records before knowing whether they
    // are needed costs a few HMGETs on the rare duplicate; the script re-checks all of it.
    std::vector<Args> commands = {{"GET", request.dedup_key}};
    if (!request.tombstone_key.empty()) commands.push_back({"EXISTS", request.tombstone_key});
    const size_t records_at = commands.size();
    for (const std::string& k : request.state_keys) commands.push_back({"HMGET", k, "v", "d", "i"});
    absl::StatusOr<std::vector<Reply>> replies = client_.Pipeline(commands);
    if (!replies.ok()) return replies.status();
    if ((*replies)[0].is_error()) return ErrorReplyToStatus((*replies)[0]);
    if (!(*replies)[0].is_nil()) return ApplyResult{ApplyOutcome::kDuplicate, (*replies)[0].str};
    if (records_at > 1 && (*replies)[1].integer == 1) {
      return ApplyResult{ApplyOutcome::kErased, ""};
    }

    absl::StatusOr<std::vector<Versioned>> state =
        ParseRecords(request.state_keys, *replies, records_at);
    if (!state.ok()) return state.status();
    absl::StatusOr<Plan> plan = planner(*state);
    if (!plan.ok()) return plan.status();

    Args keys;
    Args args;
    if (absl::Status s = ScriptArgs(request, *state, *plan, &keys, &args); !s.ok()) return s;
    absl::StatusOr<Reply> reply = apply_script_.Run(client_, keys, args);
    if (!reply.ok()) return reply.status();
    if (reply->elements.empty()) return absl::InternalError("apply script: empty reply");
    switch (reply->elements[0].integer) {
      case 0:
        return ApplyResult{ApplyOutcome::kApplied, std::move(plan->memo)};
      case 1:
        return ApplyResult{ApplyOutcome::kDuplicate, reply->elements[1].str};
      case 3:
        return ApplyResult{ApplyOutcome::kErased, ""};
      default:
        continue;  // version conflict: re-read and re-plan
    }
  }
  return absl::AbortedError(
      absl::StrCat("apply-once: state kept changing for ", request.dedup_key));
}

absl::Status ApplyOnce::ScriptArgs(const ApplyOnceRequest& request,
                                   const std::vector<Versioned>& state, const Plan& plan,
                                   Args* keys_out, Args* args_out) const {
  Args& keys = *keys_out;
  Args& args = *args_out;
  keys = {request.dedup_key, request.tombstone_key, request.registry_key};
  keys.insert(keys.end(), request.state_keys.begin(), request.state_keys.end());
  args = {absl::StrCat(Millis(request.dedup_ttl)), plan.memo,
          absl::StrCat(request.state_keys.size())};
  for (const Versioned& v : state) {
    const Write* write = nullptr;
    for (const Write& w : plan.writes) {
      if (w.key == v.key) write = &w;
    }
    args.push_back(absl::StrCat(v.version));
    if (write == nullptr) {
      args.insert(args.end(), {"keep", "", "0"});
    } else if (write->data.has_value()) {
      args.insert(args.end(), {"set", *write->data, absl::StrCat(Millis(write->ttl))});
    } else {
      args.insert(args.end(), {"del", "", "0"});
    }
    // A version alone restarts after a delete, so the record's incarnation is checked too (see
    // kApplyScript): a record deleted and recreated between our read and our apply conflicts.
    const bool writes = write != nullptr && write->data.has_value();
    std::string chosen;
    if (writes) {
      for (const auto& [key, incarnation] : plan.incarnations) {
        if (key == v.key) chosen = incarnation;
      }
    }
    if (!chosen.empty() && chosen.size() != kIncarnationDigits) {
      return absl::InternalError(absl::StrCat("plan gives ", v.key, " a malformed incarnation"));
    }
    if (v.version == 0 && !v.data.has_value()) {
      args.push_back("");
      args.push_back(writes ? (chosen.empty() ? NewIncarnation() : chosen) : "");
    } else if (v.incarnation.size() == kIncarnationDigits) {
      args.push_back(v.incarnation);
      args.push_back(chosen);
    } else {
      args.push_back(Sha1Hex(v.data.value_or("")));
      args.push_back(writes ? (chosen.empty() ? NewIncarnation() : chosen) : "");
    }
  }
  for (const Write& w : plan.writes) {
    bool known = false;
    for (const std::string& k : request.state_keys) known |= (k == w.key);
    if (!known) {
      return absl::InternalError(absl::StrCat("plan writes unread key ", w.key));
    }
  }
  args.push_back(absl::StrCat(plan.register_keys.size()));
  args.insert(args.end(), plan.register_keys.begin(), plan.register_keys.end());
  args.push_back(absl::StrCat(plan.extra_commands.size()));
  for (const Args& cmd : plan.extra_commands) {
    args.push_back(absl::StrCat(cmd.size()));
    args.insert(args.end(), cmd.begin(), cmd.end());
  }
  return absl::OkStatus();
}

std::vector<absl::StatusOr<ApplyResult>> ApplyOnce::RunBatch(
    const std::vector<ApplyOnceRequest>& requests, BatchPlanner planner) {
  return RunBatchImpl(requests, nullptr, planner, Probe::kFirst);
}

std::vector<absl::StatusOr<ApplyResult>> ApplyOnce::RunBatchOnRead(
    const std::vector<ApplyOnceRequest>& requests, std::vector<std::vector<Versioned>> read,
    BatchPlanner planner, Probe probe) {
  if (read.size() != requests.size()) {
    return std::vector<absl::StatusOr<ApplyResult>>(
        requests.size(), absl::InternalError("RunBatchOnRead: one record set per request"));
  }
  return RunBatchImpl(requests, &read, planner, probe);
}

std::vector<absl::StatusOr<ApplyResult>> ApplyOnce::RunBatchImpl(
    const std::vector<ApplyOnceRequest>& requests, std::vector<std::vector<Versioned>>* given,
    BatchPlanner planner, Probe probe_mode) {
  const size_t n = requests.size();
  std::vector<absl::StatusOr<ApplyResult>> results(n, absl::UnknownError("not run"));
  auto fail_all = [&](const absl::Status& status) {
    for (auto& r : results) r = status;
    return results;
  };
  // 1. Probe every dedup key and tombstone (unless the scripts' own checks are to find them).
  std::vector<Args> probe;
  if (probe_mode == Probe::kFirst) {
    for (const ApplyOnceRequest& request : requests) {
      probe.push_back({"GET", request.dedup_key});
      probe.push_back(request.tombstone_key.empty() ? Args{"EXISTS", request.dedup_key}
                                                    : Args{"EXISTS", request.tombstone_key});
    }
  }
  absl::StatusOr<std::vector<Reply>> probed =
      probe.empty() ? std::vector<Reply>(2 * n) : client_.Pipeline(probe);
  if (!probed.ok()) return fail_all(probed.status());
  std::vector<size_t> pending;
  for (size_t i = 0; i < n; ++i) {
    const Reply& memo = (*probed)[2 * i];
    const Reply& erased = (*probed)[2 * i + 1];
    if (requests[i].dedup_ttl < absl::Milliseconds(1)) {
      results[i] = absl::InvalidArgumentError("apply-once: dedup_ttl must be at least 1 ms");
    } else if (probe.empty()) {
      pending.push_back(i);
    } else if (memo.is_error()) {
      results[i] = ErrorReplyToStatus(memo);
    } else if (!memo.is_nil()) {
      results[i] = ApplyResult{ApplyOutcome::kDuplicate, memo.str};
    } else if (!requests[i].tombstone_key.empty() && erased.integer == 1) {
      results[i] = ApplyResult{ApplyOutcome::kErased, ""};
    } else {
      pending.push_back(i);
    }
  }
  if (pending.empty()) return results;
  // 2. Read every pending request's records in one round trip (unless the caller just did).
  std::vector<Versioned> read;
  if (given == nullptr) {
    std::vector<std::string> all_keys;
    for (size_t i : pending) {
      all_keys.insert(all_keys.end(), requests[i].state_keys.begin(), requests[i].state_keys.end());
    }
    absl::StatusOr<std::vector<Versioned>> fresh = Read(all_keys);
    if (!fresh.ok()) return fail_all(fresh.status());
    read = *std::move(fresh);
  }
  // 3. Plan each and apply all plans in one round trip.
  std::vector<Args> scripts;
  std::vector<size_t> scripted;
  std::vector<std::string> memos;
  size_t offset = 0;
  for (size_t i : pending) {
    const size_t count = requests[i].state_keys.size();
    std::vector<Versioned> state;
    if (given != nullptr) {
      state = std::move((*given)[i]);
    } else {
      state.assign(std::make_move_iterator(read.begin() + offset),
                   std::make_move_iterator(read.begin() + offset + count));
      offset += count;
    }
    if (state.size() != count) {
      results[i] = absl::InternalError("apply-once: records do not match the request's keys");
      continue;
    }
    absl::StatusOr<Plan> plan = planner(i, state);
    if (!plan.ok()) {
      results[i] = plan.status();
      continue;
    }
    Args keys;
    Args args;
    if (absl::Status s = ScriptArgs(requests[i], state, *plan, &keys, &args); !s.ok()) {
      results[i] = s;
      continue;
    }
    scripts.push_back(apply_script_.Command(keys, args));
    scripted.push_back(i);
    memos.push_back(std::move(plan->memo));
  }
  if (scripts.empty()) return results;
  // A Redis that lost its scripts (a restart) loads them once for the whole batch.
  absl::StatusOr<std::vector<Reply>> applied = apply_script_.RunPipelined(client_, scripts);
  if (!applied.ok()) return fail_all(applied.status());
  for (size_t k = 0; k < scripted.size(); ++k) {
    const size_t i = scripted[k];
    const Reply& reply = (*applied)[k];
    const int64_t code =
        !reply.is_error() && !reply.elements.empty() ? reply.elements[0].integer : -1;
    if (code == 0) {
      results[i] = ApplyResult{ApplyOutcome::kApplied, std::move(memos[k])};
    } else if (code == 1 && reply.elements.size() > 1) {
      results[i] = ApplyResult{ApplyOutcome::kDuplicate, reply.elements[1].str};
    } else if (code == 3) {
      results[i] = ApplyResult{ApplyOutcome::kErased, ""};
    } else if (reply.is_error()) {
      results[i] = ErrorReplyToStatus(reply);
    } else {
      // A version conflict: finish this one alone.
      results[i] =
          Run(requests[i], [&](const std::vector<Versioned>& state) { return planner(i, state); });
    }
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
