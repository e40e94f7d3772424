#ifndef VOX_ENGINES_CORE_WHOLE_CALL_H_
#define VOX_ENGINES_CORE_WHOLE_CALL_H_

// Whole calls over the step API: the one way an engine with a stepper translates or synthesizes
// a whole request (its Translate/Synthesize, tests, benchmarks, tools). Joins, steps until every
// sequence has finished, leaves. Same thread rules as the stepper: the engine's owner thread.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/core/speech_engine.h"
#include "engines/core/translation_engine.h"

namespace vox {

// Joins one sequence per text (ids 0..n-1; the stepper must hold no other sequences with those
// ids), steps them together until all finish, and returns the outputs in input order. Stops at
// the first failure (that status) or when `stop` (may be empty; polled before every step) says
// so. Every joined sequence is left before returning.
absl::StatusOr<std::vector<TranslationOutput>> TranslateByStepping(
    TranslationStepper& stepper, const std::vector<std::string>& texts, const std::string& source,
    const std::string& target, const TranslationParams& params, const StopCheck& stop);

// Joins `request` as one sequence, steps it until it finishes, and passes its audio to `sink`
// as it comes. `stop` is polled before every step; a sink returning false ends the call with
// CANCELLED. The sequence is left before returning.
absl::StatusOr<SynthesisStats> SynthesizeByStepping(SpeechStepper& stepper,
                                                    const SynthesisRequest& request,
                                                    const AudioSink& sink, const StopCheck& stop);

}  // namespace vox

#endif  // VOX_ENGINES_CORE_WHOLE_CALL_H_
