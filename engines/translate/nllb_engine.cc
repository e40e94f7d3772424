#include "engines/translate/nllb_engine.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <cstdlib>
#include <cmath>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/torch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engines/core/languages.h"
#include "engines/core/manifest.h"
#include "engines/text/sentencepiece_tokenizer.h"
#include "engines/torch/device.h"

namespace vox {

struct NllbEngine::Impl {
  Manifest manifest;
  ModelInfo info;
  DevicePlacement device;
  DType dtype = DType::kFloat32;
  std::shared_ptr<torch::jit::Module> module;
  std::unique_ptr<SentencePieceTokenizer> spm;
  std::unordered_map<std::string, int64_t> language_ids;
  std::vector<std::string> language_codes;  // manifest order
  int64_t bos = 0, pad = 1, eos = 2, unk = 3, decoder_start = 2;
  int64_t spm_size = 0, fairseq_offset = 1, vocab_size = 0;
  int max_positions = 0, max_source_tokens = 0, default_max_length = 200;
  int decoder_layers = 0, decoder_heads = 0, head_dim = 0;

  // ---- decoding over a batch of rows ----

  // The state of a batch of decoder rows (sequences or beams). Every row carries its own
  // position and its own rows of the self-attention cache and of the cross-attention keys and
  // values, so rows can leave (finished), be reordered (beams) or, later, join (continuous
  // batching) by selecting rows; self_mask hides cache entries a row does not own.
  struct DecodeRows {
    std::vector<torch::Tensor> cross;    // 2 * layers, each [R, H, S, hd]
    torch::Tensor encoder_mask;          // [R, S] int64, 1 = real token
    std::vector<torch::Tensor> self_kv;  // 2 * layers, each [R, H, T, hd]
    torch::Tensor self_mask;             // [R, T] int64
    std::vector<int64_t> positions;      // position of each row's next input token
    std::vector<int> row_text;           // which input text each row belongs to
    int64_t rows() const { return static_cast<int64_t>(positions.size()); }
  };

  absl::StatusOr<std::vector<int64_t>> Tokenize(const std::string& text, int64_t lang) const {
    auto pieces = spm->Encode(text);
    if (!pieces.ok()) return pieces.status();
    std::vector<int64_t> ids;
    ids.reserve(pieces->size() + 2);
    ids.push_back(lang);
    for (int32_t p : *pieces) ids.push_back(p == 0 ? unk : p + fairseq_offset);
    ids.push_back(eos);
    return ids;
  }

  absl::StatusOr<int64_t> Language(const std::string& code, const char* what) const {
    auto it = language_ids.find(code);
    if (it == language_ids.end()) {
      return absl::InvalidArgumentError(UnknownValueMessage(what, code, language_codes));
    }
    return it->second;
  }

  // Tokenizes and checks every text; INVALID_ARGUMENT names the text's index.
  absl::StatusOr<std::vector<std::vector<int64_t>>> PrepareSources(
      const std::vector<std::string>& texts, int64_t src) const {
    if (texts.empty()) return absl::InvalidArgumentError("no texts to translate");
    std::vector<std::vector<int64_t>> out;
    out.reserve(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      if (absl::StripAsciiWhitespace(texts[i]).empty()) {
        return absl::InvalidArgumentError(absl::StrCat("text ", i, " is empty"));
      }
      auto ids = Tokenize(texts[i], src);
      if (!ids.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("text ", i, ": cannot tokenize: ", ids.status().message()));
      }
      if (static_cast<int>(ids->size()) > max_source_tokens) {
        return absl::InvalidArgumentError(absl::StrCat(
            "text ", i, " is too long: ", ids->size(), " tokens; ", info.name,
            " takes at most ", max_source_tokens,
            " (including the language token and </s>); split it into sentences"));
      }
      out.push_back(*std::move(ids));
    }
    return out;
  }

  absl::StatusOr<int> MaxLength(int requested) const {
    const int cap = std::max(1, max_positions - 2);
    if (requested < 0 || requested > cap) {
      return absl::InvalidArgumentError(absl::StrCat("max_length ", requested,
                                                     " out of range; allowed: 1..", cap,
                                                     " (0 = default ", std::min(default_max_length, cap), ")"));
    }
    return requested == 0 ? std::min(default_max_length, cap) : requested;
  }

  torch::TensorOptions IntOptions() const {
    return torch::TensorOptions().dtype(torch::kInt64).device(ToTorchDevice(device));
  }

  // Runs the encoder over right-padded sources and prepares one decoder row per text.
  DecodeRows Encode(const std::vector<std::vector<int64_t>>& sources) const {
    const int64_t n = static_cast<int64_t>(sources.size());
    int64_t s = 0;
    for (const auto& ids : sources) s = std::max<int64_t>(s, static_cast<int64_t>(ids.size()));
    torch::Tensor ids = torch::full({n, s}, pad, torch::kInt64);
    torch::Tensor mask = torch::zeros({n, s}, torch::kInt64);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (int64_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < sources[i].size(); ++j) {
        ids_a[i][j] = sources[i][j];
        mask_a[i][j] = 1;
      }
    }
    const auto dev = ToTorchDevice(device);
    ids = ids.to(dev);
    mask = mask.to(dev);
    torch::Tensor enc = module->get_method("encode")({ids, mask}).toTensor();
    DecodeRows rows;
    for (const auto& t : module->get_method("cross_kv")({enc}).toTensorList()) {
      rows.cross.push_back(t);
    }
    rows.encoder_mask = mask;
    const auto kv_options = torch::TensorOptions().dtype(enc.scalar_type()).device(dev);
    for (int i = 0; i < 2 * decoder_layers; ++i) {
      rows.self_kv.push_back(torch::empty({n, decoder_heads, 0, head_dim}, kv_options));
    }
    rows.self_mask = torch::empty({n, 0}, IntOptions());
    rows.positions.assign(n, 2);  // the decoder start token sits at position 2
    rows.row_text.resize(n);
    for (int64_t i = 0; i < n; ++i) rows.row_text[i] = static_cast<int>(i);
    return rows;
  }

  // One decoder step: feeds `tokens` (one per row), appends to every row's cache, returns the
  // float32 logits [R, V] on the CPU. With `live` (one 0/1 per row), a row with 0 is held: its
  // new cache column is masked out (for this and every later step), its position does not
  // advance, and its logits are meaningless; its state is as if it had not been stepped.
  torch::Tensor Step(DecodeRows& rows, const std::vector<int64_t>& tokens,
                     const std::vector<int64_t>* live = nullptr) const {
    const int64_t r = rows.rows();
    torch::Tensor input = torch::from_blob(const_cast<int64_t*>(tokens.data()), {r, 1},
                                           torch::kInt64).clone().to(ToTorchDevice(device));
    torch::Tensor positions =
        torch::from_blob(rows.positions.data(), {r, 1}, torch::kInt64).clone().to(
            ToTorchDevice(device));
    torch::Tensor column =
        live == nullptr
            ? torch::ones({r, 1}, IntOptions())
            : torch::from_blob(const_cast<int64_t*>(live->data()), {r, 1}, torch::kInt64)
                  .clone()
                  .to(ToTorchDevice(device));
    torch::Tensor self_mask = torch::cat({rows.self_mask, column}, 1);
    c10::List<torch::Tensor> self_kv(rows.self_kv);
    c10::List<torch::Tensor> cross(rows.cross);
    auto out = module->get_method("decode_step")(
        {input, positions, self_kv, self_mask, cross, rows.encoder_mask});
    auto tuple = out.toTuple();
    torch::Tensor logits = tuple->elements()[0].toTensor();
    auto new_kv = tuple->elements()[1].toTensorList();
    for (size_t i = 0; i < new_kv.size(); ++i) rows.self_kv[i] = new_kv.get(i);
    rows.self_mask = self_mask;
    for (int64_t i = 0; i < r; ++i) {
      if (live == nullptr || (*live)[i] != 0) ++rows.positions[i];
    }
    return logits.to(torch::kCPU, torch::kFloat32).contiguous();
  }

  // Keeps rows `keep` (in that order; a row may repeat, as beams do).
  static void SelectRows(DecodeRows& rows, const std::vector<int64_t>& keep) {
    std::vector<int> new_text;
    std::vector<int64_t> new_pos;
    new_text.reserve(keep.size());
    new_pos.reserve(keep.size());
    for (int64_t k : keep) {
      new_text.push_back(rows.row_text[k]);
      new_pos.push_back(rows.positions[k]);
    }
    torch::Tensor index =
        torch::tensor(keep, torch::kInt64).to(rows.encoder_mask.device());
    for (auto& t : rows.self_kv) t = t.index_select(0, index);
    rows.self_mask = rows.self_mask.index_select(0, index);
    // Cross-attention rows depend only on the text: re-select them only when the row-to-text
    // layout changes (texts finishing, beams appearing after the first step).
    if (new_text != rows.row_text) {
      for (auto& t : rows.cross) t = t.index_select(0, index);
      rows.encoder_mask = rows.encoder_mask.index_select(0, index);
    }
    rows.row_text = std::move(new_text);
    rows.positions = std::move(new_pos);
  }

  // Feeds the forced prefix [decoder_start, tgt] to every row; returns the logits that choose
  // the first generated token.
  absl::StatusOr<torch::Tensor> Prefix(DecodeRows& rows, int64_t tgt, const StopCheck& stop) const {
    if (stop) {
      if (absl::Status s = stop(); !s.ok()) return s;
    }
    Step(rows, std::vector<int64_t>(rows.rows(), decoder_start));
    if (stop) {
      if (absl::Status s = stop(); !s.ok()) return s;
    }
    return Step(rows, std::vector<int64_t>(rows.rows(), tgt));
  }

  // The greedy choice over one row of logits: the highest, the lowest id on ties.
  static int64_t Argmax(const float* row, int64_t vocab) {
    int64_t best = 0;
    for (int64_t v = 1; v < vocab; ++v) {
      if (row[v] > row[best]) best = v;
    }
    return best;
  }

  absl::StatusOr<std::vector<std::vector<int64_t>>> Greedy(DecodeRows rows, int64_t tgt,
                                                           int max_length, bool fixed,
                                                           const StopCheck& stop) const {
    const size_t n = rows.row_text.size();
    std::vector<std::vector<int64_t>> out(n);
    auto logits = Prefix(rows, tgt, stop);
    if (!logits.ok()) return logits.status();
    torch::Tensor lg = *logits;
    const int64_t vocab = lg.size(1);
    for (int step = 0;; ++step) {
      const float* data = lg.data_ptr<float>();
      std::vector<int64_t> keep, next;
      for (int64_t r = 0; r < rows.rows(); ++r) {
        const int64_t best = Argmax(data + r * vocab, vocab);
        auto& seq = out[rows.row_text[r]];
        if (best == eos && !fixed) continue;  // finished: leaves the batch
        seq.push_back(best);
        keep.push_back(r);
        next.push_back(best);
      }
      if (step + 1 >= max_length || keep.empty()) break;
      if (stop) {
        if (absl::Status s = stop(); !s.ok()) return s;
      }
      if (static_cast<int64_t>(keep.size()) != rows.rows()) SelectRows(rows, keep);
      lg = Step(rows, next);
    }
    return out;
  }

  struct Live {
    std::vector<int64_t> tokens;
    float score = 0;
    int64_t row = 0;  // decoder row holding this beam's cache
  };
  struct Finished {
    std::vector<int64_t> tokens;
    float final_score = 0;
    int order = 0;  // when it was added
  };
  struct TextBeams {
    std::vector<Live> live;
    std::vector<Finished> finished;
    int added = 0;
    bool done = false;
  };

  // Rule 4 of docs/model-format.md: keep at most k, drop the lowest (ties: the later one).
  static void AddFinished(TextBeams& t, std::vector<int64_t> tokens, float final_score, int k) {
    t.finished.push_back({std::move(tokens), final_score, t.added++});
    if (static_cast<int>(t.finished.size()) <= k) return;
    size_t worst = 0;
    for (size_t i = 1; i < t.finished.size(); ++i) {
      const auto& a = t.finished[i];
      const auto& w = t.finished[worst];
      if (a.final_score < w.final_score ||
          (a.final_score == w.final_score && a.order > w.order)) {
        worst = i;
      }
    }
    t.finished.erase(t.finished.begin() + worst);
  }

  // n ** lp, computed in double and rounded to float32 as the Python reference does; scores
  // and finals are float32 throughout, so golden ids compare exactly.
  static float PenaltyDivisor(int n, double lp) {
    return static_cast<float>(std::pow(static_cast<double>(n), lp));
  }

  static float WorstFinal(const TextBeams& t) {
    float w = t.finished[0].final_score;
    for (const auto& f : t.finished) w = std::min(w, f.final_score);
    return w;
  }

  struct Candidate {
    float score;
    int64_t flat;  // b * V + v
  };
  static bool Better(const Candidate& a, const Candidate& b) {
    return a.score > b.score || (a.score == b.score && a.flat < b.flat);
  }

  // One beam-search step of one text (docs/model-format.md, rules 4 and 5): from the
  // log-probabilities of its live beams (`lp_data` rows `live[b].row`, `vocab` wide) keeps the k
  // best continuations, offers ended ones to `finished`, and sets `done`. `step` counts the
  // text's earlier updates. Each new live beam's `row` is its parent's row in `lp_data`.
  void BeamUpdate(TextBeams& tb, const float* lp_data, int64_t vocab, int step, int k, double lp,
                  int max_length) const {
    const size_t want = 2 * static_cast<size_t>(k);
    // Top 2k candidates over (beam, token): score desc, ties by lower b * V + v.
    std::vector<Candidate> top;
    top.reserve(want + 1);
    for (size_t b = 0; b < tb.live.size(); ++b) {
      const float base = tb.live[b].score;
      const float* row = lp_data + tb.live[b].row * vocab;
      for (int64_t v = 0; v < vocab; ++v) {
        Candidate c{base + row[v], static_cast<int64_t>(b) * vocab + v};
        if (top.size() == want && !Better(c, top.back())) continue;
        auto pos = std::upper_bound(top.begin(), top.end(), c, Better);
        top.insert(pos, c);
        if (top.size() > want) top.pop_back();
      }
    }
    std::vector<Live> next;
    for (size_t rank = 0; rank < top.size() && static_cast<int>(next.size()) < k; ++rank) {
      const Candidate& c = top[rank];
      const int64_t b = c.flat / vocab;
      const int64_t v = c.flat % vocab;
      const Live& parent = tb.live[b];
      if (v == eos) {
        if (static_cast<int>(rank) < k) {
          // n = tokens after the start token: language token + generated + this </s>.
          const int len = static_cast<int>(parent.tokens.size()) + 2;
          AddFinished(tb, parent.tokens, c.score / PenaltyDivisor(len, lp), k);
        }
        continue;
      }
      Live l{parent.tokens, c.score, parent.row};
      l.tokens.push_back(v);
      next.push_back(std::move(l));
    }
    tb.live = std::move(next);
    const int steps_taken = step + 1;
    if (steps_taken >= max_length) {
      // Rule 5: at max_length every live beam is offered as finished.
      for (const Live& l : tb.live) {
        AddFinished(tb, l.tokens, l.score / PenaltyDivisor(1 + max_length, lp), k);
      }
      tb.done = true;
    } else if (static_cast<int>(tb.finished.size()) >= k && !tb.live.empty()) {
      // Rule 5: no live beam can beat the worst finished one any more.
      if (tb.live[0].score / PenaltyDivisor(1 + steps_taken, lp) <= WorstFinal(tb)) {
        tb.done = true;
      }
    }
    if (tb.live.empty()) tb.done = true;
  }

  // The best finished hypothesis of a text (highest final score, earliest on ties); empty when
  // none finished.
  static std::vector<int64_t> BestFinished(const TextBeams& t) {
    const auto& f = t.finished;
    if (f.empty()) return {};
    size_t best = 0;
    for (size_t i = 1; i < f.size(); ++i) {
      if (f[i].final_score > f[best].final_score ||
          (f[i].final_score == f[best].final_score && f[i].order < f[best].order)) {
        best = i;
      }
    }
    return f[best].tokens;
  }

  absl::StatusOr<std::vector<std::vector<int64_t>>> Beam(DecodeRows rows, int64_t tgt,
                                                         int max_length, int k, double lp,
                                                         const StopCheck& stop) const {
    const size_t n = rows.row_text.size();
    std::vector<TextBeams> texts(n);
    for (size_t i = 0; i < n; ++i) texts[i].live.push_back({{}, 0.0f, static_cast<int64_t>(i)});
    auto logits = Prefix(rows, tgt, stop);
    if (!logits.ok()) return logits.status();
    torch::Tensor lg = *logits;
    const int64_t vocab = lg.size(1);
    for (int step = 0;; ++step) {
      torch::Tensor logprobs = torch::log_softmax(lg, -1).contiguous();
      const float* lp_data = logprobs.data_ptr<float>();
      std::vector<int64_t> parents;  // decoder rows for the next step
      for (size_t t = 0; t < n; ++t) {
        TextBeams& tb = texts[t];
        if (tb.done) continue;
        BeamUpdate(tb, lp_data, vocab, step, k, lp, max_length);
        if (!tb.done) {
          for (Live& l : tb.live) {
            const int64_t parent_row = l.row;
            l.row = static_cast<int64_t>(parents.size());
            parents.push_back(parent_row);
          }
        }
      }
      if (parents.empty()) break;
      if (stop) {
        if (absl::Status s = stop(); !s.ok()) return s;
      }
      std::vector<int64_t> tokens;
      tokens.reserve(parents.size());
      for (size_t t = 0; t < n; ++t) {
        if (texts[t].done) continue;
        for (const Live& l : texts[t].live) tokens.push_back(l.tokens.back());
      }
      SelectRows(rows, parents);
      lg = Step(rows, tokens);
    }
    std::vector<std::vector<int64_t>> out(n);
    for (size_t t = 0; t < n; ++t) out[t] = BestFinished(texts[t]);
    return out;
  }

  absl::StatusOr<std::string> Detokenize(const std::vector<int64_t>& ids) const {
    // SentencePiece's <unk>, <s>, </s> (pieces 0..2) come first; model ids below
    // 3 + offset are specials, ids past the pieces are language codes and <mask>.
    const int64_t first_piece = 3 + fairseq_offset;
    std::vector<int32_t> pieces;
    pieces.reserve(ids.size());
    for (int64_t id : ids) {
      if (id < first_piece || id >= spm_size + fairseq_offset) continue;
      if (id == bos || id == pad || id == eos || id == unk) continue;
      pieces.push_back(static_cast<int32_t>(id - fairseq_offset));
    }
    // SentencePiece's own decoding: U+2581 -> ' ', leading space removed.
    auto text = spm->Decode(pieces);
    if (!text.ok()) return text.status();
    return std::string(absl::StripAsciiWhitespace(*text));
  }
};

namespace {

absl::Status FieldError(const Manifest& m, const std::string& field, const std::string& problem) {
  return absl::FailedPreconditionError(
      absl::StrCat(m.manifest_path, ": field '", field, "' ", problem));
}

}  // namespace

absl::StatusOr<std::unique_ptr<NllbEngine>> NllbEngine::Load(const std::string& name,
                                                             const std::string& model_dir,
                                                             const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  auto manifest = LoadManifest(model_dir, options.verify_checksums);
  if (!manifest.ok()) return manifest.status();
  impl->manifest = *std::move(manifest);
  const Manifest& m = impl->manifest;
  if (m.architecture != "nllb-m2m100") {
    return FieldError(m, "architecture",
                      absl::StrCat("is '", m.architecture, "'; the NLLB engine loads nllb-m2m100"));
  }
  const auto& j = m.json;
  const auto& cfg = j["config"];
  impl->vocab_size = cfg["vocab_size"].get<int64_t>();
  impl->max_positions = cfg["max_position_embeddings"].get<int>();
  impl->decoder_layers = cfg["decoder_layers"].get<int>();
  impl->decoder_heads = cfg["decoder_attention_heads"].get<int>();
  const int d_model = cfg["d_model"].get<int>();
  if (d_model % impl->decoder_heads != 0) {
    return FieldError(m, "config.decoder_attention_heads",
                      absl::StrCat(impl->decoder_heads, " does not divide d_model ", d_model));
  }
  impl->head_dim = d_model / impl->decoder_heads;
  const auto& sp = j["special_ids"];
  impl->bos = sp["bos"].get<int64_t>();
  impl->pad = sp["pad"].get<int64_t>();
  impl->eos = sp["eos"].get<int64_t>();
  impl->unk = sp["unk"].get<int64_t>();
  impl->decoder_start = sp["decoder_start"].get<int64_t>();
  const auto& tok = j["tokenizer"];
  impl->spm_size = tok["spm_size"].get<int64_t>();
  impl->fairseq_offset = tok["fairseq_offset"].get<int64_t>();
  impl->max_source_tokens = j["max_source_tokens"].get<int>();
  impl->default_max_length = j["default_max_length"].get<int>();
  if (impl->max_source_tokens > impl->max_positions) {
    return FieldError(m, "max_source_tokens",
                      absl::StrCat(impl->max_source_tokens, " exceeds config.max_position_embeddings ",
                                   impl->max_positions));
  }
  for (const auto& [field, value] :
       {std::pair<const char*, int64_t>{"special_ids.bos", impl->bos}, {"special_ids.pad", impl->pad},
        {"special_ids.eos", impl->eos}, {"special_ids.unk", impl->unk},
        {"special_ids.decoder_start", impl->decoder_start}}) {
    if (value < 0 || value >= impl->vocab_size) {
      return FieldError(m, field, absl::StrCat(value, " outside the vocabulary [0, ",
                                               impl->vocab_size, ")"));
    }
  }
  for (size_t i = 0; i < j["languages"].size(); ++i) {
    const auto& entry = j["languages"][i];
    const std::string code = entry["code"].get<std::string>();
    const int64_t id = entry["id"].get<int64_t>();
    if (id < 0 || id >= impl->vocab_size) {
      return FieldError(m, absl::StrCat("languages[", i, "].id"),
                        absl::StrCat(id, " (", code, ") outside the vocabulary [0, ",
                                     impl->vocab_size, ")"));
    }
    if (!impl->language_ids.emplace(code, id).second) {
      return FieldError(m, absl::StrCat("languages[", i, "].code"),
                        absl::StrCat("'", code, "' listed twice"));
    }
    impl->language_codes.push_back(code);
  }

  auto device = ResolveDevice(options.device);
  if (!device.ok()) return device.status();
  impl->device = *device;
  auto exported = ParseDType(m.dtype);
  if (!exported.ok()) return FieldError(m, "dtype", std::string(exported.status().message()));
  impl->dtype = *exported;
  if (!options.dtype.empty()) {
    auto wanted = ParseDType(options.dtype);
    if (!wanted.ok()) return wanted.status();
    impl->dtype = *wanted;
  }
  if (absl::Status s = CheckDTypeSupported(impl->dtype, impl->device); !s.ok()) return s;

  const std::string tokenizer_path = m.Path(tok["file"].get<std::string>());
  auto spm = SentencePieceTokenizer::Load(tokenizer_path);
  if (!spm.ok()) return spm.status();
  impl->spm = *std::move(spm);
  if (impl->spm->piece_count() != impl->spm_size) {
    return FieldError(m, "tokenizer.spm_size",
                      absl::StrCat("is ", impl->spm_size, " but ", tokenizer_path, " has ",
                                   impl->spm->piece_count(), " pieces (mismatched tokenizer file)"));
  }

  auto module = LoadTorchModule(m.Path("model.ts"), impl->device);
  if (!module.ok()) return module.status();
  impl->module = *std::move(module);
  absl::Status status = CatchTorchErrors(absl::StrCat(m.Path("model.ts"), ": check"), [&] {
    for (const char* method : {"encode", "cross_kv", "decode_step"}) {
      if (!impl->module->find_method(method)) {
        return absl::FailedPreconditionError(absl::StrCat(
            m.Path("model.ts"), ": method '", method,
            "' missing (not an NLLB export of this version; see docs/model-format.md)"));
      }
    }
    if (impl->dtype != *exported) {
      // Converting at load: the weights and buffers change dtype, and the attention mask's fill
      // value, a float attribute baked in for the exported dtype (finfo(float32).min overflows
      // bfloat16), is set to the new dtype's lowest finite value.
      impl->module->to(ToTorchDType(impl->dtype));
      if (impl->module->hasattr("neg")) {
        const double lowest =
            impl->dtype == DType::kFloat16 ? -65504.0 : -3.3895313892515355e38;  // finfo.min
        impl->module->setattr("neg", lowest);
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  ModelInfo& info = impl->info;
  info.name = name;
  info.kind = "translation";
  info.architecture = m.architecture;
  info.device = impl->device.name();
  info.dtype = DTypeName(impl->dtype);
  info.path = model_dir;
  info.fallback = options.fallback;
  info.languages = impl->language_codes;
  return std::unique_ptr<NllbEngine>(new NllbEngine(std::move(impl)));
}

NllbEngine::NllbEngine(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<TranslationEngine>> NllbEngine::NewReplica() const {
  return std::unique_ptr<TranslationEngine>(new NllbEngine(impl_));
}
NllbEngine::~NllbEngine() = default;

const ModelInfo& NllbEngine::info() const { return impl_->info; }

bool NllbEngine::SupportsPair(const std::string& source, const std::string& target) const {
  return impl_->language_ids.count(source) > 0 && impl_->language_ids.count(target) > 0;
}

absl::StatusOr<int64_t> NllbEngine::LanguageId(const std::string& code) const {
  return impl_->Language(code, "language");
}

absl::StatusOr<std::vector<int64_t>> NllbEngine::EncodeSource(const std::string& text,
                                                              const std::string& source) const {
  auto src = impl_->Language(source, "source language");
  if (!src.ok()) return src.status();
  return impl_->Tokenize(text, *src);
}

absl::StatusOr<std::string> NllbEngine::Detokenize(const std::vector<int64_t>& ids) const {
  return impl_->Detokenize(ids);
}

absl::StatusOr<int> NllbEngine::EffectiveMaxLength(int requested) const {
  return impl_->MaxLength(requested);
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

absl::Status CheckParams(const TranslationParams& params) {
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

}  // namespace

absl::Status NllbEngine::Validate(const std::vector<std::string>& texts, const std::string& source,
                                  const std::string& target,
                                  const TranslationParams& params) const {
  auto src = impl_->Language(source, "source language");
  if (!src.ok()) return src.status();
  if (auto tgt = impl_->Language(target, "target language"); !tgt.ok()) return tgt.status();
  if (absl::Status s = CheckParams(params); !s.ok()) return s;
  if (auto len = impl_->MaxLength(params.max_length); !len.ok()) return len.status();
  return impl_->PrepareSources(texts, *src).status();
}

absl::StatusOr<std::vector<TranslationOutput>> NllbEngine::Translate(
    const std::vector<std::string>& texts, const std::string& source, const std::string& target,
    const TranslationParams& params, const StopCheck& stop) {
  auto src = impl_->Language(source, "source language");
  if (!src.ok()) return src.status();
  auto tgt = impl_->Language(target, "target language");
  if (!tgt.ok()) return tgt.status();
  if (absl::Status s = CheckParams(params); !s.ok()) return s;
  auto max_length = impl_->MaxLength(params.max_length);
  if (!max_length.ok()) return max_length.status();
  auto sources = impl_->PrepareSources(texts, *src);
  if (!sources.ok()) return sources.status();

  std::vector<std::vector<int64_t>> ids;
  absl::Status status = CatchTorchErrors(absl::StrCat(impl_->info.name, ": translate"), [&] {
    c10::InferenceMode guard;
    Impl::DecodeRows rows = impl_->Encode(*sources);
    absl::StatusOr<std::vector<std::vector<int64_t>>> result =
        params.beam_size == 1
            ? impl_->Greedy(std::move(rows), *tgt, *max_length, params.fixed_length, stop)
            : impl_->Beam(std::move(rows), *tgt, *max_length, params.beam_size,
                          ShortestDouble(params.length_penalty), stop);
    if (!result.ok()) return result.status();
    ids = *std::move(result);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  std::vector<TranslationOutput> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto text = impl_->Detokenize(ids[i]);
    if (!text.ok()) {
      return absl::InternalError(absl::StrCat(impl_->info.name, ": detokenize: ",
                                              text.status().message()));
    }
    out[i].text = *std::move(text);
    out[i].token_ids = std::move(ids[i]);
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<float>>> NllbEngine::FirstStepLogits(
    const std::vector<std::string>& texts, const std::string& source, const std::string& target) {
  auto src = impl_->Language(source, "source language");
  if (!src.ok()) return src.status();
  auto tgt = impl_->Language(target, "target language");
  if (!tgt.ok()) return tgt.status();
  auto sources = impl_->PrepareSources(texts, *src);
  if (!sources.ok()) return sources.status();
  std::vector<std::vector<float>> out;
  absl::Status status = CatchTorchErrors(absl::StrCat(impl_->info.name, ": logits"), [&] {
    c10::InferenceMode guard;
    Impl::DecodeRows rows = impl_->Encode(*sources);
    auto logits = impl_->Prefix(rows, *tgt, nullptr);
    if (!logits.ok()) return logits.status();
    const int64_t vocab = logits->size(1);
    const float* data = logits->data_ptr<float>();
    for (int64_t r = 0; r < logits->size(0); ++r) {
      out.emplace_back(data + r * vocab, data + (r + 1) * vocab);
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, double>>> NllbEngine::TimeOutputProjection(
    int repeats) {
  std::vector<std::pair<std::string, double>> out;
  absl::Status status = CatchTorchErrors(absl::StrCat(impl_->info.name, ": kernels"), [&] {
    c10::InferenceMode guard;
    torch::Tensor weight;
    for (const auto& p : impl_->module->named_parameters(/*recurse=*/true)) {
      if (p.name == "model.shared.weight") weight = p.value;
    }
    if (!weight.defined()) {
      return absl::FailedPreconditionError("model.ts has no parameter model.shared.weight");
    }
    torch::Tensor x = torch::randn({1, weight.size(1)}, weight.options());
    torch::Tensor x4 = torch::randn({4, weight.size(1)}, weight.options());
    const std::vector<std::pair<std::string, std::function<torch::Tensor()>>> kernels = {
        {"mv", [&] { return torch::mv(weight, x[0]).unsqueeze(0); }},
        {"linear", [&] { return torch::linear(x, weight); }},
        {"matmul", [&] { return torch::matmul(x, weight.t()); }},
        // Four rows (a beam of 4, or 4 texts): one gemm against four gemv calls.
        {"linear_4rows", [&] { return torch::linear(x4, weight); }},
        {"mv_4x", [&] {
           return torch::stack({torch::mv(weight, x4[0]), torch::mv(weight, x4[1]),
                                torch::mv(weight, x4[2]), torch::mv(weight, x4[3])});
         }},
    };
    const torch::Tensor reference1 = kernels[0].second();
    const torch::Tensor reference4 = kernels[3].second();
    for (const auto& [name, fn] : kernels) {
      const torch::Tensor& reference = name.find('4') == std::string::npos ? reference1 : reference4;
      double best = 1e30;
      torch::Tensor y;
      for (int i = 0; i < std::max(1, repeats); ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        y = fn();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      if (!torch::allclose(y, reference, 1e-3, 1e-3)) {
        return absl::InternalError(absl::StrCat("kernel ", name, " disagrees with the others"));
      }
      out.emplace_back(name, best);
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

// ---- Continuous batching (docs/engines.md, "NLLB") ----

namespace {

// Pads the self-attention side of `rows` on the left of T with `n` masked columns (zeros: a
// masked score is replaced by the fill value, but 0 * NaN would still poison the values).
void PadSelfLeft(NllbEngine::Impl::DecodeRows& rows, int64_t n) {
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
void PadCrossRight(NllbEngine::Impl::DecodeRows& rows, int64_t n) {
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
void MergeRows(NllbEngine::Impl::DecodeRows& into, NllbEngine::Impl::DecodeRows add) {
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
void TrimRows(NllbEngine::Impl::DecodeRows& rows) {
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
  NllbStepper(const NllbEngine::Impl* impl, NllbEngine::HeldRows held) : impl_(impl), held_(held) {}

  absl::Status Join(uint64_t id, const std::string& text, const std::string& source,
                    const std::string& target, const TranslationParams& params) override {
    if (seqs_.count(id) > 0) {
      return absl::AlreadyExistsError(absl::StrCat("sequence ", id, " has already joined"));
    }
    auto src = impl_->Language(source, "source language");
    if (!src.ok()) return src.status();
    auto tgt = impl_->Language(target, "target language");
    if (!tgt.ok()) return tgt.status();
    if (absl::Status s = CheckParams(params); !s.ok()) return s;
    auto max_length = impl_->MaxLength(params.max_length);
    if (!max_length.ok()) return max_length.status();
    auto sources = impl_->PrepareSources({text}, *src);
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
      const Impl::DecodeRows saved_batch = batch_;
      const std::vector<uint64_t> saved_running = running_;
      std::unordered_map<uint64_t, Seq> saved_seqs;
      for (uint64_t id : stepping) saved_seqs.emplace(id, seqs_.at(id));
      absl::Status status =
          CatchTorchErrors(absl::StrCat(impl_->info.name, ": step"), [&] {
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
  }

  int size() const override { return static_cast<int>(seqs_.size()); }

 private:
  using Impl = NllbEngine::Impl;
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
    Impl::TextBeams beams;         // beam_size > 1; live[b] sits on row first_row + b
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
      const int64_t best = Impl::Argmax(logits.data_ptr<float>() + row * vocab, vocab);
      ++seq.steps;
      const bool ended = best == impl_->eos && !seq.fixed;
      if (!ended) seq.tokens.push_back(best);
      if (ended || seq.steps >= seq.max_length) return Finish(seq, seq.tokens);
      keep.push_back(row);
      return keep;
    }
    if (seq.steps == 0) seq.beams.live.push_back({{}, 0.0f, 0});
    for (size_t b = 0; b < seq.beams.live.size(); ++b) {
      seq.beams.live[b].row = row + static_cast<int64_t>(b);
    }
    impl_->BeamUpdate(seq.beams, logprobs.data_ptr<float>(), vocab, seq.steps, seq.beam, seq.lp,
                      seq.max_length);
    ++seq.steps;
    if (seq.beams.done) return Finish(seq, Impl::BestFinished(seq.beams));
    for (const auto& l : seq.beams.live) keep.push_back(l.row);
    return keep;
  }

  absl::StatusOr<std::vector<int64_t>> Finish(Seq& seq, std::vector<int64_t> ids) {
    auto text = impl_->Detokenize(ids);
    if (!text.ok()) {
      return absl::InternalError(
          absl::StrCat(impl_->info.name, ": detokenize: ", text.status().message()));
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
        logits = impl_->Step(batch_, tokens, &live);
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
        Impl::DecodeRows sub = batch_;
        Impl::SelectRows(sub, index);
        logits = impl_->Step(sub, sub_tokens);
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
      batch_ = Impl::DecodeRows{};
    } else if (!identity) {
      Impl::SelectRows(batch_, keep);
      TrimRows(batch_);
    }

    // 2. Joining sequences: one encoder batch, their forced prefix, their first token.
    if (!joining.empty()) {
      std::vector<std::vector<int64_t>> sources;
      std::vector<int64_t> starts, targets;
      for (uint64_t id : joining) {
        const Seq& seq = seqs_.at(id);
        sources.push_back(seq.source);
        starts.push_back(impl_->decoder_start);
        targets.push_back(seq.target);
      }
      Impl::DecodeRows fresh = impl_->Encode(sources);
      for (size_t i = 0; i < joining.size(); ++i) fresh.row_text[i] = seqs_.at(joining[i]).key;
      impl_->Step(fresh, starts);
      torch::Tensor first = impl_->Step(fresh, targets);
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
        Impl::SelectRows(fresh, fresh_keep);
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
    absl::Status status = CatchTorchErrors(absl::StrCat(impl_->info.name, ": leave"), [&] {
      c10::InferenceMode guard;
      if (keep.empty()) {
        batch_ = Impl::DecodeRows{};
      } else {
        Impl::SelectRows(batch_, keep);
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
      batch_ = Impl::DecodeRows{};
    }
    Relayout();
  }

  const NllbEngine::Impl* impl_;
  const NllbEngine::HeldRows held_;
  std::unordered_map<uint64_t, Seq> seqs_;
  std::vector<uint64_t> running_;  // sequences with rows in batch_, in row order
  Impl::DecodeRows batch_;         // every running row; empty when none
  int next_key_ = 0;
};

}  // namespace

std::unique_ptr<TranslationStepper> NllbEngine::NewStepper() {
  return NewStepper(HeldRows::kAuto);
}

std::unique_ptr<TranslationStepper> NllbEngine::NewStepper(HeldRows held) {
  return std::make_unique<NllbStepper>(impl_.get(), held);
}

absl::StatusOr<std::unique_ptr<TranslationEngine>> LoadNllbEngine(const std::string& name,
                                                                  const std::string& model_dir,
                                                                  const EngineOptions& options) {
  auto engine = NllbEngine::Load(name, model_dir, options);
  if (!engine.ok()) return engine.status();
  return std::unique_ptr<TranslationEngine>(*std::move(engine));
}

}  // namespace vox
