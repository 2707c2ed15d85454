#pragma once

// Small Kafka helpers for leadctl: produce-and-wait and read-a-topic-from-the-start.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/consumer.h"
#include "common/kafka/message.h"
#include "common/kafka/producer.h"
#include "prometheus/registry.h"

namespace leadflow::leadctl {

// Reads `topics` from the beginning with a fresh consumer group.
class TopicReader {
 public:
  static absl::StatusOr<std::unique_ptr<TopicReader>> Create(
      const std::string& bootstrap, const std::vector<std::string>& topics);
  // Calls `on_message` for every message until `done()` holds or `deadline` passes; returns
  // whether `done()` held.
  bool ReadUntil(const std::function<void(const kafka::ConsumedMessage&)>& on_message,
                 const std::function<bool()>& done, absl::Duration deadline);

 private:
  prometheus::Registry registry_;
  std::unique_ptr<kafka::Consumer> consumer_;
  absl::Time last_error_report_ = absl::InfinitePast();
};

absl::StatusOr<std::unique_ptr<kafka::Producer>> MakeProducer(const std::string& bootstrap);

}  // namespace leadflow::leadctl
