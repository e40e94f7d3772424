#ifndef VOX_ENGINES_BUILTIN_APERTIUM_ENGINE_H_
#define VOX_ENGINES_BUILTIN_APERTIUM_ENGINE_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engines/builtin/process_pipeline.h"
#include "engines/core/translation_engine.h"

namespace vox {

// Rule-based translation with Debian's Apertium (packages apertium, apertium-eng-spa,
// apertium-eng-cat, ...). No model weights: serves real translations out of the box.
struct ApertiumOptions {
  std::string name = "apertium";  // ModelInfo::name
  // Apertium mode names to serve, "<src>-<tgt>" in ISO 639-3 (optionally "_<variant>", e.g.
  // "eng-cat_valencia"); each needs <data_dir>/modes/<pair>.mode, and both codes a row in the
  // language table (engines/core/languages.cc). Two modes for the same language pair: error.
  std::vector<std::string> pairs = {"eng-spa", "spa-eng", "eng-cat", "cat-eng"};
  std::string data_dir = "/usr/share/apertium";
  bool fallback = false;  // ModelInfo::fallback: serve only what no primary engine serves
  // Longest wait for the pipeline's answer to one Translate call (all its texts). Past it the
  // pipeline is presumed hung: it is killed and restarted, and the call returns UNAVAILABLE.
  absl::Duration request_timeout = absl::Seconds(10);
  // false (default): unknown words are copied without marks (`apertium -u`), clean input for
  // speech. true: Apertium's marks are kept ('*' unknown word, '#' not generated, '@' not in
  // the bilingual dictionary), exactly what the `apertium` command prints.
  bool mark_unknown_words = false;
  size_t max_text_bytes = 10000;  // per text; longer → INVALID_ARGUMENT
  // Called after each pipeline restart with the mode ("eng-spa"), whether or not the restart
  // succeeded, on the thread that restarted it (voxd counts it in vox_pipeline_restarts_total).
  // Must be quick and thread-safe; may be empty.
  std::function<void(const std::string& mode)> on_restart;
};

// One long-running Apertium pipeline per pair, in null-flush mode: the stages listed in the
// pair's .mode file run as child processes chained by OS pipes, each with -z; a text goes in as
// `apertium-destxt` would escape it followed by a NUL, its translation comes out followed by a
// NUL. A warm request costs a few milliseconds instead of ~0.3 s (quiet machine) to over 1 s
// (loaded) for a process per request (docs/benchmarks.md, "Built-in engines").
//
// Supervision: each pipeline is one unit. Before a request, a stage found dead restarts the
// whole pipeline; during a request, a stage that dies, closes its end, or does not answer within
// request_timeout makes that request fail with UNAVAILABLE and the pipeline is killed and
// restarted (and warmed with a first text, so the next request does not pay the dictionaries'
// loading), so the next request is served. Every restart is logged on stderr and counted in
// restarts(). A restart that fails leaves the pair down; each later request tries again.
//
// Texts are trimmed of surrounding whitespace, translated one after another through the
// pipeline (all written at once, answers read as they come), and the translations trimmed.
// TranslationParams are neural decoding knobs: ignored, except fixed_length (INVALID_ARGUMENT).
//
// Thread-safety: every method is thread-safe (stronger than TranslationEngine asks); calls for
// the same pair are serialized by that pair's mutex, different pairs run in parallel.
// The destructor kills every child process.
class ApertiumEngine : public TranslationEngine {
 public:
  ~ApertiumEngine() override;

  const ModelInfo& info() const override { return info_; }
  bool SupportsPair(const std::string& source, const std::string& target) const override;
  absl::Status Validate(const std::vector<std::string>& texts, const std::string& source,
                        const std::string& target, const TranslationParams& params) const override;
  absl::StatusOr<std::vector<TranslationOutput>> Translate(
      const std::vector<std::string>& texts, const std::string& source, const std::string& target,
      const TranslationParams& params, const StopCheck& stop) override;

  // Pipelines restarted after a failure since construction (for vox_*_restarts_total).
  int64_t restarts() const;

  // Served modes in option order, e.g. {"eng-spa", "spa-eng"}.
  std::vector<std::string> pairs() const;

  // Test hook: process ids of `mode`'s running stages in pipeline order (empty when the mode is
  // not served or its pipeline is down).
  std::vector<pid_t> StagePidsForTest(const std::string& mode) const;

  struct Pipeline;  // internal

 private:
  friend absl::StatusOr<std::unique_ptr<ApertiumEngine>> CreateApertiumEngine(
      const ApertiumOptions& options);
  ApertiumEngine() = default;
  Pipeline* Find(const std::string& source, const std::string& target) const;
  std::string PairList() const;

  ApertiumOptions options_;
  ModelInfo info_;
  std::vector<std::unique_ptr<Pipeline>> pipelines_;
};

// Reads every pair's .mode file, starts its pipeline and checks that it answers (a dozen small
// processes per pair; ~0.1–0.3 s per pair on a 2-core machine). Errors: INVALID_ARGUMENT for a bad
// pair name or language missing from the table, NOT_FOUND for a missing mode file (naming the
// Debian package to install), INTERNAL/UNAVAILABLE when a pipeline cannot start or answer.
// The result converts to std::unique_ptr<TranslationEngine>; keep an ApertiumEngine* for
// restarts() if you publish it.
absl::StatusOr<std::unique_ptr<ApertiumEngine>> CreateApertiumEngine(const ApertiumOptions& options);

// Parses one Apertium .mode file (a shell pipeline `prog args | prog args | ...`, arguments
// single- or double-quoted) into stages for ProcessPipeline: "-z" inserted after each program
// name, "$1" replaced by the generator's flag ("-g" marks unknown words, "-n" does not), "$2"
// (the tagger option the `apertium` script passes empty) dropped. Other "$" variables →
// INVALID_ARGUMENT.
absl::StatusOr<std::vector<ProcessPipeline::Stage>> ParseApertiumMode(const std::string& mode_text,
                                                                      bool mark_unknown_words);

}  // namespace vox

#endif  // VOX_ENGINES_BUILTIN_APERTIUM_ENGINE_H_
