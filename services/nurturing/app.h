#pragma once

// Builds and runs the nurturing service on a ServiceContext: the only place nurturing's real
// adapters are put together.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/runtime/service_context.h"
#include "services/nurturing/engine.h"

namespace leadflow::nurturing {

// Reads and validates a track file (config/nurture.yaml): the Reloadable's loader.
absl::StatusOr<std::shared_ptr<const CompiledNurtureTracks>> LoadNurtureTracks(
    const std::string& path);

absl::Status RunNurturing(runtime::ServiceContext& context);

}  // namespace leadflow::nurturing
