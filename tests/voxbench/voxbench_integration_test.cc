// voxbench against a real voxd on loopback (tiny NLLB model): the JSON report of a Translate run,
// the text report and progress lines, an unreachable server, the rate limit, bad flags.
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/voxd_process.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ChildProcess;

std::string TempPath(const std::string& name) {
  return (fs::path(::testing::TempDir()) / ("voxbench-" + name)).string();
}

struct BenchRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

BenchRun RunVoxbench(const std::vector<std::string>& args, const std::string& name) {
  std::vector<std::string> argv = {VOXBENCH_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p;
  BenchRun r;
  const absl::Status started = p.Start(argv, TempPath(name + ".stderr"));
  EXPECT_TRUE(started.ok()) << started;
  const absl::StatusOr<int> exit_code = p.Wait(0, absl::Minutes(3));
  r.exit_code = exit_code.ok() ? *exit_code : -1;
  r.out = p.RestOfStdout();
  r.err = p.Stderr();
  return r;
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// A loopback port nothing listens on: bound, then released.
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class VoxbenchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Only the translation model: the test does not depend on which speech engines voxd has.
    const fs::path models = fs::path(::testing::TempDir()) / "voxbench-models";
    fs::remove_all(models);
    fs::create_directories(models);
    fs::copy(std::string(VOX_TINY_DIR) + "/models/nllb-tiny", models / "nllb-tiny",
             fs::copy_options::recursive);
    voxd_ = new ChildProcess();
    const absl::Status started =
        voxd_->Start({VOXD_BINARY, "--listen", "127.0.0.1:0", "--models", models.string(),
                      "--threads", "1"},
                     TempPath("voxd.stderr"));
    ASSERT_TRUE(started.ok()) << started;
    const absl::StatusOr<std::string> read = voxd_->ReadLine(absl::Minutes(3));
    ASSERT_TRUE(read.ok()) << read.status() << "\nvoxd stderr:\n" << voxd_->Stderr();
    const std::string& line = *read;
    const std::string prefix = "voxd listening on ";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
    address_ = new std::string(line.substr(prefix.size()));
  }
  static void TearDownTestSuite() {
    delete voxd_;
    voxd_ = nullptr;
    delete address_;
    address_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(address_, nullptr) << "voxd did not start"; }

  static ChildProcess* voxd_;
  static std::string* address_;
};

ChildProcess* VoxbenchTest::voxd_ = nullptr;
std::string* VoxbenchTest::address_ = nullptr;

TEST_F(VoxbenchTest, TranslateJsonReport) {
  const std::string out = TempPath("translate.json");
  fs::remove(out);
  const BenchRun r = RunVoxbench({"--server", *address_, "--call", "translate", "--total", "50",
                             "--concurrency", "4", "--text", "Hello, how are you?", "--from",
                             "eng_Latn", "--to", "fra_Latn", "--format", "json", "--out", out},
                            "translate");
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nvoxd:\n" << voxd_->Stderr();
  const nlohmann::json j = ReadJson(out);
  ASSERT_FALSE(j.is_discarded()) << "report is not JSON";
  EXPECT_EQ(j["count"], 50);
  EXPECT_EQ(j["statusCodeDistribution"], (nlohmann::json{{"OK", 50}}));
  EXPECT_TRUE(j["errorDistribution"].empty());
  EXPECT_EQ(j["endReason"], "normal");
  EXPECT_EQ(j["options"]["call"], "vox.v1.TranslationService.Translate");
  EXPECT_EQ(j["options"]["c"], 4);
  EXPECT_EQ(j["details"].size(), 50u);

  // Latencies in ns, percentiles ordered and inside [fastest, slowest].
  const int64_t fastest = j["fastest"].get<int64_t>();
  const int64_t slowest = j["slowest"].get<int64_t>();
  const int64_t average = j["average"].get<int64_t>();
  EXPECT_GT(fastest, 0);
  EXPECT_LE(fastest, average);
  EXPECT_LE(average, slowest);
  ASSERT_EQ(j["latencyDistribution"].size(), 7u);
  int64_t previous = fastest;
  for (const nlohmann::json& d : j["latencyDistribution"]) {
    const int64_t v = d["latency"].get<int64_t>();
    EXPECT_GE(v, previous) << d;
    EXPECT_LE(v, slowest) << d;
    previous = v;
  }
  const nlohmann::json& tail = j["latencyStats"]["latencyDistribution"];
  ASSERT_EQ(tail.size(), 4u);  // p50 p90 p99 p99.9
  for (size_t i = 1; i < tail.size(); ++i) {
    EXPECT_GE(tail[i]["latency"].get<int64_t>(), tail[i - 1]["latency"].get<int64_t>());
  }
  EXPECT_LE(tail[3]["latency"].get<int64_t>(), slowest);
  // Every detail latency lies within [fastest, slowest]; the histogram counts every call.
  for (const nlohmann::json& d : j["details"]) {
    EXPECT_EQ(d["status"], "OK");
    EXPECT_GE(d["latency"].get<int64_t>(), fastest);
    EXPECT_LE(d["latency"].get<int64_t>(), slowest);
  }
  int64_t in_histogram = 0;
  for (const nlohmann::json& b : j["histogram"]) in_histogram += b["count"].get<int64_t>();
  EXPECT_EQ(in_histogram, 50);
  // rps = count / total; the total covers at least the slowest call.
  const int64_t total = j["total"].get<int64_t>();
  EXPECT_GE(total, slowest);
  EXPECT_NEAR(j["rps"].get<double>(), 50 / (total / 1e9), 1e-6 * j["rps"].get<double>());
  // The final progress line went to stderr (not a TTY: one line per update).
  EXPECT_THAT(r.err, HasSubstr("50 done, 0 in flight, 0 errors"));
}

TEST_F(VoxbenchTest, TextReportOnStdout) {
  const BenchRun r = RunVoxbench({"--server", *address_, "--call", "translate", "--total", "6",
                             "--concurrency", "2", "--from", "eng_Latn", "--to", "fra_Latn",
                             "--priority", "high", "--no-progress"},
                            "text");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Count:        6\n"));
  EXPECT_THAT(r.out, HasSubstr("[OK]\t6 responses"));
  EXPECT_THAT(r.out, HasSubstr("p99.9"));
  EXPECT_EQ(r.err, "");  // --no-progress
}

TEST_F(VoxbenchTest, ServerErrorsAreCountedByCode) {
  // An unknown language is INVALID_ARGUMENT for every call: counted, exit status 1.
  const std::string out = TempPath("invalid.json");
  const BenchRun r = RunVoxbench({"--server", *address_, "--call", "translate", "--total", "5",
                             "--from", "eng_latn", "--to", "fra_Latn", "--format", "json",
                             "--out", out},
                            "invalid");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const nlohmann::json j = ReadJson(out);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["statusCodeDistribution"], (nlohmann::json{{"InvalidArgument", 5}}));
  ASSERT_EQ(j["errorDistribution"].size(), 1u);
  EXPECT_THAT(j["errorDistribution"].begin().key(),
              HasSubstr("rpc error: code = InvalidArgument desc = "));
  EXPECT_THAT(j["errorDistribution"].begin().key(), HasSubstr("eng_latn"));
}

// Synthesize (server streaming) through voxd's built-in espeak-ng voice: time to first audio and
// the gaps are present, positive and consistent with the call latencies and message counts.
TEST_F(VoxbenchTest, SynthesizeStreamingFigures) {
  const std::string out = TempPath("synthesize.json");
  const BenchRun r = RunVoxbench({"--server", *address_, "--call", "synthesize", "--total", "6",
                                  "--concurrency", "2", "--from", "eng_Latn", "--text",
                                  "Hello there. This is a short test of streaming speech.",
                                  "--encoding", "opus", "--format", "json", "--out", out},
                                 "synthesize");
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nvoxd:\n" << voxd_->Stderr();
  const nlohmann::json j = ReadJson(out);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["statusCodeDistribution"], (nlohmann::json{{"OK", 6}}));
  EXPECT_EQ(j["options"]["call"], "vox.v1.SpeechService.Synthesize");
  const nlohmann::json& ttfa = j["timeToFirstAudio"];
  ASSERT_EQ(ttfa["count"], 6);
  EXPECT_GT(ttfa["fastest"].get<int64_t>(), 0);
  // The first audio arrives before the call ends.
  EXPECT_LE(ttfa["fastest"].get<int64_t>(), j["fastest"].get<int64_t>());
  EXPECT_LE(ttfa["slowest"].get<int64_t>(), j["slowest"].get<int64_t>());
  int64_t previous = ttfa["fastest"].get<int64_t>();
  for (const nlohmann::json& d : ttfa["latencyDistribution"]) {
    EXPECT_GE(d["latency"].get<int64_t>(), previous);
    previous = d["latency"].get<int64_t>();
  }
  EXPECT_LE(previous, ttfa["slowest"].get<int64_t>());
  // One gap between each pair of consecutive audio messages of a call.
  const int64_t messages = j["audio"]["messages"].get<int64_t>();
  EXPECT_GT(messages, 6);
  EXPECT_EQ(j["audioGaps"]["count"].get<int64_t>(), messages - 6);
  EXPECT_GE(j["audioGaps"]["fastest"].get<int64_t>(), 0);
  EXPECT_GT(j["audio"]["seconds"].get<double>(), 0.5);  // six spoken sentences
  EXPECT_EQ(j["audio"]["okCallsWithoutAudio"], 0);
}

// The same two-segment session through SpeechTranslate (pipelined) and as Translate then
// Synthesize per segment (translate-synthesize), against voxd's tiny NLLB and built-in espeak-ng:
// both report every segment; one after the other, each segment's interval is its whole latency,
// while in the pipelined session an interval never exceeds its segment's latency.
TEST_F(VoxbenchTest, SpeechTranslateAndItsSequentialBaseline) {
  const std::vector<std::string> session = {
      "--server", *address_, "--total", "3", "--concurrency", "1", "--from", "eng_Latn", "--to",
      "spa_Latn", "--text", "I would like a coffee.", "--text", "See you tomorrow.",
      "--encoding", "opus", "--format", "json"};
  nlohmann::json reports[2];
  const char* const calls[2] = {"speech-translate", "translate-synthesize"};
  for (int i = 0; i < 2; ++i) {
    const std::string out = TempPath(std::string(calls[i]) + ".json");
    std::vector<std::string> args = session;
    args.insert(args.end(), {"--call", calls[i], "--out", out});
    const BenchRun r = RunVoxbench(args, calls[i]);
    ASSERT_EQ(r.exit_code, 0) << calls[i] << ": " << r.err << "\nvoxd:\n" << voxd_->Stderr();
    reports[i] = ReadJson(out);
    ASSERT_FALSE(reports[i].is_discarded()) << calls[i];
    const nlohmann::json& j = reports[i];
    EXPECT_EQ(j["statusCodeDistribution"], (nlohmann::json{{"OK", 3}})) << calls[i];
    EXPECT_EQ(j["segmentLatency"]["count"], 6) << calls[i];
    EXPECT_EQ(j["segmentInterval"]["count"], 6) << calls[i];
    EXPECT_GT(j["segmentLatency"]["fastest"].get<int64_t>(), 0) << calls[i];
    EXPECT_LE(j["segmentLatency"]["slowest"].get<int64_t>(), j["slowest"].get<int64_t>());
    EXPECT_LE(j["segmentInterval"]["slowest"].get<int64_t>(),
              j["segmentLatency"]["slowest"].get<int64_t>())
        << calls[i];
    EXPECT_EQ(j["latencyByStatus"]["OK"]["count"], 3) << calls[i];
  }
  EXPECT_EQ(reports[0]["options"]["call"], "vox.v1.SpeechTranslationService.SpeechTranslate");
  EXPECT_EQ(reports[1]["options"]["call"],
            "vox.v1.TranslationService.Translate+vox.v1.SpeechService.Synthesize");
  EXPECT_EQ(reports[1]["segmentInterval"], reports[1]["segmentLatency"]);
  // The same session data in both reports.
  EXPECT_EQ(reports[0]["options"]["data"], reports[1]["options"]["data"]);
  // Both spoke.
  EXPECT_GT(reports[0]["audio"]["seconds"].get<double>(), 0);
  EXPECT_GT(reports[1]["audio"]["seconds"].get<double>(), 0);
}

// Seconds since midnight UTC of a report timestamp ("2026-11-26T03:12:23.123456Z").
double SecondsOfDay(const std::string& ts) {
  const size_t t = ts.find('T');
  return std::stod(ts.substr(t + 1, 2)) * 3600 + std::stod(ts.substr(t + 4, 2)) * 60 +
         std::stod(ts.substr(t + 7, 9));
}

TEST_F(VoxbenchTest, RateCapsTheCallsStarted) {
  // 2 s at 2 calls per second: call i starts no earlier than i / 2 s after the first (slots at
  // 0, 0.5, 1.0, 1.5 s), so at most 4 calls, however fast the server is; the run ends by its
  // duration. Unpaced, the tiny model answers far more than 4 calls in 2 s.
  const std::string out = TempPath("rate.json");
  const BenchRun r = RunVoxbench({"--server", *address_, "--call", "translate", "--duration",
                                  "2s", "--rate", "2", "--concurrency", "4", "--from",
                                  "eng_Latn", "--to", "fra_Latn", "--format", "json", "--out",
                                  out},
                                 "rate");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = ReadJson(out);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["endReason"], "timeout");
  EXPECT_GE(j["count"].get<int>(), 1);
  EXPECT_LE(j["count"].get<int>(), 4);
  EXPECT_EQ(j["statusCodeDistribution"]["OK"], j["count"]);
  std::vector<double> starts;
  for (const nlohmann::json& d : j["details"]) {
    double t = SecondsOfDay(d["timestamp"]);
    if (!starts.empty() && t < starts.front() - 43200) t += 86400;  // the run crossed midnight
    starts.push_back(t);
  }
  std::sort(starts.begin(), starts.end());
  for (size_t i = 1; i < starts.size(); ++i) {
    // 1 ms of slack for the wall clock against the monotonic schedule.
    EXPECT_GE(starts[i] - starts[0], 0.5 * i - 0.001) << "call " << i;
  }
}

TEST(VoxbenchStandaloneTest, UnreachableServerCountsUnavailable) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const std::string out = TempPath("unreachable.json");
  const BenchRun r = RunVoxbench({"--server", "127.0.0.1:" + std::to_string(port), "--call",
                             "translate", "--total", "5", "--concurrency", "2",
                             "--connect-timeout", "2s", "--deadline", "2s", "--format", "json",
                             "--out", out},
                            "unreachable");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("could not connect"));
  const nlohmann::json j = ReadJson(out);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["count"], 5);
  EXPECT_EQ(j["statusCodeDistribution"], (nlohmann::json{{"Unavailable", 5}}));
  ASSERT_EQ(j["errorDistribution"].size(), 1u);
  EXPECT_THAT(j["errorDistribution"].begin().key(), HasSubstr("code = Unavailable"));
  EXPECT_EQ(j["voxbench"]["connected"], false);
}

TEST(VoxbenchStandaloneTest, BadFlagsAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--call", "translate"}, "--server HOST:PORT is required"},
      {{"--server", "127.0.0.1:1", "--call", "translate", "--concurrency", "0"},
       "--concurrency: '0' is not valid"},
      {{"--server", "127.0.0.1:1", "--call", "transcribe"}, "allowed: translate, synthesize"},
      {{"--server", "127.0.0.1:1", "--call", "translate", "--frobnicate"}, "unknown flag"},
      {{"--server", "127.0.0.1:1", "--call", "translate", "--data", "{\"nope\": 1}"},
       "vox.v1.TranslateRequest"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const BenchRun r = RunVoxbench(cases[i].args, "usage" + std::to_string(i));
    EXPECT_EQ(r.exit_code, 2) << cases[i].says;
    EXPECT_THAT(r.err, HasSubstr(cases[i].says));
    EXPECT_EQ(r.out, "");
  }
  const BenchRun help = RunVoxbench({"--help"}, "help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("usage: voxbench"));
}

}  // namespace
}  // namespace vox
