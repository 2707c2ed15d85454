// leadflow-nurturing: nurture tracks for leads not ready for sales. Configuration:
// docs/CONFIGURATION.md; tracks: config/nurture.yaml.
#include "common/runtime/service_context.h"
#include "services/nurturing/app.h"

int main() {
  return leadflow::runtime::ServiceMain("nurturing", leadflow::nurturing::RunNurturing);
}
