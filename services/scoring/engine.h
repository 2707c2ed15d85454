// The scoring engine: a lead's profile and behaviour in, its score, category, interest state,
// lifecycle stage and segments out, every point explained.
//
// Contract:
// - Pure: values in, decisions out. No I/O and no clock: `now` is passed in (the event time of
//   the cause), so the same inputs always give the same snapshot, byte for byte. The handler
//   memoises outputs by input for idempotency and relies on this.
// - CompileScoringRules validates a rule file once, at start-up and reload, and returns an
//   immutable rule set that any number of threads may share.
// - Score never fails: anything that could be wrong was rejected at compile time.
//
// How a score is made (ScoreSnapshot.contributions lists each part, in this order):
//   fit         every FitRule whose conditions hold adds its points (profile and activity
//               fields; score fields do not exist yet).
//   engagement  every EngagementRule counts its activity in its window (time-window decay);
//               `once` gives the points once; otherwise points x count, capped by max_points;
//               nothing below max(min_count, 1) activities.
//   decay       with a half-life, positive engagement halves every half_life_days since the
//               lead's last activity; recorded as one "decay" contribution (negative points).
//   negative    the rule file's negative signals: its condition rules (competitor employees,
//               disqualifying answers), then unsubscribed, hard bounce, lost.
// total is the sum of the contributions, in order, so they add up to it exactly; fit and
// engagement (after decay) are the sums of their kinds. Then category (thresholds, or the
// fit x engagement grid when the rules have one), interest,
// stage and, last, segments, whose conditions may use every field including the new score
// (but not other segments: "segments" reads empty while they are evaluated). With a learned
// model in the context, the conversion probability and its top factors are predicted from the
// profile, the aggregates and the new category before segments are evaluated.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rules/condition.h"
#include "leadflow/config/v1/scoring_rules.pb.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "services/scoring/engine_model.h"

namespace leadflow::scoring {

// Points for the negative signals that come from outside the profile (deliverability, sales
// outcomes), as the rule file's `negative` section sets them (0 = no penalty).
struct NegativeSignalPoints {
  // The lead unsubscribed from marketing.
  double unsubscribed = 0;
  // Mail to the lead hard-bounced: the address is dead.
  double bounced = 0;
  // Sales lost the lead; it must earn more than before to come back to sales.
  double lost = 0;
};

// What the lead's history outside its activity says: sales outcomes, explicit interest, and
// the previous snapshot (for the transitions that must not go backwards).
struct ScoreContext {
  // Stage of the lead's previous snapshot (STAGE_UNSPECIFIED for the first score).
  events::v1::LifecycleStage previous_stage = events::v1::STAGE_UNSPECIFIED;
  // Interest of the previous snapshot; keeps the state steady while the lead is neither fresh
  // nor dormant (last activity 30-90 days ago).
  events::v1::InterestState previous_interest = events::v1::INTEREST_UNSPECIFIED;
  // Stage the latest sales outcome puts the lead in (see StageForOutcome); UNSPECIFIED if none.
  events::v1::LifecycleStage outcome_stage = events::v1::STAGE_UNSPECIFIED;
  // When that outcome was reported. Activity after a lost outcome recycles the lead; a lost
  // outcome without a time never recycles.
  absl::Time outcome_at = absl::InfiniteFuture();
  // Interest stated by the lead or a rep (an interest signal matched an input); overrides the
  // implicit state when set, until `explicit_interest_until`.
  events::v1::InterestState explicit_interest = events::v1::INTEREST_UNSPECIFIED;
  // When the explicit interest lapses; from then on the implicit derivation applies again.
  absl::Time explicit_interest_until = absl::InfiniteFuture();
  // The lead unsubscribed from marketing.
  bool unsubscribed = false;
  // Mail to the lead hard-bounced.
  bool bounced = false;
  // The learned model's latest conversion probability, copied into the snapshot before
  // segments are evaluated so segment rules can use it. Used only without `model`.
  double conversion_probability = 0;
  // The learned model (borrowed): when set, the snapshot's conversion probability and top
  // factors are predicted with it and the rules' model settings.
  const ConversionModel* model = nullptr;
};

// The lifecycle stage a sales outcome implies: contacted -> contacted, qualified -> qualified,
// opportunity -> opportunity, won -> customer, lost -> lost; accepted / rejected / unspecified
// (and kinds this build does not know) -> STAGE_UNSPECIFIED (they say nothing about the lead).
events::v1::LifecycleStage StageForOutcome(events::v1::LeadOutcome::Kind kind);

// A compiled condition rule (fit or negative signal): points when every condition holds.
struct CompiledConditionRule {
  std::string id;
  double points = 0;
  std::string reason;
  rules::CompiledConditions when;
};

// What an explicit interest signal (the rules' `interest` section) says about a lead.
struct ExplicitInterest {
  // INTEREST_INTERESTED, INTEREST_NOT_NOW or INTEREST_DISINTERESTED.
  events::v1::InterestState state = events::v1::INTEREST_UNSPECIFIED;
  // When it lapses: the input's event time + expires_after_days; InfiniteFuture for never.
  absl::Time until = absl::InfiniteFuture();
  // Id of the signal that matched.
  std::string signal_id;
};

// A validated, immutable scoring rule set. Build with CompileScoringRules.
class CompiledScoringRules {
 public:
  const std::string& version() const { return version_; }
  const config::v1::CategoryThresholds& thresholds() const { return thresholds_; }
  const NegativeSignalPoints& negative_points() const { return negative_points_; }
  const ModelSettings& model_settings() const { return model_settings_; }
  // Half-life of engagement in days (0 = none).
  double half_life_days() const { return half_life_days_; }
  const config::v1::ScoringTasks& tasks() const { return tasks_; }
  // Identifies the rule content (FNV-1a of the file's deterministic serialisation without the
  // `model` and `tasks` settings, hex): a change of any rule gives a new fingerprint even when
  // `version` was not bumped.
  const std::string& fingerprint() const { return fingerprint_; }

  // The category of a score: with a category grid, the cell of the fit band of
  // (total - engagement) and the engagement band of `engagement`; otherwise the thresholds that
  // `total` reaches (engagement unused). The fit axis is rounded to a millionth.
  events::v1::Category CategoryFor(double total, double engagement = 0) const;
  bool has_category_grid() const { return !grid_fit_bounds_.empty(); }
  // The grid's engagement bounds (empty without a grid).
  const std::vector<double>& grid_engagement_bounds() const { return grid_engagement_bounds_; }

  // The first interest signal (file order) whose `activity` conditions hold for `activity`,
  // received at event time `at`; nullopt when none does.
  std::optional<ExplicitInterest> InterestFromActivity(const events::v1::Activity& activity,
                                                       absl::Time at) const;
  // The first interest signal whose `outcome` conditions hold for `outcome`, reported at `at`.
  std::optional<ExplicitInterest> InterestFromOutcome(const events::v1::LeadOutcome& outcome,
                                                      absl::Time at) const;
  // Ids of the segments, in file order (the service cleans its segment indexes with them).
  std::vector<std::string> segment_ids() const;

 private:
  using FitRule = CompiledConditionRule;
  struct EngagementRule {
    config::v1::EngagementRule config;
  };
  struct SegmentRule {
    std::string id;
    rules::CompiledConditions when;
  };
  struct InterestSignal {
    std::string id;
    bool on_outcome = false;  // else on activity
    rules::CompiledConditions when;
    events::v1::InterestState state = events::v1::INTEREST_UNSPECIFIED;
    absl::Duration expires_after = absl::InfiniteDuration();
  };
  std::optional<ExplicitInterest> MatchInterest(bool on_outcome, const rules::FieldSource& source,
                                                absl::Time at) const;

  CompiledScoringRules() = default;

  friend absl::StatusOr<std::shared_ptr<const CompiledScoringRules>> CompileScoringRules(
      const config::v1::ScoringRules& rules);
  friend events::v1::ScoreSnapshot Score(const CompiledScoringRules& rules,
                                         const events::v1::LeadProfile& profile,
                                         const events::v1::LeadAggregates& aggregates,
                                         const ScoreContext& context, absl::Time now);

  std::string version_;
  std::vector<FitRule> fit_;
  std::vector<FitRule> negative_rules_;
  std::vector<EngagementRule> engagement_;
  config::v1::CategoryThresholds thresholds_;
  double half_life_days_ = 0;
  std::vector<SegmentRule> segments_;
  std::vector<InterestSignal> interest_;
  // The category grid (empty bounds = none): rows by fit band, columns by engagement band.
  std::vector<double> grid_fit_bounds_;
  std::vector<double> grid_engagement_bounds_;
  std::vector<std::vector<events::v1::Category>> grid_;
  NegativeSignalPoints negative_points_;
  ModelSettings model_settings_;
  config::v1::ScoringTasks tasks_;
  std::string fingerprint_;
};

// Validates `rules` and compiles their conditions. InvalidArgument, naming the path, when:
// a fit/engagement id is empty or repeated (they share the contributions' id space); an
// engagement rule names neither activity_type nor page_category, or a page_category with an
// activity_type other than page_view; window_days is not 0, 1, 7, 30 or 90; min_count or
// max_points is negative; a points value is not finite; thresholds are not 0 < warm <
// qualified < sales_ready (they may be left out when a category grid is given); the category
// grid has no or unsorted or non-finite bounds, a row count other than len(fit_bounds) + 1, a
// row with other than len(engagement_bounds) + 1 categories, or a category that is not cold,
// warm, qualified or sales_ready; an interest signal has an empty or repeated id, not exactly
// one of activity / outcome conditions, an unknown field for its kind, a state other than
// interested, not_now or disinterested, or a negative or non-finite expires_after_days;
// half_life_days is negative; a segment id is empty or repeated; a
// condition is invalid (fit and negative rules may use profile and activity fields, segments any
// field); a negative-signal penalty is not finite; the model settings are invalid
// (CompileModelSettings); or a task setting is negative.
absl::StatusOr<std::shared_ptr<const CompiledScoringRules>> CompileScoringRules(
    const config::v1::ScoringRules& rules);

// Scores one lead at `now`. Activity counts are as of when tracking computed `aggregates`; a
// window whose newest activity is older than the window at `now` counts zero, so windowed
// points expire even when no new activity arrives to refresh the aggregates.
//
// Interest: context.explicit_interest if set and `now` is before context.explicit_interest_until;
// else disinterested if unsubscribed; else from the
// last activity: within 30 days -> interested, over 90 days -> not_now, in between -> unchanged
// (previous_interest, or interested if none); never active -> unspecified.
//
// Stage: new, engaged once there is any activity, qualified once the category is qualified or
// better; a sales outcome lifts it further; it never moves backwards, except that a lost lead
// stays lost until it is active again after the loss, when it is recycled and re-enters at
// engaged (or qualified, by score).
events::v1::ScoreSnapshot Score(const CompiledScoringRules& rules,
                                const events::v1::LeadProfile& profile,
                                const events::v1::LeadAggregates& aggregates,
                                const ScoreContext& context, absl::Time now);

// What changed between two snapshots, in the vocabulary of LeadScored.changed.
struct ScoreChange {
  // Any of "score", "category", "interest", "stage", "segments", in that order.
  std::vector<std::string> changed;
  // Segments in current and not in previous, in current's order.
  std::vector<std::string> segments_entered;
  // Segments in previous and not in current, in previous's order.
  std::vector<std::string> segments_exited;

  // True when nothing routing or nurturing cares about changed: emit no leads.scored.
  bool empty() const { return changed.empty(); }
};

// The earliest time after `now` at which time alone (no new input) could change what Diff
// reports for this lead: a rule window or a segment field's window emptying (newest activity +
// 1, 7, 30 or 90 days), the interest boundary (last activity + 90 days), or half-life decay
// taking the total below the next lower category threshold (with a category grid: engagement
// below the next lower engagement bound) or score bucket boundary, or an explicit interest
// lapsing (`explicit_interest_until`). nullopt when nothing can change with time. The time may be
// early (the re-score then finds no change and asks again) and is at most a minute late (decay
// crossings get a minute's margin so the rounded decay is past the boundary); it is always after
// `now`.
std::optional<absl::Time> NextChangeAt(const CompiledScoringRules& rules,
                                       const events::v1::LeadAggregates& aggregates,
                                       const events::v1::ScoreSnapshot& snapshot,
                                       double score_bucket, absl::Time now,
                                       absl::Time explicit_interest_until = absl::InfiniteFuture());

// Compares two snapshots. "score" changes when floor(total / score_bucket) differs, so small
// wobbles (a page view worth one point) do not flood downstream; score_bucket <= 0 compares
// totals exactly. Contributions, scored_at and rules_version are not compared.
ScoreChange Diff(const events::v1::ScoreSnapshot& previous,
                 const events::v1::ScoreSnapshot& current, double score_bucket);

}  // namespace leadflow::scoring
