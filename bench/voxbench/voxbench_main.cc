// voxbench: a load generator for voxd (see docs/voxbench.md and --help).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "bench/voxbench/load_runner.h"
#include "bench/voxbench/options.h"
#include "bench/voxbench/report.h"

namespace {

constexpr int kExitCallsFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitOutput = 3;

}  // namespace

int main(int argc, char** argv) {
  using namespace vox::bench;
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<BenchOptions> options = ParseFlags(args);
  if (!options.ok()) {
    std::cerr << "voxbench: " << options.status().message() << "\n\n" << UsageText();
    return kExitUsage;
  }
  if (options->help) {
    std::cout << UsageText();
    return 0;
  }
  absl::StatusOr<RequestPlan> plan = BuildRequests(*options);
  if (!plan.ok()) {
    std::cerr << "voxbench: " << plan.status().message() << "\n";
    return kExitUsage;
  }

  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      vox::ChannelCredentialsFor(options->security);
  if (!credentials.ok()) {
    std::cerr << "voxbench: " << credentials.status().message() << "\n";
    return kExitUsage;
  }
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);
  channel_args.SetServiceConfigJSON(vox::bench::ChannelServiceConfig(*options));
  vox::AddSecurityChannelArgs(options->security, &channel_args);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options->server, *credentials, channel_args);

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  auto on_progress = [&](const ProgressSnapshot& p, bool final) {
    if (!options->progress) return;
    const std::string line = ProgressLine(p);
    if (tty) {
      std::fprintf(stderr, "\r%-70s%s", line.c_str(), final ? "\n" : "");
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  };

  LoadRunner runner(*options, *plan, channel, on_progress);
  const RunResult run = runner.Run();
  if (!run.connected) {
    std::cerr << "voxbench: could not connect to " << options->server
              << " before the first call; calls were still made and counted\n";
  }

  const std::string report = options->format == ReportFormat::kJson
                                 ? MakeJsonReport(*options, *plan, run).dump(2) + "\n"
                                 : MakeTextReport(*options, run);
  if (options->out.empty()) {
    std::cout << report << std::flush;
  } else {
    std::ofstream out(options->out, std::ios::binary | std::ios::trunc);
    out << report;
    out.close();
    if (!out) {
      std::cerr << "voxbench: cannot write the report to '" << options->out << "'\n";
      return kExitOutput;
    }
  }
  for (const CallResult& c : run.calls) {
    if (c.code != grpc::StatusCode::OK) return kExitCallsFailed;
  }
  return 0;
}
