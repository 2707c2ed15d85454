#include "common/rules/condition.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace leadflow::rules {
namespace {

using config::v1::Condition;

std::string RuleSuffix(absl::string_view rule_id) {
  return rule_id.empty() ? std::string() : absl::StrCat(" (rule '", rule_id, "')");
}

absl::Status Invalid(absl::string_view path, absl::string_view part, absl::string_view message,
                     absl::string_view rule_id = {}) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ".", part, ": ", message, RuleSuffix(rule_id)));
}

// Re-raises a status from a nested call with the rule named, so errors point at the rule a
// human can find in the file, not only at an index.
absl::Status WithRule(const absl::Status& status, absl::string_view rule_id) {
  if (status.ok() || rule_id.empty()) return status;
  return absl::Status(status.code(), absl::StrCat(status.message(), RuleSuffix(rule_id)));
}

bool IsRepeatedLeadField(absl::string_view field) {
  const std::optional<FieldInfo> info = LookupLeadField(field);
  return info.has_value() && info->repeated;
}

std::string EnumValueList(const google::protobuf::EnumDescriptor& type) {
  std::vector<std::string> names;
  for (int i = 0; i < type.value_count(); ++i) {
    if (type.value(i)->number() != 0) names.push_back(EnumValueName(*type.value(i)));
  }
  return absl::StrJoin(names, ", ");
}

// For enum and bool fields, `equals`/`in` texts must be values the field can take: a typo such
// as "execuitve" would otherwise make a rule silently never match.
absl::Status CheckValueText(const FieldInfo& info, absl::string_view field, absl::string_view text,
                            absl::string_view path, absl::string_view part) {
  if (info.kind == ValueKind::kBool) {
    if (!absl::EqualsIgnoreCase(text, "true") && !absl::EqualsIgnoreCase(text, "false")) {
      return Invalid(path, part,
                     absl::StrCat("'", text, "' is not a value of '", field, "' (true or false)"));
    }
  }
  if (info.kind == ValueKind::kEnum && info.enum_type != nullptr) {
    for (int i = 0; i < info.enum_type->value_count(); ++i) {
      const google::protobuf::EnumValueDescriptor& value = *info.enum_type->value(i);
      if (value.number() != 0 && absl::EqualsIgnoreCase(text, EnumValueName(value))) {
        return absl::OkStatus();
      }
    }
    return Invalid(path, part,
                   absl::StrCat("'", text, "' is not a value of '", field, "' (one of ",
                                EnumValueList(*info.enum_type), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompiledCondition> CompiledCondition::Compile(const Condition& condition,
                                                             absl::string_view path) {
  CompiledCondition out;
  if (condition.field().empty()) return Invalid(path, "field", "empty field name");
  out.field_ = condition.field();
  out.negate_ = condition.negate();
  switch (condition.test_case()) {
    case Condition::kEquals:
      out.test_ = Test::kEquals;
      out.text_ = condition.equals();
      break;
    case Condition::kIn:
      out.test_ = Test::kIn;
      if (condition.in().values().empty()) {
        return Invalid(path, "in", "empty value list (the condition could never hold)");
      }
      for (const std::string& value : condition.in().values()) {
        out.values_.push_back(value);
        out.lower_values_.insert(absl::AsciiStrToLower(value));
      }
      break;
    case Condition::kRange: {
      out.test_ = Test::kRange;
      const config::v1::Range& range = condition.range();
      if (range.has_min()) {
        if (!std::isfinite(range.min())) return Invalid(path, "range.min", "must be finite");
        out.min_ = range.min();
      }
      if (range.has_max()) {
        if (!std::isfinite(range.max())) return Invalid(path, "range.max", "must be finite");
        out.max_ = range.max();
      }
      if (out.min_ && out.max_ && *out.min_ >= *out.max_) {
        return Invalid(
            path, "range",
            absl::StrCat("empty range: min ", FormatNumber(*out.min_), " must be below max ",
                         FormatNumber(*out.max_), " (max is exclusive)"));
      }
      break;
    }
    case Condition::kMatches: {
      out.test_ = Test::kMatches;
      out.text_ = condition.matches();
      RE2::Options options;
      options.set_log_errors(false);
      auto regex = std::make_shared<RE2>(condition.matches(), options);
      if (!regex->ok()) {
        return Invalid(path, "matches",
                       absl::StrCat("invalid regular expression '", condition.matches(),
                                    "': ", regex->error()));
      }
      out.regex_ = std::move(regex);
      break;
    }
    case Condition::kMissing:
      out.test_ = Test::kMissing;
      out.missing_ = condition.missing();
      break;
    case Condition::TEST_NOT_SET:
      return Invalid(path, "test",
                     absl::StrCat("condition on '", condition.field(),
                                  "' has no test (one of equals, in, range, matches, missing)"));
  }
  return out;
}

bool CompiledCondition::ValueHolds(absl::string_view value) const {
  switch (test_) {
    case Test::kEquals:
      return absl::EqualsIgnoreCase(value, text_);
    case Test::kIn:
      return lower_values_.contains(absl::AsciiStrToLower(value));
    case Test::kRange: {
      double number = 0;
      if (!absl::SimpleAtod(value, &number) || std::isnan(number)) return false;
      if (min_ && number < *min_) return false;
      if (max_ && number >= *max_) return false;
      return true;
    }
    case Test::kMatches:
      return RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *regex_);
    case Test::kMissing:
      return false;  // decided on the whole value list in Evaluate()
  }
  return false;
}

bool CompiledCondition::Evaluate(const FieldSource& source) const {
  const std::vector<std::string> values = source.Values(field_);
  bool holds = false;
  if (test_ == Test::kMissing) {
    bool present = false;
    for (const std::string& value : values) present = present || !value.empty();
    holds = missing_ ? !present : present;
  } else {
    for (const std::string& value : values) {
      if (ValueHolds(value)) {
        holds = true;
        break;
      }
    }
  }
  return holds != negate_;
}

std::string CompiledCondition::Describe() const {
  const bool repeated = IsRepeatedLeadField(field_);
  switch (test_) {
    case Test::kEquals:
      if (repeated) {
        return absl::StrCat(field_, negate_ ? " does not contain " : " contains ", text_);
      }
      return absl::StrCat(field_, negate_ ? " != " : " = ", text_);
    case Test::kIn: {
      const std::string list = absl::StrCat("[", absl::StrJoin(values_, ", "), "]");
      if (repeated) {
        return absl::StrCat(field_, negate_ ? " contains none of " : " contains any of ", list);
      }
      return absl::StrCat(field_, negate_ ? " not in " : " in ", list);
    }
    case Test::kRange: {
      std::string range;
      if (min_ && max_) {
        range = absl::StrCat(FormatNumber(*min_), " <= ", field_, " < ", FormatNumber(*max_));
      } else if (min_) {
        range = absl::StrCat(field_, " >= ", FormatNumber(*min_));
      } else if (max_) {
        range = absl::StrCat(field_, " < ", FormatNumber(*max_));
      } else {
        return absl::StrCat(field_, negate_ ? " is not numeric" : " is numeric");
      }
      return negate_ ? absl::StrCat("not (", range, ")") : range;
    }
    case Test::kMatches:
      return absl::StrCat(field_, negate_ ? " does not match /" : " matches /", text_, "/");
    case Test::kMissing:
      return absl::StrCat(field_, missing_ != negate_ ? " is missing" : " is present");
  }
  return field_;
}

absl::StatusOr<CompiledConditions> CompiledConditions::Compile(const ConditionList& conditions,
                                                               absl::string_view path,
                                                               absl::string_view rule_id) {
  CompiledConditions out;
  out.conditions_.reserve(conditions.size());
  for (int i = 0; i < conditions.size(); ++i) {
    absl::StatusOr<CompiledCondition> condition =
        CompiledCondition::Compile(conditions[i], absl::StrCat(path, "[", i, "]"));
    if (!condition.ok()) return WithRule(condition.status(), rule_id);
    out.conditions_.push_back(*std::move(condition));
  }
  return out;
}

bool CompiledConditions::Evaluate(const FieldSource& source) const {
  for (const CompiledCondition& condition : conditions_) {
    if (!condition.Evaluate(source)) return false;
  }
  return true;
}

std::string CompiledConditions::Describe() const {
  if (conditions_.empty()) return "always";
  std::vector<std::string> parts;
  parts.reserve(conditions_.size());
  for (const CompiledCondition& condition : conditions_) parts.push_back(condition.Describe());
  return absl::StrJoin(parts, " and ");
}

absl::Status ValidateLeadFields(const ConditionList& conditions, absl::string_view path,
                                uint32_t groups, absl::string_view rule_id) {
  for (int i = 0; i < conditions.size(); ++i) {
    const Condition& condition = conditions[i];
    const std::string at = absl::StrCat(path, "[", i, "]");
    if (condition.field().empty()) return Invalid(at, "field", "empty field name", rule_id);
    const std::optional<FieldInfo> info = LookupLeadField(condition.field());
    if (!info.has_value()) {
      return Invalid(at, "field", absl::StrCat("unknown field '", condition.field(), "'"), rule_id);
    }
    if ((info->group & groups) == 0) {
      const absl::string_view group_name = info->group == kScoreFields      ? "a score"
                                           : info->group == kActivityFields ? "an activity"
                                                                            : "a profile";
      return Invalid(at, "field",
                     absl::StrCat("field '", condition.field(), "' is ", group_name,
                                  " field, which these rules cannot see"),
                     rule_id);
    }
    const bool free_text = absl::StartsWith(condition.field(), "custom.");
    if (condition.test_case() == Condition::kRange && info->kind != ValueKind::kNumber &&
        !free_text) {
      return Invalid(at, "range", absl::StrCat("field '", condition.field(), "' is not numeric"),
                     rule_id);
    }
    absl::Status status;
    if (condition.test_case() == Condition::kEquals) {
      status = CheckValueText(*info, condition.field(), condition.equals(), at, "equals");
    } else if (condition.test_case() == Condition::kIn) {
      for (int j = 0; j < condition.in().values_size() && status.ok(); ++j) {
        status = CheckValueText(*info, condition.field(), condition.in().values(j), at,
                                absl::StrCat("in.values[", j, "]"));
      }
    }
    if (!status.ok()) return WithRule(status, rule_id);
  }
  return absl::OkStatus();
}

absl::StatusOr<CompiledConditions> CompileLeadConditions(const ConditionList& conditions,
                                                         absl::string_view path, uint32_t groups,
                                                         absl::string_view rule_id) {
  // Structure first: an empty field or a missing test is reported as such, not as "unknown".
  absl::StatusOr<CompiledConditions> compiled =
      CompiledConditions::Compile(conditions, path, rule_id);
  if (!compiled.ok()) return compiled.status();
  if (absl::Status status = ValidateLeadFields(conditions, path, groups, rule_id); !status.ok()) {
    return status;
  }
  return compiled;
}

}  // namespace leadflow::rules
