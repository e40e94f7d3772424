#include "engines/core/whole_call_steppers.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engines/core/engine_guard.h"

namespace vox {
namespace {

absl::Status Poll(const StopCheck& stop) { return stop ? stop() : absl::OkStatus(); }


absl::Status NotJoined(uint64_t id) {
  return absl::NotFoundError(absl::StrCat("sequence ", id, " has not joined"));
}

}  // namespace

absl::Status WholeCallTranslationStepper::Join(uint64_t id, const std::string& text,
                                               const std::string& source,
                                               const std::string& target,
                                               const TranslationParams& params) {
  if (!seqs_.emplace(id, Seq{text, source, target, params, nullptr}).second) {
    return absl::AlreadyExistsError(absl::StrCat("sequence ", id, " has already joined"));
  }
  return absl::OkStatus();
}

void WholeCallTranslationStepper::SetStopCheck(uint64_t id, StopCheck stop) {
  auto it = seqs_.find(id);
  if (it != seqs_.end()) it->second.stop = std::move(stop);
}

std::vector<TranslationStepResult> WholeCallTranslationStepper::Step(
    absl::Span<const uint64_t> active) {
  std::vector<TranslationStepResult> out(active.size());
  std::vector<std::vector<size_t>> groups;
  auto same_call = [](const Seq& a, const Seq& b) {
    return a.source == b.source && a.target == b.target &&
           std::tie(a.params.beam_size, a.params.length_penalty, a.params.max_length,
                    a.params.fixed_length) == std::tie(b.params.beam_size, b.params.length_penalty,
                                                       b.params.max_length, b.params.fixed_length);
  };
  for (size_t i = 0; i < active.size(); ++i) {
    auto it = seqs_.find(active[i]);
    if (it == seqs_.end()) {
      out[i].status = NotJoined(active[i]);
      continue;
    }
    bool placed = false;
    for (auto& g : groups) {
      if (same_call(seqs_.at(active[g[0]]), it->second)) {
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

void WholeCallTranslationStepper::RunGroup(absl::Span<const uint64_t> active,
                                           const std::vector<size_t>& group,
                                           std::vector<TranslationStepResult>* out) {
  std::vector<const Seq*> seqs;
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
  for (const Seq* s : seqs) all_stopped = all_stopped && !Poll(s->stop).ok();
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

absl::StatusOr<std::vector<TranslationOutput>> WholeCallTranslationStepper::Call(
    const std::vector<const Seq*>& seqs) {
  std::vector<std::string> texts;
  for (const Seq* s : seqs) texts.push_back(s->text);
  StopCheck stop = [&seqs]() -> absl::Status {
    absl::Status first;
    for (const Seq* s : seqs) {
      absl::Status st = Poll(s->stop);
      if (st.ok()) return st;
      if (first.ok()) first = st;
    }
    return first;
  };
  const Seq& head = *seqs.front();
  auto result = Guarded<absl::StatusOr<std::vector<TranslationOutput>>>(
      [&] { return engine_->Translate(texts, head.source, head.target, head.params, stop); });
  if (result.ok() && result->size() != texts.size()) {
    return absl::InternalError(absl::StrCat("engine returned ", result->size(), " outputs for ",
                                            texts.size(), " texts"));
  }
  return result;
}

absl::Status BufferedSpeechStepper::Join(uint64_t id, const SynthesisRequest& request) {
  Seq s;
  s.request = request;
  if (!seqs_.emplace(id, std::move(s)).second) {
    return absl::AlreadyExistsError(absl::StrCat("sequence ", id, " has already joined"));
  }
  return absl::OkStatus();
}

void BufferedSpeechStepper::SetStopCheck(uint64_t id, StopCheck stop) {
  auto it = seqs_.find(id);
  if (it != seqs_.end()) it->second.stop = std::move(stop);
}

std::vector<SpeechStepResult> BufferedSpeechStepper::Step(absl::Span<const uint64_t> active) {
  std::vector<SpeechStepResult> out(active.size());
  for (size_t i = 0; i < active.size(); ++i) {
    auto it = seqs_.find(active[i]);
    out[i] = it == seqs_.end() ? SpeechStepResult{NotJoined(active[i])} : StepOne(it->second);
  }
  return out;
}

SpeechStepResult BufferedSpeechStepper::StepOne(Seq& s) {
  SpeechStepResult result;
  if (!s.synthesized) {
    s.synthesized = true;
    const size_t limit =
        static_cast<size_t>(max_buffered_seconds_ * std::max(1, engine_->sample_rate()));
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
          "synthesis produced more than ", max_buffered_seconds_,
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
      std::max<int64_t>(1, static_cast<int64_t>(engine_->sample_rate()) * chunk_ms_ / 1000));
  const size_t n = std::min(chunk, s.audio.size() - s.emitted);
  result.audio.assign(s.audio.begin() + static_cast<std::ptrdiff_t>(s.emitted),
                      s.audio.begin() + static_cast<std::ptrdiff_t>(s.emitted + n));
  s.emitted += n;
  if (s.emitted == s.audio.size()) {
    result.finished = true;
    result.stats = s.stats;
    std::vector<float>().swap(s.audio);
    s.emitted = 0;
  }
  return result;
}

}  // namespace vox
