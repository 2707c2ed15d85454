#pragma once

// Builds and runs the routing service on a ServiceContext: the only place routing's real
// adapters are put together.

#include "absl/status/status.h"
#include "common/runtime/service_context.h"

namespace leadflow::routing {

absl::Status RunRouting(runtime::ServiceContext& context);

}  // namespace leadflow::routing
