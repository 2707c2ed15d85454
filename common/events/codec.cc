#include "common/events/codec.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/events/json_subset.h"
#include "google/protobuf/util/json_util.h"

namespace leadflow::events {

absl::StatusOr<Encoding> ParseEncoding(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "protobuf" || lower == "proto" ||
      lower == std::string(kafka::kContentTypeProtobuf)) {
    return Encoding::kProtobuf;
  }
  if (lower == "json" || lower == std::string(kafka::kContentTypeJson)) return Encoding::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown encoding '", name, "' (want protobuf or json)"));
}

absl::Status DecodeJson(std::string_view json, google::protobuf::Message* out,
                        bool ignore_unknown_fields) {
  // The common shape of an event without protobuf's converter; anything else goes to it.
  if (DecodeJsonSubset(json, out)) return absl::OkStatus();
  out->Clear();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = ignore_unknown_fields;
  options.case_insensitive_enum_parsing = true;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), out, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON ", out->GetDescriptor()->name(),
                                                   ": ", status.message().ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Encoding> PayloadEncoding(const kafka::ConsumedMessage& message,
                                         const DecodeOptions& options) {
  if (message.value.empty()) return absl::InvalidArgumentError("empty payload");
  if (message.value.size() > options.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "payload of ", message.value.size(), " bytes exceeds the limit of ", options.max_bytes));
  }
  if (std::optional<std::string_view> ct = message.HeaderValue(kafka::kContentTypeHeader)) {
    // Parameters such as "; charset=utf-8" do not change the encoding.
    const std::string header(*ct);
    absl::string_view type = absl::string_view(header).substr(0, header.find(';'));
    absl::StatusOr<Encoding> parsed = ParseEncoding(absl::StripAsciiWhitespace(type));
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("unsupported content-type '", header, "'"));
    }
    return *parsed;
  }
  const size_t first = message.value.find_first_not_of(" \t\r\n");
  return first != std::string::npos && message.value[first] == '{' ? Encoding::kJson
                                                                   : Encoding::kProtobuf;
}

absl::Status Decode(const kafka::ConsumedMessage& message, google::protobuf::Message* out,
                    const DecodeOptions& options) {
  absl::StatusOr<Encoding> encoding = PayloadEncoding(message, options);
  if (!encoding.ok()) return encoding.status();
  if (*encoding == Encoding::kJson) {
    return DecodeJson(message.value, out, options.ignore_unknown_json_fields);
  }
  if (!out->ParseFromString(message.value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload is not a valid protobuf ", out->GetDescriptor()->full_name()));
  }
  return absl::OkStatus();
}

kafka::OutboundMessage Encode(std::string topic, std::string key,
                              const google::protobuf::Message& payload, Encoding encoding) {
  kafka::OutboundMessage out;
  out.topic = std::move(topic);
  out.key = std::move(key);
  if (encoding == Encoding::kJson) {
    out.value = ToJson(payload);
    out.headers.push_back(
        {std::string(kafka::kContentTypeHeader), std::string(kafka::kContentTypeJson)});
  } else {
    out.value = payload.SerializeAsString();
    out.headers.push_back(
        {std::string(kafka::kContentTypeHeader), std::string(kafka::kContentTypeProtobuf)});
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = false;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

}  // namespace leadflow::events
