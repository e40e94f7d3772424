#ifndef VOX_TESTS_SERVER_FAKE_ENGINES_H_
#define VOX_TESTS_SERVER_FAKE_ENGINES_H_

// Test doubles for the engine interfaces. Behaviour is driven by the text:
//   "fail"   -> Translate returns an UNKNOWN-coded error (an engine failure)
//   "throw"  -> Translate throws std::runtime_error
//   "block"  -> Translate waits until Release() or until its StopCheck says stop, and returns
//               the StopCheck's status in the latter case
//   anything longer than max_chars -> Validate says it is too long
// Other texts translate to "<target>:" + reversed text, with one token id per character; a text
// that starts with '=' translates to "<target>:" + the text as it is (a model that copies, e.g.
// protected-term placeholders).
//
// EnableStepper() gives an engine a step API (NewStepper), as NLLB and XTTS have: a translation
// sequence advances one character per step and finishes with the same output as Translate;
// "block" never finishes (it steps until it leaves), "fail" fails at its first step. A speech
// sequence produces one 0.1 s chunk per step (5, or 300 for "long"; "block" never finishes).
// Without EnableStepper() NewStepper() returns nullptr and the server runs whole calls.
//
// EnableCloning(id) makes a FakeSpeechEngine clone voices (voice_model_id() == id) by a
// deterministic function of the clips (FakeClone); a cloned voice's synthesis records the voice
// it got (cloned_voices_seen) and reports its name as the voice used.

#include <algorithm>
#include <cmath>
#include <atomic>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engines/core/speech_engine.h"
#include "engines/core/translation_engine.h"

namespace vox::testing {

// The fakes' translation of an ordinary text (see above).
inline std::string FakeTranslation(const std::string& target, const std::string& text) {
  if (!text.empty() && text[0] == '=') return target + ":" + text;
  return target + ":" + std::string(text.rbegin(), text.rend());
}

class FakeTranslationEngine : public TranslationEngine {
 public:
  FakeTranslationEngine(std::string name, std::vector<std::string> languages,
                        std::vector<std::pair<std::string, std::string>> pairs, bool fallback = false,
                        size_t max_chars = 40)
      : pairs_(std::move(pairs)), max_chars_(max_chars) {
    info_.name = std::move(name);
    info_.kind = "translation";
    info_.architecture = "fake";
    info_.device = "cpu";
    info_.dtype = "float32";
    info_.path = "/fake/" + info_.name;
    info_.fallback = fallback;
    info_.languages = std::move(languages);
  }

  const ModelInfo& info() const override { return info_; }

  // A fresh fake with the same configuration (nothing to share: the fake holds no weights).
  absl::StatusOr<std::unique_ptr<TranslationEngine>> NewReplica() const override {
    auto r = std::make_unique<FakeTranslationEngine>(info_.name, info_.languages, pairs_,
                                                     info_.fallback, max_chars_);
    r->stepper_enabled_ = stepper_enabled_;
    return std::unique_ptr<TranslationEngine>(std::move(r));
  }

  bool SupportsPair(const std::string& s, const std::string& t) const override {
    return std::find(pairs_.begin(), pairs_.end(), std::make_pair(s, t)) != pairs_.end();
  }

  absl::Status Validate(const std::vector<std::string>& texts, const std::string&,
                        const std::string&, const TranslationParams& params) const override {
    for (size_t i = 0; i < texts.size(); ++i) {
      if (texts[i].size() > max_chars_) {
        return absl::InvalidArgumentError(absl::StrCat("texts[", i, "] is too long: ",
                                                       texts[i].size(), " characters, at most ",
                                                       max_chars_));
      }
    }
    if (params.beam_size > 8) {
      return absl::InvalidArgumentError(
          absl::StrCat("beam size ", params.beam_size, " is larger than 8"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TranslationOutput>> Translate(
      const std::vector<std::string>& texts, const std::string&, const std::string& target,
      const TranslationParams& params, const StopCheck& stop) override {
    calls_.fetch_add(1);
    last_params_ = params;
    std::vector<TranslationOutput> out;
    for (const std::string& text : texts) {
      if (text == "fail") return absl::DataLossError("tensor exploded");
      if (text == "throw") throw std::runtime_error("c10::Error imitation");
      if (text == "block") {
        {
          absl::MutexLock lock(&mu_);
          if (!running_.HasBeenNotified()) running_.Notify();
        }
        while (!released_.HasBeenNotified()) {
          if (stop) {
            absl::Status s = stop();
            if (!s.ok()) {
              absl::MutexLock lock(&mu_);
              stopped_with_ = s;
              if (!stopped_.HasBeenNotified()) stopped_.Notify();
              return s;
            }
          }
          released_.WaitForNotificationWithTimeout(absl::Milliseconds(2));
        }
      }
      TranslationOutput o;
      o.text = FakeTranslation(target, text);
      for (char c : text) o.token_ids.push_back(static_cast<unsigned char>(c));
      out.push_back(std::move(o));
    }
    return out;
  }

  // Lets every "block" text finish.
  void Release() {
    absl::MutexLock lock(&mu_);
    if (!released_.HasBeenNotified()) released_.Notify();
  }
  // Set once a "block" text is being translated.
  absl::Notification& running() { return running_; }
  // Set once a "block" text stopped because of its StopCheck; stopped_with() is that status.
  absl::Notification& stopped() { return stopped_; }
  absl::Status stopped_with() {
    absl::MutexLock lock(&mu_);
    return stopped_with_;
  }
  int calls() const { return calls_.load(); }
  TranslationParams last_params() const { return last_params_; }

  // --- Step API (see the top of this file).
  void EnableStepper() { stepper_enabled_ = true; }
  std::unique_ptr<TranslationStepper> NewStepper() override;
  // Texts in the order their sequences joined a stepper.
  std::vector<std::string> joined() {
    absl::MutexLock lock(&mu_);
    return joined_;
  }
  // Decoder steps run (over any number of sequences), and the largest batch one step covered.
  int steps() {
    absl::MutexLock lock(&mu_);
    return steps_;
  }
  int max_step_batch() {
    absl::MutexLock lock(&mu_);
    return max_step_batch_;
  }
  // Sequences that left before finishing (cancelled, expired, failed).
  int left_unfinished() {
    absl::MutexLock lock(&mu_);
    return left_unfinished_;
  }

 private:
  friend class FakeTranslationStepper;
  bool stepper_enabled_ = false;
  std::vector<std::string> joined_;
  int steps_ = 0;
  int max_step_batch_ = 0;
  int left_unfinished_ = 0;
  ModelInfo info_;
  std::vector<std::pair<std::string, std::string>> pairs_;
  size_t max_chars_;
  std::atomic<int> calls_{0};
  TranslationParams last_params_;
  absl::Notification running_, released_, stopped_;
  absl::Mutex mu_;
  absl::Status stopped_with_;
};

class FakeTranslationStepper : public TranslationStepper {
 public:
  explicit FakeTranslationStepper(FakeTranslationEngine* engine) : engine_(engine) {}
  absl::Status Join(uint64_t id, const std::string& text, const std::string&,
                    const std::string& target, const TranslationParams&) override {
    seqs_[id] = Seq{text, target, 0};
    absl::MutexLock lock(&engine_->mu_);
    engine_->joined_.push_back(text);
    return absl::OkStatus();
  }
  std::vector<TranslationStepResult> Step(absl::Span<const uint64_t> active) override {
    {
      absl::MutexLock lock(&engine_->mu_);
      ++engine_->steps_;
      engine_->max_step_batch_ =
          std::max(engine_->max_step_batch_, static_cast<int>(active.size()));
    }
    std::vector<TranslationStepResult> out;
    bool blocking = false;
    for (uint64_t id : active) {
      Seq& seq = seqs_.at(id);
      TranslationStepResult r;
      if (seq.text == "fail") {
        r.status = absl::DataLossError("tensor exploded");
      } else if (seq.text == "block") {
        blocking = true;  // steps until it leaves
      } else if (++seq.pos >= seq.text.size()) {
        r.finished = true;
        seq.finished = true;
        r.output.text = FakeTranslation(seq.target, seq.text);
        for (char c : seq.text) r.output.token_ids.push_back(static_cast<unsigned char>(c));
      }
      out.push_back(std::move(r));
    }
    // Keeps a never-ending sequence from spinning a core; not a timing device.
    if (blocking) absl::SleepFor(absl::Milliseconds(1));
    return out;
  }
  void Leave(uint64_t id) override {
    auto it = seqs_.find(id);
    if (it == seqs_.end()) return;
    if (!it->second.finished) {
      absl::MutexLock lock(&engine_->mu_);
      ++engine_->left_unfinished_;
    }
    seqs_.erase(it);
  }
  int size() const override { return static_cast<int>(seqs_.size()); }

 private:
  struct Seq {
    std::string text;
    std::string target;
    size_t pos = 0;
    bool finished = false;
  };
  FakeTranslationEngine* const engine_;
  std::map<uint64_t, Seq> seqs_;
};

inline std::unique_ptr<TranslationStepper> FakeTranslationEngine::NewStepper() {
  if (!stepper_enabled_) return nullptr;
  return std::make_unique<FakeTranslationStepper>(this);
}

class FakeSpeechEngine : public SpeechEngine {
 public:
  FakeSpeechEngine(std::string name, std::vector<VoiceInfo> voices) : voices_(std::move(voices)) {
    info_.name = std::move(name);
    info_.kind = "speech";
    info_.architecture = "fake-speech";
    info_.device = "cpu";
    info_.dtype = "n/a";
    for (const VoiceInfo& v : voices_) {
      for (const std::string& l : v.languages) {
        if (std::find(info_.languages.begin(), info_.languages.end(), l) ==
            info_.languages.end()) {
          info_.languages.push_back(l);
        }
      }
    }
  }
  const ModelInfo& info() const override { return info_; }
  void Refuse(const std::string& language, const std::string& why) {
    info_.refused_languages[language] = why;
  }
  absl::StatusOr<std::unique_ptr<SpeechEngine>> NewReplica() const override {
    auto r = std::make_unique<FakeSpeechEngine>(info_.name, voices_);
    r->stepper_enabled_ = stepper_enabled_;
    r->clone_id_ = clone_id_;
    return std::unique_ptr<SpeechEngine>(std::move(r));
  }
  int sample_rate() const override { return 22050; }
  const std::vector<VoiceInfo>& voices() const override { return voices_; }
  absl::Status Validate(const SynthesisRequest&) const override { return absl::OkStatus(); }

  // --- Cloning (see the top of this file).
  void EnableCloning(std::string model_id) { clone_id_ = std::move(model_id); }
  std::string voice_model_id() const override { return clone_id_; }
  absl::StatusOr<ClonedVoice> CloneVoice(absl::Span<const ReferenceClip> clips) const override {
    if (clone_id_.empty()) return SpeechEngine::CloneVoice(clips);
    return FakeClone(clone_id_, clips);
  }
  // 2 x 3 latents: per row, the clip count, the total seconds and the mean absolute sample;
  // the embedding: the first clip's rate and sample count.
  static ClonedVoice FakeClone(const std::string& id, absl::Span<const ReferenceClip> clips) {
    ClonedVoice v;
    v.model_id = id;
    v.cond_rows = 2;
    v.cond_dim = 3;
    double seconds = 0, sum = 0, n = 0;
    for (const ReferenceClip& c : clips) {
      seconds += static_cast<double>(c.samples.size()) / c.sample_rate;
      for (float x : c.samples) sum += std::fabs(x);
      n += static_cast<double>(c.samples.size());
    }
    for (int r = 0; r < 2; ++r) {
      v.gpt_cond_latent.push_back(static_cast<float>(clips.size()));
      v.gpt_cond_latent.push_back(static_cast<float>(seconds));
      v.gpt_cond_latent.push_back(static_cast<float>(n > 0 ? sum / n : 0));
    }
    v.speaker_embedding = {static_cast<float>(clips.empty() ? 0 : clips[0].sample_rate),
                           static_cast<float>(clips.empty() ? 0 : clips[0].samples.size())};
    return v;
  }
  // The cloned voice of every whole-call Synthesize that had one, in call order.
  std::vector<std::shared_ptr<const ClonedVoice>> cloned_voices_seen() {
    absl::MutexLock lock(&mu_);
    return cloned_voices_seen_;
  }
  // Produces 5 chunks of 0.1 s of a 440 Hz tone; "block" keeps producing chunks (polling
  // `stop` between them) until stopped; "fail" fails after one chunk.
  absl::StatusOr<SynthesisStats> Synthesize(const SynthesisRequest& request, const AudioSink& sink,
                                            const StopCheck& stop) override {
    const int chunk = sample_rate() / 10;
    SynthesisStats stats;
    stats.voice = request.voice.empty() ? voices_[0].name : request.voice;
    stats.seed = 7;
    stats.codes = 11;
    {
      absl::MutexLock lock(&mu_);
      max_codes_seen_.push_back(request.params.max_codes);
      if (request.cloned_voice != nullptr) cloned_voices_seen_.push_back(request.cloned_voice);
    }
    const int chunks = request.text == "long" ? 300 : 5;
    if (request.text == "block") {
      absl::MutexLock lock(&mu_);
      if (!running_.HasBeenNotified()) running_.Notify();
    }
    for (int c = 0; c < chunks || request.text == "block"; ++c) {
      if (stop) {
        absl::Status s = stop();
        if (!s.ok()) {
          absl::MutexLock lock(&mu_);
          stopped_with_ = s;
          if (!stopped_.HasBeenNotified()) stopped_.Notify();
          return s;
        }
      }
      std::vector<float> samples(static_cast<size_t>(chunk));
      for (int i = 0; i < chunk; ++i) {
        samples[static_cast<size_t>(i)] =
            0.3f * std::sin(6.2831853f * 440.0f * static_cast<float>(stats.samples + i) /
                            static_cast<float>(sample_rate()));
      }
      if (!sink(samples)) return absl::CancelledError("sink refused");
      stats.samples += chunk;
      if (request.text == "fail") return absl::DataLossError("vocoder exploded");
      if (request.text == "block") absl::SleepFor(absl::Milliseconds(2));
    }
    return stats;
  }

  // A "block" synthesis started (the engine is running it and polls its StopCheck).
  absl::Notification& running() { return running_; }
  absl::Notification& stopped() { return stopped_; }
  absl::Status stopped_with() {
    absl::MutexLock lock(&mu_);
    return stopped_with_;
  }

  // --- Step API (see the top of this file).
  void EnableStepper() { stepper_enabled_ = true; }
  std::unique_ptr<SpeechStepper> NewStepper() override;
  // Steps run, and sequences that left before finishing.
  int steps() {
    absl::MutexLock lock(&mu_);
    return steps_;
  }
  int left_unfinished() {
    absl::MutexLock lock(&mu_);
    return left_unfinished_;
  }

  // SynthesisParams::max_codes of every whole-call Synthesize, in call order.
  std::vector<int> max_codes_seen() {
    absl::MutexLock lock(&mu_);
    return max_codes_seen_;
  }

  // One chunk of the tone, continuing at sample `offset`.
  std::vector<float> Tone(int64_t offset) const {
    const int chunk = sample_rate() / 10;
    std::vector<float> samples(static_cast<size_t>(chunk));
    for (int i = 0; i < chunk; ++i) {
      samples[static_cast<size_t>(i)] =
          0.3f * std::sin(6.2831853f * 440.0f * static_cast<float>(offset + i) /
                          static_cast<float>(sample_rate()));
    }
    return samples;
  }

 private:
  friend class FakeSpeechStepper;
  bool stepper_enabled_ = false;
  int steps_ = 0;
  int left_unfinished_ = 0;
  std::vector<int> max_codes_seen_;
  std::string clone_id_;
  std::vector<std::shared_ptr<const ClonedVoice>> cloned_voices_seen_;
  absl::Mutex mu_;
  absl::Notification running_;
  absl::Notification stopped_;
  absl::Status stopped_with_;
  ModelInfo info_;
  std::vector<VoiceInfo> voices_;
};

class FakeSpeechStepper : public SpeechStepper {
 public:
  explicit FakeSpeechStepper(FakeSpeechEngine* engine) : engine_(engine) {}
  absl::Status Join(uint64_t id, const SynthesisRequest& request) override {
    Seq seq;
    seq.text = request.text;
    seq.voice = request.voice.empty() ? engine_->voices()[0].name : request.voice;
    seqs_[id] = seq;
    return absl::OkStatus();
  }
  std::vector<SpeechStepResult> Step(absl::Span<const uint64_t> active) override {
    {
      absl::MutexLock lock(&engine_->mu_);
      ++engine_->steps_;
    }
    std::vector<SpeechStepResult> out;
    bool blocking = false;
    for (uint64_t id : active) {
      Seq& seq = seqs_.at(id);
      SpeechStepResult r;
      r.audio = engine_->Tone(seq.samples);
      seq.samples += static_cast<int64_t>(r.audio.size());
      ++seq.chunks;
      const int chunks = seq.text == "long" ? 300 : 5;
      if (seq.text == "fail") {
        r.status = absl::DataLossError("vocoder exploded");
      } else if (seq.text == "block") {
        blocking = true;
      } else if (seq.chunks >= chunks) {
        r.finished = seq.finished = true;
        r.stats.samples = seq.samples;
        r.stats.codes = 11;
        r.stats.seed = 7;
        r.stats.voice = seq.voice;
      }
      out.push_back(std::move(r));
    }
    if (blocking) absl::SleepFor(absl::Milliseconds(1));  // no spinning; not a timing device
    return out;
  }
  void Leave(uint64_t id) override {
    auto it = seqs_.find(id);
    if (it == seqs_.end()) return;
    if (!it->second.finished) {
      absl::MutexLock lock(&engine_->mu_);
      ++engine_->left_unfinished_;
    }
    seqs_.erase(it);
  }
  int size() const override { return static_cast<int>(seqs_.size()); }

 private:
  struct Seq {
    std::string text;
    std::string voice;
    int64_t samples = 0;
    int chunks = 0;
    bool finished = false;
  };
  FakeSpeechEngine* const engine_;
  std::map<uint64_t, Seq> seqs_;
};

inline std::unique_ptr<SpeechStepper> FakeSpeechEngine::NewStepper() {
  if (!stepper_enabled_) return nullptr;
  return std::make_unique<FakeSpeechStepper>(this);
}

}  // namespace vox::testing

#endif  // VOX_TESTS_SERVER_FAKE_ENGINES_H_
