#include "engines/translate/nllb_engine.h"

#include <utility>

#include <c10/core/InferenceMode.h>

#include "absl/strings/str_cat.h"
#include "engines/core/status_macros.h"
#include "engines/core/whole_call.h"
#include "engines/translate/nllb_manifest.h"
#include "engines/translate/nllb_model.h"
#include "engines/translate/nllb_stepper.h"

namespace vox {

absl::StatusOr<std::unique_ptr<NllbEngine>> NllbEngine::Load(const std::string& name,
                                                             const std::string& model_dir,
                                                             const EngineOptions& options) {
  VOX_ASSIGN_OR_RETURN(Manifest manifest, LoadManifest(model_dir, options.verify_checksums));
  return Load(name, std::move(manifest), options);
}

absl::StatusOr<std::unique_ptr<NllbEngine>> NllbEngine::Load(const std::string& name,
                                                             Manifest manifest,
                                                             const EngineOptions& options) {
  VOX_ASSIGN_OR_RETURN(NllbManifest nllb, ReadNllbManifest(std::move(manifest)));
  VOX_ASSIGN_OR_RETURN(std::unique_ptr<NllbModel> model, NllbModel::Load(name, std::move(nllb), options));
  return std::unique_ptr<NllbEngine>(new NllbEngine(std::move(model)));
}

NllbEngine::NllbEngine(std::shared_ptr<const NllbModel> model) : model_(std::move(model)) {}

absl::StatusOr<std::unique_ptr<TranslationEngine>> NllbEngine::NewReplica() const {
  return std::unique_ptr<TranslationEngine>(new NllbEngine(model_));
}
NllbEngine::~NllbEngine() = default;

const ModelInfo& NllbEngine::info() const { return model_->info; }

bool NllbEngine::SupportsPair(const std::string& source, const std::string& target) const {
  return model_->language_ids.count(source) > 0 && model_->language_ids.count(target) > 0;
}

absl::StatusOr<int64_t> NllbEngine::LanguageId(const std::string& code) const {
  return model_->Language(code, "language");
}

absl::StatusOr<std::vector<int64_t>> NllbEngine::EncodeSource(const std::string& text,
                                                              const std::string& source) const {
  auto src = model_->Language(source, "source language");
  if (!src.ok()) return src.status();
  return model_->Tokenize(text, *src);
}

absl::StatusOr<std::string> NllbEngine::Detokenize(const std::vector<int64_t>& ids) const {
  return model_->Detokenize(ids);
}

absl::StatusOr<int> NllbEngine::EffectiveMaxLength(int requested) const {
  return model_->MaxLength(requested);
}



absl::Status NllbEngine::Validate(const std::vector<std::string>& texts, const std::string& source,
                                  const std::string& target,
                                  const TranslationParams& params) const {
  auto src = model_->Language(source, "source language");
  if (!src.ok()) return src.status();
  if (auto tgt = model_->Language(target, "target language"); !tgt.ok()) return tgt.status();
  if (absl::Status s = CheckNllbParams(params); !s.ok()) return s;
  if (auto len = model_->MaxLength(params.max_length); !len.ok()) return len.status();
  return model_->PrepareSources(texts, *src).status();
}

absl::StatusOr<std::vector<TranslationOutput>> NllbEngine::Translate(
    const std::vector<std::string>& texts, const std::string& source, const std::string& target,
    const TranslationParams& params, const StopCheck& stop) {
  // Validate first: its errors name the text's index in the call.
  VOX_RETURN_IF_ERROR(Validate(texts, source, target, params));
  return TranslateByStepping(*NewStepper(), texts, source, target, params, stop);
}

absl::StatusOr<std::vector<std::vector<float>>> NllbEngine::FirstStepLogits(
    const std::vector<std::string>& texts, const std::string& source, const std::string& target) {
  auto src = model_->Language(source, "source language");
  if (!src.ok()) return src.status();
  auto tgt = model_->Language(target, "target language");
  if (!tgt.ok()) return tgt.status();
  auto sources = model_->PrepareSources(texts, *src);
  if (!sources.ok()) return sources.status();
  std::vector<std::vector<float>> out;
  absl::Status status = CatchTorchErrors(absl::StrCat(model_->info.name, ": logits"), [&] {
    c10::InferenceMode guard;
    NllbModel::Encoded encoded = model_->Encode(*sources);
    const int64_t n = static_cast<int64_t>(sources->size());
    const int64_t s = encoded.mask.size(1);
    NllbModel::Slots slots;
    NllbModel::AdoptSources(slots, std::move(encoded));
    model_->Reserve(slots, n, 2, s);
    model_->Fill(slots, std::vector<int64_t>(n, model_->decoder_start), std::vector<int64_t>(n, 0), s, 0, {});
    const torch::Tensor logits =
        model_->Step(slots, std::vector<int64_t>(n, *tgt), std::vector<int64_t>(n, 1), s, 0, {});
    const int64_t vocab = logits.size(1);
    const float* data = logits.data_ptr<float>();
    for (int64_t r = 0; r < logits.size(0); ++r) {
      out.emplace_back(data + r * vocab, data + (r + 1) * vocab);
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

std::unique_ptr<TranslationStepper> NllbEngine::NewStepper() {
  return NewStepper(HeldRows::kAuto);
}

std::unique_ptr<TranslationStepper> NllbEngine::NewStepper(HeldRows held) {
  return NewNllbStepper(model_.get(), held);
}

absl::StatusOr<std::unique_ptr<TranslationEngine>> LoadNllbEngine(const std::string& name,
                                                                  const std::string& model_dir,
                                                                  const EngineOptions& options) {
  VOX_ASSIGN_OR_RETURN(std::unique_ptr<NllbEngine> engine, NllbEngine::Load(name, model_dir, options));
  return std::unique_ptr<TranslationEngine>(std::move(engine));
}

}  // namespace vox
