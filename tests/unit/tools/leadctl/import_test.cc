// RunImport against an in-memory submitter that behaves like capture: it validates, matches by
// e-mail, remembers request ids, and can be told to fail calls or items transiently.
#include "tools/leadctl/import.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/config/yaml_proto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/capture/engine.h"
#include "tools/leadctl/csv_mapping.h"
#include "tools/leadctl/csv_reader.h"
#include "tools/leadctl/workload.h"

namespace leadflow::leadctl {
namespace {

using capture::v1::SubmitLeadRequest;
using capture::v1::SubmitLeadsResponse;
using ::testing::HasSubstr;

class FakeCapture final : public LeadBatchSubmitter {
 public:
  absl::StatusOr<SubmitLeadsResponse> Submit(const std::vector<SubmitLeadRequest>& batch) override {
    absl::MutexLock lock(&mu_);
    ++calls_;
    if (fail_calls_ > 0) {
      --fail_calls_;
      return absl::UnavailableError("broker down");
    }
    SubmitLeadsResponse response;
    for (const SubmitLeadRequest& request : batch) {
      const events::v1::LeadSubmission& s = request.submission();
      capture::v1::ItemResult* item = response.add_results();
      if (fail_items_ > 0) {
        --fail_items_;
        item->mutable_error()->set_code(14);
        item->mutable_error()->set_message("event not acknowledged");
        continue;
      }
      if (s.email().find('@') == std::string::npos) {
        item->mutable_error()->set_code(3);
        item->mutable_error()->set_message("invalid");
        capture::v1::FieldViolation* v = item->mutable_error()->add_violations();
        v->set_field("email");
        v->set_description("not an e-mail address");
        continue;
      }
      sources_.insert(s.source());
      capture::v1::SubmitLeadResponse* ok = item->mutable_ok();
      if (auto seen = requests_.find(s.request_id()); seen != requests_.end()) {
        // Like capture: the original result (here: created), flagged as a duplicate.
        ok->set_duplicate_request(true);
        ok->set_created(true);
        ok->set_lead_id(seen->second);
        continue;
      }
      const std::string email = absl::AsciiStrToLower(s.email());
      auto [it, created] = leads_.emplace(email, absl::StrCat("lead-", leads_.size()));
      ok->set_created(created);
      ok->set_lead_id(it->second);
      requests_[s.request_id()] = it->second;
      ++accepted_;
    }
    return response;
  }

  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_items_ ABSL_GUARDED_BY(mu_) = 0;
  int accepted_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::string> leads_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> requests_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> sources_ ABSL_GUARDED_BY(mu_);
};

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("leadctl_import_test_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(config::ParseYamlProto(R"(
columns: {Email: email, Name: first_name, Size: company_size, Opt-in: consent.email}
values: {first_name: {Select: ""}}
)",
                                       &options_.mapping)
                    .ok());
    options_.csv_path = (dir_ / "leads.csv").string();
    options_.batch_size = 7;
    options_.parallel = 3;
    options_.retry_backoff = absl::ZeroDuration();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `rows` data rows; every 10th has no e-mail, every 25th a bad size, every 50th repeats row 1.
  void WriteCsv(int rows) {
    std::ofstream out(options_.csv_path);
    out << "Email,Name,Size,Opt-in\n";
    for (int i = 1; i <= rows; ++i) {
      if (i % 50 == 0) {
        out << "person1@example.com,P1,10,yes\n";
      } else if (i % 10 == 0) {
        out << "no-email-" << i << ",Select,10,no\n";
      } else if (i % 25 == 0) {
        out << "person" << i << "@example.com,P,lots,no\n";
      } else {
        out << "\"Person" << i << "@Example.com\",\"P" << i << "\"," << i << ",yes\n";
      }
    }
  }

  std::vector<std::vector<std::string>> ReadRejects(const std::string& path) {
    std::ifstream in(path);
    CsvReader reader(in, ',');
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    while (*reader.Next(&row)) rows.push_back(row);
    return rows;
  }

  std::filesystem::path dir_;
  ImportOptions options_;
  FakeCapture capture_;
};

TEST_F(ImportTest, AccountsForEveryRowAndWritesRejectsWithReasons) {
  WriteCsv(1000);
  std::vector<ImportProgress> progress;
  absl::StatusOr<ImportSummary> summary =
      RunImport(options_, capture_, [&](const ImportProgress& p) { progress.push_back(p); });
  ASSERT_TRUE(summary.ok()) << summary.status();
  // 1000 rows: 20 repeats of row 1 (i % 50), 80 without e-mail (i % 10, not % 50),
  // 20 with a bad size (i % 25, not % 50).
  EXPECT_EQ(summary->rows, 1000);
  EXPECT_EQ(summary->rejected, 80 + 20);
  EXPECT_EQ(summary->created, 1000 - 20 - 80 - 20);
  // The 20 identical repeats share one derived request id: the first merges, 19 are duplicates.
  EXPECT_EQ(summary->merged, 1);
  EXPECT_EQ(summary->duplicates, 19);
  EXPECT_EQ(summary->created + summary->merged + summary->duplicates + summary->rejected,
            summary->rows);
  {
    absl::MutexLock lock(&capture_.mu_);
    EXPECT_EQ(capture_.sources_, std::set<std::string>{"import"});
  }

  ASSERT_FALSE(progress.empty());
  for (size_t i = 1; i < progress.size(); ++i) {
    EXPECT_GE(progress[i].rows_done, progress[i - 1].rows_done);
  }
  EXPECT_EQ(progress.back().rows_done, 1000);
  EXPECT_EQ(progress.back().bytes_read, progress.back().total_bytes);

  auto rejects = ReadRejects(summary->reject_path);
  ASSERT_EQ(rejects.size(), 101u);
  EXPECT_EQ(rejects[0],
            (std::vector<std::string>{"row", "reason", "Email", "Name", "Size", "Opt-in"}));
  std::map<std::string, std::string> reason_by_row;
  for (size_t i = 1; i < rejects.size(); ++i) reason_by_row[rejects[i][0]] = rejects[i][1];
  // Data row 10 is file row 11 (the header is row 1).
  EXPECT_EQ(reason_by_row["11"], "email: not an e-mail address");
  EXPECT_THAT(reason_by_row["26"], HasSubstr("column \"Size\" (company_size): not a whole number"));
  EXPECT_EQ(summary->reject_path, (dir_ / "leads.rejects.csv").string());
}

TEST_F(ImportTest, RerunningTheSameFileCreatesNothingNew) {
  WriteCsv(200);
  ASSERT_TRUE(RunImport(options_, capture_, nullptr).ok());
  int accepted_first;
  {
    absl::MutexLock lock(&capture_.mu_);
    accepted_first = capture_.accepted_;
  }
  absl::StatusOr<ImportSummary> again = RunImport(options_, capture_, nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->created, 0);
  EXPECT_EQ(again->merged, 0);
  EXPECT_EQ(again->duplicates, again->rows - again->rejected);
  absl::MutexLock lock(&capture_.mu_);
  EXPECT_EQ(capture_.accepted_, accepted_first);
}

TEST_F(ImportTest, TransientFailuresAreRetriedNotRejected) {
  WriteCsv(100);
  {
    absl::MutexLock lock(&capture_.mu_);
    capture_.fail_calls_ = 3;
    capture_.fail_items_ = 5;
  }
  absl::StatusOr<ImportSummary> summary = RunImport(options_, capture_, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->rows, 100);
  EXPECT_EQ(summary->rejected, 8 + 2);  // the same bad rows as without failures
  EXPECT_EQ(summary->created + summary->merged + summary->duplicates + summary->rejected, 100);
}

TEST_F(ImportTest, GivesUpWithAClearErrorWhenCaptureStaysDown) {
  WriteCsv(30);
  {
    absl::MutexLock lock(&capture_.mu_);
    capture_.fail_calls_ = 1000;
  }
  options_.max_attempts = 3;
  absl::StatusOr<ImportSummary> summary = RunImport(options_, capture_, nullptr);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("run the import again"));
}

TEST_F(ImportTest, BadMappingFailsBeforeAnythingIsSent) {
  WriteCsv(10);
  ASSERT_TRUE(config::ParseYamlProto("columns: {Mail: email}", &options_.mapping).ok());
  options_.mapping.mutable_columns()->erase("Email");
  absl::StatusOr<ImportSummary> summary = RunImport(options_, capture_, nullptr);
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("names column \"Mail\""));
  absl::MutexLock lock(&capture_.mu_);
  EXPECT_EQ(capture_.calls_, 0);
}

TEST(ImportFormatTest, SummaryAndProgressLines) {
  ImportSummary s;
  s.rows = 10;
  s.created = 7;  // + 1 merged + 1 duplicate + 1 rejected
  s.merged = 1;
  s.duplicates = 1;
  s.rejected = 1;
  s.reject_path = "x.rejects.csv";
  s.elapsed = absl::Seconds(2);
  EXPECT_EQ(FormatSummary("x.csv", s),
            "imported x.csv: 10 rows in 2.0 s (5 rows/s)\n"
            "  created    7\n  merged     1\n  duplicates 1 (imported before)\n"
            "  rejected   1, reasons in x.rejects.csv\n");
  ImportProgress p;
  p.rows_done = 50;
  p.bytes_read = 500;
  p.total_bytes = 1000;
  EXPECT_THAT(FormatProgress(p, absl::Seconds(10)),
              HasSubstr("[###############...............]  50%  50 rows  5 rows/s"));
}

// Validates every item with capture's own rules (config/capture.yaml), without a server.
class ValidatingCapture final : public LeadBatchSubmitter {
 public:
  explicit ValidatingCapture(const config::v1::CaptureConfig& config) : normalizer_(config) {}
  absl::StatusOr<SubmitLeadsResponse> Submit(const std::vector<SubmitLeadRequest>& batch) override {
    absl::MutexLock lock(&mu_);
    SubmitLeadsResponse response;
    for (const SubmitLeadRequest& request : batch) {
      capture::v1::ItemResult* item = response.add_results();
      absl::StatusOr<capture::NormalizedSubmission> n =
          normalizer_.Normalize(request.submission(), absl::FromUnixSeconds(1767600000));
      if (!n.ok()) {
        item->mutable_error()->set_code(static_cast<int>(n.status().code()));
        item->mutable_error()->set_message(std::string(n.status().message()));
        continue;
      }
      if (!n->phone_e164.empty()) ++with_phone_;
      item->mutable_ok()->set_created(true);
    }
    return response;
  }
  int with_phone() {
    absl::MutexLock lock(&mu_);
    return with_phone_;
  }

 private:
  absl::Mutex mu_;
  const capture::Normalizer normalizer_;
  int with_phone_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(ImportTest, TheSampleCsvImportsWithTheExampleMappingAndPassesCapturesValidation) {
  std::FILE* out = std::fopen(options_.csv_path.c_str(), "w");
  ASSERT_NE(out, nullptr);
  WriteSampleCsv(600, 7, "t1", out);
  ASSERT_EQ(std::fclose(out), 0);
  const std::string source_dir = LEADFLOW_SOURCE_DIR;
  absl::StatusOr<config::v1::CsvMapping> mapping =
      LoadCsvMapping(source_dir + "/docs/examples/import-mapping.yaml");
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  options_.mapping = *mapping;
  config::v1::CaptureConfig config;
  ASSERT_TRUE(config::LoadYamlProto(source_dir + "/config/capture.yaml", &config).ok());
  ValidatingCapture capture(config);

  absl::StatusOr<ImportSummary> summary = RunImport(options_, capture, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->rows, 600);
  EXPECT_EQ(summary->rejected, 0) << ReadRejects(summary->reject_path).size();
  EXPECT_EQ(summary->created, 600);
  // About a third carry a phone, and it survives the mapping and normalisation.
  EXPECT_GT(capture.with_phone(), 120);
  EXPECT_LT(capture.with_phone(), 280);

  // The same seed and run give the same file; the header is the example file's.
  std::ifstream in(options_.csv_path);
  CsvReader reader(in, ',');
  std::vector<std::string> header;
  ASSERT_TRUE(*reader.Next(&header));
  EXPECT_EQ(header, SampleCsvHeader());
  std::ifstream example(source_dir + "/docs/examples/leads.csv");
  CsvReader example_reader(example, ',');
  std::vector<std::string> example_header;
  ASSERT_TRUE(*example_reader.Next(&example_header));
  EXPECT_EQ(header, example_header);
}

}  // namespace
}  // namespace leadflow::leadctl
