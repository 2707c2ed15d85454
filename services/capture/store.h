#pragma once

// CaptureStore: capture's Redis key schema, in one place (ARCHITECTURE.md §5).
//
//   capture:{<lead_id>}:profile        versioned record: the LeadProfile (protobuf); for a lead
//                                      merged into another, a redirect naming it
//                                      (merged_into_lead_id), registered with the survivor
//   capture:{<lead_id>}:keys           the lead's key registry (erasure deletes every member)
//   capture:{<lead_id>}:erased         erasure tombstone (30 days)
//   capture:idx:email:{<email key>}    versioned record: id of the lead owning the e-mail match key
//   capture:idx:phone:{<e164>}         versioned record: id of the lead owning the phone number
//   capture:idx:ext:{<external id>}    versioned record: id of the lead with that upstream id
//   capture:block:company:<key>:<name code>
//                                      set of lead ids sharing a company and the sound of a first
//                                      or last name (fuzzy-match blocking; NameBlockCodes)
//   capture:block:domain:<domain>:<name code>
//                                      the same for a business e-mail domain
//   capture:req:{<request id>}         apply-once record of a submission, memo = response+outputs
//   capture:req:{<request id>}:sent    present once the submission's events were acknowledged by
//                                      the broker (same retention as the request record)
//   capture:outbox                     sorted set of the request ids of gRPC submissions whose
//                                      events are not yet acknowledged, score = when they were
//                                      last sent (Unix ms; CaptureGrpcService re-sends them)
//
// Exact-key index records are claimed inside the same atomic apply as the profile, with version
// checks, so two concurrent submissions of one new e-mail address can never create two leads:
// the second sees the claim and merges. Index and request keys carry their own hash tag, not the
// lead's: on Redis Cluster the apply transaction would span slots (documented limit,
// docs/STATE.md).
//
// Thread safety: all methods may be called concurrently.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/redis/apply_once.h"
#include "common/redis/client.h"
#include "common/redis/outbox.h"
#include "leadflow/events/v1/lead.pb.h"
#include "services/capture/engine.h"
#include "services/capture/engine_text.h"

namespace leadflow::capture {

inline constexpr char kService[] = "capture";

class CaptureStore {
 public:
  explicit CaptureStore(redis::RedisClient& client)
      : client_(client), apply_(client), outbox_(client, OutboxKey()) {}

  static std::string ProfileKey(const std::string& lead_id);
  static std::string EmailIndexKey(const std::string& email_match_key);
  static std::string PhoneIndexKey(const std::string& e164);
  static std::string ExternalIndexKey(const std::string& external_id);
  static std::string CompanyBlockKey(const std::string& company_match_key,
                                     const std::string& name_code);
  static std::string DomainBlockKey(const std::string& domain, const std::string& name_code);
  static std::string RequestKey(const std::string& request_id);
  static std::string SentKey(const std::string& request_id);

  // The exact-key index records a submission touches (email, phone, external id), in that order;
  // keys for absent values are omitted.
  static std::vector<std::string> IndexKeysFor(const NormalizedSubmission& submission);
  // The fuzzy blocking sets a submission belongs to: one per name code (NameBlockCodes) and
  // company or business domain, none without a full name (it can never match fuzzily). A block
  // holds the people of one company whose first (or last) names sound alike, so it stays small
  // however large the company: candidates are the whole block, not a sample of the company.
  static std::vector<std::string> BlockKeysFor(const NormalizedSubmission& submission);
  // Per company and per business domain, its first-name block and its last-name block (whose
  // intersection is the people whose full names sound alike).
  static std::vector<std::pair<std::string, std::string>> BlockPairsFor(
      const NormalizedSubmission& submission);
  // The exact-key index records a stored lead owns (its e-mail match key, phone, every external
  // id), and the blocking sets it can be a member of.
  static std::vector<std::string> IndexKeysOf(const events::v1::LeadProfile& lead);
  static std::vector<std::string> BlockKeysOf(const events::v1::LeadProfile& lead);

  // Lead ids that may match: exact-key owners first, then blocking peers — every lead sharing
  // both name codes at the company or domain, then up to `max_fuzzy` of each block — at most
  // 2 × `max_fuzzy` of them.
  absl::StatusOr<std::vector<std::string>> CandidateIds(const NormalizedSubmission& submission,
                                                        size_t max_fuzzy = 50);
  // Profiles of existing leads (missing ones are skipped).
  absl::StatusOr<std::vector<events::v1::LeadProfile>> LoadProfiles(
      const std::vector<std::string>& lead_ids);
  absl::StatusOr<std::optional<events::v1::LeadProfile>> LoadProfile(const std::string& lead_id);
  // CandidateIds() and LoadProfiles() for many submissions, one pipelined round trip each.
  absl::StatusOr<std::vector<std::vector<std::string>>> CandidateIdsMany(
      const std::vector<const NormalizedSubmission*>& submissions, size_t max_fuzzy = 50);
  absl::StatusOr<std::vector<std::vector<events::v1::LeadProfile>>> LoadProfilesMany(
      const std::vector<std::vector<std::string>>& lead_ids);
  // The lead `lead_id` is now: its profile, or — when it was merged into another lead — that
  // lead's (following up to kMaxMergeHops merges). nullopt when there is none (never captured,
  // erased). The stored record itself, redirect or not, is LoadProfile's.
  static constexpr int kMaxMergeHops = 8;
  absl::StatusOr<std::optional<events::v1::LeadProfile>> LoadCurrent(const std::string& lead_id);
  // The lead owning an exact index key, if any.
  absl::StatusOr<std::optional<std::string>> LookupIndex(const std::string& index_key);

  redis::ApplyOnce& apply() { return apply_; }

  // Records that the events of these submissions — (request id, lead id) pairs — were
  // acknowledged by the broker, for `ttl` (one pipelined round trip; the records join the lead's
  // registry's expiring members until they expire, so erasure removes them). A duplicate request
  // then answers with its original result without publishing the events again; without the record
  // (the first attempt's delivery is unconfirmed) they are published again, with the same event
  // ids.
  absl::Status MarkSent(const std::vector<std::pair<std::string, std::string>>& requests,
                        absl::Duration ttl);
  // True when MarkSent recorded `request_id`.
  absl::StatusOr<bool> WasSent(const std::string& request_id);

  // The gRPC API's outbox (common/redis/outbox.h): the request ids of submissions taken in but
  // not yet acknowledged by the broker, scored by when their events were (last) sent. Added
  // before a submission is captured, removed by MarkSent (or once it is known to send nothing);
  // what is left for a grace period is re-sent from the request's memo
  // (CaptureGrpcService::ResendUnacknowledged).
  static const std::string& OutboxKey();
  redis::Outbox& outbox() { return outbox_; }

  // Deletes every trace of a lead: profile, index records, request memos, blocking memberships.
  absl::Status Erase(const std::string& lead_id);

 private:
  redis::RedisClient& client_;
  redis::ApplyOnce apply_;
  redis::Outbox outbox_;
};

}  // namespace leadflow::capture
