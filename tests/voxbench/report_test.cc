// The JSON report's ghz fields and types (ghz's Report struct: integer nanoseconds, integer
// percentages, Go status names) and voxbench's streaming additions, from hand-made results.
#include "bench/voxbench/report.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox::bench {
namespace {

using ::testing::HasSubstr;

CallResult Call(int64_t latency_ms, grpc::StatusCode code = grpc::StatusCode::OK,
                std::string message = "") {
  CallResult c;
  c.timestamp = absl::FromUnixSeconds(1700000000);
  c.latency_nanos = latency_ms * 1000000;
  c.code = code;
  c.error_message = std::move(message);
  return c;
}

BenchOptions Opts(CallKind kind) {
  BenchOptions o;
  o.server = "127.0.0.1:9";
  o.call = kind;
  o.total = 4;
  o.concurrency = 2;
  return o;
}

TEST(JsonReportTest, GhzFieldsAndTypes) {
  RunResult run;
  run.start = absl::FromUnixSeconds(1700000000);
  run.total_nanos = 2000000000;  // 2 s
  run.calls = {Call(10), Call(30), Call(20),
               Call(40, grpc::StatusCode::UNAVAILABLE, "connection refused")};
  RequestPlan plan;
  plan.data_json = R"({"texts":["a"]})";
  const nlohmann::json j = MakeJsonReport(Opts(CallKind::kTranslate), plan, run);

  EXPECT_EQ(j["date"], "2023-11-14T22:13:20.000000Z");
  EXPECT_EQ(j["endReason"], "normal");
  EXPECT_EQ(j["options"]["call"], "vox.v1.TranslationService.Translate");
  EXPECT_EQ(j["options"]["host"], "127.0.0.1:9");
  EXPECT_EQ(j["options"]["data"]["texts"][0], "a");
  EXPECT_EQ(j["count"], 4);
  EXPECT_TRUE(j["total"].is_number_integer());
  EXPECT_EQ(j["total"], 2000000000);
  EXPECT_EQ(j["fastest"], 10000000);
  EXPECT_EQ(j["slowest"], 40000000);
  EXPECT_EQ(j["average"], 25000000);
  EXPECT_DOUBLE_EQ(j["rps"].get<double>(), 2.0);
  EXPECT_EQ(j["statusCodeDistribution"], (nlohmann::json{{"OK", 3}, {"Unavailable", 1}}));
  EXPECT_EQ(j["errorDistribution"],
            (nlohmann::json{{"rpc error: code = Unavailable desc = connection refused", 1}}));

  // ghz's percentages, integers; nearest rank over 10 20 30 40 ms.
  const std::vector<int> want_pct = {10, 25, 50, 75, 90, 95, 99};
  const std::vector<int64_t> want_ms = {10, 10, 20, 30, 40, 40, 40};
  ASSERT_EQ(j["latencyDistribution"].size(), want_pct.size());
  for (size_t i = 0; i < want_pct.size(); ++i) {
    const nlohmann::json& d = j["latencyDistribution"][i];
    EXPECT_TRUE(d["percentage"].is_number_integer());
    EXPECT_EQ(d["percentage"], want_pct[i]);
    EXPECT_TRUE(d["latency"].is_number_integer());
    EXPECT_EQ(d["latency"], want_ms[i] * 1000000) << want_pct[i];
  }
  // Histogram marks in seconds from fastest to slowest, counts summing to the count.
  ASSERT_EQ(j["histogram"].size(), 11u);
  EXPECT_DOUBLE_EQ(j["histogram"][0]["mark"].get<double>(), 0.010);
  EXPECT_DOUBLE_EQ(j["histogram"][10]["mark"].get<double>(), 0.040);
  int64_t total = 0;
  for (const auto& b : j["histogram"]) total += b["count"].get<int64_t>();
  EXPECT_EQ(total, 4);

  ASSERT_EQ(j["details"].size(), 4u);
  EXPECT_EQ(j["details"][3]["status"], "Unavailable");
  EXPECT_EQ(j["details"][3]["latency"], 40000000);
  EXPECT_EQ(j["details"][3]["error"], "rpc error: code = Unavailable desc = connection refused");
  EXPECT_EQ(j["details"][0]["error"], "");
  EXPECT_EQ(j["details"][0]["timestamp"], "2023-11-14T22:13:20.000000Z");

  // The tail percentiles ghz's int field cannot hold.
  ASSERT_EQ(j["latencyStats"]["latencyDistribution"].size(), 4u);
  EXPECT_DOUBLE_EQ(j["latencyStats"]["latencyDistribution"][3]["percentage"].get<double>(), 99.9);
  EXPECT_EQ(j["latencyStats"]["latencyDistribution"][3]["latency"], 40000000);
  // Translate has no audio figures.
  EXPECT_FALSE(j.contains("timeToFirstAudio"));
  EXPECT_FALSE(j.contains("segmentLatency"));
}

TEST(JsonReportTest, StreamingFigures) {
  RunResult run;
  run.total_nanos = 1000000000;
  CallResult a = Call(100);
  a.time_to_first_audio_nanos = 30000000;
  a.audio_gaps_nanos = {5000000, 15000000};
  a.audio_messages = 3;
  a.audio_samples = 24000;  // 1 s at 24 kHz
  a.sample_rate_hz = 24000;
  a.segment_time_to_first_audio_nanos = {30000000};
  a.segment_latency_nanos = {90000000};
  CallResult b = Call(200);
  b.time_to_first_audio_nanos = 50000000;
  b.audio_gaps_nanos = {25000000};
  b.audio_messages = 2;
  b.audio_samples = 12000;
  b.sample_rate_hz = 24000;
  b.segment_time_to_first_audio_nanos = {50000000};
  b.segment_latency_nanos = {190000000};
  CallResult c = Call(300);  // OK but silent
  run.calls = {a, b, c};
  RequestPlan plan;
  plan.data_json = "[]";
  const nlohmann::json j = MakeJsonReport(Opts(CallKind::kSpeechTranslate), plan, run);
  EXPECT_EQ(j["timeToFirstAudio"]["count"], 2);
  EXPECT_EQ(j["timeToFirstAudio"]["fastest"], 30000000);
  EXPECT_EQ(j["timeToFirstAudio"]["slowest"], 50000000);
  EXPECT_EQ(j["timeToFirstAudio"]["latencyDistribution"][0]["latency"], 30000000);  // p50 of 2
  EXPECT_EQ(j["audioGaps"]["count"], 3);
  EXPECT_EQ(j["audioGaps"]["latencyDistribution"][0]["latency"], 15000000);  // p50 of 5 15 25
  EXPECT_EQ(j["audioGaps"]["average"], 15000000);
  EXPECT_EQ(j["segmentLatency"]["slowest"], 190000000);
  EXPECT_EQ(j["segmentTimeToFirstAudio"]["count"], 2);
  EXPECT_EQ(j["audio"]["messages"], 5);
  EXPECT_DOUBLE_EQ(j["audio"]["seconds"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["audio"]["secondsPerSecond"].get<double>(), 1.5);
  EXPECT_EQ(j["audio"]["okCallsWithoutAudio"], 1);
  EXPECT_EQ(j["voxbench"]["call"], "speech-translate");
}

TEST(JsonReportTest, LatencyByStatusSeparatesRejectionsFromAdmittedCalls) {
  RunResult run;
  run.total_nanos = 1000000000;
  run.calls = {Call(100), Call(300), Call(200),
               Call(1, grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full"),
               Call(3, grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full"),
               Call(2, grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full")};
  RequestPlan plan;
  plan.data_json = "{}";
  const nlohmann::json j = MakeJsonReport(Opts(CallKind::kTranslate), plan, run);
  ASSERT_TRUE(j.contains("latencyByStatus"));
  EXPECT_EQ(j["latencyByStatus"].size(), 2u);
  const nlohmann::json& ok = j["latencyByStatus"]["OK"];
  EXPECT_EQ(ok["count"], 3);
  EXPECT_EQ(ok["fastest"], 100000000);
  EXPECT_EQ(ok["slowest"], 300000000);
  EXPECT_EQ(ok["average"], 200000000);
  EXPECT_EQ(ok["latencyDistribution"][0]["latency"], 200000000);  // p50 of 100 200 300
  EXPECT_EQ(ok["latencyDistribution"][2]["latency"], 300000000);  // p99
  const nlohmann::json& re = j["latencyByStatus"]["ResourceExhausted"];
  EXPECT_EQ(re["count"], 3);
  EXPECT_EQ(re["fastest"], 1000000);
  EXPECT_EQ(re["latencyDistribution"][0]["latency"], 2000000);  // p50 of 1 2 3
  EXPECT_EQ(re["latencyDistribution"][2]["latency"], 3000000);  // p99
  // The ghz fields still cover every call.
  EXPECT_EQ(j["count"], 6);
  EXPECT_EQ(j["fastest"], 1000000);

  const std::string text = MakeTextReport(Opts(CallKind::kTranslate), run);
  EXPECT_THAT(text, HasSubstr("Latency by status code:"));
  EXPECT_THAT(text, HasSubstr("[RESOURCE_EXHAUSTED]\t3 calls: min 1.00 ms, p50 2.00 ms, p99 3.00 ms"));
  EXPECT_THAT(text, HasSubstr("[OK]\t3 calls: min 100.00 ms, p50 200.00 ms, p99 300.00 ms"));
}

TEST(JsonReportTest, SegmentIntervalForSegmentedCallsOnly) {
  RunResult run;
  run.total_nanos = 1000000000;
  CallResult a = Call(300);
  a.segment_latency_nanos = {100000000, 150000000, 230000000};
  a.segment_interval_nanos = {100000000, 50000000, 80000000};
  a.segment_time_to_first_audio_nanos = {40000000, 110000000, 160000000};
  a.time_to_first_audio_nanos = 40000000;
  a.audio_samples = 24000;
  a.sample_rate_hz = 24000;
  a.segment_server_nanos["synthesis"] = {30000000, 10000000, 20000000};
  run.calls = {a};
  RequestPlan plan;
  plan.data_json = "[]";
  for (CallKind kind : {CallKind::kSpeechTranslate, CallKind::kTranslateSynthesize}) {
    const nlohmann::json j = MakeJsonReport(Opts(kind), plan, run);
    ASSERT_TRUE(j.contains("segmentInterval")) << CallKindName(kind);
    EXPECT_EQ(j["segmentInterval"]["count"], 3);
    EXPECT_EQ(j["segmentInterval"]["latencyDistribution"][0]["latency"], 80000000);  // p50
    EXPECT_EQ(j["segmentLatency"]["latencyDistribution"][0]["latency"], 150000000);
    EXPECT_EQ(j["segmentTimeToFirstAudio"]["fastest"], 40000000);
    EXPECT_DOUBLE_EQ(j["audio"]["secondsPerSecond"].get<double>(), 1.0);
    EXPECT_EQ(j["options"]["call"], CallMethodName(kind));
    EXPECT_EQ(j["segmentServerTimings"].size(), 1u);
    EXPECT_EQ(j["segmentServerTimings"]["synthesis"]["count"], 3);
    EXPECT_EQ(j["segmentServerTimings"]["synthesis"]["latencyDistribution"][0]["latency"],
              20000000);  // p50 of 10 20 30 ms
    const std::string text = MakeTextReport(Opts(kind), run);
    EXPECT_THAT(text, HasSubstr("Segment interval"));
    EXPECT_THAT(text, HasSubstr("Segment synthesis as voxd reports it (3)"));
  }
  const nlohmann::json s = MakeJsonReport(Opts(CallKind::kSynthesize), plan, run);
  EXPECT_FALSE(s.contains("segmentInterval"));
  EXPECT_FALSE(s.contains("segmentServerTimings"));
  EXPECT_TRUE(s.contains("audio"));
}

TEST(TextReportTest, SummaryStatusesAndAudio) {
  RunResult run;
  run.total_nanos = 1000000000;
  CallResult a = Call(10);
  a.time_to_first_audio_nanos = 4000000;
  a.audio_samples = 48000;
  a.sample_rate_hz = 48000;
  a.audio_messages = 50;
  run.calls = {a, Call(20, grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full")};
  const std::string text = MakeTextReport(Opts(CallKind::kSynthesize), run);
  EXPECT_THAT(text, HasSubstr("vox.v1.SpeechService.Synthesize"));
  EXPECT_THAT(text, HasSubstr("Count:        2\n"));
  EXPECT_THAT(text, HasSubstr("Requests/sec: 2.00"));
  EXPECT_THAT(text, HasSubstr("[OK]\t1 responses"));
  EXPECT_THAT(text, HasSubstr("[RESOURCE_EXHAUSTED]\t1 responses"));
  EXPECT_THAT(text, HasSubstr("rpc error: code = ResourceExhausted desc = queue full"));
  EXPECT_THAT(text, HasSubstr("Time to first audio (1)"));
  EXPECT_THAT(text, HasSubstr("p99.9  4.00 ms"));
  EXPECT_THAT(text, HasSubstr("50 messages, 1.00 s of audio"));
}

TEST(ProgressLineTest, Counts) {
  ProgressSnapshot p;
  p.started = 14;
  p.completed = 10;
  p.in_flight = 4;
  p.errors = 1;
  p.elapsed = absl::Seconds(2);
  EXPECT_EQ(ProgressLine(p), "[2s] 10 done, 4 in flight, 1 errors, 5.0/s");
}

}  // namespace
}  // namespace vox::bench
