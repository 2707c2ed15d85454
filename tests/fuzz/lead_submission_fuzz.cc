// Fuzz target: a `leads.inbound` message as capture decodes and validates it. The first byte
// picks the content type (even: JSON, odd: protobuf); the rest is the payload. For JSON it also
// checks that DecodeJsonSubset, wherever it decodes, gives protobuf's message (traps if not).
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <string>

#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "common/events/json_subset.h"
#include "leadflow/config/v1/service_config.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "services/capture/engine.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

const leadflow::capture::Normalizer& TheNormalizer() {
  static const auto* normalizer = [] {
    leadflow::config::v1::CaptureConfig config;
    (void)leadflow::config::LoadYamlProto(std::string(LEADFLOW_SOURCE_DIR) + "/config/capture.yaml",
                                          &config);
    return new leadflow::capture::Normalizer(config);
  }();
  return *normalizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  leadflow::kafka::ConsumedMessage message;
  message.topic = "leads.inbound";
  message.value.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  message.headers.push_back(
      {std::string(leadflow::kafka::kContentTypeHeader),
       std::string(data[0] % 2 == 0 ? leadflow::kafka::kContentTypeJson
                                    : leadflow::kafka::kContentTypeProtobuf)});
  if (data[0] % 2 == 0) {
    leadflow::events::v1::LeadSubmission subset;
    if (leadflow::events::DecodeJsonSubset(message.value, &subset)) {
      google::protobuf::util::JsonParseOptions options;
      options.case_insensitive_enum_parsing = true;
      leadflow::events::v1::LeadSubmission reference;
      if (!google::protobuf::util::JsonStringToMessage(message.value, &reference, options).ok() ||
          !google::protobuf::util::MessageDifferencer::Equals(subset, reference)) {
        __builtin_trap();
      }
    }
  }
  leadflow::events::v1::LeadSubmission submission;
  if (!leadflow::events::Decode(message, &submission).ok()) return 0;
  (void)TheNormalizer().Normalize(submission, absl::FromUnixSeconds(1790000000));
  return 0;
}
