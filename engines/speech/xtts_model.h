#ifndef VOX_ENGINES_SPEECH_XTTS_MODEL_H_
#define VOX_ENGINES_SPEECH_XTTS_MODEL_H_

// Internal to vox_speech (includes LibTorch): only engines/speech .cc files include it.
// The loaded XTTS v2 model (XttsModel), read once by XttsEngine::Load and shared, read-only, by
// the engine, its replicas and their steppers (immutable: any thread may read it); and
// XttsEngine::Impl, one engine's own state (its owner thread only).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/module.h>
#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engines/core/engine_options.h"
#include "engines/core/manifest.h"
#include "engines/core/model_info.h"
#include "engines/core/speech_engine.h"
#include "engines/speech/xtts_condition_cache.h"
#include "engines/speech/xtts_engine.h"
#include "engines/speech/xtts_sampler.h"
#include "engines/speech/xtts_stream_plan.h"
#include "engines/text/xtts_tokenizer.h"
#include "engines/torch/device.h"

namespace vox {

// The architecture fields of an xtts-v2 manifest.json (docs/model-format.md, XTTS), typed.
// Read through ManifestFields: errors name the file and the field.
struct XttsManifest {
  struct Language {
    std::string code;  // XTTS code ("en")
    std::string nllb;  // NLLB code ("eng_Latn")
  };
  struct Voice {
    std::string name;
    bool lists_languages = false;     // false: the voice speaks every language
    std::vector<std::string> languages;  // NLLB codes, when listed
  };

  int d_model = 0;
  int cond_latent_len = 32;
  int hop_length = 256;              // config.hifigan.hop_length
  int receptive_field_frames = 17;   // config.hifigan.receptive_field_frames
  int64_t start_audio = 1024, stop_audio = 1025;
  int sample_rate = 24000;
  int input_sample_rate = 22050;
  int64_t code_stride = 1024;
  int max_text_tokens = 402;
  int max_generated_codes = 602;
  SamplingSettings sampling;         // the manifest's defaults
  std::vector<Language> languages;   // in manifest order
  std::vector<Voice> voices;         // in manifest order (index = position)

  // The `cloning` section (exporter version 4 and later; docs/model-format.md).
  struct Cloning {
    bool available = false;
    std::string reason;         // why not, when !available
    std::string file;           // "clone.ts"
    std::string voice_model_id;
    int gpt_sample_rate = 22050;
    int speaker_sample_rate = 16000;
    double min_chunk_seconds = 0.33;
    int gpt_cond_len = 0;       // seconds of all clips together used for the GPT latents (<= 0: all)
    int gpt_cond_chunk_len = 4; // seconds per chunk
    int max_ref_len = 30;       // seconds of each clip used
    int speaker_dim = 512;
  } cloning;

  // Also checks the files the engine needs are listed (model.ts, voices.ts, vocab.json).
  static absl::StatusOr<XttsManifest> Read(const Manifest& manifest);
};

// An XTTS v2 model loaded for inference. Immutable after LoadXttsModel; shared by every engine
// over it (const methods only; TorchScript methods run concurrently on separate inputs).
struct XttsModel {
  Manifest manifest;
  XttsManifest config;
  ModelInfo info;
  DevicePlacement device;
  std::shared_ptr<torch::jit::Module> module;
  torch::Tensor cond_latents;        // [V, cond_len, D] on device, GPT dtype
  torch::Tensor speaker_embeddings;  // [V, S, 1], float32
  std::unique_ptr<const XttsTokenizer> tokenizer;
  std::vector<XttsManifest::Language> languages;  // supported: manifest ∩ cleaner ∩ vocab
  std::vector<VoiceInfo> voices;
  std::vector<std::string> voice_names;
  int cond_len = 32;  // rows of cond_latents
  InterpolationGeometry geometry;
  bool has_step_slots = false;  // model.ts exports step_slots (exporter version >= 2)
  bool has_condition = false;   // condition and prefix_conditioned (exporter version >= 5)
  std::shared_ptr<torch::jit::Module> cloner;  // clone.ts; null when the export cannot clone

  const XttsManifest::Language* Language(const std::string& nllb) const;
  int VoiceIndex(const std::string& name) const;  // -1 when unknown
  // The manifest's sampling defaults overridden by the request's non-zero values.
  SamplingSettings Settings(const SynthesisParams& params) const;
  // Codes a piece may generate: forced_codes when set, else max_codes capped by the model's.
  int CodeLimit(const SynthesisParams& params) const;
  // Why `voice` cannot be spoken by this model (another model's, other dimensions); OK if it can.
  absl::Status CheckClonedVoice(const ClonedVoice& voice) const;
  // A cloned voice as the tensors the GPT prefix and the vocoder take (CheckClonedVoice first).
  absl::StatusOr<struct XttsVoiceTensors> ClonedVoiceTensors(const ClonedVoice& voice) const;
};

// One voice as the model takes it.
struct XttsVoiceTensors {
  torch::Tensor cond_latent;  // [1, cond_len, D] on the device, in the GPT's dtype
  torch::Tensor speaker;      // [1, S, 1] on the device, float32
};

// Reads the model of `manifest` (already read, files checked: tokenizer, model.ts, voices.ts)
// onto the device of `options`.
absl::StatusOr<std::shared_ptr<const XttsModel>> LoadXttsModel(const std::string& name,
                                                              Manifest manifest,
                                                              const EngineOptions& options,
                                                              bool freeze_module);

// XttsEngine::Validate: language, voice, text and parameters against the model.
absl::Status ValidateXttsRequest(const XttsModel& model, int max_text_bytes,
                                 const SynthesisRequest& request);

// One engine's state: the shared model plus what each engine (and replica) owns.
struct XttsEngine::Impl {
  std::shared_ptr<const XttsModel> model;
  XttsStreamOptions stream;
  XttsCodeProbe probe;
  std::vector<XttsChunkStats> chunks;  // of the last Synthesize / StreamLatents
  int64_t steps = 0;      // GPT positions computed (a prefix counts one)
  int64_t gpt_calls = 0;  // GPT module calls (prefix, step, step_slots)
  XttsConditionCache conditions{kConditionedVoices};  // used when model->has_condition

  static constexpr size_t kConditionedVoices = 8;
};

}  // namespace vox

#endif  // VOX_ENGINES_SPEECH_XTTS_MODEL_H_
