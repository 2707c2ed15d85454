// Tests for the learned conversion model: it learns a planted signal, is deterministic and
// bounded, serves the prior until enough outcomes, explains itself, and round-trips through its
// stored form.
#include "services/scoring/engine_model.h"

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace leadflow::scoring {
namespace {

using events::v1::LeadAggregates;
using events::v1::LeadProfile;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A labelled lead of the synthetic population.
struct Example {
  LeadProfile profile;
  LeadAggregates aggregates;
  bool converted = false;
};

// Deterministic on every platform: mt19937's output sequence is specified, the standard
// distributions are not, so uniforms are made by hand.
class Random {
 public:
  explicit Random(uint32_t seed) : engine_(seed) {}
  double Uniform() { return static_cast<double>(engine_()) / 4294967296.0; }
  int Below(int n) { return static_cast<int>(Uniform() * n); }

 private:
  std::mt19937 engine_;
};

// The planted signal: executives, the software industry and demo requests convert far more
// often, French leads far less; country and industry otherwise add only noise.
std::vector<Example> Population(int n, uint32_t seed) {
  static const char* const kIndustries[] = {"software",  "retail", "banking",   "health",
                                            "education", "media",  "logistics", "energy"};
  static const char* const kCountries[] = {"GB", "US", "DE", "FR", "ES"};
  static const events::v1::Seniority kSeniorities[] = {
      events::v1::SENIORITY_EXECUTIVE, events::v1::SENIORITY_SENIOR, events::v1::SENIORITY_MANAGER,
      events::v1::SENIORITY_INDIVIDUAL_CONTRIBUTOR};
  Random random(seed);
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    Example e;
    e.profile.set_seniority(kSeniorities[random.Below(4)]);
    e.profile.set_industry(kIndustries[random.Below(8)]);
    e.profile.set_country(kCountries[random.Below(5)]);
    e.profile.set_company_size(10 + random.Below(3000));
    const bool demo = random.Uniform() < 0.3;
    if (demo) (*e.aggregates.mutable_by_type())["demo_request"].set_total(1);
    (*e.aggregates.mutable_by_type())["page_view"].set_total(random.Below(20));
    const double logit = -2.0 + 3.0 * (e.profile.seniority() == events::v1::SENIORITY_EXECUTIVE) +
                         2.0 * (e.profile.industry() == "software") + 2.0 * demo -
                         2.0 * (e.profile.country() == "FR");
    e.converted = random.Uniform() < 1 / (1 + std::exp(-logit));
    out.push_back(std::move(e));
  }
  return out;
}

ConversionModel Train(const std::vector<Example>& examples, const ModelSettings& settings) {
  ConversionModel model(settings.hash_bits);
  for (const Example& e : examples) {
    model.Update(LeadFeatures(e.profile, e.aggregates, events::v1::CATEGORY_UNSPECIFIED),
                 e.converted, settings);
  }
  return model;
}

std::vector<std::pair<double, bool>> Evaluate(const ConversionModel& model,
                                              const std::vector<Example>& examples) {
  std::vector<std::pair<double, bool>> scored;
  for (const Example& e : examples) {
    scored.emplace_back(
        model.Probability(LeadFeatures(e.profile, e.aggregates, events::v1::CATEGORY_UNSPECIFIED)),
        e.converted);
  }
  return scored;
}

TEST(ConversionModelTest, LearnsAPlantedSignal) {
  const ModelSettings settings;
  const ConversionModel model = Train(Population(6000, 1), settings);
  const std::vector<std::pair<double, bool>> holdout = Evaluate(model, Population(2000, 2));
  const double auc = Auc(holdout);
  EXPECT_GT(auc, 0.8);
  // Better than always predicting the base rate.
  double positives = 0;
  for (const auto& [p, label] : holdout) positives += label;
  const double base = positives / static_cast<double>(holdout.size());
  std::vector<std::pair<double, bool>> constant;
  for (const auto& [p, label] : holdout) constant.emplace_back(base, label);
  EXPECT_LT(LogLoss(holdout), LogLoss(constant) - 0.05);

  // The planted features carry the largest weights, with the right signs.
  LeadProfile executive;
  executive.set_seniority(events::v1::SENIORITY_EXECUTIVE);
  executive.set_country("FR");
  executive.set_industry("software");
  ModelSettings serving = settings;
  serving.min_outcomes = 0;
  serving.top_factors = 3;
  const Prediction p = model.Predict(
      LeadFeatures(executive, LeadAggregates(), events::v1::CATEGORY_UNSPECIFIED), serving);
  ASSERT_EQ(p.top_factors.size(), 3u);
  std::map<std::string, double> factors;
  for (const auto& f : p.top_factors) factors[f.feature()] = f.weight();
  EXPECT_GT(factors["seniority=executive"], 1);
  EXPECT_GT(factors["industry=software"], 0.5);
  EXPECT_LT(factors["country=fr"], -0.5);
}

TEST(ConversionModelTest, WithoutSignalTheAucStaysNearAHalf) {
  // The test of the test: labels independent of the features cannot be learned.
  std::vector<Example> train = Population(4000, 3);
  std::vector<Example> holdout = Population(2000, 4);
  Random random(5);
  for (Example& e : train) e.converted = random.Uniform() < 0.3;
  for (Example& e : holdout) e.converted = random.Uniform() < 0.3;
  const double auc = Auc(Evaluate(Train(train, ModelSettings()), holdout));
  EXPECT_GT(auc, 0.4);
  EXPECT_LT(auc, 0.6);
}

TEST(ConversionModelTest, TrainingIsDeterministicAndRoundTripsThroughItsStoredForm) {
  const std::vector<Example> examples = Population(500, 7);
  const ConversionModel a = Train(examples, ModelSettings());
  const ConversionModel b = Train(examples, ModelSettings());
  EXPECT_EQ(a.ToState().SerializeAsString(), b.ToState().SerializeAsString());
  EXPECT_EQ(a.outcomes(), 500);

  absl::StatusOr<ConversionModel> loaded = ConversionModel::FromState(a.ToState());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (const Example& e : Population(50, 8)) {
    const auto features = LeadFeatures(e.profile, e.aggregates, events::v1::CATEGORY_WARM);
    EXPECT_EQ(loaded->Probability(features), a.Probability(features));
  }
  EXPECT_EQ(loaded->outcomes(), a.outcomes());
  EXPECT_EQ(loaded->positives(), a.positives());

  internal::v1::ConversionModelState broken = a.ToState();
  broken.mutable_weights()->RemoveLast();
  EXPECT_EQ(ConversionModel::FromState(broken).status().code(), absl::StatusCode::kDataLoss);
  broken.set_hash_bits(40);
  EXPECT_EQ(ConversionModel::FromState(broken).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ConversionModelTest, MemoryIsBoundedByTheHashSize) {
  ModelSettings settings;
  settings.hash_bits = 8;
  ConversionModel model(settings.hash_bits);
  // Ten thousand distinct custom values: the weights stay 2^8.
  for (int i = 0; i < 10000; ++i) {
    LeadProfile profile;
    (*profile.mutable_custom())["visitor"] = absl::StrCat("v", i);
    model.Update(LeadFeatures(profile, LeadAggregates(), events::v1::CATEGORY_COLD), i % 2 == 0,
                 settings);
  }
  EXPECT_EQ(model.ToState().weights_size(), 256);
  for (int i = 0; i < 1000; ++i) {
    const uint32_t index = FeatureIndex(absl::StrCat("f", i), 8);
    EXPECT_GE(index, 1u);  // 0 is the bias
    EXPECT_LT(index, 256u);
  }
}

TEST(ConversionModelTest, ServesThePriorUntilEnoughOutcomes) {
  ModelSettings settings;
  settings.min_outcomes = 3;
  settings.prior = 0.07;
  ConversionModel model(settings.hash_bits);
  LeadProfile exec;
  exec.set_seniority(events::v1::SENIORITY_EXECUTIVE);
  const auto features = LeadFeatures(exec, LeadAggregates(), events::v1::CATEGORY_COLD);
  for (int i = 0; i < 3; ++i) {
    const Prediction before = model.Predict(features, settings);
    EXPECT_FALSE(before.from_model);
    EXPECT_EQ(before.probability, 0.07);
    EXPECT_THAT(before.top_factors, IsEmpty());
    model.Update(features, true, settings);
  }
  const Prediction after = model.Predict(features, settings);
  EXPECT_TRUE(after.from_model);
  EXPECT_GT(after.probability, 0.5);
  EXPECT_FALSE(after.top_factors.empty());
  // Factors are the weights times the values, largest magnitude first.
  for (size_t i = 1; i < after.top_factors.size(); ++i) {
    EXPECT_GE(std::abs(after.top_factors[i - 1].weight()), std::abs(after.top_factors[i].weight()));
  }
}

TEST(ConversionModelTest, FeaturesCoverProfileBehaviourAndCategory) {
  LeadProfile profile;
  profile.set_seniority(events::v1::SENIORITY_SENIOR);
  profile.set_industry(" Software ");
  profile.set_company_size(250);
  profile.add_sources("webinar");
  profile.set_phone("+441234567890");
  (*profile.mutable_custom())["budget"] = "None";
  LeadAggregates aggregates;
  (*aggregates.mutable_by_type())["page_view"].set_total(3);
  (*aggregates.mutable_by_page_category())["pricing"].set_total(1);
  aggregates.set_visits(2);
  std::vector<std::string> names;
  for (const Feature& f : LeadFeatures(profile, aggregates, events::v1::CATEGORY_SALES_READY)) {
    names.push_back(f.name);
    if (f.name == "activity.page_view") {
      EXPECT_DOUBLE_EQ(f.value, std::log1p(3.0));
    }
  }
  EXPECT_THAT(names, ::testing::UnorderedElementsAre(
                         "seniority=senior", "industry=software", "company_size=201-1000",
                         "source=webinar", "custom.budget=none", "has_phone", "activity.page_view",
                         "page.pricing", "visits", "category=sales_ready"));
}

TEST(CompileModelSettingsTest, FillsDefaultsAndRejectsBadValuesNamingTheField) {
  absl::StatusOr<ModelSettings> defaults = CompileModelSettings({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->hash_bits, 14);
  EXPECT_EQ(defaults->min_outcomes, 50);

  const std::vector<std::pair<std::string, config::v1::ConversionModelConfig>> bad = [] {
    std::vector<std::pair<std::string, config::v1::ConversionModelConfig>> cases;
    config::v1::ConversionModelConfig c;
    c.set_hash_bits(30);
    cases.emplace_back("hash_bits", c);
    c = {};
    c.set_learning_rate(-1);
    cases.emplace_back("learning_rate", c);
    c = {};
    c.set_l2(-0.1);
    cases.emplace_back("l2", c);
    c = {};
    c.set_prior(1.5);
    cases.emplace_back("prior", c);
    c = {};
    c.set_min_outcomes(-1);
    cases.emplace_back("min_outcomes", c);
    c = {};
    c.set_top_factors(500);
    cases.emplace_back("top_factors", c);
    return cases;
  }();
  for (const auto& [field, config] : bad) {
    absl::StatusOr<ModelSettings> compiled = CompileModelSettings(config);
    ASSERT_FALSE(compiled.ok()) << field;
    EXPECT_THAT(compiled.status().message(), HasSubstr("scoring.model." + field));
  }
}

TEST(MetricsTest, AucAndLogLossOnKnownValues) {
  EXPECT_EQ(Auc({{0.1, false}, {0.2, false}, {0.8, true}, {0.9, true}}), 1.0);
  EXPECT_EQ(Auc({{0.9, false}, {0.1, true}}), 0.0);
  EXPECT_EQ(Auc({{0.5, false}, {0.5, true}}), 0.5);  // ties count half
  EXPECT_EQ(Auc({{0.3, true}}), 0.5);                // one class only
  EXPECT_NEAR(Auc({{0.1, false}, {0.4, true}, {0.35, false}, {0.8, true}}), 1.0, 1e-12);
  EXPECT_NEAR(Auc({{0.1, false}, {0.3, true}, {0.35, false}, {0.8, true}}), 0.75, 1e-12);
  EXPECT_NEAR(LogLoss({{0.5, true}, {0.5, false}}), std::log(2.0), 1e-12);
  EXPECT_EQ(LogLoss({}), 0);
}

}  // namespace
}  // namespace leadflow::scoring
