#ifndef VOX_SERVER_SCHEDULER_TRANSLATION_BATCHING_H_
#define VOX_SERVER_SCHEDULER_TRANSLATION_BATCHING_H_

#include <string>
#include <vector>

#include "engines/core/translation_engine.h"
#include "server/scheduler/dynamic_batcher.h"

namespace vox {

// One Translate call as the scheduler sees it (already validated by the engine's Validate).
struct TranslateJob {
  std::vector<std::string> texts;
  std::string source;  // NLLB codes
  std::string target;
  TranslationParams params;
};

using TranslateBatcher = DynamicBatcher<TranslateJob, std::vector<TranslationOutput>>;

// A run function that batches whole Translate calls: the jobs of a batch that share source,
// target and params are merged into one TranslationEngine::Translate call (their texts
// concatenated in job order, at most `max_texts_per_call` texts per call, never splitting a job)
// and the outputs are split back per job. Jobs that differ run in separate calls.
//
// `engines[r]` is used only by replica r's worker (engines.size() must equal the batcher's
// replicas); the engines are not owned and must outlive the batcher.
// Stopping: the merged call's StopCheck stops only when every job in it should stop; a job that
// was cancelled or expired meanwhile still gets its own CANCELLED / DEADLINE_EXCEEDED, never the
// others' outputs. An engine error goes to every job of that call, and only to them.
TranslateBatcher::RunFn MakeTranslateRunFn(std::vector<TranslationEngine*> engines,
                                           int max_texts_per_call = 64);

}  // namespace vox

#endif  // VOX_SERVER_SCHEDULER_TRANSLATION_BATCHING_H_
