// Merging a submission into a lead record, and creating a record from a submission.

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/rules/time_util.h"
#include "services/capture/engine.h"
#include "services/capture/engine_internal.h"

namespace leadflow::capture {

namespace {

using events::v1::Attribution;
using events::v1::Consent;
using events::v1::LeadProfile;
using events::v1::LeadSubmission;
using google::protobuf::util::MessageDifferencer;
using rules::ToTime;
using rules::ToTimestamp;

absl::Time SubmittedAt(const LeadSubmission& s, absl::Time now) {
  return s.has_submitted_at() ? ToTime(s.submitted_at()) : now;
}

// The touch a submission represents: its attribution, with the submission's source and time
// where the attribution has none.
Attribution TouchOf(const LeadSubmission& s, absl::Time submitted_at) {
  Attribution touch = s.attribution();
  if (touch.source().empty()) touch.set_source(s.source());
  if (!touch.has_at()) *touch.mutable_at() = ToTimestamp(submitted_at);
  return touch;
}

// Appends `value` to `list` unless empty or already there.
template <typename List>
void AddUnique(const std::string& value, List* list) {
  if (value.empty()) return;
  if (std::find(list->begin(), list->end(), value) == list->end()) list->Add(std::string(value));
}

// Adds `incoming` consents to the latest-per-channel map: a later `at` wins; at the same instant
// a withdrawal wins over a grant, the reading that never contacts someone who said no.
void MergeConsents(const google::protobuf::RepeatedPtrField<Consent>& incoming,
                   std::map<int, Consent>* latest) {
  for (const Consent& consent : incoming) {
    if (consent.channel() == events::v1::CHANNEL_UNSPECIFIED) continue;
    auto [it, inserted] = latest->try_emplace(consent.channel(), consent);
    if (inserted) continue;
    const absl::Time current_at = ToTime(it->second.at());
    const absl::Time incoming_at = ToTime(consent.at());
    if (incoming_at > current_at ||
        (incoming_at == current_at && it->second.granted() && !consent.granted())) {
      it->second = consent;
    }
  }
}

void SetConsents(const std::map<int, Consent>& latest, LeadProfile* lead) {
  lead->clear_consents();
  for (const auto& [channel, consent] : latest) *lead->add_consents() = consent;
}

// Collects the top-level field of every difference the differencer reports.
class TopLevelFieldCollector : public MessageDifferencer::Reporter {
 public:
  using SpecificField = MessageDifferencer::SpecificField;

  void ReportAdded(const google::protobuf::Message&, const google::protobuf::Message&,
                   const std::vector<SpecificField>& path) override {
    Collect(path);
  }
  void ReportDeleted(const google::protobuf::Message&, const google::protobuf::Message&,
                     const std::vector<SpecificField>& path) override {
    Collect(path);
  }
  void ReportModified(const google::protobuf::Message&, const google::protobuf::Message&,
                      const std::vector<SpecificField>& path) override {
    Collect(path);
  }
  void ReportMoved(const google::protobuf::Message&, const google::protobuf::Message&,
                   const std::vector<SpecificField>& path) override {
    Collect(path);
  }

  // Field names in field-number order.
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& [number, name] : fields_) names.push_back(name);
    return names;
  }

 private:
  void Collect(const std::vector<SpecificField>& path) {
    if (!path.empty() && path.front().field != nullptr) {
      fields_.emplace(path.front().field->number(), path.front().field->name());
    }
  }

  std::map<int, std::string> fields_;
};

// A lead record read as the submission that would have produced it, made at its last update:
// what lets MergeLeads apply Merge's rules instead of restating them. Lists the submission has
// only one of (sources, anonymous and external ids) and the touches are the caller's to add.
NormalizedSubmission AsSubmission(const LeadProfile& lead) {
  NormalizedSubmission n;
  LeadSubmission& s = n.submission;
  if (lead.has_updated_at()) {
    *s.mutable_submitted_at() = lead.updated_at();
  } else if (lead.has_created_at()) {
    *s.mutable_submitted_at() = lead.created_at();
  }
  s.set_email(lead.email());
  s.set_email_verified(lead.email_verified());
  s.set_phone(lead.phone());
  s.set_first_name(lead.first_name());
  s.set_last_name(lead.last_name());
  s.set_company(lead.company());
  s.set_job_title(lead.job_title());
  s.set_company_size(lead.company_size());
  s.set_industry(lead.industry());
  s.set_country(lead.country());
  s.set_region(lead.region());
  s.set_city(lead.city());
  s.set_language(lead.language());
  s.set_time_zone(lead.time_zone());
  *s.mutable_interests() = lead.interests();
  *s.mutable_custom() = lead.custom();
  *s.mutable_consents() = lead.consents();
  s.set_do_not_contact(lead.do_not_contact());
  n.email_match_key = EmailMatchKey(lead.email());
  n.phone_e164 = lead.phone();
  n.seniority = lead.seniority();
  n.job_function = lead.job_function();
  return n;
}

// The earlier first touch (`first`) or the later last touch of two leads, either possibly
// unset, into `out`; a tie keeps `a`'s.
void PickTouch(const LeadProfile& a, const LeadProfile& b, bool first, LeadProfile* out) {
  const Attribution* pa = first ? (a.has_first_touch() ? &a.first_touch() : nullptr)
                                : (a.has_last_touch() ? &a.last_touch() : nullptr);
  const Attribution* pb = first ? (b.has_first_touch() ? &b.first_touch() : nullptr)
                                : (b.has_last_touch() ? &b.last_touch() : nullptr);
  const Attribution* pick = pa;
  if (pa == nullptr) {
    pick = pb;
  } else if (pb != nullptr) {
    const absl::Time ta = ToTime(pa->at());
    const absl::Time tb = ToTime(pb->at());
    if (first ? tb < ta : tb > ta) pick = pb;
  }
  Attribution* target = first ? out->mutable_first_touch() : out->mutable_last_touch();
  if (pick == nullptr) {
    first ? out->clear_first_touch() : out->clear_last_touch();
  } else {
    *target = *pick;
  }
}

// The earlier (`earliest`) or later of two leads' optional timestamps, into `out`.
void PickTime(const LeadProfile& a, const LeadProfile& b, bool earliest,
              const google::protobuf::Timestamp& (LeadProfile::*get)() const,
              bool (LeadProfile::*has)() const, google::protobuf::Timestamp* out) {
  if (!(a.*has)() && !(b.*has)()) return;
  if (!(a.*has)()) {
    *out = (b.*get)();
  } else if (!(b.*has)()) {
    *out = (a.*get)();
  } else {
    const absl::Time ta = ToTime((a.*get)());
    const absl::Time tb = ToTime((b.*get)());
    *out = (earliest ? tb < ta : tb > ta) ? (b.*get)() : (a.*get)();
  }
}

}  // namespace

std::vector<std::string> ChangedFields(const LeadProfile& before, const LeadProfile& after) {
  TopLevelFieldCollector collector;
  MessageDifferencer differencer;
  differencer.IgnoreField(
      LeadProfile::descriptor()->FindFieldByNumber(LeadProfile::kUpdatedAtFieldNumber));
  differencer.ReportDifferencesTo(&collector);
  differencer.Compare(before, after);
  return collector.Names();
}

MergeResult Merge(const LeadProfile& existing, const NormalizedSubmission& submission,
                  absl::Time now) {
  const LeadSubmission& s = submission.submission;
  const absl::Time submitted_at = SubmittedAt(s, now);
  const bool newer = !existing.has_updated_at() || submitted_at >= ToTime(existing.updated_at());

  LeadProfile lead = existing;

  // A newer non-empty value wins; an older one only fills a gap.
  auto take = [newer](const std::string& incoming, const std::string& current, auto setter) {
    if (!incoming.empty() && (newer || current.empty())) setter(incoming);
  };
  take(s.phone(), lead.phone(), [&](const std::string& v) { lead.set_phone(v); });
  take(s.first_name(), lead.first_name(), [&](const std::string& v) { lead.set_first_name(v); });
  take(s.last_name(), lead.last_name(), [&](const std::string& v) { lead.set_last_name(v); });
  take(s.company(), lead.company(), [&](const std::string& v) { lead.set_company(v); });
  take(s.job_title(), lead.job_title(), [&](const std::string& v) {
    lead.set_job_title(v);
    lead.set_seniority(submission.seniority);
    lead.set_job_function(submission.job_function);
  });
  take(s.industry(), lead.industry(), [&](const std::string& v) { lead.set_industry(v); });
  take(s.country(), lead.country(), [&](const std::string& v) { lead.set_country(v); });
  take(s.region(), lead.region(), [&](const std::string& v) { lead.set_region(v); });
  take(s.city(), lead.city(), [&](const std::string& v) { lead.set_city(v); });
  take(s.language(), lead.language(), [&](const std::string& v) { lead.set_language(v); });
  take(s.time_zone(), lead.time_zone(), [&](const std::string& v) { lead.set_time_zone(v); });
  if (s.company_size() > 0 && (newer || lead.company_size() == 0)) {
    lead.set_company_size(s.company_size());
  }

  // E-mail: as above, except that a verified address is never replaced by an unverified one.
  if (!s.email().empty()) {
    const bool same_mailbox =
        !existing.email().empty() && EmailMatchKey(existing.email()) == submission.email_match_key;
    if (existing.email().empty()) {
      lead.set_email(s.email());
      lead.set_email_verified(s.email_verified());
    } else if (same_mailbox) {
      // Same mailbox, perhaps spelled differently ("j.doe@" vs "jdoe@" at Gmail).
      if (newer && (s.email_verified() || !existing.email_verified())) lead.set_email(s.email());
      if (s.email_verified()) lead.set_email_verified(true);
    } else if (newer && (s.email_verified() || !existing.email_verified())) {
      lead.set_email(s.email());
      lead.set_email_verified(s.email_verified());
    }
  }

  // Accumulating lists.
  for (const std::string& interest : s.interests()) AddUnique(interest, lead.mutable_interests());
  AddUnique(s.source(), lead.mutable_sources());
  AddUnique(s.anonymous_id(), lead.mutable_anonymous_ids());
  AddUnique(s.external_id(), lead.mutable_external_ids());

  std::map<int, Consent> consents;
  MergeConsents(existing.consents(), &consents);
  MergeConsents(s.consents(), &consents);
  SetConsents(consents, &lead);

  lead.set_do_not_contact(existing.do_not_contact() || s.do_not_contact());

  // Touches: the earliest is the first touch, the latest the last.
  const Attribution touch = TouchOf(s, submitted_at);
  if (!existing.has_first_touch() || ToTime(touch.at()) < ToTime(existing.first_touch().at())) {
    *lead.mutable_first_touch() = touch;
  }
  if (!existing.has_last_touch() || ToTime(touch.at()) >= ToTime(existing.last_touch().at())) {
    *lead.mutable_last_touch() = touch;
  }

  // Custom attributes, key by key. Iterated in key order so the result never depends on the
  // hash order of the map.
  const std::map<std::string, std::string> custom(s.custom().begin(), s.custom().end());
  for (const auto& [key, value] : custom) {
    if (value.empty()) continue;
    auto it = lead.custom().find(key);
    if (it == lead.custom().end() || it->second.empty() || newer) {
      (*lead.mutable_custom())[key] = value;
    }
  }

  if (newer) *lead.mutable_updated_at() = ToTimestamp(submitted_at);

  MergeResult result;
  result.changed_fields = ChangedFields(existing, lead);
  result.lead = std::move(lead);
  return result;
}

MergeResult MergeLeads(const LeadProfile& survivor, const LeadProfile& absorbed, absl::Time now) {
  MergeResult result = Merge(survivor, AsSubmission(absorbed), now);
  LeadProfile& lead = result.lead;
  for (const std::string& source : absorbed.sources()) AddUnique(source, lead.mutable_sources());
  for (const std::string& id : absorbed.anonymous_ids()) {
    AddUnique(id, lead.mutable_anonymous_ids());
  }
  for (const std::string& id : absorbed.external_ids()) {
    AddUnique(id, lead.mutable_external_ids());
  }
  // Whole records, not one touch: Merge saw the absorbed lead as a single submission.
  PickTouch(survivor, absorbed, /*first=*/true, &lead);
  PickTouch(survivor, absorbed, /*first=*/false, &lead);
  PickTime(survivor, absorbed, /*earliest=*/true, &LeadProfile::created_at,
           &LeadProfile::has_created_at, lead.mutable_created_at());
  PickTime(survivor, absorbed, /*earliest=*/false, &LeadProfile::updated_at,
           &LeadProfile::has_updated_at, lead.mutable_updated_at());
  if (!survivor.has_created_at() && !absorbed.has_created_at()) lead.clear_created_at();
  if (!survivor.has_updated_at() && !absorbed.has_updated_at()) lead.clear_updated_at();
  result.changed_fields = ChangedFields(survivor, lead);
  return result;
}

LeadProfile MergeRedirect(const std::string& lead_id, const std::string& survivor_id) {
  LeadProfile redirect;
  redirect.set_lead_id(lead_id);
  redirect.set_merged_into_lead_id(survivor_id);
  return redirect;
}

LeadProfile NewLead(const NormalizedSubmission& submission, std::string lead_id, absl::Time now) {
  const LeadSubmission& s = submission.submission;
  const absl::Time submitted_at = SubmittedAt(s, now);

  LeadProfile lead;
  lead.set_lead_id(std::move(lead_id));
  lead.set_email(s.email());
  lead.set_email_verified(s.email_verified() && !s.email().empty());
  lead.set_phone(s.phone());
  lead.set_first_name(s.first_name());
  lead.set_last_name(s.last_name());
  lead.set_company(s.company());
  lead.set_job_title(s.job_title());
  lead.set_seniority(submission.seniority);
  lead.set_job_function(submission.job_function);
  lead.set_company_size(std::max(0, s.company_size()));
  lead.set_industry(s.industry());
  lead.set_country(s.country());
  lead.set_region(s.region());
  lead.set_city(s.city());
  lead.set_language(s.language());
  lead.set_time_zone(s.time_zone());
  for (const std::string& interest : s.interests()) AddUnique(interest, lead.mutable_interests());
  for (const auto& [key, value] : s.custom()) {
    if (!value.empty()) (*lead.mutable_custom())[key] = value;
  }
  std::map<int, Consent> consents;
  MergeConsents(s.consents(), &consents);
  SetConsents(consents, &lead);
  lead.set_do_not_contact(s.do_not_contact());
  AddUnique(s.source(), lead.mutable_sources());
  *lead.mutable_first_touch() = TouchOf(s, submitted_at);
  *lead.mutable_last_touch() = lead.first_touch();
  AddUnique(s.anonymous_id(), lead.mutable_anonymous_ids());
  AddUnique(s.external_id(), lead.mutable_external_ids());
  *lead.mutable_created_at() = ToTimestamp(submitted_at);
  *lead.mutable_updated_at() = ToTimestamp(submitted_at);
  return lead;
}

MergeResult NewEpisode(const LeadProfile& converted, const NormalizedSubmission& submission,
                       std::string lead_id, absl::Time now) {
  LeadProfile base = converted;
  base.clear_interests();
  base.clear_custom();
  base.clear_sources();
  base.clear_first_touch();
  base.clear_last_touch();
  base.clear_converted_at();
  base.clear_updated_at();
  base.set_contact_id(converted.contact_id().empty() ? converted.lead_id()
                                                     : converted.contact_id());
  base.set_episode(std::max(1, converted.episode()) + 1);
  base.set_previous_lead_id(converted.lead_id());
  base.set_lead_id(std::move(lead_id));
  *base.mutable_created_at() = ToTimestamp(SubmittedAt(submission.submission, now));
  MergeResult result = Merge(base, submission, now);
  result.changed_fields = ChangedFields(LeadProfile(), result.lead);
  return result;
}

}  // namespace leadflow::capture
