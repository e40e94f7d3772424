#include "engines/builtin/espeak_engine.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engines/builtin/utf8.h"
#include "engines/core/languages.h"

#ifdef VOX_HAVE_ESPEAK
#include <espeak-ng/speak_lib.h>
#endif

namespace vox {

#ifdef VOX_HAVE_ESPEAK
namespace {

constexpr float kMinSpeed = 0.5f;
constexpr float kMaxSpeed = 2.5f;

// One synthesis in progress; the espeak callback reaches it through Runtime::job.
struct SynthJob {
  const AudioSink* sink = nullptr;
  const StopCheck* stop = nullptr;
  std::vector<float> scratch;
  int64_t samples = 0;
  absl::Status aborted;  // why the callback asked espeak to stop
};

// libespeak-ng's process-global state and the mutex that serializes every use of it.
struct Runtime {
  absl::Mutex mu;
  bool initialized ABSL_GUARDED_BY(mu) = false;
  absl::Status init_status ABSL_GUARDED_BY(mu);
  std::string data_path ABSL_GUARDED_BY(mu);
  int sample_rate ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::string> voice_languages ABSL_GUARDED_BY(mu);  // every language of every voice
  SynthJob* job ABSL_GUARDED_BY(mu) = nullptr;
  std::string current_voice ABSL_GUARDED_BY(mu);  // espeak language last selected
};

Runtime& GetRuntime() {
  static Runtime* runtime = new Runtime();  // never destroyed: espeak's state outlives engines
  return *runtime;
}

// Called by espeak_Synth (synchronously, on the calling thread, with Runtime::mu held).
int SynthCallback(short* wav, int count, espeak_EVENT* events) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SynthJob* job = GetRuntime().job;
  if (job == nullptr) return 1;
  if (job->stop != nullptr && *job->stop) {
    absl::Status s = (*job->stop)();
    if (!s.ok()) {
      job->aborted = s;
      return 1;
    }
  }
  if (wav == nullptr || count <= 0) return 0;
  job->scratch.resize(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) job->scratch[i] = static_cast<float>(wav[i]) / 32768.0f;
  job->samples += count;
  if (!(*job->sink)(absl::MakeConstSpan(job->scratch))) {
    job->aborted = absl::CancelledError("the audio consumer stopped the synthesis");
    return 1;
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EspeakEngine>> CreateEspeakEngine(const EspeakOptions& options) {
  if (options.chunk_ms < 10 || options.chunk_ms > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("espeak: chunk_ms ", options.chunk_ms, " is outside 10..1000"));
  }
  if (options.max_text_bytes == 0) {
    return absl::InvalidArgumentError("espeak: max_text_bytes must be positive");
  }
  Runtime& rt = GetRuntime();
  std::unique_ptr<EspeakEngine> engine(new EspeakEngine());
  engine->options_ = options;
  {
    absl::MutexLock lock(&rt.mu);
    if (!rt.initialized) {
      rt.initialized = true;
      rt.data_path = options.data_path;
      const int rate = espeak_Initialize(
          AUDIO_OUTPUT_SYNCHRONOUS, options.chunk_ms,
          options.data_path.empty() ? nullptr : options.data_path.c_str(),
          espeakINITIALIZE_DONT_EXIT);
      if (rate <= 0) {
        rt.init_status = absl::InternalError(absl::StrCat(
            "espeak: espeak_Initialize failed (", rate, ") with data path '",
            options.data_path.empty() ? "(libespeak-ng default)" : options.data_path,
            "'; install Debian's espeak-ng-data or set data_path to the directory holding "
            "espeak-ng-data"));
      } else {
        rt.sample_rate = rate;
        espeak_SetSynthCallback(&SynthCallback);
        const espeak_VOICE** list = espeak_ListVoices(nullptr);
        for (int i = 0; list != nullptr && list[i] != nullptr; ++i) {
          // languages: repeated (priority byte, NUL-terminated name), ended by a 0 priority.
          const char* p = list[i]->languages;
          while (p != nullptr && *p != 0) {
            const std::string language(p + 1);
            rt.voice_languages.push_back(language);
            p += 1 + language.size() + 1;
          }
        }
      }
    } else if (rt.init_status.ok() && rt.data_path != options.data_path) {
      return absl::FailedPreconditionError(absl::StrCat(
          "espeak: libespeak-ng was initialized with data path '", rt.data_path,
          "' and is process-global; another data path ('", options.data_path,
          "') cannot be used in the same process"));
    }
    if (!rt.init_status.ok()) return rt.init_status;
    engine->sample_rate_ = rt.sample_rate;

    const std::vector<std::string> voice_languages = rt.voice_languages;
    auto has_voice = [&](const std::string& code) {
      for (const std::string& lang : voice_languages) {
        if (lang == code || absl::StartsWith(lang, absl::StrCat(code, "-"))) return true;
      }
      return false;
    };
    std::vector<std::string> available;  // table languages espeak-ng has a voice for
    for (const std::string& nllb : LanguagesOf(CodeFamily::kEspeak)) {
      if (has_voice(*EngineLanguageCode(CodeFamily::kEspeak, nllb))) available.push_back(nllb);
    }
    std::vector<std::string> wanted = options.languages.empty() ? available : options.languages;
    for (const std::string& nllb : wanted) {
      if (std::find(available.begin(), available.end(), nllb) == available.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "espeak: ", UnknownValueMessage("language", nllb, available),
            " (languages of the table in engines/core/languages.cc with an espeak-ng voice)"));
      }
      if (engine->FindLanguage(nllb) != nullptr) continue;  // listed twice
      const std::string code = *EngineLanguageCode(CodeFamily::kEspeak, nllb);
      engine->served_.push_back({nllb, code});
      engine->voices_.push_back(VoiceInfo{absl::StrCat("espeak:", code), {nllb}});
      engine->info_.languages.push_back(nllb);
    }
  }
  if (engine->served_.empty()) {
    return absl::InvalidArgumentError("espeak: no languages to serve");
  }
  engine->info_.name = options.name;
  engine->info_.kind = "speech";
  engine->info_.architecture = "espeak-ng";
  engine->info_.device = "cpu";
  engine->info_.dtype = "n/a";
  engine->info_.weights = "n/a";
  engine->info_.path = options.data_path;
  engine->info_.fallback = options.fallback;
  return engine;
}

const EspeakEngine::Served* EspeakEngine::FindLanguage(const std::string& nllb) const {
  for (const Served& s : served_) {
    if (s.nllb == nllb) return &s;
  }
  return nullptr;
}

absl::Status EspeakEngine::Validate(const SynthesisRequest& request) const {
  const Served* language = FindLanguage(request.language);
  if (language == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("espeak: ", UnknownValueMessage("language", request.language,
                                                     info_.languages)));
  }
  if (!request.voice.empty()) {
    const std::string wanted = absl::StrCat("espeak:", language->espeak);
    if (request.voice != wanted) {
      std::vector<std::string> names;
      for (const VoiceInfo& v : voices_) names.push_back(v.name);
      if (std::find(names.begin(), names.end(), request.voice) == names.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("espeak: ", UnknownValueMessage("voice", request.voice, names)));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("espeak: voice '", request.voice, "' does not speak ", request.language,
                       "; the voice for ", request.language, " is '", wanted, "'"));
    }
  }
  const std::string& text = request.text;
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("espeak: the text is empty");
  }
  if (text.size() > options_.max_text_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("espeak: the text is ", text.size(),
                                                   " bytes; at most ", options_.max_text_bytes,
                                                   " are allowed"));
  }
  if (text.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("espeak: the text contains a NUL character");
  }
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError("espeak: the text is not valid UTF-8");
  const SynthesisParams& p = request.params;
  if (p.speed != 0 && !(p.speed >= kMinSpeed && p.speed <= kMaxSpeed)) {
    return absl::InvalidArgumentError(absl::StrCat("espeak: speed ", p.speed, " is outside ",
                                                   kMinSpeed, "..", kMaxSpeed,
                                                   " (0 = default 1.0)"));
  }
  if (p.pitch < 0 || p.pitch > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("espeak: pitch ", p.pitch, " is outside 0..100 (0 = default 50)"));
  }
  if (p.forced_codes != 0) {
    return absl::InvalidArgumentError("espeak: forced_codes is not supported (no acoustic codes)");
  }
  return absl::OkStatus();
}

absl::StatusOr<SynthesisStats> EspeakEngine::Synthesize(const SynthesisRequest& request,
                                                        const AudioSink& sink,
                                                        const StopCheck& stop) {
  if (absl::Status valid = Validate(request); !valid.ok()) return valid;
  if (!sink) return absl::InvalidArgumentError("espeak: no audio sink");
  const Served& language = *FindLanguage(request.language);
  if (stop) {
    if (absl::Status s = stop(); !s.ok()) return s;
  }

  Runtime& rt = GetRuntime();
  absl::MutexLock lock(&rt.mu);
  if (rt.current_voice != language.espeak) {  // selecting a voice reloads its dictionary
    espeak_VOICE spec{};
    spec.languages = language.espeak.c_str();
    rt.current_voice.clear();
    if (espeak_SetVoiceByProperties(&spec) != EE_OK) {
      return absl::InternalError(
          absl::StrCat("espeak: cannot select a voice for language '", language.espeak, "'"));
    }
    rt.current_voice = language.espeak;
  }
  const float speed = request.params.speed == 0 ? 1.0f : request.params.speed;
  const int rate = std::clamp(static_cast<int>(std::lround(espeakRATE_NORMAL * speed)),
                              espeakRATE_MINIMUM, espeakRATE_MAXIMUM);
  const int pitch = request.params.pitch == 0 ? 50 : request.params.pitch;
  espeak_SetParameter(espeakRATE, rate, 0);
  espeak_SetParameter(espeakPITCH, pitch, 0);
  espeak_SetParameter(espeakVOLUME, 100, 0);
  espeak_SetParameter(espeakRANGE, 50, 0);
  espeak_SetParameter(espeakPUNCTUATION, espeakPUNCT_NONE, 0);
  espeak_SetSynthCallback(&SynthCallback);

  SynthJob job;
  job.sink = &sink;
  job.stop = stop ? &stop : nullptr;
  rt.job = &job;
  const unsigned flags = espeakCHARS_UTF8 | (request.ssml ? espeakSSML : 0);
  const espeak_ERROR err = espeak_Synth(request.text.c_str(), request.text.size() + 1, 0,
                                        POS_CHARACTER, 0, flags, nullptr, nullptr);
  rt.job = nullptr;
  if (!job.aborted.ok()) return job.aborted;
  if (err != EE_OK) {
    return absl::InternalError(absl::StrCat("espeak: espeak_Synth failed with error ",
                                            static_cast<int>(err)));
  }
  SynthesisStats stats;
  stats.samples = job.samples;
  stats.voice = absl::StrCat("espeak:", language.espeak);
  return stats;
}

#else  // !VOX_HAVE_ESPEAK

absl::StatusOr<std::unique_ptr<EspeakEngine>> CreateEspeakEngine(const EspeakOptions&) {
  return absl::FailedPreconditionError(
      "espeak: vox was built without espeak-ng (VOX_WITH_ESPEAK=OFF or libespeak-ng-dev missing)");
}
const EspeakEngine::Served* EspeakEngine::FindLanguage(const std::string&) const { return nullptr; }
absl::Status EspeakEngine::Validate(const SynthesisRequest&) const {
  return absl::FailedPreconditionError("espeak: built without espeak-ng");
}
absl::StatusOr<SynthesisStats> EspeakEngine::Synthesize(const SynthesisRequest&, const AudioSink&,
                                                        const StopCheck&) {
  return absl::FailedPreconditionError("espeak: built without espeak-ng");
}

#endif  // VOX_HAVE_ESPEAK

}  // namespace vox
