// Routing on the stack's real Kafka broker (LEADFLOW_TEST_ENV) with its own redis-server: the
// handler behind the real consumer loop consumes `leads.scored`, the scheduler and the gRPC
// service publish through a real idempotent producer, and the test reads `leads.routed` back
// from the broker. The clock is simulated, so a 15-minute SLA passes at once.
#include <memory>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/topic_router.h"
#include "common/redis/hiredis_client.h"
#include "common/testing/events.h"
#include "common/testing/kafka_test_client.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "common/testing/test_env.h"
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
#include "tests/integration/common/kafka/loop_harness.h"

namespace leadflow::routing {
namespace {

using events::v1::LeadRouted;
using ::leadflow::testing::KafkaProperties;
using ::leadflow::testing::TestEnv;
using ::leadflow::testing::TopicReader;

constexpr absl::Duration kDeadline = absl::Seconds(60);
// Monday 5 January 2026, 11:00 UTC: the UK desk is at work.
const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 11, 0, 0), absl::UTCTimeZone());

class RoutingKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!TestEnv::Available()) {
      GTEST_SKIP() << "LEADFLOW_TEST_ENV is not set (run scripts/test.sh, or export it after "
                      "scripts/stack.sh up --infra)";
    }
    absl::StatusOr<TestEnv> env = TestEnv::Load();
    ASSERT_TRUE(env.ok()) << env.status();
    props_ = testing::KafkaProps(env->kafka_bootstrap());
    absl::Status up = testing::WaitForKafka(props_, absl::Seconds(30));
    ASSERT_TRUE(up.ok()) << up;
    prefix_ = TestEnv::UniqueName("routing") + ".";
    topics_ = std::make_unique<kafka::Topics>(prefix_);
    bases_ = {"leads.scored",     "leads.outcomes",     "leads.erasure",    "leads.routed",
              "leads.scored.dlq", "leads.outcomes.dlq", "leads.erasure.dlq"};
    absl::Status created = testing::CreateTopics(props_, prefix_, bases_, 3);
    ASSERT_TRUE(created.ok()) << created;

    server_ = testing::StartRedisForTest();
    ASSERT_NE(server_, nullptr);
    redis::HiredisOptions options;
    options.port = server_->port();
    client_ = std::make_unique<redis::HiredisClient>(options);
    absl::StatusOr<std::unique_ptr<RoutingRulesSource>> yaml = RoutingRulesSource::Create(
        std::string(LEADFLOW_SOURCE_DIR) + "/config/routing.yaml", LoadRoutingRules);
    ASSERT_TRUE(yaml.ok()) << yaml.status();
    yaml_ = *std::move(yaml);
    store_ = std::make_unique<RoutingStore>(*client_);
    rules_ = std::make_unique<EffectiveRules>(*yaml_, *store_, clock_, absl::ZeroDuration());
    handler_ = std::make_unique<RoutingHandler>(*rules_, *store_, *topics_, clock_, registry_);
    absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = testing::MakeProducer(props_);
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
    scheduler_ = std::make_unique<RoutingScheduler>(*handler_, *rules_, *store_, *producer_, clock_,
                                                    registry_);
    grpc_ = std::make_unique<RoutingGrpcService>(*rules_, *store_, *producer_, *topics_, clock_,
                                                 scheduler_.get());

    router_.Add(topics_->Name(kafka::kLeadsScored),
                [this](const kafka::ConsumedMessage& m) { return handler_->HandleScored(m); });
    router_.Add(topics_->Name(kafka::kLeadsOutcomes),
                [this](const kafka::ConsumedMessage& m) { return handler_->HandleOutcome(m); });
    absl::StatusOr<std::unique_ptr<kafka::loop_test::LoopRunner>> loop =
        kafka::loop_test::LoopRunner::Start(props_, prefix_ + "routing", router_.Topics(), router_);
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
    absl::StatusOr<std::unique_ptr<TopicReader>> reader =
        TopicReader::Start(props_, {topics_->Name(kafka::kLeadsRouted)});
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
  }

  void TearDown() override {
    // Every Kafka client goes before its topics do: a client left on a deleted topic can
    // block in its destructor.
    if (loop_ != nullptr) {
      EXPECT_TRUE(loop_->Stop().ok());
    }
    loop_.reset();
    reader_.reset();
    grpc_.reset();
    scheduler_.reset();
    producer_.reset();
    if (!prefix_.empty() && !bases_.empty()) {
      std::vector<std::string> names;
      for (const std::string& base : bases_) names.push_back(prefix_ + base);
      (void)testing::DeleteTopics(props_, names);
    }
  }

  void ProduceScored(const std::string& lead_id) {
    events::v1::LeadScored event;
    *event.mutable_envelope() = testing::Envelope(lead_id, "scored-" + lead_id, clock_.Now());
    event.mutable_lead()->set_lead_id(lead_id);
    event.mutable_lead()->set_country("GB");
    event.mutable_lead()->add_interests("shoes");
    event.mutable_previous()->set_category(events::v1::CATEGORY_QUALIFIED);
    event.mutable_score()->set_category(events::v1::CATEGORY_SALES_READY);
    event.mutable_score()->set_stage(events::v1::STAGE_QUALIFIED);
    absl::Status s = testing::ProduceAndWait(
        *producer_, events::Encode(topics_->Name(kafka::kLeadsScored), lead_id, event));
    ASSERT_TRUE(s.ok()) << s;
  }

  // The routed events read so far, in the order of one partition per team (keyed by team).
  std::vector<LeadRouted> Routed() {
    std::vector<LeadRouted> out;
    for (const kafka::ConsumedMessage& m : reader_->Messages()) {
      LeadRouted routed;
      EXPECT_TRUE(events::Decode(m, &routed).ok());
      EXPECT_EQ(m.key, routed.team_id());
      out.push_back(std::move(routed));
    }
    return out;
  }

  KafkaProperties props_;
  std::string prefix_;
  std::vector<std::string> bases_;
  std::unique_ptr<kafka::Topics> topics_;
  testing::SimulatedClock clock_{kStart};
  prometheus::Registry registry_;
  std::unique_ptr<testing::RedisServer> server_;
  std::unique_ptr<redis::HiredisClient> client_;
  std::unique_ptr<RoutingRulesSource> yaml_;
  std::unique_ptr<RoutingStore> store_;
  std::unique_ptr<EffectiveRules> rules_;
  std::unique_ptr<RoutingHandler> handler_;
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<RoutingScheduler> scheduler_;
  std::unique_ptr<RoutingGrpcService> grpc_;
  kafka::TopicRouter router_;
  std::unique_ptr<kafka::loop_test::LoopRunner> loop_;
  std::unique_ptr<TopicReader> reader_;
};

TEST_F(RoutingKafkaTest, AnUnacceptedLeadIsReassignedOnTheTopicWhenItsSlaPasses) {
  ProduceScored("lead-1");
  ASSERT_TRUE(reader_->WaitForCount(1, kDeadline)) << reader_->status();
  ASSERT_EQ(Routed()[0].kind(), LeadRouted::KIND_ASSIGNED);
  ASSERT_EQ(Routed()[0].rep_id(), "amelia.hughes");

  clock_.Advance(absl::Minutes(15));
  absl::StatusOr<RoutingPassStats> pass = scheduler_->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->sla_fired, 1);
  EXPECT_EQ(pass->errors, 0);
  ASSERT_TRUE(reader_->WaitForCount(2, kDeadline)) << reader_->status();
  const LeadRouted reassigned = Routed()[1];
  EXPECT_EQ(reassigned.kind(), LeadRouted::KIND_REASSIGNED);
  EXPECT_EQ(reassigned.rep_id(), "oliver.bennett");
  EXPECT_EQ(reassigned.previous_rep_id(), "amelia.hughes");
  EXPECT_EQ(
      reassigned.envelope().event_id(),
      events::DeriveEventId("routed", absl::StrCat("sla:lead-1:1:1:", absl::ToUnixMillis(kStart))));
  // Acknowledged before the pass returned: nothing left in the outbox.
  absl::StatusOr<std::vector<std::string>> outbox = store_->StaleOutbox(absl::InfiniteFuture(), 10);
  ASSERT_TRUE(outbox.ok());
  EXPECT_THAT(*outbox, ::testing::IsEmpty());
}

TEST_F(RoutingKafkaTest, AQueuedLeadIsAssignedOnTheTopicTheMomentARepIsBack) {
  for (const char* rep : {"amelia.hughes", "oliver.bennett", "priya.shah"}) {
    routing::v1::SetAvailabilityRequest away;
    away.set_rep_id(rep);
    away.set_availability(routing::v1::AVAILABILITY_AWAY);
    away.set_request_id(std::string("away-") + rep);
    routing::v1::SetAvailabilityResponse response;
    ASSERT_TRUE(grpc_->SetAvailability(nullptr, &away, &response).ok());
  }
  ProduceScored("lead-2");
  ASSERT_TRUE(reader_->WaitForCount(1, kDeadline)) << reader_->status();
  ASSERT_EQ(Routed()[0].kind(), LeadRouted::KIND_QUEUED);

  routing::v1::SetAvailabilityRequest back;
  back.set_rep_id("priya.shah");
  back.set_availability(routing::v1::AVAILABILITY_AVAILABLE);
  back.set_request_id("back-priya");
  routing::v1::SetAvailabilityResponse response;
  grpc::Status status = grpc_->SetAvailability(nullptr, &back, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(response.assigned_lead_ids(), ::testing::ElementsAre("lead-2"));
  ASSERT_TRUE(reader_->WaitForCount(2, kDeadline)) << reader_->status();
  const LeadRouted assigned = Routed()[1];
  EXPECT_EQ(assigned.kind(), LeadRouted::KIND_ASSIGNED);
  EXPECT_EQ(assigned.rep_id(), "priya.shah");
  EXPECT_EQ(assigned.envelope().lead_id(), "lead-2");
}

}  // namespace
}  // namespace leadflow::routing
