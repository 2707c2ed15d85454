#include "services/nurturing/store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/redis/keys.h"
#include "common/redis/outbox.h"
#include "services/nurturing/enrollment.h"

namespace leadflow::nurturing {
namespace {

// Claim and Reclaim: moves up to `limit` members with score <= now_ms from KEYS[1] to KEYS[2]
// with score `to_score` and returns them, earliest first. One script, so a lead is moved by
// exactly one caller. ZADD flag "LT" (Reclaim): a lead already due earlier keeps its time.
// Leads move in chunks of 500 (two commands per chunk, not two per lead; unpack's stack bound).
// KEYS: [from, to]  ARGV: [now_ms, limit, to_score, "" | "LT"]
constexpr char kMoveDueScript[] = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for first = 1, #due, 500 do
  local last = math.min(first + 499, #due)
  local add = {'ZADD', KEYS[2]}
  if ARGV[4] ~= '' then add[#add + 1] = ARGV[4] end
  for i = first, last do
    add[#add + 1] = ARGV[3]
    add[#add + 1] = due[i]
  end
  redis.call('ZREM', KEYS[1], unpack(due, first, last))
  redis.call(unpack(add))
end
return due
)lua";

// KEYS: [enrollment, delivery, schedule, inflight, registry]
// ARGV: [version, incarnation, touch_id, lead_id, due_ms | "", new incarnation]
// Returns 1 recorded, 2 recorded before, 0 the enrollment moved. The delivery record follows
// the versioned-record layout of common/redis/apply_once.h ({v, d, i}), so applies over the lead
// version-check it like any other record.

std::string Millis(absl::Time t) { return absl::StrCat(absl::ToUnixMillis(t)); }

absl::StatusOr<std::vector<std::string>> Members(const absl::StatusOr<redis::Reply>& reply) {
  if (!reply.ok()) return reply.status();
  std::vector<std::string> out;
  out.reserve(reply->elements.size());
  for (const redis::Reply& e : reply->elements) out.push_back(e.str);
  return out;
}

}  // namespace

NurturingStore::NurturingStore(redis::RedisClient& client)
    : client_(client),
      apply_(client),
      outbox_(client, OutboxKey()),
      move_due_script_(kMoveDueScript) {}

std::string NurturingStore::EnrollmentKey(const std::string& lead_id) {
  return redis::LeadKey(kService, lead_id, "enrollment");
}
std::string NurturingStore::ScoredKey(const std::string& lead_id, const std::string& event_id) {
  return redis::AppliedKey(kService, lead_id, event_id);
}
std::string NurturingStore::RequestKey(const std::string& lead_id, const std::string& request_id) {
  return redis::AppliedKey(kService, lead_id, absl::StrCat("req:", request_id));
}
std::string NurturingStore::DecisionKey(const std::string& lead_id, int64_t version) {
  return redis::AppliedKey(kService, lead_id, absl::StrCat("due:", version));
}
std::string NurturingStore::TouchKey(const std::string& lead_id, const std::string& touch_id) {
  return redis::LeadKey(kService, lead_id, absl::StrCat("touch:", touch_id));
}
std::string NurturingStore::DeliveredKey(const std::string& lead_id, const std::string& touch_id) {
  return redis::LeadKey(kService, lead_id, absl::StrCat("delivered:", touch_id));
}
std::string NurturingStore::DeliveryKey(const std::string& lead_id) {
  return redis::LeadKey(kService, lead_id, "delivery");
}
std::vector<std::string> NurturingStore::StateKeys(const std::string& lead_id) {
  return {EnrollmentKey(lead_id), DeliveryKey(lead_id)};
}
std::string NurturingStore::RegistryKey(const std::string& lead_id) {
  return redis::RegistryKey(kService, lead_id);
}
std::string NurturingStore::TombstoneKey(const std::string& lead_id) {
  return redis::TombstoneKey(kService, lead_id);
}
const std::string& NurturingStore::ScheduleKey() {
  static const std::string* const key = new std::string("nurturing:schedule");
  return *key;
}
const std::string& NurturingStore::InflightKey() {
  static const std::string* const key = new std::string("nurturing:inflight");
  return *key;
}
const std::string& NurturingStore::OutboxKey() {
  static const std::string* const key = new std::string("nurturing:outbox");
  return *key;
}

redis::Args NurturingStore::ScheduleCommand(const std::string& lead_id,
                                            std::optional<absl::Time> wake_up_at) {
  if (!wake_up_at.has_value()) return {"ZREM", ScheduleKey(), lead_id};
  return {"ZADD", ScheduleKey(), Millis(*wake_up_at), lead_id};
}

redis::Args NurturingStore::ReleaseCommand(const std::string& lead_id) {
  return {"ZREM", InflightKey(), lead_id};
}

absl::StatusOr<StoredState> NurturingStore::ParseState(
    const std::vector<redis::Versioned>& records) {
  if (records.size() != 2) return absl::InternalError("nurturing state: expected two records");
  const redis::Versioned& record = records[0];
  StoredState out;
  out.version = record.version;
  out.incarnation = record.incarnation;
  out.delivery_version = records[1].version;
  if (record.data.has_value() && !out.state.ParseFromString(*record.data)) {
    return absl::DataLossError(absl::StrCat("corrupt nurturing state ", record.key));
  }
  if (records[1].data.has_value()) ApplyDelivered(out.state, *records[1].data);
  return out;
}

absl::StatusOr<StoredState> NurturingStore::Load(const std::string& lead_id) {
  absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read(StateKeys(lead_id));
  if (!records.ok()) return records.status();
  return ParseState(*records);
}

absl::StatusOr<std::vector<DeliveryRecorded>> NurturingStore::ConfirmDelivered(
    const std::vector<DeliveredTouch>& touches) {
  // One checked write per touch (no apply-once record: the delivery record itself tells a
  // repeated report apart), all of them in ApplyOnce's transactions. The enrollment record is
  // read and watched, not written: a change since the send makes the plan refuse.
  std::vector<redis::ApplyOnceRequest> requests;
  requests.reserve(touches.size());
  for (const DeliveredTouch& t : touches) {
    redis::ApplyOnceRequest r;
    r.state_keys = {EnrollmentKey(t.lead_id), DeliveryKey(t.lead_id)};
    r.check_only_keys = {r.state_keys[0]};    // its version and incarnation are all the check needs
    r.registry_key = RegistryKey(t.lead_id);  // the delivery record registers when created
    requests.push_back(std::move(r));
  }
  constexpr char kRecorded[] = "recorded";
  constexpr char kAlready[] = "already";
  const absl::Status moved = absl::FailedPreconditionError("enrollment moved since the send");
  std::vector<absl::StatusOr<redis::ApplyResult>> results = apply_.RunBatch(
      requests,
      [&](size_t i, const std::vector<redis::Versioned>& records) -> absl::StatusOr<redis::Plan> {
        const DeliveredTouch& t = touches[i];
        if (t.incarnation.empty() || records[0].version != t.version ||
            records[0].incarnation != t.incarnation) {
          return moved;
        }
        redis::Plan plan;
        if (records[1].data == t.touch_id) {
          plan.memo = kAlready;
          return plan;
        }
        plan.writes.push_back({records[1].key, t.touch_id});
        if (t.due_after.has_value()) {
          plan.extra_commands.push_back({"ZADD", ScheduleKey(), Millis(*t.due_after), t.lead_id});
        }
        plan.extra_commands.push_back(ReleaseCommand(t.lead_id));
        plan.memo = kRecorded;
        return plan;
      });
  std::vector<DeliveryRecorded> out;
  out.reserve(touches.size());
  for (absl::StatusOr<redis::ApplyResult>& r : results) {
    if (!r.ok() && r.status() != moved && !absl::IsAborted(r.status())) return r.status();
    out.push_back(!r.ok()                ? DeliveryRecorded::kRecordMoved
                  : r->memo == kRecorded ? DeliveryRecorded::kRecorded
                                         : DeliveryRecorded::kAlreadyRecorded);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> NurturingStore::Claim(absl::Time now, absl::Duration lease,
                                                               int limit) {
  if (limit <= 0) return std::vector<std::string>{};
  return Members(move_due_script_.Run(client_, {ScheduleKey(), InflightKey()},
                                      {Millis(now), absl::StrCat(limit), Millis(now + lease), ""}));
}

absl::StatusOr<std::vector<std::string>> NurturingStore::Reclaim(absl::Time now, int limit) {
  if (limit <= 0) return std::vector<std::string>{};
  return Members(move_due_script_.Run(client_, {InflightKey(), ScheduleKey()},
                                      {Millis(now), absl::StrCat(limit), Millis(now), "LT"}));
}

absl::Status NurturingStore::Forget(const std::string& lead_id) {
  absl::StatusOr<std::vector<redis::Reply>> replies =
      client_.Pipeline({{"ZREM", ScheduleKey(), lead_id}, ReleaseCommand(lead_id)});
  if (!replies.ok()) return replies.status();
  for (const redis::Reply& r : *replies) {
    if (r.is_error()) return redis::ErrorReplyToStatus(r);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<absl::Time>> NurturingStore::ScoreIn(const std::string& key,
                                                                  const std::string& lead_id) {
  absl::StatusOr<redis::Reply> reply = client_.Command({"ZSCORE", key, lead_id});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  if (reply->is_nil()) return std::nullopt;
  double ms = 0;
  if (!absl::SimpleAtod(reply->str, &ms)) {
    return absl::DataLossError(absl::StrCat("bad score of ", lead_id, " in ", key));
  }
  return absl::FromUnixMillis(static_cast<int64_t>(ms));
}

absl::StatusOr<std::optional<absl::Time>> NurturingStore::ScheduledAt(const std::string& lead_id) {
  return ScoreIn(ScheduleKey(), lead_id);
}

absl::StatusOr<std::optional<absl::Time>> NurturingStore::LeaseExpiry(const std::string& lead_id) {
  return ScoreIn(InflightKey(), lead_id);
}

absl::Status NurturingStore::Erase(const std::string& lead_id, absl::Duration tombstone_ttl) {
  // The tombstone first: a scheduler or consumer racing with us then finds the lead erased
  // and writes nothing; the schedule entries go after it, so none is re-added behind us.
  if (absl::Status s = apply_.Erase(RegistryKey(lead_id), TombstoneKey(lead_id), tombstone_ttl,
                                    {EnrollmentKey(lead_id), DeliveryKey(lead_id)});
      !s.ok()) {
    return s;
  }
  return Forget(lead_id);
}

}  // namespace leadflow::nurturing
