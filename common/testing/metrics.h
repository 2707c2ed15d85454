#pragma once

// Reading a Prometheus registry's metrics back, for tests and benchmarks.

#include <map>
#include <string>

#include "prometheus/registry.h"

namespace leadflow::testing {

// The value of the first counter or gauge named `name` whose labels include `labels` (all of
// them, any others too); -1 when there is none.
double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::map<std::string, std::string>& labels = {});

}  // namespace leadflow::testing
