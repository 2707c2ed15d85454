#pragma once

// Key construction with hash tags (ARCHITECTURE.md §5): every key of one lead contains `{lead_id}`
// so a service's store can move to Redis Cluster with all of a lead's keys in one slot.
//
// Layout: `<service>:{<lead_id>}:<name>`, e.g. `scoring:{8f1c…}:state`. Each service writes
// its key schema down in its store.h, built with these helpers.

#include <string>
#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"

namespace leadflow::redis {

inline std::string LeadKey(absl::string_view service, absl::string_view lead_id,
                           absl::string_view name) {
  return absl::StrCat(service, ":{", lead_id, "}:", name);
}

// Keys every service keeps per lead for apply-once and erasure.
inline std::string AppliedKey(absl::string_view service, absl::string_view lead_id,
                              absl::string_view event_id) {
  return LeadKey(service, lead_id, absl::StrCat("applied:", event_id));
}
inline std::string RegistryKey(absl::string_view service, absl::string_view lead_id) {
  return LeadKey(service, lead_id, "keys");
}
// The registry's expiring members (apply-once records and other keys that expire): a sorted
// set by expiry time (Unix ms), pruned as they pass, so it stays bounded; erasure deletes them.
inline std::string ExpiringRegistryKey(absl::string_view registry_key) {
  return absl::StrCat(registry_key, ":expiring");
}
inline std::string TombstoneKey(absl::string_view service, absl::string_view lead_id) {
  return LeadKey(service, lead_id, "erased");
}

}  // namespace leadflow::redis
