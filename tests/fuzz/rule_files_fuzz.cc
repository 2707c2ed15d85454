// Fuzz target: a rule file as the services load it (YAML → proto → compile). The first byte
// picks the file: 0 scoring, 1 routing, 2 nurture tracks; the rest is the YAML.
#include <string>

#include "common/config/yaml_proto.h"
#include "leadflow/config/v1/nurture_tracks.pb.h"
#include "leadflow/config/v1/routing_rules.pb.h"
#include "leadflow/config/v1/scoring_rules.pb.h"
#include "services/nurturing/engine.h"
#include "services/routing/engine.h"
#include "services/scoring/engine.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string yaml(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      leadflow::config::v1::ScoringRules rules;
      if (leadflow::config::ParseYamlProto(yaml, &rules).ok()) {
        (void)leadflow::scoring::CompileScoringRules(rules);
      }
      break;
    }
    case 1: {
      leadflow::config::v1::RoutingRules rules;
      if (leadflow::config::ParseYamlProto(yaml, &rules).ok()) {
        (void)leadflow::routing::CompileRoutingRules(rules);
      }
      break;
    }
    default: {
      leadflow::config::v1::NurtureTracks tracks;
      if (leadflow::config::ParseYamlProto(yaml, &tracks).ok()) {
        (void)leadflow::nurturing::CompileNurtureTracks(tracks);
      }
      break;
    }
  }
  return 0;
}
