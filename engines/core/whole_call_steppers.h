#ifndef VOX_ENGINES_CORE_WHOLE_CALL_STEPPERS_H_
#define VOX_ENGINES_CORE_WHOLE_CALL_STEPPERS_H_

// Steppers for engines that only run whole calls (Apertium, espeak-ng), so that the server
// drives every engine through one step API. Each borrows its engine (must outlive it) and, like
// every stepper, belongs to the engine's owner thread. Engines throwing are caught: INTERNAL.
//
// WholeCallTranslationStepper: each Step() runs engine->Translate over the listed sequences
// grouped by (source, target, params), and every sequence finishes in that step. A merged call
// stops only when every sequence in it says stop; a failed merged call is run again text by
// text, so one bad text fails only its own sequence.
//
// BufferedSpeechStepper: a sequence's first Step() synthesizes the whole request into its own
// buffer (at most max_buffered_seconds of audio, else RESOURCE_EXHAUSTED), and every Step()
// returns chunk_ms of it, so a paused (slow-reading) stream sits out steps as with any engine.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engines/core/speech_engine.h"
#include "engines/core/translation_engine.h"

namespace vox {

class WholeCallTranslationStepper : public TranslationStepper {
 public:
  explicit WholeCallTranslationStepper(TranslationEngine* engine) : engine_(engine) {}
  absl::Status Join(uint64_t id, const std::string& text, const std::string& source,
                    const std::string& target, const TranslationParams& params) override;
  // The sequence's own stop check, polled inside Translate (may be empty). Call after Join.
  void SetStopCheck(uint64_t id, StopCheck stop);
  std::vector<TranslationStepResult> Step(absl::Span<const uint64_t> active) override;
  void Leave(uint64_t id) override { seqs_.erase(id); }
  int size() const override { return static_cast<int>(seqs_.size()); }

 private:
  struct Seq {
    std::string text, source, target;
    TranslationParams params;
    StopCheck stop;
  };
  void RunGroup(absl::Span<const uint64_t> active, const std::vector<size_t>& group,
                std::vector<TranslationStepResult>* out);
  absl::StatusOr<std::vector<TranslationOutput>> Call(const std::vector<const Seq*>& seqs);

  TranslationEngine* const engine_;
  absl::flat_hash_map<uint64_t, Seq> seqs_;
};

class BufferedSpeechStepper : public SpeechStepper {
 public:
  BufferedSpeechStepper(SpeechEngine* engine, int chunk_ms, double max_buffered_seconds)
      : engine_(engine), chunk_ms_(chunk_ms), max_buffered_seconds_(max_buffered_seconds) {}
  absl::Status Join(uint64_t id, const SynthesisRequest& request) override;
  // As WholeCallTranslationStepper::SetStopCheck.
  void SetStopCheck(uint64_t id, StopCheck stop);
  std::vector<SpeechStepResult> Step(absl::Span<const uint64_t> active) override;
  void Leave(uint64_t id) override { seqs_.erase(id); }
  int size() const override { return static_cast<int>(seqs_.size()); }

 private:
  struct Seq {
    SynthesisRequest request;
    StopCheck stop;
    bool synthesized = false;
    std::vector<float> audio;
    size_t emitted = 0;
    SynthesisStats stats;
  };
  SpeechStepResult StepOne(Seq& s);

  SpeechEngine* const engine_;
  const int chunk_ms_;
  const double max_buffered_seconds_;
  absl::flat_hash_map<uint64_t, Seq> seqs_;
};

}  // namespace vox

#endif  // VOX_ENGINES_CORE_WHOLE_CALL_STEPPERS_H_
