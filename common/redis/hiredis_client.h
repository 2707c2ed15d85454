#pragma once

// RedisClient over hiredis: a small pool of blocking connections with timeouts, reconnecting
// lazily after an I/O error. Only this adapter includes hiredis.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/redis/client.h"

struct redisContext;

namespace leadflow::redis {

struct HiredisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;      // ACL user name; empty: AUTH with the password alone (the default user)
  std::string password;  // AUTH when non-empty
  int db = 0;
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration command_timeout = absl::Seconds(5);
  int pool_size = 4;
};

// Parses "host:port" or a URL "redis://[[user]:password@]host[:port][/db]" (port 6379 by
// default). The user and password are percent-decoded, so a password holding ':', '@', '/' or
// '%' is written %3A, %40, %2F, %25. An IPv6 host is written in brackets: "[::1]:6379".
// INVALID_ARGUMENT names the part that is wrong and never quotes the password.
absl::StatusOr<HiredisOptions> ParseRedisAddress(absl::string_view address);

class HiredisClient final : public RedisClient {
 public:
  explicit HiredisClient(HiredisOptions options);
  ~HiredisClient() override;

  absl::StatusOr<Reply> Command(const Args& args) override;
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Args>& commands) override;
  absl::Status WithSession(absl::FunctionRef<absl::Status(RedisSession&)> body) override;

 private:
  class Session;

  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

  absl::StatusOr<ContextPtr> Acquire();
  void Release(ContextPtr context);
  absl::StatusOr<ContextPtr> Connect() const;

  const HiredisOptions options_;
  absl::Mutex mu_;
  std::vector<ContextPtr> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace leadflow::redis
