#include "common/testing/test_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace leadflow::testing {

bool TestEnv::Available() { return std::getenv(kTestEnvVariable) != nullptr; }

absl::StatusOr<TestEnv> TestEnv::Load() {
  const char* path = std::getenv(kTestEnvVariable);
  if (path == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(kTestEnvVariable, " is not set"));
  }
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(kTestEnvVariable, "=", path,
                                            ": cannot read (is the stack up? scripts/stack.sh up "
                                            "--infra)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<TestEnv> env = Parse(text.str());
  if (!env.ok())
    return absl::Status(env.status().code(), absl::StrCat(path, ": ", env.status().message()));
  return env;
}

absl::StatusOr<TestEnv> TestEnv::Parse(std::string_view text) {
  TestEnv env;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, " is not KEY=VALUE: '", line, "'"));
    }
    env.values_[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  std::optional<std::string> bootstrap = env.Get("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS");
  if (!bootstrap.has_value() || bootstrap->empty()) {
    return absl::InvalidArgumentError("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS is missing");
  }
  env.kafka_bootstrap_ = *bootstrap;
  return env;
}

std::optional<std::string> TestEnv::Get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string TestEnv::UniqueName(std::string_view base) {
  static std::atomic<int> counter{0};
  return absl::StrCat(absl::string_view(base.data(), base.size()), "-", getpid(), "-",
                      absl::ToUnixMicros(absl::Now()), "-", counter.fetch_add(1));
}

}  // namespace leadflow::testing
