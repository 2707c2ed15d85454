#pragma once

// CsvMapper: turns the rows of a CSV file into protobuf messages, as a mapping file
// (proto/leadflow/config/v1/csv_mapping.proto) says: which column fills which field, which cell
// values mean "empty", which are replaced (value maps), and defaults for every row. Shared by
// `leadctl import` (rows → LeadSubmission) and `leadctl model-eval`.
//
// The mapping is checked once against the target message type and the file's header (Create):
// an unknown field path, a column the header lacks, a field that cannot take text, or a bad
// delimiter is an error before any row is read. A cell that does not convert (a company size of
// "many") rejects only its row, with a message naming the column, the field and the value.
//
// Conversions: strings as they are (trimmed); integers and decimals in plain notation; booleans
// from true/false, yes/no, y/n, 1/0, on/off, x/"" (case-insensitive); enums by value name, with
// or without the enum's prefix (`email` or `CHANNEL_EMAIL`); google.protobuf.Timestamp from
// RFC 3339, "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD" (UTC); repeated scalars from a cell split on
// the list separator; string maps (`custom.key`) one entry per column.
//
// Thread safety: an immutable CsvMapper may be used by any number of threads.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "leadflow/config/v1/csv_mapping.pb.h"

namespace leadflow::leadctl {

// Reads and parses a mapping file; INVALID_ARGUMENT names the file and the problem.
absl::StatusOr<config::v1::CsvMapping> LoadCsvMapping(const std::string& path);

// The delimiter of `mapping` (',' by default). INVALID_ARGUMENT unless it is one character.
absl::StatusOr<char> CsvDelimiter(const config::v1::CsvMapping& mapping);

// Parses a yes/no cell (see the conversions above); nullopt when it is neither.
std::optional<bool> ParseBool(absl::string_view cell);

class CsvMapper {
 public:
  // What one row produced besides the fields set on the message.
  struct RowResult {
    // (field path, cell value after value maps) for paths under one of the caller's own
    // prefixes (Create's `caller_prefixes`), in column order.
    std::vector<std::pair<std::string, std::string>> caller_fields;
    // Why cells could not be used; the row is to be rejected when non-empty.
    std::vector<std::string> errors;
  };

  // Checks `mapping` against `target` and the file's `header`. Field paths that start with one
  // of `caller_prefixes` (e.g. "consent.") are not resolved on `target` but handed back by
  // Apply for the caller to interpret.
  static absl::StatusOr<CsvMapper> Create(const config::v1::CsvMapping& mapping,
                                          const google::protobuf::Descriptor& target,
                                          const std::vector<std::string>& header,
                                          std::vector<std::string> caller_prefixes = {});

  // Fills `out` (of the target type, normally cleared by the caller) from `row`: defaults
  // first, then every mapped cell that holds a value. A row with more cells than the header is
  // an error; missing trailing cells are empty.
  RowResult Apply(const std::vector<std::string>& row, google::protobuf::Message* out) const;

  // The header as given to Create.
  const std::vector<std::string>& header() const { return header_; }

 private:
  // One field a column or default writes to.
  struct Target {
    std::string path;
    // Message fields walked from the root; the last one is the field written.
    std::vector<const google::protobuf::FieldDescriptor*> chain;
    // For a string map: the entry's key.
    std::string map_key;
    // True when the path belongs to the caller.
    bool caller = false;
    // Lower-cased cell value → replacement.
    absl::flat_hash_map<std::string, std::string> value_map;
  };
  struct ColumnTarget {
    size_t column = 0;
    Target target;
  };

  CsvMapper() = default;
  // Resolves a field path on `target`, or explains why it cannot be written.
  absl::StatusOr<Target> Resolve(const std::string& path,
                                 const google::protobuf::Descriptor& target) const;
  // Writes `value` into the field `t` names; an error message when it does not convert.
  std::optional<std::string> Write(const Target& t, const std::string& value,
                                   google::protobuf::Message* out) const;

  std::vector<std::string> header_;
  std::vector<std::string> caller_prefixes_;
  std::vector<std::pair<Target, std::string>> defaults_;
  std::vector<ColumnTarget> columns_;
  absl::flat_hash_set<std::string> empty_values_;
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, std::string>> value_maps_;
  std::string list_separator_ = ";";
};

}  // namespace leadflow::leadctl
