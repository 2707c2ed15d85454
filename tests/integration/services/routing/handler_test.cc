// Integration tests of the routing service's handler and gRPC service against a real
// redis-server (no Kafka): messages are built with events::Encode and fed to the handler, and
// the outputs it returns are what the consumer loop would publish. Rules: config/routing.yaml
// unless a test installs its own. Time: Monday 5 January 2026, 11:00 UTC (UK desk at work).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/civil_time.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/grpc/status.h"
#include "common/redis/hiredis_client.h"
#include "common/redis/keys.h"
#include "common/testing/events.h"
#include "common/testing/fake_kafka.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_keys.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "common/validation/violations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "prometheus/registry.h"
#include "services/routing/effective_rules.h"
#include "services/routing/grpc_service.h"
#include "services/routing/handler.h"
#include "services/routing/scheduler.h"
#include "services/routing/store.h"

namespace leadflow::routing {
namespace {

using events::v1::LeadOutcome;
using events::v1::LeadRouted;
using events::v1::LeadScored;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 11, 0, 0), absl::UTCTimeZone());

// One round-robin team whose reps can take 30, 20 (daily quota) and 25 leads: 75 in all.
constexpr char kCappedTeam[] = R"yaml(
version: capped-test
default_team: capped
teams:
  - id: capped
    strategy: STRATEGY_ROUND_ROBIN
    sla_minutes: 10
    reps:
      - {id: ann, max_open_leads: 30}
      - {id: bob, max_open_leads: 50, daily_quota: 20}
      - {id: cyd, max_open_leads: 25}
)yaml";

using testing::Consumed;
using testing::Envelope;

LeadRouted DecodeRouted(const kafka::OutboundMessage& m) {
  LeadRouted routed;
  EXPECT_TRUE(events::Decode(Consumed(m), &routed).ok());
  return routed;
}

struct Lead {
  std::string country = "GB";
  std::vector<std::string> interests = {"shoes"};
};

class RoutingHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartRedisForTest();
    ASSERT_NE(server_, nullptr);
    client_ = NewClient();
    absl::StatusOr<std::unique_ptr<RoutingRulesSource>> rules = RoutingRulesSource::Create(
        std::string(LEADFLOW_SOURCE_DIR) + "/config/routing.yaml", LoadRoutingRules);
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    store_ = std::make_unique<RoutingStore>(*client_);
    // Overrides are re-read on every call: every change is visible at once.
    effective_ = std::make_unique<EffectiveRules>(*rules_, *store_, clock_, absl::ZeroDuration());
    handler_ = std::make_unique<RoutingHandler>(*effective_, *store_, topics_, clock_, registry_);
    scheduler_ = std::make_unique<RoutingScheduler>(*handler_, *effective_, *store_, producer_,
                                                    clock_, registry_);
    grpc_ = std::make_unique<RoutingGrpcService>(*effective_, *store_, producer_, topics_, clock_,
                                                 scheduler_.get());
  }

  std::unique_ptr<redis::HiredisClient> NewClient() {
    redis::HiredisOptions options;
    options.port = server_->port();
    return std::make_unique<redis::HiredisClient>(options);
  }

  // Another routing replica on the same Redis, with its own connection, store and handler.
  struct SecondReplica {
    SecondReplica(std::unique_ptr<redis::HiredisClient> c, RoutingRulesSource& source,
                  const kafka::Topics& topics, const testing::SimulatedClock& clock)
        : client(std::move(c)),
          store(*client),
          rules(source, store, clock, absl::ZeroDuration()),
          handler(rules, store, topics, clock, registry) {}
    std::unique_ptr<redis::HiredisClient> client;
    RoutingStore store;
    EffectiveRules rules;
    prometheus::Registry registry;
    RoutingHandler handler;
  };
  std::unique_ptr<SecondReplica> NewSecondReplica() {
    return std::make_unique<SecondReplica>(NewClient(), *rules_, topics_, clock_);
  }

  // Two replicas' sales-ready events for the same leads (ids a-<lead> and b-<lead>, as when
  // scoring emitted twice) and what each replica's route returned for them.
  static constexpr int kRacingLeads = 200;
  struct RacingInputs {
    std::vector<kafka::ConsumedMessage> to_a, to_b;
    std::vector<std::vector<kafka::OutboundMessage>> out_a, out_b;
  };
  RacingInputs RacingInputsFor(int leads) {
    RacingInputs race;
    for (int i = 0; i < leads; ++i) {
      const std::string lead = "lead-" + std::to_string(i);
      race.to_a.push_back(Scored(lead, "a-" + lead, {"", {}}));
      race.to_b.push_back(Scored(lead, "b-" + lead, {"", {}}));
    }
    race.out_a.resize(leads);
    race.out_b.resize(leads);
    return race;
  }
  // HandleScored, retried on ABORTED (many conflicts) as the consumer loop does: never skipped.
  static void RouteRetryingConflicts(RoutingHandler& handler, const kafka::ConsumedMessage& input,
                                     std::vector<kafka::OutboundMessage>& output) {
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<std::vector<kafka::OutboundMessage>> out = handler.HandleScored(input);
      if (out.ok()) {
        output = *std::move(out);
        return;
      }
      if (out.status().code() != absl::StatusCode::kAborted || attempt > 100) {
        ADD_FAILURE() << out.status();
        return;
      }
    }
  }
  // Runs `replica_a` (this fixture's handler on race.to_a) while `other` routes race.to_b
  // backwards, then checks the outcome (ExpectCapsReachedExactlyOnce).
  void RaceAgainstSecondReplica(SecondReplica& other, RacingInputs& race,
                                const std::function<void()>& replica_a) {
    std::thread a(replica_a);
    std::thread b([&] {
      for (int i = static_cast<int>(race.to_b.size()) - 1; i >= 0; --i) {
        RouteRetryingConflicts(other.handler, race.to_b[i], race.out_b[i]);
      }
    });
    a.join();
    b.join();
    ExpectCapsReachedExactlyOnce(race);
  }
  // kCappedTeam after a race: every lead routed by exactly one replica, every cap reached
  // exactly and none exceeded (ann 30, bob 20, cyd 25), the rest in the team queue.
  void ExpectCapsReachedExactlyOnce(const RacingInputs& race) {
    const int leads = static_cast<int>(race.to_a.size());
    std::map<std::string, int> assigned_per_rep;
    int queued = 0;
    for (int i = 0; i < leads; ++i) {
      const std::string lead = "lead-" + std::to_string(i);
      ASSERT_EQ(race.out_a[i].size() + race.out_b[i].size(), 1u)
          << lead << " routed more or less than once";
      const LeadRouted routed =
          DecodeRouted(race.out_a[i].empty() ? race.out_b[i][0] : race.out_a[i][0]);
      EXPECT_EQ(routed.team_id(), "capped");
      if (routed.kind() == LeadRouted::KIND_QUEUED) {
        ++queued;
      } else {
        EXPECT_EQ(routed.kind(), LeadRouted::KIND_ASSIGNED);
        ++assigned_per_rep[routed.rep_id()];
        EXPECT_EQ(GetAssignment(lead).rep_id(), routed.rep_id());
      }
    }
    EXPECT_THAT(assigned_per_rep, ElementsAre(std::pair<const std::string, int>("ann", 30),
                                              std::pair<const std::string, int>("bob", 20),
                                              std::pair<const std::string, int>("cyd", 25)));
    EXPECT_EQ(queued, leads - 75);
    for (const auto& [rep, n] : assigned_per_rep) {
      EXPECT_EQ(OpenLeads("capped", rep), n) << rep;
      EXPECT_EQ(Cardinality(RoutingStore::RepOpenKey(rep)), n) << rep;
    }
    EXPECT_EQ(Cardinality(RoutingStore::TeamQueueKey("capped")), leads - 75);
  }

  void UseRules(const std::string& yaml) {
    config::v1::RoutingRules rules;
    ASSERT_TRUE(config::ParseYamlProto(yaml, &rules).ok());
    absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> compiled =
        CompileRoutingRules(rules);
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    rules_->SetForTest(*compiled);
  }

  // A LeadScored moving the lead from `previous` to `current`.
  kafka::ConsumedMessage Scored(
      const std::string& lead_id, const std::string& event_id, const Lead& lead = {},
      events::v1::Category previous = events::v1::CATEGORY_QUALIFIED,
      events::v1::Category current = events::v1::CATEGORY_SALES_READY,
      events::v1::LifecycleStage stage = events::v1::STAGE_QUALIFIED,
      events::v1::LifecycleStage previous_stage = events::v1::STAGE_QUALIFIED) {
    LeadScored event;
    *event.mutable_envelope() = Envelope(lead_id, event_id, clock_.Now());
    event.mutable_lead()->set_lead_id(lead_id);
    event.mutable_lead()->set_email(lead_id + "@shop.example");
    event.mutable_lead()->set_country(lead.country);
    for (const std::string& i : lead.interests) event.mutable_lead()->add_interests(i);
    event.mutable_previous()->set_category(previous);
    event.mutable_previous()->set_stage(previous_stage);
    event.mutable_score()->set_category(current);
    event.mutable_score()->set_stage(stage);
    event.mutable_score()->set_total(current == events::v1::CATEGORY_SALES_READY ? 90 : 50);
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsScored), lead_id, event));
  }

  kafka::ConsumedMessage Outcome(const std::string& lead_id, const std::string& event_id,
                                 LeadOutcome::Kind kind, const std::string& rep_id = "") {
    LeadOutcome event;
    *event.mutable_envelope() = Envelope(lead_id, event_id, clock_.Now());
    event.set_kind(kind);
    event.set_rep_id(rep_id);
    event.set_reason("test");
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsOutcomes), lead_id, event));
  }

  kafka::ConsumedMessage Erasure(const std::string& lead_id, const std::string& event_id) {
    events::v1::LeadErasure event;
    *event.mutable_envelope() = Envelope(lead_id, event_id, clock_.Now());
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsErasure), lead_id, event));
  }

  std::vector<kafka::OutboundMessage> Handle(
      absl::StatusOr<std::vector<kafka::OutboundMessage>> (RoutingHandler::*route)(
          const kafka::ConsumedMessage&),
      const kafka::ConsumedMessage& message) {
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out = (handler_.get()->*route)(message);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *std::move(out) : std::vector<kafka::OutboundMessage>{};
  }

  // The one LeadRouted a message must produce.
  LeadRouted RoutedBy(absl::StatusOr<std::vector<kafka::OutboundMessage>> (RoutingHandler::*route)(
                          const kafka::ConsumedMessage&),
                      const kafka::ConsumedMessage& message) {
    std::vector<kafka::OutboundMessage> out = Handle(route, message);
    EXPECT_THAT(out, SizeIs(1));
    return out.empty() ? LeadRouted() : DecodeRouted(out[0]);
  }

  routing::v1::Assignment GetAssignment(const std::string& lead_id) {
    routing::v1::GetAssignmentRequest request;
    request.set_lead_id(lead_id);
    routing::v1::Assignment assignment;
    grpc::Status s = grpc_->GetAssignment(nullptr, &request, &assignment);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return assignment;
  }

  std::vector<std::string> RepQueue(const std::string& rep_id) {
    routing::v1::ListQueueRequest request;
    request.set_rep_id(rep_id);
    routing::v1::ListQueueResponse response;
    EXPECT_TRUE(grpc_->ListQueue(nullptr, &request, &response).ok());
    std::vector<std::string> out;
    for (const auto& a : response.assignments()) out.push_back(a.lead_id());
    return out;
  }

  int64_t OpenLeads(const std::string& team_id, const std::string& rep_id) {
    absl::StatusOr<internal::v1::RoutingTeamState> team = store_->LoadTeamState(team_id);
    EXPECT_TRUE(team.ok()) << team.status();
    if (!team.ok()) return -1;
    auto it = team->reps().find(rep_id);
    return it == team->reps().end() ? 0 : it->second.open_leads();
  }

  std::vector<std::string> AllKeys() { return testing::AllKeys(*client_); }

  // Keys naming the lead, and sorted sets holding it.
  std::vector<std::string> TracesOf(const std::string& lead_id) {
    std::vector<std::string> traces;
    for (const std::string& key : AllKeys()) {
      if (absl::StrContains(key, lead_id)) traces.push_back(key);
      absl::StatusOr<redis::Reply> type = client_->Command({"TYPE", key});
      if (type.ok() && type->str == "zset") {
        absl::StatusOr<redis::Reply> score = client_->Command({"ZSCORE", key, lead_id});
        if (score.ok() && !score->is_nil()) traces.push_back(key + " member");
      }
    }
    return traces;
  }

  grpc::Status SetAvailability(const std::string& rep_id, routing::v1::Availability availability,
                               const std::string& request_id,
                               std::optional<absl::Time> until = std::nullopt,
                               routing::v1::SetAvailabilityResponse* response = nullptr) {
    routing::v1::SetAvailabilityRequest request;
    request.set_rep_id(rep_id);
    request.set_availability(availability);
    request.set_request_id(request_id);
    if (until.has_value()) *request.mutable_until() = events::ToProto(*until);
    routing::v1::SetAvailabilityResponse ignored;
    return grpc_->SetAvailability(nullptr, &request, response != nullptr ? response : &ignored);
  }

  // One scheduler pass; fails the test on a pass-level error.
  RoutingPassStats Pass() {
    absl::StatusOr<RoutingPassStats> stats = scheduler_->RunOnce();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : RoutingPassStats{};
  }

  // The LeadRouted events the producer was given from sent()[from] on.
  std::vector<LeadRouted> PublishedRouted(size_t from = 0) {
    std::vector<LeadRouted> out;
    const std::vector<testing::FakeProducer::Sent> sent = producer_.sent();
    for (size_t i = from; i < sent.size(); ++i) {
      if (sent[i].message.topic == topics_.Name(kafka::kLeadsRouted)) {
        out.push_back(DecodeRouted(sent[i].message));
      }
    }
    return out;
  }

  std::vector<std::string> TeamQueue(const std::string& team_id) {
    routing::v1::ListQueueRequest request;
    request.set_team_id(team_id);
    routing::v1::ListQueueResponse response;
    EXPECT_TRUE(grpc_->ListQueue(nullptr, &request, &response).ok());
    std::vector<std::string> out;
    for (const auto& a : response.assignments()) out.push_back(a.lead_id());
    return out;
  }

  // count and sum of a routing histogram for `team`.
  std::pair<uint64_t, double> Histogram(const std::string& name, const std::string& team) {
    for (const prometheus::MetricFamily& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        for (const prometheus::ClientMetric::Label& label : metric.label) {
          if (label.name == "team" && label.value == team) {
            return {metric.histogram.sample_count, metric.histogram.sample_sum};
          }
        }
      }
    }
    return {0, 0};
  }

  int64_t Cardinality(const std::string& key) {
    absl::StatusOr<redis::Reply> card = client_->Command({"ZCARD", key});
    EXPECT_TRUE(card.ok()) << card.status();
    return card.ok() ? card->integer : -1;
  }

  const kafka::Topics topics_{"test."};
  testing::SimulatedClock clock_{kStart};
  testing::FakeProducer producer_;
  std::unique_ptr<testing::RedisServer> server_;
  std::unique_ptr<redis::HiredisClient> client_;
  std::unique_ptr<RoutingRulesSource> rules_;
  std::unique_ptr<RoutingStore> store_;
  prometheus::Registry registry_;
  std::unique_ptr<EffectiveRules> effective_;
  std::unique_ptr<RoutingHandler> handler_;
  std::unique_ptr<RoutingScheduler> scheduler_;
  std::unique_ptr<RoutingGrpcService> grpc_;
};

TEST_F(RoutingHandlerTest, ASalesReadyCrossingEmitsOneLeadsRoutedKeyedByTeamWithARep) {
  const std::vector<kafka::OutboundMessage> out =
      Handle(&RoutingHandler::HandleScored, Scored("lead-1", "scored-1"));
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0].topic, "test.leads.routed");
  EXPECT_EQ(out[0].key, "uk-fashion");
  const LeadRouted routed = DecodeRouted(out[0]);
  EXPECT_EQ(routed.kind(), LeadRouted::KIND_ASSIGNED);
  EXPECT_EQ(routed.envelope().event_id(), events::DeriveEventId("routed", "scored-1"));
  EXPECT_EQ(routed.envelope().causation_id(), "scored-1");
  EXPECT_EQ(routed.envelope().trace_id(), "trace-lead-1");
  EXPECT_EQ(routed.envelope().lead_id(), "lead-1");
  EXPECT_EQ(routed.lead().email(), "lead-1@shop.example");
  EXPECT_EQ(routed.score().total(), 90);
  EXPECT_EQ(routed.team_id(), "uk-fashion");
  EXPECT_EQ(routed.rep_id(), "amelia.hughes");
  EXPECT_EQ(routed.rule_id(), "uk-fashion");
  EXPECT_THAT(routed.reason(), ::testing::HasSubstr("round-robin"));
  EXPECT_EQ(events::FromProto(routed.sla_deadline()), kStart + absl::Minutes(15));
  EXPECT_EQ(routed.attempt(), 1);
  EXPECT_EQ(routed.episode(), 1);

  const routing::v1::Assignment assignment = GetAssignment("lead-1");
  EXPECT_EQ(assignment.state(), "assigned");
  EXPECT_EQ(assignment.rep_id(), "amelia.hughes");
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 1);
  EXPECT_THAT(RepQueue("amelia.hughes"), ElementsAre("lead-1"));
}

TEST_F(RoutingHandlerTest, LeadsGoToTheTeamOfTheFirstMatchingRule) {
  struct Case {
    Lead lead;
    std::string team;
  };
  const std::vector<Case> cases = {
      {{"GB", {"shoes"}}, "uk-fashion"}, {{"GB", {"software"}}, "emea"},
      {{"DE", {"shoes"}}, "emea"},       {{"US", {}}, "americas"},
      {{"JP", {"apparel"}}, "apac"},     {{"ZA", {}}, "emea"},
      {{"", {}}, "inbound-queue"},       {{"AQ", {"shoes"}}, "inbound-queue"},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string lead = "lead-" + std::to_string(i++);
    const std::vector<kafka::OutboundMessage> out =
        Handle(&RoutingHandler::HandleScored, Scored(lead, "scored-" + lead, c.lead));
    ASSERT_THAT(out, SizeIs(1)) << c.lead.country;
    EXPECT_EQ(out[0].key, c.team) << c.lead.country;
    EXPECT_EQ(DecodeRouted(out[0]).team_id(), c.team) << c.lead.country;
  }
}

TEST_F(RoutingHandlerTest, TheSameInputTwiceGivesTheSameOutputAndAssignsOnce) {
  const kafka::ConsumedMessage scored = Scored("lead-1", "scored-1");
  const std::vector<kafka::OutboundMessage> first = Handle(&RoutingHandler::HandleScored, scored);
  clock_.Advance(absl::Minutes(3));
  const std::vector<kafka::OutboundMessage> again = Handle(&RoutingHandler::HandleScored, scored);
  ASSERT_THAT(first, SizeIs(1));
  ASSERT_THAT(again, SizeIs(1));
  EXPECT_EQ(again[0].key, first[0].key);
  EXPECT_EQ(again[0].value, first[0].value);
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 1);
  EXPECT_EQ(OpenLeads("uk-fashion", "oliver.bennett"), 0);
}

TEST_F(RoutingHandlerTest, ASecondSalesReadyEventInTheSameEpisodeRoutesNothing) {
  ASSERT_THAT(Handle(&RoutingHandler::HandleScored, Scored("lead-1", "scored-1")), SizeIs(1));
  // Dropped below the threshold and crossed it again: still the same episode.
  EXPECT_THAT(Handle(&RoutingHandler::HandleScored,
                     Scored("lead-1", "scored-2", {}, events::v1::CATEGORY_SALES_READY,
                            events::v1::CATEGORY_QUALIFIED)),
              IsEmpty());
  EXPECT_THAT(Handle(&RoutingHandler::HandleScored, Scored("lead-1", "scored-3")), IsEmpty());
  EXPECT_EQ(GetAssignment("lead-1").rep_id(), "amelia.hughes");
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 1);
}

TEST_F(RoutingHandlerTest, ScoresBelowTheThresholdRouteNothingAndStoreNothing) {
  EXPECT_THAT(Handle(&RoutingHandler::HandleScored,
                     Scored("lead-1", "scored-1", {}, events::v1::CATEGORY_WARM,
                            events::v1::CATEGORY_QUALIFIED)),
              IsEmpty());
  EXPECT_THAT(AllKeys(), IsEmpty());
}

TEST_F(RoutingHandlerTest, RoundRobinRotatesOverTheTeamsRepsAcrossLeads) {
  std::vector<std::string> reps;
  for (int i = 0; i < 6; ++i) {
    const std::string lead = "lead-" + std::to_string(i);
    reps.push_back(
        RoutedBy(&RoutingHandler::HandleScored, Scored(lead, "scored-" + lead)).rep_id());
  }
  EXPECT_THAT(reps, ElementsAre("amelia.hughes", "oliver.bennett", "priya.shah", "amelia.hughes",
                                "oliver.bennett", "priya.shah"));
  EXPECT_EQ(OpenLeads("uk-fashion", "priya.shah"), 2);
}

TEST_F(RoutingHandlerTest, ALeadNoRepCanTakeIsQueuedInItsTeam) {
  // 11:00 UTC is 06:00 in New York: no Americas rep is working yet.
  const LeadRouted routed =
      RoutedBy(&RoutingHandler::HandleScored, Scored("lead-us", "scored-us", {"US", {}}));
  EXPECT_EQ(routed.kind(), LeadRouted::KIND_QUEUED);
  EXPECT_EQ(routed.team_id(), "americas");
  EXPECT_EQ(routed.rep_id(), "");
  EXPECT_THAT(routed.reason(), ::testing::HasSubstr("queued in americas"));
  EXPECT_EQ(GetAssignment("lead-us").state(), "queued");

  routing::v1::ListQueueRequest request;
  request.set_team_id("americas");
  routing::v1::ListQueueResponse response;
  ASSERT_TRUE(grpc_->ListQueue(nullptr, &request, &response).ok());
  ASSERT_THAT(response.assignments(), SizeIs(1));
  EXPECT_EQ(response.assignments(0).lead_id(), "lead-us");

  // Queued is held in this episode: a later score does not route it again.
  clock_.Advance(absl::Hours(3));
  EXPECT_THAT(Handle(&RoutingHandler::HandleScored, Scored("lead-us", "scored-us-2", {"US", {}})),
              IsEmpty());
}

TEST_F(RoutingHandlerTest, TwoReplicasRouting200LeadsNeverExceedCapsNorAssignALeadTwice) {
  UseRules(kCappedTeam);
  std::unique_ptr<SecondReplica> other = NewSecondReplica();
  // Each replica gets its own sales-ready event for every lead (different event ids, as when
  // scoring emitted twice), in opposite orders: they race on the team's record all along, and
  // on the same leads where they meet.
  RacingInputs race = RacingInputsFor(kRacingLeads);
  auto replica_a = [&] {
    for (int i = 0; i < kRacingLeads; ++i)
      RouteRetryingConflicts(*handler_, race.to_a[i], race.out_a[i]);
  };
  RaceAgainstSecondReplica(*other, race, replica_a);
}

TEST_F(RoutingHandlerTest, ARejectedLeadIsReassignedToARepWhoHasNotHadIt) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "scored-1")).rep_id(),
            "amelia.hughes");

  // The rep rejects over gRPC: the command is published on leads.outcomes, and routing applies
  // it when it consumes it.
  routing::v1::OutcomeRequest reject;
  reject.set_lead_id("lead-1");
  reject.set_rep_id("amelia.hughes");
  reject.set_reason("not my territory");
  reject.set_request_id("req-1");
  routing::v1::OutcomeResponse response;
  grpc::Status status = grpc_->Reject(nullptr, &reject, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.assignment().rep_id(), "amelia.hughes");
  ASSERT_EQ(producer_.sent_count(), 1u);
  const kafka::OutboundMessage published = producer_.sent()[0].message;
  EXPECT_EQ(published.topic, "test.leads.outcomes");
  EXPECT_EQ(published.key, "lead-1");
  LeadOutcome outcome;
  ASSERT_TRUE(events::Decode(Consumed(published), &outcome).ok());
  EXPECT_EQ(outcome.envelope().event_id(), events::DeriveEventId("outcome", "req-1"));
  EXPECT_EQ(outcome.kind(), LeadOutcome::KIND_REJECTED);
  EXPECT_EQ(outcome.team_id(), "uk-fashion");

  const LeadRouted reassigned = RoutedBy(&RoutingHandler::HandleOutcome, Consumed(published));
  EXPECT_EQ(reassigned.kind(), LeadRouted::KIND_REASSIGNED);
  EXPECT_EQ(reassigned.rep_id(), "oliver.bennett");
  EXPECT_EQ(reassigned.previous_rep_id(), "amelia.hughes");
  EXPECT_EQ(reassigned.attempt(), 2);
  EXPECT_EQ(reassigned.episode(), 1);
  EXPECT_EQ(reassigned.envelope().event_id(),
            events::DeriveEventId("routed", outcome.envelope().event_id()));
  EXPECT_THAT(reassigned.reason(), ::testing::HasSubstr("rejected by amelia.hughes"));
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 0);
  EXPECT_EQ(OpenLeads("uk-fashion", "oliver.bennett"), 1);
  EXPECT_THAT(RepQueue("amelia.hughes"), IsEmpty());
  EXPECT_THAT(RepQueue("oliver.bennett"), ElementsAre("lead-1"));

  // A rejection by a rep who no longer holds the lead is stale and changes nothing.
  EXPECT_THAT(Handle(&RoutingHandler::HandleOutcome,
                     Outcome("lead-1", "stale", LeadOutcome::KIND_REJECTED, "amelia.hughes")),
              IsEmpty());
  EXPECT_EQ(grpc_->Reject(nullptr, &reject, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // Every rep has had it after the third: nobody left, so it waits in the queue.
  EXPECT_EQ(RoutedBy(&RoutingHandler::HandleOutcome,
                     Outcome("lead-1", "rej-2", LeadOutcome::KIND_REJECTED, "oliver.bennett"))
                .rep_id(),
            "priya.shah");
  const LeadRouted queued = RoutedBy(&RoutingHandler::HandleOutcome,
                                     Outcome("lead-1", "rej-3", LeadOutcome::KIND_REJECTED));
  EXPECT_EQ(queued.kind(), LeadRouted::KIND_QUEUED);
  EXPECT_EQ(queued.rep_id(), "");
  EXPECT_EQ(queued.previous_rep_id(), "priya.shah");
  EXPECT_EQ(GetAssignment("lead-1").state(), "queued");
  for (const char* rep : {"amelia.hughes", "oliver.bennett", "priya.shah"}) {
    EXPECT_EQ(OpenLeads("uk-fashion", rep), 0) << rep;
  }
  // The queue never hands it back to a rep who rejected it: it waits for the manager.
  EXPECT_EQ(Pass().drained, 0);
  EXPECT_THAT(TeamQueue("uk-fashion"), ElementsAre("lead-1"));
  // ...while leads behind it are still drained to whoever can take them.
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(SetAvailability("amelia.hughes", routing::v1::AVAILABILITY_AWAY, "a").ok());
  ASSERT_TRUE(SetAvailability("oliver.bennett", routing::v1::AVAILABILITY_AWAY, "o").ok());
  ASSERT_TRUE(SetAvailability("priya.shah", routing::v1::AVAILABILITY_AWAY, "p").ok());
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-2", "s-2")).kind(),
            LeadRouted::KIND_QUEUED);
  routing::v1::SetAvailabilityResponse back;
  ASSERT_TRUE(
      SetAvailability("priya.shah", routing::v1::AVAILABILITY_AVAILABLE, "p2", std::nullopt, &back)
          .ok());
  EXPECT_THAT(back.assigned_lead_ids(), ElementsAre("lead-2"));
  EXPECT_THAT(TeamQueue("uk-fashion"), ElementsAre("lead-1"));
}

TEST_F(RoutingHandlerTest, RerouteTakesTheLeadFromItsRepAndGivesItToAnotherOnce) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "scored-1")).rep_id(),
            "amelia.hughes");
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-2", "scored-2")).rep_id(),
            "oliver.bennett");
  ASSERT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 1);

  routing::v1::RerouteRequest request;
  request.set_lead_id("lead-1");
  request.set_reason("rep moved to key accounts");
  request.set_request_id("reroute-1");
  routing::v1::RerouteResponse response;
  grpc::Status status = grpc_->Reroute(nullptr, &request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // One leads.routed event, keyed by team, acknowledged before the answer.
  const std::vector<LeadRouted> routed = PublishedRouted();
  ASSERT_THAT(routed, SizeIs(1));
  EXPECT_EQ(producer_.sent()[0].message.key, "uk-fashion");
  const LeadRouted& reassigned = routed[0];
  EXPECT_EQ(reassigned.kind(), LeadRouted::KIND_REASSIGNED);
  EXPECT_EQ(reassigned.previous_rep_id(), "amelia.hughes");
  // Round-robin goes on from the team's cursor, never back to the rep it was taken from.
  EXPECT_EQ(reassigned.rep_id(), "priya.shah");
  EXPECT_EQ(reassigned.episode(), 1);
  EXPECT_EQ(reassigned.attempt(), 2);
  EXPECT_EQ(reassigned.rule_id(), "uk-fashion");
  EXPECT_THAT(reassigned.reason(), ::testing::HasSubstr("rep moved to key accounts"));
  EXPECT_EQ(reassigned.envelope().event_id(),
            events::DeriveEventId("routed", events::DeriveEventId("reroute", "reroute-1")));
  EXPECT_TRUE(reassigned.has_sla_deadline());
  EXPECT_EQ(response.assignment().rep_id(), "priya.shah");
  EXPECT_EQ(response.assignment().state(), "assigned");
  // Capacity released and taken, indexes moved, the SLA restarted for the new rep.
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 0);
  EXPECT_EQ(OpenLeads("uk-fashion", "priya.shah"), 1);
  EXPECT_THAT(RepQueue("amelia.hughes"), IsEmpty());
  EXPECT_THAT(RepQueue("priya.shah"), ElementsAre("lead-1"));
  EXPECT_EQ(Cardinality(RoutingStore::SlaIndexKey()), 2);
  EXPECT_EQ(Cardinality(RoutingStore::OutboxKey()), 0) << "acknowledged, so out of the outbox";

  // The same request id again: the same event re-sent, nothing re-routed.
  ASSERT_TRUE(grpc_->Reroute(nullptr, &request, &response).ok());
  const std::vector<LeadRouted> again = PublishedRouted(1);
  ASSERT_THAT(again, SizeIs(1));
  EXPECT_EQ(again[0].envelope().event_id(), reassigned.envelope().event_id());
  EXPECT_EQ(again[0].rep_id(), "priya.shah");
  EXPECT_EQ(OpenLeads("uk-fashion", "priya.shah"), 1);
  EXPECT_EQ(GetAssignment("lead-1").attempt(), 2);

  // A second re-route skips every rep who had the lead this episode.
  request.set_request_id("reroute-2");
  ASSERT_TRUE(grpc_->Reroute(nullptr, &request, &response).ok());
  EXPECT_EQ(response.assignment().rep_id(), "oliver.bennett");
  EXPECT_EQ(OpenLeads("uk-fashion", "priya.shah"), 0);
  EXPECT_EQ(OpenLeads("uk-fashion", "oliver.bennett"), 2);
}

TEST_F(RoutingHandlerTest, RerouteOfALeadNoRepHoldsOpensANewEpisode) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "scored-1")).rep_id(),
            "amelia.hughes");
  // Lost: closed, the rep released.
  routing::v1::OutcomeRequest lost;
  lost.set_lead_id("lead-1");
  lost.set_kind(LeadOutcome::KIND_LOST);
  lost.set_reason("no budget");
  lost.set_request_id("lost-1");
  routing::v1::OutcomeResponse outcome_response;
  ASSERT_TRUE(grpc_->RecordOutcome(nullptr, &lost, &outcome_response).ok());
  Handle(&RoutingHandler::HandleOutcome, Consumed(producer_.sent()[0].message));
  ASSERT_EQ(GetAssignment("lead-1").state(), "closed");
  ASSERT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 0);
  const size_t before = producer_.sent_count();

  routing::v1::RerouteRequest request;
  request.set_lead_id("lead-1");
  request.set_reason("budget found after all");
  request.set_request_id("reroute-1");
  routing::v1::RerouteResponse response;
  grpc::Status status = grpc_->Reroute(nullptr, &request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::vector<LeadRouted> routed = PublishedRouted(before);
  ASSERT_THAT(routed, SizeIs(1));
  EXPECT_EQ(routed[0].kind(), LeadRouted::KIND_ASSIGNED);
  EXPECT_EQ(routed[0].episode(), 2);
  EXPECT_EQ(routed[0].attempt(), 1);
  EXPECT_EQ(routed[0].previous_rep_id(), "");
  EXPECT_EQ(response.assignment().episode(), 2);
  EXPECT_EQ(response.assignment().state(), "assigned");
  // A new episode: any rep may take it, the rotation goes on.
  EXPECT_EQ(routed[0].rep_id(), "oliver.bennett");
  EXPECT_EQ(OpenLeads("uk-fashion", "oliver.bennett"), 1);
  // The new episode is routed once: a later sales-ready score changes nothing.
  EXPECT_THAT(Handle(&RoutingHandler::HandleScored, Scored("lead-1", "scored-2")), IsEmpty());
}

TEST_F(RoutingHandlerTest, RerouteMovesAQueuedLeadOutOfItsQueueAndIsValidated) {
  UseRules(kCappedTeam);
  ASSERT_TRUE(SetAvailability("ann", routing::v1::AVAILABILITY_AWAY, "a").ok());
  ASSERT_TRUE(SetAvailability("bob", routing::v1::AVAILABILITY_AWAY, "b").ok());
  ASSERT_TRUE(SetAvailability("cyd", routing::v1::AVAILABILITY_AWAY, "c").ok());
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "scored-1")).kind(),
            LeadRouted::KIND_QUEUED);
  ASSERT_THAT(TeamQueue("capped"), ElementsAre("lead-1"));
  // Still nobody: queued again, in a new episode, once in the queue.
  routing::v1::RerouteRequest request;
  request.set_lead_id("lead-1");
  request.set_reason("try again");
  request.set_request_id("r-1");
  routing::v1::RerouteResponse response;
  ASSERT_TRUE(grpc_->Reroute(nullptr, &request, &response).ok());
  EXPECT_EQ(response.assignment().state(), "queued");
  EXPECT_EQ(response.assignment().episode(), 2);
  EXPECT_THAT(TeamQueue("capped"), ElementsAre("lead-1"));
  // Someone is back: the re-route assigns it and empties the queue.
  clock_.Advance(absl::Minutes(1));
  routing::v1::SetAvailabilityRequest back;
  back.set_rep_id("cyd");
  back.set_availability(routing::v1::AVAILABILITY_AVAILABLE);
  back.set_request_id("c2");
  // Without the scheduler's drain, to see the re-route do it.
  RoutingGrpcService no_drain(*effective_, *store_, producer_, topics_, clock_);
  routing::v1::SetAvailabilityResponse ignored;
  ASSERT_TRUE(no_drain.SetAvailability(nullptr, &back, &ignored).ok());
  request.set_request_id("r-2");
  ASSERT_TRUE(grpc_->Reroute(nullptr, &request, &response).ok());
  EXPECT_EQ(response.assignment().rep_id(), "cyd");
  EXPECT_EQ(response.assignment().episode(), 3);
  EXPECT_THAT(TeamQueue("capped"), IsEmpty());
  EXPECT_EQ(OpenLeads("capped", "cyd"), 1);

  // Validation: lead id and reason required; a lead never routed is NOT_FOUND.
  routing::v1::RerouteRequest bad;
  EXPECT_EQ(grpc_->Reroute(nullptr, &bad, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  bad.set_lead_id("lead-unknown");
  EXPECT_EQ(grpc_->Reroute(nullptr, &bad, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  bad.set_reason("why not");
  EXPECT_EQ(grpc_->Reroute(nullptr, &bad, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(no_drain.Reroute(nullptr, &request, &response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(RoutingHandlerTest, GrpcAcceptStopsTheSlaClockAndMeasuresTimeToAccept) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1")).rep_id(),
            "amelia.hughes");
  ASSERT_EQ(Cardinality(RoutingStore::SlaIndexKey()), 1);
  clock_.Advance(absl::Minutes(3));
  routing::v1::OutcomeRequest accept;
  accept.set_lead_id("lead-1");
  accept.set_rep_id("amelia.hughes");
  accept.set_request_id("acc-1");
  routing::v1::OutcomeResponse response;
  grpc::Status status = grpc_->Accept(nullptr, &accept, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.assignment().rep_id(), "amelia.hughes");
  ASSERT_EQ(producer_.sent_count(), 1u);
  const kafka::OutboundMessage published = producer_.sent()[0].message;
  EXPECT_EQ(published.topic, "test.leads.outcomes");
  LeadOutcome outcome;
  ASSERT_TRUE(events::Decode(Consumed(published), &outcome).ok());
  EXPECT_EQ(outcome.kind(), LeadOutcome::KIND_ACCEPTED);
  EXPECT_EQ(outcome.rep_id(), "amelia.hughes");
  EXPECT_EQ(outcome.envelope().event_id(), events::DeriveEventId("outcome", "acc-1"));

  // Routing consumes it: accepted, out of the SLA index, 180 s to accept.
  EXPECT_THAT(Handle(&RoutingHandler::HandleOutcome, Consumed(published)), IsEmpty());
  EXPECT_EQ(GetAssignment("lead-1").state(), "accepted");
  EXPECT_EQ(Cardinality(RoutingStore::SlaIndexKey()), 0);
  EXPECT_EQ(Histogram("leadflow_routing_time_to_accept_seconds", "uk-fashion"),
            std::make_pair(uint64_t{1}, 180.0));
  // The SLA never fires for it, however late.
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(Pass().sla_fired, 0);
  EXPECT_THAT(PublishedRouted(), IsEmpty());
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 1) << "accepting keeps the lead open";
}

TEST_F(RoutingHandlerTest, GrpcRecordOutcomeLandsOnLeadsOutcomesAndWonReleasesTheRep) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1")).rep_id(),
            "amelia.hughes");
  ASSERT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 1);
  routing::v1::OutcomeRequest won;
  won.set_lead_id("lead-1");
  won.set_kind(LeadOutcome::KIND_WON);
  won.set_value(12500);
  won.set_request_id("won-1");
  routing::v1::OutcomeResponse response;
  grpc::Status status = grpc_->RecordOutcome(nullptr, &won, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Published on leads.outcomes, keyed by lead, with the holder as reporter of record.
  ASSERT_EQ(producer_.sent_count(), 1u);
  const kafka::OutboundMessage published = producer_.sent()[0].message;
  EXPECT_EQ(published.topic, "test.leads.outcomes");
  EXPECT_EQ(published.key, "lead-1");
  LeadOutcome outcome;
  ASSERT_TRUE(events::Decode(Consumed(published), &outcome).ok());
  EXPECT_EQ(outcome.kind(), LeadOutcome::KIND_WON);
  EXPECT_EQ(outcome.rep_id(), "amelia.hughes");
  EXPECT_EQ(outcome.team_id(), "uk-fashion");
  EXPECT_EQ(outcome.value(), 12500);
  EXPECT_EQ(outcome.request_id(), "won-1");
  // The same request id again is the same event.
  ASSERT_TRUE(grpc_->RecordOutcome(nullptr, &won, &response).ok());
  ASSERT_EQ(producer_.sent_count(), 2u);
  LeadOutcome retried;
  ASSERT_TRUE(events::Decode(Consumed(producer_.sent()[1].message), &retried).ok());
  EXPECT_EQ(retried.envelope().event_id(), outcome.envelope().event_id());

  // Consumed by routing: converted, capacity released, out of the rep's open set.
  const LeadRouted converted = RoutedBy(&RoutingHandler::HandleOutcome, Consumed(published));
  EXPECT_EQ(converted.kind(), LeadRouted::KIND_CONVERTED);
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 0);
  EXPECT_THAT(RepQueue("amelia.hughes"), IsEmpty());
  EXPECT_EQ(GetAssignment("lead-1").state(), "closed");
  EXPECT_EQ(Cardinality(RoutingStore::SlaIndexKey()), 0);
  // The re-delivered copy changes nothing.
  EXPECT_EQ(
      DecodeRouted(Handle(&RoutingHandler::HandleOutcome, Consumed(producer_.sent()[1].message))[0])
          .envelope()
          .event_id(),
      converted.envelope().event_id());
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 0);
}

TEST_F(RoutingHandlerTest, AnInvalidRoutingFileReloadKeepsTheRunningRules) {
  const std::string path = server_->dir() + "/routing.yaml";
  auto mtime = std::filesystem::file_time_type::clock::now() - std::chrono::hours(1);
  auto write = [&](const std::string& yaml) {
    std::ofstream(path, std::ios::trunc) << yaml;
    // A new modification time each write, however fast the test runs.
    mtime += std::chrono::seconds(1);
    std::filesystem::last_write_time(path, mtime);
  };
  write(kCappedTeam);
  absl::StatusOr<std::unique_ptr<RoutingRulesSource>> source =
      RoutingRulesSource::Create(path, LoadRoutingRules);
  ASSERT_TRUE(source.ok()) << source.status();
  EffectiveRules effective(**source, *store_, clock_, absl::ZeroDuration());
  RoutingHandler handler(effective, *store_, topics_, clock_, registry_);
  const std::shared_ptr<const CompiledRoutingRules> running = (*source)->Current();
  ASSERT_EQ(running->version(), "capped-test");

  const std::vector<std::pair<std::string, std::string>> invalid = {
      {"a rule naming an unknown team",
       std::string(kCappedTeam) + "rules: [{id: r, team: nowhere}]\n"},
      {"a rule's route_at that is no category",
       std::string(kCappedTeam) + "rules: [{id: r, team: capped, route_at: lukewarm}]\n"},
      {"a YAML syntax error", "version: broken\nteams: [\n"},
      {"an unknown field", std::string(kCappedTeam) + "routing_mode: fast\n"},
  };
  for (const auto& [why, yaml] : invalid) {
    write(yaml);
    const absl::Status reload = (*source)->ReloadIfChanged();
    EXPECT_EQ(reload.code(), absl::StatusCode::kInvalidArgument) << why << ": " << reload;
    EXPECT_THAT(reload.message(), ::testing::HasSubstr(path)) << why;
    EXPECT_EQ((*source)->Current(), running) << why;
  }
  // The handler still routes by the running rules: the capped team.
  kafka::ConsumedMessage scored = Scored("lead-1", "s-1");
  absl::StatusOr<std::vector<kafka::OutboundMessage>> out = handler.HandleScored(scored);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_THAT(*out, SizeIs(1));
  EXPECT_EQ(DecodeRouted((*out)[0]).team_id(), "capped");
  EXPECT_EQ(DecodeRouted((*out)[0]).rep_id(), "ann");

  // A valid file is picked up.
  std::string next = kCappedTeam;
  next.replace(next.find("capped-test"), 11, "capped-test-2");
  write(next);
  ASSERT_TRUE((*source)->ReloadIfChanged().ok());
  EXPECT_EQ((*source)->Current()->version(), "capped-test-2");
}

TEST_F(RoutingHandlerTest, OutcomeCommandsAreValidatedBeforeTheyArePublished) {
  routing::v1::OutcomeRequest request;
  routing::v1::OutcomeResponse response;
  request.set_lead_id("lead-unknown");
  request.set_reason("no budget");
  EXPECT_EQ(grpc_->Accept(nullptr, &request, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  request.set_lead_id("");
  EXPECT_EQ(grpc_->RecordOutcome(nullptr, &request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.set_lead_id("lead-unknown");
  request.set_kind(LeadOutcome::KIND_LOST);
  request.set_reason("");
  EXPECT_EQ(grpc_->RecordOutcome(nullptr, &request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(producer_.sent_count(), 0u);
}

TEST_F(RoutingHandlerTest, AnOpenedOpportunityCountsAsFirstContactAndIsAcceptedOverGrpc) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "scored-1")).rep_id(),
            "amelia.hughes");
  EXPECT_THAT(Handle(&RoutingHandler::HandleOutcome,
                     Outcome("lead-1", "opp", LeadOutcome::KIND_OPPORTUNITY, "amelia.hughes")),
              IsEmpty());
  EXPECT_EQ(GetAssignment("lead-1").state(), "contacted");
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 1);  // still the rep's lead

  routing::v1::OutcomeRequest request;
  routing::v1::OutcomeResponse response;
  request.set_lead_id("lead-1");
  request.set_kind(LeadOutcome::KIND_OPPORTUNITY);
  const grpc::Status status = grpc_->RecordOutcome(nullptr, &request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(RoutingHandlerTest, ALostLeadIsClosedReleasesItsRepAndRoutesAgainOnceRequalified) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "scored-1")).rep_id(),
            "amelia.hughes");
  EXPECT_THAT(Handle(&RoutingHandler::HandleOutcome,
                     Outcome("lead-1", "acc", LeadOutcome::KIND_ACCEPTED, "amelia.hughes")),
              IsEmpty());
  EXPECT_EQ(GetAssignment("lead-1").state(), "accepted");
  EXPECT_THAT(Handle(&RoutingHandler::HandleOutcome,
                     Outcome("lead-1", "con", LeadOutcome::KIND_CONTACTED, "amelia.hughes")),
              IsEmpty());
  EXPECT_EQ(GetAssignment("lead-1").state(), "contacted");

  // Lost: closed, the rep released, and a recycle event (scoring turns the same outcome into
  // stage lost, which enrols the lead in nurturing).
  const LeadRouted recycled =
      RoutedBy(&RoutingHandler::HandleOutcome,
               Outcome("lead-1", "lost", LeadOutcome::KIND_LOST, "amelia.hughes"));
  EXPECT_EQ(recycled.kind(), LeadRouted::KIND_RECYCLED);
  EXPECT_EQ(recycled.previous_rep_id(), "amelia.hughes");
  EXPECT_EQ(recycled.rep_id(), "amelia.hughes");
  EXPECT_EQ(recycled.team_id(), "uk-fashion");
  EXPECT_EQ(recycled.envelope().event_id(), events::DeriveEventId("routed", "lost"));
  EXPECT_THAT(recycled.reason(), ::testing::HasSubstr("recycled to nurturing"));
  EXPECT_EQ(GetAssignment("lead-1").state(), "closed");
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 0);
  EXPECT_THAT(RepQueue("amelia.hughes"), IsEmpty());

  // Scoring's reaction to the loss (stage lost) does not route the lead again...
  EXPECT_THAT(Handle(&RoutingHandler::HandleScored,
                     Scored("lead-1", "scored-lost", {}, events::v1::CATEGORY_SALES_READY,
                            events::v1::CATEGORY_SALES_READY, events::v1::STAGE_LOST)),
              IsEmpty());
  // ...but once new activity recycles it and it is sales-ready, a new episode starts.
  clock_.Advance(absl::Hours(1));
  const LeadRouted again =
      RoutedBy(&RoutingHandler::HandleScored,
               Scored("lead-1", "scored-recycled", {}, events::v1::CATEGORY_SALES_READY,
                      events::v1::CATEGORY_SALES_READY, events::v1::STAGE_QUALIFIED,
                      events::v1::STAGE_LOST));
  EXPECT_EQ(again.kind(), LeadRouted::KIND_ASSIGNED);
  EXPECT_EQ(again.episode(), 2);
  EXPECT_EQ(again.attempt(), 1);
  EXPECT_EQ(again.rep_id(), "oliver.bennett");
  EXPECT_EQ(GetAssignment("lead-1").episode(), 2);

  // A won lead is closed for good.
  ASSERT_THAT(Handle(&RoutingHandler::HandleScored, Scored("lead-2", "scored-2")), SizeIs(1));
  const LeadRouted converted =
      RoutedBy(&RoutingHandler::HandleOutcome, Outcome("lead-2", "won", LeadOutcome::KIND_WON));
  EXPECT_EQ(converted.kind(), LeadRouted::KIND_CONVERTED);
  EXPECT_EQ(converted.rep_id(), "priya.shah");
  EXPECT_EQ(converted.envelope().event_id(), events::DeriveEventId("routed", "won"));
  // A re-delivered outcome converts nothing twice: the same event comes back.
  EXPECT_EQ(
      RoutedBy(&RoutingHandler::HandleOutcome, Outcome("lead-2", "won", LeadOutcome::KIND_WON))
          .envelope()
          .event_id(),
      converted.envelope().event_id());
  EXPECT_EQ(GetAssignment("lead-2").state(), "closed");
  EXPECT_EQ(OpenLeads("uk-fashion", "priya.shah"), 0);
  EXPECT_THAT(Handle(&RoutingHandler::HandleScored,
                     Scored("lead-2", "scored-2b", {}, events::v1::CATEGORY_QUALIFIED)),
              IsEmpty());
}

TEST_F(RoutingHandlerTest, ErasureRemovesEveryKeyOfTheLeadAndReleasesItsRep) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-gone", "s-1")).rep_id(),
            "amelia.hughes");
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-kept", "s-2")).rep_id(),
            "oliver.bennett");
  Handle(&RoutingHandler::HandleOutcome,
         Outcome("lead-gone", "acc", LeadOutcome::KIND_ACCEPTED, "amelia.hughes"));

  EXPECT_THAT(Handle(&RoutingHandler::HandleErasure, Erasure("lead-gone", "erase-1")), IsEmpty());
  EXPECT_THAT(TracesOf("lead-gone"), ElementsAre(redis::TombstoneKey("routing", "lead-gone")));
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 0);
  // Shared state survives: the team's record and the other lead.
  EXPECT_EQ(OpenLeads("uk-fashion", "oliver.bennett"), 1);
  EXPECT_THAT(AllKeys(), ::testing::Contains(RoutingStore::TeamStateKey("uk-fashion")));
  EXPECT_EQ(GetAssignment("lead-kept").rep_id(), "oliver.bennett");

  // Late events of the erased lead are ignored; erasure is idempotent.
  EXPECT_THAT(Handle(&RoutingHandler::HandleScored, Scored("lead-gone", "s-3")), IsEmpty());
  EXPECT_THAT(Handle(&RoutingHandler::HandleErasure, Erasure("lead-gone", "erase-1")), IsEmpty());
  EXPECT_THAT(TracesOf("lead-gone"), ElementsAre(redis::TombstoneKey("routing", "lead-gone")));
}

// Every scored event of a routed lead is an input remembered for a week; the registry lists
// those records by expiry (pruned as they pass), so it does not grow with the lead's events.
TEST_F(RoutingHandlerTest, ALeadsRegistryHoldsItsInputsOnlyUntilTheyExpire) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-0")).rep_id(),
            "amelia.hughes");
  for (int i = 1; i <= 5; ++i) {  // the lead is routed already: these change nothing
    EXPECT_THAT(Handle(&RoutingHandler::HandleScored, Scored("lead-1", absl::StrCat("s-", i))),
                IsEmpty());
  }
  // No lasting member: erasure deletes the assignment by name, and the team's record is not
  // the lead's.
  const std::string registry = redis::RegistryKey("routing", "lead-1");
  absl::StatusOr<redis::Reply> lasting = client_->Command({"SCARD", registry});
  ASSERT_TRUE(lasting.ok()) << lasting.status();
  EXPECT_EQ(lasting->integer, 0) << "a record or an input joined the registry's lasting members";
  absl::StatusOr<redis::Reply> expiring =
      client_->Command({"ZRANGE", redis::ExpiringRegistryKey(registry), "0", "-1"});
  ASSERT_TRUE(expiring.ok()) << expiring.status();
  ASSERT_EQ(expiring->elements.size(), 6u);
  EXPECT_EQ(expiring->elements[0].str, redis::AppliedKey("routing", "lead-1", "s-0"));
}

TEST_F(RoutingHandlerTest, InvalidInputIsRejectedAsInvalidArgument) {
  kafka::ConsumedMessage garbage;
  garbage.topic = "test.leads.scored";
  garbage.value = "\xff\xff not a protobuf";
  garbage.headers = {{"content-type", "application/x-protobuf"}};
  LeadOutcome no_kind;
  *no_kind.mutable_envelope() = Envelope("lead-1", "o-1", kStart);
  LeadOutcome no_lead;
  no_lead.set_kind(LeadOutcome::KIND_WON);

  struct Case {
    const char* name;
    absl::StatusOr<std::vector<kafka::OutboundMessage>> (RoutingHandler::*route)(
        const kafka::ConsumedMessage&);
    kafka::ConsumedMessage message;
  };
  const std::vector<Case> cases = {
      {"garbage scored", &RoutingHandler::HandleScored, garbage},
      {"garbage outcome", &RoutingHandler::HandleOutcome, garbage},
      {"garbage erasure", &RoutingHandler::HandleErasure, garbage},
      {"outcome without kind", &RoutingHandler::HandleOutcome,
       Consumed(events::Encode("test.leads.outcomes", "lead-1", no_kind))},
      {"outcome without lead", &RoutingHandler::HandleOutcome,
       Consumed(events::Encode("test.leads.outcomes", "", no_lead))},
      {"scored without lead", &RoutingHandler::HandleScored,
       Consumed(events::Encode("test.leads.scored", "", LeadScored()))},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out = (handler_.get()->*c.route)(c.message);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
  }
  EXPECT_THAT(AllKeys(), IsEmpty());
}

TEST_F(RoutingHandlerTest, LeadsRoutedIsJsonWhenConfiguredSo) {
  RoutingOptions options;
  options.routed_encoding = events::Encoding::kJson;
  prometheus::Registry registry;
  RoutingHandler json_handler(*effective_, *store_, topics_, clock_, registry, options);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> out =
      json_handler.HandleScored(Scored("lead-1", "scored-1"));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_THAT(*out, SizeIs(1));
  EXPECT_EQ(Consumed((*out)[0]).HeaderValue("content-type"), "application/json");
  EXPECT_EQ(DecodeRouted((*out)[0]).rep_id(), "amelia.hughes");
}

TEST_F(RoutingHandlerTest, DryRunTellsWhereALeadWouldGoAndChangesNothing) {
  routing::v1::DryRunRequest request;
  request.mutable_lead()->set_country("GB");
  request.mutable_lead()->add_interests("footwear");
  request.mutable_score()->set_category(events::v1::CATEGORY_SALES_READY);
  routing::v1::DryRunResponse response;
  ASSERT_TRUE(grpc_->DryRun(nullptr, &request, &response).ok());
  EXPECT_TRUE(response.would_route());
  EXPECT_EQ(response.team_id(), "uk-fashion");
  EXPECT_EQ(response.rule_id(), "uk-fashion");
  EXPECT_THAT(response.reason(), ::testing::HasSubstr("uk-fashion"));

  request.mutable_score()->set_category(events::v1::CATEGORY_WARM);
  ASSERT_TRUE(grpc_->DryRun(nullptr, &request, &response).ok());
  EXPECT_FALSE(response.would_route());
  EXPECT_THAT(AllKeys(), IsEmpty());
}

// --- Presence (SetAvailability) and queue draining. ---

std::string Ms(absl::Time t) { return absl::StrCat(absl::ToUnixMillis(t)); }

TEST_F(RoutingHandlerTest, AnAwayRepIsSkippedAndPickedAgainWhenBack) {
  ASSERT_TRUE(SetAvailability("amelia.hughes", routing::v1::AVAILABILITY_AWAY, "away-1").ok());
  const LeadRouted first = RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1"));
  EXPECT_EQ(first.rep_id(), "oliver.bennett");
  EXPECT_THAT(first.reason(), ::testing::HasSubstr("amelia.hughes (away)"));
  EXPECT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-2", "s-2")).rep_id(),
            "priya.shah");
  // Still away: the rotation passes her by again.
  EXPECT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-3", "s-3")).rep_id(),
            "oliver.bennett");

  ASSERT_TRUE(SetAvailability("amelia.hughes", routing::v1::AVAILABILITY_AVAILABLE, "back-1").ok());
  EXPECT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-4", "s-4")).rep_id(),
            "priya.shah");
  EXPECT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-5", "s-5")).rep_id(),
            "amelia.hughes");

  // A retried request changes nothing: she stays available.
  ASSERT_TRUE(SetAvailability("amelia.hughes", routing::v1::AVAILABILITY_AWAY, "away-1").ok());
  absl::StatusOr<absl::flat_hash_map<std::string, internal::v1::RepPresence>> presence =
      store_->LoadPresence({"amelia.hughes"});
  ASSERT_TRUE(presence.ok()) << presence.status();
  EXPECT_EQ(presence->at("amelia.hughes").state(), internal::v1::REP_PRESENCE_STATE_AVAILABLE);
  EXPECT_EQ(presence->at("amelia.hughes").request_id(), "back-1");
  // Decisions watch the presence guard, not the records: each of the two writes moved it.
  absl::StatusOr<redis::Reply> changes =
      client_->Command({"GET", RoutingStore::PresenceChangesKey()});
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_EQ(changes->str, "2");
}

TEST_F(RoutingHandlerTest, SetAvailabilityIsValidated) {
  EXPECT_EQ(SetAvailability("", routing::v1::AVAILABILITY_AWAY, "r").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      SetAvailability("amelia.hughes", routing::v1::AVAILABILITY_UNSPECIFIED, "r").error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetAvailability("amelia.hughes", routing::v1::AVAILABILITY_AWAY, "r",
                            kStart - absl::Minutes(1))
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetAvailability("amelia.hughes", routing::v1::AVAILABILITY_AVAILABLE, "r",
                            kStart + absl::Hours(1))
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetAvailability("nobody", routing::v1::AVAILABILITY_AWAY, "r").error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(AllKeys(), IsEmpty());
}

TEST_F(RoutingHandlerTest, ALeadNobodyCanTakeWaitsAndIsAssignedTheMomentSomeoneIsAvailable) {
  ASSERT_TRUE(SetAvailability("amelia.hughes", routing::v1::AVAILABILITY_AWAY, "r1").ok());
  ASSERT_TRUE(SetAvailability("oliver.bennett", routing::v1::AVAILABILITY_AWAY, "r2").ok());
  ASSERT_TRUE(SetAvailability("priya.shah", routing::v1::AVAILABILITY_OUT_OF_OFFICE, "r3",
                              kStart + absl::Hours(2))
                  .ok());
  const LeadRouted queued = RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1"));
  EXPECT_EQ(queued.kind(), LeadRouted::KIND_QUEUED);
  EXPECT_THAT(TeamQueue("uk-fashion"), ElementsAre("lead-1"));
  EXPECT_EQ(Pass().drained, 0);
  EXPECT_THAT(PublishedRouted(), IsEmpty());

  // Priya's out-of-office period ends: the next pass gives her the lead.
  clock_.Advance(absl::Hours(2) + absl::Minutes(1));
  const absl::Time queued_at = kStart;
  EXPECT_EQ(Pass().drained, 1);
  std::vector<LeadRouted> published = PublishedRouted();
  ASSERT_THAT(published, SizeIs(1));
  EXPECT_EQ(published[0].kind(), LeadRouted::KIND_ASSIGNED);
  EXPECT_EQ(published[0].rep_id(), "priya.shah");
  EXPECT_EQ(published[0].team_id(), "uk-fashion");
  EXPECT_EQ(published[0].envelope().event_id(),
            events::DeriveEventId("routed", "drain:lead-1:1:1:" + Ms(queued_at)));
  EXPECT_THAT(published[0].reason(), ::testing::HasSubstr("drained from the uk-fashion queue"));
  EXPECT_TRUE(published[0].has_sla_deadline());
  EXPECT_THAT(TeamQueue("uk-fashion"), IsEmpty());
  EXPECT_EQ(GetAssignment("lead-1").state(), "assigned");
  EXPECT_EQ(OpenLeads("uk-fashion", "priya.shah"), 1);
  EXPECT_EQ(Cardinality(RoutingStore::OutboxKey()), 0);  // acknowledged
  EXPECT_EQ(Pass().drained, 0);                          // nothing left

  // Everyone away again; a rep who comes back over gRPC gets the waiting lead at once.
  ASSERT_TRUE(SetAvailability("priya.shah", routing::v1::AVAILABILITY_AWAY, "r4").ok());
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-2", "s-2")).kind(),
            LeadRouted::KIND_QUEUED);
  routing::v1::SetAvailabilityResponse response;
  ASSERT_TRUE(SetAvailability("oliver.bennett", routing::v1::AVAILABILITY_AVAILABLE, "r5",
                              std::nullopt, &response)
                  .ok());
  EXPECT_THAT(response.assigned_lead_ids(), ElementsAre("lead-2"));
  EXPECT_EQ(GetAssignment("lead-2").rep_id(), "oliver.bennett");
  EXPECT_THAT(TeamQueue("uk-fashion"), IsEmpty());
}

TEST_F(RoutingHandlerTest, AnOutOfHoursTeamQueuesItsLeadsAndDrainsThemWhenHoursStart) {
  // Saturday noon in London: nobody on the UK desk works.
  clock_.Set(absl::FromCivil(absl::CivilSecond(2026, 1, 10, 12, 0, 0), absl::UTCTimeZone()));
  for (const char* lead : {"lead-1", "lead-2", "lead-3"}) {
    ASSERT_EQ(
        RoutedBy(&RoutingHandler::HandleScored, Scored(lead, std::string("s-") + lead)).kind(),
        LeadRouted::KIND_QUEUED);
  }
  EXPECT_THAT(TeamQueue("uk-fashion"), ElementsAre("lead-1", "lead-2", "lead-3"));
  // Monday 08:29: still nobody.
  clock_.Set(absl::FromCivil(absl::CivilSecond(2026, 1, 12, 8, 29, 0), absl::UTCTimeZone()));
  EXPECT_EQ(Pass().drained, 0);
  // 08:30: Amelia starts and takes the queue, oldest first; at 09:00 Oliver joins.
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Pass().drained, 3);
  std::vector<LeadRouted> published = PublishedRouted();
  ASSERT_THAT(published, SizeIs(3));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(published[i].envelope().lead_id(), "lead-" + std::to_string(i + 1));
    EXPECT_EQ(published[i].rep_id(), "amelia.hughes");
  }
  EXPECT_THAT(TeamQueue("uk-fashion"), IsEmpty());
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 3);
}

TEST_F(RoutingHandlerTest, ReleasedCapacityAndANewMonthDrainTheQueue) {
  UseRules(R"yaml(
version: small
default_team: small
teams:
  - id: small
    reps:
      - {id: solo, max_open_leads: 1}
  - id: quota
    reps:
      - {id: monthly, monthly_quota: 2, time_zone: Europe/London}
rules:
  - id: q
    team: quota
    when: [{field: country, equals: FR}]
)yaml");
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1", {"", {}})).kind(),
            LeadRouted::KIND_ASSIGNED);
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-2", "s-2", {"", {}})).kind(),
            LeadRouted::KIND_QUEUED);
  EXPECT_EQ(Pass().drained, 0);
  // Winning lead-1 frees the rep's only slot; the next pass hands him lead-2.
  ASSERT_EQ(
      RoutedBy(&RoutingHandler::HandleOutcome, Outcome("lead-1", "won", LeadOutcome::KIND_WON))
          .kind(),
      LeadRouted::KIND_CONVERTED);
  EXPECT_EQ(Pass().drained, 1);
  EXPECT_EQ(GetAssignment("lead-2").rep_id(), "solo");

  // The monthly quota: two leads in January, the third waits for February.
  for (const char* lead : {"fr-1", "fr-2"}) {
    ASSERT_EQ(
        RoutedBy(&RoutingHandler::HandleScored, Scored(lead, std::string("s-") + lead, {"FR", {}}))
            .rep_id(),
        "monthly");
  }
  const LeadRouted third =
      RoutedBy(&RoutingHandler::HandleScored, Scored("fr-3", "s-fr-3", {"FR", {}}));
  EXPECT_EQ(third.kind(), LeadRouted::KIND_QUEUED);
  clock_.Set(absl::FromCivil(absl::CivilSecond(2026, 1, 31, 23, 59, 0), absl::UTCTimeZone()));
  EXPECT_EQ(Pass().drained, 0);
  clock_.Set(absl::FromCivil(absl::CivilSecond(2026, 2, 1, 0, 0, 0), absl::UTCTimeZone()));
  EXPECT_EQ(Pass().drained, 1);
  EXPECT_EQ(GetAssignment("fr-3").rep_id(), "monthly");
}

TEST_F(RoutingHandlerTest, ALeadWaitingLongerThanItsTeamsQueueTimeoutEscalates) {
  UseRules(R"yaml(
version: timeout
default_team: day
teams:
  - id: day
    escalate_to: backup
    queue_timeout_minutes: 30
    reps: [{id: d1}]
  - id: backup
    sla_minutes: 10
    reps: [{id: b1}]
)yaml");
  ASSERT_TRUE(SetAvailability("d1", routing::v1::AVAILABILITY_AWAY, "away").ok());
  const LeadRouted queued = RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1"));
  ASSERT_EQ(queued.kind(), LeadRouted::KIND_QUEUED);
  // The event says when the wait escalates.
  EXPECT_EQ(events::FromProto(queued.sla_deadline()), kStart + absl::Minutes(30));
  clock_.Advance(absl::Minutes(29));
  EXPECT_EQ(Pass().sla_fired, 0);
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Pass().sla_fired, 1);
  std::vector<LeadRouted> published = PublishedRouted();
  ASSERT_THAT(published, SizeIs(1));
  EXPECT_EQ(published[0].kind(), LeadRouted::KIND_ESCALATED);
  EXPECT_EQ(published[0].team_id(), "backup");
  EXPECT_EQ(published[0].escalated_to(), "backup");
  EXPECT_EQ(published[0].rep_id(), "b1");
  EXPECT_EQ(published[0].envelope().event_id(),
            events::DeriveEventId("routed", "queue-timeout:lead-1:1:1:" + Ms(kStart)));
  EXPECT_THAT(published[0].reason(), ::testing::HasSubstr("waited 30m in the day queue"));
  EXPECT_EQ(events::FromProto(published[0].sla_deadline()), clock_.Now() + absl::Minutes(10));
  EXPECT_THAT(TeamQueue("day"), IsEmpty());
  EXPECT_EQ(OpenLeads("backup", "b1"), 1);
  // d1 coming back later changes nothing for it.
  ASSERT_TRUE(SetAvailability("d1", routing::v1::AVAILABILITY_AVAILABLE, "back").ok());
  EXPECT_EQ(GetAssignment("lead-1").rep_id(), "b1");
}

// --- Speed-to-lead SLA. ---

TEST_F(RoutingHandlerTest, TheSlaReassignsAnUnacceptedLeadThenEscalatesWhenEveryRepHadIt) {
  const LeadRouted first = RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1"));
  ASSERT_EQ(first.rep_id(), "amelia.hughes");
  EXPECT_EQ(events::FromProto(first.sla_deadline()), kStart + absl::Minutes(15));

  clock_.Advance(absl::Minutes(14));
  EXPECT_EQ(Pass().sla_fired, 0);
  EXPECT_THAT(PublishedRouted(), IsEmpty());

  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Pass().sla_fired, 1);
  std::vector<LeadRouted> published = PublishedRouted();
  ASSERT_THAT(published, SizeIs(1));
  const LeadRouted& reassigned = published[0];
  EXPECT_EQ(reassigned.kind(), LeadRouted::KIND_REASSIGNED);
  EXPECT_EQ(reassigned.rep_id(), "oliver.bennett");
  EXPECT_EQ(reassigned.previous_rep_id(), "amelia.hughes");
  EXPECT_EQ(reassigned.attempt(), 2);
  EXPECT_EQ(reassigned.envelope().event_id(),
            events::DeriveEventId("routed", "sla:lead-1:1:1:" + Ms(kStart)));
  EXPECT_THAT(reassigned.reason(), ::testing::HasSubstr("SLA of 15 min breached by amelia.hughes"));
  EXPECT_EQ(events::FromProto(reassigned.sla_deadline()), kStart + absl::Minutes(30));
  EXPECT_EQ(OpenLeads("uk-fashion", "amelia.hughes"), 0);
  EXPECT_EQ(OpenLeads("uk-fashion", "oliver.bennett"), 1);
  EXPECT_THAT(RepQueue("amelia.hughes"), IsEmpty());
  // The same pass again decides nothing new.
  EXPECT_EQ(Pass().sla_fired, 0);
  EXPECT_THAT(PublishedRouted(), SizeIs(1));

  clock_.Advance(absl::Minutes(15));
  EXPECT_EQ(Pass().sla_fired, 1);
  clock_.Advance(absl::Minutes(15));
  EXPECT_EQ(Pass().sla_fired, 1);
  published = PublishedRouted();
  ASSERT_THAT(published, SizeIs(3));
  EXPECT_EQ(published[1].rep_id(), "priya.shah");
  // Every UK rep has had it: escalated to EMEA (routing.yaml: escalate_to emea), where the
  // weighted rotation gives it to Lena.
  const LeadRouted& escalated = published[2];
  EXPECT_EQ(escalated.kind(), LeadRouted::KIND_ESCALATED);
  EXPECT_EQ(escalated.team_id(), "emea");
  EXPECT_EQ(escalated.escalated_to(), "emea");
  EXPECT_EQ(escalated.rep_id(), "lena.fischer");
  EXPECT_EQ(escalated.previous_rep_id(), "priya.shah");
  EXPECT_EQ(escalated.attempt(), 4);
  EXPECT_THAT(escalated.reason(), ::testing::HasSubstr("every rep has had the lead"));
  EXPECT_EQ(producer_.sent().back().message.key, "emea");
  EXPECT_EQ(GetAssignment("lead-1").team_id(), "emea");
  EXPECT_EQ(OpenLeads("uk-fashion", "priya.shah"), 0);
  EXPECT_EQ(OpenLeads("emea", "lena.fischer"), 1);

  // Lena accepts within her SLA: it stops, and time-to-accept is measured for EMEA.
  clock_.Advance(absl::Minutes(5));
  Handle(&RoutingHandler::HandleOutcome,
         Outcome("lead-1", "acc", LeadOutcome::KIND_ACCEPTED, "lena.fischer"));
  EXPECT_EQ(Histogram("leadflow_routing_time_to_accept_seconds", "emea"),
            std::make_pair(uint64_t{1}, 300.0));
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(Pass().sla_fired, 0);
  EXPECT_THAT(PublishedRouted(), SizeIs(3));
  EXPECT_EQ(Cardinality(RoutingStore::SlaIndexKey()), 0);
}

TEST_F(RoutingHandlerTest, ABreachWithNoOneLeftEscalatesToTheManager) {
  UseRules(R"yaml(
version: manager
default_team: solo
teams:
  - id: solo
    sla_minutes: 10
    escalate_to: manager
    reps: [{id: only}]
)yaml");
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1")).rep_id(), "only");
  clock_.Advance(absl::Minutes(10));
  EXPECT_EQ(Pass().sla_fired, 1);
  std::vector<LeadRouted> published = PublishedRouted();
  ASSERT_THAT(published, SizeIs(1));
  EXPECT_EQ(published[0].kind(), LeadRouted::KIND_ESCALATED);
  EXPECT_EQ(published[0].escalated_to(), "manager");
  EXPECT_EQ(published[0].team_id(), "solo");
  EXPECT_EQ(published[0].rep_id(), "");
  EXPECT_EQ(GetAssignment("lead-1").state(), "escalated");
  EXPECT_EQ(OpenLeads("solo", "only"), 0);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Pass().sla_fired, 0);
  // The manager's team still closes it.
  EXPECT_EQ(
      RoutedBy(&RoutingHandler::HandleOutcome, Outcome("lead-1", "won", LeadOutcome::KIND_WON))
          .kind(),
      LeadRouted::KIND_CONVERTED);
  EXPECT_EQ(GetAssignment("lead-1").state(), "closed");
}

TEST_F(RoutingHandlerTest, AcceptAndFirstContactAreMeasuredAndStopTheSla) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1")).rep_id(),
            "amelia.hughes");
  clock_.Advance(absl::Minutes(4));
  EXPECT_THAT(Handle(&RoutingHandler::HandleOutcome,
                     Outcome("lead-1", "acc", LeadOutcome::KIND_ACCEPTED, "amelia.hughes")),
              IsEmpty());
  // The accepted lead leaves the SLA index at once (routing:sla holds unaccepted leads only).
  EXPECT_EQ(Cardinality(RoutingStore::SlaIndexKey()), 0);
  // A re-delivered accept is not measured twice.
  Handle(&RoutingHandler::HandleOutcome,
         Outcome("lead-1", "acc", LeadOutcome::KIND_ACCEPTED, "amelia.hughes"));
  clock_.Advance(absl::Minutes(10));
  Handle(&RoutingHandler::HandleOutcome,
         Outcome("lead-1", "con", LeadOutcome::KIND_CONTACTED, "amelia.hughes"));
  EXPECT_EQ(Histogram("leadflow_routing_time_to_accept_seconds", "uk-fashion"),
            std::make_pair(uint64_t{1}, 240.0));
  EXPECT_EQ(Histogram("leadflow_routing_time_to_first_contact_seconds", "uk-fashion"),
            std::make_pair(uint64_t{1}, 840.0));

  // A lead contacted without an accept first is measured too, and never breaches.
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-2", "s-2")).rep_id(),
            "oliver.bennett");
  clock_.Advance(absl::Minutes(1));
  Handle(&RoutingHandler::HandleOutcome,
         Outcome("lead-2", "con-2", LeadOutcome::KIND_CONTACTED, "oliver.bennett"));
  EXPECT_EQ(Histogram("leadflow_routing_time_to_first_contact_seconds", "uk-fashion"),
            std::make_pair(uint64_t{2}, 900.0));
  clock_.Advance(absl::Hours(3));
  EXPECT_EQ(Pass().sla_fired, 0);
  EXPECT_THAT(PublishedRouted(), IsEmpty());
}

TEST_F(RoutingHandlerTest, AnUnacknowledgedSlaEventIsResentWithTheSameIdFromTheOutbox) {
  ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1")).rep_id(),
            "amelia.hughes");
  clock_.Advance(absl::Minutes(15));
  producer_.FailDeliveries(1, absl::UnavailableError("broker down"));
  const RoutingPassStats failed = Pass();
  EXPECT_EQ(failed.sla_fired, 1);
  EXPECT_EQ(failed.errors, 1);
  ASSERT_EQ(producer_.sent_count(), 1u);
  const LeadRouted lost = DecodeRouted(producer_.sent()[0].message);
  EXPECT_EQ(Cardinality(RoutingStore::OutboxKey()), 1);
  // The decision is made (and applied once); only its event awaits the broker.
  EXPECT_EQ(GetAssignment("lead-1").rep_id(), "oliver.bennett");

  // Within the grace period nothing is re-sent (the sender may still be waiting).
  EXPECT_EQ(Pass().replayed, 0);
  EXPECT_EQ(producer_.sent_count(), 1u);
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(Pass().replayed, 1);
  ASSERT_EQ(producer_.sent_count(), 2u);
  const LeadRouted resent = DecodeRouted(producer_.sent()[1].message);
  EXPECT_EQ(resent.envelope().event_id(), lost.envelope().event_id());
  EXPECT_EQ(resent.rep_id(), "oliver.bennett");
  EXPECT_EQ(Cardinality(RoutingStore::OutboxKey()), 0);
  EXPECT_EQ(OpenLeads("uk-fashion", "oliver.bennett"), 1);
}

TEST_F(RoutingHandlerTest, TwoSchedulersFiringTheSameSlasDecideEachOnceAndNeverExceedACap) {
  UseRules(kCappedTeam);
  // 15 leads per rep; after the breaches Bob can take only 5 more today (daily quota 20).
  constexpr int kLeads = 45;
  for (int i = 0; i < kLeads; ++i) {
    const std::string lead = "lead-" + std::to_string(i);
    ASSERT_EQ(RoutedBy(&RoutingHandler::HandleScored, Scored(lead, "s-" + lead, {"", {}})).kind(),
              LeadRouted::KIND_ASSIGNED);
  }
  clock_.Advance(absl::Minutes(10));

  std::unique_ptr<redis::HiredisClient> other_client = NewClient();
  RoutingStore other_store(*other_client);
  EffectiveRules other_rules(*rules_, other_store, clock_, absl::ZeroDuration());
  prometheus::Registry other_registry;
  RoutingHandler other_handler(other_rules, other_store, topics_, clock_, other_registry);
  testing::FakeProducer other_producer;
  RoutingScheduler other_scheduler(other_handler, other_rules, other_store, other_producer, clock_,
                                   other_registry);
  absl::StatusOr<RoutingPassStats> a;
  absl::StatusOr<RoutingPassStats> b;
  std::thread ta([&] { a = scheduler_->RunOnce(); });
  std::thread tb([&] { b = other_scheduler.RunOnce(); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  // A lead a replica gave up on after many conflicts stays due: the next pass takes it.
  const int retried = Pass().sla_fired;
  EXPECT_EQ(a->sla_fired + b->sla_fired + retried, kLeads);

  std::map<std::string, std::string> event_of_lead;
  std::vector<LeadRouted> all = PublishedRouted();
  for (const testing::FakeProducer::Sent& sent : other_producer.sent()) {
    all.push_back(DecodeRouted(sent.message));
  }
  for (const LeadRouted& routed : all) {
    EXPECT_TRUE(routed.kind() == LeadRouted::KIND_REASSIGNED ||
                routed.kind() == LeadRouted::KIND_QUEUED)
        << routed.kind();
    auto [it, inserted] =
        event_of_lead.emplace(routed.envelope().lead_id(), routed.envelope().event_id());
    // Both replicas may publish a decision, but only ever the same one (same event id).
    EXPECT_EQ(it->second, routed.envelope().event_id()) << routed.envelope().lead_id();
  }
  EXPECT_EQ(event_of_lead.size(), static_cast<size_t>(kLeads));
  std::map<std::string, int> open;
  for (int i = 0; i < kLeads; ++i) {
    const routing::v1::Assignment assignment = GetAssignment("lead-" + std::to_string(i));
    EXPECT_EQ(assignment.attempt(), assignment.state() == "queued" ? 1 : 2);
    if (!assignment.rep_id().empty()) ++open[assignment.rep_id()];
  }
  absl::StatusOr<internal::v1::RoutingTeamState> team = store_->LoadTeamState("capped");
  ASSERT_TRUE(team.ok()) << team.status();
  for (const char* rep : {"ann", "bob", "cyd"}) {
    EXPECT_EQ(OpenLeads("capped", rep), open[rep]) << rep;
    EXPECT_EQ(Cardinality(RoutingStore::RepOpenKey(rep)), open[rep]) << rep;
  }
  EXPECT_LE(open["ann"], 30);
  EXPECT_LE(open["cyd"], 25);
  EXPECT_LE(team->reps().at("bob").assigned_today(), 20);
  EXPECT_EQ(team->reps().at("ann").assigned_today() + team->reps().at("bob").assigned_today() +
                team->reps().at("cyd").assigned_today(),
            kLeads + (kLeads - Cardinality(RoutingStore::TeamQueueKey("capped"))));
  EXPECT_EQ(Cardinality(RoutingStore::OutboxKey()), 0);
}

// --- Team and rep management (UpsertTeam, UpsertRep). ---

google::rpc::BadRequest ViolationsOf(const grpc::Status& status) {
  return validation::ViolationsOf(grpc_util::FromGrpcStatus(status));
}

TEST_F(RoutingHandlerTest, UpsertRepAddsARepWhoTakesLeadsAndSurvivesAYamlReload) {
  routing::v1::UpsertRepRequest request;
  request.set_team_id("uk-fashion");
  request.mutable_rep()->set_id("zara.khan");
  request.mutable_rep()->set_time_zone("Europe/London");
  routing::v1::UpsertRepResponse response;
  grpc::Status status = grpc_->UpsertRep(nullptr, &request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.rep().id(), "zara.khan");

  std::vector<std::string> reps;
  for (int i = 0; i < 4; ++i) {
    const std::string lead = "lead-" + std::to_string(i);
    reps.push_back(RoutedBy(&RoutingHandler::HandleScored, Scored(lead, "s-" + lead)).rep_id());
  }
  EXPECT_THAT(reps, ElementsAre("amelia.hughes", "oliver.bennett", "priya.shah", "zara.khan"));

  // routing.yaml reloads (here: the same file again): the stored rep stays.
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> reloaded =
      LoadRoutingRules(std::string(LEADFLOW_SOURCE_DIR) + "/config/routing.yaml");
  ASSERT_TRUE(reloaded.ok());
  rules_->SetForTest(*reloaded);
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> effective = effective_->Current();
  ASSERT_TRUE(effective.ok());
  ASSERT_NE((*effective)->FindTeam("uk-fashion"), nullptr);
  EXPECT_EQ((*effective)->FindTeam("uk-fashion")->reps_size(), 4);
  // ...and another replica sees it too; she can be set away like any rep.
  std::unique_ptr<redis::HiredisClient> other_client = NewClient();
  RoutingStore other_store(*other_client);
  EffectiveRules other(*rules_, other_store, clock_, absl::ZeroDuration());
  absl::StatusOr<std::shared_ptr<const CompiledRoutingRules>> seen = other.Current();
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ((*seen)->FindTeam("uk-fashion")->reps(3).id(), "zara.khan");
  EXPECT_TRUE(SetAvailability("zara.khan", routing::v1::AVAILABILITY_AWAY, "z1").ok());

  // Replacing her caps (same id) keeps her place.
  request.mutable_rep()->set_max_open_leads(1);
  ASSERT_TRUE(grpc_->UpsertRep(nullptr, &request, &response).ok());
  EXPECT_EQ((*effective_->Current())->FindTeam("uk-fashion")->reps(3).max_open_leads(), 1);
}

TEST_F(RoutingHandlerTest, UpsertsAreValidatedLikeTheYamlWithFieldViolations) {
  routing::v1::UpsertRepRequest rep;
  rep.set_team_id("uk-fashion");
  rep.mutable_rep()->set_id("zara.khan");
  rep.mutable_rep()->set_weight(5000);
  routing::v1::UpsertRepResponse rep_response;
  grpc::Status status = grpc_->UpsertRep(nullptr, &rep, &rep_response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::BadRequest violations = ViolationsOf(status);
  ASSERT_EQ(violations.field_violations_size(), 1);
  EXPECT_EQ(violations.field_violations(0).field(), "rep.weight");
  EXPECT_THAT(violations.field_violations(0).description(), ::testing::HasSubstr("0..1000"));

  rep.mutable_rep()->set_weight(1);
  rep.mutable_rep()->add_working_hours()->set_start("09:00");
  status = grpc_->UpsertRep(nullptr, &rep, &rep_response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationsOf(status).field_violations(0).field(), "rep.time_zone");

  // A rep id is unique across teams: moving Lena needs her out of EMEA first.
  rep.mutable_rep()->Clear();
  rep.mutable_rep()->set_id("lena.fischer");
  status = grpc_->UpsertRep(nullptr, &rep, &rep_response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("duplicate rep id 'lena.fischer'"));

  rep.set_team_id("no-such-team");
  EXPECT_EQ(grpc_->UpsertRep(nullptr, &rep, &rep_response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  routing::v1::UpsertTeamRequest team;
  routing::v1::UpsertTeamResponse team_response;
  EXPECT_EQ(grpc_->UpsertTeam(nullptr, &team, &team_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  team.mutable_team()->set_id("night-desk");
  status = grpc_->UpsertTeam(nullptr, &team, &team_response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationsOf(status).field_violations(0).field(), "team.reps");
  team.mutable_team()->add_reps()->set_id("nina.night");
  team.mutable_team()->set_escalate_to("nowhere");
  status = grpc_->UpsertTeam(nullptr, &team, &team_response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationsOf(status).field_violations(0).field(), "team.escalate_to");
  // Nothing invalid was stored.
  EXPECT_THAT(AllKeys(), IsEmpty());

  // Valid: a new team; and an existing team changed without touching its reps.
  team.mutable_team()->set_escalate_to("manager");
  team.mutable_team()->set_sla_minutes(20);
  status = grpc_->UpsertTeam(nullptr, &team, &team_response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  routing::v1::UpsertTeamRequest change;
  change.mutable_team()->set_id("uk-fashion");
  change.mutable_team()->set_strategy(config::v1::STRATEGY_LEAST_LOADED);
  change.mutable_team()->set_sla_minutes(5);
  change.mutable_team()->set_escalate_to("night-desk");
  status = grpc_->UpsertTeam(nullptr, &change, &team_response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(team_response.team().reps_size(), 3);
  const LeadRouted routed = RoutedBy(&RoutingHandler::HandleScored, Scored("lead-1", "s-1"));
  EXPECT_EQ(events::FromProto(routed.sla_deadline()), kStart + absl::Minutes(5));
  EXPECT_THAT(routed.reason(), ::testing::HasSubstr("least loaded"));
}

// The batch route (HandleScoredBatch): a wave's decisions planned on chained team records and
// applied in one pipeline.

// A route's results, comparable: status code, then each output's topic, key and LeadRouted.
std::vector<std::string> Described(const std::vector<kafka::HandleResult>& results) {
  std::vector<std::string> out;
  for (const kafka::HandleResult& r : results) {
    std::string line = absl::StatusCodeToString(r.status().code());
    if (r.ok()) {
      for (const kafka::OutboundMessage& m : *r) {
        absl::StrAppend(&line, " | ", m.topic, " ", m.key, " ", DecodeRouted(m).ShortDebugString());
      }
    }
    out.push_back(std::move(line));
  }
  return out;
}

// Every routing key's content (records as version + protobuf text, sets and sorted sets as
// members and scores, strings as they are), sorted by key: two runs that made the same decisions
// leave the same snapshot (incarnations, being random, are left out, and so are the expiry times
// of the registries' expiring members, which follow Redis's clock).
std::vector<std::string> Snapshot(redis::RedisClient& client) {
  std::vector<std::string> out;
  for (const std::string& key : testing::AllKeys(client)) {
    absl::StatusOr<redis::Reply> type = client.Command({"TYPE", key});
    if (!type.ok()) continue;
    std::string line = key + " = ";
    absl::StatusOr<redis::Reply> value;
    if (type->str == "hash") {
      value = client.Command({"HMGET", key, "v", "d"});
      if (!value.ok() || value->elements.size() != 2) continue;
      const std::string& data = value->elements[1].str;
      internal::v1::RoutingTeamState team;
      internal::v1::RoutingAssignment assignment;
      absl::StrAppend(&line, "v", value->elements[0].str, " ");
      if (absl::StrContains(key, ":team:") && team.ParseFromString(data)) {
        absl::StrAppend(&line, team.ShortDebugString());
      } else if (absl::StrContains(key, ":assignment") && assignment.ParseFromString(data)) {
        absl::StrAppend(&line, assignment.ShortDebugString());
      } else {
        absl::StrAppend(&line, data);
      }
    } else {
      if (type->str == "zset" && absl::EndsWith(key, ":expiring")) {
        value = client.Command({"SORT", key, "ALPHA"});
      } else if (type->str == "zset") {
        value = client.Command({"ZRANGE", key, "0", "-1", "WITHSCORES"});
      } else if (type->str == "set") {
        value = client.Command({"SORT", key, "ALPHA"});
      } else {
        value = client.Command({"GET", key});
      }
      if (!value.ok()) continue;
      if (value->elements.empty()) absl::StrAppend(&line, value->str);
      for (const redis::Reply& e : value->elements) absl::StrAppend(&line, e.str, " ");
    }
    out.push_back(std::move(line));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<const kafka::ConsumedMessage*> Pointers(const std::vector<kafka::ConsumedMessage>& m) {
  std::vector<const kafka::ConsumedMessage*> out;
  for (const kafka::ConsumedMessage& message : m) out.push_back(&message);
  return out;
}

TEST_F(RoutingHandlerTest, ABatchOfManyLeadsForOneTeamGivesTheSameResultsAsOneByOne) {
  UseRules(kCappedTeam);
  // 100 leads of one capped team (75 fit, the rest are queued), with what a poll may also hold:
  // bad input, a score that cannot route, a second score of a lead routed just before, the same
  // input twice.
  std::vector<kafka::ConsumedMessage> inputs;
  for (int i = 0; i < 100; ++i) {
    const std::string lead = "lead-" + std::to_string(i);
    inputs.push_back(Scored(lead, "s-" + lead, {"", {}}));
    if (i == 10) {
      kafka::ConsumedMessage garbage;
      garbage.topic = "test.leads.scored";
      garbage.value = "\xff\xff not a protobuf";
      garbage.headers = {{"content-type", "application/x-protobuf"}};
      inputs.push_back(garbage);
    }
    if (i == 20) {
      inputs.push_back(Scored("cold", "s-cold", {"", {}}, events::v1::CATEGORY_COLD,
                              events::v1::CATEGORY_QUALIFIED));
    }
    if (i == 30) inputs.push_back(Scored(lead, "again-" + lead, {"", {}}));
    if (i == 40) {
      const kafka::ConsumedMessage same = inputs.back();
      inputs.push_back(same);
    }
  }

  std::vector<kafka::HandleResult> one_by_one;
  for (const kafka::ConsumedMessage& m : inputs) one_by_one.push_back(handler_->HandleScored(m));
  const std::vector<std::string> state_one_by_one = Snapshot(*client_);
  ASSERT_TRUE(client_->Command({"FLUSHALL"}).ok());

  const std::vector<kafka::HandleResult> batched = handler_->HandleScoredBatch(Pointers(inputs));
  EXPECT_EQ(Described(batched), Described(one_by_one));
  EXPECT_EQ(Snapshot(*client_), state_one_by_one);
  EXPECT_EQ(Described(batched)[11], "INVALID_ARGUMENT");
  EXPECT_EQ(OpenLeads("capped", "ann") + OpenLeads("capped", "bob") + OpenLeads("capped", "cyd"),
            75);

  // Delivered again (a consumer that crashed before committing): the same outputs, no change.
  EXPECT_EQ(Described(handler_->HandleScoredBatch(Pointers(inputs))), Described(one_by_one));
  EXPECT_EQ(Snapshot(*client_), state_one_by_one);
}

// Four teams, one per country, with each strategy and caps that queue some of their leads.
constexpr char kFourTeams[] = R"yaml(
version: four-teams-test
default_team: rest
rules:
  - {id: gb, team: gb, when: [{field: country, in: {values: [GB]}}]}
  - {id: fr, team: fr, when: [{field: country, in: {values: [FR]}}]}
  - {id: us, team: us, when: [{field: country, in: {values: [US]}}]}
teams:
  - id: gb
    strategy: STRATEGY_ROUND_ROBIN
    reps: [{id: gb-1, max_open_leads: 9}, {id: gb-2, max_open_leads: 7}]
  - id: fr
    strategy: STRATEGY_WEIGHTED_ROUND_ROBIN
    reps: [{id: fr-1, weight: 3, max_open_leads: 10}, {id: fr-2, weight: 1, daily_quota: 4}]
  - id: us
    strategy: STRATEGY_LEAST_LOADED
    reps:
      - {id: us-1, max_open_leads: 5}
      - {id: us-2, max_open_leads: 10}
      - {id: us-3, monthly_quota: 10}
  - id: rest
    strategy: STRATEGY_ROUND_ROBIN
    reps: [{id: rest-1, max_open_leads: 6}]
)yaml";

TEST_F(RoutingHandlerTest, AWaveSplitOverLanesByTeamGivesTheSameResultsAsOneByOne) {
  UseRules(kFourTeams);
  // 120 leads of four teams, interleaved, so every lane's chains hold several teams' leads, with
  // what a poll may also hold: the same input twice, a second score of a lead routed before.
  const std::vector<std::string> countries = {"GB", "FR", "US", "DE", "GB", "US"};
  std::vector<kafka::ConsumedMessage> inputs;
  for (int i = 0; i < 120; ++i) {
    const std::string lead = "lead-" + std::to_string(i);
    inputs.push_back(Scored(lead, "s-" + lead, {countries[i % countries.size()], {}}));
    if (i == 50) inputs.push_back(inputs.back());
    if (i == 70) inputs.push_back(Scored("lead-3", "again-lead-3", {"US", {}}));
  }
  std::vector<kafka::HandleResult> one_by_one;
  for (const kafka::ConsumedMessage& m : inputs) one_by_one.push_back(handler_->HandleScored(m));
  const std::vector<std::string> state_one_by_one = Snapshot(*client_);
  // Every team took some leads and queued the rest: the split has work on every lane.
  for (const std::string team : {"gb", "fr", "us", "rest"}) {
    EXPECT_GT(Cardinality(RoutingStore::TeamQueueKey(team)), 0) << team;
  }

  for (int lanes : {2, 3, 8}) {
    SCOPED_TRACE(lanes);
    ASSERT_TRUE(client_->Command({"FLUSHALL"}).ok());
    RoutingOptions options;
    options.wave_lanes = lanes;
    prometheus::Registry registry;
    RoutingHandler split(*effective_, *store_, topics_, clock_, registry, options);
    EXPECT_EQ(Described(split.HandleScoredBatch(Pointers(inputs))), Described(one_by_one));
    EXPECT_EQ(Snapshot(*client_), state_one_by_one);
    // Delivered again: the same outputs, no change.
    EXPECT_EQ(Described(split.HandleScoredBatch(Pointers(inputs))), Described(one_by_one));
    EXPECT_EQ(Snapshot(*client_), state_one_by_one);
  }
}

TEST_F(RoutingHandlerTest, ABatchRacingASecondReplicaNeverExceedsACapNorAssignsALeadTwice) {
  UseRules(kCappedTeam);
  std::unique_ptr<SecondReplica> other = NewSecondReplica();
  // As TwoReplicasRouting200Leads..., but replica A takes its inputs in batches of 16 (its
  // chains conflict whenever B writes the team record in between) and B one by one, backwards.
  constexpr int kBatch = 16;
  RacingInputs race = RacingInputsFor(kRacingLeads);
  auto replica_a = [&] {
    for (int from = 0; from < kRacingLeads; from += kBatch) {
      std::vector<const kafka::ConsumedMessage*> batch;
      for (int i = from; i < std::min(kRacingLeads, from + kBatch); ++i) {
        batch.push_back(&race.to_a[i]);
      }
      std::vector<kafka::HandleResult> results = handler_->HandleScoredBatch(batch);
      ASSERT_EQ(results.size(), batch.size());
      for (size_t k = 0; k < batch.size(); ++k) {
        if (results[k].ok()) {
          race.out_a[from + k] = *std::move(results[k]);
        } else {
          // As the consumer loop does: a transient failure is retried one by one.
          ASSERT_EQ(results[k].status().code(), absl::StatusCode::kAborted) << results[k].status();
          RouteRetryingConflicts(*handler_, race.to_a[from + k], race.out_a[from + k]);
        }
      }
    }
  };
  RaceAgainstSecondReplica(*other, race, replica_a);
}

// Runs `between` once, just before the next pipeline of a session (an apply's transaction)
// that starts with `command`: "WATCH" is after the wave's read and before its transaction
// watches the records, "MULTI" after the transaction's read and before its EXEC — as when
// another replica's apply lands there.
class InterleavingClient final : public redis::RedisClient {
 public:
  explicit InterleavingClient(redis::RedisClient& inner) : inner_(inner) {}
  void Before(std::string command, std::function<void()> between) {
    command_ = std::move(command);
    between_ = std::move(between);
  }
  absl::StatusOr<redis::Reply> Command(const redis::Args& args) override {
    return inner_.Command(args);
  }
  absl::StatusOr<std::vector<redis::Reply>> Pipeline(
      const std::vector<redis::Args>& commands) override {
    return inner_.Pipeline(commands);
  }
  absl::Status WithSession(absl::FunctionRef<absl::Status(redis::RedisSession&)> body) override {
    return inner_.WithSession([&](redis::RedisSession& session) {
      Session interleaving(session, *this);
      return body(interleaving);
    });
  }

 private:
  class Session final : public redis::RedisSession {
   public:
    Session(redis::RedisSession& inner, InterleavingClient& owner) : inner_(inner), owner_(owner) {}
    absl::StatusOr<std::vector<redis::Reply>> Pipeline(
        const std::vector<redis::Args>& commands) override {
      if (owner_.between_ && !commands.empty() && commands[0][0] == owner_.command_) {
        std::function<void()> between = std::move(owner_.between_);
        owner_.between_ = nullptr;
        between();
      }
      return inner_.Pipeline(commands);
    }

   private:
    redis::RedisSession& inner_;
    InterleavingClient& owner_;
  };

  redis::RedisClient& inner_;
  std::string command_;
  std::function<void()> between_;
};

TEST_F(RoutingHandlerTest, AnotherReplicaLandingInAWavesApplyGivesTheResultsOfTheOrderTheyLanded) {
  UseRules(kCappedTeam);
  for (const std::string where : {"WATCH", "MULTI"}) {
    SCOPED_TRACE(where);
    ASSERT_TRUE(client_->Command({"FLUSHALL"}).ok());
    // Warm-up: the team record exists (with an incarnation).
    ASSERT_THAT(Handle(&RoutingHandler::HandleScored, Scored("lead-w", "s-w", {"", {}})),
                SizeIs(1));
    const std::vector<std::string> warm = Snapshot(*client_);

    // A wave of 8 leads of the team, planned on chained team records; another replica routes
    // lead-x after the wave's read (before its transaction watches: its first lead's check
    // fails, and the 2nd's too, though lead-x moved the version by one and kept the
    // incarnation, since the 1st's plan gave the record a fresh one) or after the
    // transaction's read (its EXEC is refused). Either way nothing of the wave applies until it
    // is planned again on lead-x's write.
    std::vector<kafka::ConsumedMessage> wave;
    for (int i = 0; i < 8; ++i) {
      const std::string lead = "lead-" + std::to_string(i);
      wave.push_back(Scored(lead, "s-" + lead, {"", {}}));
    }
    const kafka::ConsumedMessage other = Scored("lead-x", "s-x", {"", {}});
    std::unique_ptr<redis::HiredisClient> batch_connection = NewClient();
    InterleavingClient interleaving(*batch_connection);
    RoutingStore batch_store(interleaving);
    EffectiveRules batch_rules(*rules_, batch_store, clock_, absl::ZeroDuration());
    prometheus::Registry batch_registry;
    RoutingHandler batch_handler(batch_rules, batch_store, topics_, clock_, batch_registry);
    kafka::HandleResult other_result = absl::UnknownError("not run");
    interleaving.Before(where, [&] { other_result = handler_->HandleScored(other); });
    const std::vector<kafka::HandleResult> batched =
        batch_handler.HandleScoredBatch(Pointers(wave));
    ASSERT_TRUE(other_result.ok()) << other_result.status();
    const std::vector<std::string> state_batched = Snapshot(*client_);

    // The same inputs one by one in the order they landed: lead-x, then the wave.
    ASSERT_TRUE(client_->Command({"FLUSHALL"}).ok());
    ASSERT_THAT(Handle(&RoutingHandler::HandleScored, Scored("lead-w", "s-w", {"", {}})),
                SizeIs(1));
    ASSERT_EQ(Snapshot(*client_), warm);
    const kafka::HandleResult other_alone = handler_->HandleScored(other);
    std::vector<kafka::HandleResult> one_by_one;
    for (const kafka::ConsumedMessage& m : wave) one_by_one.push_back(handler_->HandleScored(m));

    EXPECT_EQ(Described(batched), Described(one_by_one));
    EXPECT_EQ(Described({other_result}), Described({other_alone}));
    EXPECT_EQ(Snapshot(*client_), state_batched);
    // Nine leads and the warm-up one: every one counted once.
    EXPECT_EQ(OpenLeads("capped", "ann") + OpenLeads("capped", "bob") + OpenLeads("capped", "cyd"),
              10);
  }
}

}  // namespace
}  // namespace leadflow::routing
