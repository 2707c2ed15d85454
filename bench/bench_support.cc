#include "bench/bench_support.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace leadflow::bench {

double InfoField(redis::RedisClient& client, const std::string& section, absl::string_view name) {
  absl::StatusOr<redis::Reply> info = client.Command({"INFO", section});
  if (!info.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(info->str, "\r\n")) {
    if (absl::ConsumePrefix(&line, name) && absl::ConsumePrefix(&line, ":")) {
      double v = 0;
      if (absl::SimpleAtod(line, &v)) return v;
    }
  }
  return -1;
}

int64_t UsedMemory(redis::RedisClient& client) {
  return static_cast<int64_t>(InfoField(client, "memory", "used_memory"));
}

double RedisCpu(redis::RedisClient& client) {
  return InfoField(client, "cpu", "used_cpu_user") + InfoField(client, "cpu", "used_cpu_sys");
}

int64_t CommandCalls(redis::RedisClient& client, absl::string_view command) {
  absl::StatusOr<redis::Reply> info = client.Command({"INFO", "commandstats"});
  if (!info.ok()) return -1;
  const std::string prefix = absl::StrCat("cmdstat_", command, ":calls=");
  for (absl::string_view line : absl::StrSplit(info->str, "\r\n")) {
    if (!absl::ConsumePrefix(&line, prefix)) continue;
    int64_t calls = 0;
    if (absl::SimpleAtoi(line.substr(0, line.find(',')), &calls)) return calls;
  }
  return 0;
}

}  // namespace leadflow::bench
