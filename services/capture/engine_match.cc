// Matching a submission to an existing lead: exact keys first, then a blocked fuzzy name match.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/rules/time_util.h"
#include "services/capture/engine.h"
#include "services/capture/engine_internal.h"
#include "services/capture/engine_text.h"

namespace leadflow::capture {

namespace {

using events::v1::LeadProfile;
using rules::ToTime;

// Exact keys in precedence order.
enum class ExactKey { kEmail = 0, kPhone = 1, kExternalId = 2 };

const char* KeyName(ExactKey key) {
  switch (key) {
    case ExactKey::kEmail:
      return "email";
    case ExactKey::kPhone:
      return "phone";
    case ExactKey::kExternalId:
      return "external_id";
  }
  return "";
}

// Sort key that puts the oldest lead first; a lead without created_at sorts after every dated
// one. Ties between candidates are thereby independent of the order the store returned them in.
std::tuple<bool, absl::Time, const std::string&> Age(const LeadProfile& lead) {
  return {!lead.has_created_at(), lead.has_created_at() ? ToTime(lead.created_at()) : absl::Time(),
          lead.lead_id()};
}

bool Older(const LeadProfile* a, const LeadProfile* b) { return Age(*a) < Age(*b); }

std::optional<ExactKey> BestExactKey(const NormalizedSubmission& s, const LeadProfile& lead) {
  if (!s.email_match_key.empty() && EmailMatchKey(lead.email()) == s.email_match_key) {
    return ExactKey::kEmail;
  }
  if (!s.phone_e164.empty() && lead.phone() == s.phone_e164) return ExactKey::kPhone;
  const std::string& external_id = s.submission.external_id();
  if (!external_id.empty() && std::find(lead.external_ids().begin(), lead.external_ids().end(),
                                        external_id) != lead.external_ids().end()) {
    return ExactKey::kExternalId;
  }
  return std::nullopt;
}

std::string EmailDomain(const std::string& email) {
  const size_t at = email.rfind('@');
  return at == std::string::npos ? "" : ToLowerText(email.substr(at + 1));
}

// Whether the fuzzy match may compare the two at all: same company, or same employer domain.
bool SameBlock(const NormalizedSubmission& s, const LeadProfile& lead) {
  if (!s.company_match_key.empty() && CompanyMatchKey(lead.company()) == s.company_match_key) {
    return true;
  }
  return !s.email_domain.empty() && !IsFreeMailDomain(s.email_domain) &&
         EmailDomain(lead.email()) == s.email_domain;
}

double Jaro(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  if (a.empty() || b.empty()) return 0.0;
  const size_t window = std::max(a.size(), b.size()) / 2;
  const size_t reach = window > 0 ? window - 1 : 0;
  std::vector<bool> a_matched(a.size(), false);
  std::vector<bool> b_matched(b.size(), false);
  size_t matches = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const size_t lo = i > reach ? i - reach : 0;
    const size_t hi = std::min(b.size(), i + reach + 1);
    for (size_t j = lo; j < hi; ++j) {
      if (!b_matched[j] && a[i] == b[j]) {
        a_matched[i] = b_matched[j] = true;
        ++matches;
        break;
      }
    }
  }
  if (matches == 0) return 0.0;
  size_t half_transpositions = 0;
  for (size_t i = 0, j = 0; i < a.size(); ++i) {
    if (!a_matched[i]) continue;
    while (!b_matched[j]) ++j;
    if (a[i] != b[j]) ++half_transpositions;
    ++j;
  }
  const double m = static_cast<double>(matches);
  const double t = static_cast<double>(half_transpositions) / 2.0;
  return (m / static_cast<double>(a.size()) + m / static_cast<double>(b.size()) + (m - t) / m) /
         3.0;
}

}  // namespace

double JaroWinkler(absl::string_view a, absl::string_view b) {
  constexpr double kPrefixScale = 0.1;
  constexpr size_t kMaxPrefix = 4;
  const std::vector<int32_t> x = internal::CodePoints(a);
  const std::vector<int32_t> y = internal::CodePoints(b);
  const double jaro = Jaro(x, y);
  size_t prefix = 0;
  while (prefix < std::min({kMaxPrefix, x.size(), y.size()}) && x[prefix] == y[prefix]) ++prefix;
  return jaro + static_cast<double>(prefix) * kPrefixScale * (1.0 - jaro);
}

absl::StatusOr<double> FuzzyThresholdOf(const config::v1::CaptureConfig& config) {
  const double t = config.fuzzy_threshold();
  if (t == 0.0) return kDefaultFuzzyThreshold;
  // Written so that NaN fails too.
  if (!(t > 0.0 && t <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("capture: fuzzy_threshold must be in (0, 1], got ", t));
  }
  return t;
}

MatchDecision Match(const NormalizedSubmission& submission,
                    const std::vector<LeadProfile>& candidates, double fuzzy_threshold) {
  // Unique candidates with an id (a lead without one cannot be merged into).
  std::vector<const LeadProfile*> leads;
  absl::flat_hash_set<std::string> seen;
  for (const LeadProfile& lead : candidates) {
    if (!lead.lead_id().empty() && seen.insert(lead.lead_id()).second) leads.push_back(&lead);
  }
  std::sort(leads.begin(), leads.end(), Older);

  MatchDecision decision;

  // Exact keys: best key first, oldest lead first within a key.
  std::vector<std::pair<ExactKey, const LeadProfile*>> exact;
  for (const LeadProfile* lead : leads) {
    if (std::optional<ExactKey> key = BestExactKey(submission, *lead))
      exact.emplace_back(*key, lead);
  }
  std::stable_sort(exact.begin(), exact.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  if (!exact.empty()) {
    events::v1::MatchExplanation& match = decision.match.emplace();
    match.set_key(KeyName(exact.front().first));
    match.set_similarity(1.0);
    match.set_matched_lead_id(exact.front().second->lead_id());
    for (size_t i = 1; i < exact.size(); ++i) {
      decision.also_matched_lead_ids.push_back(exact[i].second->lead_id());
    }
    return decision;
  }

  // Fuzzy: a full name on both sides (a first name alone is far too common), the same company
  // or employer domain, and a name similarity at or above the threshold. Highest similarity
  // wins; the oldest lead breaks ties.
  const events::v1::LeadSubmission& s = submission.submission;
  if (s.first_name().empty() || s.last_name().empty()) return decision;
  const LeadProfile* best = nullptr;
  double best_similarity = 0.0;
  for (const LeadProfile* lead : leads) {
    if (lead->first_name().empty() || lead->last_name().empty()) continue;
    if (!SameBlock(submission, *lead)) continue;
    const double similarity =
        JaroWinkler(submission.name_key, NameKey(lead->first_name(), lead->last_name()));
    if (similarity >= fuzzy_threshold && similarity > best_similarity) {
      best = lead;
      best_similarity = similarity;
    }
  }
  if (best != nullptr) {
    events::v1::MatchExplanation& match = decision.match.emplace();
    match.set_key("fuzzy_name");
    match.set_similarity(best_similarity);
    match.set_matched_lead_id(best->lead_id());
  }
  return decision;
}

}  // namespace leadflow::capture
