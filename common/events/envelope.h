#pragma once

// Building envelopes (ARCHITECTURE.md §3): deterministic event ids and timestamps.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "leadflow/events/v1/envelope.pb.h"

namespace leadflow::events {

inline constexpr int kSchemaVersion = 1;

// A deterministic event id: the same (kind, input id) always gives the same id, so a replayed
// input produces the same output ids. Formatted as a UUID (version 5 layout over SHA-256).
// `kind` names what the output is ("captured", "scored", ...); `input_id` identifies the cause.
std::string DeriveEventId(std::string_view kind, std::string_view input_id);

google::protobuf::Timestamp ToProto(absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& ts);
// FromProto, or `fallback` when the timestamp is unset.
absl::Time FromProtoOr(const google::protobuf::Timestamp& ts, absl::Time fallback);

struct EnvelopeFields {
  std::string event_id;
  std::string lead_id;
  absl::Time occurred_at;
  absl::Time produced_at;
  std::string causation_id;
  std::string trace_id;
  std::string producer;
};
leadflow::events::v1::Envelope MakeEnvelope(const EnvelopeFields& fields);

// What identifies a consumed input event, as every consumer derives it.
struct InputIdentity {
  // The lead it is about: the envelope's, else the one named in the payload.
  std::string lead_id;
  // The apply-once key and the seed of derived event ids: the envelope's event id, else the
  // message's position (a re-delivery of the same message is then a duplicate).
  std::string event_id;
  // The envelope's trace id, else the event id.
  std::string trace_id;
  // When it happened in the world: the envelope's occurred_at, else `now`.
  absl::Time event_time;
};

// INVALID_ARGUMENT (poison) when no lead id can be found.
absl::StatusOr<InputIdentity> IdentifyInput(const kafka::ConsumedMessage& message,
                                            const leadflow::events::v1::Envelope& envelope,
                                            const std::string& payload_lead_id, absl::Time now);

// "kafka:<topic>:<partition>:<offset>": the identity of a message without a better one.
std::string PositionId(const kafka::ConsumedMessage& message);

}  // namespace leadflow::events
