#pragma once

// The capture engine: the pure domain logic that turns an upstream LeadSubmission into one
// record per person. Values in, decisions out: no I/O, no clock (time is a parameter), no global
// mutable state (the country table is built once, on first use, and never changes). Every
// function is deterministic — equal inputs give equal outputs, whatever the order of map entries
// or candidates — because the I/O layer memoises outputs per client request id for idempotency.
//
// The flow the capture handler drives:
//
//   Normalizer::Normalize(submission, received_at)   validate everything, normalise, derive keys
//     → the store looks candidates up by the exact keys (email_match_key, phone_e164,
//       external_id) and by the fuzzy blocking keys (company_match_key, email_domain)
//   Match(normalized, candidates, threshold)          pick the lead to merge into, with the reason
//   Merge(existing, normalized, now)  or  NewLead(normalized, id, now)
//   MergeLeads(survivor, absorbed, now)              for each also_matched lead: one person
//
// Thread safety: everything here is safe to call concurrently; a Normalizer is immutable after
// construction.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/validation/violations.h"
#include "google/rpc/error_details.pb.h"
#include "leadflow/config/v1/service_config.pb.h"
#include "leadflow/events/v1/lead.pb.h"

namespace i18n::phonenumbers {
class PhoneNumberUtil;
}  // namespace i18n::phonenumbers

namespace leadflow::capture {

// ---------------------------------------------------------------------------------------------
// Field violations carried in an absl::Status.
//
// Normalize reports invalid input as INVALID_ARGUMENT with a google.rpc.BadRequest payload
// (under kBadRequestTypeUrl) listing every violation. The helpers are the shared ones of
// common/validation, re-exported here because they are part of this API's contract; the gRPC
// edge turns the payload into the google.rpc.Status details.
// ---------------------------------------------------------------------------------------------

using validation::InvalidArgumentWithViolations;
using validation::kBadRequestTypeUrl;
using validation::ViolationsOf;

// ---------------------------------------------------------------------------------------------
// Normalisation.
// ---------------------------------------------------------------------------------------------

// A validated, normalised submission plus the keys matching needs.
struct NormalizedSubmission {
  // The submission with every field normalised: strings trimmed, names cased, e-mail lower-cased,
  // phone in E.164, country as ISO alpha-2, industry / interests / source lower-case, language
  // tag canonically cased, submitted_at set (defaults to, and is clamped to, the receive time),
  // each consent's `at` and `source` defaulted to the submission's.
  events::v1::LeadSubmission submission;
  // Exact-match key of the e-mail address: lower-case; for Gmail also without dots and +tag and
  // with googlemail.com folded into gmail.com. Empty when there is no e-mail.
  std::string email_match_key;
  // Lower-case domain of the e-mail address; empty when there is no e-mail.
  std::string email_domain;
  // Phone in E.164 (same as submission.phone); empty when there is no phone.
  std::string phone_e164;
  // Company name with case and accents folded, punctuation and trailing legal suffixes removed
  // ("ACME, Inc." → "acme"); empty when there is no company.
  std::string company_match_key;
  // "first last" folded for fuzzy name comparison (case, accents and punctuation removed).
  std::string name_key;
  // Seniority derived from the job title (SENIORITY_UNSPECIFIED when there is no title).
  events::v1::Seniority seniority = events::v1::SENIORITY_UNSPECIFIED;
  // Job function derived from the job title: "marketing", "sales", "engineering", "it",
  // "finance", "hr", "operations", "product", "executive" or "other"; empty without a title.
  std::string job_function;
};

// Validates and normalises submissions against a CaptureConfig.
//
// Validation collects every violation before failing. The rules (field paths are relative to the
// LeadSubmission; "custom[\"k\"]", "interests[2]" and "consents[1].channel" address elements):
//   - at least one of email and phone;
//   - email: local@domain, exactly one '@', no white space or control characters, ≤ 254
//     characters, local part ≤ 64, a domain with a dot and well-formed labels;
//   - phone: parsed with libphonenumber using the submission's country when it is a phone region,
//     else the configured default_phone_region (a number with a leading '+' needs neither); it
//     must have a possible length and be a valid number for its region;
//   - country: ISO 3166-1 alpha-2 or alpha-3 code, or a name (English, the country's own
//     language, German, French, Spanish, Italian, Portuguese or Dutch, or a common alias such as
//     "UK", "USA", "Holland"); unknown is a violation;
//   - lengths in characters: first/last name ≤ 100, company ≤ 200, job title ≤ 200, other short
//     texts (source, industry, region, city, language, time zone, ids, attribution) ≤ 200,
//     attribution.referrer ≤ 2048, interests ≤ 50 entries of ≤ 100, custom ≤ 50 keys of ≤ 100
//     with values ≤ 1000; company_size ≥ 0;
//   - every string (including custom keys and values) is valid UTF-8;
//   - source is one of known_sources (case-insensitive) when known_sources is non-empty;
//   - every consent has a known channel; language is a well-formed BCP-47 tag;
//   - timestamps are within 0001-01-01..9999-12-31 with nanos in [0, 1e9).
// time_zone is trimmed but not checked against the tz database (that would be I/O).
class Normalizer {
 public:
  // `config` is copied. Uses the process-wide libphonenumber singleton.
  explicit Normalizer(config::v1::CaptureConfig config);

  // Returns the normalised submission, or InvalidArgument carrying every violation as a
  // google.rpc.BadRequest payload (see ViolationsOf). `received_at` is when capture received the
  // submission: it is the default for submitted_at and the upper bound for it (client clocks run
  // ahead; a future submitted_at would make the submission win every later merge).
  absl::StatusOr<NormalizedSubmission> Normalize(const events::v1::LeadSubmission& submission,
                                                 absl::Time received_at) const;

  // Normalises a phone number on its own (for look-ups such as Capture.FindLead). `country` is a
  // country as accepted in submissions, or empty for the configured default region. Returns
  // E.164, or InvalidArgument whose message describes the problem.
  absl::StatusOr<std::string> NormalizePhone(absl::string_view phone,
                                             absl::string_view country = "") const;

 private:
  config::v1::CaptureConfig config_;
  // Lower-cased known_sources, for case-insensitive membership.
  std::vector<std::string> known_sources_;
  const i18n::phonenumbers::PhoneNumberUtil& phone_util_;
};

// ---------------------------------------------------------------------------------------------
// Matching.
// ---------------------------------------------------------------------------------------------

// Default Jaro-Winkler threshold on the normalised full name for a fuzzy match.
inline constexpr double kDefaultFuzzyThreshold = 0.92;

// Jaro-Winkler similarity in [0, 1] over Unicode code points (prefix scale 0.1, prefix of at most
// four code points). Ill-formed UTF-8 sequences read as U+FFFD. Two empty strings are 1.
double JaroWinkler(absl::string_view a, absl::string_view b);

// What Match decided.
struct MatchDecision {
  // The lead to merge into, with the key that matched; nullopt means "create a new lead".
  std::optional<events::v1::MatchExplanation> match;
  // Other candidates that match the submission on an exact key (e-mail, phone or external id)
  // but were not chosen, in precedence order. They likely are the same person; the caller may
  // merge them into the chosen lead (LeadCaptured.merged_lead_ids) or leave them.
  std::vector<std::string> also_matched_lead_ids;
};

// Chooses the existing lead a submission belongs to among `candidates` (which the caller found
// by the submission's keys; extra candidates are harmless, duplicates are ignored).
//
// Precedence: exact e-mail match key > E.164 phone > external id (any of the candidate's
// external_ids). Failing those, a fuzzy match: both sides have a first and a last name, the
// Jaro-Winkler similarity of the name keys is ≥ fuzzy_threshold, and they share a non-empty
// company_match_key or a non-free-mail e-mail domain. Anonymous ids never match: a cookie can be
// shared by several people on one device.
//
// Ties (several candidates on the same key, equal similarity) go to the oldest lead (created_at,
// then lead_id), so the answer does not depend on the order of `candidates`. Exact keys report
// similarity 1; a fuzzy match reports the name similarity and key "fuzzy_name".
MatchDecision Match(const NormalizedSubmission& submission,
                    const std::vector<events::v1::LeadProfile>& candidates,
                    double fuzzy_threshold = kDefaultFuzzyThreshold);

// The exact-match e-mail key of an address as stored in a LeadProfile (see
// NormalizedSubmission::email_match_key). Empty if `email` is not a valid address.
std::string EmailMatchKey(absl::string_view email);

// True for consumer mail providers (gmail, yahoo, hotmail, outlook, icloud, aol, gmx, web.de,
// proton, ...), whose domain says nothing about the employer.
bool IsFreeMailDomain(absl::string_view domain);

// ---------------------------------------------------------------------------------------------
// Merging.
// ---------------------------------------------------------------------------------------------

// A merged record and what changed.
struct MergeResult {
  // The record after the merge.
  events::v1::LeadProfile lead;
  // Names of the LeadProfile fields whose value differs from the existing record, in field
  // number order. updated_at is bookkeeping and never listed, so an empty list means the
  // submission added nothing.
  std::vector<std::string> changed_fields;
};

// Merges a normalised submission into an existing lead. The submission is "newer" when its
// submitted_at ≥ existing.updated_at. Rules:
//   - scalar fields: a newer non-empty value wins; an older submission only fills empty fields
//     (company_size 0 counts as empty); seniority and job_function follow job_title;
//   - a verified e-mail is never replaced by an unverified one; submitting the same address
//     verified marks it verified;
//   - sources, interests, anonymous_ids and external_ids accumulate, unique, in order of first
//     appearance;
//   - consents: per channel the one with the latest `at` is kept (a tie goes to the withdrawal,
//     the privacy-safe reading); the list is ordered by channel;
//   - do_not_contact is sticky: once true it stays true;
//   - first_touch is set when empty, or replaced by a submission whose time is earlier (a late
//     import of older data is the real first touch); last_touch is replaced by a submission at
//     or after its time; touches take source and `at` from the submission when missing;
//   - custom: key by key, newer non-empty wins, older fills missing keys; nothing is deleted;
//   - updated_at = max(existing.updated_at, submitted_at); lead_id and created_at are kept.
// `now` is used only when the submission has no submitted_at (not the case after Normalize).
MergeResult Merge(const events::v1::LeadProfile& existing, const NormalizedSubmission& submission,
                  absl::Time now);

// Merges lead `absorbed` into lead `survivor` — two records found to be one person — with the
// rules of Merge, `absorbed` playing the submission made at its updated_at: its newer non-empty
// scalars win, an older one only fills gaps; a verified e-mail is never replaced by an
// unverified one; sources, interests, anonymous_ids and external_ids accumulate (survivor's
// first); consents per channel by latest `at`; do_not_contact sticky; custom key by key. And
// across the whole records: first_touch is the earlier of the two first touches, last_touch the
// later of the two last touches, created_at the earlier creation, updated_at the later update.
// lead_id and the episode links (contact_id, episode, previous_lead_id) stay the survivor's.
// changed_fields lists what differs from `survivor`. Preconditions: neither lead is converted
// (IsConverted) — history is never merged — and the ids differ; the caller checks.
MergeResult MergeLeads(const events::v1::LeadProfile& survivor,
                       const events::v1::LeadProfile& absorbed, absl::Time now);

// Names of the LeadProfile fields whose values differ between `before` and `after`, in field
// number order; updated_at is never listed (see MergeResult::changed_fields).
std::vector<std::string> ChangedFields(const events::v1::LeadProfile& before,
                                       const events::v1::LeadProfile& after);

// A new lead from a normalised submission: every field copied, first_touch = last_touch = the
// submission's attribution (source and `at` filled), sources = [source], created_at = updated_at
// = submitted_at, or `now` when the submission has none.
events::v1::LeadProfile NewLead(const NormalizedSubmission& submission, std::string lead_id,
                                absl::Time now);

// A new lead episode for a person whose lead converted to a contact. `converted` is the
// person's latest lead record (converted_at set); it stays as it is (history). The new record
// carries over who the person is — contact details, names, company, title, location, language,
// consents, do-not-contact, anonymous and external ids — and the submission is merged on top as
// into any lead. What belongs to an episode starts afresh from the submission: interests,
// custom attributes, sources, first and last touch. Links: contact_id = converted.contact_id, or
// converted.lead_id for the person's first conversion; episode = converted's episode + 1 (an
// unset episode counts as 1); previous_lead_id = converted.lead_id; created_at = submitted_at.
// changed_fields lists every field the new record sets.
MergeResult NewEpisode(const events::v1::LeadProfile& converted,
                       const NormalizedSubmission& submission, std::string lead_id, absl::Time now);

// True when `lead` converted to a contact: a submission matching it opens a new episode.
inline bool IsConverted(const events::v1::LeadProfile& lead) { return lead.has_converted_at(); }

// The redirect capture keeps in place of a lead merged into `survivor_id`: only lead_id and
// merged_into_lead_id are set.
events::v1::LeadProfile MergeRedirect(const std::string& lead_id, const std::string& survivor_id);

// True for such a redirect: the lead no longer exists on its own.
inline bool IsMergeRedirect(const events::v1::LeadProfile& lead) {
  return !lead.merged_into_lead_id().empty();
}

// ---------------------------------------------------------------------------------------------
// Configuration.
// ---------------------------------------------------------------------------------------------

// The fuzzy-match threshold of `config`: fuzzy_threshold when set, else kDefaultFuzzyThreshold.
// InvalidArgument unless it is in (0, 1] (0 means unset; NaN, negative and > 1 are rejected).
absl::StatusOr<double> FuzzyThresholdOf(const config::v1::CaptureConfig& config);

}  // namespace leadflow::capture
