// Tests for the per-lead state machine of nurturing (enrollment.h) with plain values and a
// simulated time: recycling lost leads, exits on outcomes, routing, goals, bounces and
// unsubscribes, branch state from activity, and the enrolment events each change makes.
#include "services/nurturing/enrollment.h"

#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/rules/field_source.h"
#include "common/rules/time_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "services/nurturing/scheduler.h"

namespace leadflow::nurturing {
namespace {

using events::v1::LeadOutcome;
using events::v1::NurtureEnrollmentChanged;
using internal::v1::NurtureLeadState;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 10, 0, 0), absl::UTCTimeZone());

constexpr char kTracks[] = R"pb(
  version: "v7"
  tracks {
    id: "lost-recycle"
    priority: 30
    recycle_lost: true
    enroll_when { field: "stage" equals: "lost" }
    steps { channel: CHANNEL_EMAIL content_id: "recycle" delay_hours: 720 }
  }
  tracks {
    id: "warm"
    priority: 20
    enroll_when { field: "category" equals: "warm" }
    goal { field: "category" equals: "qualified" }
    steps { channel: CHANNEL_EMAIL content_id: "case-study" }
    steps {
      channel: CHANNEL_EMAIL
      content_id: "pricing"
      delay_hours: 48
      if_previous { kind: KIND_OPENED within_days: 2 step: 0 }
    }
    steps {
      channel: CHANNEL_EMAIL
      content_id: "reminder"
      if_previous { kind: KIND_NOT_ACTED within_days: 2 step: 0 }
    }
  }
  tracks {
    id: "qualified"
    priority: 22
    enroll_when { field: "category" equals: "qualified" }
    steps { channel: CHANNEL_EMAIL content_id: "demo-offer" }
  }
  tracks {
    id: "cold"
    priority: 10
    reenroll_after_days: 30
    enroll_when { field: "category" equals: "cold" }
    steps { channel: CHANNEL_EMAIL content_id: "w1" }
    steps { channel: CHANNEL_SMS content_id: "w2" delay_hours: 72 }
  }
)pb";

class EnrollmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::v1::NurtureTracks file;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(kTracks, &file));
    auto compiled = CompileNurtureTracks(file);
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    tracks_ = *compiled;
  }

  events::v1::LeadScored Scored(events::v1::Category category,
                                events::v1::LifecycleStage stage = events::v1::STAGE_ENGAGED) {
    events::v1::LeadScored event;
    event.mutable_envelope()->set_event_id(absl::StrCat("scored-", ++seq_));
    event.mutable_lead()->set_lead_id("L-1");
    event.mutable_lead()->set_email("ada@shoeco.example");
    events::v1::Consent* consent = event.mutable_lead()->add_consents();
    consent->set_channel(events::v1::CHANNEL_EMAIL);
    consent->set_granted(true);
    *consent->mutable_at() = rules::ToTimestamp(kStart - absl::Hours(24));
    event.mutable_score()->set_category(category);
    event.mutable_score()->set_stage(stage);
    return event;
  }
  LeadOutcome Outcome(LeadOutcome::Kind kind, const std::string& reason) {
    LeadOutcome outcome;
    outcome.mutable_envelope()->set_event_id(absl::StrCat("outcome-", ++seq_));
    outcome.set_kind(kind);
    outcome.set_reason(reason);
    return outcome;
  }
  // Applies `change` to state_ and returns "<kind> <track> <reason>" for every event it made.
  template <typename F>
  std::vector<std::string> Change(F change) {
    const NurtureLeadState before = state_;
    change(state_);
    std::vector<std::string> out;
    for (const NurtureEnrollmentChanged& e : EnrollmentChanges(before, state_, "cause", now_)) {
      out.push_back(absl::StrCat(rules::EnumValueName(e.kind()), " ", e.track_id(),
                                 e.reason().empty() ? "" : " ", e.reason()));
      ids_.push_back(e.envelope().event_id());
    }
    return out;
  }
  std::vector<std::string> Score(events::v1::Category category,
                                 events::v1::LifecycleStage stage = events::v1::STAGE_ENGAGED) {
    const events::v1::LeadScored event = Scored(category, stage);
    return Change(
        [&](NurtureLeadState& s) { ApplyScored(s, "L-1", event, *tracks_, policy_, now_); });
  }
  // The scheduler's decision at now_, applied (a send is confirmed at once).
  DueDecision Due() {
    DueDecision decision;
    Change([&](NurtureLeadState& s) {
      decision = DecideDue(s, *tracks_, policy_, now_);
      s = decision.state;
      if (decision.kind == DueDecision::Kind::kSend) ApplyDelivered(s, decision.touch_id);
    });
    return decision;
  }

  std::shared_ptr<const CompiledNurtureTracks> tracks_;
  NurturingPolicy policy_;
  NurtureLeadState state_;
  absl::Time now_ = kStart;
  std::vector<std::string> ids_;
  int seq_ = 0;
};

TEST_F(EnrollmentTest, ALostLeadIsRecycledAtOnceDespiteTheCooldownWithItsReason) {
  EXPECT_THAT(Score(events::v1::CATEGORY_COLD), ElementsAre("enrolled cold"));
  now_ += absl::Hours(1);
  EXPECT_THAT(Score(events::v1::CATEGORY_SALES_READY, events::v1::STAGE_QUALIFIED),
              ElementsAre("exited cold sales_ready"));
  now_ += absl::Hours(24);
  // Scoring's report of the loss alone waits for the cooldown ...
  EXPECT_THAT(Score(events::v1::CATEGORY_SALES_READY, events::v1::STAGE_LOST), IsEmpty());
  EXPECT_TRUE(state_.has_reconsider_at());
  // ... the outcome from sales does not.
  const LeadOutcome lost = Outcome(LeadOutcome::KIND_LOST, "no budget");
  EXPECT_THAT(
      Change([&](NurtureLeadState& s) { ApplyOutcome(s, "L-1", lost, *tracks_, policy_, now_); }),
      ElementsAre("enrolled lost-recycle lost: no budget"));
  EXPECT_EQ(state_.current().recycle_reason(), "lost: no budget");
  EXPECT_FALSE(state_.recycle_pending());
  EXPECT_EQ(ids_.back(), "L-1:lost-recycle:1:enrolled");

  // Its first touch, 30 days on, carries the reason.
  now_ += absl::Hours(720);
  const DueDecision due = Due();
  ASSERT_EQ(due.kind, DueDecision::Kind::kSend);
  EXPECT_EQ(due.touch.content_id(), "recycle");
  EXPECT_EQ(due.touch.personalisation().at("lost_reason"), "lost: no budget");
}

TEST_F(EnrollmentTest, ASentTouchHoldsTheLeadUntilDeliveredAndWakeUpAtOnceDeliveredSaysWhenNext) {
  Score(events::v1::CATEGORY_COLD);
  const DueDecision sent = DecideDue(state_, *tracks_, policy_, now_);
  ASSERT_EQ(sent.kind, DueDecision::Kind::kSend);
  EXPECT_EQ(WakeUpAt(sent.state), std::nullopt) << "in flight: only the delivery moves it";
  // The second step of the cold track is due 72 hours after the first.
  EXPECT_EQ(WakeUpAtOnceDelivered(sent.state), now_ + absl::Hours(72));
  NurtureLeadState delivered = sent.state;
  ASSERT_TRUE(ApplyDelivered(delivered, sent.touch_id));
  EXPECT_EQ(WakeUpAt(delivered), WakeUpAtOnceDelivered(sent.state));
}

TEST_F(EnrollmentTest, WonAndRoutedLeadsExit) {
  Score(events::v1::CATEGORY_COLD);
  EXPECT_THAT(Change([&](NurtureLeadState& s) { ApplyRouted(s, policy_, now_); }),
              ElementsAre("exited cold routed"));
  EXPECT_THAT(Change([&](NurtureLeadState& s) { ApplyRouted(s, policy_, now_); }), IsEmpty());

  state_.Clear();
  Score(events::v1::CATEGORY_COLD);
  const LeadOutcome won = Outcome(LeadOutcome::KIND_WON, "");
  EXPECT_THAT(
      Change([&](NurtureLeadState& s) { ApplyOutcome(s, "L-1", won, *tracks_, policy_, now_); }),
      ElementsAre("exited cold converted"));
  // A converted lead is not enrolled again, even long after the cooldown.
  now_ += absl::Hours(24 * 60);
  EXPECT_THAT(Score(events::v1::CATEGORY_COLD, events::v1::STAGE_CUSTOMER), IsEmpty());
}

TEST_F(EnrollmentTest, AMergedLeadExitsAndIsNeverEnrolledAgain) {
  Score(events::v1::CATEGORY_COLD);
  EXPECT_THAT(Change([&](NurtureLeadState& s) { ApplyMerged(s, policy_, now_); }),
              ElementsAre("exited cold merged"));
  EXPECT_EQ(state_.current().exit_reason(), "merged");
  // Again (a re-delivery of the merge): nothing changes.
  EXPECT_THAT(Change([&](NurtureLeadState& s) { EXPECT_FALSE(ApplyMerged(s, policy_, now_)); }),
              IsEmpty());
  // A late scored event of the old id, long after any cooldown, enrols nothing.
  now_ += absl::Hours(24 * 365);
  EXPECT_THAT(Score(events::v1::CATEGORY_WARM), IsEmpty());
  EXPECT_FALSE(state_.current().state() == internal::v1::NURTURE_ENROLLMENT_ACTIVE);
  // A lead merged before it was ever enrolled is marked all the same.
  state_.Clear();
  EXPECT_THAT(Change([&](NurtureLeadState& s) { EXPECT_TRUE(ApplyMerged(s, policy_, now_)); }),
              IsEmpty());
  EXPECT_THAT(Score(events::v1::CATEGORY_COLD), IsEmpty());
}

TEST_F(EnrollmentTest, ReachingTheGoalHandsTheLeadToTheNextTrackAtOnce) {
  Score(events::v1::CATEGORY_WARM);
  now_ += absl::Hours(1);
  // Qualified is warm's goal and the qualified track's entry: no cooldown in between.
  EXPECT_THAT(Score(events::v1::CATEGORY_QUALIFIED),
              ElementsAre("exited warm goal_reached", "enrolled qualified"));
  EXPECT_EQ(state_.past(0).track_id(), "warm");
  EXPECT_EQ(Due().touch.content_id(), "demo-offer");
}

TEST_F(EnrollmentTest, ALeadMovesToATrackOfHigherPriorityThatStartsToMatch) {
  EXPECT_THAT(Score(events::v1::CATEGORY_COLD), ElementsAre("enrolled cold"));
  ASSERT_EQ(Due().touch.content_id(), "w1");
  now_ += absl::Hours(5);
  EXPECT_THAT(Score(events::v1::CATEGORY_WARM),
              ElementsAre("exited cold switched_track", "enrolled warm"));
  EXPECT_EQ(Due().touch.content_id(), "case-study");
  // Back to cold: a lower priority never pulls a lead out of its track.
  now_ += absl::Hours(1);
  EXPECT_THAT(Score(events::v1::CATEGORY_COLD), IsEmpty());
  EXPECT_EQ(state_.current().track_id(), "warm");
}

TEST_F(EnrollmentTest, AnExhaustedTrackIsEnteredAgainOnlyAfterItsReenrolmentPeriod) {
  Score(events::v1::CATEGORY_COLD);
  ASSERT_EQ(Due().kind, DueDecision::Kind::kSend);
  now_ += absl::Hours(72);
  // The SMS step has no consent: skipped, and the track is exhausted.
  Due();
  ASSERT_EQ(state_.current().state(), internal::v1::NURTURE_ENROLLMENT_COMPLETED);
  const absl::Time finished = now_;

  now_ = finished + absl::Hours(24 * 10);  // past the 7-day cooldown, inside the 30 days
  EXPECT_THAT(Score(events::v1::CATEGORY_COLD), IsEmpty());
  ASSERT_TRUE(state_.has_reconsider_at());
  EXPECT_EQ(rules::ToTime(state_.reconsider_at()), finished + absl::Hours(24 * 30));
  now_ = finished + absl::Hours(24 * 30);
  EXPECT_THAT(Score(events::v1::CATEGORY_COLD), ElementsAre("enrolled cold"));
  EXPECT_EQ(state_.current().attempt(), 2);

  // The warm track sets no period: finished once, never again.
  state_.Clear();
  Score(events::v1::CATEGORY_WARM);
  Due();
  now_ += absl::Hours(48);
  Due();  // neither branch applies without an open or after the 2 days: exhausted
  Due();
  ASSERT_EQ(state_.current().state(), internal::v1::NURTURE_ENROLLMENT_COMPLETED);
  now_ += absl::Hours(24 * 365);
  EXPECT_THAT(Score(events::v1::CATEGORY_WARM), IsEmpty());
  EXPECT_FALSE(state_.has_reconsider_at());
}

TEST_F(EnrollmentTest, OpensOfTheCaseStudyPickTheBranch) {
  Score(events::v1::CATEGORY_WARM);
  const DueDecision first = Due();
  ASSERT_EQ(first.kind, DueDecision::Kind::kSend);
  now_ += absl::Hours(30);
  events::v1::Activity open;
  open.set_type("email_open");
  open.set_touch_id(first.touch_id);
  *open.mutable_occurred_at() = rules::ToTimestamp(now_);
  EXPECT_TRUE(IsNurtureActivity(open));
  EXPECT_TRUE(ApplyActivity(state_, open, *tracks_, policy_, now_));
  EXPECT_FALSE(ApplyActivity(state_, open, *tracks_, policy_, now_));  // first open counts

  now_ = kStart + absl::Hours(48);
  const DueDecision second = Due();
  ASSERT_EQ(second.kind, DueDecision::Kind::kSend);
  EXPECT_EQ(second.touch.content_id(), "pricing");
  // The reminder (not acted on step 0) is skipped and the track is exhausted.
  EXPECT_THAT(Change([&](NurtureLeadState& s) { s = DecideDue(s, *tracks_, policy_, now_).state; }),
              ElementsAre("exhausted warm"));
  EXPECT_EQ(state_.current().steps_skipped(), 1);
}

TEST_F(EnrollmentTest, AHardBounceOrAnUnsubscribeEndsTheTrack) {
  Score(events::v1::CATEGORY_COLD);
  events::v1::Activity bounce;
  bounce.set_type("email_hard_bounce");
  EXPECT_THAT(
      Change([&](NurtureLeadState& s) { ApplyActivity(s, bounce, *tracks_, policy_, now_); }),
      ElementsAre("exited cold hard_bounce"));

  // The cold track's second step is an SMS: unsubscribing from e-mail alone leaves it reachable
  // only if SMS is consented; it is not, so the lead leaves.
  state_.Clear();
  now_ += absl::Hours(24 * 30);
  Score(events::v1::CATEGORY_COLD);
  events::v1::Activity unsubscribe;
  unsubscribe.set_type("email_unsubscribe");
  EXPECT_THAT(
      Change([&](NurtureLeadState& s) { ApplyActivity(s, unsubscribe, *tracks_, policy_, now_); }),
      ElementsAre("exited cold unsubscribed"));

  events::v1::Activity page_view;
  page_view.set_type("page_view");
  EXPECT_FALSE(IsNurtureActivity(page_view));
}

TEST_F(EnrollmentTest, AProfileThatWithdrawsConsentLeavesTheTrack) {
  Score(events::v1::CATEGORY_COLD);
  events::v1::LeadScored withdrawn = Scored(events::v1::CATEGORY_COLD);
  events::v1::Consent* consent = withdrawn.mutable_lead()->add_consents();
  consent->set_channel(events::v1::CHANNEL_EMAIL);
  consent->set_granted(false);
  *consent->mutable_at() = rules::ToTimestamp(now_);
  EXPECT_THAT(Change([&](NurtureLeadState& s) {
                ApplyScored(s, "L-1", withdrawn, *tracks_, policy_, now_);
              }),
              ElementsAre("exited cold consent_withdrawn"));
}

TEST_F(EnrollmentTest, PauseAndResumeAreEventsWithDistinctIds) {
  Score(events::v1::CATEGORY_COLD);
  EXPECT_THAT(Change([&](NurtureLeadState& s) { ASSERT_TRUE(ApplyPause(s, now_).ok()); }),
              ElementsAre("paused cold"));
  now_ += absl::Hours(1);
  EXPECT_THAT(Change([&](NurtureLeadState& s) { ASSERT_TRUE(ApplyResume(s, now_).ok()); }),
              ElementsAre("resumed cold"));
  EXPECT_THAT(Change([&](NurtureLeadState& s) { ASSERT_TRUE(ApplyPause(s, now_).ok()); }),
              ElementsAre("paused cold"));
  const std::string ms = absl::StrCat(absl::ToUnixMillis(kStart));
  ASSERT_EQ(ids_.size(), 4u);
  EXPECT_EQ(ids_[0], "L-1:cold:1:enrolled");
  EXPECT_EQ(ids_[1], "L-1:cold:1:paused:" + ms);
  EXPECT_EQ(ids_[2], "L-1:cold:1:resumed:" + ms);
  EXPECT_NE(ids_[3], ids_[1]);
}

TEST(SchedulerOptionsTest, TheDrainRateIsConfiguredPerSecond) {
  config::v1::Scheduling scheduling;
  absl::StatusOr<SchedulerOptions> defaults = SchedulerOptionsFrom(scheduling);
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->interval, absl::Milliseconds(150));
  EXPECT_EQ(defaults->max_claims_per_pass, 3000);  // 20000/s
  scheduling.set_interval_ms(200);
  scheduling.set_max_touches_per_second(1000);
  scheduling.set_lease_seconds(30);
  absl::StatusOr<SchedulerOptions> set = SchedulerOptionsFrom(scheduling);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->max_claims_per_pass, 200);
  EXPECT_EQ(set->lease, absl::Seconds(30));
  scheduling.set_max_touches_per_second(1);  // never zero per pass
  EXPECT_EQ(SchedulerOptionsFrom(scheduling)->max_claims_per_pass, 1);
  scheduling.set_max_touches_per_second(-5);
  EXPECT_EQ(SchedulerOptionsFrom(scheduling).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace leadflow::nurturing
