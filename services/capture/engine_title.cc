// Seniority and job function from free-text job titles.
//
// A title is folded and split into words; phrases of up to four words are then matched longest
// first, left to right, each word belonging to at most one phrase. Longest-first is what keeps
// "Vice President" from reading as "President", "Managing Director" from reading as "Director"
// and "Lead Generation" from reading as a team lead. Phrases that must not count for anything
// are in the tables with an empty value, so they still consume their words.

#include <unicode/uchar.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "services/capture/engine_internal.h"
#include "services/capture/engine_text.h"

namespace leadflow::capture {

namespace {

using events::v1::Seniority;

constexpr size_t kMaxPhraseWords = 4;

// What a seniority phrase means.
enum class Level {
  kNone,       // consumes its words, counts for nothing ("product owner", "lead generation")
  kAssistant,  // an assistant to someone senior: an individual contributor whatever follows
  kStudent,
  kManager,
  kSenior,
  kExecutive,
};

using LevelTable = absl::flat_hash_map<absl::string_view, Level>;
using FunctionTable = absl::flat_hash_map<absl::string_view, absl::string_view>;

const LevelTable& Levels() {
  static const auto* const kTable = new LevelTable{
      // Executive: owners, founders, C-level, presidents, managing directors.
      {"owner", Level::kExecutive},
      {"co owner", Level::kExecutive},
      {"founder", Level::kExecutive},
      {"co founder", Level::kExecutive},
      {"cofounder", Level::kExecutive},
      {"ceo", Level::kExecutive},
      {"cto", Level::kExecutive},
      {"cfo", Level::kExecutive},
      {"coo", Level::kExecutive},
      {"cmo", Level::kExecutive},
      {"cio", Level::kExecutive},
      {"ciso", Level::kExecutive},
      {"cpo", Level::kExecutive},
      {"cro", Level::kExecutive},
      {"cdo", Level::kExecutive},
      {"chief", Level::kExecutive},
      {"president", Level::kExecutive},
      {"managing director", Level::kExecutive},
      {"managing partner", Level::kExecutive},
      {"chairman", Level::kExecutive},
      {"chairwoman", Level::kExecutive},
      {"geschaftsfuhrer", Level::kExecutive},
      {"geschaftsfuhrerin", Level::kExecutive},
      {"inhaber", Level::kExecutive},
      {"inhaberin", Level::kExecutive},
      {"pdg", Level::kExecutive},
      {"directeur general", Level::kExecutive},
      {"directrice generale", Level::kExecutive},
      // Senior: vice presidents, directors, heads of.
      {"vp", Level::kSenior},
      {"vice president", Level::kSenior},
      {"svp", Level::kSenior},
      {"evp", Level::kSenior},
      {"avp", Level::kSenior},
      {"director", Level::kSenior},
      {"head of", Level::kSenior},
      {"chief of staff", Level::kSenior},
      // Manager: managers and leads.
      {"manager", Level::kManager},
      {"mgr", Level::kManager},
      {"lead", Level::kManager},
      {"team lead", Level::kManager},
      {"team leader", Level::kManager},
      {"leader", Level::kManager},
      {"supervisor", Level::kManager},
      {"teamleiter", Level::kManager},
      {"teamleiterin", Level::kManager},
      // Students.
      {"student", Level::kStudent},
      {"working student", Level::kStudent},
      {"werkstudent", Level::kStudent},
      {"intern", Level::kStudent},
      {"internship", Level::kStudent},
      {"trainee", Level::kStudent},
      {"apprentice", Level::kStudent},
      {"praktikant", Level::kStudent},
      {"praktikantin", Level::kStudent},
      // Assistants to the above are not the above.
      {"assistant to", Level::kAssistant},
      {"executive assistant", Level::kAssistant},
      {"personal assistant", Level::kAssistant},
      {"administrative assistant", Level::kAssistant},
      // Look like a level, are not one.
      {"product owner", Level::kNone},
      {"process owner", Level::kNone},
      {"service owner", Level::kNone},
      {"lead generation", Level::kNone},
      {"lead gen", Level::kNone},
  };
  return *kTable;
}

const FunctionTable& Functions() {
  static const auto* const kTable = new FunctionTable{
      // Executive (general management).
      {"ceo", "executive"},
      {"chief executive", "executive"},
      {"chief executive officer", "executive"},
      {"founder", "executive"},
      {"co founder", "executive"},
      {"cofounder", "executive"},
      {"owner", "executive"},
      {"co owner", "executive"},
      {"president", "executive"},
      {"managing director", "executive"},
      {"managing partner", "executive"},
      {"general manager", "executive"},
      {"chairman", "executive"},
      {"chairwoman", "executive"},
      {"entrepreneur", "executive"},
      {"geschaftsfuhrer", "executive"},
      {"geschaftsfuhrerin", "executive"},
      {"inhaber", "executive"},
      {"pdg", "executive"},
      {"vice president", ""},  // not a president; the function comes from what follows
      // Marketing.
      {"marketing", "marketing"},
      {"marketer", "marketing"},
      {"cmo", "marketing"},
      {"brand", "marketing"},
      {"growth", "marketing"},
      {"seo", "marketing"},
      {"sem", "marketing"},
      {"content", "marketing"},
      {"communications", "marketing"},
      {"communication", "marketing"},
      {"comms", "marketing"},
      {"pr", "marketing"},
      {"public relations", "marketing"},
      {"demand generation", "marketing"},
      {"demand gen", "marketing"},
      {"lead generation", "marketing"},
      {"lead gen", "marketing"},
      {"campaign", "marketing"},
      {"campaigns", "marketing"},
      {"social media", "marketing"},
      {"advertising", "marketing"},
      // Sales.
      {"sales", "sales"},
      {"cro", "sales"},
      {"chief revenue officer", "sales"},
      {"revenue", "sales"},
      {"account executive", "sales"},
      {"account manager", "sales"},
      {"key account", "sales"},
      {"business development", "sales"},
      {"bdr", "sales"},
      {"sdr", "sales"},
      {"commercial", "sales"},
      {"salesperson", "sales"},
      {"vertrieb", "sales"},
      // Engineering.
      {"engineer", "engineering"},
      {"engineering", "engineering"},
      {"developer", "engineering"},
      {"software", "engineering"},
      {"programmer", "engineering"},
      {"cto", "engineering"},
      {"devops", "engineering"},
      {"sre", "engineering"},
      {"architect", "engineering"},
      {"qa", "engineering"},
      {"data scientist", "engineering"},
      {"machine learning", "engineering"},
      // IT.
      {"it", "it"},
      {"cio", "it"},
      {"ciso", "it"},
      {"information technology", "it"},
      {"sysadmin", "it"},
      {"system administrator", "it"},
      {"systems administrator", "it"},
      {"network", "it"},
      {"helpdesk", "it"},
      {"help desk", "it"},
      {"infrastructure", "it"},
      {"security", "it"},
      // Finance.
      {"finance", "finance"},
      {"financial", "finance"},
      {"cfo", "finance"},
      {"accountant", "finance"},
      {"accounting", "finance"},
      {"controller", "finance"},
      {"controlling", "finance"},
      {"treasurer", "finance"},
      {"bookkeeper", "finance"},
      {"audit", "finance"},
      {"auditor", "finance"},
      {"tax", "finance"},
      // HR.
      {"hr", "hr"},
      {"human resources", "hr"},
      {"people", "hr"},
      {"recruiter", "hr"},
      {"recruiting", "hr"},
      {"recruitment", "hr"},
      {"talent", "hr"},
      {"chro", "hr"},
      {"payroll", "hr"},
      {"personnel", "hr"},
      // Operations.
      {"operations", "operations"},
      {"operational", "operations"},
      {"ops", "operations"},
      {"coo", "operations"},
      {"logistics", "operations"},
      {"supply chain", "operations"},
      {"procurement", "operations"},
      {"purchasing", "operations"},
      {"facilities", "operations"},
      {"process owner", "operations"},
      // Product.
      {"product", "product"},
      {"cpo", "product"},
      {"product owner", "product"},
      {"ux", "product"},
      {"ui", "product"},
      {"designer", "product"},
      {"design", "product"},
  };
  return *kTable;
}

// The folded words of a title: letters and digits; everything else separates ("Co-Founder" →
// "co", "founder"; "VP, Sales" → "vp", "sales").
std::vector<std::string> TitleWords(absl::string_view title) {
  std::vector<std::string> words;
  std::string current;
  for (int32_t c : internal::CodePoints(FoldForKey(title))) {
    if (u_isalnum(c)) {
      internal::AppendUtf8(c, &current);
    } else if (!current.empty()) {
      words.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

// The values of the phrases of `table` found in `words`, longest match first, left to right.
template <typename Value>
std::vector<Value> MatchPhrases(const std::vector<std::string>& words,
                                const absl::flat_hash_map<absl::string_view, Value>& table) {
  std::vector<Value> found;
  size_t i = 0;
  while (i < words.size()) {
    size_t matched = 0;
    for (size_t n = std::min(kMaxPhraseWords, words.size() - i); n > 0; --n) {
      const std::string phrase =
          absl::StrJoin(words.begin() + static_cast<std::ptrdiff_t>(i),
                        words.begin() + static_cast<std::ptrdiff_t>(i + n), " ");
      if (auto it = table.find(phrase); it != table.end()) {
        found.push_back(it->second);
        matched = n;
        break;
      }
    }
    i += matched > 0 ? matched : 1;
  }
  return found;
}

}  // namespace

Seniority SeniorityOfTitle(absl::string_view title) {
  const std::vector<std::string> words = TitleWords(title);
  if (words.empty()) return events::v1::SENIORITY_UNSPECIFIED;
  const std::vector<Level> levels = MatchPhrases(words, Levels());
  if (std::find(levels.begin(), levels.end(), Level::kAssistant) != levels.end()) {
    return events::v1::SENIORITY_INDIVIDUAL_CONTRIBUTOR;
  }
  const Level highest =
      levels.empty() ? Level::kNone : *std::max_element(levels.begin(), levels.end());
  switch (highest) {
    case Level::kExecutive:
      return events::v1::SENIORITY_EXECUTIVE;
    case Level::kSenior:
      return events::v1::SENIORITY_SENIOR;
    case Level::kManager:
      return events::v1::SENIORITY_MANAGER;
    case Level::kStudent:
      return events::v1::SENIORITY_STUDENT;
    case Level::kNone:
    case Level::kAssistant:
      break;
  }
  return events::v1::SENIORITY_INDIVIDUAL_CONTRIBUTOR;
}

std::string JobFunctionOfTitle(absl::string_view title) {
  const std::vector<std::string> words = TitleWords(title);
  if (words.empty()) return "";
  for (absl::string_view function : MatchPhrases(words, Functions())) {
    if (!function.empty()) return std::string(function);
  }
  return "other";
}

}  // namespace leadflow::capture
