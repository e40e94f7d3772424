// Integration: the real voxd's quotas and stream limits on loopback, with the built-in engines
// (Apertium eng->spa, espeak-ng): characters per day per token (reloaded on SIGHUP), segments
// per SpeechTranslate session, texts per Translate call, and the idle-stream timeout.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/token_file.h"
#include "tests/auth/test_certs.h"
#include "tests/metrics/scrape.h"
#include "tests/server/voxd_launch.h"
#include "tests/server/voxd_process.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/speech_translation.grpc.pb.h"
#include "vox/v1/translation.grpc.pb.h"
#include "vox/v1/voice.grpc.pb.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::CertFiles;
using testing::ChildProcess;

// A directory for the test's files (every ctest run has a temporary directory of its own).
std::string Dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/voxd-quota-" + name;
  fs::create_directories(dir);
  return dir;
}

// SynthesizeStream's first message: plain English text follows.
v1::SynthesizeStreamRequest EnglishStreamConfig() {
  v1::SynthesizeStreamRequest config;
  config.mutable_config()->set_language("eng_Latn");
  return config;
}

std::string Token(const std::string& name, const std::string& secret, const std::string& extra) {
  return absl::StrCat("[[token]]\nname = \"", name, "\"\nsha256 = \"", Sha256Hex(secret),
                      "\"\nservices = [\"*\"]\n", extra, "\n");
}

template <typename Context>
void SetDeadline(Context* context, absl::Duration d = absl::Seconds(60)) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + d));
}

grpc::Status Translate(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                       const std::vector<std::string>& texts) {
  auto stub = v1::TranslationService::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context);
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  v1::TranslateRequest request;
  request.set_source_language("eng_Latn");
  request.set_target_language("spa_Latn");
  for (const std::string& t : texts) request.add_texts(t);
  v1::TranslateResponse response;
  return stub->Translate(&context, request, &response);
}

// Polls the scrape until it holds `line` (metrics are updated as calls end).
bool ScrapeShows(const ChildProcess& voxd, const std::string& line) {
  const absl::Time end = absl::Now() + absl::Seconds(15);
  while (absl::Now() < end) {
    if (testing::HttpGet(testing::MetricsPort(voxd), "/metrics").find(line) != std::string::npos) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

TEST(VoxdCharactersPerDayTest, TextOverTheDailyBudgetIsRefusedAndSighupRaisesIt) {
  const std::string dir = Dir("daily");
  const CertFiles ca = testing::MakeCa(dir, "ca");
  const CertFiles server = testing::MakeLeaf(dir, "server", ca);
  const std::string tokens = dir + "/tokens.toml";
  std::ofstream(tokens) << Token("daily", "secret-daily", "characters_per_day = 40")
                        << Token("stream", "secret-stream", "characters_per_day = 30")
                        << Token("free", "secret-free", "");
  ChildProcess voxd;
  const std::string address = testing::StartVoxd(
      &voxd, VOXD_BINARY,
      {"--builtin", "auto", "--tls-cert", server.cert, "--tls-key", server.key, "--token-file",
       tokens, "--metrics-listen", "127.0.0.1:0"},
      "daily");
  ASSERT_FALSE(address.empty());
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = testing::ReadAll(ca.cert);
  auto channel = grpc::CreateChannel(address, grpc::SslCredentials(tls));

  const std::string sentence = "The house is big.";  // 17 characters
  EXPECT_TRUE(Translate(channel, "secret-daily", {sentence}).ok());
  const grpc::Status over = Translate(channel, "secret-daily", {sentence, sentence});  // 51 > 40
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << over.error_message();
  EXPECT_THAT(over.error_message(), HasSubstr("token 'daily' has sent 17 of its 40 characters"));
  EXPECT_TRUE(Translate(channel, "secret-daily", {"Hello."}).ok());  // refused text not counted
  EXPECT_TRUE(Translate(channel, "secret-free", {sentence, sentence, sentence}).ok());

  // SIGHUP with a larger budget: today's count (23) stays.
  std::ofstream(tokens) << Token("daily", "secret-daily", "characters_per_day = 60")
                        << Token("stream", "secret-stream", "characters_per_day = 30")
                        << Token("free", "secret-free", "");
  ASSERT_EQ(::kill(voxd.pid(), SIGHUP), 0);
  ASSERT_TRUE(ScrapeShows(voxd, "vox_config_reloads_total{result=\"ok\",what=\"tokens\"} 1"));
  EXPECT_TRUE(Translate(channel, "secret-daily", {sentence, sentence}).ok());  // 57 <= 60
  EXPECT_EQ(Translate(channel, "secret-daily", {"Hello."}).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);  // 63 > 60

  // SynthesizeStream: the piece that does not fit ends the input; what came before is spoken.
  auto speech = v1::SpeechService::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context);
  context.AddMetadata("authorization", "Bearer secret-stream");
  auto stream = speech->SynthesizeStream(&context);
  ASSERT_TRUE(stream->Write(EnglishStreamConfig()));
  v1::SynthesizeStreamRequest piece;
  piece.set_text("Hello there. ");  // 13
  ASSERT_TRUE(stream->Write(piece));
  piece.set_text("How are you doing today? ");  // 25: 38 > 30
  stream->Write(piece);
  stream->WritesDone();
  int audio = 0;
  int utterances = -1;
  v1::SynthesizeResponse response;
  while (stream->Read(&response)) {
    audio += response.has_audio() ? 1 : 0;
    if (response.has_summary()) utterances = response.summary().utterances();
  }
  const grpc::Status ended = stream->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << ended.error_message();
  EXPECT_THAT(ended.error_message(), HasSubstr("not spoken (everything before it was)"));
  EXPECT_GT(audio, 0);
  EXPECT_EQ(utterances, 1);  // "Hello there." only

  EXPECT_TRUE(ScrapeShows(voxd, "vox_token_characters_total{token=\"daily\"} 57"));
  EXPECT_TRUE(ScrapeShows(voxd, "vox_token_characters_total{token=\"stream\"} 13"));
  EXPECT_TRUE(ScrapeShows(
      voxd, "vox_quota_rejections_total{quota=\"characters_per_day\",token=\"daily\"} 2"));
  EXPECT_TRUE(ScrapeShows(
      voxd, "vox_quota_rejections_total{quota=\"characters_per_day\",token=\"stream\"} 1"));
}

// One plaintext voxd: 2 segments per session, 2 texts per call, streams idle 3 s are ended.
class VoxdStreamLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(Dir("limits"));
    voxd_ = new ChildProcess();
    address_ = new std::string(testing::StartVoxd(
        voxd_, VOXD_BINARY,
        {"--builtin", "auto", "--max-segments-per-session", "2", "--max-texts", "2",
         "--idle-stream-timeout", "3", "--voices", *dir_ + "/voices", "--metrics-listen",
         "127.0.0.1:0"},
        "limits"));
  }
  static void TearDownTestSuite() {
    delete voxd_;
    delete address_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_FALSE(address_->empty()) << "voxd did not start";
    channel_ = grpc::CreateChannel(*address_, grpc::InsecureChannelCredentials());
  }

  static v1::SpeechTranslateRequest SessionConfig() {
    v1::SpeechTranslateRequest r;
    r.mutable_config()->set_source_language("eng_Latn");
    r.mutable_config()->set_target_language("spa_Latn");
    r.mutable_config()->mutable_audio()->set_encoding(v1::AUDIO_ENCODING_PCM16);
    return r;
  }
  static v1::SpeechTranslateRequest Segment(uint64_t id, const std::string& text) {
    v1::SpeechTranslateRequest r;
    r.mutable_segment()->set_segment_id(id);
    r.mutable_segment()->set_text(text);
    return r;
  }

  static std::string* dir_;
  static ChildProcess* voxd_;
  static std::string* address_;
  std::shared_ptr<grpc::Channel> channel_;
};
std::string* VoxdStreamLimitsTest::dir_ = nullptr;
ChildProcess* VoxdStreamLimitsTest::voxd_ = nullptr;
std::string* VoxdStreamLimitsTest::address_ = nullptr;

TEST_F(VoxdStreamLimitsTest, ASessionAnswersItsSegmentsUpToTheLimitThenEnds) {
  auto stub = v1::SpeechTranslationService::NewStub(channel_);
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = stub->SpeechTranslate(&context);
  ASSERT_TRUE(stream->Write(SessionConfig()));
  stream->Write(Segment(1, "The house is big."));
  stream->Write(Segment(2, "The car is red."));
  stream->Write(Segment(3, "The dog is small."));
  stream->WritesDone();
  std::vector<uint64_t> translated, ended;
  v1::SpeechTranslateResponse msg;
  while (stream->Read(&msg)) {
    if (msg.has_translation()) translated.push_back(msg.translation().segment_id());
    if (msg.has_segment_end()) ended.push_back(msg.segment_end().segment_id());
  }
  const grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("segment 3 and any sent after it were not accepted"));
  EXPECT_THAT(s.error_message(), HasSubstr("server.max_segments_per_session"));
  EXPECT_EQ(translated, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(ended, (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(ScrapeShows(
      *voxd_, "vox_quota_rejections_total{quota=\"max_segments_per_session\",token=\"-\"} 1"));
}

TEST_F(VoxdStreamLimitsTest, TooManyTextsIsInvalidAndCounted) {
  const grpc::Status s = Translate(channel_, "", {"One.", "Two.", "Three."});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("server.max_texts_per_call"));
  EXPECT_TRUE(ScrapeShows(
      *voxd_, "vox_quota_rejections_total{quota=\"max_texts_per_call\",token=\"-\"} 1"));
}

TEST_F(VoxdStreamLimitsTest, AnIdleSessionEndsAfterItsSegmentsAreAnswered) {
  auto stub = v1::SpeechTranslationService::NewStub(channel_);
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = stub->SpeechTranslate(&context);
  ASSERT_TRUE(stream->Write(SessionConfig()));
  ASSERT_TRUE(stream->Write(Segment(1, "The house is big.")));
  // The client sends nothing more and does not half-close.
  std::vector<uint64_t> ended;
  v1::SpeechTranslateResponse msg;
  while (stream->Read(&msg)) {
    if (msg.has_segment_end()) ended.push_back(msg.segment_end().segment_id());
  }
  const grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("server.idle_stream_timeout_seconds"));
  EXPECT_EQ(ended, (std::vector<uint64_t>{1}));
}

TEST_F(VoxdStreamLimitsTest, AnIdleSynthesizeStreamAndCreateVoiceEnd) {
  auto speech = v1::SpeechService::NewStub(channel_);
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = speech->SynthesizeStream(&context);
  ASSERT_TRUE(stream->Write(EnglishStreamConfig()));
  v1::SynthesizeResponse response;
  while (stream->Read(&response)) {
  }
  const grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();

  auto voices = v1::VoiceService::NewStub(channel_);
  grpc::ClientContext create_context;
  SetDeadline(&create_context);
  v1::Voice voice;
  auto upload = voices->CreateVoice(&create_context, &voice);  // sends nothing
  const grpc::Status created = upload->Finish();
  EXPECT_EQ(created.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << created.error_message();
  EXPECT_THAT(created.error_message(), HasSubstr("nothing was stored"));
  EXPECT_TRUE(ScrapeShows(
      *voxd_, "vox_quota_rejections_total{quota=\"idle_stream_timeout\",token=\"-\"}"));
}

TEST_F(VoxdStreamLimitsTest, AClientThatKeepsSendingIsNeverIdle) {
  auto speech = v1::SpeechService::NewStub(channel_);
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = speech->SynthesizeStream(&context);
  ASSERT_TRUE(stream->Write(EnglishStreamConfig()));
  // Words without a sentence end: nothing is spoken until the half-close, so the only activity
  // is the client's, one message every 0.5 s for 6 s (twice the timeout).
  for (int i = 0; i < 12; ++i) {
    v1::SynthesizeStreamRequest piece;
    piece.set_text("word ");
    ASSERT_TRUE(stream->Write(piece)) << "the stream ended after " << i << " pieces";
    absl::SleepFor(absl::Milliseconds(500));
  }
  stream->WritesDone();
  int audio = 0;
  v1::SynthesizeResponse response;
  while (stream->Read(&response)) audio += response.has_audio() ? 1 : 0;
  const grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(audio, 0);
}

}  // namespace
}  // namespace vox
