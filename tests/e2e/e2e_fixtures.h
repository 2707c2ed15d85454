#pragma once

// Shared by the e2e tests: rule files small enough to reason about, routable test leads and
// JSON messages.

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/kafka/message.h"
#include "leadflow/events/v1/lead.pb.h"

namespace leadflow::e2e {

// Rules small enough to reason about in a test: executives are sales-ready on fit alone, a demo
// request makes a manager sales-ready, students stay cold and are nurtured.
inline constexpr char kScoringRules[] = R"yaml(
version: e2e-scoring-1
thresholds: {warm: 10, qualified: 20, sales_ready: 30}
fit:
  - {id: executive, when: [{field: seniority, equals: executive}], points: 40, reason: Executive}
  - {id: manager, when: [{field: seniority, equals: manager}], points: 12, reason: Manager}
engagement:
  - {id: demo, activity_type: demo_request, points: 50, reason: Demo requested}
  - {id: pages, activity_type: page_view, points: 1, max_points: 5, reason: Page views}
)yaml";

inline constexpr char kRoutingRules[] = R"yaml(
version: e2e-routing-1
route_at: sales_ready
default_team: inbound
rules:
  - id: uk-shoes
    when: [{field: country, equals: GB}, {field: interests, equals: shoes}]
    team: uk-fashion
teams:
  - id: uk-fashion
    strategy: STRATEGY_ROUND_ROBIN
    sla_minutes: 5
    reps: [{id: alice, name: Alice}, {id: bob, name: Bob}]
  - id: inbound
    strategy: STRATEGY_ROUND_ROBIN
    sla_minutes: 5
    reps: [{id: carol, name: Carol}, {id: dave, name: Dave}]
)yaml";

inline constexpr char kNurtureTracks[] = R"yaml(
version: e2e-nurture-1
tracks:
  - id: cold-welcome
    name: Cold welcome
    priority: 10
    enroll_when: [{field: category, equals: cold}]
    steps:
      - {channel: CHANNEL_EMAIL, content_id: welcome, delay_hours: 0}
      - {channel: CHANNEL_EMAIL, content_id: follow-up, delay_hours: 72}
)yaml";

// A time zone where it is mid-day now, so quiet hours never defer the test's first touch.
inline std::string DaytimeZone() {
  const int utc_hour = static_cast<int>(absl::ToCivilHour(absl::Now(), absl::UTCTimeZone()).hour());
  int offset = 12 - utc_hour;  // hours to add to UTC to reach noon
  if (offset > 12) offset -= 24;
  if (offset < -12) offset += 24;
  if (offset == 0) return "Etc/UTC";
  // POSIX Etc zones have inverted signs: Etc/GMT-3 is UTC+3.
  return absl::StrCat("Etc/GMT", offset > 0 ? "-" : "+", std::abs(offset));
}

inline events::v1::LeadSubmission Lead(const std::string& id, const std::string& title,
                                       const std::string& country) {
  events::v1::LeadSubmission s;
  s.set_request_id(id);
  s.set_source("web_form");
  // Distinct companies and domains: similar names at one company would (rightly) be merged by
  // capture's fuzzy matching.
  s.set_email(absl::StrCat("lead@", id, ".example.com"));
  s.set_first_name("Test");
  s.set_last_name(id);
  s.set_company(absl::StrCat(id, " Corp"));
  s.set_job_title(title);
  s.set_country(country);
  s.set_external_id(absl::StrCat("user-", id));
  s.set_time_zone(DaytimeZone());
  auto* consent = s.add_consents();
  consent->set_channel(events::v1::CHANNEL_EMAIL);
  consent->set_granted(true);
  return s;
}

inline kafka::OutboundMessage JsonOn(const std::string& topic, const std::string& key,
                                     const std::string& json) {
  kafka::OutboundMessage m{topic, key, json, {}};
  m.headers.push_back(
      {std::string(kafka::kContentTypeHeader), std::string(kafka::kContentTypeJson)});
  return m;
}

}  // namespace leadflow::e2e
