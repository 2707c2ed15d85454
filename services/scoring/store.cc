#include "services/scoring/store.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/redis/keys.h"

namespace leadflow::scoring {
namespace {

// KEYS: [schedule, inflight, claimed]  ARGV: [now_ms, limit, lease_expiry_ms]
// Returns [lead, due_ms, lead, due_ms, ...]. One script: a lead leaves the schedule for exactly
// one claimer.
constexpr char kClaimScript[] = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[2]))
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('ZADD', KEYS[2], ARGV[3], due[i])
  redis.call('HSET', KEYS[3], due[i], due[i + 1])
end
return due
)lua";

// KEYS: [inflight, schedule, claimed]  ARGV: [now_ms, limit]
// ZADD LT: a lead already due earlier in the schedule keeps its time.
constexpr char kReclaimScript[] = R"lua(
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, lead in ipairs(expired) do
  local due = redis.call('HGET', KEYS[3], lead) or ARGV[1]
  redis.call('ZREM', KEYS[1], lead)
  redis.call('HDEL', KEYS[3], lead)
  redis.call('ZADD', KEYS[2], 'LT', due, lead)
end
return #expired
)lua";

// KEYS: [lock]  ARGV: [owner, lease_ms]. 1 when `owner` holds the lock now.
constexpr char kLockScript[] = R"lua(
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
)lua";

std::string Millis(absl::Time t) { return absl::StrCat(absl::ToUnixMillis(t)); }

const std::string& StaticKey(const char* name) {
  // Leaked on purpose: referenced from static storage until exit.
  return *new std::string(name);
}

absl::Status CheckReplies(const absl::StatusOr<std::vector<redis::Reply>>& replies) {
  if (!replies.ok()) return replies.status();
  for (const redis::Reply& r : *replies) {
    if (r.is_error()) return redis::ErrorReplyToStatus(r);
  }
  return absl::OkStatus();
}

}  // namespace

ScoringStore::ScoringStore(redis::RedisClient& client)
    : client_(client),
      apply_(client),
      claim_script_(kClaimScript),
      reclaim_script_(kReclaimScript),
      lock_script_(kLockScript) {}

const std::string& ScoringStore::ModelKey() {
  static const std::string& key = StaticKey("scoring:model");
  return key;
}
const std::string& ScoringStore::LeadsKey() {
  static const std::string& key = StaticKey("scoring:leads");
  return key;
}
const std::string& ScoringStore::ScheduleKey() {
  static const std::string& key = StaticKey("scoring:decay:schedule");
  return key;
}
const std::string& ScoringStore::InflightKey() {
  static const std::string& key = StaticKey("scoring:decay:inflight");
  return key;
}
const std::string& ScoringStore::ClaimedKey() {
  static const std::string& key = StaticKey("scoring:decay:claimed");
  return key;
}
const std::string& ScoringStore::RescoreKey() {
  static const std::string& key = StaticKey("scoring:rescore");
  return key;
}
const std::string& ScoringStore::RescoreLockKey() {
  static const std::string& key = StaticKey("scoring:rescore:lock");
  return key;
}

redis::Args ScoringStore::ScheduleCommand(const std::string& lead_id,
                                          std::optional<absl::Time> due) {
  if (!due.has_value()) return {"ZREM", ScheduleKey(), lead_id};
  return {"ZADD", ScheduleKey(), Millis(*due), lead_id};
}

redis::Args ScoringStore::IndexCommand(const std::string& lead_id) {
  return {"ZADD", LeadsKey(), "0", lead_id};
}

absl::StatusOr<std::optional<internal::v1::ConversionModelState>> ScoringStore::LoadModel() {
  absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read({ModelKey()});
  if (!records.ok()) return records.status();
  const redis::Versioned& record = (*records)[0];
  if (!record.data.has_value()) return std::nullopt;
  internal::v1::ConversionModelState model;
  if (!model.ParseFromString(*record.data)) return absl::DataLossError("corrupt scoring:model");
  return model;
}

absl::StatusOr<int64_t> ScoringStore::ModelVersion() {
  absl::StatusOr<redis::Reply> reply = client_.Command({"HGET", ModelKey(), "v"});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  if (reply->is_nil()) return 0;
  int64_t version = 0;
  if (!absl::SimpleAtoi(reply->str, &version)) return absl::DataLossError("bad model version");
  return version;
}

absl::StatusOr<std::vector<ScoringStore::Claimed>> ScoringStore::Claim(absl::Time now,
                                                                       absl::Duration lease,
                                                                       int limit) {
  std::vector<Claimed> out;
  if (limit <= 0) return out;
  absl::StatusOr<redis::Reply> reply =
      claim_script_.Run(client_, {ScheduleKey(), InflightKey(), ClaimedKey()},
                        {Millis(now), absl::StrCat(limit), Millis(now + lease)});
  if (!reply.ok()) return reply.status();
  for (size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
    double ms = 0;
    if (!absl::SimpleAtod(reply->elements[i + 1].str, &ms)) {
      return absl::DataLossError("bad due time in the decay schedule");
    }
    out.push_back({reply->elements[i].str, absl::FromUnixMillis(static_cast<int64_t>(ms))});
  }
  return out;
}

absl::StatusOr<int> ScoringStore::Reclaim(absl::Time now, int limit) {
  if (limit <= 0) return 0;
  absl::StatusOr<redis::Reply> reply = reclaim_script_.Run(
      client_, {InflightKey(), ScheduleKey(), ClaimedKey()}, {Millis(now), absl::StrCat(limit)});
  if (!reply.ok()) return reply.status();
  return static_cast<int>(reply->integer);
}

absl::Status ScoringStore::Release(const std::vector<std::string>& lead_ids) {
  if (lead_ids.empty()) return absl::OkStatus();
  redis::Args zrem = {"ZREM", InflightKey()};
  redis::Args hdel = {"HDEL", ClaimedKey()};
  for (const std::string& id : lead_ids) {
    zrem.push_back(id);
    hdel.push_back(id);
  }
  return CheckReplies(client_.Pipeline({zrem, hdel}));
}

absl::StatusOr<std::optional<absl::Time>> ScoringStore::ScheduledAt(const std::string& lead_id) {
  absl::StatusOr<redis::Reply> reply = client_.Command({"ZSCORE", ScheduleKey(), lead_id});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  if (reply->is_nil()) return std::nullopt;
  double ms = 0;
  if (!absl::SimpleAtod(reply->str, &ms)) return absl::DataLossError("bad due time");
  return absl::FromUnixMillis(static_cast<int64_t>(ms));
}

absl::StatusOr<std::vector<std::string>> ScoringStore::LeadsAfter(const std::string& after,
                                                                  int limit) {
  absl::StatusOr<redis::Reply> reply =
      client_.Command({"ZRANGEBYLEX", LeadsKey(), after.empty() ? "-" : absl::StrCat("(", after),
                       "+", "LIMIT", "0", absl::StrCat(limit)});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  std::vector<std::string> out;
  for (const redis::Reply& e : reply->elements) out.push_back(e.str);
  return out;
}

absl::StatusOr<int64_t> ScoringStore::CountLeadsAfter(const std::string& after) {
  absl::StatusOr<redis::Reply> reply = client_.Command(
      {"ZLEXCOUNT", LeadsKey(), after.empty() ? "-" : absl::StrCat("(", after), "+"});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  return reply->integer;
}

absl::StatusOr<ScoringStore::RescoreProgress> ScoringStore::LoadRescore() {
  absl::StatusOr<redis::Reply> reply =
      client_.Command({"HMGET", RescoreKey(), "fingerprint", "cursor", "done"});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  if (reply->elements.size() != 3) return absl::InternalError("HMGET: unexpected reply");
  return RescoreProgress{reply->elements[0].str, reply->elements[1].str, reply->elements[2].str};
}

absl::Status ScoringStore::SaveRescore(const RescoreProgress& progress) {
  absl::StatusOr<redis::Reply> reply =
      client_.Command({"HSET", RescoreKey(), "fingerprint", progress.fingerprint, "cursor",
                       progress.cursor, "done", progress.done});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  return absl::OkStatus();
}

absl::StatusOr<bool> ScoringStore::LockRescore(const std::string& owner, absl::Duration lease) {
  absl::StatusOr<redis::Reply> reply = lock_script_.Run(
      client_, {RescoreLockKey()}, {owner, absl::StrCat(absl::ToInt64Milliseconds(lease))});
  if (!reply.ok()) return reply.status();
  return reply->integer == 1;
}

std::string ScoringStore::StateKey(const std::string& lead_id) {
  return redis::LeadKey(kService, lead_id, "state");
}

std::string ScoringStore::HistoryKey(const std::string& lead_id) {
  return redis::LeadKey(kService, lead_id, "history");
}

std::vector<redis::Args> ScoringStore::PushHistoryCommands(
    const std::string& lead_id, const events::v1::ScoreSnapshot& snapshot, int size) {
  if (size <= 0) return {};
  const std::string key = HistoryKey(lead_id);
  return {{"LPUSH", key, snapshot.SerializeAsString()},
          {"LTRIM", key, "0", absl::StrCat(size - 1)}};
}

std::vector<redis::Args> ScoringStore::ReplaceHistoryCommands(
    const std::string& lead_id,
    const google::protobuf::RepeatedPtrField<events::v1::ScoreSnapshot>& history) {
  const std::string key = HistoryKey(lead_id);
  std::vector<redis::Args> commands = {{"DEL", key}};
  if (history.empty()) return commands;
  redis::Args push = {"RPUSH", key};
  for (const events::v1::ScoreSnapshot& snapshot : history) {
    push.push_back(snapshot.SerializeAsString());
  }
  commands.push_back(std::move(push));
  return commands;
}

absl::StatusOr<std::vector<events::v1::ScoreSnapshot>> ScoringStore::LoadHistory(
    const std::string& lead_id, const internal::v1::ScoringLeadState& state) {
  absl::StatusOr<redis::Reply> reply = client_.Command({"LRANGE", HistoryKey(lead_id), "0", "-1"});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  std::vector<events::v1::ScoreSnapshot> history;
  if (reply->elements.empty()) {
    history.assign(state.history().begin(), state.history().end());
    return history;
  }
  history.resize(reply->elements.size());
  for (size_t i = 0; i < history.size(); ++i) {
    if (!history[i].ParseFromString(reply->elements[i].str)) {
      return absl::DataLossError(absl::StrCat("corrupt snapshot in ", HistoryKey(lead_id)));
    }
  }
  return history;
}

std::string ScoringStore::SegmentKey(const std::string& segment_id) {
  return absl::StrCat("scoring:segment:", segment_id);
}

absl::StatusOr<std::optional<internal::v1::ScoringLeadState>> ScoringStore::LoadState(
    const std::string& lead_id) {
  absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read({StateKey(lead_id)});
  if (!records.ok()) return records.status();
  const redis::Versioned& record = (*records)[0];
  if (!record.data.has_value()) return std::nullopt;
  internal::v1::ScoringLeadState state;
  if (!state.ParseFromString(*record.data)) {
    return absl::DataLossError("corrupt state " + record.key);
  }
  return state;
}

absl::StatusOr<ScoringStore::SegmentPage> ScoringStore::ListSegmentMembers(
    const std::string& segment_id, int page_size, const std::string& page_token) {
  // The token is "<SSCAN cursor>:<members of that cursor's batch already returned>": SSCAN's
  // COUNT is only a hint (small sets come back whole), so a page may end inside a batch, and the
  // same cursor returns the same batch while the set does not change.
  if (page_size <= 0) return absl::InvalidArgumentError("page_size must be positive");
  std::string cursor = "0";
  size_t skip = 0;
  if (!page_token.empty()) {
    std::vector<std::string> parts = absl::StrSplit(page_token, ':');
    uint64_t cursor_value = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &cursor_value) ||
        !absl::SimpleAtoi(parts[1], &skip)) {
      return absl::InvalidArgumentError("page_token: not a token from a previous response");
    }
    cursor = parts[0];
  }
  const std::string key = SegmentKey(segment_id);
  SegmentPage page;
  while (static_cast<int>(page.lead_ids.size()) < page_size) {
    absl::StatusOr<redis::Reply> reply =
        client_.Command({"SSCAN", key, cursor, "COUNT", absl::StrCat(page_size)});
    if (!reply.ok()) return reply.status();
    if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
    if (reply->elements.size() != 2) return absl::InternalError("SSCAN: unexpected reply");
    const std::string& next_cursor = reply->elements[0].str;
    const std::vector<redis::Reply>& batch = reply->elements[1].elements;
    const size_t wanted = static_cast<size_t>(page_size) - page.lead_ids.size();
    const size_t available = batch.size() > skip ? batch.size() - skip : 0;
    const size_t take = std::min(wanted, available);
    for (size_t i = skip; i < skip + take; ++i) page.lead_ids.push_back(batch[i].str);
    if (take < available) {
      page.next_page_token = absl::StrCat(cursor, ":", skip + take);
      return page;
    }
    if (next_cursor == "0") return page;
    cursor = next_cursor;
    skip = 0;
  }
  page.next_page_token = absl::StrCat(cursor, ":0");
  return page;
}

absl::Status ScoringStore::Erase(const std::string& lead_id,
                                 const std::vector<std::string>& known_segment_ids,
                                 absl::Duration tombstone_ttl) {
  absl::flat_hash_set<std::string> segments(known_segment_ids.begin(), known_segment_ids.end());
  absl::StatusOr<std::optional<internal::v1::ScoringLeadState>> state = LoadState(lead_id);
  if (!state.ok()) return state.status();
  if (state->has_value()) {
    for (const std::string& s : (*state)->score().segments()) segments.insert(s);
  }
  if (absl::Status s = apply_.Erase(redis::RegistryKey(kService, lead_id),
                                    redis::TombstoneKey(kService, lead_id), tombstone_ttl,
                                    {StateKey(lead_id), HistoryKey(lead_id)});
      !s.ok()) {
    return s;
  }
  // After the tombstone: an apply of this lead racing with the erasure either committed before
  // it (and its SADD is undone here) or finds the tombstone and changes nothing.
  // The same goes for the lead index and the decay sets.
  std::vector<redis::Args> commands = {{"ZREM", LeadsKey(), lead_id},
                                       {"ZREM", ScheduleKey(), lead_id},
                                       {"ZREM", InflightKey(), lead_id},
                                       {"HDEL", ClaimedKey(), lead_id}};
  for (const std::string& segment : segments) {
    commands.push_back({"SREM", SegmentKey(segment), lead_id});
  }
  return CheckReplies(client_.Pipeline(commands));
}

}  // namespace leadflow::scoring
