#include "engines/translate/nllb_manifest.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engines/core/manifest_fields.h"
#include "engines/core/status_macros.h"

namespace vox {

absl::StatusOr<NllbManifest> ReadNllbManifest(Manifest manifest) {
  NllbManifest n;
  n.common = std::move(manifest);
  const Manifest& m = n.common;
  const ManifestFields f(m);
  if (m.architecture != "nllb-m2m100") {
    return f.Error("architecture",
                   absl::StrCat("is '", m.architecture, "'; the NLLB engine loads nllb-m2m100"));
  }
  if (m.kind != "translation") {
    return f.Error("kind", absl::StrCat("is '", m.kind, "' but architecture 'nllb-m2m100' is translation"));
  }
  VOX_ASSIGN_OR_RETURN(n.d_model, f.PositiveInt("config.d_model"));
  VOX_ASSIGN_OR_RETURN(n.decoder_layers, f.PositiveInt("config.decoder_layers"));
  VOX_ASSIGN_OR_RETURN(n.decoder_heads, f.PositiveInt("config.decoder_attention_heads"));
  VOX_ASSIGN_OR_RETURN(n.vocab_size, f.PositiveInt("config.vocab_size"));
  VOX_ASSIGN_OR_RETURN(n.max_positions, f.PositiveInt("config.max_position_embeddings"));
  VOX_ASSIGN_OR_RETURN(n.bos, f.Int("special_ids.bos"));
  VOX_ASSIGN_OR_RETURN(n.pad, f.Int("special_ids.pad"));
  VOX_ASSIGN_OR_RETURN(n.eos, f.Int("special_ids.eos"));
  VOX_ASSIGN_OR_RETURN(n.unk, f.Int("special_ids.unk"));
  VOX_ASSIGN_OR_RETURN(n.decoder_start, f.Int("special_ids.decoder_start"));
  VOX_ASSIGN_OR_RETURN(const std::string tokenizer_type, f.String("tokenizer.type"));
  VOX_ASSIGN_OR_RETURN(n.tokenizer_file, f.String("tokenizer.file"));
  VOX_ASSIGN_OR_RETURN(n.spm_size, f.Int("tokenizer.spm_size"));
  VOX_ASSIGN_OR_RETURN(n.fairseq_offset, f.Int("tokenizer.fairseq_offset"));
  VOX_ASSIGN_OR_RETURN(const nlohmann::json* languages, f.Array("languages"));
  VOX_ASSIGN_OR_RETURN(n.max_source_tokens, f.PositiveInt("max_source_tokens"));
  VOX_ASSIGN_OR_RETURN(n.default_max_length, f.Int("default_max_length"));

  if (tokenizer_type != "sentencepiece") {
    return f.Error("tokenizer.type",
                   absl::StrCat("is '", tokenizer_type, "'; allowed: sentencepiece"));
  }
  if (m.files.count(n.tokenizer_file) == 0) {
    return f.Error("files", absl::StrCat("does not list the tokenizer file '", n.tokenizer_file,
                                         "' named by 'tokenizer.file'"));
  }
  if (m.files.count("model.ts") == 0) return f.Error("files", "does not list 'model.ts'");
  if (n.d_model % n.decoder_heads != 0) {
    return f.Error("config.decoder_attention_heads",
                   absl::StrCat(n.decoder_heads, " does not divide d_model ", n.d_model));
  }
  n.head_dim = n.d_model / n.decoder_heads;
  if (n.max_source_tokens > n.max_positions) {
    return f.Error("max_source_tokens", absl::StrCat(n.max_source_tokens,
                                                     " exceeds config.max_position_embeddings ",
                                                     n.max_positions));
  }
  for (const auto& [field, value] :
       {std::pair<const char*, int64_t>{"special_ids.bos", n.bos}, {"special_ids.pad", n.pad},
        {"special_ids.eos", n.eos}, {"special_ids.unk", n.unk},
        {"special_ids.decoder_start", n.decoder_start}}) {
    if (value < 0 || value >= n.vocab_size) {
      return f.Error(field, absl::StrCat(value, " outside the vocabulary [0, ", n.vocab_size, ")"));
    }
  }
  if (languages->empty()) return f.Error("languages", "is empty");
  for (size_t i = 0; i < languages->size(); ++i) {
    const nlohmann::json& entry = (*languages)[i];
    if (!entry.is_object() || !entry.contains("code") || !entry["code"].is_string() ||
        !entry.contains("id") || !entry["id"].is_number_integer()) {
      return f.Error(absl::StrCat("languages[", i, "]"),
                     absl::StrCat("must be {\"code\": string, \"id\": integer}, got ", entry.dump()));
    }
    const std::string code = entry["code"].get<std::string>();
    const int64_t id = entry["id"].get<int64_t>();
    if (id < 0 || id >= n.vocab_size) {
      return f.Error(absl::StrCat("languages[", i, "].id"),
                     absl::StrCat(id, " (", code, ") outside the vocabulary [0, ", n.vocab_size, ")"));
    }
    if (!n.language_ids.emplace(code, id).second) {
      return f.Error(absl::StrCat("languages[", i, "].code"), absl::StrCat("'", code, "' listed twice"));
    }
    n.language_codes.push_back(code);
  }
  return n;
}

absl::StatusOr<NllbManifest> LoadNllbManifest(const std::string& model_dir, bool verify_checksums) {
  VOX_ASSIGN_OR_RETURN(Manifest m, LoadManifest(model_dir, verify_checksums));
  return ReadNllbManifest(std::move(m));
}

}  // namespace vox
