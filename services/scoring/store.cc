#include "services/scoring/store.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/redis/keys.h"

namespace leadflow::scoring {

std::string ScoringStore::StateKey(const std::string& lead_id) {
  return redis::LeadKey(kService, lead_id, "state");
}

std::string ScoringStore::SegmentKey(const std::string& segment_id) {
  return absl::StrCat("scoring:segment:", segment_id);
}

absl::StatusOr<std::optional<internal::v1::ScoringLeadState>> ScoringStore::LoadState(
    const std::string& lead_id) {
  absl::StatusOr<std::vector<redis::Versioned>> records = apply_.Read({StateKey(lead_id)});
  if (!records.ok()) return records.status();
  const redis::Versioned& record = (*records)[0];
  if (!record.data.has_value()) return std::nullopt;
  internal::v1::ScoringLeadState state;
  if (!state.ParseFromString(*record.data)) {
    return absl::DataLossError("corrupt state " + record.key);
  }
  return state;
}

absl::StatusOr<ScoringStore::SegmentPage> ScoringStore::ListSegmentMembers(
    const std::string& segment_id, int page_size, const std::string& page_token) {
  // The token is "<SSCAN cursor>:<members of that cursor's batch already returned>": SSCAN's
  // COUNT is only a hint (small sets come back whole), so a page may end inside a batch, and the
  // same cursor returns the same batch while the set does not change.
  if (page_size <= 0) return absl::InvalidArgumentError("page_size must be positive");
  std::string cursor = "0";
  size_t skip = 0;
  if (!page_token.empty()) {
    std::vector<std::string> parts = absl::StrSplit(page_token, ':');
    uint64_t cursor_value = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &cursor_value) ||
        !absl::SimpleAtoi(parts[1], &skip)) {
      return absl::InvalidArgumentError("page_token: not a token from a previous response");
    }
    cursor = parts[0];
  }
  const std::string key = SegmentKey(segment_id);
  SegmentPage page;
  while (static_cast<int>(page.lead_ids.size()) < page_size) {
    absl::StatusOr<redis::Reply> reply =
        client_.Command({"SSCAN", key, cursor, "COUNT", absl::StrCat(page_size)});
    if (!reply.ok()) return reply.status();
    if (reply->is_error()) return redis::ErrorReplyToStatus(*reply);
    if (reply->elements.size() != 2) return absl::InternalError("SSCAN: unexpected reply");
    const std::string& next_cursor = reply->elements[0].str;
    const std::vector<redis::Reply>& batch = reply->elements[1].elements;
    const size_t wanted = static_cast<size_t>(page_size) - page.lead_ids.size();
    const size_t available = batch.size() > skip ? batch.size() - skip : 0;
    const size_t take = std::min(wanted, available);
    for (size_t i = skip; i < skip + take; ++i) page.lead_ids.push_back(batch[i].str);
    if (take < available) {
      page.next_page_token = absl::StrCat(cursor, ":", skip + take);
      return page;
    }
    if (next_cursor == "0") return page;
    cursor = next_cursor;
    skip = 0;
  }
  page.next_page_token = absl::StrCat(cursor, ":0");
  return page;
}

absl::Status ScoringStore::Erase(const std::string& lead_id,
                                 const std::vector<std::string>& known_segment_ids,
                                 absl::Duration tombstone_ttl) {
  absl::flat_hash_set<std::string> segments(known_segment_ids.begin(), known_segment_ids.end());
  absl::StatusOr<std::optional<internal::v1::ScoringLeadState>> state = LoadState(lead_id);
  if (!state.ok()) return state.status();
  if (state->has_value()) {
    for (const std::string& s : (*state)->score().segments()) segments.insert(s);
  }
  if (absl::Status s =
          apply_.Erase(redis::RegistryKey(kService, lead_id),
                       redis::TombstoneKey(kService, lead_id), tombstone_ttl, {StateKey(lead_id)});
      !s.ok()) {
    return s;
  }
  // After the tombstone: an apply of this lead racing with the erasure either committed before
  // it (and its SADD is undone here) or finds the tombstone and changes nothing.
  std::vector<redis::Args> commands;
  for (const std::string& segment : segments) {
    commands.push_back({"SREM", SegmentKey(segment), lead_id});
  }
  if (commands.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<redis::Reply>> replies = client_.Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (const redis::Reply& r : *replies) {
    if (r.is_error()) return redis::ErrorReplyToStatus(r);
  }
  return absl::OkStatus();
}

}  // namespace leadflow::scoring
