#include "common/testing/redis_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/wait.h"

namespace leadflow::testing {
namespace {

constexpr absl::Duration kReadyTimeout = absl::Seconds(20);
constexpr absl::Duration kStopTimeout = absl::Seconds(20);
constexpr int kPortAttempts = 5;

absl::StatusOr<std::string> MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/leadflow-redis-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
  }
  return pattern;
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("bind: ", std::strerror(err)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start() {
  absl::Status last = absl::UnavailableError("no attempt");
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) return port.status();
    absl::StatusOr<std::string> dir = MakeTempDir();
    if (!dir.ok()) return dir.status();
    // On failure the server's destructor deletes this attempt's directory.
    auto server = std::unique_ptr<RedisServer>(new RedisServer(*dir, *port));
    last = server->Launch();
    if (last.ok()) return server;
    if (absl::IsNotFound(last)) break;
    // Most likely another process took the port between PickFreePort and redis binding it.
  }
  return last;
}

RedisServer::~RedisServer() {
  (void)Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string RedisServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::unique_ptr<redis::HiredisClient> RedisServer::MakeClient(
    int pool_size, absl::Duration command_timeout) const {
  redis::HiredisOptions options;
  options.host = "127.0.0.1";
  options.port = port_;
  options.pool_size = pool_size;
  options.connect_timeout = absl::Milliseconds(500);
  options.command_timeout = command_timeout;
  return std::make_unique<redis::HiredisClient>(options);
}

bool RedisServer::Running() const { return process_ != nullptr && process_->Running(); }

absl::Status RedisServer::Launch() {
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(
      "redis-server",
      {"--port", absl::StrCat(port_), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
       "--appendfsync", "everysec", "--dir", dir_, "--daemonize", "no", "--protected-mode", "no"},
      {}, absl::StrCat(dir_, "/redis.log"));
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  absl::Status ready = WaitUntilReady(kReadyTimeout);
  if (!ready.ok()) {
    process_.reset();  // SIGKILL and reap
  }
  return ready;
}

absl::Status RedisServer::WaitUntilReady(absl::Duration timeout) {
  redis::HiredisOptions options;
  options.port = port_;
  options.pool_size = 1;
  options.connect_timeout = absl::Milliseconds(500);
  options.command_timeout = absl::Seconds(1);
  redis::HiredisClient client(options);
  bool exited = false;
  const bool ready = WaitFor(
      [&] {
        if (!process_->Running()) {
          exited = true;
          return true;
        }
        // LOADING (AOF replay) answers with an error: Ping() is only OK once it is done.
        return client.Ping().ok();
      },
      timeout, absl::Milliseconds(20));
  if (exited) {
    return absl::UnavailableError(
        absl::StrCat("redis-server on port ", port_, " exited at start; see ", dir_, "/redis.log"));
  }
  if (!ready) {
    return absl::UnavailableError(
        absl::StrCat("redis-server on port ", port_, " did not answer PING in time"));
  }
  return absl::OkStatus();
}

absl::Status RedisServer::Stop() {
  if (process_ == nullptr) return absl::OkStatus();
  if (process_->Running()) {
    (void)process_->Kill(SIGTERM);
    if (!process_->Wait(kStopTimeout).has_value()) {
      (void)process_->Kill(SIGKILL);
      process_->Wait(absl::Seconds(10));
    }
  }
  process_.reset();
  return absl::OkStatus();
}

absl::Status RedisServer::Kill() {
  if (process_ == nullptr) return absl::FailedPreconditionError("redis-server is not running");
  (void)process_->Kill(SIGKILL);
  if (!process_->Wait(absl::Seconds(10)).has_value()) {
    return absl::InternalError("redis-server survived SIGKILL");
  }
  process_.reset();
  return absl::OkStatus();
}

absl::Status RedisServer::Restart() {
  if (absl::Status s = Stop(); !s.ok()) return s;
  return Launch();
}

}  // namespace leadflow::testing
