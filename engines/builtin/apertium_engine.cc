#include "engines/builtin/apertium_engine.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engines/builtin/apertium_text.h"
#include "engines/builtin/utf8.h"
#include "engines/core/languages.h"

namespace vox {

struct ApertiumEngine::Pipeline {
  std::string mode;            // "eng-spa"
  std::string source, target;  // NLLB codes
  std::vector<ProcessPipeline::Stage> stages;
  mutable absl::Mutex mu;
  std::unique_ptr<ProcessPipeline> process ABSL_GUARDED_BY(mu);
  std::atomic<int64_t> restarts{0};
};

namespace {

// Splits a shell-like pipeline into stages of words. Handles '...' and "..." quoting and
// backslash escapes outside single quotes; nothing else of the shell.
absl::StatusOr<std::vector<std::vector<std::string>>> SplitPipeline(const std::string& text) {
  std::vector<std::vector<std::string>> stages(1);
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < text.size()) {
        word.push_back(text[++i]);
      } else {
        word.push_back(c);
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      word.push_back(text[++i]);
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '|') {
      if (in_word) stages.back().push_back(word);
      word.clear();
      in_word = false;
      if (c == '|') stages.emplace_back();
    } else {
      word.push_back(c);
      in_word = true;
    }
  }
  if (quote != 0) return absl::InvalidArgumentError("unterminated quote in mode file");
  if (in_word) stages.back().push_back(word);
  for (const auto& stage : stages) {
    if (stage.empty()) return absl::InvalidArgumentError("empty stage in mode file");
  }
  return stages;
}

std::string Trimmed(absl::string_view s) { return std::string(absl::StripAsciiWhitespace(s)); }

// Starts a pipeline and waits for its answer to a first text: the stages load their
// dictionaries on first use (~0.1 s, seconds on a loaded machine), which should not count
// against a request's timeout.
absl::StatusOr<std::unique_ptr<ProcessPipeline>> StartWarm(const std::string& mode,
                                                           const std::vector<ProcessPipeline::Stage>& stages,
                                                           absl::Duration timeout) {
  auto process = ProcessPipeline::Start(stages);
  if (!process.ok()) {
    return absl::Status(process.status().code(),
                        absl::StrCat("apertium ", mode, ": ", process.status().message()));
  }
  auto answer = (*process)->Exchange({ToApertiumStream("Hello")},
                                     std::max(timeout, absl::Seconds(30)), {});
  if (!answer.ok()) {
    return absl::UnavailableError(absl::StrCat("apertium ", mode, ": the pipeline does not answer: ",
                                               answer.status().message()));
  }
  return process;
}

void LogRestart(const std::string& mode, int64_t count, const std::string& why) {
  std::fprintf(stderr, "vox apertium: restarting the %s pipeline (restart %lld): %s\n",
               mode.c_str(), static_cast<long long>(count), why.c_str());
}

// Kills `pipeline`'s stages, counts and logs the restart, and starts it again (warmed).
absl::Status RestartLocked(ApertiumEngine::Pipeline& pipeline, const std::string& why,
                           absl::Duration timeout,
                           const std::function<void(const std::string&)>& on_restart)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(pipeline.mu) {
  pipeline.process.reset();  // kills and reaps every stage
  const int64_t count = ++pipeline.restarts;
  LogRestart(pipeline.mode, count, why);
  if (on_restart) on_restart(pipeline.mode);
  auto process = StartWarm(pipeline.mode, pipeline.stages, timeout);
  if (!process.ok()) {
    std::fprintf(stderr, "vox apertium: restarting the %s pipeline failed: %s\n",
                 pipeline.mode.c_str(), std::string(process.status().message()).c_str());
    return process.status();
  }
  pipeline.process = std::move(*process);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ProcessPipeline::Stage>> ParseApertiumMode(const std::string& mode_text,
                                                                      bool mark_unknown_words) {
  auto split = SplitPipeline(mode_text);
  if (!split.ok()) return split.status();
  std::vector<ProcessPipeline::Stage> stages;
  for (const auto& words : *split) {
    ProcessPipeline::Stage stage;
    stage.push_back(words[0]);
    stage.push_back("-z");
    for (size_t i = 1; i < words.size(); ++i) {
      const std::string& w = words[i];
      if (w == "$1") {
        stage.push_back(mark_unknown_words ? "-g" : "-n");
      } else if (w == "$2") {
        // The `apertium` script passes the tagger option as an empty $2 unless -a is given.
      } else if (w.find('$') != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("unsupported shell variable in mode file argument '", w,
                         "' (only $1 and $2 are known)"));
      } else {
        stage.push_back(w);
      }
    }
    stages.push_back(std::move(stage));
  }
  return stages;
}

absl::StatusOr<std::unique_ptr<ApertiumEngine>> CreateApertiumEngine(const ApertiumOptions& options) {
  if (options.pairs.empty()) {
    return absl::InvalidArgumentError("apertium: no language pairs configured");
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("apertium: request_timeout must be positive");
  }
  std::unique_ptr<ApertiumEngine> engine(new ApertiumEngine());
  engine->options_ = options;
  engine->info_.name = options.name;
  engine->info_.kind = "translation";
  engine->info_.architecture = "apertium";
  engine->info_.device = "cpu";
  engine->info_.dtype = "n/a";
  engine->info_.weights = "n/a";
  engine->info_.path = options.data_dir;
  engine->info_.fallback = options.fallback;

  for (const std::string& mode : options.pairs) {
    const std::vector<std::string> langs = absl::StrSplit(mode, absl::MaxSplits('-', 1));
    if (langs.size() != 2 || langs[0].empty() || langs[1].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "apertium: pair '", mode, "' is not of the form <source>-<target>, e.g. eng-spa"));
    }
    const std::string target_code = langs[1].substr(0, langs[1].find('_'));
    const auto source = NllbFromEngineCode(CodeFamily::kApertium, langs[0]);
    const auto target = NllbFromEngineCode(CodeFamily::kApertium, target_code);
    for (const auto& [code, nllb] : {std::pair{langs[0], source}, std::pair{target_code, target}}) {
      if (!nllb) {
        std::vector<std::string> known;
        for (const auto& n : LanguagesOf(CodeFamily::kApertium)) {
          known.push_back(*EngineLanguageCode(CodeFamily::kApertium, n));
        }
        return absl::InvalidArgumentError(absl::StrCat(
            "apertium: pair '", mode, "': ",
            UnknownValueMessage("Apertium language code", code, known),
            "; add a row to engines/core/languages.cc to serve it"));
      }
    }
    for (const auto& existing : engine->pipelines_) {
      if (existing->source == *source && existing->target == *target) {
        return absl::InvalidArgumentError(absl::StrCat("apertium: pairs '", existing->mode, "' and '",
                                                       mode, "' both translate ", *source, " to ",
                                                       *target, "; configure one"));
      }
    }
    const std::string path = absl::StrCat(options.data_dir, "/modes/", mode, ".mode");
    std::ifstream file(path);
    if (!file) {
      return absl::NotFoundError(absl::StrCat(
          "apertium: no mode file ", path, " for pair '", mode,
          "'; install the Debian package that provides it (apertium-", langs[0], "-", target_code,
          " or apertium-", target_code, "-", langs[0], ")"));
    }
    std::stringstream text;
    text << file.rdbuf();
    auto stages = ParseApertiumMode(text.str(), options.mark_unknown_words);
    if (!stages.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("apertium: ", path, ": ", stages.status().message()));
    }
    auto pipeline = std::make_unique<ApertiumEngine::Pipeline>();
    pipeline->mode = mode;
    pipeline->source = *source;
    pipeline->target = *target;
    pipeline->stages = std::move(*stages);
    engine->pipelines_.push_back(std::move(pipeline));
  }

  // Start every pipeline and check it answers: a broken installation stops start-up here with
  // the stage that failed, not at the first request.
  for (auto& pipeline : engine->pipelines_) {
    auto process = StartWarm(pipeline->mode, pipeline->stages, options.request_timeout);
    if (!process.ok()) return process.status();
    absl::MutexLock lock(&pipeline->mu);
    pipeline->process = std::move(*process);
    for (const std::string& code : {pipeline->source, pipeline->target}) {
      if (std::find(engine->info_.languages.begin(), engine->info_.languages.end(), code) ==
          engine->info_.languages.end()) {
        engine->info_.languages.push_back(code);
      }
    }
  }
  return engine;
}

ApertiumEngine::~ApertiumEngine() = default;

ApertiumEngine::Pipeline* ApertiumEngine::Find(const std::string& source,
                                               const std::string& target) const {
  for (const auto& pipeline : pipelines_) {
    if (pipeline->source == source && pipeline->target == target) return pipeline.get();
  }
  return nullptr;
}

bool ApertiumEngine::SupportsPair(const std::string& source, const std::string& target) const {
  return Find(source, target) != nullptr;
}

std::string ApertiumEngine::PairList() const {
  std::vector<std::string> listed;
  for (const auto& p : pipelines_) {
    listed.push_back(absl::StrCat(p->source, "->", p->target, " (", p->mode, ")"));
  }
  return absl::StrJoin(listed, ", ");
}

absl::Status ApertiumEngine::Validate(const std::vector<std::string>& texts,
                                      const std::string& source, const std::string& target,
                                      const TranslationParams& params) const {
  if (Find(source, target) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("apertium does not translate ", source, " to ",
                                                   target, " (", pipelines_.size(),
                                                   " pairs available: ", PairList(), ")"));
  }
  if (params.fixed_length) {
    return absl::InvalidArgumentError("fixed_length is not supported by the apertium engine");
  }
  if (texts.empty()) return absl::InvalidArgumentError("no texts to translate");
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string& text = texts[i];
    if (text.size() > options_.max_text_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("text ", i, " is ", text.size(),
                                                     " bytes; the apertium engine takes at most ",
                                                     options_.max_text_bytes));
    }
    if (text.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("text ", i, " contains a NUL character"));
    }
    if (!IsValidUtf8(text)) {
      return absl::InvalidArgumentError(absl::StrCat("text ", i, " is not valid UTF-8"));
    }
    if (absl::StripAsciiWhitespace(text).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("text ", i, " is empty"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TranslationOutput>> ApertiumEngine::Translate(
    const std::vector<std::string>& texts, const std::string& source, const std::string& target,
    const TranslationParams& params, const StopCheck& stop) {
  if (absl::Status valid = Validate(texts, source, target, params); !valid.ok()) return valid;
  Pipeline& pipeline = *Find(source, target);
  absl::MutexLock lock(&pipeline.mu);

  auto restart = [&](const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pipeline.mu) {
    return RestartLocked(pipeline, why, options_.request_timeout, options_.on_restart);
  };

  if (pipeline.process == nullptr) {
    if (absl::Status s = restart("it was down after an earlier failed restart"); !s.ok()) {
      return absl::UnavailableError(absl::StrCat("apertium ", pipeline.mode,
                                                 " pipeline is down and cannot be restarted: ",
                                                 s.message()));
    }
  } else if (auto exited = pipeline.process->FindExitedStage()) {
    if (absl::Status s = restart(*exited); !s.ok()) {
      return absl::UnavailableError(absl::StrCat("apertium ", pipeline.mode, " pipeline: ", *exited,
                                                 "; restarting it failed: ", s.message()));
    }
  }

  std::vector<std::string> records;
  records.reserve(texts.size());
  for (const std::string& text : texts) records.push_back(ToApertiumStream(Trimmed(text)));

  absl::Status stop_status;  // what `stop` returned when it fired
  StopCheck watched_stop;
  if (stop) {
    watched_stop = [&stop, &stop_status]() {
      absl::Status s = stop();
      if (!s.ok()) stop_status = s;
      return s;
    };
  }
  auto answers = pipeline.process->Exchange(records, options_.request_timeout, watched_stop);
  if (answers.ok()) {
    // A stage that died just before or during the exchange (its input lost) leaves the stages
    // after it flushing at end of input, which reads as a well-formed but empty answer. Answers
    // count only from a pipeline whose stages all still run; otherwise restart it and ask again.
    // The dead stage may not be reaped yet when the flushed record arrives, so an empty answer
    // to a non-empty text (which Apertium never gives: unknown words are copied) waits up to
    // 200 ms for the death to show.
    std::optional<std::string> exited = pipeline.process->FindExitedStage();
    bool empty_answer = false;
    for (size_t i = 0; i < records.size() && !empty_answer; ++i) {
      empty_answer = Trimmed(FromApertiumStream((*answers)[i])).empty() &&
                     !Trimmed(texts[i]).empty();
    }
    for (int i = 0; !exited && empty_answer && i < 100; ++i) {
      absl::SleepFor(absl::Milliseconds(2));
      exited = pipeline.process->FindExitedStage();
    }
    if (exited) {
      if (absl::Status s = restart(*exited); !s.ok()) {
        return absl::UnavailableError(absl::StrCat("apertium ", pipeline.mode, " pipeline: ",
                                                   *exited, "; restarting it failed: ",
                                                   s.message()));
      }
      answers = pipeline.process->Exchange(records, options_.request_timeout, watched_stop);
    }
  }
  if (!answers.ok()) {
    // Stopped by the caller: the answers of what was written were drained, still in step.
    if (!stop_status.ok() && answers.status() == stop_status) return answers.status();
    const std::string why(answers.status().message());
    const absl::Status restarted = restart(why);
    return absl::UnavailableError(absl::StrCat(
        "apertium ", pipeline.mode, " pipeline failed: ", why, "; ",
        restarted.ok() ? "it was restarted, retry the request"
                       : absl::StrCat("restarting it failed: ", restarted.message())));
  }
  std::vector<TranslationOutput> outputs(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    outputs[i].text = Trimmed(FromApertiumStream((*answers)[i]));
  }
  return outputs;
}

int64_t ApertiumEngine::restarts() const {
  int64_t total = 0;
  for (const auto& pipeline : pipelines_) total += pipeline->restarts.load();
  return total;
}

std::vector<std::string> ApertiumEngine::pairs() const {
  std::vector<std::string> out;
  for (const auto& pipeline : pipelines_) out.push_back(pipeline->mode);
  return out;
}

std::vector<pid_t> ApertiumEngine::StagePidsForTest(const std::string& mode) const {
  for (const auto& pipeline : pipelines_) {
    if (pipeline->mode != mode) continue;
    absl::MutexLock lock(&pipeline->mu);
    if (pipeline->process == nullptr) return {};
    return pipeline->process->pids();
  }
  return {};
}

}  // namespace vox
