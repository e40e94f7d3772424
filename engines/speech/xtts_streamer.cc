#include "engines/speech/xtts_streamer.h"

#include <algorithm>

#include "engines/torch/device.h"

namespace vox {
namespace {

double SecondsSince(XttsStreamer::Clock::time_point t0) {
  return std::chrono::duration<double>(XttsStreamer::Clock::now() - t0).count();
}

}  // namespace

XttsStreamer::XttsStreamer(const XttsModel& model, const XttsStreamOptions& stream, torch::Tensor speaker,
                           double speed, int64_t capacity, const AudioSink* sink,
                           Clock::time_point t0, std::vector<XttsChunkStats>* chunks)
    : model_(model), stream_(stream), sink_(sink), chunks_(chunks), t0_(t0), speed_(speed),
      geometry_(model.geometry) {
  geometry_.scale0 = speed == 1.0 ? 1.0 : 1.0 / std::max(speed, 0.05);
  buffer_ = torch::zeros({1, capacity, model.config.d_model},
                         torch::TensorOptions().dtype(torch::kFloat).device(ToTorchDevice(model.device)));
  speaker_ = std::move(speaker);
}

int XttsStreamer::context() const {
  return stream_.context_frames < 0 ? model_.config.receptive_field_frames : stream_.context_frames;
}

void XttsStreamer::Add(const torch::Tensor& latent) {
  buffer_.select(1, n_).copy_(latent.reshape({1, -1}));
  ++n_;
}

bool XttsStreamer::Due() const {
  return emitted_chunks_ == 0 ? n_ >= stream_.first_chunk_codes : n_ - last_chunk_n_ >= stream_.chunk_codes;
}

bool XttsStreamer::Plan(bool final, Chunk* c) {
  c->window = NextChunkWindow(geometry_, n_, emitted_frames_, context(), final);
  if (c->window.empty()) return false;
  c->final = final;
  c->started = Clock::now();
  const ChunkWindow& w = c->window;
  c->frames = model_.module->get_method("interpolate_window")(
      {buffer_.narrow(1, 0, n_), w.window_begin, w.window_end - w.window_begin, speed_}).toTensor();
  return true;
}

absl::Status XttsStreamer::Complete(const Chunk& c, const torch::Tensor& audio) {
  const ChunkWindow& w = c.window;
  const int64_t hop = model_.config.hop_length;
  const int64_t offset = (w.emit_begin - w.window_begin) * hop;
  const int64_t count = (w.emit_end - w.emit_begin) * hop;
  const float* a = audio.data_ptr<float>();
  std::vector<float> out(a + offset, a + offset + count);
  const size_t fade = std::min(tail_.size(), out.size());
  for (size_t i = 0; i < fade; ++i) {
    const float wgt = static_cast<float>(i + 1) / static_cast<float>(fade + 1);
    out[i] = tail_[i] * (1.0f - wgt) + out[i] * wgt;
  }
  tail_.clear();
  if (!c.final) {
    const int64_t avail = audio.numel() - (offset + count);
    const int64_t keep = std::min<int64_t>(avail, stream_.crossfade_samples);
    if (keep > 0) tail_.assign(a + offset + count, a + offset + count + keep);
  }
  emitted_frames_ = w.emit_end;
  last_chunk_n_ = n_;
  ++emitted_chunks_;
  samples_ += count;
  if (chunks_ != nullptr) {
    XttsChunkStats cs;
    cs.codes = n_;
    cs.emitted_samples = count;
    cs.window_frames = w.window_end - w.window_begin;
    cs.vocoder_seconds = SecondsSince(c.started);
    cs.at_seconds = SecondsSince(t0_);
    chunks_->push_back(cs);
  }
  if (sink_ != nullptr && *sink_ && !(*sink_)(absl::MakeConstSpan(out))) {
    return absl::CancelledError("audio consumer went away");
  }
  return absl::OkStatus();
}

absl::Status XttsStreamer::Emit(bool final) {
  Chunk c;
  torch::Tensor audio;
  bool planned = false;
  absl::Status st = CatchTorchErrors("xtts vocoder", [&] {
    planned = Plan(final, &c);
    if (planned) {
      audio = model_.module->get_method("decode_frames")({c.frames, speaker_}).toTensor()[0]
                  .to(torch::kCPU).contiguous();
    }
    return absl::OkStatus();
  });
  if (!st.ok() || !planned) return st;
  return Complete(c, audio);
}

}  // namespace vox
