#include "engines/text/ssml_parser.h"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engines/text/unicode.h"

namespace vox {
namespace {

constexpr int kMaxDepth = 64;
constexpr int kMaxBreakMs = 10000;

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsNameStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; }
bool IsNameChar(char c) {
  return IsNameStart(c) || absl::ascii_isdigit(c) || c == '-' || c == '.';
}

// Length of the valid UTF-8 sequence at s[i], or 0 (strict: no overlongs, surrogates, > U+10FFFF).
size_t Utf8Length(absl::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

// What an open element does to the text inside it.
struct Scope {
  std::string name;
  double rate = 1.0;
  std::string language;
  std::string say_as;
  std::string say_as_format;
  bool in_sub = false;  // <sub>: the content is replaced by the alias
  bool is_break = false;
};

class Parser {
 public:
  explicit Parser(absl::string_view doc) : doc_(doc) {}

  absl::StatusOr<std::vector<SsmlSegment>> Run() {
    for (size_t i = 0; i < doc_.size();) {
      if (doc_[i] == '\0') return Error(i, "a NUL character");
      const size_t n = Utf8Length(doc_, i);
      if (n == 0) return Error(i, "invalid UTF-8");
      i += n;
    }
    if (absl::StartsWith(doc_, "<?xml")) {
      const size_t end = doc_.find("?>");
      if (end == absl::string_view::npos) return Error(0, "an unterminated XML declaration");
      pos_ = end + 2;
    }
    if (absl::Status s = SkipMisc(); !s.ok()) return s;
    if (!absl::StartsWith(doc_.substr(pos_), "<speak") ||
        (pos_ + 6 < doc_.size() && IsNameChar(doc_[pos_ + 6]))) {
      return Error(pos_, "expected the root element <speak>");
    }
    // The first pass reads the <speak> tag (checked above); the loop ends when it is closed.
    do {
      if (pos_ >= doc_.size()) {
        return Error(pos_, absl::StrCat("the end of the document inside <", stack_.back().name,
                                        "> (expected </", stack_.back().name, ">)"));
      }
      if (doc_[pos_] != '<') {
        if (absl::Status s = Text(); !s.ok()) return s;
        continue;
      }
      const absl::string_view rest = doc_.substr(pos_);
      absl::Status s;
      if (absl::StartsWith(rest, "<!--")) {
        s = Comment();
      } else if (absl::StartsWith(rest, "<![CDATA[")) {
        s = Cdata();
      } else if (absl::StartsWith(rest, "<!")) {
        s = Error(pos_, "a DOCTYPE or other declaration (not supported)");
      } else if (absl::StartsWith(rest, "<?")) {
        s = ProcessingInstruction();
      } else if (absl::StartsWith(rest, "</")) {
        s = EndTag();
      } else {
        s = StartTag();
      }
      if (!s.ok()) return s;
    } while (!stack_.empty());
    if (absl::Status s = SkipMisc(); !s.ok()) return s;
    if (pos_ != doc_.size()) return Error(pos_, "content after the closing </speak>");
    FlushText();
    return std::move(segments_);
  }

 private:
  absl::Status Error(size_t at, absl::string_view what) const {
    size_t chars = 0, line = 1, column = 1;
    for (size_t i = 0; i < at && i < doc_.size(); ++i) {
      if ((static_cast<unsigned char>(doc_[i]) & 0xC0) == 0x80) continue;
      ++chars;
      if (doc_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return absl::InvalidArgumentError(absl::StrCat("SSML: ", what, " at byte ", at,
                                                   " (character ", chars, ", line ", line,
                                                   ", column ", column, ")"));
  }

  // Whitespace, comments and processing instructions (before and after the root).
  absl::Status SkipMisc() {
    while (pos_ < doc_.size()) {
      if (IsXmlSpace(doc_[pos_])) {
        ++pos_;
      } else if (absl::StartsWith(doc_.substr(pos_), "<!--")) {
        if (absl::Status s = Comment(); !s.ok()) return s;
      } else if (absl::StartsWith(doc_.substr(pos_), "<?")) {
        if (absl::Status s = ProcessingInstruction(); !s.ok()) return s;
      } else {
        break;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Comment() {
    const size_t end = doc_.find("-->", pos_ + 4);
    if (end == absl::string_view::npos) return Error(pos_, "an unterminated comment");
    pos_ = end + 3;
    return absl::OkStatus();
  }

  absl::Status ProcessingInstruction() {
    const size_t end = doc_.find("?>", pos_ + 2);
    if (end == absl::string_view::npos) return Error(pos_, "an unterminated processing instruction");
    pos_ = end + 2;
    return absl::OkStatus();
  }

  absl::Status Cdata() {
    const size_t start = pos_ + 9;
    const size_t end = doc_.find("]]>", start);
    if (end == absl::string_view::npos) return Error(pos_, "an unterminated CDATA section");
    if (absl::Status s = CheckTextAllowed(pos_, doc_.substr(start, end - start)); !s.ok()) return s;
    AddText(doc_.substr(start, end - start));
    pos_ = end + 3;
    return absl::OkStatus();
  }

  // Text (and references) up to the next '<'.
  absl::Status Text() {
    const size_t start = pos_;
    std::string decoded;
    while (pos_ < doc_.size() && doc_[pos_] != '<') {
      if (doc_[pos_] == '&') {
        if (absl::Status s = Reference(&decoded); !s.ok()) return s;
      } else {
        decoded.push_back(doc_[pos_++]);
      }
    }
    if (absl::Status s = CheckTextAllowed(start, decoded); !s.ok()) return s;
    AddText(decoded);
    return absl::OkStatus();
  }

  absl::Status CheckTextAllowed(size_t at, absl::string_view text) const {
    if (!stack_.back().is_break) return absl::OkStatus();
    for (char c : text) {
      if (!IsXmlSpace(c)) return Error(at, "text inside <break> (it must be empty)");
    }
    return absl::OkStatus();
  }

  // An entity or character reference at pos_, decoded onto *out.
  absl::Status Reference(std::string* out) {
    const size_t start = pos_;
    const size_t semi = doc_.find(';', pos_);
    if (semi == absl::string_view::npos || semi - pos_ > 12) {
      return Error(start, "a '&' that starts no reference (write &amp;)");
    }
    const absl::string_view name = doc_.substr(pos_ + 1, semi - pos_ - 1);
    pos_ = semi + 1;
    if (name == "amp") return out->push_back('&'), absl::OkStatus();
    if (name == "lt") return out->push_back('<'), absl::OkStatus();
    if (name == "gt") return out->push_back('>'), absl::OkStatus();
    if (name == "quot") return out->push_back('"'), absl::OkStatus();
    if (name == "apos") return out->push_back('\''), absl::OkStatus();
    if (name.size() >= 2 && name[0] == '#') {
      const bool hex = name[1] == 'x';
      const absl::string_view digits = name.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      bool ok = !digits.empty();
      for (char c : digits) {
        const int v = hex && absl::ascii_isxdigit(c)
                          ? (absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10)
                          : (absl::ascii_isdigit(c) ? c - '0' : -1);
        if (v < 0 || cp > 0x10FFFF) {
          ok = false;
          break;
        }
        cp = cp * (hex ? 16 : 10) + v;
      }
      if (!ok || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
          (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')) {
        return Error(start, absl::StrCat("an invalid character reference '&", name, ";'"));
      }
      out->append(unicode::EncodeUtf8(std::u32string(1, static_cast<char32_t>(cp))));
      return absl::OkStatus();
    }
    return Error(start, absl::StrCat("an unknown entity '&", name,
                                     ";' (known: &amp; &lt; &gt; &quot; &apos; &#N; &#xH;)"));
  }

  absl::StatusOr<std::string> Name() {
    if (pos_ >= doc_.size() || !IsNameStart(doc_[pos_])) {
      return Error(pos_, "expected a name");
    }
    const size_t start = pos_;
    while (pos_ < doc_.size() && IsNameChar(doc_[pos_])) ++pos_;
    return std::string(doc_.substr(start, pos_ - start));
  }

  void SkipSpace() {
    while (pos_ < doc_.size() && IsXmlSpace(doc_[pos_])) ++pos_;
  }

  struct Attribute {
    std::string name;
    std::string value;
    size_t at = 0;  // where the attribute starts (for errors)
  };

  absl::Status StartTag() {
    const size_t tag_at = pos_;
    ++pos_;  // '<'
    absl::StatusOr<std::string> name = Name();
    if (!name.ok()) return name.status();
    if (stack_.empty() && *name != "speak") return Error(tag_at, "expected the root element <speak>");
    if (!stack_.empty() && *name == "speak") return Error(tag_at, "a nested <speak>");
    std::vector<Attribute> attributes;
    bool empty = false;
    while (true) {
      const size_t before = pos_;
      SkipSpace();
      if (pos_ >= doc_.size()) return Error(tag_at, absl::StrCat("an unterminated <", *name, ">"));
      if (doc_[pos_] == '>') {
        ++pos_;
        break;
      }
      if (doc_[pos_] == '/') {
        if (pos_ + 1 >= doc_.size() || doc_[pos_ + 1] != '>') return Error(pos_, "expected '/>'");
        pos_ += 2;
        empty = true;
        break;
      }
      if (before == pos_) return Error(pos_, "expected whitespace, '>' or '/>'");
      Attribute a;
      a.at = pos_;
      absl::StatusOr<std::string> attr = Name();
      if (!attr.ok()) return attr.status();
      a.name = std::move(*attr);
      SkipSpace();
      if (pos_ >= doc_.size() || doc_[pos_] != '=') {
        return Error(pos_, absl::StrCat("expected '=' after attribute ", a.name));
      }
      ++pos_;
      SkipSpace();
      if (pos_ >= doc_.size() || (doc_[pos_] != '"' && doc_[pos_] != '\'')) {
        return Error(pos_, absl::StrCat("expected a quoted value for attribute ", a.name));
      }
      const char quote = doc_[pos_++];
      while (pos_ < doc_.size() && doc_[pos_] != quote) {
        if (doc_[pos_] == '<') return Error(pos_, "a '<' inside an attribute value");
        if (doc_[pos_] == '&') {
          if (absl::Status s = Reference(&a.value); !s.ok()) return s;
        } else {
          a.value.push_back(doc_[pos_++]);
        }
      }
      if (pos_ >= doc_.size()) return Error(a.at, absl::StrCat("an unterminated value of ", a.name));
      ++pos_;
      for (const Attribute& other : attributes) {
        if (other.name == a.name) return Error(a.at, absl::StrCat("a duplicate attribute ", a.name));
      }
      attributes.push_back(std::move(a));
    }
    if (!stack_.empty() && stack_.back().is_break) {
      return Error(tag_at, "an element inside <break> (it must be empty)");
    }
    if (!stack_.empty() && stack_.back().in_sub) {
      return Error(tag_at, "an element inside <sub> (it may hold only text)");
    }
    if (static_cast<int>(stack_.size()) >= kMaxDepth) {
      return Error(tag_at, absl::StrCat("elements nested deeper than ", kMaxDepth));
    }
    Scope scope = stack_.empty() ? Scope{} : stack_.back();
    scope.name = *name;
    scope.in_sub = false;
    scope.is_break = false;
    if (absl::Status s = Apply(tag_at, attributes, &scope); !s.ok()) return s;
    stack_.push_back(std::move(scope));
    if (empty) return Close();
    return absl::OkStatus();
  }

  static const Attribute* Find(const std::vector<Attribute>& attributes, absl::string_view name) {
    for (const Attribute& a : attributes) {
      if (a.name == name) return &a;
    }
    return nullptr;
  }

  // What a known element means; unknown elements change nothing.
  absl::Status Apply(size_t tag_at, const std::vector<Attribute>& attributes, Scope* scope) {
    const std::string& name = scope->name;
    const Attribute* lang = Find(attributes, "xml:lang");
    if (name == "speak" || name == "p" || name == "s" || name == "lang") {
      if (name == "p" || name == "s") Boundary();
      if (lang != nullptr) {
        if (absl::StripAsciiWhitespace(lang->value).empty()) {
          return Error(lang->at, "an empty xml:lang");
        }
        scope->language = std::string(absl::StripAsciiWhitespace(lang->value));
      } else if (name == "lang") {
        return Error(tag_at, "<lang> without xml:lang");
      }
    } else if (name == "break") {
      scope->is_break = true;
      absl::StatusOr<int> ms = BreakMs(attributes);
      if (!ms.ok()) return ms.status();
      Boundary();
      SsmlSegment pause;
      pause.kind = SsmlSegment::Kind::kBreak;
      pause.pause_ms = *ms;
      if (pause.pause_ms > 0) segments_.push_back(std::move(pause));
    } else if (name == "prosody") {
      if (const Attribute* rate = Find(attributes, "rate"); rate != nullptr) {
        std::optional<double> factor = RateFactor(rate->value);
        if (!factor.has_value()) {
          return Error(rate->at, absl::StrCat("a bad prosody rate '", rate->value,
                                              "' (x-slow, slow, medium, fast, x-fast, default, "
                                              "N%, +N%, -N% or a positive number)"));
        }
        scope->rate *= *factor;
      }
    } else if (name == "say-as") {
      const Attribute* as = Find(attributes, "interpret-as");
      if (as == nullptr) return Error(tag_at, "<say-as> without interpret-as");
      scope->say_as = absl::AsciiStrToLower(absl::StripAsciiWhitespace(as->value));
      const Attribute* format = Find(attributes, "format");
      scope->say_as_format = format == nullptr ? "" : absl::AsciiStrToLower(format->value);
    } else if (name == "sub") {
      const Attribute* alias = Find(attributes, "alias");
      if (alias == nullptr) return Error(tag_at, "<sub> without alias");
      scope->in_sub = true;
      AddText(alias->value, *scope);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int> BreakMs(const std::vector<Attribute>& attributes) const {
    if (const Attribute* time = Find(attributes, "time"); time != nullptr) {
      absl::string_view v = absl::StripAsciiWhitespace(time->value);
      double scale = 0;
      if (absl::EndsWith(v, "ms")) {
        scale = 1;
        v.remove_suffix(2);
      } else if (absl::EndsWith(v, "s")) {
        scale = 1000;
        v.remove_suffix(1);
      }
      double number = 0;
      const bool digits_only = !v.empty() && (absl::ascii_isdigit(v[0]) || v[0] == '.');
      if (scale == 0 || !digits_only || !absl::SimpleAtod(v, &number) || number < 0 ||
          number * scale > kMaxBreakMs) {
        return Error(time->at, absl::StrCat("a bad break time '", time->value,
                                            "' (e.g. 250ms or 1.5s, at most 10s)"));
      }
      return static_cast<int>(number * scale + 0.5);
    }
    if (const Attribute* strength = Find(attributes, "strength"); strength != nullptr) {
      static constexpr std::pair<absl::string_view, int> kStrengths[] = {
          {"none", 0},     {"x-weak", 100},  {"weak", 200},
          {"medium", 400}, {"strong", 700}, {"x-strong", 1000}};
      for (const auto& [word, ms] : kStrengths) {
        if (strength->value == word) return ms;
      }
      return Error(strength->at,
                   absl::StrCat("a bad break strength '", strength->value,
                                "' (none, x-weak, weak, medium, strong, x-strong)"));
    }
    return 400;
  }

  static std::optional<double> RateFactor(absl::string_view v) {
    v = absl::StripAsciiWhitespace(v);
    static constexpr std::pair<absl::string_view, double> kWords[] = {
        {"x-slow", 0.5}, {"slow", 0.75}, {"medium", 1.0},
        {"default", 1.0}, {"fast", 1.25}, {"x-fast", 1.5}};
    for (const auto& [word, factor] : kWords) {
      if (v == word) return factor;
    }
    const bool percent = absl::EndsWith(v, "%");
    if (percent) v.remove_suffix(1);
    int sign = 0;
    if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
      sign = v[0] == '+' ? 1 : -1;
      v.remove_prefix(1);
    }
    if (v.empty() || !(absl::ascii_isdigit(v[0]) || v[0] == '.')) return std::nullopt;
    double number = 0;
    if (!absl::SimpleAtod(v, &number) || !(number >= 0) || number > 1e6) return std::nullopt;
    double factor;
    if (sign != 0) {
      factor = 1.0 + sign * (percent ? number / 100.0 : number);
    } else {
      factor = percent ? number / 100.0 : number;
    }
    if (!(factor > 0)) return std::nullopt;
    return factor;
  }

  absl::Status EndTag() {
    const size_t tag_at = pos_;
    pos_ += 2;
    absl::StatusOr<std::string> name = Name();
    if (!name.ok()) return name.status();
    SkipSpace();
    if (pos_ >= doc_.size() || doc_[pos_] != '>') return Error(pos_, "expected '>'");
    ++pos_;
    if (stack_.empty() || stack_.back().name != *name) {
      return Error(tag_at, absl::StrCat("</", *name, "> does not close <",
                                        stack_.empty() ? "" : stack_.back().name, ">"));
    }
    return Close();
  }

  absl::Status Close() {
    const std::string name = stack_.back().name;
    stack_.pop_back();
    if (name == "p" || name == "s" || name == "break") Boundary();
    return absl::OkStatus();
  }

  // Text from the document, under the innermost scope.
  void AddText(absl::string_view text) {
    if (stack_.back().in_sub) return;  // replaced by the alias
    AddText(text, stack_.back());
  }

  void AddText(absl::string_view text, const Scope& scope) {
    const bool same = pending_.has_value() && pending_->say_as == scope.say_as &&
                      pending_->say_as_format == scope.say_as_format &&
                      pending_->rate == scope.rate && pending_->language == scope.language;
    if (!same) {
      bool blank = true;
      for (char c : text) blank = blank && IsXmlSpace(c);
      if (blank) {
        if (pending_.has_value()) pending_->text.push_back(' ');
        return;
      }
      FlushText();
      pending_.emplace();
      pending_->say_as = scope.say_as;
      pending_->say_as_format = scope.say_as_format;
      pending_->rate = scope.rate;
      pending_->language = scope.language;
    }
    pending_->text.append(text.data(), text.size());
  }

  // Ends the text being collected: the next text starts a new segment.
  void Boundary() { FlushText(); }

  void FlushText() {
    if (!pending_.has_value()) return;
    std::string collapsed;
    bool space = false;
    for (char c : pending_->text) {
      if (IsXmlSpace(c)) {
        space = true;
        continue;
      }
      if (space && !collapsed.empty()) collapsed.push_back(' ');
      space = false;
      collapsed.push_back(c);
    }
    if (!collapsed.empty()) {
      pending_->text = std::move(collapsed);
      segments_.push_back(std::move(*pending_));
    }
    pending_.reset();
  }

  const absl::string_view doc_;
  size_t pos_ = 0;
  std::vector<Scope> stack_;
  std::optional<SsmlSegment> pending_;
  std::vector<SsmlSegment> segments_;
};

}  // namespace

bool LooksLikeSsml(std::string_view text) {
  const absl::string_view t =
      absl::StripLeadingAsciiWhitespace(absl::string_view(text.data(), text.size()));
  return absl::StartsWith(t, "<speak") || absl::StartsWith(t, "<?xml");
}

absl::StatusOr<std::vector<SsmlSegment>> ParseSsml(std::string_view document) {
  return Parser(absl::string_view(document.data(), document.size())).Run();
}

}  // namespace vox
