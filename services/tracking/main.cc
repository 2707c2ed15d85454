// leadflow-tracking: activity in, identities stitched, per-lead behaviour out.
#include "common/runtime/service_context.h"
#include "services/tracking/app.h"

int main() { return leadflow::runtime::ServiceMain("tracking", leadflow::tracking::RunTracking); }
