// Integration tests of capture's handler against a real redis-server (no Kafka): submissions go
// in through Submit() or as consumed messages, and the events it returns are what the consumer
// loop or the gRPC service would publish. Settings: config/capture.yaml.
#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/config/yaml_proto.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/grpc/status.h"
#include "common/kafka/handler.h"
#include "common/redis/hiredis_client.h"
#include "common/redis/keys.h"
#include "common/rules/time_util.h"
#include "common/testing/events.h"
#include "common/testing/fake_kafka.h"
#include "common/testing/metrics.h"
#include "common/testing/redis_for_test.h"
#include "common/testing/redis_server.h"
#include "common/testing/simulated_clock.h"
#include "gmock/gmock.h"
#include "grpcpp/server_context.h"
#include "gtest/gtest.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "services/capture/grpc_service.h"
#include "services/capture/handler.h"
#include "services/capture/store.h"

namespace leadflow::capture {
namespace {

using events::v1::LeadCaptured;
using events::v1::LeadSubmission;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 1, 5, 11, 0, 0), absl::UTCTimeZone());

LeadSubmission Jane(const std::string& request_id) {
  LeadSubmission s;
  s.set_request_id(request_id);
  s.set_source("web_form");
  s.set_email("jane.doe@acme-widgets.com");
  s.set_first_name("Jane");
  s.set_last_name("Doe");
  s.set_company("Acme Widgets Ltd");
  s.set_job_title("VP Marketing");
  s.set_country("GB");
  return s;
}

class CaptureHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = testing::StartRedisForTest();
    ASSERT_NE(redis_, nullptr);
    client_ = std::make_unique<redis::HiredisClient>(*redis::ParseRedisAddress(redis_->address()));
    config::v1::CaptureConfig config;
    ASSERT_TRUE(
        config::LoadYamlProto(std::string(LEADFLOW_SOURCE_DIR) + "/config/capture.yaml", &config)
            .ok());
    normalizer_ = std::make_unique<Normalizer>(config);
    store_ = std::make_unique<CaptureStore>(*client_);
    handler_ = std::make_unique<CaptureHandler>(*normalizer_, *store_, topics_, clock_, registry_);
  }

  static LeadCaptured EventOf(const SubmitOutcome& outcome) {
    EXPECT_EQ(outcome.outputs.size(), 1u);
    LeadCaptured event;
    if (!outcome.outputs.empty()) event.ParseFromString(outcome.outputs[0].value);
    return event;
  }

  // A won outcome of `lead_id` on leads.outcomes, as routing reports it.
  kafka::ConsumedMessage Won(const std::string& lead_id, const std::string& event_id) {
    events::v1::LeadOutcome won;
    *won.mutable_envelope() = testing::Envelope(lead_id, event_id, kStart + absl::Hours(1));
    won.set_kind(events::v1::LeadOutcome::KIND_WON);
    return testing::Consumed(events::Encode(topics_.Name(kafka::kLeadsOutcomes), lead_id, won));
  }

  std::vector<std::string> Keys(const std::string& pattern) {
    std::vector<std::string> keys;
    absl::StatusOr<redis::Reply> r = client_->Command({"KEYS", pattern});
    if (r.ok()) {
      for (const redis::Reply& e : r->elements) keys.push_back(e.str);
    }
    return keys;
  }

  testing::SimulatedClock clock_{kStart};
  kafka::Topics topics_{"test."};
  prometheus::Registry registry_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<redis::HiredisClient> client_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<CaptureStore> store_;
  std::unique_ptr<CaptureHandler> handler_;
};

TEST_F(CaptureHandlerTest, ANewPersonCreatesOneLeadAndOneCapturedEventKeyedByTheLead) {
  absl::StatusOr<SubmitOutcome> outcome = handler_->Submit(Jane("r-1"), "r-1");
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->response.created());
  const LeadCaptured event = EventOf(*outcome);
  EXPECT_EQ(event.change(), LeadCaptured::CHANGE_CREATED);
  EXPECT_EQ(event.envelope().lead_id(), outcome->response.lead_id());
  EXPECT_EQ(event.envelope().event_id(), events::DeriveEventId("captured", "r-1"));
  EXPECT_EQ(outcome->outputs[0].topic, "test.leads.captured");
  EXPECT_EQ(outcome->outputs[0].key, outcome->response.lead_id());
  EXPECT_EQ(event.lead().email(), "jane.doe@acme-widgets.com");
}

TEST_F(CaptureHandlerTest, ADoubleSubmitWithTheSameKeyReturnsTheOriginalResultAndTheSameEvent) {
  absl::StatusOr<SubmitOutcome> first = handler_->Submit(Jane("r-1"), "r-1");
  ASSERT_TRUE(first.ok());
  clock_.Advance(absl::Minutes(5));
  LeadSubmission changed = Jane("r-1");
  changed.set_job_title("CEO");  // a resubmission with the same key changes nothing
  absl::StatusOr<SubmitOutcome> again = handler_->Submit(changed, "r-1");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->response.duplicate_request());
  EXPECT_EQ(again->response.lead_id(), first->response.lead_id());
  ASSERT_EQ(again->outputs.size(), 1u);
  EXPECT_EQ(again->outputs[0].value, first->outputs[0].value) << "the same event, byte for byte";
  absl::StatusOr<std::optional<events::v1::LeadProfile>> stored =
      store_->LoadProfile(first->response.lead_id());
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->job_title(), "VP Marketing");
}

TEST_F(CaptureHandlerTest, ADuplicateOfAnAcknowledgedSubmissionPublishesNothingAgain) {
  absl::StatusOr<SubmitOutcome> first = handler_->Submit(Jane("r-2"), "r-2");
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->outputs.size(), 1u);
  // What the gRPC API does once the broker acknowledged the event.
  ASSERT_TRUE(store_->MarkSent({{"r-2", first->response.lead_id()}}, absl::Hours(1)).ok());
  absl::StatusOr<SubmitOutcome> again = handler_->Submit(Jane("r-2"), "r-2");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->response.duplicate_request());
  EXPECT_EQ(again->response.lead_id(), first->response.lead_id());
  EXPECT_TRUE(again->outputs.empty());
  // The record belongs to the lead: erasure removes it with everything else. It expires, so
  // the registry lists it among its expiring members (by expiry), not its lasting ones.
  EXPECT_THAT(Keys("capture:req:{r-2}:sent"), ::testing::SizeIs(1));
  const std::string registry = redis::RegistryKey("capture", first->response.lead_id());
  absl::StatusOr<redis::Reply> lasting =
      client_->Command({"SISMEMBER", registry, "capture:req:{r-2}:sent"});
  ASSERT_TRUE(lasting.ok());
  EXPECT_EQ(lasting->integer, 0);
  absl::StatusOr<redis::Reply> expiry =
      client_->Command({"ZSCORE", redis::ExpiringRegistryKey(registry), "capture:req:{r-2}:sent"});
  absl::StatusOr<redis::Reply> ttl = client_->Command({"PEXPIRETIME", "capture:req:{r-2}:sent"});
  ASSERT_TRUE(expiry.ok() && ttl.ok());
  EXPECT_EQ(expiry->str, absl::StrCat(ttl->integer)) << "listed until the instant it expires";
  ASSERT_TRUE(store_->Erase(first->response.lead_id()).ok());
  EXPECT_THAT(Keys("capture:req:{r-2}:sent"), ::testing::IsEmpty());
}

TEST_F(CaptureHandlerTest, AConvertedLeadComingBackOpensANewEpisodeLinkedToTheContact) {
  absl::StatusOr<SubmitOutcome> first = handler_->Submit(Jane("e-1"), "e-1");
  ASSERT_TRUE(first.ok());
  const std::string contact = first->response.lead_id();

  // Routing reports the deal won (twice: a redelivery changes nothing).
  const kafka::ConsumedMessage won_message = Won(contact, "won-1");
  ASSERT_TRUE(handler_->HandleOutcome(won_message).ok());
  ASSERT_TRUE(handler_->HandleOutcome(won_message).ok());
  absl::StatusOr<std::optional<events::v1::LeadProfile>> stored = store_->LoadProfile(contact);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->contact_id(), contact);
  EXPECT_EQ(rules::ToTime((*stored)->converted_at()), kStart + absl::Hours(1));

  // Months later the same person shows new interest: a new lead, linked, the old one kept.
  clock_.Advance(absl::Hours(24 * 90));
  LeadSubmission back = Jane("e-2");
  back.add_interests("bags");
  absl::StatusOr<SubmitOutcome> again = handler_->Submit(back, "e-2");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->response.created());
  const std::string episode = again->response.lead_id();
  EXPECT_NE(episode, contact);
  LeadCaptured event = EventOf(*again);
  EXPECT_EQ(event.change(), LeadCaptured::CHANGE_CREATED);
  EXPECT_EQ(event.lead().contact_id(), contact);
  EXPECT_EQ(event.lead().episode(), 2);
  EXPECT_EQ(event.lead().previous_lead_id(), contact);
  EXPECT_EQ(event.match().matched_lead_id(), contact);
  stored = store_->LoadProfile(contact);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_TRUE((*stored)->has_converted_at()) << "the converted lead stays as history";

  // The person's keys now lead to the open episode: the next submission merges into it.
  absl::StatusOr<SubmitOutcome> third = handler_->Submit(Jane("e-3"), "e-3");
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->response.created());
  EXPECT_EQ(third->response.lead_id(), episode);
}

TEST_F(CaptureHandlerTest, TheSamePersonInOtherCasingThroughKafkaMergesIntoOneLead) {
  absl::StatusOr<SubmitOutcome> first = handler_->Submit(Jane("r-1"), "r-1");
  ASSERT_TRUE(first.ok());
  LeadSubmission shouted = Jane("");
  shouted.set_email("  JANE.DOE@ACME-WIDGETS.COM ");
  shouted.set_first_name("JANE");
  shouted.set_phone("+44 20 7946 0958");
  kafka::OutboundMessage m =
      events::Encode("test.leads.inbound", "k", shouted, events::Encoding::kJson);
  kafka::ConsumedMessage consumed{"test.leads.inbound", 0, 42, "k", m.value, m.headers};
  absl::StatusOr<std::vector<kafka::OutboundMessage>> outputs = handler_->HandleInbound(consumed);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  ASSERT_EQ(outputs->size(), 1u);
  LeadCaptured merged;
  ASSERT_TRUE(merged.ParseFromString((*outputs)[0].value));
  EXPECT_EQ(merged.change(), LeadCaptured::CHANGE_UPDATED);
  EXPECT_EQ(merged.envelope().lead_id(), first->response.lead_id());
  EXPECT_EQ(merged.match().key(), "email");
  EXPECT_EQ(merged.lead().phone(), "+442079460958");
  EXPECT_THAT(merged.changed_fields(), ::testing::Contains("phone"));
  // The message's position is its key: a redelivery is a duplicate, not a second update.
  absl::StatusOr<std::vector<kafka::OutboundMessage>> again = handler_->HandleInbound(consumed);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].value, (*outputs)[0].value);
}

// Max Power as an event app knows him: by phone, with a CRM id and a cookie.
LeadSubmission MaxByPhone(const std::string& request_id) {
  LeadSubmission s;
  s.set_request_id(request_id);
  s.set_source("event");
  s.set_phone("+44 20 7946 0958");
  s.set_first_name("Max");
  s.set_last_name("Power");
  s.set_city("Leeds");
  s.set_external_id("crm-7");
  s.set_anonymous_id("anon-7");
  return s;
}

TEST_F(CaptureHandlerTest, ASubmissionProvingTwoLeadsOnePersonMergesThemIntoTheStrongerMatch) {
  absl::StatusOr<SubmitOutcome> by_email = handler_->Submit(Jane("r-1"), "r-1");
  ASSERT_TRUE(by_email.ok());
  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<SubmitOutcome> by_phone = handler_->Submit(MaxByPhone("r-2"), "r-2");
  ASSERT_TRUE(by_phone.ok());
  const std::string a = by_email->response.lead_id();
  const std::string b = by_phone->response.lead_id();
  ASSERT_NE(a, b);

  clock_.Advance(absl::Minutes(1));
  LeadSubmission both = Jane("r-3");
  both.set_phone("020 7946 0958");
  absl::StatusOr<SubmitOutcome> outcome = handler_->Submit(both, "r-3");
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->response.lead_id(), a) << "e-mail beats phone: A survives";
  EXPECT_FALSE(outcome->response.created());
  EXPECT_THAT(outcome->response.merged_lead_ids(), ::testing::ElementsAre(b));
  const LeadCaptured event = EventOf(*outcome);
  EXPECT_EQ(event.change(), LeadCaptured::CHANGE_UPDATED);
  EXPECT_EQ(event.envelope().lead_id(), a);
  EXPECT_THAT(event.merged_lead_ids(), ::testing::ElementsAre(b));
  EXPECT_EQ(event.match().key(), "email");
  EXPECT_EQ(event.match().matched_lead_id(), a);
  // Field by field: the submission (newest) keeps Jane's name; B fills what A lacked.
  EXPECT_EQ(event.lead().first_name(), "Jane");
  EXPECT_EQ(event.lead().phone(), "+442079460958");
  EXPECT_EQ(event.lead().city(), "Leeds");
  EXPECT_THAT(event.lead().external_ids(), ::testing::ElementsAre("crm-7"));
  EXPECT_THAT(event.lead().anonymous_ids(), ::testing::ElementsAre("anon-7"));
  EXPECT_THAT(event.lead().sources(), ::testing::ElementsAre("web_form", "event"));
  EXPECT_EQ(rules::ToTime(event.lead().created_at()), kStart);
  EXPECT_THAT(event.changed_fields(), ::testing::IsSupersetOf({"phone", "city", "sources",
                                                               "external_ids", "anonymous_ids"}));

  // B's keys lead to A now; B's record is a redirect naming A; B left the fuzzy blocks.
  for (const std::string& key :
       {CaptureStore::PhoneIndexKey("+442079460958"), CaptureStore::ExternalIndexKey("crm-7")}) {
    absl::StatusOr<std::optional<std::string>> owner = store_->LookupIndex(key);
    ASSERT_TRUE(owner.ok() && owner->has_value()) << key;
    EXPECT_EQ(**owner, a) << key;
  }
  absl::StatusOr<std::optional<events::v1::LeadProfile>> redirect = store_->LoadProfile(b);
  ASSERT_TRUE(redirect.ok() && redirect->has_value());
  EXPECT_TRUE(IsMergeRedirect(**redirect));
  EXPECT_EQ((*redirect)->merged_into_lead_id(), a);
  absl::StatusOr<std::optional<events::v1::LeadProfile>> current = store_->LoadCurrent(b);
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->lead_id(), a);
  EXPECT_EQ((*current)->phone(), "+442079460958");

  // B's phone alone now finds A, and merges nothing more.
  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<SubmitOutcome> later = handler_->Submit(MaxByPhone("r-4"), "r-4");
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->response.lead_id(), a);
  EXPECT_FALSE(later->response.created());
  EXPECT_TRUE(later->response.merged_lead_ids().empty());
}

TEST_F(CaptureHandlerTest, AMergeIsIdempotentPerRequestId) {
  ASSERT_TRUE(handler_->Submit(Jane("r-1"), "r-1").ok());
  absl::StatusOr<SubmitOutcome> by_phone = handler_->Submit(MaxByPhone("r-2"), "r-2");
  ASSERT_TRUE(by_phone.ok());
  LeadSubmission both = Jane("r-3");
  both.set_phone("+44 20 7946 0958");
  absl::StatusOr<SubmitOutcome> first = handler_->Submit(both, "r-3");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->response.merged_lead_ids_size(), 1);
  const std::vector<std::string> keys_before = Keys("*");

  absl::StatusOr<SubmitOutcome> again = handler_->Submit(both, "r-3");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->response.duplicate_request());
  ASSERT_EQ(again->outputs.size(), 1u);
  EXPECT_EQ(again->outputs[0].value, first->outputs[0].value) << "the same event, byte for byte";
  EXPECT_THAT(Keys("*"), ::testing::UnorderedElementsAreArray(keys_before));
  // Acknowledged: a duplicate publishes nothing.
  ASSERT_TRUE(store_->MarkSent({{"r-3", first->response.lead_id()}}, absl::Hours(1)).ok());
  again = handler_->Submit(both, "r-3");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->outputs.empty());
}

TEST_F(CaptureHandlerTest, ErasingTheSurvivorErasesTheAbsorbedLeadsTracesToo) {
  ASSERT_TRUE(handler_->Submit(Jane("r-1"), "r-1").ok());
  ASSERT_TRUE(handler_->Submit(MaxByPhone("r-2"), "r-2").ok());
  LeadSubmission both = Jane("r-3");
  both.set_phone("+44 20 7946 0958");
  absl::StatusOr<SubmitOutcome> merged = handler_->Submit(both, "r-3");
  ASSERT_TRUE(merged.ok());
  const std::string a = merged->response.lead_id();
  ASSERT_TRUE(store_->Erase(a).ok());
  for (const std::string& key : Keys("*")) {
    EXPECT_EQ(key, "capture:{" + a + "}:erased") << "left behind: " << key;
  }
}

TEST_F(CaptureHandlerTest, AConvertedLeadMatchedByAnotherKeyIsNeverMerged) {
  absl::StatusOr<SubmitOutcome> by_email = handler_->Submit(Jane("r-1"), "r-1");
  ASSERT_TRUE(by_email.ok());
  absl::StatusOr<SubmitOutcome> by_phone = handler_->Submit(MaxByPhone("r-2"), "r-2");
  ASSERT_TRUE(by_phone.ok());
  const std::string b = by_phone->response.lead_id();
  ASSERT_TRUE(handler_->HandleOutcome(Won(b, "won-b")).ok());

  LeadSubmission both = Jane("r-3");
  both.set_phone("+44 20 7946 0958");
  absl::StatusOr<SubmitOutcome> outcome = handler_->Submit(both, "r-3");
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->response.lead_id(), by_email->response.lead_id());
  EXPECT_TRUE(outcome->response.merged_lead_ids().empty()) << "history is never merged";
  absl::StatusOr<std::optional<events::v1::LeadProfile>> stored = store_->LoadProfile(b);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_FALSE(IsMergeRedirect(**stored));
  EXPECT_TRUE(IsConverted(**stored));
  absl::StatusOr<std::optional<std::string>> phone_owner =
      store_->LookupIndex(CaptureStore::PhoneIndexKey("+442079460958"));
  ASSERT_TRUE(phone_owner.ok() && phone_owner->has_value());
  EXPECT_EQ(**phone_owner, b) << "the phone stays with the converted lead";
}

TEST_F(CaptureHandlerTest, AWonOutcomeOfAnAbsorbedLeadConvertsTheSurvivor) {
  ASSERT_TRUE(handler_->Submit(Jane("r-1"), "r-1").ok());
  absl::StatusOr<SubmitOutcome> by_phone = handler_->Submit(MaxByPhone("r-2"), "r-2");
  ASSERT_TRUE(by_phone.ok());
  const std::string b = by_phone->response.lead_id();
  LeadSubmission both = Jane("r-3");
  both.set_phone("+44 20 7946 0958");
  absl::StatusOr<SubmitOutcome> merged = handler_->Submit(both, "r-3");
  ASSERT_TRUE(merged.ok());
  const std::string a = merged->response.lead_id();

  // A rep who had B's lead wins the deal after the merge.
  const kafka::ConsumedMessage message = Won(b, "won-b");
  ASSERT_TRUE(handler_->HandleOutcome(message).ok());
  ASSERT_TRUE(handler_->HandleOutcome(message).ok());
  absl::StatusOr<std::optional<events::v1::LeadProfile>> survivor = store_->LoadProfile(a);
  ASSERT_TRUE(survivor.ok() && survivor->has_value());
  EXPECT_TRUE(IsConverted(**survivor));
  EXPECT_EQ((*survivor)->contact_id(), a);
  absl::StatusOr<std::optional<events::v1::LeadProfile>> redirect = store_->LoadProfile(b);
  ASSERT_TRUE(redirect.ok() && redirect->has_value());
  EXPECT_TRUE(IsMergeRedirect(**redirect)) << "the redirect stays a redirect";
  EXPECT_FALSE(IsConverted(**redirect));
}

TEST_F(CaptureHandlerTest, ConcurrentSubmissionsProvingOnePersonMergeExactlyOnce) {
  absl::StatusOr<SubmitOutcome> by_email = handler_->Submit(Jane("r-1"), "r-1");
  ASSERT_TRUE(by_email.ok());
  absl::StatusOr<SubmitOutcome> by_phone = handler_->Submit(MaxByPhone("r-2"), "r-2");
  ASSERT_TRUE(by_phone.ok());
  const std::string a = by_email->response.lead_id();
  const std::string b = by_phone->response.lead_id();

  // Each thread its own connection, store and handler: replicas racing on one Redis.
  constexpr int kThreads = 6;
  std::vector<absl::StatusOr<SubmitOutcome>> results(kThreads, absl::UnknownError("not run"));
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        redis::HiredisClient client(*redis::ParseRedisAddress(redis_->address()));
        CaptureStore store(client);
        CaptureHandler handler(*normalizer_, store, topics_, clock_, registry_);
        LeadSubmission both = Jane(absl::StrCat("c-", i));
        both.set_phone("+44 20 7946 0958");
        both.set_job_title(absl::StrCat("Title ", i));
        results[i] = handler.Submit(both, absl::StrCat("c-", i));
      });
    }
    for (std::thread& t : threads) t.join();
  }
  int merges = 0;
  for (const absl::StatusOr<SubmitOutcome>& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->response.lead_id(), a);
    if (!r->response.merged_lead_ids().empty()) {
      ++merges;
      EXPECT_THAT(r->response.merged_lead_ids(), ::testing::ElementsAre(b));
    }
  }
  EXPECT_EQ(merges, 1) << "B is absorbed exactly once";
  absl::StatusOr<std::optional<events::v1::LeadProfile>> redirect = store_->LoadProfile(b);
  ASSERT_TRUE(redirect.ok() && redirect->has_value());
  EXPECT_EQ((*redirect)->merged_into_lead_id(), a);
  absl::StatusOr<std::optional<std::string>> phone_owner =
      store_->LookupIndex(CaptureStore::PhoneIndexKey("+442079460958"));
  ASSERT_TRUE(phone_owner.ok() && phone_owner->has_value());
  EXPECT_EQ(**phone_owner, a);
}

TEST_F(CaptureHandlerTest, TheFuzzyThresholdDecidesWhetherASimilarNameMerges) {
  LeadSubmission jon = Jane("r-1");
  jon.set_first_name("Jon");
  jon.set_email("jon.doe@acme-widgets.com");
  ASSERT_TRUE(handler_->Submit(jon, "r-1").ok());
  LeadSubmission john = Jane("r-2");
  john.set_first_name("John");
  john.set_email("john.doe@acme-widgets.com");

  prometheus::Registry strict_registry;
  CaptureHandler strict(*normalizer_, *store_, topics_, clock_, strict_registry,
                        CaptureOptions{.fuzzy_threshold = 0.99});
  absl::StatusOr<SubmitOutcome> apart = strict.Submit(john, "r-2");
  ASSERT_TRUE(apart.ok());
  EXPECT_TRUE(apart->response.created()) << "0.99 keeps Jon and John apart";

  // Without the strict handler's lead, the default handler merges John into Jon.
  ASSERT_TRUE(store_->Erase(apart->response.lead_id()).ok());
  john.set_request_id("r-3");
  absl::StatusOr<SubmitOutcome> merged = handler_->Submit(john, "r-3");
  ASSERT_TRUE(merged.ok());
  EXPECT_FALSE(merged->response.created()) << "the default 0.92 merges them";
  EXPECT_EQ(merged->response.match().key(), "fuzzy_name");
}

// A company's leads are blocked by the sound of their names, so a look-alike is found however
// many colleagues it has: a sample of the company's leads (as blocking once took) would miss it
// three times in four here.
TEST_F(CaptureHandlerTest, AFuzzyDuplicateIsFoundAmongTwoHundredColleagues) {
  const char* const syllables[] = {"ba", "ko", "mi", "ru", "te", "zo", "la", "ni"};
  for (int i = 0; i < 200; ++i) {
    LeadSubmission colleague = Jane(absl::StrCat("r-colleague-", i));
    colleague.set_first_name(absl::StrCat(syllables[i % 8], syllables[(i / 8) % 8], "n"));
    colleague.set_last_name(absl::StrCat(syllables[(i / 64) % 8], syllables[i % 7], "ck"));
    colleague.set_email(absl::StrCat("colleague.", i, "@acme-widgets.com"));
    ASSERT_TRUE(handler_->Submit(colleague, colleague.request_id()).ok());
  }
  absl::StatusOr<SubmitOutcome> jane = handler_->Submit(Jane("r-jane"), "r-jane");
  ASSERT_TRUE(jane.ok());
  ASSERT_TRUE(jane->response.created());

  LeadSubmission again = Jane("r-jayne");
  again.set_first_name("Jayne");
  again.set_email("jayne.d@gmail.com");
  absl::StatusOr<SubmitOutcome> merged = handler_->Submit(again, "r-jayne");
  ASSERT_TRUE(merged.ok());
  EXPECT_FALSE(merged->response.created());
  EXPECT_EQ(merged->response.lead_id(), jane->response.lead_id());
  EXPECT_EQ(merged->response.match().key(), "fuzzy_name");
}

// Blocks as large as a big company makes them: 300 colleagues whose first names sound like
// Jane's and 300 whose last names sound like Doe's. Jane, in both blocks, is still found for
// her look-alike: the two blocks' intersection is read whole (a sample of 50 of each would miss
// her more than two times in three).
TEST_F(CaptureHandlerTest, AFullNameLookAlikeIsFoundHoweverLargeItsBlocks) {
  const char* const syllables[] = {"ba", "ko", "mi", "ru", "te", "zo", "la", "ni"};
  const char* const like_jane[] = {"Jon", "John", "Joan", "Jean", "Juan", "June", "Jenny"};
  const char* const like_doe[] = {"Day", "Dow", "Dye", "Dewey"};
  std::vector<LeadSubmission> colleagues;
  for (int i = 0; i < 300; ++i) {
    const std::string made_up =
        absl::StrCat(syllables[i % 8], syllables[(i / 8) % 8], syllables[(i / 64) % 8], "k");
    LeadSubmission first_alike = Jane(absl::StrCat("r-first-", i));
    first_alike.set_first_name(like_jane[i % 7]);
    first_alike.set_last_name(made_up);
    first_alike.set_email(absl::StrCat("first.", i, "@acme-widgets.com"));
    colleagues.push_back(first_alike);
    LeadSubmission last_alike = Jane(absl::StrCat("r-last-", i));
    last_alike.set_first_name(made_up);
    last_alike.set_last_name(like_doe[i % 4]);
    last_alike.set_email(absl::StrCat("last.", i, "@acme-widgets.com"));
    colleagues.push_back(last_alike);
  }
  std::vector<const LeadSubmission*> batch;
  std::vector<std::string> request_ids;
  for (const LeadSubmission& c : colleagues) {
    batch.push_back(&c);
    request_ids.push_back(c.request_id());
  }
  for (const absl::StatusOr<SubmitOutcome>& outcome : handler_->SubmitBatch(batch, request_ids)) {
    ASSERT_TRUE(outcome.ok()) << outcome.status();
  }
  absl::StatusOr<SubmitOutcome> jane = handler_->Submit(Jane("r-jane"), "r-jane");
  ASSERT_TRUE(jane.ok());
  ASSERT_TRUE(jane->response.created());
  const NormalizedSubmission norm = *normalizer_->Normalize(Jane("r-jane"), kStart);
  for (const std::string& k : CaptureStore::BlockKeysFor(norm)) {
    if (!absl::StartsWith(k, "capture:block:company:")) continue;
    absl::StatusOr<redis::Reply> size = client_->Command({"SCARD", k});
    ASSERT_TRUE(size.ok());
    EXPECT_GT(size->integer, 150) << k;  // the blocks are as large as the test means them
  }

  LeadSubmission again = Jane("r-jayne");
  again.set_first_name("Jayne");
  again.set_email("jayne.d@gmail.com");
  absl::StatusOr<SubmitOutcome> merged = handler_->Submit(again, "r-jayne");
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(merged->response.lead_id(), jane->response.lead_id());
  EXPECT_EQ(merged->response.match().key(), "fuzzy_name");
}

// A merge that changes the lead's name or company moves it to the new blocks: no set keeps its
// id once it is erased.
TEST_F(CaptureHandlerTest, AMergeThatRenamesTheLeadMovesItsBlocks) {
  absl::StatusOr<SubmitOutcome> first = handler_->Submit(Jane("r-1"), "r-1");
  ASSERT_TRUE(first.ok());
  const std::string lead_id = first->response.lead_id();
  const std::vector<std::string> old_blocks = CaptureStore::BlockKeysOf(first->response.lead());
  ASSERT_FALSE(old_blocks.empty());

  LeadSubmission renamed = Jane("r-2");  // the same e-mail: the same lead
  renamed.set_last_name("Smith");
  renamed.set_company("Globex Corp");
  absl::StatusOr<SubmitOutcome> second = handler_->Submit(renamed, "r-2");
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->response.lead_id(), lead_id);
  const std::vector<std::string> new_blocks = CaptureStore::BlockKeysOf(second->response.lead());
  for (const std::string& k : new_blocks) {
    absl::StatusOr<redis::Reply> member = client_->Command({"SISMEMBER", k, lead_id});
    ASSERT_TRUE(member.ok());
    EXPECT_EQ(member->integer, 1) << k;
  }
  for (const std::string& k : old_blocks) {
    if (std::find(new_blocks.begin(), new_blocks.end(), k) != new_blocks.end()) continue;
    absl::StatusOr<redis::Reply> member = client_->Command({"SISMEMBER", k, lead_id});
    ASSERT_TRUE(member.ok());
    EXPECT_EQ(member->integer, 0) << "still in " << k;
  }

  ASSERT_TRUE(store_->Erase(lead_id).ok());
  EXPECT_THAT(Keys("capture:block:*"), ::testing::IsEmpty());
}

TEST_F(CaptureHandlerTest, MetricsCountOutcomesMatchKeysAndCandidates) {
  ASSERT_TRUE(handler_->Submit(Jane("r-1"), "r-1").ok());  // created
  ASSERT_TRUE(handler_->Submit(Jane("r-1"), "r-1").ok());  // the same request: a duplicate
  LeadSubmission again = Jane("r-2");                      // the same e-mail: merged
  again.set_job_title("CMO");
  LeadSubmission bad = Jane("r-3");
  bad.set_email("not-an-address");
  bad.clear_phone();
  std::vector<const LeadSubmission*> batch = {&again, &bad};
  std::vector<absl::StatusOr<SubmitOutcome>> results = handler_->SubmitBatch(batch, {"r-2", "r-3"});
  ASSERT_TRUE(results[0].ok());
  ASSERT_TRUE(absl::IsInvalidArgument(results[1].status()));

  auto submissions = [this](const std::string& outcome) {
    return testing::MetricValue(registry_, "leadflow_capture_submissions_total",
                                {{"outcome", outcome}});
  };
  EXPECT_EQ(submissions("created"), 1);
  EXPECT_EQ(submissions("duplicate"), 1);
  EXPECT_EQ(submissions("merged"), 1);
  EXPECT_EQ(submissions("rejected"), 1);
  EXPECT_EQ(testing::MetricValue(registry_, "leadflow_capture_matches_total", {{"key", "email"}}),
            1);
  EXPECT_EQ(testing::MetricValue(registry_, "leadflow_capture_leads_absorbed_total"), 0);
}

TEST_F(CaptureHandlerTest, InvalidInputIsRejectedWithEveryFieldViolation) {
  LeadSubmission bad;
  bad.set_source("carrier_pigeon");
  bad.set_email("not-an-address");
  absl::StatusOr<SubmitOutcome> outcome = handler_->Submit(bad, "r-bad");
  ASSERT_TRUE(absl::IsInvalidArgument(outcome.status()));
  std::vector<std::string> fields;
  const google::rpc::BadRequest violations = grpc_util::ViolationsOf(outcome.status());
  for (const auto& v : violations.field_violations()) {
    fields.push_back(v.field());
  }
  EXPECT_THAT(fields, ::testing::IsSupersetOf({"source", "email"}));
  EXPECT_TRUE(Keys("*").empty()) << "nothing stored for rejected input";
}

TEST_F(CaptureHandlerTest, ErasureDeletesEveryKeyOfTheLead) {
  LeadSubmission s = Jane("r-1");
  s.set_phone("+44 20 7946 0958");
  s.set_external_id("crm-7");
  absl::StatusOr<SubmitOutcome> outcome = handler_->Submit(s, "r-1");
  ASSERT_TRUE(outcome.ok());
  const std::string lead_id = outcome->response.lead_id();
  events::v1::LeadErasure erasure;
  erasure.mutable_envelope()->set_lead_id(lead_id);
  kafka::OutboundMessage m = events::Encode("test.leads.erasure", lead_id, erasure);
  kafka::ConsumedMessage consumed{"test.leads.erasure", 0, 1, lead_id, m.value, m.headers};
  ASSERT_TRUE(handler_->HandleErasure(consumed).ok());

  for (const std::string& key : Keys("*")) {
    EXPECT_EQ(key, "capture:{" + lead_id + "}:erased") << "left behind: " << key;
  }
  absl::StatusOr<std::optional<events::v1::LeadProfile>> stored = store_->LoadProfile(lead_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
}

}  // namespace
}  // namespace leadflow::capture

namespace leadflow::capture {
namespace {

LeadSubmission Person(const std::string& request_id, const std::string& email,
                      const std::string& first_name) {
  LeadSubmission s = Jane(request_id);
  s.set_email(email);
  s.set_first_name(first_name);
  s.set_company(first_name + " Industries");
  return s;
}

TEST_F(CaptureHandlerTest, ABatchCapturesEverySubmissionOnceAndTheSamePersonTwiceAsOneLead) {
  const LeadSubmission ann = Person("r-ann", "ann@alpha.example", "Ann");
  const LeadSubmission bob = Person("r-bob", "bob@beta.example", "Bob");
  LeadSubmission ann_again = Person("r-ann-2", "ANN@alpha.example", "Ann");
  ann_again.set_phone("+44 20 7946 0958");
  LeadSubmission bad;
  bad.set_source("carrier_pigeon");
  const std::vector<const LeadSubmission*> batch = {&ann, &bob, &ann_again, &bad, &ann};
  const std::vector<std::string> request_ids = {"r-ann", "r-bob", "r-ann-2", "r-bad", "r-ann"};
  const std::vector<absl::StatusOr<SubmitOutcome>> results =
      handler_->SubmitBatch(batch, request_ids);
  ASSERT_EQ(results.size(), batch.size());
  for (size_t i : {0, 1, 2, 4}) ASSERT_TRUE(results[i].ok()) << i << results[i].status();
  EXPECT_TRUE(absl::IsInvalidArgument(results[3].status()));

  EXPECT_TRUE(results[0]->response.created());
  EXPECT_TRUE(results[1]->response.created());
  EXPECT_NE(results[0]->response.lead_id(), results[1]->response.lead_id());
  // Ann's second submission, in the same batch, found the lead her first one created.
  EXPECT_FALSE(results[2]->response.created());
  EXPECT_EQ(results[2]->response.lead_id(), results[0]->response.lead_id());
  EXPECT_EQ(EventOf(*results[2]).change(), LeadCaptured::CHANGE_UPDATED);
  EXPECT_EQ(EventOf(*results[2]).match().key(), "email");
  // The repeated request id answers with the original result.
  EXPECT_TRUE(results[4]->response.duplicate_request());
  EXPECT_EQ(results[4]->response.lead_id(), results[0]->response.lead_id());
  EXPECT_EQ(Keys("capture:{*}:profile").size(), 2u) << "two people, two leads";

  // The same submissions one by one afterwards: each the original result, nothing new.
  for (size_t i : {0, 1, 2}) {
    absl::StatusOr<SubmitOutcome> alone = handler_->Submit(*batch[i], request_ids[i]);
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_TRUE(alone->response.duplicate_request());
    EXPECT_EQ(alone->response.lead_id(), results[i]->response.lead_id());
    ASSERT_EQ(alone->outputs.size(), results[i]->outputs.size());
    EXPECT_EQ(alone->outputs[0].value, results[i]->outputs[0].value);
  }
  absl::StatusOr<std::optional<events::v1::LeadProfile>> stored =
      store_->LoadProfile(results[0]->response.lead_id());
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->phone(), "+442079460958");
}

TEST_F(CaptureHandlerTest, TheKafkaBatchRouteGivesEachMessageItsOneByOneResult) {
  std::vector<kafka::ConsumedMessage> messages;
  int64_t offset = 0;
  for (const LeadSubmission& s :
       {Person("", "cy@gamma.example", "Cy"), Person("", "di@delta.example", "Di")}) {
    kafka::OutboundMessage m = events::Encode("test.leads.inbound", s.email(), s);
    messages.push_back({"test.leads.inbound", 0, offset++, m.key, m.value, m.headers});
  }
  messages.push_back({"test.leads.inbound", 0, offset++, "k", "{not json", {}});
  std::vector<const kafka::ConsumedMessage*> batch;
  for (const kafka::ConsumedMessage& m : messages) batch.push_back(&m);
  const std::vector<kafka::HandleResult> results = handler_->HandleInboundBatch(batch);
  ASSERT_EQ(results.size(), 3u);
  ASSERT_TRUE(results[0].ok() && results[1].ok());
  EXPECT_TRUE(kafka::IsPoison(results[2].status())) << results[2].status();
  for (size_t i : {0, 1}) {
    // Redelivered alone: the position is the request id, so the same event again.
    absl::StatusOr<std::vector<kafka::OutboundMessage>> alone =
        handler_->HandleInbound(messages[i]);
    ASSERT_TRUE(alone.ok()) << alone.status();
    ASSERT_EQ(alone->size(), 1u);
    ASSERT_EQ(results[i]->size(), 1u);
    EXPECT_EQ((*alone)[0].value, (*results[i])[0].value);
  }
}

TEST_F(CaptureHandlerTest, AWaveSplitOverLanesCapturesEachPersonOnceWhicheverLaneSawThemFirst) {
  // 32 people in the wave's first half and the same 32 again, other keys, casing and title, in
  // its second half: with two lanes the halves run side by side and race on every person's
  // index.
  constexpr int kPeople = 32;
  std::vector<kafka::ConsumedMessage> messages;
  int64_t offset = 0;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kPeople; ++i) {
      const std::string name = absl::StrCat("Person", i);
      std::string email = absl::StrCat("person", i, "@firm", i, ".example");
      if (round == 1) email = absl::AsciiStrToUpper(email);
      LeadSubmission s = Person("", email, name);
      s.set_last_name(absl::StrCat("Surname", i));
      // Each round changes a field, so whichever lands second is a merge with an update event.
      s.set_job_title(round == 0 ? "Engineer" : "Director");
      kafka::OutboundMessage m =
          events::Encode("test.leads.inbound", absl::StrCat(round, "-", i), s);
      messages.push_back({"test.leads.inbound", 0, offset++, m.key, m.value, m.headers});
    }
  }
  std::vector<const kafka::ConsumedMessage*> batch;
  for (const kafka::ConsumedMessage& m : messages) batch.push_back(&m);
  // As services/capture/app.cc routes leads.inbound, then as the consumer loop finishes what the
  // batch did not: one by one, retrying transient failures.
  std::vector<kafka::HandleResult> results = kafka::HandleInKeyWaves(
      batch, kafka::InLanes(
                 2,
                 [&](const std::vector<const kafka::ConsumedMessage*>& wave) {
                   return handler_->HandleInboundBatch(wave);
                 },
                 16));
  int finished_alone = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i < results.size() && !kafka::IsTransient(results[i].status())) continue;
    ++finished_alone;
    absl::StatusOr<std::vector<kafka::OutboundMessage>> alone;
    for (int attempt = 0; attempt < 10; ++attempt) {
      alone = handler_->HandleInbound(messages[i]);
      if (!kafka::IsTransient(alone.status())) break;
    }
    if (i < results.size()) {
      results[i] = std::move(alone);
    } else {
      results.push_back(std::move(alone));
    }
  }
  ASSERT_EQ(results.size(), messages.size());
  std::vector<std::string> lead_of(messages.size());
  int created = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << i << " " << results[i].status();
    ASSERT_EQ(results[i]->size(), 1u) << i;
    LeadCaptured event;
    ASSERT_TRUE(events::Decode(testing::Consumed((*results[i])[0]), &event).ok());
    lead_of[i] = event.lead().lead_id();
    if (event.change() == LeadCaptured::CHANGE_CREATED) ++created;
  }
  for (int i = 0; i < kPeople; ++i) EXPECT_EQ(lead_of[i], lead_of[kPeople + i]) << i;
  EXPECT_EQ(created, kPeople);
  EXPECT_EQ(Keys("capture:{*}:profile").size(), static_cast<size_t>(kPeople))
      << "one lead per person, none absorbed";
  RecordProperty("finished_alone", finished_alone);
}

// Capture's outbox (CaptureGrpcService): a lead stored whose event the broker never
// acknowledged — the broker refused it, or capture died between storing the lead and the
// acknowledgement — gets its event re-sent, the same event with the same id, without waiting
// for the client to retry (ResendUnacknowledged). The producer is the fake one, acknowledging
// (or refusing) at once.
class CaptureOutboxTest : public CaptureHandlerTest {
 protected:
  static constexpr absl::Duration kGrace = absl::Seconds(60);

  void SetUp() override {
    CaptureHandlerTest::SetUp();
    grpc_ = std::make_unique<CaptureGrpcService>(*handler_, *store_, *normalizer_, producer_,
                                                 registry_);
  }

  grpc::Status SubmitLead(const LeadSubmission& submission,
                          capture::v1::SubmitLeadResponse* response) {
    capture::v1::SubmitLeadRequest request;
    *request.mutable_submission() = submission;
    grpc::ServerContext context;  // unused: every submission here carries its request id
    return grpc_->SubmitLead(&context, &request, response);
  }
  int Resend() {
    absl::StatusOr<int> resent = grpc_->ResendUnacknowledged(clock_.Now(), kGrace);
    EXPECT_TRUE(resent.ok()) << resent.status();
    return resent.ok() ? *resent : -1;
  }
  int64_t OutboxSize() {
    absl::StatusOr<redis::Reply> n = client_->Command({"ZCARD", CaptureStore::OutboxKey()});
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? n->integer : -1;
  }
  // The event ids of the leads.captured events the broker acknowledged, in order.
  std::vector<std::string> AcknowledgedEventIds() {
    std::vector<std::string> ids;
    for (const testing::FakeProducer::Sent& sent : producer_.sent()) {
      if (sent.delivery != absl::OkStatus()) continue;
      LeadCaptured event;
      EXPECT_TRUE(event.ParseFromString(sent.message.value));
      ids.push_back(event.envelope().event_id());
    }
    return ids;
  }

  testing::FakeProducer producer_;
  std::unique_ptr<CaptureGrpcService> grpc_;
};

TEST_F(CaptureOutboxTest, AnEventTheBrokerRefusedIsResentAfterTheGraceWithoutTheClientRetrying) {
  producer_.FailDeliveries(1, absl::UnavailableError("Local: Message timed out"));
  capture::v1::SubmitLeadResponse response;
  const grpc::Status refused = SubmitLead(Jane("form-1"), &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_EQ(OutboxSize(), 1);

  clock_.Advance(kGrace - absl::Seconds(1));
  EXPECT_EQ(Resend(), 0);
  EXPECT_THAT(AcknowledgedEventIds(), ::testing::IsEmpty());
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Resend(), 1);
  EXPECT_THAT(AcknowledgedEventIds(),
              ::testing::ElementsAre(events::DeriveEventId("captured", "form-1")));
  EXPECT_EQ(OutboxSize(), 0);
  EXPECT_EQ(testing::MetricValue(registry_, "leadflow_capture_outbox_resent_total"), 1);
  absl::StatusOr<bool> sent = store_->WasSent("form-1");
  ASSERT_TRUE(sent.ok());
  EXPECT_TRUE(*sent);
  // Done: never again, and the client's own retry now answers without sending.
  clock_.Advance(kGrace * 3);
  EXPECT_EQ(Resend(), 0);
  ASSERT_TRUE(SubmitLead(Jane("form-1"), &response).ok());
  EXPECT_TRUE(response.duplicate_request());
  EXPECT_THAT(AcknowledgedEventIds(), ::testing::SizeIs(1));
}

TEST_F(CaptureOutboxTest, AResendTheBrokerRefusesAgainIsTriedAgainAfterAnotherGrace) {
  producer_.FailDeliveries(2, absl::UnavailableError("Local: Message timed out"));
  capture::v1::SubmitLeadResponse response;
  EXPECT_FALSE(SubmitLead(Jane("form-2"), &response).ok());
  clock_.Advance(kGrace);
  EXPECT_EQ(Resend(), 0);  // refused again
  EXPECT_EQ(OutboxSize(), 1);
  EXPECT_EQ(Resend(), 0);  // re-sent just now: not before another grace
  clock_.Advance(kGrace);
  EXPECT_EQ(Resend(), 1);
  EXPECT_THAT(AcknowledgedEventIds(), ::testing::SizeIs(1));
  EXPECT_EQ(OutboxSize(), 0);
}

// Capture died after storing the lead and before the broker acknowledged its event: another
// replica (here the same store) re-sends it.
TEST_F(CaptureOutboxTest, ALeadStoredByAReplicaThatDiedBeforeItsAcknowledgementGetsItsEvent) {
  ASSERT_TRUE(store_->outbox().Add({"form-3"}, clock_.Now()).ok());
  absl::StatusOr<SubmitOutcome> stored = handler_->Submit(Jane("form-3"), "form-3");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_THAT(stored->outputs, ::testing::SizeIs(1));  // never sent: the process is gone
  prometheus::Registry other_registry;
  CaptureGrpcService other(*handler_, *store_, *normalizer_, producer_, other_registry);
  clock_.Advance(kGrace);
  absl::StatusOr<int> resent = other.ResendUnacknowledged(clock_.Now(), kGrace);
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(*resent, 1);
  EXPECT_THAT(AcknowledgedEventIds(),
              ::testing::ElementsAre(events::DeriveEventId("captured", "form-3")));
}

TEST_F(CaptureOutboxTest, WhatIsAcknowledgedRejectedOrStoredNothingLeavesNoEntry) {
  capture::v1::SubmitLeadResponse response;
  ASSERT_TRUE(SubmitLead(Jane("form-4"), &response).ok());
  EXPECT_EQ(OutboxSize(), 0);
  ASSERT_TRUE(SubmitLead(Jane("form-4"), &response).ok());  // a double submit: nothing to send
  EXPECT_EQ(OutboxSize(), 0);
  LeadSubmission invalid = Jane("form-5");
  invalid.clear_email();
  EXPECT_EQ(SubmitLead(invalid, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(OutboxSize(), 0);

  // Died between the outbox entry and storing anything; and a lead erased before its resend.
  ASSERT_TRUE(store_->outbox().Add({"form-6"}, clock_.Now()).ok());
  ASSERT_TRUE(store_->outbox().Add({"form-7"}, clock_.Now()).ok());
  LeadSubmission erased = Jane("form-7");
  erased.set_email("erase.me@other.example");
  absl::StatusOr<SubmitOutcome> stored = handler_->Submit(erased, "form-7");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_TRUE(store_->Erase(stored->response.lead_id()).ok());
  clock_.Advance(kGrace);
  EXPECT_EQ(Resend(), 0);
  EXPECT_EQ(OutboxSize(), 0);
  EXPECT_THAT(AcknowledgedEventIds(), ::testing::SizeIs(1));  // form-4's, nothing else
}

}  // namespace
}  // namespace leadflow::capture
