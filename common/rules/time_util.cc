#include "common/rules/time_util.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace leadflow::rules {
namespace {

// Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// IANA names are '/'-separated components of letters, digits and "_+-" ("America/New_York",
// "Etc/GMT+5", "UTC"). Checking the shape first keeps paths such as "../etc/passwd" away from
// the tzdata loader, which joins the name onto its directory.
bool LooksLikeIanaName(absl::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  char previous = '/';
  for (char c : name) {
    const bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '+' ||
                    c == '-' || c == '/';
    if (!ok) return false;
    if (c == '/' && previous == '/') return false;
    if (previous == '/' && !absl::ascii_isalpha(static_cast<unsigned char>(c))) return false;
    previous = c;
  }
  return true;
}

}  // namespace

absl::Time ToTime(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

google::protobuf::Timestamp ToTimestamp(absl::Time time) {
  google::protobuf::Timestamp out;
  if (time <= absl::FromUnixSeconds(kMinTimestampSeconds)) {
    out.set_seconds(kMinTimestampSeconds);
    return out;
  }
  if (time >= absl::FromUnixSeconds(kMaxTimestampSeconds)) {
    out.set_seconds(kMaxTimestampSeconds);
    return out;
  }
  const int64_t seconds = absl::ToUnixSeconds(time);  // rounds toward negative infinity
  out.set_seconds(seconds);
  out.set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
  return out;
}

std::optional<int> ParseClockMinutes(absl::string_view hh_mm, bool allow_end_of_day) {
  if (hh_mm.size() != 5 || hh_mm[2] != ':' || !IsDigit(hh_mm[0]) || !IsDigit(hh_mm[1]) ||
      !IsDigit(hh_mm[3]) || !IsDigit(hh_mm[4])) {
    return std::nullopt;
  }
  const int hours = (hh_mm[0] - '0') * 10 + (hh_mm[1] - '0');
  const int minutes = (hh_mm[3] - '0') * 10 + (hh_mm[4] - '0');
  if (minutes > 59) return std::nullopt;
  if (hours == 24 && minutes == 0 && allow_end_of_day) return 24 * 60;
  if (hours > 23) return std::nullopt;
  return hours * 60 + minutes;
}

absl::StatusOr<absl::TimeZone> LoadIanaTimeZone(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty time zone");
  if (name == "localtime" || !LooksLikeIanaName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", name, "' is not an IANA time zone name (e.g. 'Europe/London')"));
  }
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(std::string(name), &zone)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown time zone '", name, "'"));
  }
  return zone;
}

absl::TimeZone TimeZoneOr(absl::string_view name, absl::TimeZone fallback) {
  if (name.empty()) return fallback;  // the common case, without building an error
  absl::StatusOr<absl::TimeZone> zone = LoadIanaTimeZone(name);
  return zone.ok() ? *zone : fallback;
}

int IsoWeekday(absl::CivilDay day) {
  switch (absl::GetWeekday(day)) {
    case absl::Weekday::monday:
      return 1;
    case absl::Weekday::tuesday:
      return 2;
    case absl::Weekday::wednesday:
      return 3;
    case absl::Weekday::thursday:
      return 4;
    case absl::Weekday::friday:
      return 5;
    case absl::Weekday::saturday:
      return 6;
    case absl::Weekday::sunday:
      return 7;
  }
  return 7;  // unreachable: every weekday is handled above
}

int MinuteOfDay(absl::CivilSecond time) { return time.hour() * 60 + time.minute(); }

}  // namespace leadflow::rules
