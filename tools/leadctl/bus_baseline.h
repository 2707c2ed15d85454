#pragma once

// The raw-bus baseline of `leadctl load --baseline`: what the Kafka broker of the stack carries
// through as many consume → produce hops as the pipeline has, with nothing but the bus in the
// way, on the same machine and in the same run as the load.
//
// The chain mirrors a lead's path to its routing decision: generator → leads.inbound →
// [capture] → leads.captured → [tracking] → leads.activity → [scoring] → leads.scored →
// [routing] → leads.routed → verifier, i.e. kPipelineHops pass-through relays over
// kPipelineHops + 1 topics. Each relay is the services' own kafka::ConsumerLoop (offsets stored
// only after the output is acknowledged) with a pass-through handler, on an RdKafkaConsumer and
// RdKafkaProducer created with the services' defaults (idempotent producer, acks=all, lz4,
// linger.ms 5; manual offset store, auto commit). Topic k carries real message bodies sampled
// from the pipeline's own topic at that position (same sizes, same compressibility).
//
// The bus is timed from the first message sent to the last one read at the end of the chain,
// after a warm-up that waits until every relay has joined its group and passed messages on.
//
// Thread safety: RunBusBaseline is a program; call it from one thread.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace leadflow::leadctl {

// Consume → produce hops from leads.inbound to leads.routed.
inline constexpr int kPipelineHops = 4;

struct BusBaselineOptions {
  std::string bootstrap;
  // Topics are created as `<topic_prefix>leadctl.bus.<run>.<k>`, k = 0..hops.
  std::string topic_prefix;
  std::string run;
  int partitions = 3;
  int hops = kPipelineHops;
  // Messages sent into the chain (after the warm-up).
  int64_t messages = 10000;
  // samples[k]: message bodies for topic k (hops + 1 lists, none empty); used round robin.
  std::vector<std::vector<std::string>> samples;
  // The sending producer's local queue (librdkafka's queue.buffering.max.messages); 0 keeps
  // librdkafka's default. Sending waits while it is full.
  int producer_queue_messages = 0;
  // Longest wait for the chain to deliver everything.
  int timeout_seconds = 300;
};

struct BusBaselineReport {
  int hops = 0;
  int64_t messages = 0;
  // Messages read at the end of the chain (== messages unless the bus lost some in time).
  int64_t delivered = 0;
  double seconds = 0;
  // Messages carried end to end through all hops per second.
  double messages_per_second = 0;
  // Average body size per topic, bytes.
  std::vector<double> mean_bytes;
};

absl::StatusOr<BusBaselineReport> RunBusBaseline(const BusBaselineOptions& options);

// `leadctl bus`: the baseline alone against the stack named by `env` (stack_env.h), with bodies
// shaped like activities.inbound; prints what it carried. Fails unless every message came through.
absl::Status RunBusCommand(const std::map<std::string, std::string>& env,
                           BusBaselineOptions options);

}  // namespace leadflow::leadctl
