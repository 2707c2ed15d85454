// Generic text, names, companies and e-mail addresses. Country, language and job-title rules are
// in engine_country.cc and engine_title.cc.

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "services/capture/engine.h"
#include "services/capture/engine_internal.h"
#include "services/capture/engine_text.h"

namespace leadflow::capture {

namespace {

using internal::AppendUtf8;
using internal::CodePoints;

// Characters that are invisible in a form field but not Unicode white space.
bool IsInvisible(int32_t c) {
  return c == 0x200B /* zero width space */ || c == 0x2060 /* word joiner */ ||
         c == 0xFEFF /* byte-order mark */;
}

bool IsSpace(int32_t c) { return u_isUWhiteSpace(c) || IsInvisible(c); }

// Most fields (e-mail addresses above all) are ASCII: the functions below then work on the bytes,
// with the same result as on the code points (ASCII is well-formed UTF-8, one byte per code
// point, and u_tolower maps it as ASCII does), at a fraction of the cost.
bool IsAscii(absl::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

std::string Encode(const std::vector<int32_t>& code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (int32_t c : code_points) AppendUtf8(c, &out);
  return out;
}

// Apostrophes and hyphens that join the parts of one name ("O'Neil", "Anne-Marie").
bool IsNameJoiner(int32_t c) {
  return c == '\'' || c == 0x2019 /* ’ */ || c == '-' || c == 0x2010 /* hyphen */;
}

// Re-cases one word of a name: lower-case, then title-case the first letter of every part
// between joiners, with the Scottish/Irish "Mc" prefix ("mcdonald" → "McDonald").
std::string RecaseNameWord(const std::vector<int32_t>& word) {
  std::vector<int32_t> out;
  out.reserve(word.size());
  bool start_of_part = true;
  size_t part_begin = 0;
  for (size_t i = 0; i < word.size(); ++i) {
    const int32_t c = word[i];
    if (IsNameJoiner(c) || c == '.') {
      out.push_back(c);
      start_of_part = true;
      continue;
    }
    if (start_of_part && u_isalpha(c)) {
      out.push_back(u_totitle(c));
      start_of_part = false;
      part_begin = i;
      continue;
    }
    out.push_back(u_tolower(c));
    // "Mc" + at least two more letters: title-case the letter after "Mc".
    if (i == part_begin + 2 && (word[part_begin] == 'm' || word[part_begin] == 'M') &&
        (word[part_begin + 1] == 'c' || word[part_begin + 1] == 'C') && u_isalpha(c) &&
        i + 1 < word.size() && u_isalpha(word[i + 1])) {
      out.back() = u_totitle(c);
    }
  }
  return Encode(out);
}

// True when a name word carries deliberate casing that re-casing would destroy: it starts with
// an upper-case letter and is not all upper-case ("DeShawn", "McKenzie", "O'neil").
bool HasDeliberateCase(const std::vector<int32_t>& word) {
  bool first_letter_seen = false;
  bool has_lower = false;
  for (int32_t c : word) {
    if (!u_isalpha(c)) continue;
    if (!first_letter_seen) {
      if (!u_isupper(c) && !u_istitle(c)) return false;
      first_letter_seen = true;
      continue;
    }
    if (u_islower(c)) has_lower = true;
  }
  return first_letter_seen && has_lower;
}

// Splits text into words of letters and digits; every other character separates words, except
// the characters in `glue`, which are dropped without separating ("S.A." → "SA").
std::vector<std::string> KeyWords(absl::string_view folded, std::u32string_view glue) {
  std::vector<std::string> words;
  std::string current;
  for (int32_t c : CodePoints(folded)) {
    if (u_isalnum(c)) {
      AppendUtf8(c, &current);
    } else if (glue.find(static_cast<char32_t>(c)) != std::u32string_view::npos) {
      continue;
    } else {
      if (c == '&') {
        if (!current.empty()) words.push_back(std::move(current));
        current.clear();
        words.push_back("and");
        continue;
      }
      if (!current.empty()) words.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

// Legal-form suffixes dropped from the end of a company name for its match key.
const absl::flat_hash_set<absl::string_view>& LegalSuffixes() {
  static const auto* const kSuffixes = new absl::flat_hash_set<absl::string_view>{
      "inc", "incorporated", "llc",  "llp",  "lp",          "ltd", "limited", "gmbh",
      "ag",  "kg",           "kgaa", "ug",   "se",          "sa",  "sas",     "sarl",
      "bv",  "nv",           "plc",  "corp", "corporation", "co",  "company", "pty",
      "pte", "pvt",          "oy",   "oyj",  "ab",          "as",  "asa",     "aps",
      "spa", "srl",          "sl",   "ltda", "sro",         "kk",  "bhd",     "sdn"};
  return *kSuffixes;
}

// Consumer mail domains (exact) and provider names whose every country domain is consumer mail
// (the first label: yahoo.co.uk, hotmail.fr, gmx.ch, ...).
const absl::flat_hash_set<absl::string_view>& FreeMailDomains() {
  static const auto* const kDomains = new absl::flat_hash_set<absl::string_view>{
      "gmail.com",    "googlemail.com",  "ymail.com",     "rocketmail.com", "msn.com",
      "icloud.com",   "me.com",          "mac.com",       "aim.com",        "web.de",
      "proton.me",    "protonmail.com",  "protonmail.ch", "pm.me",          "mail.com",
      "email.com",    "zoho.com",        "zohomail.com",  "mail.ru",        "inbox.ru",
      "list.ru",      "bk.ru",           "t-online.de",   "freenet.de",     "arcor.de",
      "posteo.de",    "mailbox.org",     "qq.com",        "163.com",        "126.com",
      "sina.com",     "naver.com",       "daum.net",      "hanmail.net",    "orange.fr",
      "wanadoo.fr",   "free.fr",         "sfr.fr",        "laposte.net",    "libero.it",
      "virgilio.it",  "tiscali.it",      "alice.it",      "hey.com",        "fastmail.com",
      "fastmail.fm",  "tutanota.com",    "tuta.io",       "seznam.cz",      "wp.pl",
      "o2.pl",        "onet.pl",         "interia.pl",    "rediffmail.com", "bluewin.ch",
      "telenet.be",   "skynet.be",       "ziggo.nl",      "kpnmail.nl",     "btinternet.com",
      "sky.com",      "comcast.net",     "verizon.net",   "att.net",        "sbcglobal.net",
      "bigpond.com",  "optusnet.com.au", "xtra.co.nz",    "uol.com.br",     "bol.com.br",
      "terra.com.br", "yeah.net",        "foxmail.com"};
  return *kDomains;
}

const absl::flat_hash_set<absl::string_view>& FreeMailProviders() {
  static const auto* const kProviders = new absl::flat_hash_set<absl::string_view>{
      "yahoo", "hotmail", "outlook", "live", "aol", "gmx", "yandex", "windowslive"};
  return *kProviders;
}

bool IsEmailLocalChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  if (static_cast<unsigned char>(c) >= 0x80) return true;  // RFC 6531 (UTF-8 local parts)
  static constexpr absl::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~.";
  return kSpecials.find(c) != absl::string_view::npos;
}

bool IsDomainLabelChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         static_cast<unsigned char>(c) >= 0x80;  // internationalised domain names
}

}  // namespace

// ---- Generic text -------------------------------------------------------------------------

bool IsValidUtf8(absl::string_view text) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const int64_t length = static_cast<int64_t>(text.size());
  int64_t i = 0;
  while (i < length) {
    UChar32 c;
    U8_NEXT(s, i, length, c);
    if (c < 0) return false;
  }
  return true;
}

size_t CodePointCount(absl::string_view text) { return CodePoints(text).size(); }

std::string TrimText(absl::string_view text) {
  if (IsAscii(text)) {
    size_t begin = 0;
    size_t end = text.size();
    while (begin < end && IsSpace(text[begin])) ++begin;
    while (end > begin && IsSpace(text[end - 1])) --end;
    return std::string(text.substr(begin, end - begin));
  }
  const std::vector<int32_t> cps = CodePoints(text);
  size_t begin = 0;
  size_t end = cps.size();
  while (begin < end && IsSpace(cps[begin])) ++begin;
  while (end > begin && IsSpace(cps[end - 1])) --end;
  return Encode(std::vector<int32_t>(cps.begin() + begin, cps.begin() + end));
}

std::string CollapseWhitespace(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (int32_t c : CodePoints(text)) {
    if (IsInvisible(c)) continue;
    if (u_isUWhiteSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    AppendUtf8(c, &out);
  }
  return out;
}

std::string ToLowerText(absl::string_view text) {
  if (IsAscii(text)) return absl::AsciiStrToLower(text);
  std::string out;
  out.reserve(text.size());
  for (int32_t c : CodePoints(text)) AppendUtf8(u_tolower(c), &out);
  return out;
}

std::string FoldForKey(absl::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  icu::UnicodeString source = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  icu::UnicodeString decomposed = U_SUCCESS(status) ? nfd->normalize(source, status) : source;
  if (U_FAILURE(status)) decomposed = source;
  icu::UnicodeString stripped;
  for (int32_t i = 0; i < decomposed.length();) {
    const UChar32 c = decomposed.char32At(i);
    if (u_charType(c) != U_NON_SPACING_MARK) stripped.append(c);
    i += U16_LENGTH(c);
  }
  stripped.foldCase();
  std::string out;
  stripped.toUTF8String(out);
  return out;
}

// ---- People and companies -----------------------------------------------------------------

std::string CaseName(absl::string_view name) {
  std::vector<std::string> words;
  for (absl::string_view word : absl::StrSplit(CollapseWhitespace(name), ' ', absl::SkipEmpty())) {
    const std::vector<int32_t> cps = CodePoints(word);
    words.push_back(HasDeliberateCase(cps) ? std::string(word) : RecaseNameWord(cps));
  }
  return absl::StrJoin(words, " ");
}

std::string NameKey(absl::string_view first_name, absl::string_view last_name) {
  const std::string folded = FoldForKey(absl::StrCat(first_name, " ", last_name));
  // Joiners vanish ("O'Neil" = "ONeil", "Anne-Marie" = "AnneMarie"); the rest separates words.
  std::vector<std::string> words = KeyWords(folded, U"'\u2019-\u2010.");
  // KeyWords reads "&" as "and"; a name has no business with it.
  words.erase(std::remove(words.begin(), words.end(), "and"), words.end());
  return absl::StrJoin(words, " ");
}

namespace {

// American Soundex of the ASCII letters of a folded name part (others are skipped): its first
// letter, then up to three digits of consonant classes, a class repeated across "h" or "w" or
// side by side counted once, zeros to fill. Empty when there is no ASCII letter.
std::string Soundex(absl::string_view folded) {
  //                               abcdefghijklmnopqrstuvwxyz
  static constexpr char kClass[] = "01230120022455012623010202";
  std::string code;
  char previous = 0;
  for (char c : folded) {
    if (c < 'a' || c > 'z') continue;
    const char digit = kClass[c - 'a'];
    if (code.empty()) {
      code.push_back(c);
      previous = digit;
      continue;
    }
    if (c == 'h' || c == 'w') continue;  // no separator: "Ashcraft" is a261
    if (digit != '0' && digit != previous) code.push_back(digit);
    previous = digit;
    if (code.size() == 4) break;
  }
  if (!code.empty()) code.resize(4, '0');
  return code;
}

bool IsVowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// A folded name part with its opening spelled as it sounds where spellings of one name differ
// only there: "ph" as "f" (Philips, Fillips); a hard "c" and a "q" as "k" (Catherine, Katherine;
// Christina, Kristina); a soft "g" as "j" (Gerald, Jerald); an opening vowel, or a "y" before a
// consonant, as "a" (Ibarra, Ybarra; Eric, Aric). Soundex keeps the first letter, so these would
// otherwise never share a code; every such letter is a vowel or in the class of the one it
// stands for, so the digits do not change.
std::string SpellOpeningAsItSounds(std::string part) {
  if (absl::StartsWith(part, "ph")) return "f" + part.substr(2);
  if (part.empty()) return part;
  const char next = part.size() > 1 ? part[1] : '\0';
  const bool soft = next == 'e' || next == 'i' || next == 'y';
  if (part[0] == 'q' || (part[0] == 'c' && !soft)) {
    part[0] = 'k';
  } else if (part[0] == 'g' && soft) {
    part[0] = 'j';
  } else if (IsVowel(part[0]) || (part[0] == 'y' && next != '\0' && !IsVowel(next))) {
    part[0] = 'a';
  }
  return part;
}

}  // namespace

std::vector<std::string> NameBlockCodes(absl::string_view first_name, absl::string_view last_name) {
  const std::string first = NameKey(first_name, "");
  const std::string last = NameKey("", last_name);
  if (first.empty() || last.empty()) return {};
  std::vector<std::string> codes;
  for (const auto& [prefix, part] : {std::pair{"f:", &first}, std::pair{"l:", &last}}) {
    std::string code = Soundex(SpellOpeningAsItSounds(*part));
    codes.push_back(absl::StrCat(prefix, code.empty() ? *part : code));
  }
  return codes;
}

std::string CompanyMatchKey(absl::string_view company) {
  std::vector<std::string> words = KeyWords(FoldForKey(company), U".'\u2019");
  if (words.size() > 1 && words.front() == "the") words.erase(words.begin());
  // Drop trailing legal forms ("GmbH & Co. KG", "Pty Ltd"), and a connector they leave behind,
  // but never the first word: "Co" and "AB" are also names.
  bool dropped_suffix = false;
  while (words.size() > 1) {
    if (LegalSuffixes().contains(words.back())) {
      words.pop_back();
      dropped_suffix = true;
    } else if (dropped_suffix && words.back() == "and") {
      words.pop_back();
    } else {
      break;
    }
  }
  return absl::StrJoin(words, "");
}

// ---- E-mail -------------------------------------------------------------------------------

absl::StatusOr<EmailAddress> ParseEmail(absl::string_view raw) {
  const std::string trimmed = TrimText(raw);
  if (trimmed.empty()) return absl::InvalidArgumentError("is empty");
  for (int32_t c : CodePoints(trimmed)) {
    if (u_isUWhiteSpace(c) || u_iscntrl(c) || IsInvisible(c)) {
      return absl::InvalidArgumentError("must not contain white space or control characters");
    }
  }
  if (std::count(trimmed.begin(), trimmed.end(), '@') != 1) {
    return absl::InvalidArgumentError("must contain exactly one '@'");
  }
  if (trimmed.size() > 254) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be at most 254 characters (has ", trimmed.size(), ")"));
  }
  const size_t at = trimmed.find('@');
  const absl::string_view local = absl::string_view(trimmed).substr(0, at);
  const absl::string_view domain = absl::string_view(trimmed).substr(at + 1);
  if (local.empty()) return absl::InvalidArgumentError("has an empty local part before '@'");
  if (local.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("local part must be at most 64 characters (has ", local.size(), ")"));
  }
  for (char c : local) {
    if (!IsEmailLocalChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("local part must not contain '", absl::string_view(&c, 1), "'"));
    }
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != absl::string_view::npos) {
    return absl::InvalidArgumentError("local part must not start or end with '.' or contain '..'");
  }
  if (domain.empty()) return absl::InvalidArgumentError("has an empty domain after '@'");
  if (domain.find('.') == absl::string_view::npos) {
    return absl::InvalidArgumentError("domain must contain a '.'");
  }
  const std::vector<absl::string_view> labels = absl::StrSplit(domain, '.');
  for (absl::string_view label : labels) {
    if (label.empty()) {
      return absl::InvalidArgumentError("domain must not start or end with '.' or contain '..'");
    }
    if (label.size() > 63) {
      return absl::InvalidArgumentError("domain labels must be at most 63 characters");
    }
    if (!std::all_of(label.begin(), label.end(), IsDomainLabelChar)) {
      return absl::InvalidArgumentError("domain may contain only letters, digits, '-' and '.'");
    }
    if (label.front() == '-' || label.back() == '-') {
      return absl::InvalidArgumentError("domain labels must not start or end with '-'");
    }
  }
  const absl::string_view tld = labels.back();
  if (tld.size() < 2 || std::all_of(tld.begin(), tld.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    return absl::InvalidArgumentError("domain must end in a top-level domain of 2+ letters");
  }

  EmailAddress email;
  email.address = ToLowerText(trimmed);
  email.domain = email.address.substr(at + 1);
  std::string local_key = email.address.substr(0, at);
  if (email.domain == "gmail.com" || email.domain == "googlemail.com") {
    // Gmail ignores dots and everything after '+'; googlemail.com is the same mailbox.
    local_key = local_key.substr(0, local_key.find('+'));
    local_key.erase(std::remove(local_key.begin(), local_key.end(), '.'), local_key.end());
    email.match_key = absl::StrCat(local_key, "@gmail.com");
  } else {
    email.match_key = email.address;
  }
  return email;
}

std::string EmailMatchKey(absl::string_view email) {
  absl::StatusOr<EmailAddress> parsed = ParseEmail(email);
  return parsed.ok() ? parsed->match_key : std::string();
}

bool IsFreeMailDomain(absl::string_view domain) {
  const std::string lower = absl::AsciiStrToLower(domain);
  if (FreeMailDomains().contains(lower)) return true;
  const absl::string_view provider = absl::string_view(lower).substr(0, lower.find('.'));
  return lower.find('.') != std::string::npos && FreeMailProviders().contains(provider);
}

}  // namespace leadflow::capture
