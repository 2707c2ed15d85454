#pragma once

// RedisServer: a real, private `redis-server` (Debian package) for one test.
//
// Start() picks a free loopback port, runs
//   redis-server --port P --bind 127.0.0.1 --save "" --appendonly yes --dir <fresh temp dir>
// and returns once PING answers. The AOF makes Stop()/Restart() and Kill()/Restart() keep the
// data, like the stack's per-service Redis. The destructor stops the server and deletes its
// directory. Never touches the Redis on 6379.
//
// Thread safety: not thread-safe; the test's main thread owns it (see Subprocess).

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/subprocess.h"

namespace leadflow::testing {

class RedisServer {
 public:
  // Errors: NOT_FOUND without redis-server; UNAVAILABLE if it does not answer in time.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start();

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer();

  int port() const { return port_; }
  // "127.0.0.1:<port>", the form LEADFLOW_REDIS_ADDR takes.
  std::string address() const;
  // Data directory (AOF) and log file location.
  const std::string& dir() const { return dir_; }
  // A client of this server, with timeouts short enough for a test to notice a dead server.
  std::unique_ptr<redis::HiredisClient> MakeClient(
      int pool_size = 4, absl::Duration command_timeout = absl::Seconds(2)) const;

  // Graceful stop (SIGTERM: Redis flushes the AOF) and wait for exit. OK if already stopped.
  absl::Status Stop();
  // Crash: SIGKILL and reap. Acknowledged writes survive in the AOF (written before the reply).
  absl::Status Kill();
  // Starts again on the same port and directory and waits for PING (the AOF is replayed).
  absl::Status Restart();
  bool Running() const;

 private:
  RedisServer(std::string dir, int port) : dir_(std::move(dir)), port_(port) {}
  absl::Status Launch();
  absl::Status WaitUntilReady(absl::Duration timeout);

  std::string dir_;
  int port_;
  std::unique_ptr<Subprocess> process_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed). The caller
// must cope with losing a race for it.
absl::StatusOr<int> PickFreePort();

}  // namespace leadflow::testing
