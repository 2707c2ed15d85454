#pragma once

// CsvReader: streams the rows of a CSV file of any size, one at a time, with bounded memory.
//
// Parsing is libcsv's (RFC 4180: quoted fields may hold delimiters, doubled quotes and line
// breaks; LF or CRLF line ends; spaces around unquoted fields are trimmed; blank lines are
// skipped). A UTF-8 byte-order mark at the start of the file is skipped, since spreadsheet
// exports often write one and it would otherwise end up in the first column's name.
//
// Thread safety: one reader per thread.

#include <cstdint>
#include <cstdio>
#include <deque>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct csv_parser;

namespace leadflow::leadctl {

class CsvReader {
 public:
  // Reads from `in`, which must outlive the reader. `total_bytes` is only reported back (for
  // progress); 0 when unknown.
  CsvReader(std::istream& in, char delimiter, uint64_t total_bytes = 0);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // The next row into `*row`: true, or false at the end of the input. INVALID_ARGUMENT when the
  // input ends inside a quoted field, naming the row where it started.
  absl::StatusOr<bool> Next(std::vector<std::string>* row);

  // Rows returned so far (the header counts as row 1, like a spreadsheet's line numbers when no
  // field holds a line break).
  int64_t rows_read() const { return rows_returned_; }
  // Bytes consumed from the input so far, and the total passed in.
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t total_bytes() const { return total_bytes_; }

 private:
  static void OnField(void* data, size_t len, void* self);
  static void OnRowEnd(int terminator, void* self);
  // Feeds the parser until a row is complete or the input ends.
  absl::Status Fill();

  std::istream& in_;
  std::unique_ptr<csv_parser> parser_;
  std::vector<std::string> current_;
  std::deque<std::vector<std::string>> ready_;
  std::string buffer_;
  absl::Status error_;
  bool at_start_ = true;
  bool finished_ = false;
  int64_t rows_returned_ = 0;
  uint64_t bytes_read_ = 0;
  uint64_t total_bytes_ = 0;
};

// Writes one CSV record and its line end to `out`, quoting only the fields that need it
// (RFC 4180: a delimiter, quote or line break inside, or a leading or trailing space).
void WriteCsvRecord(std::FILE* out, const std::vector<std::string>& fields);

}  // namespace leadflow::leadctl
