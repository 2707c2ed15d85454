#include "tools/leadctl/stack_env.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace leadflow::leadctl {

absl::StatusOr<std::map<std::string, std::string>> LoadStackEnv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open (is the stack up?)"));
  std::map<std::string, std::string> env;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#') continue;
    const size_t eq = l.find('=');
    if (eq == absl::string_view::npos) continue;
    env[std::string(l.substr(0, eq))] = std::string(l.substr(eq + 1));
  }
  return env;
}

}  // namespace leadflow::leadctl
