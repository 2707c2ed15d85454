#include "tools/leadctl/import.h"

#include <csv.h>

#include <cstdio>
#include <deque>
#include <fstream>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/events/envelope.h"
#include "grpcpp/grpcpp.h"
#include "leadflow/capture/v1/capture.grpc.pb.h"
#include "tools/leadctl/csv_mapping.h"
#include "tools/leadctl/csv_reader.h"

namespace leadflow::leadctl {
namespace {

using capture::v1::ItemResult;
using capture::v1::SubmitLeadRequest;
using capture::v1::SubmitLeadsResponse;

constexpr char kConsentPrefix[] = "consent.";

bool Transient(int code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::ABORTED ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

class GrpcSubmitter final : public LeadBatchSubmitter {
 public:
  GrpcSubmitter(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
      : stub_(capture::v1::Capture::NewStub(std::move(channel))), timeout_(timeout) {}

  absl::StatusOr<SubmitLeadsResponse> Submit(const std::vector<SubmitLeadRequest>& batch) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    // Waits for the channel to connect (within the deadline) instead of failing at once while
    // capture is starting or restarting.
    context.set_wait_for_ready(true);
    SubmitLeadsResponse response;
    std::unique_ptr<grpc::ClientWriter<SubmitLeadRequest>> writer =
        stub_->SubmitLeads(&context, &response);
    for (const SubmitLeadRequest& request : batch) {
      if (!writer->Write(request)) break;  // the server ended the call; Finish says why
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    if (response.results_size() != static_cast<int>(batch.size())) {
      return absl::UnavailableError(absl::StrCat("capture answered ", response.results_size(),
                                                 " results for ", batch.size(), " items"));
    }
    return response;
  }

 private:
  std::unique_ptr<capture::v1::Capture::Stub> stub_;
  absl::Duration timeout_;
};

// One data row on its way.
struct Row {
  int64_t number = 0;  // 1-based, header = 1
  std::vector<std::string> cells;
  SubmitLeadRequest request;
};

std::string RejectPathFor(const ImportOptions& options) {
  if (!options.reject_path.empty()) return options.reject_path;
  absl::string_view base = options.csv_path;
  if (absl::EndsWithIgnoreCase(base, ".csv")) base.remove_suffix(4);
  return absl::StrCat(base, ".rejects.csv");
}

// The reason of a rejected item, from capture's field violations.
std::string ReasonOf(const capture::v1::ItemError& error) {
  if (error.violations().empty()) return error.message();
  std::vector<std::string> parts;
  for (const capture::v1::FieldViolation& v : error.violations()) {
    parts.push_back(absl::StrCat(v.field(), ": ", v.description()));
  }
  return absl::StrJoin(parts, "; ");
}

// Maps `consent.<channel>` cells onto submission consents.
std::optional<std::string> AddConsent(const std::string& path, const std::string& value,
                                      events::v1::LeadSubmission* submission) {
  std::string channel_name = absl::AsciiStrToUpper(path.substr(sizeof(kConsentPrefix) - 1));
  events::v1::Channel channel;
  if (!events::v1::Channel_Parse(absl::StrCat("CHANNEL_", channel_name), &channel) ||
      channel == events::v1::CHANNEL_UNSPECIFIED) {
    return absl::StrCat(path, ": unknown channel (email, sms, phone, retargeting, newsletter)");
  }
  std::optional<bool> granted = ParseBool(value);
  if (!granted) return absl::StrCat(path, ": not yes/no: \"", value, "\"");
  events::v1::Consent* consent = submission->add_consents();
  consent->set_channel(channel);
  consent->set_granted(*granted);
  consent->set_source("import");
  return std::nullopt;
}

// The whole import's shared state: the batch queue, counters and the reject file.
class Importer {
 public:
  Importer(const ImportOptions& options, LeadBatchSubmitter& submitter,
           const std::function<void(const ImportProgress&)>& on_progress, std::FILE* rejects,
           uint64_t total_bytes)
      : options_(options), submitter_(submitter), on_progress_(on_progress), rejects_(rejects) {
    progress_.total_bytes = total_bytes;
  }

  // Producer side: blocks while `parallel` batches wait. False once the import failed.
  bool Enqueue(std::vector<Row> batch) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto has_room = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !failure_.ok() || queue_.size() < static_cast<size_t>(options_.parallel);
    };
    mu_.Await(absl::Condition(&has_room));
    if (!failure_.ok()) return false;
    queue_.push_back(std::move(batch));
    return true;
  }

  void Close() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  // Where the reader is: bytes and data rows read, and whether the file is read to the end.
  void SetReadPosition(uint64_t bytes, int64_t rows, bool done) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    bytes_read_ = bytes;
    rows_read_ = rows;
    read_done_ = done;
  }

  // A row that never reached capture (its cells did not convert).
  void RejectLocally(const Row& row, const std::string& reason) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    WriteReject(row, reason);
    ++progress_.rejected;
    ++progress_.rows_done;
  }

  // Worker side: takes batches until the queue is closed and empty.
  void Work() ABSL_LOCKS_EXCLUDED(mu_) {
    while (true) {
      std::vector<Row> batch;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return !queue_.empty() || closed_ || !failure_.ok();
        };
        mu_.Await(absl::Condition(&ready));
        if (!failure_.ok() || queue_.empty()) return;
        batch = std::move(queue_.front());
        queue_.pop_front();
      }
      if (absl::Status s = Submit(std::move(batch)); !s.ok()) {
        absl::MutexLock lock(&mu_);
        if (failure_.ok()) failure_ = s;
        return;
      }
    }
  }

  absl::Status failure() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return failure_;
  }

  // One last progress report once every row is done.
  void ReportFinal() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    Report();
  }

  ImportSummary Summary() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ImportSummary s;
    s.rows = progress_.rows_done;
    s.created = progress_.created;
    s.merged = progress_.merged;
    s.duplicates = progress_.duplicates;
    s.rejected = progress_.rejected;
    return s;
  }

 private:
  // Sends `batch`, retrying the call or its transiently failed items, and accounts for every
  // row.
  absl::Status Submit(std::vector<Row> batch) {
    absl::Duration backoff = options_.retry_backoff;
    for (int attempt = 1; !batch.empty(); ++attempt) {
      std::vector<SubmitLeadRequest> requests;
      requests.reserve(batch.size());
      for (const Row& row : batch) requests.push_back(row.request);
      absl::StatusOr<SubmitLeadsResponse> response = submitter_.Submit(requests);
      std::vector<Row> retry;
      if (!response.ok()) {
        if (!Transient(static_cast<int>(response.status().code()))) return response.status();
        retry = std::move(batch);
        if (attempt >= options_.max_attempts) {
          return absl::Status(
              response.status().code(),
              absl::StrCat("capture did not take a batch after ", attempt,
                           " tries: ", response.status().message(),
                           "; rows sent so far are captured, run the import again to finish"));
        }
      } else {
        absl::MutexLock lock(&mu_);
        for (size_t i = 0; i < batch.size(); ++i) {
          const ItemResult& item = response->results(static_cast<int>(i));
          if (item.has_ok()) {
            // A duplicate answers with its original result (perhaps "created"); it is counted
            // once, as a duplicate.
            if (item.ok().duplicate_request()) {
              ++progress_.duplicates;
            } else {
              item.ok().created() ? ++progress_.created : ++progress_.merged;
            }
            ++progress_.rows_done;
          } else if (Transient(item.error().code()) && attempt < options_.max_attempts) {
            retry.push_back(std::move(batch[i]));
          } else if (Transient(item.error().code())) {
            return absl::UnavailableError(absl::StrCat(
                "row ", batch[i].number, " not captured after ", attempt,
                " tries: ", item.error().message(), "; run the import again to finish"));
          } else {
            WriteReject(batch[i], ReasonOf(item.error()));
            ++progress_.rejected;
            ++progress_.rows_done;
          }
        }
        Report();
      }
      batch = std::move(retry);
      if (!batch.empty()) {
        absl::SleepFor(backoff);  // retry pacing, not synchronisation
        backoff *= 2;
      }
    }
    return absl::OkStatus();
  }

  void Report() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!on_progress_) return;
    // The reader runs ahead of the rows that are done, so progress counts the bytes of the
    // finished rows: exact once the file is read, estimated by the mean row size before.
    const double done_fraction =
        rows_read_ == 0 ? 0.0 : static_cast<double>(progress_.rows_done) / rows_read_;
    progress_.bytes_read = static_cast<uint64_t>(
        done_fraction * static_cast<double>(read_done_ ? progress_.total_bytes : bytes_read_));
    if (read_done_ && progress_.rows_done == rows_read_) {
      progress_.bytes_read = progress_.total_bytes;
    }
    on_progress_(progress_);
  }

  void WriteReject(const Row& row, const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::string> fields = {absl::StrCat(row.number), reason};
    fields.insert(fields.end(), row.cells.begin(), row.cells.end());
    WriteCsvRecord(rejects_, fields);
  }

  const ImportOptions& options_;
  LeadBatchSubmitter& submitter_;
  const std::function<void(const ImportProgress&)>& on_progress_;
  absl::Mutex mu_;
  std::FILE* rejects_ ABSL_GUARDED_BY(mu_);
  std::deque<std::vector<Row>> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  ImportProgress progress_ ABSL_GUARDED_BY(mu_);
  uint64_t bytes_read_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rows_read_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
};

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f != nullptr) std::fclose(f);
  }
};

}  // namespace

std::unique_ptr<LeadBatchSubmitter> MakeGrpcSubmitter(const grpc_util::Dialer& dialer,
                                                      const std::string& target,
                                                      absl::Duration timeout) {
  return std::make_unique<GrpcSubmitter>(dialer.Dial(target), timeout);
}

absl::StatusOr<ImportSummary> RunImport(
    const ImportOptions& options, LeadBatchSubmitter& submitter,
    const std::function<void(const ImportProgress&)>& on_progress) {
  const absl::Time start = absl::Now();
  if (options.batch_size < 1 || options.parallel < 1 || options.max_attempts < 1) {
    return absl::InvalidArgumentError("batch size, parallel and max attempts must be >= 1");
  }
  absl::StatusOr<char> delimiter = CsvDelimiter(options.mapping);
  if (!delimiter.ok()) return delimiter.status();
  std::ifstream in(options.csv_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(options.csv_path, ": cannot open"));
  in.seekg(0, std::ios::end);
  const auto total = static_cast<uint64_t>(std::max<std::streamoff>(0, in.tellg()));
  in.seekg(0);
  CsvReader reader(in, *delimiter, total);

  std::vector<std::string> header;
  absl::StatusOr<bool> has_header = reader.Next(&header);
  if (!has_header.ok()) return has_header.status();
  if (!*has_header) return absl::InvalidArgumentError(absl::StrCat(options.csv_path, ": empty"));
  absl::StatusOr<CsvMapper> mapper = CsvMapper::Create(
      options.mapping, *events::v1::LeadSubmission::descriptor(), header, {kConsentPrefix});
  if (!mapper.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mapping does not fit ", options.csv_path, ": ", mapper.status().message()));
  }

  ImportSummary summary;
  summary.reject_path = RejectPathFor(options);
  std::unique_ptr<std::FILE, FileCloser> rejects(std::fopen(summary.reject_path.c_str(), "w"));
  if (!rejects) {
    return absl::PermissionDeniedError(absl::StrCat(summary.reject_path, ": cannot write"));
  }
  std::vector<std::string> reject_header = {"row", "reason"};
  reject_header.insert(reject_header.end(), header.begin(), header.end());
  WriteCsvRecord(rejects.get(), reject_header);

  Importer importer(options, submitter, on_progress, rejects.get(), total);
  std::vector<std::thread> workers;
  for (int i = 0; i < options.parallel; ++i) workers.emplace_back([&] { importer.Work(); });

  absl::Status read_status;
  std::vector<Row> batch;
  std::vector<std::string> cells;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(&cells);
    if (!more.ok()) {
      read_status = more.status();
      break;
    }
    if (!*more) break;
    Row row;
    row.number = reader.rows_read();
    row.cells = std::move(cells);
    events::v1::LeadSubmission* submission = row.request.mutable_submission();
    CsvMapper::RowResult mapped = mapper->Apply(row.cells, submission);
    for (const auto& [path, value] : mapped.caller_fields) {
      if (std::optional<std::string> err = AddConsent(path, value, submission)) {
        mapped.errors.push_back(*err);
      }
    }
    if (!mapped.errors.empty()) {
      importer.RejectLocally(row, absl::StrJoin(mapped.errors, "; "));
      continue;
    }
    if (submission->source().empty()) submission->set_source("import");
    if (submission->request_id().empty()) {
      submission->set_request_id(events::DeriveEventId(
          "import", absl::StrCat(options.import_id, "\x1f", absl::StrJoin(row.cells, "\x1f"))));
    }
    batch.push_back(std::move(row));
    if (batch.size() >= static_cast<size_t>(options.batch_size)) {
      importer.SetReadPosition(reader.bytes_read(), reader.rows_read() - 1, false);
      if (!importer.Enqueue(std::move(batch))) break;
      batch.clear();
    }
  }
  importer.SetReadPosition(reader.bytes_read(), reader.rows_read() - 1, read_status.ok());
  if (!batch.empty() && read_status.ok()) importer.Enqueue(std::move(batch));
  importer.Close();
  for (std::thread& t : workers) t.join();
  std::fflush(rejects.get());
  if (read_status.ok() && importer.failure().ok()) importer.ReportFinal();

  if (!read_status.ok()) {
    return absl::Status(read_status.code(),
                        absl::StrCat(options.csv_path, ": ", read_status.message(),
                                     " (rows before it were imported)"));
  }
  if (absl::Status failure = importer.failure(); !failure.ok()) return failure;
  ImportSummary counted = importer.Summary();
  counted.reject_path = summary.reject_path;
  counted.elapsed = absl::Now() - start;
  return counted;
}

std::string FormatSummary(const std::string& csv_path, const ImportSummary& s) {
  const double seconds = absl::ToDoubleSeconds(s.elapsed);
  std::string out = absl::StrFormat("imported %s: %d rows in %.1f s (%.0f rows/s)\n", csv_path,
                                    s.rows, seconds, seconds > 0 ? s.rows / seconds : 0.0);
  absl::StrAppendFormat(&out,
                        "  created    %d\n  merged     %d\n  duplicates %d (imported before)\n",
                        s.created, s.merged, s.duplicates);
  if (s.rejected > 0) {
    absl::StrAppendFormat(&out, "  rejected   %d, reasons in %s\n", s.rejected, s.reject_path);
  } else {
    absl::StrAppend(&out, "  rejected   0\n");
  }
  return out;
}

std::string FormatProgress(const ImportProgress& p, absl::Duration elapsed) {
  constexpr int kWidth = 30;
  const double fraction =
      p.total_bytes == 0 ? 0.0 : std::min(1.0, static_cast<double>(p.bytes_read) / p.total_bytes);
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds = absl::ToDoubleSeconds(elapsed);
  return absl::StrFormat(
      "[%s%s] %3d%%  %d rows  %.0f rows/s  (created %d, merged %d, duplicates %d, rejected %d)",
      std::string(filled, '#'), std::string(kWidth - filled, '.'), static_cast<int>(fraction * 100),
      p.rows_done, seconds > 0 ? p.rows_done / seconds : 0.0, p.created, p.merged, p.duplicates,
      p.rejected);
}

}  // namespace leadflow::leadctl
