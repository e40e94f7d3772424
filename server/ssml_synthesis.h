#ifndef VOX_SERVER_SSML_SYNTHESIS_H_
#define VOX_SERVER_SSML_SYNTHESIS_H_

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/speech_service.h"
#include "server/utterance_queue.h"

namespace vox {

// The utterances that speak an SSML document (Synthesize's text when LooksLikeSsml) with the
// routed request's engine, voice and options:
// - an engine that speaks_ssml() (espeak-ng) gets ONE utterance: the document rendered again
//   from the parsed segments as SSML it reads natively (<break time>, <prosody rate>, <voice
//   xml:lang> for language changes, <say-as interpret-as="characters">), with cardinal, ordinal,
//   date and telephone say-as expanded to words by vox (espeak-ng lacks them);
// - any other engine (XTTS) gets one plain-text utterance per text segment: say-as expanded to
//   words, rate as SynthesisParams::speed (times the request's speed), the segment's language,
//   and each <break> as silence before the next utterance (a trailing one: a pause alone).
// Rates are clamped to 0.5..2.5 (the range every engine takes). xml:lang may be an NLLB code or
// a BCP 47 tag ("es", "en-US", "zh-CN") mapped through the language table.
// Errors (INVALID_ARGUMENT): malformed SSML (with its position), an unknown xml:lang, a document
// with nothing to say, a segment the engine refuses (its Validate: language, length).
// Thread-safe; runs no model.
absl::StatusOr<std::vector<Utterance>> SsmlUtterances(const RoutedSynthesis& routed,
                                                      std::string_view document);

}  // namespace vox

#endif  // VOX_SERVER_SSML_SYNTHESIS_H_
