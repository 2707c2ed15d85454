#pragma once

// TrackingStore: tracking's Redis key schema, in one place (ARCHITECTURE.md §5).
//
//   tracking:{<lead_id>}:history       versioned record: ActivityHistory (engine encoding), from
//                                      which the lead's aggregates are computed; for a lead capture
//                                      merged into another, "->" + that lead's id (a redirect,
//                                      registered with the survivor: activity still arriving under
//                                      the old id goes to the survivor)
//   tracking:{<lead_id>}:timeline      list of the most recent Activity protos, newest first
//   tracking:{<lead_id>}:keys          the lead's key registry (erasure deletes every member)
//   tracking:{<lead_id>}:erased        erasure tombstone
//   tracking:id:{<identity>}           string: the lead an identity belongs to; identities are
//                                      "user:<userId>" (lead id, external id or e-mail used as a
//                                      Segment userId), "anon:<anonymousId>", "email:<address>"
//   tracking:pending:{<identity>}      versioned record: PendingActivities of an identity not yet
//                                      linked to a lead (bounded, expires after 30 days)
//   tracking:msg:{<messageId>}         apply-once record of an activity (the de-duplication
//                                      window, default 24 h, is its TTL)
//   tracking:outbox                    sorted set of the message ids of activities taken in
//                                      through gRPC whose events are not yet acknowledged, score
//                                      = when they were last sent (TrackingGrpcService re-sends)

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/redis/apply_once.h"
#include "common/redis/client.h"
#include "common/redis/outbox.h"
#include "leadflow/events/v1/activity.pb.h"

namespace leadflow::tracking {

inline constexpr char kService[] = "tracking";
inline constexpr int kTimelineLength = 200;

class TrackingStore {
 public:
  explicit TrackingStore(redis::RedisClient& client)
      : client_(client), apply_(client), outbox_(client, "tracking:outbox") {}

  static std::string HistoryKey(const std::string& lead_id);
  static std::string TimelineKey(const std::string& lead_id);
  static std::string IdentityKey(const std::string& identity);
  static std::string PendingKey(const std::string& identity);
  static std::string MessageKey(const std::string& message_id);

  // The history record of a lead merged into `survivor_id`, and the survivor a history record
  // redirects to (nullopt for a real history or none).
  static std::string MergedHistory(const std::string& survivor_id);
  static std::optional<std::string> MergedInto(const redis::Versioned& history_record);
  // How many merge redirects a look-up follows before giving up (a chain that long is corrupt).
  static constexpr int kMaxMergeHops = 8;

  // The lead `lead_id` is now (itself, or the lead it was merged into, following redirects) and
  // that lead's history record.
  absl::StatusOr<redis::Versioned> CurrentHistory(const std::string& lead_id,
                                                  std::string* current_id);

  // The lead of the first identity that has one.
  absl::StatusOr<std::optional<std::string>> Resolve(const std::vector<std::string>& identities);
  // Resolve() for many activities' identities in one pipelined round trip.
  absl::StatusOr<std::vector<std::optional<std::string>>> ResolveMany(
      const std::vector<std::vector<std::string>>& identities);
  // Newest first; `start` and `count` page through the capped timeline.
  absl::StatusOr<std::vector<events::v1::Activity>> Timeline(const std::string& lead_id, int start,
                                                             int count);

  redis::ApplyOnce& apply() { return apply_; }
  // The gRPC API's outbox (common/redis/outbox.h): members are message ids.
  redis::Outbox& outbox() { return outbox_; }
  redis::RedisClient& client() { return client_; }

  // Deletes every trace of a lead (history, timeline, identity links, memos).
  absl::Status Erase(const std::string& lead_id, absl::Duration tombstone_ttl);

 private:
  redis::RedisClient& client_;
  redis::ApplyOnce apply_;
  redis::Outbox outbox_;
};

}  // namespace leadflow::tracking
