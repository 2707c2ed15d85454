#pragma once

// The tracking engine: the pure domain logic that turns Segment-spec calls into normalised
// activities and keeps each lead's behaviour aggregates. Values in, decisions out: no I/O, no
// clock (time is a parameter), deterministic. De-duplication on messageId and the resolution of
// user / anonymous ids to leads are the I/O layer's job (Redis); this engine only provides the
// dedup key.
//
// The flow the tracking handler drives, per inbound call:
//
//   DedupKeyFor(inbound)                         seen before? drop
//   ActivityNormalizer::Normalize(inbound, t)    validate, skew-correct, classify
//   ActivityHistory::Parse(stored)               the lead's history (empty string = none yet)
//   ApplyActivity(activity, now, &history, &aggregates)
//   store history.Serialize(); emit LeadActivity{activity, aggregates}
//
// When capture merges leads (LeadCaptured.merged_lead_ids), the handler folds each absorbed
// lead's history into the survivor's (ActivityHistory::MergeFrom) and their timelines
// (MergeTimelines), and emits one LeadActivity for the survivor with the merged aggregates.
//
// Thread safety: ActivityNormalizer is immutable after Create and safe to share; an
// ActivityHistory is a plain value (one per lead, not shared).
//
// Time policy (all relative to the receive time: the inbound received_at, else the caller's
// fallback — never the wall clock, so replays give the same answer):
//   - skew correction as Segment does it: when the device time, sent_at and received_at are all
//     set, occurred = received_at − (sent_at − device time); else the timestamp (or
//     original_timestamp) as given; else the receive time. The device time is
//     original_timestamp when present — Segment-forwarded payloads carry the raw device time
//     there and an already-corrected `timestamp` — and `timestamp` otherwise. The fallback is
//     not used for the correction: it may be a processing time hours after the real receipt;
//   - an event more than kMaxFutureSkew after the receive time is clamped to the receive time
//     (a device clock far ahead; keeping it would put the lead's activity in the future);
//   - an event more than kMaxEventAge before the receive time is rejected as too old (stale
//     replays and broken clocks; it could not count in any window anyway).

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "leadflow/config/v1/service_config.pb.h"
#include "leadflow/events/v1/activity.pb.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace leadflow::tracking {

// Events dated further than this after their receive time are clamped to the receive time.
inline constexpr absl::Duration kMaxFutureSkew = absl::Hours(24);
// Events dated further than this before their receive time are rejected.
inline constexpr absl::Duration kMaxEventAge = absl::Hours(24 * 365);
// A gap between two on-site activities longer than this starts a new visit.
inline constexpr absl::Duration kVisitGap = absl::Minutes(30);

// The de-duplication key of an inbound call: its messageId, as Segment de-duplicates.
std::string DedupKeyFor(const events::v1::InboundActivity& inbound);

// The skew-corrected event time of a call, before the future/past policy (see the file
// comment). `received_at_fallback` stands in for an unset received_at.
absl::Time CorrectedEventTime(const events::v1::InboundActivity& inbound,
                              absl::Time received_at_fallback);

// snake_case of an event name: ASCII letters lower-cased, a word break before an upper-case
// letter that follows a lower-case letter or digit ("demoRequested"), every run of other ASCII
// characters one "_", none at the ends. Non-ASCII characters are kept. "Demo Requested" →
// "demo_requested", "Add-to-Cart!" → "add_to_cart".
std::string SnakeCase(absl::string_view text);

// The activity type of a `track` event: the canonical type when the name is a known alias
// (compared in snake_case: "Email Opened" → "email_open", "Email Link Clicked" / "Email
// Clicked" → "email_click", "Form Submitted" → "form_submit", "Demo Requested" →
// "demo_request", "Webinar Attended" → "webinar_attended", "Download" / "Asset Downloaded" /
// "Whitepaper Downloaded" → "download", "Chat Started" → "chat", "Order Completed" →
// "purchase", "Unsubscribed" → "unsubscribe", "Email Bounced" → "bounce", "Competitor Visited"
// → "competitor_visit"), else SnakeCase(event).
std::string TrackActivityType(absl::string_view event);

// Validates and normalises inbound calls into Activities.
class ActivityNormalizer {
 public:
  // Validates `config` and compiles its page-category patterns (RE2 syntax, matched partially;
  // use "(?i)" for case-insensitive). InvalidArgument lists every bad rule: empty category,
  // empty or invalid pattern; and negative dedup_window_hours or anonymous_cap.
  static absl::StatusOr<ActivityNormalizer> Create(const config::v1::TrackingConfig& config);

  ActivityNormalizer(ActivityNormalizer&&) noexcept;
  ActivityNormalizer& operator=(ActivityNormalizer&&) noexcept;
  ~ActivityNormalizer();

  // Normalises one call, or InvalidArgument naming the problem: type not identify / track /
  // page (case-insensitive); message_id missing; neither user_id nor anonymous_id; a track
  // call without a usable event name (or one longer than 128 characters in snake_case); a
  // timestamp outside the Timestamp range; an event too old (see the time policy).
  //
  // The activity: type "identify", "page_view" or TrackActivityType(event); name the event or
  // page name; for page views the url (properties.url, else context.page.url) and the
  // page_category of the first rule matching the url or path (properties.path, else
  // context.page.path, else the path of the url), else of the first "competitor" rule matching
  // the referrer (properties.referrer, else context.page.referrer); touch_id from
  // properties.touch_id or properties.touchId; occurred_at per the time policy; message_id,
  // anonymous_id and properties copied.
  absl::StatusOr<events::v1::Activity> Normalize(const events::v1::InboundActivity& inbound,
                                                 absl::Time received_at_fallback) const;

 private:
  struct CategoryRule;
  explicit ActivityNormalizer(std::vector<CategoryRule> rules);

  std::string PageCategory(absl::string_view url, absl::string_view path,
                           absl::string_view referrer) const;

  std::vector<CategoryRule> rules_;
};

// One lead's activity history: everything LeadAggregates is computed from, compact and bounded.
//
// Per key — an activity type, or "page:<category>" for page views in a category — it keeps the
// all-time count, the latest event time, and a count per UTC day for the days the 90-day window
// can still see. Windows are calendar days in UTC: last_Nd counts the events of the N most
// recent UTC days up to and including the day of `now` (so last_1d is "since 00:00 UTC"), plus
// any on the day after (an event clamped to a receive time just past `now`). Late events land
// in the bucket of their own day; events on days the window can no longer see count only in the
// totals.
//
// Bounds: ≤ kMaxKeys keys (beyond that the key with the oldest latest event is dropped, totals
// and all; ties by name), ≤ kMaxBucketsPerKey day buckets per key (90 window days + tomorrow),
// key names ≤ kMaxKeyLength bytes (longer ones are cut). A serialized history is therefore at
// most about 64 × (128 + 91 × 3 + 20) bytes ≈ 27 KB while daily counts stay below 16384, and
// typically a few hundred bytes.
//
// Visits: an on-site activity (every type except identify, email_open, email_click, bounce and
// unsubscribe, which happen off the site) more than kVisitGap after the latest on-site activity
// starts a new visit; one within it adds the gap to the time on site. Out-of-order events are
// approximated, not replayed: one before the earliest on-site activity is treated the same way
// in reverse (a new visit if more than kVisitGap before it, else it extends the first visit);
// one inside the range already seen is taken to belong to a visit already counted and adds no
// time. first_seen_at / last_seen_at cover every activity.
class ActivityHistory {
 public:
  static constexpr int kWindowDays = 90;
  static constexpr size_t kMaxKeys = 64;
  static constexpr size_t kMaxBucketsPerKey = kWindowDays + 1;
  static constexpr size_t kMaxKeyLength = 128;
  // Prefix of the per-page-category keys.
  static constexpr absl::string_view kPageCategoryPrefix = "page:";

  // Records one activity; `now` is the processing time, which decides the window (and drops
  // buckets that fell out of it). An activity without occurred_at counts at `now`.
  void Apply(const events::v1::Activity& activity, absl::Time now);

  // Folds `other` — the history of a lead merged into this one (the same person under two ids)
  // — into this one, as of the processing time `now`. Per key: totals add, the latest event time
  // is the later one, day buckets add (a day after tomorrow, possible only when `other` was
  // kept by a clock ahead of `now`, counts as tomorrow). first/last seen and on site are the
  // outer range of both. Visits and time on site add: each activity was attributed to exactly
  // one of the two leads, so their visits were counted apart; a visit that really was one but
  // spanned both ids (rare: one device, two ids within kVisitGap) counts twice — an
  // approximation, like out-of-order visits. Then the window is pruned and the key budget
  // applied as after Apply.
  void MergeFrom(const ActivityHistory& other, absl::Time now);

  // The aggregates as of `now`.
  events::v1::LeadAggregates Aggregates(absl::Time now) const;

  // Compact binary encoding, version 1, canonical (equal histories encode to equal bytes):
  //   "AH" 0x01, then varints: flags (bit 0: seen times present, bit 1: on-site times present),
  //   [first_seen, last_seen] and [first_on_site, last_on_site] as zig-zag Unix nanoseconds,
  //   visits, time on site in nanoseconds, key count; per key in name order: name length, name
  //   bytes, total, last event time (zig-zag Unix nanoseconds), bucket count, then per bucket
  //   in day order the day (zig-zag Unix day for the first, increment for the rest) and count.
  std::string Serialize() const;

  // Decodes Serialize() output; "" is the empty history. DataLoss when the bytes are not a
  // well-formed version-1 history within the bounds above.
  static absl::StatusOr<ActivityHistory> Parse(absl::string_view data);

  // Number of keys and of day buckets of one key (0 if absent); for tests and metrics.
  size_t key_count() const { return keys_.size(); }
  size_t bucket_count(absl::string_view key) const;

  bool operator==(const ActivityHistory&) const = default;

 private:
  struct KeyHistory {
    int64_t total = 0;
    absl::Time last_at = absl::InfinitePast();
    std::map<int64_t, int64_t> days;  // Unix day (UTC) → count
    bool operator==(const KeyHistory&) const = default;
  };

  void Count(std::string key, absl::Time at, int64_t today);
  void RecordVisit(absl::Time at);
  void Prune(int64_t today);
  void EnforceKeyBudget();

  std::map<std::string, KeyHistory, std::less<>> keys_;
  std::optional<absl::Time> first_seen_;
  std::optional<absl::Time> last_seen_;
  std::optional<absl::Time> first_on_site_;
  std::optional<absl::Time> last_on_site_;
  int64_t visits_ = 0;
  absl::Duration time_on_site_ = absl::ZeroDuration();
};

// Applies `activity` to `history` and sets `aggregates` to the result as of `now`.
void ApplyActivity(const events::v1::Activity& activity, absl::Time now, ActivityHistory* history,
                   events::v1::LeadAggregates* aggregates);

// The timeline of a merged lead: the entries of `timelines` (each newest first, as stored)
// as one list, newest first by occurred_at (ties keep the order of `timelines`, then of each
// list), each message_id once (its first appearance; entries without one are all kept), at most
// `cap` entries.
std::vector<events::v1::Activity> MergeTimelines(
    const std::vector<std::vector<events::v1::Activity>>& timelines, size_t cap);

// Recomputes `aggregates` from `history` as of `now`: windows move with time even without new
// activity (e.g. before a scheduled re-score).
void RefreshWindows(absl::Time now, const ActivityHistory& history,
                    events::v1::LeadAggregates* aggregates);

}  // namespace leadflow::tracking
