#ifndef VOX_ENGINES_CORE_SPEECH_ENGINE_H_
#define VOX_ENGINES_CORE_SPEECH_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engines/core/model_info.h"
#include "engines/core/translation_engine.h"  // StopCheck

namespace vox {

struct VoiceInfo {
  std::string name;                    // "Ana Florence", "espeak:es"
  std::vector<std::string> languages;  // NLLB codes
};

// One reference recording for voice cloning: mono samples in [-1, 1] at `sample_rate`.
struct ReferenceClip {
  std::vector<float> samples;
  int sample_rate = 0;
};

// A voice made from reference audio (SpeechEngine::CloneVoice): what the engine conditions on to
// speak in it. Plain data, immutable once made; the server's voice store persists it, and
// requests for it carry it as a shared pointer (SynthesisRequest::cloned_voice).
struct ClonedVoice {
  std::string model_id;                 // SpeechEngine::voice_model_id() of the model that made it
  int cond_rows = 0;                    // gpt_cond_latent is [cond_rows, cond_dim], row-major
  int cond_dim = 0;
  std::vector<float> gpt_cond_latent;
  std::vector<float> speaker_embedding;  // [speaker_embedding.size()]
};

// Synthesis settings. Zero values mean "engine default".
struct SynthesisParams {
  bool greedy = false;
  uint64_t seed = 0;
  float temperature = 0;
  int top_k = 0;
  float top_p = 0;
  float repetition_penalty = 0;
  float speed = 0;
  int pitch = 0;
  int forced_codes = 0;  // benchmarks: generate exactly this many codes, ignoring the stop code
  int max_codes = 0;     // stop a piece after at most this many codes (0 = the model's limit);
                         // an upper bound, so engines without acoustic codes ignore it
};

struct SynthesisRequest {
  std::string text;
  std::string language;  // NLLB code
  std::string voice;     // empty = first voice listed for the language
  SynthesisParams params;
  // Set by the server when `voice` names a created voice: the engine speaks with it instead of a
  // built-in voice (Validate refuses one made by another model).
  std::shared_ptr<const ClonedVoice> cloned_voice;
  // `text` is an SSML document for an engine whose speaks_ssml() is true (the server renders it
  // from the parsed subset, engines/text/ssml_parser.h); never set for other engines.
  bool ssml = false;
};

// Facts about one finished synthesis.
struct SynthesisStats {
  int64_t samples = 0;  // at sample_rate()
  int64_t codes = 0;    // acoustic codes generated (0 for non-neural engines)
  uint64_t seed = 0;    // seed actually used
  std::string voice;    // voice actually used
};

// Receives mono float samples in [-1, 1] at the engine's sample_rate() as soon as they exist.
// Returning false asks the engine to stop (the consumer went away).
using AudioSink = std::function<bool(absl::Span<const float> samples)>;

class SpeechStepper;

// A speech model. NOT thread-safe: one worker thread owns it (see TranslationEngine).
class SpeechEngine {
 public:
  virtual ~SpeechEngine() = default;

  virtual const ModelInfo& info() const = 0;
  virtual int sample_rate() const = 0;
  virtual const std::vector<VoiceInfo>& voices() const = 0;
  // True when Synthesize takes SSML itself (SynthesisRequest::ssml); the server speaks SSML to
  // other engines as plain-text utterances with pauses between them.
  virtual bool speaks_ssml() const { return false; }

  // Checks language, voice, and text (empty, too long) without running the model.
  // INVALID_ARGUMENT lists the valid values. Thread-safe.
  virtual absl::Status Validate(const SynthesisRequest& request) const = 0;

  // Voice cloning (optional). voice_model_id() names the weights a ClonedVoice is made for:
  // equal ids, equal weights; empty when the engine cannot clone. CloneVoice makes a voice from
  // one or more clips (at any rate; the engine resamples). It reads only the loaded model, so
  // any thread may call it, concurrently with this engine's owner. UNIMPLEMENTED, saying so,
  // when the engine cannot clone; INVALID_ARGUMENT for audio it cannot use.
  virtual std::string voice_model_id() const { return ""; }
  virtual absl::StatusOr<ClonedVoice> CloneVoice(absl::Span<const ReferenceClip> clips) const {
    return absl::UnimplementedError(info().name + " cannot clone voices");
  }

  // Synthesizes, streaming audio into `sink` as it is produced. Polls `stop` between steps.
  virtual absl::StatusOr<SynthesisStats> Synthesize(const SynthesisRequest& request,
                                                    const AudioSink& sink,
                                                    const StopCheck& stop) = 0;

  // Continuous batching (optional): a stepper over this engine's model, or nullptr when the
  // engine cannot generate step by step (the server then synthesizes whole requests and streams
  // the buffered audio). Same ownership rules as TranslationEngine::NewStepper.
  virtual std::unique_ptr<SpeechStepper> NewStepper() { return nullptr; }

  // Another engine over this engine's loaded model, as TranslationEngine::NewReplica: weights,
  // tokenizer and voices shared and read-only, per-call state its own. UNIMPLEMENTED for engines
  // that cannot share.
  virtual absl::StatusOr<std::unique_ptr<SpeechEngine>> NewReplica() const {
    return absl::UnimplementedError(info().name + " cannot share its model between replicas");
  }
};

// One sequence's outcome of a SpeechStepper::Step.
struct SpeechStepResult {
  absl::Status status;       // non-OK: the sequence failed (it must still be Leave()d)
  std::vector<float> audio;  // samples produced by this step (often none: not every step vocodes)
  bool finished = false;     // true once all audio has been returned; stats is set
  SynthesisStats stats;
};

// Continuous batching over one speech engine (XTTS: GPT steps, with vocoder chunks when a
// sequence has enough new codes): sequences join at a step boundary, every Step() advances the
// listed ones together, a sequence leaves the step it finishes, and a joined sequence not listed
// (paused by a slow reader) keeps its state. The concatenated audio of a sequence equals what
// SpeechEngine::Synthesize streams for the same request and seed (within float rounding).
// Ids are chosen by the caller. NOT thread-safe: the engine's owner thread makes every call.
class SpeechStepper {
 public:
  virtual ~SpeechStepper() = default;
  // Takes a slot (request already validated). May defer work to the next Step(). Non-OK: the
  // sequence did not join (no Leave needed).
  virtual absl::Status Join(uint64_t id, const SynthesisRequest& request) = 0;
  // One step over `active`; one result per id, in that order.
  virtual std::vector<SpeechStepResult> Step(absl::Span<const uint64_t> active) = 0;
  // Frees the sequence's slot. Unknown ids are ignored.
  virtual void Leave(uint64_t id) = 0;
  virtual int size() const = 0;
};

}  // namespace vox

#endif  // VOX_ENGINES_CORE_SPEECH_ENGINE_H_
