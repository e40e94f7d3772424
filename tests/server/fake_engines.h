#ifndef VOX_TESTS_SERVER_FAKE_ENGINES_H_
#define VOX_TESTS_SERVER_FAKE_ENGINES_H_

// Test doubles for the engine interfaces. Behaviour is driven by the text:
//   "fail"   -> Translate returns an UNKNOWN-coded error (an engine failure)
//   "throw"  -> Translate throws std::runtime_error
//   "block"  -> Translate waits until Release() or until its StopCheck says stop, and returns
//               the StopCheck's status in the latter case
//   anything longer than max_chars -> Validate says it is too long
// Other texts translate to "<target>:" + reversed text, with one token id per character.

#include <algorithm>
#include <cmath>
#include <atomic>
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
      o.text = target + ":" + std::string(text.rbegin(), text.rend());
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

 private:
  ModelInfo info_;
  std::vector<std::pair<std::string, std::string>> pairs_;
  size_t max_chars_;
  std::atomic<int> calls_{0};
  TranslationParams last_params_;
  absl::Notification running_, released_, stopped_;
  absl::Mutex mu_;
  absl::Status stopped_with_;
};

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
  int sample_rate() const override { return 22050; }
  const std::vector<VoiceInfo>& voices() const override { return voices_; }
  absl::Status Validate(const SynthesisRequest&) const override { return absl::OkStatus(); }
  // Produces 5 chunks of 0.1 s of a 440 Hz tone; "block" keeps producing chunks (polling
  // `stop` between them) until stopped; "fail" fails after one chunk.
  absl::StatusOr<SynthesisStats> Synthesize(const SynthesisRequest& request, const AudioSink& sink,
                                            const StopCheck& stop) override {
    const int chunk = sample_rate() / 10;
    SynthesisStats stats;
    stats.voice = request.voice.empty() ? voices_[0].name : request.voice;
    stats.seed = 7;
    stats.codes = 11;
    for (int c = 0; c < 5 || request.text == "block"; ++c) {
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

  absl::Notification& stopped() { return stopped_; }
  absl::Status stopped_with() {
    absl::MutexLock lock(&mu_);
    return stopped_with_;
  }

 private:
  absl::Mutex mu_;
  absl::Notification stopped_;
  absl::Status stopped_with_;
  ModelInfo info_;
  std::vector<VoiceInfo> voices_;
};

}  // namespace vox::testing

#endif  // VOX_TESTS_SERVER_FAKE_ENGINES_H_
