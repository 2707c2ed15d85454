#pragma once

// Builds and runs the scoring service on a ServiceContext: the only place scoring's real
// adapters are put together.

#include "absl/status/status.h"
#include "common/runtime/service_context.h"

namespace leadflow::scoring {

absl::Status RunScoring(runtime::ServiceContext& context);

}  // namespace leadflow::scoring
