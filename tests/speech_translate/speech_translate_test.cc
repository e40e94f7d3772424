// SpeechTranslate in process over real gRPC on loopback, with fake engines whose outputs are
// computed independently here (translation = ASCII upper case; speech = 160 samples per
// character of the text it is given, in 320-sample chunks, at 16 kHz).
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engines/audio/audio_stream_encoder.h"
#include "engines/core/speech_engine.h"
#include "engines/core/translation_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/model_registry.h"
#include "server/scheduler/scheduler_options.h"
#include "server/speech_translation_service.h"
#include "vox/v1/speech_translation.grpc.pb.h"

namespace vox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kRate = 16000;
constexpr int kSamplesPerChar = 160;
constexpr int kChunk = 320;
constexpr size_t kMaxTranslateChars = 60;
constexpr size_t kMaxSpeakChars = 80;

// Waits (bounded) until `pred` holds; the test fails instead of hanging when it never does.
template <typename Pred>
bool WaitFor(Pred pred, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time end = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// Upper-cases. "hold" blocks until its StopCheck says stop (counted in stopped()).
class UpperTranslator : public TranslationEngine {
 public:
  UpperTranslator() {
    info_.name = "upper";
    info_.kind = "translation";
    info_.languages = {"eng_Latn", "spa_Latn"};
  }
  const ModelInfo& info() const override { return info_; }
  bool SupportsPair(const std::string& s, const std::string& t) const override {
    return s == "eng_Latn" && t == "spa_Latn";
  }
  absl::Status Validate(const std::vector<std::string>& texts, const std::string&,
                        const std::string&, const TranslationParams&) const override {
    for (const std::string& t : texts) {
      if (t.size() > kMaxTranslateChars) {
        return absl::InvalidArgumentError(absl::StrCat("too long: ", t.size()));
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<TranslationOutput>> Translate(const std::vector<std::string>& texts,
                                                           const std::string&, const std::string&,
                                                           const TranslationParams&,
                                                           const StopCheck& stop) override {
    calls_.fetch_add(1);
    std::vector<TranslationOutput> out;
    for (const std::string& t : texts) {
      if (t == "hold") {
        while (true) {
          absl::Status s = stop();
          if (!s.ok()) {
            stopped_.fetch_add(1);
            return s;
          }
          absl::SleepFor(absl::Milliseconds(1));
        }
      }
      out.push_back({absl::AsciiStrToUpper(t), {}});
    }
    return out;
  }
  int calls() const { return calls_.load(); }
  int stopped() const { return stopped_.load(); }

 private:
  ModelInfo info_;
  std::atomic<int> calls_{0}, stopped_{0};
};

// kSamplesPerChar samples per character; "SPEAK FOREVER" produces chunks until stopped. With
// `stepper` it also has the step API: one kChunk-sample chunk per step, the same audio.
class CountingSpeaker : public SpeechEngine {
 public:
  explicit CountingSpeaker(bool stepper) : stepper_(stepper) {
    info_.name = "counting";
    info_.kind = "speech";
    info_.languages = {"spa_Latn"};
    voices_ = {{"Ana", {"spa_Latn"}}};
  }
  const ModelInfo& info() const override { return info_; }
  int sample_rate() const override { return kRate; }
  const std::vector<VoiceInfo>& voices() const override { return voices_; }
  absl::Status Validate(const SynthesisRequest& r) const override {
    if (r.text.size() > kMaxSpeakChars) {
      return absl::InvalidArgumentError(absl::StrCat("too long to speak: ", r.text.size()));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<SynthesisStats> Synthesize(const SynthesisRequest& r, const AudioSink& sink,
                                            const StopCheck& stop) override {
    {
      absl::MutexLock lock(&mu_);
      texts_.push_back(r.text);
    }
    const bool forever = r.text == "SPEAK FOREVER";
    int64_t left = static_cast<int64_t>(r.text.size()) * kSamplesPerChar;
    std::vector<float> chunk(kChunk, 0.25f);
    while (forever || left > 0) {
      if (absl::Status s = stop(); !s.ok()) {
        stopped_.fetch_add(1);
        return s;
      }
      const int64_t n = forever ? kChunk : std::min<int64_t>(left, kChunk);
      if (!sink(absl::MakeConstSpan(chunk.data(), n))) {
        stopped_.fetch_add(1);
        return absl::CancelledError("sink refused");
      }
      produced_.fetch_add(n);
      left -= n;
    }
    SynthesisStats stats;
    stats.voice = "Ana";
    return stats;
  }
  int stopped() const { return stopped_.load(); }
  int64_t produced() const { return produced_.load(); }
  std::vector<std::string> texts() {
    absl::MutexLock lock(&mu_);
    return texts_;
  }

  std::unique_ptr<SpeechStepper> NewStepper() override;

 private:
  friend class CountingStepper;
  const bool stepper_;
  ModelInfo info_;
  std::vector<VoiceInfo> voices_;
  std::atomic<int> stopped_{0};
  std::atomic<int64_t> produced_{0};
  absl::Mutex mu_;
  std::vector<std::string> texts_;
};

class CountingStepper : public SpeechStepper {
 public:
  explicit CountingStepper(CountingSpeaker* engine) : engine_(engine) {}
  absl::Status Join(uint64_t id, const SynthesisRequest& r) override {
    {
      absl::MutexLock lock(&engine_->mu_);
      engine_->texts_.push_back(r.text);
    }
    Seq seq;
    seq.forever = r.text == "SPEAK FOREVER";
    seq.left = static_cast<int64_t>(r.text.size()) * kSamplesPerChar;
    seqs_[id] = seq;
    return absl::OkStatus();
  }
  std::vector<SpeechStepResult> Step(absl::Span<const uint64_t> active) override {
    std::vector<SpeechStepResult> out;
    for (uint64_t id : active) {
      Seq& seq = seqs_.at(id);
      const int64_t n = seq.forever ? kChunk : std::min<int64_t>(seq.left, kChunk);
      SpeechStepResult r;
      r.audio.assign(static_cast<size_t>(n), 0.25f);
      engine_->produced_.fetch_add(n);
      seq.left -= n;
      if (!seq.forever && seq.left <= 0) {
        r.finished = seq.finished = true;
        r.stats.voice = "Ana";
      }
      out.push_back(std::move(r));
    }
    return out;
  }
  void Leave(uint64_t id) override {
    auto it = seqs_.find(id);
    if (it == seqs_.end()) return;
    if (!it->second.finished) engine_->stopped_.fetch_add(1);
    seqs_.erase(it);
  }
  int size() const override { return static_cast<int>(seqs_.size()); }

 private:
  struct Seq {
    bool forever = false;
    int64_t left = 0;
    bool finished = false;
  };
  CountingSpeaker* const engine_;
  std::map<uint64_t, Seq> seqs_;
};

std::unique_ptr<SpeechStepper> CountingSpeaker::NewStepper() {
  if (!stepper_) return nullptr;
  return std::make_unique<CountingStepper>(this);
}

struct Received {
  grpc::Status status;
  std::vector<v1::SpeechTranslateResponse> messages;
};

class SpeechTranslateTest : public ::testing::Test {
 protected:
  // `speech` configures the speech model's scheduler (max_pause is how long a stalled reader may
  // hold its slot); `stepper`: the speech engine has the step API (else whole requests).
  void StartServer(SpeechTranslationServiceImpl::Limits limits = {},
                   SpeechTranslationServiceImpl::Hooks hooks = {}, SchedulerOptions speech = {},
                   bool stepper = true) {
    registry_ = std::make_unique<ModelRegistry>();
    auto translator = std::make_unique<UpperTranslator>();
    auto speaker = std::make_unique<CountingSpeaker>(stepper);
    translator_ = translator.get();
    speaker_ = speaker.get();
    SchedulerOptions translation;
    translation.max_queue_size = 256;
    speech.max_queue_size = 256;
    // As voxd configures it: sessions whose writes are catching up pause briefly all the time.
    speech.paused_slot_grace = absl::Seconds(1);
    ASSERT_TRUE(registry_->AddTranslation(std::move(translator), translation).ok());
    ASSERT_TRUE(registry_->AddSpeech(std::move(speaker), speech).ok());
    service_ = std::make_unique<SpeechTranslationServiceImpl>(registry_.get(), &admission_,
                                                              nullptr, limits, std::move(hooks));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::SpeechTranslationService::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      server_->Wait();
    }
    if (registry_ != nullptr) registry_->Shutdown();
  }

  static v1::SpeechTranslateRequest Config(
      v1::AudioEncoding encoding = v1::AUDIO_ENCODING_PCM16, int rate = kRate) {
    v1::SpeechTranslateRequest r;
    v1::SpeechTranslateConfig* c = r.mutable_config();
    c->set_source_language("eng_Latn");
    c->set_target_language("spa_Latn");
    c->set_voice("Ana");
    c->mutable_audio()->set_encoding(encoding);
    c->mutable_audio()->set_sample_rate_hz(rate);
    return r;
  }
  static v1::SpeechTranslateRequest Segment(uint64_t id, const std::string& text) {
    v1::SpeechTranslateRequest r;
    r.mutable_segment()->set_segment_id(id);
    r.mutable_segment()->set_text(text);
    return r;
  }

  // Writes every request, half-closes, then reads everything.
  Received Session(const std::vector<v1::SpeechTranslateRequest>& requests) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto stream = stub_->SpeechTranslate(&context);
    for (const auto& r : requests) {
      if (!stream->Write(r)) break;
    }
    stream->WritesDone();
    Received out;
    v1::SpeechTranslateResponse msg;
    while (stream->Read(&msg)) out.messages.push_back(msg);
    out.status = stream->Finish();
    return out;
  }

  // Checks header, then per segment translation / audio / segment_end, for PCM16 at kRate.
  void ExpectSegments(const Received& got,
                      const std::vector<std::pair<uint64_t, std::string>>& segments) {
    ASSERT_TRUE(got.status.ok()) << got.status.error_message();
    ASSERT_FALSE(got.messages.empty());
    ASSERT_TRUE(got.messages[0].has_header());
    EXPECT_EQ(got.messages[0].header().encoding(), v1::AUDIO_ENCODING_PCM16);
    EXPECT_EQ(got.messages[0].header().sample_rate_hz(), kRate);
    size_t i = 1;
    for (const auto& [id, text] : segments) {
      const std::string want = absl::AsciiStrToUpper(std::string(absl::StripAsciiWhitespace(text)));
      ASSERT_LT(i, got.messages.size());
      ASSERT_TRUE(got.messages[i].has_translation()) << "segment " << id << " message " << i;
      EXPECT_EQ(got.messages[i].translation().segment_id(), id);
      EXPECT_EQ(got.messages[i].translation().text(), want);
      ++i;
      int64_t bytes = 0;
      while (i < got.messages.size() && got.messages[i].has_audio()) {
        EXPECT_EQ(got.messages[i].audio().segment_id(), id);
        bytes += static_cast<int64_t>(got.messages[i].audio().chunk().data().size());
        ++i;
      }
      const int64_t samples = static_cast<int64_t>(want.size()) * kSamplesPerChar;
      EXPECT_EQ(bytes, samples * 2) << "segment " << id;
      ASSERT_LT(i, got.messages.size());
      ASSERT_TRUE(got.messages[i].has_segment_end()) << "segment " << id;
      const v1::SegmentEnd& end = got.messages[i].segment_end();
      EXPECT_EQ(end.segment_id(), id);
      EXPECT_EQ(end.total_samples(), samples);
      EXPECT_DOUBLE_EQ(end.timings().audio_seconds(), static_cast<double>(samples) / kRate);
      EXPECT_GE(end.timings().queue_seconds(), 0);
      EXPECT_GE(end.timings().translation_seconds(), 0);
      EXPECT_GE(end.timings().total_seconds(), end.timings().time_to_first_audio_seconds());
      if (samples > 0) {
        EXPECT_GT(end.timings().time_to_first_audio_seconds(), 0);
      } else {
        EXPECT_EQ(end.timings().time_to_first_audio_seconds(), 0);
      }
      ++i;
    }
    EXPECT_EQ(i, got.messages.size()) << "messages after the last segment";
  }

  Admission admission_;
  std::unique_ptr<ModelRegistry> registry_;
  UpperTranslator* translator_ = nullptr;
  CountingSpeaker* speaker_ = nullptr;
  std::unique_ptr<SpeechTranslationServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SpeechTranslationService::Stub> stub_;
};

// Translate's sentences (sentence_splitter.h), in the text's language.
TEST(SplitAtSentenceEndsTest, KeepsPunctuationAndDropsSpaces) {
  EXPECT_THAT(SplitAtSentenceEnds(" One. Two!  Three? four; five", "eng_Latn"),
              ElementsAre("One.", "Two!", "Three? four; five"));
  EXPECT_THAT(SplitAtSentenceEnds("3.5 is a number. Mr. Li came.", "eng_Latn"),
              ElementsAre("3.5 is a number.", "Mr. Li came."));
  EXPECT_THAT(SplitAtSentenceEnds("一。二！", "zho_Hans"), ElementsAre("一。", "二！"));
  EXPECT_THAT(SplitAtSentenceEnds("   ", "eng_Latn"), ElementsAre());
}

TEST_F(SpeechTranslateTest, ManySegmentsComeBackInOrderWithTheirIds) {
  StartServer();
  std::vector<v1::SpeechTranslateRequest> requests = {Config()};
  std::vector<std::pair<uint64_t, std::string>> segments;
  for (int i = 0; i < 30; ++i) {
    // Ids chosen by the client, deliberately not increasing; texts of different lengths.
    const uint64_t id = 1000 - 7 * i;
    const std::string text = absl::StrCat("segment ", i, std::string(i % 5, 'x'));
    segments.emplace_back(id, text);
    requests.push_back(Segment(id, text));
  }
  ExpectSegments(Session(requests), segments);
  // Every segment was translated; whole-call engines batch segments that wait together.
  EXPECT_GE(translator_->calls(), 1);
  EXPECT_LE(translator_->calls(), 30);
}

TEST_F(SpeechTranslateTest, MissingOrInvalidConfigIsInvalidArgumentBeforeAnyWork) {
  StartServer();
  struct Case {
    std::string name;
    std::vector<v1::SpeechTranslateRequest> requests;
    std::string message;
  };
  v1::SpeechTranslateRequest bad_target = Config();
  bad_target.mutable_config()->set_target_language("xxx_Latn");
  v1::SpeechTranslateRequest bad_voice = Config();
  bad_voice.mutable_config()->set_voice("Nobody");
  v1::SpeechTranslateRequest bad_rate = Config(v1::AUDIO_ENCODING_OGG_OPUS, 12345);
  v1::SpeechTranslateRequest no_source = Config();
  no_source.mutable_config()->clear_source_language();
  const std::vector<Case> cases = {
      {"segment first", {Segment(1, "hello")}, "config"},
      {"nothing at all", {}, "config"},
      {"unknown target", {bad_target, Segment(1, "hello")}, "xxx_Latn"},
      {"unknown voice", {bad_voice, Segment(1, "hello")}, "Nobody"},
      {"bad sample rate", {bad_rate, Segment(1, "hello")}, "12345"},
      {"no source", {no_source, Segment(1, "hello")}, "source_language"},
      {"second config", {Config(), Config()}, "segment"},
  };
  for (const Case& c : cases) {
    Received got = Session(c.requests);
    EXPECT_EQ(got.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_THAT(got.status.error_message(), HasSubstr(c.message)) << c.name;
  }
  EXPECT_EQ(translator_->calls(), 0);
  EXPECT_TRUE(speaker_->texts().empty());
}

TEST_F(SpeechTranslateTest, WholeRequestSpeechEnginesServeSessionsToo) {
  // No speech stepper: each piece is synthesized whole, then streamed in 200 ms chunks.
  StartServer({}, {}, {}, /*stepper=*/false);
  std::vector<v1::SpeechTranslateRequest> requests = {Config()};
  std::vector<std::pair<uint64_t, std::string>> segments;
  for (int i = 0; i < 12; ++i) {
    const std::string text = absl::StrCat("whole ", i, std::string(i * 3, 'w'));
    segments.emplace_back(i, text);
    requests.push_back(Segment(i, text));
  }
  ExpectSegments(Session(requests), segments);
}

TEST_F(SpeechTranslateTest, EmptySegmentsGetAnEmptyTranslationAndNoAudio) {
  StartServer();
  ExpectSegments(Session({Config(), Segment(5, ""), Segment(6, "hi"), Segment(7, "   ")}),
                 {{5, ""}, {6, "hi"}, {7, ""}});
  EXPECT_THAT(speaker_->texts(), ElementsAre("HI"));
}

TEST_F(SpeechTranslateTest, LongSegmentsAreSplitAtSentenceEnds) {
  StartServer();
  // 3 sentences, 85 characters: too long for one translation (60) and one synthesis (80).
  const std::string text =
      "The first sentence is here. The second one follows it. And a third one closes it all.";
  ASSERT_GT(text.size(), kMaxSpeakChars);
  Received got = Session({Config(), Segment(1, text)});
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_THAT(speaker_->texts(),
              ElementsAre("THE FIRST SENTENCE IS HERE.", "THE SECOND ONE FOLLOWS IT.",
                          "AND A THIRD ONE CLOSES IT ALL."));
  ASSERT_GE(got.messages.size(), 3u);
  EXPECT_EQ(got.messages[1].translation().text(), absl::AsciiStrToUpper(text));
  EXPECT_EQ(got.messages.back().segment_end().total_samples(),
            static_cast<int64_t>(text.size() - 2) * kSamplesPerChar);
}

TEST_F(SpeechTranslateTest, HalfCloseFinishesEverySegmentAndOggIsOneContinuousStream) {
  StartServer();
  Received got = Session({Config(v1::AUDIO_ENCODING_OGG_OPUS, 24000), Segment(1, "uno"),
                          Segment(2, "dos dos"), Segment(3, "tres tres tres")});
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  std::string ogg;
  std::vector<uint64_t> ends;
  for (const auto& m : got.messages) {
    if (m.has_audio()) ogg += m.audio().chunk().data();
    if (m.has_segment_end()) ends.push_back(m.segment_end().segment_id());
  }
  EXPECT_THAT(ends, ElementsAre(1, 2, 3));
  // One stream: one OpusHead, pages with one serial, the last page flagged end-of-stream.
  ASSERT_TRUE(absl::StartsWith(ogg, "OggS"));
  size_t count_head = 0;
  for (size_t p = ogg.find("OpusHead"); p != std::string::npos; p = ogg.find("OpusHead", p + 1)) {
    ++count_head;
  }
  EXPECT_EQ(count_head, 1u);
  size_t pos = 0, last_page = 0, pages = 0;
  const std::string serial = ogg.substr(14, 4);
  while (pos + 27 <= ogg.size()) {
    ASSERT_EQ(ogg.compare(pos, 4, "OggS"), 0) << "page at " << pos;
    EXPECT_EQ(ogg.substr(pos + 14, 4), serial);
    const int segs = static_cast<unsigned char>(ogg[pos + 26]);
    size_t body = 0;
    for (int s = 0; s < segs; ++s) body += static_cast<unsigned char>(ogg[pos + 27 + s]);
    last_page = pos;
    pos += 27 + segs + body;
    ++pages;
  }
  EXPECT_EQ(pos, ogg.size());
  EXPECT_GT(pages, 3u);
  EXPECT_TRUE(static_cast<unsigned char>(ogg[last_page + 5]) & 0x04) << "no EOS page";
}

TEST_F(SpeechTranslateTest, ConcurrentSessionsAreAllCorrect) {
  StartServer();
  constexpr int kSessions = 6;
  std::vector<Received> got(kSessions);
  std::vector<std::vector<std::pair<uint64_t, std::string>>> want(kSessions);
  std::vector<std::thread> threads;
  for (int s = 0; s < kSessions; ++s) {
    std::vector<v1::SpeechTranslateRequest> requests = {Config()};
    for (int i = 0; i < 8; ++i) {
      const std::string text = absl::StrCat("session ", s, " part ", i, std::string(s, 'q'));
      want[s].emplace_back(i, text);
      requests.push_back(Segment(i, text));
    }
    threads.emplace_back([this, s, requests, &got] { got[s] = Session(requests); });
  }
  for (auto& t : threads) t.join();
  for (int s = 0; s < kSessions; ++s) {
    SCOPED_TRACE(absl::StrCat("session ", s));
    ExpectSegments(got[s], want[s]);
  }
}

TEST_F(SpeechTranslateTest, CancelMidSegmentStopsTheSynthesisAndFreesTheSession) {
  StartServer();
  grpc::ClientContext context;
  auto stream = stub_->SpeechTranslate(&context);
  ASSERT_TRUE(stream->Write(Config()));
  ASSERT_TRUE(stream->Write(Segment(1, "speak forever")));
  ASSERT_TRUE(stream->Write(Segment(2, "never spoken")));
  v1::SpeechTranslateResponse msg;
  // Read until the first audio of segment 1: its synthesis is running.
  bool audio = false;
  while (!audio && stream->Read(&msg)) audio = msg.has_audio();
  ASSERT_TRUE(audio);
  context.TryCancel();
  while (stream->Read(&msg)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitFor([&] { return speaker_->stopped() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return service_->sessions_alive() == 0; }));
  EXPECT_THAT(speaker_->texts(), ElementsAre("SPEAK FOREVER"));
}

TEST_F(SpeechTranslateTest, CancelDuringTranslationStopsItAndQueuedWork) {
  StartServer();
  grpc::ClientContext context;
  auto stream = stub_->SpeechTranslate(&context);
  ASSERT_TRUE(stream->Write(Config()));
  ASSERT_TRUE(stream->Write(Segment(1, "hold")));
  ASSERT_TRUE(stream->Write(Segment(2, "queued behind")));
  v1::SpeechTranslateResponse msg;
  ASSERT_TRUE(stream->Read(&msg));
  ASSERT_TRUE(msg.has_header());
  ASSERT_TRUE(WaitFor([&] { return translator_->calls() >= 1; }));
  // Segment 2 is read and submitted (queued behind the held call, or in its batch) before the
  // cancel: on a busy machine the cancel could otherwise come before the server read it, and no
  // job of it would exist.
  TranslationScheduler& scheduler = *registry_->translation()[0]->scheduler;
  ASSERT_TRUE(WaitFor([&] { return scheduler.queue_depth() + scheduler.active() >= 2; }));
  context.TryCancel();
  while (stream->Read(&msg)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitFor([&] { return translator_->stopped() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return service_->sessions_alive() == 0; }));
  // Segment 2 never reached the engine: its job saw the session was over.
  EXPECT_EQ(translator_->calls(), 1);
  EXPECT_GE(service_->jobs_stopped(), 2);
  EXPECT_TRUE(speaker_->texts().empty());
}

TEST_F(SpeechTranslateTest, DeadlineEndsTheSessionAndStopsTheEngine) {
  StartServer();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  auto stream = stub_->SpeechTranslate(&context);
  ASSERT_TRUE(stream->Write(Config()));
  ASSERT_TRUE(stream->Write(Segment(1, "speak forever")));
  v1::SpeechTranslateResponse msg;
  while (stream->Read(&msg)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(WaitFor([&] { return speaker_->stopped() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return service_->sessions_alive() == 0; }));
}

TEST_F(SpeechTranslateTest, AReaderStalledPastTheTimeoutIsResourceExhausted) {
  SpeechTranslationServiceImpl::Limits limits;
  limits.max_pending_messages = 2;
  SchedulerOptions speech;
  speech.max_pause = absl::Milliseconds(200);  // how long a paused stream may hold its slot
  StartServer(limits, {}, speech);
  grpc::ClientContext context;
  auto stream = stub_->SpeechTranslate(&context);
  ASSERT_TRUE(stream->Write(Config()));
  ASSERT_TRUE(stream->Write(Segment(1, "speak forever")));
  // Not reading: the transport windows fill, then the queue, then the timeout ends the call.
  ASSERT_TRUE(WaitFor([&] { return speaker_->stopped() == 1; }));
  v1::SpeechTranslateResponse msg;
  while (stream->Read(&msg)) {
  }
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("read too slowly"));
  EXPECT_LE(service_->max_pending_seen(), 2);
  EXPECT_TRUE(WaitFor([&] { return service_->sessions_alive() == 0; }));
}

TEST_F(SpeechTranslateTest, SlowReaderPausesSynthesisWithABoundedQueue) {
  SpeechTranslationServiceImpl::Limits limits;
  limits.max_pending_messages = 4;
  StartServer(limits);
  grpc::ClientContext context;
  auto stream = stub_->SpeechTranslate(&context);
  ASSERT_TRUE(stream->Write(Config()));
  // 40 segments x 50 characters = 320000 samples = 640 KB of PCM16 in 1000 chunks: far more than
  // gRPC's transport windows hold, so an unread stream must fill the server's queue.
  std::vector<std::pair<uint64_t, std::string>> segments;
  for (int i = 0; i < 40; ++i) {
    const std::string text = absl::StrCat("slow ", i, " ", std::string(43 - (i >= 10), 'z'));
    segments.emplace_back(i, text);
    ASSERT_TRUE(stream->Write(Segment(i, text)));
  }
  stream->WritesDone();
  const int64_t total = 40 * 50 * kSamplesPerChar;
  // The queue reaches its high-water mark (one below the bound, leaving room for a segment_end).
  ASSERT_TRUE(WaitFor([&] { return service_->max_pending_seen() >= 3; }));
  // The session's speech sequence is paused: production stalls below the total.
  const int64_t produced = speaker_->produced();
  EXPECT_LT(produced, total);
  Received got;
  v1::SpeechTranslateResponse msg;
  while (stream->Read(&msg)) got.messages.push_back(msg);
  got.status = stream->Finish();
  ExpectSegments(got, segments);
  EXPECT_EQ(speaker_->produced(), total);
  EXPECT_LE(service_->max_pending_seen(), 4);
}

// The audio is exactly what ONE AudioStreamEncoder makes of the speech chunks, segment by
// segment with EndSegment after each and Finish at the end, wherever the server encodes: same
// bytes, packets, boundaries, timestamps and segment ids, and segment_end counts the samples each
// segment added at the output rate.
TEST_F(SpeechTranslateTest, AudioIsOneEncoderRunOverTheSpeechChunksInOrder) {
  StartServer();
  const std::vector<std::pair<uint64_t, std::string>> segments = {{3, "hola"},
                                                                  {4, "adios amigo mio"}};
  AudioStreamConfig config;
  config.encoding = AudioEncoding::kOpus;
  config.sample_rate_hz = 24000;  // resampled from 16 kHz: EndSegment flushes the resampler
  config.complexity = -1;
  auto encoder = AudioStreamEncoder::Create(config, kRate);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  std::vector<std::pair<uint64_t, EncodedAudio>> want;
  std::vector<int64_t> segment_samples;
  int64_t before = 0;
  for (const auto& [id, text] : segments) {
    int64_t left = static_cast<int64_t>(text.size()) * kSamplesPerChar;
    while (left > 0) {  // the stepper's chunks
      const std::vector<float> chunk(static_cast<size_t>(std::min<int64_t>(left, kChunk)), 0.25f);
      left -= static_cast<int64_t>(chunk.size());
      EncodedAudio out;
      ASSERT_TRUE((*encoder)->Push(chunk, &out).ok());
      if (!out.empty()) want.emplace_back(id, std::move(out));
    }
    EncodedAudio tail;
    ASSERT_TRUE((*encoder)->EndSegment(&tail).ok());
    if (!tail.empty()) want.emplace_back(id, std::move(tail));
    segment_samples.push_back((*encoder)->total_samples() - before);
    before = (*encoder)->total_samples();
  }
  EncodedAudio end;
  ASSERT_TRUE((*encoder)->Finish(&end).ok());
  if (!end.empty()) want.emplace_back(segments.back().first, std::move(end));

  std::vector<v1::SpeechTranslateRequest> requests = {Config(v1::AUDIO_ENCODING_OPUS, 24000)};
  for (const auto& [id, text] : segments) requests.push_back(Segment(id, text));
  Received got = Session(requests);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  std::vector<v1::SegmentAudio> audio;
  std::vector<int64_t> ends;
  for (const auto& m : got.messages) {
    if (m.has_audio()) audio.push_back(m.audio());
    if (m.has_segment_end()) ends.push_back(m.segment_end().total_samples());
  }
  ASSERT_EQ(audio.size(), want.size());
  for (size_t i = 0; i < audio.size(); ++i) {
    const EncodedAudio& w = want[i].second;
    EXPECT_EQ(audio[i].segment_id(), want[i].first) << i;
    EXPECT_EQ(audio[i].chunk().data(), w.data) << i;
    EXPECT_THAT(audio[i].chunk().packets(), ::testing::ElementsAreArray(w.packets)) << i;
    EXPECT_EQ(audio[i].chunk().sequence(), w.sequence) << i;
    EXPECT_EQ(audio[i].chunk().timestamp_samples(), w.timestamp_samples) << i;
    EXPECT_EQ(audio[i].chunk().num_samples(), w.num_samples) << i;
  }
  EXPECT_EQ(ends, segment_samples);
}

TEST_F(SpeechTranslateTest, TranslationOfTheNextSegmentRunsWhileTheCurrentOneIsSpoken) {
  // Segment 0's synthesis may not start until segment 1's translation has been observed: a
  // server that translated only after speaking would never let that happen (the hook gives up
  // after 10 s and records the failure instead of hanging).
  absl::Notification translated_1;
  std::atomic<bool> overlapped{false};
  SpeechTranslationServiceImpl::Hooks hooks;
  hooks.after_translation = [&](uint64_t id) {
    if (id == 1) translated_1.Notify();
  };
  hooks.before_synthesis = [&](uint64_t id) {
    if (id == 0) overlapped = translated_1.WaitForNotificationWithTimeout(absl::Seconds(10));
  };
  StartServer({}, std::move(hooks));
  ExpectSegments(Session({Config(), Segment(0, "first"), Segment(1, "second")}),
                 {{0, "first"}, {1, "second"}});
  EXPECT_TRUE(overlapped.load());
}

}  // namespace
}  // namespace vox
