#pragma once

// Consumer on librdkafka: group membership, manual offset storage (enable.auto.offset.store =
// false) with periodic auto-commit of stored offsets, rebalance callbacks forwarded to the
// RebalanceListener, and librdkafka statistics exported as per-partition consumer-lag gauges
// (`leadflow_kafka_consumer_lag{service,topic,partition}`).
//
// Fenced static members rejoin. With group.instance.id set, the coordinator fences a member when
// another join arrives with its instance id, and librdkafka makes that a fatal error: the handle
// is done for. After a broker restart the other join can be the member's own abandoned
// JoinGroup (KAFKA-20985), so Poll() answers FENCED_INSTANCE_ID by revoking every assigned
// partition through the listener (offsets stored but not yet committed are redone by the new
// member, at-least-once), closing the handle and subscribing again with a fresh one. Two live
// replicas sharing an instance id would fence each other for ever: after kMaxRejoins within
// kRejoinWindow (RejoinBudget) the fatal error is returned as before. Rejoins are counted in
// `leadflow_kafka_consumer_rejoins_total{service}`.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/kafka/consumer.h"
#include "common/kafka/rdkafka_util.h"
#include "common/kafka/rejoin_budget.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace leadflow::kafka {

class RdKafkaConsumer final : public Consumer {
 public:
  static constexpr size_t kMaxRejoins = 3;
  static constexpr absl::Duration kRejoinWindow = absl::Minutes(10);

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
  RdKafkaConsumer(std::map<std::string, std::string> props, prometheus::Registry& registry,
                  std::string service);
  // Creates the librdkafka handle from props_ (callbacks set, poll queue forwarded).
  absl::Status Open();
  // Replaces a fenced handle with a new member of the group (see the header comment).
  absl::Status Rejoin(const absl::Status& fenced);
  void RemoveLag(const std::vector<TopicPartition>& partitions);
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static int OnStats(rd_kafka_t* rk, char* json, size_t json_len, void* opaque);
  void HandleRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  void HandleStats(const char* json, size_t len);

  const std::map<std::string, std::string> props_;
  RdPtr<rd_kafka_t> rk_;
  RebalanceListener* listener_ = nullptr;
  std::vector<std::string> topics_;
  // Partitions assigned and not yet revoked, as told to the listener.
  std::vector<TopicPartition> assigned_;
  // While a fenced handle closes: its partitions were revoked already, don't tell them again.
  bool rejoining_ = false;
  bool closed_ = false;
  RejoinBudget rejoin_budget_{kMaxRejoins, kRejoinWindow};
  std::string service_;
  prometheus::Family<prometheus::Gauge>& lag_;
  prometheus::Counter& rejoins_;
};

}  // namespace leadflow::kafka
