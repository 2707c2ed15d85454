#include "services/tracking/store.h"

#include "absl/strings/match.h"
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

namespace {
constexpr absl::string_view kRedirect = "->";
}  // namespace

std::string TrackingStore::MergedHistory(const std::string& survivor_id) {
  return absl::StrCat(kRedirect, survivor_id);
}

std::optional<std::string> TrackingStore::MergedInto(const redis::Versioned& record) {
  // A real history starts with its magic "AH", never with the redirect marker.
  if (!record.data.has_value() || !absl::StartsWith(*record.data, kRedirect)) return std::nullopt;
  return record.data->substr(kRedirect.size());
}

absl::StatusOr<redis::Versioned> TrackingStore::CurrentHistory(const std::string& lead_id,
                                                               std::string* current_id) {
  *current_id = lead_id;
  for (int hop = 0; hop <= kMaxMergeHops; ++hop) {
    absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read({HistoryKey(*current_id)});
    if (!records.ok()) return records.status();
    std::optional<std::string> next = MergedInto((*records)[0]);
    if (!next.has_value()) return std::move((*records)[0]);
    *current_id = *next;
  }
  return absl::DataLossError(absl::StrCat("lead ", lead_id, ": merge chain too long"));
}

absl::StatusOr<std::optional<std::string>> TrackingStore::Resolve(
    const std::vector<std::string>& identities) {
  absl::StatusOr<std::vector<std::optional<std::string>>> leads = ResolveMany({identities});
  if (!leads.ok()) return leads.status();
  return leads->front();
}

absl::StatusOr<std::vector<std::optional<std::string>>> TrackingStore::ResolveMany(
    const std::vector<std::vector<std::string>>& identities) {
  std::vector<std::optional<std::string>> leads(identities.size());
  std::vector<redis::Args> commands;
  for (const std::vector<std::string>& ids : identities) {
    for (const std::string& id : ids) commands.push_back({"GET", IdentityKey(id)});
  }
  if (commands.empty()) return leads;
  absl::StatusOr<std::vector<redis::Reply>> replies = client_.Pipeline(commands);
  if (!replies.ok()) return replies.status();
  size_t next = 0;
  for (size_t i = 0; i < identities.size(); ++i) {
    // The most specific identity that names a lead wins.
    for (size_t k = 0; k < identities[i].size(); ++k) {
      const redis::Reply& r = (*replies)[next + k];
      if (r.is_error()) return redis::ErrorReplyToStatus(r);
      if (r.type == redis::Reply::Type::kString) {
        leads[i] = r.str;
        break;
      }
    }
    next += identities[i].size();
  }
  return leads;
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
