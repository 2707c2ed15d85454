#include "common/config/yaml_proto.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/events/codec.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace leadflow::config {
namespace {

// Deeper than any rule file needs. Also the guard against a self-referencing alias
// (`a: &x [*x]`), which yaml-cpp turns into a cyclic node graph: without it, the walk below
// never ends (found by tests/fuzz/rule_files_fuzz.cc).
constexpr int kMaxYamlDepth = 64;

struct TooDeep {};

// YAML scalars carry no type; proto3 JSON needs numbers and booleans unquoted. A plain
// (unquoted) scalar that reads as a number or boolean becomes one; quoted scalars stay strings.
nlohmann::json ToJson(const YAML::Node& node, int depth = 0) {
  if (depth > kMaxYamlDepth) throw TooDeep{};
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "false") return s == "true";
      int64_t i;
      if (absl::SimpleAtoi(s, &i)) return i;
      double d;
      if (absl::SimpleAtod(s, &d) && s.find_first_of("0123456789") != std::string::npos &&
          s.find_first_not_of("0123456789.eE+-") == std::string::npos) {
        return d;
      }
      return s;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const YAML::Node& item : node) out.push_back(ToJson(item, depth + 1));
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = ToJson(kv.second, depth + 1);
      return out;
    }
  }
  return nullptr;
}

}  // namespace

absl::Status ParseYamlProto(const std::string& yaml, google::protobuf::Message* out) {
  nlohmann::json json;
  // yaml-cpp reports errors by exception; this is the one place they are caught.
  try {
    json = ToJson(YAML::Load(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("YAML syntax error at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  } catch (const TooDeep&) {
    return absl::InvalidArgumentError(absl::StrCat("the document nests deeper than ", kMaxYamlDepth,
                                                   " levels (a recursive alias?)"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError("the document must be a mapping");
  }
  std::string text;
  try {
    text = json.dump();
  } catch (const nlohmann::json::exception&) {
    // yaml-cpp passes bytes through; JSON (and proto strings) need UTF-8. Found by
    // tests/fuzz/rule_files_fuzz.cc: uncaught, this ended the service on a bad reload.
    return absl::InvalidArgumentError("the document is not valid UTF-8");
  }
  return events::DecodeJson(text, out, /*ignore_unknown_fields=*/false);
}

absl::Status LoadYamlProto(const std::string& path, google::protobuf::Message* out) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  absl::Status s = ParseYamlProto(text.str(), out);
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  return absl::OkStatus();
}

}  // namespace leadflow::config
