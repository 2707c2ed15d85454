#include "services/scoring/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/rules/field_source.h"
#include "common/rules/time_util.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace leadflow::scoring {
namespace {

using config::v1::EngagementRule;
using config::v1::ScoringRules;
using events::v1::ActivityCounts;
using events::v1::Category;
using events::v1::Contribution;
using events::v1::InterestState;
using events::v1::LeadAggregates;
using events::v1::LifecycleStage;
using events::v1::ScoreSnapshot;

constexpr absl::Duration kDay = absl::Hours(24);
// Interest follows recency: active this month is interested; silent for a quarter is "not now".
constexpr absl::Duration kInterestedWithin = absl::Hours(30 * 24);
constexpr absl::Duration kNotNowAfter = absl::Hours(90 * 24);

absl::Status Invalid(absl::string_view path, absl::string_view message,
                     absl::string_view rule_id = {}) {
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": ", message, rule_id.empty() ? "" : absl::StrCat(" (rule '", rule_id, "')")));
}

// Rounds to hundredths. Decay is the only computed (non-configured) amount of points; rounding
// it keeps explanations readable ("-12.5", not "-12.499999999") and totals stable across
// platforms.
double RoundToHundredths(double value) { return std::round(value * 100) / 100; }

bool IsValidWindow(int days) {
  return days == 0 || days == 1 || days == 7 || days == 30 || days == 90;
}

std::string WindowText(int days) {
  if (days == 0) return "all time";
  if (days == 1) return "the last day";
  return absl::StrCat("the last ", days, " days");
}

std::string DaysText(absl::Duration duration) {
  const double days = std::floor(absl::ToDoubleHours(duration) / 24 * 10) / 10;
  return absl::StrCat(rules::FormatNumber(days), days == 1 ? " day" : " days");
}

// The counts an engagement rule reads: a page category's page views, or an activity type's.
const ActivityCounts* CountsFor(const EngagementRule& rule, const LeadAggregates& aggregates) {
  const auto& map =
      rule.page_category().empty() ? aggregates.by_type() : aggregates.by_page_category();
  const std::string& key =
      rule.page_category().empty() ? rule.activity_type() : rule.page_category();
  const auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

// The count in the rule's window at `now`. Tracking computed the windows when the latest
// activity arrived; if the newest activity of this kind is already older than the window at
// `now`, none of them is still inside it, so the window is empty. (Within the window the stored
// count is the best we know: the aggregates carry no per-activity times.)
int64_t WindowedCount(const ActivityCounts& counts, int window_days,
                      const LeadAggregates& aggregates, absl::Time now) {
  if (window_days == 0) return counts.total();
  int64_t count = 0;
  switch (window_days) {
    case 1:
      count = counts.last_1d();
      break;
    case 7:
      count = counts.last_7d();
      break;
    case 30:
      count = counts.last_30d();
      break;
    default:
      count = counts.last_90d();
      break;
  }
  std::optional<absl::Time> newest;
  if (counts.has_last_at()) {
    newest = rules::ToTime(counts.last_at());
  } else if (aggregates.has_last_seen_at()) {
    newest = rules::ToTime(aggregates.last_seen_at());
  }
  if (newest.has_value() && now - *newest >= window_days * kDay) return 0;
  return count;
}

// FNV-1a of the rule file's deterministic serialisation: equal content, equal fingerprint. The
// model and task settings are left out: they change no category, stage or segment, so changing
// them must not start a re-score of every lead.
std::string Fingerprint(ScoringRules rules) {
  rules.clear_model();
  rules.clear_tasks();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    rules.SerializeToCodedStream(&coded);
  }
  uint64_t hash = 14695981039346656037ull;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return absl::StrFormat("%016x", hash);
}

// Compiles a list of condition rules (fit, or negative signals) under `path`.
absl::Status CompileConditionRules(
    const google::protobuf::RepeatedPtrField<config::v1::FitRule>& rules, absl::string_view path,
    absl::flat_hash_set<std::string>& rule_ids, std::vector<CompiledConditionRule>& out) {
  for (int i = 0; i < rules.size(); ++i) {
    const config::v1::FitRule& rule = rules.Get(i);
    const std::string rule_path = absl::StrCat(path, "[", i, "]");
    if (rule.id().empty()) return Invalid(absl::StrCat(rule_path, ".id"), "empty rule id");
    if (!rule_ids.insert(rule.id()).second) {
      return Invalid(absl::StrCat(rule_path, ".id"),
                     absl::StrCat("duplicate rule id '", rule.id(), "'"));
    }
    if (!std::isfinite(rule.points())) {
      return Invalid(absl::StrCat(rule_path, ".points"), "must be finite", rule.id());
    }
    absl::StatusOr<rules::CompiledConditions> when =
        rules::CompileLeadConditions(rule.when(), absl::StrCat(rule_path, ".when"),
                                     rules::kProfileFields | rules::kActivityFields, rule.id());
    if (!when.ok()) return when.status();
    out.push_back({rule.id(), rule.points(),
                   rule.reason().empty() ? when->Describe() : rule.reason(), *std::move(when)});
  }
  return absl::OkStatus();
}

// --- Interest signals: conditions over the incoming activity or outcome. ---

constexpr absl::string_view kPropertiesPrefix = "properties.";

// A Struct value as condition values: strings as they are, numbers and bools as text, lists
// element by element; null and nested structs give none.
void AppendValues(const google::protobuf::Value& value, std::vector<std::string>& out) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kStringValue:
      if (!value.string_value().empty()) out.push_back(value.string_value());
      break;
    case google::protobuf::Value::kNumberValue:
      out.push_back(rules::FormatNumber(value.number_value()));
      break;
    case google::protobuf::Value::kBoolValue:
      out.push_back(value.bool_value() ? "true" : "false");
      break;
    case google::protobuf::Value::kListValue:
      for (const google::protobuf::Value& element : value.list_value().values()) {
        if (element.kind_case() != google::protobuf::Value::kListValue) {
          AppendValues(element, out);
        }
      }
      break;
    default:
      break;
  }
}

// The fields of one incoming activity: type, name, page_category, url, properties.<path>.
class ActivityFields final : public rules::FieldSource {
 public:
  explicit ActivityFields(const events::v1::Activity& activity) : activity_(activity) {}

  std::vector<std::string> Values(absl::string_view field) const override {
    std::vector<std::string> out;
    auto add = [&](const std::string& value) {
      if (!value.empty()) out.push_back(value);
    };
    if (field == "type") {
      add(activity_.type());
    } else if (field == "name") {
      add(activity_.name());
    } else if (field == "page_category") {
      add(activity_.page_category());
    } else if (field == "url") {
      add(activity_.url());
    } else if (absl::StartsWith(field, kPropertiesPrefix)) {
      const google::protobuf::Struct* level = &activity_.properties();
      const std::vector<absl::string_view> path =
          absl::StrSplit(field.substr(kPropertiesPrefix.size()), '.');
      for (size_t i = 0; i < path.size(); ++i) {
        const auto it = level->fields().find(std::string(path[i]));
        if (it == level->fields().end()) break;
        if (i + 1 == path.size()) {
          AppendValues(it->second, out);
        } else if (it->second.has_struct_value()) {
          level = &it->second.struct_value();
        } else {
          break;
        }
      }
    }
    return out;
  }

 private:
  const events::v1::Activity& activity_;
};

// The fields of one incoming sales outcome: kind (lower-case name), reason, rep_id, team_id.
class OutcomeFields final : public rules::FieldSource {
 public:
  explicit OutcomeFields(const events::v1::LeadOutcome& outcome) : outcome_(outcome) {}

  std::vector<std::string> Values(absl::string_view field) const override {
    std::vector<std::string> out;
    auto add = [&](const std::string& value) {
      if (!value.empty()) out.push_back(value);
    };
    if (field == "kind") {
      if (outcome_.kind() != events::v1::LeadOutcome::KIND_UNSPECIFIED) {
        add(rules::EnumValueName(outcome_.kind()));
      }
    } else if (field == "reason") {
      add(outcome_.reason());
    } else if (field == "rep_id") {
      add(outcome_.rep_id());
    } else if (field == "team_id") {
      add(outcome_.team_id());
    }
    return out;
  }

 private:
  const events::v1::LeadOutcome& outcome_;
};

// Checks the fields of an interest signal's conditions (the lead-field catalogue does not apply:
// they read the incoming activity or outcome).
absl::Status ValidateSignalFields(const rules::ConditionList& conditions, bool on_outcome,
                                  absl::string_view path, absl::string_view id) {
  for (int i = 0; i < conditions.size(); ++i) {
    const config::v1::Condition& condition = conditions.Get(i);
    const std::string field_path = absl::StrCat(path, "[", i, "].field");
    const std::string& field = condition.field();
    if (on_outcome) {
      if (field != "kind" && field != "reason" && field != "rep_id" && field != "team_id") {
        return Invalid(
            field_path,
            absl::StrCat("unknown outcome field '", field, "' (kind, reason, rep_id or team_id)"),
            id);
      }
      if (field != "kind") continue;
      if (condition.has_range()) return Invalid(field_path, "kind is not a number", id);
      std::vector<std::string> values;
      if (condition.has_equals()) values.push_back(condition.equals());
      if (condition.has_in())
        values.assign(condition.in().values().begin(), condition.in().values().end());
      const google::protobuf::EnumDescriptor* kinds =
          google::protobuf::GetEnumDescriptor<events::v1::LeadOutcome::Kind>();
      for (const std::string& value : values) {
        bool known = false;
        for (int k = 1; k < kinds->value_count(); ++k) {
          known |= absl::EqualsIgnoreCase(rules::EnumValueName(*kinds->value(k)), value);
        }
        if (!known) {
          return Invalid(field_path, absl::StrCat("unknown outcome kind '", value, "'"), id);
        }
      }
    } else {
      const bool known =
          field == "type" || field == "name" || field == "page_category" || field == "url" ||
          (absl::StartsWith(field, kPropertiesPrefix) && field.size() > kPropertiesPrefix.size());
      if (!known) {
        return Invalid(field_path,
                       absl::StrCat("unknown activity field '", field,
                                    "' (type, name, page_category, url or properties.<key>)"),
                       id);
      }
    }
  }
  return absl::OkStatus();
}

std::optional<InterestState> ParseInterestState(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "interested") return events::v1::INTEREST_INTERESTED;
  if (lower == "not_now") return events::v1::INTEREST_NOT_NOW;
  if (lower == "disinterested") return events::v1::INTEREST_DISINTERESTED;
  return std::nullopt;
}

std::optional<Category> ParseCategory(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "cold") return events::v1::CATEGORY_COLD;
  if (lower == "warm") return events::v1::CATEGORY_WARM;
  if (lower == "qualified") return events::v1::CATEGORY_QUALIFIED;
  if (lower == "sales_ready") return events::v1::CATEGORY_SALES_READY;
  return std::nullopt;
}

// Validates band bounds: at least one, finite, strictly ascending.
absl::Status ValidateBounds(const google::protobuf::RepeatedField<double>& bounds,
                            absl::string_view path) {
  if (bounds.empty()) return Invalid(path, "needs at least one bound");
  for (int i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds.Get(i))) {
      return Invalid(absl::StrCat(path, "[", i, "]"), "must be finite");
    }
    if (i > 0 && !(bounds.Get(i) > bounds.Get(i - 1))) {
      return Invalid(absl::StrCat(path, "[", i, "]"),
                     absl::StrCat("must be above the previous bound (",
                                  rules::FormatNumber(bounds.Get(i - 1)), ")"));
    }
  }
  return absl::OkStatus();
}

// Thresholds must rise: 0 < warm < qualified < sales_ready, all finite.
absl::Status ValidateThresholds(const config::v1::CategoryThresholds& thresholds) {
  if (!(thresholds.warm() > 0) || !std::isfinite(thresholds.warm())) {
    return Invalid("scoring.thresholds.warm", "must be > 0");
  }
  if (!(thresholds.qualified() > thresholds.warm()) || !std::isfinite(thresholds.qualified())) {
    return Invalid(
        "scoring.thresholds.qualified",
        absl::StrCat("must be above warm (", rules::FormatNumber(thresholds.warm()), ")"));
  }
  if (!(thresholds.sales_ready() > thresholds.qualified()) ||
      !std::isfinite(thresholds.sales_ready())) {
    return Invalid("scoring.thresholds.sales_ready",
                   absl::StrCat("must be above qualified (",
                                rules::FormatNumber(thresholds.qualified()), ")"));
  }
  return absl::OkStatus();
}

// The band of `value`: the number of bounds at or below it.
size_t BandOf(const std::vector<double>& bounds, double value) {
  return static_cast<size_t>(std::upper_bound(bounds.begin(), bounds.end(), value) -
                             bounds.begin());
}

bool HasActivity(const LeadAggregates& aggregates) {
  if (aggregates.has_last_seen_at()) return true;
  for (const auto& [type, counts] : aggregates.by_type()) {
    if (counts.total() > 0) return true;
  }
  return false;
}

Contribution MakeContribution(absl::string_view rule_id, absl::string_view kind, double points,
                              std::string reason) {
  Contribution out;
  out.set_rule_id(std::string(rule_id));
  out.set_kind(std::string(kind));
  out.set_points(points);
  out.set_reason(std::move(reason));
  return out;
}

InterestState DeriveInterest(const ScoreContext& context, const LeadAggregates& aggregates,
                             absl::Time now) {
  // An explicit statement wins while it lasts; afterwards behaviour speaks again.
  if (context.explicit_interest != events::v1::INTEREST_UNSPECIFIED &&
      now < context.explicit_interest_until) {
    return context.explicit_interest;
  }
  if (context.unsubscribed) return events::v1::INTEREST_DISINTERESTED;
  if (!aggregates.has_last_seen_at()) return events::v1::INTEREST_UNSPECIFIED;
  const absl::Duration quiet = now - rules::ToTime(aggregates.last_seen_at());
  if (quiet <= kInterestedWithin) return events::v1::INTEREST_INTERESTED;
  if (quiet > kNotNowAfter) return events::v1::INTEREST_NOT_NOW;
  // In between, keep the previous state: neither fresh enough to call interested again nor
  // quiet long enough to call "not now", and flapping would spam downstream.
  return context.previous_interest != events::v1::INTEREST_UNSPECIFIED
             ? context.previous_interest
             : events::v1::INTEREST_INTERESTED;
}

// Funnel order of the stages that only move forward (new < contacted < ... < customer); the
// enum numbers follow it. Lost is handled separately.
LifecycleStage Later(LifecycleStage a, LifecycleStage b) {
  return static_cast<int>(a) >= static_cast<int>(b) ? a : b;
}

LifecycleStage DeriveStage(const ScoreContext& context, Category category,
                           const LeadAggregates& aggregates) {
  LifecycleStage natural =
      HasActivity(aggregates) ? events::v1::STAGE_ENGAGED : events::v1::STAGE_NEW;
  if (category >= events::v1::CATEGORY_QUALIFIED) natural = events::v1::STAGE_QUALIFIED;

  if (context.outcome_stage == events::v1::STAGE_LOST) {
    // Lost leads are recycled, not deleted: activity after the loss starts a fresh episode
    // from the lead's own behaviour, ignoring the stages of the lost one.
    const bool active_since_loss = aggregates.has_last_seen_at() &&
                                   rules::ToTime(aggregates.last_seen_at()) > context.outcome_at;
    if (!active_since_loss) return events::v1::STAGE_LOST;
    // Within the new episode the stage still only moves forward.
    return context.previous_stage == events::v1::STAGE_LOST
               ? natural
               : Later(natural, context.previous_stage);
  }
  LifecycleStage stage = natural;
  if (context.outcome_stage != events::v1::STAGE_UNSPECIFIED) {
    stage = Later(stage, context.outcome_stage);
  }
  if (context.previous_stage != events::v1::STAGE_LOST) {
    stage = Later(stage, context.previous_stage);
  }
  return stage;
}

}  // namespace

events::v1::LifecycleStage StageForOutcome(events::v1::LeadOutcome::Kind kind) {
  switch (kind) {
    case events::v1::LeadOutcome::KIND_CONTACTED:
      return events::v1::STAGE_CONTACTED;
    case events::v1::LeadOutcome::KIND_QUALIFIED:
      return events::v1::STAGE_QUALIFIED;
    case events::v1::LeadOutcome::KIND_OPPORTUNITY:
      return events::v1::STAGE_OPPORTUNITY;
    case events::v1::LeadOutcome::KIND_WON:
      return events::v1::STAGE_CUSTOMER;
    case events::v1::LeadOutcome::KIND_LOST:
      return events::v1::STAGE_LOST;
    default:
      return events::v1::STAGE_UNSPECIFIED;
  }
}

Category CompiledScoringRules::CategoryFor(double total, double engagement) const {
  if (has_category_grid()) {
    // The fit axis is everything that does not decay: fit rules and negative signals. Rounded
    // to a millionth: the subtraction leaves binary noise (69.99 - 39.99 = 29.999999999999996),
    // and configured points and rounded decay have no digits that fine.
    const double fit_axis = std::round((total - engagement) * 1e6) / 1e6;
    return grid_[BandOf(grid_fit_bounds_, fit_axis)][BandOf(grid_engagement_bounds_, engagement)];
  }
  if (total >= thresholds_.sales_ready()) return events::v1::CATEGORY_SALES_READY;
  if (total >= thresholds_.qualified()) return events::v1::CATEGORY_QUALIFIED;
  if (total >= thresholds_.warm()) return events::v1::CATEGORY_WARM;
  return events::v1::CATEGORY_COLD;
}

std::optional<ExplicitInterest> CompiledScoringRules::MatchInterest(
    bool on_outcome, const rules::FieldSource& source, absl::Time at) const {
  for (const InterestSignal& signal : interest_) {
    if (signal.on_outcome != on_outcome || !signal.when.Evaluate(source)) continue;
    ExplicitInterest out;
    out.state = signal.state;
    out.until = signal.expires_after == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                                 : at + signal.expires_after;
    out.signal_id = signal.id;
    return out;
  }
  return std::nullopt;
}

std::optional<ExplicitInterest> CompiledScoringRules::InterestFromActivity(
    const events::v1::Activity& activity, absl::Time at) const {
  return MatchInterest(/*on_outcome=*/false, ActivityFields(activity), at);
}

std::optional<ExplicitInterest> CompiledScoringRules::InterestFromOutcome(
    const events::v1::LeadOutcome& outcome, absl::Time at) const {
  return MatchInterest(/*on_outcome=*/true, OutcomeFields(outcome), at);
}

std::vector<std::string> CompiledScoringRules::segment_ids() const {
  std::vector<std::string> ids;
  ids.reserve(segments_.size());
  for (const SegmentRule& segment : segments_) ids.push_back(segment.id);
  return ids;
}

absl::StatusOr<std::shared_ptr<const CompiledScoringRules>> CompileScoringRules(
    const ScoringRules& rules) {
  // make_shared cannot reach the private constructor.
  std::shared_ptr<CompiledScoringRules> out(new CompiledScoringRules());
  out->version_ = rules.version();

  // Fit, negative and engagement ids share one namespace: they all name contributions.
  absl::flat_hash_set<std::string> rule_ids;
  if (absl::Status s = CompileConditionRules(rules.fit(), "scoring.fit", rule_ids, out->fit_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CompileConditionRules(rules.negative().rules(), "scoring.negative.rules",
                                             rule_ids, out->negative_rules_);
      !s.ok()) {
    return s;
  }
  const config::v1::NegativeSignals& negative = rules.negative();
  for (const auto& [name, points] :
       {std::pair<const char*, double>{"unsubscribed", negative.unsubscribed()},
        {"bounced", negative.bounced()},
        {"lost", negative.lost()}}) {
    if (!std::isfinite(points)) {
      return Invalid(absl::StrCat("scoring.negative.", name), "must be finite");
    }
  }
  out->negative_points_ = {negative.unsubscribed(), negative.bounced(), negative.lost()};

  absl::StatusOr<ModelSettings> model = CompileModelSettings(rules.model());
  if (!model.ok()) return model.status();
  out->model_settings_ = *model;
  const config::v1::ScoringTasks& tasks = rules.tasks();
  if (tasks.decay_interval_ms() < 0)
    return Invalid("scoring.tasks.decay_interval_ms", "must be >= 0");
  if (tasks.decay_max_claims_per_pass() < 0) {
    return Invalid("scoring.tasks.decay_max_claims_per_pass", "must be >= 0");
  }
  if (!std::isfinite(tasks.rescore_leads_per_second()) || tasks.rescore_leads_per_second() < 0) {
    return Invalid("scoring.tasks.rescore_leads_per_second", "must be >= 0");
  }
  out->tasks_ = tasks;
  out->fingerprint_ = Fingerprint(rules);

  for (int i = 0; i < rules.engagement_size(); ++i) {
    const EngagementRule& rule = rules.engagement(i);
    const std::string path = absl::StrCat("scoring.engagement[", i, "]");
    if (rule.id().empty()) return Invalid(absl::StrCat(path, ".id"), "empty rule id");
    if (!rule_ids.insert(rule.id()).second) {
      return Invalid(absl::StrCat(path, ".id"),
                     absl::StrCat("duplicate rule id '", rule.id(), "'"));
    }
    if (rule.activity_type().empty() && rule.page_category().empty()) {
      return Invalid(path, "needs an activity_type or a page_category", rule.id());
    }
    if (!rule.page_category().empty() && !rule.activity_type().empty() &&
        rule.activity_type() != "page_view") {
      return Invalid(absl::StrCat(path, ".activity_type"),
                     absl::StrCat("page_category counts page views; activity_type must be empty "
                                  "or page_view, not '",
                                  rule.activity_type(), "'"),
                     rule.id());
    }
    if (!IsValidWindow(rule.window_days())) {
      return Invalid(absl::StrCat(path, ".window_days"),
                     absl::StrCat(rule.window_days(), " is not one of 0, 1, 7, 30, 90"), rule.id());
    }
    if (!std::isfinite(rule.points())) {
      return Invalid(absl::StrCat(path, ".points"), "must be finite", rule.id());
    }
    if (!std::isfinite(rule.max_points()) || rule.max_points() < 0) {
      return Invalid(absl::StrCat(path, ".max_points"), "must be >= 0 (0 = uncapped)", rule.id());
    }
    if (rule.min_count() < 0) {
      return Invalid(absl::StrCat(path, ".min_count"), "must be >= 0", rule.id());
    }
    out->engagement_.push_back({rule});
  }

  const config::v1::CategoryThresholds& thresholds = rules.thresholds();
  if (rules.has_category_grid()) {
    const config::v1::CategoryGrid& grid = rules.category_grid();
    if (absl::Status s = ValidateBounds(grid.fit_bounds(), "scoring.category_grid.fit_bounds");
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            ValidateBounds(grid.engagement_bounds(), "scoring.category_grid.engagement_bounds");
        !s.ok()) {
      return s;
    }
    if (grid.rows_size() != grid.fit_bounds_size() + 1) {
      return Invalid("scoring.category_grid.rows",
                     absl::StrCat("needs one row per fit band (", grid.fit_bounds_size() + 1,
                                  "), not ", grid.rows_size()));
    }
    for (int r = 0; r < grid.rows_size(); ++r) {
      const config::v1::CategoryGridRow& row = grid.rows(r);
      const std::string path = absl::StrCat("scoring.category_grid.rows[", r, "].categories");
      if (row.categories_size() != grid.engagement_bounds_size() + 1) {
        return Invalid(path, absl::StrCat("needs one category per engagement band (",
                                          grid.engagement_bounds_size() + 1, "), not ",
                                          row.categories_size()));
      }
      std::vector<Category> categories;
      for (int c = 0; c < row.categories_size(); ++c) {
        const std::optional<Category> category = ParseCategory(row.categories(c));
        if (!category.has_value()) {
          return Invalid(absl::StrCat(path, "[", c, "]"),
                         absl::StrCat("unknown category '", row.categories(c),
                                      "' (cold, warm, qualified or sales_ready)"));
        }
        categories.push_back(*category);
      }
      out->grid_.push_back(std::move(categories));
    }
    out->grid_fit_bounds_.assign(grid.fit_bounds().begin(), grid.fit_bounds().end());
    out->grid_engagement_bounds_.assign(grid.engagement_bounds().begin(),
                                        grid.engagement_bounds().end());
  }
  // With a grid the thresholds are optional: checked only when given.
  const bool thresholds_given =
      rules.has_thresholds() &&
      (thresholds.warm() != 0 || thresholds.qualified() != 0 || thresholds.sales_ready() != 0);
  if (absl::Status s = (rules.has_category_grid() && !thresholds_given)
                           ? absl::OkStatus()
                           : ValidateThresholds(thresholds);
      !s.ok()) {
    return s;
  }
  out->thresholds_ = thresholds;

  absl::flat_hash_set<std::string> signal_ids;
  for (int i = 0; i < rules.interest_size(); ++i) {
    const config::v1::InterestSignal& signal = rules.interest(i);
    const std::string path = absl::StrCat("scoring.interest[", i, "]");
    if (signal.id().empty()) return Invalid(absl::StrCat(path, ".id"), "empty signal id");
    if (!signal_ids.insert(signal.id()).second) {
      return Invalid(absl::StrCat(path, ".id"),
                     absl::StrCat("duplicate signal id '", signal.id(), "'"));
    }
    if (signal.activity().empty() == signal.outcome().empty()) {
      return Invalid(path, "needs exactly one of activity or outcome conditions", signal.id());
    }
    const bool on_outcome = !signal.outcome().empty();
    const rules::ConditionList& conditions = on_outcome ? signal.outcome() : signal.activity();
    const std::string when_path = absl::StrCat(path, on_outcome ? ".outcome" : ".activity");
    if (absl::Status s = ValidateSignalFields(conditions, on_outcome, when_path, signal.id());
        !s.ok()) {
      return s;
    }
    absl::StatusOr<rules::CompiledConditions> when =
        rules::CompiledConditions::Compile(conditions, when_path, signal.id());
    if (!when.ok()) return when.status();
    const std::optional<InterestState> state = ParseInterestState(signal.state());
    if (!state.has_value()) {
      return Invalid(
          absl::StrCat(path, ".state"),
          absl::StrCat("'", signal.state(), "' is not one of interested, not_now, disinterested"),
          signal.id());
    }
    if (!std::isfinite(signal.expires_after_days()) || signal.expires_after_days() < 0) {
      return Invalid(absl::StrCat(path, ".expires_after_days"), "must be >= 0 (0 = never)",
                     signal.id());
    }
    CompiledScoringRules::InterestSignal compiled;
    compiled.id = signal.id();
    compiled.on_outcome = on_outcome;
    compiled.when = *std::move(when);
    compiled.state = *state;
    if (signal.expires_after_days() > 0) {
      compiled.expires_after = absl::Seconds(signal.expires_after_days() * 86400);
    }
    out->interest_.push_back(std::move(compiled));
  }

  const double half_life = rules.decay().half_life_days();
  if (!std::isfinite(half_life) || half_life < 0) {
    return Invalid("scoring.decay.half_life_days", "must be >= 0 (0 = no half-life decay)");
  }
  out->half_life_days_ = half_life;

  absl::flat_hash_set<std::string> segment_ids;
  for (int i = 0; i < rules.segments_size(); ++i) {
    const config::v1::SegmentRule& segment = rules.segments(i);
    const std::string path = absl::StrCat("scoring.segments[", i, "]");
    if (segment.id().empty()) return Invalid(absl::StrCat(path, ".id"), "empty segment id");
    if (!segment_ids.insert(segment.id()).second) {
      return Invalid(absl::StrCat(path, ".id"),
                     absl::StrCat("duplicate segment id '", segment.id(), "'"));
    }
    absl::StatusOr<rules::CompiledConditions> when = rules::CompileLeadConditions(
        segment.when(), absl::StrCat(path, ".when"), rules::kAllFields, segment.id());
    if (!when.ok()) return when.status();
    out->segments_.push_back({segment.id(), *std::move(when)});
  }
  return std::shared_ptr<const CompiledScoringRules>(std::move(out));
}

ScoreSnapshot Score(const CompiledScoringRules& rules, const events::v1::LeadProfile& profile,
                    const LeadAggregates& aggregates, const ScoreContext& context, absl::Time now) {
  ScoreSnapshot snapshot;
  auto& contributions = *snapshot.mutable_contributions();

  // Fit: profile (and behaviour) properties. Score fields do not exist yet.
  const rules::LeadFields fields(profile, nullptr, &aggregates);
  for (const CompiledScoringRules::FitRule& rule : rules.fit_) {
    if (rule.points != 0 && rule.when.Evaluate(fields)) {
      *contributions.Add() = MakeContribution(rule.id, "fit", rule.points, rule.reason);
    }
  }

  // Engagement: windowed activity counts.
  double engagement_before_decay = 0;
  for (const CompiledScoringRules::EngagementRule& compiled : rules.engagement_) {
    const EngagementRule& rule = compiled.config;
    const ActivityCounts* counts = CountsFor(rule, aggregates);
    if (counts == nullptr) continue;
    const int64_t count = WindowedCount(*counts, rule.window_days(), aggregates, now);
    if (count < std::max<int64_t>(rule.min_count(), 1)) continue;
    double points = rule.once() ? rule.points() : rule.points() * static_cast<double>(count);
    bool capped = false;
    if (rule.max_points() > 0 && std::abs(points) > rule.max_points()) {
      points = std::copysign(rule.max_points(), points);
      capped = true;
    }
    if (points == 0) continue;
    const std::string what = !rule.reason().empty() ? rule.reason()
                             : rule.page_category().empty()
                                 ? rule.activity_type()
                                 : absl::StrCat(rule.page_category(), " page views");
    *contributions.Add() = MakeContribution(
        rule.id(), "engagement", points,
        absl::StrCat(
            what, " (", count, " in ", WindowText(rule.window_days()),
            capped ? absl::StrCat(", capped at ", rules::FormatNumber(rule.max_points())) : "",
            ")"));
    engagement_before_decay += points;
  }

  // Half-life decay of engagement by inactivity. Only a positive balance decays: forgetting a
  // penalty (competitor visits) by going quiet would reward silence.
  if (rules.half_life_days_ > 0 && engagement_before_decay > 0 && aggregates.has_last_seen_at()) {
    const absl::Duration quiet = now - rules::ToTime(aggregates.last_seen_at());
    if (quiet > absl::ZeroDuration()) {
      const double half_lives = absl::ToDoubleHours(quiet) / 24 / rules.half_life_days_;
      const double decayed = RoundToHundredths(engagement_before_decay * std::exp2(-half_lives));
      const double decay = RoundToHundredths(decayed - engagement_before_decay);
      if (decay != 0) {
        *contributions.Add() = MakeContribution(
            "decay.half_life", "decay", decay,
            absl::StrCat("no activity for ", DaysText(quiet), "; engagement halves every ",
                         rules::FormatNumber(rules.half_life_days_), " days"));
      }
    }
  }

  // Negative signals: the file's condition rules (who the lead is), then the signals from
  // outside the profile (deliverability, sales outcomes).
  for (const CompiledScoringRules::FitRule& rule : rules.negative_rules_) {
    if (rule.points != 0 && rule.when.Evaluate(fields)) {
      *contributions.Add() = MakeContribution(rule.id, "negative", rule.points, rule.reason);
    }
  }
  const NegativeSignalPoints& negative = rules.negative_points_;
  if (context.unsubscribed && negative.unsubscribed != 0) {
    *contributions.Add() = MakeContribution("negative.unsubscribed", "negative",
                                            negative.unsubscribed, "unsubscribed from marketing");
  }
  if (context.bounced && negative.bounced != 0) {
    *contributions.Add() =
        MakeContribution("negative.bounced", "negative", negative.bounced, "e-mail hard-bounced");
  }
  if (context.outcome_stage == events::v1::STAGE_LOST && negative.lost != 0) {
    *contributions.Add() =
        MakeContribution("negative.lost", "negative", negative.lost, "lost by sales");
  }

  // Sum in contribution order, so the contributions add up to the total exactly.
  double total = 0;
  double fit = 0;
  double engagement = 0;
  for (const Contribution& contribution : contributions) {
    total += contribution.points();
    if (contribution.kind() == "fit") fit += contribution.points();
    if (contribution.kind() == "engagement" || contribution.kind() == "decay") {
      engagement += contribution.points();
    }
  }
  snapshot.set_fit(fit);
  snapshot.set_engagement(engagement);
  snapshot.set_total(total);
  snapshot.set_category(rules.CategoryFor(total, engagement));
  snapshot.set_interest(DeriveInterest(context, aggregates, now));
  snapshot.set_stage(DeriveStage(context, snapshot.category(), aggregates));
  if (context.model != nullptr) {
    Prediction prediction = context.model->Predict(
        LeadFeatures(profile, aggregates, snapshot.category()), rules.model_settings_);
    snapshot.set_conversion_probability(prediction.probability);
    for (events::v1::Factor& factor : prediction.top_factors) {
      *snapshot.add_top_factors() = std::move(factor);
    }
  } else {
    snapshot.set_conversion_probability(context.conversion_probability);
  }
  snapshot.set_rules_version(rules.version_);
  *snapshot.mutable_scored_at() = rules::ToTimestamp(now);

  // Segments last: their conditions may use the score just computed.
  const rules::LeadFields scored_fields(profile, &snapshot, &aggregates);
  std::vector<std::string> segments;
  for (const CompiledScoringRules::SegmentRule& segment : rules.segments_) {
    if (segment.when.Evaluate(scored_fields)) segments.push_back(segment.id);
  }
  for (std::string& segment : segments) snapshot.add_segments(std::move(segment));
  return snapshot;
}

std::optional<absl::Time> NextChangeAt(const CompiledScoringRules& rules,
                                       const LeadAggregates& aggregates,
                                       const ScoreSnapshot& snapshot, double score_bucket,
                                       absl::Time now, absl::Time explicit_interest_until) {
  std::optional<absl::Time> next;
  auto consider = [&](absl::Time t) {
    if (t > now && (!next.has_value() || t < *next)) next = t;
  };
  // An explicit interest lapsing hands interest back to the implicit derivation.
  if (explicit_interest_until != absl::InfiniteFuture()) consider(explicit_interest_until);
  // Windows emptying: every window of every count, since segment conditions may read any of
  // them, not only the windows the engagement rules use.
  auto windows = [&](const ActivityCounts& counts) {
    std::optional<absl::Time> newest;
    if (counts.has_last_at()) {
      newest = rules::ToTime(counts.last_at());
    } else if (aggregates.has_last_seen_at()) {
      newest = rules::ToTime(aggregates.last_seen_at());
    }
    if (!newest.has_value()) return;
    const std::pair<int, int64_t> window_counts[] = {{1, counts.last_1d()},
                                                     {7, counts.last_7d()},
                                                     {30, counts.last_30d()},
                                                     {90, counts.last_90d()}};
    for (const auto& [days, count] : window_counts) {
      if (count > 0) consider(*newest + days * kDay);
    }
  };
  for (const auto& [type, counts] : aggregates.by_type()) windows(counts);
  for (const auto& [page, counts] : aggregates.by_page_category()) windows(counts);
  if (!aggregates.has_last_seen_at()) return next;
  const absl::Time last_seen = rules::ToTime(aggregates.last_seen_at());
  // Interest turns "not now" once the quiet exceeds 90 days.
  consider(last_seen + kNotNowAfter + absl::Milliseconds(1));

  // Half-life decay: when does the total fall below the next boundary down?
  double engagement = 0;
  for (const Contribution& c : snapshot.contributions()) {
    if (c.kind() == "engagement") engagement += c.points();
  }
  if (rules.half_life_days() <= 0 || engagement <= 0) return next;
  const double total = snapshot.total();
  const double rest = total - snapshot.engagement();  // everything that does not decay
  // The highest engagement (after decay) below which something changes: a category boundary
  // or a score bucket boundary. The decayed engagement is rounded to hundredths (halves away
  // from zero), so it must fall half a hundredth below a boundary to round below it.
  double target = -std::numeric_limits<double>::infinity();
  if (rules.has_category_grid()) {
    for (const double bound : rules.grid_engagement_bounds()) {
      if (bound <= snapshot.engagement()) target = std::max(target, bound - 0.005);
    }
  } else {
    for (const double threshold : {rules.thresholds().warm(), rules.thresholds().qualified(),
                                   rules.thresholds().sales_ready()}) {
      if (threshold <= total) target = std::max(target, threshold - rest - 0.005);
    }
  }
  if (score_bucket > 0) {
    target = std::max(target, std::floor(total / score_bucket) * score_bucket - rest - 0.005);
  }
  if (!(target > 0)) return next;  // decay alone never gets there
  // rest + engagement * 2^(-days / half_life) < boundary - 0.005
  const double days = rules.half_life_days() * std::log2(engagement / target);
  // A minute late rather than early: a re-score that finds nothing changed only asks again.
  absl::Time crossing = last_seen + absl::Seconds(days * 86400) + absl::Minutes(1);
  if (crossing <= now) crossing = now + absl::Minutes(1);
  consider(crossing);
  return next;
}

ScoreChange Diff(const ScoreSnapshot& previous, const ScoreSnapshot& current, double score_bucket) {
  ScoreChange change;
  const bool score_changed = score_bucket > 0 ? std::floor(previous.total() / score_bucket) !=
                                                    std::floor(current.total() / score_bucket)
                                              : previous.total() != current.total();
  if (score_changed) change.changed.push_back("score");
  if (previous.category() != current.category()) change.changed.push_back("category");
  if (previous.interest() != current.interest()) change.changed.push_back("interest");
  if (previous.stage() != current.stage()) change.changed.push_back("stage");

  const absl::flat_hash_set<std::string> before(previous.segments().begin(),
                                                previous.segments().end());
  const absl::flat_hash_set<std::string> after(current.segments().begin(),
                                               current.segments().end());
  for (const std::string& segment : current.segments()) {
    if (!before.contains(segment)) change.segments_entered.push_back(segment);
  }
  for (const std::string& segment : previous.segments()) {
    if (!after.contains(segment)) change.segments_exited.push_back(segment);
  }
  if (!change.segments_entered.empty() || !change.segments_exited.empty()) {
    change.changed.push_back("segments");
  }
  return change;
}

}  // namespace leadflow::scoring
