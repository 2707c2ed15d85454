// leadflow-capture: the front door for leads. Configuration: docs/CONFIGURATION.md.
#include "common/runtime/service_context.h"
#include "services/capture/app.h"

int main() { return leadflow::runtime::ServiceMain("capture", leadflow::capture::RunCapture); }
