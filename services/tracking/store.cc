#include "services/tracking/store.h"

#include "absl/strings/str_cat.h"
#include "common/redis/keys.h"

namespace leadflow::tracking {

std::string TrackingStore::HistoryKey(const std::string& lead_id) {
  return redis::LeadKey(kService, lead_id, "history");
}
std::string TrackingStore::TimelineKey(const std::string& lead_id) {
  return redis::LeadKey(kService, lead_id, "timeline");
}
std::string TrackingStore::IdentityKey(const std::string& identity) {
  return absl::StrCat("tracking:id:{", identity, "}");
}
std::string TrackingStore::PendingKey(const std::string& identity) {
  return absl::StrCat("tracking:pending:{", identity, "}");
}
std::string TrackingStore::MessageKey(const std::string& message_id) {
  return absl::StrCat("tracking:msg:{", message_id, "}");
}

absl::StatusOr<std::optional<std::string>> TrackingStore::Resolve(
    const std::vector<std::string>& identities) {
  if (identities.empty()) return std::nullopt;
  std::vector<redis::Args> commands;
  for (const std::string& id : identities) commands.push_back({"GET", IdentityKey(id)});
  absl::StatusOr<std::vector<redis::Reply>> replies = client_.Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (const redis::Reply& r : *replies) {
    if (r.is_error()) return redis::ErrorReplyToStatus(r);
    if (r.type == redis::Reply::Type::kString) return r.str;
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<events::v1::Activity>> TrackingStore::Timeline(
    const std::string& lead_id, int start, int count) {
  absl::StatusOr<redis::Reply> reply = client_.Command(
      {"LRANGE", TimelineKey(lead_id), absl::StrCat(start), absl::StrCat(start + count - 1)});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
  std::vector<events::v1::Activity> out;
  for (const redis::Reply& e : reply->elements) {
    events::v1::Activity a;
    if (!a.ParseFromString(e.str)) return absl::DataLossError("corrupt timeline entry");
    out.push_back(std::move(a));
  }
  return out;
}

absl::Status TrackingStore::Erase(const std::string& lead_id, absl::Duration tombstone_ttl) {
  return apply_.Erase(redis::RegistryKey(kService, lead_id), redis::TombstoneKey(kService, lead_id),
                      tombstone_ttl, {HistoryKey(lead_id), TimelineKey(lead_id)});
}

}  // namespace leadflow::tracking
