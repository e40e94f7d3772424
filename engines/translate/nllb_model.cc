#include "engines/translate/nllb_model.h"

#include <cmath>
#include <cstdlib>
#include <utility>

#include "engines/core/manifest_fields.h"
#include "engines/core/status_macros.h"

namespace vox {

absl::StatusOr<std::unique_ptr<NllbModel>> NllbModel::Load(const std::string& name,
                                                           NllbManifest manifest,
                                                           const EngineOptions& options) {
  auto model = std::make_unique<NllbModel>();
  static_cast<NllbManifest&>(*model) = std::move(manifest);
  const Manifest& m = model->common;
  const ManifestFields fields(m);
  auto device = ResolveDevice(options.device);
  if (!device.ok()) return device.status();
  model->device = *device;
  auto exported = ParseDType(m.dtype);
  if (!exported.ok()) return fields.Error("dtype", std::string(exported.status().message()));
  model->dtype = *exported;
  if (!options.dtype.empty()) {
    auto wanted = ParseDType(options.dtype);
    if (!wanted.ok()) return wanted.status();
    model->dtype = *wanted;
  }
  if (absl::Status s = CheckDTypeSupported(model->dtype, model->device); !s.ok()) return s;
  if (std::string problem = CompressedWeightsProblem(m.weights, *exported, model->dtype, model->device);
      !problem.empty()) {
    return fields.Error("weights", problem);
  }

  const std::string tokenizer_path = m.Path(model->tokenizer_file);
  auto spm = SentencePieceTokenizer::Load(tokenizer_path);
  if (!spm.ok()) return spm.status();
  model->spm = *std::move(spm);
  if (model->spm->piece_count() != model->spm_size) {
    return fields.Error("tokenizer.spm_size",
                        absl::StrCat("is ", model->spm_size, " but ", tokenizer_path, " has ",
                                     model->spm->piece_count(), " pieces (mismatched tokenizer file)"));
  }
  std::vector<std::pair<std::string, int64_t>> languages;
  for (const std::string& code : model->language_codes) {
    languages.emplace_back(code, model->language_ids.at(code));
  }
  NllbSourceTokenizer::Ids special;
  special.bos = model->bos;
  special.pad = model->pad;
  special.eos = model->eos;
  special.unk = model->unk;
  special.fairseq_offset = model->fairseq_offset;
  model->source_tokenizer = std::make_unique<NllbSourceTokenizer>(model->spm.get(), special, languages,
                                                                   model->vocab_size);

  auto module = LoadTorchModule(m.Path("model.ts"), model->device);
  if (!module.ok()) return module.status();
  model->module = *std::move(module);
  absl::Status status = CatchTorchErrors(absl::StrCat(m.Path("model.ts"), ": check"), [&] {
    for (const char* method : {"encode", "cross_kv", "decode_slots"}) {
      if (!model->module->find_method(method)) {
        return absl::FailedPreconditionError(absl::StrCat(
            m.Path("model.ts"), ": method '", method,
            "' missing (exported by export_nllb.py before version 2, or not an NLLB export: export "
            "the checkpoint again; see docs/model-format.md)"));
      }
    }
    model->has_fill_slots = model->module->find_method("fill_slots").has_value();
    if (model->dtype != *exported) {
      // Converting at load: the weights and buffers change dtype, and the attention mask's fill
      // value, a float attribute baked in for the exported dtype (finfo(float32).min overflows
      // bfloat16), is set to the new dtype's lowest finite value.
      model->module->to(ToTorchDType(model->dtype));
      if (model->module->hasattr("neg")) {
        const double lowest =
            model->dtype == DType::kFloat16 ? -65504.0 : -3.3895313892515355e38;  // finfo.min
        model->module->setattr("neg", lowest);
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  ModelInfo& info = model->info;
  info.name = name;
  info.kind = "translation";
  info.architecture = m.architecture;
  info.device = model->device.name();
  info.dtype = DTypeName(model->dtype);
  info.weights = m.weights == m.dtype ? info.dtype : m.weights;
  info.path = m.model_dir;
  info.fallback = options.fallback;
  info.languages = model->language_codes;
  return model;
}

namespace {

// n grown to at least `need`: by half at least, rounded up to a multiple of `unit`.
int64_t Grown(int64_t have, int64_t need, int64_t unit) {
  if (need <= have) return have;
  const int64_t n = std::max(need, have + have / 2);
  return (n + unit - 1) / unit * unit;
}

// Tests set VOX_TEST_POISON_CACHES to fill uninitialised cache memory with NaN, so that a read
// of a column Step did not make finite shows in the results.
bool PoisonCaches() {
  static const bool on = std::getenv("VOX_TEST_POISON_CACHES") != nullptr;
  return on;
}

// A copy of `old` in a tensor of `sizes` (each at least old's), the rest zeroed or, with
// `zero` false, uninitialised.
torch::Tensor Regrown(const torch::Tensor& old, std::vector<int64_t> sizes,
                      const torch::TensorOptions& options, bool zero) {
  torch::Tensor t = zero           ? torch::zeros(sizes, options)
                    : PoisonCaches() ? torch::full(sizes, NAN, options)
                                     : torch::empty(sizes, options);
  if (old.defined()) {
    torch::Tensor dst = t;
    for (int64_t d = 0; d < old.dim(); ++d) dst = dst.narrow(d, 0, old.size(d));
    dst.copy_(old);
  }
  return t;
}

torch::Tensor Int64Tensor(const std::vector<int64_t>& values, const c10::Device& device) {
  return torch::from_blob(const_cast<int64_t*>(values.data()),
                          {static_cast<int64_t>(values.size())}, torch::kInt64)
      .clone()
      .to(device);
}

}  // namespace

NllbModel::Encoded NllbModel::Encode(const std::vector<std::vector<int64_t>>& sources) const {
  const int64_t n = static_cast<int64_t>(sources.size());
  int64_t s = 0;
  for (const auto& ids : sources) s = std::max<int64_t>(s, static_cast<int64_t>(ids.size()));
  torch::Tensor ids = torch::full({n, s}, pad, torch::kInt64);
  torch::Tensor mask = torch::zeros({n, s}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  Encoded out;
  for (int64_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < sources[i].size(); ++j) {
      ids_a[i][j] = sources[i][j];
      mask_a[i][j] = 1;
    }
  }
  const auto dev = ToTorchDevice(device);
  out.mask = mask.to(dev);
  torch::Tensor enc = module->get_method("encode")({ids.to(dev), out.mask}).toTensor();
  for (const auto& t : module->get_method("cross_kv")({enc}).toTensorList()) out.cross.push_back(t);
  return out;
}

void NllbModel::Reserve(Slots& slots, int64_t rows, int64_t columns, int64_t sources) const {
  Grow(slots, rows, columns, sources, nullptr, 0, {});
}

void NllbModel::Join(Slots& slots, int64_t rows, int64_t columns, int64_t first, Encoded encoded,
                     const std::vector<int64_t>& which) const {
  const int64_t width = encoded.mask.size(1);
  Grow(slots, rows, columns, width, &encoded, first, which);
}

void NllbModel::Grow(Slots& slots, int64_t rows, int64_t columns, int64_t sources, Encoded* joining,
                     int64_t first, const std::vector<int64_t>& which) const {
  const int64_t n = Grown(slots.rows(), rows, 1);
  const int64_t c = Grown(slots.columns(), columns, 8);
  const int64_t s = Grown(slots.sources(), sources, 8);
  const bool self = slots.self_kv.empty() || slots.self_kv[0].size(0) != n || slots.columns() != c;
  const bool cross = n != slots.rows() || s != slots.sources();
  if (!self && !cross && joining == nullptr) return;
  // Activations, and so the caches, are in the model's dtype (float32 for compressed weights).
  const auto options = torch::TensorOptions().dtype(ToTorchDType(dtype)).device(ToTorchDevice(device));
  // The joining sources go to rows [first, first + k) of the grown caches: source which[r] to
  // row first + r, positions past their width left as they were (finite, and masked).
  const int64_t k = static_cast<int64_t>(which.size());
  const int64_t width = joining != nullptr ? joining->mask.size(1) : 0;
  torch::Tensor index;
  if (joining != nullptr) {
    bool identity = k == joining->mask.size(0);
    for (int64_t r = 0; identity && r < k; ++r) identity = which[r] == r;
    if (!identity) index = Int64Tensor(which, joining->mask.device());
  }
  auto put = [&](torch::Tensor& dst, torch::Tensor& src, int64_t dim) {
    dst.narrow(0, first, k).narrow(dim, 0, width).copy_(index.defined() ? src.index_select(0, index) : src);
    src = torch::Tensor();  // written: its memory goes before the next layer's is grown
  };
  // Built aside and swapped in at the end: a failed allocation leaves `slots` as it was (the
  // joining rows, past the running ones, are read by no one).
  Slots grown = slots;
  grown.self_kv.resize(2 * decoder_layers);
  grown.cross.resize(2 * decoder_layers);
  grown.clean.resize(n, 0);  // new rows: nothing finite yet (Step zeroes what it reads)
  for (int i = 0; i < 2 * decoder_layers; ++i) {
    if (self) {
      grown.self_kv[i] = Regrown(grown.self_kv[i], {n, decoder_heads, c, head_dim}, options, false);
    }
    if (cross) grown.cross[i] = Regrown(grown.cross[i], {n, decoder_heads, s, head_dim}, options, true);
    if (joining != nullptr) put(grown.cross[i], joining->cross[i], 2);
  }
  if (cross) grown.encoder_mask = Regrown(slots.encoder_mask, {n, s}, IntOptions(), true);
  if (joining != nullptr) {
    put(grown.encoder_mask, joining->mask, 1);
    grown.encoder_mask.narrow(0, first, k).narrow(1, width, s - width).zero_();
  }
  slots = std::move(grown);
}

void NllbModel::AdoptSources(Slots& slots, Encoded encoded) {
  slots.cross = std::move(encoded.cross);
  slots.encoder_mask = std::move(encoded.mask);
  slots.self_kv.clear();
  slots.clean.clear();
}

void NllbModel::CopyRows(Slots& slots, const std::vector<int64_t>& from,
                         const std::vector<int64_t>& to, int64_t columns, int64_t sources) {
  if (from.empty()) return;
  const c10::Device dev = slots.encoder_mask.device();
  const torch::Tensor src = Int64Tensor(from, dev), dst = Int64Tensor(to, dev);
  // index_select copies first, so overlapping rows read what they held before.
  auto move = [&](torch::Tensor& t, int64_t dim2, int64_t width) {
    torch::Tensor part = t.narrow(dim2, 0, width);
    part.index_copy_(0, dst, part.index_select(0, src));
  };
  for (auto& t : slots.self_kv) move(t, 2, columns);
  std::vector<int64_t> clean(from.size());
  for (size_t k = 0; k < from.size(); ++k) clean[k] = std::min(slots.clean[from[k]], columns);
  for (size_t k = 0; k < to.size(); ++k) slots.clean[to[k]] = clean[k];
  if (sources > 0) {
    for (auto& t : slots.cross) move(t, 2, sources);
    move(slots.encoder_mask, 1, slots.sources());
  }
}

namespace {

// decode_slots or fill_slots (same arguments) over the rows Step and Fill describe.
c10::IValue RunSlots(const NllbModel& model, const char* method, NllbModel::Slots& slots,
                     const std::vector<int64_t>& tokens, const std::vector<int64_t>& cache_lens, int64_t sources,
                     int64_t first, const std::vector<int64_t>& index) {
  const int64_t b = static_cast<int64_t>(tokens.size());
  const auto dev = ToTorchDevice(model.device);
  const int64_t length = *std::max_element(cache_lens.begin(), cache_lens.end()) + 1;
  // Columns past a row's own (it writes cache_lens[b] before reading) up to `length` are read
  // masked: make them finite the first time, zeroing a few columns ahead so that a young row
  // among older ones does not zero one column per step.
  for (int64_t r = 0; r < b; ++r) {
    const int64_t row = index.empty() ? first + r : index[r];
    const int64_t from = std::max(slots.clean[row], cache_lens[r] + 1);
    if (from < length) {
      const int64_t to = std::min(slots.columns(), length + 15);
      for (auto& t : slots.self_kv) t.select(0, row).narrow(1, from, to - from).zero_();
      slots.clean[row] = to;
    }
    slots.clean[row] = std::max(slots.clean[row], cache_lens[r] + 1);
  }
  c10::List<torch::Tensor> self_kv, cross;
  torch::Tensor mask = slots.encoder_mask.narrow(1, 0, sources);
  c10::IValue rows;  // None: the views below are the batch's rows
  if (index.empty()) {
    for (const auto& t : slots.self_kv) self_kv.push_back(t.narrow(0, first, b));
    for (const auto& t : slots.cross) cross.push_back(t.narrow(0, first, b).narrow(2, 0, sources));
    mask = mask.narrow(0, first, b);
  } else {
    for (const auto& t : slots.self_kv) self_kv.push_back(t);
    for (const auto& t : slots.cross) cross.push_back(t.narrow(2, 0, sources));
    rows = Int64Tensor(index, dev);
  }
  return model.module->get_method(method)(
      {Int64Tensor(tokens, dev).view({b, 1}), Int64Tensor(cache_lens, dev), length, self_kv, rows, cross, mask});
}

}  // namespace

torch::Tensor NllbModel::Step(Slots& slots, const std::vector<int64_t>& tokens,
                              const std::vector<int64_t>& cache_lens, int64_t sources, int64_t first,
                              const std::vector<int64_t>& index) const {
  return RunSlots(*this, "decode_slots", slots, tokens, cache_lens, sources, first, index)
      .toTensor()
      .to(torch::kCPU, torch::kFloat32)
      .contiguous();
}

void NllbModel::Fill(Slots& slots, const std::vector<int64_t>& tokens, const std::vector<int64_t>& cache_lens,
                     int64_t sources, int64_t first, const std::vector<int64_t>& index) const {
  RunSlots(*this, has_fill_slots ? "fill_slots" : "decode_slots", slots, tokens, cache_lens, sources, first, index);
}

}  // namespace vox
