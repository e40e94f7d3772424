#ifndef VOX_SERVER_TRANSLATE_PLAN_H_
#define VOX_SERVER_TRANSLATE_PLAN_H_

// How one Translate call's texts become model sequences and come back (docs/api.md, Translate):
// each text is checked, its language given or detected ("auto"), its protected terms found
// (request do_not_translate and glossary, then the server glossary of the pair), and it is split
// into sentences that never cut a term; each sentence, its terms masked with placeholders, is one
// sequence for the model. AssembleTranslation rejoins a text's translated sentences with the
// text's own whitespace between them and restores the terms, reporting those the model dropped.
//
// Pure functions over the request; thread-safe. The plan owns copies of everything it needs.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engines/core/translation_engine.h"
#include "engines/text/protected_terms.h"
#include "server/glossaries.h"
#include "server/model_registry.h"
#include "vox/v1/translation.pb.h"

namespace vox {

struct TranslateLimits {
  int max_texts_per_call = 64;   // server.max_texts_per_call
  int max_text_chars = 100000;   // server.max_text_chars (code points per text)
};

// One model sequence: a sentence with its terms masked.
struct PlannedSentence {
  std::string text;    // what the model translates
  std::string source;  // NLLB code (given, or detected for the sentence's text)
  std::vector<size_t> placeholders;  // placeholder k+1 -> the text's terms[placeholders[k]]
};

// One request text.
struct PlannedText {
  size_t first_sentence = 0;  // its sentences are plan.sentences[first, first + count)
  size_t sentence_count = 0;  // 0 for a blank text, which comes back unchanged
  std::vector<std::string> gaps;  // the bytes around its sentences: count + 1 (or the whole
                                  // text when blank)
  std::vector<ProtectedTerm> terms;  // request terms, then the server glossary's
  std::string detected_language;     // with source_language "auto"
  float detection_confidence = 0;
};

struct TranslatePlan {
  TranslationModel* model = nullptr;
  TranslationParams params;
  std::vector<PlannedSentence> sentences;  // every sentence of every text, in text order
  std::vector<PlannedText> texts;
  int64_t characters = 0;  // code points of all the texts (the token's characters per day)
};

// The source_language value that asks for detection.
inline constexpr char kAutoLanguage[] = "auto";

// Checks and plans a Translate call. INVALID_ARGUMENT names the field or text index: too many
// texts, text too long, invalid UTF-8, unknown language (with close matches), undetectable
// language, unsupported pair, bad options or terms, and whatever the engine's Validate reports
// for a sentence (e.g. longer than the model's positions). UNAVAILABLE without translation
// models. Never runs a model.
absl::StatusOr<TranslatePlan> PlanTranslateCall(const v1::TranslateRequest& request,
                                                const ModelRegistry& registry,
                                                const TranslateLimits& limits,
                                                const Glossaries& glossaries);

// Text `index` of the plan, from its sentences' outputs (`outputs[k]` = plan.sentences[k]).
void AssembleTranslation(const TranslatePlan& plan, size_t index,
                         absl::Span<const std::optional<TranslationOutput>> outputs,
                         v1::Translation* out);

// Checks shared with RouteTranslateRequest: beam, max_length, length_penalty, priority.
absl::Status CheckTranslateOptions(const v1::TranslateRequest& request);
// `code` is required and among `known` (the loaded models' languages).
absl::Status CheckLanguage(const char* field, const std::string& code,
                           const std::vector<std::string>& known);
// The engine's decoding settings from the request's options, defaults filled in.
TranslationParams TranslationParamsOf(const v1::TranslateOptions& options);

}  // namespace vox

#endif  // VOX_SERVER_TRANSLATE_PLAN_H_
