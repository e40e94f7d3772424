#include "server/model_registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace vox {
namespace {

bool HasName(const std::vector<ModelInfo>& infos, const std::string& name) {
  for (const ModelInfo& i : infos) {
    if (i.name == name) return true;
  }
  return false;
}

// Picks a pair for the warm-up request: English -> French/Spanish when listed, else the first
// two languages the engine lists.
std::pair<std::string, std::string> WarmUpPair(const TranslationEngine& engine) {
  const auto& langs = engine.info().languages;
  for (const char* target : {"fra_Latn", "spa_Latn", "deu_Latn"}) {
    if (engine.SupportsPair("eng_Latn", target)) return {"eng_Latn", target};
  }
  for (const auto& s : langs) {
    for (const auto& t : langs) {
      if (s != t && engine.SupportsPair(s, t)) return {s, t};
    }
  }
  return {"", ""};
}

// Runs `fn` on `queue`'s worker thread and waits for it.
absl::Status RunOnWorker(WorkQueue* queue, std::function<absl::Status()> fn) {
  absl::Notification done;
  absl::Status result;
  WorkItem item;
  item.run = [&] {
    result = fn();
    done.Notify();
  };
  item.reject = [&](const absl::Status& s) {
    result = s;
    done.Notify();
  };
  if (absl::Status s = queue->Submit(std::move(item)); !s.ok()) return s;
  done.WaitForNotification();
  return result;
}

}  // namespace

ModelRegistry::~ModelRegistry() { Shutdown(); }

absl::Status ModelRegistry::AddTranslation(std::unique_ptr<TranslationEngine> engine,
                                           std::unique_ptr<WorkQueue> queue) {
  if (HasName(Models(), engine->info().name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("two models are named '", engine->info().name, "'"));
  }
  auto model = std::make_unique<TranslationModel>();
  model->engine = std::move(engine);
  model->queue = std::move(queue);
  translation_.push_back(std::move(model));
  return absl::OkStatus();
}

absl::Status ModelRegistry::AddSpeech(std::unique_ptr<SpeechEngine> engine,
                                      std::unique_ptr<WorkQueue> queue) {
  if (HasName(Models(), engine->info().name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("two models are named '", engine->info().name, "'"));
  }
  auto model = std::make_unique<SpeechModel>();
  model->engine = std::move(engine);
  model->queue = std::move(queue);
  speech_.push_back(std::move(model));
  return absl::OkStatus();
}

TranslationModel* ModelRegistry::FindTranslation(const std::string& source,
                                                 const std::string& target) const {
  for (bool fallback : {false, true}) {
    for (const auto& m : translation_) {
      if (m->engine->info().fallback == fallback && m->engine->SupportsPair(source, target)) {
        return m.get();
      }
    }
  }
  return nullptr;
}

std::vector<std::string> ModelRegistry::TranslationLanguages() const {
  std::set<std::string> codes;
  for (const auto& m : translation_) {
    codes.insert(m->engine->info().languages.begin(), m->engine->info().languages.end());
  }
  return {codes.begin(), codes.end()};
}

SpeechModel* ModelRegistry::FindSpeech(const std::string& language,
                                       const std::string& voice) const {
  for (bool fallback : {false, true}) {
    for (const auto& m : speech_) {
      if (m->engine->info().fallback != fallback) continue;
      for (const VoiceInfo& v : m->engine->voices()) {
        if (!voice.empty() && v.name != voice) continue;
        if (std::find(v.languages.begin(), v.languages.end(), language) != v.languages.end()) {
          return m.get();
        }
      }
    }
  }
  return nullptr;
}

std::vector<std::string> ModelRegistry::SpeechLanguages() const {
  std::set<std::string> codes;
  for (const auto& m : speech_) {
    codes.insert(m->engine->info().languages.begin(), m->engine->info().languages.end());
  }
  return {codes.begin(), codes.end()};
}

std::vector<ModelInfo> ModelRegistry::Models() const {
  std::vector<ModelInfo> infos;
  for (const auto& m : translation_) infos.push_back(m->engine->info());
  for (const auto& m : speech_) infos.push_back(m->engine->info());
  return infos;
}

absl::Status ModelRegistry::WarmUp() {
  for (const auto& m : translation_) {
    TranslationEngine* engine = m->engine.get();
    const auto [source, target] = WarmUpPair(*engine);
    if (source.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model '", engine->info().name, "' supports no language pair; nothing to serve"));
    }
    absl::Status s = RunOnWorker(m->queue.get(), [engine, source = source, target = target] {
      TranslationParams params;
      params.max_length = 4;
      return engine->Translate({"Hello."}, source, target, params, nullptr).status();
    });
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("warm-up of model '", engine->info().name,
                                                 "' failed: ", s.message()));
    }
  }
  for (const auto& m : speech_) {
    SpeechEngine* engine = m->engine.get();
    if (engine->voices().empty() || engine->voices()[0].languages.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("speech model '", engine->info().name, "' lists no voice"));
    }
    SynthesisRequest request;
    request.text = "Hello.";
    request.voice = engine->voices()[0].name;
    request.language = engine->voices()[0].languages[0];
    request.params.greedy = true;
    absl::Status s = RunOnWorker(m->queue.get(), [engine, request] {
      return engine->Synthesize(request, [](absl::Span<const float>) { return true; }, nullptr)
          .status();
    });
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("warm-up of model '", engine->info().name,
                                                 "' failed: ", s.message()));
    }
  }
  return absl::OkStatus();
}

void ModelRegistry::Shutdown() {
  for (const auto& m : translation_) m->queue->Shutdown();
  for (const auto& m : speech_) m->queue->Shutdown();
}

}  // namespace vox
