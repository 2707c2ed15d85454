#pragma once

// Encoding and decoding of event payloads by `content-type` header (ARCHITECTURE.md §3):
// `application/x-protobuf` or `application/json` (the proto3 JSON mapping of the same message,
// accepting both lowerCamel and snake_case names). A message without the header is sniffed: a
// payload starting with '{' is JSON, anything else protobuf. JSON is decoded by DecodeJsonSubset
// (json_subset.h) where it can, by protobuf's parser otherwise: the result is protobuf's either
// way.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/kafka/message.h"
#include "google/protobuf/message.h"

namespace leadflow::events {

enum class Encoding { kProtobuf, kJson };

// "protobuf" / "json" (case-insensitive).
absl::StatusOr<Encoding> ParseEncoding(absl::string_view name);

struct DecodeOptions {
  // Accept JSON fields the schema does not know (e.g. the rest of a Segment payload).
  bool ignore_unknown_json_fields = false;
  // Larger payloads are rejected before parsing.
  size_t max_bytes = 1 << 20;
};

// The encoding `message` carries (its content-type header, or sniffed), after the checks every
// payload passes: INVALID_ARGUMENT when it is empty, too large or of an unknown content type.
// For a consumer with a decoder of its own for one encoding (tracking's DecodeSegmentJson).
absl::StatusOr<Encoding> PayloadEncoding(const kafka::ConsumedMessage& message,
                                         const DecodeOptions& options = {});

// Decodes `message.value` into `out`. INVALID_ARGUMENT with a precise reason when the payload is
// empty, too large, of an unknown content type, or does not parse.
absl::Status Decode(const kafka::ConsumedMessage& message, google::protobuf::Message* out,
                    const DecodeOptions& options = {});
absl::Status DecodeJson(std::string_view json, google::protobuf::Message* out,
                        bool ignore_unknown_fields);

// An outbound message carrying `payload` with the matching content-type header.
kafka::OutboundMessage Encode(std::string topic, std::string key,
                              const google::protobuf::Message& payload,
                              Encoding encoding = Encoding::kProtobuf);

// The proto3 JSON form of a message (for logs, tools and JSON topics).
std::string ToJson(const google::protobuf::Message& message);

}  // namespace leadflow::events
