#include "engines/translate/nllb_model.h"

#include <utility>

#include "engines/core/manifest_fields.h"
#include "engines/core/status_macros.h"

namespace vox {

absl::StatusOr<std::unique_ptr<NllbModel>> NllbModel::Load(const std::string& name,
                                                           NllbManifest manifest,
                                                           const EngineOptions& options) {
  auto model = std::make_unique<NllbModel>();
  static_cast<NllbManifest&>(*model) = std::move(manifest);
  const Manifest& m = model->common;
  const ManifestFields fields(m);
  auto device = ResolveDevice(options.device);
  if (!device.ok()) return device.status();
  model->device = *device;
  auto exported = ParseDType(m.dtype);
  if (!exported.ok()) return fields.Error("dtype", std::string(exported.status().message()));
  model->dtype = *exported;
  if (!options.dtype.empty()) {
    auto wanted = ParseDType(options.dtype);
    if (!wanted.ok()) return wanted.status();
    model->dtype = *wanted;
  }
  if (absl::Status s = CheckDTypeSupported(model->dtype, model->device); !s.ok()) return s;
  if (m.weights != m.dtype) {
    // Compressed decoder weights run through vox::linear, a CPU operator with float32 activations.
    if (model->device.kind != DeviceKind::kCpu) {
      return fields.Error("weights", absl::StrCat("is '", m.weights, "': vox runs compressed weights on the "
                                                  "CPU only, not on ", model->device.name(),
                                                  " (export without --weights for an accelerator)"));
    }
    if (model->dtype != *exported) {
      return fields.Error("weights", absl::StrCat("is '", m.weights, "': the model cannot be converted to ",
                                                  options.dtype, " at load (leave dtype unset)"));
    }
  }

  const std::string tokenizer_path = m.Path(model->tokenizer_file);
  auto spm = SentencePieceTokenizer::Load(tokenizer_path);
  if (!spm.ok()) return spm.status();
  model->spm = *std::move(spm);
  if (model->spm->piece_count() != model->spm_size) {
    return fields.Error("tokenizer.spm_size",
                        absl::StrCat("is ", model->spm_size, " but ", tokenizer_path, " has ",
                                     model->spm->piece_count(), " pieces (mismatched tokenizer file)"));
  }
  std::vector<std::pair<std::string, int64_t>> languages;
  for (const std::string& code : model->language_codes) {
    languages.emplace_back(code, model->language_ids.at(code));
  }
  NllbSourceTokenizer::Ids special;
  special.bos = model->bos;
  special.pad = model->pad;
  special.eos = model->eos;
  special.unk = model->unk;
  special.fairseq_offset = model->fairseq_offset;
  model->source_tokenizer = std::make_unique<NllbSourceTokenizer>(model->spm.get(), special, languages,
                                                                   model->vocab_size);

  auto module = LoadTorchModule(m.Path("model.ts"), model->device);
  if (!module.ok()) return module.status();
  model->module = *std::move(module);
  absl::Status status = CatchTorchErrors(absl::StrCat(m.Path("model.ts"), ": check"), [&] {
    for (const char* method : {"encode", "cross_kv", "decode_step"}) {
      if (!model->module->find_method(method)) {
        return absl::FailedPreconditionError(absl::StrCat(
            m.Path("model.ts"), ": method '", method,
            "' missing (not an NLLB export of this version; see docs/model-format.md)"));
      }
    }
    if (model->dtype != *exported) {
      // Converting at load: the weights and buffers change dtype, and the attention mask's fill
      // value, a float attribute baked in for the exported dtype (finfo(float32).min overflows
      // bfloat16), is set to the new dtype's lowest finite value.
      model->module->to(ToTorchDType(model->dtype));
      if (model->module->hasattr("neg")) {
        const double lowest =
            model->dtype == DType::kFloat16 ? -65504.0 : -3.3895313892515355e38;  // finfo.min
        model->module->setattr("neg", lowest);
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  ModelInfo& info = model->info;
  info.name = name;
  info.kind = "translation";
  info.architecture = m.architecture;
  info.device = model->device.name();
  info.dtype = DTypeName(model->dtype);
  info.weights = m.weights == m.dtype ? info.dtype : m.weights;
  info.path = m.model_dir;
  info.fallback = options.fallback;
  info.languages = model->language_codes;
  return model;
}

}  // namespace vox
