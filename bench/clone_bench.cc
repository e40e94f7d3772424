// clone_bench: the cost of XttsEngine::CloneVoice (docs/benchmarks.md, "Voice cloning").
//
//   clone_bench --model DIR [--threads 2] [--seconds 10] [--rate 48000] [--runs 5] [--clips 1]
//
// Makes `seconds` of a voiced reference signal (harmonics of a gliding pitch under a
// syllable-rate envelope) at `rate` Hz, split into `clips` equal clips, and times CloneVoice:
// the first call (reported apart) and the median and minimum of `runs` more. Then times the
// first audio of a greedy Synthesize in the new voice, to show it is usable by the next call.
#include <algorithm>
#include <chrono>
#include <cmath>
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

}  // namespace

int main(int argc, char** argv) {
  vox::PrepareProcessForModels(argv);
  std::string model;
  int threads = 2, rate = 48000, runs = 5, clips = 1;
  double seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rate")) rate = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--clips")) clips = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (model.empty() || runs < 1 || clips < 1) {
    std::fprintf(stderr, "usage: clone_bench --model DIR [--threads 2] [--seconds 10] [--rate 48000] [--runs 5] [--clips 1]\n");
    return 2;
  }
  const vox::ThreadSettings ts = vox::ConfigureThreads(threads, threads);
  vox::EngineOptions opts;
  opts.device = "cpu";
  const auto t_load = Clock::now();
  auto loaded = vox::XttsEngine::Load("bench", model, opts);
  if (!loaded.ok()) {
    std::fprintf(stderr, "load %s: %s\n", model.c_str(), std::string(loaded.status().message()).c_str());
    return 1;
  }
  vox::XttsEngine& e = **loaded;
  std::printf("model %s (d_model %d), load %.2f s, intra-op threads %d, BLAS threads %d\n", model.c_str(),
              e.d_model(), Since(t_load), ts.intra_op_threads, ts.blas_threads);

  std::vector<vox::ReferenceClip> audio(clips);
  const int n = static_cast<int>(seconds * rate) / clips;
  double phase = 0;
  for (int c = 0; c < clips; ++c) {
    audio[c].sample_rate = rate;
    for (int i = 0; i < n; ++i) {
      const double t = static_cast<double>(c * n + i) / rate;
      phase += 2 * M_PI * 120 * (1 + 0.1 * std::sin(2 * M_PI * 0.7 * t)) / rate;
      double x = 0;
      for (int k = 1; k < 12; ++k) x += 0.5 / k * std::sin(k * phase);
      audio[c].samples.push_back(static_cast<float>(0.3 * x * (0.5 + 0.5 * std::abs(std::sin(2 * M_PI * 1.3 * t)))));
    }
  }
  auto t0 = Clock::now();
  auto voice = e.CloneVoice(audio);
  const double first = Since(t0);
  if (!voice.ok()) {
    std::fprintf(stderr, "clone: %s\n", std::string(voice.status().message()).c_str());
    return 1;
  }
  std::vector<double> times;
  for (int r = 0; r < runs; ++r) {
    t0 = Clock::now();
    auto v = e.CloneVoice(audio);
    times.push_back(Since(t0));
    if (!v.ok()) return 1;
  }
  std::sort(times.begin(), times.end());
  std::printf("clone %.1f s of audio at %d Hz in %d clip(s): first call %.3f s; %d runs: median %.3f s, min %.3f s\n",
              seconds, rate, clips, first, runs, times[times.size() / 2], times.front());

  vox::SynthesisRequest req;
  req.language = "eng_Latn";
  req.text = "The quick brown fox jumps over the lazy dog.";
  req.voice = "cloned";
  req.params.greedy = true;
  req.params.forced_codes = 40;
  req.cloned_voice = std::make_shared<const vox::ClonedVoice>(*std::move(voice));
  double ttfa = -1;
  t0 = Clock::now();
  auto st = e.Synthesize(req, [&](absl::Span<const float> s) {
    if (ttfa < 0 && !s.empty()) ttfa = Since(t0);
    return true;
  }, {});
  if (!st.ok()) {
    std::fprintf(stderr, "synthesize: %s\n", std::string(st.status().message()).c_str());
    return 1;
  }
  std::printf("then Synthesize in the cloned voice: first audio %.3f s, %lld codes in %.3f s\n", ttfa,
              static_cast<long long>(st->codes), Since(t0));
  return 0;
}
