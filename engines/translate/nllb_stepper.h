#ifndef VOX_ENGINES_TRANSLATE_NLLB_STEPPER_H_
#define VOX_ENGINES_TRANSLATE_NLLB_STEPPER_H_

// Internal to engines/translate: the NLLB stepper, the engine's only decode path (continuous
// batching over decode_step; NllbEngine::NewStepper documents its contract, and Translate is
// TranslateByStepping over it). It borrows the model (must not outlive it) and belongs to one
// thread, like the engine that made it.

#include <memory>

#include "absl/status/status.h"
#include "engines/core/translation_engine.h"
#include "engines/translate/nllb_engine.h"

namespace vox {

struct NllbModel;

std::unique_ptr<TranslationStepper> NewNllbStepper(const NllbModel* model, NllbEngine::HeldRows held);

// INVALID_ARGUMENT for a beam size, length penalty or fixed_length the engine cannot honour.
absl::Status CheckNllbParams(const TranslationParams& params);

}  // namespace vox

#endif  // VOX_ENGINES_TRANSLATE_NLLB_STEPPER_H_
