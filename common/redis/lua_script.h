#pragma once

// A Lua script run with EVALSHA, loaded on demand: when Redis answers NOSCRIPT (first use, a
// restart, SCRIPT FLUSH, a fail-over) the script is loaded and the call repeated once.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/redis/client.h"

namespace leadflow::redis {

class LuaScript {
 public:
  explicit LuaScript(std::string source);

  // Runs the script. A Redis error raised by the script is returned as INTERNAL (or UNAVAILABLE
  // for transient server states), not as a reply.
  absl::StatusOr<Reply> Run(RedisClient& client, const Args& keys, const Args& args) const;

  // The EVALSHA command of one call, for RunPipelined.
  Args Command(const Args& keys, const Args& args) const;

  // Runs many calls (Command()s of this script) in one pipelined round trip; calls that found
  // the script unloaded are repeated after loading it. Replies are in call order; a script's
  // error stays an error reply in its place.
  absl::StatusOr<std::vector<Reply>> RunPipelined(RedisClient& client,
                                                  const std::vector<Args>& calls) const;

  const std::string& sha1() const { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

}  // namespace leadflow::redis
