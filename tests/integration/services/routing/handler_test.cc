// Integration tests of the routing service's handler and gRPC service against a real
// redis-server (no Kafka): messages are built with events::Encode and fed to the handler, and
// the outputs it returns are what the consumer loop would publish. Rules: config/routing.yaml
// unless a test installs its own. Time: Monday 5 January 2026, 11:00 UTC (UK desk at work).
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
#include "common/redis/hiredis_client.h"
#include "common/redis/keys.h"
#include "common/testing/events.h"
#include "common/testing/fake_kafka.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "services/routing/grpc_service.h"
#include "services/routing/handler.h"
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
    absl::StatusOr<std::unique_ptr<testing::RedisServer>> server = testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = NewClient();
    absl::StatusOr<std::unique_ptr<RoutingRulesSource>> rules = RoutingRulesSource::Create(
        std::string(LEADFLOW_SOURCE_DIR) + "/config/routing.yaml", LoadRoutingRules);
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    store_ = std::make_unique<RoutingStore>(*client_);
    handler_ = std::make_unique<RoutingHandler>(*rules_, *store_, topics_, clock_);
    grpc_ = std::make_unique<RoutingGrpcService>(*rules_, *store_, producer_, topics_, clock_);
  }

  std::unique_ptr<redis::HiredisClient> NewClient() {
    redis::HiredisOptions options;
    options.port = server_->port();
    return std::make_unique<redis::HiredisClient>(options);
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

  std::vector<std::string> AllKeys() {
    std::vector<std::string> keys;
    std::string cursor = "0";
    do {
      absl::StatusOr<redis::Reply> r = client_->Command({"SCAN", cursor, "COUNT", "1000"});
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      cursor = r->elements[0].str;
      for (const redis::Reply& k : r->elements[1].elements) keys.push_back(k.str);
    } while (cursor != "0");
    return keys;
  }

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

  const kafka::Topics topics_{"test."};
  testing::SimulatedClock clock_{kStart};
  testing::FakeProducer producer_;
  std::unique_ptr<testing::RedisServer> server_;
  std::unique_ptr<redis::HiredisClient> client_;
  std::unique_ptr<RoutingRulesSource> rules_;
  std::unique_ptr<RoutingStore> store_;
  std::unique_ptr<RoutingHandler> handler_;
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
  std::unique_ptr<redis::HiredisClient> other_client = NewClient();
  RoutingStore other_store(*other_client);
  RoutingHandler other_handler(*rules_, other_store, topics_, clock_);

  // Each replica gets its own sales-ready event for every lead (different event ids, as when
  // scoring emitted twice), in opposite orders: they race on the team's record all along, and
  // on the same leads where they meet.
  constexpr int kLeads = 200;
  std::vector<kafka::ConsumedMessage> to_a;
  std::vector<kafka::ConsumedMessage> to_b;
  for (int i = 0; i < kLeads; ++i) {
    const std::string lead = "lead-" + std::to_string(i);
    to_a.push_back(Scored(lead, "a-" + lead, {"", {}}));
    to_b.push_back(Scored(lead, "b-" + lead, {"", {}}));
  }
  std::vector<std::vector<kafka::OutboundMessage>> out_a(kLeads);
  std::vector<std::vector<kafka::OutboundMessage>> out_b(kLeads);
  auto replica = [&](RoutingHandler& handler, const std::vector<kafka::ConsumedMessage>& inputs,
                     std::vector<std::vector<kafka::OutboundMessage>>& outputs, bool reverse) {
    for (int k = 0; k < kLeads; ++k) {
      const int i = reverse ? kLeads - 1 - k : k;
      // As the consumer loop does: a transient failure (ABORTED after many conflicts) is
      // retried, never skipped.
      for (int attempt = 0;; ++attempt) {
        absl::StatusOr<std::vector<kafka::OutboundMessage>> out = handler.HandleScored(inputs[i]);
        if (out.ok()) {
          outputs[i] = *std::move(out);
          break;
        }
        if (out.status().code() != absl::StatusCode::kAborted || attempt > 100) {
          ADD_FAILURE() << out.status();
          break;
        }
      }
    }
  };
  std::thread a(replica, std::ref(*handler_), std::cref(to_a), std::ref(out_a), false);
  std::thread b(replica, std::ref(other_handler), std::cref(to_b), std::ref(out_b), true);
  a.join();
  b.join();

  std::map<std::string, int> assigned_per_rep;
  int queued = 0;
  for (int i = 0; i < kLeads; ++i) {
    const std::string lead = "lead-" + std::to_string(i);
    ASSERT_EQ(out_a[i].size() + out_b[i].size(), 1u) << lead << " routed more or less than once";
    const LeadRouted routed = DecodeRouted(out_a[i].empty() ? out_b[i][0] : out_a[i][0]);
    EXPECT_EQ(routed.team_id(), "capped");
    if (routed.kind() == LeadRouted::KIND_QUEUED) {
      ++queued;
    } else {
      EXPECT_EQ(routed.kind(), LeadRouted::KIND_ASSIGNED);
      ++assigned_per_rep[routed.rep_id()];
      EXPECT_EQ(GetAssignment(lead).rep_id(), routed.rep_id());
    }
  }
  // Every cap reached exactly, none exceeded; the rest waits in the queue.
  EXPECT_THAT(assigned_per_rep, ElementsAre(std::pair<const std::string, int>("ann", 30),
                                            std::pair<const std::string, int>("bob", 20),
                                            std::pair<const std::string, int>("cyd", 25)));
  EXPECT_EQ(queued, kLeads - 75);
  for (const auto& [rep, n] : assigned_per_rep) {
    EXPECT_EQ(OpenLeads("capped", rep), n) << rep;
    absl::StatusOr<redis::Reply> card = client_->Command({"ZCARD", RoutingStore::RepOpenKey(rep)});
    ASSERT_TRUE(card.ok());
    EXPECT_EQ(card->integer, n) << rep;
  }
  absl::StatusOr<redis::Reply> queue =
      client_->Command({"ZCARD", RoutingStore::TeamQueueKey("capped")});
  ASSERT_TRUE(queue.ok());
  EXPECT_EQ(queue->integer, kLeads - 75);
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

  EXPECT_THAT(Handle(&RoutingHandler::HandleOutcome,
                     Outcome("lead-1", "lost", LeadOutcome::KIND_LOST, "amelia.hughes")),
              IsEmpty());
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
  EXPECT_THAT(
      Handle(&RoutingHandler::HandleOutcome, Outcome("lead-2", "won", LeadOutcome::KIND_WON)),
      IsEmpty());
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
  RoutingHandler json_handler(*rules_, *store_, topics_, clock_, options);
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

TEST_F(RoutingHandlerTest, AvailabilityAndTeamManagementAreNotImplementedYet) {
  routing::v1::SetAvailabilityRequest availability;
  routing::v1::SetAvailabilityResponse availability_response;
  EXPECT_EQ(grpc_->SetAvailability(nullptr, &availability, &availability_response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  routing::v1::UpsertTeamRequest team;
  routing::v1::UpsertTeamResponse team_response;
  EXPECT_EQ(grpc_->UpsertTeam(nullptr, &team, &team_response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  routing::v1::UpsertRepRequest rep;
  routing::v1::UpsertRepResponse rep_response;
  EXPECT_EQ(grpc_->UpsertRep(nullptr, &rep, &rep_response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace leadflow::routing
