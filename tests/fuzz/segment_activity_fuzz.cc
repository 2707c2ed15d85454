// Fuzz target: an `activities.inbound` message (a Segment call) as tracking decodes and
// normalises it. The first byte picks the content type (even: JSON, odd: protobuf); a JSON call
// is decoded by tracking's decoder and by the proto3 JSON mapping, which must agree.
#include <cstdlib>
#include <string>

#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "google/protobuf/util/message_differencer.h"
#include "leadflow/config/v1/service_config.pb.h"
#include "leadflow/events/v1/activity.pb.h"
#include "services/tracking/engine.h"
#include "services/tracking/segment_json.h"
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
  const bool json = data[0] % 2 == 0;
  message.headers.push_back({std::string(leadflow::kafka::kContentTypeHeader),
                             std::string(json ? leadflow::kafka::kContentTypeJson
                                              : leadflow::kafka::kContentTypeProtobuf)});
  leadflow::events::v1::InboundActivity inbound;
  if (json) {
    // Tracking's own JSON decoder must give what the proto3 JSON mapping gives, or refuse what
    // the mapping accepts only by leniency (segment_json.h); never accept what it refuses.
    leadflow::events::v1::InboundActivity mapped;
    const bool ours = leadflow::tracking::DecodeSegmentJson(message.value, &inbound).ok();
    const bool mapping =
        leadflow::events::DecodeJson(message.value, &mapped, /*ignore_unknown_fields=*/true).ok();
    if (ours && !mapping) std::abort();
    if (ours && !google::protobuf::util::MessageDifferencer::Equals(inbound, mapped)) std::abort();
    if (!ours) return 0;
  } else if (!leadflow::events::Decode(message, &inbound).ok()) {
    return 0;
  }
  (void)TheNormalizer().Normalize(inbound, absl::FromUnixSeconds(1790000000));
  return 0;
}
