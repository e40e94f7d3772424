#ifndef VOX_SERVER_ENGINE_STEP_MODELS_H_
#define VOX_SERVER_ENGINE_STEP_MODELS_H_

// The StepModel adapters that put the engines behind ContinuousBatchers (server/scheduler): one
// adapter per engine replica, called only by that replica's worker thread.
//
// Each adapter drives one stepper, made on the worker thread at the first Join: the engine's own
// (NLLB, XTTS), or for an engine without one (NewStepper() returns nullptr: Apertium, espeak-ng)
// a whole-call stepper from engines/core/whole_call_steppers.h (Translate over the active
// sequences grouped by call; Synthesize into a bounded buffer emitted chunk_ms per step).
// Translation: a sequence is ONE text. Speech: a sequence produces audio chunks (SpeechChunk)
// through the batcher's on_output.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engines/core/speech_engine.h"
#include "engines/core/translation_engine.h"
#include "server/scheduler/continuous_batcher.h"

namespace vox {

// One text to translate (already validated by the engine's Validate).
struct TranslationSequence {
  std::string text;
  std::string source;  // NLLB codes
  std::string target;
  TranslationParams params;
  // Thread-safe; OK while the sequence should go on. Polled by whole-call engines (no stepper)
  // inside Translate; a merged call stops only when every sequence in it says stop. May be empty.
  StopCheck stop;
  // Called on the replica's worker thread when the sequence joins the running batch. Must be
  // quick. May be empty.
  std::function<void()> on_join;
};

using TranslationScheduler = ContinuousBatcher<TranslationSequence, TranslationOutput>;
using TranslationStepModel = StepModel<TranslationSequence, TranslationOutput>;

// One synthesis (already validated by the engine's Validate).
struct SpeechSequence {
  SynthesisRequest request;
  // As TranslationSequence::stop, for whole-request engines. May be empty.
  StopCheck stop;
  // Called on the replica's worker thread when the sequence joins, before the engine sees it
  // (its synthesis starts). Must be quick. May be empty.
  std::function<void()> on_join;
};

// Audio one step produced for one sequence: mono float samples at the engine's sample_rate().
struct SpeechChunk {
  std::vector<float> samples;
  // Set on the sequence's last output (which may carry no samples).
  std::optional<SynthesisStats> stats;
};

using SpeechScheduler = ContinuousBatcher<SpeechSequence, SpeechChunk>;
using SpeechStepModel = StepModel<SpeechSequence, SpeechChunk>;

// Runs once on the replica's worker thread before its first Join (per-thread settings such as
// LibTorch's intra-op threads). May be empty.
using WorkerInit = std::function<void()>;

// `engine` is borrowed (must outlive the adapter) and used only from the calling worker thread
// (its stepper is created there, at the first Join).
std::unique_ptr<TranslationStepModel> MakeTranslationStepModel(TranslationEngine* engine,
                                                               WorkerInit init = nullptr);

struct SpeechStepModelOptions {
  // Whole-request engines: the buffered audio is emitted in chunks of this length, one per step.
  int chunk_ms = 200;
  // Whole-request engines: a synthesis producing more audio than this ends RESOURCE_EXHAUSTED.
  double max_buffered_seconds = 600;
};

std::unique_ptr<SpeechStepModel> MakeSpeechStepModel(SpeechEngine* engine,
                                                     SpeechStepModelOptions options = {},
                                                     WorkerInit init = nullptr);

}  // namespace vox

#endif  // VOX_SERVER_ENGINE_STEP_MODELS_H_
