#include "tools/leadctl/model_eval.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rules/field_source.h"
#include "services/capture/engine_text.h"
#include "tools/leadctl/csv_mapping.h"
#include "tools/leadctl/csv_reader.h"

namespace leadflow::leadctl {

using scoring::Auc;
using scoring::ConversionModel;
using scoring::LeadFeatures;
using scoring::LogLoss;

bool IsHoldout(int64_t row, double holdout) {
  // A mixed hash of the row number, not the row number itself: files are often sorted (by
  // date, by outcome), and a tail split would then test on a different population.
  uint64_t x = static_cast<uint64_t>(row) + 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<double>(x % 1000000) < holdout * 1000000;
}

absl::StatusOr<ModelEvalReport> EvaluateModel(const std::vector<LabelledLead>& leads,
                                              const ModelEvalOptions& options) {
  if (!(options.holdout > 0 && options.holdout < 1)) {
    return absl::InvalidArgumentError("--holdout must be between 0 and 1 (exclusive)");
  }
  ModelEvalReport report;
  ConversionModel model(options.settings.hash_bits);
  int64_t positives = 0;
  std::vector<const LabelledLead*> holdout;
  for (const LabelledLead& lead : leads) {
    if (IsHoldout(lead.row, options.holdout)) {
      holdout.push_back(&lead);
      continue;
    }
    model.Update(LeadFeatures(lead.profile, lead.aggregates, lead.category), lead.converted,
                 options.settings);
    ++report.train_rows;
    if (lead.converted) ++positives;
  }
  report.holdout_rows = static_cast<int64_t>(holdout.size());
  if (report.train_rows == 0 || report.holdout_rows == 0) {
    return absl::InvalidArgumentError(absl::StrCat("need rows in both parts: ", report.train_rows,
                                                   " to train, ", report.holdout_rows,
                                                   " held out"));
  }
  report.train_positive_rate =
      static_cast<double>(positives) / static_cast<double>(report.train_rows);
  std::vector<std::pair<double, bool>> predicted;
  std::vector<std::pair<double, bool>> baseline;
  for (const LabelledLead* lead : holdout) {
    predicted.emplace_back(
        model.Probability(LeadFeatures(lead->profile, lead->aggregates, lead->category)),
        lead->converted);
    baseline.emplace_back(report.train_positive_rate, lead->converted);
  }
  report.auc = Auc(predicted);
  report.log_loss = LogLoss(predicted);
  report.baseline_log_loss = LogLoss(baseline);
  return report;
}

namespace {

// Mapping targets model-eval reads itself (CsvMapper hands them back): behaviour counts and the
// score category, which a LeadSubmission does not have.
constexpr char kActivityPrefix[] = "activity.";
constexpr char kPagePrefix[] = "page.";
constexpr char kCategoryPath[] = "category";
// `leadctl import`'s own targets: accepted, so one mapping file serves both, and ignored.
constexpr char kConsentPrefix[] = "consent.";

std::optional<bool> ParseLabel(absl::string_view cell) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(cell));
  if (lower == "won" || lower == "converted") return true;
  if (lower == "lost") return false;
  return ParseBool(lower);
}

std::optional<events::v1::Category> ParseCategory(absl::string_view cell) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(cell));
  for (const events::v1::Category c :
       {events::v1::CATEGORY_COLD, events::v1::CATEGORY_WARM, events::v1::CATEGORY_QUALIFIED,
        events::v1::CATEGORY_SALES_READY}) {
    if (lower == rules::EnumValueName(c)) return c;
  }
  return std::nullopt;
}

// The profile capture would store for `submission`, as far as the model's features go.
events::v1::LeadProfile ProfileOf(const events::v1::LeadSubmission& submission) {
  events::v1::LeadProfile profile;
  profile.set_email(submission.email());
  profile.set_phone(submission.phone());
  profile.set_company(submission.company());
  profile.set_job_title(submission.job_title());
  profile.set_seniority(capture::SeniorityOfTitle(submission.job_title()));
  profile.set_job_function(capture::JobFunctionOfTitle(submission.job_title()));
  profile.set_company_size(submission.company_size());
  profile.set_industry(absl::AsciiStrToLower(submission.industry()));
  profile.set_country(absl::AsciiStrToUpper(submission.country()));
  for (const std::string& interest : submission.interests()) {
    profile.add_interests(absl::AsciiStrToLower(interest));
  }
  *profile.mutable_custom() = submission.custom();
  if (!submission.source().empty()) profile.add_sources(submission.source());
  profile.set_email_verified(submission.email_verified());
  return profile;
}

}  // namespace

absl::StatusOr<ModelEvalReport> EvaluateModelOnCsv(const std::string& csv_path,
                                                   const std::string& mapping_path,
                                                   const std::string& label_column,
                                                   const ModelEvalOptions& options) {
  absl::StatusOr<config::v1::CsvMapping> mapping = LoadCsvMapping(mapping_path);
  if (!mapping.ok()) return mapping.status();
  absl::StatusOr<char> delimiter = CsvDelimiter(*mapping);
  if (!delimiter.ok()) return delimiter.status();
  std::ifstream in(csv_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(csv_path, ": cannot open"));
  CsvReader reader(in, *delimiter);
  std::vector<std::string> header;
  absl::StatusOr<bool> has_header = reader.Next(&header);
  if (!has_header.ok()) return has_header.status();
  if (!*has_header) return absl::InvalidArgumentError(absl::StrCat(csv_path, ": empty"));
  const auto label_it = std::find(header.begin(), header.end(), label_column);
  if (label_it == header.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(csv_path, ": no label column '", label_column, "'"));
  }
  const size_t label_index = static_cast<size_t>(label_it - header.begin());
  absl::StatusOr<CsvMapper> mapper =
      CsvMapper::Create(*mapping, *events::v1::LeadSubmission::descriptor(), header,
                        {kActivityPrefix, kPagePrefix, kCategoryPath, kConsentPrefix});
  if (!mapper.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mapping does not fit ", csv_path, ": ", mapper.status().message()));
  }

  std::vector<LabelledLead> leads;
  int64_t skipped = 0;
  int64_t row = 0;
  std::vector<std::string> cells;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(&cells);
    if (!more.ok()) return more.status();
    if (!*more) break;
    ++row;
    const std::optional<bool> label =
        label_index < cells.size() ? ParseLabel(cells[label_index]) : std::nullopt;
    events::v1::LeadSubmission submission;
    CsvMapper::RowResult mapped = mapper->Apply(cells, &submission);
    LabelledLead lead;
    for (const auto& [path, value] : mapped.caller_fields) {
      if (absl::StartsWith(path, kConsentPrefix)) continue;
      if (path == kCategoryPath) {
        std::optional<events::v1::Category> category = ParseCategory(value);
        if (!category.has_value()) {
          mapped.errors.push_back(absl::StrCat("category: '", value, "' is not a category"));
        } else {
          lead.category = *category;
        }
        continue;
      }
      int64_t count = 0;
      if (!absl::SimpleAtoi(value, &count) || count < 0) {
        mapped.errors.push_back(absl::StrCat(path, ": '", value, "' is not a count"));
        continue;
      }
      const bool activity = absl::StartsWith(path, kActivityPrefix);
      const std::string key =
          path.substr(activity ? sizeof(kActivityPrefix) - 1 : sizeof(kPagePrefix) - 1);
      auto& map = activity ? *lead.aggregates.mutable_by_type()
                           : *lead.aggregates.mutable_by_page_category();
      map[key].set_total(count);
    }
    if (!label.has_value() || !mapped.errors.empty()) {
      ++skipped;
      continue;
    }
    lead.profile = ProfileOf(submission);
    lead.converted = *label;
    lead.row = row;
    leads.push_back(std::move(lead));
  }
  absl::StatusOr<ModelEvalReport> report = EvaluateModel(leads, options);
  if (!report.ok()) return report.status();
  report->skipped_rows = skipped;
  return report;
}

std::string FormatReport(const ModelEvalReport& report) {
  return absl::StrFormat(
      "rows: %d train, %d held out, %d skipped\n"
      "train positive rate: %.4f\n"
      "hold-out AUC: %.4f\n"
      "hold-out log loss: %.4f (base-rate baseline %.4f)\n",
      report.train_rows, report.holdout_rows, report.skipped_rows, report.train_positive_rate,
      report.auc, report.log_loss, report.baseline_log_loss);
}

}  // namespace leadflow::leadctl
