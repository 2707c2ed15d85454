#include "common/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

extern char** environ;

namespace leadflow::testing {
namespace {

// The executable `path` resolves to: itself if it contains a '/', else the first executable of
// that name on PATH.
std::optional<std::string> Resolve(const std::string& path) {
  if (path.find('/') != std::string::npos) return path;
  const char* env_path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(env_path != nullptr ? env_path : "/usr/bin:/bin", ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", path);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::string& path, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& extra_env, const std::string& log_file) {
  std::optional<std::string> executable = Resolve(path);
  if (!executable.has_value()) return absl::NotFoundError(absl::StrCat(path, ": not on PATH"));

  // Everything the child needs is built before fork(): between fork and exec in a
  // multi-threaded process only async-signal-safe calls are allowed (no allocation).
  std::vector<std::string> argv_storage = {*executable};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<std::string> env_storage;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view entry(*e);
    const std::string name(entry.substr(0, entry.find('=')));
    if (!extra_env.contains(name)) env_storage.emplace_back(entry);
  }
  for (const auto& [name, value] : extra_env) env_storage.push_back(absl::StrCat(name, "=", value));
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  const int log_fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", log_file, ": ", std::strerror(errno)));
  }
  // The child reports a failed exec through this pipe; a successful exec closes it (CLOEXEC).
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    close(log_fd);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(log_fd);
    close(report[0]);
    close(report[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    // Signals blocked or ignored by the test (gtest, librdkafka threads) must not be inherited.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execve(argv[0], argv.data(), envp.data());
    const int err = errno;
    (void)!write(report[1], &err, sizeof(err));
    _exit(127);
  }
  close(log_fd);
  close(report[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  auto process = std::unique_ptr<Subprocess>(new Subprocess(pid));
  if (n == sizeof(child_errno)) {
    process->Wait(absl::Seconds(5));  // reap the failed child
    return absl::NotFoundError(
        absl::StrCat("exec ", *executable, ": ", std::strerror(child_errno)));
  }
  return process;
}

Subprocess::~Subprocess() {
  if (exit_status_.has_value()) return;
  if (!TryReap()) {
    kill(pid_, SIGKILL);
    (void)Wait(absl::Seconds(10));
  }
}

bool Subprocess::TryReap() {
  if (exit_status_.has_value()) return true;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_status_ = DecodeWaitStatus(status);
    return true;
  }
  if (r < 0) {
    exit_status_ = -1;  // not our child any more (ECHILD): nothing left to reap
    return true;
  }
  return false;
}

absl::Status Subprocess::Kill(int signal) {
  if (TryReap()) {
    return absl::FailedPreconditionError(absl::StrCat("process ", pid_, " has exited"));
  }
  if (kill(pid_, signal) != 0) {
    return absl::InternalError(absl::StrCat("kill ", pid_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (TryReap()) return exit_status_;
    if (absl::Now() >= deadline) return std::nullopt;
    // Polling waitpid: there is no portable timed wait for a child.
    absl::SleepFor(absl::Milliseconds(5));
  }
}

bool Subprocess::Running() { return !TryReap(); }

}  // namespace leadflow::testing
