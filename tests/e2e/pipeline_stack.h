#pragma once

// PipelineStack: the five leadflow services as real processes, each with its own real
// redis-server, against the shared real Kafka broker of the test run (LEADFLOW_TEST_ENV), with
// topics and consumer groups under a prefix unique to the test. Services can be SIGKILLed and
// restarted to show that nothing is lost or doubled.
//
// Thread safety: owned by the test's main thread.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/testing/redis_server.h"
#include "common/testing/subprocess.h"

namespace leadflow::e2e {

inline const std::vector<std::string>& ServiceNames() {
  static const std::vector<std::string> kNames = {"capture", "tracking", "scoring", "routing",
                                                  "nurturing"};
  return kNames;
}

class PipelineStack {
 public:
  // `config_files`: file name → YAML content written into the stack's LEADFLOW_CONFIG_DIR; files
  // not given are copied from the repository's config/. `services`: which of ServiceNames() to
  // run (a test of one service's intake need not start the other four).
  static absl::StatusOr<std::unique_ptr<PipelineStack>> Start(
      const std::string& bootstrap, const std::string& prefix,
      const std::map<std::string, std::string>& config_files = {},
      const std::vector<std::string>& services = ServiceNames());
  // Start() on the broker of the test run (LEADFLOW_TEST_ENV, which must be available), once the
  // broker answers, with a topic prefix unique to this test made from `name`.
  static absl::StatusOr<std::unique_ptr<PipelineStack>> StartInTestEnv(
      const std::string& name, const std::map<std::string, std::string>& config_files = {},
      const std::vector<std::string>& services = ServiceNames());
  ~PipelineStack();

  const std::string& prefix() const { return prefix_; }
  const std::string& bootstrap() const { return bootstrap_; }
  std::string Topic(const std::string& base) const { return prefix_ + base; }
  std::string GrpcAddress(const std::string& service) const;
  std::string LogFile(const std::string& service) const;

  absl::Status Kill(const std::string& service, int signal);
  // Starts a stopped or killed service again with the same environment.
  absl::Status Restart(const std::string& service);
  bool Running(const std::string& service);

 private:
  struct Service {
    std::unique_ptr<testing::RedisServer> redis;
    std::unique_ptr<testing::Subprocess> process;
    std::map<std::string, std::string> env;
    int grpc_port = 0;
  };
  PipelineStack() = default;
  absl::Status Launch(const std::string& name);

  std::string bootstrap_;
  std::string prefix_;
  std::string dir_;
  std::map<std::string, Service> services_;
};

}  // namespace leadflow::e2e
