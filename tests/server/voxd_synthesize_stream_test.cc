// Integration: SynthesizeStream (live text) and Synthesize's SSML through the real voxd binary on
// loopback, with the built-in espeak-ng engine and, where voxd links it, the tiny XTTS model.
#include <signal.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/metrics/scrape.h"
#include "tests/server/voxd_launch.h"
#include "tests/server/voxd_process.h"
#include "vox/v1/speech.grpc.pb.h"

namespace vox {
namespace {

using ::testing::HasSubstr;
using testing::ChildProcess;

using StreamCall = grpc::ClientReaderWriter<v1::SynthesizeStreamRequest, v1::SynthesizeResponse>;

// What a finished call returned.
struct Result {
  grpc::Status status;
  std::vector<v1::SynthesizeResponse> messages;
  std::string ogg;  // the audio messages' data, concatenated
  v1::SynthesisSummary summary;
};

void Collect(const v1::SynthesizeResponse& msg, Result* r) {
  r->messages.push_back(msg);
  if (msg.has_audio()) r->ogg += msg.audio().data();
  if (msg.has_summary()) r->summary = msg.summary();
}

// Checks that `ogg` is ONE well-formed Ogg Opus stream (RFC 3533/7845): pages back to back, one
// serial, sequence numbers 0, 1, 2, ..., the first page alone BOS (OpusHead), the second page
// OpusTags, the last page alone EOS, granules never decreasing. Returns the last granule.
int64_t CheckOneOggStream(const std::string& ogg) {
  size_t pos = 0;
  uint32_t serial = 0;
  int64_t granule = 0;
  int pages = 0;
  bool eos_seen = false;
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int k = 3; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(ogg[at + k]);
    return v;
  };
  while (pos < ogg.size()) {
    EXPECT_FALSE(eos_seen) << "a page after the EOS page, at byte " << pos;
    if (pos + 27 > ogg.size() || ogg.compare(pos, 4, "OggS") != 0) {
      ADD_FAILURE() << "no Ogg page at byte " << pos;
      return -1;
    }
    const uint8_t flags = static_cast<uint8_t>(ogg[pos + 5]);
    const int64_t page_granule = static_cast<int64_t>(u32(pos + 6)) |
                                 (static_cast<int64_t>(u32(pos + 10)) << 32);
    const uint32_t page_serial = u32(pos + 14);
    const uint32_t sequence = u32(pos + 18);
    const int segments = static_cast<uint8_t>(ogg[pos + 26]);
    size_t body = 0;
    for (int k = 0; k < segments; ++k) body += static_cast<uint8_t>(ogg[pos + 27 + k]);
    const size_t payload = pos + 27 + segments;
    if (payload + body > ogg.size()) {
      ADD_FAILURE() << "a truncated page at byte " << pos;
      return -1;
    }
    if (pages == 0) {
      serial = page_serial;
      EXPECT_TRUE(flags & 0x02) << "the first page is not BOS";
      EXPECT_EQ(ogg.compare(payload, 8, "OpusHead"), 0);
    } else {
      EXPECT_FALSE(flags & 0x02) << "a second BOS page (a second stream) at page " << pages;
      EXPECT_EQ(page_serial, serial) << "another serial at page " << pages;
    }
    if (pages == 1) EXPECT_EQ(ogg.compare(payload, 8, "OpusTags"), 0);
    EXPECT_EQ(sequence, static_cast<uint32_t>(pages));
    if (page_granule != -1) {
      EXPECT_GE(page_granule, granule) << "granule went back at page " << pages;
      granule = page_granule;
    }
    eos_seen = flags & 0x04;
    pos = payload + body;
    ++pages;
  }
  EXPECT_TRUE(eos_seen) << "no EOS page";
  EXPECT_GE(pages, 3);
  return granule;
}

class SynthesizeStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    voxd_ = new ChildProcess();
    // No models: the built-in espeak-ng engine speaks.
    address_ = new std::string(testing::StartVoxd(
        voxd_, VOXD_BINARY,
        {"--models", testing::ModelsDir("stream-builtin", {}), "--threads", "1",
         "--metrics-listen", "127.0.0.1:0"},
        "stream-builtin"));
  }
  static void TearDownTestSuite() {
    if (voxd_->pid() > 0) EXPECT_EQ(*voxd_->Wait(SIGTERM, absl::Seconds(60)), 0);
    delete voxd_;
    delete address_;
  }
  void SetUp() override {
    ASSERT_FALSE(address_->empty());
    stub_ = v1::SpeechService::NewStub(
        grpc::CreateChannel(*address_, grpc::InsecureChannelCredentials()));
  }

  static v1::SynthesizeStreamRequest Config(const std::string& text = "") {
    v1::SynthesizeStreamRequest m;
    m.mutable_config()->set_language("eng_Latn");
    m.mutable_config()->set_text(text);
    return m;
  }
  static v1::SynthesizeStreamRequest Piece(const std::string& text) {
    v1::SynthesizeStreamRequest m;
    m.set_text(text);
    return m;
  }
  static v1::SynthesizeStreamRequest Flush() {
    v1::SynthesizeStreamRequest m;
    m.mutable_flush();
    return m;
  }

  static void SetDeadline(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  }

  // Sends `requests`, half-closes, reads everything.
  Result Stream(const std::vector<v1::SynthesizeStreamRequest>& requests) {
    grpc::ClientContext context;
    SetDeadline(&context);
    std::unique_ptr<StreamCall> call = stub_->SynthesizeStream(&context);
    for (const auto& r : requests) {
      if (!call->Write(r)) break;  // the server ended the call
    }
    call->WritesDone();
    Result result;
    v1::SynthesizeResponse msg;
    while (call->Read(&msg)) Collect(msg, &result);
    result.status = call->Finish();
    return result;
  }

  Result Synthesize(const std::string& text) {
    grpc::ClientContext context;
    SetDeadline(&context);
    v1::SynthesizeRequest request;
    request.set_text(text);
    request.set_language("eng_Latn");
    auto reader = stub_->Synthesize(&context, request);
    Result result;
    v1::SynthesizeResponse msg;
    while (reader->Read(&msg)) Collect(msg, &result);
    result.status = reader->Finish();
    return result;
  }

  static ChildProcess* voxd_;
  static std::string* address_;
  std::unique_ptr<v1::SpeechService::Stub> stub_;
};

ChildProcess* SynthesizeStreamTest::voxd_ = nullptr;
std::string* SynthesizeStreamTest::address_ = nullptr;

const std::vector<std::string> kSentences = {"The quick brown fox jumps over the lazy dog.",
                                             "Dr. Smith paid 3.5 dollars for it!",
                                             "Is that not a fine price?"};

TEST_F(SynthesizeStreamTest, WordByWordGivesOneOggStreamCoveringEverySentence) {
  std::vector<v1::SynthesizeStreamRequest> requests = {Config()};
  for (const std::string& sentence : kSentences) {
    for (absl::string_view word : absl::StrSplit(sentence, ' ')) {
      requests.push_back(Piece(std::string(word) + " "));
    }
  }
  const Result r = Stream(requests);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_GE(r.messages.size(), 3u);
  EXPECT_TRUE(r.messages.front().has_header());
  ASSERT_TRUE(r.messages.back().has_summary());
  EXPECT_EQ(r.summary.utterances(), 3);  // one per sentence ("Dr." and "3.5" end nothing)
  // Each sentence's piece-to-first-audio time is observed once.
  const std::string metrics =
      testing::Body(testing::HttpGet(testing::MetricsPort(*voxd_), "/metrics"));
  EXPECT_EQ(testing::Sample(metrics, "vox_sentence_first_audio_seconds_count",
                            {"method=\"SynthesizeStream\""}),
            3)
      << metrics;
  const int64_t granule = CheckOneOggStream(r.ogg);
  // The Ogg granule counts 48 kHz samples, pre-skip included; the summary 24 kHz ones.
  EXPECT_NEAR(r.summary.total_samples(), (granule - r.messages.front().header().pre_skip()) / 2,
              1);

  // Every sentence is in the stream: its length is the sum of the sentences spoken alone.
  int64_t alone = 0;
  for (const std::string& sentence : kSentences) {
    const Result one = Synthesize(sentence);
    ASSERT_TRUE(one.status.ok()) << one.status.error_message();
    alone += one.summary.total_samples();
  }
  EXPECT_NEAR(static_cast<double>(r.summary.total_samples()), static_cast<double>(alone),
              0.02 * alone);
}

TEST_F(SynthesizeStreamTest, ACompleteSentenceIsSpokenBeforeHalfCloseAndFlushSpeaksTheRest) {
  const Result first_alone = Synthesize("First sentence here.");
  ASSERT_TRUE(first_alone.status.ok()) << first_alone.status.error_message();
  grpc::ClientContext context;
  SetDeadline(&context);
  std::unique_ptr<StreamCall> call = stub_->SynthesizeStream(&context);
  ASSERT_TRUE(call->Write(Config("First sentence here. And")));
  // Audio comes for the first sentence while the call is still open ("And" is incomplete).
  v1::SynthesizeResponse msg;
  Result r;
  int64_t samples = 0;
  while (samples == 0 && call->Read(&msg)) {
    Collect(msg, &r);
    if (msg.has_audio()) samples += msg.audio().num_samples();
  }
  ASSERT_GT(samples, 0) << call->Finish().error_message();
  // The flush speaks "And then no full stop" at once: audio beyond the first sentence's length
  // arrives before the half-close.
  ASSERT_TRUE(call->Write(Piece(" then no full stop")));
  ASSERT_TRUE(call->Write(Flush()));
  const int64_t beyond = first_alone.summary.total_samples() + 24000 / 4;
  while (samples < beyond && call->Read(&msg)) {
    Collect(msg, &r);
    if (msg.has_audio()) samples += msg.audio().num_samples();
  }
  ASSERT_GE(samples, beyond);
  ASSERT_TRUE(call->Write(Piece("Last words")));  // spoken at half-close
  call->WritesDone();
  while (call->Read(&msg)) Collect(msg, &r);
  const grpc::Status s = call->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.summary.utterances(), 3);
  CheckOneOggStream(r.ogg);
}

TEST_F(SynthesizeStreamTest, HalfCloseSpeaksTheUnfinishedText) {
  const Result r = Stream({Config("An unfinished thought")});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.summary.utterances(), 1);
  EXPECT_GT(r.summary.audio_seconds(), 0.5);
  CheckOneOggStream(r.ogg);
}

TEST_F(SynthesizeStreamTest, BadInputEndsTheCallWithInvalidArgument) {
  auto expect_invalid = [](const Result& r, const std::string& what) {
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << what;
    EXPECT_THAT(r.status.error_message(), HasSubstr(what));
  };
  expect_invalid(Stream({Piece("Hello.")}), "the first message must be the config");
  expect_invalid(Stream({Flush()}), "the first message must be the config");
  expect_invalid(Stream({}), "the stream ended before its first message");
  expect_invalid(Stream({Config(), Config()}), "a second config");
  expect_invalid(Stream({Config("<speak>Hi</speak>")}), "SSML is for Synthesize");
  expect_invalid(Stream({Config(), v1::SynthesizeStreamRequest()}), "no payload");
  expect_invalid(Stream({Config(), Piece(std::string(5000, 'a'))}),
                 "a text piece of 5000 bytes; at most 4096");
  v1::SynthesizeStreamRequest bad_voice = Config();
  bad_voice.mutable_config()->set_voice("no-such-voice");
  expect_invalid(Stream({bad_voice}), "no-such-voice");
  v1::SynthesizeStreamRequest bad_language = Config();
  bad_language.mutable_config()->set_language("xxx_Latn");
  expect_invalid(Stream({bad_language}), "xxx_Latn");
  // voxd goes on serving.
  const Result ok = Stream({Config("Still here.")});
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
}

TEST_F(SynthesizeStreamTest, CancelMidStreamEndsCancelledAndOthersGoOn) {
  grpc::ClientContext context;
  SetDeadline(&context);
  std::unique_ptr<StreamCall> call = stub_->SynthesizeStream(&context);
  ASSERT_TRUE(call->Write(Config("A first sentence to speak. ")));
  v1::SynthesizeResponse msg;
  bool audio = false;
  while (!audio && call->Read(&msg)) audio = msg.has_audio();
  ASSERT_TRUE(audio);
  context.TryCancel();
  while (call->Read(&msg)) {
  }
  EXPECT_EQ(call->Finish().error_code(), grpc::StatusCode::CANCELLED);
  const Result other = Stream({Config("Another caller. ")});
  EXPECT_TRUE(other.status.ok()) << other.status.error_message();
  EXPECT_EQ(other.summary.utterances(), 1);
}

TEST_F(SynthesizeStreamTest, ADeadlineEndsAnOpenStream) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1500));
  std::unique_ptr<StreamCall> call = stub_->SynthesizeStream(&context);
  ASSERT_TRUE(call->Write(Config("Waiting for the rest")));
  v1::SynthesizeResponse msg;
  while (call->Read(&msg)) {
  }
  EXPECT_EQ(call->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(Stream({Config("Fine.")}).status.ok());
}

// --- SSML on Synthesize, spoken by espeak-ng natively.

TEST_F(SynthesizeStreamTest, SsmlBreakAndRateChangeTheAudio) {
  const Result plain = Synthesize("One two three.");
  ASSERT_TRUE(plain.status.ok()) << plain.status.error_message();
  const Result paused = Synthesize("<speak>One <break time=\"2s\"/> two three.</speak>");
  ASSERT_TRUE(paused.status.ok()) << paused.status.error_message();
  const double added = paused.summary.audio_seconds() - plain.summary.audio_seconds();
  EXPECT_GT(added, 1.8);
  EXPECT_LT(added, 2.6);
  EXPECT_EQ(paused.summary.utterances(), 1);  // one SSML document for espeak-ng
  const Result slow = Synthesize("<speak><prosody rate=\"x-slow\">One two three.</prosody></speak>");
  ASSERT_TRUE(slow.status.ok()) << slow.status.error_message();
  EXPECT_GT(slow.summary.audio_seconds(), 1.5 * plain.summary.audio_seconds());
  CheckOneOggStream(paused.ogg);
}

TEST_F(SynthesizeStreamTest, SsmlSayAsSubAndUnknownTagsAreSpoken) {
  // Compared with the same words as SSML (espeak-ng's SSML mode adds a pause of its own).
  const Result plain = Synthesize("<speak>Call five five five, one two three four.</speak>");
  const Result ssml = Synthesize(
      "<speak><emphasis>Call</emphasis> <say-as interpret-as=\"telephone\">555-1234"
      "</say-as>.</speak>");
  ASSERT_TRUE(plain.status.ok() && ssml.status.ok()) << ssml.status.error_message();
  EXPECT_NEAR(ssml.summary.audio_seconds(), plain.summary.audio_seconds(),
              0.1 * plain.summary.audio_seconds());
  const Result sub = Synthesize("<speak><sub alias=\"World Wide Web Consortium\">W3C</sub></speak>");
  const Result alias = Synthesize("<speak>World Wide Web Consortium</speak>");
  ASSERT_TRUE(sub.status.ok()) << sub.status.error_message();
  // The alias is spoken, not "W3C" (within a millisecond of resampler rounding).
  EXPECT_NEAR(sub.summary.total_samples(), alias.summary.total_samples(), 24);
}

TEST_F(SynthesizeStreamTest, MalformedSsmlIsInvalidArgumentWithThePosition) {
  const Result r = Synthesize("<speak>Hello <break time=\"soon\"/></speak>");
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("bad break time 'soon'"));
  EXPECT_THAT(r.status.error_message(), HasSubstr("at byte 20 (character 20, line 1, column 21)"));
  const Result unclosed = Synthesize("<speak>Hello <s>world</speak>");
  EXPECT_EQ(unclosed.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(unclosed.status.error_message(), HasSubstr("</speak> does not close <s> at byte 21"));
  const Result language = Synthesize("<speak><lang xml:lang=\"tlh\">Qapla'</lang></speak>");
  EXPECT_EQ(language.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(language.status.error_message(), HasSubstr("xml:lang 'tlh'"));
}

#if VOX_TEST_XTTS
const std::string kTinyXtts = std::string(VOX_TINY_DIR) + "/models/xtts-tiny";
constexpr int kForcedCodes = 12;

class XttsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = testing::StartVoxd(&voxd_, VOXD_BINARY,
                                  {"--models", testing::ModelsDir("stream-xtts", {kTinyXtts}),
                                   "--builtin", "off", "--threads", "1"},
                                  "stream-xtts");
    ASSERT_FALSE(address_.empty());
    stub_ = v1::SpeechService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (voxd_.pid() > 0) EXPECT_EQ(*voxd_.Wait(SIGTERM, absl::Seconds(60)), 0);
  }
  static v1::SynthesizeRequest Request(const std::string& text) {
    v1::SynthesizeRequest r;
    r.set_text(text);
    r.set_language("eng_Latn");
    r.mutable_options()->set_greedy(true);
    r.mutable_options()->set_forced_codes(kForcedCodes);  // a fixed length per piece
    return r;
  }
  Result Synthesize(const std::string& text) {
    grpc::ClientContext context;
    auto reader = stub_->Synthesize(&context, Request(text));
    Result r;
    v1::SynthesizeResponse msg;
    while (reader->Read(&msg)) Collect(msg, &r);
    r.status = reader->Finish();
    return r;
  }

  ChildProcess voxd_;
  std::string address_;
  std::unique_ptr<v1::SpeechService::Stub> stub_;
};

TEST_F(XttsStreamTest, WordByWordSpeaksEachSentenceInOneOggStream) {
  grpc::ClientContext context;
  std::unique_ptr<StreamCall> call = stub_->SynthesizeStream(&context);
  v1::SynthesizeStreamRequest config;
  *config.mutable_config() = Request("");
  ASSERT_TRUE(call->Write(config));
  for (const std::string& word : {"Hello", "there.", "How", "are", "you?", "Fine,", "thanks."}) {
    v1::SynthesizeStreamRequest piece;
    piece.set_text(std::string(word) + " ");
    ASSERT_TRUE(call->Write(piece));
  }
  call->WritesDone();
  Result r;
  v1::SynthesizeResponse msg;
  while (call->Read(&msg)) Collect(msg, &r);
  r.status = call->Finish();
  ASSERT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << voxd_.Stderr();
  EXPECT_EQ(r.summary.utterances(), 3);
  EXPECT_EQ(r.summary.codes(), 3 * kForcedCodes);
  CheckOneOggStream(r.ogg);
}

TEST_F(XttsStreamTest, SsmlBreaksAreSilenceBetweenUtterances) {
  const Result plain = Synthesize("<speak><s>Hello there.</s><s>Bye now.</s></speak>");
  const Result paused = Synthesize("<speak>Hello there.<break time=\"1s\"/>Bye now.</speak>");
  ASSERT_TRUE(plain.status.ok()) << plain.status.error_message();
  ASSERT_TRUE(paused.status.ok()) << paused.status.error_message();
  EXPECT_EQ(plain.summary.utterances(), 2);
  EXPECT_EQ(paused.summary.utterances(), 2);
  // The same codes (each sentence an utterance of kForcedCodes), plus one second of silence.
  EXPECT_EQ(plain.summary.codes(), 2 * kForcedCodes);
  EXPECT_EQ(paused.summary.codes(), plain.summary.codes());
  EXPECT_NEAR(paused.summary.audio_seconds() - plain.summary.audio_seconds(), 1.0, 0.1);
  CheckOneOggStream(paused.ogg);
}

#endif  // VOX_TEST_XTTS

}  // namespace
}  // namespace vox
