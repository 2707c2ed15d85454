#include "services/capture/engine_internal.h"

#include <unicode/utf8.h>

namespace leadflow::capture::internal {

namespace {
// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the Timestamp spec's range.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;
}  // namespace

bool IsValidTimestamp(const google::protobuf::Timestamp& ts) {
  return ts.seconds() >= kMinTimestampSeconds && ts.seconds() <= kMaxTimestampSeconds &&
         ts.nanos() >= 0 && ts.nanos() <= 999'999'999;
}

std::vector<int32_t> CodePoints(absl::string_view text) {
  std::vector<int32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t length = static_cast<int32_t>(text.size());
  int32_t i = 0;
  while (i < length) {
    UChar32 c;
    U8_NEXT_OR_FFFD(s, i, length, c);
    out.push_back(c);
  }
  return out;
}

void AppendUtf8(int32_t c, std::string* out) {
  uint8_t buffer[U8_MAX_LENGTH];
  int32_t length = 0;
  U8_APPEND_UNSAFE(buffer, length, c);
  out->append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
}

}  // namespace leadflow::capture::internal
