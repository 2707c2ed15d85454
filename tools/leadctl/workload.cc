#include "tools/leadctl/workload.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "tools/leadctl/csv_reader.h"

namespace leadflow::leadctl {
namespace {

using events::v1::LeadSubmission;

struct Profile {
  const char* country;
  const char* region_name;
  std::vector<const char*> interests;
};

const char* const kFirst[] = {"Olivia", "Liam",  "Emma", "Noah",  "Amelia", "Oliver", "Sofia",
                              "Lucas",  "Mia",   "Hugo", "Ines",  "Mateo",  "Yuki",   "Arjun",
                              "Chloe",  "Felix", "Zara", "Ethan", "Leila",  "Jonas"};
// Names and companies are put together from parts so that people rarely share a name at one
// company (252 last names, 320 companies): as in a real pipeline, fuzzy matching then merges
// the few real look-alikes rather than most of a large company.
const char* const kLast[] = {"Smith",    "Müller",  "Martin", "Rossi",   "García", "Silva",
                             "Tanaka",   "Patel",   "Brown",  "Dubois",  "Novak",  "Jensen",
                             "Kowalski", "O'Brien", "Nguyen", "Schmidt", "Lopez",  "Cohen"};
const char* const kLastStems[] = {"Ander", "Bar",  "Car",   "Del", "Fitz", "Gold",
                                  "Hart",  "Kirk", "Lind",  "Mor", "Nor",  "Pem",
                                  "Ral",   "Stan", "Thorn", "Vel", "Win",  "Yar"};
const char* const kLastEndings[] = {"son",  "berg",  "ton", "wood", "ley", "man", "field",
                                    "ford", "stein", "ard", "ini",  "ez",  "ov"};
const char* const kCompanyStems[] = {
    "Acme",     "Globex",    "Initech", "Umbrella", "Stark",  "Wayne",   "Soylent", "Hooli",
    "Vandelay", "Cyberdyne", "Tyrell",  "Wonka",    "Nimbus", "Quantum", "Vertex",  "Orbit",
    "Helix",    "Summit",    "Beacon",  "Cobalt",   "Falcon", "Granite", "Harbor",  "Ionic",
    "Juniper",  "Keystone",  "Lumen",   "Meridian", "Nova",   "Onyx",    "Pioneer", "Redwood",
    "Sapphire", "Tundra",    "Upland",  "Vortex",   "Willow", "Xenon",   "Yonder",  "Zenith"};
const char* const kCompanyKinds[] = {"Systems", "Labs",    "Foods", "Logistics",
                                     "Health",  "Capital", "Media", "Robotics"};
const char* const kLegalSuffixes[] = {"Ltd", "GmbH", "Inc.", "plc", "LLC", "Corp", "SA", ""};
const char* const kTitles[] = {"CEO",
                               "Founder",
                               "VP Sales",
                               "Director of Marketing",
                               "Marketing Manager",
                               "IT Manager",
                               "Software Engineer",
                               "Analyst",
                               "Student",
                               "Head of Operations",
                               "CTO",
                               "Sales Representative"};
const char* const kSources[] = {"web_form", "ads", "event", "referral", "webinar", "landing_page"};
const Profile kProfiles[] = {{"GB", "London", {"shoes", "apparel"}},
                             {"GB", "Manchester", {"analytics"}},
                             {"DE", "Berlin", {"analytics"}},
                             {"FR", "Paris", {"crm"}},
                             {"US", "California", {"crm", "analytics"}},
                             {"CA", "Ontario", {"crm"}},
                             {"BR", "São Paulo", {"analytics"}},
                             {"AU", "NSW", {"crm"}},
                             {"JP", "Tokyo", {"analytics"}},
                             {"IN", "Karnataka", {"crm"}}};

}  // namespace

DemoLead MakeLead(int i, const std::string& run, std::mt19937_64& rng,
                  const std::string& id_prefix) {
  auto pick = [&rng](auto& array) -> decltype(auto) {
    return array[rng() % (sizeof(array) / sizeof(array[0]))];
  };
  DemoLead lead;
  LeadSubmission& s = lead.submission;
  const std::string first = pick(kFirst);
  const std::string last = rng() % 16 == 0 ? std::string(pick(kLast))
                                           : absl::StrCat(pick(kLastStems), pick(kLastEndings));
  const std::string stem = pick(kCompanyStems);
  const std::string kind = pick(kCompanyKinds);
  const std::string suffix = pick(kLegalSuffixes);
  const std::string company = absl::StrCat(stem, " ", kind, suffix.empty() ? "" : " ", suffix);
  const Profile& profile = pick(kProfiles);
  std::string domain = absl::AsciiStrToLower(absl::StrCat(stem, kind));
  s.set_request_id(absl::StrCat(id_prefix, "-", run, "-", i));
  s.set_source(pick(kSources));
  s.set_first_name(first);
  s.set_last_name(last);
  s.set_email(
      absl::StrCat(absl::AsciiStrToLower(first), ".", i, ".", run, "@", domain, ".example.com"));
  if (rng() % 3 == 0) s.set_phone(absl::StrFormat("+44 20 7946 %04d", i % 10000));
  s.set_company(company);
  s.set_job_title(pick(kTitles));
  s.set_company_size(static_cast<int>(10 + rng() % 5000));
  s.set_country(profile.country);
  s.set_city(profile.region_name);
  for (const char* interest : profile.interests) s.add_interests(interest);
  lead.external_id = absl::StrCat(id_prefix, "-", run, "-user-", i);
  s.set_external_id(lead.external_id);
  if (rng() % 10 < 8) {
    auto* consent = s.add_consents();
    consent->set_channel(events::v1::CHANNEL_EMAIL);
    consent->set_granted(true);
    consent->set_source("signup form");
  }
  s.mutable_attribution()->set_utm_source(rng() % 2 ? "google" : "linkedin");
  s.mutable_attribution()->set_campaign("q4-launch");
  // Engagement: most leads browse a little; some show strong buying signals.
  lead.page_views = 1 + static_cast<int>(rng() % 6);
  const int heat = static_cast<int>(rng() % 10);
  lead.pricing_views = heat >= 5 ? 1 + static_cast<int>(rng() % 4) : 0;
  lead.demo_request = heat >= 7;
  lead.webinar = heat == 4 || heat == 9;
  return lead;
}

const std::vector<std::string>& SampleCsvHeader() {
  static const auto* const header = new std::vector<std::string>{
      "Lead Id",   "Email Address", "Phone Number", "First Name",   "Last Name",
      "Company",   "Job Title",     "Employees",    "Industry",     "Country",
      "Interests", "Campaign",      "CRM Owner",    "Email Opt-in", "Do Not Call"};
  return *header;
}

void WriteSampleCsv(int rows, uint64_t seed, const std::string& run, std::FILE* out) {
  std::mt19937_64 rng(seed);
  WriteCsvRecord(out, SampleCsvHeader());
  for (int i = 0; i < rows; ++i) {
    const LeadSubmission s = MakeLead(i, run, rng, "sample").submission;
    bool email_opt_in = false;
    for (const events::v1::Consent& c : s.consents()) {
      if (c.channel() == events::v1::CHANNEL_EMAIL) email_opt_in = c.granted();
    }
    WriteCsvRecord(
        out, {s.request_id(), s.email(), s.phone(), s.first_name(), s.last_name(), s.company(),
              s.job_title(), absl::StrCat(s.company_size()), s.industry(), s.country(),
              absl::StrJoin(s.interests(), "; "), s.attribution().campaign(), "",
              email_opt_in ? "yes" : "no", s.do_not_contact() ? "yes" : "no"});
  }
}

std::string SegmentJson(const std::string& type, const std::string& message_id,
                        const std::string& user_id, const std::string& event,
                        const std::string& url, absl::Time at) {
  nlohmann::json j;
  j["type"] = type;
  j["messageId"] = message_id;
  j["userId"] = user_id;
  if (type == "track") j["event"] = event;
  if (type == "page") {
    j["name"] = event;
    j["properties"] = {{"url", url}, {"path", url.substr(url.find('/', 8))}};
  }
  j["timestamp"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone());
  j["context"] = {{"ip", "203.0.113.7"}, {"userAgent", "leadctl-demo"}};
  return j.dump();
}

kafka::OutboundMessage JsonMessage(std::string topic, std::string key, std::string value) {
  kafka::OutboundMessage m{std::move(topic), std::move(key), std::move(value), {}};
  m.headers.push_back(
      {std::string(kafka::kContentTypeHeader), std::string(kafka::kContentTypeJson)});
  return m;
}

}  // namespace leadflow::leadctl
