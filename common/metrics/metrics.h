#pragma once

// Metrics: one Prometheus registry per process, exposed over HTTP at /metrics.
//
// Components take a `prometheus::Registry&` and declare their metric families once, in their
// constructor (STYLE.md: each component lists its metrics once). Tests pass a fresh registry and
// read values back from it.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace leadflow::metrics {

// Serves a registry on `address` ("host:port"). Stops serving when destroyed.
class MetricsServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry);

 private:
  explicit MetricsServer(std::unique_ptr<prometheus::Exposer> exposer)
      : exposer_(std::move(exposer)) {}
  std::unique_ptr<prometheus::Exposer> exposer_;
};

// Latency buckets in seconds, from 100 µs to 10 s.
prometheus::Histogram::BucketBoundaries LatencyBuckets();

}  // namespace leadflow::metrics
