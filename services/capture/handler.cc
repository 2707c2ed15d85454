#include "services/capture/handler.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/memo.h"
#include "common/redis/keys.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "spdlog/spdlog.h"

namespace leadflow::capture {
namespace {

using events::v1::LeadCaptured;
using events::v1::LeadProfile;

constexpr int kMaxMatchAttempts = 8;

}  // namespace

CaptureHandler::CaptureHandler(const Normalizer& normalizer, CaptureStore& store,
                               const kafka::Topics& topics, const runtime::Clock& clock,
                               CaptureOptions options)
    : normalizer_(normalizer), store_(store), topics_(topics), clock_(clock), options_(options) {}

absl::StatusOr<SubmitOutcome> CaptureHandler::Submit(const events::v1::LeadSubmission& submission,
                                                     const std::string& request_id) {
  const absl::Time now = clock_.Now();
  absl::StatusOr<NormalizedSubmission> normalized = normalizer_.Normalize(submission, now);
  if (!normalized.ok()) return normalized.status();
  const NormalizedSubmission& norm = *normalized;
  const std::string new_lead_id = events::DeriveEventId("lead", request_id);
  const std::vector<std::string> index_keys = CaptureStore::IndexKeysFor(norm);
  const std::vector<std::string> block_keys = CaptureStore::BlockKeysFor(norm);

  for (int attempt = 0; attempt < kMaxMatchAttempts; ++attempt) {
    // Matching reads outside the atomic apply; the apply re-checks the exact-key claims, and a
    // planner that finds them moved asks for another round.
    absl::StatusOr<std::vector<std::string>> ids = store_.CandidateIds(norm);
    if (!ids.ok()) return ids.status();
    absl::StatusOr<std::vector<LeadProfile>> candidates = store_.LoadProfiles(*ids);
    if (!candidates.ok()) return candidates.status();
    // A converted lead whose next episode is also a candidate is history: only the open
    // episode may match. The redirect of a lead merged away is no candidate at all.
    absl::flat_hash_set<std::string> superseded;
    for (const LeadProfile& c : *candidates) {
      if (!c.previous_lead_id().empty()) superseded.insert(c.previous_lead_id());
    }
    candidates->erase(std::remove_if(candidates->begin(), candidates->end(),
                                     [&](const LeadProfile& c) {
                                       return IsMergeRedirect(c) ||
                                              (IsConverted(c) && superseded.contains(c.lead_id()));
                                     }),
                      candidates->end());
    const MatchDecision decision = Match(norm, *candidates, options_.fuzzy_threshold);
    // A match with a lead that converted to a contact opens the person's next lead episode: a
    // new record, linked to the contact; the converted one stays as history.
    const LeadProfile* converted = nullptr;
    if (decision.match.has_value()) {
      for (const LeadProfile& c : *candidates) {
        if (c.lead_id() == decision.match->matched_lead_id() && IsConverted(c)) converted = &c;
      }
    }
    const std::string target = decision.match.has_value() && converted == nullptr
                                   ? decision.match->matched_lead_id()
                                   : new_lead_id;
    // Leads the submission proves to be the same person as `target` (it matched them by another
    // exact key) are merged into it. Converted leads are history and are never merged, and
    // neither is anything into a new episode.
    std::vector<std::string> absorbed;
    if (decision.match.has_value() && converted == nullptr) {
      for (const std::string& id : decision.also_matched_lead_ids) {
        for (const LeadProfile& c : *candidates) {
          if (c.lead_id() == id && id != target && !IsConverted(c)) absorbed.push_back(id);
        }
      }
    }
    const absl::flat_hash_set<std::string> absorbed_set(absorbed.begin(), absorbed.end());

    // State: [0] the target's profile, [1, absorbed_at) the submission's index records,
    // [absorbed_at, absorbed_index_at) the absorbed profiles, then their own index records
    // (those the submission does not already name). All version-checked by the apply.
    redis::ApplyOnceRequest request;
    request.dedup_key = CaptureStore::RequestKey(request_id);
    request.dedup_ttl = options_.request_retention;
    request.state_keys.push_back(CaptureStore::ProfileKey(target));
    request.state_keys.insert(request.state_keys.end(), index_keys.begin(), index_keys.end());
    const size_t absorbed_at = request.state_keys.size();
    for (const std::string& id : absorbed) {
      request.state_keys.push_back(CaptureStore::ProfileKey(id));
    }
    const size_t absorbed_index_at = request.state_keys.size();
    for (const LeadProfile& c : *candidates) {
      if (!absorbed_set.contains(c.lead_id())) continue;
      for (const std::string& k : CaptureStore::IndexKeysOf(c)) {
        if (std::find(request.state_keys.begin(), request.state_keys.end(), k) ==
            request.state_keys.end()) {
          request.state_keys.push_back(k);
        }
      }
    }
    request.registry_key = redis::RegistryKey(kService, target);
    request.tombstone_key = redis::TombstoneKey(kService, target);

    bool retry_match = false;
    auto planner = [&](const std::vector<redis::Versioned>& state) -> absl::StatusOr<redis::Plan> {
      retry_match = false;
      // An exact key owned by another lead we already knew of stays with it (the submission
      // matched `target` by a stronger key) unless that lead is being merged into `target`; one
      // claimed since our look-up means match again.
      std::vector<bool> claim(state.size(), false);
      for (size_t i = 1; i < absorbed_at; ++i) {
        if (!state[i].data.has_value() || *state[i].data == target ||
            absorbed_set.contains(*state[i].data) ||
            (converted != nullptr && *state[i].data == converted->lead_id())) {
          claim[i] = true;  // free, ours, an absorbed lead's, or moving to the new episode
        } else if (std::find(ids->begin(), ids->end(), *state[i].data) == ids->end()) {
          retry_match = true;
          return absl::AbortedError("index claimed concurrently");
        }
      }
      // The absorbed leads as they are now; one erased, converted or merged elsewhere since the
      // look-up means match again.
      std::vector<LeadProfile> absorbed_profiles;
      for (size_t i = absorbed_at; i < absorbed_index_at; ++i) {
        LeadProfile& p = absorbed_profiles.emplace_back();
        if (!state[i].data.has_value() || !p.ParseFromString(*state[i].data) || IsConverted(p) ||
            IsMergeRedirect(p)) {
          retry_match = true;
          return absl::AbortedError("a lead to merge changed meanwhile");
        }
        for (const std::string& k : CaptureStore::IndexKeysOf(p)) {
          if (std::find(request.state_keys.begin(), request.state_keys.end(), k) ==
              request.state_keys.end()) {
            retry_match = true;  // it gained a key since the look-up: its record must move too
            return absl::AbortedError("a lead to merge gained a key meanwhile");
          }
        }
      }
      // Their keys move to `target`; a key another lead owns stays with it.
      for (size_t i = absorbed_index_at; i < state.size(); ++i) {
        claim[i] = !state[i].data.has_value() || absorbed_set.contains(*state[i].data);
      }
      LeadCaptured event;
      if (state[0].data.has_value()) {
        LeadProfile existing;
        if (!existing.ParseFromString(*state[0].data)) {
          return absl::DataLossError("corrupt profile of " + target);
        }
        if ((IsConverted(existing) && converted == nullptr) || IsMergeRedirect(existing)) {
          retry_match = true;  // converted or merged away since the look-up: match again
          return absl::AbortedError("matched lead converted or merged meanwhile");
        }
        // The absorbed records first (in Match's order: key precedence, then age), the submission
        // last: it is the newest statement of who the person is.
        LeadProfile survivor = existing;
        for (const LeadProfile& p : absorbed_profiles) survivor = MergeLeads(survivor, p, now).lead;
        MergeResult merged = Merge(survivor, norm, now);
        event.set_change(LeadCaptured::CHANGE_UPDATED);
        for (std::string& f : ChangedFields(existing, merged.lead)) {
          event.add_changed_fields(std::move(f));
        }
        *event.mutable_lead() = std::move(merged.lead);
        for (const std::string& id : absorbed) event.add_merged_lead_ids(id);
        if (decision.match.has_value()) *event.mutable_match() = *decision.match;
      } else if (converted != nullptr) {
        MergeResult episode = NewEpisode(*converted, norm, target, now);
        event.set_change(LeadCaptured::CHANGE_CREATED);
        *event.mutable_lead() = std::move(episode.lead);
        for (std::string& f : episode.changed_fields) event.add_changed_fields(std::move(f));
        *event.mutable_match() = *decision.match;
      } else {
        if (decision.match.has_value()) {
          retry_match = true;  // matched lead vanished (erased) meanwhile
          return absl::AbortedError("matched lead no longer exists");
        }
        event.set_change(LeadCaptured::CHANGE_CREATED);
        *event.mutable_lead() = NewLead(norm, target, now);
        // Everything the submission set is new: the same list a merge into nothing gives.
        for (std::string& f : Merge(LeadProfile(), norm, now).changed_fields) {
          event.add_changed_fields(std::move(f));
        }
      }
      event.set_source(norm.submission.source());
      *event.mutable_envelope() = events::MakeEnvelope({
          .event_id = events::DeriveEventId("captured", request_id),
          .lead_id = target,
          .occurred_at = events::FromProtoOr(norm.submission.submitted_at(), now),
          .produced_at = now,
          .causation_id = request_id,
          .trace_id = request_id,
          .producer = kService,
      });

      capture::v1::SubmitLeadResponse response;
      response.set_lead_id(target);
      response.set_created(event.change() == LeadCaptured::CHANGE_CREATED);
      *response.mutable_lead() = event.lead();
      *response.mutable_changed_fields() = event.changed_fields();
      if (event.has_match()) *response.mutable_match() = event.match();
      *response.mutable_merged_lead_ids() = event.merged_lead_ids();

      std::vector<kafka::OutboundMessage> outputs;
      if (event.change() == LeadCaptured::CHANGE_CREATED || event.changed_fields_size() > 0 ||
          event.merged_lead_ids_size() > 0) {
        outputs.push_back(events::Encode(topics_.Name(kafka::kLeadsCaptured), target, event));
      }
      redis::Plan plan;
      plan.writes.push_back({CaptureStore::ProfileKey(target), event.lead().SerializeAsString()});
      for (size_t i = 1; i < state.size(); ++i) {
        if (claim[i]) plan.writes.push_back({state[i].key, target});
      }
      std::vector<std::string> blocks = block_keys;
      if (!absorbed.empty()) {
        // The merged record may carry a company or domain the submission did not.
        for (const std::string& k : CaptureStore::BlockKeysOf(event.lead())) {
          if (std::find(blocks.begin(), blocks.end(), k) == blocks.end()) blocks.push_back(k);
        }
      }
      for (const std::string& k : blocks) {
        plan.extra_commands.push_back({"SADD", k, target});
        // The converted lead leaves the fuzzy-match blocks its new episode joins.
        if (converted != nullptr) plan.extra_commands.push_back({"SREM", k, converted->lead_id()});
      }
      for (size_t j = 0; j < absorbed.size(); ++j) {
        const std::string& id = absorbed[j];
        // A redirect stays where the absorbed record was, so its id still answers (GetLead); being
        // written here, it joins the survivor's registry and goes when the survivor is erased.
        plan.writes.push_back(
            {CaptureStore::ProfileKey(id), MergeRedirect(id, target).SerializeAsString()});
        for (const std::string& k : CaptureStore::BlockKeysOf(absorbed_profiles[j])) {
          plan.extra_commands.push_back({"SREM", k, id});
        }
        // Everything the absorbed lead registered (its request records) now belongs to the
        // survivor: erasing the person erases it all.
        for (redis::Args& c : redis::AdoptRegistryCommands(redis::RegistryKey(kService, target),
                                                           redis::RegistryKey(kService, id))) {
          plan.extra_commands.push_back(std::move(c));
        }
      }
      plan.memo = kafka::EncodeMemo(outputs, response.SerializeAsString());
      return plan;
    };
    absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(request, planner);
    if (!applied.ok()) {
      if (retry_match) continue;
      return applied.status();
    }
    if (applied->outcome == redis::ApplyOutcome::kErased) {
      return absl::FailedPreconditionError("the matched lead was erased");
    }
    SubmitOutcome outcome;
    std::string result;
    if (absl::Status s = kafka::DecodeMemo(applied->memo, &outcome.outputs, &result); !s.ok()) {
      return s;
    }
    if (!outcome.response.ParseFromString(result)) return absl::DataLossError("corrupt memo");
    if (applied->outcome == redis::ApplyOutcome::kDuplicate) {
      outcome.response.set_duplicate_request(true);
      // The original attempt's events were acknowledged: publish nothing again. Otherwise (its
      // delivery is unconfirmed) they go out again with the same ids.
      absl::StatusOr<bool> sent = store_.WasSent(request_id);
      if (!sent.ok()) return sent.status();
      if (*sent) outcome.outputs.clear();
    }
    return outcome;
  }
  return absl::AbortedError("lead kept changing while matching; retry");
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> CaptureHandler::HandleInbound(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadSubmission submission;
  if (absl::Status s = events::Decode(message, &submission); !s.ok()) return s;
  // Without a client key, the message's position identifies it: a re-delivery is a duplicate.
  const std::string request_id =
      !submission.request_id().empty() ? submission.request_id() : events::PositionId(message);
  absl::StatusOr<SubmitOutcome> outcome = Submit(submission, request_id);
  if (!outcome.ok()) return outcome.status();
  return std::move(outcome->outputs);
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> CaptureHandler::HandleOutcome(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadOutcome outcome;
  if (absl::Status s = events::Decode(message, &outcome); !s.ok()) return s;
  absl::StatusOr<events::InputIdentity> input =
      events::IdentifyInput(message, outcome.envelope(), "", clock_.Now());
  if (!input.ok()) return input.status();
  if (outcome.kind() != events::v1::LeadOutcome::KIND_WON) {
    return std::vector<kafka::OutboundMessage>{};  // only a conversion changes capture's record
  }
  // A won lead that was merged into another: the person converted, so the lead it is now part
  // of is marked (following the merge redirects).
  std::string lead_id = input->lead_id;
  for (int hop = 0; hop <= CaptureStore::kMaxMergeHops; ++hop) {
    redis::ApplyOnceRequest request;
    request.dedup_key = CaptureStore::RequestKey(absl::StrCat("outcome:", input->event_id));
    request.dedup_ttl = options_.request_retention;
    request.state_keys.push_back(CaptureStore::ProfileKey(lead_id));
    request.registry_key = redis::RegistryKey(kService, lead_id);
    request.tombstone_key = redis::TombstoneKey(kService, lead_id);
    const absl::Time won_at = input->event_time;
    std::string merged_into;
    auto planner = [&](const std::vector<redis::Versioned>& state) -> absl::StatusOr<redis::Plan> {
      redis::Plan plan;
      merged_into.clear();
      if (!state[0].data.has_value()) return plan;  // unknown or erased lead: nothing to mark
      LeadProfile lead;
      if (!lead.ParseFromString(*state[0].data)) {
        return absl::DataLossError("corrupt profile of " + lead_id);
      }
      if (IsMergeRedirect(lead)) {
        merged_into = lead.merged_into_lead_id();
        return absl::AbortedError("merged");  // not applied: the survivor is marked instead
      }
      if (IsConverted(lead)) return plan;  // the first conversion counts
      *lead.mutable_converted_at() = events::ToProto(won_at);
      if (lead.contact_id().empty()) lead.set_contact_id(lead.lead_id());
      plan.writes.push_back({CaptureStore::ProfileKey(lead_id), lead.SerializeAsString()});
      return plan;
    };
    absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(request, planner);
    if (!applied.ok() && !merged_into.empty()) {
      lead_id = merged_into;
      continue;
    }
    if (!applied.ok()) return applied.status();
    return std::vector<kafka::OutboundMessage>{};
  }
  return absl::DataLossError(absl::StrCat("lead ", input->lead_id, ": merge chain too long"));
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> CaptureHandler::HandleErasure(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadErasure erasure;
  if (absl::Status s = events::Decode(message, &erasure); !s.ok()) return s;
  if (erasure.envelope().lead_id().empty()) {
    return absl::InvalidArgumentError("erasure without envelope.lead_id");
  }
  if (absl::Status s = store_.Erase(erasure.envelope().lead_id()); !s.ok()) return s;
  spdlog::info("erased lead {} ({})", erasure.envelope().lead_id(), erasure.reason());
  return std::vector<kafka::OutboundMessage>{};
}

}  // namespace leadflow::capture
