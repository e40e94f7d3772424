#include "engines/text/xtts_tokenizer.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engines/text/text_cleaner.h"
#include "engines/text/unicode.h"
#include "engines/text/xtts_bpe.h"
#include "engines/text/xtts_vocab_json.h"

namespace vox {

struct XttsTokenizer::Impl {
  explicit Impl(xtts_internal::XttsBpeModel model) : bpe(std::move(model)) {}
  const xtts_internal::XttsBpeModel bpe;
};

XttsTokenizer::XttsTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
XttsTokenizer::~XttsTokenizer() = default;

absl::StatusOr<XttsTokenizer> XttsTokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open XTTS vocab file '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto tok = FromJson(buffer.str());
  if (!tok.ok()) {
    return absl::Status(tok.status().code(), absl::StrCat(path, ": ", tok.status().message()));
  }
  return tok;
}

absl::StatusOr<XttsTokenizer> XttsTokenizer::FromJson(std::string_view json_text) {
  auto bpe = xtts_internal::ParseXttsVocabJson(json_text);
  if (!bpe.ok()) return bpe.status();
  return XttsTokenizer(std::make_shared<const Impl>(std::move(*bpe)));
}

absl::StatusOr<std::vector<int64_t>> XttsTokenizer::EncodeRaw(std::string_view prepared) const {
  auto text = unicode::DecodeUtf8(prepared);
  if (!text.ok()) return text.status();
  return impl_->bpe.Encode(*text);
}

std::string XttsLanguageToken(std::string_view xtts_lang) {
  if (xtts_lang == "zh" || xtts_lang == "zh-cn") return "[zh-cn]";
  return absl::StrCat("[", std::string(xtts_lang), "]");
}

absl::StatusOr<std::string> XttsTokenizer::Prepare(std::string_view text,
                                                   std::string_view xtts_lang) const {
  auto cleaned = CleanText(text, xtts_lang);
  if (!cleaned.ok()) return cleaned.status();
  const std::string lang_token = XttsLanguageToken(xtts_lang);
  if (TokenId(lang_token) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("language '", std::string(xtts_lang),
                                                   "': the XTTS vocab has no token ", lang_token));
  }
  return absl::StrCat(lang_token, absl::StrReplaceAll(*cleaned, {{" ", "[SPACE]"}}));
}

absl::StatusOr<std::vector<int64_t>> XttsTokenizer::Encode(std::string_view text,
                                                           std::string_view xtts_lang) const {
  auto prepared = Prepare(text, xtts_lang);
  if (!prepared.ok()) return prepared.status();
  return EncodeRaw(*prepared);
}

int64_t XttsTokenizer::TokenId(std::string_view token) const {
  return impl_->bpe.Lookup(std::string(token));
}
size_t XttsTokenizer::VocabSize() const { return impl_->bpe.model_vocab_size; }
int64_t XttsTokenizer::unk_id() const { return impl_->bpe.unk_id; }
int64_t XttsTokenizer::space_id() const { return TokenId("[SPACE]"); }

}  // namespace vox
