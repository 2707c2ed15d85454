#include "bench/bench_support.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/config/yaml_proto.h"

namespace leadflow::bench {

void AddRunOptions(CLI::App& app, RunOptions& options) {
  app.add_option("--workers", options.workers, "handler threads (and Redis connections)")
      ->check(CLI::Range(1, 64));
  app.add_option("--batch", options.batch,
                 "inputs handed over at once, as a poll's batch (1: one by one, Handle())")
      ->check(CLI::Range(1, 10000));
  app.add_option("--lanes", options.lanes,
                 "threads each wave of a batch is split over (kafka::InLanes, LEADFLOW_WAVE_LANES)")
      ->check(CLI::Range(1, 64));
  app.add_flag("--commandstats", options.commandstats, "print Redis INFO commandstats at the end");
}

bool LoadSourceConfig(const std::string& file, google::protobuf::Message* config) {
  const std::string path = absl::StrCat(LEADFLOW_SOURCE_DIR, "/config/", file);
  if (absl::Status s = config::LoadYamlProto(path, config); !s.ok()) {
    std::fprintf(stderr, "config: %s\n", s.ToString().c_str());
    return false;
  }
  return true;
}

absl::StatusOr<PrivateRedis> StartPrivateRedis(int pool_size) {
  absl::StatusOr<std::unique_ptr<testing::RedisServer>> server = testing::RedisServer::Start();
  if (!server.ok()) return server.status();
  PrivateRedis redis;
  redis.server = *std::move(server);
  redis::HiredisOptions options;
  options.port = redis.server->port();
  options.pool_size = std::max(1, pool_size);
  redis.client = std::make_unique<redis::HiredisClient>(options);
  return redis;
}

std::optional<PrivateRedis> StartPrivateRedisFor(const RunOptions& options) {
  absl::StatusOr<PrivateRedis> redis =
      StartPrivateRedis(std::max(1, options.workers * options.lanes));
  if (!redis.ok()) {
    std::fprintf(stderr, "redis-server: %s\n", redis.status().ToString().c_str());
    return std::nullopt;
  }
  return std::move(*redis);
}

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

double ProcessCpu() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double RedisCpu(redis::RedisClient& client) {
  return InfoField(client, "cpu", "used_cpu_user") + InfoField(client, "cpu", "used_cpu_sys");
}

double RedisChildrenCpu(redis::RedisClient& client) {
  return InfoField(client, "cpu", "used_cpu_user_children") +
         InfoField(client, "cpu", "used_cpu_sys_children");
}

int64_t AofRewrites(redis::RedisClient& client) {
  return static_cast<int64_t>(InfoField(client, "persistence", "aof_rewrites"));
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

PartitionedRun RunPartitioned(const std::vector<std::vector<kafka::ConsumedMessage>>& inputs,
                              int workers, const InputHandler& handle, kafka::Producer& producer) {
  return RunPartitionedBatches(
      inputs, workers, 1,
      [&](const std::vector<const kafka::ConsumedMessage*>& batch) {
        return std::vector<kafka::HandleResult>{handle(*batch.front())};
      },
      producer);
}

PartitionedRun RunPartitionedBatches(const std::vector<std::vector<kafka::ConsumedMessage>>& inputs,
                                     int workers, size_t batch_size,
                                     const BatchInputHandler& handle_batch,
                                     kafka::Producer& producer) {
  std::atomic<int64_t> handled{0}, errors{0}, outputs{0};
  size_t rounds = 0;
  for (const auto& lead : inputs) rounds = std::max(rounds, lead.size());
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      std::vector<const kafka::ConsumedMessage*> batch;
      auto flush = [&] {
        if (batch.empty()) return;
        std::vector<kafka::HandleResult> results = handle_batch(batch);
        for (size_t k = 0; k < batch.size(); ++k) {
          const absl::Status status =
              k < results.size() ? results[k].status() : absl::AbortedError("not handled");
          if (!status.ok()) {
            if (errors.fetch_add(1) == 0) {
              std::fprintf(stderr, "first error: %s\n", status.ToString().c_str());
            }
            continue;
          }
          for (kafka::OutboundMessage& m : *results[k]) {
            outputs.fetch_add(1);
            (void)producer.Send(std::move(m), [](const absl::Status&) {});
          }
          handled.fetch_add(1);
        }
        batch.clear();
      };
      for (size_t r = 0; r < rounds; ++r) {
        for (size_t i = w; i < inputs.size(); i += workers) {
          if (r >= inputs[i].size()) continue;
          batch.push_back(&inputs[i][r]);
          if (batch.size() >= batch_size) flush();
        }
      }
      flush();
    });
  }
  for (std::thread& t : threads) t.join();
  return {.handled = handled.load(), .errors = errors.load(), .outputs = outputs.load()};
}

PartitionedRun RunAsTheServiceDoes(const std::vector<std::vector<kafka::ConsumedMessage>>& inputs,
                                   int workers, size_t batch, int lanes, const InputHandler& handle,
                                   kafka::WaveRoute wave_route, kafka::Producer& producer) {
  if (batch <= 1) return RunPartitioned(inputs, workers, handle, producer);
  const kafka::WaveRoute in_lanes = kafka::InLanes(lanes, std::move(wave_route));
  return RunPartitionedBatches(
      inputs, workers, batch,
      [&](const std::vector<const kafka::ConsumedMessage*>& polled) {
        return kafka::HandleInKeyWaves(polled, in_lanes);
      },
      producer);
}

}  // namespace leadflow::bench
