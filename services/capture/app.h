#pragma once

// Builds and runs the capture service on a ServiceContext: the only place capture's real
// adapters are put together.

#include "absl/status/status.h"
#include "common/runtime/service_context.h"

namespace leadflow::capture {

absl::Status RunCapture(runtime::ServiceContext& context);

}  // namespace leadflow::capture
