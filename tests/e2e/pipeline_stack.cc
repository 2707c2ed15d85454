#include "tests/e2e/pipeline_stack.h"

#include <csignal>
#include <filesystem>
#include <fstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/kafka/admin.h"
#include "common/testing/kafka_test_client.h"
#include "common/testing/test_env.h"
#include "common/testing/wait.h"

#ifndef LEADFLOW_SOURCE_DIR
#error "LEADFLOW_SOURCE_DIR must be defined by the build"
#endif
#ifndef LEADFLOW_BINARY_DIR
#error "LEADFLOW_BINARY_DIR must be defined by the build"
#endif

namespace leadflow::e2e {
namespace {

bool PortOpen(int port) {
  // Connectable means the service's gRPC server is up.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PipelineStack>> PipelineStack::Start(
    const std::string& bootstrap, const std::string& prefix,
    const std::map<std::string, std::string>& config_files,
    const std::vector<std::string>& services) {
  std::unique_ptr<PipelineStack> stack(new PipelineStack());
  stack->bootstrap_ = bootstrap;
  stack->prefix_ = prefix;
  stack->dir_ = (std::filesystem::temp_directory_path() / ("leadflow-e2e-" + prefix)).string();
  std::filesystem::create_directories(stack->dir_ + "/config");
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(LEADFLOW_SOURCE_DIR) + "/config")) {
    std::filesystem::copy_file(entry.path(),
                               stack->dir_ + "/config/" + entry.path().filename().string(),
                               std::filesystem::copy_options::overwrite_existing);
  }
  for (const auto& [file, content] : config_files) {
    std::ofstream(stack->dir_ + "/config/" + file) << content;
  }
  if (absl::Status s = kafka::CreateLeadflowTopics({{"bootstrap.servers", bootstrap}}, prefix, 3);
      !s.ok())
    return s;

  for (const std::string& name : services) {
    Service& svc = stack->services_[name];
    absl::StatusOr<std::unique_ptr<testing::RedisServer>> redis = testing::RedisServer::Start();
    if (!redis.ok()) return redis.status();
    svc.redis = *std::move(redis);
    absl::StatusOr<int> grpc_port = testing::PickFreePort();
    if (!grpc_port.ok()) return grpc_port.status();
    svc.grpc_port = *grpc_port;
    svc.env = {
        {"LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", bootstrap},
        {"LEADFLOW_REDIS_ADDR", svc.redis->address()},
        {"LEADFLOW_GRPC_ADDR", absl::StrCat("127.0.0.1:", svc.grpc_port)},
        {"LEADFLOW_METRICS_ADDR", ""},
        {"LEADFLOW_CONFIG_DIR", stack->dir_ + "/config"},
        {"LEADFLOW_TOPIC_PREFIX", prefix},
        {"LEADFLOW_GROUP_ID", absl::StrCat(prefix, "leadflow-", name)},
        {"LEADFLOW_LOG_FORMAT", "text"},
        // Fast recovery after SIGKILL: a restarted member rejoins at once with its old
        // partitions (static membership), and a dead one is noticed within seconds.
        {"LEADFLOW_INSTANCE_ID", absl::StrCat(prefix, name, "-0")},
        {"LEADFLOW_KAFKA_SESSION_TIMEOUT_MS", "6000"},
        {"LEADFLOW_KAFKA_HEARTBEAT_INTERVAL_MS", "500"},
        {"LEADFLOW_KAFKA_TOPIC_METADATA_REFRESH_INTERVAL_MS", "2000"},
    };
    if (absl::Status s = stack->Launch(name); !s.ok()) return s;
  }
  return stack;
}

PipelineStack::~PipelineStack() {
  for (auto& [name, svc] : services_) {
    if (svc.process != nullptr && svc.process->Running()) {
      (void)svc.process->Kill(SIGTERM);
      if (!svc.process->Wait(absl::Seconds(20)).has_value()) (void)svc.process->Kill(SIGKILL);
    }
    svc.process.reset();
  }
  services_.clear();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

absl::Status PipelineStack::Launch(const std::string& name) {
  Service& svc = services_.at(name);
  const std::string binary =
      absl::StrCat(LEADFLOW_BINARY_DIR, "/services/", name, "/leadflow-", name);
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> process =
      testing::Subprocess::Start(binary, {}, svc.env, LogFile(name));
  if (!process.ok()) return process.status();
  svc.process = *std::move(process);
  const int port = svc.grpc_port;
  if (!testing::WaitFor([&] { return PortOpen(port) || !svc.process->Running(); },
                        absl::Seconds(30)) ||
      !svc.process->Running()) {
    return absl::UnavailableError(absl::StrCat(name, " did not start; see ", LogFile(name)));
  }
  return absl::OkStatus();
}

std::string PipelineStack::GrpcAddress(const std::string& service) const {
  return absl::StrCat("127.0.0.1:", services_.at(service).grpc_port);
}

std::string PipelineStack::LogFile(const std::string& service) const {
  return absl::StrCat(dir_, "/", service, ".log");
}

absl::Status PipelineStack::Kill(const std::string& service, int signal) {
  Service& svc = services_.at(service);
  if (absl::Status s = svc.process->Kill(signal); !s.ok()) return s;
  if (!svc.process->Wait(absl::Seconds(30)).has_value()) {
    return absl::DeadlineExceededError(service + " did not exit");
  }
  return absl::OkStatus();
}

absl::Status PipelineStack::Restart(const std::string& service) { return Launch(service); }

bool PipelineStack::Running(const std::string& service) {
  return services_.at(service).process->Running();
}

absl::StatusOr<std::unique_ptr<PipelineStack>> PipelineStack::StartInTestEnv(
    const std::string& name, const std::map<std::string, std::string>& config_files,
    const std::vector<std::string>& services) {
  absl::StatusOr<testing::TestEnv> env = testing::TestEnv::Load();
  if (!env.ok()) return env.status();
  if (absl::Status s =
          testing::WaitForKafka(testing::KafkaProps(env->kafka_bootstrap()), absl::Seconds(30));
      !s.ok()) {
    return s;
  }
  return Start(env->kafka_bootstrap(), testing::TestEnv::UniqueName(name) + ".", config_files,
               services);
}

}  // namespace leadflow::e2e
