#include "engines/translate/nllb_source_tokenizer.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vox {
namespace {

constexpr absl::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Decodes one UTF-8 code point at text[*i] (advancing *i); invalid bytes read as themselves.
uint32_t NextCodePoint(absl::string_view text, size_t* i) {
  const unsigned char c = static_cast<unsigned char>(text[*i]);
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (*i + n > text.size()) n = 1;
  uint32_t cp = n == 1 ? c : c & (0xFF >> (n + 1));
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[*i + k]) & 0x3F);
  *i += n;
  return cp;
}

bool IsLeadingJamo(uint32_t cp) { return cp >= 0x1100 && cp <= 0x1112; }
bool IsVowelJamo(uint32_t cp) { return cp >= 0x1161 && cp <= 0x1175; }
bool IsTrailingJamo(uint32_t cp) { return cp >= 0x11A8 && cp <= 0x11C2; }
bool IsLvSyllable(uint32_t cp) { return cp >= 0xAC00 && cp <= 0xD7A3 && (cp - 0xAC00) % 28 == 0; }

absl::Status CheckJamo(absl::string_view text) {
  uint32_t prev = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t at = i;
    const uint32_t cp = NextCodePoint(text, &i);
    if ((IsVowelJamo(cp) && IsLeadingJamo(prev)) ||
        (IsTrailingJamo(cp) && (IsLvSyllable(prev) || IsVowelJamo(prev)))) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "Hangul conjoining jamo U+%04X at byte %d composes with the character before it; "
          "NLLB's tokenizers (transformers and SentencePiece) disagree on such text: compose "
          "it into precomposed syllables (Unicode NFC) first",
          cp, at));
    }
    prev = cp;
  }
  return absl::OkStatus();
}

}  // namespace

NllbSourceTokenizer::NllbSourceTokenizer(const SentencePieceTokenizer* spm, const Ids& ids,
                                         const std::vector<std::pair<std::string, int64_t>>& languages,
                                         int64_t vocab_size)
    : spm_(spm), ids_(ids), space_id_(ids.unk) {
  added_ = {{"<s>", ids.bos}, {"<pad>", ids.pad}, {"</s>", ids.eos}, {"<unk>", ids.unk}};
  int64_t last = -1;
  for (const auto& [code, id] : languages) {
    added_.emplace_back(code, id);
    last = std::max(last, id);
  }
  if (last >= 0 && last + 1 < vocab_size) {
    mask_ = "<mask>";
    added_.emplace_back(mask_, last + 1);
  }
  std::stable_sort(added_.begin(), added_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (int32_t p = 0; p < spm_->piece_count(); ++p) {
    auto piece = spm_->IdToPiece(p);
    if (piece.ok() && *piece == kSpace) {
      space_id_ = p + ids.fairseq_offset;
      break;
    }
  }
  for (const char* probe : {"a", "e", "x", ".", "0"}) {
    auto joined = Normalized(probe);
    if (joined.ok() && *joined == absl::StrCat(kSpace, probe)) {
      probe_ = probe;
      break;
    }
  }
}

absl::StatusOr<std::string> NllbSourceTokenizer::Normalized(absl::string_view text) const {
  auto pieces = spm_->Encode(text);
  if (!pieces.ok()) return pieces.status();
  std::string joined;
  for (int32_t p : *pieces) {
    auto piece = spm_->IdToPiece(p);
    if (!piece.ok()) return piece.status();
    absl::StrAppend(&joined, *piece);
  }
  return joined;
}

// Whether `part`, normalised as transformers does (SentencePiece's character map, whitespace runs
// collapsed, not stripped), ends in a space: SentencePiece's own normalisation of part + probe
// then ends in "▁" + probe. A part that normalises to nothing ends in a space only when it held
// whitespace (probe + part + probe keeps a "▁" between).
absl::StatusOr<bool> NllbSourceTokenizer::EndsWithSpace(absl::string_view part) const {
  if (probe_.empty()) return false;
  const std::string spaced = absl::StrCat(kSpace, probe_);
  auto alone = spm_->Encode(part);
  if (!alone.ok()) return alone.status();
  if (alone->empty()) {
    auto around = Normalized(absl::StrCat(probe_, part, probe_));
    if (!around.ok()) return around.status();
    return *around == absl::StrCat(spaced, spaced);
  }
  auto joined = Normalized(absl::StrCat(part, probe_));
  if (!joined.ok()) return joined.status();
  return absl::EndsWith(*joined, spaced);
}

absl::Status NllbSourceTokenizer::AppendPieces(absl::string_view part, std::vector<int64_t>* out) const {
  if (part.empty()) return absl::OkStatus();
  auto pieces = spm_->Encode(part);
  if (!pieces.ok()) return pieces.status();
  for (int32_t p : *pieces) out->push_back(p == 0 ? ids_.unk : p + ids_.fairseq_offset);
  auto space = EndsWithSpace(part);
  if (!space.ok()) return space.status();
  if (*space) out->push_back(space_id_);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> NllbSourceTokenizer::Encode(absl::string_view text, int64_t lang) const {
  if (absl::Status s = CheckJamo(text); !s.ok()) return s;
  std::vector<int64_t> ids = {lang};
  size_t start = 0;  // of the text not yet tokenized
  for (size_t i = 0; i < text.size();) {
    const std::pair<std::string, int64_t>* match = nullptr;
    for (const auto& token : added_) {
      if (text.substr(i, token.first.size()) == token.first) {
        match = &token;
        break;
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    absl::string_view before = text.substr(start, i - start);
    if (match->first == mask_) before = absl::StripTrailingAsciiWhitespace(before);
    if (absl::Status s = AppendPieces(before, &ids); !s.ok()) return s;
    ids.push_back(match->second);
    i += match->first.size();
    start = i;
  }
  if (absl::Status s = AppendPieces(text.substr(start), &ids); !s.ok()) return s;
  ids.push_back(ids_.eos);
  return ids;
}

}  // namespace vox
