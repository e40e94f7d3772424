#include "server/scheduler/translation_batching.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vox {
namespace {

bool SameCall(const TranslateJob& a, const TranslateJob& b) {
  return a.source == b.source && a.target == b.target &&
         a.params.beam_size == b.params.beam_size &&
         a.params.length_penalty == b.params.length_penalty &&
         a.params.max_length == b.params.max_length &&
         a.params.fixed_length == b.params.fixed_length;
}

}  // namespace

TranslateBatcher::RunFn MakeTranslateRunFn(std::vector<TranslationEngine*> engines,
                                           int max_texts_per_call) {
  max_texts_per_call = std::max(1, max_texts_per_call);
  return [engines = std::move(engines), max_texts_per_call](TranslateBatcher::Batch& batch) {
    using Result = absl::StatusOr<std::vector<TranslationOutput>>;
    std::vector<Result> results(batch.size(), absl::InternalError("not run"));
    const int replica = batch.replica();
    if (replica < 0 || replica >= static_cast<int>(engines.size()) ||
        engines[replica] == nullptr) {
      const absl::Status error = absl::InternalError(absl::StrCat(
          "no translation engine for replica ", replica, " (", engines.size(), " given)"));
      std::fill(results.begin(), results.end(), error);
      return results;
    }
    TranslationEngine& engine = *engines[replica];

    // Group jobs into calls: same pair and params, in batch order, bounded in texts.
    std::vector<bool> placed(batch.size(), false);
    for (size_t first = 0; first < batch.size(); ++first) {
      if (placed[first]) continue;
      std::vector<size_t> call = {first};
      placed[first] = true;
      size_t texts = batch.request(first).texts.size();
      for (size_t j = first + 1; j < batch.size(); ++j) {
        if (placed[j] || !SameCall(batch.request(first), batch.request(j))) continue;
        const size_t n = batch.request(j).texts.size();
        if (texts + n > static_cast<size_t>(max_texts_per_call)) continue;
        call.push_back(j);
        placed[j] = true;
        texts += n;
      }

      // Jobs that should already stop do not go in.
      std::vector<size_t> live;
      for (size_t j : call) {
        absl::Status stop = batch.CheckStop(j);
        if (stop.ok()) {
          live.push_back(j);
        } else {
          results[j] = stop;
        }
      }
      if (live.empty()) continue;

      std::vector<std::string> all_texts;
      for (size_t j : live) {
        const auto& t = batch.request(j).texts;
        all_texts.insert(all_texts.end(), t.begin(), t.end());
      }
      StopCheck stop = [&batch, &live]() -> absl::Status {
        absl::Status first_stop;
        for (size_t j : live) {
          absl::Status s = batch.CheckStop(j);
          if (s.ok()) return absl::OkStatus();
          if (first_stop.ok()) first_stop = s;
        }
        return first_stop;
      };
      const TranslateJob& head = batch.request(live.front());
      absl::StatusOr<std::vector<TranslationOutput>> out =
          engine.Translate(all_texts, head.source, head.target, head.params, stop);
      if (out.ok() && out->size() != all_texts.size()) {
        out = absl::InternalError(absl::StrCat("engine '", engine.info().name, "' returned ",
                                               out->size(), " translations for ",
                                               all_texts.size(), " texts"));
      }
      size_t at = 0;
      for (size_t j : live) {
        const size_t n = batch.request(j).texts.size();
        absl::Status own = batch.CheckStop(j);
        if (!own.ok()) {
          results[j] = own;
        } else if (!out.ok()) {
          results[j] = out.status();
        } else {
          results[j] = std::vector<TranslationOutput>(
              std::make_move_iterator(out->begin() + at),
              std::make_move_iterator(out->begin() + at + n));
        }
        at += n;
      }
    }
    return results;
  };
}

}  // namespace vox
