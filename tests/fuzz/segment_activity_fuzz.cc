// Fuzz target: an `activities.inbound` message (a Segment call) as tracking decodes and
// normalises it. The first byte picks the content type (even: JSON, odd: protobuf).
#include <string>

#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "leadflow/config/v1/service_config.pb.h"
#include "leadflow/events/v1/activity.pb.h"
#include "services/tracking/engine.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

const leadflow::tracking::ActivityNormalizer& TheNormalizer() {
  static const auto* normalizer = [] {
    leadflow::config::v1::TrackingConfig config;
    (void)leadflow::config::LoadYamlProto(
        std::string(LEADFLOW_SOURCE_DIR) + "/config/tracking.yaml", &config);
    return new leadflow::tracking::ActivityNormalizer(
        *leadflow::tracking::ActivityNormalizer::Create(config));
  }();
  return *normalizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  leadflow::kafka::ConsumedMessage message;
  message.topic = "activities.inbound";
  message.value.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  message.headers.push_back(
      {std::string(leadflow::kafka::kContentTypeHeader),
       std::string(data[0] % 2 == 0 ? leadflow::kafka::kContentTypeJson
                                    : leadflow::kafka::kContentTypeProtobuf)});
  leadflow::events::DecodeOptions options;
  options.ignore_unknown_json_fields = true;  // as tracking decodes: the rest of a Segment call
  leadflow::events::v1::InboundActivity inbound;
  if (!leadflow::events::Decode(message, &inbound, options).ok()) return 0;
  (void)TheNormalizer().Normalize(inbound, absl::FromUnixSeconds(1790000000));
  return 0;
}
