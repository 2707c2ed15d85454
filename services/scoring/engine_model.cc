#include "services/scoring/engine_model.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/rules/field_source.h"

namespace leadflow::scoring {
namespace {

constexpr int kMinHashBits = 8;
constexpr int kMaxHashBits = 20;
constexpr int kMaxTopFactors = 50;
// Free text can be long (custom fields); a feature name needs only enough to tell values apart.
constexpr size_t kMaxValueLength = 64;

absl::Status Invalid(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("scoring.model.", field, ": ", message));
}

double Sigmoid(double z) {
  // Two branches so that exp never overflows.
  if (z >= 0) return 1 / (1 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1 + e);
}

std::string Normalised(absl::string_view value) {
  std::string out = absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
  if (out.size() > kMaxValueLength) out.resize(kMaxValueLength);
  return out;
}

void AddCategorical(absl::string_view name, absl::string_view value, std::vector<Feature>& out) {
  const std::string normalised = Normalised(value);
  if (normalised.empty()) return;
  out.push_back({absl::StrCat(name, "=", normalised), 1});
}

// Company size in the bands sales thinks in; the raw number would make one weight carry a
// linear effect that size does not have.
std::string SizeBand(int32_t size) {
  if (size <= 10) return "1-10";
  if (size <= 50) return "11-50";
  if (size <= 200) return "51-200";
  if (size <= 1000) return "201-1000";
  if (size <= 5000) return "1001-5000";
  return "5000+";
}

// Counts enter as log(1 + n): the tenth page view says less than the first.
void AddCount(absl::string_view name, double count, std::vector<Feature>& out) {
  if (count <= 0) return;
  out.push_back({std::string(name), std::log1p(count)});
}

}  // namespace

absl::StatusOr<ModelSettings> CompileModelSettings(
    const config::v1::ConversionModelConfig& config) {
  ModelSettings settings;
  if (config.hash_bits() != 0) {
    if (config.hash_bits() < kMinHashBits || config.hash_bits() > kMaxHashBits) {
      return Invalid("hash_bits", absl::StrCat(config.hash_bits(), " is not in 8..20"));
    }
    settings.hash_bits = config.hash_bits();
  }
  if (config.learning_rate() != 0) {
    if (!std::isfinite(config.learning_rate()) || config.learning_rate() < 0 ||
        config.learning_rate() > 10) {
      return Invalid("learning_rate", "must be in (0, 10]");
    }
    settings.learning_rate = config.learning_rate();
  }
  if (config.l2() != 0) {
    if (!std::isfinite(config.l2()) || config.l2() < 0) return Invalid("l2", "must be >= 0");
    settings.l2 = config.l2();
  }
  if (config.prior() != 0) {
    if (!(config.prior() > 0 && config.prior() < 1)) return Invalid("prior", "must be in (0, 1)");
    settings.prior = config.prior();
  }
  if (config.min_outcomes() < 0) return Invalid("min_outcomes", "must be >= 0");
  if (config.min_outcomes() != 0) settings.min_outcomes = config.min_outcomes();
  if (config.top_factors() < 0 || config.top_factors() > kMaxTopFactors) {
    return Invalid("top_factors", "must be in 0..50");
  }
  if (config.top_factors() != 0) settings.top_factors = config.top_factors();
  return settings;
}

std::vector<Feature> LeadFeatures(const events::v1::LeadProfile& profile,
                                  const events::v1::LeadAggregates& aggregates,
                                  events::v1::Category category) {
  std::vector<Feature> out;
  if (profile.seniority() != events::v1::SENIORITY_UNSPECIFIED) {
    AddCategorical("seniority", rules::EnumValueName(profile.seniority()), out);
  }
  AddCategorical("job_function", profile.job_function(), out);
  AddCategorical("industry", profile.industry(), out);
  AddCategorical("country", profile.country(), out);
  if (profile.company_size() > 0)
    AddCategorical("company_size", SizeBand(profile.company_size()), out);
  if (profile.sources_size() > 0) AddCategorical("source", profile.sources(0), out);
  for (const std::string& interest : profile.interests()) AddCategorical("interest", interest, out);
  // The map has no stable order: sort its keys so the features (and the sums) are deterministic.
  std::vector<std::pair<std::string, std::string>> custom(profile.custom().begin(),
                                                          profile.custom().end());
  std::sort(custom.begin(), custom.end());
  for (const auto& [key, value] : custom) AddCategorical(absl::StrCat("custom.", key), value, out);
  if (profile.email_verified()) out.push_back({"email_verified", 1});
  if (!profile.phone().empty()) out.push_back({"has_phone", 1});
  if (!profile.company().empty()) out.push_back({"has_company", 1});

  std::vector<std::pair<std::string, int64_t>> counts;
  for (const auto& [type, c] : aggregates.by_type()) {
    counts.emplace_back(absl::StrCat("activity.", type), c.total());
  }
  for (const auto& [page, c] : aggregates.by_page_category()) {
    counts.emplace_back(absl::StrCat("page.", page), c.total());
  }
  std::sort(counts.begin(), counts.end());
  for (const auto& [name, count] : counts) AddCount(name, static_cast<double>(count), out);
  AddCount("visits", static_cast<double>(aggregates.visits()), out);
  AddCount("minutes_on_site", static_cast<double>(aggregates.seconds_on_site()) / 60, out);

  if (category != events::v1::CATEGORY_UNSPECIFIED) {
    AddCategorical("category", rules::EnumValueName(category), out);
  }
  return out;
}

uint32_t FeatureIndex(absl::string_view name, int hash_bits) {
  // FNV-1a, 64 bits: stable across processes and platforms, unlike absl::Hash, so a stored
  // model means the same thing to every replica and every build.
  uint64_t hash = 14695981039346656037ull;
  for (const char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  const uint64_t slots = (uint64_t{1} << hash_bits) - 1;  // index 0 is the bias
  return static_cast<uint32_t>(1 + hash % slots);
}

ConversionModel::ConversionModel(int hash_bits)
    : hash_bits_(hash_bits), weights_(size_t{1} << hash_bits, 0.0f) {}

absl::StatusOr<ConversionModel> ConversionModel::FromState(
    const internal::v1::ConversionModelState& state) {
  if (state.hash_bits() < kMinHashBits || state.hash_bits() > kMaxHashBits) {
    return absl::DataLossError(absl::StrCat("model: hash_bits ", state.hash_bits()));
  }
  if (static_cast<size_t>(state.weights_size()) != (size_t{1} << state.hash_bits())) {
    return absl::DataLossError(absl::StrCat("model: ", state.weights_size(), " weights for ",
                                            state.hash_bits(), " hash bits"));
  }
  ConversionModel model(state.hash_bits());
  std::copy(state.weights().begin(), state.weights().end(), model.weights_.begin());
  model.outcomes_ = state.outcomes();
  model.positives_ = state.positives();
  return model;
}

internal::v1::ConversionModelState ConversionModel::ToState() const {
  internal::v1::ConversionModelState state;
  state.set_hash_bits(hash_bits_);
  state.mutable_weights()->Add(weights_.begin(), weights_.end());
  state.set_outcomes(outcomes_);
  state.set_positives(positives_);
  return state;
}

double ConversionModel::Logit(const std::vector<Feature>& features) const {
  double z = weights_[0];
  for (const Feature& f : features) z += weights_[FeatureIndex(f.name, hash_bits_)] * f.value;
  return z;
}

double ConversionModel::Probability(const std::vector<Feature>& features) const {
  return Sigmoid(Logit(features));
}

Prediction ConversionModel::Predict(const std::vector<Feature>& features,
                                    const ModelSettings& settings) const {
  Prediction prediction;
  if (outcomes_ < settings.min_outcomes) {
    prediction.probability = settings.prior;
    return prediction;
  }
  prediction.from_model = true;
  prediction.probability = Probability(features);
  std::vector<events::v1::Factor> factors;
  factors.reserve(features.size());
  for (const Feature& f : features) {
    const double contribution = weights_[FeatureIndex(f.name, hash_bits_)] * f.value;
    if (contribution == 0) continue;
    events::v1::Factor factor;
    factor.set_feature(f.name);
    factor.set_weight(contribution);
    factors.push_back(std::move(factor));
  }
  // Largest magnitude first; the name breaks ties so the order is deterministic.
  std::sort(factors.begin(), factors.end(), [](const auto& a, const auto& b) {
    if (std::abs(a.weight()) != std::abs(b.weight())) {
      return std::abs(a.weight()) > std::abs(b.weight());
    }
    return a.feature() < b.feature();
  });
  if (factors.size() > static_cast<size_t>(settings.top_factors)) {
    factors.resize(settings.top_factors);
  }
  prediction.top_factors = std::move(factors);
  return prediction;
}

void ConversionModel::Update(const std::vector<Feature>& features, bool converted,
                             const ModelSettings& settings) {
  // Gradient of the log loss with respect to the logit.
  const double gradient = Probability(features) - (converted ? 1.0 : 0.0);
  const double rate = settings.learning_rate;
  // The bias is not regularised: it carries the base rate.
  weights_[0] = static_cast<float>(weights_[0] - rate * gradient);
  for (const Feature& f : features) {
    float& w = weights_[FeatureIndex(f.name, hash_bits_)];
    w = static_cast<float>(w - rate * (gradient * f.value + settings.l2 * w));
  }
  ++outcomes_;
  if (converted) ++positives_;
}

double Auc(std::vector<std::pair<double, bool>> scored) {
  // Rank-sum (Mann-Whitney) with average ranks for ties.
  std::sort(scored.begin(), scored.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  double positives = 0;
  double rank_sum = 0;
  size_t i = 0;
  while (i < scored.size()) {
    size_t j = i;
    while (j < scored.size() && scored[j].first == scored[i].first) ++j;
    const double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (scored[k].second) {
        positives += 1;
        rank_sum += average_rank;
      }
    }
    i = j;
  }
  const double negatives = static_cast<double>(scored.size()) - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

double LogLoss(const std::vector<std::pair<double, bool>>& scored) {
  if (scored.empty()) return 0;
  double sum = 0;
  for (const auto& [p, label] : scored) {
    const double clamped = std::clamp(p, 1e-15, 1 - 1e-15);
    sum -= label ? std::log(clamped) : std::log(1 - clamped);
  }
  return sum / static_cast<double>(scored.size());
}

}  // namespace leadflow::scoring
