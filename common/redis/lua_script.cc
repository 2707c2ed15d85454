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

absl::StatusOr<Reply> LuaScript::Run(RedisClient& client, const Args& keys,
                                     const Args& args) const {
  Args command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(sha1_);
  command.push_back(absl::StrCat(keys.size()));
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
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
