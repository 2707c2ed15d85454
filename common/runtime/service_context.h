#pragma once

// ServiceContext: the real adapters every service needs (Redis client, idempotent producer,
// group consumer, metrics registry, topic names, clock), built once from LEADFLOW_* variables.
// A service's app.cc takes a context, builds its store, engine, handler and gRPC service on top,
// and calls Run().
//
// Ownership: the context owns the adapters and the consumer loop. Members are ordered so that
// the producer is destroyed (flushing and reporting every outstanding delivery) while the loop
// that receives those reports still exists.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/env.h"
#include "common/kafka/consumer.h"
#include "common/kafka/consumer_loop.h"
#include "common/kafka/producer.h"
#include "common/kafka/topics.h"
#include "common/redis/client.h"
#include "common/runtime/clock.h"
#include "common/runtime/service_runner.h"
#include "prometheus/registry.h"

namespace leadflow::runtime {

class ServiceContext {
 public:
  // Reads the environment, connects nothing yet except creating client handles (librdkafka
  // and the Redis pool connect lazily). Fails fast on bad configuration.
  static absl::StatusOr<std::unique_ptr<ServiceContext>> Create(config::RuntimeConfig config);

  const config::RuntimeConfig& config() const { return config_; }
  const std::string& service() const { return config_.service; }
  prometheus::Registry& registry() { return *registry_; }
  redis::RedisClient& redis() { return *redis_; }
  kafka::Producer& producer() { return *producer_; }
  const kafka::Topics& topics() const { return topics_; }
  const Clock& clock() const { return *clock_; }
  // Path of a rule file in LEADFLOW_CONFIG_DIR.
  std::string ConfigPath(const std::string& file) const;
  // Encoding of a public output topic (LEADFLOW_OUTPUT_ENCODING_<TOPIC>), protobuf by default.
  bool JsonOutput(std::string_view topic_base) const;

  struct RunOptions {
    std::vector<grpc::Service*> grpc_services;
    kafka::MessageHandler* handler = nullptr;  // consumes `topics` when set
    std::vector<std::string> topics;
    std::vector<BackgroundTask> tasks;
    std::vector<config::ReloadableBase*> reloadables;
  };
  // Runs the service until SIGTERM (see service_runner.h).
  absl::Status Run(RunOptions options);

 private:
  explicit ServiceContext(config::RuntimeConfig config);

  config::RuntimeConfig config_;
  std::shared_ptr<prometheus::Registry> registry_;
  kafka::Topics topics_;
  const Clock* clock_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<kafka::ConsumerLoop> loop_;  // before producer_: destroyed after it
  std::unique_ptr<kafka::Producer> producer_;
};

// The whole of a service's main(): blocks termination signals, loads the runtime configuration,
// sets up logging, builds the context and calls `run_app`. Returns the process exit code.
int ServiceMain(const std::string& service,
                const std::function<absl::Status(ServiceContext&)>& run_app);

}  // namespace leadflow::runtime
