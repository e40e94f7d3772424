#include "server/engine_step_models.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engines/core/engine_guard.h"
#include "engines/core/whole_call_steppers.h"

namespace vox {
namespace {


class TranslationAdapter : public TranslationStepModel {
 public:
  TranslationAdapter(TranslationEngine* engine, WorkerInit init)
      : engine_(engine), init_(std::move(init)) {}

  absl::Status Join(TicketId id, TranslationSequence& seq) override {
    if (stepper_ == nullptr) {
      if (init_) init_();
      stepper_ = engine_->NewStepper();
      if (stepper_ == nullptr) {
        auto whole = std::make_unique<WholeCallTranslationStepper>(engine_);
        whole_calls_ = whole.get();
        stepper_ = std::move(whole);
      }
    }
    if (seq.on_join) seq.on_join();
    absl::Status s = Guarded<absl::Status>(
        [&] { return stepper_->Join(id, seq.text, seq.source, seq.target, seq.params); });
    if (s.ok() && whole_calls_ != nullptr) whole_calls_->SetStopCheck(id, std::move(seq.stop));
    return s;
  }

  std::vector<StepResult<TranslationOutput>> Step(absl::Span<const TicketId> active) override {
    std::vector<TranslationStepResult> results;
    absl::Status thrown = Guarded<absl::Status>([&] {
      results = stepper_->Step(active);
      return absl::OkStatus();
    });
    std::vector<StepResult<TranslationOutput>> out(active.size());
    if (thrown.ok() && results.size() != active.size()) {
      thrown = absl::InternalError(absl::StrCat("translation stepper returned ", results.size(),
                                                " results for ", active.size(), " sequences"));
    }
    for (size_t i = 0; i < active.size(); ++i) {
      if (!thrown.ok()) {
        out[i].status = thrown;
        continue;
      }
      out[i].status = std::move(results[i].status);
      if (out[i].status.ok() && results[i].finished) {
        out[i].finished = true;
        out[i].output = std::move(results[i].output);
      }
    }
    return out;
  }

  void Leave(TicketId id) override {
    if (stepper_ != nullptr) stepper_->Leave(id);
  }

 private:
  TranslationEngine* const engine_;
  WorkerInit init_;
  std::unique_ptr<TranslationStepper> stepper_;        // made on the worker thread
  WholeCallTranslationStepper* whole_calls_ = nullptr;  // stepper_, for engines without one
};

class SpeechAdapter : public SpeechStepModel {
 public:
  SpeechAdapter(SpeechEngine* engine, SpeechStepModelOptions options, WorkerInit init)
      : engine_(engine), options_(options), init_(std::move(init)) {}

  absl::Status Join(TicketId id, SpeechSequence& seq) override {
    if (stepper_ == nullptr) {
      if (init_) init_();
      stepper_ = engine_->NewStepper();
      if (stepper_ == nullptr) {
        auto buffered = std::make_unique<BufferedSpeechStepper>(engine_, options_.chunk_ms,
                                                                options_.max_buffered_seconds);
        buffered_ = buffered.get();
        stepper_ = std::move(buffered);
      }
    }
    if (seq.on_join) seq.on_join();
    absl::Status s = Guarded<absl::Status>([&] { return stepper_->Join(id, seq.request); });
    if (s.ok() && buffered_ != nullptr) buffered_->SetStopCheck(id, std::move(seq.stop));
    return s;
  }

  std::vector<StepResult<SpeechChunk>> Step(absl::Span<const TicketId> active) override {
    std::vector<SpeechStepResult> results;
    absl::Status thrown = Guarded<absl::Status>([&] {
      results = stepper_->Step(active);
      return absl::OkStatus();
    });
    if (thrown.ok() && results.size() != active.size()) {
      thrown = absl::InternalError(absl::StrCat("speech stepper returned ", results.size(),
                                                " results for ", active.size(), " sequences"));
    }
    std::vector<StepResult<SpeechChunk>> out(active.size());
    for (size_t i = 0; i < active.size(); ++i) {
      if (!thrown.ok()) {
        out[i].status = thrown;
        continue;
      }
      SpeechStepResult& r = results[i];
      out[i].status = std::move(r.status);
      if (!out[i].status.ok()) continue;
      out[i].finished = r.finished;
      if (!r.audio.empty() || r.finished) {
        SpeechChunk chunk;
        chunk.samples = std::move(r.audio);
        if (r.finished) chunk.stats = std::move(r.stats);
        out[i].output = std::move(chunk);
      }
    }
    return out;
  }

  void Leave(TicketId id) override {
    if (stepper_ != nullptr) stepper_->Leave(id);
  }

 private:
  SpeechEngine* const engine_;
  const SpeechStepModelOptions options_;
  WorkerInit init_;
  std::unique_ptr<SpeechStepper> stepper_;        // made on the worker thread
  BufferedSpeechStepper* buffered_ = nullptr;     // stepper_, for engines without one
};

}  // namespace

std::unique_ptr<TranslationStepModel> MakeTranslationStepModel(TranslationEngine* engine,
                                                               WorkerInit init) {
  return std::make_unique<TranslationAdapter>(engine, std::move(init));
}

std::unique_ptr<SpeechStepModel> MakeSpeechStepModel(SpeechEngine* engine,
                                                     SpeechStepModelOptions options,
                                                     WorkerInit init) {
  return std::make_unique<SpeechAdapter>(engine, options, std::move(init));
}

}  // namespace vox
