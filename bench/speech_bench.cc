// speech_bench: latency structure of the XTTS engine (docs/benchmarks.md, "Speech engine").
//
//   speech_bench [--model DIR] [--device cpu|cuda|mps] [--threads N] [--codes 540] [--runs 3]
//                [--streams 16]
//
// 1. Time to first audio ÷ full synthesis time for a long utterance (forced length, greedy).
// 2. Vocoder time of the last regular chunk ÷ the first chunk for that utterance (and, for
//    contrast, the reference's approach: re-vocoding all latents so far at each chunk).
// 3. Real-time factor (synthesis time ÷ audio duration).
// 4. Concurrent speech through the stepper (continuous batching): audio seconds produced per
//    wall second with --streams sequences ÷ with 1 (goal >= 5 at 16), batched GPT steps
//    (step_slots) and, for contrast, one `step` call per sequence.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engines/core/engine_options.h"
#include "engines/speech/xtts_engine.h"
#include "engines/torch/device.h"

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  vox::PrepareProcessForModels(argv);
  std::string model = std::string(VOX_TINY_DIR) + "/models/xtts-tiny";
  std::string device = "cpu";
  int threads = 1, codes = 540, runs = 3, streams = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--device")) device = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--codes")) codes = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--streams")) streams = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const vox::ThreadSettings ts = vox::ConfigureThreads(threads, threads);
  vox::EngineOptions opts;
  opts.device = device;
  auto loaded = vox::XttsEngine::Load("bench", model, opts);
  if (!loaded.ok()) {
    std::fprintf(stderr, "load %s: %s\n", model.c_str(), std::string(loaded.status().message()).c_str());
    return 1;
  }
  vox::XttsEngine& e = **loaded;
  const vox::XttsStreamOptions so = e.stream_options();
  std::printf("model %s on %s, intra-op threads %d, BLAS threads %d, chunks: first %d codes, then every %d, "
              "context %s frames, cross-fade %d samples\n",
              model.c_str(), device.c_str(), ts.intra_op_threads, ts.blas_threads, so.first_chunk_codes,
              so.chunk_codes,
              so.context_frames < 0 ? "receptive-field" : std::to_string(so.context_frames).c_str(),
              so.crossfade_samples);

  vox::SynthesisRequest req;
  req.language = "eng_Latn";
  req.text = "The quick brown fox jumps over the lazy dog, and then it runs far away into the woods.";
  req.params.greedy = true;
  req.params.forced_codes = codes;

  std::vector<double> ttfa, total, first_chunk, last_chunk, flush, ratio_chunk, ratio_second, ratio_ttfa, rtf_long;
  int64_t samples = 0;
  std::vector<float> latents;
  for (int r = 0; r < runs + 1; ++r) {  // run 0 warms up
    double first_at = -1;
    const auto t0 = Clock::now();
    auto st = e.Synthesize(req, [&](absl::Span<const float>) {
      if (first_at < 0) first_at = Since(t0);
      return true;
    }, {});
    const double t = Since(t0);
    if (!st.ok()) {
      std::fprintf(stderr, "synthesize: %s\n", std::string(st.status().message()).c_str());
      return 1;
    }
    if (r == 0) continue;
    samples = st->samples;
    const auto& ch = e.last_chunks();
    ttfa.push_back(first_at);
    total.push_back(t);
    ratio_ttfa.push_back(first_at / t);
    first_chunk.push_back(ch.front().vocoder_seconds);
    last_chunk.push_back(ch[ch.size() - 2].vocoder_seconds);  // last regular chunk
    flush.push_back(ch.back().vocoder_seconds);
    ratio_chunk.push_back(ch[ch.size() - 2].vocoder_seconds / ch.front().vocoder_seconds);
    ratio_second.push_back(ch[ch.size() - 2].vocoder_seconds / ch[1].vocoder_seconds);
    rtf_long.push_back(t / (static_cast<double>(st->samples) / e.sample_rate()));
  }
  const double audio_s = static_cast<double>(samples) / e.sample_rate();
  std::printf("\nlong utterance: %d codes forced, %.2f s of audio, median of %d runs\n", codes, audio_s, runs);
  std::printf("  time to first audio      %8.1f ms\n", 1e3 * Median(ttfa));
  std::printf("  full synthesis           %8.1f ms\n", 1e3 * Median(total));
  std::printf("  first audio / full       %8.3f   (goal <= 0.15)\n", Median(ratio_ttfa));
  std::printf("  real-time factor         %8.3f\n", Median(rtf_long));

  {
    const auto& ch = e.last_chunks();
    std::printf("\nchunks of the last run (%zu): first %lld frames, last regular %lld frames, final flush %lld frames\n",
                ch.size(), static_cast<long long>(ch.front().window_frames),
                static_cast<long long>(ch[ch.size() - 2].window_frames),
                static_cast<long long>(ch.back().window_frames));
    std::printf("  vocoder first chunk      %8.2f ms\n", 1e3 * Median(first_chunk));
    std::printf("  vocoder last chunk       %8.2f ms\n", 1e3 * Median(last_chunk));
    std::printf("  vocoder final flush      %8.2f ms\n", 1e3 * Median(flush));
    std::printf("  last / first chunk       %8.3f   (goal <= 1.2)\n", Median(ratio_chunk));
    std::printf("  last / second chunk      %8.3f   (both with full left context)\n", Median(ratio_second));
  }

  // Equal chunks from the start (first chunk = chunk size) isolate the cost of the context.
  {
    vox::XttsStreamOptions eq = so;
    eq.first_chunk_codes = so.chunk_codes;
    e.set_stream_options(eq);
    std::vector<double> ratios;
    for (int r = 0; r < runs; ++r) {
      auto st = e.Synthesize(req, [](absl::Span<const float>) { return true; }, {});
      if (!st.ok()) return 1;
      const auto& ch = e.last_chunks();
      ratios.push_back(ch[ch.size() - 2].vocoder_seconds / ch.front().vocoder_seconds);
    }
    std::printf("  last / first, equal chunks of %d codes: %.3f\n", so.chunk_codes, Median(ratios));
    e.set_stream_options(so);
  }

  // The reference's streaming re-vocodes every latent so far at each chunk: cost grows with n.
  {
    vox::SynthesisParams p;
    p.greedy = true;
    p.forced_codes = codes;
    auto ids = e.TextIds(req.text, req.language);
    auto gen = e.Generate(*ids, 0, p, {});
    if (!gen.ok()) return 1;
    const int d = e.d_model();
    auto vocode_first = [&](int n) {
      std::vector<float> part(gen->latents.begin(), gen->latents.begin() + static_cast<size_t>(n) * d);
      std::vector<double> t;
      for (int r = 0; r < runs; ++r) {
        const auto t0 = Clock::now();
        (void)e.Vocode(part, 0);
        t.push_back(Since(t0));
      }
      return Median(t);
    };
    (void)vocode_first(so.first_chunk_codes);  // warm up the method (TorchScript profiling runs)
    (void)vocode_first(codes);
    const double a = vocode_first(so.first_chunk_codes), b = vocode_first(codes);
    std::printf("  re-vocode-all (reference): at %d codes %.2f ms, at %d codes %.2f ms, ratio %.1f\n",
                so.first_chunk_codes, 1e3 * a, codes, 1e3 * b, b / a);
  }

  // Real-time factor of a natural (stop-code) greedy utterance.
  {
    vox::SynthesisRequest nat = req;
    nat.params.forced_codes = 0;
    std::vector<double> rtf;
    int64_t c = 0;
    for (int r = 0; r < runs; ++r) {
      const auto t0 = Clock::now();
      auto st = e.Synthesize(nat, [](absl::Span<const float>) { return true; }, {});
      const double t = Since(t0);
      if (!st.ok()) return 1;
      c = st->codes;
      rtf.push_back(t / (static_cast<double>(st->samples) / e.sample_rate()));
    }
    std::printf("\nnatural greedy utterance (%lld codes): real-time factor %.3f\n", static_cast<long long>(c),
                Median(rtf));
  }

  // Concurrent speech: n sampled sequences (different seeds, forced to `codes` codes so every
  // stream does the same work) joined at once and stepped together until all finish.
  {
    double gpt_step_ms = 0;  // median wall time of the last run's steps that vocoded nothing
    auto throughput = [&](int n) -> double {  // audio seconds per wall second; < 0 on error
      auto stepper = e.NewStepper();
      if (stepper == nullptr) return -1;
      std::vector<uint64_t> active;
      for (int i = 0; i < n; ++i) {
        vox::SynthesisRequest r = req;
        r.params.greedy = false;
        r.params.seed = 1000 + i;
        if (!stepper->Join(i + 1, r).ok()) return -1;
        active.push_back(i + 1);
      }
      int64_t samples_out = 0;
      const auto t0 = Clock::now();
      std::vector<double> quiet;  // steps without audio: GPT step and sampling only
      while (!active.empty()) {
        const auto ts = Clock::now();
        const auto res = stepper->Step(active);
        const double step_s = Since(ts);
        bool audio = false;
        for (const auto& r : res) audio |= !r.audio.empty();
        if (!audio) quiet.push_back(step_s);
        std::vector<uint64_t> next;
        for (size_t k = 0; k < res.size(); ++k) {
          if (!res[k].status.ok()) return -1;
          samples_out += static_cast<int64_t>(res[k].audio.size());
          if (res[k].finished) stepper->Leave(active[k]);
          else next.push_back(active[k]);
        }
        active = std::move(next);
      }
      const double wall = Since(t0);
      gpt_step_ms = quiet.empty() ? 0 : 1e3 * Median(quiet);
      return (static_cast<double>(samples_out) / e.sample_rate()) / wall;
    };
    std::printf("\nconcurrent speech through the stepper (%d codes per stream, sampled), audio s per wall s:\n",
                codes);
    for (bool batched : {true, false}) {
      vox::XttsStreamOptions o = so;
      o.batched_steps = batched;
      e.set_stream_options(o);
      (void)throughput(2);  // warm up
      std::vector<double> one, many, step_one, step_many;
      for (int r = 0; r < runs; ++r) {
        one.push_back(throughput(1));
        step_one.push_back(gpt_step_ms);
        many.push_back(throughput(streams));
        step_many.push_back(gpt_step_ms);
      }
      if (Median(one) <= 0 || Median(many) <= 0) {
        std::fprintf(stderr, "stepper failed\n");
        return 1;
      }
      std::printf("  %-28s 1 stream %7.2f, %d streams %7.2f, ratio %5.2f%s\n",
                  batched ? (e.has_batched_step() ? "batched steps (step_slots)" : "model lacks step_slots")
                          : "one step call per sequence",
                  Median(one), streams, Median(many), Median(many) / Median(one),
                  batched ? "   (goal >= 5 at 16)" : "");
      std::printf("  %-28s a step without vocoding: 1 stream %.2f ms, %d streams %.2f ms\n", "",
                  Median(step_one), streams, Median(step_many));
    }
    e.set_stream_options(so);
  }
  return 0;
}
