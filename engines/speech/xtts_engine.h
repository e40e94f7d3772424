#ifndef VOX_ENGINES_SPEECH_XTTS_ENGINE_H_
#define VOX_ENGINES_SPEECH_XTTS_ENGINE_H_

// XTTS v2 speech engine over a model exported by tools/export_xtts.py (docs/model-format.md,
// XTTS; docs/speech.md). Text → ids (engines/text XttsTokenizer, sentence splitting) → GPT
// prefix, then one code per step with a KV cache, sampled in C++ (xtts_sampler.h) → the latent of
// every code is vocoded while generating: every few codes a window of frames with receptive-field
// context goes through HiFi-GAN and the seam is cross-faded (xtts_stream_plan.h). One decode
// path: Synthesize and Generate step through the same stepper that NewStepper returns.
//
// Ownership and threads: the loaded model (TorchScript module, voice tensors, tokenizer) is
// immutable after Load and shared by the engine and its replicas (NewReplica); each engine owns
// its steppers, counters and stream options. NOT thread-safe apart from info(), sample_rate(),
// voices() and Validate(), which read immutable data: one worker thread owns each engine and
// makes every other call (SpeechEngine's contract).
// Synthesize runs one utterance at a time (a stepper with one sequence); NewStepper() batches
// many (continuous batching: GPT steps of all running sequences in one call).
//
// Cost: load reads model.ts and voices.ts (and hashes every manifest file unless
// options.verify_checksums is false). Per utterance: a slot of the stepper's KV caches,
// 2·layers·heads·(prefix + code limit)·head_dim floats; per chunk: HiFi-GAN over chunk +
// 2·context frames.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engines/core/engine_options.h"
#include "engines/core/manifest.h"
#include "engines/core/speech_engine.h"

namespace vox {

// How audio is streamed. Defaults suit the released model; tests and benchmarks vary them.
struct XttsStreamOptions {
  int first_chunk_codes = 10;  // vocode once this many codes exist (fast first audio)
  int chunk_codes = 16;        // then every this many codes
  int context_frames = -1;     // frames of context each side of a window; -1 = manifest's
                               // receptive_field_frames (exact); smaller is cheaper, seams approximate
  int crossfade_samples = 256; // linear cross-fade over the seam (<= context_frames * hop)
  int max_text_bytes = 4000;   // longer requests are refused (INVALID_ARGUMENT)
  bool freeze_module = true;   // Load only: torch::jit::freeze model.ts and clone.ts (weights become constants;
                               // ~30% faster HiFi-GAN on CPU, same numbers)
  bool batched_steps = true;   // NewStepper: one step_slots call per Step for all sequences when
                               // model.ts has it; false (or a model without it): `step` per sequence
};

// Per-chunk facts of the last Synthesize/StreamLatents call (benchmarks, tests).
struct XttsChunkStats {
  int64_t codes = 0;           // latents available when the chunk was vocoded
  int64_t emitted_samples = 0; // samples this chunk emitted
  int64_t window_frames = 0;   // frames fed to the convolutions
  double vocoder_seconds = 0;  // interpolation + convolutions + copy out
  double at_seconds = 0;       // time since the call started when the chunk was emitted
};

// Diagnostics for tests (teacher forcing): the stepper asks `force` for a sequence's code number
// `index` before sampling (-1: sample as usual) and shows `fed` every code it feeds back with the
// float logits it was chosen from. Both run on the stepping thread, inside Step().
struct XttsCodeProbe {
  std::function<int64_t(uint64_t sequence, int64_t index)> force;
  std::function<void(uint64_t sequence, int64_t index, absl::Span<const float> logits, int64_t code)> fed;
};

class XttsEngine : public SpeechEngine {
 public:
  // Loads `model_dir` under the instance name `name`. FAILED_PRECONDITION naming the file and
  // field for a bad model directory; INVALID_ARGUMENT/FAILED_PRECONDITION for a device or dtype
  // this build cannot run. Does not change process-wide thread settings.
  static absl::StatusOr<std::unique_ptr<XttsEngine>> Load(const std::string& name,
                                                          const std::string& model_dir,
                                                          const EngineOptions& options,
                                                          const XttsStreamOptions& stream = {});
  // The same from a manifest already read (voxd's loader reads it once for every model).
  static absl::StatusOr<std::unique_ptr<XttsEngine>> Load(const std::string& name,
                                                          Manifest manifest,
                                                          const EngineOptions& options,
                                                          const XttsStreamOptions& stream = {});
  ~XttsEngine() override;

  const ModelInfo& info() const override;
  int sample_rate() const override;  // 24000
  const std::vector<VoiceInfo>& voices() const override;
  // Also checks request.cloned_voice: made by this model (voice_model_id), of its dimensions.
  absl::Status Validate(const SynthesisRequest& request) const override;
  // The manifest's cloning.voice_model_id (the checkpoint's weights and the clone front end's
  // version: every export of one checkpoint shares it); empty when the export cannot clone.
  std::string voice_model_id() const override;
  // Coqui's Xtts.get_conditioning_latents over `clips` (any rates from 8 to 192 kHz; the export's
  // clone.ts resamples), with the checkpoint's gpt_cond_len / gpt_cond_chunk_len / max_ref_len
  // (docs/speech.md, "Voice cloning"). UNIMPLEMENTED when the export has no clone.ts (exported
  // before exporter version 4, or a checkpoint without the cloning weights), with the reason.
  // Thread-safe (reads only the shared model); replicas share the clone module.
  absl::StatusOr<ClonedVoice> CloneVoice(absl::Span<const ReferenceClip> clips) const override;
  // Splits long text into sentences (each under the model's text limit) and synthesizes them
  // one after another into `sink`, without gaps: SynthesizeByStepping over a stepper of its own
  // (`stop` polled before every step). Errors: INVALID_ARGUMENT (Validate), the stop check's
  // status, CANCELLED when the sink returns false, INTERNAL for LibTorch failures.
  absl::StatusOr<SynthesisStats> Synthesize(const SynthesisRequest& request, const AudioSink& sink,
                                            const StopCheck& stop) override;
  // Continuous batching (docs/speech.md, "Stepper"): every Step() runs the prefixes of the
  // sequences starting a sentence piece, samples one code per listed sequence with its own
  // sampler, vocodes the chunks that are due (windows of equal length in one HiFi-GAN call), and
  // runs one `step_slots` call for all sequences that go on. Each sequence's KV cache rows live
  // in one slot of per-layer caches [slots, heads, capacity, head_dim] that grow on demand and
  // are freed when the stepper is empty. Audio and codes equal Synthesize's for the same request
  // and seed (within float rounding). Borrows the engine: must not outlive it; same thread rules.
  std::unique_ptr<SpeechStepper> NewStepper() override;
  // Another engine over the same loaded model, with this one's stream options and fresh counters.
  absl::StatusOr<std::unique_ptr<SpeechEngine>> NewReplica() const override;

  // --- Lower-level access (tests, benchmarks, diagnostics). ---

  // Tokenizer ids of `text` for an NLLB language (no splitting). Thread-safe.
  absl::StatusOr<std::vector<int64_t>> TextIds(const std::string& text,
                                               const std::string& language) const;

  struct Generation {
    std::vector<int64_t> codes;  // stop code included when produced
    std::vector<float> latents;  // codes.size() x d_model, row i = latent of code i
    bool stopped = false;        // ended with the stop code
    uint64_t seed = 0;
  };
  // Generates codes for one piece of text ids: one sequence through the stepper with vocoding
  // skipped; the seed is used as given (0 included). `stop` (may be empty) is polled before every
  // step.
  absl::StatusOr<Generation> Generate(const std::vector<int64_t>& text_ids, int voice_index,
                                      const SynthesisParams& params, const StopCheck& stop);
  // One-shot vocoding of n = latents.size()/d_model latents: 256·M(n) samples. `speed` stretches
  // the latents by 1/speed first (Xtts.inference's length_scale).
  absl::StatusOr<std::vector<float>> Vocode(const std::vector<float>& latents, int voice_index,
                                            double speed = 1.0);
  // Streams precomputed latents through the chunked vocoder as if they were being generated
  // (chunks at the configured code counts); returns everything emitted, in order.
  absl::StatusOr<std::vector<float>> StreamLatents(const std::vector<float>& latents,
                                                   int voice_index, double speed = 1.0);

  const std::vector<XttsChunkStats>& last_chunks() const;
  int64_t steps_run() const;      // GPT steps (prefix included) since load, one per sequence
  int64_t gpt_calls_run() const;  // GPT module calls since load (a batched step counts once)
  bool has_batched_step() const;  // model.ts exports step_slots (exporter version >= 2)
  // Voices whose conditioning k/v were computed since load (model.ts `condition`, exporter
  // version >= 5; docs/speech.md "A request, step by step"): once per voice while it stays among the last 8 used.
  int64_t conditionings_run() const;
  int d_model() const;
  int max_codes() const;
  int voice_index(const std::string& name) const;  // -1 when unknown
  const XttsStreamOptions& stream_options() const;
  void set_stream_options(const XttsStreamOptions& options);
  // Applies to steppers' later Steps; an empty probe (the default) costs nothing.
  void set_code_probe(XttsCodeProbe probe);

  struct Impl;  // the shared model and this engine's own state (xtts_model.h, internal)

 private:
  explicit XttsEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Factory used by voxd's model registry: XttsEngine::Load as the SpeechEngine interface.
absl::StatusOr<std::unique_ptr<SpeechEngine>> LoadXttsEngine(const std::string& name,
                                                             const std::string& model_dir,
                                                             const EngineOptions& options);

}  // namespace vox

#endif  // VOX_ENGINES_SPEECH_XTTS_ENGINE_H_
