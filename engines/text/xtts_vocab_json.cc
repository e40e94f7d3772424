#include "engines/text/xtts_vocab_json.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engines/text/unicode.h"
#include "nlohmann/json.hpp"

namespace vox::xtts_internal {


absl::StatusOr<XttsBpeModel> ParseXttsVocabJson(std::string_view json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("not a JSON object (expected an HF tokenizers file)");
  }
  XttsBpeModel bpe;
  try {
    for (const char* field : {"normalizer", "post_processor"}) {
      if (j.contains(field) && !j[field].is_null()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "field '", field, "' must be null for an XTTS vocab (got ", j[field].dump(), ")"));
      }
    }
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
      const auto& pt = j["pre_tokenizer"];
      if (!pt.is_object() || pt.value("type", "") != "Whitespace") {
        return absl::InvalidArgumentError(
            absl::StrCat("field 'pre_tokenizer' must be {\"type\": \"Whitespace\"} or null (got ",
                         pt.dump(), ")"));
      }
    } else {
      bpe.whitespace_pretokenizer = false;
    }
    if (!j.contains("model") || !j["model"].is_object()) {
      return absl::InvalidArgumentError("missing object field 'model'");
    }
    const auto& model = j["model"];
    if (model.contains("type") && model["type"] != "BPE") {
      return absl::InvalidArgumentError(
          absl::StrCat("field 'model.type' must be \"BPE\" (got ", model["type"].dump(), ")"));
    }
    for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.contains(field) && !model[field].is_null() &&
          !model[field].get<std::string>().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("field 'model.", field, "' is not supported (got ", model[field].dump(),
                         "); XTTS vocabularies have none"));
      }
    }
    if (model.contains("dropout") && !model["dropout"].is_null()) {
      return absl::InvalidArgumentError("field 'model.dropout' must be null (inference is exact)");
    }
    if (!model.contains("vocab") || !model["vocab"].is_object()) {
      return absl::InvalidArgumentError("missing object field 'model.vocab'");
    }
    for (const auto& [token, id] : model["vocab"].items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        return absl::InvalidArgumentError(
            absl::StrCat("model.vocab['", token, "'] is not a non-negative 32-bit id"));
      }
      bpe.vocab[token] = id.get<int64_t>();
    }
    bpe.model_vocab_size = bpe.vocab.size();
    bpe.fuse_unk = model.value("fuse_unk", false);
    bpe.byte_fallback = model.value("byte_fallback", false);
    bpe.ignore_merges = model.value("ignore_merges", false);

    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const auto& t : j["added_tokens"]) {
        const std::string content = t.at("content").get<std::string>();
        const int64_t id = t.at("id").get<int64_t>();
        auto decoded = unicode::DecodeUtf8(content);
        if (!decoded.ok()) return decoded.status();
        if (t.value("single_word", false) || t.value("lstrip", false) || t.value("rstrip", false)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "added token '", content, "': single_word/lstrip/rstrip are not supported"));
        }
        (t.value("normalized", false) ? bpe.added_normalized : bpe.added_raw)
            .push_back(AddedToken{*decoded, id});
        if (!decoded->empty() && bpe.first_chars.find((*decoded)[0]) == std::u32string::npos) {
          bpe.first_chars.push_back((*decoded)[0]);
        }
        bpe.vocab[content] = id;
      }
    }

    if (model.contains("unk_token") && !model["unk_token"].is_null()) {
      const std::string unk = model["unk_token"].get<std::string>();
      bpe.unk_id = bpe.Lookup(unk);
      if (bpe.unk_id < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("model.unk_token '", unk, "' is not in model.vocab"));
      }
    }

    if (!model.contains("merges") || !model["merges"].is_array()) {
      return absl::InvalidArgumentError("missing array field 'model.merges'");
    }
    int32_t rank = 0;
    for (const auto& m : model["merges"]) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat(
              "model.merges[", rank, "] = '", s, "' is not two tokens separated by one space"));
        }
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("model.merges[", rank, "] must be \"a b\" or [a, b]"));
      }
      const int64_t a_id = bpe.Lookup(a), b_id = bpe.Lookup(b), n_id = bpe.Lookup(a + b);
      for (const auto& [tok, id] : {std::pair{a, a_id}, {b, b_id}, {a + b, n_id}}) {
        if (id < 0) {
          return absl::InvalidArgumentError(absl::StrCat("model.merges[", rank, "] ('", a, " ", b,
                                                         "'): token '", tok,
                                                         "' is not in model.vocab"));
        }
      }
      // Later duplicates overwrite earlier ones, as tokenizers' HashMap collect does.
      bpe.merges[XttsBpeModel::PairKey(static_cast<int32_t>(a_id), static_cast<int32_t>(b_id))] = {
          rank, static_cast<int32_t>(n_id)};
      ++rank;
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed tokenizer JSON: ", e.what()));
  }
  return bpe;
}

}  // namespace vox::xtts_internal
