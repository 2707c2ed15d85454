#pragma once

// Structured logging on spdlog, set up once per process.
//
// - Text (default) or JSON lines (LEADFLOW_LOG_FORMAT=json): one object per line with ts, level,
//   service, thread and msg, for log shippers.
// - Personal data never reaches a log in clear: every message passes through Redact(), which
//   masks e-mail addresses and phone numbers whatever the call site wrote.
// - Rate limiting of repetitive errors is the call site's job (see RateLimitedLog).

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace leadflow::log {

// Installs the default logger. `format`: "json" or "text"; `level`: spdlog level name.
absl::Status InitLogging(const std::string& service, const std::string& format,
                         const std::string& level);

// Masks e-mail addresses ("jane.doe@example.com" → "j***@e***.com") and phone numbers (a '+'
// or digit run of 7+ digits with separators → "+44***89") in free text.
std::string Redact(std::string_view text);

// Allows one log line per `interval` per instance; counts what it suppressed.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(absl::Duration interval) : interval_(interval) {}
  // True if the caller should log now; `suppressed` gets the number skipped since the last one.
  bool ShouldLog(int64_t* suppressed);

 private:
  const absl::Duration interval_;
  absl::Mutex mu_;
  absl::Time last_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace leadflow::log
