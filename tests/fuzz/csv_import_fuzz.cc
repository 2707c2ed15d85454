// Fuzz target: a CSV file as `leadctl import` reads and maps it — the header picks the columns
// (the first three are mapped to email, company_size and consent.email), every row is mapped.
#include <sstream>
#include <string>
#include <vector>

#include "leadflow/events/v1/lead.pb.h"
#include "tests/fuzz/fuzz_target.h"
#include "tools/leadctl/csv_mapping.h"
#include "tools/leadctl/csv_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  leadflow::leadctl::CsvReader reader(in, ',', size);
  std::vector<std::string> header;
  absl::StatusOr<bool> has_header = reader.Next(&header);
  if (!has_header.ok() || !*has_header) return 0;
  leadflow::config::v1::CsvMapping mapping;
  const char* targets[] = {"email", "company_size", "consent.email"};
  for (size_t i = 0; i < header.size() && i < 3; ++i) {
    (*mapping.mutable_columns())[header[i]] = targets[i];
  }
  (*mapping.mutable_defaults())["source"] = "import";
  absl::StatusOr<leadflow::leadctl::CsvMapper> mapper = leadflow::leadctl::CsvMapper::Create(
      mapping, *leadflow::events::v1::LeadSubmission::descriptor(), header, {"consent."});
  std::vector<std::string> row;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(&row);
    if (!more.ok() || !*more) break;
    if (mapper.ok()) {
      leadflow::events::v1::LeadSubmission submission;
      (void)mapper->Apply(row, &submission);
    }
  }
  return 0;
}
