// Integration tests of the scoring service's handler and gRPC service against a real
// redis-server (no Kafka): messages are built with events::Encode and fed to the handler, and
// the outputs it returns are what the consumer loop would publish. Rules: config/scoring.yaml.
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/civil_time.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/handler.h"
#include "common/redis/hiredis_client.h"
#include "common/redis/keys.h"
#include "common/testing/events.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_keys.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "services/scoring/grpc_service.h"
#include "services/scoring/handler.h"
#include "services/scoring/store.h"
#include "tests/integration/services/scoring/activity_counts.h"

namespace leadflow::scoring {
namespace {

using events::v1::ActivityCounts;
using events::v1::LeadActivity;
using events::v1::LeadAggregates;
using events::v1::LeadCaptured;
using events::v1::LeadOutcome;
using events::v1::LeadProfile;
using events::v1::LeadScored;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

MATCHER(IsOk, "is OK") { return arg.ok(); }

// Monday 5 January 2026, 11:00 UTC.
const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 11, 0, 0), absl::UTCTimeZone());

using testing::Consumed;
using testing::Envelope;

// A senior leader at a mid-size company: fit 20 + 15 = 35 (cold) with the default rules.
LeadProfile SeniorAtMidSize(const std::string& lead_id) {
  LeadProfile lead;
  lead.set_lead_id(lead_id);
  lead.set_email("vp@acme.example");
  lead.set_company("Acme");
  lead.set_seniority(events::v1::SENIORITY_SENIOR);
  lead.set_company_size(250);
  return lead;
}

class ScoringHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartRedisForTest();
    ASSERT_NE(server_, nullptr);
    redis::HiredisOptions options;
    options.port = server_->port();
    client_ = std::make_unique<redis::HiredisClient>(options);
    absl::StatusOr<std::unique_ptr<ScoringRulesSource>> rules = ScoringRulesSource::Create(
        std::string(LEADFLOW_SOURCE_DIR) + "/config/scoring.yaml", LoadScoringRules);
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    store_ = std::make_unique<ScoringStore>(*client_);
    model_ = std::make_unique<ModelCache>(*store_, clock_);
    handler_ = std::make_unique<ScoringHandler>(*rules_, *store_, *model_, topics_, clock_);
    grpc_ = std::make_unique<ScoringGrpcService>(*rules_, *store_, *model_, clock_);
  }

  kafka::ConsumedMessage Captured(const LeadProfile& lead, const std::string& event_id) {
    LeadCaptured event;
    *event.mutable_envelope() = Envelope(lead.lead_id(), event_id, clock_.Now());
    event.set_change(LeadCaptured::CHANGE_CREATED);
    *event.mutable_lead() = lead;
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsCaptured), lead.lead_id(), event));
  }

  // An activity of `type` with aggregates counting `counts` per activity type (and pricing
  // page views), all just now.
  kafka::ConsumedMessage Activity(const std::string& lead_id, const std::string& event_id,
                                  const std::string& type,
                                  const std::vector<std::pair<std::string, int64_t>>& counts) {
    LeadActivity event;
    *event.mutable_envelope() = Envelope(lead_id, event_id, clock_.Now());
    event.mutable_activity()->set_type(type);
    *event.mutable_activity()->mutable_occurred_at() = events::ToProto(clock_.Now());
    LeadAggregates& aggregates = *event.mutable_aggregates();
    for (const auto& [name, n] : counts) {
      (*aggregates.mutable_by_type())[name] = Counts(n, clock_.Now());
    }
    *aggregates.mutable_first_seen_at() = events::ToProto(clock_.Now());
    *aggregates.mutable_last_seen_at() = events::ToProto(clock_.Now());
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsActivity), lead_id, event));
  }

  kafka::ConsumedMessage Outcome(const std::string& lead_id, const std::string& event_id,
                                 LeadOutcome::Kind kind, const std::string& reason = "budget") {
    LeadOutcome event;
    *event.mutable_envelope() = Envelope(lead_id, event_id, clock_.Now());
    event.set_kind(kind);
    event.set_reason(reason);
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsOutcomes), lead_id, event));
  }

  // A tracked event `name` (type `type`) at `at`, with `properties`, one page view counted at `at`.
  kafka::ConsumedMessage Track(
      const std::string& lead_id, const std::string& event_id, const std::string& type,
      const std::string& name, absl::Time at,
      const std::vector<std::pair<std::string, std::string>>& properties = {}) {
    LeadActivity event;
    *event.mutable_envelope() = Envelope(lead_id, event_id, at);
    event.mutable_activity()->set_type(type);
    event.mutable_activity()->set_name(name);
    *event.mutable_activity()->mutable_occurred_at() = events::ToProto(at);
    for (const auto& [key, value] : properties) {
      (*event.mutable_activity()->mutable_properties()->mutable_fields())[key].set_string_value(
          value);
    }
    LeadAggregates& aggregates = *event.mutable_aggregates();
    (*aggregates.mutable_by_type())["page_view"] = Counts(1, at);
    *aggregates.mutable_first_seen_at() = events::ToProto(at);
    *aggregates.mutable_last_seen_at() = events::ToProto(at);
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsActivity), lead_id, event));
  }

  internal::v1::ScoringLeadState State(const std::string& lead_id) {
    absl::StatusOr<std::optional<internal::v1::ScoringLeadState>> state =
        store_->LoadState(lead_id);
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() && state->has_value() ? **state : internal::v1::ScoringLeadState();
  }

  // The lead's due time in the decay schedule, in Unix milliseconds; empty when unscheduled.
  std::string ScheduledAt(const std::string& lead_id) {
    absl::StatusOr<redis::Reply> r =
        client_->Command({"ZSCORE", ScoringStore::ScheduleKey(), lead_id});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->str : "";
  }

  // The stage of the single leads.scored in `out`, or STAGE_UNSPECIFIED when nothing was emitted.
  events::v1::LifecycleStage StageOf(const std::vector<kafka::OutboundMessage>& out) {
    EXPECT_LE(out.size(), 1u);
    return out.empty() ? events::v1::STAGE_UNSPECIFIED : DecodeScored(out[0]).score().stage();
  }

  kafka::ConsumedMessage Erasure(const std::string& lead_id, const std::string& event_id) {
    events::v1::LeadErasure event;
    *event.mutable_envelope() = Envelope(lead_id, event_id, clock_.Now());
    event.set_reason("gdpr-request-1");
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsErasure), lead_id, event));
  }

  // Handles a message that must succeed.
  std::vector<kafka::OutboundMessage> Handle(
      absl::StatusOr<std::vector<kafka::OutboundMessage>> (ScoringHandler::*route)(
          const kafka::ConsumedMessage&),
      const kafka::ConsumedMessage& message) {
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out = (handler_.get()->*route)(message);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *std::move(out) : std::vector<kafka::OutboundMessage>{};
  }

  static LeadScored DecodeScored(const kafka::OutboundMessage& m) {
    LeadScored scored;
    EXPECT_TRUE(events::Decode(Consumed(m), &scored).ok());
    return scored;
  }

  std::vector<std::string> AllKeys() { return testing::AllKeys(*client_); }

  std::string StateVersion(const std::string& lead_id) {
    absl::StatusOr<redis::Reply> r =
        client_->Command({"HGET", ScoringStore::StateKey(lead_id), "v"});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->str : "";
  }

  std::set<std::string> SegmentMembers(const std::string& segment_id) {
    absl::StatusOr<redis::Reply> r =
        client_->Command({"SMEMBERS", ScoringStore::SegmentKey(segment_id)});
    EXPECT_TRUE(r.ok()) << r.status();
    std::set<std::string> out;
    if (r.ok()) {
      for (const redis::Reply& e : r->elements) out.insert(e.str);
    }
    return out;
  }

  const kafka::Topics topics_{"test."};
  testing::SimulatedClock clock_{kStart};
  std::unique_ptr<testing::RedisServer> server_;
  std::unique_ptr<redis::HiredisClient> client_;
  std::unique_ptr<ScoringRulesSource> rules_;
  std::unique_ptr<ScoringStore> store_;
  std::unique_ptr<ModelCache> model_;
  std::unique_ptr<ScoringHandler> handler_;
  std::unique_ptr<ScoringGrpcService> grpc_;
};

TEST_F(ScoringHandlerTest, CapturedThenActivitiesEmitLeadsScoredOnlyWhenSomethingChanged) {
  const std::string lead = "lead-1";
  // First score: always emitted, with no previous.
  std::vector<kafka::OutboundMessage> out =
      Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap-1"));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0].topic, "test.leads.scored");
  EXPECT_EQ(out[0].key, lead);
  LeadScored first = DecodeScored(out[0]);
  EXPECT_EQ(first.score().total(), 35);
  EXPECT_EQ(first.score().category(), events::v1::CATEGORY_COLD);
  EXPECT_FALSE(first.has_previous());
  EXPECT_THAT(first.segments_entered(), ElementsAre("decision-makers", "mid-market"));
  EXPECT_EQ(first.lead().email(), "vp@acme.example");

  // A first page view: +1 point (same bucket), but the lead is now engaged and interested.
  clock_.Advance(absl::Minutes(1));
  out = Handle(&ScoringHandler::HandleActivity,
               Activity(lead, "act-1", "page_view", {{"page_view", 1}}));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_THAT(DecodeScored(out[0]).changed(), ElementsAre("interest", "stage"));

  // A second page view: 37 points, same bucket, nothing routing or nurturing cares about.
  clock_.Advance(absl::Minutes(1));
  out = Handle(&ScoringHandler::HandleActivity,
               Activity(lead, "act-2", "page_view", {{"page_view", 2}}));
  EXPECT_THAT(out, IsEmpty());

  // A demo request: 87 points, sales-ready.
  clock_.Advance(absl::Minutes(1));
  out = Handle(&ScoringHandler::HandleActivity,
               Activity(lead, "act-3", "demo_request", {{"page_view", 2}, {"demo_request", 1}}));
  ASSERT_THAT(out, SizeIs(1));
  const LeadScored scored = DecodeScored(out[0]);
  EXPECT_EQ(scored.envelope().event_id(), events::DeriveEventId("scored", "act-3"));
  EXPECT_EQ(scored.envelope().causation_id(), "act-3");
  EXPECT_EQ(scored.envelope().trace_id(), "trace-" + lead);
  EXPECT_EQ(scored.envelope().lead_id(), lead);
  EXPECT_EQ(scored.previous().total(), 37);
  EXPECT_EQ(scored.score().total(), 87);
  EXPECT_EQ(scored.score().category(), events::v1::CATEGORY_SALES_READY);
  EXPECT_EQ(scored.score().stage(), events::v1::STAGE_QUALIFIED);
  EXPECT_THAT(scored.changed(), ElementsAre("score", "category", "stage", "segments"));
  EXPECT_THAT(scored.segments_entered(), ElementsAre("hot"));
  EXPECT_THAT(SegmentMembers("hot"), ElementsAre(lead));
}

TEST_F(ScoringHandlerTest, TheSameInputTwiceGivesIdenticalOutputsAndIsAppliedOnce) {
  const std::string lead = "lead-2";
  const kafka::ConsumedMessage captured = Captured(SeniorAtMidSize(lead), "cap-2");
  const std::vector<kafka::OutboundMessage> first =
      Handle(&ScoringHandler::HandleCaptured, captured);
  clock_.Advance(absl::Minutes(5));  // a re-delivery comes later; it must not matter
  const std::vector<kafka::OutboundMessage> again =
      Handle(&ScoringHandler::HandleCaptured, captured);
  ASSERT_THAT(first, SizeIs(1));
  ASSERT_THAT(again, SizeIs(1));
  EXPECT_EQ(again[0].topic, first[0].topic);
  EXPECT_EQ(again[0].key, first[0].key);
  EXPECT_EQ(again[0].value, first[0].value);
  EXPECT_EQ(StateVersion(lead), "1");

  const kafka::ConsumedMessage demo =
      Activity(lead, "act-9", "demo_request", {{"demo_request", 1}});
  const std::vector<kafka::OutboundMessage> scored = Handle(&ScoringHandler::HandleActivity, demo);
  const std::vector<kafka::OutboundMessage> scored_again =
      Handle(&ScoringHandler::HandleActivity, demo);
  ASSERT_THAT(scored, SizeIs(1));
  ASSERT_THAT(scored_again, SizeIs(1));
  EXPECT_EQ(scored_again[0].value, scored[0].value);
  EXPECT_EQ(StateVersion(lead), "2");

  scoring::v1::GetScoreRequest request;
  request.set_lead_id(lead);
  scoring::v1::ExplainScoreResponse explained;
  ASSERT_TRUE(grpc_->ExplainScore(nullptr, &request, &explained).ok());
  EXPECT_EQ(explained.score().total(), 85);
  ASSERT_THAT(explained.history(), SizeIs(2));  // newest first, one per emitted change
  EXPECT_EQ(explained.history(0).total(), 85);
  EXPECT_EQ(explained.history(1).total(), 35);
}

TEST_F(ScoringHandlerTest, ALostOutcomeMovesTheLeadToStageLost) {
  const std::string lead = "lead-3";
  Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap-3"));
  Handle(&ScoringHandler::HandleActivity,
         Activity(lead, "act-3", "demo_request", {{"demo_request", 1}}));
  // Reported at the time of the last activity: no decay, and no activity since the loss.
  const std::vector<kafka::OutboundMessage> out =
      Handle(&ScoringHandler::HandleOutcome, Outcome(lead, "out-3", LeadOutcome::KIND_LOST));
  ASSERT_THAT(out, SizeIs(1));
  const LeadScored scored = DecodeScored(out[0]);
  EXPECT_EQ(scored.score().stage(), events::v1::STAGE_LOST);
  EXPECT_EQ(scored.previous().stage(), events::v1::STAGE_QUALIFIED);
  EXPECT_EQ(scored.score().total(), 85 - 30);
  EXPECT_THAT(scored.score().contributions(),
              Contains(::testing::Property(&events::v1::Contribution::rule_id, "negative.lost")));

  scoring::v1::GetScoreRequest request;
  request.set_lead_id(lead);
  scoring::v1::GetScoreResponse response;
  ASSERT_TRUE(grpc_->GetScore(nullptr, &request, &response).ok());
  EXPECT_EQ(response.score().stage(), events::v1::STAGE_LOST);

  // An accepted outcome says nothing about the lead: no change, no event.
  EXPECT_THAT(
      Handle(&ScoringHandler::HandleOutcome, Outcome(lead, "out-4", LeadOutcome::KIND_ACCEPTED)),
      IsEmpty());
}

TEST_F(ScoringHandlerTest, OutcomesMoveTheStageForwardAndOnlyALossMovesItBackUntilRecycled) {
  using events::v1::STAGE_CONTACTED;
  using events::v1::STAGE_CUSTOMER;
  using events::v1::STAGE_ENGAGED;
  using events::v1::STAGE_LOST;
  using events::v1::STAGE_NEW;
  using events::v1::STAGE_OPPORTUNITY;
  using events::v1::STAGE_QUALIFIED;
  using events::v1::STAGE_UNSPECIFIED;  // below: nothing emitted
  const std::string lead = "lead-stages";
  auto step = [&]() { clock_.Advance(absl::Minutes(10)); };
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "c"))),
            STAGE_NEW);
  step();
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleOutcome,
                           Outcome(lead, "o-contacted", LeadOutcome::KIND_CONTACTED))),
            STAGE_CONTACTED);
  step();
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleActivity,
                           Activity(lead, "a-view", "page_view", {{"page_view", 1}}))),
            STAGE_ENGAGED);
  step();
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleOutcome,
                           Outcome(lead, "o-qualified", LeadOutcome::KIND_QUALIFIED))),
            STAGE_QUALIFIED);
  step();
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleOutcome,
                           Outcome(lead, "o-opportunity", LeadOutcome::KIND_OPPORTUNITY))),
            STAGE_OPPORTUNITY);
  EXPECT_EQ(State(lead).outcome_stage(), STAGE_OPPORTUNITY);
  // Never backwards: a late "contacted" report changes nothing, and more engagement neither.
  step();
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleOutcome,
                           Outcome(lead, "o-contacted-again", LeadOutcome::KIND_CONTACTED))),
            STAGE_UNSPECIFIED);
  EXPECT_EQ(State(lead).score().stage(), STAGE_OPPORTUNITY);
  step();
  std::vector<kafka::OutboundMessage> out =
      Handle(&ScoringHandler::HandleActivity,
             Activity(lead, "a-demo", "demo_request", {{"page_view", 1}, {"demo_request", 1}}));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).score().category(), events::v1::CATEGORY_SALES_READY);
  EXPECT_EQ(DecodeScored(out[0]).score().stage(), STAGE_OPPORTUNITY);
  // The one rule that moves back: lost.
  step();
  out = Handle(&ScoringHandler::HandleOutcome, Outcome(lead, "o-lost", LeadOutcome::KIND_LOST));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).previous().stage(), STAGE_OPPORTUNITY);
  EXPECT_EQ(DecodeScored(out[0]).score().stage(), STAGE_LOST);
  // A re-score with no new activity keeps it lost.
  step();
  EXPECT_THAT(handler_->Rescore(lead, "rescore-" + lead, clock_.Now()), IsOk());
  EXPECT_EQ(State(lead).score().stage(), STAGE_LOST);
  // Activity after the loss recycles it: a new episode from its own behaviour, not the lost
  // episode's opportunity. The loss still costs 30 points (87 - 30 = 57, warm), so it re-enters
  // at engaged, and moves forward again from there.
  step();
  out = Handle(&ScoringHandler::HandleActivity,
               Activity(lead, "a-back", "demo_request", {{"page_view", 2}, {"demo_request", 1}}));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).previous().stage(), STAGE_LOST);
  EXPECT_EQ(DecodeScored(out[0]).score().total(), 87 - 30);
  EXPECT_EQ(DecodeScored(out[0]).score().stage(), STAGE_ENGAGED);
  step();
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleOutcome,
                           Outcome(lead, "o-qualified-2", LeadOutcome::KIND_QUALIFIED))),
            STAGE_QUALIFIED);
  step();
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleOutcome,
                           Outcome(lead, "o-opportunity-2", LeadOutcome::KIND_OPPORTUNITY))),
            STAGE_OPPORTUNITY);
  step();
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleOutcome,
                           Outcome(lead, "o-won", LeadOutcome::KIND_WON))),
            STAGE_CUSTOMER);
  // An outcome kind this build does not know (a newer producer) is applied as "no stage".
  step();
  EXPECT_EQ(StageOf(Handle(&ScoringHandler::HandleOutcome,
                           Outcome(lead, "o-unknown", static_cast<LeadOutcome::Kind>(42)))),
            STAGE_UNSPECIFIED);
  EXPECT_EQ(State(lead).score().stage(), STAGE_CUSTOMER);
}

TEST_F(ScoringHandlerTest, AnExplicitInterestSignalIsRecordedWithTheInputAndLapses) {
  const std::string lead = "lead-not-now";
  Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap"));
  clock_.Advance(absl::Minutes(1));
  std::vector<kafka::OutboundMessage> out = Handle(
      &ScoringHandler::HandleActivity, Track(lead, "view", "page_view", "Home", clock_.Now()));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).score().interest(), events::v1::INTEREST_INTERESTED);

  // The lead clicks "Not Now": not now for 90 days (config/scoring.yaml, not-now-button).
  clock_.Advance(absl::Minutes(1));
  const absl::Time said_at = clock_.Now();
  const kafka::ConsumedMessage not_now =
      Track(lead, "not-now", "not_now_selected", "Not Now Selected", said_at);
  out = Handle(&ScoringHandler::HandleActivity, not_now);
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).score().interest(), events::v1::INTEREST_NOT_NOW);
  EXPECT_THAT(DecodeScored(out[0]).changed(), Contains("interest"));
  internal::v1::ScoringLeadState state = State(lead);
  EXPECT_EQ(state.explicit_interest(), events::v1::INTEREST_NOT_NOW);
  EXPECT_EQ(state.explicit_interest_signal(), "not-now-button");
  EXPECT_EQ(events::FromProto(state.explicit_interest_at()), said_at);
  EXPECT_EQ(events::FromProto(state.explicit_interest_until()), said_at + absl::Hours(90 * 24));
  // Recorded with the rest of the input, once: the re-delivery changes nothing.
  const std::string version = StateVersion(lead);
  const std::vector<kafka::OutboundMessage> again =
      Handle(&ScoringHandler::HandleActivity, not_now);
  ASSERT_THAT(again, SizeIs(1));
  EXPECT_EQ(again[0].value, out[0].value);
  EXPECT_EQ(StateVersion(lead), version);

  // A demo request that happened before the click but arrives late does not overrule it.
  clock_.Advance(absl::Minutes(1));
  Handle(&ScoringHandler::HandleActivity,
         Track(lead, "late-demo", "demo_request", "Demo Requested", said_at - absl::Minutes(1)));
  EXPECT_EQ(State(lead).explicit_interest(), events::v1::INTEREST_NOT_NOW);
  EXPECT_EQ(State(lead).score().interest(), events::v1::INTEREST_NOT_NOW);

  // Still "not now" while the lead keeps browsing within the 90 days...
  clock_.Advance(absl::Hours(89 * 24));
  Handle(&ScoringHandler::HandleActivity, Track(lead, "view-2", "page_view", "Blog", clock_.Now()));
  EXPECT_EQ(State(lead).score().interest(), events::v1::INTEREST_NOT_NOW);
  // ...and the decay schedule is due no later than when the statement lapses.
  const int64_t until_ms = absl::ToUnixMillis(said_at + absl::Hours(90 * 24));
  ASSERT_FALSE(ScheduledAt(lead).empty());
  EXPECT_LE(std::stoll(ScheduledAt(lead)), until_ms);
  // Once it lapses, recency speaks again: active a day ago is interested.
  out = *handler_->Rescore(lead, "rescore-lapsed", absl::FromUnixMillis(until_ms));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).score().interest(), events::v1::INTEREST_INTERESTED);
}

TEST_F(ScoringHandlerTest, FormAnswersAndLostReasonsSetTheExplicitInterest) {
  // A form answer "timeline: next year" says not now.
  const std::string planner = "lead-next-year";
  Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(planner), "cap-p"));
  std::vector<kafka::OutboundMessage> out =
      Handle(&ScoringHandler::HandleActivity, Track(planner, "form", "form_submit", "Contact Us",
                                                    clock_.Now(), {{"timeline", "Next year"}}));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).score().interest(), events::v1::INTEREST_NOT_NOW);
  EXPECT_EQ(State(planner).explicit_interest_signal(), "timeline-next-year");

  // Lost for timing: not now; lost for no need: disinterested; lost on price: no statement.
  const std::vector<std::tuple<std::string, std::string, events::v1::InterestState>> cases = {
      {"lead-timing", "Bad timing", events::v1::INTEREST_NOT_NOW},
      {"lead-no-need", "No need", events::v1::INTEREST_DISINTERESTED},
      {"lead-price", "price", events::v1::INTEREST_INTERESTED},
  };
  for (const auto& [lead, reason, interest] : cases) {
    Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap-" + lead));
    Handle(&ScoringHandler::HandleActivity,
           Track(lead, "view-" + lead, "page_view", "Home", clock_.Now()));
    out = Handle(&ScoringHandler::HandleOutcome,
                 Outcome(lead, "lost-" + lead, LeadOutcome::KIND_LOST, reason));
    ASSERT_THAT(out, SizeIs(1)) << lead;
    EXPECT_EQ(DecodeScored(out[0]).score().stage(), events::v1::STAGE_LOST) << lead;
    EXPECT_EQ(DecodeScored(out[0]).score().interest(), interest) << lead;
  }
}

TEST_F(ScoringHandlerTest, TheScoreHistoryIsBoundedNewestFirst) {
  ScoringOptions options;
  options.history_size = 3;
  ScoringHandler handler(*rules_, *store_, *model_, topics_, clock_, options);
  const std::string lead = "lead-history";
  ASSERT_THAT(handler.HandleCaptured(Captured(SeniorAtMidSize(lead), "cap-h")), IsOk());
  // Each form submit (+10, capped at 20) or webinar (+15, capped at 30) moves the score bucket.
  const std::vector<std::pair<std::string, int64_t>> steps[] = {
      {{"form_submit", 1}},
      {{"form_submit", 2}},
      {{"form_submit", 2}, {"webinar_attended", 1}},
      {{"form_submit", 2}, {"webinar_attended", 2}},
      {{"form_submit", 2}, {"webinar_attended", 2}, {"download", 1}},
  };
  int emitted = 1;
  for (size_t i = 0; i < std::size(steps); ++i) {
    clock_.Advance(absl::Minutes(1));
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out = handler.HandleActivity(
        Activity(lead, "act-h" + std::to_string(i), steps[i].front().first, steps[i]));
    ASSERT_THAT(out, IsOk());
    emitted += static_cast<int>(out->size());
  }
  ASSERT_GT(emitted, 3);
  scoring::v1::GetScoreRequest request;
  request.set_lead_id(lead);
  scoring::v1::ExplainScoreResponse explained;
  ASSERT_TRUE(grpc_->ExplainScore(nullptr, &request, &explained).ok());
  ASSERT_THAT(explained.history(), SizeIs(3));
  EXPECT_EQ(explained.history(0).total(), explained.score().total());
  EXPECT_GT(explained.history(0).total(), explained.history(1).total());
  EXPECT_GT(explained.history(1).total(), explained.history(2).total());
  // 35 fit + 20 forms + 30 webinars + 8 download, newest first.
  EXPECT_EQ(explained.history(0).total(), 35 + 20 + 30 + 8);
}

TEST_F(ScoringHandlerTest, TheHistoryLivesBesideTheStateAndAnOldRecordsHistoryMovesThere) {
  const std::string lead = "lead-layout";
  Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap-l"));
  // The state record carries no history: each apply pushes one snapshot to the list.
  absl::StatusOr<std::optional<internal::v1::ScoringLeadState>> state = store_->LoadState(lead);
  ASSERT_TRUE(state.ok() && state->has_value());
  EXPECT_EQ((*state)->history_size(), 0);
  EXPECT_EQ(client_->Command({"LLEN", ScoringStore::HistoryKey(lead)})->integer, 1);

  // Rewrite the record the way the previous release did: the history inside, no list.
  internal::v1::ScoringLeadState old = **state;
  events::v1::ScoreSnapshot older;
  older.set_total(7);
  *old.add_history() = (*state)->score();
  *old.add_history() = older;
  ASSERT_TRUE(client_->Command({"DEL", ScoringStore::HistoryKey(lead)}).ok());
  ASSERT_TRUE(
      client_
          ->Command({"HSET", ScoringStore::StateKey(lead), "v", "7", "d", old.SerializeAsString()})
          .ok());
  scoring::v1::GetScoreRequest request;
  request.set_lead_id(lead);
  scoring::v1::ExplainScoreResponse explained;
  ASSERT_TRUE(grpc_->ExplainScore(nullptr, &request, &explained).ok());
  ASSERT_THAT(explained.history(), SizeIs(2)) << "read from the record until it is applied";
  EXPECT_EQ(explained.history(1).total(), 7);

  // The next change moves it into the list, newest first, and empties the record's copy.
  clock_.Advance(absl::Minutes(1));
  ASSERT_THAT(Handle(&ScoringHandler::HandleActivity,
                     Activity(lead, "act-l", "demo_request", {{"demo_request", 1}})),
              SizeIs(1));
  state = store_->LoadState(lead);
  ASSERT_TRUE(state.ok() && state->has_value());
  EXPECT_EQ((*state)->history_size(), 0);
  explained.Clear();
  ASSERT_TRUE(grpc_->ExplainScore(nullptr, &request, &explained).ok());
  ASSERT_THAT(explained.history(), SizeIs(3));
  EXPECT_EQ(explained.history(0).total(), explained.score().total());
  EXPECT_EQ(explained.history(1).total(), old.history(0).total());
  EXPECT_EQ(explained.history(2).total(), 7);
}

TEST_F(ScoringHandlerTest, ErasureRemovesEveryKeyOfTheLeadAndLaterEventsAreIgnored) {
  const std::string erased = "lead-erased";
  const std::string kept = "lead-kept";
  for (const std::string& lead : {erased, kept}) {
    Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap-" + lead));
    Handle(&ScoringHandler::HandleActivity,
           Activity(lead, "act-" + lead, "demo_request", {{"demo_request", 1}}));
  }
  ASSERT_THAT(SegmentMembers("hot"), ElementsAre(erased, kept));

  EXPECT_THAT(Handle(&ScoringHandler::HandleErasure, Erasure(erased, "erase-1")), IsEmpty());

  auto traces_of = [&](const std::string& lead) {
    std::vector<std::string> traces;
    for (const std::string& key : AllKeys()) {
      if (absl::StrContains(key, lead)) traces.push_back(key);
      if (absl::StartsWith(key, "scoring:segment:") &&
          SegmentMembers(key.substr(std::string("scoring:segment:").size())).count(lead) > 0) {
        traces.push_back(key + " member");
      }
    }
    return traces;
  };
  // Only the tombstone is left, which holds no data of the lead but its id.
  EXPECT_THAT(traces_of(erased), ElementsAre(redis::TombstoneKey("scoring", erased)));
  EXPECT_THAT(traces_of(kept), Contains(ScoringStore::StateKey(kept)));
  EXPECT_THAT(SegmentMembers("hot"), ElementsAre(kept));

  // Late events of the erased lead change nothing and emit nothing; erasure is idempotent.
  EXPECT_THAT(Handle(&ScoringHandler::HandleActivity,
                     Activity(erased, "act-late", "page_view", {{"page_view", 1}})),
              IsEmpty());
  EXPECT_THAT(
      Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(erased), "cap-late")),
      IsEmpty());
  EXPECT_THAT(Handle(&ScoringHandler::HandleErasure, Erasure(erased, "erase-1")), IsEmpty());
  EXPECT_THAT(traces_of(erased), ElementsAre(redis::TombstoneKey("scoring", erased)));

  scoring::v1::GetScoreRequest request;
  request.set_lead_id(erased);
  scoring::v1::GetScoreResponse response;
  EXPECT_EQ(grpc_->GetScore(nullptr, &request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ScoringHandlerTest, AMergeDropsTheAbsorbedLeadAndTheSurvivorScoresTheMergedBehaviour) {
  for (const std::string lead : {"lead-a", "lead-b"}) {
    Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap-" + lead));
  }
  Handle(&ScoringHandler::HandleActivity,
         Activity("lead-b", "act-b", "demo_request", {{"demo_request", 1}}));
  ASSERT_THAT(SegmentMembers("hot"), ElementsAre("lead-b"));
  const double before = State("lead-a").score().total();

  // Capture merged B into A (twice: a re-delivery) ...
  LeadCaptured merged;
  *merged.mutable_envelope() = Envelope("lead-a", "cap-merge", clock_.Now());
  merged.set_change(LeadCaptured::CHANGE_UPDATED);
  *merged.mutable_lead() = SeniorAtMidSize("lead-a");
  merged.add_merged_lead_ids("lead-b");
  const kafka::ConsumedMessage message =
      Consumed(events::Encode(topics_.Name(kafka::kLeadsCaptured), "lead-a", merged));
  Handle(&ScoringHandler::HandleCaptured, message);
  Handle(&ScoringHandler::HandleCaptured, message);
  // ... so B's state is gone, and late events of B are ignored.
  EXPECT_FALSE(State("lead-b").has_profile());
  EXPECT_THAT(SegmentMembers("hot"), IsEmpty());
  EXPECT_THAT(Handle(&ScoringHandler::HandleActivity,
                     Activity("lead-b", "act-b-late", "page_view", {{"page_view", 1}})),
              IsEmpty());
  // Tracking's merge event carries B's behaviour in A's aggregates: A scores it.
  const std::vector<kafka::OutboundMessage> scored =
      Handle(&ScoringHandler::HandleActivity,
             Activity("lead-a", "merge:cap-merge", "lead_merged", {{"demo_request", 1}}));
  ASSERT_THAT(scored, SizeIs(1));
  EXPECT_GT(DecodeScored(scored[0]).score().total(), before);
  EXPECT_THAT(SegmentMembers("hot"), ElementsAre("lead-a"));
}

// The batch routes (app.cc wraps them in kafka::HandleInKeyWaves) give what one-by-one handling
// gives: the same outputs byte for byte, each input applied once, a lead's inputs in order, a
// duplicate returning the memo, an erased lead ignored.
TEST_F(ScoringHandlerTest, BatchesGiveWhatOneByOneHandlingGives) {
  const std::vector<kafka::ConsumedMessage> captured = {
      Captured(SeniorAtMidSize("lead-x"), "cap-x"), Captured(SeniorAtMidSize("lead-y"), "cap-y"),
      Captured(SeniorAtMidSize("lead-z"), "cap-z"), Captured(SeniorAtMidSize("lead-e"), "cap-e")};
  const kafka::ConsumedMessage erasure = Erasure("lead-e", "erase-e");
  const std::vector<kafka::ConsumedMessage> activities = {
      Activity("lead-x", "act-x1", "page_view", {{"page_view", 1}}),
      Activity("lead-y", "act-y1", "demo_request", {{"demo_request", 1}}),
      Activity("lead-x", "act-x2", "demo_request", {{"page_view", 1}, {"demo_request", 1}}),
      Activity("lead-y", "act-y1", "demo_request", {{"demo_request", 1}}),  // a duplicate
      Activity("lead-z", "act-z1", "page_view", {{"page_view", 1}}),
      Activity("lead-e", "act-e1", "page_view", {{"page_view", 1}}),  // erased: ignored
      Activity("lead-x", "act-x3", "page_view", {{"page_view", 2}, {"demo_request", 1}})};
  auto pointers = [](const std::vector<kafka::ConsumedMessage>& messages) {
    std::vector<const kafka::ConsumedMessage*> out;
    for (const kafka::ConsumedMessage& m : messages) out.push_back(&m);
    return out;
  };

  std::vector<std::vector<kafka::OutboundMessage>> one_by_one;
  for (const kafka::ConsumedMessage& m : captured) {
    one_by_one.push_back(Handle(&ScoringHandler::HandleCaptured, m));
  }
  Handle(&ScoringHandler::HandleErasure, erasure);
  for (const kafka::ConsumedMessage& m : activities) {
    one_by_one.push_back(Handle(&ScoringHandler::HandleActivity, m));
  }
  const std::string x_version = StateVersion("lead-x");
  const std::string y_version = StateVersion("lead-y");
  const internal::v1::ScoringLeadState x_state = State("lead-x");
  ASSERT_EQ(x_version, "4");  // captured + three activities
  ASSERT_EQ(y_version, "2");  // captured + one activity, the duplicate applied once

  ASSERT_TRUE(client_->Command({"FLUSHALL"}).ok());
  std::vector<kafka::HandleResult> batched = kafka::HandleInKeyWaves(
      pointers(captured), [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
        return handler_->HandleCapturedBatch(wave);
      });
  Handle(&ScoringHandler::HandleErasure, erasure);
  for (kafka::HandleResult& r : kafka::HandleInKeyWaves(
           pointers(activities), [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
             return handler_->HandleActivityBatch(wave);
           })) {
    batched.push_back(std::move(r));
  }

  ASSERT_THAT(batched, SizeIs(one_by_one.size()));
  for (size_t i = 0; i < batched.size(); ++i) {
    ASSERT_TRUE(batched[i].ok()) << i << ": " << batched[i].status();
    ASSERT_THAT(*batched[i], SizeIs(one_by_one[i].size())) << i;
    for (size_t j = 0; j < one_by_one[i].size(); ++j) {
      EXPECT_EQ((*batched[i])[j].topic, one_by_one[i][j].topic) << i;
      EXPECT_EQ((*batched[i])[j].key, one_by_one[i][j].key) << i;
      // As messages: a map field's bytes may come out in another order.
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
          DecodeScored((*batched[i])[j]), DecodeScored(one_by_one[i][j])))
          << i;
    }
  }
  EXPECT_THAT(*batched[5], SizeIs(1));                        // act-y1 scored once ...
  EXPECT_EQ((*batched[7])[0].value, (*batched[5])[0].value);  // ... and its duplicate: the memo
  EXPECT_THAT(*batched[9], IsEmpty());                        // the erased lead
  EXPECT_EQ(StateVersion("lead-x"), x_version);
  EXPECT_EQ(StateVersion("lead-y"), y_version);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(State("lead-x"), x_state));
  EXPECT_FALSE(State("lead-e").has_profile());
  EXPECT_THAT(SegmentMembers("hot"), ElementsAre("lead-x", "lead-y"));
}

TEST_F(ScoringHandlerTest, TwoInputsOfOneLeadInOneBatchCallAreAppliedInOrder) {
  const kafka::ConsumedMessage captured = Captured(SeniorAtMidSize("lead-o"), "cap-o");
  const kafka::ConsumedMessage view = Activity("lead-o", "act-o1", "page_view", {{"page_view", 1}});
  const kafka::ConsumedMessage demo =
      Activity("lead-o", "act-o2", "demo_request", {{"page_view", 1}, {"demo_request", 1}});
  ASSERT_THAT(handler_->HandleCapturedBatch({&captured}), ElementsAre(IsOk()));
  // Called directly, without waves: the second is re-planned alone after the first applied.
  const std::vector<kafka::HandleResult> out = handler_->HandleActivityBatch({&view, &demo});
  ASSERT_THAT(out, ElementsAre(IsOk(), IsOk()));
  ASSERT_THAT(*out[0], SizeIs(1));
  ASSERT_THAT(*out[1], SizeIs(1));
  const LeadScored scored = DecodeScored((*out[1])[0]);
  EXPECT_EQ(scored.previous().total(), DecodeScored((*out[0])[0]).score().total());
  EXPECT_EQ(scored.score().category(), events::v1::CATEGORY_SALES_READY);
  EXPECT_EQ(StateVersion("lead-o"), "3");
}

TEST_F(ScoringHandlerTest, AMergeInACapturedBatchDropsTheAbsorbedLeadInStreamOrder) {
  LeadCaptured merged;
  *merged.mutable_envelope() = Envelope("lead-a", "cap-merge", clock_.Now());
  merged.set_change(LeadCaptured::CHANGE_UPDATED);
  *merged.mutable_lead() = SeniorAtMidSize("lead-a");
  merged.add_merged_lead_ids("lead-b");
  const kafka::ConsumedMessage b = Captured(SeniorAtMidSize("lead-b"), "cap-lead-b");
  const kafka::ConsumedMessage merge =
      Consumed(events::Encode(topics_.Name(kafka::kLeadsCaptured), "lead-a", merged));
  const kafka::ConsumedMessage c = Captured(SeniorAtMidSize("lead-c"), "cap-lead-c");
  // B captured, then merged into A, in one wave: B's state is gone afterwards, C scored.
  EXPECT_THAT(handler_->HandleCapturedBatch({&b, &merge, &c}), ElementsAre(IsOk(), IsOk(), IsOk()));
  EXPECT_FALSE(State("lead-b").has_profile());
  EXPECT_TRUE(State("lead-a").has_profile());
  EXPECT_TRUE(State("lead-c").has_profile());
  EXPECT_THAT(SegmentMembers("mid-market"), ElementsAre("lead-a", "lead-c"));
}

TEST_F(ScoringHandlerTest, InvalidInputIsRejectedAsInvalidArgument) {
  kafka::ConsumedMessage garbage;
  garbage.topic = "test.leads.activity";
  garbage.value = "\xff\xff not a protobuf";
  garbage.headers = {{"content-type", "application/x-protobuf"}};

  LeadActivity no_lead;
  no_lead.mutable_envelope()->set_event_id("act-x");
  const kafka::ConsumedMessage without_lead =
      Consumed(events::Encode(topics_.Name(kafka::kLeadsActivity), "", no_lead));

  struct Case {
    const char* name;
    absl::StatusOr<std::vector<kafka::OutboundMessage>> (ScoringHandler::*route)(
        const kafka::ConsumedMessage&);
    kafka::ConsumedMessage message;
  };
  const std::vector<Case> cases = {
      {"garbage captured", &ScoringHandler::HandleCaptured, garbage},
      {"garbage activity", &ScoringHandler::HandleActivity, garbage},
      {"garbage outcome", &ScoringHandler::HandleOutcome, garbage},
      {"garbage erasure", &ScoringHandler::HandleErasure, garbage},
      {"activity without lead id", &ScoringHandler::HandleActivity, without_lead},
      {"erasure without lead id", &ScoringHandler::HandleErasure, without_lead},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out = (handler_.get()->*c.route)(c.message);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_TRUE(kafka::IsPoison(out.status())) << c.name;
  }
  EXPECT_THAT(AllKeys(), IsEmpty());
}

TEST_F(ScoringHandlerTest, ActivityBeforeTheProfileIsScoredWhenTheProfileArrives) {
  const std::string lead = "lead-early";
  EXPECT_THAT(Handle(&ScoringHandler::HandleActivity,
                     Activity(lead, "act-e", "demo_request", {{"demo_request", 1}})),
              IsEmpty());
  const std::vector<kafka::OutboundMessage> out =
      Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap-e"));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).score().total(), 85);
}

TEST_F(ScoringHandlerTest, UnsubscribeAndBounceActivitiesApplyTheirPenalties) {
  const std::string lead = "lead-neg";
  Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap-n"));
  std::vector<kafka::OutboundMessage> out =
      Handle(&ScoringHandler::HandleActivity, Activity(lead, "act-u", "unsubscribe", {}));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).score().total(), 35 - 20);
  EXPECT_EQ(DecodeScored(out[0]).score().interest(), events::v1::INTEREST_DISINTERESTED);
  out = Handle(&ScoringHandler::HandleActivity, Activity(lead, "act-b", "bounce", {}));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(DecodeScored(out[0]).score().total(), 35 - 20 - 25);
}

TEST_F(ScoringHandlerTest, ListSegmentMembersPagesThroughEveryMemberOnce) {
  std::set<std::string> expected;
  for (int i = 0; i < 57; ++i) {
    const std::string lead = "lead-seg-" + std::to_string(i);
    Handle(&ScoringHandler::HandleCaptured, Captured(SeniorAtMidSize(lead), "cap-" + lead));
    expected.insert(lead);
  }
  std::multiset<std::string> seen;
  scoring::v1::ListSegmentMembersRequest request;
  request.set_segment_id("mid-market");
  request.set_page_size(10);
  int pages = 0;
  do {
    scoring::v1::ListSegmentMembersResponse response;
    ASSERT_TRUE(grpc_->ListSegmentMembers(nullptr, &request, &response).ok());
    EXPECT_LE(response.lead_ids_size(), 10);
    seen.insert(response.lead_ids().begin(), response.lead_ids().end());
    request.set_page_token(response.next_page_token());
    ASSERT_LT(++pages, 100) << "paging does not end";
  } while (!request.page_token().empty());
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), expected);
  EXPECT_EQ(seen.size(), expected.size());  // nobody twice while the set is unchanged
}

TEST_F(ScoringHandlerTest, SimulateScoreUsesGivenRulesAndStoresNothing) {
  scoring::v1::SimulateScoreRequest request;
  *request.mutable_lead() = SeniorAtMidSize("lead-sim");
  scoring::v1::GetScoreResponse response;
  ASSERT_TRUE(grpc_->SimulateScore(nullptr, &request, &response).ok());
  EXPECT_EQ(response.score().total(), 35);

  ASSERT_TRUE(config::ParseYamlProto(R"yaml(
version: sim
thresholds: {warm: 10, qualified: 20, sales_ready: 30}
fit:
  - {id: big, when: [{field: company_size, range: {min: 100}}], points: 40}
)yaml",
                                     request.mutable_rules())
                  .ok());
  ASSERT_TRUE(grpc_->SimulateScore(nullptr, &request, &response).ok());
  EXPECT_EQ(response.score().total(), 40);
  EXPECT_EQ(response.score().category(), events::v1::CATEGORY_SALES_READY);

  request.mutable_rules()->mutable_thresholds()->set_warm(-1);
  EXPECT_EQ(grpc_->SimulateScore(nullptr, &request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(AllKeys(), IsEmpty());
}

}  // namespace
}  // namespace leadflow::scoring
