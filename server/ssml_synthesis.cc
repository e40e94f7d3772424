#include "server/ssml_synthesis.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engines/core/languages.h"
#include "engines/text/ssml_parser.h"
#include "engines/text/ssml_say_as.h"

namespace vox {
namespace {

constexpr double kMinRate = 0.5;
constexpr double kMaxRate = 2.5;

// NLLB code for an xml:lang value; "" keeps `fallback`.
absl::StatusOr<std::string> ResolveLanguage(const std::string& tag, const std::string& fallback) {
  if (tag.empty()) return fallback;
  if (LooksLikeNllbCode(tag)) return tag;
  const std::string lower = absl::AsciiStrToLower(tag);
  const std::string primary = lower.substr(0, lower.find_first_of("-_"));
  std::optional<std::string> nllb;
  // The request's own language when the tag names it ("en-US" for eng_Latn).
  for (CodeFamily family : {CodeFamily::kXtts, CodeFamily::kEspeak}) {
    std::optional<std::string> code = EngineLanguageCode(family, fallback);
    if (code.has_value() && code->substr(0, code->find('-')) == primary) return fallback;
  }
  for (CodeFamily family : {CodeFamily::kXtts, CodeFamily::kEspeak}) {
    if (!nllb.has_value()) nllb = NllbFromEngineCode(family, lower);
    if (!nllb.has_value()) nllb = NllbFromEngineCode(family, primary);
  }
  if (!nllb.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SSML: xml:lang '", tag, "' is not a language this server knows (use an NLLB code such "
        "as spa_Latn or a BCP 47 tag such as es)"));
  }
  return *nllb;
}

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

double ClampRate(double rate) { return std::clamp(rate, kMinRate, kMaxRate); }

// One utterance for an engine that reads SSML itself.
absl::StatusOr<Utterance> NativeUtterance(const RoutedSynthesis& routed,
                                          const std::vector<SsmlSegment>& segments) {
  const std::string& base = routed.request.language;
  std::string doc = "<speak>";
  bool any_text = false;
  for (const SsmlSegment& s : segments) {
    if (s.kind == SsmlSegment::Kind::kBreak) {
      absl::StrAppend(&doc, "<break time=\"", s.pause_ms, "ms\"/>");
      continue;
    }
    absl::StatusOr<std::string> language = ResolveLanguage(s.language, base);
    if (!language.ok()) return language.status();
    std::string body;
    if (s.say_as == "characters" || s.say_as == "spell-out") {
      body = absl::StrCat("<say-as interpret-as=\"characters\">", Escape(s.text), "</say-as>");
    } else {
      body = Escape(ExpandSayAs(s, *language));
    }
    if (s.rate != 1.0) {
      body = absl::StrFormat("<prosody rate=\"%d%%\">%s</prosody>",
                             static_cast<int>(ClampRate(s.rate) * 100 + 0.5), body);
    }
    if (*language != base) {
      std::optional<std::string> code = EngineLanguageCode(CodeFamily::kEspeak, *language);
      SynthesisRequest check = routed.request;
      check.language = *language;
      check.voice.clear();
      check.text = s.text;
      if (!code.has_value() || !routed.model->engine->Validate(check).ok()) {
        return absl::InvalidArgumentError(absl::StrCat("SSML: the engine '",
                                                       routed.model->engine->info().name,
                                                       "' does not speak ", *language));
      }
      body = absl::StrCat("<voice xml:lang=\"", *code, "\">", body, "</voice>");
    }
    absl::StrAppend(&doc, any_text ? " " : "", body);
    any_text = true;
  }
  absl::StrAppend(&doc, "</speak>");
  if (!any_text) return absl::InvalidArgumentError("SSML: the document has no text to speak");
  Utterance u;
  u.request = routed.request;
  u.request.text = std::move(doc);
  u.request.ssml = true;
  if (absl::Status s = routed.model->engine->Validate(u.request); !s.ok()) return s;
  return u;
}

// One plain-text utterance per text segment, pauses as silence.
absl::StatusOr<std::vector<Utterance>> TextUtterances(const RoutedSynthesis& routed,
                                                      const std::vector<SsmlSegment>& segments) {
  const int rate_hz = routed.model->engine->sample_rate();
  const float base_speed = routed.request.params.speed == 0 ? 1.0f : routed.request.params.speed;
  std::vector<Utterance> out;
  int64_t silence = 0;
  bool any_text = false;
  for (const SsmlSegment& s : segments) {
    if (s.kind == SsmlSegment::Kind::kBreak) {
      silence += static_cast<int64_t>(s.pause_ms) * rate_hz / 1000;
      continue;
    }
    absl::StatusOr<std::string> language = ResolveLanguage(s.language, routed.request.language);
    if (!language.ok()) return language.status();
    Utterance u;
    u.request = routed.request;
    u.request.language = *language;
    u.request.text = ExpandSayAs(s, *language);
    if (s.rate != 1.0) u.request.params.speed = static_cast<float>(base_speed * ClampRate(s.rate));
    u.silence_before_samples = silence;
    silence = 0;
    if (absl::Status v = routed.model->engine->Validate(u.request); !v.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SSML segment \"", s.text.substr(0, 40), "\": ", v.message()));
    }
    out.push_back(std::move(u));
    any_text = true;
  }
  if (!any_text) return absl::InvalidArgumentError("SSML: the document has no text to speak");
  if (silence > 0) {
    Utterance pause;
    pause.request = routed.request;
    pause.request.text.clear();
    pause.silence_before_samples = silence;
    out.push_back(std::move(pause));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<Utterance>> SsmlUtterances(const RoutedSynthesis& routed,
                                                      std::string_view document) {
  absl::StatusOr<std::vector<SsmlSegment>> segments = ParseSsml(document);
  if (!segments.ok()) return segments.status();
  if (routed.model->engine->speaks_ssml()) {
    absl::StatusOr<Utterance> u = NativeUtterance(routed, *segments);
    if (!u.ok()) return u.status();
    return std::vector<Utterance>{std::move(*u)};
  }
  return TextUtterances(routed, *segments);
}

}  // namespace vox
