#pragma once

// Plain values for Kafka messages, free of librdkafka types so that handlers, the consumer loop
// and their tests never see a C handle.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/time/time.h"

namespace leadflow::kafka {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  friend bool operator==(const TopicPartition&, const TopicPartition&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const TopicPartition& tp) {
    return H::combine(std::move(h), tp.topic, tp.partition);
  }
};

struct Header {
  std::string key;
  std::string value;
};

// Header names used across leadflow.
inline constexpr std::string_view kContentTypeHeader = "content-type";
inline constexpr std::string_view kContentTypeProtobuf = "application/x-protobuf";
inline constexpr std::string_view kContentTypeJson = "application/json";

// A message read from a topic. Owns copies of key, value and headers.
struct ConsumedMessage {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::vector<Header> headers;
  // Broker or producer timestamp; InfinitePast when absent.
  absl::Time timestamp = absl::InfinitePast();

  TopicPartition tp() const { return {topic, partition}; }
  // The first header with this key, if any.
  std::optional<std::string_view> HeaderValue(std::string_view key) const {
    for (const Header& h : headers) {
      if (h.key == key) return h.value;
    }
    return std::nullopt;
  }
};

// A message to produce.
struct OutboundMessage {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<Header> headers;
};

}  // namespace leadflow::kafka
