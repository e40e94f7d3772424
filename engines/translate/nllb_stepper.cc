#include "engines/translate/nllb_stepper.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <c10/core/InferenceMode.h>

#include "engines/core/status_macros.h"
#include "engines/torch/device.h"
#include "engines/translate/beam_search.h"
#include "engines/translate/nllb_model.h"

namespace vox {

absl::Status CheckNllbParams(const TranslationParams& params) {
  if (params.beam_size < 1 || params.beam_size > NllbEngine::kMaxBeamSize) {
    return absl::InvalidArgumentError(absl::StrCat("beam_size ", params.beam_size,
                                                   " out of range; allowed: 1..",
                                                   NllbEngine::kMaxBeamSize, " (1 = greedy)"));
  }
  if (!std::isfinite(params.length_penalty)) {
    return absl::InvalidArgumentError(
        absl::StrCat("length_penalty ", params.length_penalty, " must be a finite number"));
  }
  if (params.fixed_length && params.beam_size != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("fixed_length decoding is greedy only; got beam_size ", params.beam_size));
  }
  return absl::OkStatus();
}

namespace {

// The double a user meant by a float: 0.6f -> 0.6 (not 0.60000002384...), via its shortest
// decimal form, so n ** lp equals the Python reference's for the same option value.
double ShortestDouble(float value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc()) return static_cast<double>(value);
  *end = '\0';
  return std::strtod(buf, nullptr);
}

class NllbStepper final : public TranslationStepper {
 public:
  NllbStepper(const NllbModel* impl, NllbEngine::HeldRows held) : model_(impl), held_(held) {}

  absl::Status Join(uint64_t id, const std::string& text, const std::string& source,
                    const std::string& target, const TranslationParams& params) override {
    if (seqs_.count(id) > 0) {
      return absl::AlreadyExistsError(absl::StrCat("sequence ", id, " has already joined"));
    }
    auto src = model_->Language(source, "source language");
    if (!src.ok()) return src.status();
    auto tgt = model_->Language(target, "target language");
    if (!tgt.ok()) return tgt.status();
    if (absl::Status s = CheckNllbParams(params); !s.ok()) return s;
    auto max_length = model_->MaxLength(params.max_length);
    if (!max_length.ok()) return max_length.status();
    auto sources = model_->PrepareSources({text}, *src);
    if (!sources.ok()) return sources.status();
    Seq seq;
    seq.key = next_key_++;
    seq.source = std::move((*sources)[0]);
    seq.target = *tgt;
    seq.max_length = *max_length;
    seq.fixed = params.fixed_length;
    seq.beam = params.beam_size;
    seq.lp = ShortestDouble(params.length_penalty);
    seqs_.emplace(id, std::move(seq));
    return absl::OkStatus();
  }

  std::vector<TranslationStepResult> Step(absl::Span<const uint64_t> active) override {
    // Which sequences this step advances: running ones listed, pending ones listed (they join).
    std::unordered_set<uint64_t> stepping;
    std::vector<uint64_t> joining;
    for (uint64_t id : active) {
      auto it = seqs_.find(id);
      if (it == seqs_.end() || it->second.state == State::kDone) continue;
      if (!stepping.insert(id).second) continue;
      if (it->second.state == State::kPending) joining.push_back(id);
    }
    if (!stepping.empty()) {
      // A step writes the caches only where no other sequence reads: each row's column past its
      // length, the rows of the sequences it steps, rows past the running ones. So restoring
      // the stepped sequences' state and the row order undoes a failed step for the others.
      const std::vector<uint64_t> saved_running = running_;
      std::unordered_map<uint64_t, Seq> saved_seqs;
      for (uint64_t id : stepping) saved_seqs.emplace(id, seqs_.at(id));
      std::vector<uint64_t> finished;
      absl::Status status =
          CatchTorchErrors(absl::StrCat(model_->info.name, ": step"), [&] {
            c10::InferenceMode guard;
            return RunStep(stepping, joining, finished);
          });
      if (!status.ok()) {
        running_ = saved_running;
        for (auto& [id, seq] : saved_seqs) seqs_.at(id) = std::move(seq);
        Relayout();
        for (uint64_t id : stepping) Fail(id, status);
      } else {
        for (uint64_t id : finished) RemoveRows(id);
      }
    }
    std::vector<TranslationStepResult> results(active.size());
    for (size_t i = 0; i < active.size(); ++i) {
      auto it = seqs_.find(active[i]);
      if (it == seqs_.end()) {
        results[i].status =
            absl::NotFoundError(absl::StrCat("sequence ", active[i], " has not joined"));
      } else if (it->second.state == State::kDone) {
        results[i] = it->second.result;
      }
    }
    return results;
  }

  void Leave(uint64_t id) override {
    auto it = seqs_.find(id);
    if (it == seqs_.end()) return;
    if (it->second.state == State::kRunning) RemoveRows(id);
    seqs_.erase(id);
    if (seqs_.empty()) ReleaseFreeMemory();  // idle: what malloc kept of the steps' buffers
  }

  int size() const override { return static_cast<int>(seqs_.size()); }

 private:
  enum class State { kPending, kRunning, kDone };

  struct Seq {
    int key = 0;  // row_text of its rows: unique per sequence
    std::vector<int64_t> source;
    int64_t target = 0;
    int max_length = 0;
    bool fixed = false;
    int beam = 1;
    double lp = 1.0;
    State state = State::kPending;
    int steps = 0;                 // tokens chosen so far
    std::vector<int64_t> tokens;   // greedy: generated ids
    beam::TextBeams beams;         // beam_size > 1; live[b] sits on row first_row + b
    int64_t first_row = 0;         // while running: its `beam` rows of slots_, contiguous
                                   // (a beam sequence keeps k rows from its first token on;
                                   // rows past its live beams idle)
    int64_t cache_len = 0;         // self-cache columns filled (its next step's column)
    TranslationStepResult result;  // once kDone
  };

  // Chooses the sequence's next token(s) from its rows of `logits` / `logprobs` (row numbers as
  // in those tensors, starting at `row`). Returns the rows (of those tensors) to keep for the next
  // step, in the sequence's row order; empty when it finished.
  absl::StatusOr<std::vector<int64_t>> Advance(Seq& seq, int64_t row, const torch::Tensor& logits,
                                               const torch::Tensor& logprobs) {
    const int64_t vocab = logits.size(1);
    std::vector<int64_t> keep;
    if (seq.beam == 1) {
      const int64_t best = beam::Argmax(logits.data_ptr<float>() + row * vocab, vocab);
      ++seq.steps;
      const bool ended = best == model_->eos && !seq.fixed;
      if (!ended) seq.tokens.push_back(best);
      if (ended || seq.steps >= seq.max_length) return Finish(seq, seq.tokens);
      keep.push_back(row);
      return keep;
    }
    if (seq.steps == 0) seq.beams.live.push_back({{}, 0.0f, 0});
    for (size_t b = 0; b < seq.beams.live.size(); ++b) {
      seq.beams.live[b].row = row + static_cast<int64_t>(b);
    }
    beam::BeamUpdate(seq.beams, logprobs.data_ptr<float>(), vocab, seq.steps, seq.beam, seq.lp,
                     seq.max_length, model_->eos);
    ++seq.steps;
    if (seq.beams.done) return Finish(seq, beam::BestFinished(seq.beams));
    for (const auto& l : seq.beams.live) keep.push_back(l.row);
    return keep;
  }

  absl::StatusOr<std::vector<int64_t>> Finish(Seq& seq, std::vector<int64_t> ids) {
    auto text = model_->Detokenize(ids);
    if (!text.ok()) {
      return absl::InternalError(
          absl::StrCat(model_->info.name, ": detokenize: ", text.status().message()));
    }
    seq.state = State::kDone;
    seq.result.status = absl::OkStatus();
    seq.result.finished = true;
    seq.result.output.text = *std::move(text);
    seq.result.output.token_ids = std::move(ids);
    seq.tokens.clear();
    seq.beams = {};
    return std::vector<int64_t>{};
  }

  static bool NeedsLogprobs(const Seq& seq) { return seq.beam > 1; }

  // Appends the input token and cache length of each of the sequence's rows (rows past its live
  // beams repeat the first beam's token: they run, and nothing reads them).
  static void AppendRows(const Seq& seq, std::vector<int64_t>& tokens, std::vector<int64_t>& lens) {
    for (int64_t b = 0; b < seq.beam; ++b) {
      if (seq.beam == 1) {
        tokens.push_back(seq.tokens.back());
      } else {
        const size_t live = b < static_cast<int64_t>(seq.beams.live.size()) ? b : 0;
        tokens.push_back(seq.beams.live[live].tokens.back());
      }
      lens.push_back(seq.cache_len);
    }
  }

  // Advances `seq` from its rows of `logits` / `logprobs` (its first at `logit_row`) and moves
  // each kept beam's cache into the sequence's own rows. Records it in `finished` if it ended.
  absl::Status AdvanceRows(uint64_t id, Seq& seq, int64_t logit_row, const torch::Tensor& logits,
                           const torch::Tensor& logprobs, std::vector<uint64_t>& finished) {
    ++seq.cache_len;
    auto keep = Advance(seq, logit_row, logits, logprobs);
    if (!keep.ok()) return keep.status();
    if (keep->empty()) {
      finished.push_back(id);
      return absl::OkStatus();
    }
    std::vector<int64_t> from, to;
    for (size_t b = 0; b < keep->size(); ++b) {
      const int64_t parent = seq.first_row + ((*keep)[b] - logit_row);
      const int64_t row = seq.first_row + static_cast<int64_t>(b);
      if (parent != row) {
        from.push_back(parent);
        to.push_back(row);
      }
      if (seq.beam > 1) seq.beams.live[b].row = row;
    }
    NllbModel::CopyRows(slots_, from, to, seq.cache_len, 0);
    return absl::OkStatus();
  }

  int64_t UsedRows() const {
    if (running_.empty()) return 0;
    const Seq& last = seqs_.at(running_.back());
    return last.first_row + last.beam;
  }

  // One step: the listed running sequences advance, the listed pending ones join (their forced
  // prefix and first token). Ids that finished go to `finished`; their rows are still held.
  absl::Status RunStep(const std::unordered_set<uint64_t>& stepping,
                       const std::vector<uint64_t>& joining, std::vector<uint64_t>& finished) {
    const int64_t used = UsedRows();
    int64_t active_rows = 0;
    bool beams = false;
    for (uint64_t id : running_) {
      const Seq& seq = seqs_.at(id);
      if (stepping.count(id) == 0) continue;
      active_rows += seq.beam;
      beams = beams || NeedsLogprobs(seq);
    }
    const int64_t held_rows = used - active_rows;
    if (active_rows > 0) {
      // 1. One decode_slots over the running rows. kAuto: held rows ride along until they are
      // as many as the active ones, then only the active rows run (docs/engines.md, "NLLB").
      const bool select = held_rows > 0 && (held_ == NllbEngine::HeldRows::kSelect ||
                                            (held_ == NllbEngine::HeldRows::kAuto &&
                                             held_rows >= active_rows));
      std::vector<int64_t> tokens, lens, index;
      std::vector<int64_t> logit_row(running_.size(), -1);  // first row in the logits; -1: held
      int64_t sources = 1, columns = 1;
      for (size_t i = 0; i < running_.size(); ++i) {
        const Seq& seq = seqs_.at(running_[i]);
        const bool on = stepping.count(running_[i]) > 0;
        if (select && !on) continue;
        if (on) logit_row[i] = static_cast<int64_t>(tokens.size());
        AppendRows(seq, tokens, lens);
        for (int64_t b = 0; select && b < seq.beam; ++b) index.push_back(seq.first_row + b);
        sources = std::max<int64_t>(sources, static_cast<int64_t>(seq.source.size()));
        columns = std::max<int64_t>(columns, seq.cache_len + 1);
      }
      model_->Reserve(slots_, used, columns, sources);
      const torch::Tensor logits = model_->Step(slots_, tokens, lens, sources, 0, index);
      const torch::Tensor logprobs =
          beams ? torch::log_softmax(logits, -1).contiguous() : torch::Tensor();
      for (size_t i = 0; i < running_.size(); ++i) {
        if (logit_row[i] < 0) continue;
        Seq& seq = seqs_.at(running_[i]);
        VOX_RETURN_IF_ERROR(AdvanceRows(running_[i], seq, logit_row[i], logits, logprobs, finished));
      }
    }

    // 2. Joining sequences: one encoder batch into rows past the running ones, their forced
    // prefix (two steps over just those rows: the decoder start without logits, then the
    // target language), their first token.
    if (joining.empty()) return absl::OkStatus();
    std::vector<std::vector<int64_t>> sources;
    std::vector<int64_t> starts, targets, which;
    int64_t row = used, columns = 2;
    bool join_beams = false;
    for (uint64_t id : joining) {
      Seq& seq = seqs_.at(id);
      seq.first_row = row;
      row += seq.beam;
      starts.insert(starts.end(), seq.beam, model_->decoder_start);
      targets.insert(targets.end(), seq.beam, seq.target);
      which.insert(which.end(), seq.beam, static_cast<int64_t>(sources.size()));
      join_beams = join_beams || NeedsLogprobs(seq);
      // Room for a translation 1.5 times the source (the caches grow if it is longer).
      const int64_t src = static_cast<int64_t>(seq.source.size());
      columns = std::max<int64_t>(columns, std::min<int64_t>(seq.max_length + 2, src + src / 2 + 8));
      sources.push_back(seq.source);
    }
    NllbModel::Encoded encoded = model_->Encode(sources);
    const int64_t width = encoded.mask.size(1);
    if (slots_.rows() == 0 && which.size() == sources.size()) {
      NllbModel::AdoptSources(slots_, std::move(encoded));  // idle caches, one row per source
      model_->Reserve(slots_, row, columns, width);
    } else {
      model_->Join(slots_, row, columns, used, std::move(encoded), which);
    }
    const int64_t n = row - used;
    model_->Fill(slots_, starts, std::vector<int64_t>(n, 0), width, used, {});
    const torch::Tensor first = model_->Step(slots_, targets, std::vector<int64_t>(n, 1), width, used, {});
    const torch::Tensor first_lp =
        join_beams ? torch::log_softmax(first, -1).contiguous() : torch::Tensor();
    for (uint64_t id : joining) {
      Seq& seq = seqs_.at(id);
      seq.state = State::kRunning;
      seq.cache_len = 1;  // AdvanceRows counts the target-language column
      running_.push_back(id);
      VOX_RETURN_IF_ERROR(AdvanceRows(id, seq, seq.first_row - used, first, first_lp, finished));
    }
    return absl::OkStatus();
  }

  // Recomputes each running sequence's first row from running_'s order.
  void Relayout() {
    int64_t row = 0;
    for (uint64_t id : running_) {
      Seq& seq = seqs_.at(id);
      seq.first_row = row;
      for (size_t b = 0; b < seq.beams.live.size(); ++b) seq.beams.live[b].row = row + b;
      row += seq.beam;
    }
    if (running_.empty()) slots_ = NllbModel::Slots{};  // nothing runs: hand the caches back
  }

  // Marks a sequence failed (it stays until Leave) and frees its rows.
  void Fail(uint64_t id, const absl::Status& status) {
    Seq& seq = seqs_.at(id);
    const bool running = seq.state == State::kRunning;
    seq.state = State::kDone;
    seq.result.status = status;
    seq.result.finished = false;
    seq.tokens.clear();
    seq.beams = {};
    if (running) RemoveRows(id);
  }

  // Frees the rows of running sequence `id` (still in seqs_), keeping the running rows dense:
  // the last sequence moves into them when it has as many rows, else the rows after them move
  // down. If a copy fails, every running sequence fails with that status and the rows are freed.
  void RemoveRows(uint64_t id) {
    auto pos = std::find(running_.begin(), running_.end(), id);
    if (pos == running_.end()) return;
    const Seq& gone = seqs_.at(id);
    const uint64_t last = running_.back();
    absl::Status status = CatchTorchErrors(absl::StrCat(model_->info.name, ": leave"), [&] {
      c10::InferenceMode guard;
      if (last == id) {
        running_.pop_back();
        return absl::OkStatus();
      }
      const Seq& tail = seqs_.at(last);
      const bool swap = tail.beam == gone.beam;
      std::vector<int64_t> from, to;
      int64_t columns = 0, sources = 0;
      for (auto it = swap ? running_.end() - 1 : pos + 1; it != running_.end(); ++it) {
        const Seq& moved = seqs_.at(*it);
        columns = std::max(columns, moved.cache_len);
        sources = std::max<int64_t>(sources, static_cast<int64_t>(moved.source.size()));
        for (int64_t b = 0; b < moved.beam; ++b) from.push_back(moved.first_row + b);
      }
      for (size_t k = 0; k < from.size(); ++k) to.push_back(gone.first_row + static_cast<int64_t>(k));
      NllbModel::CopyRows(slots_, from, to, columns, sources);
      if (swap) {
        *pos = last;
        running_.pop_back();
      } else {
        running_.erase(pos);
      }
      return absl::OkStatus();
    });
    if (!status.ok()) {
      for (uint64_t other : running_) {
        if (other == id) continue;
        Seq& seq = seqs_.at(other);
        seq.state = State::kDone;
        seq.result.status = status;
        seq.result.finished = false;
      }
      running_.clear();
    }
    Relayout();
  }

  const NllbModel* model_;
  const NllbEngine::HeldRows held_;
  std::unordered_map<uint64_t, Seq> seqs_;
  std::vector<uint64_t> running_;  // sequences with rows in slots_, in row order (dense from 0)
  NllbModel::Slots slots_;         // every running row's caches; empty when none runs
  int next_key_ = 0;
};

}  // namespace

std::unique_ptr<TranslationStepper> NewNllbStepper(const NllbModel* model, NllbEngine::HeldRows held) {
  return std::make_unique<NllbStepper>(model, held);
}

}  // namespace vox
