// LoadRunner against in-process fake services on loopback: the in-flight limit is honoured and
// reached, and the bidirectional SpeechTranslate client measures segments, first audio and gaps
// as documented (Ogg-header-like chunks without samples do not count). The fakes are
// synchronous gRPC services with scripted answers; no model runs.
#include "bench/voxbench/load_runner.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/speech_translation.grpc.pb.h"
#include "vox/v1/translation.grpc.pb.h"

namespace vox::bench {
namespace {

// Holds every call until `want` calls are in the handler at once (then lets all through), and
// records the most it ever saw at once.
class GateTranslate final : public v1::TranslationService::Service {
 public:
  explicit GateTranslate(int want) : want_(want) {}
  grpc::Status Translate(grpc::ServerContext*, const v1::TranslateRequest* request,
                         v1::TranslateResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    if (in_flight_ >= want_) open_ = true;
    mu_.AwaitWithTimeout(absl::Condition(&open_), absl::Seconds(10));
    --in_flight_;
    response->add_translations()->set_text(request->texts(0));
    return grpc::Status::OK;
  }
  int max_in_flight() {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }

 private:
  const int want_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

constexpr int kChunkSamples = 480;
constexpr int kChunksPerSegment = 3;

// Per segment: translation, a sample-less chunk (like an Ogg header page), three audio chunks,
// segment_end. Records the segment ids it read, per call.
class ScriptedSpeechTranslate final : public v1::SpeechTranslationService::Service {
 public:
  grpc::Status SpeechTranslate(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::SpeechTranslateResponse, v1::SpeechTranslateRequest>* stream)
      override {
    v1::SpeechTranslateRequest request;
    if (!stream->Read(&request) || !request.has_config()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "config first");
    }
    v1::SpeechTranslateResponse header;
    header.mutable_header()->set_sample_rate_hz(24000);
    stream->Write(header);
    std::vector<uint64_t> ids;
    int64_t timestamp = 0;
    while (stream->Read(&request)) {
      if (!request.has_segment()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "segment expected");
      }
      const uint64_t id = request.segment().segment_id();
      ids.push_back(id);
      v1::SpeechTranslateResponse m;
      m.mutable_translation()->set_segment_id(id);
      m.mutable_translation()->set_text("traducido");
      stream->Write(m);
      m.Clear();
      m.mutable_audio()->set_segment_id(id);
      m.mutable_audio()->mutable_chunk()->set_data("OggS");  // no samples
      stream->Write(m);
      for (int i = 0; i < kChunksPerSegment; ++i) {
        m.Clear();
        m.mutable_audio()->set_segment_id(id);
        m.mutable_audio()->mutable_chunk()->set_timestamp_samples(timestamp);
        m.mutable_audio()->mutable_chunk()->set_num_samples(kChunkSamples);
        timestamp += kChunkSamples;
        stream->Write(m);
      }
      m.Clear();
      m.mutable_segment_end()->set_segment_id(id);
      m.mutable_segment_end()->mutable_timings()->set_queue_seconds(0.001);
      m.mutable_segment_end()->mutable_timings()->set_translation_seconds(0.002);
      m.mutable_segment_end()->mutable_timings()->set_synthesis_seconds(0.003);
      stream->Write(m);
    }
    absl::MutexLock lock(&mu_);
    segment_ids_.push_back(ids);
    return grpc::Status::OK;
  }
  std::vector<std::vector<uint64_t>> segment_ids() {
    absl::MutexLock lock(&mu_);
    return segment_ids_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::vector<uint64_t>> segment_ids_ ABSL_GUARDED_BY(mu_);
};

// Translate and Synthesize that log what they were asked, in arrival order. Translate answers
// "T(<text>)", an empty translation for "silent", FAILED_PRECONDITION for "fail". Synthesize
// answers a header, a sample-less chunk and two audio chunks.
class LoggingTranslate final : public v1::TranslationService::Service {
 public:
  explicit LoggingTranslate(std::vector<std::string>* log, absl::Mutex* mu) : log_(log), mu_(mu) {}
  grpc::Status Translate(grpc::ServerContext*, const v1::TranslateRequest* request,
                         v1::TranslateResponse* response) override {
    absl::MutexLock lock(mu_);
    log_->push_back("translate " + request->source_language() + ">" +
                    request->target_language() + " beam=" +
                    std::to_string(request->options().beam_size()) + " " + request->texts(0));
    if (request->texts(0) == "fail") {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "scripted failure");
    }
    response->add_translations()->set_text(request->texts(0) == "silent"
                                               ? std::string()
                                               : "T(" + request->texts(0) + ")");
    response->set_queue_seconds(0.004);
    response->set_compute_seconds(0.005);
    return grpc::Status::OK;
  }

 private:
  std::vector<std::string>* log_;
  absl::Mutex* mu_;
};

class LoggingSynthesize final : public v1::SpeechService::Service {
 public:
  explicit LoggingSynthesize(std::vector<std::string>* log, absl::Mutex* mu) : log_(log), mu_(mu) {}
  grpc::Status Synthesize(grpc::ServerContext*, const v1::SynthesizeRequest* request,
                          grpc::ServerWriter<v1::SynthesizeResponse>* writer) override {
    {
      absl::MutexLock lock(mu_);
      log_->push_back("synthesize " + request->language() + " voice=" + request->voice() +
                      (request->options().greedy() ? " greedy " : " ") + request->text());
    }
    v1::SynthesizeResponse m;
    m.mutable_header()->set_sample_rate_hz(24000);
    writer->Write(m);
    m.Clear();
    m.mutable_audio()->set_data("OggS");  // no samples
    writer->Write(m);
    for (int i = 0; i < 2; ++i) {
      m.Clear();
      m.mutable_audio()->set_num_samples(kChunkSamples);
      writer->Write(m);
    }
    m.Clear();
    m.mutable_summary()->set_synthesis_seconds(0.006);
    writer->Write(m);
    return grpc::Status::OK;
  }

 private:
  std::vector<std::string>* log_;
  absl::Mutex* mu_;
};

class LoadRunnerTest : public ::testing::Test {
 protected:
  void Serve(grpc::Service* service, grpc::Service* second = nullptr) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service);
    if (second != nullptr) builder.RegisterService(second);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  BenchOptions Options(CallKind call, int64_t total, int concurrency) {
    BenchOptions o;
    o.server = "127.0.0.1:" + std::to_string(port_);
    o.call = call;
    o.total = total;
    o.concurrency = concurrency;
    o.deadline = absl::Seconds(30);
    return o;
  }

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(LoadRunnerTest, InFlightLimitIsReachedAndNeverExceeded) {
  GateTranslate service(/*want=*/3);
  Serve(&service);
  absl::StatusOr<RequestPlan> plan = BuildRequests(Options(CallKind::kTranslate, 9, 3));
  ASSERT_TRUE(plan.ok()) << plan.status();
  int progress_calls = 0;
  bool saw_final = false;
  LoadRunner runner(Options(CallKind::kTranslate, 9, 3), *plan, channel_,
                    [&](const ProgressSnapshot& p, bool final) {
                      ++progress_calls;
                      if (final) {
                        saw_final = true;
                        EXPECT_EQ(p.completed, 9);
                        EXPECT_EQ(p.in_flight, 0);
                      }
                    });
  const RunResult run = runner.Run();
  EXPECT_TRUE(run.connected);
  ASSERT_EQ(run.calls.size(), 9u);
  for (const CallResult& c : run.calls) EXPECT_EQ(c.code, grpc::StatusCode::OK) << c.error_message;
  EXPECT_EQ(service.max_in_flight(), 3);
  EXPECT_TRUE(saw_final);
  EXPECT_GE(progress_calls, 1);
  EXPECT_EQ(run.end_reason, EndReason::kNormal);
}

TEST_F(LoadRunnerTest, SpeechTranslateSegmentsFirstAudioAndGaps) {
  ScriptedSpeechTranslate service;
  Serve(&service);
  BenchOptions options = Options(CallKind::kSpeechTranslate, 4, 2);
  options.texts = {"One.", "Two."};
  absl::StatusOr<RequestPlan> plan = BuildRequests(options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  LoadRunner runner(options, *plan, channel_, nullptr);
  const RunResult run = runner.Run();
  ASSERT_EQ(run.calls.size(), 4u);
  for (const CallResult& c : run.calls) {
    ASSERT_EQ(c.code, grpc::StatusCode::OK) << c.error_message;
    EXPECT_EQ(c.segments_done, 2);
    EXPECT_EQ(c.sample_rate_hz, 24000);
    EXPECT_EQ(c.audio_messages, 2 * kChunksPerSegment);  // the sample-less chunks do not count
    EXPECT_EQ(c.audio_samples, 2 * kChunksPerSegment * kChunkSamples);
    // Gaps within each segment only: (3 - 1) per segment.
    EXPECT_EQ(c.audio_gaps_nanos.size(), 2u * (kChunksPerSegment - 1));
    for (int64_t g : c.audio_gaps_nanos) EXPECT_GE(g, 0);
    EXPECT_GT(c.time_to_first_audio_nanos, 0);
    EXPECT_LE(c.time_to_first_audio_nanos, c.latency_nanos);
    ASSERT_EQ(c.segment_time_to_first_audio_nanos.size(), 2u);
    ASSERT_EQ(c.segment_latency_nanos.size(), 2u);
    // The first segment to end counts whole; the second only what came after the first ended
    // (or after it was sent, if that was later).
    ASSERT_EQ(c.segment_interval_nanos.size(), 2u);
    EXPECT_EQ(c.segment_interval_nanos[0], c.segment_latency_nanos[0]);
    EXPECT_LE(c.segment_interval_nanos[1], c.segment_latency_nanos[1]);
    // The segment_end timings, as voxd sent them.
    EXPECT_THAT(c.segment_server_nanos.at("queue"), ::testing::ElementsAre(1000000, 1000000));
    EXPECT_THAT(c.segment_server_nanos.at("translation"), ::testing::ElementsAre(2000000, 2000000));
    EXPECT_THAT(c.segment_server_nanos.at("synthesis"), ::testing::ElementsAre(3000000, 3000000));
    for (int i = 0; i < 2; ++i) {
      EXPECT_GT(c.segment_time_to_first_audio_nanos[static_cast<size_t>(i)], 0);
      EXPECT_LE(c.segment_time_to_first_audio_nanos[static_cast<size_t>(i)],
                c.segment_latency_nanos[static_cast<size_t>(i)]);
      EXPECT_LE(c.segment_latency_nanos[static_cast<size_t>(i)], c.latency_nanos);
    }
  }
  // Every call sent config, then segments 1 and 2 in order, then half-closed (the fake only
  // records a call once its read loop ended).
  const std::vector<std::vector<uint64_t>> ids = service.segment_ids();
  ASSERT_EQ(ids.size(), 4u);
  for (const auto& call : ids) EXPECT_THAT(call, ::testing::ElementsAre(1u, 2u));
}

TEST_F(LoadRunnerTest, TranslateSynthesizeRunsEachSegmentOneAfterTheOther) {
  absl::Mutex mu;
  std::vector<std::string> log;
  LoggingTranslate translate(&log, &mu);
  LoggingSynthesize synthesize(&log, &mu);
  Serve(&translate, &synthesize);
  BenchOptions options = Options(CallKind::kTranslateSynthesize, 2, 1);
  options.texts = {"One.", "silent", "Two."};
  options.to = "fra_Latn";
  options.voice = "V";
  options.greedy = true;
  options.beam_size = 2;
  absl::StatusOr<RequestPlan> plan = BuildRequests(options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  LoadRunner runner(options, *plan, channel_, nullptr);
  const RunResult run = runner.Run();
  ASSERT_EQ(run.calls.size(), 2u);
  for (const CallResult& c : run.calls) {
    ASSERT_EQ(c.code, grpc::StatusCode::OK) << c.error_message;
    EXPECT_EQ(c.segments_done, 3);
    EXPECT_EQ(c.sample_rate_hz, 24000);
    // Two segments spoke (the empty translation is not synthesized), two samples-carrying
    // chunks each.
    EXPECT_EQ(c.audio_messages, 4);
    EXPECT_EQ(c.audio_samples, 4 * kChunkSamples);
    EXPECT_EQ(c.audio_gaps_nanos.size(), 2u);  // one per segment with audio
    ASSERT_EQ(c.segment_latency_nanos.size(), 3u);
    ASSERT_EQ(c.segment_interval_nanos.size(), 3u);
    ASSERT_EQ(c.segment_time_to_first_audio_nanos.size(), 2u);
    int64_t sum = 0;
    for (size_t i = 0; i < 3; ++i) {
      // Sequential: each segment starts when the previous one ended, so what it adds to the
      // call is its whole latency.
      EXPECT_EQ(c.segment_interval_nanos[i], c.segment_latency_nanos[i]) << i;
      EXPECT_GT(c.segment_latency_nanos[i], 0);
      sum += c.segment_latency_nanos[i];
    }
    EXPECT_LE(sum, c.latency_nanos);
    EXPECT_GT(c.time_to_first_audio_nanos, 0);
    EXPECT_LE(c.segment_time_to_first_audio_nanos[0], c.segment_latency_nanos[0]);
    EXPECT_LE(c.segment_time_to_first_audio_nanos[1], c.segment_latency_nanos[2]);
    // voxd's own figures: Translate's queue and compute for every segment, the synthesis
    // summary for the two that spoke.
    EXPECT_THAT(c.segment_server_nanos.at("queue"), ::testing::Each(4000000));
    EXPECT_EQ(c.segment_server_nanos.at("queue").size(), 3u);
    EXPECT_THAT(c.segment_server_nanos.at("translation"), ::testing::Each(5000000));
    EXPECT_THAT(c.segment_server_nanos.at("synthesis"), ::testing::ElementsAre(6000000, 6000000));
  }
  // One call at a time, one stage at a time: the log is the two sequences back to back, each
  // synthesizing the translation in the target language with the session's voice and options.
  const std::vector<std::string> one = {
      "translate eng_Latn>fra_Latn beam=2 One.",
      "synthesize fra_Latn voice=V greedy T(One.)",
      "translate eng_Latn>fra_Latn beam=2 silent",
      "translate eng_Latn>fra_Latn beam=2 Two.",
      "synthesize fra_Latn voice=V greedy T(Two.)"};
  std::vector<std::string> want = one;
  want.insert(want.end(), one.begin(), one.end());
  absl::MutexLock lock(&mu);
  EXPECT_EQ(log, want);
}

TEST_F(LoadRunnerTest, TranslateSynthesizeEndsAtTheFirstFailedStage) {
  absl::Mutex mu;
  std::vector<std::string> log;
  LoggingTranslate translate(&log, &mu);
  LoggingSynthesize synthesize(&log, &mu);
  Serve(&translate, &synthesize);
  BenchOptions options = Options(CallKind::kTranslateSynthesize, 1, 1);
  options.texts = {"One.", "fail", "Never."};
  absl::StatusOr<RequestPlan> plan = BuildRequests(options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  LoadRunner runner(options, *plan, channel_, nullptr);
  const RunResult run = runner.Run();
  ASSERT_EQ(run.calls.size(), 1u);
  EXPECT_EQ(run.calls[0].code, grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(run.calls[0].error_message, "scripted failure");
  EXPECT_EQ(run.calls[0].segments_done, 1);
  EXPECT_EQ(run.calls[0].audio_messages, 2);
  absl::MutexLock lock(&mu);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_THAT(log.back(), ::testing::HasSubstr("fail"));
}

TEST_F(LoadRunnerTest, UnimplementedServiceIsCountedNotFatal) {
  GateTranslate service(1);  // serves Translate only
  Serve(&service);
  BenchOptions options = Options(CallKind::kSynthesize, 3, 2);
  absl::StatusOr<RequestPlan> plan = BuildRequests(options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  LoadRunner runner(options, *plan, channel_, nullptr);
  const RunResult run = runner.Run();
  ASSERT_EQ(run.calls.size(), 3u);
  for (const CallResult& c : run.calls) {
    EXPECT_EQ(c.code, grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(c.time_to_first_audio_nanos, -1);
  }
}

}  // namespace
}  // namespace vox::bench
