// Tests of ActivityHistory (services/tracking/engine.h): windows, late events, visits, bounds and
// the binary encoding.

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/rules/time_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/tracking/engine.h"

namespace leadflow::tracking {
namespace {

using events::v1::Activity;
using events::v1::ActivityCounts;
using events::v1::LeadAggregates;
using ::testing::HasSubstr;

absl::Time At(const std::string& rfc3339) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &error)) {
    ADD_FAILURE() << "bad time " << rfc3339 << ": " << error;
  }
  return t;
}

const absl::Time kNow = At("2024-06-30T12:00:00Z");

Activity MakeActivity(const std::string& type, absl::Time at, const std::string& category = "") {
  Activity activity;
  activity.set_message_id(absl::StrCat(type, "@", absl::ToUnixNanos(at)));
  activity.set_type(type);
  activity.set_page_category(category);
  *activity.mutable_occurred_at() = rules::ToTimestamp(at);
  return activity;
}

struct Counts {
  int64_t total, last_1d, last_7d, last_30d, last_90d;
};

void ExpectCounts(const ActivityCounts& counts, Counts want) {
  EXPECT_EQ(counts.total(), want.total);
  EXPECT_EQ(counts.last_1d(), want.last_1d);
  EXPECT_EQ(counts.last_7d(), want.last_7d);
  EXPECT_EQ(counts.last_30d(), want.last_30d);
  EXPECT_EQ(counts.last_90d(), want.last_90d);
}

// ---- Windows ------------------------------------------------------------------------------

TEST(WindowTest, CountsEventsByUtcDayIncludingLateOnes) {
  // Applied out of order: late events land in their own day.
  const std::vector<absl::Time> times = {
      kNow - absl::Hours(24 * 200),  // totals only
      kNow - absl::Hours(1),         // today 11:00
      kNow - absl::Hours(24 * 30),   // 30 days ago
      At("2024-06-30T00:30:00Z"),    // today, just after midnight
      At("2024-06-29T23:30:00Z"),    // yesterday
      kNow - absl::Hours(24 * 89),   // last day of the 90-day window
      kNow - absl::Hours(24 * 6),    // in the 7-day window
      kNow - absl::Hours(24 * 7),    // just outside it
      kNow - absl::Hours(24 * 90),   // just outside the 90-day window
      kNow - absl::Hours(24 * 29),   // in the 30-day window
  };
  ActivityHistory history;
  for (absl::Time t : times) history.Apply(MakeActivity("email_open", t), kNow);
  const LeadAggregates aggregates = history.Aggregates(kNow);
  ASSERT_TRUE(aggregates.by_type().contains("email_open"));
  ExpectCounts(aggregates.by_type().at("email_open"),
               {.total = 10, .last_1d = 2, .last_7d = 4, .last_30d = 6, .last_90d = 8});
  EXPECT_EQ(rules::ToTime(aggregates.by_type().at("email_open").last_at()), kNow - absl::Hours(1));
}

TEST(WindowTest, WindowsMoveWithNow) {
  ActivityHistory history;
  history.Apply(MakeActivity("form_submit", kNow), kNow);
  ExpectCounts(history.Aggregates(kNow + absl::Hours(24 * 3)).by_type().at("form_submit"),
               {.total = 1, .last_1d = 0, .last_7d = 1, .last_30d = 1, .last_90d = 1});
  ExpectCounts(history.Aggregates(kNow + absl::Hours(24 * 45)).by_type().at("form_submit"),
               {.total = 1, .last_1d = 0, .last_7d = 0, .last_30d = 0, .last_90d = 1});
  ExpectCounts(history.Aggregates(kNow + absl::Hours(24 * 120)).by_type().at("form_submit"),
               {.total = 1, .last_1d = 0, .last_7d = 0, .last_30d = 0, .last_90d = 0});
}

TEST(WindowTest, ALateEventDoesNotMoveLastAtBack) {
  ActivityHistory history;
  history.Apply(MakeActivity("download", kNow), kNow);
  history.Apply(MakeActivity("download", kNow - absl::Hours(72)), kNow);
  const ActivityCounts counts = history.Aggregates(kNow).by_type().at("download");
  ExpectCounts(counts, {.total = 2, .last_1d = 1, .last_7d = 2, .last_30d = 2, .last_90d = 2});
  EXPECT_EQ(rules::ToTime(counts.last_at()), kNow);
}

TEST(WindowTest, AnEventJustAfterNowStillCounts) {
  // A receive time slightly ahead of the processing clock puts the event on tomorrow's day.
  ActivityHistory history;
  const absl::Time near_midnight = At("2024-06-30T23:59:00Z");
  history.Apply(MakeActivity("chat", near_midnight + absl::Minutes(5)), near_midnight);
  ExpectCounts(history.Aggregates(near_midnight).by_type().at("chat"),
               {.total = 1, .last_1d = 1, .last_7d = 1, .last_30d = 1, .last_90d = 1});
}

TEST(WindowTest, PageViewsCountPerCategoryToo) {
  ActivityHistory history;
  history.Apply(MakeActivity("page_view", kNow, "pricing"), kNow);
  history.Apply(MakeActivity("page_view", kNow, "pricing"), kNow);
  history.Apply(MakeActivity("page_view", kNow, "blog"), kNow);
  history.Apply(MakeActivity("page_view", kNow), kNow);
  // A category on another type is not a page view of that category.
  history.Apply(MakeActivity("form_submit", kNow, "pricing"), kNow);
  const LeadAggregates aggregates = history.Aggregates(kNow);
  EXPECT_EQ(aggregates.by_type().at("page_view").total(), 4);
  EXPECT_EQ(aggregates.by_type().at("form_submit").total(), 1);
  EXPECT_EQ(aggregates.by_page_category().at("pricing").last_1d(), 2);
  EXPECT_EQ(aggregates.by_page_category().at("blog").total(), 1);
  EXPECT_EQ(aggregates.by_page_category().size(), 2u);
  EXPECT_FALSE(aggregates.by_type().contains("page:pricing"));
}

// ---- Visits -------------------------------------------------------------------------------

TEST(VisitTest, AGapOfMoreThanThirtyMinutesStartsANewVisit) {
  ActivityHistory history;
  for (const char* t : {"2024-06-30T10:00:00Z", "2024-06-30T10:10:00Z", "2024-06-30T10:20:00Z",
                        "2024-06-30T10:50:00Z",  // exactly 30 min: same visit
                        "2024-06-30T11:21:00Z",  // 31 min: new visit
                        "2024-06-30T11:25:00Z"}) {
    history.Apply(MakeActivity("page_view", At(t)), kNow);
  }
  const LeadAggregates aggregates = history.Aggregates(kNow);
  EXPECT_EQ(aggregates.visits(), 2);
  EXPECT_EQ(aggregates.seconds_on_site(), (10 + 10 + 30 + 4) * 60);
  EXPECT_EQ(rules::ToTime(aggregates.first_seen_at()), At("2024-06-30T10:00:00Z"));
  EXPECT_EQ(rules::ToTime(aggregates.last_seen_at()), At("2024-06-30T11:25:00Z"));
}

TEST(VisitTest, OffSiteActivitiesNeitherMakeNorExtendVisits) {
  ActivityHistory history;
  history.Apply(MakeActivity("email_open", At("2024-06-30T09:00:00Z")), kNow);
  history.Apply(MakeActivity("page_view", At("2024-06-30T10:00:00Z")), kNow);
  history.Apply(MakeActivity("email_click", At("2024-06-30T10:20:00Z")), kNow);
  history.Apply(MakeActivity("identify", At("2024-06-30T10:40:00Z")), kNow);
  history.Apply(MakeActivity("page_view", At("2024-06-30T10:45:00Z")), kNow);  // 45 min later
  const LeadAggregates aggregates = history.Aggregates(kNow);
  EXPECT_EQ(aggregates.visits(), 2);
  EXPECT_EQ(aggregates.seconds_on_site(), 0);
  // Seen times cover every activity.
  EXPECT_EQ(rules::ToTime(aggregates.first_seen_at()), At("2024-06-30T09:00:00Z"));
  EXPECT_EQ(rules::ToTime(aggregates.last_seen_at()), At("2024-06-30T10:45:00Z"));
}

TEST(VisitTest, OutOfOrderEventsAreApproximated) {
  ActivityHistory history;
  history.Apply(MakeActivity("page_view", At("2024-06-30T10:00:00Z")), kNow);
  history.Apply(MakeActivity("page_view", At("2024-06-30T10:20:00Z")), kNow);
  ASSERT_EQ(history.Aggregates(kNow).visits(), 1);
  ASSERT_EQ(history.Aggregates(kNow).seconds_on_site(), 20 * 60);

  // Inside the range already seen: part of a counted visit, adds nothing.
  history.Apply(MakeActivity("page_view", At("2024-06-30T10:05:00Z")), kNow);
  EXPECT_EQ(history.Aggregates(kNow).visits(), 1);
  EXPECT_EQ(history.Aggregates(kNow).seconds_on_site(), 20 * 60);

  // Just before the first: extends the first visit.
  history.Apply(MakeActivity("page_view", At("2024-06-30T09:50:00Z")), kNow);
  EXPECT_EQ(history.Aggregates(kNow).visits(), 1);
  EXPECT_EQ(history.Aggregates(kNow).seconds_on_site(), 30 * 60);

  // Long before the first: an earlier visit.
  history.Apply(MakeActivity("page_view", At("2024-06-30T08:00:00Z")), kNow);
  EXPECT_EQ(history.Aggregates(kNow).visits(), 2);
  EXPECT_EQ(history.Aggregates(kNow).seconds_on_site(), 30 * 60);
  EXPECT_EQ(rules::ToTime(history.Aggregates(kNow).first_seen_at()), At("2024-06-30T08:00:00Z"));
}

TEST(VisitTest, AnEmptyHistoryHasNoVisitsAndNoSeenTimes) {
  const LeadAggregates aggregates = ActivityHistory().Aggregates(kNow);
  EXPECT_EQ(aggregates.visits(), 0);
  EXPECT_FALSE(aggregates.has_first_seen_at());
  EXPECT_FALSE(aggregates.has_last_seen_at());
  EXPECT_TRUE(aggregates.by_type().empty());
}

// ---- Bounds -------------------------------------------------------------------------------

TEST(BoundsTest, KeepsAtMost64KeysDroppingTheStalest) {
  ActivityHistory history;
  for (int i = 0; i < 70; ++i) {
    history.Apply(MakeActivity(absl::StrFormat("type_%02d", i), kNow + absl::Minutes(i)),
                  kNow + absl::Hours(1));
  }
  EXPECT_EQ(history.key_count(), ActivityHistory::kMaxKeys);
  const LeadAggregates aggregates = history.Aggregates(kNow);
  for (int i = 0; i < 6; ++i)
    EXPECT_FALSE(aggregates.by_type().contains(absl::StrFormat("type_%02d", i)));
  for (int i = 6; i < 70; ++i)
    EXPECT_TRUE(aggregates.by_type().contains(absl::StrFormat("type_%02d", i)));
}

TEST(BoundsTest, KeepsAtMost91DayBucketsPerKey) {
  ActivityHistory history;
  const absl::Time start = kNow - absl::Hours(24 * 300);
  for (int day = 0; day <= 300; ++day) {
    const absl::Time t = start + absl::Hours(24 * day);
    history.Apply(MakeActivity("page_view", t), t);
  }
  // And one dated tomorrow: the 91st bucket.
  history.Apply(MakeActivity("page_view", kNow + absl::Hours(20)), kNow);
  EXPECT_EQ(history.bucket_count("page_view"), ActivityHistory::kMaxBucketsPerKey);
  const ActivityCounts counts = history.Aggregates(kNow).by_type().at("page_view");
  EXPECT_EQ(counts.total(), 302);
  EXPECT_EQ(counts.last_90d(), 91);  // the 90 days up to today, and tomorrow
}

TEST(BoundsTest, LongKeysAreCut) {
  ActivityHistory history;
  history.Apply(MakeActivity(std::string(300, 'x'), kNow), kNow);
  const LeadAggregates aggregates = history.Aggregates(kNow);
  ASSERT_EQ(aggregates.by_type().size(), 1u);
  EXPECT_EQ(aggregates.by_type().begin()->first.size(), ActivityHistory::kMaxKeyLength);
}

// ---- Serialization ------------------------------------------------------------------------

ActivityHistory RichHistory() {
  ActivityHistory history;
  history.Apply(MakeActivity("identify", kNow - absl::Hours(24 * 120)), kNow);
  history.Apply(MakeActivity("page_view", kNow - absl::Hours(30), "pricing"), kNow);
  history.Apply(MakeActivity("page_view", kNow - absl::Hours(29), "blog"), kNow);
  history.Apply(MakeActivity("email_open", kNow - absl::Hours(24 * 10)), kNow);
  history.Apply(MakeActivity("demo_request", kNow + absl::Nanoseconds(123)), kNow);
  return history;
}

TEST(SerializationTest, RoundTripsExactly) {
  const ActivityHistory history = RichHistory();
  const std::string bytes = history.Serialize();
  absl::StatusOr<ActivityHistory> parsed = ActivityHistory::Parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(*parsed == history);
  EXPECT_EQ(parsed->Serialize(), bytes);  // canonical
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(parsed->Aggregates(kNow),
                                                                 history.Aggregates(kNow)));
  EXPECT_LT(bytes.size(), 200u);
}

TEST(SerializationTest, TheEmptyStringIsTheEmptyHistory) {
  absl::StatusOr<ActivityHistory> parsed = ActivityHistory::Parse("");
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(*parsed == ActivityHistory());
  absl::StatusOr<ActivityHistory> reparsed = ActivityHistory::Parse(ActivityHistory().Serialize());
  ASSERT_TRUE(reparsed.ok());
  EXPECT_TRUE(*reparsed == ActivityHistory());
}

TEST(SerializationTest, AFullHistoryStaysSmall) {
  ActivityHistory history;
  for (int key = 0; key < 64; ++key) {
    const std::string type = absl::StrCat(std::string(125, 'k'), absl::StrFormat("%03d", key));
    for (int day = -1; day < 90; ++day) {  // tomorrow and the 90 window days
      for (int n = 0; n < 3; ++n) {
        history.Apply(MakeActivity(type, kNow - absl::Hours(24 * day) + absl::Minutes(n)), kNow);
      }
    }
  }
  ASSERT_EQ(history.key_count(), ActivityHistory::kMaxKeys);
  const std::string bytes = history.Serialize();
  EXPECT_LT(bytes.size(), 27u * 1024);  // the bound engine.h documents
  absl::StatusOr<ActivityHistory> parsed = ActivityHistory::Parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(*parsed == history);
  EXPECT_EQ(parsed->bucket_count(std::string(125, 'k') + "000"),
            ActivityHistory::kMaxBucketsPerKey);
}

struct CorruptCase {
  std::string name;
  std::string bytes;
  std::string message;
};

class CorruptHistoryTest : public ::testing::TestWithParam<CorruptCase> {};

TEST_P(CorruptHistoryTest, IsDataLoss) {
  absl::StatusOr<ActivityHistory> parsed = ActivityHistory::Parse(GetParam().bytes);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(GetParam().message));
}

// Header "AH" v1, no times, 0 visits, 0 time on site; then the key section.
std::string Header() { return std::string("AH\x01\x00\x00\x00", 6); }

// One key: name, total, last_at 0, no buckets.
std::string Key(const std::string& name, char total) {
  return std::string(1, static_cast<char>(name.size())) + name + std::string{total, '\x00', '\x00'};
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CorruptHistoryTest,
    ::testing::Values(
        CorruptCase{"BadMagic", "XY\x01", "bad magic"},
        CorruptCase{"NewerVersion", std::string("AH\x02\x00", 4),
                    "unsupported activity history version 2"},
        CorruptCase{"TruncatedHeader", "AH", "truncated"},
        CorruptCase{"Truncated", RichHistory().Serialize().substr(0, 20), "corrupt"},
        CorruptCase{"TrailingBytes", RichHistory().Serialize() + "x", "trailing bytes"},
        CorruptCase{"UnknownFlags", std::string("AH\x01\x04", 4), "bad flags"},
        CorruptCase{"TooManyKeys", Header() + "\x41", "bad key count"},
        CorruptCase{"KeysOutOfOrder", Header() + "\x02" + Key("b", 1) + Key("a", 1),
                    "keys out of order"},
        CorruptCase{"DuplicateKeys", Header() + "\x02" + Key("a", 1) + Key("a", 1),
                    "keys out of order"},
        CorruptCase{"ZeroTotal", Header() + "\x01" + Key("a", 0), "bad key"},
        CorruptCase{"EmptyKeyName", Header() + std::string("\x01\x00", 2), "bad key name"},
        CorruptCase{"BucketsExceedTotal",
                    Header() + "\x01" +
                        std::string("\x01"
                                    "a"
                                    "\x01\x00\x01\x00\x02",
                                    7),
                    "bad bucket count"},
        CorruptCase{"TooManyBuckets",
                    Header() + "\x01" +
                        std::string("\x01"
                                    "a"
                                    "\x7F\x00\x5C",
                                    5),
                    "bad key"},
        CorruptCase{"SeenTimesBackwards", std::string("AH\x01\x01\x04\x02", 6), "bad seen times"}),
    [](const ::testing::TestParamInfo<CorruptCase>& info) { return info.param.name; });

TEST(SerializationTest, HandCraftedCanonicalBytesParse) {
  absl::StatusOr<ActivityHistory> parsed =
      ActivityHistory::Parse(Header() + "\x02" + Key("a", 1) + Key("b", 2));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->key_count(), 2u);
}

// ---- Wrappers -----------------------------------------------------------------------------

TEST(ApplyActivityTest, UpdatesHistoryAndAggregatesTogether) {
  ActivityHistory history;
  LeadAggregates aggregates;
  ApplyActivity(MakeActivity("form_submit", kNow), kNow, &history, &aggregates);
  EXPECT_EQ(aggregates.by_type().at("form_submit").last_1d(), 1);
  RefreshWindows(kNow + absl::Hours(24 * 8), history, &aggregates);
  EXPECT_EQ(aggregates.by_type().at("form_submit").last_1d(), 0);
  EXPECT_EQ(aggregates.by_type().at("form_submit").last_30d(), 1);
}

TEST(ApplyActivityTest, AnActivityWithoutTimeCountsAtNow) {
  ActivityHistory history;
  Activity activity = MakeActivity("chat", kNow);
  activity.clear_occurred_at();
  history.Apply(activity, kNow);
  EXPECT_EQ(rules::ToTime(history.Aggregates(kNow).last_seen_at()), kNow);
}

// ---- Merging two leads' histories -----------------------------------------------------------

// The history of `activities` applied in order at `now`.
ActivityHistory HistoryOf(const std::vector<Activity>& activities, absl::Time now = kNow) {
  ActivityHistory h;
  for (const Activity& a : activities) h.Apply(a, now);
  return h;
}

TEST(MergeHistoryTest, CountsAddInEveryWindowAndLastAtIsTheLater) {
  ActivityHistory survivor = HistoryOf({MakeActivity("page_view", kNow - absl::Hours(1)),
                                        MakeActivity("demo_request", kNow - absl::Hours(24 * 20))});
  const ActivityHistory absorbed =
      HistoryOf({MakeActivity("page_view", kNow - absl::Hours(24 * 3)),
                 MakeActivity("page_view", kNow - absl::Hours(24 * 200)),  // totals only
                 MakeActivity("demo_request", kNow - absl::Hours(2)),
                 MakeActivity("download", kNow - absl::Hours(24 * 60))});
  survivor.MergeFrom(absorbed, kNow);
  const LeadAggregates a = survivor.Aggregates(kNow);
  ExpectCounts(a.by_type().at("page_view"), {3, 1, 2, 2, 2});
  ExpectCounts(a.by_type().at("demo_request"), {2, 1, 1, 2, 2});
  ExpectCounts(a.by_type().at("download"), {1, 0, 0, 0, 1});
  EXPECT_EQ(rules::ToTime(a.by_type().at("demo_request").last_at()), kNow - absl::Hours(2));
  EXPECT_EQ(rules::ToTime(a.by_type().at("page_view").last_at()), kNow - absl::Hours(1));
}

TEST(MergeHistoryTest, MergedAggregatesEqualOneHistoryOfEveryActivityWhenVisitsAreApart) {
  // Two leads' visits days apart: merging equals having recorded everything under one id.
  const std::vector<Activity> mine = {
      MakeActivity("page_view", kNow - absl::Hours(48), "pricing"),
      MakeActivity("page_view", kNow - absl::Hours(48) + absl::Minutes(10), "blog"),
      MakeActivity("email_open", kNow - absl::Hours(30))};
  const std::vector<Activity> theirs = {
      MakeActivity("page_view", kNow - absl::Hours(5), "pricing"),
      MakeActivity("form_submit", kNow - absl::Hours(5) + absl::Minutes(4)),
      MakeActivity("page_view", kNow - absl::Hours(24 * 10), "docs")};
  ActivityHistory merged = HistoryOf(mine);
  merged.MergeFrom(HistoryOf(theirs), kNow);
  std::vector<Activity> all = mine;
  all.insert(all.end(), theirs.begin(), theirs.end());
  std::sort(all.begin(), all.end(), [](const Activity& a, const Activity& b) {
    return rules::ToTime(a.occurred_at()) < rules::ToTime(b.occurred_at());
  });
  const LeadAggregates want = HistoryOf(all).Aggregates(kNow);
  const LeadAggregates got = merged.Aggregates(kNow);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got, want))
      << "got " << got.DebugString() << "\nwant " << want.DebugString();
  EXPECT_EQ(got.visits(), 3);
  EXPECT_EQ(got.seconds_on_site(), 14 * 60);
  EXPECT_EQ(rules::ToTime(got.first_seen_at()), kNow - absl::Hours(24 * 10));
  EXPECT_EQ(rules::ToTime(got.last_seen_at()), kNow - absl::Hours(5) + absl::Minutes(4));
  ExpectCounts(got.by_page_category().at("pricing"), {2, 1, 2, 2, 2});
}

TEST(MergeHistoryTest, MergingAnEmptyHistoryChangesNothingAndIntoOneCopiesIt) {
  const ActivityHistory some = HistoryOf({MakeActivity("page_view", kNow - absl::Hours(3)),
                                          MakeActivity("chat", kNow - absl::Hours(2))});
  ActivityHistory a = some;
  a.MergeFrom(ActivityHistory(), kNow);
  EXPECT_EQ(a, some);
  ActivityHistory empty;
  empty.MergeFrom(some, kNow);
  EXPECT_EQ(empty.Serialize(), some.Serialize());
}

TEST(MergeHistoryTest, BucketsOutsideTheWindowAtMergeTimeArePruned) {
  // The absorbed history was last touched 80 days before the merge: days it saw that the 90-day
  // window at merge time no longer covers count in the totals only.
  const absl::Time then = kNow - absl::Hours(24 * 80);
  const ActivityHistory absorbed =
      HistoryOf({MakeActivity("page_view", then - absl::Hours(24 * 20))}, then);
  ActivityHistory survivor;
  survivor.MergeFrom(absorbed, kNow);
  EXPECT_EQ(survivor.bucket_count("page_view"), 0u);
  ExpectCounts(survivor.Aggregates(kNow).by_type().at("page_view"), {1, 0, 0, 0, 0});
}

TEST(MergeHistoryTest, TheKeyBudgetHoldsAfterAMerge) {
  std::vector<Activity> mine, theirs;
  for (int i = 0; i < 40; ++i) {
    mine.push_back(MakeActivity(absl::StrCat("mine_", i), kNow - absl::Hours(100 - i)));
    theirs.push_back(MakeActivity(absl::StrCat("theirs_", i), kNow - absl::Hours(50 - i)));
  }
  ActivityHistory merged = HistoryOf(mine);
  merged.MergeFrom(HistoryOf(theirs), kNow);
  EXPECT_EQ(merged.key_count(), ActivityHistory::kMaxKeys);
  const LeadAggregates a = merged.Aggregates(kNow);
  EXPECT_FALSE(a.by_type().contains("mine_0")) << "the stalest keys go";
  EXPECT_TRUE(a.by_type().contains("theirs_0"));
  // Still a well-formed history.
  absl::StatusOr<ActivityHistory> parsed = ActivityHistory::Parse(merged.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, merged);
}

TEST(MergeHistoryTest, ABucketAheadOfTheMergeClockCountsAsTomorrow) {
  // Kept by a replica whose clock ran two days ahead.
  const absl::Time ahead = kNow + absl::Hours(48);
  const ActivityHistory absorbed = HistoryOf({MakeActivity("chat", ahead)}, ahead);
  ActivityHistory survivor;
  survivor.MergeFrom(absorbed, kNow);
  EXPECT_EQ(survivor.bucket_count("chat"), 1u);
  absl::StatusOr<ActivityHistory> parsed = ActivityHistory::Parse(survivor.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectCounts(survivor.Aggregates(kNow + absl::Hours(24)).by_type().at("chat"), {1, 1, 1, 1, 1});
}

// ---- Merging timelines ----------------------------------------------------------------------

std::vector<std::string> Ids(const std::vector<Activity>& timeline) {
  std::vector<std::string> ids;
  for (const Activity& a : timeline) ids.push_back(a.message_id());
  return ids;
}

Activity Entry(const std::string& id, absl::Time at) {
  Activity a = MakeActivity("page_view", at);
  a.set_message_id(id);
  return a;
}

TEST(MergeTimelinesTest, InterleavesNewestFirstDropsRepeatsAndCaps) {
  const std::vector<Activity> mine = {Entry("m3", kNow - absl::Hours(1)),
                                      Entry("m2", kNow - absl::Hours(3)),
                                      Entry("m1", kNow - absl::Hours(5))};
  const std::vector<Activity> theirs = {Entry("t2", kNow - absl::Hours(2)),
                                        Entry("m2", kNow - absl::Hours(3)),  // seen twice
                                        Entry("t1", kNow - absl::Hours(4))};
  EXPECT_THAT(Ids(MergeTimelines({mine, theirs}, 100)),
              ::testing::ElementsAre("m3", "t2", "m2", "t1", "m1"));
  EXPECT_THAT(Ids(MergeTimelines({mine, theirs}, 3)), ::testing::ElementsAre("m3", "t2", "m2"));
  EXPECT_THAT(Ids(MergeTimelines({{}, theirs}, 100)), ::testing::ElementsAre("t2", "m2", "t1"));
  EXPECT_TRUE(MergeTimelines({}, 100).empty());
}

TEST(MergeTimelinesTest, TiesKeepTheOrderOfTheListsAndEntriesWithoutIdStay) {
  const std::vector<Activity> mine = {Entry("", kNow), Entry("a", kNow - absl::Hours(1))};
  const std::vector<Activity> theirs = {Entry("", kNow), Entry("b", kNow - absl::Hours(1))};
  const std::vector<Activity> merged = MergeTimelines({mine, theirs}, 10);
  EXPECT_THAT(Ids(merged), ::testing::ElementsAre("", "", "a", "b"));
}

}  // namespace
}  // namespace leadflow::tracking
