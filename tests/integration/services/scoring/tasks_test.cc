// Integration tests of scoring's time- and rule-driven paths against a real redis-server (no
// Kafka; a FakeProducer stands for the broker): the decay scheduler, the re-score after a rules
// change, the learned model trained from outcomes, and rule reloads.
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/events.h"
#include "common/testing/fake_kafka.h"
#include "common/testing/metrics.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "services/scoring/grpc_service.h"
#include "services/scoring/handler.h"
#include "services/scoring/store.h"
#include "services/scoring/tasks.h"
#include "tests/integration/services/scoring/activity_counts.h"

namespace leadflow::scoring {
namespace {

using ::leadflow::testing::MetricValue;

using events::v1::LeadActivity;
using events::v1::LeadAggregates;
using events::v1::LeadCaptured;
using events::v1::LeadOutcome;
using events::v1::LeadProfile;
using events::v1::LeadScored;
using testing::Consumed;
using ::testing::ElementsAre;
using testing::Envelope;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Monday 5 January 2026, 11:00 UTC.
const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 11, 0, 0), absl::UTCTimeZone());
constexpr absl::Duration kDay = absl::Hours(24);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

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

class ScoringTasksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartRedisForTest();
    ASSERT_NE(server_, nullptr);
    redis::HiredisOptions options;
    options.port = server_->port();
    client_ = std::make_unique<redis::HiredisClient>(options);
    // The default rules, with a model that serves itself after 4 outcomes.
    rules_path_ = ::testing::TempDir() + "/scoring_tasks_test_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml";
    default_rules_ = ReadFile(std::string(LEADFLOW_SOURCE_DIR) + "/config/scoring.yaml");
    ASSERT_NE(default_rules_.find("min_outcomes: 50"), std::string::npos);
    WriteRules(absl::StrReplaceAll(default_rules_, {{"min_outcomes: 50", "min_outcomes: 4"}}));
    absl::StatusOr<std::unique_ptr<ScoringRulesSource>> rules =
        ScoringRulesSource::Create(rules_path_, LoadScoringRules);
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    store_ = std::make_unique<ScoringStore>(*client_);
    model_ = std::make_unique<ModelCache>(*store_, clock_);
    handler_ = std::make_unique<ScoringHandler>(*rules_, *store_, *model_, topics_, clock_);
    grpc_ = std::make_unique<ScoringGrpcService>(*rules_, *store_, *model_, clock_);
  }

  void WriteRules(const std::string& text) {
    std::ofstream out(rules_path_, std::ios::trunc);
    out << text;
  }

  std::unique_ptr<DecayScheduler> MakeScheduler(prometheus::Registry& registry) {
    return std::make_unique<DecayScheduler>(*handler_, *store_, producer_, clock_, registry);
  }

  void Capture(const LeadProfile& lead) {
    LeadCaptured event;
    *event.mutable_envelope() = Envelope(lead.lead_id(), "cap-" + lead.lead_id(), clock_.Now());
    event.set_change(LeadCaptured::CHANGE_CREATED);
    *event.mutable_lead() = lead;
    ASSERT_TRUE(handler_
                    ->HandleCaptured(Consumed(
                        events::Encode(topics_.Name(kafka::kLeadsCaptured), lead.lead_id(), event)))
                    .ok());
  }

  // A demo request, a page view and a pricing page view, all now: with the senior profile,
  // 35 + 50 + 1 + 8 = 94, sales-ready.
  std::vector<kafka::OutboundMessage> HotActivity(const std::string& lead_id) {
    LeadActivity event;
    *event.mutable_envelope() = Envelope(lead_id, "act-" + lead_id, clock_.Now());
    event.mutable_activity()->set_type("demo_request");
    *event.mutable_activity()->mutable_occurred_at() = events::ToProto(clock_.Now());
    LeadAggregates& aggregates = *event.mutable_aggregates();
    (*aggregates.mutable_by_type())["demo_request"] = Counts(1, clock_.Now());
    (*aggregates.mutable_by_type())["page_view"] = Counts(1, clock_.Now());
    (*aggregates.mutable_by_page_category())["pricing"] = Counts(1, clock_.Now());
    *aggregates.mutable_first_seen_at() = events::ToProto(clock_.Now());
    *aggregates.mutable_last_seen_at() = events::ToProto(clock_.Now());
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out = handler_->HandleActivity(
        Consumed(events::Encode(topics_.Name(kafka::kLeadsActivity), lead_id, event)));
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : std::vector<kafka::OutboundMessage>{};
  }

  absl::StatusOr<std::vector<kafka::OutboundMessage>> Outcome(const std::string& lead_id,
                                                              const std::string& event_id,
                                                              LeadOutcome::Kind kind) {
    LeadOutcome event;
    *event.mutable_envelope() = Envelope(lead_id, event_id, clock_.Now());
    event.set_kind(kind);
    return handler_->HandleOutcome(
        Consumed(events::Encode(topics_.Name(kafka::kLeadsOutcomes), lead_id, event)));
  }

  static LeadScored Decode(const kafka::OutboundMessage& m) {
    LeadScored scored;
    EXPECT_TRUE(events::Decode(Consumed(m), &scored).ok());
    return scored;
  }

  std::vector<LeadScored> SentSince(size_t from) {
    std::vector<LeadScored> out;
    const std::vector<testing::FakeProducer::Sent> sent = producer_.sent();
    for (size_t i = from; i < sent.size(); ++i) out.push_back(Decode(sent[i].message));
    return out;
  }

  events::v1::ScoreSnapshot Stored(const std::string& lead_id) {
    absl::StatusOr<std::optional<internal::v1::ScoringLeadState>> state =
        store_->LoadState(lead_id);
    EXPECT_TRUE(state.ok() && state->has_value());
    return state.ok() && state->has_value() ? (*state)->score() : events::v1::ScoreSnapshot();
  }

  const kafka::Topics topics_{"test."};
  testing::SimulatedClock clock_{kStart};
  testing::FakeProducer producer_;
  std::string rules_path_;
  std::string default_rules_;
  std::unique_ptr<testing::RedisServer> server_;
  std::unique_ptr<redis::HiredisClient> client_;
  std::unique_ptr<ScoringRulesSource> rules_;
  std::unique_ptr<ScoringStore> store_;
  std::unique_ptr<ModelCache> model_;
  std::unique_ptr<ScoringHandler> handler_;
  std::unique_ptr<ScoringGrpcService> grpc_;
};

// --- The decay scheduler. ---

TEST_F(ScoringTasksTest, ASalesReadyLeadQuietFor30DaysBecomesWarmWithNoNewEvent) {
  prometheus::Registry registry;
  std::unique_ptr<DecayScheduler> scheduler = MakeScheduler(registry);
  Capture(SeniorAtMidSize("quiet"));
  const std::vector<kafka::OutboundMessage> hot = HotActivity("quiet");
  ASSERT_THAT(hot, SizeIs(1));
  ASSERT_EQ(Decode(hot[0]).score().category(), events::v1::CATEGORY_SALES_READY);
  // The apply put the lead in the schedule, in the future.
  absl::StatusOr<std::optional<absl::Time>> due = store_->ScheduledAt("quiet");
  ASSERT_TRUE(due.ok() && due->has_value());
  EXPECT_GT(**due, kStart);

  // Nothing is due yet: a pass now claims nothing and sends nothing.
  absl::StatusOr<DecayPassStats> pass = scheduler->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->claimed, 0);
  EXPECT_EQ(producer_.sent_count(), 0u);

  // Thirty quiet days, a pass every hour, no input at all.
  for (int hour = 1; hour <= 30 * 24; ++hour) {
    clock_.Advance(absl::Hours(1));
    pass = scheduler->RunOnce();
    ASSERT_TRUE(pass.ok()) << pass.status();
    ASSERT_EQ(pass->errors, 0);
  }
  const std::vector<LeadScored> sent = SentSince(0);
  ASSERT_FALSE(sent.empty());
  // The lead went down step by step, each event with its previous snapshot and what changed.
  std::set<std::string> ids;
  for (const LeadScored& e : sent) {
    EXPECT_FALSE(e.changed().empty());
    EXPECT_TRUE(e.has_previous());
    EXPECT_LE(e.score().total(), e.previous().total());
    ids.insert(e.envelope().event_id());
  }
  EXPECT_EQ(ids.size(), sent.size());  // one event per change, none twice
  EXPECT_EQ(sent.front().previous().category(), events::v1::CATEGORY_SALES_READY);
  // Cooling below qualified is an exit from the "hot" segment, in the event and in the set.
  bool exited_hot = false;
  for (const LeadScored& e : sent) {
    for (const std::string& segment : e.segments_exited()) exited_hot |= segment == "hot";
  }
  EXPECT_TRUE(exited_hot);
  absl::StatusOr<redis::Reply> member =
      client_->Command({"SISMEMBER", ScoringStore::SegmentKey("hot"), "quiet"});
  ASSERT_TRUE(member.ok());
  EXPECT_EQ(member->integer, 0);
  // The last change: below 65, warm.
  const LeadScored& last = sent.back();
  EXPECT_EQ(last.score().category(), events::v1::CATEGORY_WARM) << last.DebugString();
  EXPECT_THAT(last.changed(), ::testing::Contains("category"));
  EXPECT_EQ(last.previous().category(), events::v1::CATEGORY_QUALIFIED);
  // After 30 days: pricing and page views have left their 30-day windows and the demo's 50
  // points halved: 35 + 25 = 60, still warm (and in the same score bucket as 64.99, so that
  // last step sent nothing).
  const events::v1::ScoreSnapshot stored = Stored("quiet");
  EXPECT_EQ(stored.category(), events::v1::CATEGORY_WARM);
  EXPECT_EQ(stored.total(), 60);
  EXPECT_EQ(MetricValue(registry, "leadflow_scoring_decay_emitted_total"),
            static_cast<double>(sent.size()));
  // Far fewer passes touched the lead than ran: it is only claimed when something may change.
  EXPECT_LT(MetricValue(registry, "leadflow_scoring_decay_rescored_total"), 100);
  // Released: nothing in flight.
  absl::StatusOr<redis::Reply> inflight = client_->Command({"ZCARD", ScoringStore::InflightKey()});
  ASSERT_TRUE(inflight.ok());
  EXPECT_EQ(inflight->integer, 0);
}

TEST_F(ScoringTasksTest, TwoReplicasNeverRescoreOneDueLeadTwice) {
  prometheus::Registry registry_a;
  prometheus::Registry registry_b;
  std::unique_ptr<DecayScheduler> a = MakeScheduler(registry_a);
  std::unique_ptr<DecayScheduler> b = MakeScheduler(registry_b);
  for (int i = 0; i < 20; ++i) {
    Capture(SeniorAtMidSize(absl::StrCat("lead-", i)));
    HotActivity(absl::StrCat("lead-", i));
  }
  clock_.Advance(31 * kDay);
  // Both replicas pass at the same moment, alternately, until nothing is due.
  for (int round = 0; round < 10; ++round) {
    ASSERT_TRUE(a->RunOnce().ok());
    ASSERT_TRUE(b->RunOnce().ok());
  }
  std::map<std::string, int> per_lead;
  for (const LeadScored& e : SentSince(0)) ++per_lead[e.envelope().lead_id()];
  EXPECT_THAT(per_lead, SizeIs(20));
  for (const auto& [lead, n] : per_lead) EXPECT_EQ(n, 1) << lead;
  EXPECT_EQ(MetricValue(registry_a, "leadflow_scoring_decay_rescored_total") +
                MetricValue(registry_b, "leadflow_scoring_decay_rescored_total"),
            20);
}

TEST_F(ScoringTasksTest, AFailedDeliveryResendsTheSameEventAfterTheLease) {
  prometheus::Registry registry;
  std::unique_ptr<DecayScheduler> scheduler = MakeScheduler(registry);
  Capture(SeniorAtMidSize("flaky"));
  HotActivity("flaky");
  clock_.Advance(31 * kDay);
  producer_.FailDeliveries(1, absl::UnavailableError("broker down"));
  absl::StatusOr<DecayPassStats> pass = scheduler->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->emitted, 1);
  EXPECT_EQ(pass->errors, 1);
  EXPECT_EQ(pass->released, 0);
  const std::vector<LeadScored> first = SentSince(0);
  ASSERT_THAT(first, SizeIs(1));

  // Within the lease nothing happens; after it the claim comes back at its old due time and
  // the re-score replays the same apply: the same event id, not a new change.
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(scheduler->RunOnce().ok());
  EXPECT_EQ(producer_.sent_count(), 1u);
  clock_.Advance(absl::Minutes(2));
  pass = scheduler->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->reclaimed, 1);
  EXPECT_EQ(pass->released, 1);
  const std::vector<LeadScored> all = SentSince(0);
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[1].envelope().event_id(), all[0].envelope().event_id());
  EXPECT_EQ(all[1].SerializeAsString(), all[0].SerializeAsString());
}

TEST_F(ScoringTasksTest, ErasureTakesTheLeadOutOfTheScheduleAndTheIndex) {
  Capture(SeniorAtMidSize("gone"));
  HotActivity("gone");
  ASSERT_TRUE(store_->ScheduledAt("gone")->has_value());
  ASSERT_TRUE(store_->Erase("gone", rules_->Current()->segment_ids(), absl::Hours(1)).ok());
  EXPECT_FALSE(store_->ScheduledAt("gone")->has_value());
  EXPECT_EQ(*store_->CountLeadsAfter(""), 0);
}

// --- The re-score after a rules change. ---

TEST_F(ScoringTasksTest, ARulesChangeRescoresEveryLeadThrottledResumablyAndEmitsOnlyChanges) {
  // 30 leads: 10 sales-ready, 20 that only have a profile (cold).
  for (int i = 0; i < 30; ++i) {
    const std::string id = absl::StrCat("lead-", i < 10 ? "a" : "b", i);
    Capture(SeniorAtMidSize(id));
    if (i < 10) HotActivity(id);
  }
  RescorerOptions options;
  options.leads_per_second = 10;
  options.owner = "replica-1";
  prometheus::Registry registry;
  auto rescorer =
      std::make_unique<Rescorer>(*handler_, *rules_, *store_, producer_, clock_, registry, options);
  // The first start re-scores once for the rules in force; nothing changes, nothing is sent.
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(rescorer->RunOnce().ok());
  }
  absl::StatusOr<RescorePassStats> pass = rescorer->RunOnce();
  ASSERT_TRUE(pass.ok());
  ASSERT_TRUE(pass->finished);
  EXPECT_EQ(producer_.sent_count(), 0u);
  const double baseline = MetricValue(registry, "leadflow_scoring_rescore_rescored_total");
  EXPECT_EQ(baseline, 30);

  // New rules: sales-ready from 100, so the hot leads (94) drop to qualified.
  WriteRules(absl::StrReplaceAll(default_rules_, {{"sales_ready: 85", "sales_ready: 100"}}));
  ASSERT_TRUE(rules_->ReloadIfChanged().ok());

  // One second's worth of budget per pass: 10 leads, the gauge counts down.
  clock_.Advance(absl::Seconds(1));
  pass = rescorer->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->rescored, 10);
  EXPECT_EQ(pass->remaining, 20);
  EXPECT_EQ(MetricValue(registry, "leadflow_scoring_rescore_remaining"), 20);
  // No time passed: no budget, nothing done.
  pass = rescorer->RunOnce();
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->rescored, 0);

  // A restart: a new instance (another replica name, once the old lock expires) resumes at the
  // cursor in Redis instead of starting over.
  rescorer.reset();
  clock_.Advance(absl::Seconds(31));
  ASSERT_TRUE(client_->Command({"DEL", ScoringStore::RescoreLockKey()}).ok());  // lease expired
  options.owner = "replica-2";
  prometheus::Registry registry2;
  rescorer = std::make_unique<Rescorer>(*handler_, *rules_, *store_, producer_, clock_, registry2,
                                        options);
  int rescored_after_restart = 0;
  for (int i = 0; i < 10 && !pass->finished; ++i) {
    clock_.Advance(absl::Seconds(1));
    pass = rescorer->RunOnce();
    ASSERT_TRUE(pass.ok()) << pass.status();
    rescored_after_restart += pass->rescored;
  }
  EXPECT_TRUE(pass->finished);
  EXPECT_EQ(rescored_after_restart, 20);
  EXPECT_EQ(MetricValue(registry2, "leadflow_scoring_rescore_remaining"), 0);

  // Exactly the ten hot leads changed, each once, qualified now.
  const std::vector<LeadScored> sent = SentSince(0);
  ASSERT_THAT(sent, SizeIs(10));
  for (const LeadScored& e : sent) {
    EXPECT_EQ(e.envelope().lead_id().substr(0, 6), "lead-a");
    EXPECT_EQ(e.previous().category(), events::v1::CATEGORY_SALES_READY);
    EXPECT_EQ(e.score().category(), events::v1::CATEGORY_QUALIFIED);
  }
  // Done is done: further passes send nothing.
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(rescorer->RunOnce().ok());
  EXPECT_EQ(producer_.sent_count(), 10u);
}

TEST_F(ScoringTasksTest, OnlyOneReplicaWalksAtATime) {
  for (int i = 0; i < 5; ++i) Capture(SeniorAtMidSize(absl::StrCat("lead-", i)));
  RescorerOptions one;
  one.owner = "one";
  RescorerOptions two;
  two.owner = "two";
  prometheus::Registry r1;
  prometheus::Registry r2;
  Rescorer a(*handler_, *rules_, *store_, producer_, clock_, r1, one);
  Rescorer b(*handler_, *rules_, *store_, producer_, clock_, r2, two);
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<RescorePassStats> pa = a.RunOnce();
  absl::StatusOr<RescorePassStats> pb = b.RunOnce();
  ASSERT_TRUE(pa.ok() && pb.ok());
  EXPECT_TRUE(pa->locked);
  EXPECT_FALSE(pb->locked);
}

TEST_F(ScoringTasksTest, AnInvalidReloadKeepsTheRunningRules) {
  const std::string before = rules_->Current()->fingerprint();
  WriteRules(absl::StrReplaceAll(default_rules_, {{"warm: 40", "warm: -1"}}));
  const absl::Status reload = rules_->ReloadIfChanged();
  EXPECT_EQ(reload.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(reload.message()), ::testing::HasSubstr("scoring.thresholds.warm"));
  EXPECT_EQ(rules_->Current()->fingerprint(), before);
  // Scoring goes on with them.
  Capture(SeniorAtMidSize("still"));
  EXPECT_EQ(Stored("still").total(), 35);
}

// --- The learned model. ---

TEST_F(ScoringTasksTest, OutcomesTrainTheModelOnceEachAndScoresServeIt) {
  // Until 4 outcomes the prior is served, without factors.
  Capture(SeniorAtMidSize("probe"));
  scoring::v1::GetScoreRequest request;
  request.set_lead_id("probe");
  scoring::v1::GetScoreResponse response;
  ASSERT_TRUE(grpc_->GetScore(nullptr, &request, &response).ok());
  EXPECT_EQ(response.score().conversion_probability(), 0.05);
  EXPECT_THAT(response.score().top_factors(), IsEmpty());

  // Hot leads are won, cold ones lost.
  for (int i = 0; i < 6; ++i) {
    const std::string hot = absl::StrCat("hot-", i);
    Capture(SeniorAtMidSize(hot));
    HotActivity(hot);
    ASSERT_TRUE(Outcome(hot, "won-" + hot, LeadOutcome::KIND_WON).ok());
    LeadProfile cold_profile;
    cold_profile.set_lead_id(absl::StrCat("cold-", i));
    cold_profile.set_seniority(events::v1::SENIORITY_STUDENT);
    Capture(cold_profile);
    ASSERT_TRUE(
        Outcome(cold_profile.lead_id(), "lost-" + cold_profile.lead_id(), LeadOutcome::KIND_LOST)
            .ok());
  }
  absl::StatusOr<std::optional<internal::v1::ConversionModelState>> model = store_->LoadModel();
  ASSERT_TRUE(model.ok() && model->has_value());
  EXPECT_EQ((*model)->outcomes(), 12);
  EXPECT_EQ((*model)->positives(), 6);
  const std::string weights = (*model)->SerializeAsString();

  // A replayed outcome does not train again; accepted/contacted do not train at all.
  ASSERT_TRUE(Outcome("hot-0", "won-hot-0", LeadOutcome::KIND_WON).ok());
  ASSERT_TRUE(Outcome("hot-1", "acc-hot-1", LeadOutcome::KIND_ACCEPTED).ok());
  model = store_->LoadModel();
  ASSERT_TRUE(model.ok() && model->has_value());
  EXPECT_EQ((*model)->outcomes(), 12);
  EXPECT_EQ((*model)->SerializeAsString(), weights);

  // Served with GetScore and ExplainScore: above the prior for a hot lead, with factors.
  const std::vector<kafka::OutboundMessage> scored = HotActivity("probe");
  ASSERT_THAT(scored, SizeIs(1));
  const LeadScored event = Decode(scored[0]);
  EXPECT_GT(event.score().conversion_probability(), 0.5);
  EXPECT_FALSE(event.score().top_factors().empty());
  ASSERT_TRUE(grpc_->GetScore(nullptr, &request, &response).ok());
  EXPECT_EQ(response.score().conversion_probability(), event.score().conversion_probability());
  ASSERT_FALSE(response.score().top_factors().empty());
  scoring::v1::ExplainScoreResponse explained;
  ASSERT_TRUE(grpc_->ExplainScore(nullptr, &request, &explained).ok());
  EXPECT_EQ(explained.score().conversion_probability(), event.score().conversion_probability());

  // A cold lead scores below the hot one.
  LeadProfile student;
  student.set_lead_id("student");
  student.set_seniority(events::v1::SENIORITY_STUDENT);
  Capture(student);
  request.set_lead_id("student");
  ASSERT_TRUE(grpc_->GetScore(nullptr, &request, &response).ok());
  EXPECT_LT(response.score().conversion_probability(), event.score().conversion_probability());

  // Another replica with its own cache sees the trained model.
  ModelCache other(*store_, clock_);
  absl::StatusOr<std::shared_ptr<const ConversionModel>> loaded = other.Get(14);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->outcomes(), 12);

  // The model is shared: erasing a lead it learned from leaves it (and its knowledge) alone.
  ASSERT_TRUE(store_->Erase("hot-0", rules_->Current()->segment_ids(), absl::Hours(1)).ok());
  model = store_->LoadModel();
  ASSERT_TRUE(model.ok() && model->has_value());
  EXPECT_EQ((*model)->outcomes(), 12);
  absl::StatusOr<int64_t> version = store_->ModelVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 12);  // one version per trained outcome
}

}  // namespace
}  // namespace leadflow::scoring
