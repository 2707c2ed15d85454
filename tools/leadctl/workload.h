#pragma once

// The synthetic people and activities that `leadctl demo` and `leadctl load` send: realistic
// names, companies, titles, countries and interests, about 80 % with e-mail consent, and a mix
// of engagement from a little browsing to demo requests. Deterministic for a seed.

#include <random>
#include <string>

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

// A Segment-spec call (`page` or `track`) as JSON.
std::string SegmentJson(const std::string& type, const std::string& message_id,
                        const std::string& user_id, const std::string& event,
                        const std::string& url, absl::Time at);

// A message with the JSON content type.
kafka::OutboundMessage JsonMessage(std::string topic, std::string key, std::string value);

}  // namespace leadflow::leadctl
