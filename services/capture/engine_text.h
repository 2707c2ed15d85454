#pragma once

// Text building blocks of capture normalisation: pure functions from UTF-8 strings to normalised
// strings, keys and derived attributes. engine.h composes them; they are public so that each rule
// can be tested on its own and reused by look-ups (Capture.FindLead) that must normalise exactly
// like submissions.
//
// All functions are deterministic and thread-safe. Unless stated otherwise, inputs must be valid
// UTF-8 (check with IsValidUtf8 first); invalid bytes are passed through or dropped, never cause
// undefined behaviour.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "leadflow/events/v1/lead.pb.h"

namespace leadflow::capture {

// ---- Generic text -------------------------------------------------------------------------

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or truncated sequences).
bool IsValidUtf8(absl::string_view text);

// Number of code points in `text`.
size_t CodePointCount(absl::string_view text);

// Removes leading and trailing white space, Unicode spaces (no-break, ideographic, ...) and
// zero-width characters / byte-order marks included: forms pasted from documents carry them.
std::string TrimText(absl::string_view text);

// TrimText, and every internal run of white space becomes one ASCII space.
std::string CollapseWhitespace(absl::string_view text);

// Per-code-point lower-casing ("ÄBC" → "äbc").
std::string ToLowerText(absl::string_view text);

// The comparison form of a text: decomposed, combining marks removed, case folded
// ("Müller" → "muller", "STRASSE" and "Straße" → "strasse").
std::string FoldForKey(absl::string_view text);

// ---- People and companies -----------------------------------------------------------------

// Cases a personal name sensibly, word by word: a word that is all lower-case, all upper-case or
// starts with a lower-case letter is re-cased ("jOHN" → "John", "o'neil" → "O'Neil",
// "anne-marie" → "Anne-Marie", "mcdonald" → "McDonald"); a word that starts upper-case and is
// otherwise mixed ("DeShawn", "McKenzie") is kept as given. White space is collapsed.
std::string CaseName(absl::string_view name);

// The fuzzy-matching key of a person: FoldForKey of "first last" with punctuation removed and
// white space collapsed ("Anne-Marie O'Neil" → "annemarie oneil").
std::string NameKey(absl::string_view first_name, absl::string_view last_name);

// The fuzzy-match blocking codes of a person, one per name part: "f:" and "l:" followed by the
// Soundex code of the folded first and last name ("Jon" and "John" → "f:j500", "Smith" and
// "Smyth" → "l:s530"), its opening first read as it sounds — "ph" as "f", a hard "c" or a "q"
// as "k", a soft "g" as "j", an opening vowel (or "y" before a consonant) as "a" ("Catherine"
// and "Katherine" → "f:k365", "Ibarra" and "Ybarra" → "l:a160"); a name part with no ASCII
// letter after folding (Cyrillic, CJK) gives its folded form instead. Empty unless both parts are
// given: only a full name can match fuzzily. Two leads whose names are close enough to match share
// at least one code unless both their first and their last names differ in sound (docs/STATE.md,
// capture's blocking).
std::vector<std::string> NameBlockCodes(absl::string_view first_name, absl::string_view last_name);

// The matching key of a company: folded, "&" read as "and", a leading "the" and trailing legal
// suffixes (inc, llc, ltd, gmbh, sa, bv, plc, corp, co, ...) dropped, then every character that
// is not a letter or digit removed: "The ACME Co., Ltd." → "acme", "Procter & Gamble" →
// "procterandgamble", "Coca-Cola" and "Coca Cola" → "cocacola". The first word is never dropped.
std::string CompanyMatchKey(absl::string_view company);

// ---- E-mail -------------------------------------------------------------------------------

// A parsed, normalised e-mail address.
struct EmailAddress {
  // Display form: trimmed and lower-cased (local parts are treated case-insensitively).
  std::string address;
  // Exact-match key: `address`, except that Gmail drops dots and "+tag" from the local part and
  // googlemail.com becomes gmail.com.
  std::string match_key;
  // Lower-case domain.
  std::string domain;
};

// Parses and normalises an e-mail address. InvalidArgument's message is the violation
// description (e.g. "must contain exactly one '@'"). Quoted local parts and IP-literal domains
// are rejected: no lead form produces them. Non-ASCII (RFC 6531) addresses are accepted.
absl::StatusOr<EmailAddress> ParseEmail(absl::string_view raw);

// ---- Country and language ------------------------------------------------------------------

// The ISO 3166-1 alpha-2 code (upper-case) of a country given as an alpha-2 or alpha-3 code or
// a name, or nullopt if unknown. Names are compared folded (case, accents, punctuation, "&" =
// "and", "St." = "Saint"); the table comes from ICU's CLDR data (English, the country's own
// language, de, fr, es, it, pt, nl) plus common aliases ("UK", "Great Britain", "USA",
// "America", "Holland", "Korea", "UAE", "EL" for Greece, ...).
std::optional<std::string> CountryToAlpha2(absl::string_view country);

// A BCP-47 language tag canonically cased ("EN-us" and "en_US" → "en-US", "zh-hant-tw" →
// "zh-Hant-TW"), or nullopt when it is not well-formed: the primary subtag must be an ISO 639
// code of 2–3 letters (so "english" is refused rather than stored), the others 1–8 letters or
// digits.
std::optional<std::string> NormalizeLanguageTag(absl::string_view tag);

// ---- Job title ----------------------------------------------------------------------------

// Seniority from a job title: owner / founder / C-level / chief / president / managing director
// → EXECUTIVE; vp / vice president / director / head of → SENIOR; manager / lead / supervisor →
// MANAGER; student / intern / trainee / apprentice → STUDENT; any other non-empty title →
// INDIVIDUAL_CONTRIBUTOR; empty → UNSPECIFIED. Phrases are matched longest first, so
// "Vice President" is not read as "President" and "Lead Generation Specialist" is not a lead;
// the highest level found wins, except that an assistant title ("Assistant to the CEO",
// "Executive Assistant") is an individual contributor.
events::v1::Seniority SeniorityOfTitle(absl::string_view title);

// Job function from a job title: the function of the first function keyword in the title
// ("VP Sales & Marketing" → "sales", "CMO" → "marketing", "CEO" → "executive"), "other" when
// none matches, empty for an empty title. One of: marketing, sales, engineering, it, finance,
// hr, operations, product, executive, other.
std::string JobFunctionOfTitle(absl::string_view title);

}  // namespace leadflow::capture
