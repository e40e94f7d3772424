// voxd: loads every exported model under --models, warms each up, serves vox.v1 over gRPC,
// and prints "voxd listening on HOST:PORT" once SERVING. SIGTERM/SIGINT drain and exit 0;
// SIGHUP reloads the TLS files and the token file.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <pthread.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engines/torch/device.h"
#include "server/config.h"
#include "server/model_loader.h"
#include "server/model_registry.h"
#include "server/vox_server.h"

namespace {

pthread_t g_main_thread;

// Threads started before main (OpenBLAS starts its pool when the library loads) do not block the
// shutdown signals; with the default action the kernel may pick one of them and SIGTERM kills
// voxd at once. Caught instead, a stray delivery is passed on to the main thread's sigwait.
extern "C" void ForwardToMainThread(int signal) { pthread_kill(g_main_thread, signal); }

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "voxd: error: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  vox::PrepareProcessForModels(argv);  // first: it may re-execute voxd
  // Block the shutdown signals in every thread (gRPC's and the engines' threads inherit the
  // mask); the main thread takes them synchronously with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  g_main_thread = pthread_self();
  struct sigaction forward = {};
  forward.sa_handler = ForwardToMainThread;
  sigfillset(&forward.sa_mask);
  sigaction(SIGTERM, &forward, nullptr);
  sigaction(SIGINT, &forward, nullptr);
  sigaction(SIGHUP, &forward, nullptr);

  vox::ServerConfig config;
  const std::vector<std::string> args(argv, argv + argc);
  absl::StatusOr<vox::CommandLine> cl = vox::ParseCommandLine(args, &config);
  if (!cl.ok()) return Fail(std::string(cl.status().message()), 2);
  if (cl->help) {
    std::fputs(vox::UsageText().c_str(), stdout);
    return 0;
  }
  if (absl::Status s = vox::ValidateConfig(config); !s.ok()) {
    return Fail(std::string(s.message()), 2);
  }

  const absl::Time start = absl::Now();
  // The metrics endpoint comes first: engines report into it while they load (Apertium's
  // pipeline restarts), and a scrape during a long model load already answers.
  absl::StatusOr<std::unique_ptr<vox::Metrics>> metrics =
      vox::Metrics::Create(config.metrics_listen);
  if (!metrics.ok()) return Fail(std::string(metrics.status().message()), 1);
  auto registry = std::make_unique<vox::ModelRegistry>();
  if (absl::Status s = vox::LoadModels(config, vox::DefaultModelLoaders(), registry.get());
      !s.ok()) {
    return Fail(std::string(s.message()), 1);
  }
  if (absl::Status s = vox::AddBuiltinEngines(config, registry.get(), metrics->get()); !s.ok()) {
    return Fail(std::string(s.message()), 1);
  }
  if (registry->empty()) {
    return Fail(absl::StrCat("no models found in ",
                             config.models_dir.empty() ? "(no --models given)" : config.models_dir,
                             ": expected one subdirectory per exported model, each with a "
                             "manifest.json (tools/export_nllb.py writes them; the tiny test "
                             "models are built by the tiny_models target), and no built-in "
                             "engine could serve (--builtin ",
                             vox::BuiltinModeName(config.builtin.translation), ")"),
                1);
  }
  if (absl::Status s = registry->WarmUp(); !s.ok()) return Fail(std::string(s.message()), 1);

  vox::VoxServer server(config, std::move(registry), std::move(*metrics));
  if (absl::Status s = server.Start(); !s.ok()) return Fail(std::string(s.message()), 1);
  std::fprintf(stderr, "voxd: serving %zu models, ready in %.2f s\n",
               server.registry().Models().size(), absl::ToDoubleSeconds(absl::Now() - start));
  if (server.metrics()->port() > 0) {
    const std::string& listen = config.metrics_listen;
    std::fprintf(stderr, "voxd: metrics at http://%s:%d/metrics\n",
                 listen.substr(0, listen.rfind(':')).c_str(), server.metrics()->port());
  }
  std::printf("voxd listening on %s\n", server.address().c_str());
  std::fflush(stdout);

  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    const absl::Status reloaded = server.Reload();
    if (reloaded.ok()) {
      std::fprintf(stderr, "voxd: SIGHUP: reloaded the TLS files and the token file\n");
    } else {
      std::fprintf(stderr, "voxd: SIGHUP: %s\n", std::string(reloaded.message()).c_str());
    }
  }
  std::fprintf(stderr, "voxd: %s received; draining (up to %.0f s)\n",
               signal == SIGTERM ? "SIGTERM" : "SIGINT",
               absl::ToDoubleSeconds(config.shutdown_grace));
  server.Shutdown(config.shutdown_grace);
  std::fprintf(stderr, "voxd: stopped\n");
  return 0;
}
