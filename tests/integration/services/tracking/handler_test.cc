// Integration tests of the tracking service's handler and gRPC service against a real
// redis-server (no Kafka): messages are built with events::Encode (or written as Segment JSON)
// and fed to the handler, and the outputs it returns are what the consumer loop would publish.
// Settings: config/tracking.yaml. Time: a SimulatedClock, and the receive time of every inbound
// call is its message timestamp, as the consumer loop passes it.
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/handler.h"
#include "common/redis/hiredis_client.h"
#include "common/redis/keys.h"
#include "common/testing/fake_kafka.h"
#include "common/testing/metrics.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_keys.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "services/tracking/grpc_service.h"
#include "services/tracking/handler.h"
#include "services/tracking/store.h"

namespace leadflow::tracking {
namespace {

using events::v1::Activity;
using events::v1::InboundActivity;
using events::v1::LeadActivity;
using events::v1::LeadAggregates;
using events::v1::LeadCaptured;
using events::v1::LeadProfile;
using google::protobuf::util::MessageDifferencer;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Monday 5 January 2026, 11:00 UTC.
const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 11, 0, 0), absl::UTCTimeZone());

// Who made a Segment call.
struct Who {
  std::string user_id;
  std::string anonymous_id;
};
Who User(const std::string& user_id) { return {.user_id = user_id, .anonymous_id = ""}; }
Who Anon(const std::string& anonymous_id) { return {.user_id = "", .anonymous_id = anonymous_id}; }

InboundActivity Call(const std::string& type, const std::string& message_id, const Who& who,
                     absl::Time at) {
  InboundActivity call;
  call.set_type(type);
  call.set_message_id(message_id);
  call.set_user_id(who.user_id);
  call.set_anonymous_id(who.anonymous_id);
  *call.mutable_timestamp() = events::ToProto(at);
  return call;
}

InboundActivity PageView(const std::string& message_id, const Who& who, const std::string& url,
                         absl::Time at) {
  InboundActivity call = Call("page", message_id, who, at);
  (*call.mutable_properties()->mutable_fields())["url"].set_string_value(url);
  return call;
}

InboundActivity TrackEvent(const std::string& message_id, const Who& who, const std::string& event,
                           absl::Time at) {
  InboundActivity call = Call("track", message_id, who, at);
  call.set_event(event);
  return call;
}

LeadProfile Lead(const std::string& lead_id, const std::string& email,
                 const std::vector<std::string>& external_ids,
                 const std::vector<std::string>& anonymous_ids) {
  LeadProfile lead;
  lead.set_lead_id(lead_id);
  lead.set_email(email);
  for (const std::string& id : external_ids) lead.add_external_ids(id);
  for (const std::string& id : anonymous_ids) lead.add_anonymous_ids(id);
  return lead;
}

kafka::ConsumedMessage Consumed(const kafka::OutboundMessage& m, absl::Time timestamp) {
  kafka::ConsumedMessage c;
  c.topic = m.topic;
  c.key = m.key;
  c.value = m.value;
  c.headers = m.headers;
  c.timestamp = timestamp;
  return c;
}

LeadActivity DecodeActivity(const kafka::OutboundMessage& m) {
  LeadActivity event;
  EXPECT_TRUE(events::Decode(Consumed(m, absl::InfinitePast()), &event).ok());
  return event;
}

std::vector<std::string> MessageIds(const std::vector<kafka::OutboundMessage>& outputs) {
  std::vector<std::string> ids;
  for (const kafka::OutboundMessage& m : outputs) {
    ids.push_back(DecodeActivity(m).activity().message_id());
  }
  return ids;
}

template <typename Activities>
std::vector<std::string> MessageIdsOf(const Activities& activities) {
  std::vector<std::string> ids;
  for (const Activity& a : activities) ids.push_back(a.message_id());
  return ids;
}

class TrackingHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartRedisForTest();
    ASSERT_NE(server_, nullptr);
    redis::HiredisOptions options;
    options.port = server_->port();
    client_ = std::make_unique<redis::HiredisClient>(options);

    config::v1::TrackingConfig config;
    ASSERT_TRUE(
        config::LoadYamlProto(std::string(LEADFLOW_SOURCE_DIR) + "/config/tracking.yaml", &config)
            .ok());
    absl::StatusOr<ActivityNormalizer> normalizer = ActivityNormalizer::Create(config);
    ASSERT_TRUE(normalizer.ok()) << normalizer.status();
    normalizer_.emplace(*std::move(normalizer));
    // As the service's app does.
    TrackingOptions tracking_options;
    tracking_options.dedup_window = absl::Hours(config.dedup_window_hours());
    tracking_options.anonymous_cap = config.anonymous_cap();

    store_ = std::make_unique<TrackingStore>(*client_);
    handler_ =
        std::make_unique<TrackingHandler>(*normalizer_, *store_, topics_, clock_, tracking_options);
    grpc_ = std::make_unique<TrackingGrpcService>(*handler_, *store_, producer_, clock_, registry_);
  }

  // A call as it arrives on activities.inbound, received now.
  kafka::ConsumedMessage Inbound(const InboundActivity& call) {
    const std::string key = call.user_id().empty() ? call.anonymous_id() : call.user_id();
    return Consumed(events::Encode(topics_.Name(kafka::kActivitiesInbound), key, call),
                    clock_.Now());
  }

  // A Segment JSON payload as it arrives on activities.inbound, received now.
  kafka::ConsumedMessage InboundJson(const std::string& json) {
    kafka::ConsumedMessage m;
    m.topic = topics_.Name(kafka::kActivitiesInbound);
    m.value = json;
    m.headers = {{std::string(kafka::kContentTypeHeader), "application/json; charset=utf-8"}};
    m.timestamp = clock_.Now();
    return m;
  }

  kafka::ConsumedMessage Captured(const LeadProfile& lead, const std::string& event_id) {
    LeadCaptured event;
    *event.mutable_envelope() = events::MakeEnvelope({.event_id = event_id,
                                                      .lead_id = lead.lead_id(),
                                                      .occurred_at = clock_.Now(),
                                                      .produced_at = clock_.Now(),
                                                      .causation_id = "cause-" + event_id,
                                                      .trace_id = "trace-" + lead.lead_id(),
                                                      .producer = "test"});
    event.set_change(LeadCaptured::CHANGE_CREATED);
    *event.mutable_lead() = lead;
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsCaptured), lead.lead_id(), event),
                    clock_.Now());
  }

  // The survivor's leads.captured after capture merged `absorbed` into it.
  kafka::ConsumedMessage Merged(const LeadProfile& survivor,
                                const std::vector<std::string>& absorbed,
                                const std::string& event_id) {
    kafka::ConsumedMessage m = Captured(survivor, event_id);
    LeadCaptured event;
    EXPECT_TRUE(events::Decode(m, &event).ok());
    event.set_change(LeadCaptured::CHANGE_UPDATED);
    for (const std::string& id : absorbed) event.add_merged_lead_ids(id);
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsCaptured), survivor.lead_id(), event),
                    clock_.Now());
  }

  kafka::ConsumedMessage Erasure(const std::string& lead_id, const std::string& event_id) {
    events::v1::LeadErasure event;
    *event.mutable_envelope() = events::MakeEnvelope({.event_id = event_id,
                                                      .lead_id = lead_id,
                                                      .occurred_at = clock_.Now(),
                                                      .produced_at = clock_.Now(),
                                                      .causation_id = "cause-" + event_id,
                                                      .trace_id = "trace-" + lead_id,
                                                      .producer = "test"});
    event.set_reason("gdpr-request-7");
    return Consumed(events::Encode(topics_.Name(kafka::kLeadsErasure), lead_id, event),
                    clock_.Now());
  }

  // Handles a message that must succeed.
  std::vector<kafka::OutboundMessage> Handle(
      absl::StatusOr<std::vector<kafka::OutboundMessage>> (TrackingHandler::*route)(
          const kafka::ConsumedMessage&),
      const kafka::ConsumedMessage& message) {
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out = (handler_.get()->*route)(message);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *std::move(out) : std::vector<kafka::OutboundMessage>{};
  }

  std::vector<kafka::OutboundMessage> HandleInbound(const InboundActivity& call) {
    return Handle(&TrackingHandler::HandleInbound, Inbound(call));
  }

  std::optional<LeadAggregates> Aggregates(const std::string& lead_id) {
    tracking::v1::GetAggregatesRequest request;
    request.set_lead_id(lead_id);
    tracking::v1::GetAggregatesResponse response;
    const grpc::Status status = grpc_->GetAggregates(nullptr, &request, &response);
    if (!status.ok()) return std::nullopt;
    return response.aggregates();
  }

  // The whole timeline, newest first, read in pages of `page_size`.
  std::vector<std::string> TimelineIds(const std::string& lead_id, int page_size = 50) {
    tracking::v1::GetTimelineRequest request;
    request.set_lead_id(lead_id);
    request.set_page_size(page_size);
    std::vector<std::string> ids;
    for (int pages = 0; pages < 100; ++pages) {
      tracking::v1::GetTimelineResponse response;
      const grpc::Status status = grpc_->GetTimeline(nullptr, &request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      for (const Activity& a : response.activities()) ids.push_back(a.message_id());
      if (!status.ok() || response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return ids;
  }

  std::vector<std::string> AllKeys() { return testing::AllKeys(*client_); }

  // Keys whose name contains any of `needles`.
  std::set<std::string> KeysContaining(const std::vector<std::string>& needles) {
    std::set<std::string> found;
    for (const std::string& key : AllKeys()) {
      for (const std::string& needle : needles) {
        if (absl::StrContains(key, needle)) found.insert(key);
      }
    }
    return found;
  }

  bool KeyExists(const std::string& key) {
    absl::StatusOr<redis::Reply> r = client_->Command({"EXISTS", key});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->integer == 1;
  }

  const kafka::Topics topics_{"test."};
  testing::SimulatedClock clock_{kStart};
  testing::FakeProducer producer_;
  prometheus::Registry registry_;
  std::unique_ptr<testing::RedisServer> server_;
  std::unique_ptr<redis::HiredisClient> client_;
  std::optional<ActivityNormalizer> normalizer_;
  std::unique_ptr<TrackingStore> store_;
  std::unique_ptr<TrackingHandler> handler_;
  std::unique_ptr<TrackingGrpcService> grpc_;
};

TEST_F(TrackingHandlerTest, AKnownLeadsActivityIsEmittedOnceKeyedByTheLeadAndCountedOnce) {
  // Nothing was parked for the lead, so linking it emits nothing.
  EXPECT_THAT(Handle(&TrackingHandler::HandleCaptured,
                     Captured(Lead("lead-1", "ana@acme.example", {"crm-1"}, {}), "cap-1")),
              IsEmpty());

  const InboundActivity demo =
      TrackEvent("msg-1", User("crm-1"), "Demo Requested", kStart - absl::Minutes(1));
  const kafka::ConsumedMessage delivered = Inbound(demo);
  const std::vector<kafka::OutboundMessage> out =
      Handle(&TrackingHandler::HandleInbound, delivered);
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0].topic, "test.leads.activity");
  EXPECT_EQ(out[0].key, "lead-1");
  const LeadActivity first = DecodeActivity(out[0]);
  EXPECT_EQ(first.envelope().event_id(), events::DeriveEventId("activity", "msg-1"));
  EXPECT_EQ(first.envelope().lead_id(), "lead-1");
  EXPECT_EQ(first.envelope().causation_id(), "msg-1");
  EXPECT_EQ(first.envelope().producer(), "tracking");
  EXPECT_EQ(first.activity().message_id(), "msg-1");
  EXPECT_EQ(first.activity().type(), "demo_request");
  EXPECT_EQ(first.activity().name(), "Demo Requested");
  EXPECT_EQ(events::FromProto(first.activity().occurred_at()), kStart - absl::Minutes(1));
  EXPECT_FALSE(first.backfilled());
  ASSERT_TRUE(first.aggregates().by_type().contains("demo_request"));
  EXPECT_EQ(first.aggregates().by_type().at("demo_request").total(), 1);
  EXPECT_EQ(first.aggregates().by_type().at("demo_request").last_1d(), 1);

  // A re-delivery, later: the same event again, counted once.
  clock_.Advance(absl::Minutes(5));
  const std::vector<kafka::OutboundMessage> again =
      Handle(&TrackingHandler::HandleInbound, delivered);
  ASSERT_THAT(again, SizeIs(1));
  EXPECT_EQ(again[0].topic, out[0].topic);
  EXPECT_EQ(again[0].key, out[0].key);
  EXPECT_EQ(again[0].value, out[0].value);
  absl::StatusOr<TrackOutcome> direct = handler_->Track(demo, clock_.Now());
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(direct->result.status(), "duplicate");
  EXPECT_EQ(direct->result.lead_id(), "lead-1");

  // A second, distinct demo request under the e-mail address used as userId: two, not three.
  const std::vector<kafka::OutboundMessage> second =
      HandleInbound(TrackEvent("msg-2", User("ana@acme.example"), "Demo Requested", clock_.Now()));
  ASSERT_THAT(second, SizeIs(1));
  EXPECT_EQ(second[0].key, "lead-1");
  const LeadActivity second_event = DecodeActivity(second[0]);
  EXPECT_NE(second_event.envelope().event_id(), first.envelope().event_id());
  EXPECT_EQ(second_event.aggregates().by_type().at("demo_request").total(), 2);
  EXPECT_EQ(second_event.aggregates().by_type().at("demo_request").last_1d(), 2);

  const std::optional<LeadAggregates> aggregates = Aggregates("lead-1");
  ASSERT_TRUE(aggregates.has_value());
  EXPECT_EQ(aggregates->by_type().at("demo_request").total(), 2);
  EXPECT_TRUE(MessageDifferencer::Equals(*aggregates, second_event.aggregates()));
  EXPECT_THAT(TimelineIds("lead-1"), ElementsAre("msg-2", "msg-1"));
}

TEST_F(TrackingHandlerTest, ASkewedDeviceClockIsCorrectedAndALateEventCountsInItsOwnDay) {
  Handle(&TrackingHandler::HandleCaptured,
         Captured(Lead("lead-2", "bo@acme.example", {"crm-2"}, {}), "cap-2"));

  // The form was submitted 5 minutes ago on a device whose clock is 2 hours ahead; the batch left
  // the device 10 seconds before the server received it.
  const absl::Time received = clock_.Now() - absl::Seconds(1);
  const absl::Time device_timestamp = received - absl::Minutes(5) + absl::Hours(2);
  const absl::Time device_sent_at = received - absl::Seconds(10) + absl::Hours(2);
  InboundActivity skewed =
      TrackEvent("msg-skew", User("crm-2"), "Form Submitted", device_timestamp);
  *skewed.mutable_sent_at() = events::ToProto(device_sent_at);
  *skewed.mutable_received_at() = events::ToProto(received);
  std::vector<kafka::OutboundMessage> out = HandleInbound(skewed);
  ASSERT_THAT(out, SizeIs(1));
  LeadActivity event = DecodeActivity(out[0]);
  const absl::Time corrected = received - (device_sent_at - device_timestamp);
  EXPECT_EQ(corrected, received - absl::Minutes(5) + absl::Seconds(10));
  EXPECT_EQ(events::FromProto(event.activity().occurred_at()), corrected);
  EXPECT_EQ(events::FromProto(event.envelope().occurred_at()), corrected);
  EXPECT_EQ(events::FromProto(event.aggregates().by_type().at("form_submit").last_at()), corrected);

  // A download three days ago, delivered only now: in the 7-day window, not in today's.
  const absl::Time three_days_ago = clock_.Now() - absl::Hours(72);
  out =
      HandleInbound(TrackEvent("msg-late", User("crm-2"), "Whitepaper Downloaded", three_days_ago));
  ASSERT_THAT(out, SizeIs(1));
  event = DecodeActivity(out[0]);
  EXPECT_EQ(event.activity().type(), "download");
  EXPECT_EQ(events::FromProto(event.activity().occurred_at()), three_days_ago);
  const events::v1::ActivityCounts& downloads = event.aggregates().by_type().at("download");
  EXPECT_EQ(downloads.total(), 1);
  EXPECT_EQ(downloads.last_1d(), 0);
  EXPECT_EQ(downloads.last_7d(), 1);
  EXPECT_EQ(downloads.last_30d(), 1);
  EXPECT_EQ(events::FromProto(event.aggregates().first_seen_at()), three_days_ago);
  EXPECT_EQ(events::FromProto(event.aggregates().last_seen_at()), corrected);

  // A call without any time happened when it was received: the message timestamp, not the
  // processing time.
  InboundActivity untimed = Call("page", "msg-untimed", User("crm-2"), kStart);
  untimed.clear_timestamp();
  kafka::ConsumedMessage message = Inbound(untimed);
  message.timestamp = clock_.Now() - absl::Seconds(30);
  out = Handle(&TrackingHandler::HandleInbound, message);
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(events::FromProto(DecodeActivity(out[0]).activity().occurred_at()),
            clock_.Now() - absl::Seconds(30));
}

TEST_F(TrackingHandlerTest, AnAnonymousVisitorsPageViewsAreParkedAndBackfilledInEventTimeOrder) {
  constexpr int kViews = 20;
  const absl::Time first_view = kStart - absl::Hours(2);
  auto view = [&](int i) {
    const std::string url = i % 2 == 0 ? "https://acme.example/pricing"
                                       : absl::StrCat("https://acme.example/blog/post-", i);
    return PageView(absl::StrCat("pv-", i), Anon("anon-A"), url, first_view + absl::Minutes(i));
  };
  // Delivered out of order (7 is coprime to 20): half from the topic, half through gRPC Track.
  tracking::v1::TrackRequest request;
  for (int k = 0; k < kViews; ++k) {
    const int i = (7 * k) % kViews;
    if (k < kViews / 2) {
      EXPECT_THAT(HandleInbound(view(i)), IsEmpty()) << "pv-" << i;
    } else {
      *request.add_activities() = view(i);
    }
  }
  tracking::v1::TrackResponse response;
  ASSERT_TRUE(grpc_->Track(nullptr, &request, &response).ok());
  ASSERT_THAT(response.results(), SizeIs(kViews / 2));
  for (const tracking::v1::TrackResult& result : response.results()) {
    EXPECT_EQ(result.status(), "anonymous") << result.message_id();
    EXPECT_EQ(result.lead_id(), "") << result.message_id();
  }
  EXPECT_EQ(producer_.sent_count(), 0u);

  tracking::v1::GetAnonymousProfileRequest profile_request;
  profile_request.set_anonymous_id("anon-A");
  tracking::v1::GetAnonymousProfileResponse profile;
  ASSERT_TRUE(grpc_->GetAnonymousProfile(nullptr, &profile_request, &profile).ok());
  EXPECT_EQ(profile.lead_id(), "");
  ASSERT_THAT(profile.activities(), SizeIs(kViews));
  const std::vector<std::string> parked = MessageIdsOf(profile.activities());
  EXPECT_THAT(std::set<std::string>(parked.begin(), parked.end()), SizeIs(kViews));

  // The visitor becomes a lead: every view is attributed to it, oldest first.
  clock_.Advance(absl::Minutes(1));
  const std::vector<kafka::OutboundMessage> backfill =
      Handle(&TrackingHandler::HandleCaptured,
             Captured(Lead("lead-3", "cy@acme.example", {}, {"anon-other", "anon-A"}), "cap-3"));
  ASSERT_THAT(backfill, SizeIs(kViews));
  std::vector<std::string> expected_ids;
  for (int i = 0; i < kViews; ++i) expected_ids.push_back(absl::StrCat("pv-", i));
  EXPECT_THAT(MessageIds(backfill), ElementsAreArray(expected_ids));
  for (int i = 0; i < kViews; ++i) {
    SCOPED_TRACE(expected_ids[i]);
    EXPECT_EQ(backfill[i].topic, "test.leads.activity");
    EXPECT_EQ(backfill[i].key, "lead-3");
    const LeadActivity event = DecodeActivity(backfill[i]);
    EXPECT_TRUE(event.backfilled());
    EXPECT_EQ(event.envelope().event_id(), events::DeriveEventId("activity", expected_ids[i]));
    EXPECT_EQ(event.envelope().trace_id(), "trace-lead-3");
    EXPECT_EQ(events::FromProto(event.activity().occurred_at()), first_view + absl::Minutes(i));
    EXPECT_EQ(event.activity().anonymous_id(), "anon-A");
    EXPECT_EQ(event.aggregates().by_type().at("page_view").total(), i + 1);
  }
  const LeadAggregates last = DecodeActivity(backfill.back()).aggregates();
  EXPECT_EQ(last.by_page_category().at("pricing").total(), kViews / 2);
  EXPECT_EQ(last.by_page_category().at("blog").total(), kViews / 2);
  EXPECT_EQ(last.visits(), 1);
  EXPECT_EQ(last.seconds_on_site(), (kViews - 1) * 60);

  const std::optional<LeadAggregates> aggregates = Aggregates("lead-3");
  ASSERT_TRUE(aggregates.has_value());
  EXPECT_EQ(aggregates->by_type().at("page_view").total(), kViews);
  profile.Clear();
  ASSERT_TRUE(grpc_->GetAnonymousProfile(nullptr, &profile_request, &profile).ok());
  EXPECT_EQ(profile.lead_id(), "lead-3");
  EXPECT_THAT(profile.activities(), IsEmpty());
  EXPECT_FALSE(KeyExists(TrackingStore::PendingKey("anon:anon-A")));

  // Later views under the anonymous id go straight to the lead.
  clock_.Advance(absl::Minutes(1));
  const std::vector<kafka::OutboundMessage> later = HandleInbound(
      PageView("pv-later", Anon("anon-A"), "https://acme.example/pricing", clock_.Now()));
  ASSERT_THAT(later, SizeIs(1));
  EXPECT_EQ(later[0].key, "lead-3");
  const LeadActivity later_event = DecodeActivity(later[0]);
  EXPECT_FALSE(later_event.backfilled());
  EXPECT_EQ(later_event.aggregates().by_type().at("page_view").total(), kViews + 1);
  EXPECT_EQ(later_event.aggregates().by_page_category().at("pricing").total(), kViews / 2 + 1);

  std::vector<std::string> newest_first = {"pv-later"};
  newest_first.insert(newest_first.end(), expected_ids.rbegin(), expected_ids.rend());
  EXPECT_THAT(TimelineIds("lead-3"), ElementsAreArray(newest_first));
}

TEST_F(TrackingHandlerTest, AnActivityOfAnExternalIdKnownOnlyLaterIsParkedAndBackfilled) {
  // The CRM id reaches tracking before the lead that carries it.
  EXPECT_THAT(HandleInbound(TrackEvent("msg-form", User("crm-99"), "Form Submitted",
                                       kStart - absl::Hours(3))),
              IsEmpty());
  EXPECT_THAT(HandleInbound(
                  TrackEvent("msg-open", User("crm-99"), "Email Opened", kStart - absl::Hours(4))),
              IsEmpty());
  EXPECT_TRUE(KeyExists(TrackingStore::PendingKey("user:crm-99")));

  const std::vector<kafka::OutboundMessage> backfill =
      Handle(&TrackingHandler::HandleCaptured,
             Captured(Lead("lead-4", "di@acme.example", {"crm-98", "crm-99"}, {}), "cap-4"));
  ASSERT_THAT(backfill, SizeIs(2));
  EXPECT_THAT(MessageIds(backfill), ElementsAre("msg-open", "msg-form"));
  for (const kafka::OutboundMessage& m : backfill) {
    EXPECT_EQ(m.key, "lead-4");
    EXPECT_TRUE(DecodeActivity(m).backfilled());
  }
  const LeadAggregates aggregates = DecodeActivity(backfill[1]).aggregates();
  EXPECT_EQ(aggregates.by_type().at("email_open").total(), 1);
  EXPECT_EQ(aggregates.by_type().at("form_submit").total(), 1);
  EXPECT_FALSE(KeyExists(TrackingStore::PendingKey("user:crm-99")));

  const std::vector<kafka::OutboundMessage> later =
      HandleInbound(TrackEvent("msg-webinar", User("crm-99"), "Webinar Attended", clock_.Now()));
  ASSERT_THAT(later, SizeIs(1));
  EXPECT_EQ(later[0].key, "lead-4");
  EXPECT_FALSE(DecodeActivity(later[0]).backfilled());
  EXPECT_EQ(DecodeActivity(later[0]).aggregates().by_type().at("webinar_attended").total(), 1);
}

TEST_F(TrackingHandlerTest, AnIdentifyOfAKnownUserClaimsWhatItsAnonymousIdDidBefore) {
  Handle(&TrackingHandler::HandleCaptured,
         Captured(Lead("lead-6", "ed@acme.example", {"crm-6"}, {}), "cap-6"));
  // Browsing before logging in: unknown cookie, parked.
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(HandleInbound(PageView(absl::StrCat("pre-", i), Anon("cookie-6"),
                                       "https://acme.example/pricing",
                                       kStart - absl::Hours(1) + absl::Minutes(i))),
                IsEmpty());
  }
  // Logging in: the identify names both the known user and the cookie.
  const std::vector<kafka::OutboundMessage> out = HandleInbound(
      Call("identify", "login-6", {.user_id = "crm-6", .anonymous_id = "cookie-6"}, kStart));
  EXPECT_THAT(MessageIds(out), ElementsAre("pre-0", "pre-1", "pre-2", "login-6"));
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].key, "lead-6");
    EXPECT_EQ(DecodeActivity(out[i]).backfilled(), i < 3);
  }
  EXPECT_EQ(DecodeActivity(out.back()).aggregates().by_page_category().at("pricing").total(), 3);
  EXPECT_FALSE(KeyExists(TrackingStore::PendingKey("anon:cookie-6")));
  // From now on the cookie is the lead.
  const std::vector<kafka::OutboundMessage> after = HandleInbound(
      PageView("post-1", Anon("cookie-6"), "https://acme.example/blog/x", clock_.Now()));
  ASSERT_THAT(after, SizeIs(1));
  EXPECT_EQ(after[0].key, "lead-6");
}

// The complete examples of the Segment spec (segment.com/docs/connections/spec/{identify,track,
// page}), verbatim, with every field the schema does not know.
constexpr char kSegmentIdentify[] = R"json({
  "anonymousId": "507f191e810c19729de860ea",
  "channel": "browser",
  "context": {
    "ip": "8.8.8.8",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/40.0.2214.115 Safari/537.36"
  },
  "integrations": {
    "All": false,
    "Mixpanel": true,
    "Salesforce": true
  },
  "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
  "receivedAt": "2015-02-23T22:28:55.387Z",
  "sentAt": "2015-02-23T22:28:55.111Z",
  "timestamp": "2015-02-23T22:28:55.111Z",
  "traits": {
    "name": "Peter Gibbons",
    "email": "peter@example.com",
    "plan": "premium",
    "logins": 5,
    "address": {
      "street": "6th St",
      "city": "San Francisco",
      "state": "CA",
      "postalCode": "94103",
      "country": "USA"
    }
  },
  "type": "identify",
  "userId": "97980cfea0067",
  "version": "1.1"
})json";

constexpr char kSegmentTrack[] = R"json({
  "anonymousId": "23adfd82-aa0f-45a7-a756-24f2a7a4c895",
  "context": {
    "library": {
      "name": "analytics.js",
      "version": "2.11.1"
    },
    "page": {
      "path": "/academy/",
      "referrer": "",
      "search": "",
      "title": "Analytics Academy",
      "url": "https://segment.com/academy/"
    },
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/46.0.2490.86 Safari/537.36",
    "ip": "108.0.78.21"
  },
  "event": "Course Clicked",
  "integrations": {},
  "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
  "properties": {
    "title": "Intro to Analytics"
  },
  "receivedAt": "2015-12-12T19:11:01.266Z",
  "sentAt": "2015-12-12T19:11:01.169Z",
  "timestamp": "2015-12-12T19:11:01.249Z",
  "type": "track",
  "userId": "AiUGstSDIg",
  "originalTimestamp": "2015-12-12T19:11:01.152Z"
})json";

constexpr char kSegmentPage[] = R"json({
  "anonymousId": "507f191e810c19729de860ea",
  "channel": "browser",
  "context": {
    "ip": "8.8.8.8",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/40.0.2214.115 Safari/537.36"
  },
  "integrations": {
    "All": true,
    "Mixpanel": false,
    "Salesforce": false
  },
  "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
  "name": "Home",
  "properties": {
    "title": "Welcome | Initech",
    "url": "http://www.example.com"
  },
  "receivedAt": "2015-02-23T22:28:55.387Z",
  "sentAt": "2015-02-23T22:28:55.111Z",
  "timestamp": "2015-02-23T22:28:55.111Z",
  "type": "page",
  "userId": "97980cfea0067",
  "version": "1.1"
})json";

absl::Time ParseRfc3339(const std::string& text) {
  absl::Time t;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &t, &error)) << error;
  return t;
}

TEST_F(TrackingHandlerTest, TheSegmentSpecExamplesDecodeAsTheyAre) {
  // A lead known by both example userIds, so that each call yields an event to look at.
  Handle(&TrackingHandler::HandleCaptured,
         Captured(Lead("lead-5", "", {"97980cfea0067", "AiUGstSDIg"}, {}), "cap-5"));

  const std::vector<kafka::OutboundMessage> identify =
      Handle(&TrackingHandler::HandleInbound, InboundJson(kSegmentIdentify));
  ASSERT_THAT(identify, SizeIs(1));
  LeadActivity event = DecodeActivity(identify[0]);
  EXPECT_EQ(identify[0].key, "lead-5");
  EXPECT_EQ(event.activity().type(), "identify");
  EXPECT_EQ(event.activity().message_id(), "022bb90c-bbac-11e4-8dfc-aa07a5b093db");
  EXPECT_EQ(event.activity().anonymous_id(), "507f191e810c19729de860ea");
  // sentAt == timestamp: it happened when received.
  EXPECT_EQ(events::FromProto(event.activity().occurred_at()),
            ParseRfc3339("2015-02-23T22:28:55.387Z"));

  const std::vector<kafka::OutboundMessage> track =
      Handle(&TrackingHandler::HandleInbound, InboundJson(kSegmentTrack));
  ASSERT_THAT(track, SizeIs(1));
  event = DecodeActivity(track[0]);
  EXPECT_EQ(track[0].key, "lead-5");
  EXPECT_EQ(event.activity().type(), "course_clicked");
  EXPECT_EQ(event.activity().name(), "Course Clicked");
  EXPECT_EQ(event.activity().properties().fields().at("title").string_value(),
            "Intro to Analytics");
  // Corrected from originalTimestamp: 01.266 - (01.169 - 01.152), which is Segment's own
  // corrected `timestamp`.
  EXPECT_EQ(events::FromProto(event.activity().occurred_at()),
            ParseRfc3339("2015-12-12T19:11:01.249Z"));

  // The spec's page example reuses the identify example's messageId: it is a re-delivery of that
  // call and yields the identify event again.
  EXPECT_THAT(Handle(&TrackingHandler::HandleInbound, InboundJson(kSegmentPage)),
              ElementsAre(::testing::Field(&kafka::OutboundMessage::value, identify[0].value)));
  // With a messageId of its own it is a page view.
  const std::vector<kafka::OutboundMessage> page =
      Handle(&TrackingHandler::HandleInbound,
             InboundJson(absl::StrReplaceAll(
                 kSegmentPage, {{"022bb90c-bbac-11e4-8dfc-aa07a5b093db", "page-example"}})));
  ASSERT_THAT(page, SizeIs(1));
  event = DecodeActivity(page[0]);
  EXPECT_EQ(event.activity().type(), "page_view");
  EXPECT_EQ(event.activity().name(), "Home");
  EXPECT_EQ(event.activity().url(), "http://www.example.com");
  EXPECT_EQ(event.aggregates().by_type().at("page_view").total(), 1);
  EXPECT_EQ(event.aggregates().by_type().at("identify").total(), 1);
  EXPECT_EQ(event.aggregates().by_type().at("course_clicked").total(), 1);
}

TEST_F(TrackingHandlerTest, InvalidInputIsRejectedAsInvalidArgument) {
  struct Case {
    const char* name;
    std::string json;
  };
  const std::vector<Case> cases = {
      {"unknown type",
       R"({"type": "alias", "messageId": "m-1", "userId": "u-1", "previousId": "a-1"})"},
      {"missing messageId", R"({"type": "track", "event": "Signed Up", "userId": "u-1"})"},
      {"malformed JSON", R"({"type": "track", "messageId": "m-3", "userId": )"},
      {"no user or anonymous id", R"({"type": "page", "messageId": "m-4"})"},
      {"track without event", R"({"type": "track", "messageId": "m-5", "userId": "u-1"})"},
      {"timestamp not a time", R"({"type": "page", "messageId": "m-6", "userId": "u-1",
                                   "timestamp": "yesterday"})"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<kafka::OutboundMessage>> out =
        handler_->HandleInbound(InboundJson(c.json));
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_TRUE(kafka::IsPoison(out.status())) << c.name;
  }
  kafka::ConsumedMessage garbage = InboundJson("\xff\xff not a protobuf");
  garbage.headers = {{std::string(kafka::kContentTypeHeader), "application/x-protobuf"}};
  EXPECT_EQ(handler_->HandleInbound(garbage).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(AllKeys(), IsEmpty());

  // Through gRPC the bad call is rejected on its own and the good one still recorded.
  tracking::v1::TrackRequest request;
  *request.add_activities() = Call("screen", "m-7", Anon("anon-7"), kStart);
  *request.add_activities() = PageView("m-8", Anon("anon-8"), "/", kStart);
  tracking::v1::TrackResponse response;
  ASSERT_TRUE(grpc_->Track(nullptr, &request, &response).ok());
  ASSERT_THAT(response.results(), SizeIs(2));
  EXPECT_EQ(response.results(0).status(), "rejected");
  EXPECT_THAT(response.results(0).error(), ::testing::HasSubstr("screen"));
  EXPECT_EQ(response.results(1).status(), "anonymous");
  EXPECT_FALSE(KeyExists(TrackingStore::MessageKey("m-7")));
}

TEST_F(TrackingHandlerTest, ErasureRemovesEveryKeyOfTheLeadAndLaterActivitiesProduceNothing) {
  const LeadProfile erased = Lead("lead-7", "eve@acme.example", {"crm-7"}, {"anon-7"});
  const LeadProfile kept = Lead("lead-8", "fay@acme.example", {"crm-8"}, {"anon-8"});
  // Everything a lead can leave: a parked view backfilled on capture, activities under each kind
  // of identity, an identify linking a new anonymous id, apply-once records.
  // Message ids do not name the lead (they are random in practice).
  for (const LeadProfile& lead : {erased, kept}) {
    const std::string& id = lead.lead_id();
    const std::string tag = id == "lead-7" ? "a" : "b";
    EXPECT_THAT(HandleInbound(PageView("pv-" + tag, Anon(lead.anonymous_ids(0)),
                                       "https://acme.example/pricing", kStart - absl::Hours(1))),
                IsEmpty());
    EXPECT_THAT(Handle(&TrackingHandler::HandleCaptured, Captured(lead, "cap-" + id)), SizeIs(1));
    EXPECT_THAT(HandleInbound(TrackEvent("demo-" + tag, User(lead.external_ids(0)),
                                         "Demo Requested", clock_.Now())),
                SizeIs(1));
    InboundActivity identify =
        Call("identify", "id-" + tag, {.user_id = id, .anonymous_id = "new-" + id}, clock_.Now());
    (*identify.mutable_traits()->mutable_fields())["email"].set_string_value(lead.email());
    EXPECT_THAT(HandleInbound(identify), SizeIs(1));
  }
  // Every name the erased lead is known by.
  const std::vector<std::string> traces = {"lead-7", "crm-7", "eve@acme.example", "anon-7",
                                           "new-lead-7"};
  ASSERT_THAT(KeysContaining(traces), Contains(TrackingStore::HistoryKey("lead-7")));
  ASSERT_THAT(KeysContaining(traces),
              Contains(TrackingStore::IdentityKey("email:eve@acme.example")));

  EXPECT_THAT(Handle(&TrackingHandler::HandleErasure, Erasure("lead-7", "erase-7")), IsEmpty());

  // Only the tombstone is left, which holds nothing of the lead but its id.
  EXPECT_THAT(KeysContaining(traces), ElementsAre(redis::TombstoneKey(kService, "lead-7")));
  EXPECT_THAT(KeysContaining({"lead-8"}), Contains(TrackingStore::HistoryKey("lead-8")));
  EXPECT_THAT(KeysContaining({"crm-8"}), ElementsAre(TrackingStore::IdentityKey("user:crm-8")));
  EXPECT_FALSE(Aggregates("lead-7").has_value());
  EXPECT_THAT(TimelineIds("lead-7"), IsEmpty());
  ASSERT_TRUE(Aggregates("lead-8").has_value());
  EXPECT_EQ(Aggregates("lead-8")->by_type().at("demo_request").total(), 1);

  // Late activities of the erased lead, under its id: nothing is emitted or kept; the same
  // erasure again changes nothing; a replayed capture does not bring the lead back.
  clock_.Advance(absl::Minutes(1));
  const InboundActivity late_open =
      TrackEvent("late-open", User("lead-7"), "Email Opened", clock_.Now());
  EXPECT_THAT(HandleInbound(late_open), IsEmpty());
  absl::StatusOr<TrackOutcome> outcome = handler_->Track(
      TrackEvent("late-click", User("lead-7"), "Email Clicked", clock_.Now()), clock_.Now());
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->result.status(), "erased");
  EXPECT_THAT(outcome->outputs, IsEmpty());
  EXPECT_THAT(Handle(&TrackingHandler::HandleErasure, Erasure("lead-7", "erase-7")), IsEmpty());
  EXPECT_THAT(Handle(&TrackingHandler::HandleCaptured, Captured(erased, "cap-lead-7")), IsEmpty());
  EXPECT_THAT(Handle(&TrackingHandler::HandleCaptured, Captured(erased, "cap-again")), IsEmpty());
  EXPECT_THAT(KeysContaining(traces), ElementsAre(redis::TombstoneKey(kService, "lead-7")));

  // Under the names the erasure forgot, late activities can no longer be told from a stranger's:
  // they wait for a lead like any unknown visitor's, and nothing is emitted.
  EXPECT_THAT(HandleInbound(TrackEvent("late-crm", User("crm-7"), "Email Opened", clock_.Now())),
              IsEmpty());
  EXPECT_THAT(HandleInbound(PageView("late-anon", Anon("anon-7"), "https://acme.example/pricing",
                                     clock_.Now())),
              IsEmpty());
  EXPECT_FALSE(Aggregates("lead-7").has_value());
  EXPECT_THAT(KeysContaining({"lead-7"}), ElementsAre(redis::TombstoneKey(kService, "lead-7")));
}

TEST_F(TrackingHandlerTest, GetTimelineReturnsNewestFirstAndPagesWithAToken) {
  Handle(&TrackingHandler::HandleCaptured,
         Captured(Lead("lead-9", "gus@acme.example", {"crm-9"}, {}), "cap-9"));
  for (int i = 1; i <= 7; ++i) {
    clock_.Advance(absl::Minutes(1));
    ASSERT_THAT(
        HandleInbound(PageView(absl::StrCat("pv-", i), User("crm-9"),
                               absl::StrCat("https://acme.example/docs/", i), clock_.Now())),
        SizeIs(1));
  }

  tracking::v1::GetTimelineRequest request;
  request.set_lead_id("lead-9");
  request.set_page_size(3);
  std::vector<std::vector<std::string>> pages;
  std::vector<std::string> tokens;
  for (int n = 0; n < 10; ++n) {
    tracking::v1::GetTimelineResponse response;
    const grpc::Status status = grpc_->GetTimeline(nullptr, &request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    pages.push_back(MessageIdsOf(response.activities()));
    tokens.push_back(response.next_page_token());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_THAT(pages, ElementsAre(ElementsAre("pv-7", "pv-6", "pv-5"),
                                 ElementsAre("pv-4", "pv-3", "pv-2"), ElementsAre("pv-1")));
  EXPECT_THAT(tokens, ElementsAre("3", "6", ""));

  // The activities come back whole.
  request.Clear();
  request.set_lead_id("lead-9");
  request.set_page_size(1);
  tracking::v1::GetTimelineResponse newest;
  ASSERT_TRUE(grpc_->GetTimeline(nullptr, &request, &newest).ok());
  ASSERT_THAT(newest.activities(), SizeIs(1));
  EXPECT_EQ(newest.activities(0).type(), "page_view");
  EXPECT_EQ(newest.activities(0).url(), "https://acme.example/docs/7");
  EXPECT_EQ(newest.activities(0).page_category(), "docs");
  EXPECT_EQ(events::FromProto(newest.activities(0).occurred_at()), clock_.Now());

  // Bad requests.
  for (const char* token : {"three", "-3"}) {
    request.set_page_token(token);
    EXPECT_EQ(grpc_->GetTimeline(nullptr, &request, &newest).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << token;
  }
  request.Clear();
  EXPECT_EQ(grpc_->GetTimeline(nullptr, &request, &newest).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(TrackingHandlerTest, MergingTwoLeadsMergesTheirBehaviourIntoTheSurvivor) {
  const LeadProfile a = Lead("lead-a", "ann@acme.example", {}, {"anon-a"});
  const LeadProfile b = Lead("lead-b", "ann.b@other.example", {"crm-b"}, {"anon-b"});
  Handle(&TrackingHandler::HandleCaptured, Captured(a, "cap-a"));
  Handle(&TrackingHandler::HandleCaptured, Captured(b, "cap-b"));
  // A: two pricing views three days ago; B: a demo request yesterday, a pricing view today.
  const absl::Time three_days_ago = kStart - absl::Hours(72);
  ASSERT_THAT(HandleInbound(
                  PageView("a-1", Anon("anon-a"), "https://acme.example/pricing", three_days_ago)),
              SizeIs(1));
  ASSERT_THAT(HandleInbound(PageView("a-2", User("lead-a"), "https://acme.example/pricing",
                                     three_days_ago + absl::Minutes(5))),
              SizeIs(1));
  ASSERT_THAT(
      HandleInbound(TrackEvent("b-1", User("crm-b"), "Demo Requested", kStart - absl::Hours(20))),
      SizeIs(1));
  ASSERT_THAT(HandleInbound(PageView("b-2", Anon("anon-b"), "https://acme.example/pricing",
                                     kStart - absl::Hours(1))),
              SizeIs(1));

  // Capture merged B into A: A's record now carries B's ids too.
  LeadProfile survivor = a;
  survivor.add_anonymous_ids("anon-b");
  survivor.add_external_ids("crm-b");
  const std::vector<kafka::OutboundMessage> outputs =
      Handle(&TrackingHandler::HandleCaptured, Merged(survivor, {"lead-b"}, "cap-merge"));
  ASSERT_THAT(outputs, SizeIs(1)) << "one event for scoring";
  EXPECT_EQ(outputs[0].topic, "test.leads.activity");
  EXPECT_EQ(outputs[0].key, "lead-a");
  const LeadActivity event = DecodeActivity(outputs[0]);
  EXPECT_EQ(event.envelope().lead_id(), "lead-a");
  EXPECT_EQ(event.activity().type(), kLeadMergedActivity);
  EXPECT_THAT(event.merged_lead_ids(), ElementsAre("lead-b"));
  const LeadAggregates& merged = event.aggregates();
  EXPECT_EQ(merged.by_type().at("page_view").total(), 3);
  EXPECT_EQ(merged.by_type().at("page_view").last_1d(), 1);
  EXPECT_EQ(merged.by_type().at("page_view").last_7d(), 3);
  EXPECT_EQ(merged.by_type().at("demo_request").total(), 1);
  EXPECT_EQ(merged.by_page_category().at("pricing").total(), 3);
  EXPECT_EQ(merged.visits(), 3);
  EXPECT_EQ(events::FromProto(merged.first_seen_at()), three_days_ago);
  EXPECT_EQ(events::FromProto(merged.last_seen_at()), kStart - absl::Hours(1));
  EXPECT_FALSE(merged.by_type().contains(kLeadMergedActivity)) << "the merge counts as nothing";

  // The survivor answers with the merged behaviour; the absorbed id redirects to it.
  ASSERT_TRUE(Aggregates("lead-a").has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*Aggregates("lead-a"), merged));
  ASSERT_TRUE(Aggregates("lead-b").has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*Aggregates("lead-b"), merged));
  EXPECT_THAT(TimelineIds("lead-a"), ElementsAre("b-2", "b-1", "a-2", "a-1"));
  EXPECT_THAT(TimelineIds("lead-b"), ElementsAre("b-2", "b-1", "a-2", "a-1"));
  EXPECT_FALSE(KeyExists(TrackingStore::TimelineKey("lead-b")));

  // A re-delivered merge changes nothing and re-produces the same event.
  const std::vector<kafka::OutboundMessage> again =
      Handle(&TrackingHandler::HandleCaptured, Merged(survivor, {"lead-b"}, "cap-merge"));
  ASSERT_THAT(again, SizeIs(1));
  EXPECT_EQ(again[0].value, outputs[0].value) << "the same event, byte for byte";
  EXPECT_TRUE(MessageDifferencer::Equals(*Aggregates("lead-a"), merged));

  // Later activity under any of B's names counts for A: its cookie and CRM id (re-linked by the
  // merge), its lead id and its old e-mail (through the redirect).
  clock_.Advance(absl::Minutes(1));
  int n = 0;
  for (const Who& who :
       {Anon("anon-b"), User("crm-b"), User("lead-b"), User("ann.b@other.example")}) {
    const std::vector<kafka::OutboundMessage> later =
        HandleInbound(TrackEvent(absl::StrCat("later-", ++n), who, "Chat Started", clock_.Now()));
    ASSERT_THAT(later, SizeIs(1)) << n;
    EXPECT_EQ(later[0].key, "lead-a") << n;
    EXPECT_EQ(DecodeActivity(later[0]).aggregates().by_type().at("chat").total(), n);
  }
  EXPECT_FALSE(Aggregates("lead-a")->by_type().contains("lead_merged"));
  EXPECT_EQ(Aggregates("lead-a")->by_type().at("chat").total(), 4);
}

TEST_F(TrackingHandlerTest, AMergeClaimsWhatTheAbsorbedLeadsCookieDidWhileAnonymous) {
  const LeadProfile a = Lead("lead-a", "ann@acme.example", {}, {});
  Handle(&TrackingHandler::HandleCaptured, Captured(a, "cap-a"));
  // B never had tracking history; a cookie capture learnt from B's form was seen browsing.
  ASSERT_THAT(HandleInbound(PageView("anon-1", Anon("anon-b"), "https://acme.example/pricing",
                                     kStart - absl::Hours(2))),
              IsEmpty());
  LeadProfile survivor = a;
  survivor.add_anonymous_ids("anon-b");
  const std::vector<kafka::OutboundMessage> outputs =
      Handle(&TrackingHandler::HandleCaptured, Merged(survivor, {"lead-b"}, "cap-merge"));
  // The parked view, backfilled, then the merge event with the final aggregates.
  ASSERT_THAT(MessageIds(outputs), ElementsAre("anon-1", "merge:cap-merge"));
  EXPECT_TRUE(DecodeActivity(outputs[0]).backfilled());
  EXPECT_EQ(DecodeActivity(outputs[1]).aggregates().by_type().at("page_view").total(), 1);
  EXPECT_THAT(TimelineIds("lead-a"), ElementsAre("anon-1"));
}

TEST_F(TrackingHandlerTest, ErasingTheSurvivorErasesEveryTraceOfTheAbsorbedLeadToo) {
  const LeadProfile a = Lead("lead-a", "ann@acme.example", {}, {"anon-a"});
  const LeadProfile b = Lead("lead-b", "ann.b@other.example", {"crm-b"}, {"anon-b"});
  Handle(&TrackingHandler::HandleCaptured, Captured(a, "cap-a"));
  Handle(&TrackingHandler::HandleCaptured, Captured(b, "cap-b"));
  HandleInbound(PageView("a-1", Anon("anon-a"), "https://acme.example/pricing", clock_.Now()));
  InboundActivity identify =
      Call("identify", "b-1", {.user_id = "crm-b", .anonymous_id = "anon-b2"}, clock_.Now());
  (*identify.mutable_traits()->mutable_fields())["email"].set_string_value(b.email());
  HandleInbound(identify);
  LeadProfile survivor = a;
  survivor.add_anonymous_ids("anon-b");
  survivor.add_external_ids("crm-b");
  Handle(&TrackingHandler::HandleCaptured, Merged(survivor, {"lead-b"}, "cap-merge"));

  Handle(&TrackingHandler::HandleErasure, Erasure("lead-a", "erase-a"));
  EXPECT_THAT(AllKeys(), ElementsAre(redis::TombstoneKey(kService, "lead-a")));
}

}  // namespace
}  // namespace leadflow::tracking

namespace leadflow::tracking {
namespace {

// The service's route for a poll's activities (services/tracking/app.cc).
std::vector<kafka::HandleResult> HandleAsTheServiceDoes(
    TrackingHandler& handler, const std::vector<kafka::ConsumedMessage>& messages) {
  std::vector<const kafka::ConsumedMessage*> batch;
  for (const kafka::ConsumedMessage& m : messages) batch.push_back(&m);
  return kafka::HandleInKeyWaves(
      batch, [&](const auto& wave) { return handler.HandleInboundBatch(wave); });
}

TEST_F(TrackingHandlerTest, ABatchGivesEveryActivityTheResultItWouldGetAloneAndAppliesEachOnce) {
  Handle(&TrackingHandler::HandleCaptured,
         Captured(Lead("lead-1", "ana@acme.example", {"crm-1"}, {}), "cap-1"));
  Handle(&TrackingHandler::HandleCaptured,
         Captured(Lead("lead-2", "bo@beta.example", {"crm-2"}, {}), "cap-2"));
  const std::vector<kafka::ConsumedMessage> batch = {
      Inbound(TrackEvent("m-1", User("crm-1"), "Demo Requested", kStart - absl::Minutes(3))),
      Inbound(PageView("m-2", User("crm-2"), "https://acme.example/pricing", kStart)),
      Inbound(PageView("m-3", Anon("anon-x"), "https://acme.example/blog/a", kStart)),
      Inbound(TrackEvent("m-4", User("crm-1"), "Chat Started", kStart - absl::Minutes(2))),
      InboundJson(R"({"type": "track", "messageId": "m-5", "userId": )"),
      // The same message again in the same poll (an upstream retry).
      Inbound(TrackEvent("m-1", User("crm-1"), "Demo Requested", kStart - absl::Minutes(3))),
  };
  const std::vector<kafka::HandleResult> results = HandleAsTheServiceDoes(*handler_, batch);
  ASSERT_THAT(results, SizeIs(batch.size()));
  for (size_t i : {0, 1, 2, 3, 5}) ASSERT_TRUE(results[i].ok()) << i << results[i].status();
  EXPECT_EQ(results[4].status().code(), absl::StatusCode::kInvalidArgument);

  ASSERT_THAT(*results[0], SizeIs(1));
  EXPECT_EQ((*results[0])[0].key, "lead-1");
  EXPECT_EQ(DecodeActivity((*results[0])[0]).aggregates().by_type().at("demo_request").total(), 1);
  ASSERT_THAT(*results[1], SizeIs(1));
  EXPECT_EQ((*results[1])[0].key, "lead-2");
  EXPECT_THAT(*results[2], IsEmpty()) << "an unknown visitor's activity is parked";
  // m-4 came after m-1 for the same lead: it sees m-1 in its aggregates.
  ASSERT_THAT(*results[3], SizeIs(1));
  const LeadAggregates after_chat = DecodeActivity((*results[3])[0]).aggregates();
  EXPECT_EQ(after_chat.by_type().at("demo_request").total(), 1);
  EXPECT_EQ(after_chat.by_type().at("chat").total(), 1);
  ASSERT_THAT(*results[5], SizeIs(1));
  EXPECT_EQ((*results[5])[0].value, (*results[0])[0].value) << "the duplicate re-emits m-1's event";

  EXPECT_THAT(TimelineIds("lead-1"), ElementsAre("m-4", "m-1"));
  EXPECT_EQ(Aggregates("lead-1")->by_type().at("demo_request").total(), 1);
  EXPECT_TRUE(MessageDifferencer::Equals(*Aggregates("lead-1"), after_chat));

  // Re-delivered one by one (a restart before the commit): the same events, nothing applied again.
  clock_.Advance(absl::Minutes(1));
  for (size_t i : {0, 1, 2, 3}) {
    absl::StatusOr<std::vector<kafka::OutboundMessage>> alone = handler_->HandleInbound(batch[i]);
    ASSERT_TRUE(alone.ok()) << alone.status();
    ASSERT_EQ(alone->size(), results[i]->size()) << i;
    for (size_t k = 0; k < alone->size(); ++k) EXPECT_EQ((*alone)[k].value, (*results[i])[k].value);
  }
  EXPECT_THAT(TimelineIds("lead-1"), ElementsAre("m-4", "m-1"));

  // The parked visitor's activity is claimed when it becomes a lead.
  const std::vector<kafka::OutboundMessage> claimed =
      Handle(&TrackingHandler::HandleCaptured,
             Captured(Lead("lead-3", "cy@gamma.example", {}, {"anon-x"}), "cap-3"));
  EXPECT_THAT(MessageIds(claimed), ElementsAre("m-3"));
}

TEST_F(TrackingHandlerTest, TrackBatchAppliesTwoActivitiesOfOneLeadInOneCallInOrder) {
  Handle(&TrackingHandler::HandleCaptured,
         Captured(Lead("lead-1", "ana@acme.example", {"crm-1"}, {}), "cap-1"));
  const InboundActivity first =
      PageView("m-1", User("crm-1"), "https://acme.example/pricing", kStart);
  const InboundActivity second =
      PageView("m-2", User("lead-1"), "https://acme.example/pricing", kStart);
  const std::vector<absl::StatusOr<TrackOutcome>> outcomes =
      handler_->TrackBatch({&first, &second}, {kStart, kStart});
  ASSERT_THAT(outcomes, SizeIs(2));
  ASSERT_TRUE(outcomes[0].ok() && outcomes[1].ok());
  EXPECT_EQ(outcomes[0]->result.status(), "recorded");
  EXPECT_EQ(outcomes[1]->result.status(), "recorded");
  ASSERT_THAT(outcomes[1]->outputs, SizeIs(1));
  EXPECT_EQ(
      DecodeActivity(outcomes[1]->outputs[0]).aggregates().by_page_category().at("pricing").total(),
      2);
  EXPECT_THAT(TimelineIds("lead-1"), ElementsAre("m-2", "m-1"));
}

TEST_F(TrackingHandlerTest, ABatchFollowsTheRedirectOfALeadMergedIntoAnother) {
  const LeadProfile a = Lead("lead-a", "ann@acme.example", {}, {});
  const LeadProfile b = Lead("lead-b", "bea@other.example", {"crm-b"}, {});
  Handle(&TrackingHandler::HandleCaptured, Captured(a, "cap-a"));
  Handle(&TrackingHandler::HandleCaptured, Captured(b, "cap-b"));
  Handle(&TrackingHandler::HandleCaptured, Merged(a, {"lead-b"}, "cap-merge"));
  const std::vector<kafka::HandleResult> results = HandleAsTheServiceDoes(
      *handler_, {Inbound(TrackEvent("m-1", User("lead-b"), "Chat Started", kStart)),
                  Inbound(TrackEvent("m-2", User("lead-a"), "Chat Started", kStart))});
  ASSERT_THAT(results, SizeIs(2));
  for (const kafka::HandleResult& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_THAT(*r, SizeIs(1));
    EXPECT_EQ((*r)[0].key, "lead-a");
  }
  EXPECT_EQ(Aggregates("lead-a")->by_type().at("chat").total(), 2);
}

// A known lead's activity recorded through gRPC whose event the broker refused is re-sent from
// tracking's outbox after the grace — the same event — without the caller retrying; what the
// broker acknowledged, rejected or anonymous activity leaves no entry.
TEST_F(TrackingHandlerTest, AnActivityWhoseEventTheBrokerRefusedIsResentFromTheOutbox) {
  constexpr absl::Duration kGrace = absl::Seconds(60);
  auto outbox_size = [&] {
    absl::StatusOr<redis::Reply> n = client_->Command({"ZCARD", store_->outbox().key()});
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? n->integer : -1;
  };
  Handle(&TrackingHandler::HandleCaptured,
         Captured(Lead("lead-1", "ana@acme.example", {"crm-1"}, {}), "cap-1"));
  tracking::v1::TrackRequest request;
  *request.add_activities() =
      TrackEvent("msg-refused", User("crm-1"), "Demo Requested", clock_.Now());
  *request.add_activities() = PageView("msg-anon", Anon("anon-9"), "/", clock_.Now());
  *request.add_activities() = Call("screen", "msg-bad", Anon("anon-9"), clock_.Now());
  producer_.FailDeliveries(1, absl::UnavailableError("Local: Message timed out"));
  tracking::v1::TrackResponse response;
  EXPECT_EQ(grpc_->Track(nullptr, &request, &response).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(outbox_size(), 1);  // the anonymous and the rejected ones send nothing
  ASSERT_EQ(producer_.sent_count(), 1u);
  const std::string refused = producer_.sent()[0].message.value;

  clock_.Advance(kGrace - absl::Seconds(1));
  absl::StatusOr<int> resent = grpc_->ResendUnacknowledged(clock_.Now(), kGrace);
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(*resent, 0);
  clock_.Advance(absl::Seconds(1));
  resent = grpc_->ResendUnacknowledged(clock_.Now(), kGrace);
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(*resent, 1);
  ASSERT_EQ(producer_.sent_count(), 2u);
  EXPECT_EQ(producer_.sent()[1].message.value, refused);  // the same event, byte for byte
  EXPECT_EQ(testing::MetricValue(registry_, "leadflow_tracking_outbox_resent_total"), 1);
  EXPECT_EQ(producer_.sent()[1].delivery, absl::OkStatus());
  EXPECT_EQ(outbox_size(), 0);
  clock_.Advance(kGrace * 3);
  resent = grpc_->ResendUnacknowledged(clock_.Now(), kGrace);
  ASSERT_TRUE(resent.ok());
  EXPECT_EQ(*resent, 0);

  // Acknowledged at once: no entry. An entry whose activity was never recorded (the process
  // died first) is dropped without sending anything.
  tracking::v1::TrackRequest next;
  *next.add_activities() = TrackEvent("msg-ok", User("crm-1"), "Pricing Viewed", clock_.Now());
  ASSERT_TRUE(grpc_->Track(nullptr, &next, &response).ok());
  EXPECT_EQ(outbox_size(), 0);
  ASSERT_TRUE(store_->outbox().Add({"msg-never-recorded"}, clock_.Now()).ok());
  clock_.Advance(kGrace);
  const size_t sent_before = producer_.sent_count();
  resent = grpc_->ResendUnacknowledged(clock_.Now(), kGrace);
  ASSERT_TRUE(resent.ok());
  EXPECT_EQ(*resent, 0);
  EXPECT_EQ(outbox_size(), 0);
  EXPECT_EQ(producer_.sent_count(), sent_before);
}

}  // namespace
}  // namespace leadflow::tracking
