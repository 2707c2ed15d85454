#pragma once

// Producer on librdkafka. Idempotent (enable.idempotence=true, acks=all) unless the properties
// say otherwise; a background thread serves delivery reports.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/kafka/producer.h"
#include "common/kafka/rdkafka_util.h"

namespace leadflow::kafka {

class RdKafkaProducer final : public Producer {
 public:
  // `props` are librdkafka properties; bootstrap.servers is required.
  static absl::StatusOr<std::unique_ptr<RdKafkaProducer>> Create(
      std::map<std::string, std::string> props);
  ~RdKafkaProducer() override;

  absl::Status Send(OutboundMessage message, DeliveryCallback on_delivery) override;
  absl::Status Flush(absl::Duration timeout) override;

 private:
  explicit RdKafkaProducer(RdPtr<rd_kafka_t> rk);
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);

  RdPtr<rd_kafka_t> rk_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace leadflow::kafka
