#include "tools/leadctl/csv_reader.h"

#include <csv.h>

#include "absl/strings/str_cat.h"

namespace leadflow::leadctl {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;
constexpr char kUtf8Bom[] = "\xEF\xBB\xBF";
// libcsv's parser state "inside a field" (FIELD_BEGUN in libcsv.c). With `quoted` set it means
// the input ended inside a quoted field. libcsv itself reports that only in CSV_STRICT mode,
// which would also reject the stray quotes real exports contain (`Acme "Best" Ltd`).
constexpr int kLibcsvFieldBegun = 2;

}  // namespace

CsvReader::CsvReader(std::istream& in, char delimiter, uint64_t total_bytes)
    : in_(in), parser_(std::make_unique<csv_parser>()), total_bytes_(total_bytes) {
  // Not CSV_STRICT: a stray quote inside an unquoted field is kept as text, as spreadsheets do.
  csv_init(parser_.get(), 0);
  csv_set_delim(parser_.get(), static_cast<unsigned char>(delimiter));
  buffer_.resize(kChunkBytes);
}

CsvReader::~CsvReader() { csv_free(parser_.get()); }

void CsvReader::OnField(void* data, size_t len, void* self) {
  auto* reader = static_cast<CsvReader*>(self);
  reader->current_.emplace_back(static_cast<const char*>(data), data == nullptr ? 0 : len);
}

void CsvReader::OnRowEnd(int /*terminator*/, void* self) {
  auto* reader = static_cast<CsvReader*>(self);
  reader->ready_.push_back(std::move(reader->current_));
  reader->current_.clear();
}

absl::Status CsvReader::Fill() {
  while (ready_.empty() && !finished_) {
    in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    size_t n = static_cast<size_t>(in_.gcount());
    const char* data = buffer_.data();
    if (at_start_ && n > 0) {
      at_start_ = false;
      if (n >= 3 && buffer_.compare(0, 3, kUtf8Bom) == 0) {
        data += 3;
        n -= 3;
        bytes_read_ += 3;
      }
    }
    if (n > 0) {
      if (csv_parse(parser_.get(), data, n, &CsvReader::OnField, &CsvReader::OnRowEnd, this) != n) {
        return absl::InvalidArgumentError(absl::StrCat("CSV parse error after row ",
                                                       rows_returned_ + ready_.size(), ": ",
                                                       csv_strerror(csv_error(parser_.get()))));
      }
      bytes_read_ += n;
    }
    if (!in_) {
      if (in_.bad()) return absl::DataLossError("read error on the CSV input");
      finished_ = true;
      // A quoted field still open at the end is an error, not a silently truncated last row.
      if ((parser_->quoted != 0 && parser_->pstate == kLibcsvFieldBegun) ||
          csv_fini(parser_.get(), &CsvReader::OnField, &CsvReader::OnRowEnd, this) != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("CSV input ends inside a quoted field that starts in row ",
                         rows_returned_ + ready_.size() + 1));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> CsvReader::Next(std::vector<std::string>* row) {
  // Rows completed before a parse error are still returned; the error comes after them.
  if (error_.ok()) error_ = Fill();
  if (ready_.empty()) {
    if (!error_.ok()) return error_;
    return false;
  }
  *row = std::move(ready_.front());
  ready_.pop_front();
  ++rows_returned_;
  return true;
}

void WriteCsvRecord(std::FILE* out, const std::vector<std::string>& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) std::fputc(',', out);
    const std::string& f = fields[i];
    const bool quote = f.find_first_of(",\"\r\n") != std::string::npos ||
                       (!f.empty() && (f.front() == ' ' || f.back() == ' '));
    if (quote) {
      csv_fwrite(out, f.data(), f.size());
    } else {
      std::fwrite(f.data(), 1, f.size(), out);
    }
  }
  std::fputc('\n', out);
}

}  // namespace leadflow::leadctl
