#include "common/config/env.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

extern char** environ;

namespace leadflow::config {
namespace {

constexpr char kPrefix[] = "LEADFLOW_";
constexpr char kKafkaPrefix[] = "LEADFLOW_KAFKA_";
constexpr char kEncodingPrefix[] = "LEADFLOW_OUTPUT_ENCODING_";

const char* const kKnown[] = {
    "LEADFLOW_REDIS_ADDR",
    "LEADFLOW_GRPC_ADDR",
    "LEADFLOW_GRPC_TLS_CERT",
    "LEADFLOW_GRPC_TLS_KEY",
    "LEADFLOW_GRPC_TLS_CLIENT_CA",
    "LEADFLOW_GRPC_TLS_REFRESH_SECONDS",
    "LEADFLOW_GRPC_HEALTH_ADDR",
    "LEADFLOW_METRICS_ADDR",
    "LEADFLOW_CONFIG_DIR",
    "LEADFLOW_TOPIC_PREFIX",
    "LEADFLOW_GROUP_ID",
    "LEADFLOW_INSTANCE_ID",
    "LEADFLOW_LOG_FORMAT",
    "LEADFLOW_LOG_LEVEL",
    "LEADFLOW_DEDUP_TTL_HOURS",
    "LEADFLOW_TEST_ENV",
    // routing: how often the SLA / queue-drain pass runs.
    "LEADFLOW_ROUTING_PASS_INTERVAL_MS",
    // routing: threads one wave of scored leads is decided on.
    "LEADFLOW_WAVE_LANES",
    "LEADFLOW_CONSUMER_MAX_BATCH",
};

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::vector<std::string> ProcessEnvNames() {
  std::vector<std::string> names;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view entry(*e);
    if (!absl::StartsWith(entry, kPrefix)) continue;
    names.emplace_back(entry.substr(0, entry.find('=')));
  }
  return names;
}

std::string KafkaPropertyFromEnv(const std::string& suffix) {
  return absl::StrReplaceAll(absl::AsciiStrToLower(suffix), {{"_", "."}});
}

std::vector<std::string> UnknownVariables(const std::vector<std::string>& names) {
  std::vector<std::string> unknown;
  for (const std::string& n : names) {
    if (absl::StartsWith(n, kKafkaPrefix) || absl::StartsWith(n, kEncodingPrefix)) continue;
    bool known = false;
    for (const char* k : kKnown) known |= (n == k);
    if (!known) unknown.push_back(n);
  }
  return unknown;
}

absl::StatusOr<RuntimeConfig> LoadRuntimeConfig(const std::string& service, const EnvLookup& lookup,
                                                const std::vector<std::string>& names) {
  auto get = [&](const std::string& name, std::string fallback) {
    std::optional<std::string> v = lookup(name);
    return v.has_value() ? *v : fallback;
  };
  RuntimeConfig c;
  c.service = service;
  c.redis_addr = get("LEADFLOW_REDIS_ADDR", "127.0.0.1:6379");
  c.grpc_addr = get("LEADFLOW_GRPC_ADDR", "0.0.0.0:50051");
  c.metrics_addr = get("LEADFLOW_METRICS_ADDR", "0.0.0.0:9464");
  c.config_dir = get("LEADFLOW_CONFIG_DIR", "config");
  c.topic_prefix = get("LEADFLOW_TOPIC_PREFIX", "");
  c.group_id = get("LEADFLOW_GROUP_ID", absl::StrCat("leadflow-", service));
  c.log_format = absl::AsciiStrToLower(get("LEADFLOW_LOG_FORMAT", "text"));
  c.log_level = absl::AsciiStrToLower(get("LEADFLOW_LOG_LEVEL", "info"));
  if (c.log_format != "json" && c.log_format != "text") {
    return absl::InvalidArgumentError(
        absl::StrCat("LEADFLOW_LOG_FORMAT must be json or text, not '", c.log_format, "'"));
  }
  // A positive integer variable, or its default.
  auto positive = [&](const char* name, int64_t fallback) -> absl::StatusOr<int64_t> {
    int64_t value = fallback;
    if (std::optional<std::string> v = lookup(name)) {
      if (!absl::SimpleAtoi(*v, &value) || value <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " must be a positive integer, not '", *v, "'"));
      }
    }
    return value;
  };
  absl::StatusOr<int64_t> ttl_hours = positive("LEADFLOW_DEDUP_TTL_HOURS", 168);
  if (!ttl_hours.ok()) return ttl_hours.status();
  c.dedup_ttl = absl::Hours(*ttl_hours);
  absl::StatusOr<int64_t> pass_ms = positive("LEADFLOW_ROUTING_PASS_INTERVAL_MS", 1000);
  if (!pass_ms.ok()) return pass_ms.status();
  absl::StatusOr<int64_t> max_batch = positive("LEADFLOW_CONSUMER_MAX_BATCH", 256);
  if (!max_batch.ok()) return max_batch.status();
  c.consumer_max_batch = static_cast<size_t>(*max_batch);
  c.routing_pass_interval = absl::Milliseconds(*pass_ms);
  absl::StatusOr<int64_t> lanes = positive("LEADFLOW_WAVE_LANES", 2);
  if (!lanes.ok()) return lanes.status();
  if (*lanes > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("LEADFLOW_WAVE_LANES must be at most 64, not '", *lanes, "'"));
  }
  c.wave_lanes = static_cast<int>(*lanes);

  // gRPC TLS: the combination here, the files when the server starts (grpc_util::CheckServerTls).
  // An empty value counts as unset.
  c.grpc_tls.cert_file = get("LEADFLOW_GRPC_TLS_CERT", "");
  c.grpc_tls.key_file = get("LEADFLOW_GRPC_TLS_KEY", "");
  c.grpc_tls.client_ca_file = get("LEADFLOW_GRPC_TLS_CLIENT_CA", "");
  if (c.grpc_tls.key_file.empty() != c.grpc_tls.cert_file.empty()) {
    const bool cert = !c.grpc_tls.cert_file.empty();
    return absl::InvalidArgumentError(absl::StrCat(
        cert ? "LEADFLOW_GRPC_TLS_KEY" : "LEADFLOW_GRPC_TLS_CERT", " must be set with ",
        cert ? "LEADFLOW_GRPC_TLS_CERT" : "LEADFLOW_GRPC_TLS_KEY",
        " (gRPC TLS needs the certificate and its private key)"));
  }
  if (!c.grpc_tls.client_ca_file.empty() && !c.grpc_tls.enabled()) {
    return absl::InvalidArgumentError(
        "LEADFLOW_GRPC_TLS_CLIENT_CA needs LEADFLOW_GRPC_TLS_CERT and LEADFLOW_GRPC_TLS_KEY "
        "(mutual TLS: the server presents its own certificate too)");
  }
  absl::StatusOr<int64_t> refresh = positive("LEADFLOW_GRPC_TLS_REFRESH_SECONDS", 60);
  if (!refresh.ok()) return refresh.status();
  if (*refresh > 86400) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LEADFLOW_GRPC_TLS_REFRESH_SECONDS must be at most 86400 (a day), not '", *refresh, "'"));
  }
  c.grpc_tls.refresh_interval = absl::Seconds(*refresh);
  c.grpc_health_addr = get("LEADFLOW_GRPC_HEALTH_ADDR", "");

  c.kafka["client.id"] = absl::StrCat("leadflow-", service);
  if (std::optional<std::string> instance = lookup("LEADFLOW_INSTANCE_ID")) {
    // Static membership: a restarted replica takes its partitions back without a rebalance.
    c.kafka["group.instance.id"] = *instance;
  }
  for (const std::string& name : names) {
    if (absl::StartsWith(name, kKafkaPrefix)) {
      std::optional<std::string> v = lookup(name);
      if (v.has_value()) {
        c.kafka[KafkaPropertyFromEnv(name.substr(sizeof(kKafkaPrefix) - 1))] = *v;
      }
    } else if (absl::StartsWith(name, kEncodingPrefix)) {
      std::optional<std::string> v = lookup(name);
      const std::string topic = KafkaPropertyFromEnv(name.substr(sizeof(kEncodingPrefix) - 1));
      const std::string value = absl::AsciiStrToLower(v.value_or(""));
      if (value != "json" && value != "protobuf") {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " must be json or protobuf, not '", value, "'"));
      }
      c.output_encodings[topic] = value;
    }
  }
  if (!c.kafka.contains("bootstrap.servers")) {
    return absl::InvalidArgumentError(
        "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS is required (the Kafka bootstrap servers)");
  }
  return c;
}

}  // namespace leadflow::config
