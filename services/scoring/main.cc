// leadflow-scoring: scores leads and publishes `leads.scored`. Configuration:
// docs/CONFIGURATION.md.
#include "common/runtime/service_context.h"
#include "services/scoring/app.h"

int main() { return leadflow::runtime::ServiceMain("scoring", leadflow::scoring::RunScoring); }
