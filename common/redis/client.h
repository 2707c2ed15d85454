#pragma once

// RedisClient: commands, pipelines and Lua scripts against one service's Redis store.
//
// Contract:
// - Command() sends one command; Pipeline() sends several in one round trip and returns their
//   replies in order (a Redis error reply is returned as a reply of type kError, not a failed
//   status, so one bad command does not hide the others' results).
// - WithSession() holds one connection for several round trips: what WATCH ... MULTI ... EXEC
//   needs (a WATCH belongs to the connection that sent it).
// - A connection problem is UNAVAILABLE; the next call reconnects. Redis errors to a single
//   command (WRONGTYPE, script errors...) are INTERNAL with Redis's message; LOADING / BUSY /
//   MASTERDOWN are UNAVAILABLE (transient).
//
// Thread safety: all methods may be called concurrently (implementations pool connections).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace leadflow::redis {

// A Redis reply as a plain value.
struct Reply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
  bool is_array() const { return type == Type::kArray; }
};

using Args = std::vector<std::string>;

// One connection, held for the round trips of a RedisClient::WithSession body.
class RedisSession {
 public:
  virtual ~RedisSession() = default;
  // Pipeline() on the held connection.
  virtual absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Args>& commands) = 0;
};

class RedisClient {
 public:
  RedisClient() = default;
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;
  virtual ~RedisClient() = default;

  virtual absl::StatusOr<Reply> Command(const Args& args) = 0;
  virtual absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Args>& commands) = 0;
  // Runs `body` with one connection held for all of its pipelines, and returns body's status
  // (UNAVAILABLE, without running it, when no connection can be had). A WATCH the body leaves
  // behind (it returned without EXEC, DISCARD or UNWATCH) is dropped before the connection
  // serves another call. A call to the client from inside the body does not wait for the
  // held connection: it gets another (beyond a pool's size if need be).
  virtual absl::Status WithSession(absl::FunctionRef<absl::Status(RedisSession&)> body) = 0;
  // PING; OK when the server answers.
  absl::Status Ping();
};

// Maps a Redis error reply to a status (LOADING/BUSY/MASTERDOWN/TRYAGAIN → UNAVAILABLE).
absl::Status ErrorReplyToStatus(const Reply& reply);

}  // namespace leadflow::redis
