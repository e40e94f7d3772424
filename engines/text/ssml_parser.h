#ifndef VOX_ENGINES_TEXT_SSML_PARSER_H_
#define VOX_ENGINES_TEXT_SSML_PARSER_H_

// A strict parser for the SSML subset Synthesize speaks (docs/api.md, "SSML"): well-formed XML
// (elements, attributes, the five named entities, character references, comments, CDATA, an
// optional <?xml?> declaration; no DOCTYPE) with a <speak> root. Known elements: <break>,
// <prosody rate>, <say-as interpret-as>, <sub alias>, <p>, <s>, <lang xml:lang>; every other
// element is ignored and its text kept, as the SSML specification asks. Pure functions,
// thread-safe; linear in the document's length.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vox {

// One piece of a document in speaking order: text with the settings in effect, or a pause.
struct SsmlSegment {
  enum class Kind { kText, kBreak };
  Kind kind = Kind::kText;
  // kText: the words (entities decoded, <sub> replaced by its alias, runs of whitespace collapsed
  // to one space, trimmed; never empty).
  std::string text;
  std::string say_as;         // innermost <say-as interpret-as>, "" outside any
  std::string say_as_format;  // its format attribute ("mdy", "dmy", "ymd" for dates), or ""
  double rate = 1.0;          // product of the enclosing <prosody rate> factors (1 = default)
  std::string language;       // innermost xml:lang (speak, p, s, lang), "" = the request's
  int pause_ms = 0;           // kBreak: the pause
};

// Segment boundaries: text is never merged across <s>, <p> or <break>, and text whose say-as,
// rate or language differ is split; otherwise neighbouring text (unknown elements, <sub>
// aliases) forms one segment.

// True when `text` is meant as SSML: its first non-whitespace characters are "<speak" or an
// XML declaration "<?xml".
bool LooksLikeSsml(std::string_view text);

// Parses `document`. Malformed input (not UTF-8, a NUL, bad nesting, an unknown entity, a
// missing required attribute, a bad <break time> or <prosody rate>, text outside <speak>, nesting
// deeper than 64) is INVALID_ARGUMENT "SSML: <what> at byte B (character C, line L, column K)",
// offsets counted from 0, line and column from 1.
//
// Values: <break time="250ms"|"1.5s"> (at most 10 s) or strength none|x-weak|weak|medium|strong|
// x-strong (0, 100, 200, 400, 700, 1000 ms; a bare <break/> is medium). <prosody rate>: x-slow
// 0.5, slow 0.75, medium|default 1, fast 1.25, x-fast 1.5, "N%" (N/100, N > 0), "+N%"/"-N%"
// (1 ± N/100, > 0) or a positive number; nested rates multiply.
absl::StatusOr<std::vector<SsmlSegment>> ParseSsml(std::string_view document);

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_SSML_PARSER_H_
