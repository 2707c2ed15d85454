#include "common/runtime/service_context.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/grpc/tls.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_producer.h"
#include "common/log/log.h"
#include "common/redis/hiredis_client.h"
#include "spdlog/spdlog.h"

namespace leadflow::runtime {

ServiceContext::ServiceContext(config::RuntimeConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<prometheus::Registry>()),
      topics_(config_.topic_prefix),
      clock_(&Clock::Real()) {}

absl::StatusOr<std::unique_ptr<ServiceContext>> ServiceContext::Create(
    config::RuntimeConfig config) {
  // The TLS files are read again when the gRPC server starts; checking them here too stops a
  // bad one before any client handle exists.
  if (absl::Status tls = grpc_util::CheckServerTls(config.grpc_tls); !tls.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("LEADFLOW_GRPC_TLS_*: ", tls.message()));
  }
  std::unique_ptr<ServiceContext> ctx(new ServiceContext(std::move(config)));
  absl::StatusOr<redis::HiredisOptions> redis_options =
      redis::ParseRedisAddress(ctx->config_.redis_addr);
  if (!redis_options.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("LEADFLOW_REDIS_ADDR: ", redis_options.status().message()));
  }
  // A connection per wave lane (kafka::InLanes), besides the background tasks' and gRPC's.
  redis_options->pool_size = std::max(redis_options->pool_size, ctx->config_.wave_lanes + 2);
  ctx->redis_ = std::make_unique<redis::HiredisClient>(*redis_options);

  absl::StatusOr<std::unique_ptr<kafka::RdKafkaProducer>> producer =
      kafka::RdKafkaProducer::Create(ctx->config_.kafka);
  if (!producer.ok()) return producer.status();
  ctx->producer_ = *std::move(producer);

  std::map<std::string, std::string> consumer_props = ctx->config_.kafka;
  consumer_props["group.id"] = ctx->config_.group_id;
  // Producer-only properties would make the consumer's configuration fail.
  for (const char* p : {"enable.idempotence", "acks", "linger.ms", "compression.type"}) {
    consumer_props.erase(p);
  }
  absl::StatusOr<std::unique_ptr<kafka::RdKafkaConsumer>> consumer =
      kafka::RdKafkaConsumer::Create(consumer_props, *ctx->registry_, ctx->config_.service);
  if (!consumer.ok()) return consumer.status();
  ctx->consumer_ = *std::move(consumer);
  return ctx;
}

std::string ServiceContext::ConfigPath(const std::string& file) const {
  return (std::filesystem::path(config_.config_dir) / file).string();
}

bool ServiceContext::JsonOutput(std::string_view topic_base) const {
  auto it = config_.output_encodings.find(std::string(topic_base));
  return it != config_.output_encodings.end() && it->second == "json";
}

absl::Status ServiceContext::Run(RunOptions options) {
  ServiceParts parts;
  parts.service = config_.service;
  parts.grpc_addr = config_.grpc_addr;
  parts.grpc_options.tls = config_.grpc_tls;
  parts.grpc_options.health_address = config_.grpc_health_addr;
  parts.metrics_addr = config_.metrics_addr;
  parts.registry = registry_;
  parts.grpc_services = std::move(options.grpc_services);
  parts.tasks = std::move(options.tasks);
  parts.reloadables = std::move(options.reloadables);
  parts.dependencies_ok = [this] { return redis_->Ping().ok(); };
  if (options.handler != nullptr) {
    kafka::ConsumerLoopOptions loop_options;
    loop_options.service = config_.service;
    loop_options.topics = std::move(options.topics);
    loop_options.max_batch = config_.consumer_max_batch;
    loop_ = std::make_unique<kafka::ConsumerLoop>(*consumer_, *producer_, *options.handler,
                                                  loop_options, *registry_);
    parts.loop = loop_.get();
  }
  return RunService(std::move(parts));
}

int ServiceMain(const std::string& service,
                const std::function<absl::Status(ServiceContext&)>& run_app) {
  BlockTerminationSignals();
  absl::StatusOr<config::RuntimeConfig> config =
      config::LoadRuntimeConfig(service, config::ProcessEnv(), config::ProcessEnvNames());
  if (!config.ok()) {
    std::fprintf(stderr, "leadflow-%s: configuration error: %s\n", service.c_str(),
                 std::string(config.status().message()).c_str());
    return 2;
  }
  if (absl::Status s = log::InitLogging(service, config->log_format, config->log_level); !s.ok()) {
    std::fprintf(stderr, "leadflow-%s: %s\n", service.c_str(), s.ToString().c_str());
    return 2;
  }
  for (const std::string& unknown : config::UnknownVariables(config::ProcessEnvNames())) {
    spdlog::warn("unknown environment variable {} ignored", unknown);
  }
  absl::StatusOr<std::unique_ptr<ServiceContext>> ctx = ServiceContext::Create(*config);
  if (!ctx.ok()) {
    spdlog::critical("start-up failed: {}", ctx.status().ToString());
    return 2;
  }
  absl::Status result = run_app(**ctx);
  if (!result.ok()) {
    spdlog::critical("{} failed: {}", service, result.ToString());
    spdlog::default_logger()->flush();
    return 1;
  }
  return 0;
}

}  // namespace leadflow::runtime
