#include "engines/text/ssml_say_as.h"

#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engines/core/languages.h"
#include "engines/text/number_expansion.h"
#include "engines/text/unicode.h"

namespace vox {
namespace {

// The digits of `text` once separators are dropped; nullopt if anything else is left.
std::optional<std::string> Digits(absl::string_view text) {
  std::string digits;
  for (char c : text) {
    if (absl::ascii_isdigit(c)) {
      digits.push_back(c);
    } else if (c != ',' && c != '.' && c != ' ' && c != '_') {
      return std::nullopt;
    }
  }
  if (digits.empty()) return std::nullopt;
  return digits;
}

std::optional<std::string> Words(const absl::StatusOr<std::string>& s) {
  if (!s.ok()) return std::nullopt;
  return *s;
}

std::optional<std::string> CardinalWords(absl::string_view text, const std::string& lang) {
  std::optional<std::string> digits = Digits(text);
  if (!digits.has_value()) return std::nullopt;
  return Words(num2words::Cardinal(*digits, lang));
}

std::optional<std::string> OrdinalWords(absl::string_view text, const std::string& lang) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  size_t end = 0;
  while (end < t.size() && absl::ascii_isdigit(t[end])) ++end;
  if (end == 0) return std::nullopt;
  const std::string suffix = absl::AsciiStrToLower(t.substr(end));
  static const char* const kSuffixes[] = {"", ".", "st", "nd", "rd", "th", "º", "ª", "e", "er",
                                          "o", "a"};
  bool known = false;
  for (const char* s : kSuffixes) known = known || suffix == s;
  if (!known) return std::nullopt;
  return Words(num2words::Ordinal(std::string(t.substr(0, end)), lang));
}

std::optional<std::string> DateWords(absl::string_view text, const std::string& format,
                                     const std::string& lang) {
  const std::vector<std::string> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(text), absl::ByAnyChar("-/."));
  if (fields.size() != 3) return std::nullopt;
  for (const std::string& f : fields) {
    if (f.empty() || !Digits(f).has_value() || f.size() > 4) return std::nullopt;
  }
  std::string order = format;
  if (order.empty()) order = fields[0].size() == 4 ? "ymd" : "mdy";
  if (order != "ymd" && order != "mdy" && order != "dmy") return std::nullopt;
  std::string y, m, d;
  for (int i = 0; i < 3; ++i) {
    (order[i] == 'y' ? y : order[i] == 'm' ? m : d) = fields[i];
  }
  const int month = std::stoi(m), day = std::stoi(d);
  if (month < 1 || month > 12 || day < 1 || day > 31) return std::nullopt;
  std::optional<std::string> year = CardinalWords(y, lang);
  if (lang == "en") {
    static const char* const kMonths[] = {"January", "February", "March",     "April",
                                          "May",     "June",     "July",      "August",
                                          "September", "October", "November", "December"};
    std::optional<std::string> nth = Words(num2words::Ordinal(d, lang));
    if (!year.has_value() || !nth.has_value()) return std::nullopt;
    return absl::StrCat(kMonths[month - 1], " ", *nth, ", ", *year);
  }
  std::optional<std::string> day_words = CardinalWords(d, lang);
  std::optional<std::string> month_words = CardinalWords(m, lang);
  if (!year.has_value() || !day_words.has_value() || !month_words.has_value()) return std::nullopt;
  return absl::StrCat(*day_words, " ", *month_words, " ", *year);
}

std::optional<std::string> TelephoneWords(absl::string_view text, const std::string& lang) {
  std::vector<std::string> groups;
  std::string group;
  auto end_group = [&] {
    if (!group.empty()) groups.push_back(std::move(group));
    group.clear();
  };
  for (char c : text) {
    if (absl::ascii_isdigit(c)) {
      std::optional<std::string> w = Words(num2words::Cardinal(std::string(1, c), lang));
      if (!w.has_value()) return std::nullopt;
      absl::StrAppend(&group, group.empty() ? "" : " ", *w);
    } else if (c == '-' || c == ' ' || c == '.' || c == ')' || c == '(' || c == '/') {
      end_group();
    } else if (c == '+') {
      absl::StrAppend(&group, group.empty() ? "" : " ", "+");
    } else {
      return std::nullopt;
    }
  }
  end_group();
  if (groups.empty()) return std::nullopt;
  return absl::StrJoin(groups, ", ");
}

std::string CharacterWords(absl::string_view text) {
  absl::StatusOr<std::u32string> decoded = unicode::DecodeUtf8(std::string_view(text.data(), text.size()));
  if (!decoded.ok()) return std::string(text);
  std::string out;
  for (char32_t c : *decoded) {
    if (unicode::IsPySpace(c)) continue;
    if (!out.empty()) out.push_back(' ');
    out.append(unicode::EncodeUtf8(std::u32string(1, c)));
  }
  return out;
}

}  // namespace

std::string ExpandSayAs(const SsmlSegment& segment, const std::string& nllb_language) {
  const std::string& as = segment.say_as;
  if (as == "characters" || as == "spell-out") return CharacterWords(segment.text);
  const std::string lang = EngineLanguageCode(CodeFamily::kXtts, nllb_language).value_or("");
  std::optional<std::string> words;
  if (as == "cardinal" || as == "number") {
    words = CardinalWords(segment.text, lang);
  } else if (as == "ordinal") {
    words = OrdinalWords(segment.text, lang);
  } else if (as == "date") {
    words = DateWords(segment.text, segment.say_as_format, lang);
  } else if (as == "telephone") {
    words = TelephoneWords(segment.text, lang);
  }
  return words.value_or(segment.text);
}

}  // namespace vox
