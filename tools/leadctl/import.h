#pragma once

// `leadctl import FILE.csv --mapping MAP.yaml`: streams a CSV file of any size into capture
// through the SubmitLeads gRPC stream, in batches, and accounts for every row.
//
// - Rows are read one at a time (CsvReader) and mapped onto LeadSubmission (CsvMapper, plus
//   `consent.<channel>` columns); memory is bounded by batch_size × parallel rows.
// - Idempotent: each row carries a request id — the mapped `request_id` column when there is
//   one, otherwise one derived from the import id and the row's cells — so an interrupted or
//   repeated import can be run again: rows already captured come back as duplicate requests
//   and capture emits nothing new for them (within its retention window, 7 days by default).
// - A row is rejected when a cell does not convert (the mapper's reason) or capture answers
//   INVALID_ARGUMENT (its field violations). Rejected rows go to the reject file with their row
//   number and reason, followed by the original cells, so they can be fixed and re-imported.
// - Transient failures (UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED), of the
//   whole call or of single items, are retried with backoff; the import stops with an error
//   when max_attempts are spent. No valid row is ever counted as rejected for a transient
//   reason.
// - Without a `source` from the mapping, rows are submitted with source "import".

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/grpc/channel.h"
#include "leadflow/capture/v1/capture.pb.h"
#include "leadflow/config/v1/csv_mapping.pb.h"

namespace leadflow::leadctl {

// The seam between the import and capture's API: one SubmitLeads call per batch.
class LeadBatchSubmitter {
 public:
  virtual ~LeadBatchSubmitter() = default;
  // Submits `batch` as one stream; the response holds one result per item, in order. May be
  // called from several threads at once.
  virtual absl::StatusOr<capture::v1::SubmitLeadsResponse> Submit(
      const std::vector<capture::v1::SubmitLeadRequest>& batch) = 0;
};

// A submitter over a gRPC channel to `target` (host:port) opened by `dialer` (plaintext or TLS),
// each call bounded by `timeout`.
std::unique_ptr<LeadBatchSubmitter> MakeGrpcSubmitter(const grpc_util::Dialer& dialer,
                                                      const std::string& target,
                                                      absl::Duration timeout);

struct ImportOptions {
  std::string csv_path;
  config::v1::CsvMapping mapping;
  // Where rejected rows go; "" = the CSV path with ".rejects.csv" in place of ".csv".
  std::string reject_path;
  // Mixed into derived request ids: importing the same file under another id submits it anew.
  std::string import_id;
  int batch_size = 500;
  // Batches in flight at once.
  int parallel = 2;
  // Tries per batch (and per item that failed transiently) before the import gives up.
  int max_attempts = 6;
  // First retry delay; doubles per try.
  absl::Duration retry_backoff = absl::Milliseconds(250);
};

struct ImportProgress {
  // Rows whose outcome is known (header excluded).
  int64_t rows_done = 0;
  uint64_t bytes_read = 0;
  uint64_t total_bytes = 0;
  int64_t created = 0;
  int64_t merged = 0;
  int64_t duplicates = 0;
  int64_t rejected = 0;
};

struct ImportSummary {
  // Data rows read (header excluded).
  int64_t rows = 0;
  int64_t created = 0;
  // Merged into an existing lead.
  int64_t merged = 0;
  // Rows whose request id capture had seen before: answered with the original result, nothing
  // new emitted. created + merged + duplicates + rejected = rows.
  int64_t duplicates = 0;
  int64_t rejected = 0;
  std::string reject_path;
  absl::Duration elapsed;
};

// Runs the import. `on_progress` (may be empty) is called after every finished batch, from the
// worker threads but never concurrently. Errors: NOT_FOUND / INVALID_ARGUMENT for an unreadable
// file, a bad header or mapping (before anything is sent); UNAVAILABLE (or the call's code) when
// capture could not take a batch after max_attempts — rows submitted until then are captured and
// a re-run completes the import.
absl::StatusOr<ImportSummary> RunImport(
    const ImportOptions& options, LeadBatchSubmitter& submitter,
    const std::function<void(const ImportProgress&)>& on_progress);

// The closing report, e.g.
//   imported leads.csv: 10000 rows in 4.2 s (2381 rows/s)
//     created    9850
//     merged     0
//     duplicates 50 (imported before)
//     rejected   100, reasons in leads.rejects.csv
std::string FormatSummary(const std::string& csv_path, const ImportSummary& summary);

// One line of a progress bar ("[#######.......]  45%  4500 rows  1500 rows/s  (...)"), for a
// terminal (redrawn with \r) or a log (one line per 10 %).
std::string FormatProgress(const ImportProgress& progress, absl::Duration elapsed);

}  // namespace leadflow::leadctl
