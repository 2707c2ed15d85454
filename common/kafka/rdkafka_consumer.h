#pragma once

// Consumer on librdkafka: group membership, manual offset storage (enable.auto.offset.store =
// false) with periodic auto-commit of stored offsets, rebalance callbacks forwarded to the
// RebalanceListener, and librdkafka statistics exported as per-partition consumer-lag gauges
// (`leadflow_kafka_consumer_lag{service,topic,partition}`).

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/kafka/consumer.h"
#include "common/kafka/rdkafka_util.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace leadflow::kafka {

class RdKafkaConsumer final : public Consumer {
 public:
  // `props` are librdkafka properties; bootstrap.servers and group.id are required. Statistics
  // are enabled every 5 s unless statistics.interval.ms says otherwise.
  static absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> Create(
      std::map<std::string, std::string> props, prometheus::Registry& registry,
      std::string service);
  ~RdKafkaConsumer() override;

  absl::Status Subscribe(const std::vector<std::string>& topics,
                         RebalanceListener* listener) override;
  absl::StatusOr<std::optional<ConsumedMessage>> Poll(absl::Duration timeout) override;
  absl::Status StoreOffset(const TopicPartition& tp, int64_t next_offset) override;
  absl::Status Seek(const TopicPartition& tp, int64_t offset) override;
  absl::Status PauseAll() override;
  absl::Status ResumeAll() override;
  absl::Status Commit() override;
  void Close() override;

 private:
  RdKafkaConsumer(prometheus::Registry& registry, std::string service);
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static int OnStats(rd_kafka_t* rk, char* json, size_t json_len, void* opaque);
  void HandleRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  void HandleStats(const char* json, size_t len);

  RdPtr<rd_kafka_t> rk_;
  RebalanceListener* listener_ = nullptr;
  bool closed_ = false;
  std::string service_;
  prometheus::Family<prometheus::Gauge>& lag_;
};

}  // namespace leadflow::kafka
