// The consumer loop against the stack's real Kafka broker (LEADFLOW_TEST_ENV). Every test uses
// its own topic prefix and consumer groups, so it can share the broker with anything else.

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/testing/kafka_test_client.h"
#include "common/testing/test_env.h"
#include "common/testing/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/common/kafka/loop_harness.h"

namespace leadflow::kafka {
namespace {

using ::leadflow::kafka::loop_test::CountByInput;
using ::leadflow::kafka::loop_test::EchoHandler;
using ::leadflow::kafka::loop_test::Header;
using ::leadflow::kafka::loop_test::Inputs;
using ::leadflow::kafka::loop_test::LoopRunner;
using ::leadflow::testing::KafkaProperties;
using ::leadflow::testing::TestEnv;
using ::leadflow::testing::TopicReader;
using ::leadflow::testing::WaitFor;

constexpr int kPartitions = 3;
constexpr absl::Duration kDeadline = absl::Seconds(90);

class ConsumerLoopKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!TestEnv::Available()) {
      GTEST_SKIP() << "LEADFLOW_TEST_ENV is not set (run scripts/test.sh, or export it after "
                      "scripts/stack.sh up --infra)";
    }
    // From here on the stack is expected: anything missing is a failure, not a skip.
    absl::StatusOr<TestEnv> env = TestEnv::Load();
    ASSERT_TRUE(env.ok()) << env.status();
    props_ = testing::KafkaProps(env->kafka_bootstrap());
    absl::Status up = testing::WaitForKafka(props_, absl::Seconds(30));
    ASSERT_TRUE(up.ok()) << up;
    const std::string prefix = TestEnv::UniqueName("loop") + ".";
    in_ = prefix + "leads.inbound";
    out_ = prefix + "leads.captured";
    dlq_ = in_ + ".dlq";
    group_ = prefix + "capture";
    absl::Status created = testing::CreateTopics(
        props_, prefix, {"leads.inbound", "leads.captured", "leads.inbound.dlq"}, kPartitions);
    ASSERT_TRUE(created.ok()) << created;
    absl::StatusOr<std::unique_ptr<Producer>> producer = testing::MakeProducer(props_);
    ASSERT_TRUE(producer.ok()) << producer.status();
    input_producer_ = *std::move(producer);
  }

  void TearDown() override {
    // Tidy the shared broker; a failure here does not change the test's verdict.
    if (!in_.empty()) (void)testing::DeleteTopics(props_, {in_, out_, dlq_});
  }

  void ProduceInputs(int from, int to) {
    absl::Status s = testing::ProduceAll(*input_producer_, Inputs(in_, from, to));
    ASSERT_TRUE(s.ok()) << s;
  }

  std::unique_ptr<TopicReader> Read(const std::string& topic, KafkaProperties props = {}) {
    KafkaProperties merged = props_;
    for (const auto& [k, v] : props) merged[k] = v;
    absl::StatusOr<std::unique_ptr<TopicReader>> reader = TopicReader::Start(merged, {topic});
    EXPECT_TRUE(reader.ok()) << reader.status();
    return reader.ok() ? *std::move(reader) : nullptr;
  }

  void ExpectCommittedToTheEnd() {
    absl::StatusOr<std::map<int32_t, int64_t>> end = testing::EndOffsets(props_, in_, kPartitions);
    ASSERT_TRUE(end.ok()) << end.status();
    absl::StatusOr<std::map<int32_t, int64_t>> committed =
        testing::CommittedOffsets(props_, group_, in_, kPartitions);
    ASSERT_TRUE(committed.ok()) << committed.status();
    EXPECT_EQ(*committed, *end);
  }

  // A new member of the group finds nothing left to consume.
  void ExpectNothingRedelivered() {
    std::unique_ptr<TopicReader> again = Read(in_, {{"group.id", group_}});
    ASSERT_TRUE(again->WaitForAssignment(absl::Seconds(30)));
    EXPECT_FALSE(again->WaitForCount(1, absl::Seconds(3)))
        << again->Count() << " input(s) re-delivered to the group";
  }

  KafkaProperties props_;
  std::string in_, out_, dlq_, group_;
  std::unique_ptr<Producer> input_producer_;
};

TEST_F(ConsumerLoopKafkaTest, TwoHundredInputsWithFivePoisonGiveOutputsDlqEntriesAndFullCommits) {
  constexpr int kInputs = 200;
  const std::set<std::string> poison = {"7", "42", "99", "150", "199"};
  ProduceInputs(0, kInputs);
  EchoHandler handler(out_, poison);
  std::unique_ptr<TopicReader> out = Read(out_);
  std::unique_ptr<TopicReader> dlq = Read(dlq_);
  auto runner = LoopRunner::Start(props_, group_, {in_}, handler);
  ASSERT_TRUE(runner.ok()) << runner.status();

  ASSERT_TRUE(out->WaitForCount(kInputs - poison.size(), kDeadline)) << out->Count();
  ASSERT_TRUE(dlq->WaitForCount(poison.size(), kDeadline)) << dlq->Count();
  ASSERT_TRUE((*runner)->Stop().ok());
  EXPECT_FALSE(out->WaitForCount(kInputs - poison.size() + 1, absl::Seconds(1)))
      << "more outputs than inputs";

  std::map<std::string, int> counts = CountByInput(out->Messages());
  EXPECT_EQ(counts.size(), kInputs - poison.size());
  for (int i = 0; i < kInputs; ++i) {
    const std::string id = absl::StrCat(i);
    EXPECT_EQ(counts.contains(id), !poison.contains(id)) << "input " << id;
  }
  for (const ConsumedMessage& m : out->Messages()) {
    EXPECT_EQ(m.value, absl::StrCat("out-", *Header(m, loop_test::kInputIdHeader)));
  }

  std::set<std::string> dead;
  for (const ConsumedMessage& m : dlq->Messages()) {
    dead.insert(m.value);  // the original bytes
    EXPECT_EQ(Header(m, kDlqTopicHeader), in_);
    EXPECT_EQ(Header(m, kDlqErrorClassHeader), "INVALID_ARGUMENT");
    EXPECT_EQ(Header(m, kDlqErrorMessageHeader), absl::StrCat("poison input ", m.value));
    EXPECT_EQ(Header(m, kDlqServiceHeader), "loop-test");
    EXPECT_EQ(Header(m, "content-type"), "text/plain") << "original headers are kept";
    int partition = -1;
    int64_t offset = -1;
    EXPECT_TRUE(absl::SimpleAtoi(Header(m, kDlqPartitionHeader).value_or(""), &partition));
    EXPECT_TRUE(absl::SimpleAtoi(Header(m, kDlqOffsetHeader).value_or(""), &offset));
    EXPECT_GE(partition, 0);
    EXPECT_LT(partition, kPartitions);
    EXPECT_GE(offset, 0);
  }
  EXPECT_EQ(dead, poison);

  ExpectCommittedToTheEnd();
  ExpectNothingRedelivered();
}

TEST_F(ConsumerLoopKafkaTest, SecondInstanceJoiningRebalancesWithoutLosingOrDuplicatingOutputs) {
  constexpr int kFirst = 150;
  constexpr int kInputs = 300;
  ProduceInputs(0, kFirst);
  std::unique_ptr<TopicReader> out = Read(out_);
  // 10 ms per input: the first instance is still busy when the second one joins, so the
  // revocation finds work in flight.
  EchoHandler handler_a(out_, {}, absl::Milliseconds(10));
  EchoHandler handler_b(out_, {}, absl::Milliseconds(10));
  auto a = LoopRunner::Start(props_, group_, {in_}, handler_a);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(WaitFor([&] { return handler_a.distinct_handled() >= 40; }, kDeadline));

  auto b = LoopRunner::Start(props_, group_, {in_}, handler_b);
  ASSERT_TRUE(b.ok()) << b.status();
  ProduceInputs(kFirst, kInputs);  // while the group rebalances
  ASSERT_TRUE(WaitFor([&] { return (*b)->assigned() > 0; }, kDeadline))
      << "the second instance never got a partition";
  // Each member learns its own share of the new assignment in its own poll: wait for both.
  EXPECT_TRUE(WaitFor(
      [&] { return (*a)->assigned() + (*b)->assigned() == static_cast<size_t>(kPartitions); },
      kDeadline))
      << "partitions held: " << (*a)->assigned() << " + " << (*b)->assigned();

  auto progress = [&] {
    return absl::StrCat(CountByInput(out->Messages()).size(), " distinct outputs of ", kInputs,
                        " (", out->Count(), " in all); first instance handled ",
                        handler_a.distinct_handled(), " inputs (", handler_a.total_handled(),
                        " calls), second ", handler_b.distinct_handled(), " (",
                        handler_b.total_handled(), ")");
  };
  ASSERT_TRUE(WaitFor([&] { return CountByInput(out->Messages()).size() == kInputs; }, kDeadline))
      << progress();
  // The rebalance really happened: the second instance took partitions and did work.
  EXPECT_GT(handler_b.distinct_handled(), 0u) << progress();
  ASSERT_TRUE((*a)->Stop().ok());
  ASSERT_TRUE((*b)->Stop().ok());
  EXPECT_FALSE(out->WaitForCount(kInputs + 1, absl::Seconds(1)));

  std::map<std::string, int> counts = CountByInput(out->Messages());
  EXPECT_EQ(counts.size(), static_cast<size_t>(kInputs)) << "inputs lost";
  for (const auto& [id, n] : counts) EXPECT_EQ(n, 1) << "output of input " << id << " duplicated";
  EXPECT_EQ(handler_a.total_handled() + handler_b.total_handled(), static_cast<size_t>(kInputs))
      << "an input was handled twice";
  ExpectCommittedToTheEnd();
}

// A restarted twin (same group.instance.id) joining takes over the membership and fences the
// running member; once the twin is gone, the fenced member must rejoin with a new handle and go
// on consuming, with no input lost (the real broker's KIP-345 fencing, not an injected error).
TEST_F(ConsumerLoopKafkaTest, StaticMemberFencedByATwinThatLeftRejoinsAndLosesNothing) {
  constexpr int kFirst = 100;
  constexpr int kInputs = 200;
  const KafkaProperties instance = {{"group.instance.id", group_ + "-0"}};
  ProduceInputs(0, kFirst);
  std::unique_ptr<TopicReader> out = Read(out_);
  EchoHandler handler(out_);
  auto runner = LoopRunner::Start(props_, group_, {in_}, handler, {}, instance);
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE(WaitFor([&] { return CountByInput(out->Messages()).size() == kFirst; }, kDeadline));

  {
    // The twin: joins with the same instance id, which fences the member, then goes away
    // without leaving the group (static members never send LeaveGroup).
    KafkaProperties twin = instance;
    twin["group.id"] = group_;
    std::unique_ptr<TopicReader> reader = Read(in_, twin);
    ASSERT_TRUE(reader->WaitForAssignment(kDeadline)) << "the twin never joined";
  }
  ASSERT_TRUE(WaitFor(
      [&] { return (*runner)->Counter("leadflow_kafka_consumer_rejoins_total") >= 1; }, kDeadline))
      << "the member was never fenced";

  ProduceInputs(kFirst, kInputs);
  ASSERT_TRUE(WaitFor([&] { return CountByInput(out->Messages()).size() == kInputs; }, kDeadline))
      << CountByInput(out->Messages()).size() << " of " << kInputs << " inputs have outputs";
  EXPECT_FALSE((*runner)->finished()) << "the loop ended on the fencing";
  ASSERT_TRUE((*runner)->Stop().ok());
  ExpectCommittedToTheEnd();
}

}  // namespace
}  // namespace leadflow::kafka
