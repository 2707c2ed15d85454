#include "services/routing/store.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/redis/keys.h"

namespace leadflow::routing {

std::string RoutingStore::AssignmentKey(const std::string& lead_id) {
  return redis::LeadKey(kService, lead_id, "assignment");
}
std::string RoutingStore::TeamStateKey(const std::string& team_id) {
  return absl::StrCat("routing:team:{", team_id, "}:state");
}
std::string RoutingStore::TeamQueueKey(const std::string& team_id) {
  return absl::StrCat("routing:team:{", team_id, "}:queue");
}
std::string RoutingStore::RepOpenKey(const std::string& rep_id) {
  return absl::StrCat("routing:rep:", rep_id, ":open");
}

std::string RoutingStore::RepPresenceKey(const std::string& rep_id) {
  return absl::StrCat("routing:rep:{", rep_id, "}:presence");
}
std::string RoutingStore::PresenceRequestKey(const std::string& rep_id,
                                             const std::string& request_id) {
  return absl::StrCat("routing:rep:{", rep_id, "}:applied:", request_id);
}
std::string RoutingStore::PresenceChangesKey() { return "routing:presence:changes"; }

redis::Args RoutingStore::CountPresenceChange() { return {"INCR", PresenceChangesKey()}; }

std::string RoutingStore::OverridesKey() { return "routing:overrides"; }
std::string RoutingStore::OverridesWriteKey(int64_t version) {
  return absl::StrCat("routing:overrides:applied:", version);
}
std::string RoutingStore::SlaIndexKey() { return "routing:sla"; }
std::string RoutingStore::OutboxKey() { return "routing:outbox"; }

std::string RoutingStore::OutboxMember(const std::string& event_id, const std::string& lead_id) {
  return absl::StrCat(event_id, "|", lead_id);
}

bool RoutingStore::ParseOutboxMember(const std::string& member, std::string* event_id,
                                     std::string* lead_id) {
  // Synthetic event ids never contain '|'; lead ids may, so split at the first one.
  const size_t bar = member.find('|');
  if (bar == std::string::npos || bar == 0 || bar + 1 == member.size()) return false;
  *event_id = member.substr(0, bar);
  *lead_id = member.substr(bar + 1);
  return true;
}

absl::StatusOr<std::vector<internal::v1::RoutingAssignment>> RoutingStore::LoadAssignments(
    const std::vector<std::string>& lead_ids) {
  std::vector<std::string> keys;
  keys.reserve(lead_ids.size());
  for (const std::string& id : lead_ids) keys.push_back(AssignmentKey(id));
  absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read(keys);
  if (!records.ok()) return records.status();
  std::vector<internal::v1::RoutingAssignment> out;
  for (const redis::Versioned& r : *records) {
    if (!r.data.has_value()) continue;
    internal::v1::RoutingAssignment a;
    if (!a.ParseFromString(*r.data)) return absl::DataLossError("corrupt assignment " + r.key);
    out.push_back(std::move(a));
  }
  return out;
}

absl::StatusOr<std::optional<internal::v1::RoutingAssignment>> RoutingStore::LoadAssignment(
    const std::string& lead_id) {
  absl::StatusOr<std::vector<internal::v1::RoutingAssignment>> a = LoadAssignments({lead_id});
  if (!a.ok()) return a.status();
  if (a->empty()) return std::nullopt;
  return std::move((*a)[0]);
}

absl::StatusOr<internal::v1::RoutingTeamState> RoutingStore::LoadTeamState(
    const std::string& team_id) {
  absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read({TeamStateKey(team_id)});
  if (!records.ok()) return records.status();
  internal::v1::RoutingTeamState state;
  const redis::Versioned& r = (*records)[0];
  if (r.data.has_value() && !state.ParseFromString(*r.data)) {
    return absl::DataLossError("corrupt team state " + r.key);
  }
  return state;
}

absl::StatusOr<std::pair<int64_t, internal::v1::RoutingOverrides>> RoutingStore::LoadOverrides() {
  absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read({OverridesKey()});
  if (!records.ok()) return records.status();
  internal::v1::RoutingOverrides overrides;
  const redis::Versioned& r = (*records)[0];
  if (r.data.has_value() && !overrides.ParseFromString(*r.data)) {
    return absl::DataLossError("corrupt team overrides " + r.key);
  }
  return std::make_pair(r.version, std::move(overrides));
}

absl::StatusOr<absl::flat_hash_map<std::string, internal::v1::RepPresence>>
RoutingStore::LoadPresence(const std::vector<std::string>& rep_ids) {
  absl::flat_hash_map<std::string, internal::v1::RepPresence> out;
  if (rep_ids.empty()) return out;
  std::vector<std::string> keys;
  keys.reserve(rep_ids.size());
  for (const std::string& id : rep_ids) keys.push_back(RepPresenceKey(id));
  absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read(keys);
  if (!records.ok()) return records.status();
  for (size_t i = 0; i < records->size(); ++i) {
    const redis::Versioned& r = (*records)[i];
    if (!r.data.has_value()) continue;
    internal::v1::RepPresence presence;
    if (!presence.ParseFromString(*r.data)) return absl::DataLossError("corrupt presence " + r.key);
    out[rep_ids[i]] = std::move(presence);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> RoutingStore::DueSla(absl::Time now, int limit) {
  if (limit <= 0) return std::vector<std::string>{};
  absl::StatusOr<redis::Reply> reply =
      client_.Command({"ZRANGEBYSCORE", SlaIndexKey(), "-inf",
                       absl::StrCat(absl::ToUnixMillis(now)), "LIMIT", "0", absl::StrCat(limit)});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  std::vector<std::string> out;
  for (const redis::Reply& e : reply->elements) out.push_back(e.str);
  return out;
}

absl::StatusOr<std::vector<std::string>> RoutingStore::StaleOutbox(absl::Time before, int limit) {
  if (limit <= 0) return std::vector<std::string>{};
  absl::StatusOr<redis::Reply> reply = client_.Command({"ZRANGEBYSCORE", OutboxKey(), "-inf",
                                                        absl::StrCat(absl::ToUnixMillis(before)),
                                                        "LIMIT", "0", absl::StrCat(limit)});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  std::vector<std::string> out;
  for (const redis::Reply& e : reply->elements) out.push_back(e.str);
  return out;
}

absl::Status RoutingStore::Command(const redis::Args& args) {
  absl::StatusOr<redis::Reply> reply = client_.Command(args);
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> RoutingStore::OldestMembers(const std::string& key,
                                                                     int limit) {
  if (limit <= 0) return std::vector<std::string>{};
  absl::StatusOr<redis::Reply> reply =
      client_.Command({"ZRANGE", key, "0", absl::StrCat(limit - 1)});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  std::vector<std::string> out;
  out.reserve(reply->elements.size());
  for (const redis::Reply& e : reply->elements) out.push_back(e.str);
  return out;
}

absl::StatusOr<std::vector<std::string>> RoutingStore::RepOpenLeads(const std::string& rep_id,
                                                                    int limit) {
  return OldestMembers(RepOpenKey(rep_id), limit);
}

absl::StatusOr<std::vector<std::string>> RoutingStore::TeamQueue(const std::string& team_id,
                                                                 int limit) {
  return OldestMembers(TeamQueueKey(team_id), limit);
}

absl::Status RoutingStore::Erase(const std::string& lead_id,
                                 const std::vector<std::string>& team_ids,
                                 const std::vector<std::string>& rep_ids,
                                 absl::Duration tombstone_ttl) {
  if (absl::Status s = apply_.Erase(redis::RegistryKey(kService, lead_id),
                                    redis::TombstoneKey(kService, lead_id), tombstone_ttl,
                                    {AssignmentKey(lead_id)});
      !s.ok()) {
    return s;
  }
  // After the tombstone, so an apply racing with the erasure either committed before it (and
  // its ZADD is undone here) or finds the tombstone and changes nothing.
  std::vector<redis::Args> commands = {{"ZREM", SlaIndexKey(), lead_id}};
  for (const std::string& team :
       absl::flat_hash_set<std::string>(team_ids.begin(), team_ids.end())) {
    commands.push_back({"ZREM", TeamQueueKey(team), lead_id});
  }
  for (const std::string& rep : absl::flat_hash_set<std::string>(rep_ids.begin(), rep_ids.end())) {
    commands.push_back({"ZREM", RepOpenKey(rep), lead_id});
  }
  absl::StatusOr<std::vector<redis::Reply>> replies = client_.Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (const redis::Reply& r : *replies) {
    if (r.is_error()) return redis::ErrorReplyToStatus(r);
  }
  return absl::OkStatus();
}

}  // namespace leadflow::routing
