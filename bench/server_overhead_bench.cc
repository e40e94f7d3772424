// Server overhead (issue 2): latency of one Translate call made on the engine in process vs the
// same call through voxd's gRPC service on loopback, in one run, on the tiny NLLB model.
//
//   server_overhead_bench [--model DIR] [--iterations N] [--warmup N] [--threads N]
//
// Two instances of the same model are loaded: one called directly on this thread, one owned by
// a VoxServer worker (as in voxd) and called through a gRPC stub on 127.0.0.1. Calls alternate
// (direct, gRPC, direct, ...) so both see the same machine state. Prints p50/p90/p99 of each
// and the difference; the goal is <= 0.3 ms at p50. A third path serves a no-op engine the same
// way, isolating the RPC + queue hop from model compute (and from the machine's load, which
// stretches a loaded model call far more than it stretches a thread hop).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "engines/core/manifest.h"
#include "engines/core/translation_engine.h"
#include "engines/torch/device.h"
#include "server/config.h"
#include "server/model_loader.h"
#include "server/model_registry.h"
#include "server/vox_server.h"
#include "vox/v1/translation.grpc.pb.h"

namespace {

// Answers at once: what remains of a gRPC call is the server's own overhead.
class NoopEngine : public vox::TranslationEngine {
 public:
  NoopEngine() {
    info_.name = "noop";
    info_.kind = "translation";
    info_.architecture = "noop";
    info_.languages = {"eng_Latn", "fra_Latn"};
  }
  const vox::ModelInfo& info() const override { return info_; }
  bool SupportsPair(const std::string& s, const std::string& t) const override {
    return s == "eng_Latn" && t == "fra_Latn";
  }
  absl::Status Validate(const std::vector<std::string>&, const std::string&, const std::string&,
                        const vox::TranslationParams&) const override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<vox::TranslationOutput>> Translate(
      const std::vector<std::string>& texts, const std::string&, const std::string&,
      const vox::TranslationParams&, const vox::StopCheck&) override {
    std::vector<vox::TranslationOutput> out(texts.size());
    for (auto& o : out) o.text = "noop";
    return out;
  }

 private:
  vox::ModelInfo info_;
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "server_overhead_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  vox::PrepareProcessForModels(argv);
  std::string model_dir = std::string(VOX_TINY_DIR) + "/models/nllb-tiny";
  int iterations = 2000, warmup = 100, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") {
      model_dir = value;
    } else if (flag == "--iterations" && absl::SimpleAtoi(value, &iterations) && iterations > 0) {
    } else if (flag == "--warmup" && absl::SimpleAtoi(value, &warmup) && warmup >= 0) {
    } else if (flag == "--threads" && absl::SimpleAtoi(value, &threads) && threads > 0) {
    } else {
      return Fail("usage: server_overhead_bench [--model DIR] [--iterations N] [--warmup N] "
                  "[--threads N]");
    }
  }
  vox::ConfigureThreads(threads, threads);
  vox::EngineOptions options;
  options.device = "cpu";
  options.intra_op_threads = threads;
  options.blas_threads = threads;
  vox::ModelLoaders loaders = vox::DefaultModelLoaders();
  auto loader = loaders.translation.find("nllb-m2m100");
  if (loader == loaders.translation.end()) return Fail("this build has no NLLB engine");

  auto manifest = vox::LoadManifest(model_dir, /*verify_checksums=*/false);
  if (!manifest.ok()) return Fail(std::string(manifest.status().message()));
  auto direct = loader->second("direct", *manifest, options);
  if (!direct.ok()) return Fail(std::string(direct.status().message()));
  auto served = loader->second("served", *manifest, options);
  if (!served.ok()) return Fail(std::string(served.status().message()));

  auto registry = std::make_unique<vox::ModelRegistry>();
  {
    std::vector<std::unique_ptr<vox::TranslationEngine>> replicas;
    replicas.push_back(std::move(*served));
    if (absl::Status s = registry->AddTranslation(
            std::move(replicas), vox::SchedulerOptions{}, vox::Clock::Real(),
            [&] { loaders.configure_worker_thread(options); });
        !s.ok()) {
      return Fail(std::string(s.message()));
    }
  }
  if (absl::Status s = registry->WarmUp(); !s.ok()) return Fail(std::string(s.message()));
  vox::ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.access_log = false;
  vox::VoxServer server(config, std::move(registry));
  if (absl::Status s = server.Start(); !s.ok()) return Fail(std::string(s.message()));

  auto noop_registry = std::make_unique<vox::ModelRegistry>();
  if (absl::Status s = noop_registry->AddTranslation(std::make_unique<NoopEngine>());
      !s.ok()) {
    return Fail(std::string(s.message()));
  }
  vox::VoxServer noop_server(config, std::move(noop_registry));
  if (absl::Status s = noop_server.Start(); !s.ok()) return Fail(std::string(s.message()));
  auto noop_stub = vox::v1::TranslationService::NewStub(
      grpc::CreateChannel(noop_server.address(), grpc::InsecureChannelCredentials()));

  const std::string text = "The quick brown fox jumps over the lazy dog.";
  const std::vector<std::string> texts = {text};
  vox::TranslationParams params;
  params.max_length = 16;
  vox::v1::TranslateRequest request;
  request.add_texts(text);
  request.set_source_language("eng_Latn");
  request.set_target_language("fra_Latn");
  request.mutable_options()->set_max_length(params.max_length);

  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  auto stub = vox::v1::TranslationService::NewStub(channel);
  std::vector<double> direct_ms, grpc_ms, noop_ms, served_compute_ms;
  std::string direct_text, grpc_text;
  for (int i = 0; i < warmup + iterations; ++i) {
    absl::Time t0 = absl::Now();
    auto out = (*direct)->Translate(texts, "eng_Latn", "fra_Latn", params, nullptr);
    absl::Time t1 = absl::Now();
    if (!out.ok()) return Fail(std::string(out.status().message()));
    direct_text = (*out)[0].text;

    grpc::ClientContext context;
    vox::v1::TranslateResponse response;
    absl::Time t2 = absl::Now();
    grpc::Status s = stub->Translate(&context, request, &response);
    absl::Time t3 = absl::Now();
    if (!s.ok()) return Fail(s.error_message());
    grpc_text = response.translations(0).text();

    grpc::ClientContext noop_context;
    vox::v1::TranslateResponse noop_response;
    absl::Time t4 = absl::Now();
    s = noop_stub->Translate(&noop_context, request, &noop_response);
    absl::Time t5 = absl::Now();
    if (!s.ok()) return Fail(s.error_message());
    if (i >= warmup) {
      noop_ms.push_back(absl::ToDoubleMilliseconds(t5 - t4));
      served_compute_ms.push_back(response.compute_seconds() * 1000);
      direct_ms.push_back(absl::ToDoubleMilliseconds(t1 - t0));
      grpc_ms.push_back(absl::ToDoubleMilliseconds(t3 - t2));
    }
  }
  server.Shutdown(absl::Seconds(5));
  noop_server.Shutdown(absl::Seconds(5));
  if (direct_text != grpc_text) {
    return Fail("the two paths translated differently: '" + direct_text + "' vs '" + grpc_text +
                "'");
  }
  std::printf("Server overhead: tiny NLLB (%s), 1 text, max_length %d, %d iterations after %d "
              "warm-up, %d thread(s)\n",
              model_dir.c_str(), params.max_length, iterations, warmup, threads);
  std::printf("%-22s %9s %9s %9s\n", "path", "p50 ms", "p90 ms", "p99 ms");
  std::printf("%-22s %9.3f %9.3f %9.3f\n", "in-process engine", Percentile(direct_ms, 0.5),
              Percentile(direct_ms, 0.9), Percentile(direct_ms, 0.99));
  std::printf("%-22s %9.3f %9.3f %9.3f\n", "gRPC loopback", Percentile(grpc_ms, 0.5),
              Percentile(grpc_ms, 0.9), Percentile(grpc_ms, 0.99));
  const double diff50 = Percentile(grpc_ms, 0.5) - Percentile(direct_ms, 0.5);
  const double diff99 = Percentile(grpc_ms, 0.99) - Percentile(direct_ms, 0.99);
  std::printf("%-22s %9.3f %9s %9.3f   (goal: <= 0.300 at p50: %s)\n", "difference", diff50, "",
              diff99, diff50 <= 0.3 ? "met" : "NOT met");
  std::printf("%-22s %9.3f %9.3f %9.3f   (the served engine's own time, as voxd reports it)\n",
              "  of which compute", Percentile(served_compute_ms, 0.5),
              Percentile(served_compute_ms, 0.9), Percentile(served_compute_ms, 0.99));
  std::printf("%-22s %9.3f %9.3f %9.3f   (whole call through gRPC, engine does nothing)\n",
              "gRPC, no-op engine", Percentile(noop_ms, 0.5), Percentile(noop_ms, 0.9),
              Percentile(noop_ms, 0.99));
  std::printf("output: %s\n", grpc_text.c_str());
  return 0;
}
