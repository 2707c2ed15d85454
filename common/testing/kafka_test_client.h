#pragma once

// Helpers for integration tests against a real broker (or librdkafka's mock cluster), built on
// the production adapters (RdKafkaProducer, RdKafkaConsumer, CreateTopics) so the tests exercise
// the code services run.
//
// Every helper takes librdkafka properties (KafkaProps(bootstrap) plus whatever a test adds), so
// the same helpers serve the shared broker of TestEnv and a MockKafkaCluster.
//
// Thread safety: free functions are thread-safe; TopicReader's methods may be called from any
// thread.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/consumer.h"
#include "common/kafka/message.h"
#include "common/kafka/producer.h"
#include "prometheus/registry.h"

namespace leadflow::testing {

using KafkaProperties = std::map<std::string, std::string>;

// {"bootstrap.servers": bootstrap} with settings that keep tests quick (short reconnect backoff,
// small linger).
KafkaProperties KafkaProps(const std::string& bootstrap);

// OK once the broker answers a metadata request; UNAVAILABLE if it does not within `timeout`.
// Integration tests call this right after TestEnv::Load() so that a stack that is down fails the
// test at once with a clear message instead of timing out later.
absl::Status WaitForKafka(const KafkaProperties& props, absl::Duration timeout);

// Creates `prefix + base` for every base (plus nothing else) and waits until they have leaders.
absl::Status CreateTopics(const KafkaProperties& props, const std::string& prefix,
                          const std::vector<std::string>& bases, int partitions = 3,
                          absl::Duration timeout = absl::Seconds(30));

// Deletes topics (best effort, for tests tidying up a shared broker). Topics that do not exist
// are not an error.
absl::Status DeleteTopics(const KafkaProperties& props, const std::vector<std::string>& names,
                          absl::Duration timeout = absl::Seconds(30));

// An idempotent RdKafkaProducer for `props`.
absl::StatusOr<std::unique_ptr<kafka::Producer>> MakeProducer(const KafkaProperties& props);

// Sends one message and waits for the broker's acknowledgement.
absl::Status ProduceAndWait(kafka::Producer& producer, kafka::OutboundMessage message,
                            absl::Duration timeout = absl::Seconds(30));
// Sends all messages (in order), then waits until every one is acknowledged. The first error.
absl::Status ProduceAll(kafka::Producer& producer, std::vector<kafka::OutboundMessage> messages,
                        absl::Duration timeout = absl::Seconds(60));

// High watermark (offset of the next message) of each partition 0..partitions-1.
absl::StatusOr<std::map<int32_t, int64_t>> EndOffsets(const KafkaProperties& props,
                                                      const std::string& topic, int partitions,
                                                      absl::Duration timeout = absl::Seconds(10));
// Committed offset of `group` on each partition 0..partitions-1; -1 where nothing is committed.
absl::StatusOr<std::map<int32_t, int64_t>> CommittedOffsets(
    const KafkaProperties& props, const std::string& group, const std::string& topic,
    int partitions, absl::Duration timeout = absl::Seconds(10));

// Reads topics from the beginning in a consumer group of its own (it never commits), on a
// background thread, and keeps every message. Stops and closes in the destructor.
class TopicReader final : private kafka::RebalanceListener {
 public:
  static absl::StatusOr<std::unique_ptr<TopicReader>> Start(KafkaProperties props,
                                                            std::vector<std::string> topics);
  ~TopicReader() override;

  // True once at least `n` messages have been read; false at the deadline.
  bool WaitForCount(size_t n, absl::Duration deadline) const;
  // True once the group has assigned partitions to the reader.
  bool WaitForAssignment(absl::Duration deadline) const;
  size_t Count() const;
  std::vector<kafka::ConsumedMessage> Messages() const;
  // A fatal consumer error, if one ended the reader.
  absl::Status status() const;

 private:
  TopicReader() = default;
  void Run();
  void OnAssigned(const std::vector<kafka::TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<kafka::TopicPartition>& partitions) override {}

  prometheus::Registry registry_;  // outlives consumer_, which registers a metric family in it
  std::unique_ptr<kafka::Consumer> consumer_;
  std::vector<std::string> topics_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> assigned_{false};
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::vector<kafka::ConsumedMessage> messages_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// librdkafka's in-process mock cluster (a Kafka protocol implementation on loopback sockets):
// real clients talk to it through bootstrap_servers(), and the test injects failures.
class MockKafkaCluster {
 public:
  static absl::StatusOr<std::unique_ptr<MockKafkaCluster>> Start(int brokers = 1);
  ~MockKafkaCluster();

  const std::string& bootstrap_servers() const { return bootstrap_; }
  absl::Status CreateTopic(const std::string& topic, int partitions);
  // The next errors.size() requests of `api_key` (0 = Produce, 1 = Fetch, 8 = OffsetCommit...)
  // fail with these error codes (rd_kafka_resp_err_t values), in order.
  absl::Status PushRequestErrors(int16_t api_key, const std::vector<int>& errors);
  // Takes a broker's listener down (connections closed, new ones refused) or back up.
  absl::Status SetBrokerDown(int32_t broker_id);
  absl::Status SetBrokerUp(int32_t broker_id);

 private:
  struct Impl;
  explicit MockKafkaCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string bootstrap_;
};

}  // namespace leadflow::testing
