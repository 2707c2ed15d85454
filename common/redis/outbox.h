#pragma once

// An outbox: a sorted set of applied decisions whose events the broker has not acknowledged yet,
// for effects produced outside the consumer loop (a gRPC call, a scheduler pass), where no
// uncommitted offset brings the input back after a crash. The apply that records the decision
// adds its member (AddToOutboxCommand, one of the plan's extra commands, so the two are atomic);
// the acknowledgement removes it; a periodic pass takes the members left for longer than a grace
// period and re-sends their events from the decision's apply-once memo (same events, same ids).
//
// A member names the lead and the decision's key: "<length of lead id>:<lead id>|<key>" (the
// length because lead ids may hold any character). The score is when its events were last sent
// (Unix ms).
//
// Two replicas may take the same member at the same moment and both re-send it: a duplicate on
// the wire, which consumers drop by event id; never a loss.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/redis/client.h"

namespace leadflow::redis {

// A member naming a lead and a key (for outboxes whose entries need the lead's keys).
std::string OutboxMember(absl::string_view lead_id, absl::string_view key);
// The parts of a member; false for a malformed one.
bool ParseOutboxMember(const std::string& member, std::string* lead_id, std::string* key);

// ZADD of `member` to `outbox_key` at `sent_at`, for Plan::extra_commands.
Args AddToOutboxCommand(const std::string& outbox_key, const std::string& member,
                        absl::Time sent_at);

// One outbox (a sorted set) of one service's Redis. Thread-safe as its client is.
class Outbox {
 public:
  Outbox(RedisClient& client, std::string key) : client_(client), key_(std::move(key)) {}

  const std::string& key() const { return key_; }
  // Adds members sent at `at` (none: no round trip).
  absl::Status Add(const std::vector<std::string>& members, absl::Time at);
  // Up to `limit` members last sent at or before `before`, oldest first, each moved to `now`, so
  // that the passes after this one leave it alone for another grace period while it is re-sent.
  absl::StatusOr<std::vector<std::string>> TakeStale(absl::Time before, absl::Time now, int limit);
  // Removes acknowledged members (none: no round trip).
  absl::Status Remove(const std::vector<std::string>& members);

 private:
  RedisClient& client_;
  const std::string key_;
};

}  // namespace leadflow::redis
