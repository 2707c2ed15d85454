// The learned conversion model: online, L2-regularised logistic regression over hashed features.
//
// Contract:
// - Pure: no I/O, no clock, no randomness. The same outcomes in the same order give the same
//   weights, bit for bit (weights are kept as float, exactly as they are stored), so a replica
//   that loads the stored model predicts what the one that trained it predicts.
// - Bounded memory: 2^hash_bits weights, whatever the number of distinct feature values
//   (hashing trick; index 0 is the bias, features hash into 1..2^hash_bits-1 by FNV-1a).
// - Features of a lead (LeadFeatures): categorical profile fields as "name=value" with value 1
//   (seniority, job_function, industry, country, company size band, first source, interests,
//   custom fields, e-mail verified, phone/company known), behaviour as log(1 + count)
//   ("activity.<type>", "page.<category>", "visits", "minutes_on_site"), and the score's
//   category ("category=<name>") when there is one.
// - Predict serves the configured prior until `min_outcomes` outcomes have trained the model; then
//   sigmoid(w . x) with the top factors (feature, weight x value), largest magnitude first.
// - Update is one SGD step on the log loss with L2 shrinkage of the active weights (lazy L2:
//   inactive weights are not touched, so a step costs O(features), not O(2^hash_bits)).
//
// Thread safety: a const ConversionModel may be shared; Update needs exclusive access.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "leadflow/config/v1/scoring_rules.pb.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "leadflow/internal/v1/scoring_state.pb.h"

namespace leadflow::scoring {

// Validated model settings (ConversionModelConfig with its defaults filled in).
struct ModelSettings {
  int hash_bits = 14;
  double learning_rate = 0.05;
  double l2 = 0.0001;
  double prior = 0.05;
  int64_t min_outcomes = 50;
  int top_factors = 5;
};

// Fills in defaults (0 = default) and validates. INVALID_ARGUMENT naming the field
// ("scoring.model.<field>") when hash_bits is not 8..20, learning_rate is not in (0, 10], l2 is
// negative or not finite, prior is not in (0, 1), min_outcomes is negative or top_factors is not
// 0..50.
absl::StatusOr<ModelSettings> CompileModelSettings(const config::v1::ConversionModelConfig& config);

// One named input of the model.
struct Feature {
  std::string name;
  double value = 1;
};

// The features of a lead (see the contract above), in a deterministic order.
// CATEGORY_UNSPECIFIED gives no category feature.
std::vector<Feature> LeadFeatures(const events::v1::LeadProfile& profile,
                                  const events::v1::LeadAggregates& aggregates,
                                  events::v1::Category category);

// The weight index of a feature name for a model of 2^hash_bits weights: 1..2^hash_bits-1.
uint32_t FeatureIndex(absl::string_view name, int hash_bits);

struct Prediction {
  // Probability of conversion, in (0, 1).
  double probability = 0;
  // False while the prior is served (too few outcomes yet).
  bool from_model = false;
  // The features that move the log-odds most: feature name, weight x value. Empty with the prior.
  std::vector<events::v1::Factor> top_factors;
};

class ConversionModel {
 public:
  // An untrained model: every weight 0. hash_bits must be 8..20 (CompileModelSettings checks).
  explicit ConversionModel(int hash_bits);

  // The model as stored. DATA_LOSS when the weights do not number 2^hash_bits or hash_bits is out
  // of range.
  static absl::StatusOr<ConversionModel> FromState(const internal::v1::ConversionModelState& state);
  internal::v1::ConversionModelState ToState() const;

  int hash_bits() const { return hash_bits_; }
  int64_t outcomes() const { return outcomes_; }
  int64_t positives() const { return positives_; }

  // w . x including the bias.
  double Logit(const std::vector<Feature>& features) const;
  // The model's own probability, whatever the number of outcomes (evaluation uses it).
  double Probability(const std::vector<Feature>& features) const;
  // What is served: the prior until settings.min_outcomes, then the model with its top factors.
  Prediction Predict(const std::vector<Feature>& features, const ModelSettings& settings) const;
  // One training step: `converted` true for won, false for lost.
  void Update(const std::vector<Feature>& features, bool converted, const ModelSettings& settings);

 private:
  int hash_bits_;
  std::vector<float> weights_;
  int64_t outcomes_ = 0;
  int64_t positives_ = 0;
};

// Area under the ROC curve of (score, label) pairs: the probability that a random positive scores
// above a random negative, ties counting half. 0.5 when either class is missing.
double Auc(std::vector<std::pair<double, bool>> scored);
// Mean log loss of (probability, label) pairs, probabilities clamped to [1e-15, 1 - 1e-15]; 0 for
// no pairs.
double LogLoss(const std::vector<std::pair<double, bool>>& scored);

}  // namespace leadflow::scoring
