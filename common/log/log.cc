#include "common/log/log.h"

#include <cctype>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace leadflow::log {
namespace {

bool IsEmailChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '%' ||
         c == '+' || c == '-';
}

// Masks one e-mail around the '@' at `at`; returns the end of what it consumed.
size_t MaskEmail(std::string_view text, size_t at, std::string* out) {
  size_t start = at;
  while (start > 0 && IsEmailChar(text[start - 1])) --start;
  size_t end = at + 1;
  while (end < text.size() && IsEmailChar(text[end])) ++end;
  std::string_view domain = text.substr(at + 1, end - at - 1);
  const size_t dot = domain.rfind('.');
  if (start == at || dot == std::string_view::npos || dot == 0) {
    out->append(text.substr(start, end - start));
    return end;
  }
  out->push_back(text[start]);
  out->append("***@");
  out->push_back(domain[0]);
  out->append("***");
  out->append(domain.substr(dot));
  return end;
}

// Custom spdlog flag: the message, redacted and (for JSON) escaped.
class RedactedMessage final : public spdlog::custom_flag_formatter {
 public:
  explicit RedactedMessage(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string text = Redact(std::string_view(msg.payload.data(), msg.payload.size()));
    if (json_)
      text = nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<RedactedMessage>(json_);
  }

 private:
  bool json_;
};

}  // namespace

std::string Redact(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '@') {
      // Undo the local part already copied, then mask the whole address.
      size_t start = i;
      while (start > 0 && IsEmailChar(text[start - 1])) --start;
      out.resize(out.size() - (i - start));
      i = MaskEmail(text, i, &out);
      continue;
    }
    const bool starts_number = (c == '+' || std::isdigit(static_cast<unsigned char>(c))) &&
                               (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1])));
    if (starts_number) {
      // A phone-looking run: digits with spaces, dashes, dots or parentheses between them.
      size_t end = i + (c == '+' ? 1 : 0);
      int digits = 0;
      while (end < text.size()) {
        const char d = text[end];
        if (std::isdigit(static_cast<unsigned char>(d))) {
          ++digits;
        } else if (d == ' ' || d == '-' || d == '.' || d == '(' || d == ')') {
          // A separator continues the number when a digit or '(' follows; after ')' one space or
          // dash may come first, as in "(415) 555-2671".
          size_t next = end + 1;
          if (d == ')' && next < text.size() && (text[next] == ' ' || text[next] == '-')) ++next;
          if (next >= text.size() ||
              !(std::isdigit(static_cast<unsigned char>(text[next])) || text[next] == '(')) {
            break;
          }
          end = next;
          continue;
        } else {
          break;
        }
        ++end;
      }
      // Leading '+' with 7+ digits, or 9+ digits with separators, looks like a phone number;
      // plain counters and offsets (no '+', no separators) are left alone.
      std::string_view run = text.substr(i, end - i);
      const bool has_separator = run.find_first_of(" -.()") != std::string_view::npos;
      if ((c == '+' && digits >= 7) || (has_separator && digits >= 9)) {
        out.append(run.substr(0, c == '+' ? 3 : 2));
        out.append("***");
        out.append(run.substr(run.size() - 2));
        i = end;
        continue;
      }
      out.append(run);
      i = end;
      continue;
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

absl::Status InitLogging(const std::string& service, const std::string& format,
                         const std::string& level) {
  const bool json = format == "json";
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<RedactedMessage>('*', json);
  if (json) {
    formatter->set_pattern(absl::StrCat(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","service":")",
                                        service, R"(","thread":%t,"msg":%*})"));
  } else {
    formatter->set_pattern(absl::StrCat("%Y-%m-%dT%H:%M:%S.%e %^%l%$ ", service, " [%t] %*"));
  }
  auto logger =
      std::make_shared<spdlog::logger>(service, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::move(formatter));
  const spdlog::level::level_enum lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("unknown log level '", level, "'"));
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  spdlog::flush_every(std::chrono::seconds(1));
  return absl::OkStatus();
}

bool RateLimitedLog::ShouldLog(int64_t* suppressed) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (now - last_ < interval_) {
    ++suppressed_;
    return false;
  }
  last_ = now;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace leadflow::log
