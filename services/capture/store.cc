#include "services/capture/store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/redis/keys.h"
#include "common/redis/outbox.h"

namespace leadflow::capture {

std::string CaptureStore::ProfileKey(const std::string& lead_id) {
  return redis::LeadKey(kService, lead_id, "profile");
}
std::string CaptureStore::EmailIndexKey(const std::string& key) {
  return absl::StrCat("capture:idx:email:{", key, "}");
}
std::string CaptureStore::PhoneIndexKey(const std::string& e164) {
  return absl::StrCat("capture:idx:phone:{", e164, "}");
}
std::string CaptureStore::ExternalIndexKey(const std::string& external_id) {
  return absl::StrCat("capture:idx:ext:{", external_id, "}");
}
std::string CaptureStore::CompanyBlockKey(const std::string& company_match_key,
                                          const std::string& name_code) {
  return absl::StrCat("capture:block:company:", company_match_key, ":", name_code);
}
std::string CaptureStore::DomainBlockKey(const std::string& domain, const std::string& name_code) {
  return absl::StrCat("capture:block:domain:", domain, ":", name_code);
}
std::string CaptureStore::RequestKey(const std::string& request_id) {
  return absl::StrCat("capture:req:{", request_id, "}");
}

std::string CaptureStore::SentKey(const std::string& request_id) {
  return absl::StrCat(RequestKey(request_id), ":sent");
}

absl::Status CaptureStore::MarkSent(
    const std::vector<std::pair<std::string, std::string>>& requests, absl::Duration ttl) {
  if (requests.empty()) return absl::OkStatus();
  // An expiring key goes in the registry's expiring members, scored by the instant it expires
  // (PXAT: the same instant whatever the clocks), so the registry does not keep it after that.
  const std::string expires_at = absl::StrCat(absl::ToUnixMillis(absl::Now()) +
                                              std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl)));
  std::vector<redis::Args> commands;
  commands.reserve(2 * requests.size());
  for (const auto& [request_id, lead_id] : requests) {
    const std::string registry = redis::RegistryKey(kService, lead_id);
    commands.push_back({"SET", SentKey(request_id), "1", "PXAT", expires_at});
    commands.push_back(
        {"ZADD", redis::ExpiringRegistryKey(registry), expires_at, SentKey(request_id)});
  }
  redis::Args acknowledged = {"ZREM", OutboxKey()};
  for (const auto& request : requests) acknowledged.push_back(request.first);
  commands.push_back(std::move(acknowledged));
  absl::StatusOr<std::vector<redis::Reply>> replies = client_.Pipeline(commands);
  return replies.ok() ? absl::OkStatus() : replies.status();
}

const std::string& CaptureStore::OutboxKey() {
  static const std::string* const key = new std::string("capture:outbox");
  return *key;
}

absl::StatusOr<bool> CaptureStore::WasSent(const std::string& request_id) {
  absl::StatusOr<redis::Reply> reply = client_.Command({"EXISTS", SentKey(request_id)});
  if (!reply.ok()) return reply.status();
  return reply->integer == 1;
}

std::vector<std::string> CaptureStore::IndexKeysFor(const NormalizedSubmission& s) {
  std::vector<std::string> keys;
  if (!s.email_match_key.empty()) keys.push_back(EmailIndexKey(s.email_match_key));
  if (!s.phone_e164.empty()) keys.push_back(PhoneIndexKey(s.phone_e164));
  if (!s.submission.external_id().empty()) {
    keys.push_back(ExternalIndexKey(s.submission.external_id()));
  }
  return keys;
}

namespace {

// The blocking sets of a person at a company and an e-mail domain (either may be empty; a free
// mail domain is no block), one per name code.
std::vector<std::string> BlockKeys(const std::string& company_match_key, const std::string& domain,
                                   const std::vector<std::string>& name_codes) {
  std::vector<std::string> keys;
  const bool business_domain = !domain.empty() && !IsFreeMailDomain(domain);
  for (const std::string& code : name_codes) {
    if (!company_match_key.empty()) {
      keys.push_back(CaptureStore::CompanyBlockKey(company_match_key, code));
    }
    if (business_domain) keys.push_back(CaptureStore::DomainBlockKey(domain, code));
  }
  return keys;
}

std::string DomainOf(const std::string& email) {
  const size_t at = email.find('@');
  if (at == std::string::npos || at + 1 >= email.size()) return "";
  return email.substr(at + 1);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> CaptureStore::BlockPairsFor(
    const NormalizedSubmission& s) {
  std::vector<std::pair<std::string, std::string>> pairs;
  const std::vector<std::string> codes =
      NameBlockCodes(s.submission.first_name(), s.submission.last_name());
  if (codes.size() != 2) return pairs;
  if (!s.company_match_key.empty()) {
    pairs.emplace_back(CompanyBlockKey(s.company_match_key, codes[0]),
                       CompanyBlockKey(s.company_match_key, codes[1]));
  }
  if (!s.email_domain.empty() && !IsFreeMailDomain(s.email_domain)) {
    pairs.emplace_back(DomainBlockKey(s.email_domain, codes[0]),
                       DomainBlockKey(s.email_domain, codes[1]));
  }
  return pairs;
}

std::vector<std::string> CaptureStore::BlockKeysFor(const NormalizedSubmission& s) {
  return BlockKeys(s.company_match_key, s.email_domain,
                   NameBlockCodes(s.submission.first_name(), s.submission.last_name()));
}

std::vector<std::string> CaptureStore::IndexKeysOf(const events::v1::LeadProfile& lead) {
  std::vector<std::string> keys;
  if (std::string key = EmailMatchKey(lead.email()); !key.empty()) {
    keys.push_back(EmailIndexKey(key));
  }
  if (!lead.phone().empty()) keys.push_back(PhoneIndexKey(lead.phone()));
  for (const std::string& id : lead.external_ids()) {
    if (!id.empty()) keys.push_back(ExternalIndexKey(id));
  }
  return keys;
}

std::vector<std::string> CaptureStore::BlockKeysOf(const events::v1::LeadProfile& lead) {
  const std::string company = lead.company().empty() ? "" : CompanyMatchKey(lead.company());
  return BlockKeys(company, DomainOf(lead.email()),
                   NameBlockCodes(lead.first_name(), lead.last_name()));
}

absl::StatusOr<std::optional<events::v1::LeadProfile>> CaptureStore::LoadCurrent(
    const std::string& lead_id) {
  std::string id = lead_id;
  for (int hop = 0; hop <= kMaxMergeHops; ++hop) {
    absl::StatusOr<std::optional<events::v1::LeadProfile>> p = LoadProfile(id);
    if (!p.ok() || !p->has_value() || !IsMergeRedirect(**p)) return p;
    id = (*p)->merged_into_lead_id();
  }
  return absl::DataLossError(absl::StrCat("lead ", lead_id, ": merge chain too long or cyclic"));
}

absl::StatusOr<std::vector<std::string>> CaptureStore::CandidateIds(
    const NormalizedSubmission& submission, size_t max_fuzzy) {
  absl::StatusOr<std::vector<std::vector<std::string>>> ids =
      CandidateIdsMany({&submission}, max_fuzzy);
  if (!ids.ok()) return ids.status();
  return std::move(ids->front());
}

absl::StatusOr<std::vector<std::vector<std::string>>> CaptureStore::CandidateIdsMany(
    const std::vector<const NormalizedSubmission*>& submissions, size_t max_fuzzy) {
  std::vector<redis::Args> commands;
  std::vector<size_t> command_count;
  std::vector<size_t> exact_count;
  for (const NormalizedSubmission* submission : submissions) {
    const size_t before = commands.size();
    for (const std::string& k : IndexKeysFor(*submission)) commands.push_back({"HGET", k, "d"});
    exact_count.push_back(commands.size() - before);
    // Everyone whose first and last names both sound alike, however large the blocks; then a
    // sample of each block for those alike in one name only.
    for (const auto& [first_key, last_key] : BlockPairsFor(*submission)) {
      commands.push_back({"SINTER", first_key, last_key});
    }
    for (const std::string& k : BlockKeysFor(*submission)) {
      commands.push_back({"SRANDMEMBER", k, absl::StrCat(max_fuzzy)});
    }
    command_count.push_back(commands.size() - before);
  }
  std::vector<std::vector<std::string>> ids(submissions.size());
  if (commands.empty()) return ids;
  absl::StatusOr<std::vector<redis::Reply>> replies = client_.Pipeline(commands);
  if (!replies.ok()) return replies.status();
  size_t next = 0;
  for (size_t i = 0; i < submissions.size(); ++i) {
    std::vector<std::string>& out = ids[i];
    auto add = [&out](const std::string& id) {
      if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    };
    // As many fuzzy candidates as two full samples: the name-sound twins first.
    const size_t max_ids = exact_count[i] + 2 * max_fuzzy;
    for (size_t k = 0; k < command_count[i]; ++k) {
      const redis::Reply& r = (*replies)[next + k];
      if (r.is_error()) return redis::ErrorReplyToStatus(r);
      if (r.type == redis::Reply::Type::kString) add(r.str);
      for (const redis::Reply& e : r.elements) {
        if (out.size() >= max_ids) break;
        add(e.str);
      }
    }
    next += command_count[i];
  }
  return ids;
}

absl::StatusOr<std::vector<events::v1::LeadProfile>> CaptureStore::LoadProfiles(
    const std::vector<std::string>& lead_ids) {
  absl::StatusOr<std::vector<std::vector<events::v1::LeadProfile>>> profiles =
      LoadProfilesMany({lead_ids});
  if (!profiles.ok()) return profiles.status();
  return std::move(profiles->front());
}

absl::StatusOr<std::vector<std::vector<events::v1::LeadProfile>>> CaptureStore::LoadProfilesMany(
    const std::vector<std::vector<std::string>>& lead_ids) {
  std::vector<std::string> keys;
  for (const std::vector<std::string>& ids : lead_ids) {
    for (const std::string& id : ids) keys.push_back(ProfileKey(id));
  }
  std::vector<std::vector<events::v1::LeadProfile>> profiles(lead_ids.size());
  if (keys.empty()) return profiles;
  absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read(keys);
  if (!records.ok()) return records.status();
  size_t next = 0;
  for (size_t i = 0; i < lead_ids.size(); ++i) {
    for (size_t k = 0; k < lead_ids[i].size(); ++k) {
      const redis::Versioned& r = (*records)[next + k];
      if (!r.data.has_value()) continue;
      events::v1::LeadProfile p;
      if (!p.ParseFromString(*r.data)) return absl::DataLossError("corrupt profile " + r.key);
      profiles[i].push_back(std::move(p));
    }
    next += lead_ids[i].size();
  }
  return profiles;
}

absl::StatusOr<std::optional<events::v1::LeadProfile>> CaptureStore::LoadProfile(
    const std::string& lead_id) {
  absl::StatusOr<std::vector<events::v1::LeadProfile>> p = LoadProfiles({lead_id});
  if (!p.ok()) return p.status();
  if (p->empty()) return std::nullopt;
  return std::move((*p)[0]);
}

absl::StatusOr<std::optional<std::string>> CaptureStore::LookupIndex(const std::string& key) {
  absl::StatusOr<redis::Reply> r = client_.Command({"HGET", key, "d"});
  if (!r.ok()) return r.status();
  if (r->is_error()) return redis::ErrorReplyToStatus(*r);
  if (r->is_nil()) return std::nullopt;
  return r->str;
}

absl::Status CaptureStore::Erase(const std::string& lead_id) {
  absl::StatusOr<std::optional<events::v1::LeadProfile>> profile = LoadProfile(lead_id);
  if (!profile.ok()) return profile.status();
  if (profile->has_value()) {
    // Blocking sets are shared between leads, so they are not in the registry: remove the
    // lead from each one it can be in.
    std::vector<redis::Args> commands;
    for (const std::string& k : BlockKeysOf(**profile)) {
      commands.push_back({"SREM", k, lead_id});
    }
    if (!commands.empty()) {
      absl::StatusOr<std::vector<redis::Reply>> r = client_.Pipeline(commands);
      if (!r.ok()) return r.status();
    }
  }
  return apply_.Erase(redis::RegistryKey(kService, lead_id), redis::TombstoneKey(kService, lead_id),
                      absl::Hours(24 * 30), {ProfileKey(lead_id)});
}

}  // namespace leadflow::capture
