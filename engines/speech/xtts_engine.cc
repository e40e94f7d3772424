#include "engines/speech/xtts_engine.h"

#include <utility>

#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "engines/core/languages.h"
#include "engines/core/status_macros.h"
#include "engines/core/whole_call.h"
#include "engines/speech/xtts_cloner.h"
#include "engines/speech/xtts_model.h"
#include "engines/speech/xtts_stepper.h"
#include "engines/speech/xtts_streamer.h"
#include "engines/torch/device.h"

namespace vox {

XttsEngine::XttsEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
XttsEngine::~XttsEngine() = default;

namespace {

absl::Status CheckStreamOptions(const XttsStreamOptions& stream) {
  if (stream.first_chunk_codes < 1 || stream.chunk_codes < 1 || stream.crossfade_samples < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "xtts stream options: first_chunk_codes (", stream.first_chunk_codes, ") and chunk_codes (",
        stream.chunk_codes, ") must be >= 1, crossfade_samples (", stream.crossfade_samples, ") >= 0"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<XttsEngine>> XttsEngine::Load(const std::string& name,
                                                             const std::string& model_dir,
                                                             const EngineOptions& options,
                                                             const XttsStreamOptions& stream) {
  VOX_RETURN_IF_ERROR(CheckStreamOptions(stream));
  VOX_ASSIGN_OR_RETURN(Manifest manifest, LoadManifest(model_dir, options.verify_checksums));
  return Load(name, std::move(manifest), options, stream);
}

absl::StatusOr<std::unique_ptr<XttsEngine>> XttsEngine::Load(const std::string& name,
                                                             Manifest manifest,
                                                             const EngineOptions& options,
                                                             const XttsStreamOptions& stream) {
  VOX_RETURN_IF_ERROR(CheckStreamOptions(stream));
  auto impl = std::make_unique<Impl>();
  VOX_ASSIGN_OR_RETURN(impl->model,
                       LoadXttsModel(name, std::move(manifest), options, stream.freeze_module));
  impl->stream = stream;
  return std::unique_ptr<XttsEngine>(new XttsEngine(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<SpeechEngine>> XttsEngine::NewReplica() const {
  // The model (module, voice tensors, tokenizer) is shared; options are copied; counters, chunk
  // stats and the code probe start afresh.
  auto impl = std::make_unique<Impl>();
  impl->model = impl_->model;
  impl->stream = impl_->stream;
  return std::unique_ptr<SpeechEngine>(new XttsEngine(std::move(impl)));
}

const ModelInfo& XttsEngine::info() const { return impl_->model->info; }
int XttsEngine::sample_rate() const { return impl_->model->config.sample_rate; }
const std::vector<VoiceInfo>& XttsEngine::voices() const { return impl_->model->voices; }
const std::vector<XttsChunkStats>& XttsEngine::last_chunks() const { return impl_->chunks; }
int64_t XttsEngine::steps_run() const { return impl_->steps; }
int64_t XttsEngine::gpt_calls_run() const { return impl_->gpt_calls; }
bool XttsEngine::has_batched_step() const { return impl_->model->has_step_slots; }
int64_t XttsEngine::conditionings_run() const { return impl_->conditions.computed(); }
int XttsEngine::d_model() const { return impl_->model->config.d_model; }
int XttsEngine::max_codes() const { return impl_->model->config.max_generated_codes; }
int XttsEngine::voice_index(const std::string& name) const { return impl_->model->VoiceIndex(name); }
const XttsStreamOptions& XttsEngine::stream_options() const { return impl_->stream; }
void XttsEngine::set_stream_options(const XttsStreamOptions& options) { impl_->stream = options; }
void XttsEngine::set_code_probe(XttsCodeProbe probe) { impl_->probe = std::move(probe); }

std::string XttsEngine::voice_model_id() const {
  return impl_->model->cloner != nullptr ? impl_->model->config.cloning.voice_model_id : std::string();
}

absl::StatusOr<ClonedVoice> XttsEngine::CloneVoice(absl::Span<const ReferenceClip> clips) const {
  return CloneXttsVoice(*impl_->model, clips);
}

absl::Status XttsEngine::Validate(const SynthesisRequest& request) const {
  return ValidateXttsRequest(*impl_->model, impl_->stream.max_text_bytes, request);
}

absl::StatusOr<std::vector<int64_t>> XttsEngine::TextIds(const std::string& text,
                                                         const std::string& language) const {
  const XttsModel& m = *impl_->model;
  const XttsManifest::Language* l = m.Language(language);
  if (l == nullptr) {
    return absl::InvalidArgumentError(UnknownValueMessage("language", language, m.info.languages));
  }
  return m.tokenizer->Encode(text, l->code);
}

std::unique_ptr<SpeechStepper> XttsEngine::NewStepper() {
  return std::make_unique<XttsStepper>(*impl_);
}

absl::StatusOr<SynthesisStats> XttsEngine::Synthesize(const SynthesisRequest& request,
                                                      const AudioSink& sink, const StopCheck& stop) {
  impl_->chunks.clear();
  XttsStepperOptions options;
  options.chunks = &impl_->chunks;
  XttsStepper stepper(*impl_, options);
  return SynthesizeByStepping(stepper, request, sink, stop);
}

absl::StatusOr<XttsEngine::Generation> XttsEngine::Generate(const std::vector<int64_t>& text_ids,
                                                            int voice_index,
                                                            const SynthesisParams& params,
                                                            const StopCheck& stop) {
  const XttsModel& m = *impl_->model;
  if (voice_index < 0 || voice_index >= static_cast<int>(m.voices.size())) {
    return absl::InvalidArgumentError(absl::StrCat("voice index ", voice_index, " not in 0..",
                                                   m.voices.size() - 1));
  }
  const int max_text_tokens = m.config.max_text_tokens;
  if (text_ids.empty() || static_cast<int>(text_ids.size()) >= max_text_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("text has ", text_ids.size(),
                                                   " ids; it needs 1 to ", max_text_tokens - 1));
  }
  // One piece, the caller's seed as is (no random seed for 0), no vocoding.
  XttsPreparedRequest piece;
  SetBuiltinVoice(m, voice_index, &piece);
  piece.settings = m.Settings(params);
  piece.seed = params.seed;
  piece.forced = params.forced_codes;
  piece.limit = m.CodeLimit(params);
  piece.pieces = {text_ids};
  piece.piece_seeds = {params.seed};
  impl_->chunks.clear();
  XttsStepperOptions options;
  options.vocode = false;
  XttsStepper stepper(*impl_, options);
  constexpr uint64_t kId = 0;
  VOX_RETURN_IF_ERROR(stepper.JoinPrepared(kId, std::move(piece)));
  const uint64_t active[] = {kId};
  while (true) {
    if (stop) VOX_RETURN_IF_ERROR(stop());
    const std::vector<SpeechStepResult> results = stepper.Step(active);
    if (!results[0].status.ok()) return results[0].status;
    if (results[0].finished) return stepper.TakeGeneration(kId);
  }
}

absl::StatusOr<std::vector<float>> XttsEngine::Vocode(const std::vector<float>& latents, int voice_index,
                                                      double speed) {
  const XttsModel& m = *impl_->model;
  const int64_t d = m.config.d_model;
  if (latents.empty() || latents.size() % d != 0 || voice_index < 0 ||
      voice_index >= static_cast<int>(m.voices.size())) {
    return absl::InvalidArgumentError(absl::StrCat("Vocode: ", latents.size(), " floats is not a positive multiple of ",
                                                   d, ", or voice ", voice_index, " is unknown"));
  }
  c10::InferenceMode guard;
  std::vector<float> out;
  VOX_RETURN_IF_ERROR(CatchTorchErrors("xtts vocode", [&] {
    torch::Tensor lat = torch::from_blob(const_cast<float*>(latents.data()),
                                         {1, static_cast<int64_t>(latents.size()) / d, d}, torch::kFloat)
                            .to(ToTorchDevice(m.device));
    torch::Tensor wav = m.module->get_method("vocode")(
        {lat, m.speaker_embeddings.narrow(0, voice_index, 1), speed}).toTensor()[0].to(torch::kCPU).contiguous();
    out.assign(wav.data_ptr<float>(), wav.data_ptr<float>() + wav.numel());
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<float>> XttsEngine::StreamLatents(const std::vector<float>& latents,
                                                             int voice_index, double speed) {
  const XttsModel& m = *impl_->model;
  const int64_t d = m.config.d_model;
  if (latents.empty() || latents.size() % d != 0 || voice_index < 0 ||
      voice_index >= static_cast<int>(m.voices.size())) {
    return absl::InvalidArgumentError(absl::StrCat("StreamLatents: ", latents.size(), " floats is not a positive multiple of ",
                                                   d, ", or voice ", voice_index, " is unknown"));
  }
  c10::InferenceMode guard;
  impl_->chunks.clear();
  std::vector<float> out;
  AudioSink sink = [&out](absl::Span<const float> s) {
    out.insert(out.end(), s.begin(), s.end());
    return true;
  };
  const int64_t n = static_cast<int64_t>(latents.size()) / d;
  VOX_RETURN_IF_ERROR(CatchTorchErrors("xtts stream", [&] {
    XttsStreamer streamer(m, impl_->stream, m.speaker_embeddings.narrow(0, voice_index, 1), speed, n, &sink,
                          XttsStreamer::Clock::now(), &impl_->chunks);
    torch::Tensor all = torch::from_blob(const_cast<float*>(latents.data()), {n, d}, torch::kFloat)
                            .to(ToTorchDevice(m.device));
    for (int64_t i = 0; i < n; ++i) {
      streamer.Add(all[i]);
      if (i + 1 < n) VOX_RETURN_IF_ERROR(streamer.MaybeEmit());
    }
    return streamer.Finish();
  }));
  return out;
}

absl::StatusOr<std::unique_ptr<SpeechEngine>> LoadXttsEngine(const std::string& name,
                                                             const std::string& model_dir,
                                                             const EngineOptions& options) {
  VOX_ASSIGN_OR_RETURN(auto engine, XttsEngine::Load(name, model_dir, options));
  return std::unique_ptr<SpeechEngine>(std::move(engine));
}

}  // namespace vox
