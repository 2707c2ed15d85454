#include "common/redis/hiredis_client.h"

#include <hiredis/hiredis.h>

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace leadflow::redis {
namespace {

// hiredis's reader builds each reply through these (redisReplyObjectFunctions): straight into
// a Reply, instead of a redisReply tree that would then be copied into one and freed (two
// allocations and a copy per element more; 15 % of the nurturing scheduler's instructions went
// to replies). hiredis hands a root object (no parent task) to the caller, or to freeObject if
// the reply fails half-way; children live in their parent's `elements`, sized by createArray.
Reply* ReplySlot(const redisReadTask* task) {
  if (task->parent == nullptr) return new Reply();
  return &static_cast<Reply*>(task->parent->obj)->elements[static_cast<size_t>(task->idx)];
}

void* CreateString(const redisReadTask* task, char* str, size_t len) {
  Reply* r = ReplySlot(task);
  r->type = task->type == REDIS_REPLY_ERROR    ? Reply::Type::kError
            : task->type == REDIS_REPLY_STATUS ? Reply::Type::kStatus
                                               : Reply::Type::kString;
  r->str.assign(str, len);
  return r;
}

void* CreateArray(const redisReadTask* task, int elements) {
  Reply* r = ReplySlot(task);
  r->type = Reply::Type::kArray;
  r->elements.resize(static_cast<size_t>(elements));
  return r;
}

void* CreateInteger(const redisReadTask* task, long long value) {  // NOLINT(runtime/int): hiredis
  Reply* r = ReplySlot(task);
  r->type = Reply::Type::kInteger;
  r->integer = value;
  return r;
}

void* CreateNil(const redisReadTask* task) {
  Reply* r = ReplySlot(task);
  r->type = Reply::Type::kNil;
  return r;
}

void FreeReply(void* reply) { delete static_cast<Reply*>(reply); }

redisReplyObjectFunctions kReplyFunctions = {CreateString, CreateArray, CreateInteger, CreateNil,
                                             FreeReply};

// The one place hiredis context errors become statuses: all are connection-level, so transient.
absl::Status ContextError(const redisContext* c, absl::string_view what) {
  return absl::UnavailableError(
      absl::StrCat("redis ", what, ": ", c != nullptr && c->err ? c->errstr : "no connection"));
}

// Appends the RESP encoding of a command to `out`: "*<argc>\r\n", then "$<len>\r\n<bytes>\r\n"
// per argument (binary-safe). hiredis 0.14's redisAppendCommandArgv builds the same bytes through
// sdscatfmt, one formatted piece at a time, and that took a quarter of the nurturing
// scheduler's instructions (docs/BENCHMARKS.md); the pipeline is encoded here in one buffer and
// handed over with redisAppendFormattedCommand, hiredis's entry point for encoded commands.
void AppendRespHeader(char tag, size_t n, std::string* out) {
  char buffer[3 + absl::numbers_internal::kFastToBufferSize];
  buffer[0] = tag;
  char* end = absl::numbers_internal::FastIntToBuffer(static_cast<uint64_t>(n), buffer + 1);
  *end++ = '\r';
  *end++ = '\n';
  out->append(buffer, static_cast<size_t>(end - buffer));
}

void AppendResp(const Args& args, std::string* out) {
  AppendRespHeader('*', args.size(), out);
  for (const std::string& a : args) {
    AppendRespHeader('$', a.size(), out);
    out->append(a);
    out->append("\r\n", 2);
  }
}

// Sends `commands` in one round trip on `c` and reads their replies.
// Sessions (WithSession bodies) running on this thread, of any client.
thread_local int sessions_on_this_thread = 0;

absl::StatusOr<std::vector<Reply>> RoundTrip(redisContext* c, const std::vector<Args>& commands) {
  size_t size = 0;
  for (const Args& args : commands) {
    size += 16;
    for (const std::string& a : args) size += a.size() + 24;
  }
  std::string encoded;
  encoded.reserve(size);
  for (const Args& args : commands) AppendResp(args, &encoded);
  if (redisAppendFormattedCommand(c, encoded.data(), encoded.size()) != REDIS_OK) {
    return ContextError(c, "command");
  }
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) return ContextError(c, "command");
    std::unique_ptr<Reply> reply(static_cast<Reply*>(raw));  // built by kReplyFunctions
    replies.push_back(std::move(*reply));
  }
  return replies;
}

}  // namespace

// Knows whether its connection is left watching keys: WATCH starts it, EXEC / DISCARD /
// UNWATCH end it (as Redis does).
class HiredisClient::Session final : public RedisSession {
 public:
  explicit Session(redisContext* c) : c_(c) {}
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Args>& commands) override {
    for (const Args& args : commands) {
      if (args.empty()) continue;
      if (absl::EqualsIgnoreCase(args[0], "WATCH")) {
        watching_ = true;
      } else if (absl::EqualsIgnoreCase(args[0], "EXEC") ||
                 absl::EqualsIgnoreCase(args[0], "DISCARD") ||
                 absl::EqualsIgnoreCase(args[0], "UNWATCH")) {
        watching_ = false;
      }
    }
    return RoundTrip(c_, commands);
  }
  bool watching() const { return watching_; }

 private:
  redisContext* const c_;
  bool watching_ = false;
};

namespace {

// RFC 3986 percent-decoding of a URL's user or password. nullopt on a malformed escape.
std::optional<std::string> PercentDecoded(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    int byte = 0;
    if (i + 2 >= in.size()) return std::nullopt;  // "%" or "%4" at the end
    for (char c : in.substr(i + 1, 2)) {
      const int digit = absl::ascii_isdigit(c)   ? c - '0'
                        : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                        : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                 : -1;
      if (digit < 0) return std::nullopt;
      byte = byte * 16 + digit;
    }
    out.push_back(static_cast<char>(byte));
    i += 2;
  }
  return out;
}

}  // namespace

absl::StatusOr<HiredisOptions> ParseRedisAddress(absl::string_view address) {
  HiredisOptions o;
  absl::string_view rest = address;
  const bool url = absl::ConsumePrefix(&rest, "redis://");
  if (url) {
    // The credentials end at the last '@': a password may hold '@' percent-encoded or not.
    if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
      absl::string_view auth = rest.substr(0, at);
      absl::string_view user = auth;
      absl::string_view password;
      if (size_t colon = auth.find(':'); colon != absl::string_view::npos) {
        user = auth.substr(0, colon);
        password = auth.substr(colon + 1);
      } else {
        // "redis://secret@host": the one part is the password, as redis-cli -u reads it.
        user = "";
        password = auth;
      }
      std::optional<std::string> decoded_user = PercentDecoded(user);
      std::optional<std::string> decoded_password = PercentDecoded(password);
      if (!decoded_user.has_value() || !decoded_password.has_value()) {
        return absl::InvalidArgumentError(
            "redis URL: a malformed percent escape in the user or password (write '%' as %25)");
      }
      o.user = *std::move(decoded_user);
      o.password = *std::move(decoded_password);
      if (!o.user.empty() && o.password.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "redis URL: user '", o.user, "' without a password (redis://user:password@host)"));
      }
      rest = rest.substr(at + 1);
    }
    if (size_t slash = rest.find('/'); slash != absl::string_view::npos) {
      absl::string_view db = rest.substr(slash + 1);
      if (!db.empty() && (!absl::SimpleAtoi(db, &o.db) || o.db < 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("redis URL: database '", db, "' is not a number"));
      }
      rest = rest.substr(0, slash);
    }
  }
  // What is left is host[:port]; the host may be an IPv6 address in brackets.
  absl::string_view host = rest;
  absl::string_view port;
  if (absl::ConsumePrefix(&host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("redis address: '[' without ']' around an IPv6 host");
    }
    absl::string_view after = host.substr(close + 1);
    host = host.substr(0, close);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) {
      return absl::InvalidArgumentError("redis address: expected ':port' after the IPv6 host");
    }
    port = after;
    if (port.empty() && !url) {
      return absl::InvalidArgumentError("redis address: not [host]:port (a port is needed)");
    }
  } else if (size_t colon = rest.rfind(':'); colon != absl::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else if (!url) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis address '", rest, "' is not host:port (or a redis:// URL)"));
  }
  if (host.empty()) return absl::InvalidArgumentError("redis address: the host is empty");
  if (!port.empty() && (!absl::SimpleAtoi(port, &o.port) || o.port <= 0 || o.port > 65535)) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis address: port '", port, "' is not a number from 1 to 65535"));
  }
  o.host = std::string(host);
  return o;
}

void HiredisClient::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }

HiredisClient::HiredisClient(HiredisOptions options) : options_(std::move(options)) {}
HiredisClient::~HiredisClient() = default;

absl::StatusOr<HiredisClient::ContextPtr> HiredisClient::Connect() const {
  const timeval connect_timeout = absl::ToTimeval(options_.connect_timeout);
  ContextPtr c(redisConnectWithTimeout(options_.host.c_str(), options_.port, connect_timeout));
  if (c == nullptr || c->err) return ContextError(c.get(), "connect");
  c->reader->fn = &kReplyFunctions;  // replies are read into Reply (see kReplyFunctions)
  const timeval command_timeout = absl::ToTimeval(options_.command_timeout);
  redisSetTimeout(c.get(), command_timeout);
  redisEnableKeepAlive(c.get());
  auto setup = [&](const Args& args) -> absl::Status {
    absl::StatusOr<std::vector<Reply>> replies = RoundTrip(c.get(), {args});
    if (!replies.ok()) return replies.status();
    return ErrorReplyToStatus((*replies)[0]);
  };
  if (!options_.password.empty()) {
    // The error reply (WRONGPASS, or ERR for a user on Redis < 6) never holds the password.
    absl::Status s = options_.user.empty() ? setup({"AUTH", options_.password})
                                           : setup({"AUTH", options_.user, options_.password});
    if (!s.ok()) {
      const bool refused = absl::StrContains(s.message(), "WRONGPASS") ||
                           absl::StrContains(s.message(), "invalid password");
      return absl::Status(
          refused ? absl::StatusCode::kUnauthenticated : s.code(),
          absl::StrCat("redis AUTH", options_.user.empty() ? "" : " as ", options_.user, " at ",
                       options_.host, ":", options_.port, ": ", s.message()));
    }
  }
  if (options_.db != 0) {
    if (absl::Status s = setup({"SELECT", absl::StrCat(options_.db)}); !s.ok()) return s;
  }
  return c;
}

absl::StatusOr<HiredisClient::ContextPtr> HiredisClient::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    auto has_idle_or_room = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.pool_size;
    };
    // A thread inside a session may hold the connection it would wait for: it gets one beyond
    // the pool's size instead (Release closes it).
    if (sessions_on_this_thread == 0) mu_.Await(absl::Condition(&has_idle_or_room));
    if (!idle_.empty()) {
      ContextPtr c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    ++open_;
  }
  absl::StatusOr<ContextPtr> c = Connect();
  if (!c.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
  }
  return c;
}

void HiredisClient::Release(ContextPtr context) {
  absl::MutexLock lock(&mu_);
  if (context == nullptr || context->err || open_ > options_.pool_size) {
    --open_;  // broken (the next Acquire reconnects) or beyond the pool's size: close it
    return;
  }
  idle_.push_back(std::move(context));
}

absl::StatusOr<Reply> HiredisClient::Command(const Args& args) {
  absl::StatusOr<std::vector<Reply>> replies = Pipeline({args});
  if (!replies.ok()) return replies.status();
  return std::move((*replies)[0]);
}

absl::StatusOr<std::vector<Reply>> HiredisClient::Pipeline(const std::vector<Args>& commands) {
  absl::StatusOr<ContextPtr> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<std::vector<Reply>> replies = RoundTrip(c->get(), commands);
  Release(*std::move(c));  // a broken connection is dropped there
  return replies;
}

absl::Status HiredisClient::WithSession(absl::FunctionRef<absl::Status(RedisSession&)> body) {
  absl::StatusOr<ContextPtr> c = Acquire();
  if (!c.ok()) return c.status();
  Session session(c->get());
  ++sessions_on_this_thread;
  absl::Status status = body(session);
  --sessions_on_this_thread;
  // A connection left watching would make the next MULTI on it fail for keys nobody asked for.
  // On an I/O error the connection is dropped instead.
  if (session.watching()) (void)RoundTrip(c->get(), {{"UNWATCH"}});
  Release(*std::move(c));
  return status;
}

}  // namespace leadflow::redis
