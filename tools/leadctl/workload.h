#pragma once

// The synthetic people and activities that `leadctl demo` and `leadctl load` send: realistic
// names, companies, titles, countries and interests, about 80 % with e-mail consent, and a mix
// of engagement from a little browsing to demo requests. Deterministic for a seed.

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/kafka/message.h"
#include "leadflow/events/v1/lead.pb.h"

namespace leadflow::leadctl {

struct DemoLead {
  events::v1::LeadSubmission submission;
  // The upstream user id (submission.external_id) its activities are keyed by.
  std::string external_id;
  int page_views = 0;
  int pricing_views = 0;
  bool demo_request = false;
  bool webinar = false;
};

// Person `i` of run `run` (ids, e-mails and request ids carry both, so runs never collide);
// `id_prefix` starts request and user ids ("demo", "load").
DemoLead MakeLead(int i, const std::string& run, std::mt19937_64& rng,
                  const std::string& id_prefix = "demo");

// The header of docs/examples/leads.csv, the layout docs/examples/import-mapping.yaml maps.
const std::vector<std::string>& SampleCsvHeader();

// `rows` people of run `run` (MakeLead with seed `seed`, request ids "sample-<run>-<i>") as CSV
// records under SampleCsvHeader(), for `leadctl sample-csv`: a file of any size to import with
// the example mapping. About a third have a phone number that repeats every 10,000 people and
// some share a name at one company, so an import of many rows merges some of them.
void WriteSampleCsv(int rows, uint64_t seed, const std::string& run, std::FILE* out);

// A Segment-spec call (`page` or `track`) as JSON.
std::string SegmentJson(const std::string& type, const std::string& message_id,
                        const std::string& user_id, const std::string& event,
                        const std::string& url, absl::Time at);

// A message with the JSON content type.
kafka::OutboundMessage JsonMessage(std::string topic, std::string key, std::string value);

}  // namespace leadflow::leadctl
