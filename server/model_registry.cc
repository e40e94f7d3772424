#include "server/model_registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engines/core/languages.h"
#include "server/metrics/metrics.h"

namespace vox {
namespace {

// Acoustic codes each warm-up synthesis may generate: enough for one vocoder chunk.
constexpr int kWarmUpCodes = 16;

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

// Counts outstanding warm-up sequences and keeps the first failure.
class WarmUpTracker {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++pending_;
  }
  void Done(const absl::Status& s) {
    absl::MutexLock lock(&mu_);
    if (!s.ok() && first_error_.ok()) first_error_ = s;
    --pending_;
  }
  absl::Status Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* pending) { return *pending == 0; }, &pending_));
    return first_error_;
  }

 private:
  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

// Submits `count` copies of `make()` at once (fewer when the queue fills) and waits for them.
template <typename Scheduler, typename MakeFn>
absl::Status RunConcurrently(Scheduler* scheduler, int count, MakeFn make) {
  WarmUpTracker tracker;
  for (int i = 0; i < count; ++i) {
    tracker.Add();
    typename Scheduler::Callbacks callbacks;
    callbacks.on_done = [&tracker](absl::Status s, EndReason) { tracker.Done(s); };
    auto ticket = scheduler->Submit(make(), RequestOptions{}, std::move(callbacks));
    if (!ticket.ok()) {
      tracker.Done(ticket.status().code() == absl::StatusCode::kResourceExhausted
                       ? absl::OkStatus()  // the queue is smaller than a batch: warm what fits
                       : ticket.status());
      if (i == 0) return tracker.Wait();
      break;
    }
  }
  return tracker.Wait();
}

absl::Status Named(const absl::Status& s, const std::string& model) {
  if (s.ok()) return s;
  return absl::Status(s.code(),
                      absl::StrCat("warm-up of model '", model, "' failed: ", s.message()));
}

template <typename Engine>
absl::Status CheckReplicas(const std::vector<std::unique_ptr<Engine>>& replicas,
                           const std::vector<ModelInfo>& loaded) {
  if (replicas.empty() || replicas[0] == nullptr) {
    return absl::InvalidArgumentError("a model needs at least one loaded replica");
  }
  for (const auto& r : replicas) {
    if (r == nullptr) return absl::InvalidArgumentError("null engine replica");
  }
  if (HasName(loaded, replicas[0]->info().name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("two models are named '", replicas[0]->info().name, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

int SchedulerPriority(int proto_priority, int levels) {
  switch (proto_priority) {
    case 1: return 0;               // PRIORITY_LOW
    case 3: return levels - 1;      // PRIORITY_HIGH
    default: return (levels - 1) / 2;  // PRIORITY_NORMAL, PRIORITY_UNSPECIFIED
  }
}

absl::Time DeadlineOnClock(absl::Time deadline, Clock* clock) {
  if (deadline == absl::InfiniteFuture()) return deadline;
  return clock->Now() + (deadline - absl::Now());
}

ModelRegistry::~ModelRegistry() { Shutdown(); }

absl::Status ModelRegistry::AddTranslation(
    std::vector<std::unique_ptr<TranslationEngine>> replicas, SchedulerOptions options,
    Clock* clock, WorkerInit init) {
  if (absl::Status s = CheckReplicas(replicas, Models()); !s.ok()) return s;
  auto model = std::make_unique<TranslationModel>();
  options.name = replicas[0]->info().name;
  options.replicas = static_cast<int>(replicas.size());
  model->options = options;
  model->clock = clock;
  model->observer = std::make_unique<ForwardingObserver>();
  std::vector<std::unique_ptr<TranslationStepModel>> adapters;
  for (const auto& r : replicas) adapters.push_back(MakeTranslationStepModel(r.get(), init));
  auto scheduler =
      TranslationScheduler::Create(options, std::move(adapters), clock, model->observer.get());
  if (!scheduler.ok()) return scheduler.status();
  model->engine = std::move(replicas[0]);
  for (size_t i = 1; i < replicas.size(); ++i) model->more_replicas.push_back(std::move(replicas[i]));
  model->scheduler = std::move(*scheduler);
  translation_.push_back(std::move(model));
  return absl::OkStatus();
}

absl::Status ModelRegistry::AddTranslation(std::unique_ptr<TranslationEngine> engine,
                                           SchedulerOptions options, Clock* clock) {
  std::vector<std::unique_ptr<TranslationEngine>> replicas;
  replicas.push_back(std::move(engine));
  return AddTranslation(std::move(replicas), std::move(options), clock);
}

absl::Status ModelRegistry::AddSpeech(std::vector<std::unique_ptr<SpeechEngine>> replicas,
                                      SchedulerOptions options, Clock* clock, WorkerInit init,
                                      SpeechStepModelOptions step_options) {
  if (absl::Status s = CheckReplicas(replicas, Models()); !s.ok()) return s;
  auto model = std::make_unique<SpeechModel>();
  options.name = replicas[0]->info().name;
  options.replicas = static_cast<int>(replicas.size());
  model->options = options;
  model->clock = clock;
  model->observer = std::make_unique<ForwardingObserver>();
  std::vector<std::unique_ptr<SpeechStepModel>> adapters;
  for (const auto& r : replicas) adapters.push_back(MakeSpeechStepModel(r.get(), step_options, init));
  auto scheduler =
      SpeechScheduler::Create(options, std::move(adapters), clock, model->observer.get());
  if (!scheduler.ok()) return scheduler.status();
  model->engine = std::move(replicas[0]);
  for (size_t i = 1; i < replicas.size(); ++i) model->more_replicas.push_back(std::move(replicas[i]));
  model->scheduler = std::move(*scheduler);
  speech_.push_back(std::move(model));
  return absl::OkStatus();
}

absl::Status ModelRegistry::AddSpeech(std::unique_ptr<SpeechEngine> engine,
                                      SchedulerOptions options, Clock* clock) {
  std::vector<std::unique_ptr<SpeechEngine>> replicas;
  replicas.push_back(std::move(engine));
  return AddSpeech(std::move(replicas), std::move(options), clock);
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

absl::Status ModelRegistry::CheckSpeechLanguage(const std::string& language) const {
  const std::vector<std::string> known = SpeechLanguages();
  if (std::find(known.begin(), known.end(), language) != known.end()) return absl::OkStatus();
  for (const auto& m : speech_) {
    const auto& refused = m->engine->info().refused_languages;
    if (auto it = refused.find(language); it != refused.end()) {
      return absl::InvalidArgumentError(absl::StrCat("language ", language, " is refused by ",
                                                     m->engine->info().name, ": ", it->second));
    }
  }
  return absl::InvalidArgumentError(UnknownValueMessage("language", language, known));
}

std::vector<ModelInfo> ModelRegistry::Models() const {
  std::vector<ModelInfo> infos;
  for (const auto& m : translation_) infos.push_back(m->engine->info());
  for (const auto& m : speech_) infos.push_back(m->engine->info());
  return infos;
}

absl::Status ModelRegistry::WarmUp() {
  for (const auto& m : translation_) {
    const std::string& name = m->engine->info().name;
    if (m->scheduler == nullptr) return absl::FailedPreconditionError("registry is shut down");
    const auto [source, target] = WarmUpPair(*m->engine);
    if (source.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("model '", name, "' supports no language pair; nothing to serve"));
    }
    auto make = [source = source, target = target] {
      TranslationSequence seq;
      seq.text = "Hello.";
      seq.source = source;
      seq.target = target;
      seq.params.max_length = 4;
      return seq;
    };
    // One full batch per replica (its first step also pays for lazy initialisation).
    const int batch = m->options.max_batch_size * m->options.replicas;
    if (absl::Status s = RunConcurrently(m->scheduler.get(), batch, make); !s.ok()) {
      return Named(s, name);
    }
  }
  for (const auto& m : speech_) {
    SpeechEngine* engine = m->engine.get();
    if (m->scheduler == nullptr) return absl::FailedPreconditionError("registry is shut down");
    if (engine->voices().empty() || engine->voices()[0].languages.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("speech model '", engine->info().name, "' lists no voice"));
    }
    SynthesisRequest request;
    request.text = "Hello.";
    request.voice = engine->voices()[0].name;
    request.language = engine->voices()[0].languages[0];
    request.params.greedy = true;
    // Bounded as translation's warm-up is: random or untrained weights may never say stop.
    request.params.max_codes = kWarmUpCodes;
    auto make = [request] {
      SpeechSequence seq;
      seq.request = request;
      return seq;
    };
    const int batch = m->options.max_batch_size * m->options.replicas;
    if (absl::Status s = RunConcurrently(m->scheduler.get(), batch, make); !s.ok()) {
      return Named(s, engine->info().name);
    }
  }
  return absl::OkStatus();
}

void ModelRegistry::AttachMetrics(Metrics* metrics) {
  for (const auto& m : translation_) {
    m->metrics_observer = metrics->ObserverFor(m->engine->info().name, "translate");
    m->observer->SetTarget(m->metrics_observer.get());
  }
  for (const auto& m : speech_) {
    m->metrics_observer = metrics->ObserverFor(m->engine->info().name, "synthesize");
    m->observer->SetTarget(m->metrics_observer.get());
  }
}

void ModelRegistry::Shutdown() {
  for (const auto& m : translation_) {
    if (m->scheduler != nullptr) m->scheduler->StopAccepting();
  }
  for (const auto& m : speech_) {
    if (m->scheduler != nullptr) m->scheduler->StopAccepting();
  }
  for (const auto& m : translation_) {
    m->scheduler.reset();
    m->observer->SetTarget(nullptr);
  }
  for (const auto& m : speech_) {
    m->scheduler.reset();
    m->observer->SetTarget(nullptr);
  }
}

}  // namespace vox
