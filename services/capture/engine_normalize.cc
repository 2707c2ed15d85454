// Normalizer: validation and normalisation of one LeadSubmission.
//
// The output starts as a copy of the input, so fields added to LeadSubmission later pass through
// unchanged until a rule is written for them. Violations are collected in field-number order
// (custom keys sorted), which keeps the error text deterministic.

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/rules/time_util.h"
#include "services/capture/engine.h"
#include "services/capture/engine_internal.h"
#include "services/capture/engine_text.h"

namespace leadflow::capture {

namespace {

using events::v1::LeadSubmission;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;
using internal::IsValidTimestamp;
using rules::ToTime;
using rules::ToTimestamp;

// Length limits, in code points.
constexpr size_t kMaxNameLength = 100;
constexpr size_t kMaxCompanyLength = 200;
constexpr size_t kMaxJobTitleLength = 200;
constexpr size_t kMaxShortTextLength = 200;
constexpr size_t kMaxReferrerLength = 2048;
constexpr size_t kMaxPhoneLength = 64;
constexpr size_t kMaxInterests = 50;
constexpr size_t kMaxInterestLength = 100;
constexpr size_t kMaxCustomKeys = 50;
constexpr size_t kMaxCustomKeyLength = 100;
constexpr size_t kMaxCustomValueLength = 1000;

// Checks one string field: valid UTF-8 and at most `max_length` code points after trimming.
// Returns the trimmed value, or "" after recording a violation.
std::string CheckedText(absl::string_view field, absl::string_view value, size_t max_length,
                        validation::ViolationList& violations) {
  if (!IsValidUtf8(value)) {
    violations.Add(std::string(field), "must be valid UTF-8");
    return "";
  }
  std::string trimmed = TrimText(value);
  const size_t length = CodePointCount(trimmed);
  if (length > max_length) {
    violations.Add(std::string(field),
                   absl::StrCat("must be at most ", max_length, " characters (has ", length, ")"));
    return "";
  }
  return trimmed;
}

// Checks an optional timestamp field; returns false after recording a violation.
bool CheckTimestamp(absl::string_view field, bool present, const google::protobuf::Timestamp& ts,
                    validation::ViolationList& violations) {
  if (!present || IsValidTimestamp(ts)) return true;
  violations.Add(std::string(field),
                 "is not a valid timestamp (0001-01-01..9999-12-31, nanos in [0, 1e9))");
  return false;
}

// Region codes for libphonenumber ("ZZ" = unknown region: the number must start with '+').
std::string PhoneRegion(const PhoneNumberUtil& util, absl::string_view country_alpha2,
                        absl::string_view default_region) {
  if (!country_alpha2.empty() && util.GetCountryCodeForRegion(std::string(country_alpha2)) != 0) {
    return std::string(country_alpha2);
  }
  const std::string fallback = absl::AsciiStrToUpper(default_region);
  if (!fallback.empty() && util.GetCountryCodeForRegion(fallback) != 0) return fallback;
  return "ZZ";
}

absl::StatusOr<std::string> ParsePhone(const PhoneNumberUtil& util, absl::string_view raw,
                                       const std::string& region) {
  PhoneNumber number;
  switch (util.Parse(std::string(raw), region, &number)) {
    case PhoneNumberUtil::NO_PARSING_ERROR:
      break;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
      return absl::InvalidArgumentError(
          region == "ZZ" ? "needs an international prefix (+<country code>): the submission has "
                           "no country and no default phone region is configured"
                         : "has an invalid country calling code");
    case PhoneNumberUtil::NOT_A_NUMBER:
      return absl::InvalidArgumentError("is not a phone number");
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
    case PhoneNumberUtil::TOO_SHORT_NSN:
      return absl::InvalidArgumentError("is too short to be a phone number");
    case PhoneNumberUtil::TOO_LONG_NSN:
      return absl::InvalidArgumentError("is too long to be a phone number");
  }
  std::string number_region;
  util.GetRegionCodeForCountryCode(number.country_code(), &number_region);
  const std::string where = absl::StrCat("+", number.country_code(), " (",
                                         number_region.empty() ? "?" : number_region, ")");
  switch (util.IsPossibleNumberWithReason(number)) {
    case PhoneNumberUtil::IS_POSSIBLE:
      break;
    case PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY:
      return absl::InvalidArgumentError(
          absl::StrCat("is a local number without area code for ", where));
    case PhoneNumberUtil::INVALID_COUNTRY_CODE:
      return absl::InvalidArgumentError("has an invalid country calling code");
    case PhoneNumberUtil::TOO_SHORT:
      return absl::InvalidArgumentError(absl::StrCat("is too short for ", where));
    case PhoneNumberUtil::TOO_LONG:
      return absl::InvalidArgumentError(absl::StrCat("is too long for ", where));
    case PhoneNumberUtil::INVALID_LENGTH:
      return absl::InvalidArgumentError(absl::StrCat("has an invalid length for ", where));
  }
  // IsValidNumber first looks for the number's region among those sharing its calling code
  // (trying each one's patterns), then checks the number against that region's patterns. Most
  // numbers belong to the code's main region, the first of that list, which IsValidNumber tries
  // first too: checking it directly gives the same answer at about half the cost (IsValidNumber was
  // ~40 % of a submission's normalisation). Other regions' numbers take the full path.
  if (number_region.empty() || !util.IsValidNumberForRegion(number, number_region)) {
    if (!util.IsValidNumber(number)) {
      return absl::InvalidArgumentError(absl::StrCat("is not a valid number for ", where));
    }
  }
  std::string e164;
  util.Format(number, PhoneNumberUtil::E164, &e164);
  return e164;
}

// Path of a custom attribute in violations: custom["key"], with the key C-escaped.
std::string CustomPath(absl::string_view key) {
  return absl::StrCat("custom[\"", absl::CHexEscape(key), "\"]");
}

}  // namespace

Normalizer::Normalizer(config::v1::CaptureConfig config)
    : config_(std::move(config)), phone_util_(*PhoneNumberUtil::GetInstance()) {
  for (const std::string& source : config_.known_sources()) {
    known_sources_.push_back(ToLowerText(TrimText(source)));
  }
}

absl::StatusOr<std::string> Normalizer::NormalizePhone(absl::string_view phone,
                                                       absl::string_view country) const {
  if (!IsValidUtf8(phone)) return absl::InvalidArgumentError("must be valid UTF-8");
  const std::string trimmed = TrimText(phone);
  if (trimmed.empty()) return absl::InvalidArgumentError("is empty");
  const std::string alpha2 = CountryToAlpha2(country).value_or("");
  return ParsePhone(phone_util_, trimmed,
                    PhoneRegion(phone_util_, alpha2, config_.default_phone_region()));
}

absl::StatusOr<NormalizedSubmission> Normalizer::Normalize(const LeadSubmission& in,
                                                           absl::Time received_at) const {
  validation::ViolationList violations;
  NormalizedSubmission result;
  LeadSubmission& out = result.submission;
  out = in;

  out.set_request_id(CheckedText("request_id", in.request_id(), kMaxShortTextLength, violations));

  // source
  out.set_source(ToLowerText(CheckedText("source", in.source(), kMaxShortTextLength, violations)));
  if (!known_sources_.empty() && IsValidUtf8(in.source()) &&
      std::find(known_sources_.begin(), known_sources_.end(), out.source()) ==
          known_sources_.end()) {
    violations.Add("source",
                   absl::StrCat(out.source().empty() ? "is required" : "is unknown",
                                "; known sources: ", absl::StrJoin(known_sources_, ", ")));
  }

  // submitted_at: defaults to, and never runs ahead of, the receive time.
  absl::Time submitted_at = received_at;
  if (CheckTimestamp("submitted_at", in.has_submitted_at(), in.submitted_at(), violations) &&
      in.has_submitted_at()) {
    submitted_at = std::min(ToTime(in.submitted_at()), received_at);
  }
  *out.mutable_submitted_at() = ToTimestamp(submitted_at);

  // email
  const std::string email = CheckedText("email", in.email(), 254, violations);
  out.clear_email();
  if (!email.empty()) {
    absl::StatusOr<EmailAddress> parsed = ParseEmail(email);
    if (parsed.ok()) {
      out.set_email(parsed->address);
      result.email_match_key = parsed->match_key;
      result.email_domain = parsed->domain;
    } else {
      violations.Add("email", std::string(parsed.status().message()));
    }
  }
  out.set_email_verified(in.email_verified() && !out.email().empty());

  // country is needed by phone, so it is resolved first; its violations are recorded in order.
  validation::ViolationList country_violations;
  const std::string country =
      CheckedText("country", in.country(), kMaxShortTextLength, country_violations);
  std::optional<std::string> alpha2 = country.empty() ? std::nullopt : CountryToAlpha2(country);

  // phone
  const std::string phone = CheckedText("phone", in.phone(), kMaxPhoneLength, violations);
  out.clear_phone();
  if (!phone.empty()) {
    absl::StatusOr<std::string> e164 =
        ParsePhone(phone_util_, phone,
                   PhoneRegion(phone_util_, alpha2.value_or(""), config_.default_phone_region()));
    if (e164.ok()) {
      out.set_phone(*e164);
      result.phone_e164 = *e164;
    } else {
      violations.Add("phone", std::string(e164.status().message()));
    }
  }
  if (TrimText(in.email()).empty() && TrimText(in.phone()).empty()) {
    violations.Add("email", "at least one of email and phone is required");
  }

  // names and company
  out.set_first_name(
      CaseName(CheckedText("first_name", in.first_name(), kMaxNameLength, violations)));
  out.set_last_name(CaseName(CheckedText("last_name", in.last_name(), kMaxNameLength, violations)));
  out.set_company(
      CollapseWhitespace(CheckedText("company", in.company(), kMaxCompanyLength, violations)));
  out.set_job_title(CheckedText("job_title", in.job_title(), kMaxJobTitleLength, violations));
  if (in.company_size() < 0) violations.Add("company_size", "must not be negative");
  out.set_industry(ToLowerText(
      CollapseWhitespace(CheckedText("industry", in.industry(), kMaxShortTextLength, violations))));

  // country (resolved above)
  for (const auto& v : country_violations.proto().field_violations()) {
    violations.Add(v.field(), v.description());
  }
  if (!country.empty() && !alpha2) {
    violations.Add("country", absl::StrCat("is not a known country: \"", country,
                                           "\"; use an ISO 3166-1 code or an English name"));
  }
  out.set_country(alpha2.value_or(""));
  out.set_region(
      CollapseWhitespace(CheckedText("region", in.region(), kMaxShortTextLength, violations)));
  out.set_city(CollapseWhitespace(CheckedText("city", in.city(), kMaxShortTextLength, violations)));

  const std::string language =
      CheckedText("language", in.language(), kMaxShortTextLength, violations);
  out.clear_language();
  if (!language.empty()) {
    if (std::optional<std::string> tag = NormalizeLanguageTag(language)) {
      out.set_language(*tag);
    } else {
      violations.Add("language", "is not a BCP-47 language tag (e.g. \"en\", \"de-CH\")");
    }
  }
  out.set_time_zone(CheckedText("time_zone", in.time_zone(), kMaxShortTextLength, violations));

  // interests: lower-case, unique, in order.
  if (static_cast<size_t>(in.interests_size()) > kMaxInterests) {
    violations.Add("interests", absl::StrCat("must have at most ", kMaxInterests, " entries (has ",
                                             in.interests_size(), ")"));
  }
  out.clear_interests();
  for (int i = 0; i < in.interests_size(); ++i) {
    std::string interest = ToLowerText(CollapseWhitespace(CheckedText(
        absl::StrCat("interests[", i, "]"), in.interests(i), kMaxInterestLength, violations)));
    if (interest.empty()) continue;
    if (std::find(out.interests().begin(), out.interests().end(), interest) ==
        out.interests().end()) {
      out.add_interests(std::move(interest));
    }
  }

  // custom: keys and values trimmed; empty values dropped (they carry nothing to merge).
  if (in.custom_size() > static_cast<int>(kMaxCustomKeys)) {
    violations.Add("custom", absl::StrCat("must have at most ", kMaxCustomKeys, " keys (has ",
                                          in.custom_size(), ")"));
  }
  out.clear_custom();
  const std::map<std::string, std::string> sorted_custom(in.custom().begin(), in.custom().end());
  for (const auto& [raw_key, raw_value] : sorted_custom) {
    const std::string path = CustomPath(raw_key);
    if (!IsValidUtf8(raw_key)) {
      violations.Add(path, "key must be valid UTF-8");
      continue;
    }
    const std::string key = TrimText(raw_key);
    if (key.empty()) {
      violations.Add(path, "key must not be empty");
      continue;
    }
    if (CodePointCount(key) > kMaxCustomKeyLength) {
      violations.Add(path, absl::StrCat("key must be at most ", kMaxCustomKeyLength,
                                        " characters (has ", CodePointCount(key), ")"));
      continue;
    }
    std::string value = CheckedText(path, raw_value, kMaxCustomValueLength, violations);
    if (!value.empty()) (*out.mutable_custom())[key] = std::move(value);
  }

  // consents: a known channel; `at` and `source` default to the submission's.
  for (int i = 0; i < in.consents_size(); ++i) {
    const events::v1::Consent& consent = in.consents(i);
    const std::string prefix = absl::StrCat("consents[", i, "]");
    if (consent.channel() == events::v1::CHANNEL_UNSPECIFIED) {
      violations.Add(absl::StrCat(prefix, ".channel"), "is required");
    } else if (!events::v1::Channel_IsValid(consent.channel())) {
      violations.Add(absl::StrCat(prefix, ".channel"),
                     absl::StrCat("is not a known channel (", consent.channel(), ")"));
    }
    events::v1::Consent* normalized = out.mutable_consents(i);
    if (!CheckTimestamp(absl::StrCat(prefix, ".at"), consent.has_at(), consent.at(), violations) ||
        !consent.has_at()) {
      *normalized->mutable_at() = out.submitted_at();
    }
    normalized->set_source(CheckedText(absl::StrCat(prefix, ".source"), consent.source(),
                                       kMaxShortTextLength, violations));
    if (normalized->source().empty()) normalized->set_source(out.source());
  }

  // attribution: trimmed; utm values keep their case (analytics tools treat them as given).
  {
    const events::v1::Attribution& a = in.attribution();
    events::v1::Attribution* b = out.mutable_attribution();
    b->set_source(ToLowerText(
        CheckedText("attribution.source", a.source(), kMaxShortTextLength, violations)));
    b->set_campaign(
        CheckedText("attribution.campaign", a.campaign(), kMaxShortTextLength, violations));
    b->set_utm_source(
        CheckedText("attribution.utm_source", a.utm_source(), kMaxShortTextLength, violations));
    b->set_utm_medium(
        CheckedText("attribution.utm_medium", a.utm_medium(), kMaxShortTextLength, violations));
    b->set_utm_campaign(
        CheckedText("attribution.utm_campaign", a.utm_campaign(), kMaxShortTextLength, violations));
    b->set_utm_term(
        CheckedText("attribution.utm_term", a.utm_term(), kMaxShortTextLength, violations));
    b->set_utm_content(
        CheckedText("attribution.utm_content", a.utm_content(), kMaxShortTextLength, violations));
    b->set_referrer(
        CheckedText("attribution.referrer", a.referrer(), kMaxReferrerLength, violations));
    if (!CheckTimestamp("attribution.at", a.has_at(), a.at(), violations)) b->clear_at();
    if (!in.has_attribution() && b->ByteSizeLong() == 0) out.clear_attribution();
  }

  out.set_anonymous_id(
      CheckedText("anonymous_id", in.anonymous_id(), kMaxShortTextLength, violations));
  out.set_external_id(
      CheckedText("external_id", in.external_id(), kMaxShortTextLength, violations));

  if (!violations.empty()) return violations.ToStatus("invalid lead submission");

  if (!out.company().empty()) result.company_match_key = CompanyMatchKey(out.company());
  if (!out.first_name().empty() || !out.last_name().empty()) {
    result.name_key = NameKey(out.first_name(), out.last_name());
  }
  result.seniority = SeniorityOfTitle(out.job_title());
  result.job_function = JobFunctionOfTitle(out.job_title());
  return result;
}

}  // namespace leadflow::capture
