#include "server/metrics/metrics.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/synchronization/notification.h"
#include "engines/core/clock.h"
#include "server/scheduler/continuous_batcher.h"
#include "tests/metrics/scrape.h"

namespace vox {
namespace {

using ::testing::HasSubstr;

using ::vox::testing::Body;
using ::vox::testing::HttpGet;
using ::vox::testing::Sample;

std::unique_ptr<Metrics> Serve() {
  auto m = Metrics::Create("127.0.0.1:0");
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return nullptr;
  EXPECT_GT((*m)->port(), 0);
  return std::move(*m);
}

// Everything a busy voxd would record, once.
void ObserveOneOfEach(Metrics& m, SchedulerObserver& obs) {
  m.RequestFinished("Translate", absl::StatusCode::kOk, absl::Milliseconds(12));
  m.RequestFinished("Translate", absl::StatusCode::kResourceExhausted, absl::Microseconds(300));
  m.StreamOpened("Synthesize");
  m.SessionOpened();
  m.TimeToFirstAudio("Synthesize", absl::Milliseconds(80));
  m.AudioChunkGap("Synthesize", absl::Milliseconds(20));
  m.RealTimeFactor("xtts", 0.4);
  m.TokensGenerated("nllb", 17);
  m.CodesGenerated("xtts", 40);
  m.Compute("nllb", "tokenize", absl::Microseconds(700));
  m.Rejected("nllb", "invalid_argument");
  m.PipelineRestart("apertium", "eng-spa");
  m.VoiceFileSkipped();
  m.VoiceFileSkipped();
  m.SetCreatedVoices(5);
  m.SegmentFinished(absl::Milliseconds(300));
  m.AuthRejected("invalid_token");
  m.TokenAdmitted("app");
  m.TokenAdmitted("app");
  m.QuotaRejected("app", "requests_per_second");
  m.ConfigReloaded("tls", false);
  ModelInfo info;
  info.name = "nllb-tiny";
  info.kind = "translation";
  info.architecture = "nllb-m2m100";
  info.device = "cpu";
  info.dtype = "float32";
  m.SetModelInfo(info);
  obs.QueueDepth(3);
  obs.RunningBatch(5);
  obs.PausedStreams(1);
  obs.QueueWait(absl::Milliseconds(2));
  obs.Batch(4, absl::Milliseconds(7));
  obs.Rejected(RejectReason::kQueueFull);
  obs.Rejected(RejectReason::kOverloaded);
}

TEST(MetricsTest, BadListenAddressIsInvalidArgumentNamingIt) {
  auto m = Metrics::Create("localhost");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), HasSubstr("'localhost'"));
  EXPECT_THAT(m.status().message(), HasSubstr("HOST:PORT"));
  EXPECT_FALSE(Metrics::Create("127.0.0.1:70000").ok());
}

TEST(MetricsTest, PortInUseIsUnavailableNamingAddress) {
  auto first = Serve();
  ASSERT_NE(first, nullptr);
  const std::string address = absl::StrCat("127.0.0.1:", first->port());
  auto second = Metrics::Create(address);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(address));
}

TEST(MetricsTest, EndpointServesEveryMetricWithItsLabels) {
  auto m = Serve();
  ASSERT_NE(m, nullptr);
  auto obs = m->ObserverFor("nllb", "decode");
  ObserveOneOfEach(*m, *obs);
  const std::string response = HttpGet(m->port(), "/metrics");
  ASSERT_THAT(response, HasSubstr("200 OK"));
  const std::string text = Body(response);
  struct Want {
    std::string name;
    std::vector<std::string> labels;
    double value;
  };
  const std::vector<Want> wants = {
      {"vox_requests_total", {"method=\"Translate\"", "code=\"OK\""}, 1},
      {"vox_requests_total", {"method=\"Translate\"", "code=\"RESOURCE_EXHAUSTED\""}, 1},
      {"vox_request_duration_seconds_count", {"method=\"Translate\"", "code=\"OK\""}, 1},
      {"vox_request_duration_seconds_sum", {"method=\"Translate\"", "code=\"OK\""}, 0.012},
      // 12 ms falls in the 25 ms bucket, not the 10 ms one.
      {"vox_request_duration_seconds_bucket", {"code=\"OK\"", "le=\"0.01\""}, 0},
      {"vox_request_duration_seconds_bucket", {"code=\"OK\"", "le=\"0.025\""}, 1},
      {"vox_request_duration_seconds_bucket", {"code=\"OK\"", "le=\"0.0005\""}, 0},
      {"vox_request_duration_seconds_bucket", {"code=\"RESOURCE_EXHAUSTED\"", "le=\"0.0005\""}, 1},
      {"vox_inflight_streams", {"method=\"Synthesize\""}, 1},
      {"vox_speech_translate_sessions_open", {}, 1},
      {"vox_time_to_first_audio_seconds_count", {"method=\"Synthesize\""}, 1},
      {"vox_audio_chunk_gap_seconds_count", {"method=\"Synthesize\""}, 1},
      {"vox_speech_real_time_factor_sum", {"engine=\"xtts\""}, 0.4},
      {"vox_tokens_generated_total", {"engine=\"nllb\""}, 17},
      {"vox_codes_generated_total", {"engine=\"xtts\""}, 40},
      {"vox_compute_seconds_count", {"engine=\"nllb\"", "stage=\"tokenize\""}, 1},
      {"vox_compute_seconds_count", {"engine=\"nllb\"", "stage=\"decode\""}, 1},
      {"vox_rejections_total", {"engine=\"nllb\"", "reason=\"invalid_argument\""}, 1},
      {"vox_rejections_total", {"engine=\"nllb\"", "reason=\"queue_full\""}, 1},
      {"vox_rejections_total", {"engine=\"nllb\"", "reason=\"overloaded\""}, 1},
      {"vox_rejections_total", {"engine=\"nllb\"", "reason=\"deadline_in_queue\""}, 0},
      {"vox_pipeline_restarts_total", {"engine=\"apertium\"", "pipeline=\"eng-spa\""}, 1},
      {"vox_voice_files_skipped_total", {}, 2},
      {"vox_created_voices", {}, 5},
      {"vox_speech_translate_segments_total", {}, 1},
      {"vox_speech_translate_segment_seconds_count", {}, 1},
      {"vox_speech_translate_segment_seconds_sum", {}, 0.3},
      // 300 ms falls in the 0.5 s bucket, not the 0.25 s one.
      {"vox_speech_translate_segment_seconds_bucket", {"le=\"0.25\""}, 0},
      {"vox_speech_translate_segment_seconds_bucket", {"le=\"0.5\""}, 1},
      {"vox_auth_rejections_total", {"reason=\"invalid_token\""}, 1},
      {"vox_token_requests_total", {"token=\"app\""}, 2},
      {"vox_quota_rejections_total", {"token=\"app\"", "quota=\"requests_per_second\""}, 1},
      {"vox_config_reloads_total", {"what=\"tls\"", "result=\"error\""}, 1},
      {"vox_model_info",
       {"name=\"nllb-tiny\"", "kind=\"translation\"", "device=\"cpu\"", "dtype=\"float32\""},
       1},
      {"vox_queue_depth", {"engine=\"nllb\"", "stage=\"decode\""}, 3},
      {"vox_running_batch", {"engine=\"nllb\"", "stage=\"decode\""}, 5},
      {"vox_paused_streams", {"engine=\"nllb\"", "stage=\"decode\""}, 1},
      {"vox_queue_wait_seconds_sum", {"engine=\"nllb\"", "stage=\"decode\""}, 0.002},
      {"vox_batch_size_sum", {"engine=\"nllb\"", "stage=\"decode\""}, 4},
      {"vox_batch_size_bucket", {"stage=\"decode\"", "le=\"2\""}, 0},
      {"vox_batch_size_bucket", {"stage=\"decode\"", "le=\"4\""}, 1},
  };
  for (const Want& w : wants) {
    EXPECT_NEAR(Sample(text, w.name, w.labels), w.value, 1e-9)
        << w.name << " " << absl::StrJoin(w.labels, ",");
  }
  // Histograms, not summaries; counters end in _total.
  EXPECT_THAT(text, HasSubstr("# TYPE vox_request_duration_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("# TYPE vox_requests_total counter"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("summary\n# HELP vox_")));
}

TEST(MetricsTest, ValuesMoveWhenObservedAgain) {
  auto m = Serve();
  ASSERT_NE(m, nullptr);
  auto obs = m->ObserverFor("xtts", "gpt");
  m->RequestFinished("Synthesize", absl::StatusCode::kOk, absl::Milliseconds(5));
  obs->QueueDepth(7);
  const std::string before = Body(HttpGet(m->port(), "/metrics"));
  m->RequestFinished("Synthesize", absl::StatusCode::kOk, absl::Milliseconds(5));
  m->RequestFinished("Synthesize", absl::StatusCode::kDeadlineExceeded, absl::Seconds(31));
  m->StreamOpened("Synthesize");
  m->StreamOpened("Synthesize");
  m->StreamClosed("Synthesize");
  obs->QueueDepth(2);
  obs->Rejected(RejectReason::kTooManyPaused);
  obs->Rejected(RejectReason::kTooManyPaused);
  const std::string after = Body(HttpGet(m->port(), "/metrics"));
  const std::vector<std::string> ok = {"method=\"Synthesize\"", "code=\"OK\""};
  EXPECT_EQ(Sample(before, "vox_requests_total", ok), 1);
  EXPECT_EQ(Sample(after, "vox_requests_total", ok), 2);
  // 31 s is beyond the last finite bucket (30 s): only +Inf counts it.
  const std::vector<std::string> late = {"code=\"DEADLINE_EXCEEDED\""};
  auto with = [](std::vector<std::string> v, std::string l) {
    v.push_back(std::move(l));
    return v;
  };
  EXPECT_EQ(Sample(after, "vox_request_duration_seconds_bucket", with(late, "le=\"30\"")), 0);
  EXPECT_EQ(Sample(after, "vox_request_duration_seconds_bucket", with(late, "le=\"+Inf\"")), 1);
  EXPECT_EQ(Sample(after, "vox_inflight_streams", {"method=\"Synthesize\""}), 1);
  EXPECT_EQ(Sample(before, "vox_queue_depth", {"engine=\"xtts\""}), 7);
  EXPECT_EQ(Sample(after, "vox_queue_depth", {"engine=\"xtts\""}), 2);
  EXPECT_EQ(Sample(after, "vox_rejections_total",
                   {"engine=\"xtts\"", "reason=\"too_many_paused\""}),
            2);
  // Scrape() renders the same registry without HTTP.
  EXPECT_EQ(Sample(m->Scrape(), "vox_queue_depth", {"engine=\"xtts\""}), 2);
}

// A step model whose sequences each finish in one step; its first step holds until released.
class GatedOneStepModel : public StepModel<int, int> {
 public:
  GatedOneStepModel(absl::Notification* entered, absl::Notification* release)
      : entered_(entered), release_(release) {}
  absl::Status Join(TicketId, int&) override { return absl::OkStatus(); }
  std::vector<StepResult<int>> Step(absl::Span<const TicketId> active) override {
    if (++steps_ == 1) {
      entered_->Notify();
      release_->WaitForNotification();
    }
    std::vector<StepResult<int>> out(active.size());
    for (auto& r : out) r.finished = true;
    return out;
  }
  void Leave(TicketId) override {}

 private:
  absl::Notification* entered_;
  absl::Notification* release_;
  int steps_ = 0;
};

// A real scheduler reporting through ObserverFor(): queue depth, queue wait, compute (measured
// on the scheduler's clock), batch size and queue-full rejections land in the right series.
TEST(MetricsTest, SchedulerObserverFeedsTheSchedulerMetrics) {
  auto m = Metrics::Create("");  // registry only
  ASSERT_TRUE(m.ok()) << m.status();
  auto observer = (*m)->ObserverFor("nllb", "translate");
  FakeClock clock;
  absl::Notification entered, release;
  using B = ContinuousBatcher<int, int>;
  SchedulerOptions o;
  o.name = "nllb";
  o.max_batch_size = 1;
  o.max_queue_size = 1;
  std::vector<std::unique_ptr<StepModel<int, int>>> models;
  models.push_back(std::make_unique<GatedOneStepModel>(&entered, &release));
  auto batcher = B::Create(o, std::move(models), &clock, observer.get());
  ASSERT_TRUE(batcher.ok());
  std::atomic<int> done{0};
  B::Callbacks count;
  count.on_done = [&](absl::Status, EndReason) { done.fetch_add(1); };
  ASSERT_TRUE((*batcher)->Submit(1, {}, count).ok());
  entered.WaitForNotification();  // 1 runs (and holds the worker)
  ASSERT_TRUE((*batcher)->Submit(2, {}, count).ok());  // 2 waits
  const std::vector<std::string> ours = {"engine=\"nllb\"", "stage=\"translate\""};
  EXPECT_EQ(Sample((*m)->Scrape(), "vox_queue_depth", ours), 1);
  EXPECT_EQ(Sample((*m)->Scrape(), "vox_running_batch", ours), 1);
  EXPECT_EQ((*batcher)->Submit(3, {}, count).status().code(),
            absl::StatusCode::kResourceExhausted);
  clock.Advance(absl::Milliseconds(5));  // 1 "computes" for 5 ms; 2 waits 5 ms
  release.Notify();
  ASSERT_TRUE((*batcher)->WaitIdle(absl::InfiniteFuture()));
  EXPECT_EQ(done.load(), 2);
  const std::string text = (*m)->Scrape();
  EXPECT_EQ(Sample(text, "vox_rejections_total",
                   {"engine=\"nllb\"", "reason=\"queue_full\""}), 1);
  EXPECT_EQ(Sample(text, "vox_queue_depth", ours), 0);
  EXPECT_EQ(Sample(text, "vox_running_batch", ours), 0);
  EXPECT_EQ(Sample(text, "vox_batch_size_count", ours), 2);
  EXPECT_EQ(Sample(text, "vox_batch_size_sum", ours), 2);
  EXPECT_EQ(Sample(text, "vox_queue_wait_seconds_count", ours), 2);
  EXPECT_NEAR(Sample(text, "vox_queue_wait_seconds_sum", ours), 0.005, 1e-12);
  EXPECT_EQ(Sample(text, "vox_compute_seconds_count", ours), 2);
  EXPECT_NEAR(Sample(text, "vox_compute_seconds_sum", ours), 0.005, 1e-12);
}

TEST(MetricsTest, PromtoolAcceptsTheScrapedText) {
  if (std::string(VOX_PROMTOOL).empty()) {
    GTEST_SKIP() << "promtool not found at configure time (Debian package: prometheus)";
  }
  auto m = Serve();
  ASSERT_NE(m, nullptr);
  auto obs = m->ObserverFor("nllb", "decode");
  ObserveOneOfEach(*m, *obs);
  const std::string text = Body(HttpGet(m->port(), "/metrics"));
  ASSERT_THAT(text, HasSubstr("vox_requests_total"));
  std::string path = ::testing::TempDir() + "vox_metrics_XXXXXX";
  const int fd = mkstemp(path.data());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  const std::string cmd = absl::StrCat(VOX_PROMTOOL, " check metrics < ", path, " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  unlink(path.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_EQ(out, "") << "promtool complained:\n" << out;
}

}  // namespace
}  // namespace vox
