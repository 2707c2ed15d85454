#include "services/scoring/handler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/memo.h"
#include "common/redis/keys.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "spdlog/spdlog.h"

namespace leadflow::scoring {

using events::v1::ScoreSnapshot;
using internal::v1::ScoringLeadState;

// What every input contributes besides its payload.
struct ScoringHandler::Input : events::InputIdentity {};

namespace {

// Activity types that set the negative-signal flags.
constexpr char kUnsubscribeActivity[] = "unsubscribe";
constexpr char kBounceActivity[] = "bounce";

// The envelope fields of an input, with fallbacks for producers that leave some out: the lead of
// the payload, the message's position as its identity (a re-delivery is then a duplicate), and
// processing time as its event time.
absl::StatusOr<ScoringHandler::Input> InputOf(const kafka::ConsumedMessage& message,
                                              const events::v1::Envelope& envelope,
                                              const std::string& payload_lead_id, absl::Time now) {
  absl::StatusOr<events::InputIdentity> identity =
      events::IdentifyInput(message, envelope, payload_lead_id, now);
  if (!identity.ok()) return identity.status();
  return ScoringHandler::Input{*std::move(identity)};
}

ScoreContext ContextOf(const ScoringLeadState& state, const ConversionModel* model) {
  ScoreContext context;
  context.previous_stage = state.score().stage();
  context.previous_interest = state.score().interest();
  context.outcome_stage = state.outcome_stage();
  if (state.has_outcome_at()) context.outcome_at = events::FromProto(state.outcome_at());
  context.explicit_interest = state.explicit_interest();
  if (state.has_explicit_interest_until()) {
    context.explicit_interest_until = events::FromProto(state.explicit_interest_until());
  }
  context.unsubscribed = state.unsubscribed();
  context.bounced = state.bounced();
  context.conversion_probability = state.conversion_probability();
  context.model = model;
  return context;
}

// Records what an interest signal said at event time `at`, unless a later signal already spoke:
// a late event must not overrule a newer statement.
void RecordExplicitInterest(const ExplicitInterest& interest, absl::Time at,
                            ScoringLeadState& state) {
  if (state.has_explicit_interest_at() && events::FromProto(state.explicit_interest_at()) > at) {
    return;
  }
  state.set_explicit_interest(interest.state);
  *state.mutable_explicit_interest_at() = events::ToProto(at);
  if (interest.until == absl::InfiniteFuture()) {
    state.clear_explicit_interest_until();
  } else {
    *state.mutable_explicit_interest_until() = events::ToProto(interest.until);
  }
  state.set_explicit_interest_signal(interest.signal_id);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const CompiledScoringRules>> LoadScoringRules(
    const std::string& path) {
  return config::LoadRules<config::v1::ScoringRules, CompiledScoringRules>(
      path, [](const config::v1::ScoringRules& rules) { return CompileScoringRules(rules); });
}

ModelCache::ModelCache(ScoringStore& store, const runtime::Clock& clock, absl::Duration refresh)
    : store_(store), clock_(clock), refresh_(refresh) {}

absl::StatusOr<std::shared_ptr<const ConversionModel>> ModelCache::Get(int hash_bits) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (model_ != nullptr && version_ >= 0 && now - checked_at_ < refresh_) return model_;
  absl::StatusOr<int64_t> version = store_.ModelVersion();
  if (!version.ok()) return version.status();
  checked_at_ = now;
  if (model_ != nullptr && *version == version_) return model_;
  absl::StatusOr<std::optional<internal::v1::ConversionModelState>> stored = store_.LoadModel();
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    model_ = std::make_shared<const ConversionModel>(hash_bits);
  } else {
    absl::StatusOr<ConversionModel> model = ConversionModel::FromState(**stored);
    if (!model.ok()) return model.status();
    model_ = std::make_shared<const ConversionModel>(*std::move(model));
  }
  // The version read before the weights: if the model moved in between, the next check reloads.
  version_ = *version;
  return model_;
}

void ModelCache::Put(std::shared_ptr<const ConversionModel> model) {
  absl::MutexLock lock(&mu_);
  model_ = std::move(model);
  version_ = -1;
}

ScoringHandler::ScoringHandler(const ScoringRulesSource& rules, ScoringStore& store,
                               ModelCache& model, const kafka::Topics& topics,
                               const runtime::Clock& clock, ScoringOptions options)
    : rules_(rules),
      store_(store),
      model_(model),
      topics_(topics),
      clock_(clock),
      options_(options) {}

// One input's apply, shared by the single path (Run) and the batch path (RunBatch): what Prepare
// fixes once (rule set, model, processing time, request), and what the planner leaves for the
// outcome (the model it trained).
struct ScoringHandler::Pending {
  Input input;
  Update update;
  std::optional<bool> label;
  bool existing_only = false;
  std::shared_ptr<const CompiledScoringRules> rules;
  std::shared_ptr<const ConversionModel> cached;
  absl::Time processed_at;
  redis::ApplyOnceRequest request;
  std::shared_ptr<const ConversionModel> trained;
};

absl::StatusOr<ScoringHandler::Pending> ScoringHandler::CapturedPending(
    const kafka::ConsumedMessage& message, const events::v1::LeadCaptured& captured) {
  absl::StatusOr<Input> input =
      InputOf(message, captured.envelope(), captured.lead().lead_id(), clock_.Now());
  if (!input.ok()) return input.status();
  const std::string lead_id = input->lead_id;
  return Prepare(*input,
                 [&captured, lead_id](const CompiledScoringRules&, ScoringLeadState& state) {
                   *state.mutable_profile() = captured.lead();
                   state.mutable_profile()->set_lead_id(lead_id);
                 });
}

absl::Status ScoringHandler::EraseAbsorbed(const events::v1::LeadCaptured& captured,
                                           const std::string& survivor) {
  // Leads capture merged into this one are dropped: their behaviour reaches this lead through
  // tracking (a leads.activity with the merged aggregates), and their own score must not route
  // or nurture the person a second time. Erasure is idempotent, so a re-delivery repeats it
  // harmlessly; the tombstone makes late events of the absorbed id no-ops.
  for (const std::string& absorbed : captured.merged_lead_ids()) {
    if (absorbed.empty() || absorbed == survivor) continue;
    if (absl::Status s =
            store_.Erase(absorbed, rules_.Current()->segment_ids(), options_.tombstone_ttl);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> ScoringHandler::HandleCaptured(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadCaptured captured;
  if (absl::Status s = events::Decode(message, &captured); !s.ok()) return s;
  absl::StatusOr<Pending> pending = CapturedPending(message, captured);
  if (!pending.ok()) return pending.status();
  absl::StatusOr<std::vector<kafka::OutboundMessage>> outputs = ApplyOne(*pending);
  if (!outputs.ok()) return outputs;
  if (absl::Status s = EraseAbsorbed(captured, pending->input.lead_id); !s.ok()) return s;
  return outputs;
}

std::vector<kafka::HandleResult> ScoringHandler::HandleCapturedBatch(
    const std::vector<const kafka::ConsumedMessage*>& messages) {
  std::vector<kafka::HandleResult> results(messages.size(), absl::UnknownError("not run"));
  std::vector<events::v1::LeadCaptured> decoded(messages.size());
  // A merge erases the absorbed leads after its apply, as HandleCaptured does; the batch is cut
  // after each merging input so that an absorbed lead's own input before it in the wave is
  // applied (and erased) first, and one after it applied after the erasure: the order of Handle().
  std::vector<Pending> pending;
  std::vector<size_t> index;
  auto flush = [&] {
    std::vector<kafka::HandleResult> applied = ApplyBatch(pending);
    for (size_t k = 0; k < index.size(); ++k) {
      const size_t i = index[k];
      results[i] = std::move(applied[k]);
      if (!results[i].ok()) continue;
      if (absl::Status s = EraseAbsorbed(decoded[i], pending[k].input.lead_id); !s.ok()) {
        results[i] = s;
      }
    }
    pending.clear();
    index.clear();
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    if (absl::Status s = events::Decode(*messages[i], &decoded[i]); !s.ok()) {
      results[i] = s;
      continue;
    }
    absl::StatusOr<Pending> prepared = CapturedPending(*messages[i], decoded[i]);
    if (!prepared.ok()) {
      results[i] = prepared.status();
      continue;
    }
    pending.push_back(*std::move(prepared));
    index.push_back(i);
    if (!decoded[i].merged_lead_ids().empty()) flush();
  }
  flush();
  return results;
}

absl::StatusOr<ScoringHandler::Pending> ScoringHandler::ActivityPending(
    const kafka::ConsumedMessage& message, const events::v1::LeadActivity& activity) {
  absl::StatusOr<Input> input = InputOf(message, activity.envelope(), "", clock_.Now());
  if (!input.ok()) return input.status();
  const absl::Time at = input->event_time;
  return Prepare(*input,
                 [&activity, at](const CompiledScoringRules& rules, ScoringLeadState& state) {
                   // Tracking sends the lead's whole aggregates after each activity.
                   if (activity.has_aggregates())
                     *state.mutable_aggregates() = activity.aggregates();
                   if (activity.activity().type() == kUnsubscribeActivity)
                     state.set_unsubscribed(true);
                   if (activity.activity().type() == kBounceActivity) state.set_bounced(true);
                   if (std::optional<ExplicitInterest> interest =
                           rules.InterestFromActivity(activity.activity(), at)) {
                     RecordExplicitInterest(*interest, at, state);
                   }
                 });
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> ScoringHandler::HandleActivity(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadActivity activity;
  if (absl::Status s = events::Decode(message, &activity); !s.ok()) return s;
  absl::StatusOr<Pending> pending = ActivityPending(message, activity);
  if (!pending.ok()) return pending.status();
  return ApplyOne(*pending);
}

std::vector<kafka::HandleResult> ScoringHandler::HandleActivityBatch(
    const std::vector<const kafka::ConsumedMessage*>& messages) {
  std::vector<kafka::HandleResult> results(messages.size(), absl::UnknownError("not run"));
  std::vector<events::v1::LeadActivity> decoded(messages.size());
  std::vector<Pending> pending;
  std::vector<size_t> index;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (absl::Status s = events::Decode(*messages[i], &decoded[i]); !s.ok()) {
      results[i] = s;
      continue;
    }
    absl::StatusOr<Pending> prepared = ActivityPending(*messages[i], decoded[i]);
    if (!prepared.ok()) {
      results[i] = prepared.status();
      continue;
    }
    pending.push_back(*std::move(prepared));
    index.push_back(i);
  }
  std::vector<kafka::HandleResult> applied = ApplyBatch(pending);
  for (size_t k = 0; k < index.size(); ++k) results[index[k]] = std::move(applied[k]);
  return results;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> ScoringHandler::HandleOutcome(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadOutcome outcome;
  if (absl::Status s = events::Decode(message, &outcome); !s.ok()) return s;
  absl::StatusOr<Input> input = InputOf(message, outcome.envelope(), "", clock_.Now());
  if (!input.ok()) return input.status();
  // Won and lost are the model's labels; the other outcomes do not say whether the lead bought.
  std::optional<bool> label;
  if (outcome.kind() == events::v1::LeadOutcome::KIND_WON) label = true;
  if (outcome.kind() == events::v1::LeadOutcome::KIND_LOST) label = false;
  return Apply(
      *input,
      [&](const CompiledScoringRules& rules, ScoringLeadState& state) {
        // "Lost: timing" says "not now", "lost: no need" says "disinterested" (per the rules).
        if (std::optional<ExplicitInterest> interest =
                rules.InterestFromOutcome(outcome, input->event_time)) {
          RecordExplicitInterest(*interest, input->event_time, state);
        }
        // Accepted and rejected say nothing about the lead's stage: it stays as it is. Kinds this
        // build does not know map to no stage either.
        const events::v1::LifecycleStage stage = StageForOutcome(outcome.kind());
        if (stage == events::v1::STAGE_UNSPECIFIED) return;
        state.set_outcome_stage(stage);
        *state.mutable_outcome_at() = events::ToProto(input->event_time);
      },
      label);
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> ScoringHandler::Rescore(
    const std::string& lead_id, const std::string& cause_id, absl::Time now) {
  Input input;
  input.lead_id = lead_id;
  input.event_id = cause_id;
  input.trace_id = cause_id;
  input.event_time = now;
  return Apply(
      input, [](const CompiledScoringRules&, ScoringLeadState&) {}, std::nullopt,
      /*existing_only=*/true);
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> ScoringHandler::HandleErasure(
    const kafka::ConsumedMessage& message) {
  events::v1::LeadErasure erasure;
  if (absl::Status s = events::Decode(message, &erasure); !s.ok()) return s;
  const std::string& lead_id = erasure.envelope().lead_id();
  if (lead_id.empty()) return absl::InvalidArgumentError("erasure without envelope.lead_id");
  if (absl::Status s =
          store_.Erase(lead_id, rules_.Current()->segment_ids(), options_.tombstone_ttl);
      !s.ok()) {
    return s;
  }
  spdlog::info("erased lead {} ({})", lead_id, erasure.reason());
  return std::vector<kafka::OutboundMessage>{};
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> ScoringHandler::Apply(const Input& input,
                                                                          Update update,
                                                                          std::optional<bool> label,
                                                                          bool existing_only) {
  absl::StatusOr<Pending> pending = Prepare(input, std::move(update), label, existing_only);
  if (!pending.ok()) return pending.status();
  return ApplyOne(*pending);
}

absl::StatusOr<ScoringHandler::Pending> ScoringHandler::Prepare(const Input& input, Update update,
                                                                std::optional<bool> label,
                                                                bool existing_only) {
  // One rule set, one model and one processing time per input: the planner may run more than
  // once and must give the same plan for the same state.
  Pending pending;
  pending.input = input;
  pending.update = std::move(update);
  pending.label = label;
  pending.existing_only = existing_only;
  pending.rules = rules_.Current();
  absl::StatusOr<std::shared_ptr<const ConversionModel>> cached =
      model_.Get(pending.rules->model_settings().hash_bits);
  if (!cached.ok()) return cached.status();
  pending.cached = *std::move(cached);
  pending.processed_at = clock_.Now();

  redis::ApplyOnceRequest& request = pending.request;
  request.dedup_key = redis::AppliedKey(kService, input.lead_id, input.event_id);
  request.dedup_ttl = options_.dedup_ttl;
  request.state_keys = {ScoringStore::StateKey(input.lead_id)};
  // Training reads and writes the model with the lead, atomically.
  if (label.has_value()) request.state_keys.push_back(ScoringStore::ModelKey());
  request.registry_key = redis::RegistryKey(kService, input.lead_id);
  request.tombstone_key = redis::TombstoneKey(kService, input.lead_id);
  return pending;
}

absl::StatusOr<redis::Plan> ScoringHandler::PlanFor(Pending& pending,
                                                    const std::vector<redis::Versioned>& records) {
  const Input& input = pending.input;
  const CompiledScoringRules& rules = *pending.rules;
  const ModelSettings& settings = rules.model_settings();
  const std::string& state_key = pending.request.state_keys[0];
  const std::optional<bool>& label = pending.label;
  ScoringLeadState state;
  redis::Plan plan;
  if (pending.existing_only && !records[0].data.has_value()) return plan;
  if (records[0].data.has_value() && !state.ParseFromString(*records[0].data)) {
    return absl::DataLossError("corrupt state " + state_key);
  }
  if (state.history_size() > 0) {
    // Written before the history list existed: the history moves into it now.
    for (redis::Args& command :
         ScoringStore::ReplaceHistoryCommands(input.lead_id, state.history())) {
      plan.extra_commands.push_back(std::move(command));
    }
    state.clear_history();
    plan.register_keys.push_back(ScoringStore::HistoryKey(input.lead_id));
  }

  const ConversionModel* model = pending.cached.get();
  pending.trained.reset();
  if (label.has_value() && state.has_profile()) {
    // Train on the lead as it was when the outcome came, before the outcome changes it.
    std::optional<ConversionModel> current;
    if (records[1].data.has_value()) {
      internal::v1::ConversionModelState stored;
      if (!stored.ParseFromString(*records[1].data)) {
        return absl::DataLossError("corrupt " + ScoringStore::ModelKey());
      }
      absl::StatusOr<ConversionModel> parsed = ConversionModel::FromState(stored);
      if (!parsed.ok()) return parsed.status();
      current = *std::move(parsed);
    } else {
      current.emplace(settings.hash_bits);
    }
    current->Update(LeadFeatures(state.profile(), state.aggregates(), state.score().category()),
                    *label, settings);
    // Written by an extra command, not a plan write: apply-once registers written records in
    // the lead's key registry, and erasing this lead must not delete the shared model. The
    // apply still checks the model's version (it is a state key), so the write is atomic
    // with that check and with this outcome's dedup record.
    plan.extra_commands.push_back({"HSET", ScoringStore::ModelKey(), "v",
                                   absl::StrCat(records[1].version + 1), "d",
                                   current->ToState().SerializeAsString()});
    pending.trained = std::make_shared<const ConversionModel>(*std::move(current));
    model = pending.trained.get();
  }
  pending.update(rules, state);

  std::vector<kafka::OutboundMessage> outputs;
  plan.extra_commands.push_back(ScoringStore::IndexCommand(input.lead_id));
  if (state.has_profile()) {
    const bool first = !state.has_score();
    const ScoreSnapshot previous = state.score();
    const absl::Time scored_at =
        first ? input.event_time
              : std::max(input.event_time, events::FromProto(previous.scored_at()));
    ScoreSnapshot current =
        Score(rules, state.profile(), state.aggregates(), ContextOf(state, model), scored_at);
    // Time alone may change the score later (decay, windows): the decay scheduler looks then.
    plan.extra_commands.push_back(ScoringStore::ScheduleCommand(
        input.lead_id,
        NextChangeAt(rules, state.aggregates(), current, options_.score_bucket, scored_at,
                     state.has_explicit_interest_until()
                         ? events::FromProto(state.explicit_interest_until())
                         : absl::InfiniteFuture())));
    const ScoreChange change = Diff(previous, current, options_.score_bucket);
    for (const std::string& segment : change.segments_entered) {
      plan.extra_commands.push_back({"SADD", ScoringStore::SegmentKey(segment), input.lead_id});
    }
    for (const std::string& segment : change.segments_exited) {
      plan.extra_commands.push_back({"SREM", ScoringStore::SegmentKey(segment), input.lead_id});
    }
    if (first || !change.empty()) {
      events::v1::LeadScored event;
      *event.mutable_envelope() = events::MakeEnvelope({
          .event_id = events::DeriveEventId("scored", input.event_id),
          .lead_id = input.lead_id,
          .occurred_at = scored_at,
          .produced_at = pending.processed_at,
          .causation_id = input.event_id,
          .trace_id = input.trace_id,
          .producer = kService,
      });
      *event.mutable_lead() = state.profile();
      *event.mutable_score() = current;
      if (!first) *event.mutable_previous() = previous;
      for (const std::string& c : change.changed) event.add_changed(c);
      for (const std::string& s : change.segments_entered) event.add_segments_entered(s);
      for (const std::string& s : change.segments_exited) event.add_segments_exited(s);
      outputs.push_back(events::Encode(topics_.Name(kafka::kLeadsScored), input.lead_id, event));
      for (redis::Args& command :
           ScoringStore::PushHistoryCommands(input.lead_id, current, options_.history_size)) {
        plan.extra_commands.push_back(std::move(command));
      }
      plan.register_keys.push_back(ScoringStore::HistoryKey(input.lead_id));
    }
    state.set_conversion_probability(current.conversion_probability());
    *state.mutable_score() = std::move(current);
  }
  plan.writes.push_back({state_key, state.SerializeAsString()});
  plan.memo = kafka::EncodeMemo(outputs);
  return plan;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> ScoringHandler::OutcomeOf(
    Pending& pending, absl::StatusOr<redis::ApplyResult> applied) {
  if (!applied.ok()) return applied.status();
  if (applied->outcome == redis::ApplyOutcome::kApplied && pending.trained != nullptr) {
    model_.Put(std::move(pending.trained));
  }
  std::vector<kafka::OutboundMessage> outputs;
  if (applied->outcome == redis::ApplyOutcome::kErased) return outputs;  // erased: ignore
  if (absl::Status s = kafka::DecodeMemo(applied->memo, &outputs); !s.ok()) return s;
  return outputs;
}

absl::StatusOr<std::vector<kafka::OutboundMessage>> ScoringHandler::ApplyOne(Pending& pending) {
  return OutcomeOf(pending, store_.apply().Run(pending.request,
                                               [&](const std::vector<redis::Versioned>& records) {
                                                 return PlanFor(pending, records);
                                               }));
}

std::vector<kafka::HandleResult> ScoringHandler::ApplyBatch(std::vector<Pending>& pending) {
  std::vector<kafka::HandleResult> results;
  if (pending.empty()) return results;
  std::vector<redis::ApplyOnceRequest> requests;
  requests.reserve(pending.size());
  for (const Pending& p : pending) requests.push_back(p.request);
  std::vector<absl::StatusOr<redis::ApplyResult>> applied = store_.apply().RunBatch(
      requests, [&](size_t i, const std::vector<redis::Versioned>& records) {
        return PlanFor(pending[i], records);
      });
  results.reserve(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    results.push_back(OutcomeOf(pending[i], std::move(applied[i])));
  }
  return results;
}

}  // namespace leadflow::scoring
