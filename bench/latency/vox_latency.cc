// vox_latency: per-request latency of the neural engines on one device (CPU, CUDA, MPS), for the
// GPU check (scripts/gpu-check, docs/gpu.md). Uses only the engines' factory functions
// (LoadNllbEngine, LoadXttsEngine), the engines/core interfaces and vox_torch's thread setting,
// so it measures exactly what voxd's workers call.
//
//   vox_latency --model DIR --kind translate|speech [--device cpu|cuda|cuda:N|mps|auto]
//       [--dtype float32|float16|bfloat16] [--text "..."] [--from eng_Latn] [--to spa_Latn]
//       [--lang eng_Latn] [--voice NAME] [--tokens 20] [--codes 100] [--iters 10] [--warmup 2]
//       [--threads 0] [--vocoder-dtype float32|bfloat16] [--verify-checksums] [--check]
//
// translate: fixed-length greedy decoding (TranslationParams::fixed_length) of exactly --tokens
//   generated tokens, one sentence per request; also a 1-token run (encoder + cross K/V + one
//   decoder step), so ms_per_token = (time(tokens) - time(1)) / (tokens - 1).
// speech: greedy synthesis forced to exactly --codes codes (SynthesisParams::forced_codes);
//   time to first audio = the first AudioSink call, total, ms per code (GPT + streaming vocoder),
//   real-time factor = synthesis time / audio duration.
// --check: instead of timing, one untimed request with the engine defaults (natural stop,
//   greedy) whose outputs are printed, so runs on two devices can be compared (scripts/gpu-check).
//
// Output: one JSON object per line on stdout ("bench": "vox_latency", "event": ...); errors on
// stderr and exit status 1 (2 for a bad command line).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engines/core/engine_options.h"
#include "engines/core/speech_engine.h"
#include "engines/core/translation_engine.h"
#include "engines/speech/xtts_engine.h"
#include "engines/torch/device.h"
#include "engines/translate/nllb_engine.h"
#include "nlohmann/json.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  std::string kind;
  std::string device = "cpu";
  std::string dtype;  // "" = as exported
  std::string vocoder_dtype = "float32";  // speech: EngineOptions::vocoder_dtype
  std::string text;
  std::string from = "eng_Latn";
  std::string to = "spa_Latn";
  std::string lang = "eng_Latn";
  std::string voice;
  int tokens = 20;
  int codes = 100;
  int iters = 10;
  int warmup = 2;
  int threads = 0;
  bool verify = false;
  bool check = false;
};

const char kDefaultSentence[] =
    "The weather is nice today, so we are going to the park with the children.";

void Emit(const std::string& event, nlohmann::json fields) {
  fields["bench"] = "vox_latency";
  fields["event"] = event;
  std::printf("%s\n", fields.dump().c_str());
  std::fflush(stdout);
}

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "vox_latency: %s\nusage: vox_latency --model DIR --kind translate|speech "
               "[--device cpu|cuda|cuda:N|mps|auto] [--dtype float32|float16|bfloat16] [--text T] "
               "[--from L] [--to L] [--lang L] [--voice NAME] [--tokens N] [--codes N] "
               "[--iters N] [--warmup N] [--threads N] [--vocoder-dtype float32|bfloat16] "
               "[--verify-checksums] [--check]\n",
               why.c_str());
  return 2;
}

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "vox_latency: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 1;
}

bool ParseInt(const std::string& flag, const char* value, int min, int* out, std::string* error) {
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || v < min || v > 1000000) {
    *error = flag + " wants an integer >= " + std::to_string(min) + ", got '" + value + "'";
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

// Returns "" on success, else the message for Usage().
std::string ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--verify-checksums") {
      a->verify = true;
      continue;
    }
    if (flag == "--check") {
      a->check = true;
      continue;
    }
    if (i + 1 >= argc) return "flag " + flag + " needs a value (or is unknown)";
    const char* value = argv[++i];
    std::string error;
    if (flag == "--model") a->model = value;
    else if (flag == "--kind") a->kind = value;
    else if (flag == "--device") a->device = value;
    else if (flag == "--dtype") a->dtype = value;
    else if (flag == "--vocoder-dtype") a->vocoder_dtype = value;
    else if (flag == "--text") a->text = value;
    else if (flag == "--from") a->from = value;
    else if (flag == "--to") a->to = value;
    else if (flag == "--lang") a->lang = value;
    else if (flag == "--voice") a->voice = value;
    else if (flag == "--tokens") { if (!ParseInt(flag, value, 2, &a->tokens, &error)) return error; }
    else if (flag == "--codes") { if (!ParseInt(flag, value, 1, &a->codes, &error)) return error; }
    else if (flag == "--iters") { if (!ParseInt(flag, value, 1, &a->iters, &error)) return error; }
    else if (flag == "--warmup") { if (!ParseInt(flag, value, 0, &a->warmup, &error)) return error; }
    else if (flag == "--threads") { if (!ParseInt(flag, value, 0, &a->threads, &error)) return error; }
    else return "unknown flag " + flag;
  }
  if (a->model.empty()) return "--model is required";
  if (a->kind != "translate" && a->kind != "speech")
    return "--kind must be 'translate' or 'speech', got '" + a->kind + "'";
  if (a->text.empty()) a->text = kDefaultSentence;
  return "";
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest-rank percentile of a non-empty sample (p in [0, 100]).
double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

nlohmann::json Summary(const std::vector<double>& ms) {
  double sum = 0;
  for (double x : ms) sum += x;
  return {{"median_ms", Percentile(ms, 50)}, {"p90_ms", Percentile(ms, 90)},
          {"min_ms", *std::min_element(ms.begin(), ms.end())},
          {"mean_ms", sum / ms.size()}, {"n", ms.size()}};
}

uint64_t PeakRssBytes() {
  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
#if defined(__APPLE__)
  return static_cast<uint64_t>(usage.ru_maxrss);
#else
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;
#endif
}

int RunTranslate(const Args& a, const vox::EngineOptions& options) {
  const auto t_load = Clock::now();
  auto loaded = vox::LoadNllbEngine("latency", a.model, options);
  if (!loaded.ok()) return Fail("loading " + a.model, loaded.status());
  std::unique_ptr<vox::TranslationEngine> engine = std::move(*loaded);
  const double load_ms = Ms(Clock::now() - t_load);
  const vox::ModelInfo& info = engine->info();
  Emit("load", {{"kind", "translate"}, {"model", a.model}, {"device", info.device},
                {"dtype", info.dtype}, {"load_ms", load_ms}, {"verify_checksums", a.verify}});
  const std::vector<std::string> texts = {a.text};

  if (a.check) {
    vox::TranslationParams params;  // engine defaults: greedy, natural stop
    auto out = engine->Translate(texts, a.from, a.to, params, nullptr);
    if (!out.ok()) return Fail("translating", out.status());
    Emit("check", {{"kind", "translate"}, {"device", info.device}, {"text", (*out)[0].text},
                   {"token_ids", (*out)[0].token_ids}});
    return 0;
  }

  auto time_one = [&](int tokens, std::vector<double>* ms) -> absl::Status {
    vox::TranslationParams params;
    params.beam_size = 1;
    params.fixed_length = true;
    params.max_length = tokens;
    if (absl::Status s = engine->Validate(texts, a.from, a.to, params); !s.ok()) return s;
    for (int i = 0; i < a.warmup + a.iters; ++i) {
      const auto t0 = Clock::now();
      auto out = engine->Translate(texts, a.from, a.to, params, nullptr);
      const double elapsed = Ms(Clock::now() - t0);
      if (!out.ok()) return out.status();
      if (static_cast<int>((*out)[0].token_ids.size()) != tokens) {
        return absl::InternalError("fixed-length decoding returned " +
                                   std::to_string((*out)[0].token_ids.size()) +
                                   " tokens, asked for " + std::to_string(tokens));
      }
      if (i >= a.warmup) ms->push_back(elapsed);
    }
    return absl::OkStatus();
  };
  std::vector<double> full, first;
  if (absl::Status s = time_one(a.tokens, &full); !s.ok()) return Fail("translating", s);
  if (absl::Status s = time_one(1, &first); !s.ok()) return Fail("translating 1 token", s);
  nlohmann::json j = Summary(full);
  const double per_token = (Percentile(full, 50) - Percentile(first, 50)) / (a.tokens - 1);
  j.update({{"kind", "translate"}, {"model", a.model}, {"device", info.device},
            {"dtype", info.dtype}, {"tokens", a.tokens}, {"from", a.from}, {"to", a.to},
            {"text_bytes", a.text.size()}, {"first_token_median_ms", Percentile(first, 50)},
            {"ms_per_token", per_token},
            {"ms_per_token_overall", Percentile(full, 50) / a.tokens},
            {"peak_rss_bytes", PeakRssBytes()}});
  Emit("translate", j);
  return 0;
}

int RunSpeech(const Args& a, const vox::EngineOptions& options) {
  const auto t_load = Clock::now();
  auto loaded = vox::LoadXttsEngine("latency", a.model, options);
  if (!loaded.ok()) return Fail("loading " + a.model, loaded.status());
  std::unique_ptr<vox::SpeechEngine> engine = std::move(*loaded);
  const double load_ms = Ms(Clock::now() - t_load);
  const vox::ModelInfo& info = engine->info();
  const int rate = engine->sample_rate();
  Emit("load", {{"kind", "speech"}, {"model", a.model}, {"device", info.device},
                {"dtype", info.dtype}, {"load_ms", load_ms}, {"sample_rate", rate},
                {"verify_checksums", a.verify}});

  vox::SynthesisRequest request;
  request.text = a.text;
  request.language = a.lang;
  request.voice = a.voice;
  request.params.greedy = true;
  request.params.seed = 1;
  if (!a.check) request.params.forced_codes = a.codes;
  if (absl::Status s = engine->Validate(request); !s.ok()) return Fail("request", s);

  if (a.check) {
    std::vector<float> audio;
    auto stats = engine->Synthesize(
        request,
        [&](absl::Span<const float> samples) {
          audio.insert(audio.end(), samples.begin(), samples.end());
          return true;
        },
        nullptr);
    if (!stats.ok()) return Fail("synthesizing", stats.status());
    double sq = 0, peak = 0;
    for (float x : audio) {
      sq += static_cast<double>(x) * x;
      peak = std::max(peak, static_cast<double>(std::fabs(x)));
    }
    // A coarse fingerprint of the waveform: RMS of 16 equal segments.
    std::vector<double> segments;
    const size_t n = audio.size(), parts = 16;
    for (size_t p = 0; p < parts && n >= parts; ++p) {
      double s2 = 0;
      const size_t b = p * n / parts, e = (p + 1) * n / parts;
      for (size_t i = b; i < e; ++i) s2 += static_cast<double>(audio[i]) * audio[i];
      segments.push_back(std::sqrt(s2 / std::max<size_t>(1, e - b)));
    }
    Emit("check", {{"kind", "speech"}, {"device", info.device}, {"codes", stats->codes},
                   {"samples", stats->samples}, {"voice", stats->voice},
                   {"rms", n ? std::sqrt(sq / n) : 0.0}, {"peak", peak},
                   {"segment_rms", segments}});
    return 0;
  }

  std::vector<double> ttfa, total, per_code, rtf;
  int64_t codes = 0, samples = 0;
  for (int i = 0; i < a.warmup + a.iters; ++i) {
    Clock::time_point first = {};
    bool got = false;
    int64_t n = 0;
    const auto t0 = Clock::now();
    auto stats = engine->Synthesize(
        request,
        [&](absl::Span<const float> s) {
          if (!got && !s.empty()) {
            first = Clock::now();
            got = true;
          }
          n += static_cast<int64_t>(s.size());
          return true;
        },
        nullptr);
    const auto t1 = Clock::now();
    if (!stats.ok()) return Fail("synthesizing", stats.status());
    if (!got) return Fail("synthesizing", absl::InternalError("no audio was produced"));
    if (stats->codes != a.codes) {
      return Fail("synthesizing", absl::InternalError(
                                      "forced_codes " + std::to_string(a.codes) + " produced " +
                                      std::to_string(stats->codes) + " codes (text split into "
                                      "several sentences? use one sentence)"));
    }
    codes = stats->codes;
    samples = n;
    if (i < a.warmup) continue;
    const double total_ms = Ms(t1 - t0);
    ttfa.push_back(Ms(first - t0));
    total.push_back(total_ms);
    per_code.push_back(total_ms / std::max<int64_t>(1, stats->codes));
    rtf.push_back(total_ms / 1000.0 / (static_cast<double>(n) / rate));
  }
  Emit("speech", {{"kind", "speech"}, {"model", a.model}, {"device", info.device},
                  {"dtype", info.dtype}, {"codes", codes}, {"samples", samples},
                  {"audio_seconds", static_cast<double>(samples) / rate},
                  {"time_to_first_audio", Summary(ttfa)}, {"total", Summary(total)},
                  {"ms_per_code_median", Percentile(per_code, 50)},
                  {"rtf_median", Percentile(rtf, 50)}, {"text_bytes", a.text.size()},
                  {"language", a.lang}, {"peak_rss_bytes", PeakRssBytes()}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  vox::PrepareProcessForModels(argv);
  Args a;
  if (std::string why = ParseArgs(argc, argv, &a); !why.empty()) return Usage(why);
  const vox::ThreadSettings threads = vox::ConfigureThreads(a.threads, a.threads);
  vox::EngineOptions options;
  options.device = a.device;
  options.dtype = a.dtype;
  options.vocoder_dtype = a.vocoder_dtype;
  options.intra_op_threads = a.threads;
  options.verify_checksums = a.verify;
  Emit("start", {{"model", a.model}, {"kind", a.kind}, {"device", a.device}, {"dtype", a.dtype},
                 {"vocoder_dtype", a.vocoder_dtype}, {"intra_op_threads", threads.intra_op_threads},
                 {"blas_threads", threads.blas_threads},
                 {"omp_wait_policy", threads.openmp_wait_policy},
                 {"weights_kernel", threads.weights_kernel}, {"iters", a.iters},
                 {"warmup", a.warmup}, {"check", a.check}});
  return a.kind == "translate" ? RunTranslate(a, options) : RunSpeech(a, options);
}
