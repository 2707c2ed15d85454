#pragma once

// A Lua script run with EVALSHA, loaded on demand: when Redis answers NOSCRIPT (first use, a
// restart, SCRIPT FLUSH, a fail-over) the script is loaded and the call repeated once.

#include <string>

#include "absl/status/statusor.h"
#include "common/redis/client.h"

namespace leadflow::redis {

class LuaScript {
 public:
  explicit LuaScript(std::string source);

  // Runs the script. A Redis error raised by the script is returned as INTERNAL (or UNAVAILABLE
  // for transient server states), not as a reply.
  absl::StatusOr<Reply> Run(RedisClient& client, const Args& keys, const Args& args) const;

  const std::string& sha1() const { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

}  // namespace leadflow::redis
