// Integration tests of the nurturing service against a real redis-server (no Kafka): scored
// events are built with events::Encode and fed to the handler, the scheduler is driven one pass
// at a time (RunOnce) under a simulated clock, and touches land in a recording producer that
// acknowledges at once or holds deliveries. Tracks: config/nurture.yaml unless a test says
// otherwise.
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/producer.h"
#include "common/kafka/topics.h"
#include "common/redis/hiredis_client.h"
#include "common/rules/time_util.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/nurture.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "prometheus/registry.h"
#include "services/nurturing/app.h"
#include "services/nurturing/grpc_service.h"
#include "services/nurturing/handler.h"
#include "services/nurturing/scheduler.h"
#include "services/nurturing/store.h"

namespace leadflow::nurturing {
namespace {

using events::v1::LeadProfile;
using events::v1::LeadScored;
using events::v1::NurtureTouch;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

// Monday 5 January 2026, 10:00 UTC: outside quiet hours in UTC.
const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 10, 0, 0), absl::UTCTimeZone());

absl::Time NewYork(int y, int m, int d, int hh, int mm) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone("America/New_York", &zone));
  return absl::FromCivil(absl::CivilMinute(y, m, d, hh, mm), zone);
}

// A kafka::Producer that records every message and acknowledges it at once, or, while held,
// keeps the acknowledgements until the test releases (or drops) them.
class RecordingProducer final : public kafka::Producer {
 public:
  absl::Status Send(kafka::OutboundMessage message, DeliveryCallback on_delivery) override {
    const bool event = message.topic != kafka::kNurtureTouches;
    absl::Status report = absl::OkStatus();
    {
      absl::MutexLock lock(&mu_);
      sent_.push_back(std::move(message));
      if (event && events_ == EventDelivery::kNeverAcknowledged) return absl::OkStatus();
      if (event && events_ == EventDelivery::kRefused) {
        report = absl::UnavailableError("Local: Message timed out");
      } else if (hold_) {
        pending_.push_back(std::move(on_delivery));
        return absl::OkStatus();
      }
    }
    on_delivery(report);
    return absl::OkStatus();
  }
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }

  void Hold(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
  }
  // What happens to enrolment events (every topic but nurture.touches) from now on.
  enum class EventDelivery {
    kAcknowledged,
    kNeverAcknowledged,  // the report never comes (the process died before it)
    kRefused,            // the producer reports a failure (the broker was down too long)
  };
  void SetEventDelivery(EventDelivery events) {
    absl::MutexLock lock(&mu_);
    events_ = events;
  }
  // Acknowledges every held delivery.
  void AckAll() {
    std::vector<DeliveryCallback> pending;
    {
      absl::MutexLock lock(&mu_);
      pending.swap(pending_);
    }
    for (DeliveryCallback& cb : pending) cb(absl::OkStatus());
  }
  // Forgets the held deliveries: their acknowledgements never come (a crash, a lost report).
  void DropPending() {
    absl::MutexLock lock(&mu_);
    pending_.clear();
  }
  // The touches sent (nurture.touches only).
  std::vector<kafka::OutboundMessage> sent() const {
    std::vector<kafka::OutboundMessage> touches;
    for (kafka::OutboundMessage& m : all_sent()) {
      if (m.topic == kafka::kNurtureTouches) touches.push_back(std::move(m));
    }
    return touches;
  }
  // Everything sent, enrolment events included.
  std::vector<kafka::OutboundMessage> all_sent() const {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  std::vector<NurtureTouch> Touches() const {
    std::vector<NurtureTouch> touches;
    for (const kafka::OutboundMessage& m : sent()) {
      kafka::ConsumedMessage consumed;
      consumed.topic = m.topic;
      consumed.value = m.value;
      consumed.headers = m.headers;
      NurtureTouch touch;
      EXPECT_TRUE(events::Decode(consumed, &touch).ok());
      touches.push_back(std::move(touch));
    }
    return touches;
  }

 private:
  mutable absl::Mutex mu_;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  EventDelivery events_ ABSL_GUARDED_BY(mu_) = EventDelivery::kAcknowledged;
  std::vector<kafka::OutboundMessage> sent_ ABSL_GUARDED_BY(mu_);
  std::vector<DeliveryCallback> pending_ ABSL_GUARDED_BY(mu_);
};

kafka::ConsumedMessage Consumed(const kafka::OutboundMessage& m) {
  kafka::ConsumedMessage c;
  c.topic = m.topic;
  c.key = m.key;
  c.value = m.value;
  c.headers = m.headers;
  return c;
}

// A lead who consented to e-mail.
LeadProfile EmailLead(const std::string& lead_id, const std::string& time_zone = "UTC") {
  LeadProfile lead;
  lead.set_lead_id(lead_id);
  lead.set_email(absl::StrCat(lead_id, "@shoeco.example"));
  lead.set_first_name("Ada");
  lead.set_company("ShoeCo");
  lead.set_time_zone(time_zone);
  events::v1::Consent* consent = lead.add_consents();
  consent->set_channel(events::v1::CHANNEL_EMAIL);
  consent->set_granted(true);
  *consent->mutable_at() = rules::ToTimestamp(kStart - absl::Hours(24 * 30));
  return lead;
}

std::shared_ptr<const CompiledNurtureTracks> DefaultTracks() {
  auto tracks = LoadNurtureTracks(std::string(LEADFLOW_SOURCE_DIR) + "/config/nurture.yaml");
  EXPECT_TRUE(tracks.ok()) << tracks.status();
  return tracks.ok() ? *tracks : nullptr;
}

std::shared_ptr<const CompiledNurtureTracks> TracksFromText(const std::string& text) {
  config::v1::NurtureTracks tracks;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &tracks)) << text;
  auto compiled = CompileNurtureTracks(tracks);
  EXPECT_TRUE(compiled.ok()) << compiled.status();
  return compiled.ok() ? *compiled : nullptr;
}

// Everything one nurturing replica has: its own Redis connection, store, handler, scheduler
// and producer, sharing the test's Redis, clock and tracks.
struct Replica {
  Replica(int port, std::shared_ptr<const CompiledNurtureTracks> tracks,
          const runtime::Clock& clock, const NurturingOptions& options,
          const SchedulerOptions& scheduler_options)
      : Replica(port, TracksSource([tracks] { return tracks; }), clock, options,
                scheduler_options) {}
  Replica(int port, TracksSource tracks, const runtime::Clock& clock,
          const NurturingOptions& options, const SchedulerOptions& scheduler_options)
      : client(redis::HiredisOptions{.host = "127.0.0.1", .port = port}),
        store(client),
        source(std::move(tracks)),
        handler(store, source, clock, options),
        scheduler(store, source, producer, topics, clock, registry, options, scheduler_options),
        grpc(handler, source, producer) {}

  redis::HiredisClient client;
  NurturingStore store;
  TracksSource source;
  RecordingProducer producer;
  kafka::Topics topics;
  prometheus::Registry registry;
  NurturingHandler handler;
  NurtureScheduler scheduler;
  NurturingGrpcService grpc;
};

class NurturingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = testing::StartRedisForTest();
    ASSERT_NE(redis_, nullptr);
    clock_.Set(kStart);
    UseTracks(DefaultTracks());
  }

  // (Re)builds the replica with these tracks and options.
  void UseTracks(std::shared_ptr<const CompiledNurtureTracks> tracks,
                 NurturingOptions options = {}) {
    ASSERT_NE(tracks, nullptr);
    tracks_ = tracks;
    options_ = options;
    replica_ =
        std::make_unique<Replica>(redis_->port(), tracks_, clock_, options_, scheduler_options_);
  }
  std::unique_ptr<Replica> NewReplica() {
    return std::make_unique<Replica>(redis_->port(), tracks_, clock_, options_, scheduler_options_);
  }

  // Feeds a leads.scored event through the consumer route.
  void Score(const LeadProfile& lead, events::v1::Category category,
             events::v1::LifecycleStage stage, const std::string& event_id) {
    const auto outputs =
        replica_->handler.HandleScored(ScoredMessage(lead, category, stage, event_id));
    ASSERT_TRUE(outputs.ok()) << outputs.status();
    Record(*outputs);
  }
  // The leads.scored message scoring would publish.
  kafka::ConsumedMessage ScoredMessage(const LeadProfile& lead, events::v1::Category category,
                                       events::v1::LifecycleStage stage,
                                       const std::string& event_id) {
    LeadScored event;
    *event.mutable_envelope() = events::MakeEnvelope({.event_id = event_id,
                                                      .lead_id = lead.lead_id(),
                                                      .occurred_at = clock_.Now(),
                                                      .produced_at = clock_.Now(),
                                                      .causation_id = "cause-" + event_id,
                                                      .trace_id = "trace-" + lead.lead_id(),
                                                      .producer = "scoring"});
    *event.mutable_lead() = lead;
    event.mutable_score()->set_category(category);
    event.mutable_score()->set_stage(stage);
    return Consumed(events::Encode(std::string(kafka::kLeadsScored), lead.lead_id(), event));
  }
  // Feeds a leads.outcomes event through the consumer route.
  void Outcome(const std::string& lead_id, events::v1::LeadOutcome::Kind kind,
               const std::string& reason, const std::string& event_id) {
    events::v1::LeadOutcome outcome;
    *outcome.mutable_envelope() = events::MakeEnvelope({.event_id = event_id,
                                                        .lead_id = lead_id,
                                                        .occurred_at = clock_.Now(),
                                                        .produced_at = clock_.Now(),
                                                        .producer = "routing"});
    outcome.set_kind(kind);
    outcome.set_reason(reason);
    const auto outputs = replica_->handler.HandleOutcome(
        Consumed(events::Encode(std::string(kafka::kLeadsOutcomes), lead_id, outcome)));
    ASSERT_TRUE(outputs.ok()) << outputs.status();
    Record(*outputs);
  }
  // Feeds a leads.routed assignment through the consumer route.
  void Routed(const std::string& lead_id, const std::string& event_id) {
    events::v1::LeadRouted routed;
    *routed.mutable_envelope() = events::MakeEnvelope({.event_id = event_id,
                                                       .lead_id = lead_id,
                                                       .occurred_at = clock_.Now(),
                                                       .produced_at = clock_.Now(),
                                                       .producer = "routing"});
    routed.set_kind(events::v1::LeadRouted::KIND_ASSIGNED);
    routed.set_team_id("uk-fashion");
    const auto outputs = replica_->handler.HandleRouted(
        Consumed(events::Encode(std::string(kafka::kLeadsRouted), "uk-fashion", routed)));
    ASSERT_TRUE(outputs.ok()) << outputs.status();
    Record(*outputs);
  }
  // Feeds a leads.activity event (an open, click, bounce...) through the consumer route.
  std::vector<kafka::OutboundMessage> Activity(const std::string& lead_id, const std::string& type,
                                               const std::string& touch_id,
                                               const std::string& event_id) {
    const auto outputs =
        replica_->handler.HandleActivity(ActivityMessage(lead_id, type, touch_id, event_id));
    EXPECT_TRUE(outputs.ok()) << outputs.status();
    if (!outputs.ok()) return {};
    Record(*outputs);
    return *outputs;
  }
  // The leads.activity message tracking would publish.
  kafka::ConsumedMessage ActivityMessage(const std::string& lead_id, const std::string& type,
                                         const std::string& touch_id, const std::string& event_id) {
    events::v1::LeadActivity activity;
    *activity.mutable_envelope() = events::MakeEnvelope({.event_id = event_id,
                                                         .lead_id = lead_id,
                                                         .occurred_at = clock_.Now(),
                                                         .produced_at = clock_.Now(),
                                                         .producer = "tracking"});
    activity.mutable_activity()->set_type(type);
    activity.mutable_activity()->set_touch_id(touch_id);
    *activity.mutable_activity()->mutable_occurred_at() = rules::ToTimestamp(clock_.Now());
    return Consumed(events::Encode(std::string(kafka::kLeadsActivity), lead_id, activity));
  }
  void Record(const std::vector<kafka::OutboundMessage>& outputs) {
    for (const kafka::OutboundMessage& m : outputs) {
      EXPECT_EQ(m.topic, kafka::kNurtureEnrollments);
      handler_outputs_.push_back(m);
    }
  }
  // Every enrolment event so far: the handler's outputs, then what the scheduler produced.
  std::vector<events::v1::NurtureEnrollmentChanged> EnrollmentEvents() {
    std::vector<kafka::OutboundMessage> all = handler_outputs_;
    for (const kafka::OutboundMessage& m : replica_->producer.all_sent()) {
      if (m.topic == kafka::kNurtureEnrollments) all.push_back(m);
    }
    std::vector<events::v1::NurtureEnrollmentChanged> out;
    for (const kafka::OutboundMessage& m : all) {
      events::v1::NurtureEnrollmentChanged change;
      EXPECT_TRUE(events::Decode(Consumed(m), &change).ok());
      out.push_back(std::move(change));
    }
    return out;
  }
  void ScoreCold(const LeadProfile& lead, const std::string& event_id) {
    Score(lead, events::v1::CATEGORY_COLD, events::v1::STAGE_NEW, event_id);
  }

  PassStats Pass(Replica& replica) {
    absl::StatusOr<PassStats> stats = replica.scheduler.RunOnce();
    EXPECT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats.ok() ? stats->errors : 0, 0);
    return stats.ok() ? *stats : PassStats();
  }
  PassStats Pass() { return Pass(*replica_); }

  // Entries in nurturing's outbox (scheduler decisions whose enrolment events await an ack).
  int64_t OutboxSize() {
    absl::StatusOr<redis::Reply> n =
        replica_->client.Command({"ZCARD", NurturingStore::OutboxKey()});
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? n->integer : -1;
  }

  // Advances the clock hour by hour up to `end`, one scheduler pass per hour; returns, for every
  // touch sent, the simulated time of the pass that sent it.
  std::vector<absl::Time> RunHourlyUntil(absl::Time end) {
    std::vector<absl::Time> sent_at;
    while (clock_.Now() + absl::Hours(1) <= end) {
      clock_.Advance(absl::Hours(1));
      const PassStats stats = Pass();
      for (int i = 0; i < stats.sent; ++i) sent_at.push_back(clock_.Now());
    }
    return sent_at;
  }

  internal::v1::NurtureLeadState State(const std::string& lead_id) {
    absl::StatusOr<StoredState> stored = replica_->store.Load(lead_id);
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? stored->state : internal::v1::NurtureLeadState();
  }
  std::optional<absl::Time> ScheduledAt(const std::string& lead_id) {
    auto at = replica_->store.ScheduledAt(lead_id);
    EXPECT_TRUE(at.ok()) << at.status();
    return at.ok() ? *at : std::nullopt;
  }
  std::optional<absl::Time> LeaseExpiry(const std::string& lead_id) {
    auto at = replica_->store.LeaseExpiry(lead_id);
    EXPECT_TRUE(at.ok()) << at.status();
    return at.ok() ? *at : std::nullopt;
  }
  std::vector<nurturing::v1::Enrollment> Enrollments(const std::string& lead_id) {
    nurturing::v1::GetEnrollmentsRequest request;
    request.set_lead_id(lead_id);
    nurturing::v1::GetEnrollmentsResponse response;
    const grpc::Status status = replica_->grpc.GetEnrollments(nullptr, &request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.enrollments().begin(), response.enrollments().end()};
  }
  // Every key whose name mentions `text` (SCAN, so the whole keyspace is looked at).
  std::vector<std::string> KeysMentioning(const std::string& text) {
    std::vector<std::string> keys;
    std::string cursor = "0";
    do {
      absl::StatusOr<redis::Reply> reply = replica_->client.Command(
          {"SCAN", cursor, "MATCH", absl::StrCat("*", text, "*"), "COUNT", "1000"});
      EXPECT_TRUE(reply.ok()) << reply.status();
      if (!reply.ok() || reply->elements.size() != 2) break;
      cursor = reply->elements[0].str;
      for (const redis::Reply& k : reply->elements[1].elements) keys.push_back(k.str);
    } while (cursor != "0");
    return keys;
  }

  testing::SimulatedClock clock_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::shared_ptr<const CompiledNurtureTracks> tracks_;
  NurturingOptions options_;
  SchedulerOptions scheduler_options_;
  std::unique_ptr<Replica> replica_;
  std::vector<kafka::OutboundMessage> handler_outputs_;
};

TEST_F(NurturingTest, AColdLeadReceivesTheFourStepColdTrackOnScheduleAsWeeksPass) {
  ScoreCold(EmailLead("L-cold"), "scored-1");
  EXPECT_EQ(ScheduledAt("L-cold"), kStart);  // step 0 has no delay

  std::vector<absl::Time> sent_at;
  if (Pass().sent == 1) sent_at.push_back(clock_.Now());
  for (absl::Time t : RunHourlyUntil(kStart + absl::Hours(24 * 30))) sent_at.push_back(t);

  const std::vector<NurtureTouch> touches = replica_->producer.Touches();
  ASSERT_THAT(touches, SizeIs(4));
  const std::vector<absl::Duration> offsets = {absl::Hours(0), absl::Hours(72), absl::Hours(240),
                                               absl::Hours(576)};
  const std::vector<std::string> content = {"welcome-1-hello", "welcome-2-getting-started",
                                            "welcome-3-best-practices",
                                            "welcome-4-customer-stories"};
  std::set<std::string> ids;
  const std::vector<kafka::OutboundMessage> messages = replica_->producer.sent();
  for (int step = 0; step < 4; ++step) {
    const NurtureTouch& touch = touches[step];
    SCOPED_TRACE(absl::StrCat("step ", step));
    ids.insert(touch.touch_id());
    EXPECT_EQ(touch.track_id(), "cold-welcome");
    EXPECT_EQ(touch.step(), step);
    EXPECT_EQ(touch.attempt(), 1);
    EXPECT_EQ(touch.content_id(), content[step]);
    EXPECT_EQ(touch.channel(), events::v1::CHANNEL_EMAIL);
    EXPECT_EQ(touch.address(), "L-cold@shoeco.example");
    EXPECT_EQ(touch.personalisation().at("first_name"), "Ada");
    EXPECT_EQ(touch.envelope().event_id(), touch.touch_id());
    EXPECT_EQ(touch.envelope().lead_id(), "L-cold");
    EXPECT_EQ(touch.envelope().causation_id(), "scored-1");
    EXPECT_EQ(rules::ToTime(touch.due_at()), kStart + offsets[step]);
    EXPECT_EQ(sent_at[step], kStart + offsets[step]);
    EXPECT_EQ(messages[step].topic, "nurture.touches");
    EXPECT_EQ(messages[step].key, "L-cold");
  }
  EXPECT_THAT(ids, SizeIs(4));

  const auto enrollments = Enrollments("L-cold");
  ASSERT_THAT(enrollments, SizeIs(1));
  EXPECT_EQ(enrollments[0].state(), "completed");
  EXPECT_EQ(enrollments[0].next_step(), 4);
  EXPECT_EQ(ScheduledAt("L-cold"), std::nullopt);
  EXPECT_EQ(LeaseExpiry("L-cold"), std::nullopt);
}

TEST_F(NurturingTest, ALeadLeavesItsTrackTheMomentItBecomesSalesReady) {
  const LeadProfile lead = EmailLead("L-hot");
  ScoreCold(lead, "scored-1");
  EXPECT_EQ(Pass().sent, 1);
  clock_.Advance(absl::Hours(30));
  Score(lead, events::v1::CATEGORY_SALES_READY, events::v1::STAGE_QUALIFIED, "scored-2");
  EXPECT_EQ(ScheduledAt("L-hot"), std::nullopt);

  EXPECT_THAT(RunHourlyUntil(kStart + absl::Hours(24 * 30)), IsEmpty());
  EXPECT_THAT(replica_->producer.sent(), SizeIs(1));
  const auto enrollments = Enrollments("L-hot");
  ASSERT_THAT(enrollments, SizeIs(1));
  EXPECT_EQ(enrollments[0].state(), "exited");
  EXPECT_EQ(enrollments[0].exit_reason(), "sales_ready");
  EXPECT_EQ(enrollments[0].next_step(), 1);
}

TEST_F(NurturingTest, NoTouchGoesToALeadWithoutConsent) {
  LeadProfile lead = EmailLead("L-silent");
  lead.clear_consents();
  ScoreCold(lead, "scored-1");
  Pass();
  RunHourlyUntil(kStart + absl::Hours(24 * 30));

  EXPECT_THAT(replica_->producer.sent(), IsEmpty());
  const internal::v1::NurtureLeadState state = State("L-silent");
  EXPECT_EQ(state.current().state(), internal::v1::NURTURE_ENROLLMENT_COMPLETED);
  EXPECT_EQ(state.current().steps_skipped(), 4);
  EXPECT_EQ(state.current().touches_sent(), 0);
}

TEST_F(NurturingTest, QuietHoursDeferATouchDueAtElevenAtNightInNewYorkToEightInTheMorning) {
  const absl::Time eleven_pm = NewYork(2026, 1, 6, 23, 0);
  const absl::Time eight_am = NewYork(2026, 1, 7, 8, 0);
  clock_.Set(eleven_pm);
  ScoreCold(EmailLead("L-ny", "America/New_York"), "scored-1");

  EXPECT_EQ(Pass().sent, 0);
  EXPECT_EQ(ScheduledAt("L-ny"), eight_am);
  clock_.Set(eight_am - absl::Minutes(1));
  EXPECT_EQ(Pass().sent, 0);
  clock_.Set(eight_am);
  EXPECT_EQ(Pass().sent, 1);

  const std::vector<NurtureTouch> touches = replica_->producer.Touches();
  ASSERT_THAT(touches, SizeIs(1));
  EXPECT_EQ(touches[0].step(), 0);
  EXPECT_EQ(rules::ToTime(touches[0].due_at()), eleven_pm);
  EXPECT_EQ(rules::ToTime(touches[0].envelope().produced_at()), eight_am);
  // Step 1 is due 72 hours after step 0 was due, not after it was sent.
  EXPECT_EQ(ScheduledAt("L-ny"), eleven_pm + absl::Hours(72));
}

TEST_F(NurturingTest, TheFrequencyCapHoldsAcrossTwoTracks) {
  NurturingOptions options;
  options.policy.reenroll_cooldown = absl::ZeroDuration();  // the cap alone must hold
  UseTracks(TracksFromText(R"pb(
              version: "cap-test"
              tracks {
                id: "burst"
                priority: 10
                enroll_when { field: "category" equals: "cold" }
                steps { channel: CHANNEL_EMAIL content_id: "b1" }
                steps { channel: CHANNEL_EMAIL content_id: "b2" delay_hours: 1 }
                steps { channel: CHANNEL_EMAIL content_id: "b3" delay_hours: 1 }
              }
              tracks {
                id: "warm"
                priority: 20
                enroll_when { field: "category" equals: "warm" }
                steps { channel: CHANNEL_EMAIL content_id: "w1" }
              }
            )pb"),
            options);
  const LeadProfile lead = EmailLead("L-cap");
  ScoreCold(lead, "scored-1");
  Pass();
  RunHourlyUntil(kStart + absl::Hours(4));  // three touches: the cap (3 in 7 days) is full
  ASSERT_THAT(replica_->producer.sent(), SizeIs(3));
  EXPECT_EQ(State("L-cap").current().state(), internal::v1::NURTURE_ENROLLMENT_COMPLETED);

  Score(lead, events::v1::CATEGORY_WARM, events::v1::STAGE_ENGAGED, "scored-2");
  EXPECT_EQ(State("L-cap").current().track_id(), "warm");
  EXPECT_EQ(Pass().sent, 0);
  // The first touch leaves the 7-day window at kStart + 7 days: not a moment earlier.
  EXPECT_EQ(ScheduledAt("L-cap"), kStart + absl::Hours(24 * 7));
  clock_.Set(kStart + absl::Hours(24 * 7) - absl::Minutes(1));
  EXPECT_EQ(Pass().sent, 0);
  clock_.Set(kStart + absl::Hours(24 * 7));
  EXPECT_EQ(Pass().sent, 1);

  const std::vector<NurtureTouch> touches = replica_->producer.Touches();
  ASSERT_THAT(touches, SizeIs(4));
  EXPECT_EQ(touches[3].track_id(), "warm");
  EXPECT_EQ(touches[3].content_id(), "w1");
}

TEST_F(NurturingTest, TwoSchedulersSendEachTouchOfTwoHundredDueLeadsExactlyOnce) {
  scheduler_options_.max_claims_per_pass = 7;  // many small claims, so the two interleave
  constexpr int kLeads = 200;
  for (int i = 0; i < kLeads; ++i) {
    ScoreCold(EmailLead(absl::StrCat("L-", i)), absl::StrCat("scored-", i));
  }
  std::unique_ptr<Replica> a = NewReplica();
  std::unique_ptr<Replica> b = NewReplica();

  for (int step = 0; step < 2; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    std::latch start(2);
    auto drain = [&start](Replica& replica) {
      start.arrive_and_wait();
      // A pass that claims nothing means nothing is due any more: the rest is claimed.
      for (;;) {
        absl::StatusOr<PassStats> stats = replica.scheduler.RunOnce();
        if (!stats.ok() || stats->claimed == 0) return;
      }
    };
    std::thread ta(drain, std::ref(*a));
    std::thread tb(drain, std::ref(*b));
    ta.join();
    tb.join();

    std::map<std::string, int> per_lead;
    std::map<std::string, int> per_id;
    size_t from_a = 0;
    size_t from_b = 0;
    for (Replica* r : {a.get(), b.get()}) {
      for (const NurtureTouch& t : r->producer.Touches()) {
        if (t.step() != step) continue;
        ++per_lead[t.envelope().lead_id()];
        ++per_id[t.touch_id()];
        (r == a.get() ? from_a : from_b)++;
      }
    }
    EXPECT_EQ(from_a + from_b, static_cast<size_t>(kLeads));
    EXPECT_THAT(per_lead, SizeIs(kLeads));
    EXPECT_THAT(per_id, SizeIs(kLeads));
    for (const auto& [lead, n] : per_lead) EXPECT_EQ(n, 1) << lead;
    EXPECT_GT(from_a, 0u) << "replica A claimed nothing: no concurrency was exercised";
    EXPECT_GT(from_b, 0u) << "replica B claimed nothing: no concurrency was exercised";
    EXPECT_EQ(LeaseExpiry("L-0"), std::nullopt);

    clock_.Advance(absl::Hours(72));  // step 1 falls due for everyone
  }
}

TEST_F(NurturingTest, FourWorkersSendEveryTouchOfOnePassOnce) {
  scheduler_options_.workers = 4;  // 150 leads: slices of 37 and 38
  constexpr int kLeads = 150;
  for (int i = 0; i < kLeads; ++i) {
    ScoreCold(EmailLead(absl::StrCat("L-", i)), absl::StrCat("scored-", i));
  }
  std::unique_ptr<Replica> replica = NewReplica();

  const PassStats pass = Pass(*replica);
  EXPECT_EQ(pass.claimed, kLeads);
  EXPECT_EQ(pass.sent, kLeads);
  EXPECT_EQ(pass.confirmed, kLeads);  // the fake producer acknowledges within the pass
  std::set<std::string> leads;
  std::set<std::string> ids;
  for (const NurtureTouch& t : replica->producer.Touches()) {
    leads.insert(t.envelope().lead_id());
    ids.insert(t.touch_id());
  }
  EXPECT_THAT(leads, SizeIs(kLeads));
  EXPECT_THAT(ids, SizeIs(kLeads));
  EXPECT_EQ(replica_->client.Command({"ZCARD", NurturingStore::InflightKey()})->integer, 0)
      << "every delivered lead is released";
  EXPECT_EQ(Pass(*replica).sent, 0) << "nothing is due until the next step";
}

TEST_F(NurturingTest, AnUnacknowledgedTouchIsResentWithTheSameIdAfterItsLease) {
  replica_->producer.Hold(true);
  ScoreCold(EmailLead("L-lost"), "scored-1");
  EXPECT_EQ(Pass().sent, 1);
  EXPECT_EQ(LeaseExpiry("L-lost"), kStart + scheduler_options_.lease);
  EXPECT_EQ(ScheduledAt("L-lost"), std::nullopt);

  // The replica dies with the acknowledgement outstanding.
  replica_->producer.DropPending();
  const std::vector<kafka::OutboundMessage> first = replica_->producer.sent();
  std::unique_ptr<Replica> survivor = NewReplica();
  clock_.Advance(scheduler_options_.lease - absl::Seconds(1));
  EXPECT_EQ(Pass(*survivor).sent, 0);  // still leased
  clock_.Advance(absl::Seconds(1));
  const PassStats resend = Pass(*survivor);
  EXPECT_EQ(resend.reclaimed, 1);
  EXPECT_EQ(resend.sent, 1);

  const std::vector<kafka::OutboundMessage> again = survivor->producer.sent();
  ASSERT_THAT(again, SizeIs(1));
  ASSERT_THAT(first, SizeIs(1));
  EXPECT_EQ(again[0].value, first[0].value);  // the same touch, byte for byte
  EXPECT_EQ(survivor->producer.Touches()[0].touch_id(), "L-lost:cold-welcome:0:1");
  // Acknowledged this time: the lead moves on to step 1 (due 72 hours after step 0).
  EXPECT_EQ(ScheduledAt("L-lost"), kStart + absl::Hours(72));
  EXPECT_EQ(LeaseExpiry("L-lost"), std::nullopt);
  EXPECT_EQ(State("L-lost").in_flight_touch_id(), "");

  clock_.Set(kStart + absl::Hours(72));
  EXPECT_EQ(Pass(*survivor).sent, 1);
  EXPECT_EQ(survivor->producer.Touches()[1].touch_id(), "L-lost:cold-welcome:1:1");
}

TEST_F(NurturingTest, ADeliveryIsRecordedBesideTheRecordAndTheNextDecisionFoldsItIn) {
  ScoreCold(EmailLead("L-fast"), "scored-1");
  const redis::Reply before =
      replica_->client.Command({"HMGET", NurturingStore::EnrollmentKey("L-fast"), "v", "i"})
          .value();
  EXPECT_EQ(Pass().sent, 1);  // sent and acknowledged at once, confirmed in the same pass

  // The decision rewrote the enrollment (one version up); the confirmation did not: it wrote
  // the delivery record, which every read folds in.
  const redis::Reply after =
      replica_->client.Command({"HMGET", NurturingStore::EnrollmentKey("L-fast"), "v", "d", "i"})
          .value();
  ASSERT_THAT(after.elements, SizeIs(3));
  EXPECT_EQ(after.elements[0].str, absl::StrCat(std::stoi(before.elements[0].str) + 1));
  internal::v1::NurtureLeadState raw;
  ASSERT_TRUE(raw.ParseFromString(after.elements[1].str));
  EXPECT_EQ(raw.in_flight_touch_id(), "L-fast:cold-welcome:0:1");
  EXPECT_EQ(replica_->client.Command({"HGET", NurturingStore::DeliveryKey("L-fast"), "d"})->str,
            "L-fast:cold-welcome:0:1");
  EXPECT_EQ(State("L-fast").in_flight_touch_id(), "");
  EXPECT_THAT(KeysMentioning("L-fast}:delivered:"), IsEmpty()) << "no apply-once confirmation";
  EXPECT_EQ(ScheduledAt("L-fast"), kStart + absl::Hours(72));
  EXPECT_EQ(LeaseExpiry("L-fast"), std::nullopt);

  // A second report of the same touch (a re-send's) changes nothing.
  DeliveredTouch again{.lead_id = "L-fast",
                       .touch_id = "L-fast:cold-welcome:0:1",
                       .version = std::stoi(after.elements[0].str),
                       .incarnation = after.elements[2].str,
                       .due_after = kStart + absl::Hours(1)};
  absl::StatusOr<std::vector<DeliveryRecorded>> recorded =
      replica_->store.ConfirmDelivered({again});
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_THAT(*recorded, ElementsAre(DeliveryRecorded::kAlreadyRecorded));
  EXPECT_EQ(ScheduledAt("L-fast"), kStart + absl::Hours(72));

  clock_.Set(kStart + absl::Hours(72));
  EXPECT_EQ(Pass().sent, 1);
  EXPECT_EQ(replica_->producer.Touches()[1].touch_id(), "L-fast:cold-welcome:1:1");
  EXPECT_EQ(replica_->client.Command({"HGET", NurturingStore::DeliveryKey("L-fast"), "d"})->str,
            "L-fast:cold-welcome:1:1");
  EXPECT_EQ(State("L-fast").current().touches_sent(), 2);
}

TEST_F(NurturingTest, ADeliveryReportAfterAnEventChangedTheRecordIsConfirmedThroughApplyOnce) {
  replica_->producer.Hold(true);
  ScoreCold(EmailLead("L-moved"), "scored-1");
  EXPECT_EQ(Pass().sent, 1);
  // While the touch is in flight, an event rewrites the record.
  ScoreCold(EmailLead("L-moved"), "scored-2");
  EXPECT_EQ(State("L-moved").in_flight_touch_id(), "L-moved:cold-welcome:0:1");
  EXPECT_EQ(ScheduledAt("L-moved"), std::nullopt) << "in flight: waits for the report";

  replica_->producer.AckAll();
  EXPECT_EQ(Pass().confirmed, 1);
  EXPECT_THAT(KeysMentioning("L-moved}:delivered:"), SizeIs(1)) << "the apply-once path";
  EXPECT_EQ(State("L-moved").in_flight_touch_id(), "");
  EXPECT_EQ(ScheduledAt("L-moved"), kStart + absl::Hours(72));
  EXPECT_EQ(LeaseExpiry("L-moved"), std::nullopt);
}

TEST_F(NurturingTest, AnEventRacingADeliveryReportSeesItAndReschedulesTheLead) {
  replica_->producer.Hold(true);
  ScoreCold(EmailLead("L-race"), "scored-1");
  EXPECT_EQ(Pass().sent, 1);
  // The event reads the lead while its touch is in flight; the report lands before it writes.
  std::unique_ptr<Replica> other = NewReplica();
  int plans = 0;
  redis::ApplyOnceRequest request;
  request.dedup_key = NurturingStore::ScoredKey("L-race", "race-1");
  request.state_keys = NurturingStore::StateKeys("L-race");
  request.registry_key = NurturingStore::RegistryKey("L-race");
  absl::StatusOr<redis::ApplyResult> applied = other->store.apply().Run(
      request, [&](const std::vector<redis::Versioned>& records) -> absl::StatusOr<redis::Plan> {
        absl::StatusOr<StoredState> stored = NurturingStore::ParseState(records);
        if (!stored.ok()) return stored.status();
        if (++plans == 1) {
          EXPECT_EQ(stored->state.in_flight_touch_id(), "L-race:cold-welcome:0:1");
          replica_->producer.AckAll();
          EXPECT_EQ(Pass().confirmed, 1);
        } else {
          EXPECT_EQ(stored->state.in_flight_touch_id(), "");
        }
        redis::Plan plan;
        plan.writes.push_back({records[0].key, stored->state.SerializeAsString()});
        plan.extra_commands.push_back(
            NurturingStore::ScheduleCommand("L-race", WakeUpAt(stored->state)));
        return plan;
      });
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(plans, 2) << "the plan made before the delivery was recorded was applied";
  EXPECT_EQ(ScheduledAt("L-race"), kStart + absl::Hours(72)) << "never a lost wake-up";
  EXPECT_EQ(LeaseExpiry("L-race"), std::nullopt);
}

TEST_F(NurturingTest, AClaimOfMoreLeadsThanOneChunkMovesEachExactlyOnce) {
  // 1,201 due leads (the claim script moves them 500 at a time), earliest first; 5 not due.
  std::vector<redis::Args> schedule;
  for (int i = 0; i < 1206; ++i) {
    schedule.push_back(NurturingStore::ScheduleCommand(
        absl::StrCat("L-", i), kStart + (i < 1201 ? -absl::Seconds(1206 - i) : absl::Hours(1))));
  }
  ASSERT_TRUE(replica_->client.Pipeline(schedule).ok());
  absl::StatusOr<std::vector<std::string>> claimed =
      replica_->store.Claim(kStart, absl::Minutes(2), 5000);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_THAT(*claimed, SizeIs(1201));
  EXPECT_EQ(claimed->front(), "L-0");
  EXPECT_EQ(claimed->back(), "L-1200");
  EXPECT_EQ(std::set<std::string>(claimed->begin(), claimed->end()).size(), 1201u);
  EXPECT_EQ(LeaseExpiry("L-700"), kStart + absl::Minutes(2));
  EXPECT_EQ(ScheduledAt("L-700"), std::nullopt);
  EXPECT_EQ(ScheduledAt("L-1201"), kStart + absl::Hours(1));
  EXPECT_EQ(replica_->client.Command({"ZCARD", NurturingStore::InflightKey()})->integer, 1201);
  EXPECT_EQ(replica_->client.Command({"ZCARD", NurturingStore::ScheduleKey()})->integer, 5);
  claimed = replica_->store.Claim(kStart, absl::Minutes(2), 5000);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_THAT(*claimed, IsEmpty()) << "claimed leads are never claimed twice";
}

TEST_F(NurturingTest, ErasureRemovesEveryKeyOfTheLead) {
  ScoreCold(EmailLead("L-erase"), "scored-1");
  ScoreCold(EmailLead("L-keep"), "scored-2");
  EXPECT_EQ(Pass().sent, 2);
  nurturing::v1::UnsubscribeRequest unsubscribe;
  unsubscribe.set_lead_id("L-erase");
  unsubscribe.set_channel(events::v1::CHANNEL_SMS);
  unsubscribe.set_request_id("req-1");
  nurturing::v1::Enrollment reply;
  ASSERT_TRUE(replica_->grpc.Unsubscribe(nullptr, &unsubscribe, &reply).ok());
  // Step 1 goes out but its acknowledgement is still outstanding when the erasure arrives.
  replica_->producer.Hold(true);
  clock_.Set(kStart + absl::Hours(72));
  EXPECT_EQ(Pass().sent, 2);
  ASSERT_THAT(KeysMentioning("L-erase"), SizeIs(::testing::Gt(3u)));

  events::v1::LeadErasure erasure;
  erasure.mutable_envelope()->set_lead_id("L-erase");
  erasure.set_reason("gdpr-1");
  ASSERT_TRUE(
      replica_->handler.HandleErasure(Consumed(events::Encode("leads.erasure", "L-erase", erasure)))
          .ok());
  EXPECT_THAT(KeysMentioning("L-erase"), ElementsAre("nurturing:{L-erase}:erased"));
  EXPECT_EQ(LeaseExpiry("L-erase"), std::nullopt);
  // Late arrivals change nothing: the acknowledgement, a scored event, a due pass.
  replica_->producer.AckAll();
  ScoreCold(EmailLead("L-erase"), "scored-3");
  clock_.Advance(absl::Hours(24 * 30));
  Pass();

  EXPECT_THAT(KeysMentioning("L-erase"), ElementsAre("nurturing:{L-erase}:erased"));
  EXPECT_EQ(ScheduledAt("L-erase"), std::nullopt);
  EXPECT_EQ(LeaseExpiry("L-erase"), std::nullopt);
  // The other lead is untouched.
  EXPECT_EQ(State("L-keep").lead_id(), "L-keep");
  EXPECT_EQ(State("L-keep").current().touches_sent(), 3);
}

TEST_F(NurturingTest, APausedLeadGetsNoTouchesUntilResumedAndThenCarriesOnWhereItLeftOff) {
  ScoreCold(EmailLead("L-pause"), "scored-1");
  EXPECT_EQ(Pass().sent, 1);
  nurturing::v1::LeadRequest pause;
  pause.set_lead_id("L-pause");
  pause.set_request_id("pause-1");
  nurturing::v1::Enrollment reply;
  ASSERT_TRUE(replica_->grpc.Pause(nullptr, &pause, &reply).ok());
  EXPECT_EQ(reply.state(), "paused");
  EXPECT_EQ(ScheduledAt("L-pause"), std::nullopt);

  const absl::Duration paused_for = absl::Hours(24 * 10);
  EXPECT_THAT(RunHourlyUntil(kStart + paused_for), IsEmpty());
  nurturing::v1::LeadRequest resume;
  resume.set_lead_id("L-pause");
  resume.set_request_id("resume-1");
  ASSERT_TRUE(replica_->grpc.Resume(nullptr, &resume, &reply).ok());
  EXPECT_EQ(reply.state(), "active");
  // Step 1 was 72 hours away when the lead was paused; it still is.
  EXPECT_EQ(ScheduledAt("L-pause"), kStart + paused_for + absl::Hours(72));

  // A retried Pause (same request id) answers as before and pauses nothing.
  ASSERT_TRUE(replica_->grpc.Pause(nullptr, &pause, &reply).ok());
  EXPECT_EQ(reply.state(), "paused");
  EXPECT_EQ(State("L-pause").current().state(), internal::v1::NURTURE_ENROLLMENT_ACTIVE);

  const std::vector<absl::Time> sent_at =
      RunHourlyUntil(kStart + paused_for + absl::Hours(72) + absl::Hours(1));
  EXPECT_THAT(sent_at, ElementsAre(kStart + paused_for + absl::Hours(72)));

  nurturing::v1::LeadRequest unknown;
  unknown.set_lead_id("L-nobody");
  EXPECT_EQ(replica_->grpc.Pause(nullptr, &unknown, &reply).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(NurturingTest, AnUnsubscribedChannelGetsNoFurtherTouches) {
  ScoreCold(EmailLead("L-unsub"), "scored-1");
  EXPECT_EQ(Pass().sent, 1);
  nurturing::v1::UnsubscribeRequest request;
  request.set_lead_id("L-unsub");
  request.set_channel(events::v1::CHANNEL_EMAIL);
  request.set_request_id("unsub-1");
  nurturing::v1::Enrollment reply;
  ASSERT_TRUE(replica_->grpc.Unsubscribe(nullptr, &request, &reply).ok());

  // Every remaining step of the cold track is an e-mail: the lead leaves the track at once.
  EXPECT_EQ(reply.state(), "exited");
  EXPECT_EQ(reply.exit_reason(), "unsubscribed");
  EXPECT_THAT(RunHourlyUntil(kStart + absl::Hours(24 * 30)), IsEmpty());
  const internal::v1::NurtureLeadState state = State("L-unsub");
  EXPECT_EQ(state.current().state(), internal::v1::NURTURE_ENROLLMENT_EXITED);
  EXPECT_EQ(state.current().touches_sent(), 1);
  const auto events = replica_->producer.all_sent();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().topic, kafka::kNurtureEnrollments);  // published before the reply

  request.set_channel(events::v1::CHANNEL_UNSPECIFIED);
  EXPECT_EQ(replica_->grpc.Unsubscribe(nullptr, &request, &reply).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(NurturingTest, ARedeliveredScoredEventIsAppliedOnlyOnce) {
  const LeadProfile lead = EmailLead("L-dup");
  ScoreCold(lead, "scored-1");
  Score(lead, events::v1::CATEGORY_SALES_READY, events::v1::STAGE_QUALIFIED, "scored-2");
  // Long after the cooldown, the first event is delivered again: it would enrol the lead anew
  // if it were applied a second time.
  clock_.Advance(absl::Hours(24 * 30));
  ScoreCold(lead, "scored-1");
  const internal::v1::NurtureLeadState state = State("L-dup");
  EXPECT_EQ(state.current().state(), internal::v1::NURTURE_ENROLLMENT_EXITED);
  EXPECT_THAT(state.past(), IsEmpty());
  // A new event does.
  ScoreCold(lead, "scored-3");
  EXPECT_EQ(State("L-dup").current().state(), internal::v1::NURTURE_ENROLLMENT_ACTIVE);
  EXPECT_EQ(State("L-dup").current().attempt(), 2);
}

// Pointers to `messages`, as the consumer loop hands a poll's batch over.
std::vector<const kafka::ConsumedMessage*> Pointers(const std::vector<kafka::ConsumedMessage>& m) {
  std::vector<const kafka::ConsumedMessage*> out;
  for (const kafka::ConsumedMessage& message : m) out.push_back(&message);
  return out;
}

TEST_F(NurturingTest, ABatchOfScoredEventsAppliesEachOnceInOrderAsOneByOneWould) {
  // Five leads, a re-delivered event, and two events of one lead (cold, then sales-ready).
  std::vector<kafka::ConsumedMessage> batch;
  for (int i = 0; i < 5; ++i) {
    batch.push_back(ScoredMessage(EmailLead(absl::StrCat("L-b", i)), events::v1::CATEGORY_COLD,
                                  events::v1::STAGE_NEW, absl::StrCat("scored-b", i)));
  }
  batch.push_back(batch[1]);
  batch.push_back(ScoredMessage(EmailLead("L-b3"), events::v1::CATEGORY_SALES_READY,
                                events::v1::STAGE_QUALIFIED, "scored-b3-2"));

  // The same inputs one by one, against a Redis of their own.
  std::unique_ptr<testing::RedisServer> other = testing::StartRedisForTest();
  ASSERT_NE(other, nullptr);
  Replica one_by_one(other->port(), tracks_, clock_, options_, scheduler_options_);
  std::vector<kafka::HandleResult> expected;
  for (const kafka::ConsumedMessage& m : batch)
    expected.push_back(one_by_one.handler.HandleScored(m));

  const std::vector<kafka::HandleResult> results = kafka::HandleInKeyWaves(
      Pointers(batch), [&](const auto& wave) { return replica_->handler.HandleScoredBatch(wave); });
  ASSERT_THAT(results, SizeIs(batch.size()));
  for (size_t i = 0; i < batch.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    ASSERT_TRUE(expected[i].ok()) << i << ": " << expected[i].status();
    ASSERT_THAT(*results[i], SizeIs(expected[i]->size())) << i;
    for (size_t k = 0; k < results[i]->size(); ++k) {
      EXPECT_EQ((*results[i])[k].key, (*expected[i])[k].key);
      EXPECT_EQ((*results[i])[k].value, (*expected[i])[k].value) << i;  // same events, same ids
    }
    Record(*results[i]);
  }
  // The duplicate re-produced the first enrolment; the lead's second event made it exit.
  EXPECT_EQ((*results[5])[0].value, (*results[1])[0].value);
  EXPECT_EQ(State("L-b1").current().attempt(), 1);
  EXPECT_EQ(State("L-b3").current().state(), internal::v1::NURTURE_ENROLLMENT_EXITED);
  for (int i : {0, 1, 2, 4}) {
    EXPECT_EQ(State(absl::StrCat("L-b", i)).current().state(),
              internal::v1::NURTURE_ENROLLMENT_ACTIVE);
  }
}

TEST_F(NurturingTest, OneLeadsEventsInOneWaveStillApplyOnceAndInOrder) {
  // Called directly, without waves: the re-delivery and the lead's later event are in the same
  // RunBatch as the first; each is re-planned after the one before it applied.
  const std::vector<kafka::ConsumedMessage> batch = {
      ScoredMessage(EmailLead("L-w"), events::v1::CATEGORY_COLD, events::v1::STAGE_NEW, "s-1"),
      ScoredMessage(EmailLead("L-w"), events::v1::CATEGORY_COLD, events::v1::STAGE_NEW, "s-1"),
      ScoredMessage(EmailLead("L-w"), events::v1::CATEGORY_SALES_READY, events::v1::STAGE_QUALIFIED,
                    "s-2"),
      ScoredMessage(EmailLead("L-v"), events::v1::CATEGORY_COLD, events::v1::STAGE_NEW, "s-3")};
  const std::vector<kafka::HandleResult> results =
      replica_->handler.HandleScoredBatch(Pointers(batch));
  ASSERT_THAT(results, SizeIs(4));
  for (const kafka::HandleResult& r : results) ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_THAT(*results[0], SizeIs(1));
  ASSERT_THAT(*results[1], SizeIs(1));
  EXPECT_EQ((*results[1])[0].value, (*results[0])[0].value);
  const internal::v1::NurtureLeadState state = State("L-w");
  EXPECT_EQ(state.current().state(), internal::v1::NURTURE_ENROLLMENT_EXITED);
  EXPECT_EQ(state.current().attempt(), 1);
  EXPECT_EQ(State("L-v").current().state(), internal::v1::NURTURE_ENROLLMENT_ACTIVE);
}

TEST_F(NurturingTest, ABatchOfActivitiesAppliesTheOnesThatMatterAndSkipsTheRest) {
  ScoreCold(EmailLead("L-a1"), "scored-1");
  ScoreCold(EmailLead("L-a2"), "scored-2");
  std::vector<kafka::ConsumedMessage> batch = {
      ActivityMessage("L-a1", "email_unsubscribe", "", "act-1"),
      ActivityMessage("L-a2", "page_view", "", "act-2"),  // not nurturing's: no Redis call
      ActivityMessage("L-a2", "email_unsubscribe", "", "act-3"),
      ActivityMessage("L-unknown", "email_unsubscribe", "", "act-4"),  // no record: nothing
  };
  batch.push_back(batch[0]);  // re-delivered
  const std::vector<kafka::HandleResult> results = kafka::HandleInKeyWaves(
      Pointers(batch),
      [&](const auto& wave) { return replica_->handler.HandleActivityBatch(wave); });
  ASSERT_THAT(results, SizeIs(batch.size()));
  for (const kafka::HandleResult& r : results) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*results[1], IsEmpty());
  EXPECT_THAT(*results[3], IsEmpty());
  ASSERT_THAT(*results[0], SizeIs(1));
  ASSERT_THAT(*results[4], SizeIs(1));
  EXPECT_EQ((*results[4])[0].value, (*results[0])[0].value);
  EXPECT_EQ(State("L-a1").current().state(), internal::v1::NURTURE_ENROLLMENT_EXITED);
  EXPECT_EQ(State("L-a2").current().state(), internal::v1::NURTURE_ENROLLMENT_EXITED);
  EXPECT_EQ(replica_->store.Load("L-unknown")->version, 0);
}

TEST_F(NurturingTest, ListTracksReturnsTheRunningTracksByPriority) {
  nurturing::v1::ListTracksRequest request;
  nurturing::v1::ListTracksResponse response;
  ASSERT_TRUE(replica_->grpc.ListTracks(nullptr, &request, &response).ok());
  EXPECT_EQ(response.version(), "2024-06-nurture-v1");
  std::vector<std::string> ids;
  for (const auto& t : response.tracks()) ids.push_back(t.id());
  EXPECT_THAT(ids, ElementsAre("lost-recycle", "disinterested-value", "not-now-check-in",
                               "qualified-demo", "warm-accelerate", "cold-welcome"));
}

// Names of the enrolment events, "<kind> <track> <reason>", in the order they were made.
std::vector<std::string> Describe(const std::vector<events::v1::NurtureEnrollmentChanged>& all) {
  std::vector<std::string> out;
  for (const auto& e : all) {
    out.push_back(absl::StrCat(rules::EnumValueName(e.kind()), " ", e.track_id(),
                               e.reason().empty() ? "" : " ", e.reason()));
  }
  return out;
}

TEST_F(NurturingTest, AWarmLeadThatOpensTheCaseStudyGetsPricingAndOneThatDoesNotGetsAReminder) {
  // Step 0 (case study) at once; 48 h later step 1 (pricing) if it was opened within 2 days,
  // else step 2 (reminder) at the same time.
  Score(EmailLead("L-opens"), events::v1::CATEGORY_WARM, events::v1::STAGE_ENGAGED, "scored-1");
  Score(EmailLead("L-ignores"), events::v1::CATEGORY_WARM, events::v1::STAGE_ENGAGED, "scored-2");
  EXPECT_EQ(Pass().sent, 2);
  const std::vector<NurtureTouch> first = replica_->producer.Touches();
  ASSERT_THAT(first, SizeIs(2));
  const std::string opened_touch =
      first[0].envelope().lead_id() == "L-opens" ? first[0].touch_id() : first[1].touch_id();

  clock_.Advance(absl::Hours(5));
  // An open of a touch of another lead's enrolment, or of no touch, moves nothing.
  Activity("L-ignores", "email_open", opened_touch, "open-wrong-lead");
  Activity("L-opens", "email_open", opened_touch, "open-1");
  // A page view is not nurturing's business: no Redis call, no output.
  EXPECT_THAT(Activity("L-opens", "page_view", "", "view-1"), IsEmpty());

  RunHourlyUntil(kStart + absl::Hours(49));
  std::map<std::string, std::vector<std::string>> content;
  for (const NurtureTouch& t : replica_->producer.Touches()) {
    content[t.envelope().lead_id()].push_back(t.content_id());
  }
  EXPECT_THAT(content["L-opens"], ElementsAre("warm-case-study", "warm-pricing-explainer"));
  EXPECT_THAT(content["L-ignores"], ElementsAre("warm-case-study", "warm-case-study-reminder"));
  // Each skipped the branch it did not take.
  EXPECT_EQ(State("L-opens").current().steps_skipped(), 1);
  EXPECT_EQ(State("L-ignores").current().steps_skipped(), 1);
}

TEST_F(NurturingTest, ContentVariesBySegment) {
  LeadProfile lead = EmailLead("L-ent");
  Score(lead, events::v1::CATEGORY_WARM, events::v1::STAGE_ENGAGED, "scored-0");
  // Re-score with a segment before the first pass: the snapshot carries it.
  {
    events::v1::LeadScored scored;
    *scored.mutable_envelope() = events::MakeEnvelope(
        {.event_id = "scored-1", .lead_id = "L-ent", .occurred_at = kStart, .producer = "scoring"});
    *scored.mutable_lead() = lead;
    scored.mutable_score()->set_category(events::v1::CATEGORY_WARM);
    scored.mutable_score()->set_stage(events::v1::STAGE_ENGAGED);
    scored.mutable_score()->add_segments("enterprise");
    ASSERT_TRUE(replica_->handler
                    .HandleScored(
                        Consumed(events::Encode(std::string(kafka::kLeadsScored), "L-ent", scored)))
                    .ok());
  }
  EXPECT_EQ(Pass().sent, 1);
  const std::vector<NurtureTouch> touches = replica_->producer.Touches();
  ASSERT_THAT(touches, SizeIs(1));
  EXPECT_EQ(touches[0].content_id(), "warm-case-study-enterprise");
  EXPECT_EQ(touches[0].personalisation().at("segment"), "enterprise");
}

TEST_F(NurturingTest, ALostLeadFromRoutingIsRecycledIntoTheReengagementTrackWithItsReason) {
  const LeadProfile lead = EmailLead("L-lost");
  ScoreCold(lead, "scored-1");
  EXPECT_EQ(Pass().sent, 1);
  // Sales-ready: out of nurturing; routing assigns it.
  clock_.Advance(absl::Hours(24));
  Score(lead, events::v1::CATEGORY_SALES_READY, events::v1::STAGE_QUALIFIED, "scored-2");
  Routed("L-lost", "routed-1");
  // Two days later the rep reports it lost — well inside the 7-day re-enrolment cooldown.
  clock_.Advance(absl::Hours(48));
  Outcome("L-lost", events::v1::LeadOutcome::KIND_LOST, "budget", "outcome-1");

  const internal::v1::NurtureLeadState state = State("L-lost");
  EXPECT_EQ(state.current().track_id(), "lost-recycle");
  EXPECT_EQ(state.current().state(), internal::v1::NURTURE_ENROLLMENT_ACTIVE);
  EXPECT_EQ(state.current().recycle_reason(), "lost: budget");
  // Scoring's own report of the loss (still sales-ready by points) keeps it there.
  Score(lead, events::v1::CATEGORY_SALES_READY, events::v1::STAGE_LOST, "scored-3");
  EXPECT_EQ(State("L-lost").current().track_id(), "lost-recycle");
  EXPECT_EQ(State("L-lost").current().state(), internal::v1::NURTURE_ENROLLMENT_ACTIVE);

  // The first re-engagement touch goes 30 days later and says why the lead is back.
  const absl::Time lost_at = clock_.Now();
  clock_.Set(lost_at + absl::Hours(720));
  EXPECT_EQ(Pass().sent, 1);
  const std::vector<NurtureTouch> touches = replica_->producer.Touches();
  ASSERT_THAT(touches, SizeIs(2));
  EXPECT_EQ(touches[1].track_id(), "lost-recycle");
  EXPECT_EQ(touches[1].content_id(), "recycle-whats-new");
  EXPECT_EQ(touches[1].personalisation().at("lost_reason"), "lost: budget");

  EXPECT_THAT(Describe(EnrollmentEvents()),
              ElementsAre("enrolled cold-welcome", "exited cold-welcome sales_ready",
                          "enrolled lost-recycle lost: budget"));
}

TEST_F(NurturingTest, ARoutedLeadExitsAndAWonLeadExitsAsConverted) {
  ScoreCold(EmailLead("L-routed"), "scored-1");
  Routed("L-routed", "routed-1");
  EXPECT_EQ(State("L-routed").current().exit_reason(), "routed");
  EXPECT_EQ(ScheduledAt("L-routed"), std::nullopt);

  ScoreCold(EmailLead("L-won"), "scored-2");
  Outcome("L-won", events::v1::LeadOutcome::KIND_WON, "", "outcome-1");
  EXPECT_EQ(State("L-won").current().exit_reason(), "converted");
  // A routed event for a lead nurturing never saw creates nothing.
  Routed("L-stranger", "routed-2");
  EXPECT_EQ(State("L-stranger").lead_id(), "");

  EXPECT_THAT(RunHourlyUntil(kStart + absl::Hours(24 * 30)), IsEmpty());
  EXPECT_THAT(Describe(EnrollmentEvents()),
              ElementsAre("enrolled cold-welcome", "exited cold-welcome routed",
                          "enrolled cold-welcome", "exited cold-welcome converted"));
}

TEST_F(NurturingTest, ALeadMergedIntoAnotherExitsAsMergedAndIsTouchedNoMore) {
  ScoreCold(EmailLead("L-absorbed"), "scored-1");
  ScoreCold(EmailLead("L-survivor"), "scored-2");
  Pass();
  const size_t sent_before = replica_->producer.all_sent().size();

  // Capture merged L-absorbed into L-survivor (twice: a re-delivery).
  events::v1::LeadCaptured captured;
  *captured.mutable_envelope() = events::MakeEnvelope({.event_id = "captured-merge",
                                                       .lead_id = "L-survivor",
                                                       .occurred_at = clock_.Now(),
                                                       .produced_at = clock_.Now(),
                                                       .producer = "capture"});
  captured.set_change(events::v1::LeadCaptured::CHANGE_UPDATED);
  *captured.mutable_lead() = EmailLead("L-survivor");
  captured.add_merged_lead_ids("L-absorbed");
  const kafka::ConsumedMessage message =
      Consumed(events::Encode(std::string(kafka::kLeadsCaptured), "L-survivor", captured));
  absl::StatusOr<std::vector<kafka::OutboundMessage>> first =
      replica_->handler.HandleCaptured(message);
  ASSERT_TRUE(first.ok()) << first.status();
  Record(*first);
  absl::StatusOr<std::vector<kafka::OutboundMessage>> again =
      replica_->handler.HandleCaptured(message);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->size(), first->size());
  for (size_t i = 0; i < first->size(); ++i) {
    EXPECT_EQ((*again)[i].value, (*first)[i].value) << "the same exit event again";
  }
  EXPECT_EQ(State("L-absorbed").current().exit_reason(), "merged");
  EXPECT_EQ(ScheduledAt("L-absorbed"), std::nullopt);
  EXPECT_EQ(State("L-survivor").current().state(), internal::v1::NURTURE_ENROLLMENT_ACTIVE);

  // A capture without merges is not nurturing's business.
  captured.clear_merged_lead_ids();
  absl::StatusOr<std::vector<kafka::OutboundMessage>> plain = replica_->handler.HandleCaptured(
      Consumed(events::Encode(std::string(kafka::kLeadsCaptured), "L-survivor", captured)));
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->empty());

  // A late scored event of the absorbed id enrols nothing; over the next month only the survivor
  // is touched.
  ScoreCold(EmailLead("L-absorbed"), "scored-3");
  RunHourlyUntil(kStart + absl::Hours(24 * 30));
  for (size_t i = sent_before; i < replica_->producer.all_sent().size(); ++i) {
    EXPECT_NE(replica_->producer.all_sent()[i].key, "L-absorbed");
  }
  EXPECT_THAT(Describe(EnrollmentEvents()),
              ::testing::IsSupersetOf({"exited cold-welcome merged"}));
}

TEST_F(NurturingTest, AHardBounceEndsTheTrackAndStopsEmail) {
  ScoreCold(EmailLead("L-bounce"), "scored-1");
  EXPECT_EQ(Pass().sent, 1);
  events::v1::LeadActivity bounce;
  *bounce.mutable_envelope() = events::MakeEnvelope(
      {.event_id = "bounce-1", .lead_id = "L-bounce", .occurred_at = kStart, .producer = "t"});
  bounce.mutable_activity()->set_type("email_bounce");
  (*bounce.mutable_activity()->mutable_properties()->mutable_fields())["bounce_type"]
      .set_string_value("hard");
  const auto outputs = replica_->handler.HandleActivity(
      Consumed(events::Encode(std::string(kafka::kLeadsActivity), "L-bounce", bounce)));
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  Record(*outputs);
  EXPECT_EQ(State("L-bounce").current().exit_reason(), "hard_bounce");
  EXPECT_THAT(RunHourlyUntil(kStart + absl::Hours(24 * 30)), IsEmpty());
}

TEST_F(NurturingTest, EnrolmentEventsArePublishedOnceWithTheSameIdsOnReplay) {
  const LeadProfile lead = EmailLead("L-events");
  ScoreCold(lead, "scored-1");
  ASSERT_THAT(handler_outputs_, SizeIs(1));
  const kafka::OutboundMessage enrolled = handler_outputs_[0];
  EXPECT_EQ(enrolled.key, "L-events");
  // The same input again: the memo gives the same event, byte for byte.
  ScoreCold(lead, "scored-1");
  ASSERT_THAT(handler_outputs_, SizeIs(2));
  EXPECT_EQ(handler_outputs_[1].value, enrolled.value);

  // Pause and resume through gRPC, then the track runs out (exhausted, from the scheduler).
  nurturing::v1::LeadRequest pause;
  pause.set_lead_id("L-events");
  pause.set_request_id("pause-1");
  nurturing::v1::Enrollment reply;
  ASSERT_TRUE(replica_->grpc.Pause(nullptr, &pause, &reply).ok());
  clock_.Advance(absl::Hours(2));
  pause.set_request_id("resume-1");
  ASSERT_TRUE(replica_->grpc.Resume(nullptr, &pause, &reply).ok());
  RunHourlyUntil(kStart + absl::Hours(24 * 40));

  const std::vector<events::v1::NurtureEnrollmentChanged> all = EnrollmentEvents();
  EXPECT_THAT(Describe(all),
              ElementsAre("enrolled cold-welcome", "enrolled cold-welcome", "paused cold-welcome",
                          "resumed cold-welcome", "exhausted cold-welcome"));
  std::set<std::string> ids;
  for (const auto& e : all) ids.insert(e.envelope().event_id());
  EXPECT_THAT(ids, SizeIs(4));  // the replayed one shares its id
  EXPECT_EQ(all[0].envelope().event_id(), "L-events:cold-welcome:1:enrolled");
  EXPECT_EQ(all[0].tracks_version(), "2024-06-nurture-v1");
  EXPECT_EQ(all[4].step(), 4);
  EXPECT_EQ(all[4].attempt(), 1);
}

// The scheduler's enrolment events (here: the track running out) are in the outbox until the
// broker acknowledges them: unacknowledged (the process died first) or refused (the broker was
// down), they are re-sent with the same ids after the grace, until acknowledged; then never.
TEST_F(NurturingTest, AnEnrolmentEventTheBrokerNeverAcknowledgedIsResentFromTheOutbox) {
  using EventDelivery = RecordingProducer::EventDelivery;
  for (EventDelivery failure : {EventDelivery::kNeverAcknowledged, EventDelivery::kRefused}) {
    SCOPED_TRACE(failure == EventDelivery::kRefused ? "refused" : "never acknowledged");
    clock_.Set(kStart);
    UseTracks(DefaultTracks());
    const std::string lead_id =
        failure == EventDelivery::kRefused ? "L-outbox-refused" : "L-outbox-lost";
    ScoreCold(EmailLead(lead_id), "scored-1");
    replica_->producer.SetEventDelivery(failure);
    auto exhausted = [&] {
      std::vector<std::string> ids;
      for (const auto& e : EnrollmentEvents()) {
        if (e.envelope().lead_id() == lead_id &&
            e.kind() == events::v1::NurtureEnrollmentChanged::KIND_EXHAUSTED) {
          ids.push_back(e.envelope().event_id());
        }
      }
      return ids;
    };
    // Hour by hour until the track runs out; its event goes out once and is not acknowledged.
    while (exhausted().empty() && clock_.Now() < kStart + absl::Hours(24 * 60)) {
      clock_.Advance(absl::Hours(1));
      Pass();
    }
    ASSERT_THAT(exhausted(), SizeIs(1));
    EXPECT_EQ(OutboxSize(), 1);
    // Within the grace nothing is re-sent; after it, the same event again, every grace, until
    // the broker takes it.
    clock_.Advance(scheduler_options_.outbox_grace - absl::Seconds(1));
    EXPECT_EQ(Pass().replayed, 0);
    EXPECT_THAT(exhausted(), SizeIs(1));
    clock_.Advance(absl::Seconds(1));
    EXPECT_EQ(Pass().replayed, 1);
    ASSERT_THAT(exhausted(), SizeIs(2));
    EXPECT_EQ(exhausted()[1], exhausted()[0]);
    EXPECT_EQ(Pass().replayed, 0);  // re-sent just now: not again before the grace
    // A new replica (the old one died) re-sends it too, and once acknowledged it is done.
    replica_ = NewReplica();
    clock_.Advance(scheduler_options_.outbox_grace);
    EXPECT_EQ(Pass().replayed, 1);
    EXPECT_EQ(OutboxSize(), 0);
    const std::vector<std::string> ids = exhausted();
    ASSERT_THAT(ids, SizeIs(1));  // the new replica's producer: one send, acknowledged
    clock_.Advance(scheduler_options_.outbox_grace * 3);
    EXPECT_EQ(Pass().replayed, 0);
    EXPECT_THAT(exhausted(), SizeIs(1));
  }
}

// An operator command (here Pause) whose enrolment event the broker refused is in the outbox
// with the command: the scheduler re-sends it after the grace, though the caller gave up; an
// acknowledged command leaves no entry.
TEST_F(NurturingTest, ACommandsEnrolmentEventTheBrokerRefusedIsResentFromTheOutbox) {
  ScoreCold(EmailLead("L-cmd"), "scored-1");
  nurturing::v1::LeadRequest pause;
  pause.set_lead_id("L-cmd");
  pause.set_request_id("pause-1");
  nurturing::v1::Enrollment reply;
  replica_->producer.SetEventDelivery(RecordingProducer::EventDelivery::kRefused);
  EXPECT_EQ(replica_->grpc.Pause(nullptr, &pause, &reply).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(OutboxSize(), 1);
  replica_->producer.SetEventDelivery(RecordingProducer::EventDelivery::kAcknowledged);
  auto paused = [&] {
    std::vector<std::string> ids;
    for (const auto& e : EnrollmentEvents()) {
      if (e.kind() == events::v1::NurtureEnrollmentChanged::KIND_PAUSED) {
        ids.push_back(e.envelope().event_id());
      }
    }
    return ids;
  };
  ASSERT_THAT(paused(), SizeIs(1));  // sent once, refused
  EXPECT_EQ(Pass().replayed, 0);
  clock_.Advance(scheduler_options_.outbox_grace);
  EXPECT_EQ(Pass().replayed, 1);
  ASSERT_THAT(paused(), SizeIs(2));
  EXPECT_EQ(paused()[1], paused()[0]);
  EXPECT_EQ(OutboxSize(), 0);

  pause.set_request_id("resume-1");
  ASSERT_TRUE(replica_->grpc.Resume(nullptr, &pause, &reply).ok());
  EXPECT_EQ(OutboxSize(), 0);
}

// Events the broker acknowledged leave the outbox at once; an erased lead's entry is dropped
// without sending anything.
TEST_F(NurturingTest, AcknowledgedEnrolmentEventsLeaveTheOutboxAndAnErasedLeadsAreDropped) {
  ScoreCold(EmailLead("L-acked"), "scored-1");
  ScoreCold(EmailLead("L-erased"), "scored-2");
  RunHourlyUntil(kStart + absl::Hours(24 * 40));
  EXPECT_EQ(OutboxSize(), 0);
  EXPECT_THAT(Describe(EnrollmentEvents()), Contains("exhausted cold-welcome"));

  clock_.Set(kStart);
  UseTracks(DefaultTracks());
  ScoreCold(EmailLead("L-erased-2"), "scored-3");
  replica_->producer.SetEventDelivery(RecordingProducer::EventDelivery::kNeverAcknowledged);
  RunHourlyUntil(kStart + absl::Hours(24 * 40));
  ASSERT_EQ(OutboxSize(), 1);
  ASSERT_TRUE(replica_->store.Erase("L-erased-2", absl::Hours(24 * 30)).ok());
  const size_t sent_before = replica_->producer.all_sent().size();
  clock_.Advance(scheduler_options_.outbox_grace);
  EXPECT_EQ(Pass().replayed, 0);
  EXPECT_EQ(OutboxSize(), 0);
  EXPECT_EQ(replica_->producer.all_sent().size(), sent_before);
}

TEST_F(NurturingTest, TheDrainRateBoundsHowManyDueLeadsOnePassClaims) {
  absl::StatusOr<SchedulerOptions> options = [] {
    config::v1::Scheduling scheduling;
    scheduling.set_interval_ms(100);
    scheduling.set_max_touches_per_second(50);  // 5 per pass
    return SchedulerOptionsFrom(scheduling);
  }();
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->max_claims_per_pass, 5);
  scheduler_options_ = *options;
  UseTracks(DefaultTracks());
  for (int i = 0; i < 12; ++i) ScoreCold(EmailLead(absl::StrCat("L-drain-", i)), "s");
  EXPECT_EQ(Pass().sent, 5);
  EXPECT_EQ(Pass().sent, 5);
  EXPECT_EQ(Pass().sent, 2);
}

}  // namespace
}  // namespace leadflow::nurturing

namespace leadflow::nurturing {
namespace {

TEST_F(NurturingTest,
       AColdLeadThatTurnsWarmMovesToTheWarmTrackAtOnceAndAQualifiedOneToTheDemoTrack) {
  ScoreCold(EmailLead("L-up"), "scored-1");
  EXPECT_EQ(Pass().sent, 1);
  clock_.Advance(absl::Hours(24));  // same time of day: no quiet hours
  Score(EmailLead("L-up"), events::v1::CATEGORY_WARM, events::v1::STAGE_ENGAGED, "scored-2");
  EXPECT_EQ(Pass().sent, 1);        // the case study, without waiting for a cooldown
  clock_.Advance(absl::Hours(24));  // same time of day: no quiet hours
  Score(EmailLead("L-up"), events::v1::CATEGORY_QUALIFIED, events::v1::STAGE_QUALIFIED, "scored-3");
  EXPECT_EQ(Pass().sent, 1);
  std::vector<std::string> content;
  for (const NurtureTouch& t : replica_->producer.Touches()) content.push_back(t.content_id());
  EXPECT_THAT(content, ElementsAre("welcome-1-hello", "warm-case-study", "qualified-demo-offer"));
  EXPECT_THAT(Describe(EnrollmentEvents()),
              ElementsAre("enrolled cold-welcome", "exited cold-welcome switched_track",
                          "enrolled warm-accelerate", "exited warm-accelerate goal_reached",
                          "enrolled qualified-demo"));
}

TEST_F(NurturingTest, AReloadedTrackFileTakesEffectAnInvalidOneIsRejectedAndARemovedTrackEnds) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("leadflow-reload-", ::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "nurture.yaml").string();
  std::filesystem::copy_file(std::string(LEADFLOW_SOURCE_DIR) + "/config/nurture.yaml", path,
                             std::filesystem::copy_options::overwrite_existing);
  // Each rewrite gets a later mtime, whatever the file system's timestamp granularity.
  auto rewrite = [&path,
                  mtime = std::filesystem::last_write_time(path)](const std::string& text) mutable {
    std::ofstream(path, std::ios::trunc) << text;
    mtime += std::chrono::seconds(1);
    std::filesystem::last_write_time(path, mtime);
  };
  absl::StatusOr<std::unique_ptr<config::Reloadable<CompiledNurtureTracks>>> reloadable =
      config::Reloadable<CompiledNurtureTracks>::Create(path, LoadNurtureTracks);
  ASSERT_TRUE(reloadable.ok()) << reloadable.status();
  config::Reloadable<CompiledNurtureTracks>& tracks = **reloadable;
  replica_ = std::make_unique<Replica>(redis_->port(),
                                       TracksSource([&tracks] { return tracks.Current(); }), clock_,
                                       options_, scheduler_options_);

  ScoreCold(EmailLead("L-before"), "scored-1");
  EXPECT_EQ(Pass().sent, 1);

  // A broken file: rejected with the path and the field, the running tracks stay.
  rewrite(R"(version: "v2"
tracks:
  - {id: cold-v2, priority: 10, enroll_when: [{field: category, equals: cold}],
     steps: [{content_id: hello-v2, delay_hours: 0}]}
)");
  const absl::Status rejected = tracks.ReloadIfChanged();
  EXPECT_EQ(rejected.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rejected.message()), HasSubstr(path));
  EXPECT_THAT(std::string(rejected.message()), HasSubstr("nurture.tracks[0].steps[0].channel"));
  EXPECT_EQ(tracks.Current()->version(), "2024-06-nurture-v1");

  // A valid one without the cold welcome series: new leads enter the new track, and the lead
  // in the removed track leaves it at its next due step.
  rewrite(R"(version: "v2"
tracks:
  - {id: cold-v2, priority: 10, enroll_when: [{field: category, equals: cold}],
     steps: [{channel: CHANNEL_EMAIL, content_id: hello-v2, delay_hours: 0}]}
)");
  ASSERT_TRUE(tracks.ReloadIfChanged().ok());
  EXPECT_EQ(tracks.Current()->version(), "v2");
  ScoreCold(EmailLead("L-after"), "scored-2");
  clock_.Advance(absl::Hours(72));
  EXPECT_EQ(Pass().sent, 1);
  const std::vector<NurtureTouch> touches = replica_->producer.Touches();
  ASSERT_EQ(touches.size(), 2u);
  EXPECT_EQ(touches[1].envelope().lead_id(), "L-after");
  EXPECT_EQ(touches[1].content_id(), "hello-v2");
  std::vector<std::string> events;
  for (const auto& e : EnrollmentEvents()) {
    events.push_back(
        absl::StrCat(e.envelope().lead_id(), " ", Describe({e})[0], " @", e.tracks_version()));
  }
  EXPECT_THAT(events, UnorderedElementsAre(
                          "L-before enrolled cold-welcome @2024-06-nurture-v1",
                          "L-after enrolled cold-v2 @v2",
                          "L-before exited cold-welcome track_removed @2024-06-nurture-v1"));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace leadflow::nurturing
