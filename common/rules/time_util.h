// Time helpers shared by the pure engines: protobuf Timestamp <-> absl::Time, "HH:MM" clock
// times, IANA time-zone loading and ISO weekdays.
//
// Contract:
// - Every function is pure and thread-safe. Nothing here reads the current time: callers pass
//   `now` in, so engines stay deterministic and tests need no clock.
// - Time zones are loaded with absl::LoadTimeZone, which reads the system tzdata once per zone
//   and caches it for the life of the process. We treat tzdata as static data (like the binary
//   itself), not as I/O: the same name always yields the same rules on one machine.
// - "localtime" is refused on purpose: it means "whatever this host is set to", which would make
//   decisions depend on where the service runs.
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace leadflow::rules {

// Converts a protobuf Timestamp to absl::Time (an unset Timestamp is the Unix epoch).
absl::Time ToTime(const google::protobuf::Timestamp& timestamp);

// Converts absl::Time to a protobuf Timestamp. Infinite times saturate to the Timestamp range
// limits (0001-01-01 and 9999-12-31) so the result is always a valid Timestamp.
google::protobuf::Timestamp ToTimestamp(absl::Time time);

// Parses a 24-hour clock time "HH:MM" (exactly two digits each) into minutes after midnight.
// "24:00" is accepted only when `allow_end_of_day` is true (an exclusive end of a window).
// Returns nullopt for anything else, e.g. "9:00", "25:00", "12:60".
std::optional<int> ParseClockMinutes(absl::string_view hh_mm, bool allow_end_of_day = false);

// Loads an IANA time zone ("Europe/London", "UTC"). Returns InvalidArgument when the name is
// empty, does not look like an IANA name, is "localtime", or is not in the tzdata.
absl::StatusOr<absl::TimeZone> LoadIanaTimeZone(absl::string_view name);

// Like LoadIanaTimeZone, but falls back to `fallback` on any error. For lead-supplied zones,
// where a bad value must not stop delivery.
absl::TimeZone TimeZoneOr(absl::string_view name, absl::TimeZone fallback);

// ISO-8601 weekday of a civil day: 1 = Monday ... 7 = Sunday (the numbering of
// config.v1.WorkingHours.days).
int IsoWeekday(absl::CivilDay day);

// Minutes after local midnight of a civil time, 0..1439.
int MinuteOfDay(absl::CivilSecond time);

}  // namespace leadflow::rules
