// Countries and language tags.
//
// The country table is built once, on first use, from ICU's CLDR data rather than typed in: it
// then covers every ISO 3166-1 country with its alpha-3 code and its names in several languages,
// and stays in step with the ICU the binary links. Hand-written aliases cover what CLDR does not
// call a country name but people type into forms ("UK", "USA", "Holland", "England").

#include <unicode/uloc.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "services/capture/engine_text.h"

namespace leadflow::capture {

namespace {

// Words of a country name that are abbreviated in the wild, spelled out before lookup.
std::string ExpandAbbreviation(std::string word) {
  if (word == "st") return "saint";
  if (word == "ste") return "sainte";
  return word;
}

// The lookup form of a country name: folded, "&" = "and", dots and apostrophes dropped ("U.S.A."
// = "USA"), other punctuation as space, a leading "the" dropped.
std::string CountryKey(absl::string_view name) {
  std::string folded = FoldForKey(name);
  std::string spaced;
  spaced.reserve(folded.size());
  for (char c : folded) {
    if (c == '.' || c == '\'') continue;
    if (c == '&') {
      spaced.append(" and ");
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    // ASCII punctuation separates words; bytes of non-ASCII letters are kept as they are.
    spaced.push_back(u < 0x80 && !absl::ascii_isalnum(u) ? ' ' : c);
  }
  std::vector<std::string> words;
  for (absl::string_view word : absl::StrSplit(spaced, ' ', absl::SkipEmpty())) {
    words.push_back(ExpandAbbreviation(std::string(word)));
  }
  // "’" (U+2019) survives the ASCII filter above; drop it like "'".
  for (std::string& word : words) {
    for (size_t pos; (pos = word.find("\u2019")) != std::string::npos;) word.erase(pos, 3);
  }
  if (words.size() > 1 && words.front() == "the") words.erase(words.begin());
  return absl::StrJoin(words, " ");
}

std::string Utf16ToUtf8(const UChar* text, int32_t length) {
  std::string out(static_cast<size_t>(length) * 3 + 1, '\0');
  int32_t written = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &written, text, length, &status);
  if (U_FAILURE(status)) return "";
  out.resize(static_cast<size_t>(written));
  return out;
}

// The name of region `alpha2` in `language`, or "" when ICU has none (it would otherwise fall
// back to the code itself).
std::string DisplayCountry(const std::string& alpha2, const char* language) {
  const std::string locale = absl::StrCat("und_", alpha2);
  std::array<UChar, 256> buffer;
  UErrorCode status = U_ZERO_ERROR;
  const int32_t length = uloc_getDisplayCountry(locale.c_str(), language, buffer.data(),
                                                static_cast<int32_t>(buffer.size()), &status);
  if (U_FAILURE(status) || status == U_USING_DEFAULT_WARNING || length <= 0) return "";
  std::string name = Utf16ToUtf8(buffer.data(), length);
  return name == alpha2 ? "" : name;
}

// The primary language of region `alpha2` ("de" for DE and CH, "ko" for KR).
std::string NativeLanguage(const std::string& alpha2) {
  const std::string locale = absl::StrCat("und_", alpha2);
  std::array<char, ULOC_FULLNAME_CAPACITY> likely;
  UErrorCode status = U_ZERO_ERROR;
  uloc_addLikelySubtags(locale.c_str(), likely.data(), static_cast<int32_t>(likely.size()),
                        &status);
  if (U_FAILURE(status)) return "";
  std::array<char, ULOC_LANG_CAPACITY> language;
  uloc_getLanguage(likely.data(), language.data(), static_cast<int32_t>(language.size()), &status);
  return U_FAILURE(status) ? "" : std::string(language.data());
}

struct CountryTable {
  // Upper-case alpha-2 codes that are countries, mapped to themselves; plus "UK" and "EL".
  absl::flat_hash_map<std::string, std::string> by_alpha2;
  // Upper-case alpha-3 → alpha-2.
  absl::flat_hash_map<std::string, std::string> by_alpha3;
  // CountryKey(name) → alpha-2.
  absl::flat_hash_map<std::string, std::string> by_name;
};

// Names people use that CLDR does not list as the country's name.
constexpr std::pair<absl::string_view, absl::string_view> kAliases[] = {
    {"UK", "GB"},
    {"U.K.", "GB"},
    {"Great Britain", "GB"},
    {"Britain", "GB"},
    {"England", "GB"},
    {"Scotland", "GB"},
    {"Wales", "GB"},
    {"Northern Ireland", "GB"},
    {"United Kingdom of Great Britain and Northern Ireland", "GB"},
    {"US", "US"},
    {"USA", "US"},
    {"America", "US"},
    {"United States of America", "US"},
    {"Holland", "NL"},
    {"The Netherlands", "NL"},
    {"Korea", "KR"},
    {"Republic of Korea", "KR"},
    {"Korea, Republic of", "KR"},
    {"UAE", "AE"},
    {"Emirates", "AE"},
    {"Czech Republic", "CZ"},
    {"Russian Federation", "RU"},
    {"Turkiye", "TR"},
    {"Viet Nam", "VN"},
    {"Hong Kong", "HK"},
    {"Macau", "MO"},
    {"Macao", "MO"},
    {"Ivory Coast", "CI"},
    {"Burma", "MM"},
    {"Swaziland", "SZ"},
    {"Macedonia", "MK"},
    {"East Timor", "TL"},
    {"Cape Verde", "CV"},
    {"Cabo Verde", "CV"},
    {"Vatican", "VA"},
    {"Holy See", "VA"},
    {"Palestine", "PS"},
    {"Bosnia", "BA"},
    {"Persia", "IR"},
    {"Iran, Islamic Republic of", "IR"},
    {"Republic of Ireland", "IE"},
    {"Eire", "IE"},
    {"Deutschland", "DE"},
    {"Schweiz", "CH"},
    {"Suisse", "CH"},
    {"Svizzera", "CH"},
    {"Österreich", "AT"},
    {"People's Republic of China", "CN"},
    {"PRC", "CN"},
    {"Mainland China", "CN"},
    {"Republic of China", "TW"},
};

const CountryTable& Countries() {
  static const CountryTable* const kTable = [] {
    auto* table = new CountryTable;
    std::vector<std::string> codes;
    for (const char* const* code = uloc_getISOCountries(); *code != nullptr; ++code) {
      const std::string alpha2(*code);
      const std::string locale = absl::StrCat("und_", alpha2);
      const std::string alpha3 = uloc_getISO3Country(locale.c_str());
      // CLDR also knows pseudo-regions (Canary Islands, Diego Garcia); they have no alpha-3.
      if (alpha3.empty()) continue;
      codes.push_back(alpha2);
      table->by_alpha2.emplace(alpha2, alpha2);
      table->by_alpha3.emplace(alpha3, alpha2);
    }
    table->by_alpha2.emplace("UK", "GB");  // exceptionally reserved for the United Kingdom
    table->by_alpha2.emplace("EL", "GR");  // the EU's code for Greece

    // First writer wins: aliases, then English names, then the other languages. A name that is
    // one country in English and another in some other language keeps its English meaning.
    for (const auto& [alias, alpha2] : kAliases) {
      table->by_name.emplace(CountryKey(alias), alpha2);
    }
    for (const char* language : {"en"}) {
      for (const std::string& alpha2 : codes) {
        const std::string name = DisplayCountry(alpha2, language);
        if (!name.empty()) table->by_name.emplace(CountryKey(name), alpha2);
      }
    }
    for (const std::string& alpha2 : codes) {
      const std::string language = NativeLanguage(alpha2);
      if (language.empty()) continue;
      const std::string name = DisplayCountry(alpha2, language.c_str());
      if (!name.empty()) table->by_name.emplace(CountryKey(name), alpha2);
    }
    for (const char* language : {"de", "fr", "es", "it", "pt", "nl"}) {
      for (const std::string& alpha2 : codes) {
        const std::string name = DisplayCountry(alpha2, language);
        if (!name.empty()) table->by_name.emplace(CountryKey(name), alpha2);
      }
    }
    return table;
  }();
  return *kTable;
}

bool IsAsciiAlpha(absl::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isalpha(static_cast<unsigned char>(c));
  });
}

bool IsAsciiAlnum(absl::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c));
  });
}

bool IsAsciiDigits(absl::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

}  // namespace

std::optional<std::string> CountryToAlpha2(absl::string_view country) {
  const std::string trimmed = CollapseWhitespace(country);
  if (trimmed.empty()) return std::nullopt;
  const CountryTable& table = Countries();
  if (IsAsciiAlpha(trimmed) && (trimmed.size() == 2 || trimmed.size() == 3)) {
    const std::string upper = absl::AsciiStrToUpper(trimmed);
    const auto& codes = trimmed.size() == 2 ? table.by_alpha2 : table.by_alpha3;
    if (auto it = codes.find(upper); it != codes.end()) return it->second;
  }
  if (auto it = table.by_name.find(CountryKey(trimmed)); it != table.by_name.end()) {
    return it->second;
  }
  return std::nullopt;
}

std::optional<std::string> NormalizeLanguageTag(absl::string_view tag) {
  const std::string trimmed = TrimText(tag);
  if (trimmed.empty()) return std::nullopt;
  std::vector<std::string> subtags = absl::StrSplit(trimmed, absl::ByAnyChar("-_"));
  const std::string& primary = subtags.front();
  if (!IsAsciiAlpha(primary) || primary.size() < 2 || primary.size() > 3) {
    return std::nullopt;
  }
  bool in_extension = false;  // after a singleton ("u", "x", ...) casing is all lower
  for (size_t i = 0; i < subtags.size(); ++i) {
    std::string& subtag = subtags[i];
    if (!IsAsciiAlnum(subtag) || subtag.size() > 8) return std::nullopt;
    absl::AsciiStrToLower(&subtag);
    if (i == 0 || in_extension) continue;
    if (subtag.size() == 1) {
      in_extension = true;
    } else if (subtag.size() == 4 && IsAsciiAlpha(subtag)) {
      subtag[0] = absl::ascii_toupper(static_cast<unsigned char>(subtag[0]));  // script
    } else if ((subtag.size() == 2 && IsAsciiAlpha(subtag)) ||
               (subtag.size() == 3 && IsAsciiDigits(subtag))) {
      absl::AsciiStrToUpper(&subtag);  // region
    }
  }
  return absl::StrJoin(subtags, "-");
}

}  // namespace leadflow::capture
