#pragma once

// Building consumed events for handler tests: what a service's consumer loop would hand its
// handler, without Kafka.

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "common/events/envelope.h"
#include "common/kafka/message.h"

namespace leadflow::testing {

// `m` as if read back from its topic at partition 0, `offset`.
inline kafka::ConsumedMessage Consumed(const kafka::OutboundMessage& m, int64_t offset = 0) {
  kafka::ConsumedMessage c;
  c.topic = m.topic;
  c.partition = 0;
  c.offset = offset;
  c.key = m.key;
  c.value = m.value;
  c.headers = m.headers;
  return c;
}

// An envelope for a test input event; causation and trace ids derive from the arguments.
inline events::v1::Envelope Envelope(const std::string& lead_id, const std::string& event_id,
                                     absl::Time at) {
  return events::MakeEnvelope({.event_id = event_id,
                               .lead_id = lead_id,
                               .occurred_at = at,
                               .produced_at = at,
                               .causation_id = "cause-" + event_id,
                               .trace_id = "trace-" + lead_id,
                               .producer = "test"});
}

}  // namespace leadflow::testing
