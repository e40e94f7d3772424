#include "server/engine_step_models.h"

#include <algorithm>
#include <exception>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace vox {
namespace {

absl::Status Poll(const StopCheck& stop) { return stop ? stop() : absl::OkStatus(); }

// Runs `f` (returning absl::Status or StatusOr), turning an escaping exception into INTERNAL.
template <typename R, typename F>
R Guarded(F f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("engine threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("engine threw an unknown exception");
  }
}

class TranslationAdapter : public TranslationStepModel {
 public:
  TranslationAdapter(TranslationEngine* engine, WorkerInit init)
      : engine_(engine), init_(std::move(init)) {}

  absl::Status Join(TicketId id, TranslationSequence& seq) override {
    if (!initialized_) {
      initialized_ = true;
      if (init_) init_();
      stepper_ = engine_->NewStepper();
    }
    if (seq.on_join) seq.on_join();
    if (stepper_ != nullptr) {
      absl::Status s = Guarded<absl::Status>(
          [&] { return stepper_->Join(id, seq.text, seq.source, seq.target, seq.params); });
      if (!s.ok()) return s;
    }
    seqs_.emplace(id, std::move(seq));
    return absl::OkStatus();
  }

  std::vector<StepResult<TranslationOutput>> Step(absl::Span<const TicketId> active) override {
    if (stepper_ != nullptr) return StepWithStepper(active);
    return StepWholeCalls(active);
  }

  void Leave(TicketId id) override {
    if (stepper_ != nullptr) stepper_->Leave(id);
    seqs_.erase(id);
  }

 private:
  std::vector<StepResult<TranslationOutput>> StepWithStepper(absl::Span<const TicketId> active) {
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

  // One Translate call per (source, target, params) group; every sequence finishes.
  std::vector<StepResult<TranslationOutput>> StepWholeCalls(absl::Span<const TicketId> active) {
    std::vector<StepResult<TranslationOutput>> out(active.size());
    std::vector<std::vector<size_t>> groups;
    for (size_t i = 0; i < active.size(); ++i) {
      const TranslationSequence& s = seqs_.at(active[i]);
      bool placed = false;
      for (auto& g : groups) {
        const TranslationSequence& head = seqs_.at(active[g[0]]);
        if (SameCall(head, s)) {
          g.push_back(i);
          placed = true;
          break;
        }
      }
      if (!placed) groups.push_back({i});
    }
    for (const auto& g : groups) RunGroup(active, g, &out);
    return out;
  }

  static bool SameCall(const TranslationSequence& a, const TranslationSequence& b) {
    return a.source == b.source && a.target == b.target &&
           std::tie(a.params.beam_size, a.params.length_penalty, a.params.max_length,
                    a.params.fixed_length) == std::tie(b.params.beam_size, b.params.length_penalty,
                                                       b.params.max_length, b.params.fixed_length);
  }

  void RunGroup(absl::Span<const TicketId> active, const std::vector<size_t>& group,
                std::vector<StepResult<TranslationOutput>>* out) {
    std::vector<const TranslationSequence*> seqs;
    for (size_t i : group) seqs.push_back(&seqs_.at(active[i]));
    absl::StatusOr<std::vector<TranslationOutput>> outputs = Call(seqs);
    if (outputs.ok()) {
      for (size_t k = 0; k < group.size(); ++k) {
        (*out)[group[k]].finished = true;
        (*out)[group[k]].output = std::move((*outputs)[k]);
      }
      return;
    }
    // Every sequence asked to stop: each ends with its own reason.
    bool all_stopped = true;
    for (const TranslationSequence* s : seqs) all_stopped = all_stopped && !Poll(s->stop).ok();
    if (all_stopped || group.size() == 1) {
      for (size_t k = 0; k < group.size(); ++k) {
        absl::Status own = Poll(seqs[k]->stop);
        (*out)[group[k]].status = own.ok() ? outputs.status() : own;
      }
      return;
    }
    // The merged call failed: run each text alone so one bad text fails only its own sequence.
    for (size_t k = 0; k < group.size(); ++k) {
      absl::StatusOr<std::vector<TranslationOutput>> alone = Call({seqs[k]});
      if (alone.ok()) {
        (*out)[group[k]].finished = true;
        (*out)[group[k]].output = std::move(alone->front());
      } else {
        absl::Status own = Poll(seqs[k]->stop);
        (*out)[group[k]].status = own.ok() ? alone.status() : own;
      }
    }
  }

  absl::StatusOr<std::vector<TranslationOutput>> Call(
      const std::vector<const TranslationSequence*>& seqs) {
    std::vector<std::string> texts;
    for (const TranslationSequence* s : seqs) texts.push_back(s->text);
    StopCheck stop = [&seqs]() -> absl::Status {
      absl::Status first;
      for (const TranslationSequence* s : seqs) {
        absl::Status st = Poll(s->stop);
        if (st.ok()) return st;
        if (first.ok()) first = st;
      }
      return first;
    };
    const TranslationSequence& head = *seqs.front();
    auto result = Guarded<absl::StatusOr<std::vector<TranslationOutput>>>(
        [&] { return engine_->Translate(texts, head.source, head.target, head.params, stop); });
    if (result.ok() && result->size() != texts.size()) {
      return absl::InternalError(absl::StrCat("engine returned ", result->size(),
                                              " outputs for ", texts.size(), " texts"));
    }
    return result;
  }

  TranslationEngine* const engine_;
  WorkerInit init_;
  bool initialized_ = false;
  std::unique_ptr<TranslationStepper> stepper_;
  absl::flat_hash_map<TicketId, TranslationSequence> seqs_;
};

class SpeechAdapter : public SpeechStepModel {
 public:
  SpeechAdapter(SpeechEngine* engine, SpeechStepModelOptions options, WorkerInit init)
      : engine_(engine), options_(options), init_(std::move(init)) {}

  absl::Status Join(TicketId id, SpeechSequence& seq) override {
    if (!initialized_) {
      initialized_ = true;
      if (init_) init_();
      stepper_ = engine_->NewStepper();
    }
    if (seq.on_join) seq.on_join();
    if (stepper_ != nullptr) {
      absl::Status s = Guarded<absl::Status>([&] { return stepper_->Join(id, seq.request); });
      if (!s.ok()) return s;
    }
    State& state = seqs_[id];
    state.request = std::move(seq.request);
    state.stop = std::move(seq.stop);
    return absl::OkStatus();
  }

  std::vector<StepResult<SpeechChunk>> Step(absl::Span<const TicketId> active) override {
    if (stepper_ != nullptr) return StepWithStepper(active);
    std::vector<StepResult<SpeechChunk>> out(active.size());
    for (size_t i = 0; i < active.size(); ++i) out[i] = StepBuffered(seqs_.at(active[i]));
    return out;
  }

  void Leave(TicketId id) override {
    if (stepper_ != nullptr) stepper_->Leave(id);
    seqs_.erase(id);
  }

 private:
  struct State {
    SynthesisRequest request;
    StopCheck stop;
    bool synthesized = false;
    std::vector<float> audio;
    size_t emitted = 0;
    SynthesisStats stats;
  };

  std::vector<StepResult<SpeechChunk>> StepWithStepper(absl::Span<const TicketId> active) {
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

  StepResult<SpeechChunk> StepBuffered(State& s) {
    StepResult<SpeechChunk> result;
    if (!s.synthesized) {
      s.synthesized = true;
      const size_t limit = static_cast<size_t>(options_.max_buffered_seconds *
                                               std::max(1, engine_->sample_rate()));
      bool overflow = false;
      AudioSink sink = [&](absl::Span<const float> samples) {
        if (s.audio.size() + samples.size() > limit) {
          overflow = true;
          return false;
        }
        s.audio.insert(s.audio.end(), samples.begin(), samples.end());
        return true;
      };
      absl::StatusOr<SynthesisStats> stats = Guarded<absl::StatusOr<SynthesisStats>>(
          [&] { return engine_->Synthesize(s.request, sink, s.stop); });
      if (absl::Status own = Poll(s.stop); !own.ok()) {
        result.status = own;
        return result;
      }
      if (overflow) {
        result.status = absl::ResourceExhaustedError(absl::StrCat(
            "synthesis produced more than ", options_.max_buffered_seconds,
            " s of audio (the server's limit for engine '", engine_->info().name, "')"));
        return result;
      }
      if (!stats.ok()) {
        result.status = stats.status();
        return result;
      }
      s.stats = std::move(*stats);
    }
    const size_t chunk = static_cast<size_t>(
        std::max<int64_t>(1, static_cast<int64_t>(engine_->sample_rate()) * options_.chunk_ms / 1000));
    const size_t n = std::min(chunk, s.audio.size() - s.emitted);
    SpeechChunk out;
    out.samples.assign(s.audio.begin() + static_cast<std::ptrdiff_t>(s.emitted),
                       s.audio.begin() + static_cast<std::ptrdiff_t>(s.emitted + n));
    s.emitted += n;
    if (s.emitted == s.audio.size()) {
      result.finished = true;
      out.stats = s.stats;
      std::vector<float>().swap(s.audio);
      s.emitted = 0;
    }
    result.output = std::move(out);
    return result;
  }

  SpeechEngine* const engine_;
  const SpeechStepModelOptions options_;
  WorkerInit init_;
  bool initialized_ = false;
  std::unique_ptr<SpeechStepper> stepper_;
  absl::flat_hash_map<TicketId, State> seqs_;
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
