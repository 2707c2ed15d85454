// Compiled rule conditions: the `when` lists of scoring, segment, routing and nurture rules.
//
// Contract:
// - Compile once, at config load; evaluate many times. Compilation does every check that can be
//   done without a lead (empty field, no test, bad regex, empty `in` list, empty range) and
//   returns InvalidArgument whose message starts with the path of the offending part, e.g.
//   "routing.rules[2].when[0].matches: invalid regular expression '(': missing ) (rule 'uk')".
// - Evaluation never fails: a value that cannot be tested (a non-number under `range`) simply
//   does not satisfy the test.
// - Semantics, for the values V of the field (see FieldSource):
//     equals   some v in V equals the text, ASCII case-insensitively
//     in       some v in V equals one of the texts, ASCII case-insensitively
//     range    some v in V parses as a number with min <= v < max (unset bounds are open)
//     matches  some v in V fully matches the RE2 pattern (case-sensitive; use (?i) if needed)
//     missing  true: V is empty; false: V is not empty
//     negate   inverts the result of the whole test ("interests does not contain shoes")
//   A list of conditions holds when every condition holds; an empty list always holds.
// - Compiled conditions are immutable, cheap to copy (the RE2 is shared) and safe to evaluate
//   from many threads at once.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/rules/field_source.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "leadflow/config/v1/condition.pb.h"
#include "re2/re2.h"

namespace leadflow::rules {

using ConditionList = google::protobuf::RepeatedPtrField<config::v1::Condition>;

// One compiled condition.
class CompiledCondition {
 public:
  // Compiles `condition`. `path` names it in error messages, e.g. "routing.rules[2].when[0]".
  static absl::StatusOr<CompiledCondition> Compile(const config::v1::Condition& condition,
                                                   absl::string_view path);

  // True when the condition holds for the values `source` gives for field().
  bool Evaluate(const FieldSource& source) const;

  // A human-readable statement of the condition, e.g. "country in [GB, UK]",
  // "interests contains shoes", "50 <= company_size < 1000", "phone is missing". Used in routing
  // reasons and score explanations, so it reads as a sentence fragment.
  std::string Describe() const;

  // The field the condition tests.
  const std::string& field() const { return field_; }

 private:
  enum class Test { kEquals, kIn, kRange, kMatches, kMissing };

  CompiledCondition() = default;

  // True when one value satisfies the (un-negated) test.
  bool ValueHolds(absl::string_view value) const;

  std::string field_;
  Test test_ = Test::kEquals;
  bool negate_ = false;
  // kEquals: the text; kMatches: the pattern; as configured, for Describe().
  std::string text_;
  // kIn: the configured values (for Describe) and their lower-case forms (for lookup).
  std::vector<std::string> values_;
  absl::flat_hash_set<std::string> lower_values_;
  // kRange bounds.
  std::optional<double> min_;
  std::optional<double> max_;
  // kMatches: shared so that copies of a compiled rule set do not recompile.
  std::shared_ptr<const RE2> regex_;
  // kMissing: the configured flag.
  bool missing_ = false;
};

// A rule's `when` list: all conditions must hold.
class CompiledConditions {
 public:
  // The empty list, which always holds.
  CompiledConditions() = default;

  // Compiles every condition of `conditions`. `path` names the list ("routing.rules[2].when");
  // errors name the element ("routing.rules[2].when[1].field: ..."), followed by
  // " (rule '<rule_id>')" when `rule_id` is not empty.
  static absl::StatusOr<CompiledConditions> Compile(const ConditionList& conditions,
                                                    absl::string_view path,
                                                    absl::string_view rule_id = {});

  // True when every condition holds for `source`.
  bool Evaluate(const FieldSource& source) const;

  // The conditions' descriptions joined by " and "; "always" for the empty list.
  std::string Describe() const;

  bool empty() const { return conditions_.empty(); }
  const std::vector<CompiledCondition>& conditions() const { return conditions_; }

 private:
  std::vector<CompiledCondition> conditions_;
};

// Checks every condition's field against the LeadFields catalogue (see field_source.h):
// the name must be known, belong to one of `groups` (the FieldGroup bits available where the
// rules run), and the test must suit the field's type (`range` only on numbers or custom.*;
// `equals`/`in` on an enum or bool only with its value names). Errors are InvalidArgument
// naming the path, e.g. "routing.rules[2].when[0].field: unknown field 'contry'".
absl::Status ValidateLeadFields(const ConditionList& conditions, absl::string_view path,
                                uint32_t groups, absl::string_view rule_id = {});

// ValidateLeadFields, then CompiledConditions::Compile: what the engines use for lead rules.
absl::StatusOr<CompiledConditions> CompileLeadConditions(const ConditionList& conditions,
                                                         absl::string_view path, uint32_t groups,
                                                         absl::string_view rule_id = {});

}  // namespace leadflow::rules
