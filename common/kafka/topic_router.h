#pragma once

// TopicRouter: one MessageHandler for a consumer subscribed to several topics, dispatching each
// message to the function registered for its topic. A topic may also have a wave route: the
// messages of a poll batch on that topic are split into waves of distinct keys
// (HandleInKeyWaves: a key's messages keep their order, one per wave) and each wave goes to it
// together (MessageHandler::HandleBatch's contract); other topics' messages are handled one by
// one.

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/kafka/handler.h"

namespace leadflow::kafka {

class TopicRouter final : public MessageHandler {
 public:
  using Route = std::function<HandleResult(const ConsumedMessage&)>;
  using BatchRoute =
      std::function<std::vector<HandleResult>(const std::vector<const ConsumedMessage*>&)>;

  void Add(std::string topic, Route route) { routes_[std::move(topic)] = std::move(route); }
  // `route` handles one message; `wave_route` one wave of a batch, with HandleBatch()'s contract.
  void Add(std::string topic, Route route, BatchRoute wave_route) {
    batch_routes_[topic] =
        [wave_route = std::move(wave_route)](const std::vector<const ConsumedMessage*>& batch) {
          return HandleInKeyWaves(batch, wave_route);
        };
    routes_[std::move(topic)] = std::move(route);
  }
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
  std::vector<HandleResult> HandleBatch(const std::vector<const ConsumedMessage*>& batch) override;

 private:
  absl::flat_hash_map<std::string, Route> routes_;
  absl::flat_hash_map<std::string, BatchRoute> batch_routes_;
};

}  // namespace leadflow::kafka
