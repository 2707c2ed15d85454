#pragma once

// What the store benchmarks (bench/*_store_bench.cc) share: a producer that acknowledges at once
// (the benchmarks measure a service's Redis path, not Kafka), and readings of the private
// redis-server's INFO (CPU, memory, command counts) they report per event.
//
// Thread safety: CountingProducer is safe to use from many threads; the INFO readers issue one
// command on the given client.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/config/env.h"
#include "common/kafka/handler.h"
#include "common/kafka/message.h"
#include "common/kafka/producer.h"
#include "common/redis/client.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/redis_server.h"

namespace leadflow::bench {

// Acknowledges every message at once and only counts them.
class CountingProducer final : public kafka::Producer {
 public:
  absl::Status Send(kafka::OutboundMessage, DeliveryCallback on_delivery) override {
    sent_.fetch_add(1);
    on_delivery(absl::OkStatus());
    return absl::OkStatus();
  }
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }
  int64_t sent() const { return sent_.load(); }

 private:
  std::atomic<int64_t> sent_{0};
};

// Forwards every message to a real producer and counts those the broker acknowledged (the
// drain of a benchmark with a broker is done when they all are).
class AcknowledgedCounter final : public kafka::Producer {
 public:
  explicit AcknowledgedCounter(std::unique_ptr<kafka::Producer> inner) : inner_(std::move(inner)) {}
  absl::Status Send(kafka::OutboundMessage message, DeliveryCallback on_delivery) override {
    return inner_->Send(std::move(message),
                        [this, on_delivery = std::move(on_delivery)](const absl::Status& s) {
                          if (s.ok()) acknowledged_.fetch_add(1);
                          on_delivery(s);
                        });
  }
  absl::Status Flush(absl::Duration timeout) override { return inner_->Flush(timeout); }
  int64_t sent() const { return acknowledged_.load(); }

 private:
  std::unique_ptr<kafka::Producer> inner_;
  std::atomic<int64_t> acknowledged_{0};
};

// How a store benchmark runs its service's handler, as the service would: `workers` threads
// (partitions over consumers), each handed `batch` inputs at once, each wave over `lanes`.
struct RunOptions {
  int workers = 1;
  int batch = 256;
  int lanes = config::RuntimeConfig{}.wave_lanes;
  bool commandstats = false;  // print Redis INFO commandstats at the end
};
// Adds --workers, --batch, --lanes and --commandstats for `options` to `app`.
void AddRunOptions(CLI::App& app, RunOptions& options);

// Reads config/<file> of the source tree into `config`; false, with the reason on stderr, if it
// cannot.
bool LoadSourceConfig(const std::string& file, google::protobuf::Message* config);

// The benchmark's own redis-server (a free port, AOF on as in the stack; never the stack's) and a
// client with `pool_size` connections to it. Members are destroyed client first.
struct PrivateRedis {
  std::unique_ptr<testing::RedisServer> server;
  std::unique_ptr<redis::HiredisClient> client;
};
absl::StatusOr<PrivateRedis> StartPrivateRedis(int pool_size);
// The same with a connection per thread of `options` (workers × lanes); nullopt, with the reason
// on stderr, if it cannot start.
std::optional<PrivateRedis> StartPrivateRedisFor(const RunOptions& options);

// A numeric field of INFO <section>, or -1 when it cannot be read.
double InfoField(redis::RedisClient& client, const std::string& section, absl::string_view name);

// Bytes the redis-server holds (INFO memory used_memory).
int64_t UsedMemory(redis::RedisClient& client);

// CPU seconds the redis-server used so far (user + system).
double RedisCpu(redis::RedisClient& client);
// CPU seconds its children (AOF rewrites) used so far, and how many AOF rewrites it made.
double RedisChildrenCpu(redis::RedisClient& client);
int64_t AofRewrites(redis::RedisClient& client);
// CPU seconds (user + system, all threads) this process has used so far.
double ProcessCpu();

// `calls` of one command in INFO commandstats ("cmdstat_evalsha:calls=..."); 0 if never called.
int64_t CommandCalls(redis::RedisClient& client, absl::string_view command);

// What RunPartitioned did.
struct PartitionedRun {
  int64_t handled = 0;  // inputs the handler accepted
  int64_t errors = 0;   // inputs it failed (the first error is printed to stderr)
  int64_t outputs = 0;  // messages handed to the producer
};

// Feeds `inputs[lead][round]` to `handle` on `workers` threads, leads split over them like
// partitions over consumers, round by round: each lead's inputs stay in order, and consecutive
// inputs of one thread are of different leads, as in a partition with many leads. Every output
// goes to `producer`.
using InputHandler = std::function<absl::StatusOr<std::vector<kafka::OutboundMessage>>(
    const kafka::ConsumedMessage&)>;
PartitionedRun RunPartitioned(const std::vector<std::vector<kafka::ConsumedMessage>>& inputs,
                              int workers, const InputHandler& handle, kafka::Producer& producer);

// RunPartitioned() handing each thread's inputs over `batch_size` at a time, in the same order,
// as the consumer loop hands over a poll's messages (MessageHandler::HandleBatch).
using BatchInputHandler = std::function<std::vector<kafka::HandleResult>(
    const std::vector<const kafka::ConsumedMessage*>&)>;
PartitionedRun RunPartitionedBatches(const std::vector<std::vector<kafka::ConsumedMessage>>& inputs,
                                     int workers, size_t batch_size,
                                     const BatchInputHandler& handle_batch,
                                     kafka::Producer& producer);

// The inputs as a service's consumer loop hands them over: with `batch` 1 each alone to `handle`
// (RunPartitioned); otherwise `batch` at a time, split into waves of distinct keys and each wave
// over `lanes` threads (kafka::HandleInKeyWaves over kafka::InLanes), as the service's
// TopicRouter does with the topic's wave route (services/<service>/app.cc).
PartitionedRun RunAsTheServiceDoes(const std::vector<std::vector<kafka::ConsumedMessage>>& inputs,
                                   int workers, size_t batch, int lanes, const InputHandler& handle,
                                   kafka::WaveRoute wave_route, kafka::Producer& producer);

}  // namespace leadflow::bench
