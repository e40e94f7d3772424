#ifndef VOX_ENGINES_TEXT_SENTENCE_BOUNDARIES_H_
#define VOX_ENGINES_TEXT_SENTENCE_BOUNDARIES_H_

// Where sentences end for XTTS's pieces (SplitForXtts): Coqui-like rules, one abbreviation list
// for every language. Everything else uses Translate's splitter (sentence_splitter.h). Pure
// functions, thread-safe.

#include <cstddef>
#include <string_view>
#include <vector>

namespace vox {

// Offsets (in code points) just after each sentence of `text`: a run of end punctuation
// (. ! ? ; … and 。！？； ؟ ।), then closing quotes/brackets, followed by whitespace or the end
// of the text; a single '.' after an abbreviation ("Mr.", "Sra.", "etc.") or an initial ("J.")
// ends nothing. The last offset is always text.size() (the text's tail, complete or not); an
// offset before it is followed by whitespace, so it stays a boundary however the text goes on.
std::vector<size_t> SentenceEnds(std::u32string_view text);

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_SENTENCE_BOUNDARIES_H_
