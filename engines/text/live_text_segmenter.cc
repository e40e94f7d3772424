#include "engines/text/live_text_segmenter.h"

#include <utility>

#include "engines/text/sentence_splitter.h"
#include "engines/text/unicode.h"

namespace vox {
namespace {

bool IsClauseMark(char32_t c) {
  return c == ',' || c == ';' || c == ':' || c == 0x2014 || c == 0x2013 || c == 0x3001 ||
         c == 0xFF0C;
}

// The trimmed text of t[b, e), or nullopt when blank.
std::optional<std::string> Utterance(std::u32string_view t) {
  std::u32string_view v = unicode::PyStrip(t);
  if (v.empty()) return std::nullopt;
  return unicode::EncodeUtf8(v);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> LiveTextSegmenter::Append(std::string_view piece) {
  if (absl::StatusOr<std::u32string> valid = unicode::DecodeUtf8(piece); !valid.ok()) {
    return absl::InvalidArgumentError("the text piece is not valid UTF-8");
  }
  buffer_.append(piece);
  std::vector<std::string> out;
  // Sentences: every one but the last, whose end the text to come may still move. After a
  // trailing space the splitter sees a sentence begin ("X"): an end whose punctuation and space
  // have arrived is cut now, not a word later (its lowercase-next-word rule would wait).
  size_t last = buffer_.size();  // the last character's first byte
  while (last > 0 && (static_cast<unsigned char>(buffer_[last - 1]) & 0xC0) == 0x80) --last;
  if (last > 0) --last;
  const std::u32string tail = *unicode::DecodeUtf8(std::string_view(buffer_).substr(last));
  const bool word_ended = !tail.empty() && unicode::IsPySpace(tail.back());
  const std::vector<ByteSpan> sentences =
      SplitSentences(word_ended ? buffer_ + "X" : buffer_, options_.language);
  if (sentences.size() >= 2) {
    const size_t end = sentences[sentences.size() - 2].end;
    for (size_t k = 0; k + 1 < sentences.size(); ++k) {
      const ByteSpan& s = sentences[k];
      out.push_back(buffer_.substr(s.begin, s.end - s.begin));
    }
    buffer_.erase(0, end);
  }
  // Then long clauses and long unpunctuated runs, over what is left.
  std::u32string t = *unicode::DecodeUtf8(buffer_);
  size_t cut = 0;  // t[0, cut) is returned
  while (true) {
    const std::u32string_view rest = std::u32string_view(t).substr(cut);
    size_t end = 0;
    if (rest.size() >= options_.clause_min_chars) {
      for (size_t k = rest.size() - 1; k > 0; --k) {
        if (unicode::IsPySpace(rest[k]) && IsClauseMark(rest[k - 1])) {
          end = k;
          break;
        }
      }
    }
    if (end == 0 && rest.size() > options_.max_chars) {
      for (size_t k = options_.max_chars; k > 0; --k) {
        if (unicode::IsPySpace(rest[k]) && !unicode::IsPySpace(rest[k - 1])) {
          end = k;
          break;
        }
      }
      if (end == 0) end = options_.max_chars;
    }
    if (end == 0) break;
    if (std::optional<std::string> u = Utterance(rest.substr(0, end)); u.has_value()) {
      out.push_back(std::move(*u));
    }
    cut += end;
  }
  buffer_ = unicode::EncodeUtf8(std::u32string_view(t).substr(cut));
  return out;
}

std::optional<std::string> LiveTextSegmenter::Flush() {
  std::string rest = std::move(buffer_);
  buffer_.clear();
  absl::StatusOr<std::u32string> t = unicode::DecodeUtf8(rest);
  if (!t.ok()) return std::nullopt;  // never: every piece was checked
  return Utterance(*t);
}

}  // namespace vox
