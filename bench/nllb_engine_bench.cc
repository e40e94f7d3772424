// The C++ side of the NLLB "C++ against Python" and "Memory" benchmarks (docs/benchmarks.md,
// "Translation engine"). Usually run by bench/run_nllb_cpp_vs_python.sh.
//
//   nllb_engine_bench --model DIR [--device cpu] [--threads N] [--tokens 20] [--repeats 5] [--text "..."]
//       [--source eng_Latn] [--target fra_Latn] [--no-bandwidth] [--kernels]
//       [--verify-checksums] [--stepper 1,8,32]
//
// Order of work, so the figures do not disturb each other: load the engine, one untimed warm-up
// translation, --repeats timed ones (fixed-length greedy, exactly --tokens generated tokens),
// then peak RSS (getrusage: loading + translating), then the memory read bandwidth (a 1 GiB
// buffer allocated only now, so it never counts in the peak), then optionally the output
// projection's kernels, then optionally the continuous-batching stepper (--stepper: tokens/s at
// each listed number of concurrent sequences, and the cost of held rows; docs/engines.md).
// One JSON object per line on stdout, in the style of bench/nllb_python_reference.py;
// "bench": "nllb_engine_bench".
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <c10/core/InferenceMode.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engines/core/manifest.h"
#include "engines/torch/device.h"
#include "engines/translate/nllb_engine.h"
#include "nlohmann/json.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  std::string device = "cpu";  // the engine's; the bandwidth and kernel figures are the CPU's
  int threads = 1;
  int tokens = 20;
  int repeats = 5;
  std::string text = "The weather is nice today, so we are going to the park with the children.";
  std::string source = "eng_Latn";
  std::string target = "fra_Latn";
  bool bandwidth = true;
  bool kernels = false;
  bool verify = false;
  std::vector<int> stepper;  // concurrent sequences per stepper run; empty = no stepper runs
};

void Emit(const std::string& event, nlohmann::json fields) {
  fields["bench"] = "nllb_engine_bench";
  fields["event"] = event;
  std::printf("%s\n", fields.dump().c_str());
  std::fflush(stdout);
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "nllb_engine_bench: %s\nusage: nllb_engine_bench --model DIR [--device D] [--threads N] "
               "[--tokens N] [--repeats N] [--text T] [--source L] [--target L] "
               "[--no-bandwidth] [--kernels] [--verify-checksums] [--stepper 1,8,32]\n",
               why);
  return 2;
}

// Peak resident set size of this process so far, in bytes.
uint64_t PeakRssBytes() {
  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
#if defined(__APPLE__)
  return static_cast<uint64_t>(usage.ru_maxrss);  // bytes on macOS
#else
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // KiB on Linux
#endif
}

uint64_t CurrentRssBytes() {
#if defined(__linux__)
  std::ifstream in("/proc/self/statm");
  uint64_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
#else
  return 0;
#endif
}

// Read-only passes over a 1 GiB buffer with `threads` threads (each XORs its slice as 64-bit
// words, which compilers vectorise). Returns the best pass in GB/s (1e9 bytes).
double MeasureBandwidth(int threads, uint64_t bytes, int passes, double* best_s) {
  const size_t words = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[words]);
  for (size_t i = 0; i < words; ++i) buffer[i] = i * 0x9E3779B97F4A7C15ull;  // touch every page
  std::vector<uint64_t> sinks(threads);
  double best = 1e30;
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const size_t begin = words * t / threads, end = words * (t + 1) / threads;
        uint64_t acc[4] = {0, 0, 0, 0};
        size_t i = begin;
        for (; i + 4 <= end; i += 4) {
          acc[0] ^= buffer[i];
          acc[1] ^= buffer[i + 1];
          acc[2] ^= buffer[i + 2];
          acc[3] ^= buffer[i + 3];
        }
        for (; i < end; ++i) acc[0] ^= buffer[i];
        sinks[t] = acc[0] ^ acc[1] ^ acc[2] ^ acc[3];
      });
    }
    for (auto& th : pool) th.join();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  uint64_t sink = 0;
  for (uint64_t s : sinks) sink ^= s;
  if (sink == 42) std::fprintf(stderr, " ");  // keeps the reads alive
  *best_s = best;
  return static_cast<double>(bytes) / best / 1e9;
}

// One stepper run: `active` + `held` sequences of the same text (fixed-length greedy, `tokens`
// tokens) join at step 0; afterwards only the `active` ones are listed, the `held` ones stay
// paused (their rows ride along masked). Times the join step (encoder batch, prefix, first token)
// and every later step.
struct StepperTiming {
  double join_s = 0;
  std::vector<double> steps_s;
  double total_s = 0;
};

// Times the tied output projection ([1, d] hidden state -> [1, vocab] logits) with the model's
// own embedding matrix (model.ts loaded again, on the CPU) through three kernels: "mv" (gemv),
// "linear" (gemm with one row) and "matmul"; then four rows at once: "linear_4rows" (one gemm)
// and "mv_4x" (four gemv). Best of `repeats` seconds each, in that order. On CPU the choice
// changes the per-token time by 2-3x.
absl::StatusOr<std::vector<std::pair<std::string, double>>> TimeOutputProjection(
    const std::string& model_dir, int repeats) {
  std::vector<std::pair<std::string, double>> out;
  absl::Status status = vox::CatchTorchErrors("kernels", [&] {
    c10::InferenceMode guard;
    torch::jit::Module module = torch::jit::load(model_dir + "/model.ts", torch::kCPU);
    torch::Tensor weight;
    for (const auto& p : module.named_parameters(/*recurse=*/true)) {
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

absl::Status TimeStepper(vox::NllbEngine& engine, const Args& a, int active, int held,
                         vox::NllbEngine::HeldRows policy, StepperTiming* out) {
  auto stepper = engine.NewStepper(policy);
  if (stepper == nullptr) return absl::UnimplementedError("no stepper");
  vox::TranslationParams params;
  params.fixed_length = true;
  params.max_length = a.tokens;
  std::vector<uint64_t> all, listed;
  for (int i = 0; i < active + held; ++i) {
    if (absl::Status s = stepper->Join(i, a.text, a.source, a.target, params); !s.ok()) return s;
    all.push_back(i);
    if (i < active) listed.push_back(i);
  }
  const auto t0 = Clock::now();
  int finished = 0;
  for (int step = 0; finished < active; ++step) {
    const auto ts = Clock::now();
    const auto results = stepper->Step(step == 0 ? all : listed);
    const double s = std::chrono::duration<double>(Clock::now() - ts).count();
    (step == 0 ? out->join_s : out->steps_s.emplace_back()) = s;
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].status.ok()) return results[i].status;
      if (results[i].finished && (step == 0 ? all : listed)[i] < static_cast<uint64_t>(active)) {
        ++finished;
      }
    }
    if (step > a.tokens + 1) return absl::InternalError("fixed-length sequences did not finish");
  }
  out->total_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return absl::OkStatus();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  vox::PrepareProcessForModels(argv);
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "nllb_engine_bench: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--model") a.model = value("--model");
    else if (flag == "--device") a.device = value("--device");
    else if (flag == "--threads") a.threads = std::atoi(value("--threads"));
    else if (flag == "--tokens") a.tokens = std::atoi(value("--tokens"));
    else if (flag == "--repeats") a.repeats = std::atoi(value("--repeats"));
    else if (flag == "--text") a.text = value("--text");
    else if (flag == "--source") a.source = value("--source");
    else if (flag == "--target") a.target = value("--target");
    else if (flag == "--no-bandwidth") a.bandwidth = false;
    else if (flag == "--kernels") a.kernels = true;
    else if (flag == "--verify-checksums") a.verify = true;
    else if (flag == "--stepper") {
      for (absl::string_view n : absl::StrSplit(value("--stepper"), ',')) {
        int c = 0;
        if (!absl::SimpleAtoi(n, &c) || c < 1) return Usage("--stepper takes counts >= 1: 1,8,32");
        a.stepper.push_back(c);
      }
    }
    else return Usage(("unknown flag " + flag).c_str());
  }
  if (a.model.empty()) return Usage("--model is required");
  if (a.threads < 1 || a.tokens < 1 || a.repeats < 1) {
    return Usage("--threads, --tokens and --repeats must be >= 1");
  }

  const vox::ThreadSettings threads = vox::ConfigureThreads(a.threads, a.threads);
  const uint64_t rss_start = CurrentRssBytes();

  vox::EngineOptions options;
  options.device = a.device;
  options.intra_op_threads = a.threads;
  options.blas_threads = a.threads;
  options.verify_checksums = a.verify;
  const auto t_load = Clock::now();
  auto engine = vox::NllbEngine::Load("bench", a.model, options);
  if (!engine.ok()) {
    std::fprintf(stderr, "nllb_engine_bench: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
  const uint64_t rss_loaded = CurrentRssBytes();
  auto manifest = vox::LoadManifest(a.model, false);
  if (!manifest.ok()) {
    std::fprintf(stderr, "nllb_engine_bench: %s\n", manifest.status().ToString().c_str());
    return 1;
  }
  const auto& cfg = manifest->json["config"];
  const uint64_t d = cfg["d_model"], v = cfg["vocab_size"], ffn_e = cfg["encoder_ffn_dim"],
                 ffn_d = cfg["decoder_ffn_dim"], le = cfg["encoder_layers"],
                 ld = cfg["decoder_layers"];
  // fp32 weight bytes: one tied embedding, every layer, the final LayerNorms (no position table:
  // it is computed, not a weight).
  const uint64_t enc_layer = 4 * (d * d + d) + 2 * 2 * d + ffn_e * d + ffn_e + d * ffn_e + d;
  const uint64_t dec_layer = 8 * (d * d + d) + 3 * 2 * d + ffn_d * d + ffn_d + d * ffn_d + d;
  const uint64_t weight_bytes = 4 * (v * d + le * enc_layer + ld * dec_layer + 2 * 2 * d);
  Emit("load", {{"model_dir", a.model},
                {"seconds", load_s},
                {"verify_checksums", a.verify},
                {"intra_op_threads", threads.intra_op_threads},
                {"blas_threads", threads.blas_threads},
                {"openblas_found", threads.openblas_found},
                {"blas_core", threads.blas_core},
                {"omp_wait_policy", threads.openmp_wait_policy},
                 {"weights_kernel", threads.weights_kernel},
                {"rss_before_bytes", rss_start},
                {"rss_after_load_bytes", rss_loaded},
                {"fp32_weight_bytes", weight_bytes}});

  vox::TranslationParams params;
  params.fixed_length = true;
  params.max_length = a.tokens;
  auto src_ids = (*engine)->EncodeSource(a.text, a.source);
  if (!src_ids.ok()) {
    std::fprintf(stderr, "nllb_engine_bench: %s\n", src_ids.status().ToString().c_str());
    return 1;
  }
  std::vector<int64_t> ids;
  std::vector<double> times;
  for (int r = 0; r <= a.repeats; ++r) {  // r == 0: untimed warm-up
    const auto t0 = Clock::now();
    auto out = (*engine)->Translate({a.text}, a.source, a.target, params, nullptr);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!out.ok()) {
      std::fprintf(stderr, "nllb_engine_bench: %s\n", out.status().ToString().c_str());
      return 1;
    }
    if (r == 0) {
      ids = (*out)[0].token_ids;
    } else {
      times.push_back(s);
      if ((*out)[0].token_ids != ids) {
        std::fprintf(stderr, "nllb_engine_bench: repeated runs gave different ids\n");
        return 1;
      }
    }
  }
  const uint64_t peak = PeakRssBytes();
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                          : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
  const double ms_per_token = median / a.tokens * 1000;
  Emit("memory", {{"peak_rss_bytes", peak},
                  {"fp32_weight_bytes", weight_bytes},
                  {"ratio", static_cast<double>(peak) / static_cast<double>(weight_bytes)},
                  {"what", "peak RSS of loading + translating, this process"}});

  // Same accounting as bench/nllb_python_reference.py's "bound" event.
  const uint64_t src_tokens = src_ids->size();
  const uint64_t per_layer = 4 * (d * d + d) + 2 * (d * d + d) + (ffn_d * d + ffn_d) +
                             (d * ffn_d + d) + 3 * 2 * d;
  const uint64_t bytes_decoder = 4 * (ld * per_layer + 2 * d);
  const uint64_t bytes_lm_head = 4 * v * d;
  const uint64_t bytes_cross = 4 * ld * 2 * src_tokens * d;
  const uint64_t bytes_per_token = bytes_decoder + bytes_lm_head + bytes_cross;
  double gbps = 0, bound_ms = 0;
  if (a.bandwidth) {
    double best_s = 0;
    const uint64_t bw_bytes = 1ull << 30;
    gbps = MeasureBandwidth(a.threads, bw_bytes, 7, &best_s);
    bound_ms = static_cast<double>(bytes_per_token) / (gbps * 1e9) * 1000;
    Emit("bandwidth", {{"threads", a.threads}, {"bytes", bw_bytes}, {"method", "xor-u64"},
                       {"best_s", best_s}, {"gb_per_s", gbps}});
    Emit("bound", {{"bytes_per_token", bytes_per_token},
                   {"parts", {{"decoder_layers", bytes_decoder},
                              {"lm_head", bytes_lm_head},
                              {"cross_kv", bytes_cross}}},
                   {"gb_per_s", gbps},
                   {"bound_ms_per_token", bound_ms}});
  }
  nlohmann::json result = {{"impl", "cpp-engine"},
                           {"device", a.device},
                           {"threads", a.threads},
                           {"tokens", a.tokens},
                           {"src_tokens", src_tokens},
                           {"text", a.text},
                           {"source", a.source},
                           {"target", a.target},
                           {"repeats", a.repeats},
                           {"times_s", times},
                           {"best_s", sorted.front()},
                           {"median_s", median},
                           {"ms_per_token", ms_per_token},
                           {"ids", ids}};
  result["bound_ratio"] = a.bandwidth ? nlohmann::json(ms_per_token / bound_ms) : nlohmann::json();
  Emit("result", result);

  if (a.kernels) {
    auto k = TimeOutputProjection(a.model, 5);
    if (!k.ok()) {
      std::fprintf(stderr, "nllb_engine_bench: %s\n", k.status().ToString().c_str());
      return 1;
    }
    nlohmann::json fields = {{"threads", a.threads}, {"rows", v}, {"d", d},
                             {"what", "[1, d] (and [4, d]) x [vocab, d]^T, best of 5"}};
    for (const auto& [name, s] : *k) fields[name + "_ms"] = s * 1000;
    Emit("kernels", fields);
  }

  // Continuous batching: tokens/s at each concurrency (best of --repeats after one warm-up),
  // then the same concurrency with as many (and three times as many) more sequences held (paused)
  // for the whole decode, their rows masked or the active rows selected.
  using HeldRows = vox::NllbEngine::HeldRows;
  struct Run {
    int held;
    HeldRows policy;
    const char* name;
  };
  for (int c : a.stepper) {
    for (const Run& run : {Run{0, HeldRows::kAuto, "none"}, Run{c, HeldRows::kMask, "mask"},
                           Run{c, HeldRows::kSelect, "select"},
                           Run{3 * c, HeldRows::kMask, "mask"},
                           Run{3 * c, HeldRows::kSelect, "select"}}) {
      const int held = run.held;
      StepperTiming best;
      for (int r = 0; r <= a.repeats; ++r) {
        StepperTiming t;
        if (absl::Status s = TimeStepper(**engine, a, c, held, run.policy, &t); !s.ok()) {
          std::fprintf(stderr, "nllb_engine_bench: stepper: %s\n", s.ToString().c_str());
          return 1;
        }
        if (r == 1 || (r > 1 && t.total_s < best.total_s)) best = t;
      }
      Emit("stepper", {{"device", a.device},
                       {"model", a.model},
                       {"threads", a.threads},
                       {"active", c},
                       {"held", held},
                       {"held_rows", run.name},
                       {"tokens", a.tokens},
                       {"join_step_ms", best.join_s * 1000},
                       {"step_ms_median", Median(best.steps_s) * 1000},
                       {"total_s", best.total_s},
                       {"tokens_per_s", c * a.tokens / best.total_s},
                       {"what", "fixed-length greedy, all joining at step 0; `held` more joined, then paused"}});
    }
  }
  return 0;
}
