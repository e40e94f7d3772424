// libFuzzer target for the sentence splitter and protected-term masking (scripts/fuzz sentences
// builds and runs it; docs/testing.md records the runs). Byte 0 picks the language, byte 1 a
// protected span; the rest is the text. Any broken invariant aborts, which libFuzzer reports as a
// crash.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "engines/text/protected_terms.h"
#include "engines/text/sentence_splitter.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kLanguages[] = {"eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn",
                                     "zho_Hans", "jpn_Jpan", "tha_Thai", "ell_Grek",
                                     "arb_Arab", "hin_Deva", "rus_Cyrl", ""};
  if (size < 2) return 0;
  const std::string_view lang = kLanguages[data[0] % (sizeof(kLanguages) / sizeof(*kLanguages))];
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  std::vector<vox::ByteSpan> protect;
  if (!text.empty()) {
    const size_t b = data[1] % text.size();
    protect.push_back({b, b + (data[1] >> 4) * 3});
  }
  const std::vector<vox::ByteSpan> spans = vox::SplitSentences(text, lang, protect);
  for (size_t i = 0; i < spans.size(); ++i) {
    const vox::ByteSpan& s = spans[i];
    Check(s.begin < s.end && s.end <= text.size());
    const size_t gap_begin = i == 0 ? 0 : spans[i - 1].end;
    Check(gap_begin <= s.begin);
    for (size_t k = gap_begin; k < s.begin; ++k) {  // gaps: ASCII bytes there are whitespace
      const unsigned char c = static_cast<unsigned char>(text[k]);
      Check(c >= 0x80 || c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F));
    }
    for (const vox::ByteSpan& p : protect) {  // no cut inside a protected span
      Check(i == 0 || !(p.begin < spans[i - 1].end && s.begin < p.end));
    }
  }
  // Terms made of the text's own bytes: masking then restoring through a model that copies
  // every placeholder gives back each sentence with its terms' targets, and places all terms.
  if (text.size() >= 4) {
    const std::vector<vox::ProtectedTerm> terms = {
        {std::string(text.substr(0, 2)), "X"}, {std::string(text.substr(text.size() / 2, 3)), "Y"}};
    const std::vector<vox::TermMatch> matches = vox::FindTerms(text, terms);
    for (const vox::ByteSpan& s : spans) {
      const vox::MaskedText masked = vox::MaskTerms(text, s, matches);
      const vox::RestoredText restored = vox::RestoreTerms(masked.text, masked.placeholders, terms);
      // A sentence that already held "[T1]"-like text may place a term twice, never lose one.
      Check(restored.unplaced.empty());
    }
  }
  return 0;
}
