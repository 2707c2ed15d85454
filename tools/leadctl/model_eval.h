#pragma once

// `leadctl model-eval`: replays a labelled CSV file through scoring's conversion model
// (services/scoring/engine_model.h) and reports how well it ranks and predicts on a hold-out
// split — to tune the model settings offline before they go into config/scoring.yaml.
//
// Rows become leads with the same column mapping as `leadctl import` (csv_mapping.h, target
// LeadSubmission), plus three mapping targets of its own: `activity.<type>` and
// `page.<category>` (a count of that activity / of page views of that category) and `category`
// (the score category: cold, warm, qualified, sales_ready). Seniority and job function are
// derived from the job title as capture derives them, so the features are the ones the service
// sees. The label is one raw column (`--label-column`, default `won`): a yes/no cell (1/0,
// true/false, won/lost, yes/no); a row without a readable label is skipped and counted.
//
// The split is deterministic: a row is held out when a hash of its row number falls under the
// hold-out fraction, so the same file gives the same report. The model trains on the other rows
// in file order, one pass (as the service learns online), then predicts the hold-out rows.
//
// Thread safety: plain functions.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "services/scoring/engine_model.h"

namespace leadflow::leadctl {

// One labelled row, as the model sees it.
struct LabelledLead {
  events::v1::LeadProfile profile;
  events::v1::LeadAggregates aggregates;
  events::v1::Category category = events::v1::CATEGORY_UNSPECIFIED;
  bool converted = false;
  // 1-based data row number (the header is not counted); decides the split.
  int64_t row = 0;
};

struct ModelEvalOptions {
  // Fraction of the rows held out for evaluation, in (0, 1).
  double holdout = 0.2;
  // Model settings (config/scoring.yaml `model`).
  scoring::ModelSettings settings;
};

struct ModelEvalReport {
  int64_t train_rows = 0;
  int64_t holdout_rows = 0;
  // Rows skipped for an unreadable label or cells that do not convert.
  int64_t skipped_rows = 0;
  // Share of converted rows in the training part.
  double train_positive_rate = 0;
  // On the hold-out rows: the model's AUC and log loss, and the log loss of always predicting
  // the training base rate (the model must beat it to be worth serving).
  double auc = 0.5;
  double log_loss = 0;
  double baseline_log_loss = 0;
};

// True when data row `row` belongs to the hold-out part.
bool IsHoldout(int64_t row, double holdout);

// Trains on the non-hold-out leads in order and evaluates on the others. INVALID_ARGUMENT when
// the hold-out fraction is not in (0, 1) or either part is empty.
absl::StatusOr<ModelEvalReport> EvaluateModel(const std::vector<LabelledLead>& leads,
                                              const ModelEvalOptions& options);

// Reads `csv_path` with the mapping file `mapping_path`, label in `label_column`, and evaluates.
// INVALID_ARGUMENT for a bad mapping, a missing label column or an empty part; NOT_FOUND for a
// missing file.
absl::StatusOr<ModelEvalReport> EvaluateModelOnCsv(const std::string& csv_path,
                                                   const std::string& mapping_path,
                                                   const std::string& label_column,
                                                   const ModelEvalOptions& options);

// The report as text, one figure per line.
std::string FormatReport(const ModelEvalReport& report);

}  // namespace leadflow::leadctl
