// The consumer loop on the real librdkafka adapters against librdkafka's mock cluster, with
// broker faults injected: every input's effect must arrive, and committed offsets must reach the
// end of the input topic.

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/testing/kafka_test_client.h"
#include "common/testing/test_env.h"
#include "common/testing/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/integration/common/kafka/loop_harness.h"

namespace leadflow::kafka {
namespace {

using ::leadflow::kafka::loop_test::CountByInput;
using ::leadflow::kafka::loop_test::EchoHandler;
using ::leadflow::kafka::loop_test::Header;
using ::leadflow::kafka::loop_test::Inputs;
using ::leadflow::kafka::loop_test::kInputIdHeader;
using ::leadflow::kafka::loop_test::LoopRunner;
using ::leadflow::testing::KafkaProperties;
using ::leadflow::testing::MockKafkaCluster;
using ::leadflow::testing::TopicReader;
using ::leadflow::testing::WaitFor;

constexpr int16_t kProduceApiKey = 0;     // Kafka protocol ApiKeys: Produce requests,
constexpr int16_t kHeartbeatApiKey = 12;  // and the group members' Heartbeats
constexpr int kPartitions = 2;
constexpr char kIn[] = "in";
constexpr char kOut[] = "out";
constexpr char kDlq[] = "in.dlq";
constexpr absl::Duration kDeadline = absl::Seconds(60);

class ConsumerLoopMockClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MockKafkaCluster>> cluster = MockKafkaCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    for (const char* topic : {kIn, kOut, kDlq}) {
      ASSERT_TRUE(cluster_->CreateTopic(topic, kPartitions).ok());
    }
    props_ = testing::KafkaProps(cluster_->bootstrap_servers());
    group_ = testing::TestEnv::UniqueName("mock-group");
    absl::StatusOr<std::unique_ptr<Producer>> producer = testing::MakeProducer(props_);
    ASSERT_TRUE(producer.ok()) << producer.status();
    input_producer_ = *std::move(producer);
  }

  void ProduceInputs(int from, int to) {
    ASSERT_TRUE(testing::ProduceAll(*input_producer_, Inputs(kIn, from, to)).ok());
  }

  std::unique_ptr<TopicReader> Read(const std::string& topic) {
    absl::StatusOr<std::unique_ptr<TopicReader>> reader = TopicReader::Start(props_, {topic});
    EXPECT_TRUE(reader.ok()) << reader.status();
    return reader.ok() ? *std::move(reader) : nullptr;
  }

  // True once the group's committed offsets equal the end of every input partition.
  bool CommittedToTheEnd() {
    absl::StatusOr<std::map<int32_t, int64_t>> end = testing::EndOffsets(props_, kIn, kPartitions);
    absl::StatusOr<std::map<int32_t, int64_t>> committed =
        testing::CommittedOffsets(props_, group_, kIn, kPartitions);
    return end.ok() && committed.ok() && *end == *committed;
  }

  // Every input 0..n-1 has at least one output, each output exactly as the handler made it.
  void ExpectEveryInputHasItsOutput(const std::vector<ConsumedMessage>& outputs, int n) {
    std::map<std::string, int> counts = CountByInput(outputs);
    for (int i = 0; i < n; ++i) {
      EXPECT_TRUE(counts.contains(absl::StrCat(i))) << "input " << i << " has no output";
    }
    EXPECT_EQ(counts.size(), static_cast<size_t>(n));
    for (const ConsumedMessage& m : outputs) {
      const std::string id = Header(m, kInputIdHeader).value_or("?");
      int i = -1;
      ASSERT_TRUE(absl::SimpleAtoi(id, &i)) << id;
      EXPECT_EQ(m.value, absl::StrCat("out-", i));
      EXPECT_EQ(m.key, absl::StrCat("lead-", i % 17));
      EXPECT_EQ(Header(m, "content-type"), "text/plain");
    }
  }

  std::unique_ptr<MockKafkaCluster> cluster_;
  KafkaProperties props_;
  std::string group_;
  std::unique_ptr<Producer> input_producer_;
};

TEST_F(ConsumerLoopMockClusterTest, NormalFlowDeliversEveryOutputOnceAndCommitsToTheEnd) {
  constexpr int kInputs = 100;
  ProduceInputs(0, kInputs);
  EchoHandler handler(kOut, {"13", "77"});
  auto runner = LoopRunner::Start(props_, group_, {kIn}, handler);
  ASSERT_TRUE(runner.ok()) << runner.status();
  std::unique_ptr<TopicReader> out = Read(kOut);
  std::unique_ptr<TopicReader> dlq = Read(kDlq);

  ASSERT_TRUE(out->WaitForCount(kInputs - 2, kDeadline)) << out->Count();
  ASSERT_TRUE(dlq->WaitForCount(2, kDeadline)) << dlq->Count();
  EXPECT_TRUE(WaitFor([&] { return CommittedToTheEnd(); }, kDeadline));
  ASSERT_TRUE((*runner)->Stop().ok());

  std::map<std::string, int> counts = CountByInput(out->Messages());
  EXPECT_EQ(counts.size(), static_cast<size_t>(kInputs - 2));
  EXPECT_FALSE(counts.contains("13"));
  for (const auto& [id, n] : counts) EXPECT_EQ(n, 1) << "output of input " << id << " duplicated";
  std::set<std::string> dead;
  for (const ConsumedMessage& m : dlq->Messages()) {
    dead.insert(m.value);
    EXPECT_EQ(Header(m, kDlqTopicHeader), kIn);
    EXPECT_EQ(Header(m, kDlqErrorClassHeader), "INVALID_ARGUMENT");
    EXPECT_EQ(Header(m, kDlqErrorMessageHeader), absl::StrCat("poison input ", m.value));
  }
  EXPECT_EQ(dead, (std::set<std::string>{"13", "77"}));
  EXPECT_TRUE(CommittedToTheEnd());
}

TEST_F(ConsumerLoopMockClusterTest, ProduceErrorsAreRetriedAndEveryOutputArrivesExactlyOnce) {
  constexpr int kInputs = 100;
  ProduceInputs(0, kInputs);
  // Injected after the inputs are written, so only the loop's outputs meet them.
  ASSERT_TRUE(
      cluster_
          ->PushRequestErrors(
              kProduceApiKey,
              {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
               RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
               RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE})
          .ok());
  EchoHandler handler(kOut);
  auto runner = LoopRunner::Start(props_, group_, {kIn}, handler);
  ASSERT_TRUE(runner.ok()) << runner.status();
  std::unique_ptr<TopicReader> out = Read(kOut);

  ASSERT_TRUE(out->WaitForCount(kInputs, kDeadline)) << out->Count();
  EXPECT_TRUE(WaitFor([&] { return CommittedToTheEnd(); }, kDeadline));
  ASSERT_TRUE((*runner)->Stop().ok());
  // Retried produce requests must not duplicate (idempotent producer), and nothing beyond the
  // expected outputs may appear.
  EXPECT_FALSE(out->WaitForCount(kInputs + 1, absl::Seconds(1)));
  std::vector<ConsumedMessage> outputs = out->Messages();
  ExpectEveryInputHasItsOutput(outputs, kInputs);
  for (const auto& [id, n] : CountByInput(outputs)) EXPECT_EQ(n, 1) << "input " << id;
  EXPECT_EQ((*runner)->Counter("leadflow_partition_rewinds_total"), 0)
      << "retriable produce errors should be absorbed by the producer";
}

TEST_F(ConsumerLoopMockClusterTest, BrokerDownThenUpMidStreamLosesNoInputAndTheLoopResumes) {
  constexpr int kInputs = 200;
  ProduceInputs(0, kInputs);
  EchoHandler handler(kOut);
  auto runner = LoopRunner::Start(props_, group_, {kIn}, handler);
  ASSERT_TRUE(runner.ok()) << runner.status();
  std::unique_ptr<TopicReader> out = Read(kOut);
  ASSERT_TRUE(WaitFor([&] { return handler.distinct_handled() >= 40; }, kDeadline));

  ASSERT_TRUE(cluster_->SetBrokerDown(1).ok());
  // The length of the outage (not a synchronisation): shorter than the delivery timeout, so
  // librdkafka holds and retries the outputs itself.
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(cluster_->SetBrokerUp(1).ok());

  ASSERT_TRUE(WaitFor([&] { return CountByInput(out->Messages()).size() == kInputs; }, kDeadline))
      << CountByInput(out->Messages()).size() << " of " << kInputs << " inputs have outputs";
  EXPECT_TRUE(WaitFor([&] { return CommittedToTheEnd(); }, kDeadline));
  EXPECT_TRUE((*runner)->loop().Serving());
  ASSERT_TRUE((*runner)->Stop().ok());
  ExpectEveryInputHasItsOutput(out->Messages(), kInputs);
}

// An outage longer than message.timeout.ms makes deliveries fail: the loop must rewind and redo
// the inputs concerned (at-least-once), never commit past one whose output was lost.
TEST_F(ConsumerLoopMockClusterTest, OutageLongerThanTheDeliveryTimeoutRewindsAndLosesNoInput) {
  constexpr int kInputs = 200;
  ProduceInputs(0, kInputs);
  EchoHandler handler(kOut);
  auto runner = LoopRunner::Start(props_, group_, {kIn}, handler,
                                  {{"message.timeout.ms", "1500"}, {"linger.ms", "50"}});
  ASSERT_TRUE(runner.ok()) << runner.status();
  std::unique_ptr<TopicReader> out = Read(kOut);
  ASSERT_TRUE(WaitFor([&] { return handler.distinct_handled() >= 40; }, kDeadline));

  ASSERT_TRUE(cluster_->SetBrokerDown(1).ok());
  absl::SleepFor(absl::Seconds(4));  // outage length, longer than message.timeout.ms
  ASSERT_TRUE(cluster_->SetBrokerUp(1).ok());

  ASSERT_TRUE(WaitFor([&] { return CountByInput(out->Messages()).size() == kInputs; }, kDeadline))
      << CountByInput(out->Messages()).size() << " of " << kInputs << " inputs have outputs";
  EXPECT_TRUE(WaitFor([&] { return CommittedToTheEnd(); }, kDeadline));
  EXPECT_TRUE(WaitFor([&] { return (*runner)->loop().Serving(); }, kDeadline));
  ASSERT_TRUE((*runner)->Stop().ok());
  ExpectEveryInputHasItsOutput(out->Messages(), kInputs);
  EXPECT_GT((*runner)->Counter("leadflow_partition_rewinds_total"), 0)
      << "the outage did not exercise the rewind path";
}

// Consumer settings of the fencing tests. The mock coordinator knows no static membership: a
// member that rejoins waits for its former self's session to expire, so sessions are short.
// Readers of the outputs start only once the fencing is over: injected Heartbeat errors go to
// whichever group member heartbeats next.
const KafkaProperties kStaticMember = {{"group.instance.id", "loop-test-0"},
                                       {"session.timeout.ms", "3000"},
                                       {"heartbeat.interval.ms", "300"}};

// The coordinator answering a static member's heartbeat with FENCED_INSTANCE_ID (as it does when
// the member's own abandoned JoinGroup replaced it after a broker restart) is fatal to the
// librdkafka handle: the adapter must rejoin with a new one, and the loop lose nothing.
TEST_F(ConsumerLoopMockClusterTest, FencedStaticMemberRejoinsAndEveryInputArrives) {
  constexpr int kInputs = 200;
  ProduceInputs(0, kInputs);
  // 5 ms per input: work is in progress when the fencing arrives.
  EchoHandler handler(kOut, {}, absl::Milliseconds(5));
  auto runner = LoopRunner::Start(props_, group_, {kIn}, handler, {}, kStaticMember);
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE(WaitFor([&] { return handler.distinct_handled() >= 40; }, kDeadline));

  ASSERT_TRUE(
      cluster_->PushRequestErrors(kHeartbeatApiKey, {RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID}).ok());
  ASSERT_TRUE(WaitFor(
      [&] { return (*runner)->Counter("leadflow_kafka_consumer_rejoins_total") >= 1; }, kDeadline))
      << "the member was never fenced";

  std::unique_ptr<TopicReader> out = Read(kOut);
  ASSERT_TRUE(WaitFor([&] { return CountByInput(out->Messages()).size() == kInputs; }, kDeadline))
      << CountByInput(out->Messages()).size() << " of " << kInputs << " inputs have outputs";
  EXPECT_TRUE(WaitFor([&] { return CommittedToTheEnd(); }, kDeadline));
  EXPECT_FALSE((*runner)->finished()) << "the loop ended on the fencing";
  EXPECT_TRUE((*runner)->loop().Serving());
  ASSERT_TRUE((*runner)->Stop().ok());
  ExpectEveryInputHasItsOutput(out->Messages(), kInputs);
  EXPECT_EQ((*runner)->Counter("leadflow_kafka_consumer_rejoins_total"), 1);
}

// Fenced again after every rejoin is what two running members sharing a group.instance.id look
// like: after RdKafkaConsumer::kMaxRejoins rejoins the loop ends with the fatal error, naming
// the instance id, instead of taking the partitions back and forth for ever.
TEST_F(ConsumerLoopMockClusterTest, MemberFencedAgainAfterEveryRejoinEndsWithTheFatalError) {
  constexpr int kInputs = 20;
  ProduceInputs(0, kInputs);
  EchoHandler handler(kOut);
  auto runner = LoopRunner::Start(props_, group_, {kIn}, handler, {}, kStaticMember);
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE(WaitFor([&] { return handler.distinct_handled() == kInputs; }, kDeadline));

  ASSERT_TRUE(cluster_
                  ->PushRequestErrors(kHeartbeatApiKey,
                                      std::vector<int>(RdKafkaConsumer::kMaxRejoins + 1,
                                                       RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID))
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return (*runner)->finished(); }, kDeadline))
      << "rejoins so far: " << (*runner)->Counter("leadflow_kafka_consumer_rejoins_total");
  const absl::Status status = (*runner)->Stop();
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("FENCED_INSTANCE_ID"));
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("loop-test-0"));
  EXPECT_EQ((*runner)->Counter("leadflow_kafka_consumer_rejoins_total"),
            static_cast<double>(RdKafkaConsumer::kMaxRejoins));
}

// A negative timeout (a deadline computed as `until - Now()` a moment too late) must not wait
// for ever, as librdkafka does for one: with every partition paused, during a retry's backoff,
// nothing would ever end the wait. Seen in a fault run: routing stopped consuming after a Redis
// restart and never logged again.
TEST_F(ConsumerLoopMockClusterTest,
       APollWithANegativeTimeoutReturnsAtOnceWithEveryPartitionPaused) {
  struct Assignments final : RebalanceListener {
    void OnAssigned(const std::vector<TopicPartition>& partitions) override {
      assigned += partitions.size();
    }
    void OnRevoked(const std::vector<TopicPartition>&) override {}
    std::atomic<size_t> assigned{0};
  } listener;
  prometheus::Registry registry;
  testing::KafkaProperties props = props_;
  props["group.id"] = group_;
  absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> consumer =
      RdKafkaConsumer::Create(props, registry, "poll-test");
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  ASSERT_TRUE((*consumer)->Subscribe({kIn}, &listener).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        (void)(*consumer)->Poll(absl::Milliseconds(50));
        return listener.assigned == static_cast<size_t>(kPartitions);
      },
      kDeadline));
  ASSERT_TRUE((*consumer)->PauseAll().ok());

  // librdkafka's "for ever" is -1 ms, which a deadline 1 to 2 ms late truncates to.
  int produced = 0;
  for (const absl::Duration timeout :
       {-absl::Microseconds(1500), -absl::Milliseconds(1), -absl::Milliseconds(3)}) {
    SCOPED_TRACE(absl::FormatDuration(timeout));
    std::atomic<bool> returned{false};
    std::thread poller([&] {
      absl::StatusOr<std::optional<ConsumedMessage>> polled = (*consumer)->Poll(timeout);
      EXPECT_TRUE(polled.ok()) << polled.status();
      returned = true;
    });
    const bool in_time = WaitFor([&] { return returned.load(); }, absl::Seconds(5));
    EXPECT_TRUE(in_time) << "the poll is still waiting";
    if (!in_time) {
      // End the stuck poll so that the test can finish: partitions resumed, messages on them.
      ASSERT_TRUE((*consumer)->ResumeAll().ok());
      ProduceInputs(produced, produced + 2 * kPartitions);
      produced += 2 * kPartitions;
    }
    poller.join();
    ASSERT_TRUE((*consumer)->PauseAll().ok());
  }
  (*consumer)->Close();
}

}  // namespace
}  // namespace leadflow::kafka
