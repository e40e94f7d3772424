#include "engines/translate/nllb_stepper.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <c10/core/InferenceMode.h>

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

// Pads the self-attention side of `rows` on the left of T with `n` masked columns (zeros: a
// masked score is replaced by the fill value, but 0 * NaN would still poison the values).
void PadSelfLeft(NllbModel::DecodeRows& rows, int64_t n) {
  if (n <= 0) return;
  for (auto& t : rows.self_kv) {
    auto sizes = t.sizes().vec();
    sizes[2] = n;
    t = torch::cat({torch::zeros(sizes, t.options()), t}, 2);
  }
  rows.self_mask =
      torch::cat({torch::zeros({rows.rows(), n}, rows.self_mask.options()), rows.self_mask}, 1);
}

// Pads the cross-attention side of `rows` on the right of S with `n` masked source positions.
void PadCrossRight(NllbModel::DecodeRows& rows, int64_t n) {
  if (n <= 0) return;
  for (auto& t : rows.cross) {
    auto sizes = t.sizes().vec();
    sizes[2] = n;
    t = torch::cat({t, torch::zeros(sizes, t.options())}, 2);
  }
  rows.encoder_mask = torch::cat(
      {rows.encoder_mask, torch::zeros({rows.rows(), n}, rows.encoder_mask.options())}, 1);
}

// Appends `add`'s rows to `into`, padding the shorter self cache (left) and the shorter source
// (right) with masked entries so both share one T and one S.
void MergeRows(NllbModel::DecodeRows& into, NllbModel::DecodeRows add) {
  if (into.rows() == 0) {
    into = std::move(add);
    return;
  }
  if (add.rows() == 0) return;
  const int64_t ta = into.self_mask.size(1), tb = add.self_mask.size(1);
  PadSelfLeft(into, tb - ta);
  PadSelfLeft(add, ta - tb);
  const int64_t sa = into.encoder_mask.size(1), sb = add.encoder_mask.size(1);
  PadCrossRight(into, sb - sa);
  PadCrossRight(add, sa - sb);
  for (size_t i = 0; i < into.self_kv.size(); ++i) {
    into.self_kv[i] = torch::cat({into.self_kv[i], add.self_kv[i]}, 0);
  }
  for (size_t i = 0; i < into.cross.size(); ++i) {
    into.cross[i] = torch::cat({into.cross[i], add.cross[i]}, 0);
  }
  into.self_mask = torch::cat({into.self_mask, add.self_mask}, 0);
  into.encoder_mask = torch::cat({into.encoder_mask, add.encoder_mask}, 0);
  into.positions.insert(into.positions.end(), add.positions.begin(), add.positions.end());
  into.row_text.insert(into.row_text.end(), add.row_text.begin(), add.row_text.end());
}

// Drops the self-cache columns no row uses any more (on the left: the columns of sequences that
// left) and the source positions past every row's source (on the right).
void TrimRows(NllbModel::DecodeRows& rows) {
  if (rows.rows() == 0) return;
  const torch::Tensor used = rows.self_mask.ne(0).any(0).to(torch::kCPU);
  const int64_t t = used.size(0);
  const bool* u = used.data_ptr<bool>();
  int64_t first = 0;
  while (first < t && !u[first]) ++first;
  if (first > 0) {
    for (auto& kv : rows.self_kv) kv = kv.narrow(2, first, t - first);
    rows.self_mask = rows.self_mask.narrow(1, first, t - first);
  }
  const torch::Tensor real = rows.encoder_mask.ne(0).any(0).to(torch::kCPU);
  const int64_t s = real.size(0);
  const bool* r = real.data_ptr<bool>();
  int64_t end = s;
  while (end > 1 && !r[end - 1]) --end;
  if (end < s) {
    for (auto& c : rows.cross) c = c.narrow(2, 0, end).contiguous();
    rows.encoder_mask = rows.encoder_mask.narrow(1, 0, end).contiguous();
  }
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
      // No tensor the batch holds is changed in place (operations are functional; the select
      // path's index_copy_ writes into tensors it just made), so keeping the handles is a full
      // snapshot: a failed step leaves the other sequences untouched.
      const NllbModel::DecodeRows saved_batch = batch_;
      const std::vector<uint64_t> saved_running = running_;
      std::unordered_map<uint64_t, Seq> saved_seqs;
      for (uint64_t id : stepping) saved_seqs.emplace(id, seqs_.at(id));
      absl::Status status =
          CatchTorchErrors(absl::StrCat(model_->info.name, ": step"), [&] {
            c10::InferenceMode guard;
            return RunStep(stepping, joining);
          });
      if (!status.ok()) {
        batch_ = saved_batch;
        running_ = saved_running;
        for (auto& [id, seq] : saved_seqs) seqs_.at(id) = std::move(seq);
        for (uint64_t id : stepping) Fail(id, status);
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
    int64_t first_row = 0;         // while running: its rows in batch_ are contiguous
    int64_t num_rows = 0;
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

  // The row of each running sequence's next input token, in batch_ order.
  std::vector<int64_t> NextTokens() const {
    std::vector<int64_t> tokens;
    tokens.reserve(batch_.rows());
    for (uint64_t id : running_) {
      const Seq& seq = seqs_.at(id);
      if (seq.beam == 1) {
        tokens.push_back(seq.tokens.back());
      } else {
        for (const auto& l : seq.beams.live) tokens.push_back(l.tokens.back());
      }
    }
    return tokens;
  }

  static bool NeedsLogprobs(const Seq& seq) { return seq.beam > 1; }

  absl::Status RunStep(const std::unordered_set<uint64_t>& stepping,
                       const std::vector<uint64_t>& joining) {
    // 1. One decode_step over every running row; rows of paused sequences are held (masked).
    std::vector<uint64_t> order;  // running sequences after this step, in row order
    std::vector<int64_t> keep;    // their rows of batch_
    int64_t active_rows = 0;
    bool beams = false;
    for (uint64_t id : running_) {
      const Seq& seq = seqs_.at(id);
      if (stepping.count(id) == 0) continue;
      active_rows += seq.num_rows;
      beams = beams || NeedsLogprobs(seq);
    }
    const int64_t held_rows = batch_.rows() - active_rows;
    // First row of each running sequence in `logits` (-1: held).
    std::vector<int64_t> logit_row(running_.size(), -1);
    torch::Tensor logits, logprobs;
    if (active_rows > 0) {
      // kAuto: select once held rows are at least as many as active ones (docs/engines.md,
      // "NLLB": measured with nllb_engine_bench --stepper).
      const bool select = held_rows > 0 && (held_ == NllbEngine::HeldRows::kSelect ||
                                            (held_ == NllbEngine::HeldRows::kAuto &&
                                             held_rows >= active_rows));
      const std::vector<int64_t> tokens = NextTokens();
      if (!select) {
        // Held rows ride along with their new column masked out.
        std::vector<int64_t> live;
        live.reserve(batch_.rows());
        for (size_t i = 0; i < running_.size(); ++i) {
          const Seq& seq = seqs_.at(running_[i]);
          const bool on = stepping.count(running_[i]) > 0;
          if (on) logit_row[i] = seq.first_row;
          live.insert(live.end(), seq.num_rows, on ? 1 : 0);
        }
        logits = model_->Step(batch_, tokens, &live);
      } else {
        // Only the active rows run; their new caches go back into their rows, and the held
        // rows get a masked column so all rows keep one T.
        std::vector<int64_t> index, sub_tokens;
        for (size_t i = 0; i < running_.size(); ++i) {
          const Seq& seq = seqs_.at(running_[i]);
          if (stepping.count(running_[i]) == 0) continue;
          logit_row[i] = static_cast<int64_t>(index.size());
          for (int64_t b = 0; b < seq.num_rows; ++b) {
            index.push_back(seq.first_row + b);
            sub_tokens.push_back(tokens[seq.first_row + b]);
          }
        }
        NllbModel::DecodeRows sub = batch_;
        NllbModel::SelectRows(sub, index);
        logits = model_->Step(sub, sub_tokens);
        const torch::Tensor where =
            torch::tensor(index, torch::kInt64).to(batch_.self_mask.device());
        for (size_t i = 0; i < batch_.self_kv.size(); ++i) {
          torch::Tensor& full = batch_.self_kv[i];
          auto sizes = full.sizes().vec();
          sizes[2] = 1;
          torch::Tensor grown = torch::cat({full, torch::zeros(sizes, full.options())}, 2);
          grown.index_copy_(0, where, sub.self_kv[i]);
          full = grown;
        }
        torch::Tensor mask = torch::cat(
            {batch_.self_mask, torch::zeros({batch_.rows(), 1}, batch_.self_mask.options())}, 1);
        mask.index_copy_(0, where, sub.self_mask);
        batch_.self_mask = mask;
        for (size_t k = 0; k < index.size(); ++k) batch_.positions[index[k]] = sub.positions[k];
      }
      if (beams) logprobs = torch::log_softmax(logits, -1).contiguous();
    }
    for (size_t i = 0; i < running_.size(); ++i) {
      const uint64_t id = running_[i];
      Seq& seq = seqs_.at(id);
      if (logit_row[i] < 0) {
        for (int64_t b = 0; b < seq.num_rows; ++b) keep.push_back(seq.first_row + b);
        order.push_back(id);
        continue;
      }
      auto rows = Advance(seq, logit_row[i], logits, logprobs);
      if (!rows.ok()) return rows.status();
      if (rows->empty()) continue;  // finished: its rows leave now
      // Rows of `logits` -> rows of batch_ (the sequence's rows are contiguous in both).
      for (int64_t r : *rows) keep.push_back(seq.first_row + (r - logit_row[i]));
      order.push_back(id);
    }
    bool identity = static_cast<int64_t>(keep.size()) == batch_.rows();
    for (size_t i = 0; identity && i < keep.size(); ++i) identity = keep[i] == static_cast<int64_t>(i);
    if (keep.empty()) {
      batch_ = NllbModel::DecodeRows{};
    } else if (!identity) {
      NllbModel::SelectRows(batch_, keep);
      TrimRows(batch_);
    }

    // 2. Joining sequences: one encoder batch, their forced prefix, their first token.
    if (!joining.empty()) {
      std::vector<std::vector<int64_t>> sources;
      std::vector<int64_t> starts, targets;
      for (uint64_t id : joining) {
        const Seq& seq = seqs_.at(id);
        sources.push_back(seq.source);
        starts.push_back(model_->decoder_start);
        targets.push_back(seq.target);
      }
      NllbModel::DecodeRows fresh = model_->Encode(sources);
      for (size_t i = 0; i < joining.size(); ++i) fresh.row_text[i] = seqs_.at(joining[i]).key;
      model_->Step(fresh, starts);
      torch::Tensor first = model_->Step(fresh, targets);
      bool beams = false;
      for (uint64_t id : joining) beams = beams || NeedsLogprobs(seqs_.at(id));
      torch::Tensor first_lp;
      if (beams) first_lp = torch::log_softmax(first, -1).contiguous();
      std::vector<int64_t> fresh_keep;
      for (size_t i = 0; i < joining.size(); ++i) {
        Seq& seq = seqs_.at(joining[i]);
        auto rows = Advance(seq, static_cast<int64_t>(i), first, first_lp);
        if (!rows.ok()) return rows.status();
        if (rows->empty()) continue;
        seq.state = State::kRunning;
        fresh_keep.insert(fresh_keep.end(), rows->begin(), rows->end());
        order.push_back(joining[i]);
      }
      if (!fresh_keep.empty()) {
        NllbModel::SelectRows(fresh, fresh_keep);
        MergeRows(batch_, std::move(fresh));
      }
    }
    running_ = std::move(order);
    Relayout();
    return absl::OkStatus();
  }

  // Recomputes each running sequence's rows from running_'s order.
  void Relayout() {
    int64_t row = 0;
    for (uint64_t id : running_) {
      Seq& seq = seqs_.at(id);
      seq.first_row = row;
      seq.num_rows = seq.beam == 1 ? 1 : static_cast<int64_t>(seq.beams.live.size());
      for (int64_t b = 0; b < seq.num_rows; ++b) {
        if (seq.beam > 1) seq.beams.live[b].row = row + b;
      }
      row += seq.num_rows;
    }
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

  // Drops the rows of running sequence `id` (still in seqs_) from batch_. If even that fails,
  // every running sequence fails with that status and the batch is emptied.
  void RemoveRows(uint64_t id) {
    auto pos = std::find(running_.begin(), running_.end(), id);
    if (pos == running_.end()) return;
    std::vector<int64_t> keep;
    for (uint64_t other : running_) {
      if (other == id) continue;
      const Seq& seq = seqs_.at(other);
      for (int64_t b = 0; b < seq.num_rows; ++b) keep.push_back(seq.first_row + b);
    }
    running_.erase(pos);
    absl::Status status = CatchTorchErrors(absl::StrCat(model_->info.name, ": leave"), [&] {
      c10::InferenceMode guard;
      if (keep.empty()) {
        batch_ = NllbModel::DecodeRows{};
      } else {
        NllbModel::SelectRows(batch_, keep);
        TrimRows(batch_);
      }
      return absl::OkStatus();
    });
    if (!status.ok()) {
      for (uint64_t other : running_) {
        Seq& seq = seqs_.at(other);
        seq.state = State::kDone;
        seq.result.status = status;
        seq.result.finished = false;
      }
      running_.clear();
      batch_ = NllbModel::DecodeRows{};
    }
    Relayout();
  }

  const NllbModel* model_;
  const NllbEngine::HeldRows held_;
  std::unordered_map<uint64_t, Seq> seqs_;
  std::vector<uint64_t> running_;  // sequences with rows in batch_, in row order
  NllbModel::DecodeRows batch_;         // every running row; empty when none
  int next_key_ = 0;
};

}  // namespace

std::unique_ptr<TranslationStepper> NewNllbStepper(const NllbModel* model, NllbEngine::HeldRows held) {
  return std::make_unique<NllbStepper>(model, held);
}

}  // namespace vox
