#pragma once

// Subprocess: a child process owned by a test (a redis-server, a service binary).
//
// Start() forks and execs `path` with `args` and the test's environment plus `extra_env`, with
// stdin from /dev/null and stdout and stderr appended to `log_file`. The child runs in its own
// process group and is sent SIGKILL by the kernel if the thread that started it dies, so a
// crashed test leaves nothing behind.
//
// The child is always reaped: by Wait(), by Running() once it has exited, or by the destructor,
// which SIGKILLs a child still running. (PID 1 of the test sandbox does not reap orphans.)
//
// Thread safety: not thread-safe; one test thread owns a Subprocess. Start it from a thread that
// outlives it (the test's main thread), because of the parent-death signal above.

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace leadflow::testing {

class Subprocess {
 public:
  // `path` is an executable path or a name looked up in PATH. `args` excludes argv[0].
  // Errors: NOT_FOUND when the executable cannot be found or executed, INTERNAL on fork/open
  // failure.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::string& path, const std::vector<std::string>& args,
      const std::map<std::string, std::string>& extra_env, const std::string& log_file);

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  pid_t pid() const { return pid_; }

  // Sends `signal` to the child. FAILED_PRECONDITION if it has already been reaped.
  absl::Status Kill(int signal);

  // Waits up to `timeout` for the child to exit and reaps it. Returns its exit code, or
  // 128 + the signal number if a signal ended it (the shell convention); nullopt if it is still
  // running at the deadline. Once reaped, returns the same value again at once.
  std::optional<int> Wait(absl::Duration timeout);

  // True while the child has not exited. Reaps it if it has.
  bool Running();

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  // Non-blocking reap; true if the child is gone (exit status recorded).
  bool TryReap();

  pid_t pid_;
  std::optional<int> exit_status_;
};

}  // namespace leadflow::testing
