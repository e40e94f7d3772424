#include "engines/core/whole_call.h"

#include <cstdint>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"

namespace vox {

absl::StatusOr<std::vector<TranslationOutput>> TranslateByStepping(
    TranslationStepper& stepper, const std::vector<std::string>& texts, const std::string& source,
    const std::string& target, const TranslationParams& params, const StopCheck& stop) {
  std::vector<uint64_t> joined;
  absl::Cleanup leave = [&] {
    for (uint64_t id : joined) stepper.Leave(id);
  };
  for (size_t i = 0; i < texts.size(); ++i) {
    if (absl::Status s = stepper.Join(i, texts[i], source, target, params); !s.ok()) return s;
    joined.push_back(i);
  }
  std::vector<TranslationOutput> out(texts.size());
  std::vector<uint64_t> active = joined;
  while (!active.empty()) {
    if (stop) {
      if (absl::Status s = stop(); !s.ok()) return s;
    }
    const std::vector<TranslationStepResult> results = stepper.Step(active);
    std::vector<uint64_t> still;
    for (size_t k = 0; k < active.size(); ++k) {
      const TranslationStepResult& r = results[k];
      if (!r.status.ok()) return r.status;
      if (r.finished) {
        out[active[k]] = r.output;
      } else {
        still.push_back(active[k]);
      }
    }
    active = std::move(still);
  }
  return out;
}

absl::StatusOr<SynthesisStats> SynthesizeByStepping(SpeechStepper& stepper,
                                                    const SynthesisRequest& request,
                                                    const AudioSink& sink, const StopCheck& stop) {
  constexpr uint64_t kId = 0;
  if (absl::Status s = stepper.Join(kId, request); !s.ok()) return s;
  absl::Cleanup leave = [&] { stepper.Leave(kId); };
  const uint64_t active[] = {kId};
  while (true) {
    if (stop) {
      if (absl::Status s = stop(); !s.ok()) return s;
    }
    std::vector<SpeechStepResult> results = stepper.Step(active);
    SpeechStepResult& r = results[0];
    if (!r.status.ok()) return r.status;
    if (!r.audio.empty() && !sink(r.audio)) {
      return absl::CancelledError("audio consumer went away");
    }
    if (r.finished) return r.stats;
  }
}

}  // namespace vox
