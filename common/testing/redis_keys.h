#pragma once

// Every key in a test's own Redis, by SCAN (not KEYS: it does not block the server), for tests
// that assert what an effect or an erasure left behind.

#include <string>
#include <vector>

#include "common/redis/client.h"

namespace leadflow::testing {

// All keys, in no particular order. Stops (and returns what it has) on an error, which a test
// sees as missing keys.
inline std::vector<std::string> AllKeys(redis::RedisClient& client) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    absl::StatusOr<redis::Reply> r = client.Command({"SCAN", cursor, "COUNT", "1000"});
    if (!r.ok() || r->elements.size() != 2) break;
    cursor = r->elements[0].str;
    for (const redis::Reply& k : r->elements[1].elements) keys.push_back(k.str);
  } while (cursor != "0");
  return keys;
}

}  // namespace leadflow::testing
