// `leadctl model-eval` through its library function: a generated CSV with a planted signal,
// read with an import-style column mapping, gives a hold-out AUC far above chance; the split is
// deterministic; bad input is reported.
#include "tools/leadctl/model_eval.h"

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::leadctl {
namespace {

using ::testing::HasSubstr;

// The same format as `leadctl import`'s mapping (consent columns included), plus behaviour.
constexpr char kMapping[] = R"yaml(
columns:
  Email Address: email
  Job Title: job_title
  Employees: company_size
  Industry: industry
  Country: country
  Email Opt-in: consent.email
  Demos: activity.demo_request
  Pricing Views: page.pricing
empty_values: ["N/A"]
values:
  industry: {"Software/SaaS": "software"}
defaults:
  source: import
)yaml";

class ModelEvalTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    // Per process and test: ctest runs the tests of this binary in parallel processes, which
    // must not rewrite each other's files.
    const std::string path =
        absl::StrCat(::testing::TempDir(), "/model_eval_test_", ::getpid(), "_",
                     ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_", name);
    std::ofstream(path, std::ios::trunc) << text;
    return path;
  }

  // `rows` leads; with `signal`, executives, software companies and demo requesters win far more
  // often; without, the label is a coin with the same base rate.
  std::string GenerateCsv(int rows, bool signal, uint32_t seed) {
    static const char* const kTitles[] = {"Chief Executive Officer", "VP Marketing",
                                          "Marketing Manager", "Software Engineer"};
    static const char* const kIndustries[] = {"Software/SaaS", "retail", "banking", "health",
                                              "N/A"};
    static const char* const kCountries[] = {"GB", "US", "DE", "FR"};
    std::mt19937 engine(seed);
    auto uniform = [&] { return static_cast<double>(engine()) / 4294967296.0; };
    std::string csv =
        "Email Address,Job Title,Employees,Industry,Country,Email Opt-in,Demos,Pricing "
        "Views,won\n";
    for (int i = 0; i < rows; ++i) {
      const int title = static_cast<int>(uniform() * 4);
      const int industry = static_cast<int>(uniform() * 5);
      const int demos = uniform() < 0.3 ? 1 : 0;
      const int pricing = static_cast<int>(uniform() * 5);
      const double logit = -2 + 3.0 * (title == 0) + 2.0 * (industry == 0) + 2.0 * demos;
      const bool won = signal ? uniform() < 1 / (1 + std::exp(-logit)) : uniform() < 0.3;
      absl::StrAppend(&csv, "lead", i, "@example.com,", kTitles[title], ",",
                      50 + static_cast<int>(uniform() * 500), ",", kIndustries[industry], ",",
                      kCountries[static_cast<int>(uniform() * 4)], ",yes,", demos, ",", pricing,
                      ",", won ? "yes" : "no", "\n");
    }
    return csv;
  }
};

TEST_F(ModelEvalTest, APlantedSignalGivesAHoldoutAucAbove0_8) {
  const std::string mapping = Write("mapping.yaml", kMapping);
  const std::string csv = Write("signal.csv", GenerateCsv(5000, true, 11));
  absl::StatusOr<ModelEvalReport> report =
      EvaluateModelOnCsv(csv, mapping, "won", ModelEvalOptions());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->auc, 0.8) << FormatReport(*report);
  EXPECT_LT(report->log_loss, report->baseline_log_loss);
  EXPECT_EQ(report->train_rows + report->holdout_rows, 5000);
  EXPECT_NEAR(static_cast<double>(report->holdout_rows) / 5000, 0.2, 0.03);
  EXPECT_EQ(report->skipped_rows, 0);
  EXPECT_THAT(FormatReport(*report), HasSubstr("hold-out AUC: 0.8"));

  // Deterministic: the same file, the same report.
  absl::StatusOr<ModelEvalReport> again =
      EvaluateModelOnCsv(csv, mapping, "won", ModelEvalOptions());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->auc, report->auc);
  EXPECT_EQ(again->log_loss, report->log_loss);
}

TEST_F(ModelEvalTest, WithoutASignalTheAucIsNearChance) {
  const std::string mapping = Write("mapping.yaml", kMapping);
  const std::string csv = Write("noise.csv", GenerateCsv(5000, false, 12));
  absl::StatusOr<ModelEvalReport> report =
      EvaluateModelOnCsv(csv, mapping, "won", ModelEvalOptions());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_LT(report->auc, 0.6);
  EXPECT_GT(report->auc, 0.4);
}

TEST_F(ModelEvalTest, UnreadableRowsAreSkippedAndBadInputIsReported) {
  const std::string mapping = Write("mapping.yaml", kMapping);
  std::string text = GenerateCsv(200, true, 13);
  text += "x@example.com,CEO,10,retail,GB,yes,1,0,maybe\n";   // no label
  text += "y@example.com,CEO,10,retail,GB,yes,lots,0,yes\n";  // not a count
  text += "z@example.com,CEO,many,retail,GB,yes,1,0,yes\n";   // company size
  const std::string csv = Write("bad-rows.csv", text);
  absl::StatusOr<ModelEvalReport> report =
      EvaluateModelOnCsv(csv, mapping, "won", ModelEvalOptions());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->skipped_rows, 3);
  EXPECT_EQ(report->train_rows + report->holdout_rows, 200);

  EXPECT_THAT(
      std::string(
          EvaluateModelOnCsv(csv, mapping, "converted", ModelEvalOptions()).status().message()),
      HasSubstr("no label column 'converted'"));
  ModelEvalOptions bad;
  bad.holdout = 1.5;
  EXPECT_EQ(EvaluateModelOnCsv(csv, mapping, "won", bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string wrong = Write("wrong.yaml", "columns: {Job Title: job_titel}\n");
  EXPECT_EQ(EvaluateModelOnCsv(csv, wrong, "won", ModelEvalOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(IsHoldoutTest, SplitsByTheFractionIndependentlyOfOrder) {
  int held = 0;
  int held_first_half = 0;
  for (int row = 1; row <= 10000; ++row) {
    if (IsHoldout(row, 0.25)) {
      ++held;
      if (row <= 5000) ++held_first_half;
    }
  }
  EXPECT_NEAR(held, 2500, 150);
  EXPECT_NEAR(held_first_half, 1250, 100);  // spread over the file, not its tail
  EXPECT_EQ(IsHoldout(42, 0.25), IsHoldout(42, 0.25));
}

}  // namespace
}  // namespace leadflow::leadctl
