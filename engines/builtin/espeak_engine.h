#ifndef VOX_ENGINES_BUILTIN_ESPEAK_ENGINE_H_
#define VOX_ENGINES_BUILTIN_ESPEAK_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/core/speech_engine.h"

namespace vox {

// Formant speech synthesis with libespeak-ng (Debian: libespeak-ng1 + espeak-ng-data). No model
// weights; intelligible, robotic speech for ~100 languages.
struct EspeakOptions {
  std::string name = "espeak-ng";  // ModelInfo::name
  // NLLB codes to serve. Empty (default): every language of the table (engines/core/languages.cc)
  // whose espeak-ng code matches a voice espeak-ng lists (exactly, or as "<code>-..." such as
  // "fr" → "fr-fr"). A configured language without such a voice → INVALID_ARGUMENT.
  std::vector<std::string> languages;
  std::string data_path;  // espeak-ng-data's parent directory; "" = libespeak-ng's default
  bool fallback = false;  // ModelInfo::fallback: serve only what no primary engine serves
  // Longest text in bytes. espeak-ng speaks ~15 characters per second of audio and computes it
  // ~300× faster than real time on a loaded 2-core machine (docs/benchmarks.md), so 4000 bytes
  // (~4.5 min of speech) hold the process-wide lock for about a second at most.
  size_t max_text_bytes = 4000;
  // Audio is handed to the sink in chunks of this many milliseconds (espeak's buffer length):
  // smaller means earlier first audio and more callbacks.
  int chunk_ms = 50;
};

// libespeak-ng keeps process-global state (one voice, one set of parameters, one callback, no
// instance handle). EspeakEngine serializes every synthesis in the process on one process-wide
// mutex (also across several EspeakEngine objects) and sets voice and parameters again on each
// call, so any thread may call any method; two syntheses never overlap, they queue on that
// mutex. espeak_Initialize runs once per process, with the first engine's data_path; an engine
// created later with another data_path fails with FAILED_PRECONDITION.
//
// Voices are named "espeak:<espeak-ng language>" ("espeak:es", "espeak:en-us"), one per served
// language. sample_rate() is espeak-ng's native rate (22050 Hz), as espeak_Initialize reports it;
// resampling to the Opus rate is the caller's. SynthesisParams: speed (0 = 1.0; 0.5–2.5, times
// espeak's 175 words per minute) and pitch (0 = espeak's default 50; 1–100). The neural knobs
// (temperature, top_k, seed, ...) are ignored; forced_codes is INVALID_ARGUMENT. With
// SynthesisRequest::ssml the text is read as SSML (espeak_Synth with espeakSSML).
// Synthesize streams audio to the sink as espeak produces it (every chunk_ms), int16 → float;
// `stop` is polled on every chunk, and a non-OK stop or a sink returning false aborts at once.
class EspeakEngine : public SpeechEngine {
 public:
  const ModelInfo& info() const override { return info_; }
  int sample_rate() const override { return sample_rate_; }
  const std::vector<VoiceInfo>& voices() const override { return voices_; }
  // espeak-ng's own SSML reader (espeakSSML): <speak>, <voice xml:lang>, <prosody rate>,
  // <break>, <say-as interpret-as="characters">, <s>, <p>.
  bool speaks_ssml() const override { return true; }
  absl::Status Validate(const SynthesisRequest& request) const override;
  absl::StatusOr<SynthesisStats> Synthesize(const SynthesisRequest& request, const AudioSink& sink,
                                            const StopCheck& stop) override;

 private:
  friend absl::StatusOr<std::unique_ptr<EspeakEngine>> CreateEspeakEngine(const EspeakOptions&);
  EspeakEngine() = default;
  struct Served {
    std::string nllb;    // "spa_Latn"
    std::string espeak;  // "es"
  };
  const Served* FindLanguage(const std::string& nllb) const;

  EspeakOptions options_;
  ModelInfo info_;
  int sample_rate_ = 0;
  std::vector<Served> served_;
  std::vector<VoiceInfo> voices_;
};

// Initializes libespeak-ng (once per process) and lists its voices. Errors: INTERNAL when
// espeak-ng-data cannot be loaded (naming data_path and the Debian package), INVALID_ARGUMENT
// for a language that is not in the table or has no espeak-ng voice (listing those available).
// Converts to std::unique_ptr<SpeechEngine>. Built without espeak-ng (VOX_WITH_ESPEAK=OFF or
// libespeak-ng-dev missing): always FAILED_PRECONDITION saying so.
absl::StatusOr<std::unique_ptr<EspeakEngine>> CreateEspeakEngine(const EspeakOptions& options);

}  // namespace vox

#endif  // VOX_ENGINES_BUILTIN_ESPEAK_ENGINE_H_
