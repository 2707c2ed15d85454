// Tests for the nurturing engine: track choice, exits, step planning (due times, consent, quiet
// hours, frequency cap), touch ids and contents, validation, and the default track file.
#include "services/nurturing/engine.h"

#include <set>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/config/yaml_proto.h"
#include "common/rules/time_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace leadflow::nurturing {
namespace {

using config::v1::NurtureTracks;
using config::v1::Track;
using events::v1::LeadProfile;
using events::v1::ScoreSnapshot;
using ::testing::HasSubstr;

absl::Time Utc(int y, int m, int d, int hh, int mm) {
  return absl::FromCivil(absl::CivilMinute(y, m, d, hh, mm), absl::UTCTimeZone());
}

absl::Time Local(const char* zone_name, int y, int m, int d, int hh, int mm) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone(zone_name, &zone));
  return absl::FromCivil(absl::CivilMinute(y, m, d, hh, mm), zone);
}

// Monday 3 June 2024, 10:00 UTC: outside quiet hours in UTC.
const absl::Time kEnrolled = Utc(2024, 6, 3, 10, 0);

template <typename T>
T ParseText(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

// --- The YAML defaults, read by the config loader the services use. ---

template <typename T>
absl::StatusOr<T> LoadYamlConfig(const std::string& relative_path) {
  T message;
  if (absl::Status s =
          config::LoadYamlProto(std::string(LEADFLOW_SOURCE_DIR) + "/" + relative_path, &message);
      !s.ok()) {
    return s;
  }
  return message;
}

// --- Fixtures. ---

constexpr char kTracks[] = R"pb(
  version: "test-1"
  tracks {
    id: "catch-all"
    priority: 0
    steps { channel: CHANNEL_NEWSLETTER content_id: "newsletter" }
  }
  tracks {
    id: "cold"
    priority: 10
    enroll_when { field: "category" equals: "cold" }
    steps { channel: CHANNEL_EMAIL content_id: "w1" delay_hours: 0 }
    steps { channel: CHANNEL_EMAIL content_id: "w2" delay_hours: 72 }
    steps { channel: CHANNEL_EMAIL content_id: "w3" delay_hours: 168 }
    steps { channel: CHANNEL_EMAIL content_id: "w4" delay_hours: 336 }
  }
  tracks {
    id: "warm"
    priority: 20
    enroll_when { field: "category" equals: "warm" }
    steps { channel: CHANNEL_EMAIL content_id: "case-study" }
    steps { channel: CHANNEL_SMS content_id: "demo-sms" delay_hours: 48 }
  }
  tracks {
    id: "cold-decision-makers"
    priority: 10
    enroll_when { field: "category" equals: "cold" }
    enroll_when { field: "segments" equals: "decision-makers" }
    steps { channel: CHANNEL_EMAIL content_id: "exec-brief" }
  }
  tracks {
    id: "lost"
    priority: 30
    enroll_when { field: "stage" equals: "lost" }
    steps { channel: CHANNEL_EMAIL content_id: "recycle" delay_hours: 720 }
  }
)pb";

std::shared_ptr<const CompiledNurtureTracks> Compile(const std::string& text) {
  auto compiled = CompileNurtureTracks(ParseText<NurtureTracks>(text));
  EXPECT_TRUE(compiled.ok()) << compiled.status();
  return compiled.ok() ? *compiled : nullptr;
}

// A lead who consented to e-mail, in UTC.
LeadProfile EmailLead() {
  return ParseText<LeadProfile>(R"pb(
    lead_id: "L-42"
    email: "ada@shoeco.co.uk"
    phone: "+447700900123"
    first_name: "Ada"
    last_name: "Lovelace"
    company: "ShoeCo"
    interests: [ "shoes", "boots" ]
    time_zone: "UTC"
    consents {
      channel: CHANNEL_EMAIL
      granted: true
      at { seconds: 1700000000 }
    }
  )pb");
}

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return bytes;
}

Track OneStep(const std::string& step) {
  return ParseText<Track>("id: \"t\" steps { " + step + " }");
}

// --- Choosing a track. ---

struct ChooseCase {
  std::string name;
  std::string score;
  std::optional<std::string> track;
};

TEST(ChooseTrackTest, TheHighestPriorityMatchingTrackWins) {
  const auto tracks = Compile(kTracks);
  const std::vector<ChooseCase> cases = {
      {"cold lead", R"pb(category: CATEGORY_COLD)pb", "cold"},
      {"warm lead", R"pb(category: CATEGORY_WARM)pb", "warm"},
      {"lost beats warm by priority", R"pb(category: CATEGORY_WARM stage: STAGE_LOST)pb", "lost"},
      {"equal priorities keep file order",
       R"pb(category: CATEGORY_COLD segments: "decision-makers")pb", "cold"},
      {"a track without conditions takes the rest", R"pb(category: CATEGORY_QUALIFIED)pb",
       "catch-all"},
  };
  for (const ChooseCase& c : cases) {
    EXPECT_EQ(ChooseTrack(*tracks, EmailLead(), ParseText<ScoreSnapshot>(c.score)), c.track)
        << c.name;
  }
  const auto no_catch_all = Compile(R"pb(
    tracks {
      id: "cold"
      enroll_when { field: "category" equals: "cold" }
      steps { channel: CHANNEL_EMAIL content_id: "w1" }
    }
  )pb");
  EXPECT_EQ(
      ChooseTrack(*no_catch_all, EmailLead(), ParseText<ScoreSnapshot>("category: CATEGORY_WARM")),
      std::nullopt);
}

// --- Exits. ---

struct ExitCase {
  std::string name;
  std::string score;
  bool do_not_contact;
  ExitReason expected;
};

TEST(ShouldExitTest, LeadsLeaveWhenSalesHasThemOrTheyConvertOrOptOut) {
  const std::vector<ExitCase> cases = {
      {"cold lead stays", R"pb(category: CATEGORY_COLD stage: STAGE_ENGAGED)pb", false,
       ExitReason::kNone},
      {"qualified lead stays", R"pb(category: CATEGORY_QUALIFIED stage: STAGE_QUALIFIED)pb", false,
       ExitReason::kNone},
      {"sales-ready lead leaves", R"pb(category: CATEGORY_SALES_READY stage: STAGE_QUALIFIED)pb",
       false, ExitReason::kSalesReady},
      {"contacted by a rep", R"pb(category: CATEGORY_WARM stage: STAGE_CONTACTED)pb", false,
       ExitReason::kWithSales},
      {"open opportunity", R"pb(category: CATEGORY_WARM stage: STAGE_OPPORTUNITY)pb", false,
       ExitReason::kWithSales},
      {"customer converted", R"pb(category: CATEGORY_SALES_READY stage: STAGE_CUSTOMER)pb", false,
       ExitReason::kConverted},
      {"do not contact wins over everything", R"pb(category: CATEGORY_SALES_READY
                                                   stage: STAGE_CUSTOMER)pb",
       true, ExitReason::kDoNotContact},
      {"a lost lead is nurtured even with a sales-ready score",
       R"pb(category: CATEGORY_SALES_READY stage: STAGE_LOST)pb", false, ExitReason::kNone},
  };
  for (const ExitCase& c : cases) {
    LeadProfile lead = EmailLead();
    lead.set_do_not_contact(c.do_not_contact);
    EXPECT_EQ(ShouldExit(ParseText<ScoreSnapshot>(c.score), lead), c.expected) << c.name;
  }
  EXPECT_EQ(ExitReasonName(ExitReason::kSalesReady), "sales_ready");
  EXPECT_EQ(ExitReasonName(ExitReason::kDoNotContact), "do_not_contact");
}

// --- Planning steps. ---

TEST(PlanStepTest, AFourStepTrackFallsDueAfterEachDelay) {
  const auto tracks = Compile(kTracks);
  const Track& cold = *tracks->FindTrack("cold");
  const std::vector<absl::Time> expected_due = {
      kEnrolled,                     // 0 h
      kEnrolled + absl::Hours(72),   // +72 h
      kEnrolled + absl::Hours(240),  // +168 h
      kEnrolled + absl::Hours(576),  // +336 h
  };
  absl::Time previous = kEnrolled;
  for (int step = 0; step < 4; ++step) {
    // Asked just before the step is due, it is deferred to exactly its due time...
    const StepPlan early = PlanStep(cold, step, previous, EmailLead(), DeliveryPolicy(),
                                    TouchHistory(), expected_due[step] - absl::Minutes(1));
    if (step > 0) {
      EXPECT_EQ(early.action, StepPlan::Action::kDefer) << step;
      EXPECT_EQ(early.send_at, expected_due[step]) << step;
    }
    // ...and sent when it is.
    const StepPlan plan = PlanStep(cold, step, previous, EmailLead(), DeliveryPolicy(),
                                   TouchHistory(), expected_due[step]);
    EXPECT_EQ(plan.action, StepPlan::Action::kSendNow) << step << ": " << plan.reason;
    EXPECT_EQ(plan.due_at, expected_due[step]) << step;
    previous = plan.due_at;
  }
  const StepPlan done = PlanStep(cold, 4, previous, EmailLead(), DeliveryPolicy(), TouchHistory(),
                                 previous + absl::Hours(1000));
  EXPECT_EQ(done.action, StepPlan::Action::kCompleted);
  EXPECT_EQ(done.reason, "track 'cold' finished after 4 steps");
}

TEST(PlanStepTest, ALateTimerSendsAtOnceWithoutShiftingTheSchedule) {
  const Track track = OneStep(R"pb(channel: CHANNEL_EMAIL content_id: "c" delay_hours: 72)pb");
  const absl::Time late = kEnrolled + absl::Hours(80);
  const StepPlan plan =
      PlanStep(track, 0, kEnrolled, EmailLead(), DeliveryPolicy(), TouchHistory(), late);
  EXPECT_EQ(plan.action, StepPlan::Action::kSendNow);
  EXPECT_EQ(plan.due_at, kEnrolled + absl::Hours(72));
  EXPECT_EQ(plan.send_at, late);
}

struct ConsentCase {
  std::string name;
  std::string step;
  std::string lead_change;  // text-format merged into EmailLead()
  bool clear_phone;
  StepPlan::Action expected;
  std::string reason;
};

TEST(PlanStepTest, StepsWithoutConsentOrAddressAreSkipped) {
  const std::vector<ConsentCase> cases = {
      {"e-mail with consent", R"pb(channel: CHANNEL_EMAIL content_id: "c")pb", "", false,
       StepPlan::Action::kSendNow, "step 0 (email) due"},
      {"SMS without any SMS consent record", R"pb(channel: CHANNEL_SMS content_id: "c")pb", "",
       false, StepPlan::Action::kSkip, "no sms consent"},
      {"SMS with consent", R"pb(channel: CHANNEL_SMS content_id: "c")pb",
       R"pb(consents { channel: CHANNEL_SMS granted: true })pb", false, StepPlan::Action::kSendNow,
       ""},
      {"SMS with consent but no phone number", R"pb(channel: CHANNEL_SMS content_id: "c")pb",
       R"pb(consents { channel: CHANNEL_SMS granted: true })pb", true, StepPlan::Action::kSkip,
       "no phone number for sms"},
      {"consent withdrawn later", R"pb(channel: CHANNEL_EMAIL content_id: "c")pb",
       R"pb(consents {
              channel: CHANNEL_EMAIL
              granted: false
              at { seconds: 1710000000 }
            })pb",
       false, StepPlan::Action::kSkip, "no email consent (withdrawn)"},
      {"newsletter needs its own consent", R"pb(channel: CHANNEL_NEWSLETTER content_id: "c")pb", "",
       false, StepPlan::Action::kSkip, "no newsletter consent"},
      {"do not contact overrides consent", R"pb(channel: CHANNEL_EMAIL content_id: "c")pb",
       R"pb(do_not_contact: true)pb", false, StepPlan::Action::kSkip,
       "lead asked not to be contacted"},
  };
  for (const ConsentCase& c : cases) {
    LeadProfile lead = EmailLead();
    ASSERT_TRUE(google::protobuf::TextFormat::MergeFromString(c.lead_change, &lead)) << c.name;
    if (c.clear_phone) lead.clear_phone();
    const StepPlan plan =
        PlanStep(OneStep(c.step), 0, kEnrolled, lead, DeliveryPolicy(), TouchHistory(), kEnrolled);
    EXPECT_EQ(plan.action, c.expected) << c.name << ": " << plan.reason;
    if (!c.reason.empty()) {
      EXPECT_EQ(plan.reason, c.reason) << c.name;
    }
    EXPECT_EQ(plan.due_at, kEnrolled) << c.name;
  }
}

TEST(PlanStepTest, ASkippedStepHandsOverToTheNextStepOnSchedule) {
  const auto tracks = Compile(kTracks);
  const Track& warm = *tracks->FindTrack("warm");  // e-mail, then SMS 48 h later
  LeadProfile lead = EmailLead();
  lead.clear_consents();
  lead.add_consents()->set_channel(events::v1::CHANNEL_SMS);
  lead.mutable_consents(0)->set_granted(true);
  const StepPlan first =
      PlanStep(warm, 0, kEnrolled, lead, DeliveryPolicy(), TouchHistory(), kEnrolled);
  EXPECT_EQ(first.action, StepPlan::Action::kSkip);
  const StepPlan second = PlanStep(warm, 1, first.due_at, lead, DeliveryPolicy(), TouchHistory(),
                                   kEnrolled + absl::Hours(48));
  EXPECT_EQ(second.action, StepPlan::Action::kSendNow) << second.reason;
  EXPECT_EQ(second.due_at, kEnrolled + absl::Hours(48));
}

struct QuietCase {
  std::string name;
  absl::Time now;
  StepPlan::Action action;
  absl::Time send_at;
};

TEST(PlanStepTest, QuietHoursDeferToEightInTheMorningInTheLeadsTimeZone) {
  LeadProfile lead = EmailLead();
  lead.set_time_zone("America/New_York");
  const Track track = OneStep(R"pb(channel: CHANNEL_EMAIL content_id: "c")pb");
  const char* ny = "America/New_York";
  const std::vector<QuietCase> cases = {
      {"22:00 in New York waits for 08:00 the next day", Local(ny, 2024, 6, 3, 22, 0),
       StepPlan::Action::kDefer, Local(ny, 2024, 6, 4, 8, 0)},
      {"02:00 UTC is 22:00 the previous evening in New York", Utc(2024, 6, 4, 2, 0),
       StepPlan::Action::kDefer, Utc(2024, 6, 4, 12, 0)},
      {"07:30 waits half an hour", Local(ny, 2024, 6, 4, 7, 30), StepPlan::Action::kDefer,
       Local(ny, 2024, 6, 4, 8, 0)},
      {"21:00 is the start of quiet hours", Local(ny, 2024, 6, 3, 21, 0), StepPlan::Action::kDefer,
       Local(ny, 2024, 6, 4, 8, 0)},
      {"20:59 still goes", Local(ny, 2024, 6, 3, 20, 59), StepPlan::Action::kSendNow,
       Local(ny, 2024, 6, 3, 20, 59)},
      {"08:00 goes", Local(ny, 2024, 6, 4, 8, 0), StepPlan::Action::kSendNow,
       Local(ny, 2024, 6, 4, 8, 0)},
      {"noon UTC is 08:00 EDT", Utc(2024, 6, 4, 12, 0), StepPlan::Action::kSendNow,
       Utc(2024, 6, 4, 12, 0)},
      {"winter: 12:30 UTC is 07:30 EST", Utc(2024, 1, 9, 12, 30), StepPlan::Action::kDefer,
       Utc(2024, 1, 9, 13, 0)},
  };
  for (const QuietCase& c : cases) {
    // Enrolled (due) exactly now, so only quiet hours can move it.
    const StepPlan plan = PlanStep(track, 0, c.now, lead, DeliveryPolicy(), TouchHistory(), c.now);
    EXPECT_EQ(plan.action, c.action) << c.name << ": " << plan.reason;
    EXPECT_EQ(plan.send_at, c.send_at) << c.name << ": " << plan.reason;
  }
  const StepPlan deferred = PlanStep(track, 0, Local(ny, 2024, 6, 3, 22, 0), lead, DeliveryPolicy(),
                                     TouchHistory(), Local(ny, 2024, 6, 3, 22, 0));
  EXPECT_EQ(deferred.reason,
            "deferred to 2024-06-04T12:00:00Z: quiet hours 21:00-08:00 America/New_York");
}

TEST(PlanStepTest, QuietHoursFallBackToTheDefaultZoneAndSkipRetargeting) {
  LeadProfile lead = EmailLead();
  lead.set_time_zone("Not/AZone");
  const absl::Time late_utc = Utc(2024, 6, 3, 23, 0);
  const Track email = OneStep(R"pb(channel: CHANNEL_EMAIL content_id: "c")pb");
  EXPECT_EQ(PlanStep(email, 0, late_utc, lead, DeliveryPolicy(), TouchHistory(), late_utc).send_at,
            Utc(2024, 6, 4, 8, 0));
  DeliveryPolicy tokyo_default;
  tokyo_default.default_time_zone = "Asia/Tokyo";  // 23:00 UTC is 08:00 in Tokyo
  EXPECT_EQ(PlanStep(email, 0, late_utc, lead, tokyo_default, TouchHistory(), late_utc).action,
            StepPlan::Action::kSendNow);

  lead.add_consents()->set_channel(events::v1::CHANNEL_RETARGETING);
  lead.mutable_consents(lead.consents_size() - 1)->set_granted(true);
  const Track ads = OneStep(R"pb(channel: CHANNEL_RETARGETING content_id: "c")pb");
  EXPECT_EQ(PlanStep(ads, 0, late_utc, lead, DeliveryPolicy(), TouchHistory(), late_utc).action,
            StepPlan::Action::kSendNow);
}

TEST(PlanStepTest, TheFrequencyCapCountsTouchesFromEveryTrack) {
  const auto tracks = Compile(kTracks);
  const Track& cold = *tracks->FindTrack("cold");
  const absl::Time now = Utc(2024, 6, 10, 10, 0);
  // Three touches in the last 7 days: two from "cold", one from "warm" (the history does not
  // care which track sent them). The oldest leaves the window on 11 June at 09:00.
  TouchHistory history;
  history.sent_at = {Utc(2024, 6, 9, 9, 0), Utc(2024, 6, 4, 9, 0), Utc(2024, 6, 7, 15, 0),
                     Utc(2024, 5, 20, 9, 0)};
  const StepPlan plan = PlanStep(cold, 0, now, EmailLead(), DeliveryPolicy(), history, now);
  EXPECT_EQ(plan.action, StepPlan::Action::kDefer);
  EXPECT_EQ(plan.send_at, Utc(2024, 6, 11, 9, 0));
  EXPECT_THAT(plan.reason, HasSubstr("frequency cap (3 touches in 7 days)"));

  // Two touches in the window: under the cap.
  history.sent_at.erase(history.sent_at.begin() + 1);
  EXPECT_EQ(PlanStep(cold, 0, now, EmailLead(), DeliveryPolicy(), history, now).action,
            StepPlan::Action::kSendNow);
}

TEST(PlanStepTest, ACapExpiryInsideQuietHoursWaitsForTheMorning) {
  const Track track = OneStep(R"pb(channel: CHANNEL_EMAIL content_id: "c")pb");
  const absl::Time now = Utc(2024, 6, 10, 10, 0);
  DeliveryPolicy policy;
  policy.max_touches = 1;
  policy.cap_window = absl::Hours(24);
  TouchHistory history;
  history.sent_at = {Utc(2024, 6, 9, 22, 30)};  // expires 10 June 22:30: quiet hours in UTC
  const StepPlan plan = PlanStep(track, 0, now, EmailLead(), policy, history, now);
  EXPECT_EQ(plan.action, StepPlan::Action::kDefer);
  EXPECT_EQ(plan.send_at, Utc(2024, 6, 11, 8, 0));
  EXPECT_THAT(plan.reason, HasSubstr("frequency cap"));
  EXPECT_THAT(plan.reason, HasSubstr("quiet hours"));

  policy.max_touches = 0;  // cap disabled
  EXPECT_EQ(PlanStep(track, 0, now, EmailLead(), policy, history, now).action,
            StepPlan::Action::kSendNow);
}

// --- Touches. ---

TEST(TouchIdTest, IdsAreDeterministicAndDistinct) {
  EXPECT_EQ(TouchId("L-42", "cold-welcome", 2, 1), "L-42:cold-welcome:2:1");
  EXPECT_EQ(TouchId("L-42", "cold-welcome", 2, 1), TouchId("L-42", "cold-welcome", 2, 1));
  std::set<std::string> ids;
  int made = 0;
  for (const char* lead : {"L-1", "L-2", "L-10", "L-1:2", "L-1%3A2"}) {
    for (const char* track : {"cold", "warm", "cold:1", "1"}) {
      for (int step = 0; step < 12; ++step) {
        for (int attempt = 1; attempt <= 3; ++attempt) {
          ids.insert(TouchId(lead, track, step, attempt));
          ++made;
        }
      }
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(made));
  // Separators inside ids cannot forge another id.
  EXPECT_NE(TouchId("a:b", "c", 1, 1), TouchId("a", "b:c", 1, 1));
}

TEST(BuildTouchTest, FillsChannelContentAddressAndPersonalisation) {
  const auto tracks = Compile(kTracks);
  const Track& warm = *tracks->FindTrack("warm");
  const ScoreSnapshot score =
      ParseText<ScoreSnapshot>(R"pb(segments: [ "decision-makers", "hot" ])pb");
  const absl::Time due = kEnrolled + absl::Hours(48);

  const events::v1::NurtureTouch email = BuildTouch(EmailLead(), score, warm, 0, 1, kEnrolled);
  EXPECT_EQ(email.touch_id(), "L-42:warm:0:1");
  EXPECT_EQ(email.envelope().event_id(), email.touch_id());
  EXPECT_EQ(email.envelope().lead_id(), "L-42");
  EXPECT_EQ(email.channel(), events::v1::CHANNEL_EMAIL);
  EXPECT_EQ(email.track_id(), "warm");
  EXPECT_EQ(email.step(), 0);
  EXPECT_EQ(email.attempt(), 1);
  EXPECT_EQ(email.content_id(), "case-study");
  EXPECT_EQ(email.address(), "ada@shoeco.co.uk");
  EXPECT_EQ(rules::ToTime(email.due_at()), kEnrolled);
  EXPECT_EQ(email.personalisation().at("first_name"), "Ada");
  EXPECT_EQ(email.personalisation().at("last_name"), "Lovelace");
  EXPECT_EQ(email.personalisation().at("company"), "ShoeCo");
  EXPECT_EQ(email.personalisation().at("interest"), "shoes");
  EXPECT_EQ(email.personalisation().at("segment"), "decision-makers");

  const events::v1::NurtureTouch sms = BuildTouch(EmailLead(), ScoreSnapshot(), warm, 1, 2, due);
  EXPECT_EQ(sms.touch_id(), "L-42:warm:1:2");
  EXPECT_EQ(sms.channel(), events::v1::CHANNEL_SMS);
  EXPECT_EQ(sms.address(), "+447700900123");
  EXPECT_EQ(sms.personalisation().count("segment"), 0u);  // empty values are left out

  // Same inputs, same touch (and the same bytes under deterministic serialisation: the
  // personalisation map's default wire order is not stable).
  EXPECT_EQ(DeterministicBytes(BuildTouch(EmailLead(), score, warm, 0, 1, kEnrolled)),
            DeterministicBytes(BuildTouch(EmailLead(), score, warm, 0, 1, kEnrolled)));
}

// --- Validation. ---

struct InvalidTracksCase {
  std::string name;
  std::string tracks;
  std::string message;
};

TEST(CompileNurtureTracksTest, RejectsInvalidTracksNamingThePath) {
  const std::string step = R"pb(steps { channel: CHANNEL_EMAIL content_id: "c" })pb";
  const std::vector<InvalidTracksCase> cases = {
      {"empty id", "tracks { " + step + " }", "nurture.tracks[0].id: empty track id"},
      {"id with a separator", "tracks { id: \"a:b\" " + step + " }",
       "nurture.tracks[0].id: 'a:b' may only use letters, digits"},
      {"duplicate id", "tracks { id: \"a\" " + step + " } tracks { id: \"a\" " + step + " }",
       "nurture.tracks[1].id: duplicate track id 'a'"},
      {"no steps", R"pb(tracks { id: "a" })pb", "nurture.tracks[0].steps: track 'a' has no steps"},
      {"no channel", R"pb(tracks {
                            id: "a"
                            steps { content_id: "c" }
                          })pb",
       "nurture.tracks[0].steps[0].channel: required"},
      {"no content", R"pb(tracks {
                            id: "a"
                            steps { channel: CHANNEL_EMAIL }
                          })pb",
       "nurture.tracks[0].steps[0].content_id: required"},
      {"negative delay",
       "tracks { id: \"a\" " + step +
           " steps { channel: CHANNEL_EMAIL content_id: \"d\" delay_hours: -1 } }",
       "nurture.tracks[0].steps[1].delay_hours: must be a number of hours in 0..87600"},
      {"unknown field",
       "tracks { id: \"a\" enroll_when { field: \"categry\" equals: \"cold\" } " + step + " }",
       "nurture.tracks[0].enroll_when[0].field: unknown field 'categry' (rule 'a')"},
      {"invalid regex",
       "tracks { id: \"a\" enroll_when { field: \"email\" matches: \"(\" } " + step + " }",
       "nurture.tracks[0].enroll_when[0].matches: invalid regular expression"},
      {"branch on the first step",
       R"pb(tracks {
              id: "a"
              steps {
                channel: CHANNEL_EMAIL
                content_id: "c"
                if_previous { kind: KIND_OPENED }
              }
            })pb",
       "nurture.tracks[0].steps[0].if_previous: must name an earlier step"},
      {"branch on a later step",
       "tracks { id: \"a\" " + step +
           " steps { channel: CHANNEL_EMAIL content_id: \"d\" if_previous { kind: KIND_OPENED "
           "step: 1 } } }",
       "nurture.tracks[0].steps[1].if_previous: must name an earlier step"},
      {"negative branch window",
       "tracks { id: \"a\" " + step +
           " steps { channel: CHANNEL_EMAIL content_id: \"d\" if_previous { kind: KIND_OPENED "
           "within_days: -1 } } }",
       "nurture.tracks[0].steps[1].if_previous.within_days: must be a non-negative"},
      {"variant without content",
       "tracks { id: \"a\" steps { channel: CHANNEL_EMAIL content_id: \"c\" variants { when "
       "{ field: \"interest\" equals: \"not_now\" } } } }",
       "nurture.tracks[0].steps[0].variants[0].content_id: required"},
      {"bad goal field",
       "tracks { id: \"a\" goal { field: \"categry\" equals: \"qualified\" } " + step + " }",
       "nurture.tracks[0].goal[0].field: unknown field 'categry'"},
  };
  for (const InvalidTracksCase& c : cases) {
    const auto compiled = CompileNurtureTracks(ParseText<NurtureTracks>(c.tracks));
    ASSERT_FALSE(compiled.ok()) << c.name;
    EXPECT_EQ(compiled.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(compiled.status().message(), HasSubstr(c.message)) << c.name;
  }
}

// --- Branches, content variants and goals. ---

struct EngagementCase {
  std::string name;
  config::v1::Engagement::Kind kind;
  double within_days;
  PreviousTouch previous;
  bool holds;
};

TEST(EngagementHoldsTest, BranchesFollowOpensAndClicksWithinTheWindow) {
  PreviousTouch none;
  PreviousTouch sent{.sent = true, .sent_at = kEnrolled};
  PreviousTouch opened = sent;
  opened.opened_at = kEnrolled + absl::Hours(20);
  PreviousTouch opened_late = sent;
  opened_late.opened_at = kEnrolled + absl::Hours(24 * 3);
  PreviousTouch clicked = sent;
  clicked.clicked_at = kEnrolled + absl::Hours(1);  // open pixel blocked: the click counts
  using config::v1::Engagement;
  const std::vector<EngagementCase> cases = {
      {"no condition", Engagement::KIND_UNSPECIFIED, 0, none, true},
      {"opened", Engagement::KIND_OPENED, 2, opened, true},
      {"opened after the window", Engagement::KIND_OPENED, 2, opened_late, false},
      {"opened late, no window", Engagement::KIND_OPENED, 0, opened_late, true},
      {"a click is an open", Engagement::KIND_OPENED, 2, clicked, true},
      {"opened is not clicked", Engagement::KIND_CLICKED, 2, opened, false},
      {"clicked", Engagement::KIND_CLICKED, 2, clicked, true},
      {"not acted after an open", Engagement::KIND_NOT_ACTED, 2, opened, false},
      {"not acted within the window", Engagement::KIND_NOT_ACTED, 2, opened_late, true},
      {"nothing sent counts as not acted", Engagement::KIND_NOT_ACTED, 2, none, true},
      {"nothing sent was not opened", Engagement::KIND_OPENED, 2, none, false},
  };
  for (const EngagementCase& c : cases) {
    config::v1::Engagement condition;
    condition.set_kind(c.kind);
    condition.set_within_days(c.within_days);
    EXPECT_EQ(EngagementHolds(condition, c.previous), c.holds) << c.name;
  }
}

TEST(PlanStepTest, ABranchNotTakenSkipsTheStep) {
  const Track track = ParseText<Track>(R"pb(
    id: "t"
    steps { channel: CHANNEL_EMAIL content_id: "a" }
    steps {
      channel: CHANNEL_EMAIL
      content_id: "if-opened"
      delay_hours: 48
      if_previous { kind: KIND_OPENED step: 0 }
    }
    steps {
      channel: CHANNEL_EMAIL
      content_id: "if-not"
      if_previous { kind: KIND_NOT_ACTED step: 0 }
    }
  )pb");
  PreviousTouch opened{.sent = true, .sent_at = kEnrolled};
  opened.opened_at = kEnrolled + absl::Hours(3);
  const absl::Time due = kEnrolled + absl::Hours(48);
  const StepPlan taken =
      PlanStep(track, 1, kEnrolled, EmailLead(), DeliveryPolicy(), TouchHistory(), due, opened);
  EXPECT_EQ(taken.action, StepPlan::Action::kSendNow);
  const StepPlan other =
      PlanStep(track, 2, due, EmailLead(), DeliveryPolicy(), TouchHistory(), due, opened);
  EXPECT_EQ(other.action, StepPlan::Action::kSkip);
  EXPECT_THAT(other.reason, HasSubstr("branch not taken: the lead acted on step 0"));
  const StepPlan not_opened = PlanStep(track, 1, kEnrolled, EmailLead(), DeliveryPolicy(),
                                       TouchHistory(), due, {.sent = true, .sent_at = kEnrolled});
  EXPECT_EQ(not_opened.action, StepPlan::Action::kSkip);
  EXPECT_THAT(not_opened.reason, HasSubstr("step 0 not opened"));
}

TEST(CompiledNurtureTracksTest, ContentVariesBySegmentAndInterestAndGoalsAreChecked) {
  const auto tracks = Compile(R"pb(
    tracks {
      id: "t"
      goal { field: "category" equals: "qualified" }
      steps {
        channel: CHANNEL_EMAIL
        content_id: "generic"
        variants {
          when { field: "segments" equals: "enterprise" }
          content_id: "enterprise"
        }
        variants {
          when { field: "interest" equals: "not_now" }
          content_id: "later"
        }
      }
    }
  )pb");
  ASSERT_NE(tracks, nullptr);
  const LeadProfile lead = EmailLead();
  EXPECT_EQ(tracks->ContentFor("t", 0, lead, ScoreSnapshot()), "generic");
  EXPECT_EQ(tracks->ContentFor("t", 0, lead, ParseText<ScoreSnapshot>("segments: 'enterprise'")),
            "enterprise");
  EXPECT_EQ(
      tracks->ContentFor("t", 0, lead, ParseText<ScoreSnapshot>("interest: INTEREST_NOT_NOW")),
      "later");
  EXPECT_EQ(tracks->ContentFor("t", 1, lead, ScoreSnapshot()), "");
  EXPECT_EQ(tracks->ContentFor("nope", 0, lead, ScoreSnapshot()), "");
  EXPECT_FALSE(tracks->GoalReached("t", lead, ParseText<ScoreSnapshot>("category: CATEGORY_WARM")));
  EXPECT_TRUE(
      tracks->GoalReached("t", lead, ParseText<ScoreSnapshot>("category: CATEGORY_QUALIFIED")));
  EXPECT_FALSE(tracks->GoalReached("nope", lead, ScoreSnapshot()));
  const events::v1::NurtureTouch touch =
      BuildTouch(lead, ScoreSnapshot(), *tracks->FindTrack("t"), 0, 1, kEnrolled, "enterprise");
  EXPECT_EQ(touch.content_id(), "enterprise");
}

// --- The default track file. ---

class DefaultNurtureTracksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<NurtureTracks> loaded = LoadYamlConfig<NurtureTracks>("config/nurture.yaml");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    absl::StatusOr<std::shared_ptr<const CompiledNurtureTracks>> compiled =
        CompileNurtureTracks(*loaded);
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    tracks_ = *compiled;
  }
  std::shared_ptr<const CompiledNurtureTracks> tracks_;
};

TEST_F(DefaultNurtureTracksTest, ConfigFileCompilesWithTheColdWelcomeSeries) {
  const Track* cold = tracks_->FindTrack("cold-welcome");
  ASSERT_NE(cold, nullptr);
  ASSERT_EQ(cold->steps_size(), 4);
  const std::vector<double> delays = {0, 72, 168, 336};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(cold->steps(i).channel(), events::v1::CHANNEL_EMAIL) << i;
    EXPECT_EQ(cold->steps(i).delay_hours(), delays[i]) << i;
  }
  EXPECT_NE(tracks_->FindTrack("warm-accelerate"), nullptr);
  EXPECT_NE(tracks_->FindTrack("lost-recycle"), nullptr);
}

TEST_F(DefaultNurtureTracksTest, LeadsAreEnrolledByTemperatureAndLostLeadsAreRecycled) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"pb(category: CATEGORY_COLD stage: STAGE_NEW)pb", "cold-welcome"},
      {R"pb(category: CATEGORY_WARM stage: STAGE_ENGAGED interest: INTEREST_INTERESTED)pb",
       "warm-accelerate"},
      {R"pb(category: CATEGORY_COLD stage: STAGE_LOST)pb", "lost-recycle"},
      {R"pb(category: CATEGORY_WARM stage: STAGE_LOST)pb", "lost-recycle"},
  };
  for (const auto& [score, track] : cases) {
    EXPECT_EQ(ChooseTrack(*tracks_, EmailLead(), ParseText<ScoreSnapshot>(score)), track) << score;
  }
}

}  // namespace
}  // namespace leadflow::nurturing
