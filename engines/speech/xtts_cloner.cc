#include "engines/speech/xtts_cloner.h"

#include <cmath>
#include <numeric>
#include <vector>

#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "engines/core/status_macros.h"
#include "engines/torch/device.h"

namespace vox {
namespace {

// Samples of `n` at `from` Hz once resampled to `to` Hz (torchaudio's ceil(to·n/from)).
int64_t ResampledLength(int64_t n, int from, int to) {
  const int64_t g = std::gcd(from, to);
  const int64_t f = from / g, t = to / g;
  return (t * n + f - 1) / f;
}

// Values of torchaudio's windowed-sinc kernel for `from` -> `to` Hz (width 6, rolloff 0.99).
int64_t ResampleKernelValues(int from, int to) {
  if (from == to) return 0;
  const int64_t g = std::gcd(from, to);
  const int64_t f = from / g, t = to / g;
  const int64_t width = static_cast<int64_t>(std::ceil(6.0 * f / (std::min(f, t) * 0.99)));
  return t * (2 * width + f);
}

constexpr int64_t kMaxKernelValues = int64_t{1} << 22;  // 16 MB of float32

absl::Status CheckClips(const XttsManifest::Cloning& c, absl::Span<const ReferenceClip> clips) {
  if (clips.empty()) return absl::InvalidArgumentError("voice cloning needs at least one reference clip");
  int64_t total = 0;  // samples at the GPT rate, as get_gpt_cond_latents sees them
  for (size_t i = 0; i < clips.size(); ++i) {
    const ReferenceClip& clip = clips[i];
    const std::string which = absl::StrCat("reference clip ", i + 1, " of ", clips.size());
    if (clip.sample_rate < kMinCloneSampleRate || clip.sample_rate > kMaxCloneSampleRate) {
      return absl::InvalidArgumentError(absl::StrCat(which, ": sample rate ", clip.sample_rate,
                                                     " Hz is not in ", kMinCloneSampleRate, "..",
                                                     kMaxCloneSampleRate, " Hz"));
    }
    for (int to : {c.gpt_sample_rate, c.speaker_sample_rate}) {
      if (ResampleKernelValues(clip.sample_rate, to) > kMaxKernelValues) {
        return absl::InvalidArgumentError(absl::StrCat(
            which, ": sample rate ", clip.sample_rate, " Hz cannot be resampled to ", to,
            " Hz at a reasonable cost; use a common rate (8000, 16000, 22050, 24000, 44100, 48000 Hz)"));
      }
    }
    const double seconds = static_cast<double>(clip.samples.size()) / clip.sample_rate;
    if (seconds < kMinCloneClipSeconds) {
      return absl::InvalidArgumentError(absl::StrCat(which, " holds ", seconds, " s of audio; each clip needs at least ",
                                                     kMinCloneClipSeconds, " s"));
    }
    bool sound = false;
    for (float s : clip.samples) {
      if (!std::isfinite(s)) {
        return absl::InvalidArgumentError(absl::StrCat(which, " holds a sample that is not a finite number"));
      }
      sound = sound || s != 0.0f;
    }
    if (!sound) return absl::InvalidArgumentError(absl::StrCat(which, " is silent (every sample is zero)"));
    const int64_t n = std::min<int64_t>(
        ResampledLength(static_cast<int64_t>(clip.samples.size()), clip.sample_rate, c.gpt_sample_rate),
        int64_t{c.gpt_sample_rate} * c.max_ref_len);
    total += n;
  }
  if (c.gpt_cond_len > 0) total = std::min<int64_t>(total, int64_t{c.gpt_sample_rate} * c.gpt_cond_len);
  // Only the last chunk can be short, so the first one decides whether any chunk is long enough.
  const int64_t first = std::min<int64_t>(total, int64_t{c.gpt_sample_rate} * c.gpt_cond_chunk_len);
  if (static_cast<double>(first) < c.gpt_sample_rate * c.min_chunk_seconds) {
    return absl::InvalidArgumentError(absl::StrCat("the reference audio is too short: ",
                                                   static_cast<double>(total) / c.gpt_sample_rate,
                                                   " s in all; voice cloning needs at least ",
                                                   c.min_chunk_seconds, " s"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClonedVoice> CloneXttsVoice(const XttsModel& model, absl::Span<const ReferenceClip> clips) {
  const XttsManifest::Cloning& c = model.config.cloning;
  if (model.cloner == nullptr) {
    return absl::UnimplementedError(absl::StrCat("model '", model.info.name, "' cannot clone voices: ", c.reason));
  }
  VOX_RETURN_IF_ERROR(CheckClips(c, clips));
  c10::InferenceMode guard;
  ClonedVoice voice;
  VOX_RETURN_IF_ERROR(CatchTorchErrors("xtts clone", [&] {
    const auto device = ToTorchDevice(model.device);
    c10::List<torch::Tensor> audio;
    c10::List<int64_t> rates;
    for (const ReferenceClip& clip : clips) {
      audio.push_back(torch::from_blob(const_cast<float*>(clip.samples.data()),
                                       {static_cast<int64_t>(clip.samples.size())}, torch::kFloat)
                          .to(device, torch::kFloat, /*non_blocking=*/false, /*copy=*/true));
      rates.push_back(clip.sample_rate);
    }
    // Cloning runs on a server thread, not an engine worker: the executor's passes off here too.
    torch::jit::GraphOptimizerEnabledGuard no_passes(false);
    auto out = model.cloner->get_method("clone")({audio, rates}).toTuple();
    torch::Tensor latent = out->elements()[0].toTensor().to(torch::kCPU, torch::kFloat).contiguous();
    torch::Tensor speaker = out->elements()[1].toTensor().to(torch::kCPU, torch::kFloat).contiguous();
    if (latent.dim() != 3 || latent.size(0) != 1 || latent.size(1) != model.cond_len ||
        latent.size(2) != model.config.d_model || speaker.numel() != model.speaker_embeddings.size(1)) {
      return absl::InternalError(absl::StrCat("clone.ts returned a latent of shape ", latent.sizes().vec().size(),
                                              " dims and a ", speaker.numel(),
                                              "-value speaker embedding, which do not fit the model"));
    }
    voice.model_id = c.voice_model_id;
    voice.cond_rows = static_cast<int>(latent.size(1));
    voice.cond_dim = static_cast<int>(latent.size(2));
    voice.gpt_cond_latent.assign(latent.data_ptr<float>(), latent.data_ptr<float>() + latent.numel());
    voice.speaker_embedding.assign(speaker.data_ptr<float>(), speaker.data_ptr<float>() + speaker.numel());
    return absl::OkStatus();
  }));
  return voice;
}

}  // namespace vox
