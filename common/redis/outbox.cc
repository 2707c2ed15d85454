#include "common/redis/outbox.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace leadflow::redis {
namespace {

std::string Millis(absl::Time t) { return absl::StrCat(absl::ToUnixMillis(t)); }

}  // namespace

std::string OutboxMember(absl::string_view lead_id, absl::string_view key) {
  return absl::StrCat(lead_id.size(), ":", lead_id, "|", key);
}

bool ParseOutboxMember(const std::string& member, std::string* lead_id, std::string* key) {
  const size_t colon = member.find(':');
  size_t length = 0;
  if (colon == std::string::npos || colon == 0 || colon > 9 ||
      !absl::SimpleAtoi(absl::string_view(member).substr(0, colon), &length) || length == 0) {
    return false;
  }
  const size_t bar = colon + 1 + length;
  if (bar >= member.size() || member[bar] != '|' || bar + 1 == member.size()) return false;
  *lead_id = member.substr(colon + 1, length);
  *key = member.substr(bar + 1);
  return true;
}

Args AddToOutboxCommand(const std::string& outbox_key, const std::string& member,
                        absl::Time sent_at) {
  return {"ZADD", outbox_key, Millis(sent_at), member};
}

absl::Status Outbox::Add(const std::vector<std::string>& members, absl::Time at) {
  if (members.empty()) return absl::OkStatus();
  Args zadd = {"ZADD", key_};
  for (const std::string& member : members) {
    zadd.push_back(Millis(at));
    zadd.push_back(member);
  }
  absl::StatusOr<Reply> reply = client_.Command(zadd);
  if (!reply.ok()) return reply.status();
  return ErrorReplyToStatus(*reply);
}

absl::StatusOr<std::vector<std::string>> Outbox::TakeStale(absl::Time before, absl::Time now,
                                                           int limit) {
  std::vector<std::string> stale;
  if (limit <= 0) return stale;
  absl::StatusOr<Reply> reply = client_.Command(
      {"ZRANGEBYSCORE", key_, "-inf", Millis(before), "LIMIT", "0", absl::StrCat(limit)});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) return ErrorReplyToStatus(*reply);
  for (const Reply& e : reply->elements) stale.push_back(e.str);
  if (stale.empty()) return stale;
  // XX: a member acknowledged (removed) in between is not put back.
  Args bump = {"ZADD", key_, "XX"};
  for (const std::string& member : stale) {
    bump.push_back(Millis(now));
    bump.push_back(member);
  }
  absl::StatusOr<Reply> bumped = client_.Command(bump);
  if (!bumped.ok()) return bumped.status();
  if (bumped->is_error()) return ErrorReplyToStatus(*bumped);
  return stale;
}

absl::Status Outbox::Remove(const std::vector<std::string>& members) {
  if (members.empty()) return absl::OkStatus();
  Args zrem = {"ZREM", key_};
  zrem.insert(zrem.end(), members.begin(), members.end());
  absl::StatusOr<Reply> reply = client_.Command(zrem);
  if (!reply.ok()) return reply.status();
  return ErrorReplyToStatus(*reply);
}

}  // namespace leadflow::redis
