#pragma once

// TopicRouter: one MessageHandler for a consumer subscribed to several topics, dispatching each
// message to the function registered for its topic.

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/kafka/handler.h"

namespace leadflow::kafka {

class TopicRouter final : public MessageHandler {
 public:
  using Route = std::function<absl::StatusOr<std::vector<OutboundMessage>>(const ConsumedMessage&)>;

  void Add(std::string topic, Route route) { routes_[std::move(topic)] = std::move(route); }
  std::vector<std::string> Topics() const {
    std::vector<std::string> out;
    for (const auto& [topic, route] : routes_) out.push_back(topic);
    return out;
  }
  absl::StatusOr<std::vector<OutboundMessage>> Handle(const ConsumedMessage& message) override {
    auto it = routes_.find(message.topic);
    if (it == routes_.end()) return absl::UnimplementedError("no route for topic " + message.topic);
    return it->second(message);
  }

 private:
  absl::flat_hash_map<std::string, Route> routes_;
};

}  // namespace leadflow::kafka
