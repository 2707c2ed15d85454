#include "services/capture/handler.h"

#include <algorithm>
#include <optional>

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

// Without a client key, the message's position identifies it: a re-delivery is a duplicate.
std::string RequestIdOf(const events::v1::LeadSubmission& submission,
                        const kafka::ConsumedMessage& message) {
  return !submission.request_id().empty() ? submission.request_id() : events::PositionId(message);
}

}  // namespace

CaptureHandler::CaptureHandler(const Normalizer& normalizer, CaptureStore& store,
                               const kafka::Topics& topics, const runtime::Clock& clock,
                               prometheus::Registry& registry, CaptureOptions options)
    : normalizer_(normalizer),
      store_(store),
      topics_(topics),
      clock_(clock),
      options_(options),
      submissions_(prometheus::BuildCounter()
                       .Name("leadflow_capture_submissions_total")
                       .Help("Submissions captured, by outcome: created, merged into an existing "
                             "lead, duplicate (a request id seen before), rejected (invalid)")
                       .Register(registry)),
      matches_(prometheus::BuildCounter()
                   .Name("leadflow_capture_matches_total")
                   .Help("Submissions merged into an existing lead, by the key that matched: "
                         "email, phone, external_id, fuzzy_name")
                   .Register(registry)),
      created_(submissions_.Add({{"outcome", "created"}})),
      merged_(submissions_.Add({{"outcome", "merged"}})),
      duplicates_(submissions_.Add({{"outcome", "duplicate"}})),
      rejected_(submissions_.Add({{"outcome", "rejected"}})),
      leads_absorbed_(prometheus::BuildCounter()
                          .Name("leadflow_capture_leads_absorbed_total")
                          .Help("Existing leads merged into another because a submission proved "
                                "them one person")
                          .Register(registry)
                          .Add({})),
      candidates_(
          prometheus::BuildHistogram()
              .Name("leadflow_capture_candidates")
              .Help("Candidate leads compared with a submission in a matching round "
                    "(exact-key owners and fuzzy blocking peers)")
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{0, 1, 2, 5, 10, 20, 50, 100})) {}

void CaptureHandler::Count(const absl::StatusOr<SubmitOutcome>& outcome) {
  if (!outcome.ok()) {
    if (absl::IsInvalidArgument(outcome.status())) rejected_.Increment();
    return;
  }
  const capture::v1::SubmitLeadResponse& response = outcome->response;
  if (response.duplicate_request()) {
    duplicates_.Increment();
  } else if (response.created()) {
    created_.Increment();
  } else {
    merged_.Increment();
    if (!response.match().key().empty())
      matches_.Add({{"key", response.match().key()}}).Increment();
    leads_absorbed_.Increment(response.merged_lead_ids_size());
  }
}

CaptureHandler::MatchAttempt CaptureHandler::PrepareAttempt(
    const NormalizedSubmission& norm, const std::string& request_id, absl::Time now,
    std::vector<std::string> candidate_ids, std::vector<LeadProfile> candidates) const {
  MatchAttempt attempt;
  attempt.norm = &norm;
  attempt.request_id = request_id;
  attempt.now = now;
  attempt.candidate_ids = std::move(candidate_ids);
  candidates_.Observe(static_cast<double>(candidates.size()));
  // A converted lead whose next episode is also a candidate is history: only the open
  // episode may match. The redirect of a lead merged away is no candidate at all.
  absl::flat_hash_set<std::string> superseded;
  for (const LeadProfile& c : candidates) {
    if (!c.previous_lead_id().empty()) superseded.insert(c.previous_lead_id());
  }
  candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                  [&](const LeadProfile& c) {
                                    return IsMergeRedirect(c) ||
                                           (IsConverted(c) && superseded.contains(c.lead_id()));
                                  }),
                   candidates.end());
  attempt.decision = Match(norm, candidates, options_.fuzzy_threshold);
  const MatchDecision& decision = attempt.decision;
  // A match with a lead that converted to a contact opens the person's next lead episode: a
  // new record, linked to the contact; the converted one stays as history.
  if (decision.match.has_value()) {
    for (const LeadProfile& c : candidates) {
      if (c.lead_id() == decision.match->matched_lead_id() && IsConverted(c)) attempt.converted = c;
    }
  }
  attempt.target = decision.match.has_value() && !attempt.converted.has_value()
                       ? decision.match->matched_lead_id()
                       : events::DeriveEventId("lead", request_id);
  // Leads the submission proves to be the same person as `target` (it matched them by another
  // exact key) are merged into it. Converted leads are history and are never merged, and
  // neither is anything into a new episode.
  if (decision.match.has_value() && !attempt.converted.has_value()) {
    for (const std::string& id : decision.also_matched_lead_ids) {
      for (const LeadProfile& c : candidates) {
        if (c.lead_id() == id && id != attempt.target && !IsConverted(c)) {
          attempt.absorbed.push_back(id);
        }
      }
    }
  }
  attempt.absorbed_set = {attempt.absorbed.begin(), attempt.absorbed.end()};

  // State: [0] the target's profile, [1, absorbed_at) the submission's index records,
  // [absorbed_at, absorbed_index_at) the absorbed profiles, then their own index records
  // (those the submission does not already name). All version-checked by the apply.
  redis::ApplyOnceRequest& request = attempt.request;
  request.dedup_key = CaptureStore::RequestKey(request_id);
  request.dedup_ttl = options_.request_retention;
  request.state_keys.push_back(CaptureStore::ProfileKey(attempt.target));
  const std::vector<std::string> index_keys = CaptureStore::IndexKeysFor(norm);
  request.state_keys.insert(request.state_keys.end(), index_keys.begin(), index_keys.end());
  attempt.absorbed_at = request.state_keys.size();
  for (const std::string& id : attempt.absorbed) {
    request.state_keys.push_back(CaptureStore::ProfileKey(id));
  }
  attempt.absorbed_index_at = request.state_keys.size();
  for (const LeadProfile& c : candidates) {
    if (!attempt.absorbed_set.contains(c.lead_id())) continue;
    for (const std::string& k : CaptureStore::IndexKeysOf(c)) {
      if (std::find(request.state_keys.begin(), request.state_keys.end(), k) ==
          request.state_keys.end()) {
        request.state_keys.push_back(k);
      }
    }
  }
  request.registry_key = redis::RegistryKey(kService, attempt.target);
  request.tombstone_key = redis::TombstoneKey(kService, attempt.target);
  return attempt;
}

absl::StatusOr<redis::Plan> CaptureHandler::PlanAttempt(
    MatchAttempt& attempt, const std::vector<redis::Versioned>& state) const {
  attempt.retry_match = false;
  // An exact key owned by another lead we already knew of stays with it (the submission
  // matched `target` by a stronger key) unless that lead is being merged into `target`; one
  // claimed since our look-up means match again.
  std::vector<bool> claim(state.size(), false);
  for (size_t i = 1; i < attempt.absorbed_at; ++i) {
    if (!state[i].data.has_value() || *state[i].data == attempt.target ||
        attempt.absorbed_set.contains(*state[i].data) ||
        (attempt.converted.has_value() && *state[i].data == attempt.converted->lead_id())) {
      claim[i] = true;  // free, ours, an absorbed lead's, or moving to the new episode
    } else if (std::find(attempt.candidate_ids.begin(), attempt.candidate_ids.end(),
                         *state[i].data) == attempt.candidate_ids.end()) {
      attempt.retry_match = true;
      return absl::AbortedError("index claimed concurrently");
    }
  }
  // The absorbed leads as they are now; one erased, converted or merged elsewhere since the
  // look-up means match again.
  std::vector<LeadProfile> absorbed_profiles;
  for (size_t i = attempt.absorbed_at; i < attempt.absorbed_index_at; ++i) {
    LeadProfile& p = absorbed_profiles.emplace_back();
    if (!state[i].data.has_value() || !p.ParseFromString(*state[i].data) || IsConverted(p) ||
        IsMergeRedirect(p)) {
      attempt.retry_match = true;
      return absl::AbortedError("a lead to merge changed meanwhile");
    }
    for (const std::string& k : CaptureStore::IndexKeysOf(p)) {
      if (std::find(attempt.request.state_keys.begin(), attempt.request.state_keys.end(), k) ==
          attempt.request.state_keys.end()) {
        attempt.retry_match = true;  // it gained a key since the look-up: its record must move too
        return absl::AbortedError("a lead to merge gained a key meanwhile");
      }
    }
  }
  // Their keys move to `target`; a key another lead owns stays with it.
  for (size_t i = attempt.absorbed_index_at; i < state.size(); ++i) {
    claim[i] = !state[i].data.has_value() || attempt.absorbed_set.contains(*state[i].data);
  }
  LeadCaptured event;
  std::optional<LeadProfile> existing;
  if (state[0].data.has_value()) {
    if (!existing.emplace().ParseFromString(*state[0].data)) {
      return absl::DataLossError("corrupt profile of " + attempt.target);
    }
    if ((IsConverted(*existing) && !attempt.converted.has_value()) || IsMergeRedirect(*existing)) {
      attempt.retry_match = true;  // converted or merged away since the look-up: match again
      return absl::AbortedError("matched lead converted or merged meanwhile");
    }
    // The absorbed records first (in Match's order: key precedence, then age), the submission
    // last: it is the newest statement of who the person is.
    LeadProfile survivor = *existing;
    for (const LeadProfile& p : absorbed_profiles)
      survivor = MergeLeads(survivor, p, attempt.now).lead;
    MergeResult merged = Merge(survivor, *attempt.norm, attempt.now);
    event.set_change(LeadCaptured::CHANGE_UPDATED);
    // Without absorbed leads the survivor is the existing record: Merge listed the changes.
    for (std::string& f : absorbed_profiles.empty() ? std::move(merged.changed_fields)
                                                    : ChangedFields(*existing, merged.lead)) {
      event.add_changed_fields(std::move(f));
    }
    *event.mutable_lead() = std::move(merged.lead);
    for (const std::string& id : attempt.absorbed) event.add_merged_lead_ids(id);
    if (attempt.decision.match.has_value()) *event.mutable_match() = *attempt.decision.match;
  } else if (attempt.converted.has_value()) {
    MergeResult episode =
        NewEpisode(*attempt.converted, *attempt.norm, attempt.target, attempt.now);
    event.set_change(LeadCaptured::CHANGE_CREATED);
    *event.mutable_lead() = std::move(episode.lead);
    for (std::string& f : episode.changed_fields) event.add_changed_fields(std::move(f));
    *event.mutable_match() = *attempt.decision.match;
  } else {
    if (attempt.decision.match.has_value()) {
      attempt.retry_match = true;  // matched lead vanished (erased) meanwhile
      return absl::AbortedError("matched lead no longer exists");
    }
    event.set_change(LeadCaptured::CHANGE_CREATED);
    *event.mutable_lead() = NewLead(*attempt.norm, attempt.target, attempt.now);
    // Everything the submission set is new: the same list a merge into nothing gives.
    for (std::string& f : Merge(LeadProfile(), *attempt.norm, attempt.now).changed_fields) {
      event.add_changed_fields(std::move(f));
    }
  }
  event.set_source(attempt.norm->submission.source());
  *event.mutable_envelope() = events::MakeEnvelope({
      .event_id = events::DeriveEventId("captured", attempt.request_id),
      .lead_id = attempt.target,
      .occurred_at = events::FromProtoOr(attempt.norm->submission.submitted_at(), attempt.now),
      .produced_at = attempt.now,
      .causation_id = attempt.request_id,
      .trace_id = attempt.request_id,
      .producer = kService,
  });

  capture::v1::SubmitLeadResponse response;
  response.set_lead_id(attempt.target);
  response.set_created(event.change() == LeadCaptured::CHANGE_CREATED);
  *response.mutable_lead() = event.lead();
  *response.mutable_changed_fields() = event.changed_fields();
  if (event.has_match()) *response.mutable_match() = event.match();
  *response.mutable_merged_lead_ids() = event.merged_lead_ids();

  std::vector<kafka::OutboundMessage> outputs;
  if (event.change() == LeadCaptured::CHANGE_CREATED || event.changed_fields_size() > 0 ||
      event.merged_lead_ids_size() > 0) {
    outputs.push_back(events::Encode(topics_.Name(kafka::kLeadsCaptured), attempt.target, event));
  }
  redis::Plan plan;
  plan.writes.push_back(
      {CaptureStore::ProfileKey(attempt.target), event.lead().SerializeAsString()});
  for (size_t i = 1; i < state.size(); ++i) {
    if (claim[i]) plan.writes.push_back({state[i].key, attempt.target});
  }
  // A lead is a member of exactly the blocks of its current record: a merge that changed its
  // name, company or e-mail domain moves it, so an erase finds every set that names it.
  const std::vector<std::string> blocks = CaptureStore::BlockKeysOf(event.lead());
  for (const std::string& k : blocks) plan.extra_commands.push_back({"SADD", k, attempt.target});
  if (existing.has_value()) {
    for (const std::string& k : CaptureStore::BlockKeysOf(*existing)) {
      if (std::find(blocks.begin(), blocks.end(), k) == blocks.end()) {
        plan.extra_commands.push_back({"SREM", k, attempt.target});
      }
    }
  }
  // The converted lead leaves the fuzzy-match blocks (its new episode joins them).
  if (attempt.converted.has_value()) {
    for (const std::string& k : CaptureStore::BlockKeysOf(*attempt.converted)) {
      plan.extra_commands.push_back({"SREM", k, attempt.converted->lead_id()});
    }
  }
  for (size_t j = 0; j < attempt.absorbed.size(); ++j) {
    const std::string& id = attempt.absorbed[j];
    // A redirect stays where the absorbed record was, so its id still answers (GetLead); being
    // written here, it joins the survivor's registry and goes when the survivor is erased.
    plan.writes.push_back(
        {CaptureStore::ProfileKey(id), MergeRedirect(id, attempt.target).SerializeAsString()});
    for (const std::string& k : CaptureStore::BlockKeysOf(absorbed_profiles[j])) {
      plan.extra_commands.push_back({"SREM", k, id});
    }
    // Everything the absorbed lead registered (its request records) now belongs to the
    // survivor: erasing the person erases it all.
    for (redis::Args& c : redis::AdoptRegistryCommands(redis::RegistryKey(kService, attempt.target),
                                                       redis::RegistryKey(kService, id))) {
      plan.extra_commands.push_back(std::move(c));
    }
  }
  plan.memo = kafka::EncodeMemo(outputs, response.SerializeAsString());
  return plan;
}

absl::StatusOr<SubmitOutcome> CaptureHandler::OutcomeOf(
    const absl::StatusOr<redis::ApplyResult>& applied, const std::string& request_id) {
  if (!applied.ok()) return applied.status();
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

absl::StatusOr<SubmitOutcome> CaptureHandler::Replay(const std::string& request_id) {
  redis::ApplyOnceRequest request;
  request.dedup_key = CaptureStore::RequestKey(request_id);
  request.dedup_ttl = options_.request_retention;
  absl::StatusOr<std::optional<redis::ApplyResult>> recorded = store_.apply().Recorded(request);
  if (!recorded.ok()) return recorded.status();
  if (!recorded->has_value()) {
    return absl::NotFoundError(absl::StrCat("no submission recorded for request ", request_id));
  }
  return OutcomeOf(**recorded, request_id);
}

absl::StatusOr<SubmitOutcome> CaptureHandler::Submit(const events::v1::LeadSubmission& submission,
                                                     const std::string& request_id) {
  const absl::Time now = clock_.Now();
  absl::StatusOr<NormalizedSubmission> normalized = normalizer_.Normalize(submission, now);
  absl::StatusOr<SubmitOutcome> outcome = normalized.ok()
                                              ? SubmitNormalized(*normalized, request_id, now)
                                              : absl::StatusOr<SubmitOutcome>(normalized.status());
  Count(outcome);
  return outcome;
}

absl::StatusOr<SubmitOutcome> CaptureHandler::SubmitNormalized(const NormalizedSubmission& norm,
                                                               const std::string& request_id,
                                                               absl::Time now) {
  for (int round = 0; round < kMaxMatchAttempts; ++round) {
    // Matching reads outside the atomic apply; the apply re-checks the exact-key claims, and a
    // planner that finds them moved asks for another round.
    absl::StatusOr<std::vector<std::string>> ids = store_.CandidateIds(norm);
    if (!ids.ok()) return ids.status();
    absl::StatusOr<std::vector<LeadProfile>> candidates = store_.LoadProfiles(*ids);
    if (!candidates.ok()) return candidates.status();
    MatchAttempt attempt =
        PrepareAttempt(norm, request_id, now, *std::move(ids), *std::move(candidates));
    absl::StatusOr<redis::ApplyResult> applied = store_.apply().Run(
        attempt.request,
        [&](const std::vector<redis::Versioned>& state) { return PlanAttempt(attempt, state); });
    if (!applied.ok() && attempt.retry_match) continue;
    return OutcomeOf(applied, request_id);
  }
  return absl::AbortedError("lead kept changing while matching; retry");
}

std::vector<absl::StatusOr<SubmitOutcome>> CaptureHandler::SubmitBatch(
    const std::vector<const events::v1::LeadSubmission*>& submissions,
    const std::vector<std::string>& request_ids) {
  const size_t n = submissions.size();
  const absl::Time now = clock_.Now();
  std::vector<absl::StatusOr<SubmitOutcome>> results(n, absl::UnknownError("not run"));
  std::vector<std::optional<NormalizedSubmission>> normalized(n);
  std::vector<size_t> valid;
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<NormalizedSubmission> norm = normalizer_.Normalize(*submissions[i], now);
    if (!norm.ok()) {
      results[i] = norm.status();
      continue;
    }
    normalized[i] = *std::move(norm);
    valid.push_back(i);
  }
  if (valid.empty()) {
    for (const absl::StatusOr<SubmitOutcome>& result : results) Count(result);
    return results;
  }
  auto fail_valid = [&](const absl::Status& status) {
    for (size_t i : valid) results[i] = status;
    for (const absl::StatusOr<SubmitOutcome>& result : results) Count(result);
    return results;
  };
  // The first matching round of every submission shares its round trips: one look-up of all
  // candidates, one read of all their profiles, one apply-once transaction.
  std::vector<const NormalizedSubmission*> to_look_up;
  for (size_t i : valid) to_look_up.push_back(&*normalized[i]);
  absl::StatusOr<std::vector<std::vector<std::string>>> ids = store_.CandidateIdsMany(to_look_up);
  if (!ids.ok()) return fail_valid(ids.status());
  absl::StatusOr<std::vector<std::vector<LeadProfile>>> candidates = store_.LoadProfilesMany(*ids);
  if (!candidates.ok()) return fail_valid(candidates.status());
  std::vector<MatchAttempt> attempts;
  std::vector<redis::ApplyOnceRequest> requests;
  attempts.reserve(valid.size());
  for (size_t k = 0; k < valid.size(); ++k) {
    attempts.push_back(PrepareAttempt(*normalized[valid[k]], request_ids[valid[k]], now,
                                      std::move((*ids)[k]), std::move((*candidates)[k])));
    requests.push_back(attempts.back().request);
  }
  std::vector<absl::StatusOr<redis::ApplyResult>> applied =
      store_.apply().RunBatch(requests, [&](size_t k, const std::vector<redis::Versioned>& state) {
        return PlanAttempt(attempts[k], state);
      });
  for (size_t k = 0; k < valid.size(); ++k) {
    const size_t i = valid[k];
    // Its look-up went stale (another submission of the batch, or of another replica, claimed a
    // key meanwhile): match again alone, as Submit() does.
    results[i] = !applied[k].ok() && attempts[k].retry_match
                     ? SubmitNormalized(*normalized[i], request_ids[i], now)
                     : OutcomeOf(applied[k], request_ids[i]);
  }
  for (const absl::StatusOr<SubmitOutcome>& result : results) Count(result);
  return results;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> CaptureHandler::HandleInbound(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadSubmission submission;
  if (absl::Status s = events::Decode(message, &submission); !s.ok()) return s;
  absl::StatusOr<SubmitOutcome> outcome = Submit(submission, RequestIdOf(submission, message));
  if (!outcome.ok()) return outcome.status();
  return std::move(outcome->outputs);
}

std::vector<kafka::HandleResult> CaptureHandler::HandleInboundBatch(
    const std::vector<const kafka::ConsumedMessage*>& messages) {
  kafka::BatchSubset<kafka::HandleResult> subset(messages.size());
  std::vector<events::v1::LeadSubmission> decoded(messages.size());
  std::vector<const events::v1::LeadSubmission*> submissions;
  std::vector<std::string> request_ids;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (absl::Status s = events::Decode(*messages[i], &decoded[i]); !s.ok()) {
      subset.Settle(i, s);
      continue;
    }
    submissions.push_back(&decoded[i]);
    request_ids.push_back(RequestIdOf(decoded[i], *messages[i]));
    subset.Keep(i);
  }
  return std::move(subset).Merge(SubmitBatch(submissions, request_ids),
                                 [](absl::StatusOr<SubmitOutcome> outcome) -> kafka::HandleResult {
                                   if (!outcome.ok()) return outcome.status();
                                   return std::move(outcome->outputs);
                                 });
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
