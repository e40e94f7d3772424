#include "engines/speech/xtts_stepper.h"

#include <algorithm>
#include <random>

#include <c10/core/InferenceMode.h>

#include "absl/strings/str_cat.h"
#include "engines/core/status_macros.h"
#include "engines/text/xtts_tokenizer.h"
#include "engines/torch/device.h"

namespace vox {

absl::StatusOr<XttsPreparedRequest> PrepareXttsRequest(const XttsEngine::Impl& engine,
                                                       const SynthesisRequest& request) {
  const XttsModel& m = *engine.model;
  VOX_RETURN_IF_ERROR(ValidateXttsRequest(m, engine.stream.max_text_bytes, request));
  XttsPreparedRequest out;
  const XttsManifest::Language* lang = m.Language(request.language);
  if (request.cloned_voice != nullptr) {
    VOX_RETURN_IF_ERROR(CatchTorchErrors("xtts cloned voice", [&] {
      VOX_ASSIGN_OR_RETURN(XttsVoiceTensors t, m.ClonedVoiceTensors(*request.cloned_voice));
      out.cond_latent = std::move(t.cond_latent);
      out.speaker = std::move(t.speaker);
      return absl::OkStatus();
    }));
    out.voice_name = request.voice;
  } else {
    out.voice = request.voice.empty() ? -1 : m.VoiceIndex(request.voice);
    for (size_t i = 0; i < m.voices.size() && out.voice < 0; ++i) {
      const auto& ls = m.voices[i].languages;
      if (std::find(ls.begin(), ls.end(), request.language) != ls.end()) out.voice = static_cast<int>(i);
    }
    if (out.voice < 0) return absl::InvalidArgumentError(absl::StrCat("no voice speaks ", request.language));
    SetBuiltinVoice(m, out.voice, &out);
  }
  out.settings = m.Settings(request.params);
  VOX_ASSIGN_OR_RETURN(auto pieces,
                       SplitForXtts(*m.tokenizer, request.text, lang->code, lang->nllb,
                                    m.config.max_text_tokens));
  if (pieces.empty()) return absl::InvalidArgumentError("text is empty after cleaning");
  out.seed = request.params.seed;
  if (out.seed == 0 && !request.params.greedy) {
    std::random_device rd;
    out.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    if (out.seed == 0) out.seed = 1;
  }
  out.speed = request.params.speed == 0 ? 1.0 : DecimalDouble(request.params.speed);
  out.forced = request.params.forced_codes;
  out.limit = m.CodeLimit(request.params);
  for (size_t k = 0; k < pieces.size(); ++k) {
    VOX_ASSIGN_OR_RETURN(auto ids, m.tokenizer->Encode(pieces[k], lang->code));
    if (ids.size() <= 1) continue;  // only the language token: nothing to say
    out.pieces.push_back(std::move(ids));
    out.piece_seeds.push_back(out.seed + k);
  }
  if (out.pieces.empty()) {
    return absl::InvalidArgumentError("text has nothing to synthesize after cleaning");
  }
  return out;
}

void SetBuiltinVoice(const XttsModel& model, int voice, XttsPreparedRequest* request) {
  request->voice = voice;
  request->voice_name = model.voice_names[voice];
  request->cond_latent = model.cond_latents.narrow(0, voice, 1);
  request->speaker = model.speaker_embeddings.narrow(0, voice, 1);
}

XttsStepper::XttsStepper(XttsEngine::Impl& engine, XttsStepperOptions options)
    : e_(engine), m_(*engine.model), options_(options),
      batched_(m_.has_step_slots && engine.stream.batched_steps) {}

absl::Status XttsStepper::Join(uint64_t id, const SynthesisRequest& request) {
  if (seqs_.count(id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("sequence ", id, " has already joined"));
  }
  VOX_ASSIGN_OR_RETURN(XttsPreparedRequest prep, PrepareXttsRequest(e_, request));
  return JoinPrepared(id, std::move(prep));
}

absl::Status XttsStepper::JoinPrepared(uint64_t id, XttsPreparedRequest request) {
  if (seqs_.count(id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("sequence ", id, " has already joined"));
  }
  auto seq = std::make_unique<Seq>();
  seq->id = id;
  seq->req = std::move(request);
  seq->joined = XttsStreamer::Clock::now();
  seq->stats.seed = seq->req.seed;
  seq->stats.voice = seq->req.voice_name;
  seq->generation.seed = seq->req.seed;
  Seq* raw = seq.get();
  seq->sink = [raw](absl::Span<const float> samples) {
    raw->audio.insert(raw->audio.end(), samples.begin(), samples.end());
    return true;
  };
  seq->slot = TakeSlot();
  seqs_.emplace(id, std::move(seq));
  return absl::OkStatus();
}

std::vector<SpeechStepResult> XttsStepper::Step(absl::Span<const uint64_t> active) {
  std::vector<SpeechStepResult> results(active.size());
  std::vector<Seq*> listed(active.size(), nullptr);
  {
    std::vector<uint64_t> seen;
    for (size_t i = 0; i < active.size(); ++i) {
      auto it = seqs_.find(active[i]);
      if (it == seqs_.end()) {
        results[i].status = absl::NotFoundError(absl::StrCat("sequence ", active[i], " has not joined"));
      } else if (std::find(seen.begin(), seen.end(), active[i]) != seen.end()) {
        results[i].status = absl::InvalidArgumentError(absl::StrCat("sequence ", active[i], " listed twice"));
      } else {
        listed[i] = it->second.get();
        seen.push_back(active[i]);
      }
    }
  }
  c10::InferenceMode guard;
  // 1. Prefill the sequences starting a piece (one at a time: their texts differ in length).
  for (Seq* s : listed) {
    if (s != nullptr && s->phase == Phase::kPrefill) Fail(s, Prefill(s));
  }
  // 2. Sample every sequence's next code (one batched sampler call: each row with its own
  //    settings, seen codes and generator); plan the vocoder chunks that are due.
  std::vector<Seq*> sampling;
  for (Seq* s : listed) {
    if (s == nullptr || s->phase != Phase::kGenerate) continue;
    Fail(s, CatchTorchErrors("xtts stepper", [&] {
      if (s->streamer != nullptr) s->streamer->Add(s->latent);
      if (!options_.vocode) {
        const torch::Tensor l = s->latent.to(torch::kCPU, torch::kFloat).contiguous();
        s->generation.latents.insert(s->generation.latents.end(), l.data_ptr<float>(),
                                     l.data_ptr<float>() + l.numel());
      }
      return absl::OkStatus();
    }));
    if (s->phase == Phase::kGenerate) sampling.push_back(s);
  }
  std::vector<int64_t> codes;
  SampleCodes(sampling, &codes);
  std::vector<Pending> pending;
  Batch batch;
  for (size_t i = 0; i < sampling.size(); ++i) {
    Seq* s = sampling[i];
    if (s->phase != Phase::kGenerate) continue;  // the sampler failed
    const int64_t code = codes[i];
    Fail(s, CatchTorchErrors("xtts stepper", [&] {
      ++s->piece_codes;
      ++s->stats.codes;
      if (!options_.vocode) {
        s->generation.codes.push_back(code);
        s->generation.stopped = code == m_.config.stop_audio;
      }
      const bool end = code == m_.config.stop_audio || s->piece_codes >= s->req.limit;
      Pending p{s, {}};
      if (end) {
        s->piece_done = true;
        if (s->streamer != nullptr && s->streamer->Plan(true, &p.chunk)) pending.push_back(std::move(p));
      } else {
        if (s->streamer != nullptr && s->streamer->Due() && s->streamer->Plan(false, &p.chunk)) {
          pending.push_back(std::move(p));
        }
        batch.emplace_back(s, code);
      }
      return absl::OkStatus();
    }));
  }
  // 3. Vocode: chunks whose windows have the same length go through HiFi-GAN together.
  Vocode(pending);
  for (Seq* s : listed) {
    if (s != nullptr && s->phase == Phase::kGenerate && s->piece_done) EndPiece(s);
  }
  // 4. One GPT step for every sequence that goes on.
  batch.erase(std::remove_if(batch.begin(), batch.end(),
                             [](const auto& b) { return b.first->phase != Phase::kGenerate; }),
              batch.end());
  if (!batch.empty()) {
    // A batch of one takes `step` on its slot's view: same numbers, about half the cost of
    // step_slots' gather and mask for a single row (tiny model, CPU).
    const absl::Status st = batched_ && batch.size() > 1 ? StepBatched(batch) : StepOneByOne(batch);
    if (!st.ok()) {
      for (auto& b : batch) Fail(b.first, st);
    }
  }
  for (size_t i = 0; i < active.size(); ++i) {
    Seq* s = listed[i];
    if (s == nullptr) continue;
    SpeechStepResult& r = results[i];
    r.audio = std::move(s->audio);
    s->audio.clear();
    if (s->phase == Phase::kFailed) {
      r.status = s->error;
    } else if (s->phase == Phase::kDone) {
      r.finished = true;
      r.stats = s->stats;
    }
  }
  return results;
}

void XttsStepper::Leave(uint64_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  FreeSlot(it->second.get());
  seqs_.erase(it);
  if (seqs_.empty()) {  // idle: give the caches' memory back, and what malloc kept of the steps'
    kv_ = c10::List<torch::Tensor>();
    slot_used_.clear();
    ReleaseFreeMemory();
  }
}

XttsEngine::Generation XttsStepper::TakeGeneration(uint64_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return {};
  return std::move(it->second->generation);
}

int XttsStepper::TakeSlot() {
  for (size_t i = 0; i < slot_used_.size(); ++i) {
    if (!slot_used_[i]) {
      slot_used_[i] = true;
      return static_cast<int>(i);
    }
  }
  slot_used_.push_back(true);
  return static_cast<int>(slot_used_.size()) - 1;
}

void XttsStepper::FreeSlot(Seq* s) {
  if (s->slot >= 0) slot_used_[s->slot] = false;
  s->slot = -1;
}

void XttsStepper::Fail(Seq* s, const absl::Status& st) {
  if (st.ok() || s->phase == Phase::kFailed) return;
  s->phase = Phase::kFailed;
  s->error = st;
  s->sampler.reset();
  s->streamer.reset();
  FreeSlot(s);
}

// Makes the slot caches hold at least `slots` slots of `capacity` rows, shaped like the
// prefix's caches `proto` ([1,H,P,hd] each). Growing copies the filled rows over.
void XttsStepper::Reserve(int64_t slots, int64_t capacity, const c10::List<torch::Tensor>& proto) {
  const int64_t have_slots = kv_.empty() ? 0 : kv_.get(0).size(0);
  const int64_t have_capacity = kv_.empty() ? 0 : kv_.get(0).size(2);
  if (have_slots >= slots && have_capacity >= capacity) return;
  const int64_t new_slots = have_slots >= slots ? have_slots : std::max(slots, 2 * have_slots);
  const int64_t new_capacity = std::max(have_capacity, (capacity + 127) / 128 * 128);
  c10::List<torch::Tensor> grown;
  for (size_t l = 0; l < proto.size(); ++l) {
    const torch::Tensor p = proto.get(l);
    torch::Tensor t = torch::zeros({new_slots, p.size(1), new_capacity, p.size(3)}, p.options());
    if (!kv_.empty()) {
      t.narrow(0, 0, have_slots).narrow(2, 0, have_capacity).copy_(kv_.get(l));
    }
    grown.push_back(t);
  }
  kv_ = std::move(grown);
}

absl::Status XttsStepper::Prefill(Seq* s) {
  return CatchTorchErrors("xtts prefix", [&] {
    const auto& ids = s->req.pieces[s->piece];
    const int64_t p = m_.cond_len + static_cast<int64_t>(ids.size()) + 3;
    const auto device = ToTorchDevice(m_.device);
    torch::Tensor text = torch::tensor(ids, torch::kLong).reshape({1, -1}).to(device);
    // A voice's conditioning rows are computed once (XttsConditionCache); older exports run
    // the whole prefix.
    auto out = m_.has_condition
                   ? m_.module->get_method("prefix_conditioned")(
                         {e_.conditions.Get(*m_.module, s->req.cond_latent), text, p}).toTuple()
                   : m_.module->get_method("prefix")({s->req.cond_latent, text, p}).toTuple();
    const c10::List<torch::Tensor> own = out->elements()[2].toTensorList();
    Reserve(static_cast<int64_t>(slot_used_.size()), p + s->req.limit, own);
    for (size_t l = 0; l < own.size(); ++l) {
      kv_.get(l).select(0, s->slot).narrow(1, 0, p).copy_(own.get(l).select(0, 0).narrow(1, 0, p));
    }
    s->logits = out->elements()[0].toTensor()[0].to(torch::kCPU).contiguous();
    s->latent = out->elements()[1].toTensor()[0];
    s->cache_len = p;
    s->piece_codes = 0;
    s->piece_done = false;
    s->sampler = std::make_unique<CodeSampler>(s->req.settings, s->req.piece_seeds[s->piece],
                                               m_.config.start_audio);
    if (options_.vocode) {
      s->streamer = std::make_unique<XttsStreamer>(m_, e_.stream, s->req.speaker, s->req.speed, s->req.limit,
                                                   &s->sink, s->joined, options_.chunks);
    }
    s->phase = Phase::kGenerate;
    ++e_.steps;
    ++e_.gpt_calls;
    return absl::OkStatus();
  });
}

// Draws (or, under the code probe, takes) the next code of every sequence in `sampling`; a
// failure fails them all.
void XttsStepper::SampleCodes(const std::vector<Seq*>& sampling, std::vector<int64_t>* codes) {
  codes->assign(sampling.size(), -1);
  if (sampling.empty()) return;
  const XttsCodeProbe& probe = e_.probe;
  const absl::Status st = CatchTorchErrors("xtts sampler", [&] {
    const int64_t width = sampling[0]->logits.numel();
    std::vector<float> rows;
    std::vector<CodeSampler*> samplers;
    std::vector<int64_t> banned;
    std::vector<size_t> drawn;  // indices into `sampling` that sample (not forced)
    for (size_t i = 0; i < sampling.size(); ++i) {
      Seq* s = sampling[i];
      if (probe.force) (*codes)[i] = probe.force(s->id, s->stats.codes);
      if ((*codes)[i] >= 0) {
        s->sampler->Record((*codes)[i]);
        continue;
      }
      const float* l = s->logits.data_ptr<float>();
      rows.insert(rows.end(), l, l + width);
      samplers.push_back(s->sampler.get());
      banned.push_back(s->req.forced > 0 ? m_.config.stop_audio : -1);
      drawn.push_back(i);
    }
    if (!drawn.empty()) {
      const std::vector<int64_t> sampled = CodeSampler::NextBatch(samplers, rows, width, banned);
      for (size_t k = 0; k < drawn.size(); ++k) (*codes)[drawn[k]] = sampled[k];
    }
    if (probe.fed) {
      for (size_t i = 0; i < sampling.size(); ++i) {
        Seq* s = sampling[i];
        probe.fed(s->id, s->stats.codes, absl::MakeConstSpan(s->logits.data_ptr<float>(), width), (*codes)[i]);
      }
    }
    return absl::OkStatus();
  });
  if (!st.ok()) {
    for (Seq* s : sampling) Fail(s, st);
  }
}

// Decodes the planned chunks, batching those of equal window length, and completes them.
void XttsStepper::Vocode(std::vector<Pending>& pending) {
  std::map<int64_t, std::vector<Pending*>> groups;
  for (auto& p : pending) {
    if (p.seq->phase == Phase::kGenerate) groups[p.chunk.frames.size(2)].push_back(&p);
  }
  for (auto& [frames, group] : groups) {
    (void)frames;
    torch::Tensor audio;
    absl::Status st = CatchTorchErrors("xtts vocoder", [&] {
      std::vector<torch::Tensor> f, spk;
      for (Pending* p : group) {
        f.push_back(p->chunk.frames);
        spk.push_back(p->seq->streamer->speaker());
      }
      torch::Tensor in = f.size() == 1 ? f[0] : torch::cat(f, 0);
      torch::Tensor sp = spk.size() == 1 ? spk[0] : torch::cat(spk, 0);
      audio = m_.module->get_method("decode_frames")({in, sp}).toTensor().to(torch::kCPU).contiguous();
      return absl::OkStatus();
    });
    for (size_t b = 0; b < group.size(); ++b) {
      Seq* s = group[b]->seq;
      if (!st.ok()) {
        Fail(s, st);
        continue;
      }
      Fail(s, CatchTorchErrors("xtts vocoder", [&] {
        return s->streamer->Complete(group[b]->chunk, audio[static_cast<int64_t>(b)]);
      }));
    }
  }
}

// The current piece ended (its final chunk is out): the next piece prefills at the next Step,
// or the sequence is done and its slot is freed.
void XttsStepper::EndPiece(Seq* s) {
  if (s->streamer != nullptr) s->stats.samples += s->streamer->samples();
  s->streamer.reset();
  s->sampler.reset();
  s->piece_done = false;
  ++s->piece;
  if (s->piece < s->req.pieces.size()) {
    s->phase = Phase::kPrefill;
  } else {
    s->phase = Phase::kDone;
    FreeSlot(s);
  }
}

void XttsStepper::TakeOutputs(const Batch& batch, const torch::Tensor& logits, const torch::Tensor& latent,
                              size_t first) {
  torch::Tensor l = logits.to(torch::kCPU).contiguous();
  for (int64_t b = 0; b < l.size(0); ++b) {
    Seq* s = batch[first + b].first;
    s->logits = l[b];
    s->latent = latent[b];
    ++s->cache_len;
    ++e_.steps;
  }
  ++e_.gpt_calls;
}

absl::Status XttsStepper::StepBatched(const Batch& batch) {
  return CatchTorchErrors("xtts step", [&] {
    const int64_t n = static_cast<int64_t>(batch.size());
    std::vector<int64_t> codes(n), positions(n), slots(n), lens(n);
    int64_t length = 0;
    for (int64_t b = 0; b < n; ++b) {
      const Seq* s = batch[b].first;
      codes[b] = batch[b].second;
      positions[b] = s->piece_codes;
      slots[b] = s->slot;
      lens[b] = s->cache_len;
      length = std::max(length, s->cache_len + 1);
    }
    const auto device = ToTorchDevice(m_.device);
    auto tensor = [&](const std::vector<int64_t>& v, bool column) {
      torch::Tensor t = torch::tensor(v, torch::kLong);
      return (column ? t.reshape({-1, 1}) : t).to(device);
    };
    auto out = m_.module->get_method("step_slots")(
        {tensor(codes, true), tensor(positions, true), kv_, tensor(slots, false), tensor(lens, false),
         length}).toTuple();
    TakeOutputs(batch, out->elements()[0].toTensor(), out->elements()[1].toTensor(), 0);
    return absl::OkStatus();
  });
}

// `step` per sequence over its slot's rows of the caches (models without step_slots, batches
// of one).
absl::Status XttsStepper::StepOneByOne(const Batch& batch) {
  return CatchTorchErrors("xtts step", [&] {
    const auto opts = torch::TensorOptions().dtype(torch::kLong).device(ToTorchDevice(m_.device));
    torch::jit::Method step = m_.module->get_method("step");
    for (size_t b = 0; b < batch.size(); ++b) {
      Seq* s = batch[b].first;
      c10::List<torch::Tensor> own;
      for (size_t l = 0; l < kv_.size(); ++l) own.push_back(kv_.get(l).narrow(0, s->slot, 1));
      auto out = step({torch::full({1, 1}, batch[b].second, opts), torch::full({1, 1}, s->piece_codes, opts),
                       own, s->cache_len}).toTuple();
      TakeOutputs(batch, out->elements()[0].toTensor(), out->elements()[1].toTensor(), b);
    }
    return absl::OkStatus();
  });
}

}  // namespace vox
