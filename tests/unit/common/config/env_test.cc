#include "common/config/env.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::config {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// An injected environment: lookup and the list of names, from one map.
struct FakeEnv {
  std::map<std::string, std::string> vars;

  EnvLookup Lookup() const {
    return [vars = vars](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& [k, v] : vars) names.push_back(k);
    return names;
  }
  absl::StatusOr<RuntimeConfig> Load(const std::string& service = "scoring") const {
    return LoadRuntimeConfig(service, Lookup(), Names());
  }
};

FakeEnv Minimal() { return FakeEnv{{{"LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", "broker:9092"}}}; }

TEST(EnvTest, MinimalEnvironmentGivesTheDocumentedDefaults) {
  absl::StatusOr<RuntimeConfig> c = Minimal().Load("scoring");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->service, "scoring");
  EXPECT_EQ(c->kafka.at("bootstrap.servers"), "broker:9092");
  EXPECT_EQ(c->kafka.at("client.id"), "leadflow-scoring");
  EXPECT_FALSE(c->kafka.contains("group.instance.id"));
  EXPECT_EQ(c->redis_addr, "127.0.0.1:6379");
  EXPECT_EQ(c->grpc_addr, "0.0.0.0:50051");
  EXPECT_EQ(c->metrics_addr, "0.0.0.0:9464");
  EXPECT_EQ(c->config_dir, "config");
  EXPECT_EQ(c->topic_prefix, "");
  EXPECT_EQ(c->group_id, "leadflow-scoring");
  EXPECT_EQ(c->log_format, "text");
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->dedup_ttl, absl::Hours(168));
  EXPECT_EQ(c->routing_pass_interval, absl::Seconds(1));
  EXPECT_THAT(c->output_encodings, IsEmpty());
  EXPECT_FALSE(c->grpc_tls.enabled());  // plaintext
  EXPECT_EQ(c->grpc_tls.client_ca_file, "");
  EXPECT_EQ(c->grpc_tls.refresh_interval, absl::Seconds(60));
  EXPECT_EQ(c->grpc_health_addr, "");
}

TEST(EnvTest, EveryLeadflowVariableIsRead) {
  FakeEnv env = Minimal();
  env.vars["LEADFLOW_REDIS_ADDR"] = "redis://:pw@r:6380/2";
  env.vars["LEADFLOW_GRPC_ADDR"] = "127.0.0.1:1";
  env.vars["LEADFLOW_METRICS_ADDR"] = "";
  env.vars["LEADFLOW_CONFIG_DIR"] = "/etc/leadflow";
  env.vars["LEADFLOW_TOPIC_PREFIX"] = "test-1.";
  env.vars["LEADFLOW_GROUP_ID"] = "g";
  env.vars["LEADFLOW_LOG_FORMAT"] = "JSON";
  env.vars["LEADFLOW_LOG_LEVEL"] = "Debug";
  env.vars["LEADFLOW_DEDUP_TTL_HOURS"] = "2";
  env.vars["LEADFLOW_ROUTING_PASS_INTERVAL_MS"] = "250";
  env.vars["LEADFLOW_CONSUMER_MAX_BATCH"] = "32";
  env.vars["LEADFLOW_WAVE_LANES"] = "3";
  env.vars["LEADFLOW_GRPC_TLS_CERT"] = "/etc/tls/tls.crt";
  env.vars["LEADFLOW_GRPC_TLS_KEY"] = "/etc/tls/tls.key";
  env.vars["LEADFLOW_GRPC_TLS_CLIENT_CA"] = "/etc/tls/ca.crt";
  env.vars["LEADFLOW_GRPC_TLS_REFRESH_SECONDS"] = "15";
  env.vars["LEADFLOW_GRPC_HEALTH_ADDR"] = "0.0.0.0:50052";
  absl::StatusOr<RuntimeConfig> c = env.Load();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->redis_addr, "redis://:pw@r:6380/2");
  EXPECT_EQ(c->grpc_addr, "127.0.0.1:1");
  EXPECT_EQ(c->metrics_addr, "");
  EXPECT_EQ(c->config_dir, "/etc/leadflow");
  EXPECT_EQ(c->topic_prefix, "test-1.");
  EXPECT_EQ(c->group_id, "g");
  EXPECT_EQ(c->log_format, "json");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->dedup_ttl, absl::Hours(2));
  EXPECT_EQ(c->routing_pass_interval, absl::Milliseconds(250));
  EXPECT_EQ(c->consumer_max_batch, 32u);
  EXPECT_EQ(c->wave_lanes, 3);
  EXPECT_TRUE(c->grpc_tls.enabled());
  EXPECT_EQ(c->grpc_tls.cert_file, "/etc/tls/tls.crt");
  EXPECT_EQ(c->grpc_tls.key_file, "/etc/tls/tls.key");
  EXPECT_EQ(c->grpc_tls.client_ca_file, "/etc/tls/ca.crt");
  EXPECT_EQ(c->grpc_tls.refresh_interval, absl::Seconds(15));
  EXPECT_EQ(c->grpc_health_addr, "0.0.0.0:50052");
  // Every variable this test sets is a known one.
  EXPECT_THAT(UnknownVariables(env.Names()), IsEmpty());
}

TEST(EnvTest, TlsWithoutClientCaAsksNoClientCertificate) {
  FakeEnv env = Minimal();
  env.vars["LEADFLOW_GRPC_TLS_CERT"] = "/etc/tls/tls.crt";
  env.vars["LEADFLOW_GRPC_TLS_KEY"] = "/etc/tls/tls.key";
  absl::StatusOr<RuntimeConfig> c = env.Load();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->grpc_tls.enabled());
  EXPECT_EQ(c->grpc_tls.client_ca_file, "");
}

TEST(EnvTest, EmptyTlsVariablesMeanPlaintext) {
  FakeEnv env = Minimal();
  env.vars["LEADFLOW_GRPC_TLS_CERT"] = "";
  env.vars["LEADFLOW_GRPC_TLS_KEY"] = "";
  env.vars["LEADFLOW_GRPC_TLS_CLIENT_CA"] = "";
  absl::StatusOr<RuntimeConfig> c = env.Load();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->grpc_tls.enabled());
}

struct TlsCombinationCase {
  std::string name;
  std::map<std::string, std::string> vars;
  // The variable the error must name.
  std::string named;
};

void PrintTo(const TlsCombinationCase& c, std::ostream* os) { *os << c.name; }

class EnvTlsCombinationTest : public ::testing::TestWithParam<TlsCombinationCase> {};

TEST_P(EnvTlsCombinationTest, IncompleteTlsSettingIsRejectedNamingTheVariable) {
  FakeEnv env = Minimal();
  for (const auto& [k, v] : GetParam().vars) env.vars[k] = v;
  absl::StatusOr<RuntimeConfig> c = env.Load();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), ::testing::StartsWith(GetParam().named));
}

INSTANTIATE_TEST_SUITE_P(
    Combinations, EnvTlsCombinationTest,
    ::testing::Values(TlsCombinationCase{"CertWithoutKey",
                                         {{"LEADFLOW_GRPC_TLS_CERT", "/etc/tls/tls.crt"}},
                                         "LEADFLOW_GRPC_TLS_KEY"},
                      TlsCombinationCase{"KeyWithoutCert",
                                         {{"LEADFLOW_GRPC_TLS_KEY", "/etc/tls/tls.key"}},
                                         "LEADFLOW_GRPC_TLS_CERT"},
                      TlsCombinationCase{"ClientCaWithoutServerCertificate",
                                         {{"LEADFLOW_GRPC_TLS_CLIENT_CA", "/etc/tls/ca.crt"}},
                                         "LEADFLOW_GRPC_TLS_CLIENT_CA"},
                      TlsCombinationCase{"ClientCaWithCertButNoKey",
                                         {{"LEADFLOW_GRPC_TLS_CLIENT_CA", "/etc/tls/ca.crt"},
                                          {"LEADFLOW_GRPC_TLS_CERT", "/etc/tls/tls.crt"}},
                                         "LEADFLOW_GRPC_TLS_KEY"}),
    [](const ::testing::TestParamInfo<TlsCombinationCase>& info) { return info.param.name; });

TEST(EnvTest, KafkaVariablesPassThroughAsLibrdkafkaProperties) {
  FakeEnv env = Minimal();
  env.vars["LEADFLOW_KAFKA_SASL_MECHANISMS"] = "SCRAM-SHA-512";
  env.vars["LEADFLOW_KAFKA_SECURITY_PROTOCOL"] = "SASL_SSL";
  env.vars["LEADFLOW_KAFKA_SASL_USERNAME"] = "svc";
  env.vars["LEADFLOW_KAFKA_SSL_CA_LOCATION"] = "/etc/ca.pem";
  env.vars["LEADFLOW_KAFKA_CLIENT_ID"] = "custom";
  absl::StatusOr<RuntimeConfig> c = env.Load();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->kafka, Contains(Pair("sasl.mechanisms", "SCRAM-SHA-512")));
  EXPECT_THAT(c->kafka, Contains(Pair("security.protocol", "SASL_SSL")));
  EXPECT_THAT(c->kafka, Contains(Pair("sasl.username", "svc")));
  EXPECT_THAT(c->kafka, Contains(Pair("ssl.ca.location", "/etc/ca.pem")));
  // An explicit property wins over the default.
  EXPECT_THAT(c->kafka, Contains(Pair("client.id", "custom")));
}

TEST(EnvTest, InstanceIdEnablesStaticGroupMembership) {
  FakeEnv env = Minimal();
  env.vars["LEADFLOW_INSTANCE_ID"] = "scoring-0";
  absl::StatusOr<RuntimeConfig> c = env.Load();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->kafka, Contains(Pair("group.instance.id", "scoring-0")));
}

TEST(EnvTest, OutputEncodingsAreKeyedByTopicBaseName) {
  FakeEnv env = Minimal();
  env.vars["LEADFLOW_OUTPUT_ENCODING_LEADS_ROUTED"] = "JSON";
  env.vars["LEADFLOW_OUTPUT_ENCODING_NURTURE_TOUCHES"] = "protobuf";
  absl::StatusOr<RuntimeConfig> c = env.Load();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->output_encodings, UnorderedElementsAre(Pair("leads.routed", "json"),
                                                        Pair("nurture.touches", "protobuf")));
}

TEST(EnvTest, MissingBootstrapServersIsAnError) {
  FakeEnv env;
  env.vars["LEADFLOW_REDIS_ADDR"] = "r:1";
  absl::StatusOr<RuntimeConfig> c = env.Load();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS"));
}

struct BadValueCase {
  std::string variable;
  std::string value;
};

class EnvBadValueTest : public ::testing::TestWithParam<BadValueCase> {};

TEST_P(EnvBadValueTest, BadValueIsRejectedNamingTheVariable) {
  FakeEnv env = Minimal();
  env.vars[GetParam().variable] = GetParam().value;
  absl::StatusOr<RuntimeConfig> c = env.Load();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr(GetParam().variable));
  EXPECT_THAT(c.status().message(), HasSubstr("'" + GetParam().value));
}

INSTANTIATE_TEST_SUITE_P(
    Values, EnvBadValueTest,
    ::testing::Values(BadValueCase{"LEADFLOW_LOG_FORMAT", "xml"},
                      BadValueCase{"LEADFLOW_DEDUP_TTL_HOURS", "0"},
                      BadValueCase{"LEADFLOW_DEDUP_TTL_HOURS", "-3"},
                      BadValueCase{"LEADFLOW_DEDUP_TTL_HOURS", "week"},
                      BadValueCase{"LEADFLOW_DEDUP_TTL_HOURS", "1.5"},
                      BadValueCase{"LEADFLOW_ROUTING_PASS_INTERVAL_MS", "0"},
                      BadValueCase{"LEADFLOW_ROUTING_PASS_INTERVAL_MS", "fast"},
                      BadValueCase{"LEADFLOW_WAVE_LANES", "0"},
                      BadValueCase{"LEADFLOW_WAVE_LANES", "65"},
                      BadValueCase{"LEADFLOW_CONSUMER_MAX_BATCH", "0"},
                      BadValueCase{"LEADFLOW_CONSUMER_MAX_BATCH", "all"},
                      BadValueCase{"LEADFLOW_GRPC_TLS_REFRESH_SECONDS", "0"},
                      BadValueCase{"LEADFLOW_GRPC_TLS_REFRESH_SECONDS", "soon"},
                      BadValueCase{"LEADFLOW_GRPC_TLS_REFRESH_SECONDS", "86401"},
                      BadValueCase{"LEADFLOW_OUTPUT_ENCODING_LEADS_ROUTED", "avro"},
                      BadValueCase{"LEADFLOW_OUTPUT_ENCODING_LEADS_ROUTED", ""}),
    [](const ::testing::TestParamInfo<BadValueCase>& info) {
      std::string name = info.param.variable + "_" + info.param.value;
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name + "_" + std::to_string(info.index);
    });

TEST(EnvTest, UnknownVariablesFlagsTyposButNotKnownOrPassThroughNames) {
  const std::vector<std::string> names = {
      "LEADFLOW_REDIS_ADDR",
      "LEADFLOW_REDIS_ADRR",
      "LEADFLOW_KAFKA_ANYTHING_AT_ALL",
      "LEADFLOW_OUTPUT_ENCODING_LEADS_ROUTED",
      "LEADFLOW_TEST_ENV",
      "LEADFLOW_LOGLEVEL",
      "LEADFLOW_INSTANCE_ID",
      "LEADFLOW_DEDUP_TTL_HOURS",
      "LEADFLOW_ROUTING_PASS_INTERVAL_MS",
      "LEADFLOW_WAVE_LANES",
      "LEADFLOW_CONSUMER_MAX_BATCH",
      "LEADFLOW_GRPC_TLS_CERT",
      "LEADFLOW_GRPC_TLS_KEY",
      "LEADFLOW_GRPC_TLS_CLIENT_CA",
      "LEADFLOW_GRPC_TLS_REFRESH_SECONDS",
      "LEADFLOW_GRPC_HEALTH_ADDR",
      "LEADFLOW_GRPC_TLS_CA",
  };
  EXPECT_THAT(
      UnknownVariables(names),
      UnorderedElementsAre("LEADFLOW_REDIS_ADRR", "LEADFLOW_LOGLEVEL", "LEADFLOW_GRPC_TLS_CA"));
}

TEST(EnvTest, KafkaPropertyNamesAreLowerCasedWithDots) {
  EXPECT_EQ(KafkaPropertyFromEnv("BOOTSTRAP_SERVERS"), "bootstrap.servers");
  EXPECT_EQ(KafkaPropertyFromEnv("SASL_MECHANISMS"), "sasl.mechanisms");
  EXPECT_EQ(KafkaPropertyFromEnv("ENABLE_IDEMPOTENCE"), "enable.idempotence");
  EXPECT_EQ(KafkaPropertyFromEnv("ACKS"), "acks");
}

TEST(EnvTest, ProcessEnvReadsTheRealEnvironment) {
  ASSERT_EQ(setenv("LEADFLOW_ENV_TEST_PROBE", "42", 1), 0);
  EXPECT_EQ(ProcessEnv()("LEADFLOW_ENV_TEST_PROBE"), "42");
  EXPECT_THAT(ProcessEnvNames(), Contains("LEADFLOW_ENV_TEST_PROBE"));
  ASSERT_EQ(unsetenv("LEADFLOW_ENV_TEST_PROBE"), 0);
  EXPECT_EQ(ProcessEnv()("LEADFLOW_ENV_TEST_PROBE"), std::nullopt);
}

}  // namespace
}  // namespace leadflow::config
