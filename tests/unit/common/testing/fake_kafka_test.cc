#include "common/testing/fake_kafka.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

const kafka::TopicPartition kTp{"t", 0};

class RecordingListener : public kafka::RebalanceListener {
 public:
  explicit RecordingListener(FakeConsumer* consumer) : consumer_(consumer) {}
  void OnAssigned(const std::vector<kafka::TopicPartition>& p) override {
    events.push_back("assigned:" + std::to_string(p.size()));
  }
  void OnRevoked(const std::vector<kafka::TopicPartition>& p) override {
    events.push_back("revoked:" + std::to_string(p.size()));
    // The listener may call back into the consumer (the loop commits here).
    (void)consumer_->StoreOffset(kTp, 1);
    (void)consumer_->Commit();
  }
  std::vector<std::string> events;

 private:
  FakeConsumer* consumer_;
};

int64_t PolledOffset(FakeConsumer& c) {
  absl::StatusOr<std::optional<kafka::ConsumedMessage>> m = c.Poll(absl::ZeroDuration());
  if (!m.ok() || !m->has_value()) return -1;
  return (*m)->offset;
}

TEST(FakeConsumerTest, ReturnsMessagesInOffsetOrderAfterTheFirstAssignment) {
  FakeConsumer c;
  RecordingListener listener(&c);
  EXPECT_EQ(c.Add("t", 0, "k", "a"), 0);
  EXPECT_EQ(c.Add("t", 0, "k", "b"), 1);
  ASSERT_TRUE(c.Subscribe({"t"}, &listener).ok());
  EXPECT_EQ(PolledOffset(c), 0);
  EXPECT_THAT(listener.events, ElementsAre("assigned:1"));
  EXPECT_EQ(PolledOffset(c), 1);
  EXPECT_EQ(PolledOffset(c), -1);
  EXPECT_EQ(c.poll_calls(), 3);
}

TEST(FakeConsumerTest, SeekRequeuesFromTheGivenOffset) {
  FakeConsumer c;
  c.Add("t", 0, "k", "a");
  c.Add("t", 0, "k", "b");
  ASSERT_TRUE(c.Subscribe({"t"}, nullptr).ok());
  c.Poll(absl::ZeroDuration()).IgnoreError();
  c.Poll(absl::ZeroDuration()).IgnoreError();
  ASSERT_TRUE(c.Seek(kTp, 0).ok());
  EXPECT_EQ(PolledOffset(c), 0);
  EXPECT_EQ(PolledOffset(c), 1);
  EXPECT_EQ(c.seek_calls().size(), 1u);
}

TEST(FakeConsumerTest, PausedConsumerReturnsNothing) {
  FakeConsumer c;
  c.Add("t", 0, "k", "a");
  ASSERT_TRUE(c.Subscribe({"t"}, nullptr).ok());
  ASSERT_TRUE(c.PauseAll().ok());
  EXPECT_EQ(PolledOffset(c), -1);
  ASSERT_TRUE(c.ResumeAll().ok());
  EXPECT_EQ(PolledOffset(c), 0);
  EXPECT_EQ(c.pause_calls(), 1);
  EXPECT_EQ(c.resume_calls(), 1);
}

TEST(FakeConsumerTest, RevokeAndAssignAreDeliveredDuringPollAndResumeAtTheCommittedOffset) {
  FakeConsumer c;
  RecordingListener listener(&c);
  for (const char* v : {"a", "b", "c"}) c.Add("t", 0, "k", v);
  ASSERT_TRUE(c.Subscribe({"t"}, &listener).ok());
  EXPECT_EQ(PolledOffset(c), 0);
  EXPECT_EQ(PolledOffset(c), 1);
  c.ScheduleRevoke({kTp});
  EXPECT_EQ(PolledOffset(c), -1) << "revoked partitions are not read";
  EXPECT_THAT(listener.events, ElementsAre("assigned:1", "revoked:1"));
  EXPECT_THAT(c.committed_offset(kTp), Optional(1));  // committed by the listener
  EXPECT_EQ(c.StoreOffset(kTp, 2).code(), absl::StatusCode::kFailedPrecondition);
  c.ScheduleAssign({kTp});
  EXPECT_EQ(PolledOffset(c), 1) << "a new owner starts at the committed offset";
  EXPECT_EQ(c.assigned_events(), 2);
  EXPECT_EQ(c.revoked_events(), 1);
}

TEST(FakeConsumerTest, CloseRevokesThenCommitsWhatWasStored) {
  FakeConsumer c;
  RecordingListener listener(&c);
  c.Add("t", 0, "k", "a");
  ASSERT_TRUE(c.Subscribe({"t"}, &listener).ok());
  c.Poll(absl::ZeroDuration()).IgnoreError();
  c.Close();
  EXPECT_TRUE(c.closed());
  EXPECT_THAT(listener.events, ElementsAre("assigned:1", "revoked:1"));
  EXPECT_THAT(c.committed_offset(kTp), Optional(1));
  c.Close();  // idempotent
  EXPECT_THAT(listener.events.size(), 2u);
}

TEST(FakeConsumerTest, FailNextPollReturnsTheErrorOnce) {
  FakeConsumer c;
  ASSERT_TRUE(c.Subscribe({"t"}, nullptr).ok());
  c.FailNextPoll(absl::InternalError("fatal"));
  EXPECT_EQ(c.Poll(absl::ZeroDuration()).status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(c.Poll(absl::ZeroDuration()).ok());
}

TEST(FakeProducerTest, AcknowledgesImmediatelyByDefault) {
  FakeProducer p;
  std::vector<absl::Status> results;
  ASSERT_TRUE(
      p.Send({"t", "k", "v", {}}, [&](const absl::Status& s) { results.push_back(s); }).ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(p.sent()[0].message.value, "v");
  EXPECT_THAT(p.sent()[0].delivery, Optional(absl::OkStatus()));
}

TEST(FakeProducerTest, HeldDeliveriesWaitForTheTest) {
  FakeProducer p;
  p.Hold(true);
  std::vector<std::string> acked;
  for (const char* v : {"a", "b", "c"}) {
    ASSERT_TRUE(p.Send({"t", "k", v, {}}, [&acked, v](const absl::Status& s) {
                   acked.push_back(std::string(v) + (s.ok() ? ":ok" : ":err"));
                 }).ok());
  }
  EXPECT_TRUE(acked.empty());
  EXPECT_EQ(p.pending_count(), 3u);
  EXPECT_EQ(p.Flush(absl::Milliseconds(1)).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(p.Ack(2, absl::UnavailableError("x")));
  EXPECT_FALSE(p.Ack(2));
  EXPECT_TRUE(p.AckNext());
  EXPECT_EQ(p.AckAll(), 1);
  EXPECT_THAT(acked, ElementsAre("c:err", "a:ok", "b:ok"));
  EXPECT_TRUE(p.Flush(absl::ZeroDuration()).ok());
}

TEST(FakeProducerTest, ScriptedFailures) {
  FakeProducer p;
  p.FailSends(1, absl::UnavailableError("queue full"));
  p.FailDeliveries(1, absl::UnavailableError("broker down"));
  int callbacks = 0;
  absl::Status last;
  auto cb = [&](const absl::Status& s) {
    ++callbacks;
    last = s;
  };
  EXPECT_TRUE(absl::IsUnavailable(p.Send({"t", "k", "1", {}}, cb)));
  EXPECT_EQ(callbacks, 0) << "a refused send never calls back";
  EXPECT_TRUE(p.Send({"t", "k", "2", {}}, cb).ok());
  EXPECT_TRUE(absl::IsUnavailable(last));
  EXPECT_TRUE(p.Send({"t", "k", "3", {}}, cb).ok());
  EXPECT_TRUE(last.ok());
  EXPECT_EQ(p.refused_sends(), 1);
  EXPECT_EQ(p.sent_count(), 2u);
}

}  // namespace
}  // namespace leadflow::testing
