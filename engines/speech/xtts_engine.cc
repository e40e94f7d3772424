#include "engines/speech/xtts_engine.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <utility>

#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/torch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engines/core/languages.h"
#include "engines/core/manifest.h"
#include "engines/speech/xtts_sampler.h"
#include "engines/speech/xtts_stream_plan.h"
#include "engines/text/text_cleaner.h"
#include "engines/text/xtts_tokenizer.h"
#include "engines/torch/device.h"

namespace vox {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Reads manifest fields with errors that name the file and the field.
class Fields {
 public:
  explicit Fields(const Manifest& m) : m_(m) {}

  absl::StatusOr<const nlohmann::json*> Get(const std::string& dotted) const {
    const nlohmann::json* j = &m_.json;
    for (absl::string_view part : absl::StrSplit(dotted, '.')) {
      if (!j->is_object() || !j->contains(std::string(part))) {
        return Missing(dotted);
      }
      j = &(*j)[std::string(part)];
    }
    return j;
  }
  absl::StatusOr<int64_t> Int(const std::string& dotted) const {
    auto j = Get(dotted);
    if (!j.ok()) return j.status();
    if (!(*j)->is_number_integer()) return Bad(dotted, "an integer");
    return (*j)->get<int64_t>();
  }
  absl::StatusOr<double> Number(const std::string& dotted) const {
    auto j = Get(dotted);
    if (!j.ok()) return j.status();
    if (!(*j)->is_number()) return Bad(dotted, "a number");
    return (*j)->get<double>();
  }
  absl::Status Missing(const std::string& f) const {
    return absl::FailedPreconditionError(absl::StrCat(m_.manifest_path, ": field '", f, "' missing"));
  }
  absl::Status Bad(const std::string& f, const std::string& what) const {
    return absl::FailedPreconditionError(
        absl::StrCat(m_.manifest_path, ": field '", f, "' must be ", what));
  }

 private:
  const Manifest& m_;
};

#define VOX_XTTS_CONCAT_INNER(a, b) a##b
#define VOX_XTTS_CONCAT(a, b) VOX_XTTS_CONCAT_INNER(a, b)
#define VOX_ASSIGN_OR_RETURN(lhs, expr)                                            \
  auto VOX_XTTS_CONCAT(status_or_, __LINE__) = (expr);                             \
  if (!VOX_XTTS_CONCAT(status_or_, __LINE__).ok())                                 \
    return VOX_XTTS_CONCAT(status_or_, __LINE__).status();                         \
  lhs = *VOX_XTTS_CONCAT(status_or_, __LINE__)

struct LanguageEntry {
  std::string xtts;
  std::string nllb;
};

}  // namespace

struct XttsEngine::Impl {
  Manifest manifest;
  ModelInfo info;
  DevicePlacement device;
  std::shared_ptr<torch::jit::Module> module;
  torch::Tensor cond_latents;        // [V, 32, D] on device, model dtype
  torch::Tensor speaker_embeddings;  // [V, S, 1]
  std::shared_ptr<const XttsTokenizer> tokenizer;  // shared with replicas
  std::vector<LanguageEntry> languages;  // supported: manifest ∩ cleaner ∩ vocab
  std::vector<VoiceInfo> voices;
  std::vector<std::string> voice_names;
  int d_model = 0, cond_len = 32, hop = 256, sample_rate = 24000;
  int64_t start_audio = 1024, stop_audio = 1025;
  int max_text_tokens = 402, max_codes = 602, receptive_field = 17;
  SamplingSettings sampling_defaults;
  InterpolationGeometry geometry;
  XttsStreamOptions stream;
  XttsCodeProbe probe;
  std::vector<XttsChunkStats> chunks;
  int64_t steps = 0;      // GPT positions computed (prefix counts one)
  int64_t gpt_calls = 0;  // GPT module calls (prefix, step, step_slots)
  bool has_step_slots = false;  // model.ts exports step_slots (exporter version >= 2)

  const LanguageEntry* Language(const std::string& nllb) const {
    for (const auto& l : languages) {
      if (l.nllb == nllb) return &l;
    }
    return nullptr;
  }

  int context() const {
    return stream.context_frames < 0 ? receptive_field : stream.context_frames;
  }

  absl::StatusOr<SamplingSettings> Settings(const SynthesisParams& p) const {
    SamplingSettings s = sampling_defaults;
    s.greedy = p.greedy;
    if (p.temperature != 0) s.temperature = DecimalDouble(p.temperature);
    if (p.top_k != 0) s.top_k = p.top_k;
    if (p.top_p != 0) s.top_p = DecimalDouble(p.top_p);
    if (p.repetition_penalty != 0) s.repetition_penalty = DecimalDouble(p.repetition_penalty);
    return s;
  }

  // Vocodes while generating: owns the latent buffer of one utterance. A chunk is planned
  // (window and interpolated frames), its frames decoded (alone, or batched with other streams'
  // frames of the same length), then completed (cross-fade, sink).
  class Streamer {
   public:
    // `chunks` (may be null) receives per-chunk facts.
    Streamer(Impl& impl, int voice, double speed, int64_t capacity, const AudioSink* sink,
             Clock::time_point t0, std::vector<XttsChunkStats>* chunks)
        : impl_(impl), sink_(sink), chunks_(chunks), t0_(t0), speed_(speed), geometry_(impl.geometry) {
      geometry_.scale0 = speed == 1.0 ? 1.0 : 1.0 / std::max(speed, 0.05);
      buffer_ = torch::zeros({1, capacity, impl.d_model},
                             torch::TensorOptions().dtype(torch::kFloat).device(ToTorchDevice(impl.device)));
      speaker_ = impl.speaker_embeddings.narrow(0, voice, 1);
    }

    void Add(const torch::Tensor& latent) {  // [1, D] or [D]
      buffer_.select(1, n_).copy_(latent.reshape({1, -1}));
      ++n_;
    }

    // Whether a non-final chunk is due (enough new codes since the last one).
    bool Due() const {
      const auto& o = impl_.stream;
      return emitted_chunks_ == 0 ? n_ >= o.first_chunk_codes : n_ - last_chunk_n_ >= o.chunk_codes;
    }

    absl::Status MaybeEmit() { return Due() ? Emit(false) : absl::OkStatus(); }
    absl::Status Finish() { return Emit(true); }
    int64_t samples() const { return samples_; }
    const torch::Tensor& speaker() const { return speaker_; }

    struct Chunk {
      ChunkWindow window;
      bool final = false;
      torch::Tensor frames;  // [1, D, window frames] vocoder input
      Clock::time_point started;
    };
    // Plans the next chunk: false when it would emit nothing. Torch errors throw (callers wrap).
    bool Plan(bool final, Chunk* c) {
      c->window = NextChunkWindow(geometry_, n_, emitted_frames_, impl_.context(), final);
      if (c->window.empty()) return false;
      c->final = final;
      c->started = Clock::now();
      const ChunkWindow& w = c->window;
      c->frames = impl_.module->get_method("interpolate_window")(
          {buffer_.narrow(1, 0, n_), w.window_begin, w.window_end - w.window_begin, speed_}).toTensor();
      return true;
    }
    // Completes a planned chunk with its decoded audio (CPU float, contiguous, 256 · frames).
    absl::Status Complete(const Chunk& c, const torch::Tensor& audio) {
      const ChunkWindow& w = c.window;
      const int64_t hop = impl_.hop;
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
        const int64_t keep = std::min<int64_t>(avail, impl_.stream.crossfade_samples);
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

   private:
    absl::Status Emit(bool final) {
      Chunk c;
      torch::Tensor audio;
      bool planned = false;
      absl::Status st = CatchTorchErrors("xtts vocoder", [&] {
        planned = Plan(final, &c);
        if (planned) {
          audio = impl_.module->get_method("decode_frames")({c.frames, speaker_}).toTensor()[0]
                      .to(torch::kCPU).contiguous();
        }
        return absl::OkStatus();
      });
      if (!st.ok() || !planned) return st;
      return Complete(c, audio);
    }

    Impl& impl_;
    const AudioSink* sink_;
    std::vector<XttsChunkStats>* chunks_;
    Clock::time_point t0_;
    double speed_;
    InterpolationGeometry geometry_;
    torch::Tensor buffer_, speaker_;
    int64_t n_ = 0, emitted_frames_ = 0, last_chunk_n_ = 0, emitted_chunks_ = 0, samples_ = 0;
    std::vector<float> tail_;
  };

  // Generates one piece; feeds `streamer` (may be null) with every latent.
  absl::Status Run(const std::vector<int64_t>& ids, int voice, const SamplingSettings& settings,
                   uint64_t seed, int forced, const StopCheck& stop, Streamer* streamer,
                   Generation* gen) {
    const int64_t limit = forced > 0 ? forced : max_codes;
    const int64_t prefix_len = cond_len + static_cast<int64_t>(ids.size()) + 3;
    gen->seed = seed;
    CodeSampler sampler(settings, seed, start_audio);
    torch::Tensor logits, latent;
    c10::List<torch::Tensor> kv;
    int64_t cache_len = prefix_len;
    absl::Status st = CatchTorchErrors("xtts prefix", [&] {
      torch::Tensor text = torch::tensor(ids, torch::kLong).reshape({1, -1}).to(ToTorchDevice(device));
      auto out = module->get_method("prefix")(
          {cond_latents.narrow(0, voice, 1), text, prefix_len + limit}).toTuple();
      logits = out->elements()[0].toTensor();
      latent = out->elements()[1].toTensor();
      kv = out->elements()[2].toTensorList();
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    ++steps;
    ++gpt_calls;
    torch::jit::Method step = module->get_method("step");
    while (true) {
      if (stop) {
        absl::Status s = stop();
        if (!s.ok()) return s;
      }
      torch::Tensor lat_cpu = latent.to(torch::kCPU).contiguous();
      gen->latents.insert(gen->latents.end(), lat_cpu.data_ptr<float>(),
                          lat_cpu.data_ptr<float>() + d_model);
      if (streamer != nullptr) streamer->Add(latent);
      torch::Tensor l = logits.to(torch::kCPU).contiguous();
      const int64_t code = sampler.Next(absl::MakeConstSpan(l.data_ptr<float>(), l.numel()),
                                        forced > 0 ? stop_audio : -1);
      gen->codes.push_back(code);
      if (code == stop_audio) {
        gen->stopped = true;
        break;
      }
      if (static_cast<int64_t>(gen->codes.size()) >= limit) break;
      if (streamer != nullptr) {
        absl::Status s = streamer->MaybeEmit();
        if (!s.ok()) return s;
      }
      st = CatchTorchErrors("xtts step", [&] {
        torch::Tensor c = torch::full({1, 1}, code, torch::TensorOptions().dtype(torch::kLong).device(ToTorchDevice(device)));
        torch::Tensor pos = torch::full({1, 1}, static_cast<int64_t>(gen->codes.size()),
                                        torch::TensorOptions().dtype(torch::kLong).device(ToTorchDevice(device)));
        auto out = step({c, pos, kv, cache_len}).toTuple();
        logits = out->elements()[0].toTensor();
        latent = out->elements()[1].toTensor();
        return absl::OkStatus();
      });
      if (!st.ok()) return st;
      ++cache_len;
      ++steps;
      ++gpt_calls;
    }
    if (streamer != nullptr) return streamer->Finish();
    return absl::OkStatus();
  }
};

XttsEngine::XttsEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
XttsEngine::~XttsEngine() = default;

absl::StatusOr<std::unique_ptr<SpeechEngine>> XttsEngine::NewReplica() const {
  // Copying Impl shares the module, the voice tensors and the tokenizer (handles, not data);
  // the copy's counters, chunk stats and probe start afresh.
  auto impl = std::make_unique<Impl>(*impl_);
  impl->chunks.clear();
  impl->steps = 0;
  impl->gpt_calls = 0;
  impl->probe = {};
  return std::unique_ptr<SpeechEngine>(new XttsEngine(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<XttsEngine>> XttsEngine::Load(const std::string& name,
                                                             const std::string& model_dir,
                                                             const EngineOptions& options,
                                                             const XttsStreamOptions& stream) {
  auto impl = std::make_unique<Impl>();
  {
    auto m = LoadManifest(model_dir, options.verify_checksums);
    if (!m.ok()) return m.status();
    impl->manifest = std::move(*m);
  }
  const Manifest& man = impl->manifest;
  if (man.architecture != "xtts-v2") {
    return absl::FailedPreconditionError(absl::StrCat(
        man.manifest_path, ": field 'architecture' is '", man.architecture, "', expected 'xtts-v2'"));
  }
  for (const char* f : {"model.ts", "voices.ts", "vocab.json"}) {
    if (!man.files.count(f)) {
      return absl::FailedPreconditionError(
          absl::StrCat(man.manifest_path, ": field 'files' does not list '", f, "'"));
    }
  }
  Fields fields(man);
  int64_t v;
  double dv;
  VOX_ASSIGN_OR_RETURN(v, fields.Int("config.d_model"));
  impl->d_model = static_cast<int>(v);
  VOX_ASSIGN_OR_RETURN(v, fields.Int("config.cond_latent_len"));
  impl->cond_len = static_cast<int>(v);
  VOX_ASSIGN_OR_RETURN(v, fields.Int("config.hifigan.hop_length"));
  impl->hop = static_cast<int>(v);
  VOX_ASSIGN_OR_RETURN(v, fields.Int("config.hifigan.receptive_field_frames"));
  impl->receptive_field = static_cast<int>(v);
  VOX_ASSIGN_OR_RETURN(v, fields.Int("special_ids.start_audio"));
  impl->start_audio = v;
  VOX_ASSIGN_OR_RETURN(v, fields.Int("special_ids.stop_audio"));
  impl->stop_audio = v;
  VOX_ASSIGN_OR_RETURN(v, fields.Int("sample_rate"));
  impl->sample_rate = static_cast<int>(v);
  int64_t input_rate, stride;
  VOX_ASSIGN_OR_RETURN(input_rate, fields.Int("input_sample_rate"));
  VOX_ASSIGN_OR_RETURN(stride, fields.Int("code_stride"));
  VOX_ASSIGN_OR_RETURN(v, fields.Int("max_text_tokens"));
  impl->max_text_tokens = static_cast<int>(v);
  VOX_ASSIGN_OR_RETURN(v, fields.Int("max_generated_codes"));
  impl->max_codes = static_cast<int>(v);
  VOX_ASSIGN_OR_RETURN(dv, fields.Number("sampling.temperature"));
  impl->sampling_defaults.temperature = dv;
  VOX_ASSIGN_OR_RETURN(v, fields.Int("sampling.top_k"));
  impl->sampling_defaults.top_k = static_cast<int>(v);
  VOX_ASSIGN_OR_RETURN(dv, fields.Number("sampling.top_p"));
  impl->sampling_defaults.top_p = dv;
  VOX_ASSIGN_OR_RETURN(dv, fields.Number("sampling.repetition_penalty"));
  impl->sampling_defaults.repetition_penalty = dv;
  if (impl->hop <= 0 || stride % impl->hop != 0 || input_rate <= 0 || impl->sample_rate <= 0) {
    return fields.Bad("code_stride", "a multiple of config.hifigan.hop_length");
  }
  impl->geometry.scale1 = static_cast<double>(stride) / static_cast<double>(impl->hop);
  impl->geometry.scale2 = static_cast<double>(impl->sample_rate) / static_cast<double>(input_rate);
  impl->geometry.resample = impl->sample_rate != input_rate;
  impl->stream = stream;
  if (stream.first_chunk_codes < 1 || stream.chunk_codes < 1 || stream.crossfade_samples < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "xtts stream options: first_chunk_codes (", stream.first_chunk_codes, ") and chunk_codes (",
        stream.chunk_codes, ") must be >= 1, crossfade_samples (", stream.crossfade_samples, ") >= 0"));
  }

  // Tokenizer and languages.
  {
    auto tok = XttsTokenizer::FromFile(man.Path("vocab.json"));
    if (!tok.ok()) return tok.status();
    impl->tokenizer = std::make_shared<const XttsTokenizer>(std::move(*tok));
  }
  const nlohmann::json* langs;
  VOX_ASSIGN_OR_RETURN(langs, fields.Get("languages"));
  if (!langs->is_array()) return fields.Bad("languages", "an array");
  const auto& cleaner = XttsCleanerLanguages();
  for (const auto& l : *langs) {
    if (!l.is_object() || !l.contains("code") || !l.contains("nllb")) {
      return fields.Bad("languages", "an array of {code, nllb}");
    }
    LanguageEntry e{l["code"].get<std::string>(), l["nllb"].get<std::string>()};
    if (std::find(cleaner.begin(), cleaner.end(), e.xtts) == cleaner.end()) continue;
    if (impl->tokenizer->TokenId(XttsLanguageToken(e.xtts)) < 0) continue;
    impl->languages.push_back(e);
  }
  if (impl->languages.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        man.manifest_path, ": none of the 'languages' is supported by the text front end (",
        absl::StrJoin(cleaner, ", "), ")"));
  }
  const nlohmann::json* voices;
  VOX_ASSIGN_OR_RETURN(voices, fields.Get("voices"));
  if (!voices->is_array() || voices->empty()) return fields.Bad("voices", "a non-empty array");
  for (size_t i = 0; i < voices->size(); ++i) {
    const auto& vj = (*voices)[i];
    if (!vj.is_object() || !vj.contains("name") || !vj.contains("index") ||
        vj["index"].get<int64_t>() != static_cast<int64_t>(i)) {
      return fields.Bad(absl::StrCat("voices[", i, "]"), absl::StrCat("{name, index: ", i, ", languages}"));
    }
    VoiceInfo vi;
    vi.name = vj["name"].get<std::string>();
    if (vj.contains("languages")) {
      for (const auto& code : vj["languages"]) {
        if (impl->Language(code.get<std::string>()) != nullptr) vi.languages.push_back(code);
      }
    } else {
      for (const auto& l : impl->languages) vi.languages.push_back(l.nllb);
    }
    impl->voice_names.push_back(vi.name);
    impl->voices.push_back(std::move(vi));
  }

  // Device, dtype, modules.
  {
    auto dev = ResolveDevice(options.device);
    if (!dev.ok()) return dev.status();
    impl->device = *dev;
  }
  std::string dtype_name = options.dtype.empty() ? man.dtype : options.dtype;
  auto dtype = ParseDType(dtype_name);
  if (!dtype.ok()) return dtype.status();
  if (auto s = CheckDTypeSupported(*dtype, impl->device); !s.ok()) return s;
  {
    auto mod = LoadTorchModule(man.Path("model.ts"), impl->device);
    if (!mod.ok()) return mod.status();
    impl->module = std::move(*mod);
  }
  auto voices_module = LoadTorchModule(man.Path("voices.ts"), impl->device);
  if (!voices_module.ok()) return voices_module.status();
  absl::Status st = CatchTorchErrors(absl::StrCat(man.Path("voices.ts"), ": cannot read voices"), [&] {
    // Only the GPT changes dtype; the vocoder stays float32 (docs/model-format.md, XTTS).
    if (dtype_name != man.dtype) impl->module->attr("gpt").toModule().to(ToTorchDType(*dtype));
    impl->cond_latents = (*voices_module)->attr("cond_latents").toTensor().to(ToTorchDType(*dtype));
    impl->speaker_embeddings = (*voices_module)->attr("speaker_embeddings").toTensor();  // float32
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  impl->has_step_slots = impl->module->find_method("step_slots").has_value();
  if (stream.freeze_module) {
    st = CatchTorchErrors(absl::StrCat(man.Path("model.ts"), ": cannot freeze"), [&] {
      std::vector<std::string> methods{"prefix", "step", "interpolate", "interpolate_window",
                                       "decode_frames", "vocode"};
      if (impl->has_step_slots) methods.push_back("step_slots");
      impl->module = std::make_shared<torch::jit::Module>(torch::jit::freeze(*impl->module, methods));
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
  }
  if (impl->cond_latents.dim() != 3 || impl->cond_latents.size(0) != static_cast<int64_t>(impl->voices.size()) ||
      impl->cond_latents.size(2) != impl->d_model || impl->speaker_embeddings.dim() != 3 ||
      impl->speaker_embeddings.size(0) != static_cast<int64_t>(impl->voices.size())) {
    return absl::FailedPreconditionError(absl::StrCat(
        man.Path("voices.ts"), ": cond_latents/speaker_embeddings do not match the manifest's ",
        impl->voices.size(), " voices of width ", impl->d_model));
  }
  impl->cond_len = static_cast<int>(impl->cond_latents.size(1));

  impl->info.name = name;
  impl->info.kind = "speech";
  impl->info.architecture = "xtts-v2";
  impl->info.device = impl->device.name();
  impl->info.dtype = DTypeName(*dtype);
  impl->info.path = model_dir;
  impl->info.fallback = options.fallback;
  for (const auto& l : impl->languages) impl->info.languages.push_back(l.nllb);
  return std::unique_ptr<XttsEngine>(new XttsEngine(std::move(impl)));
}

const ModelInfo& XttsEngine::info() const { return impl_->info; }
int XttsEngine::sample_rate() const { return impl_->sample_rate; }
const std::vector<VoiceInfo>& XttsEngine::voices() const { return impl_->voices; }
const std::vector<XttsChunkStats>& XttsEngine::last_chunks() const { return impl_->chunks; }
int64_t XttsEngine::steps_run() const { return impl_->steps; }
int64_t XttsEngine::gpt_calls_run() const { return impl_->gpt_calls; }
bool XttsEngine::has_batched_step() const { return impl_->has_step_slots; }
int XttsEngine::d_model() const { return impl_->d_model; }
int XttsEngine::max_codes() const { return impl_->max_codes; }
const XttsStreamOptions& XttsEngine::stream_options() const { return impl_->stream; }
void XttsEngine::set_stream_options(const XttsStreamOptions& options) { impl_->stream = options; }
void XttsEngine::set_code_probe(XttsCodeProbe probe) { impl_->probe = std::move(probe); }

int XttsEngine::voice_index(const std::string& name) const {
  for (size_t i = 0; i < impl_->voice_names.size(); ++i) {
    if (impl_->voice_names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

absl::Status XttsEngine::Validate(const SynthesisRequest& r) const {
  const Impl& m = *impl_;
  if (m.Language(r.language) == nullptr) {
    return absl::InvalidArgumentError(UnknownValueMessage("language", r.language, m.info.languages));
  }
  if (!r.voice.empty()) {
    const int vi = voice_index(r.voice);
    if (vi < 0) return absl::InvalidArgumentError(UnknownValueMessage("voice", r.voice, m.voice_names));
    const auto& langs = m.voices[vi].languages;
    if (std::find(langs.begin(), langs.end(), r.language) == langs.end()) {
      return absl::InvalidArgumentError(absl::StrCat("voice '", r.voice, "' does not speak ", r.language,
                                                     "; it speaks ", absl::StrJoin(langs, ", ")));
    }
  }
  if (absl::StripAsciiWhitespace(r.text).empty()) {
    return absl::InvalidArgumentError("text is empty");
  }
  if (static_cast<int64_t>(r.text.size()) > m.stream.max_text_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("text is ", r.text.size(), " bytes; the limit is ",
                                                   m.stream.max_text_bytes, " bytes"));
  }
  const SynthesisParams& p = r.params;
  if (p.temperature < 0) {
    return absl::InvalidArgumentError(absl::StrCat("temperature ", p.temperature, " must be > 0 (0 = default)"));
  }
  if (p.top_k < 0) return absl::InvalidArgumentError(absl::StrCat("top_k ", p.top_k, " must be >= 0"));
  if (p.top_p < 0 || p.top_p > 1) {
    return absl::InvalidArgumentError(absl::StrCat("top_p ", p.top_p, " must be in (0, 1] (0 = default)"));
  }
  if (p.repetition_penalty < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty ", p.repetition_penalty, " must be > 0 (0 = default)"));
  }
  if (p.forced_codes < 0 || p.forced_codes > m.max_codes) {
    return absl::InvalidArgumentError(
        absl::StrCat("forced_codes ", p.forced_codes, " must be in 0..", m.max_codes));
  }
  if (p.speed != 0 && (p.speed < 0.25f || p.speed > 4.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("speed ", p.speed, " must be in 0.25..4 (0 = default 1)"));
  }
  if (p.pitch != 0) {
    return absl::InvalidArgumentError(absl::StrCat("pitch ", p.pitch, " is not supported by xtts-v2; allowed: 0"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> XttsEngine::TextIds(const std::string& text,
                                                         const std::string& language) const {
  const LanguageEntry* l = impl_->Language(language);
  if (l == nullptr) {
    return absl::InvalidArgumentError(UnknownValueMessage("language", language, impl_->info.languages));
  }
  return impl_->tokenizer->Encode(text, l->xtts);
}

absl::StatusOr<XttsEngine::Generation> XttsEngine::Generate(const std::vector<int64_t>& text_ids,
                                                            int voice_index,
                                                            const SynthesisParams& params,
                                                            const StopCheck& stop) {
  if (voice_index < 0 || voice_index >= static_cast<int>(impl_->voices.size())) {
    return absl::InvalidArgumentError(absl::StrCat("voice index ", voice_index, " not in 0..",
                                                   impl_->voices.size() - 1));
  }
  if (text_ids.empty() || static_cast<int>(text_ids.size()) >= impl_->max_text_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("text has ", text_ids.size(),
                                                   " ids; it needs 1 to ", impl_->max_text_tokens - 1));
  }
  auto settings = impl_->Settings(params);
  if (!settings.ok()) return settings.status();
  c10::InferenceMode guard;
  impl_->chunks.clear();
  Generation gen;
  absl::Status st = impl_->Run(text_ids, voice_index, *settings, params.seed, params.forced_codes, stop,
                               nullptr, &gen);
  if (!st.ok()) return st;
  return gen;
}

absl::StatusOr<std::vector<float>> XttsEngine::Vocode(const std::vector<float>& latents, int voice_index,
                                                      double speed) {
  const int64_t d = impl_->d_model;
  if (latents.empty() || latents.size() % d != 0 || voice_index < 0 ||
      voice_index >= static_cast<int>(impl_->voices.size())) {
    return absl::InvalidArgumentError(absl::StrCat("Vocode: ", latents.size(), " floats is not a positive multiple of ",
                                                   d, ", or voice ", voice_index, " is unknown"));
  }
  c10::InferenceMode guard;
  std::vector<float> out;
  absl::Status st = CatchTorchErrors("xtts vocode", [&] {
    torch::Tensor lat = torch::from_blob(const_cast<float*>(latents.data()),
                                         {1, static_cast<int64_t>(latents.size()) / d, d}, torch::kFloat)
                            .to(ToTorchDevice(impl_->device));
    torch::Tensor wav = impl_->module->get_method("vocode")(
        {lat, impl_->speaker_embeddings.narrow(0, voice_index, 1), speed}).toTensor()[0].to(torch::kCPU).contiguous();
    out.assign(wav.data_ptr<float>(), wav.data_ptr<float>() + wav.numel());
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<float>> XttsEngine::StreamLatents(const std::vector<float>& latents,
                                                             int voice_index, double speed) {
  const int64_t d = impl_->d_model;
  if (latents.empty() || latents.size() % d != 0 || voice_index < 0 ||
      voice_index >= static_cast<int>(impl_->voices.size())) {
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
  absl::Status st = CatchTorchErrors("xtts stream", [&] {
    Impl::Streamer streamer(*impl_, voice_index, speed, n, &sink, Clock::now(), &impl_->chunks);
    torch::Tensor all = torch::from_blob(const_cast<float*>(latents.data()), {n, d}, torch::kFloat)
                            .to(ToTorchDevice(impl_->device));
    for (int64_t i = 0; i < n; ++i) {
      streamer.Add(all[i]);
      if (i + 1 < n) {
        absl::Status s = streamer.MaybeEmit();
        if (!s.ok()) return s;
      }
    }
    return streamer.Finish();
  });
  if (!st.ok()) return st;
  return out;
}

namespace {

// A validated request resolved against the model: voice, sampling, seed, and the token ids of
// each sentence piece that has something to say.
struct PreparedRequest {
  int voice = -1;
  SamplingSettings settings;
  uint64_t seed = 0;  // the seed actually used (random when the request's is 0 and not greedy)
  double speed = 1.0;
  int forced = 0;
  int64_t limit = 0;  // codes per piece at most
  std::vector<std::vector<int64_t>> pieces;
  std::vector<uint64_t> piece_seeds;  // seed + the piece's index among all pieces
};

absl::StatusOr<PreparedRequest> PrepareRequest(const XttsEngine& engine, const XttsEngine::Impl& m,
                                               const SynthesisRequest& request) {
  if (absl::Status s = engine.Validate(request); !s.ok()) return s;
  PreparedRequest out;
  const LanguageEntry* lang = m.Language(request.language);
  out.voice = request.voice.empty() ? -1 : engine.voice_index(request.voice);
  for (size_t i = 0; i < m.voices.size() && out.voice < 0; ++i) {
    const auto& ls = m.voices[i].languages;
    if (std::find(ls.begin(), ls.end(), request.language) != ls.end()) out.voice = static_cast<int>(i);
  }
  if (out.voice < 0) return absl::InvalidArgumentError(absl::StrCat("no voice speaks ", request.language));
  auto settings = m.Settings(request.params);
  if (!settings.ok()) return settings.status();
  out.settings = *settings;
  auto pieces = SplitForXtts(*m.tokenizer, request.text, lang->xtts, m.max_text_tokens);
  if (!pieces.ok()) return pieces.status();
  if (pieces->empty()) return absl::InvalidArgumentError("text is empty after cleaning");
  out.seed = request.params.seed;
  if (out.seed == 0 && !request.params.greedy) {
    std::random_device rd;
    out.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    if (out.seed == 0) out.seed = 1;
  }
  out.speed = request.params.speed == 0 ? 1.0 : DecimalDouble(request.params.speed);
  out.forced = request.params.forced_codes;
  out.limit = out.forced > 0 ? out.forced : m.max_codes;
  for (size_t k = 0; k < pieces->size(); ++k) {
    auto ids = m.tokenizer->Encode((*pieces)[k], lang->xtts);
    if (!ids.ok()) return ids.status();
    if (ids->size() <= 1) continue;  // only the language token: nothing to say
    out.pieces.push_back(std::move(*ids));
    out.piece_seeds.push_back(out.seed + k);
  }
  if (out.pieces.empty()) {
    return absl::InvalidArgumentError("text has nothing to synthesize after cleaning");
  }
  return out;
}

}  // namespace

absl::StatusOr<SynthesisStats> XttsEngine::Synthesize(const SynthesisRequest& request,
                                                      const AudioSink& sink, const StopCheck& stop) {
  Impl& m = *impl_;
  auto prep = PrepareRequest(*this, m, request);
  if (!prep.ok()) return prep.status();
  c10::InferenceMode guard;
  m.chunks.clear();
  SynthesisStats stats;
  stats.seed = prep->seed;
  stats.voice = m.voice_names[prep->voice];
  const auto t0 = Clock::now();
  for (size_t k = 0; k < prep->pieces.size(); ++k) {
    Generation gen;
    absl::Status st = CatchTorchErrors("xtts synthesize", [&] {
      Impl::Streamer streamer(m, prep->voice, prep->speed, prep->limit, &sink, t0, &m.chunks);
      absl::Status s = m.Run(prep->pieces[k], prep->voice, prep->settings, prep->piece_seeds[k],
                             prep->forced, stop, &streamer, &gen);
      stats.samples += streamer.samples();
      return s;
    });
    stats.codes += static_cast<int64_t>(gen.codes.size());
    if (!st.ok()) return st;
  }
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Continuous batching (docs/speech.md, "Stepper").

namespace {

class XttsStepper : public SpeechStepper {
 public:
  using Impl = XttsEngine::Impl;

  XttsStepper(XttsEngine& engine, Impl& m)
      : engine_(engine), m_(m), batched_(m.has_step_slots && m.stream.batched_steps) {}

  absl::Status Join(uint64_t id, const SynthesisRequest& request) override {
    if (seqs_.count(id) != 0) {
      return absl::AlreadyExistsError(absl::StrCat("sequence ", id, " has already joined"));
    }
    auto prep = PrepareRequest(engine_, m_, request);
    if (!prep.ok()) return prep.status();
    auto seq = std::make_unique<Seq>();
    seq->id = id;
    seq->req = std::move(*prep);
    seq->stats.seed = seq->req.seed;
    seq->stats.voice = m_.voice_names[seq->req.voice];
    Seq* raw = seq.get();
    seq->sink = [raw](absl::Span<const float> samples) {
      raw->audio.insert(raw->audio.end(), samples.begin(), samples.end());
      return true;
    };
    seq->slot = TakeSlot();
    seqs_.emplace(id, std::move(seq));
    return absl::OkStatus();
  }

  std::vector<SpeechStepResult> Step(absl::Span<const uint64_t> active) override {
    std::vector<SpeechStepResult> results(active.size());
    std::vector<Seq*> listed(active.size(), nullptr);
    {
      std::vector<uint64_t> seen;
      for (size_t i = 0; i < active.size(); ++i) {
        auto it = seqs_.find(active[i]);
        if (it == seqs_.end()) {
          results[i].status = absl::NotFoundError(absl::StrCat("sequence ", active[i], " has not joined"));
        } else if (std::find(seen.begin(), seen.end(), active[i]) != seen.end()) {
          results[i].status = absl::InvalidArgumentError(absl::StrCat("sequence ", active[i], " listed twice"));
        } else {
          listed[i] = it->second.get();
          seen.push_back(active[i]);
        }
      }
    }
    c10::InferenceMode guard;
    // 1. Prefill the sequences starting a piece (one at a time: their texts differ in length).
    for (Seq* s : listed) {
      if (s != nullptr && s->phase == Phase::kPrefill) Fail(s, Prefill(s));
    }
    // 2. Sample every sequence's next code (one batched sampler call: each row with its own
    //    settings, seen codes and generator); plan the vocoder chunks that are due.
    std::vector<Seq*> sampling;
    for (Seq* s : listed) {
      if (s == nullptr || s->phase != Phase::kGenerate) continue;
      Fail(s, CatchTorchErrors("xtts stepper", [&] {
        s->streamer->Add(s->latent);
        return absl::OkStatus();
      }));
      if (s->phase == Phase::kGenerate) sampling.push_back(s);
    }
    std::vector<int64_t> codes(sampling.size(), -1);
    if (!sampling.empty()) {
      const absl::Status st = CatchTorchErrors("xtts sampler", [&] {
        const int64_t width = sampling[0]->logits.numel();
        std::vector<float> rows;
        std::vector<CodeSampler*> samplers;
        std::vector<int64_t> banned;
        std::vector<size_t> drawn;  // indices into `sampling` that sample (not forced)
        for (size_t i = 0; i < sampling.size(); ++i) {
          Seq* s = sampling[i];
          if (m_.probe.force) codes[i] = m_.probe.force(s->id, s->stats.codes);
          if (codes[i] >= 0) {
            s->sampler->Record(codes[i]);
            continue;
          }
          const float* l = s->logits.data_ptr<float>();
          rows.insert(rows.end(), l, l + width);
          samplers.push_back(s->sampler.get());
          banned.push_back(s->req.forced > 0 ? m_.stop_audio : -1);
          drawn.push_back(i);
        }
        if (!drawn.empty()) {
          const std::vector<int64_t> sampled = CodeSampler::NextBatch(samplers, rows, width, banned);
          for (size_t k = 0; k < drawn.size(); ++k) codes[drawn[k]] = sampled[k];
        }
        if (m_.probe.fed) {
          for (size_t i = 0; i < sampling.size(); ++i) {
            Seq* s = sampling[i];
            m_.probe.fed(s->id, s->stats.codes,
                         absl::MakeConstSpan(s->logits.data_ptr<float>(), width), codes[i]);
          }
        }
        return absl::OkStatus();
      });
      if (!st.ok()) {
        for (Seq* s : sampling) Fail(s, st);
        sampling.clear();
      }
    }
    std::vector<Pending> pending;
    std::vector<std::pair<Seq*, int64_t>> batch;  // sequences that go on, with the code to feed
    for (size_t i = 0; i < sampling.size(); ++i) {
      Seq* s = sampling[i];
      const int64_t code = codes[i];
      Fail(s, CatchTorchErrors("xtts stepper", [&] {
        ++s->piece_codes;
        ++s->stats.codes;
        const bool end = code == m_.stop_audio || s->piece_codes >= s->req.limit;
        Pending p{s, {}};
        if (end) {
          s->piece_done = true;
          if (s->streamer->Plan(true, &p.chunk)) pending.push_back(std::move(p));
        } else {
          if (s->streamer->Due() && s->streamer->Plan(false, &p.chunk)) pending.push_back(std::move(p));
          batch.emplace_back(s, code);
        }
        return absl::OkStatus();
      }));
    }
    // 3. Vocode: chunks whose windows have the same length go through HiFi-GAN together.
    Vocode(pending);
    for (Seq* s : listed) {
      if (s != nullptr && s->phase == Phase::kGenerate && s->piece_done) EndPiece(s);
    }
    // 4. One GPT step for every sequence that goes on.
    batch.erase(std::remove_if(batch.begin(), batch.end(),
                               [](const auto& b) { return b.first->phase != Phase::kGenerate; }),
                batch.end());
    if (!batch.empty()) {
      // A batch of one takes `step` on its slot's view: same numbers, about half the cost of
      // step_slots' gather and mask for a single row (tiny model, CPU).
      const absl::Status st = batched_ && batch.size() > 1 ? StepBatched(batch) : StepOneByOne(batch);
      if (!st.ok()) {
        for (auto& b : batch) Fail(b.first, st);
      }
    }
    for (size_t i = 0; i < active.size(); ++i) {
      Seq* s = listed[i];
      if (s == nullptr) continue;
      SpeechStepResult& r = results[i];
      r.audio = std::move(s->audio);
      s->audio.clear();
      if (s->phase == Phase::kFailed) {
        r.status = s->error;
      } else if (s->phase == Phase::kDone) {
        r.finished = true;
        r.stats = s->stats;
      }
    }
    return results;
  }

  void Leave(uint64_t id) override {
    auto it = seqs_.find(id);
    if (it == seqs_.end()) return;
    FreeSlot(it->second.get());
    seqs_.erase(it);
    if (seqs_.empty()) {  // idle: give the caches' memory back
      kv_ = c10::List<torch::Tensor>();
      slot_used_.clear();
    }
  }

  int size() const override { return static_cast<int>(seqs_.size()); }

 private:
  enum class Phase { kPrefill, kGenerate, kDone, kFailed };

  struct Seq {
    uint64_t id = 0;
    PreparedRequest req;
    size_t piece = 0;  // index into req.pieces
    int slot = -1;     // cache slot; -1 once done or failed
    Phase phase = Phase::kPrefill;
    bool piece_done = false;
    std::unique_ptr<CodeSampler> sampler;
    std::unique_ptr<Impl::Streamer> streamer;
    AudioSink sink;            // appends to `audio`
    std::vector<float> audio;  // emitted during the current Step
    torch::Tensor logits;      // CPU float [A]: the next code's logits
    torch::Tensor latent;      // [D] on the device: the next code's latent
    int64_t cache_len = 0;     // cache rows filled
    int64_t piece_codes = 0;   // codes generated in the current piece
    SynthesisStats stats;
    absl::Status error;
  };

  struct Pending {
    Seq* seq;
    Impl::Streamer::Chunk chunk;
  };

  int TakeSlot() {
    for (size_t i = 0; i < slot_used_.size(); ++i) {
      if (!slot_used_[i]) {
        slot_used_[i] = true;
        return static_cast<int>(i);
      }
    }
    slot_used_.push_back(true);
    return static_cast<int>(slot_used_.size()) - 1;
  }

  void FreeSlot(Seq* s) {
    if (s->slot >= 0) slot_used_[s->slot] = false;
    s->slot = -1;
  }

  void Fail(Seq* s, const absl::Status& st) {
    if (st.ok() || s->phase == Phase::kFailed) return;
    s->phase = Phase::kFailed;
    s->error = st;
    s->sampler.reset();
    s->streamer.reset();
    FreeSlot(s);
  }

  // Makes the slot caches hold at least `slots` slots of `capacity` rows, shaped like the
  // prefix's caches `proto` ([1,H,P,hd] each). Growing copies the filled rows over.
  void Reserve(int64_t slots, int64_t capacity, const c10::List<torch::Tensor>& proto) {
    const int64_t have_slots = kv_.empty() ? 0 : kv_.get(0).size(0);
    const int64_t have_capacity = kv_.empty() ? 0 : kv_.get(0).size(2);
    if (have_slots >= slots && have_capacity >= capacity) return;
    const int64_t new_slots = have_slots >= slots ? have_slots : std::max(slots, 2 * have_slots);
    const int64_t new_capacity = std::max(have_capacity, (capacity + 127) / 128 * 128);
    c10::List<torch::Tensor> grown;
    for (size_t l = 0; l < proto.size(); ++l) {
      const torch::Tensor p = proto.get(l);
      torch::Tensor t = torch::zeros({new_slots, p.size(1), new_capacity, p.size(3)}, p.options());
      if (!kv_.empty()) {
        t.narrow(0, 0, have_slots).narrow(2, 0, have_capacity).copy_(kv_.get(l));
      }
      grown.push_back(t);
    }
    kv_ = std::move(grown);
  }

  absl::Status Prefill(Seq* s) {
    return CatchTorchErrors("xtts prefix", [&] {
      const auto& ids = s->req.pieces[s->piece];
      const int64_t p = m_.cond_len + static_cast<int64_t>(ids.size()) + 3;
      const auto device = ToTorchDevice(m_.device);
      torch::Tensor text = torch::tensor(ids, torch::kLong).reshape({1, -1}).to(device);
      auto out = m_.module->get_method("prefix")(
          {m_.cond_latents.narrow(0, s->req.voice, 1), text, p}).toTuple();
      const c10::List<torch::Tensor> own = out->elements()[2].toTensorList();
      Reserve(static_cast<int64_t>(slot_used_.size()), p + s->req.limit, own);
      for (size_t l = 0; l < own.size(); ++l) {
        kv_.get(l).select(0, s->slot).narrow(1, 0, p).copy_(own.get(l).select(0, 0).narrow(1, 0, p));
      }
      s->logits = out->elements()[0].toTensor()[0].to(torch::kCPU).contiguous();
      s->latent = out->elements()[1].toTensor()[0];
      s->cache_len = p;
      s->piece_codes = 0;
      s->piece_done = false;
      s->sampler = std::make_unique<CodeSampler>(s->req.settings, s->req.piece_seeds[s->piece], m_.start_audio);
      s->streamer = std::make_unique<Impl::Streamer>(m_, s->req.voice, s->req.speed, s->req.limit, &s->sink,
                                                     Clock::now(), nullptr);
      s->phase = Phase::kGenerate;
      ++m_.steps;
      ++m_.gpt_calls;
      return absl::OkStatus();
    });
  }

  // Decodes the planned chunks, batching those of equal window length, and completes them.
  void Vocode(std::vector<Pending>& pending) {
    std::map<int64_t, std::vector<Pending*>> groups;
    for (auto& p : pending) {
      if (p.seq->phase == Phase::kGenerate) groups[p.chunk.frames.size(2)].push_back(&p);
    }
    for (auto& [frames, group] : groups) {
      (void)frames;
      torch::Tensor audio;
      absl::Status st = CatchTorchErrors("xtts vocoder", [&] {
        std::vector<torch::Tensor> f, spk;
        for (Pending* p : group) {
          f.push_back(p->chunk.frames);
          spk.push_back(p->seq->streamer->speaker());
        }
        torch::Tensor in = f.size() == 1 ? f[0] : torch::cat(f, 0);
        torch::Tensor sp = spk.size() == 1 ? spk[0] : torch::cat(spk, 0);
        audio = m_.module->get_method("decode_frames")({in, sp}).toTensor().to(torch::kCPU).contiguous();
        return absl::OkStatus();
      });
      for (size_t b = 0; b < group.size(); ++b) {
        Seq* s = group[b]->seq;
        if (!st.ok()) {
          Fail(s, st);
          continue;
        }
        Fail(s, CatchTorchErrors("xtts vocoder", [&] {
          return s->streamer->Complete(group[b]->chunk, audio[static_cast<int64_t>(b)]);
        }));
      }
    }
  }

  // The current piece ended (its final chunk is out): the next piece prefills at the next Step,
  // or the sequence is done and its slot is freed.
  void EndPiece(Seq* s) {
    s->stats.samples += s->streamer->samples();
    s->streamer.reset();
    s->sampler.reset();
    s->piece_done = false;
    ++s->piece;
    if (s->piece < s->req.pieces.size()) {
      s->phase = Phase::kPrefill;
    } else {
      s->phase = Phase::kDone;
      FreeSlot(s);
    }
  }

  void TakeOutputs(const std::vector<std::pair<Seq*, int64_t>>& batch, const torch::Tensor& logits,
                   const torch::Tensor& latent, size_t first) {
    torch::Tensor l = logits.to(torch::kCPU).contiguous();
    for (int64_t b = 0; b < l.size(0); ++b) {
      Seq* s = batch[first + b].first;
      s->logits = l[b];
      s->latent = latent[b];
      ++s->cache_len;
      ++m_.steps;
    }
    ++m_.gpt_calls;
  }

  absl::Status StepBatched(const std::vector<std::pair<Seq*, int64_t>>& batch) {
    return CatchTorchErrors("xtts step", [&] {
      const int64_t n = static_cast<int64_t>(batch.size());
      std::vector<int64_t> codes(n), positions(n), slots(n), lens(n);
      int64_t length = 0;
      for (int64_t b = 0; b < n; ++b) {
        const Seq* s = batch[b].first;
        codes[b] = batch[b].second;
        positions[b] = s->piece_codes;
        slots[b] = s->slot;
        lens[b] = s->cache_len;
        length = std::max(length, s->cache_len + 1);
      }
      const auto device = ToTorchDevice(m_.device);
      auto tensor = [&](const std::vector<int64_t>& v, bool column) {
        torch::Tensor t = torch::tensor(v, torch::kLong);
        return (column ? t.reshape({-1, 1}) : t).to(device);
      };
      auto out = m_.module->get_method("step_slots")(
          {tensor(codes, true), tensor(positions, true), kv_, tensor(slots, false), tensor(lens, false),
           length}).toTuple();
      TakeOutputs(batch, out->elements()[0].toTensor(), out->elements()[1].toTensor(), 0);
      return absl::OkStatus();
    });
  }

  // `step` per sequence over its slot's rows of the caches (models without step_slots, batches
  // of one).
  absl::Status StepOneByOne(const std::vector<std::pair<Seq*, int64_t>>& batch) {
    return CatchTorchErrors("xtts step", [&] {
      const auto opts = torch::TensorOptions().dtype(torch::kLong).device(ToTorchDevice(m_.device));
      torch::jit::Method step = m_.module->get_method("step");
      for (size_t b = 0; b < batch.size(); ++b) {
        Seq* s = batch[b].first;
        c10::List<torch::Tensor> own;
        for (size_t l = 0; l < kv_.size(); ++l) own.push_back(kv_.get(l).narrow(0, s->slot, 1));
        auto out = step({torch::full({1, 1}, batch[b].second, opts), torch::full({1, 1}, s->piece_codes, opts),
                         own, s->cache_len}).toTuple();
        TakeOutputs(batch, out->elements()[0].toTensor(), out->elements()[1].toTensor(), b);
      }
      return absl::OkStatus();
    });
  }

  XttsEngine& engine_;
  Impl& m_;
  const bool batched_;
  std::map<uint64_t, std::unique_ptr<Seq>> seqs_;
  std::vector<bool> slot_used_;
  c10::List<torch::Tensor> kv_;  // 2·layers tensors [slots, heads, capacity, head_dim]
};

}  // namespace

std::unique_ptr<SpeechStepper> XttsEngine::NewStepper() {
  return std::make_unique<XttsStepper>(*this, *impl_);
}

absl::StatusOr<std::unique_ptr<SpeechEngine>> LoadXttsEngine(const std::string& name,
                                                             const std::string& model_dir,
                                                             const EngineOptions& options) {
  auto e = XttsEngine::Load(name, model_dir, options);
  if (!e.ok()) return e.status();
  return std::unique_ptr<SpeechEngine>(std::move(*e));
}

}  // namespace vox
