// leadflow-routing: routes sales-ready leads to teams and reps and publishes `leads.routed`.
// Configuration: docs/CONFIGURATION.md.
#include "common/runtime/service_context.h"
#include "services/routing/app.h"

int main() { return leadflow::runtime::ServiceMain("routing", leadflow::routing::RunRouting); }
