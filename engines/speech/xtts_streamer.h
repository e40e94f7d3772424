#ifndef VOX_ENGINES_SPEECH_XTTS_STREAMER_H_
#define VOX_ENGINES_SPEECH_XTTS_STREAMER_H_

// Internal to vox_speech (includes LibTorch). Vocodes one utterance while it is generated
// (docs/speech.md, "Vocoding while generating"): owns the utterance's latent buffer on the
// device; a chunk is planned (window and interpolated frames, xtts_stream_plan.h), its frames
// decoded by HiFi-GAN (alone, or batched with other streams' windows of the same length), then
// completed (cross-fade, sink). Borrows the model and the stream options, which must outlive it;
// not thread-safe (the stepping thread owns it).

#include <chrono>
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "engines/core/speech_engine.h"
#include "engines/speech/xtts_engine.h"
#include "engines/speech/xtts_model.h"
#include "engines/speech/xtts_stream_plan.h"

namespace vox {

class XttsStreamer {
 public:
  using Clock = std::chrono::steady_clock;

  // Room for `capacity` latents, vocoded with `speaker` ([1, S, 1] on the device: a built-in
  // voice's row or a cloned voice's). `sink` (may be null) receives the emitted audio; `chunks`
  // (may be null) receives per-chunk facts, timed from `t0`.
  XttsStreamer(const XttsModel& model, const XttsStreamOptions& stream, torch::Tensor speaker, double speed,
               int64_t capacity, const AudioSink* sink, Clock::time_point t0,
               std::vector<XttsChunkStats>* chunks);

  void Add(const torch::Tensor& latent);  // [1, D] or [D]

  // Whether a non-final chunk is due (enough new codes since the last one).
  bool Due() const;
  // Plan + decode + complete, one stream alone: the next chunk if due / everything left.
  absl::Status MaybeEmit() { return Due() ? Emit(false) : absl::OkStatus(); }
  absl::Status Finish() { return Emit(true); }
  int64_t samples() const { return samples_; }
  const torch::Tensor& speaker() const { return speaker_; }  // [1, S, 1]

  struct Chunk {
    ChunkWindow window;
    bool final = false;
    torch::Tensor frames;  // [1, D, window frames] vocoder input
    Clock::time_point started;
  };
  // Plans the next chunk: false when it would emit nothing. Torch errors throw (callers wrap).
  bool Plan(bool final, Chunk* c);
  // Completes a planned chunk with its decoded audio (CPU float, contiguous, hop · frames):
  // cross-fades the seam, records the chunk, passes the samples to the sink (CANCELLED when it
  // returns false).
  absl::Status Complete(const Chunk& c, const torch::Tensor& audio);

 private:
  absl::Status Emit(bool final);
  int context() const;

  const XttsModel& model_;
  const XttsStreamOptions& stream_;
  const AudioSink* sink_;
  std::vector<XttsChunkStats>* chunks_;
  Clock::time_point t0_;
  double speed_;
  InterpolationGeometry geometry_;
  torch::Tensor buffer_, speaker_;
  int64_t n_ = 0, emitted_frames_ = 0, last_chunk_n_ = 0, emitted_chunks_ = 0, samples_ = 0;
  std::vector<float> tail_;
};

}  // namespace vox

#endif  // VOX_ENGINES_SPEECH_XTTS_STREAMER_H_
