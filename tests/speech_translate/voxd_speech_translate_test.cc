// SpeechTranslate against a real voxd serving the built-in engines (Apertium eng->spa,
// espeak-ng), and `voxctl speech-translate` writing one playable Ogg Opus file.
#include <cstdlib>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/voxd_process.h"
#include "vox/v1/speech_translation.grpc.pb.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ChildProcess;

std::string TempPath(const std::string& name) {
  return (fs::path(::testing::TempDir()) / name).string();
}

class VoxdSpeechTranslateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    voxd_ = new ChildProcess();
    ASSERT_TRUE(voxd_
                    ->Start({VOXD_BINARY, "--listen", "127.0.0.1:0", "--builtin", "auto",
                             "--access-log", "false"},
                            TempPath("voxd-st.stderr"))
                    .ok());
    absl::StatusOr<std::string> line = voxd_->ReadLine(absl::Seconds(120));
    ASSERT_TRUE(line.ok()) << line.status() << "\n" << voxd_->Stderr();
    const std::string prefix = "voxd listening on ";
    ASSERT_TRUE(absl::StartsWith(*line, prefix)) << *line;
    address_ = new std::string(line->substr(prefix.size()));
  }
  static void TearDownTestSuite() {
    if (voxd_ != nullptr) (void)voxd_->Wait(SIGTERM, absl::Seconds(30));
    delete voxd_;
    delete address_;
  }

  void SetUp() override {
    ASSERT_NE(address_, nullptr);
    stub_ = v1::SpeechTranslationService::NewStub(
        grpc::CreateChannel(*address_, grpc::InsecureChannelCredentials()));
  }

  static v1::SpeechTranslateRequest Config(v1::AudioEncoding encoding) {
    v1::SpeechTranslateRequest r;
    r.mutable_config()->set_source_language("eng_Latn");
    r.mutable_config()->set_target_language("spa_Latn");
    r.mutable_config()->mutable_audio()->set_encoding(encoding);
    return r;
  }

  struct Result {
    grpc::Status status;
    std::vector<v1::SpeechTranslateResponse> messages;
  };
  Result Session(const std::vector<std::string>& texts, v1::AudioEncoding encoding) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto stream = stub_->SpeechTranslate(&context);
    stream->Write(Config(encoding));
    for (size_t i = 0; i < texts.size(); ++i) {
      v1::SpeechTranslateRequest r;
      r.mutable_segment()->set_segment_id(100 + i);
      r.mutable_segment()->set_text(texts[i]);
      if (!stream->Write(r)) break;
    }
    stream->WritesDone();
    Result out;
    v1::SpeechTranslateResponse msg;
    while (stream->Read(&msg)) out.messages.push_back(msg);
    out.status = stream->Finish();
    return out;
  }

  // Segment ids in the order their translation / segment_end arrived, checking that audio only
  // comes between a segment's translation and its end.
  static void CheckOrder(const Result& r, size_t segments) {
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_FALSE(r.messages.empty());
    EXPECT_TRUE(r.messages[0].has_header());
    uint64_t expected = 100;
    bool open = false;
    for (size_t i = 1; i < r.messages.size(); ++i) {
      const auto& m = r.messages[i];
      if (m.has_translation()) {
        EXPECT_FALSE(open);
        EXPECT_EQ(m.translation().segment_id(), expected);
        open = true;
      } else if (m.has_audio()) {
        // After the last segment_end only the end-of-stream tail may come.
        if (!open) {
          EXPECT_EQ(expected, 100 + segments) << "audio outside a segment";
        }
      } else if (m.has_segment_end()) {
        EXPECT_TRUE(open);
        EXPECT_EQ(m.segment_end().segment_id(), expected);
        open = false;
        ++expected;
      }
    }
    EXPECT_EQ(expected, 100 + segments);
  }

  static ChildProcess* voxd_;
  static std::string* address_;
  std::unique_ptr<v1::SpeechTranslationService::Stub> stub_;
};

ChildProcess* VoxdSpeechTranslateTest::voxd_ = nullptr;
std::string* VoxdSpeechTranslateTest::address_ = nullptr;

TEST_F(VoxdSpeechTranslateTest, ManySegmentsInOrderWithRealEngines) {
  std::vector<std::string> texts;
  for (int i = 0; i < 12; ++i) texts.push_back(absl::StrCat("The house number ", i, " is big."));
  texts.push_back("");
  Result r = Session(texts, v1::AUDIO_ENCODING_PCM16);
  CheckOrder(r, texts.size());
  // Each non-empty segment was spoken; the empty one has no audio.
  for (const auto& m : r.messages) {
    if (m.has_translation() && m.translation().segment_id() < 112) {
      EXPECT_THAT(m.translation().text(), HasSubstr("casa"));
    }
    if (m.has_segment_end()) {
      if (m.segment_end().segment_id() == 112) {
        EXPECT_EQ(m.segment_end().total_samples(), 0);
      } else {
        EXPECT_GT(m.segment_end().timings().audio_seconds(), 0.3);
      }
    }
  }
}

TEST_F(VoxdSpeechTranslateTest, PartialSegmentsAreAnsweredSentenceBySentenceAsTheyComplete) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto stream = stub_->SpeechTranslate(&context);
  ASSERT_TRUE(stream->Write(Config(v1::AUDIO_ENCODING_OGG_OPUS)));
  auto piece = [](const std::string& text, bool partial) {
    v1::SpeechTranslateRequest r;
    r.mutable_segment()->set_segment_id(7);
    r.mutable_segment()->set_text(text);
    r.mutable_segment()->set_partial(partial);
    return r;
  };
  for (const char* word : {"The ", "house ", "is ", "big. ", "I "}) {
    ASSERT_TRUE(stream->Write(piece(word, true)));
  }
  // The first sentence is answered while the segment is still open.
  std::vector<v1::SpeechTranslateResponse> messages;
  v1::SpeechTranslateResponse msg;
  while (stream->Read(&msg)) {
    messages.push_back(msg);
    if (msg.has_segment_end()) break;
  }
  ASSERT_TRUE(messages.back().has_segment_end()) << stream->Finish().error_message();
  ASSERT_TRUE(stream->Write(piece("like the red ", true)));
  ASSERT_TRUE(stream->Write(piece("car.", false)));  // ends segment 7
  v1::SpeechTranslateRequest next;
  next.mutable_segment()->set_segment_id(8);
  next.mutable_segment()->set_text("Hello.");
  ASSERT_TRUE(stream->Write(next));
  stream->WritesDone();
  while (stream->Read(&msg)) messages.push_back(msg);
  const grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<std::pair<uint64_t, std::string>> translations;
  int ends = 0;
  for (const auto& m : messages) {
    if (m.has_translation()) {
      translations.push_back({m.translation().segment_id(), m.translation().text()});
    }
    if (m.has_segment_end()) ++ends;
  }
  ASSERT_EQ(translations.size(), 3u);
  EXPECT_EQ(ends, 3);
  EXPECT_EQ(translations[0].first, 7u);
  EXPECT_THAT(translations[0].second, HasSubstr("casa"));
  EXPECT_EQ(translations[1].first, 7u);
  EXPECT_THAT(translations[1].second, HasSubstr("coche"));
  EXPECT_EQ(translations[2].first, 8u);
}

TEST_F(VoxdSpeechTranslateTest, AnotherSegmentWhileOneIsPartialIsInvalidArgument) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto stream = stub_->SpeechTranslate(&context);
  stream->Write(Config(v1::AUDIO_ENCODING_OGG_OPUS));
  v1::SpeechTranslateRequest r;
  r.mutable_segment()->set_segment_id(1);
  r.mutable_segment()->set_text("Hello ");
  r.mutable_segment()->set_partial(true);
  stream->Write(r);
  r.mutable_segment()->set_segment_id(2);
  stream->Write(r);
  stream->WritesDone();
  v1::SpeechTranslateResponse msg;
  while (stream->Read(&msg)) {
  }
  const grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("segment 2 arrived while segment 1 is still partial"));
}

TEST_F(VoxdSpeechTranslateTest, InvalidConfigIsInvalidArgument) {
  grpc::ClientContext context;
  auto stream = stub_->SpeechTranslate(&context);
  v1::SpeechTranslateRequest config = Config(v1::AUDIO_ENCODING_OGG_OPUS);
  config.mutable_config()->set_target_language("xxx_Latn");
  stream->Write(config);
  stream->WritesDone();
  v1::SpeechTranslateResponse msg;
  EXPECT_FALSE(stream->Read(&msg));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("xxx_Latn"));
}

TEST_F(VoxdSpeechTranslateTest, ConcurrentSessionsAreAllCorrect) {
  constexpr int kSessions = 4;
  std::vector<Result> results(kSessions);
  std::vector<std::thread> threads;
  for (int s = 0; s < kSessions; ++s) {
    threads.emplace_back([this, s, &results] {
      results[s] = Session({"I like the red car.", "The house is big.", "Good morning."},
                           v1::AUDIO_ENCODING_OPUS);
    });
  }
  for (auto& t : threads) t.join();
  for (int s = 0; s < kSessions; ++s) {
    SCOPED_TRACE(s);
    CheckOrder(results[s], 3);
  }
}

TEST_F(VoxdSpeechTranslateTest, VoxctlPrintsTranslationsAndWritesOnePlayableOggFile) {
  const std::string out = TempPath("voxctl-session.ogg");
  std::error_code ec;
  fs::remove(out, ec);
  ChildProcess voxctl;
  ASSERT_TRUE(voxctl
                  .Start({VOXCTL_BINARY, "--server", *address_, "speech-translate", "--from",
                          "eng_Latn", "--to", "spa_Latn", "--out", out, "The house is big.",
                          "I like the red car."},
                         TempPath("voxctl-st.stderr"))
                  .ok());
  absl::StatusOr<int> code = voxctl.Wait(0, absl::Seconds(120));
  ASSERT_TRUE(code.ok()) << code.status();
  const std::string stdout_text = voxctl.RestOfStdout();
  EXPECT_EQ(*code, 0) << voxctl.Stderr();
  EXPECT_THAT(stdout_text, HasSubstr("[0] "));
  EXPECT_THAT(stdout_text, HasSubstr("casa"));
  EXPECT_THAT(stdout_text, HasSubstr("[1] queue "));
  ASSERT_TRUE(fs::exists(out));
  EXPECT_GT(fs::file_size(out), 1000u);
  // opusinfo checks the whole stream: one header, continuous granules, EOS at the end.
  const std::string cmd = absl::StrCat("opusinfo ", out, " > ", TempPath("opusinfo.txt"), " 2>&1");
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(TempPath("opusinfo.txt"));
  std::stringstream info;
  info << in.rdbuf();
  EXPECT_THAT(info.str(), ::testing::Not(HasSubstr("WARNING"))) << info.str();
  EXPECT_THAT(info.str(), HasSubstr("Opus"));
}

}  // namespace
}  // namespace vox
