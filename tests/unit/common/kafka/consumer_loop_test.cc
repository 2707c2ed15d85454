#include "common/kafka/consumer_loop.h"

#include "common/kafka/topic_router.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/testing/fake_kafka.h"
#include "common/testing/metrics.h"
#include "common/testing/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace leadflow::kafka {
namespace {

using ::leadflow::testing::FakeConsumer;
using ::leadflow::testing::FakeProducer;
using ::leadflow::testing::MetricValue;
using ::leadflow::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::SizeIs;

constexpr char kTopic[] = "leads.inbound";
constexpr char kOutTopic[] = "leads.captured";
const TopicPartition kTp{kTopic, 0};
// Generous: only reached when a test fails.
constexpr absl::Duration kDeadline = absl::Seconds(10);

OutboundMessage OutputFor(const ConsumedMessage& in, const std::string& suffix = "") {
  return {kOutTopic, in.key, absl::StrCat("out:", in.value, suffix), {}};
}

// A handler whose behaviour each test scripts; records every call.
class ScriptedHandler final : public MessageHandler {
 public:
  // `attempt` counts calls for the same (partition, offset), from 1.
  using Script =
      std::function<absl::StatusOr<std::vector<OutboundMessage>>(const ConsumedMessage&, int)>;
  // Scripts HandleBatch(); when unset, the default one (Handle() each) runs.
  using BatchScript =
      std::function<std::vector<HandleResult>(const std::vector<const ConsumedMessage*>&)>;
  explicit ScriptedHandler(Script script, BatchScript batch_script = nullptr)
      : script_(std::move(script)), batch_script_(std::move(batch_script)) {}

  std::vector<HandleResult> HandleBatch(const std::vector<const ConsumedMessage*>& batch) override {
    {
      absl::MutexLock lock(&mu_);
      std::vector<std::string> values;
      for (const ConsumedMessage* m : batch) values.push_back(m->value);
      batches_.push_back(std::move(values));
    }
    return batch_script_ ? batch_script_(batch) : MessageHandler::HandleBatch(batch);
  }
  // The values of each batch handed over, in order.
  std::vector<std::vector<std::string>> batches() const {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

  absl::StatusOr<std::vector<OutboundMessage>> Handle(const ConsumedMessage& message) override {
    int attempt;
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back(message);
      attempt = ++attempts_[{message.partition, message.offset}];
    }
    return script_(message, attempt);
  }

  std::vector<ConsumedMessage> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int CallsFor(int64_t offset, int32_t partition = 0) const {
    absl::MutexLock lock(&mu_);
    auto it = attempts_.find({partition, offset});
    return it == attempts_.end() ? 0 : it->second;
  }
  std::vector<int64_t> OffsetsHandled() const {
    absl::MutexLock lock(&mu_);
    std::vector<int64_t> out;
    for (const ConsumedMessage& m : calls_) out.push_back(m.offset);
    return out;
  }

 private:
  const Script script_;
  const BatchScript batch_script_;
  mutable absl::Mutex mu_;
  std::vector<std::vector<std::string>> batches_ ABSL_GUARDED_BY(mu_);
  std::vector<ConsumedMessage> calls_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<int32_t, int64_t>, int> attempts_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::vector<OutboundMessage>> OneOutput(const ConsumedMessage& m, int) {
  return std::vector<OutboundMessage>{OutputFor(m)};
}

std::optional<std::string> HeaderOf(const OutboundMessage& m, const std::string& key) {
  for (const Header& h : m.headers) {
    if (h.key == key) return h.value;
  }
  return std::nullopt;
}

class ConsumerLoopTest : public ::testing::Test {
 protected:
  static ConsumerLoopOptions FastOptions() {
    ConsumerLoopOptions o;
    o.service = "capture";
    o.topics = {kTopic};
    o.poll_timeout = absl::Milliseconds(5);
    o.initial_backoff = absl::Milliseconds(1);
    o.max_backoff = absl::Milliseconds(4);
    o.failures_before_unhealthy = 3;
    o.flush_timeout = absl::Seconds(10);
    return o;
  }

  void StartLoop(ScriptedHandler::Script script, ConsumerLoopOptions options = FastOptions(),
                 ScriptedHandler::BatchScript batch_script = nullptr) {
    handler_ = std::make_unique<ScriptedHandler>(std::move(script), std::move(batch_script));
    loop_ = std::make_unique<ConsumerLoop>(consumer_, producer_, *handler_, std::move(options),
                                           registry_);
    thread_ = std::thread([this] { run_status_ = loop_->Run(); });
  }

  // Stops the loop and waits for Run() to return.
  void StopLoop() {
    loop_->Stop();
    thread_.join();
  }

  void TearDown() override {
    if (!thread_.joinable()) return;
    // Release whatever a failed test left held, so shutdown does not wait for the flush timeout.
    producer_.Hold(false);
    producer_.AckAll();
    StopLoop();
  }

  // Returns once the loop has started `n` more polls, i.e. has drained completions at least once
  // since the call (the loop drains before every poll).
  void WaitForLoopIterations(int n = 2) {
    const int start = consumer_.poll_calls();
    ASSERT_TRUE(WaitFor([&] { return consumer_.poll_calls() >= start + n; }, kDeadline));
  }

  bool WaitForStored(int64_t offset, const TopicPartition& tp = kTp) {
    return WaitFor([&] { return consumer_.stored_offset(tp) == offset; }, kDeadline);
  }

  int64_t Add(const std::string& value, int32_t partition = 0) {
    return consumer_.Add(kTopic, partition, absl::StrCat("lead-", value), value);
  }

  FakeConsumer consumer_;
  FakeProducer producer_;
  prometheus::Registry registry_;
  std::unique_ptr<ScriptedHandler> handler_;
  std::unique_ptr<ConsumerLoop> loop_;
  std::thread thread_;
  absl::Status run_status_;  // written by the loop thread, read after join
};

TEST_F(ConsumerLoopTest, SubscribesToTheConfiguredTopics) {
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitFor([&] { return !consumer_.subscribed_topics().empty(); }, kDeadline));
  EXPECT_THAT(consumer_.subscribed_topics(), ElementsAre(kTopic));
}

TEST_F(ConsumerLoopTest, OffsetIsStoredOnlyAfterEveryOutputIsAcknowledged) {
  producer_.Hold(true);
  Add("a");
  StartLoop([](const ConsumedMessage& m, int) {
    return std::vector<OutboundMessage>{OutputFor(m, "#1"), OutputFor(m, "#2")};
  });
  ASSERT_TRUE(WaitFor([&] { return producer_.sent_count() == 2; }, kDeadline));
  WaitForLoopIterations();
  EXPECT_THAT(consumer_.store_calls(), IsEmpty()) << "stored before any acknowledgement";

  ASSERT_TRUE(producer_.AckNext());
  WaitForLoopIterations();
  EXPECT_THAT(consumer_.store_calls(), IsEmpty()) << "stored with one output unacknowledged";

  ASSERT_TRUE(producer_.AckNext());
  ASSERT_TRUE(WaitForStored(1));
  EXPECT_THAT(consumer_.store_calls(),
              ElementsAre(Field(&FakeConsumer::StoreCall::next_offset, 1)));
}

TEST_F(ConsumerLoopTest, InputWithoutOutputsIsMarkedDoneAtOnce) {
  Add("a");
  Add("b");
  StartLoop([](const ConsumedMessage&, int) { return std::vector<OutboundMessage>{}; });
  ASSERT_TRUE(WaitForStored(2));
  EXPECT_EQ(producer_.sent_count(), 0u);
}

TEST_F(ConsumerLoopTest, CommitPointsStayContiguousWhenOutputsAreAcknowledgedOutOfOrder) {
  producer_.Hold(true);
  for (const char* v : {"a", "b", "c"}) Add(v);
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitFor([&] { return producer_.sent_count() == 3; }, kDeadline));
  // Outputs were sent in input order: sent()[i] belongs to offset i.
  const std::vector<FakeProducer::Sent> sent = producer_.sent();
  ASSERT_EQ(sent[0].message.value, "out:a");
  ASSERT_EQ(sent[2].message.value, "out:c");

  auto max_stored = [&] {
    int64_t max = -1;
    for (const FakeConsumer::StoreCall& c : consumer_.store_calls()) {
      max = std::max(max, c.next_offset);
    }
    return max;
  };

  ASSERT_TRUE(producer_.Ack(2));  // the last input finishes first
  WaitForLoopIterations();
  EXPECT_LE(max_stored(), 0) << "commit point passed unfinished offsets 0 and 1";

  ASSERT_TRUE(producer_.Ack(0));
  ASSERT_TRUE(WaitForStored(1));
  WaitForLoopIterations();
  EXPECT_EQ(max_stored(), 1) << "commit point passed unfinished offset 1";

  ASSERT_TRUE(producer_.Ack(1));
  ASSERT_TRUE(WaitForStored(3));
  std::vector<int64_t> stored;
  for (const FakeConsumer::StoreCall& c : consumer_.store_calls()) stored.push_back(c.next_offset);
  EXPECT_TRUE(std::is_sorted(stored.begin(), stored.end()));
}

TEST_F(ConsumerLoopTest, PoisonInputGoesToTheDlqWithItsReasonAndDoesNotStallThePartition) {
  producer_.Hold(true);
  ConsumedMessage poison;
  poison.topic = kTopic;
  poison.partition = 0;
  poison.key = "lead-1";
  poison.value = std::string("{\"email\":\"not-an-address\"}") + std::string("\x00\xff", 2);
  poison.headers = {{"content-type", "application/json"}};
  consumer_.Add(poison);
  Add("good");
  StartLoop([](const ConsumedMessage& m, int) -> absl::StatusOr<std::vector<OutboundMessage>> {
    if (m.offset == 0) return absl::InvalidArgumentError("email: not an address");
    return std::vector<OutboundMessage>{OutputFor(m)};
  });

  // The next input is handled while the DLQ copy is still unacknowledged.
  ASSERT_TRUE(WaitFor([&] { return producer_.sent_count() == 2; }, kDeadline));
  const std::vector<FakeProducer::Sent> sent = producer_.sent();
  const OutboundMessage& dlq = sent[0].message;
  EXPECT_EQ(dlq.topic, "leads.inbound.dlq");
  EXPECT_EQ(dlq.key, "lead-1");
  EXPECT_EQ(dlq.value, poison.value) << "the DLQ must carry the original bytes";
  EXPECT_EQ(HeaderOf(dlq, "content-type"), "application/json");
  EXPECT_EQ(HeaderOf(dlq, kDlqTopicHeader), kTopic);
  EXPECT_EQ(HeaderOf(dlq, kDlqPartitionHeader), "0");
  EXPECT_EQ(HeaderOf(dlq, kDlqOffsetHeader), "0");
  EXPECT_EQ(HeaderOf(dlq, kDlqErrorClassHeader), "INVALID_ARGUMENT");
  EXPECT_EQ(HeaderOf(dlq, kDlqErrorMessageHeader), "email: not an address");
  EXPECT_EQ(HeaderOf(dlq, kDlqServiceHeader), "capture");
  EXPECT_EQ(sent[1].message.topic, kOutTopic);
  EXPECT_EQ(handler_->CallsFor(0), 1) << "poison must not be retried";

  WaitForLoopIterations();
  EXPECT_THAT(consumer_.store_calls(), IsEmpty()) << "poison offset stored before its DLQ ack";
  ASSERT_TRUE(producer_.Ack(0));
  ASSERT_TRUE(WaitForStored(1));
  ASSERT_TRUE(producer_.Ack(1));
  ASSERT_TRUE(WaitForStored(2));
  EXPECT_EQ(MetricValue(registry_, "leadflow_messages_dead_lettered_total",
                        {{"topic", kTopic}, {"class", "INVALID_ARGUMENT"}}),
            1);
}

struct StatusCase {
  absl::StatusCode code;
  bool poison;
};

class ConsumerLoopStatusTest : public ConsumerLoopTest,
                               public ::testing::WithParamInterface<StatusCase> {};

TEST_P(ConsumerLoopStatusTest, HandlerStatusDecidesBetweenDlqAndRetry) {
  const StatusCase c = GetParam();
  Add("a");
  StartLoop(
      [c](const ConsumedMessage& m, int attempt) -> absl::StatusOr<std::vector<OutboundMessage>> {
        if (attempt == 1) return absl::Status(c.code, "boom");
        return std::vector<OutboundMessage>{OutputFor(m)};
      });
  ASSERT_TRUE(WaitForStored(1));
  const std::vector<FakeProducer::Sent> sent = producer_.sent();
  ASSERT_EQ(sent.size(), 1u);
  if (c.poison) {
    EXPECT_EQ(handler_->CallsFor(0), 1);
    EXPECT_EQ(sent[0].message.topic, "leads.inbound.dlq");
    EXPECT_EQ(HeaderOf(sent[0].message, kDlqErrorClassHeader), absl::StatusCodeToString(c.code));
  } else {
    EXPECT_EQ(handler_->CallsFor(0), 2);
    EXPECT_EQ(sent[0].message.topic, kOutTopic);
  }
}

INSTANTIATE_TEST_SUITE_P(Codes, ConsumerLoopStatusTest,
                         ::testing::Values(StatusCase{absl::StatusCode::kInvalidArgument, true},
                                           StatusCase{absl::StatusCode::kDataLoss, true},
                                           StatusCase{absl::StatusCode::kOutOfRange, true},
                                           StatusCase{absl::StatusCode::kFailedPrecondition, true},
                                           StatusCase{absl::StatusCode::kNotFound, true},
                                           StatusCase{absl::StatusCode::kUnimplemented, true},
                                           StatusCase{absl::StatusCode::kAlreadyExists, true},
                                           StatusCase{absl::StatusCode::kUnavailable, false},
                                           StatusCase{absl::StatusCode::kDeadlineExceeded, false},
                                           StatusCase{absl::StatusCode::kAborted, false},
                                           StatusCase{absl::StatusCode::kResourceExhausted, false},
                                           StatusCase{absl::StatusCode::kInternal, false},
                                           StatusCase{absl::StatusCode::kUnknown, false}),
                         [](const ::testing::TestParamInfo<StatusCase>& info) {
                           std::string name = absl::StatusCodeToString(info.param.code);
                           std::erase(name, '_');
                           return name;
                         });

TEST_F(ConsumerLoopTest, TransientFailureIsRetriedOnTheSameMessageAndNeverSkipped) {
  Add("a");
  Add("b");
  StartLoop(
      [](const ConsumedMessage& m, int attempt) -> absl::StatusOr<std::vector<OutboundMessage>> {
        if (m.offset == 0 && attempt <= 2) return absl::UnavailableError("redis down");
        return std::vector<OutboundMessage>{OutputFor(m)};
      });
  ASSERT_TRUE(WaitForStored(2));
  EXPECT_THAT(handler_->OffsetsHandled(), ElementsAre(0, 0, 0, 1));
  for (const ConsumedMessage& m : handler_->calls()) {
    if (m.offset == 0) {
      EXPECT_EQ(m.value, "a");
    }
  }
  EXPECT_GE(consumer_.pause_calls(), 1) << "fetching must pause while retrying";
  EXPECT_GE(consumer_.resume_calls(), 1);
  EXPECT_FALSE(consumer_.paused());
  ASSERT_EQ(producer_.sent_count(), 2u);
  EXPECT_EQ(producer_.sent()[0].message.value, "out:a");
  EXPECT_EQ(MetricValue(registry_, "leadflow_handler_retries_total", {{"service", "capture"}}), 2);
}

TEST_F(ConsumerLoopTest, ReportsNotServingAfterRepeatedFailuresAndServingAgainOnSuccess) {
  std::atomic<bool> failing{true};
  absl::Mutex mu;
  std::vector<bool> serving_at_call;
  Add("a");
  StartLoop([&](const ConsumedMessage& m, int) -> absl::StatusOr<std::vector<OutboundMessage>> {
    {
      absl::MutexLock lock(&mu);
      serving_at_call.push_back(loop_->Serving());
    }
    if (failing.load()) return absl::UnavailableError("redis down");
    return std::vector<OutboundMessage>{OutputFor(m)};
  });
  ASSERT_TRUE(WaitFor([&] { return handler_->CallsFor(0) >= 5; }, kDeadline));
  EXPECT_FALSE(loop_->Serving());
  {
    absl::MutexLock lock(&mu);
    // failures_before_unhealthy = 3: healthy through the third failure, not after it.
    ASSERT_GE(serving_at_call.size(), 5u);
    EXPECT_THAT(std::vector<bool>(serving_at_call.begin(), serving_at_call.begin() + 5),
                ElementsAre(true, true, true, false, false));
  }
  EXPECT_THAT(consumer_.store_calls(), IsEmpty());
  EXPECT_EQ(producer_.sent_count(), 0u);

  failing.store(false);
  ASSERT_TRUE(WaitForStored(1));
  EXPECT_TRUE(WaitFor([&] { return loop_->Serving(); }, kDeadline));
}

TEST_F(ConsumerLoopTest, FailedDeliveryRewindsToTheInputWhichIsHandledAgain) {
  producer_.FailDeliveries(1, absl::UnavailableError("broker down"));
  Add("a");
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitForStored(1));
  EXPECT_THAT(consumer_.seek_calls(),
              ElementsAre(::testing::AllOf(Field(&FakeConsumer::StoreCall::tp, kTp),
                                           Field(&FakeConsumer::StoreCall::next_offset, 0))));
  EXPECT_EQ(handler_->CallsFor(0), 2);
  const std::vector<FakeProducer::Sent> sent = producer_.sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].message.value, sent[1].message.value)
      << "the redo must produce the same output";
  EXPECT_TRUE(WaitFor([&] { return loop_->Serving(); }, kDeadline));
  EXPECT_EQ(MetricValue(registry_, "leadflow_partition_rewinds_total", {{"service", "capture"}}),
            1);
}

// Deliveries of different inputs' outputs are reported in any order (they go to different
// partitions). When a later input's output fails first, the rewind must still cover the earlier
// input whose output is unacknowledged: otherwise that input's failure arrives for an abandoned
// generation, is ignored, and the input is committed without its output ever being delivered.
TEST_F(ConsumerLoopTest, FailedDeliveriesRewindToTheOldestUnfinishedInput) {
  producer_.Hold(true);
  Add("a");
  Add("b");
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitFor([&] { return producer_.sent_count() == 2; }, kDeadline));
  producer_.Hold(false);  // redone outputs are acknowledged at once
  ASSERT_TRUE(producer_.Ack(1, absl::UnavailableError("partition 2 leader gone")));
  ASSERT_TRUE(producer_.Ack(0, absl::UnavailableError("partition 1 leader gone")));

  ASSERT_TRUE(WaitForStored(2));
  EXPECT_TRUE(WaitFor([&] { return handler_->CallsFor(0) == 2; }, absl::Seconds(2)))
      << "input 0 was never handled again although its output was not delivered";
  bool delivered_a = false;
  for (const FakeProducer::Sent& s : producer_.sent()) {
    if (s.message.value == "out:a" && s.delivery.has_value() && s.delivery->ok()) {
      delivered_a = true;
    }
  }
  EXPECT_TRUE(delivered_a) << "offset 0 committed but its output never reached the broker";
}

TEST_F(ConsumerLoopTest, OutputTheBrokerCanNeverAcceptSendsTheInputToTheDlqInsteadOfStalling) {
  producer_.FailSends(1, absl::InvalidArgumentError("message size too large"));
  Add("a");
  Add("b");
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitForStored(2));
  EXPECT_EQ(handler_->CallsFor(0), 1) << "a permanent rejection must not redo the input forever";
  EXPECT_THAT(consumer_.seek_calls(), IsEmpty());
  bool dlq = false;
  for (const FakeProducer::Sent& s : producer_.sent()) {
    if (s.message.topic == kTp.topic + ".dlq") {
      dlq = true;
      EXPECT_EQ(s.message.value, "a");
    }
  }
  EXPECT_TRUE(dlq) << "the input whose output was rejected must be on the DLQ";
}

TEST_F(ConsumerLoopTest, FullProducerQueueIsBackpressureNotFailure) {
  producer_.FailSends(3, absl::UnavailableError("local queue full"));
  Add("a");
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitForStored(1));
  EXPECT_EQ(producer_.refused_sends(), 3);
  EXPECT_EQ(producer_.sent_count(), 1u);
  EXPECT_EQ(handler_->CallsFor(0), 1) << "a full queue must not redo the input";
  EXPECT_THAT(consumer_.seek_calls(), IsEmpty());
}

TEST_F(ConsumerLoopTest, StopsPollingAtMaxInFlightUntilAnOutputIsAcknowledged) {
  ConsumerLoopOptions options = FastOptions();
  options.max_in_flight = 2;
  producer_.Hold(true);
  for (const char* v : {"a", "b", "c"}) Add(v);
  StartLoop(OneOutput, options);
  ASSERT_TRUE(WaitFor([&] { return producer_.sent_count() == 2; }, kDeadline));
  EXPECT_FALSE(WaitFor([&] { return handler_->calls().size() >= 3; }, absl::Milliseconds(100)))
      << "a third input was taken with two unacknowledged";
  ASSERT_TRUE(producer_.AckNext());
  EXPECT_TRUE(WaitFor([&] { return handler_->calls().size() == 3; }, kDeadline));
}

TEST_F(ConsumerLoopTest, RevocationWaitsForInFlightOutputsThenCommits) {
  producer_.Hold(true);
  Add("a");
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitFor([&] { return producer_.sent_count() == 1; }, kDeadline));
  consumer_.ScheduleRevoke({kTp});
  ASSERT_TRUE(WaitFor([&] { return consumer_.in_revoke(); }, kDeadline));
  EXPECT_EQ(consumer_.commit_calls(), 0) << "committed before the in-flight output was acked";

  ASSERT_TRUE(producer_.AckNext());
  ASSERT_TRUE(WaitFor([&] { return !consumer_.in_revoke(); }, kDeadline));
  EXPECT_GE(consumer_.commit_calls(), 1);
  EXPECT_THAT(consumer_.committed_offset(kTp), Optional(1));
}

TEST_F(ConsumerLoopTest, CompletionsAfterRevocationAreIgnoredAndTheNewOwnerRedoesTheWork) {
  ConsumerLoopOptions options = FastOptions();
  options.flush_timeout = absl::Milliseconds(100);  // give up on input 1 during the revocation
  producer_.Hold(true);
  Add("a");
  Add("b");
  StartLoop(OneOutput, options);
  ASSERT_TRUE(WaitFor([&] { return producer_.sent_count() == 2; }, kDeadline));
  ASSERT_TRUE(producer_.Ack(0));
  ASSERT_TRUE(WaitForStored(1));

  consumer_.ScheduleRevoke({kTp});
  ASSERT_TRUE(WaitFor([&] { return consumer_.revoked_events() == 1 && !consumer_.in_revoke(); },
                      kDeadline));
  EXPECT_GE(consumer_.commit_calls(), 1);
  EXPECT_THAT(consumer_.committed_offset(kTp), Optional(1));

  // Input 1's output is acknowledged only now: it belongs to abandoned work.
  ASSERT_TRUE(producer_.Ack(1));
  WaitForLoopIterations();
  for (const FakeConsumer::StoreCall& c : consumer_.store_calls()) {
    EXPECT_LE(c.next_offset, 1) << "a stale completion moved the commit point";
  }

  // Assigned back (as to a new owner): input 1 resumes from the committed offset and is redone.
  producer_.Hold(false);
  consumer_.ScheduleAssign({kTp});
  ASSERT_TRUE(WaitForStored(2));
  EXPECT_EQ(handler_->CallsFor(0), 1);
  EXPECT_EQ(handler_->CallsFor(1), 2);
}

// A revocation arriving while the loop retries a transient failure (e.g. Redis down during a
// deploy) must not hold the rebalance for the whole flush timeout: the message being retried has
// no outputs in flight and will be redone by the partition's next owner.
TEST_F(ConsumerLoopTest, RevocationDuringATransientRetryDoesNotWaitForTheFlushTimeout) {
  ConsumerLoopOptions options = FastOptions();
  options.flush_timeout = absl::Seconds(10);
  std::atomic<bool> failing{true};
  Add("a");
  StartLoop(
      [&](const ConsumedMessage& m, int) -> absl::StatusOr<std::vector<OutboundMessage>> {
        if (failing.load()) return absl::UnavailableError("redis down");
        return std::vector<OutboundMessage>{OutputFor(m)};
      },
      options);
  ASSERT_TRUE(WaitFor([&] { return handler_->CallsFor(0) >= 2; }, kDeadline));
  consumer_.ScheduleRevoke({kTp});
  EXPECT_TRUE(WaitFor([&] { return consumer_.revoked_events() == 1 && !consumer_.in_revoke(); },
                      absl::Seconds(3)))
      << "revocation blocked on the message being retried";
  ASSERT_TRUE(WaitFor([&] { return !consumer_.in_revoke(); }, kDeadline));
  EXPECT_THAT(consumer_.store_calls(), IsEmpty());

  failing.store(false);
  consumer_.ScheduleAssign({kTp});
  ASSERT_TRUE(WaitForStored(1));
  EXPECT_EQ(producer_.sent_count(), 1u);
}

TEST_F(ConsumerLoopTest, StopFinishesInFlightWorkCommitsAndCloses) {
  producer_.Hold(true);
  Add("a");
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitFor([&] { return producer_.sent_count() == 1; }, kDeadline));
  loop_->Stop();
  EXPECT_FALSE(WaitFor([&] { return consumer_.closed(); }, absl::Milliseconds(100)))
      << "closed with an output unacknowledged";

  ASSERT_TRUE(producer_.AckNext());
  thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  EXPECT_TRUE(consumer_.closed());
  EXPECT_THAT(consumer_.store_calls(),
              ElementsAre(Field(&FakeConsumer::StoreCall::next_offset, 1)));
  EXPECT_THAT(consumer_.committed_offset(kTp), Optional(1));
}

TEST_F(ConsumerLoopTest, StopDuringRetriesLeavesTheMessageUncommitted) {
  Add("a");
  StartLoop([](const ConsumedMessage&, int) -> absl::StatusOr<std::vector<OutboundMessage>> {
    return absl::UnavailableError("redis down");
  });
  ASSERT_TRUE(WaitFor([&] { return handler_->CallsFor(0) >= 2; }, kDeadline));
  StopLoop();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  EXPECT_TRUE(consumer_.closed());
  EXPECT_THAT(consumer_.store_calls(), IsEmpty());
  EXPECT_EQ(consumer_.committed_offset(kTp), std::nullopt);
  EXPECT_EQ(producer_.sent_count(), 0u);
}

TEST_F(ConsumerLoopTest, FatalConsumerErrorEndsRunWithThatErrorAndCloses) {
  consumer_.FailNextPoll(absl::InternalError("fatal kafka error: fenced"));
  StartLoop(OneOutput);
  thread_.join();
  EXPECT_EQ(run_status_.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(run_status_.message(), "fatal kafka error: fenced");
  EXPECT_TRUE(consumer_.closed());
}

TEST_F(ConsumerLoopTest, PartitionsProgressIndependently) {
  producer_.Hold(true);
  Add("p0", 0);
  Add("p1", 1);
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitFor([&] { return producer_.sent_count() == 2; }, kDeadline));
  const std::vector<FakeProducer::Sent> sent = producer_.sent();
  const size_t p1 = sent[0].message.value == "out:p1" ? 0 : 1;
  ASSERT_TRUE(producer_.Ack(p1));
  const TopicPartition tp1{kTopic, 1};
  ASSERT_TRUE(WaitForStored(1, tp1));
  EXPECT_EQ(consumer_.stored_offset(kTp), std::nullopt);
}

}  // namespace
}  // namespace leadflow::kafka

namespace leadflow::kafka {
namespace {

std::vector<std::string> SentValues(const FakeProducer& producer) {
  std::vector<std::string> values;
  for (const FakeProducer::Sent& s : producer.sent()) values.push_back(s.message.value);
  return values;
}

TEST_F(ConsumerLoopTest, InputsPolledTogetherReachTheHandlerAsOneBatchAndAreSentInOrder) {
  for (const char* v : {"a", "b", "c"}) Add(v);
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitForStored(3));
  EXPECT_THAT(handler_->batches(), ElementsAre(ElementsAre("a", "b", "c")));
  EXPECT_THAT(SentValues(producer_), ElementsAre("out:a", "out:b", "out:c"));
}

TEST_F(ConsumerLoopTest, MaxBatchBoundsTheInputsHandedOverAtOnce) {
  ConsumerLoopOptions options = FastOptions();
  options.max_batch = 2;
  for (const char* v : {"a", "b", "c"}) Add(v);
  StartLoop(OneOutput, options);
  ASSERT_TRUE(WaitForStored(3));
  EXPECT_THAT(handler_->batches(), ElementsAre(ElementsAre("a", "b"), ElementsAre("c")));
}

TEST_F(ConsumerLoopTest, ATransientResultInABatchIsRetriedAloneWithTheInputsAfterIt) {
  for (const char* v : {"a", "b", "c"}) Add(v);
  StartLoop(OneOutput, FastOptions(), [](const std::vector<const ConsumedMessage*>& batch) {
    std::vector<HandleResult> results;
    for (const ConsumedMessage* m : batch) {
      if (m->value == "b") {
        results.push_back(absl::UnavailableError("redis down"));
      } else {
        results.push_back(std::vector<OutboundMessage>{OutputFor(*m, "@batch")});
      }
    }
    return results;
  });
  ASSERT_TRUE(WaitForStored(3));
  // a's batch result stands; b is retried alone (after a backoff), and c, whose batch result
  // came after b's failure, is handled again alone so the outputs keep input order.
  EXPECT_THAT(SentValues(producer_), ElementsAre("out:a@batch", "out:b", "out:c"));
  EXPECT_EQ(handler_->CallsFor(0), 0);
  EXPECT_EQ(handler_->CallsFor(1), 1);
  EXPECT_EQ(handler_->CallsFor(2), 1);
  EXPECT_EQ(MetricValue(registry_, "leadflow_handler_retries_total", {}), 1);
}

TEST_F(ConsumerLoopTest, InputsABatchHandlerLeftOutAreHandledOneByOne) {
  for (const char* v : {"a", "b", "c"}) Add(v);
  StartLoop(OneOutput, FastOptions(), [](const std::vector<const ConsumedMessage*>& batch) {
    return std::vector<HandleResult>{std::vector<OutboundMessage>{OutputFor(*batch[0], "@batch")}};
  });
  ASSERT_TRUE(WaitForStored(3));
  EXPECT_THAT(SentValues(producer_), ElementsAre("out:a@batch", "out:b", "out:c"));
  EXPECT_EQ(MetricValue(registry_, "leadflow_handler_retries_total", {}), 0)
      << "left out is not a failure";
}

TEST_F(ConsumerLoopTest, PoisonInABatchGoesToTheDlqAndTheRestOfTheBatchIsSent) {
  for (const char* v : {"a", "bad", "c"}) Add(v);
  StartLoop([](const ConsumedMessage& m, int) -> HandleResult {
    if (m.value == "bad") return absl::InvalidArgumentError("not a lead");
    return std::vector<OutboundMessage>{OutputFor(m)};
  });
  ASSERT_TRUE(WaitForStored(3));
  EXPECT_THAT(SentValues(producer_), ElementsAre("out:a", "bad", "out:c"));
  EXPECT_EQ(producer_.sent()[1].message.topic, absl::StrCat(kTopic, ".dlq"));
}

TEST_F(ConsumerLoopTest, RevocationWhileCollectingABatchLeavesThatPartitionsInputsToTheNextOwner) {
  const TopicPartition p1{kTopic, 1};
  Add("a", 0);
  Add("x", 1);
  // Delivered by the poll right after "a" was returned: while the batch is being collected.
  consumer_.ScheduleRevokeAfter(1, {kTp});
  StartLoop(OneOutput);
  ASSERT_TRUE(WaitForStored(1, p1));
  EXPECT_THAT(handler_->batches(), ElementsAre(ElementsAre("x")))
      << "an input of the revoked partition was handled";
  EXPECT_EQ(handler_->CallsFor(0, 0), 0);

  // The partition comes back: "a" is redelivered from the committed offset and handled once.
  consumer_.ScheduleAssign({kTp});
  ASSERT_TRUE(WaitForStored(1));
  EXPECT_EQ(handler_->CallsFor(0, 0), 1);
}

// HandleInKeyWaves and TopicRouter's batches: pure functions over messages.
ConsumedMessage Message(const std::string& topic, const std::string& key, const std::string& value,
                        int64_t offset) {
  ConsumedMessage m;
  m.topic = topic;
  m.key = key;
  m.value = value;
  m.offset = offset;
  return m;
}

std::vector<const ConsumedMessage*> Pointers(const std::vector<ConsumedMessage>& messages) {
  std::vector<const ConsumedMessage*> out;
  for (const ConsumedMessage& m : messages) out.push_back(&m);
  return out;
}

std::vector<std::string> Values(const std::vector<HandleResult>& results) {
  std::vector<std::string> out;
  for (const HandleResult& r : results) {
    out.push_back(r.ok() ? (r->empty() ? "" : r->front().value) : r.status().ToString());
  }
  return out;
}

TEST(HandleInKeyWavesTest, EachWaveHoldsOneInputPerKeyInOrderAndResultsComeBackInBatchOrder) {
  const std::vector<ConsumedMessage> batch = {
      Message(kTopic, "k1", "a1", 0), Message(kTopic, "k1", "a2", 1),
      Message(kTopic, "k2", "b1", 2), Message(kTopic, "k1", "a3", 3)};
  std::vector<std::vector<std::string>> waves;
  const std::vector<HandleResult> results =
      HandleInKeyWaves(Pointers(batch), [&](const std::vector<const ConsumedMessage*>& wave) {
        std::vector<std::string> values;
        std::vector<HandleResult> out;
        for (const ConsumedMessage* m : wave) {
          values.push_back(m->value);
          out.push_back(std::vector<OutboundMessage>{OutputFor(*m)});
        }
        waves.push_back(values);
        return out;
      });
  EXPECT_THAT(waves, ElementsAre(ElementsAre("a1", "b1"), ElementsAre("a2"), ElementsAre("a3")));
  EXPECT_THAT(Values(results), ElementsAre("out:a1", "out:a2", "out:b1", "out:a3"));
}

TEST(HandleInKeyWavesTest, ATransientFailureStopsLaterWavesAndTheResultsEndBeforeIt) {
  const std::vector<ConsumedMessage> batch = {
      Message(kTopic, "k1", "a1", 0), Message(kTopic, "k2", "b1", 1),
      Message(kTopic, "k1", "a2", 2), Message(kTopic, "k3", "c1", 3)};
  int waves = 0;
  const std::vector<HandleResult> results =
      HandleInKeyWaves(Pointers(batch), [&](const std::vector<const ConsumedMessage*>& wave) {
        ++waves;
        std::vector<HandleResult> out;
        for (const ConsumedMessage* m : wave) {
          if (m->value == "b1") {
            out.push_back(absl::UnavailableError("down"));
          } else {
            out.push_back(std::vector<OutboundMessage>{OutputFor(*m)});
          }
        }
        return out;
      });
  EXPECT_EQ(waves, 1) << "a wave after a transient failure ran";
  EXPECT_THAT(Values(results), ElementsAre("out:a1"));
}

std::vector<ConsumedMessage> DistinctKeys(int n) {
  std::vector<ConsumedMessage> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(Message(kTopic, "k" + std::to_string(i), "v" + std::to_string(i), i));
  }
  return out;
}

// A wave route that records which thread handled each input and when it was called.
struct RecordingWaveRoute {
  absl::Mutex mu;
  std::map<std::string, std::thread::id> thread_of ABSL_GUARDED_BY(mu);
  std::vector<size_t> slice_sizes ABSL_GUARDED_BY(mu);

  WaveRoute Route(std::function<HandleResult(const ConsumedMessage&)> result) {
    return [this, result](const std::vector<const ConsumedMessage*>& wave) {
      std::vector<HandleResult> out;
      for (const ConsumedMessage* m : wave) {
        HandleResult r = result(*m);
        if (!r.ok() && r.status().code() == absl::StatusCode::kCancelled) break;  // a short slice
        out.push_back(std::move(r));
      }
      absl::MutexLock lock(&mu);
      for (const ConsumedMessage* m : wave) thread_of[m->value] = std::this_thread::get_id();
      slice_sizes.push_back(wave.size());
      return out;
    };
  }
};

HandleResult Echo(const ConsumedMessage& m) { return std::vector<OutboundMessage>{OutputFor(m)}; }

TEST(InLanesTest, AWaveIsSplitIntoConsecutiveSlicesOnSeparateThreadsAndResultsKeepItsOrder) {
  const std::vector<ConsumedMessage> wave = DistinctKeys(100);
  RecordingWaveRoute recording;
  const std::vector<HandleResult> results =
      InLanes(3, recording.Route(Echo), /*min_per_lane=*/16)(Pointers(wave));
  std::vector<std::string> expected;
  for (const ConsumedMessage& m : wave) expected.push_back("out:" + m.value);
  EXPECT_EQ(Values(results), expected);
  absl::MutexLock lock(&recording.mu);
  EXPECT_THAT(recording.slice_sizes, ::testing::UnorderedElementsAre(33, 33, 34));
  // Consecutive inputs share a thread; the three slices have three threads, one the caller's.
  std::set<std::thread::id> threads;
  for (const auto& [value, thread] : recording.thread_of) threads.insert(thread);
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_TRUE(threads.contains(std::this_thread::get_id()));
  EXPECT_EQ(recording.thread_of["v0"], recording.thread_of["v32"]);
  EXPECT_NE(recording.thread_of["v32"], recording.thread_of["v33"]);
}

TEST(InLanesTest, ASmallWaveOrOneLaneStaysOnTheCallersThread) {
  for (const auto& [lanes, size] : std::vector<std::pair<int, int>>{{4, 31}, {1, 200}, {0, 50}}) {
    SCOPED_TRACE(absl::StrCat(lanes, " lanes, ", size, " inputs"));
    const std::vector<ConsumedMessage> wave = DistinctKeys(size);
    RecordingWaveRoute recording;
    EXPECT_THAT(InLanes(lanes, recording.Route(Echo), 16)(Pointers(wave)), SizeIs(size));
    absl::MutexLock lock(&recording.mu);
    EXPECT_THAT(recording.slice_sizes, ElementsAre(size));
    EXPECT_EQ(recording.thread_of["v0"], std::this_thread::get_id());
  }
}

TEST(InLanesTest, AShortSliceEndsTheResultsThereAndLaterSlicesResultsAreLeftToTheLoop) {
  // Slice 1 of 2 (inputs 32..63) stops at v40: the results end before it, although slice 2 ran.
  const std::vector<ConsumedMessage> wave = DistinctKeys(64);
  RecordingWaveRoute recording;
  const std::vector<HandleResult> results =
      InLanes(2, recording.Route([](const ConsumedMessage& m) -> HandleResult {
        if (m.value == "v10") return absl::UnavailableError("down");  // transient: kept
        if (m.value == "v40") return absl::CancelledError("stop here");
        return Echo(m);
      }),
              16)(Pointers(wave));
  ASSERT_THAT(results, SizeIs(40));
  EXPECT_EQ(results[10].status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Values(results)[39], "out:v39");
  // Through HandleInKeyWaves, as a route: the transient result ends the batch's results.
  EXPECT_THAT(
      HandleInKeyWaves(Pointers(wave),
                       InLanes(2, recording.Route([](const ConsumedMessage& m) -> HandleResult {
                         if (m.value == "v10") {
                           return absl::UnavailableError("down");
                         }
                         return Echo(m);
                       }),
                               16)),
      SizeIs(10));
}

TEST(TopicRouterTest, WaveRoutesGetTheirTopicsInputsInWavesOfDistinctKeysOthersGoOneByOne) {
  TopicRouter router;
  std::vector<size_t> batch_sizes;
  router.Add(
      "activities",
      [](const ConsumedMessage& m) -> HandleResult { return absl::InternalError(""); },
      [&](const std::vector<const ConsumedMessage*>& batch) {
        batch_sizes.push_back(batch.size());
        std::vector<HandleResult> out;
        for (const ConsumedMessage* m : batch) {
          out.push_back(std::vector<OutboundMessage>{OutputFor(*m, "@batch")});
        }
        return out;
      });
  router.Add("captured", [](const ConsumedMessage& m) -> HandleResult {
    return std::vector<OutboundMessage>{OutputFor(m)};
  });
  const std::vector<ConsumedMessage> batch = {
      Message("activities", "k1", "a", 0), Message("captured", "k1", "c", 0),
      Message("activities", "k2", "b", 1), Message("other", "k3", "o", 0),
      Message("activities", "k1", "a2", 2)};
  const std::vector<HandleResult> results = router.HandleBatch(Pointers(batch));
  EXPECT_THAT(batch_sizes, ElementsAre(2, 1)) << "k1's second input waits for the next wave";
  ASSERT_EQ(results.size(), 5u);
  EXPECT_THAT(Values(results), ElementsAre("out:a@batch", "out:c", "out:b@batch",
                                           results[3].status().ToString(), "out:a2@batch"));
  EXPECT_TRUE(absl::IsUnimplemented(results[3].status())) << "no route: poison";
}

}  // namespace
}  // namespace leadflow::kafka

namespace leadflow::kafka {
namespace {

TEST(BatchSubsetTest, SettledAndKeptResultsGoBackToTheirInputsPlaces) {
  BatchSubset<absl::StatusOr<int>> subset(4);
  subset.Settle(1, absl::InvalidArgumentError("bad"));
  subset.Keep(0);
  subset.Keep(2);
  subset.Settle(3, 0);
  EXPECT_THAT(subset.kept(), ElementsAre(0, 2));
  const std::vector<absl::StatusOr<int>> results = std::move(subset).Merge(
      std::vector<std::string>{"7", "x"}, [](const std::string& s) -> absl::StatusOr<int> {
        if (s == "x") return absl::UnavailableError("down");
        return std::stoi(s);
      });
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(*results[0], 7);
  EXPECT_TRUE(absl::IsInvalidArgument(results[1].status()));
  EXPECT_TRUE(absl::IsUnavailable(results[2].status()));
  EXPECT_EQ(*results[3], 0);
}

}  // namespace
}  // namespace leadflow::kafka
