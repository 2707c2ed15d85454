#pragma once

// What the store benchmarks (bench/*_store_bench.cc) share: a producer that acknowledges at once
// (the benchmarks measure a service's Redis path, not Kafka), and readings of the private
// redis-server's INFO (CPU, memory, command counts) they report per event.
//
// Thread safety: CountingProducer is safe to use from many threads; the INFO readers issue one
// command on the given client.

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/kafka/producer.h"
#include "common/redis/client.h"

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

// A numeric field of INFO <section>, or -1 when it cannot be read.
double InfoField(redis::RedisClient& client, const std::string& section, absl::string_view name);

// Bytes the redis-server holds (INFO memory used_memory).
int64_t UsedMemory(redis::RedisClient& client);

// CPU seconds the redis-server used so far (user + system).
double RedisCpu(redis::RedisClient& client);

// `calls` of one command in INFO commandstats ("cmdstat_evalsha:calls=..."); 0 if never called.
int64_t CommandCalls(redis::RedisClient& client, absl::string_view command);

}  // namespace leadflow::bench
