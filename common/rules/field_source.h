// Where rule conditions read a lead's values from, and the catalogue of field names rules may use.
//
// Contract:
// - A FieldSource answers "what are the values of field X?" as strings: a repeated field gives
//   several, a number its shortest round-trip decimal form ("12", "0.5"), an enum its lower-case
//   name without the type prefix (SENIORITY_EXECUTIVE -> "executive", CATEGORY_SALES_READY ->
//   "sales_ready"), a Timestamp RFC 3339 in UTC ("2024-06-01T09:30:00Z"). An absent value gives no
//   values at all, never an empty string. Unknown fields give no values (validation catches them at
//   compile time).
// - LeadFields borrows the profile, score and aggregates it is built from: they must outlive it.
//   It is cheap to build (three pointers), immutable and safe to share between threads.
// - Deterministic: the same inputs always give the same values in the same order.
//
// Field names understood by LeadFields (and by LookupLeadField, which validation uses):
//   profile    every LeadProfile field by its proto name ("country", "seniority", "interests",
//              "company_size", "do_not_contact", ...); message fields by dotted path
//              ("first_touch.utm_campaign", "created_at"); "custom.<key>"; "source" (first-touch
//              source, falling back to sources[0]); "consents" (channels with granted consent,
//              e.g. "email"; "consents.<field>" reads the raw Consent records).
//   score      "score" (total), "fit", "engagement", "conversion_probability", "category",
//              "interest", "stage", "segments". Available only when a ScoreSnapshot is given.
//   activity   "activity.<type>.<window>" and "page.<category>.<window>" counts, window one of
//              total, 1d, 7d, 30d, 90d (a type or category never seen counts "0"); "visits",
//              "seconds_on_site". Available only when LeadAggregates are given.
// proto3 defaults mean "unknown" in LeadProfile (company_size 0, empty strings, UNSPECIFIED
// enums, unset Timestamps), so they read as absent; bools always have a value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/generated_enum_reflection.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/scoring.pb.h"

namespace leadflow::rules {

// The values of named fields of one subject (a lead, in practice).
class FieldSource {
 public:
  FieldSource() = default;
  FieldSource(const FieldSource&) = delete;
  FieldSource& operator=(const FieldSource&) = delete;
  virtual ~FieldSource() = default;

  // The non-empty values of `field`, in a stable order; empty when absent or unknown.
  virtual std::vector<std::string> Values(absl::string_view field) const = 0;
};

// Groups of fields, by what must be known to read them. Rule sets declare which groups exist
// where they are evaluated (fit rules run before the score exists, routing has no aggregates),
// so a condition on a field that could never have a value there is a configuration error.
enum FieldGroup : uint32_t {
  kProfileFields = 1u << 0,
  kScoreFields = 1u << 1,
  kActivityFields = 1u << 2,
  kAllFields = kProfileFields | kScoreFields | kActivityFields,
};

// The type of a field's values, for validating the tests written against it.
enum class ValueKind { kString, kNumber, kBool, kEnum, kTimestamp };

// What the catalogue knows about one field name.
struct FieldInfo {
  ValueKind kind = ValueKind::kString;
  // True when the field can hold several values (interests, sources, segments, ...).
  bool repeated = false;
  // The FieldGroup the field belongs to.
  FieldGroup group = kProfileFields;
  // For kEnum: the enum whose value names (without prefix) are the field's values.
  const google::protobuf::EnumDescriptor* enum_type = nullptr;
};

// Looks up a field name in the LeadFields catalogue; nullopt when LeadFields cannot read it.
std::optional<FieldInfo> LookupLeadField(absl::string_view field);

// The rule-facing name of an enum value: lower-case, without the prefix its type's zero value
// carries before "UNSPECIFIED" (INTEREST_UNSPECIFIED -> prefix "INTEREST_", so
// INTEREST_NOT_NOW -> "not_now").
std::string EnumValueName(const google::protobuf::EnumValueDescriptor& value);

// EnumValueName for a generated enum value, e.g. EnumValueName(events::v1::CATEGORY_WARM).
// Values unknown to the descriptor render as their number.
template <typename E>
std::string EnumValueName(E value) {
  const google::protobuf::EnumValueDescriptor* descriptor =
      google::protobuf::GetEnumDescriptor<E>()->FindValueByNumber(static_cast<int>(value));
  return descriptor != nullptr ? EnumValueName(*descriptor)
                               : std::to_string(static_cast<int>(value));
}

// Shortest decimal that reads back as the same double ("12", "0.1", "1e+21"); how numbers are
// rendered as field values and in explanations.
std::string FormatNumber(double value);

// The lead's current consent record for `channel`: the one with the latest `at` (the later one
// in the list at equal times), or null when the lead never gave or withdrew consent for it.
// "consents" in rules and the nurture engine's consent check both use this, so they agree.
const events::v1::Consent* LatestConsent(const events::v1::LeadProfile& profile,
                                         events::v1::Channel channel);

// The FieldSource over one lead: its profile plus, optionally, its score and its aggregates.
class LeadFields final : public FieldSource {
 public:
  // `score` and `aggregates` may be null: their fields then read as absent.
  explicit LeadFields(const events::v1::LeadProfile& profile,
                      const events::v1::ScoreSnapshot* score = nullptr,
                      const events::v1::LeadAggregates* aggregates = nullptr)
      : profile_(profile), score_(score), aggregates_(aggregates) {}

  std::vector<std::string> Values(absl::string_view field) const override;

 private:
  const events::v1::LeadProfile& profile_;
  const events::v1::ScoreSnapshot* score_;
  const events::v1::LeadAggregates* aggregates_;
};

}  // namespace leadflow::rules
