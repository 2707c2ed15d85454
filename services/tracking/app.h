#pragma once

// Builds and runs the tracking service on a ServiceContext.

#include "absl/status/status.h"
#include "common/runtime/service_context.h"

namespace leadflow::tracking {

absl::Status RunTracking(runtime::ServiceContext& context);

}  // namespace leadflow::tracking
