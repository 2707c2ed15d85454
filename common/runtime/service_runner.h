#pragma once

// ServiceRunner: the lifecycle every leadflow service shares, so each main() stays tiny.
//
//   start:    metrics endpoint → gRPC server (NOT_SERVING) → consumer loop thread and background
//             tasks → SERVING once dependencies answer
//   running:  every second, health = consumer loop serving && dependencies answer; every
//             `reload_interval`, rule files are reloaded if they changed
//   SIGTERM:  NOT_SERVING → stop taking work (loop and tasks finish what they hold, flush the
//             producer, commit, leave the group) → gRPC drains in-flight calls → exit 0
//
// Call BlockTerminationSignals() first thing in main(), before any thread exists (gRPC,
// librdkafka), so that SIGTERM is received by the runner's waiting thread only.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "common/grpc/server.h"
#include "common/kafka/consumer_loop.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "prometheus/registry.h"

namespace leadflow::runtime {

void BlockTerminationSignals();

// A long-running activity besides the consumer loop (schedulers, timers). It must return soon
// after `stop` is notified.
using BackgroundTask = std::function<void(const absl::Notification& stop)>;

struct ServiceParts {
  std::string service;
  std::string grpc_addr;
  grpc_util::GrpcServerOptions grpc_options;  // TLS, health-only listener
  std::string metrics_addr;                   // empty: no metrics endpoint
  std::shared_ptr<prometheus::Registry> registry;
  std::vector<grpc::Service*> grpc_services;
  kafka::ConsumerLoop* loop = nullptr;  // optional
  std::vector<BackgroundTask> tasks;
  std::vector<config::ReloadableBase*> reloadables;
  // True when the service's own dependencies (its Redis) answer.
  std::function<bool()> dependencies_ok;
  absl::Duration reload_interval = absl::Seconds(5);
  absl::Duration shutdown_grace = absl::Seconds(20);
};

// Runs until SIGTERM/SIGINT (or RequestStop()). Returns OK on a graceful stop.
absl::Status RunService(ServiceParts parts);

// Makes RunService() return as if SIGTERM arrived (tests, fatal errors).
void RequestStop();

}  // namespace leadflow::runtime
