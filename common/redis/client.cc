#include "common/redis/client.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace leadflow::redis {

absl::Status RedisClient::Ping() {
  absl::StatusOr<Reply> reply = Command({"PING"});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return ErrorReplyToStatus(*reply);
  return absl::OkStatus();
}

absl::Status ErrorReplyToStatus(const Reply& reply) {
  if (!reply.is_error()) return absl::OkStatus();
  for (absl::string_view transient : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"}) {
    if (absl::StartsWith(reply.str, transient)) {
      return absl::UnavailableError(absl::StrCat("redis: ", reply.str));
    }
  }
  return absl::InternalError(absl::StrCat("redis: ", reply.str));
}

}  // namespace leadflow::redis
