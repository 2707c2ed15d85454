// ActivityHistory: per-lead day buckets, visits, and their binary encoding.

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/rules/time_util.h"
#include "services/tracking/engine.h"

namespace leadflow::tracking {

namespace {

using events::v1::Activity;
using events::v1::ActivityCounts;
using events::v1::LeadAggregates;
using rules::ToTime;
using rules::ToTimestamp;

constexpr int64_t kSecondsPerDay = 86400;
constexpr std::array<int, 4> kWindows = {1, 7, 30, 90};

// Types that happen off the site (in a mail client, or are bookkeeping); they do not make or
// extend a visit.
bool IsOnSite(absl::string_view type) {
  return type != "identify" && type != "email_open" && type != "email_click" && type != "bounce" &&
         type != "unsubscribe";
}

// The UTC day of `t`, counted from 1970-01-01 (negative before).
int64_t DayOf(absl::Time t) {
  const int64_t seconds = absl::ToUnixSeconds(t);  // floors
  return seconds >= 0 ? seconds / kSecondsPerDay : -((-seconds - 1) / kSecondsPerDay) - 1;
}

// Cuts `key` to at most `max` bytes without splitting a UTF-8 sequence.
void CutKey(std::string* key, size_t max) {
  if (key->size() <= max) return;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>((*key)[cut]) & 0xC0) == 0x80) --cut;
  key->resize(cut);
}

// ---- Encoding --------------------------------------------------------------------------------

constexpr char kMagic[] = {'A', 'H'};
constexpr uint8_t kVersion = 1;
constexpr uint64_t kFlagSeen = 1;
constexpr uint64_t kFlagOnSite = 2;

void PutVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void PutSigned(int64_t value, std::string* out) {
  PutVarint((static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63), out);
}

void PutTime(absl::Time t, std::string* out) { PutSigned(absl::ToUnixNanos(t), out); }

// Reads what the Put* functions write; every getter returns false at the end of the input or on
// a malformed varint.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}

  bool Varint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      const auto byte = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && byte > 1) return false;  // overflows 64 bits
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  // A non-negative value that fits in int64.
  bool Count(int64_t* value) {
    uint64_t raw;
    if (!Varint(&raw) || raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return false;
    }
    *value = static_cast<int64_t>(raw);
    return true;
  }

  bool Signed(int64_t* value) {
    uint64_t raw;
    if (!Varint(&raw)) return false;
    *value = static_cast<int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
    return true;
  }

  bool Time(absl::Time* t) {
    int64_t nanos;
    if (!Signed(&nanos)) return false;
    *t = absl::FromUnixNanos(nanos);
    return true;
  }

  bool Bytes(size_t n, absl::string_view* out) {
    if (data_.size() - pos_ < n) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  bool done() const { return pos_ == data_.size(); }

 private:
  absl::string_view data_;
  size_t pos_ = 0;
};

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt activity history: ", what));
}

}  // namespace

// ---- Recording -----------------------------------------------------------------------------

void ActivityHistory::Apply(const Activity& activity, absl::Time now) {
  const absl::Time at = activity.has_occurred_at() ? ToTime(activity.occurred_at()) : now;
  const int64_t today = DayOf(now);
  if (!activity.type().empty()) {
    Count(activity.type(), at, today);
    if (activity.type() == "page_view" && !activity.page_category().empty()) {
      Count(absl::StrCat(kPageCategoryPrefix, activity.page_category()), at, today);
    }
  }
  first_seen_ = first_seen_ ? std::min(*first_seen_, at) : at;
  last_seen_ = last_seen_ ? std::max(*last_seen_, at) : at;
  if (IsOnSite(activity.type())) RecordVisit(at);
  Prune(today);
  EnforceKeyBudget();
}

void ActivityHistory::EnforceKeyBudget() {
  // Over the key budget: forget the key whose latest event is oldest.
  while (keys_.size() > kMaxKeys) {
    auto oldest = std::min_element(keys_.begin(), keys_.end(), [](const auto& a, const auto& b) {
      return std::tie(a.second.last_at, a.first) < std::tie(b.second.last_at, b.first);
    });
    keys_.erase(oldest);
  }
}

void ActivityHistory::MergeFrom(const ActivityHistory& other, absl::Time now) {
  const int64_t today = DayOf(now);
  for (const auto& [key, theirs] : other.keys_) {
    KeyHistory& ours = keys_[key];
    ours.total += theirs.total;
    ours.last_at = std::max(ours.last_at, theirs.last_at);
    for (const auto& [day, count] : theirs.days) ours.days[std::min(day, today + 1)] += count;
  }
  auto outer = [](const std::optional<absl::Time>& theirs, bool earliest,
                  std::optional<absl::Time>* ours) {
    if (!theirs) return;
    *ours = !*ours ? *theirs : earliest ? std::min(**ours, *theirs) : std::max(**ours, *theirs);
  };
  outer(other.first_seen_, true, &first_seen_);
  outer(other.last_seen_, false, &last_seen_);
  outer(other.first_on_site_, true, &first_on_site_);
  outer(other.last_on_site_, false, &last_on_site_);
  visits_ += other.visits_;
  time_on_site_ += other.time_on_site_;
  Prune(today);
  EnforceKeyBudget();
}

std::vector<Activity> MergeTimelines(const std::vector<std::vector<Activity>>& timelines,
                                     size_t cap) {
  std::vector<const Activity*> all;
  for (const std::vector<Activity>& timeline : timelines) {
    for (const Activity& a : timeline) all.push_back(&a);
  }
  std::stable_sort(all.begin(), all.end(), [](const Activity* a, const Activity* b) {
    return ToTime(a->occurred_at()) > ToTime(b->occurred_at());
  });
  std::vector<Activity> merged;
  absl::flat_hash_set<absl::string_view> seen;
  for (const Activity* a : all) {
    if (merged.size() >= cap) break;
    if (!a->message_id().empty() && !seen.insert(a->message_id()).second) continue;
    merged.push_back(*a);
  }
  return merged;
}

void ActivityHistory::Count(std::string key, absl::Time at, int64_t today) {
  CutKey(&key, kMaxKeyLength);
  KeyHistory& history = keys_[key];
  ++history.total;
  history.last_at = std::max(history.last_at, at);
  const int64_t day = DayOf(at);
  // Days before the window count only in the total; days after tomorrow (not possible after
  // Normalize's clamp unless `now` lags the receive time) are recorded as tomorrow.
  if (day > today - kWindowDays) ++history.days[std::min(day, today + 1)];
}

void ActivityHistory::RecordVisit(absl::Time at) {
  if (!last_on_site_) {
    visits_ = 1;
    first_on_site_ = last_on_site_ = at;
    return;
  }
  if (at >= *last_on_site_) {
    const absl::Duration gap = at - *last_on_site_;
    if (gap > kVisitGap) {
      ++visits_;
    } else {
      time_on_site_ += std::min(gap, kVisitGap);
    }
    last_on_site_ = at;
  } else if (at < *first_on_site_) {
    const absl::Duration gap = *first_on_site_ - at;
    if (gap > kVisitGap) {
      ++visits_;
    } else {
      time_on_site_ += std::min(gap, kVisitGap);
    }
    first_on_site_ = at;
  }
  // Else: inside the range already seen, part of a visit already counted (see engine.h).
}

void ActivityHistory::Prune(int64_t today) {
  for (auto& [key, history] : keys_) {
    history.days.erase(history.days.begin(), history.days.upper_bound(today - kWindowDays));
  }
}

size_t ActivityHistory::bucket_count(absl::string_view key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : it->second.days.size();
}

// ---- Aggregates ----------------------------------------------------------------------------

LeadAggregates ActivityHistory::Aggregates(absl::Time now) const {
  const int64_t today = DayOf(now);
  LeadAggregates aggregates;
  for (const auto& [key, history] : keys_) {
    ActivityCounts counts;
    counts.set_total(history.total);
    *counts.mutable_last_at() = ToTimestamp(history.last_at);
    std::array<int64_t, kWindows.size()> in_window{};
    for (const auto& [day, count] : history.days) {
      for (size_t w = 0; w < kWindows.size(); ++w) {
        if (day > today - kWindows[w]) in_window[w] += count;
      }
    }
    counts.set_last_1d(in_window[0]);
    counts.set_last_7d(in_window[1]);
    counts.set_last_30d(in_window[2]);
    counts.set_last_90d(in_window[3]);
    if (absl::StartsWith(key, kPageCategoryPrefix)) {
      (*aggregates.mutable_by_page_category())[key.substr(kPageCategoryPrefix.size())] = counts;
    } else {
      (*aggregates.mutable_by_type())[key] = counts;
    }
  }
  aggregates.set_visits(visits_);
  aggregates.set_seconds_on_site(absl::ToInt64Seconds(time_on_site_));
  if (first_seen_) *aggregates.mutable_first_seen_at() = ToTimestamp(*first_seen_);
  if (last_seen_) *aggregates.mutable_last_seen_at() = ToTimestamp(*last_seen_);
  return aggregates;
}

void ApplyActivity(const Activity& activity, absl::Time now, ActivityHistory* history,
                   LeadAggregates* aggregates) {
  history->Apply(activity, now);
  *aggregates = history->Aggregates(now);
}

void RefreshWindows(absl::Time now, const ActivityHistory& history, LeadAggregates* aggregates) {
  *aggregates = history.Aggregates(now);
}

// ---- Serialization -------------------------------------------------------------------------

std::string ActivityHistory::Serialize() const {
  std::string out(kMagic, sizeof(kMagic));
  out.push_back(static_cast<char>(kVersion));
  const uint64_t flags = (first_seen_ ? kFlagSeen : 0) | (first_on_site_ ? kFlagOnSite : 0);
  PutVarint(flags, &out);
  if (first_seen_) {
    PutTime(*first_seen_, &out);
    PutTime(*last_seen_, &out);
  }
  if (first_on_site_) {
    PutTime(*first_on_site_, &out);
    PutTime(*last_on_site_, &out);
  }
  PutVarint(static_cast<uint64_t>(visits_), &out);
  PutVarint(static_cast<uint64_t>(absl::ToInt64Nanoseconds(time_on_site_)), &out);
  PutVarint(keys_.size(), &out);
  for (const auto& [key, history] : keys_) {
    PutVarint(key.size(), &out);
    out.append(key);
    PutVarint(static_cast<uint64_t>(history.total), &out);
    PutTime(history.last_at, &out);
    PutVarint(history.days.size(), &out);
    int64_t previous_day = 0;
    bool first = true;
    for (const auto& [day, count] : history.days) {
      if (first) {
        PutSigned(day, &out);
      } else {
        PutVarint(static_cast<uint64_t>(day - previous_day), &out);
      }
      PutVarint(static_cast<uint64_t>(count), &out);
      previous_day = day;
      first = false;
    }
  }
  return out;
}

absl::StatusOr<ActivityHistory> ActivityHistory::Parse(absl::string_view data) {
  ActivityHistory history;
  if (data.empty()) return history;
  Reader in(data);
  absl::string_view magic;
  if (!in.Bytes(sizeof(kMagic), &magic) || magic != absl::string_view(kMagic, sizeof(kMagic))) {
    return Corrupt("bad magic");
  }
  absl::string_view version;
  if (!in.Bytes(1, &version)) return Corrupt("truncated header");
  if (static_cast<uint8_t>(version[0]) != kVersion) {
    return absl::DataLossError(absl::StrCat("unsupported activity history version ",
                                            static_cast<int>(static_cast<uint8_t>(version[0]))));
  }
  uint64_t flags;
  if (!in.Varint(&flags) || flags > (kFlagSeen | kFlagOnSite)) return Corrupt("bad flags");
  auto read_range = [&](std::optional<absl::Time>* first, std::optional<absl::Time>* last) -> bool {
    absl::Time a, b;
    if (!in.Time(&a) || !in.Time(&b) || b < a) return false;
    *first = a;
    *last = b;
    return true;
  };
  if ((flags & kFlagSeen) && !read_range(&history.first_seen_, &history.last_seen_)) {
    return Corrupt("bad seen times");
  }
  if ((flags & kFlagOnSite) && !read_range(&history.first_on_site_, &history.last_on_site_)) {
    return Corrupt("bad on-site times");
  }
  int64_t on_site_nanos;
  if (!in.Count(&history.visits_) || !in.Count(&on_site_nanos)) return Corrupt("bad visits");
  history.time_on_site_ = absl::Nanoseconds(on_site_nanos);

  uint64_t key_count;
  if (!in.Varint(&key_count) || key_count > kMaxKeys) return Corrupt("bad key count");
  std::string previous_key;
  for (uint64_t k = 0; k < key_count; ++k) {
    uint64_t length;
    absl::string_view key;
    if (!in.Varint(&length) || length == 0 || length > kMaxKeyLength || !in.Bytes(length, &key)) {
      return Corrupt("bad key name");
    }
    if (k > 0 && key <= previous_key) return Corrupt("keys out of order");
    previous_key = std::string(key);
    KeyHistory key_history;
    uint64_t bucket_count;
    if (!in.Count(&key_history.total) || key_history.total == 0 || !in.Time(&key_history.last_at) ||
        !in.Varint(&bucket_count) || bucket_count > kMaxBucketsPerKey) {
      return Corrupt(absl::StrCat("bad key \"", key, "\""));
    }
    int64_t day = 0;
    int64_t bucketed = 0;
    for (uint64_t b = 0; b < bucket_count; ++b) {
      int64_t count;
      if (b == 0) {
        if (!in.Signed(&day)) return Corrupt("bad bucket day");
      } else {
        int64_t increment;
        if (!in.Count(&increment) || increment == 0 ||
            day > std::numeric_limits<int64_t>::max() - increment) {
          return Corrupt("bad bucket day");
        }
        day += increment;
      }
      if (!in.Count(&count) || count == 0 || count > key_history.total - bucketed) {
        return Corrupt("bad bucket count");
      }
      bucketed += count;
      key_history.days.emplace(day, count);
    }
    history.keys_.emplace(std::string(key), std::move(key_history));
  }
  if (!in.done()) return Corrupt("trailing bytes");
  return history;
}

}  // namespace leadflow::tracking
