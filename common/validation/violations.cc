#include "common/validation/violations.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace leadflow::validation {

absl::Status InvalidArgumentWithViolations(absl::string_view summary,
                                           const google::rpc::BadRequest& violations) {
  std::string message(summary);
  for (const auto& v : violations.field_violations()) {
    absl::StrAppend(&message, message.empty() ? "" : "; ", v.field(), ": ", v.description());
  }
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kBadRequestTypeUrl, absl::Cord(violations.SerializeAsString()));
  return status;
}

google::rpc::BadRequest ViolationsOf(const absl::Status& status) {
  google::rpc::BadRequest out;
  if (auto payload = status.GetPayload(kBadRequestTypeUrl)) {
    out.ParseFromString(std::string(*payload));
  }
  return out;
}

void ViolationList::Add(std::string field, std::string description) {
  auto* v = violations_.add_field_violations();
  v->set_field(std::move(field));
  v->set_description(std::move(description));
}

absl::Status ViolationList::ToStatus(absl::string_view summary) const {
  if (empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations(summary, violations_);
}

}  // namespace leadflow::validation
