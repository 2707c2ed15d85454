#pragma once

// Runtime configuration from LEADFLOW_* environment variables (ARCHITECTURE.md §7), read once at
// start. Every variable is listed here and in docs/CONFIGURATION.md:
//
//   LEADFLOW_KAFKA_<PROPERTY>   any librdkafka property: upper-case, '.' → '_'
//                               (LEADFLOW_KAFKA_BOOTSTRAP_SERVERS → bootstrap.servers,
//                                LEADFLOW_KAFKA_SASL_MECHANISMS → sasl.mechanisms)
//   LEADFLOW_REDIS_ADDR         host:port or redis://[[user]:password@]host[:port][/db]
//                               (127.0.0.1:6379; see redis::ParseRedisAddress)
//   LEADFLOW_GRPC_ADDR          gRPC listen address                 (0.0.0.0:50051)
//   LEADFLOW_GRPC_TLS_CERT      PEM certificate chain for gRPC TLS  (unset: plaintext)
//   LEADFLOW_GRPC_TLS_KEY       PEM private key of that certificate (both or neither)
//   LEADFLOW_GRPC_TLS_CLIENT_CA PEM CA clients' certificates must chain to: mutual TLS
//                               (unset: no client certificate asked; needs the two above)
//   LEADFLOW_GRPC_TLS_REFRESH_SECONDS  how often the TLS files are re-read (60)
//   LEADFLOW_GRPC_HEALTH_ADDR   plaintext listener with only grpc.health.v1, for Kubernetes
//                               gRPC probes when the API listener is TLS (unset: none)
//   LEADFLOW_METRICS_ADDR       Prometheus /metrics listen address  (0.0.0.0:9464; "" disables)
//   LEADFLOW_CONFIG_DIR         directory of the YAML rule files    (./config)
//   LEADFLOW_TOPIC_PREFIX       prefix for every topic name         ("")
//   LEADFLOW_GROUP_ID           consumer group                      (leadflow-<service>)
//   LEADFLOW_INSTANCE_ID        static group membership id          (unset: dynamic)
//   LEADFLOW_LOG_FORMAT         json | text                         (text)
//   LEADFLOW_LOG_LEVEL          trace | debug | info | warn | error (info)
//   LEADFLOW_DEDUP_TTL_HOURS    how long an applied input is remembered (168)
//   LEADFLOW_CONSUMER_MAX_BATCH most inputs handed to the handler at once (256; 1: one by one)
//   LEADFLOW_OUTPUT_ENCODING_<TOPIC>  protobuf | json for a public output topic, e.g.
//                               LEADFLOW_OUTPUT_ENCODING_LEADS_ROUTED=json
//
// Unknown LEADFLOW_* variables are reported at start so a typo does not go unnoticed.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/grpc/tls.h"

namespace leadflow::config {

// Looks a variable up; injectable so tests need not touch the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();
// All LEADFLOW_* names present (for the unknown-variable check).
std::vector<std::string> ProcessEnvNames();

struct RuntimeConfig {
  std::string service;
  std::map<std::string, std::string> kafka;  // librdkafka properties
  std::string redis_addr;
  std::string grpc_addr;
  // TLS of the gRPC listener (LEADFLOW_GRPC_TLS_*); the files are checked when the server starts.
  grpc_util::ServerTlsOptions grpc_tls;
  // Plaintext health-only listener (LEADFLOW_GRPC_HEALTH_ADDR); empty: none.
  std::string grpc_health_addr;
  std::string metrics_addr;
  std::string config_dir;
  std::string topic_prefix;
  std::string group_id;
  std::string log_format;
  std::string log_level;
  absl::Duration dedup_ttl;
  // Routing's SLA / queue-drain pass interval (LEADFLOW_ROUTING_PASS_INTERVAL_MS, default 1 s).
  absl::Duration routing_pass_interval = absl::Seconds(1);
  // Threads routing decides one wave of scored leads on (LEADFLOW_WAVE_LANES, default 2).
  int wave_lanes = 2;
  // Most inputs the consumer loop hands the handler at once (LEADFLOW_CONSUMER_MAX_BATCH).
  size_t consumer_max_batch = 256;
  std::map<std::string, std::string> output_encodings;  // topic base name → "json"/"protobuf"
};

// Reads the configuration of `service`. INVALID_ARGUMENT naming the variable on a bad value.
absl::StatusOr<RuntimeConfig> LoadRuntimeConfig(const std::string& service, const EnvLookup& lookup,
                                                const std::vector<std::string>& names = {});

// Turns LEADFLOW_KAFKA_FOO_BAR into foo.bar.
std::string KafkaPropertyFromEnv(const std::string& suffix);

// Names from `names` that start with LEADFLOW_ but are not known variables.
std::vector<std::string> UnknownVariables(const std::vector<std::string>& names);

}  // namespace leadflow::config
