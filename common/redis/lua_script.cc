#include "common/redis/lua_script.h"

#include <openssl/sha.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace leadflow::redis {

LuaScript::LuaScript(std::string source) : source_(std::move(source)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source_.data()), source_.size(), digest);
  for (unsigned char b : digest) absl::StrAppendFormat(&sha1_, "%02x", b);
}

Args LuaScript::Command(const Args& keys, const Args& args) const {
  Args command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(sha1_);
  command.push_back(absl::StrCat(keys.size()));
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

absl::StatusOr<std::vector<Reply>> LuaScript::RunPipelined(RedisClient& client,
                                                           const std::vector<Args>& calls) const {
  if (calls.empty()) return std::vector<Reply>{};
  absl::StatusOr<std::vector<Reply>> replies = client.Pipeline(calls);
  if (!replies.ok()) return replies.status();
  std::vector<size_t> unloaded;
  for (size_t i = 0; i < replies->size(); ++i) {
    const Reply& r = (*replies)[i];
    if (r.is_error() && absl::StartsWith(r.str, "NOSCRIPT")) unloaded.push_back(i);
  }
  if (unloaded.empty()) return replies;
  std::vector<Args> again = {{"SCRIPT", "LOAD", source_}};
  for (size_t i : unloaded) again.push_back(calls[i]);
  absl::StatusOr<std::vector<Reply>> retried = client.Pipeline(again);
  if (!retried.ok()) return retried.status();
  if ((*retried)[0].is_error()) return ErrorReplyToStatus((*retried)[0]);
  for (size_t k = 0; k < unloaded.size(); ++k) (*replies)[unloaded[k]] = (*retried)[k + 1];
  return replies;
}

absl::StatusOr<Reply> LuaScript::Run(RedisClient& client, const Args& keys,
                                     const Args& args) const {
  const Args command = Command(keys, args);
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<Reply> reply = client.Command(command);
    if (!reply.ok()) return reply.status();
    if (!reply->is_error()) return reply;
    if (!absl::StartsWith(reply->str, "NOSCRIPT")) return ErrorReplyToStatus(*reply);
    absl::StatusOr<Reply> loaded = client.Command({"SCRIPT", "LOAD", source_});
    if (!loaded.ok()) return loaded.status();
    if (loaded->is_error()) return ErrorReplyToStatus(*loaded);
  }
  return absl::UnavailableError("redis kept forgetting the script");
}

}  // namespace leadflow::redis
