#ifndef VOX_ENGINES_SPEECH_XTTS_STEPPER_H_
#define VOX_ENGINES_SPEECH_XTTS_STEPPER_H_

// Internal to vox_speech (includes LibTorch). XttsStepper is the XTTS engine's one decode path
// (docs/speech.md, "Stepper"): XttsEngine::NewStepper hands it to the server, Synthesize steps
// one sequence through it (SynthesizeByStepping), Generate one text piece without vocoding.
// Borrows the engine's Impl (model, stream options, code probe, counters), which must outlive
// it; NOT thread-safe: the engine's owner thread makes every call.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engines/core/speech_engine.h"
#include "engines/speech/xtts_engine.h"
#include "engines/speech/xtts_model.h"
#include "engines/speech/xtts_sampler.h"
#include "engines/speech/xtts_streamer.h"

namespace vox {

// A validated request resolved against the model: voice, sampling, seed, and the token ids of
// each sentence piece that has something to say.
struct XttsPreparedRequest {
  int voice = -1;            // built-in voice index; -1 for a cloned voice
  std::string voice_name;    // what SynthesisStats::voice reports
  torch::Tensor cond_latent;  // [1, cond_len, D] on the device, GPT dtype
  torch::Tensor speaker;      // [1, S, 1] on the device, float32
  SamplingSettings settings;
  uint64_t seed = 0;  // the seed actually used (random when the request's is 0 and not greedy)
  double speed = 1.0;
  int forced = 0;
  int64_t limit = 0;  // codes per piece at most
  std::vector<std::vector<int64_t>> pieces;
  std::vector<uint64_t> piece_seeds;  // seed + the piece's index among all pieces
};

// Sets `request`'s voice to built-in voice `voice` (an index of model.voices).
void SetBuiltinVoice(const XttsModel& model, int voice, XttsPreparedRequest* request);

// Validates `request`, chooses its voice (a cloned one when request.cloned_voice is set) and
// seed, splits and tokenizes its text.
absl::StatusOr<XttsPreparedRequest> PrepareXttsRequest(const XttsEngine::Impl& engine,
                                                       const SynthesisRequest& request);

struct XttsStepperOptions {
  // false: no vocoder work and no audio; each sequence keeps its codes and latents for
  // TakeGeneration (XttsEngine::Generate).
  bool vocode = true;
  // Not null: receives the facts of every chunk vocoded, timed from the sequence's Join
  // (XttsEngine::last_chunks).
  std::vector<XttsChunkStats>* chunks = nullptr;
};

class XttsStepper : public SpeechStepper {
 public:
  explicit XttsStepper(XttsEngine::Impl& engine, XttsStepperOptions options = {});

  absl::Status Join(uint64_t id, const SynthesisRequest& request) override;
  // Join for a request already prepared (no validation beyond the id).
  absl::Status JoinPrepared(uint64_t id, XttsPreparedRequest request);
  std::vector<SpeechStepResult> Step(absl::Span<const uint64_t> active) override;
  void Leave(uint64_t id) override;
  int size() const override { return static_cast<int>(seqs_.size()); }

  // The codes and latents a sequence generated so far (stepper made with vocode = false);
  // empty for unknown ids.
  XttsEngine::Generation TakeGeneration(uint64_t id);

 private:
  enum class Phase { kPrefill, kGenerate, kDone, kFailed };

  struct Seq {
    uint64_t id = 0;
    XttsPreparedRequest req;
    size_t piece = 0;  // index into req.pieces
    int slot = -1;     // cache slot; -1 once done or failed
    Phase phase = Phase::kPrefill;
    bool piece_done = false;
    std::unique_ptr<CodeSampler> sampler;
    std::unique_ptr<XttsStreamer> streamer;  // null when not vocoding
    AudioSink sink;            // appends to `audio`
    std::vector<float> audio;  // emitted during the current Step
    torch::Tensor logits;      // CPU float [A]: the next code's logits
    torch::Tensor latent;      // [D] on the device: the next code's latent
    int64_t cache_len = 0;     // cache rows filled
    int64_t piece_codes = 0;   // codes generated in the current piece
    XttsStreamer::Clock::time_point joined;
    SynthesisStats stats;
    XttsEngine::Generation generation;  // kept when not vocoding
    absl::Status error;
  };

  struct Pending {
    Seq* seq;
    XttsStreamer::Chunk chunk;
  };
  using Batch = std::vector<std::pair<Seq*, int64_t>>;  // sequences that go on, code to feed

  int TakeSlot();
  void FreeSlot(Seq* s);
  void Fail(Seq* s, const absl::Status& st);
  void Reserve(int64_t slots, int64_t capacity, const c10::List<torch::Tensor>& proto);
  absl::Status Prefill(Seq* s);
  void SampleCodes(const std::vector<Seq*>& sampling, std::vector<int64_t>* codes);
  void Vocode(std::vector<Pending>& pending);
  void EndPiece(Seq* s);
  void TakeOutputs(const Batch& batch, const torch::Tensor& logits, const torch::Tensor& latent,
                   size_t first);
  absl::Status StepBatched(const Batch& batch);
  absl::Status StepOneByOne(const Batch& batch);

  XttsEngine::Impl& e_;
  const XttsModel& m_;
  const XttsStepperOptions options_;
  const bool batched_;
  std::map<uint64_t, std::unique_ptr<Seq>> seqs_;
  std::vector<bool> slot_used_;
  c10::List<torch::Tensor> kv_;  // 2·layers tensors [slots, heads, capacity, head_dim]
};

}  // namespace vox

#endif  // VOX_ENGINES_SPEECH_XTTS_STEPPER_H_
