#include "engines/speech/xtts_model.h"

#include <algorithm>
#include <utility>

#include <torch/csrc/jit/runtime/graph_executor.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engines/core/languages.h"
#include "engines/core/manifest_fields.h"
#include "engines/core/status_macros.h"
#include "engines/text/text_cleaner.h"

namespace vox {

namespace {

// The optional `cloning` section. Absent (exports before version 4): cloning unavailable.
absl::Status ReadCloning(const Manifest& man, const ManifestFields& fields, XttsManifest::Cloning* c) {
  if (!man.json.contains("cloning")) {
    auto version = fields.Int("exporter.version");
    c->reason = absl::StrCat("it was exported before voice cloning (exporter version ",
                             version.ok() ? absl::StrCat(*version) : std::string("unknown"),
                             "); export the checkpoint again with tools/export_xtts.py (version 4 or later)");
    return absl::OkStatus();
  }
  const nlohmann::json& j = man.json["cloning"];
  if (!j.is_object() || !j.contains("available") || !j["available"].is_boolean()) {
    return fields.Error("cloning.available", "must be true or false");
  }
  c->available = j["available"].get<bool>();
  if (!c->available) {
    c->reason = j.contains("reason") && j["reason"].is_string()
                    ? absl::StrCat("its export has no voice cloning: ", j["reason"].get<std::string>())
                    : std::string("its export has no voice cloning");
    return absl::OkStatus();
  }
  VOX_ASSIGN_OR_RETURN(c->file, fields.String("cloning.file"));
  VOX_ASSIGN_OR_RETURN(c->voice_model_id, fields.String("cloning.voice_model_id"));
  VOX_ASSIGN_OR_RETURN(int64_t gpt_rate, fields.PositiveInt("cloning.gpt_sample_rate"));
  VOX_ASSIGN_OR_RETURN(int64_t speaker_rate, fields.PositiveInt("cloning.speaker_sample_rate"));
  VOX_ASSIGN_OR_RETURN(c->min_chunk_seconds, fields.Number("cloning.min_chunk_seconds"));
  VOX_ASSIGN_OR_RETURN(int64_t cond_len, fields.Int("cloning.gpt_cond_len"));
  VOX_ASSIGN_OR_RETURN(int64_t chunk_len, fields.PositiveInt("cloning.gpt_cond_chunk_len"));
  VOX_ASSIGN_OR_RETURN(int64_t max_ref, fields.PositiveInt("cloning.max_ref_len"));
  VOX_ASSIGN_OR_RETURN(int64_t speaker_dim, fields.PositiveInt("cloning.speaker_dim"));
  c->gpt_sample_rate = static_cast<int>(gpt_rate);
  c->speaker_sample_rate = static_cast<int>(speaker_rate);
  c->gpt_cond_len = static_cast<int>(cond_len);
  c->gpt_cond_chunk_len = static_cast<int>(chunk_len);
  c->max_ref_len = static_cast<int>(max_ref);
  c->speaker_dim = static_cast<int>(speaker_dim);
  if (c->voice_model_id.empty()) return fields.Error("cloning.voice_model_id", "must not be empty");
  if (!man.files.count(c->file)) {
    return fields.Error("files", absl::StrCat("does not list '", c->file, "' (cloning.file)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<XttsManifest> XttsManifest::Read(const Manifest& man) {
  if (man.architecture != "xtts-v2") {
    return absl::FailedPreconditionError(absl::StrCat(
        man.manifest_path, ": field 'architecture' is '", man.architecture, "', expected 'xtts-v2'"));
  }
  if (man.kind != "speech") {
    return absl::FailedPreconditionError(absl::StrCat(
        man.manifest_path, ": field 'kind' is '", man.kind, "' but architecture 'xtts-v2' is speech"));
  }
  for (const char* f : {"model.ts", "voices.ts", "vocab.json"}) {
    if (!man.files.count(f)) {
      return absl::FailedPreconditionError(
          absl::StrCat(man.manifest_path, ": field 'files' does not list '", f, "'"));
    }
  }
  const ManifestFields fields(man);
  XttsManifest x;
  VOX_ASSIGN_OR_RETURN(x.d_model, fields.Int("config.d_model"));
  VOX_ASSIGN_OR_RETURN(x.cond_latent_len, fields.Int("config.cond_latent_len"));
  VOX_ASSIGN_OR_RETURN(x.hop_length, fields.Int("config.hifigan.hop_length"));
  VOX_ASSIGN_OR_RETURN(x.receptive_field_frames, fields.Int("config.hifigan.receptive_field_frames"));
  VOX_ASSIGN_OR_RETURN(x.start_audio, fields.Int("special_ids.start_audio"));
  VOX_ASSIGN_OR_RETURN(x.stop_audio, fields.Int("special_ids.stop_audio"));
  VOX_ASSIGN_OR_RETURN(x.sample_rate, fields.Int("sample_rate"));
  VOX_ASSIGN_OR_RETURN(x.input_sample_rate, fields.Int("input_sample_rate"));
  VOX_ASSIGN_OR_RETURN(x.code_stride, fields.Int("code_stride"));
  VOX_ASSIGN_OR_RETURN(x.max_text_tokens, fields.Int("max_text_tokens"));
  VOX_ASSIGN_OR_RETURN(x.max_generated_codes, fields.Int("max_generated_codes"));
  VOX_ASSIGN_OR_RETURN(x.sampling.temperature, fields.Number("sampling.temperature"));
  VOX_ASSIGN_OR_RETURN(x.sampling.top_k, fields.Int("sampling.top_k"));
  VOX_ASSIGN_OR_RETURN(x.sampling.top_p, fields.Number("sampling.top_p"));
  VOX_ASSIGN_OR_RETURN(x.sampling.repetition_penalty, fields.Number("sampling.repetition_penalty"));
  if (x.hop_length <= 0 || x.code_stride % x.hop_length != 0 || x.input_sample_rate <= 0 ||
      x.sample_rate <= 0) {
    return fields.Error("code_stride", "must be a multiple of config.hifigan.hop_length");
  }

  const nlohmann::json* langs;
  VOX_ASSIGN_OR_RETURN(langs, fields.Array("languages"));
  for (const auto& l : *langs) {
    if (!l.is_object() || !l.contains("code") || !l.contains("nllb") || !l["code"].is_string() ||
        !l["nllb"].is_string()) {
      return fields.Error("languages", "must be an array of {code, nllb}");
    }
    x.languages.push_back({l["code"].get<std::string>(), l["nllb"].get<std::string>()});
  }
  const nlohmann::json* voices;
  VOX_ASSIGN_OR_RETURN(voices, fields.Array("voices"));
  if (voices->empty()) return fields.Error("voices", "must be a non-empty array");
  for (size_t i = 0; i < voices->size(); ++i) {
    const auto& vj = (*voices)[i];
    if (!vj.is_object() || !vj.contains("name") || !vj["name"].is_string() || !vj.contains("index") ||
        !vj["index"].is_number_integer() || vj["index"].get<int64_t>() != static_cast<int64_t>(i) ||
        (vj.contains("languages") && !vj["languages"].is_array())) {
      return fields.Error(absl::StrCat("voices[", i, "]"),
                          absl::StrCat("must be {name, index: ", i, ", languages}"));
    }
    Voice v;
    v.name = vj["name"].get<std::string>();
    if (vj.contains("languages")) {
      v.lists_languages = true;
      for (const auto& code : vj["languages"]) {
        if (!code.is_string()) {
          return fields.Error(absl::StrCat("voices[", i, "].languages"), "must be NLLB codes");
        }
        v.languages.push_back(code.get<std::string>());
      }
    }
    x.voices.push_back(std::move(v));
  }
  VOX_RETURN_IF_ERROR(ReadCloning(man, fields, &x.cloning));
  return x;
}

const XttsManifest::Language* XttsModel::Language(const std::string& nllb) const {
  for (const auto& l : languages) {
    if (l.nllb == nllb) return &l;
  }
  return nullptr;
}

int XttsModel::VoiceIndex(const std::string& name) const {
  for (size_t i = 0; i < voice_names.size(); ++i) {
    if (voice_names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

int XttsModel::CodeLimit(const SynthesisParams& p) const {
  if (p.forced_codes > 0) return p.forced_codes;
  const int model_limit = config.max_generated_codes;
  return p.max_codes > 0 ? std::min(p.max_codes, model_limit) : model_limit;
}

SamplingSettings XttsModel::Settings(const SynthesisParams& p) const {
  SamplingSettings s = config.sampling;
  s.greedy = p.greedy;
  if (p.temperature != 0) s.temperature = DecimalDouble(p.temperature);
  if (p.top_k != 0) s.top_k = p.top_k;
  if (p.top_p != 0) s.top_p = DecimalDouble(p.top_p);
  if (p.repetition_penalty != 0) s.repetition_penalty = DecimalDouble(p.repetition_penalty);
  return s;
}

absl::Status XttsModel::CheckClonedVoice(const ClonedVoice& v) const {
  if (cloner == nullptr || config.cloning.voice_model_id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", info.name, "' cannot speak cloned voices: ", config.cloning.reason));
  }
  if (v.model_id != config.cloning.voice_model_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the voice was made for model id '", v.model_id, "', and model '", info.name, "' is '",
        config.cloning.voice_model_id, "': create the voice again from its reference audio"));
  }
  const int64_t speaker_dim = speaker_embeddings.size(1);
  if (v.cond_rows != cond_len || v.cond_dim != config.d_model ||
      v.gpt_cond_latent.size() != static_cast<size_t>(v.cond_rows) * static_cast<size_t>(v.cond_dim) ||
      static_cast<int64_t>(v.speaker_embedding.size()) != speaker_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the cloned voice holds a ", v.cond_rows, " x ", v.cond_dim, " latent (", v.gpt_cond_latent.size(),
        " values) and a ", v.speaker_embedding.size(), "-dim speaker embedding; model '", info.name,
        "' needs ", cond_len, " x ", config.d_model, " and ", speaker_dim));
  }
  return absl::OkStatus();
}

absl::StatusOr<XttsVoiceTensors> XttsModel::ClonedVoiceTensors(const ClonedVoice& v) const {
  VOX_RETURN_IF_ERROR(CheckClonedVoice(v));
  XttsVoiceTensors t;
  const auto device = ToTorchDevice(this->device);
  t.cond_latent = torch::from_blob(const_cast<float*>(v.gpt_cond_latent.data()),
                                   {1, v.cond_rows, v.cond_dim}, torch::kFloat)
                      .to(device, cond_latents.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
  t.speaker = torch::from_blob(const_cast<float*>(v.speaker_embedding.data()),
                               {1, static_cast<int64_t>(v.speaker_embedding.size()), 1}, torch::kFloat)
                  .to(device, torch::kFloat, /*non_blocking=*/false, /*copy=*/true);
  return t;
}

namespace {

// Holds the vocoder's convolutions in bfloat16 when asked: exports of version 3 and later run
// each convolution in its weight's dtype (docs/model-format.md). Before version 8 the upsampling
// ones (`ups`) are transposed convolutions, which stay float32.
constexpr int64_t kPolyphaseUpsampleVersion = 8;

absl::Status SetVocoderDType(const Manifest& man, const std::string& requested, XttsModel* model) {
  if (requested == "float32") return absl::OkStatus();
  if (requested != "bfloat16") {
    return absl::InvalidArgumentError(
        absl::StrCat("vocoder_dtype '", requested, "' is not one of: float32, bfloat16"));
  }
  auto version = ManifestFields(man).Int("exporter.version");
  if (!version.ok() || *version < 3) {
    return absl::FailedPreconditionError(absl::StrCat(
        man.manifest_path, ": vocoder_dtype bfloat16 needs an export of export_xtts.py version 3 or later (",
        version.ok() ? absl::StrCat("this one is version ", *version) : std::string(version.status().message()),
        "): export the checkpoint again, or use vocoder_dtype float32"));
  }
  if (model->device.kind == DeviceKind::kCpu && !CpuHasNativeBFloat16()) {
    return absl::FailedPreconditionError(
        "vocoder_dtype bfloat16: this CPU has no AVX512-BF16, and its bfloat16 convolutions would be "
        "slower than float32's; use vocoder_dtype float32");
  }
  return CatchTorchErrors(absl::StrCat(man.Path("model.ts"), ": vocoder to bfloat16"), [&] {
    torch::jit::Module decoder = model->module->attr("hifigan_decoder").toModule().attr("waveform_decoder").toModule();
    for (const auto& child : decoder.named_children()) {
      // LibTorch 1.13 has no bfloat16 transposed convolution on CPU.
      if (child.name == "ups" && *version < kPolyphaseUpsampleVersion) continue;
      torch::jit::Module m = child.value;
      m.to(torch::kBFloat16);
    }
    return absl::OkStatus();
  });
}

}  // namespace

absl::StatusOr<std::shared_ptr<const XttsModel>> LoadXttsModel(const std::string& name,
                                                              Manifest manifest,
                                                              const EngineOptions& options,
                                                              bool freeze_module) {
  auto model = std::make_shared<XttsModel>();
  model->manifest = std::move(manifest);
  const Manifest& man = model->manifest;
  VOX_ASSIGN_OR_RETURN(model->config, XttsManifest::Read(man));
  const XttsManifest& cfg = model->config;
  model->cond_len = cfg.cond_latent_len;
  model->geometry.scale1 = static_cast<double>(cfg.code_stride) / static_cast<double>(cfg.hop_length);
  model->geometry.scale2 = static_cast<double>(cfg.sample_rate) / static_cast<double>(cfg.input_sample_rate);
  model->geometry.resample = cfg.sample_rate != cfg.input_sample_rate;

  // Tokenizer and languages: the manifest's that the text front end cleans and whose [lang]
  // token the vocabulary has.
  {
    VOX_ASSIGN_OR_RETURN(XttsTokenizer tok, XttsTokenizer::FromFile(man.Path("vocab.json")));
    model->tokenizer = std::make_unique<const XttsTokenizer>(std::move(tok));
  }
  const auto& cleaner = XttsCleanerLanguages();
  for (const auto& l : cfg.languages) {
    if (std::find(cleaner.begin(), cleaner.end(), l.code) == cleaner.end()) {
      // CleanText's refusal says why (which romaniser Coqui runs that vox does not have).
      const absl::Status why = CleanText("", l.code).status();
      model->info.refused_languages[l.nllb] =
          why.ok() ? "the text front end has no cleaner for it" : std::string(why.message());
      continue;
    }
    if (model->tokenizer->TokenId(XttsLanguageToken(l.code)) < 0) {
      model->info.refused_languages[l.nllb] =
          absl::StrCat("vocab.json has no ", XttsLanguageToken(l.code), " token");
      continue;
    }
    model->languages.push_back(l);
  }
  if (model->languages.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        man.manifest_path, ": none of the 'languages' is supported by the text front end (",
        absl::StrJoin(cleaner, ", "), ")"));
  }
  for (const auto& v : cfg.voices) {
    VoiceInfo vi;
    vi.name = v.name;
    if (v.lists_languages) {
      for (const auto& code : v.languages) {
        if (model->Language(code) != nullptr) vi.languages.push_back(code);
      }
    } else {
      for (const auto& l : model->languages) vi.languages.push_back(l.nllb);
    }
    model->voice_names.push_back(vi.name);
    model->voices.push_back(std::move(vi));
  }

  // Device, dtype, modules.
  VOX_ASSIGN_OR_RETURN(model->device, ResolveDevice(options.device));
  const std::string dtype_name = options.dtype.empty() ? man.dtype : options.dtype;
  VOX_ASSIGN_OR_RETURN(const DType dtype, ParseDType(dtype_name));
  VOX_RETURN_IF_ERROR(CheckDTypeSupported(dtype, model->device));
  VOX_ASSIGN_OR_RETURN(const DType exported, ParseDType(man.dtype));
  if (std::string problem = CompressedWeightsProblem(man.weights, exported, dtype, model->device);
      !problem.empty()) {
    return ManifestFields(man).Error("weights", problem);
  }
  VOX_ASSIGN_OR_RETURN(model->module, LoadTorchModule(man.Path("model.ts"), model->device));
  VOX_ASSIGN_OR_RETURN(auto voices_module, LoadTorchModule(man.Path("voices.ts"), model->device));
  VOX_RETURN_IF_ERROR(CatchTorchErrors(absl::StrCat(man.Path("voices.ts"), ": cannot read voices"), [&] {
    // Only the GPT changes dtype; the vocoder stays float32 (docs/model-format.md, XTTS).
    if (dtype_name != man.dtype) model->module->attr("gpt").toModule().to(ToTorchDType(dtype));
    model->cond_latents = voices_module->attr("cond_latents").toTensor().to(ToTorchDType(dtype));
    model->speaker_embeddings = voices_module->attr("speaker_embeddings").toTensor();  // float32
    return absl::OkStatus();
  }));
  model->has_step_slots = model->module->find_method("step_slots").has_value();
  model->has_condition = model->module->find_method("condition").has_value() &&
                         model->module->find_method("prefix_conditioned").has_value();
  if (cfg.cloning.available) {
    // float32 on the model's device whatever the GPT's dtype: the latents it makes are stored.
    VOX_ASSIGN_OR_RETURN(model->cloner, LoadTorchModule(man.Path(cfg.cloning.file), model->device));
    if (!model->cloner->find_method("clone").has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat(man.Path(cfg.cloning.file), ": has no method 'clone'"));
    }
  }
  VOX_RETURN_IF_ERROR(SetVocoderDType(man, options.vocoder_dtype, model.get()));
  if (freeze_module) {
    VOX_RETURN_IF_ERROR(CatchTorchErrors(absl::StrCat(man.Path("model.ts"), ": cannot freeze"), [&] {
      std::vector<std::string> methods{"prefix", "step", "interpolate", "interpolate_window",
                                       "decode_frames", "vocode"};
      if (model->has_step_slots) methods.push_back("step_slots");
      if (model->has_condition) {
        methods.push_back("condition");
        methods.push_back("prefix_conditioned");
      }
      // Freezing inlines the submodules' methods only with the graph executor's optimisations on;
      // voxd runs with them off (PrepareProcessForModels), and a frozen module that kept its
      // calls into submodules whose methods it dropped cannot run.
      torch::jit::GraphOptimizerEnabledGuard optimize(true);
      model->module = std::make_shared<torch::jit::Module>(torch::jit::freeze(*model->module, methods));
      if (model->cloner != nullptr) {
        model->cloner = std::make_shared<torch::jit::Module>(
            torch::jit::freeze(*model->cloner, std::vector<std::string>{"clone"}));
      }
      return absl::OkStatus();
    }));
  }
  const int64_t voice_count = static_cast<int64_t>(model->voices.size());
  if (model->cond_latents.dim() != 3 || model->cond_latents.size(0) != voice_count ||
      model->cond_latents.size(2) != cfg.d_model || model->speaker_embeddings.dim() != 3 ||
      model->speaker_embeddings.size(0) != voice_count) {
    return absl::FailedPreconditionError(absl::StrCat(
        man.Path("voices.ts"), ": cond_latents/speaker_embeddings do not match the manifest's ",
        voice_count, " voices of width ", cfg.d_model));
  }
  model->cond_len = static_cast<int>(model->cond_latents.size(1));

  ModelInfo& info = model->info;
  info.name = name;
  info.kind = "speech";
  info.architecture = "xtts-v2";
  info.device = model->device.name();
  info.dtype = DTypeName(dtype);
  info.weights = man.weights == man.dtype ? info.dtype : man.weights;
  info.vocoder_dtype = options.vocoder_dtype;
  info.path = model->manifest.model_dir;
  info.fallback = options.fallback;
  for (const auto& l : model->languages) info.languages.push_back(l.nllb);
  return std::shared_ptr<const XttsModel>(std::move(model));
}

absl::Status ValidateXttsRequest(const XttsModel& m, int max_text_bytes, const SynthesisRequest& r) {
  if (m.Language(r.language) == nullptr) {
    return absl::InvalidArgumentError(UnknownValueMessage("language", r.language, m.info.languages));
  }
  if (r.cloned_voice != nullptr) {
    // A created voice (named by r.voice) speaks every language of the model; it must be this
    // model's.
    VOX_RETURN_IF_ERROR(m.CheckClonedVoice(*r.cloned_voice));
  } else if (!r.voice.empty()) {
    const int vi = m.VoiceIndex(r.voice);
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
  if (static_cast<int64_t>(r.text.size()) > max_text_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("text is ", r.text.size(), " bytes; the limit is ",
                                                   max_text_bytes, " bytes"));
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
  const int max_codes = m.config.max_generated_codes;
  if (p.forced_codes < 0 || p.forced_codes > max_codes) {
    return absl::InvalidArgumentError(
        absl::StrCat("forced_codes ", p.forced_codes, " must be in 0..", max_codes));
  }
  if (p.max_codes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_codes ", p.max_codes, " must be >= 0 (0 = the model's limit)"));
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

}  // namespace vox
