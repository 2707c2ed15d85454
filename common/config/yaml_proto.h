#pragma once

// YAML rule files → typed protobuf messages (ARCHITECTURE.md §7).
//
// The YAML document is the proto3 JSON mapping of the message written as YAML: field names as
// in the .proto (snake_case or lowerCamel), enums by name, `oneof` members as keys. Unknown
// fields are errors, so a typo is caught at load time with the field's name, not ignored.
// Semantic validation (ids unique, thresholds ordered...) is the job of each rule set's compile
// function; Reloadable below runs both.

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message.h"
#include "spdlog/spdlog.h"

namespace leadflow::config {

// Parses YAML text into `out`. INVALID_ARGUMENT with the line/column of a YAML syntax error or
// the protobuf parser's description of a schema error.
absl::Status ParseYamlProto(const std::string& yaml, google::protobuf::Message* out);
// Reads and parses a file; errors are prefixed with the path.
absl::Status LoadYamlProto(const std::string& path, google::protobuf::Message* out);

// Loads a YAML rule file into `Proto` and compiles it with `compile` (which validates);
// every error is prefixed with the path. The loader every Reloadable rule set uses.
template <typename Proto, typename Compiled, typename Compile>
absl::StatusOr<std::shared_ptr<const Compiled>> LoadRules(const std::string& path,
                                                          const Compile& compile) {
  Proto proto;
  if (absl::Status s = LoadYamlProto(path, &proto); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const Compiled>> compiled = compile(proto);
  if (!compiled.ok()) {
    return absl::Status(compiled.status().code(),
                        absl::StrCat(path, ": ", compiled.status().message()));
  }
  return compiled;
}

// A rule set that can be reloaded while running: a file, a loader that parses and validates it
// into an immutable compiled form, and the compiled form currently in force.
class ReloadableBase {
 public:
  virtual ~ReloadableBase() = default;
  // Reloads when the file changed. On failure the running rules stay and the error is returned.
  virtual absl::Status ReloadIfChanged() = 0;
};

template <typename Compiled>
class Reloadable final : public ReloadableBase {
 public:
  using Loader =
      std::function<absl::StatusOr<std::shared_ptr<const Compiled>>(const std::string& path)>;

  // Loads once; fails fast (start-up) if the file is missing or invalid.
  static absl::StatusOr<std::unique_ptr<Reloadable>> Create(std::string path, Loader loader) {
    std::unique_ptr<Reloadable> r(new Reloadable(std::move(path), std::move(loader)));
    absl::StatusOr<std::shared_ptr<const Compiled>> first = r->loader_(r->path_);
    if (!first.ok()) return first.status();
    r->current_ = *std::move(first);
    r->mtime_ = ModifiedTime(r->path_);
    return r;
  }

  // The rules in force. Callers keep the pointer for the duration of one decision.
  std::shared_ptr<const Compiled> Current() const {
    absl::MutexLock lock(&mu_);
    return current_;
  }

  absl::Status ReloadIfChanged() override {
    const auto mtime = ModifiedTime(path_);
    {
      absl::MutexLock lock(&mu_);
      if (mtime == mtime_) return absl::OkStatus();
      mtime_ = mtime;
    }
    absl::StatusOr<std::shared_ptr<const Compiled>> next = loader_(path_);
    if (!next.ok()) {
      spdlog::error("rejected reload of {}: {}; the running rules stay", path_,
                    std::string(next.status().message()));
      return next.status();
    }
    absl::MutexLock lock(&mu_);
    current_ = *std::move(next);
    spdlog::info("reloaded {}", path_);
    return absl::OkStatus();
  }

  // Replaces the rules directly (gRPC-driven changes and tests).
  void SetForTest(std::shared_ptr<const Compiled> rules) {
    absl::MutexLock lock(&mu_);
    current_ = std::move(rules);
  }

 private:
  Reloadable(std::string path, Loader loader)
      : path_(std::move(path)), loader_(std::move(loader)) {}
  static std::filesystem::file_time_type ModifiedTime(const std::string& path) {
    std::error_code ec;
    return std::filesystem::last_write_time(path, ec);
  }

  const std::string path_;
  const Loader loader_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Compiled> current_ ABSL_GUARDED_BY(mu_);
  std::filesystem::file_time_type mtime_ ABSL_GUARDED_BY(mu_);
};

}  // namespace leadflow::config
