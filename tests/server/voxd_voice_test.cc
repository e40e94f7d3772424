// VoiceService through the real voxd (built-in espeak-ng speech, which cannot clone) and voxctl:
// the status codes a client sees, the voice store loaded at start-up (a good voice, a damaged
// file skipped and counted, a temporary leftover removed), and delete.
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/voice_file.h"
#include "server/voice_store.h"
#include "tests/metrics/scrape.h"
#include "tests/server/voxd_launch.h"
#include "tests/server/voxd_process.h"
#include "vox/v1/discovery.grpc.pb.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/voice.grpc.pb.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ChildProcess;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// 4 s of a tone as a mono 16 kHz WAV file.
std::string ToneWav() {
  const int rate = 16000, n = 4 * rate;
  std::string data;
  for (int i = 0; i < n; ++i) {
    const auto s = static_cast<int16_t>(8000 * std::sin(6.2831853 * 220.0 * i / rate));
    data += static_cast<char>(s & 0xFF);
    data += static_cast<char>((s >> 8) & 0xFF);
  }
  auto le = [](uint32_t v, int bytes) {
    std::string out;
    for (int b = 0; b < bytes; ++b) out += static_cast<char>((v >> (8 * b)) & 0xFF);
    return out;
  };
  return "RIFF" + le(36 + data.size(), 4) + "WAVEfmt " + le(16, 4) + le(1, 2) + le(1, 2) +
         le(rate, 4) + le(rate * 2, 4) + le(2, 2) + le(16, 2) + "data" + le(data.size(), 4) + data;
}

class VoxdVoiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    voices_dir_ = (fs::path(::testing::TempDir()) / "voxd-voices").string();
    fs::remove_all(voices_dir_);
    fs::create_directories(voices_dir_);
    // A voice made earlier by XTTS weights this voxd does not load.
    StoredVoice v;
    v.name = "Prepared";
    v.languages = {"spa_Latn"};
    v.model = "xtts";
    v.create_time = absl::FromUnixSeconds(1'780'000'000);
    v.reference_seconds = 6.5;
    auto c = std::make_shared<ClonedVoice>();
    c->model_id = "xtts-v2-weights-0123";
    c->cond_rows = 2;
    c->cond_dim = 2;
    c->gpt_cond_latent = {1, 2, 3, 4};
    c->speaker_embedding = {5, 6};
    v.voice = c;
    WriteFile(voices_dir_ + "/" + VoiceStore::FileName("Prepared"), EncodeVoiceFile(v));
    const std::string good = EncodeVoiceFile(v);
    WriteFile(voices_dir_ + "/" + VoiceStore::FileName("Broken"), good.substr(0, good.size() / 2));
    WriteFile(voices_dir_ + "/.tmp-1-0-" + VoiceStore::FileName("Half"), good.substr(0, 30));

    address_ = testing::StartVoxd(
        &voxd_, VOXD_BINARY,
        {"--models", testing::ModelsDir("voices-builtin", {}), "--threads", "1", "--voices",
         voices_dir_, "--max-voices", "1", "--metrics-listen", "127.0.0.1:0"},
        "voices-builtin");
    ASSERT_FALSE(address_.empty());
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    stub_ = v1::VoiceService::NewStub(channel_);
  }

  grpc::Status Create(const std::string& name, const std::string& clip) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::Voice voice;
    auto writer = stub_->CreateVoice(&context, &voice);
    v1::CreateVoiceRequest config;
    config.mutable_config()->set_name(name);
    writer->Write(config);
    v1::CreateVoiceRequest audio;
    audio.mutable_audio()->set_data(clip);
    writer->Write(audio);
    writer->WritesDone();
    return writer->Finish();
  }

  std::pair<int, std::string> Voxctl(const std::vector<std::string>& args, std::string* err) {
    std::vector<std::string> argv = {VOXCTL_BINARY, "--server", address_};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess p;
    absl::Status s = p.Start(argv, testing::StderrPath("voxctl-voice"));
    EXPECT_TRUE(s.ok()) << s;
    absl::StatusOr<int> code = p.Wait(0, absl::Seconds(60));
    EXPECT_TRUE(code.ok()) << code.status();
    *err = p.Stderr();
    return {code.ok() ? *code : -1, p.RestOfStdout()};
  }

  std::string voices_dir_;
  ChildProcess voxd_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VoiceService::Stub> stub_;
};

TEST_F(VoxdVoiceTest, StoreLoadsAtStartupAndEveryRefusalHasItsCode) {
  // Start-up: the good voice is served, the damaged one skipped (logged and counted), the
  // temporary leftover removed.
  EXPECT_THAT(voxd_.Stderr(), HasSubstr("skipped " + VoiceStore::FileName("Broken") + ": "));
  EXPECT_THAT(voxd_.Stderr(),
              HasSubstr("1 voices loaded, 1 files skipped, 1 temporary files removed"));
  EXPECT_FALSE(fs::exists(voices_dir_ + "/.tmp-1-0-" + VoiceStore::FileName("Half")));
  const int metrics_port = testing::MetricsPort(voxd_);
  ASSERT_GT(metrics_port, 0);
  const std::string metrics = testing::Body(testing::HttpGet(metrics_port, "/metrics"));
  EXPECT_EQ(testing::Sample(metrics, "vox_voice_files_skipped_total"), 1);
  EXPECT_EQ(testing::Sample(metrics, "vox_created_voices"), 1);

  {
    grpc::ClientContext context;
    v1::GetVoiceRequest request;
    request.set_name("Prepared");
    v1::Voice voice;
    ASSERT_TRUE(stub_->GetVoice(&context, request, &voice).ok());
    EXPECT_TRUE(voice.created());
    EXPECT_EQ(voice.create_time().seconds(), 1'780'000'000);
    EXPECT_DOUBLE_EQ(voice.reference_audio_seconds(), 6.5);
    EXPECT_EQ(voice.model(), "xtts");
  }
  {
    auto discovery = v1::DiscoveryService::NewStub(channel_);
    grpc::ClientContext context;
    v1::ListVoicesRequest request;
    request.set_language("spa_Latn");
    v1::ListVoicesResponse response;
    ASSERT_TRUE(discovery->ListVoices(&context, request, &response).ok());
    ASSERT_GE(response.voices_size(), 2);
    EXPECT_EQ(response.voices(response.voices_size() - 1).name(), "Prepared");
    EXPECT_FALSE(response.voices(0).created());
  }
  // Made by weights this voxd does not have: listed, not spoken.
  {
    auto speech = v1::SpeechService::NewStub(channel_);
    grpc::ClientContext context;
    v1::SynthesizeRequest request;
    request.set_text("hola");
    request.set_language("spa_Latn");
    request.set_voice("Prepared");
    auto reader = speech->Synthesize(&context, request);
    v1::SynthesizeResponse response;
    while (reader->Read(&response)) {
    }
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(s.error_message(), HasSubstr("no loaded model has the same weights"));
  }

  const std::string wav = ToneWav();
  grpc::Status s = Create("Prepared", wav);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  s = Create("espeak:es", wav);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  s = Create("New", wav);  // --max-voices 1, and "Prepared" is there
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();

  // voxctl: list, get, delete.
  std::string err;
  auto [code, out] = Voxctl({"voice", "list", "--lang", "spa_Latn"}, &err);
  EXPECT_EQ(code, 0) << err;
  EXPECT_THAT(out, HasSubstr("Prepared"));
  EXPECT_THAT(out, HasSubstr("from 6.5 s"));
  std::tie(code, out) = Voxctl({"voice", "get", "Prepared"}, &err);
  EXPECT_EQ(code, 0) << err;
  EXPECT_THAT(out, HasSubstr("created 2026-05-28T"));
  std::tie(code, out) = Voxctl({"voice", "delete", "Prepared"}, &err);
  EXPECT_EQ(code, 0) << err;
  EXPECT_FALSE(fs::exists(voices_dir_ + "/" + VoiceStore::FileName("Prepared")));
  std::tie(code, out) = Voxctl({"voice", "get", "Prepared"}, &err);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(err, HasSubstr("NOT_FOUND"));
  std::tie(code, out) = Voxctl({"voice", "delete", "espeak:es"}, &err);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(err, HasSubstr("FAILED_PRECONDITION"));

  // Room now; espeak-ng cannot clone. Through voxctl too, with a real WAV file.
  s = Create("New", wav);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("cannot clone voices"));
  const std::string wav_path = voices_dir_ + "-ref.wav";
  WriteFile(wav_path, wav);
  std::tie(code, out) = Voxctl({"voice", "create", "--name", "New", wav_path}, &err);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(err, HasSubstr("UNIMPLEMENTED"));
  EXPECT_THAT(err, HasSubstr("espeak-ng"));
  // Nothing was stored by the refused calls: only the damaged file (left for the operator).
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(voices_dir_)) {
    files.push_back(e.path().filename().string());
  }
  EXPECT_THAT(files, ::testing::ElementsAre(VoiceStore::FileName("Broken")));
}

#if VOX_TEST_XTTS
// The tiny XTTS export made from Coqui's key layout: it carries the cloning modules (clone.ts)
// when its exporter has them, which its manifest's "cloning" section says.
const std::string kTinyXttsCoqui = std::string(VOX_TINY_DIR) + "/models-coqui/xtts-tiny-coqui";

bool ManifestSaysItClones(const std::string& model_dir) {
  std::ifstream in(model_dir + "/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);
  return manifest.contains("cloning") && manifest["cloning"].value("available", false);
}

struct Spoken {
  grpc::Status status;
  v1::SynthesisSummary summary;
  std::string pcm;  // PCM16 at the engine's rate
};

// Synthesize greedily with `voice` (a fixed number of codes), as PCM16.
Spoken SpeakGreedy(v1::SpeechService::Stub* stub, const std::string& voice) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::SynthesizeRequest request;
  request.set_text("Hello there.");
  request.set_language("eng_Latn");
  request.set_voice(voice);
  request.mutable_options()->set_greedy(true);
  request.mutable_options()->set_forced_codes(12);
  request.mutable_audio()->set_encoding(v1::AUDIO_ENCODING_PCM16);
  auto reader = stub->Synthesize(&context, request);
  v1::SynthesizeResponse response;
  Spoken out;
  while (reader->Read(&response)) {
    if (response.has_summary()) out.summary = response.summary();
    if (response.has_audio()) out.pcm += response.audio().data();
  }
  out.status = reader->Finish();
  return out;
}

// With XTTS: a model that clones makes the voice, Synthesize speaks it at once, and after voxd
// is SIGKILLed and started again on the same store the voice is there and speaks the same.
// An export without the cloning modules answers UNIMPLEMENTED instead.
TEST(VoxdXttsVoiceTest, XttsClonesAVoiceThatSurvivesSigkillOrSaysItCannot) {
  const std::string dir = (fs::path(::testing::TempDir()) / "voxd-xtts-voices").string();
  fs::remove_all(dir);
  const std::string models = testing::ModelsDir("voices-xtts", {kTinyXttsCoqui});
  const std::vector<std::string> flags = {"--models", models, "--builtin", "off", "--threads", "1",
                                          "--voices", dir};
  ChildProcess voxd;
  std::string address = testing::StartVoxd(&voxd, VOXD_BINARY, flags, "voices-xtts");
  ASSERT_FALSE(address.empty());
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto voices = v1::VoiceService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::Voice created;
  auto writer = voices->CreateVoice(&context, &created);
  v1::CreateVoiceRequest config;
  config.mutable_config()->set_name("Tiny Clone");
  config.mutable_config()->add_languages("eng_Latn");
  writer->Write(config);
  v1::CreateVoiceRequest audio;
  audio.mutable_audio()->set_data(ToneWav());
  writer->Write(audio);
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!ManifestSaysItClones(kTinyXttsCoqui)) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("cannot clone voices"));
    EXPECT_TRUE(fs::is_empty(dir));
    return;
  }
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(created.model(), "xtts-tiny-coqui");
  EXPECT_NEAR(created.reference_audio_seconds(), 4.0, 1e-6);
  auto speech = v1::SpeechService::NewStub(channel);
  const Spoken cloned = SpeakGreedy(speech.get(), "Tiny Clone");
  ASSERT_TRUE(cloned.status.ok()) << cloned.status.error_message();
  EXPECT_EQ(cloned.summary.voice(), "Tiny Clone");
  EXPECT_GT(cloned.summary.total_samples(), 0);
  const Spoken builtin = SpeakGreedy(speech.get(), "");
  ASSERT_TRUE(builtin.status.ok()) << builtin.status.error_message();
  EXPECT_NE(builtin.summary.voice(), "Tiny Clone");
  EXPECT_NE(builtin.pcm, cloned.pcm);  // the cloned voice conditioned the synthesis

  ASSERT_TRUE(voxd.Wait(SIGKILL, absl::Seconds(30)).ok());
  ChildProcess again;
  address = testing::StartVoxd(&again, VOXD_BINARY, flags, "voices-xtts-again");
  ASSERT_FALSE(address.empty());
  channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  speech = v1::SpeechService::NewStub(channel);
  const Spoken again_cloned = SpeakGreedy(speech.get(), "Tiny Clone");
  ASSERT_TRUE(again_cloned.status.ok()) << again_cloned.status.error_message();
  EXPECT_EQ(again_cloned.summary.voice(), "Tiny Clone");
  // The stored voice is the voice that was made: the same greedy audio, sample for sample.
  EXPECT_EQ(again_cloned.pcm, cloned.pcm);
}
#endif  // VOX_TEST_XTTS

}  // namespace
}  // namespace vox
