#include "common/kafka/memo.h"

#include "leadflow/internal/v1/memo.pb.h"

namespace leadflow::kafka {

std::string EncodeMemo(const std::vector<OutboundMessage>& outputs, const std::string& result) {
  leadflow::internal::v1::ApplyMemo memo;
  for (const OutboundMessage& m : outputs) {
    auto* r = memo.add_outputs();
    r->set_topic(m.topic);
    r->set_key(m.key);
    r->set_value(m.value);
    for (const Header& h : m.headers) {
      auto* header = r->add_headers();
      header->set_key(h.key);
      header->set_value(h.value);
    }
  }
  memo.set_result(result);
  return memo.SerializeAsString();
}

absl::Status DecodeMemo(const std::string& encoded, std::vector<OutboundMessage>* outputs,
                        std::string* result) {
  leadflow::internal::v1::ApplyMemo memo;
  if (!memo.ParseFromString(encoded)) return absl::DataLossError("corrupt apply memo");
  outputs->clear();
  for (const auto& r : memo.outputs()) {
    OutboundMessage m{r.topic(), r.key(), r.value(), {}};
    for (const auto& h : r.headers()) m.headers.push_back({h.key(), h.value()});
    outputs->push_back(std::move(m));
  }
  if (result != nullptr) *result = memo.result();
  return absl::OkStatus();
}

}  // namespace leadflow::kafka
