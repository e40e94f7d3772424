#include "server/translate_plan.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engines/core/languages.h"
#include "engines/text/language_detector.h"
#include "engines/text/sentence_splitter.h"
#include "engines/text/unicode.h"
#include "server/limit_refusal.h"

namespace vox {
namespace {

bool IsBlank(const std::string& text) {
  return SplitSentences(text, "").empty();
}

// The request's terms: do_not_translate, then the glossary (sorted by source term, so the
// order does not depend on the map's), then the server's entries for terms the request lacks.
absl::StatusOr<std::vector<ProtectedTerm>> RequestTerms(const v1::TranslateOptions& options,
                                                        const std::vector<ProtectedTerm>& server) {
  std::vector<ProtectedTerm> terms;
  std::map<std::string, std::string> glossary(options.glossary().begin(), options.glossary().end());
  for (int i = 0; i < options.do_not_translate_size(); ++i) {
    const std::string& term = options.do_not_translate(i);
    if (absl::StripAsciiWhitespace(term).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.do_not_translate[", i, "] is empty"));
    }
    if (absl::StripAsciiWhitespace(term) != term) {
      return absl::InvalidArgumentError(absl::StrCat("options.do_not_translate[", i,
                                                     "] starts or ends with whitespace"));
    }
    terms.push_back({term, term});
  }
  for (const auto& [source, target] : glossary) {
    if (absl::StripAsciiWhitespace(source).empty()) {
      return absl::InvalidArgumentError("options.glossary has an empty source term");
    }
    if (absl::StripAsciiWhitespace(source) != source) {
      return absl::InvalidArgumentError(absl::StrCat(
          "options.glossary['", source, "']: the term starts or ends with whitespace"));
    }
    if (target.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.glossary['", source, "'] has an empty target term"));
    }
    terms.push_back({source, target});
  }
  for (const ProtectedTerm& t : server) {
    if (std::none_of(terms.begin(), terms.end(),
                     [&](const ProtectedTerm& r) { return r.source == t.source; })) {
      terms.push_back(t);
    }
  }
  return terms;
}

// The text's language: the request's, or the detected one for "auto".
absl::Status SourceOf(const v1::TranslateRequest& request, int i,
                      const std::vector<std::string>& languages, PlannedText* text,
                      std::string* source) {
  if (request.source_language() != kAutoLanguage) {
    *source = request.source_language();
    return absl::OkStatus();
  }
  const DetectedLanguage d = DetectLanguage(request.texts(i));
  if (!d.reliable) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "texts[%d]: cannot tell its language (best guess '%s' at %.0f%% of the text, needs a "
        "reliable %.0f%%); set source_language to its NLLB code",
        i, d.nllb_code.empty() ? d.cld2_code : d.nllb_code, d.confidence * 100,
        kMinDetectionConfidence * 100));
  }
  if (std::find(languages.begin(), languages.end(), d.nllb_code) == languages.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("texts[", i, "] was detected as ", d.nllb_code,
                     ", which no loaded model translates (see ListLanguages)"));
  }
  text->detected_language = d.nllb_code;
  text->detection_confidence = static_cast<float>(d.confidence);
  *source = d.nllb_code;
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckLanguage(const char* field, const std::string& code,
                           const std::vector<std::string>& known) {
  if (code.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is required: an NLLB code such as eng_Latn"));
  }
  if (std::find(known.begin(), known.end(), code) == known.end()) {
    return absl::InvalidArgumentError(UnknownValueMessage(field, code, known));
  }
  return absl::OkStatus();
}

absl::Status CheckTranslateOptions(const v1::TranslateRequest& request) {
  const v1::TranslateOptions& options = request.options();
  if (options.beam_size() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "options.beam_size: ", options.beam_size(), " is negative (0 or 1 = greedy, N = beam)"));
  }
  if (options.max_length() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "options.max_length: ", options.max_length(), " is negative (0 = model default)"));
  }
  if (!std::isfinite(options.length_penalty())) {
    return absl::InvalidArgumentError("options.length_penalty must be a finite number");
  }
  if (!v1::Priority_IsValid(request.priority())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "priority: ", request.priority(),
        " is not one of PRIORITY_UNSPECIFIED, PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_HIGH"));
  }
  return absl::OkStatus();
}

TranslationParams TranslationParamsOf(const v1::TranslateOptions& options) {
  TranslationParams params;
  params.beam_size = options.beam_size() == 0 ? 1 : options.beam_size();
  params.length_penalty = options.has_length_penalty() ? options.length_penalty() : 1.0f;
  params.max_length = options.max_length();
  params.fixed_length = options.fixed_length();
  return params;
}

absl::StatusOr<TranslatePlan> PlanTranslateCall(const v1::TranslateRequest& request,
                                                const ModelRegistry& registry,
                                                const TranslateLimits& limits,
                                                const Glossaries& glossaries) {
  if (request.texts_size() == 0) {
    return absl::InvalidArgumentError("texts: at least one text is required");
  }
  if (request.texts_size() > limits.max_texts_per_call) {
    return LimitRefusal(
        absl::InvalidArgumentError(absl::StrCat("texts: ", request.texts_size(),
                                                " texts in one call; the limit is ",
                                                limits.max_texts_per_call,
                                                " (server.max_texts_per_call)")),
        "max_texts_per_call");
  }
  int64_t characters = 0;
  for (int i = 0; i < request.texts_size(); ++i) {
    absl::StatusOr<std::u32string> decoded = unicode::DecodeUtf8(request.texts(i));
    if (!decoded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("texts[", i, "]: ", decoded.status().message()));
    }
    const size_t n = decoded->size();
    characters += static_cast<int64_t>(n);
    if (n > static_cast<size_t>(limits.max_text_chars)) {
      return LimitRefusal(
          absl::InvalidArgumentError(absl::StrCat("texts[", i, "] is ", n,
                                                  " characters; the limit is ",
                                                  limits.max_text_chars,
                                                  " (server.max_text_chars)")),
          "max_text_chars");
    }
  }
  const std::vector<std::string> languages = registry.TranslationLanguages();
  if (languages.empty()) {
    return absl::UnavailableError("this server has no translation model loaded");
  }
  if (request.source_language() != kAutoLanguage) {
    if (absl::Status s = CheckLanguage("source_language", request.source_language(), languages);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckLanguage("target_language", request.target_language(), languages);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckTranslateOptions(request); !s.ok()) return s;

  TranslatePlan plan;
  plan.characters = characters;
  plan.params = TranslationParamsOf(request.options());
  const std::string& target = request.target_language();
  for (int i = 0; i < request.texts_size(); ++i) {
    const std::string& text = request.texts(i);
    PlannedText planned;
    planned.first_sentence = plan.sentences.size();
    if (IsBlank(text)) {  // passes through unchanged
      planned.gaps.push_back(text);
      plan.texts.push_back(std::move(planned));
      continue;
    }
    std::string source;
    if (absl::Status s = SourceOf(request, i, languages, &planned, &source); !s.ok()) return s;
    absl::StatusOr<std::vector<ProtectedTerm>> terms =
        RequestTerms(request.options(), glossaries.Terms(source, target));
    if (!terms.ok()) return terms.status();
    planned.terms = std::move(*terms);
    const std::vector<TermMatch> matches = FindTerms(text, planned.terms);
    std::vector<ByteSpan> protect;
    protect.reserve(matches.size());
    for (const TermMatch& m : matches) protect.push_back(m.span);
    const std::vector<ByteSpan> spans = SplitSentences(text, source, protect);
    size_t pos = 0;
    for (const ByteSpan& span : spans) {
      planned.gaps.push_back(text.substr(pos, span.begin - pos));
      MaskedText masked = MaskTerms(text, span, matches);
      plan.sentences.push_back({std::move(masked.text), source, std::move(masked.placeholders)});
      pos = span.end;
    }
    planned.gaps.push_back(text.substr(pos));
    planned.sentence_count = spans.size();
    plan.texts.push_back(std::move(planned));
  }

  // One model serves the call: the first that translates every source language present.
  std::vector<std::string> sources;
  for (const PlannedSentence& s : plan.sentences) {
    if (std::find(sources.begin(), sources.end(), s.source) == sources.end()) {
      sources.push_back(s.source);
    }
  }
  if (sources.empty()) sources.push_back(request.source_language());  // every text blank
  for (const std::string& source : sources) {
    if (source == kAutoLanguage) continue;
    TranslationModel* model = registry.FindTranslation(source, target);
    if (model == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("no loaded model translates ", source, " to ", target,
                       " (see ListModels for each model's languages)"));
    }
    if (plan.model == nullptr) plan.model = model;
  }
  for (const std::string& source : sources) {
    if (source != kAutoLanguage && !plan.model->engine->SupportsPair(source, target)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the texts' languages (", absl::StrJoin(sources, ", "),
          ") need different models; send them in separate calls"));
    }
  }
  if (plan.model == nullptr) {  // "auto" with only blank texts: any model for the target
    for (const std::string& l : languages) {
      if ((plan.model = registry.FindTranslation(l, target)) != nullptr) {
        sources[0] = l;
        break;
      }
    }
    if (plan.model == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("no loaded model translates into ", target));
    }
  }
  // The engine checks the sentences (length against the model's positions, options). While
  // every text is one sentence of one language, its messages' indices are the texts' own.
  const bool one_sentence_each =
      std::all_of(plan.texts.begin(), plan.texts.end(),
                  [](const PlannedText& t) { return t.sentence_count == 1; });
  if (sources.size() == 1 && one_sentence_each) {
    std::vector<std::string> all;
    for (const PlannedSentence& sentence : plan.sentences) all.push_back(sentence.text);
    if (absl::Status s = plan.model->engine->Validate(all, sources[0], target, plan.params);
        !s.ok()) {
      return s;
    }
    return plan;
  }
  if (plan.sentences.empty()) {  // every text blank: the options are still checked
    if (absl::Status s = plan.model->engine->Validate({"a"}, sources[0], target, plan.params);
        !s.ok()) {
      return s;
    }
  }
  for (size_t i = 0; i < plan.texts.size(); ++i) {
    const PlannedText& t = plan.texts[i];
    for (size_t k = 0; k < t.sentence_count; ++k) {
      const PlannedSentence& sentence = plan.sentences[t.first_sentence + k];
      if (absl::Status s =
              plan.model->engine->Validate({sentence.text}, sentence.source, target, plan.params);
          !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("texts[", i, "], sentence ", k + 1, " of ",
                                                   t.sentence_count, ": ", s.message()));
      }
    }
  }
  return plan;
}

void AssembleTranslation(const TranslatePlan& plan, size_t index,
                         absl::Span<const std::optional<TranslationOutput>> outputs,
                         v1::Translation* out) {
  const PlannedText& t = plan.texts[index];
  std::string text = t.gaps[0];
  for (size_t k = 0; k < t.sentence_count; ++k) {
    const PlannedSentence& sentence = plan.sentences[t.first_sentence + k];
    const TranslationOutput& o = *outputs[t.first_sentence + k];
    const RestoredText restored = RestoreTerms(o.text, sentence.placeholders, t.terms);
    text += restored.text;
    text += t.gaps[k + 1];
    for (size_t term : restored.unplaced) out->add_unplaced_terms(t.terms[term].source);
    out->mutable_token_ids()->Add(o.token_ids.begin(), o.token_ids.end());
  }
  out->set_text(std::move(text));
  out->set_sentence_count(static_cast<int32_t>(t.sentence_count));
  out->set_detected_language(t.detected_language);
  out->set_detection_confidence(t.detection_confidence);
}

}  // namespace vox
