// builtin_bench [--requests N]: per-request latency of the built-in engines.
//   apertium eng-spa, warm pipeline, one sentence per call      (ApertiumEngine::Translate)
//   apertium eng-spa, warm pipeline, 10 sentences in one call   (per sentence)
//   apertium eng-spa, one `apertium eng-spa` process per request (what the pipeline replaces)
//   espeak-ng es, one sentence: time to first audio, total, real-time factor
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engines/builtin/apertium_engine.h"
#include "engines/builtin/espeak_engine.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void Report(const char* what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) { return ms[std::min(ms.size() - 1, size_t(q * ms.size()))]; };
  std::printf("%-58s n=%-4zu p50 %8.2f ms  p90 %8.2f ms  max %8.2f ms\n", what, ms.size(), at(0.5),
              at(0.9), ms.back());
}

}  // namespace

int main(int argc, char** argv) {
  int requests = 200;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--requests") == 0) requests = std::atoi(argv[i + 1]);
  }
  const std::string sentence = "The weather is very nice today and we are going to the beach.";

  vox::ApertiumOptions options;
  options.pairs = {"eng-spa"};
  const auto start = Clock::now();
  auto apertium = vox::CreateApertiumEngine(options);
  if (!apertium.ok()) {
    std::fprintf(stderr, "%s\n", std::string(apertium.status().message()).c_str());
    return 1;
  }
  std::printf("apertium eng-spa engine created (pipeline started and warmed) in %.1f ms\n",
              Ms(Clock::now() - start));
  std::vector<double> one, batch, process;
  for (int i = 0; i < requests; ++i) {
    const auto t0 = Clock::now();
    auto out = (*apertium)->Translate({sentence}, "eng_Latn", "spa_Latn", {}, {});
    one.push_back(Ms(Clock::now() - t0));
    if (!out.ok()) return 1;
  }
  Report("apertium pipeline, 1 sentence per call", one);
  const std::vector<std::string> ten(10, sentence);
  for (int i = 0; i < std::max(1, requests / 10); ++i) {
    const auto t0 = Clock::now();
    auto out = (*apertium)->Translate(ten, "eng_Latn", "spa_Latn", {}, {});
    batch.push_back(Ms(Clock::now() - t0) / 10);
    if (!out.ok()) return 1;
  }
  Report("apertium pipeline, 10 sentences per call (per sentence)", batch);
  const std::string command = "echo '" + sentence + "' | apertium eng-spa > /dev/null";
  for (int i = 0; i < std::min(requests, 20); ++i) {
    const auto t0 = Clock::now();
    if (std::system(command.c_str()) != 0) return 1;
    process.push_back(Ms(Clock::now() - t0));
  }
  Report("`apertium eng-spa` process per request", process);

  auto espeak = vox::CreateEspeakEngine(vox::EspeakOptions{});
  if (!espeak.ok()) {
    std::fprintf(stderr, "%s\n", std::string(espeak.status().message()).c_str());
    return 1;
  }
  vox::SynthesisRequest request;
  request.text = "Hace muy buen tiempo hoy y vamos a la playa.";
  request.language = "spa_Latn";
  std::vector<double> first, total, rtf;
  for (int i = 0; i < std::max(1, requests / 4); ++i) {
    const auto t0 = Clock::now();
    double first_ms = -1;
    int64_t samples = 0;
    auto stats = (*espeak)->Synthesize(
        request,
        [&](absl::Span<const float> chunk) {
          if (first_ms < 0) first_ms = Ms(Clock::now() - t0);
          samples += chunk.size();
          return true;
        },
        {});
    if (!stats.ok()) return 1;
    const double ms = Ms(Clock::now() - t0);
    first.push_back(first_ms);
    total.push_back(ms);
    rtf.push_back(ms / (1000.0 * samples / (*espeak)->sample_rate()));
  }
  Report("espeak-ng es, 1 sentence: time to first audio", first);
  Report("espeak-ng es, 1 sentence: total", total);
  std::sort(rtf.begin(), rtf.end());
  std::printf("espeak-ng es real-time factor (compute / audio), p50 %.4f\n", rtf[rtf.size() / 2]);
  return 0;
}
