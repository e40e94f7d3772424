// vox.v1.VoiceService in process over real gRPC, with a fake engine that clones
// deterministically (tests/server/fake_engines.h), and the reference-audio decoder it uses.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engines/audio/audio_stream_encoder.h"
#include "engines/audio/pcm16.h"
#include "engines/audio/reference_audio.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config.h"
#include "server/model_registry.h"
#include "server/voice_file.h"
#include "server/voice_store.h"
#include "server/vox_server.h"
#include "tests/server/fake_engines.h"
#include "vox/v1/discovery.grpc.pb.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/speech_translation.grpc.pb.h"
#include "vox/v1/voice.grpc.pb.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::FakeSpeechEngine;
using testing::FakeTranslationEngine;

constexpr char kCloneId[] = "fake-weights-1";

// `seconds` of a 220 Hz tone at `rate` (amplitude `amp`), `channels` interleaved.
std::vector<float> Tone(double seconds, int rate, float amp = 0.3f) {
  std::vector<float> out(static_cast<size_t>(seconds * rate));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = amp * std::sin(6.2831853f * 220.0f * static_cast<float>(i) / rate);
  }
  return out;
}

std::string Pcm16(const std::vector<float>& samples) {
  std::string out;
  AppendPcm16(samples, &out);
  return out;
}

std::string Wav(const std::vector<float>& mono, int rate, int channels = 1) {
  std::vector<float> interleaved;
  for (float s : mono) {
    for (int c = 0; c < channels; ++c) interleaved.push_back(s);
  }
  const std::string data = Pcm16(interleaved);
  return WavHeader(rate, channels, static_cast<uint32_t>(data.size())) + data;
}

std::string OggOpus(const std::vector<float>& samples, int rate) {
  AudioStreamConfig config;
  config.encoding = AudioEncoding::kOggOpus;
  config.sample_rate_hz = 48000;
  auto encoder = AudioStreamEncoder::Create(config, rate);
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  EncodedAudio a, b;
  EXPECT_TRUE((*encoder)->Push(samples, &a).ok());
  EXPECT_TRUE((*encoder)->Finish(&b).ok());
  return a.data + b.data;
}

TEST(ReferenceAudioTest, StereoWavIsAveragedAndRawUsesTheGivenRate) {
  std::string data;
  AppendPcm16(std::vector<float>{0.5f, -0.5f, 0.25f, 0.25f}, &data);  // two stereo frames
  absl::StatusOr<DecodedAudio> wav =
      DecodeReferenceAudio(WavHeader(16000, 2, 8) + data, ReferenceAudioFormat::kDetect, 0);
  ASSERT_TRUE(wav.ok()) << wav.status();
  EXPECT_EQ(wav->sample_rate, 16000);
  ASSERT_EQ(wav->samples.size(), 2u);
  EXPECT_NEAR(wav->samples[0], 0.0f, 1e-4);
  EXPECT_NEAR(wav->samples[1], 0.25f, 1e-4);
  absl::StatusOr<DecodedAudio> raw = DecodeReferenceAudio(data, ReferenceAudioFormat::kRawPcm16,
                                                          22050);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->sample_rate, 22050);
  EXPECT_EQ(raw->samples.size(), 4u);
}

TEST(ReferenceAudioTest, OggOpusDecodesToTheEncodedLengthAt48k) {
  absl::StatusOr<DecodedAudio> ogg =
      DecodeReferenceAudio(OggOpus(Tone(2.0, 24000), 24000), ReferenceAudioFormat::kDetect, 0);
  ASSERT_TRUE(ogg.ok()) << ogg.status();
  EXPECT_EQ(ogg->sample_rate, 48000);
  // 2 s exactly: pre-skip removed at the start, the last frame's padding at the end.
  std::printf("decoded %zu samples at 48 kHz\n", ogg->samples.size());
  EXPECT_EQ(ogg->samples.size(), 96000u);
  double energy = 0;
  for (float s : ogg->samples) energy += s * s;
  EXPECT_NEAR(std::sqrt(energy / ogg->samples.size()), 0.3 / std::sqrt(2.0), 0.03);
}

TEST(ReferenceAudioTest, BadAudioIsInvalidArgumentSayingWhy) {
  auto message = [](const std::string& bytes, ReferenceAudioFormat f, int rate) {
    absl::StatusOr<DecodedAudio> r = DecodeReferenceAudio(bytes, f, rate);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  const std::string pcm = Pcm16(Tone(0.1, 16000));
  EXPECT_THAT(message(WavHeader(16000, 3, pcm.size()) + pcm, ReferenceAudioFormat::kWav, 0),
              HasSubstr("unsupported channel count 3"));
  EXPECT_THAT(message(WavHeader(7000, 1, pcm.size()) + pcm, ReferenceAudioFormat::kWav, 0),
              HasSubstr("unsupported sample rate 7000"));
  std::string wav24 = WavHeader(16000, 1, pcm.size()) + pcm;
  wav24[34] = 24;  // bits per sample
  EXPECT_THAT(message(wav24, ReferenceAudioFormat::kWav, 0), HasSubstr("24-bit"));
  EXPECT_THAT(message(WavHeader(16000, 1, pcm.size() + 100) + pcm, ReferenceAudioFormat::kWav, 0),
              HasSubstr("truncated"));
  EXPECT_THAT(message(pcm, ReferenceAudioFormat::kRawPcm16, 7000),
              HasSubstr("unsupported sample rate"));
  EXPECT_THAT(message(pcm + "x", ReferenceAudioFormat::kRawPcm16, 16000), HasSubstr("odd"));
  EXPECT_THAT(message("garbage!", ReferenceAudioFormat::kDetect, 0), HasSubstr("unrecognised"));
  EXPECT_THAT(message("OggS but not really", ReferenceAudioFormat::kOggOpus, 0),
              HasSubstr("Ogg"));
  const std::string ogg = OggOpus(Tone(1.0, 24000), 24000);
  EXPECT_THAT(message(ogg.substr(0, 40), ReferenceAudioFormat::kOggOpus, 0), HasSubstr("Ogg"));
}

class VoiceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(/*cloning=*/true); }

  void Start(bool cloning, int max_voices = 10, bool with_store = true) {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
    server_.reset();
    auto registry = std::make_unique<ModelRegistry>();
    auto voice = std::make_unique<FakeSpeechEngine>(
        "fake-voice",
        std::vector<VoiceInfo>{{"Ana", {"eng_Latn", "spa_Latn"}}, {"Bo", {"cat_Latn"}}});
    if (cloning) voice->EnableCloning(kCloneId);
    engine_ = voice.get();
    ASSERT_TRUE(registry
                    ->AddTranslation(std::make_unique<FakeTranslationEngine>(
                        "fake-a", std::vector<std::string>{"eng_Latn", "spa_Latn"},
                        std::vector<std::pair<std::string, std::string>>{
                            {"eng_Latn", "spa_Latn"}}))
                    .ok());
    ASSERT_TRUE(registry->AddSpeech(std::move(voice)).ok());
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.access_log = false;
    if (with_store) config.voices_dir = dir_;
    config.max_voices = max_voices;
    server_ = std::make_unique<VoxServer>(config, std::move(registry));
    ASSERT_TRUE(server_->Start().ok());
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    voices_ = v1::VoiceService::NewStub(channel_);
    discovery_ = v1::DiscoveryService::NewStub(channel_);
    speech_ = v1::SpeechService::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  static v1::CreateVoiceConfig Config(const std::string& name) {
    v1::CreateVoiceConfig c;
    c.set_name(name);
    return c;
  }

  // Sends `config` then each clip in chunks of `chunk` bytes.
  grpc::Status Create(const v1::CreateVoiceConfig& config, const std::vector<std::string>& clips,
                      v1::Voice* out = nullptr, size_t chunk = 7000) {
    grpc::ClientContext context;
    v1::Voice local;
    auto writer = voices_->CreateVoice(&context, out != nullptr ? out : &local);
    v1::CreateVoiceRequest first;
    *first.mutable_config() = config;
    bool ok = writer->Write(first);
    for (size_t c = 0; c < clips.size() && ok; ++c) {
      for (size_t at = 0; at < clips[c].size() && ok; at += chunk) {
        v1::CreateVoiceRequest r;
        r.mutable_audio()->set_clip(static_cast<int>(c));
        r.mutable_audio()->set_data(clips[c].substr(at, chunk));
        ok = writer->Write(r);
      }
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::vector<std::string> ListedNames(const std::string& language = "") {
    grpc::ClientContext context;
    v1::ListVoicesRequest request;
    request.set_language(language);
    v1::ListVoicesResponse response;
    EXPECT_TRUE(discovery_->ListVoices(&context, request, &response).ok());
    std::vector<std::string> names;
    for (const v1::Voice& v : response.voices()) names.push_back(v.name());
    return names;
  }

  grpc::Status Speak(const std::string& voice, const std::string& language,
                     v1::SynthesisSummary* summary = nullptr) {
    grpc::ClientContext context;
    v1::SynthesizeRequest request;
    request.set_text("hello");
    request.set_language(language);
    request.set_voice(voice);
    auto reader = speech_->Synthesize(&context, request);
    v1::SynthesizeResponse response;
    while (reader->Read(&response)) {
      if (response.has_summary() && summary != nullptr) *summary = response.summary();
    }
    return reader->Finish();
  }

  const std::string dir_ = (fs::path(::testing::TempDir()) /
                            ::testing::UnitTest::GetInstance()->current_test_info()->name())
                               .string();
  FakeSpeechEngine* engine_ = nullptr;
  std::unique_ptr<VoxServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VoiceService::Stub> voices_;
  std::unique_ptr<v1::DiscoveryService::Stub> discovery_;
  std::unique_ptr<v1::SpeechService::Stub> speech_;

 public:
  VoiceServiceTest() { fs::remove_all(dir_); }
};

TEST_F(VoiceServiceTest, ACreatedVoiceIsListedGotSpokenAndKeptAcrossARestart) {
  v1::CreateVoiceConfig config = Config("My Voice");
  config.add_languages("spa_Latn");
  v1::Voice created;
  const std::vector<float> tone = Tone(4.0, 16000);
  grpc::Status s = Create(config, {Wav(tone, 16000)}, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(created.name(), "My Voice");
  EXPECT_TRUE(created.created());
  EXPECT_EQ(created.model(), "fake-voice");
  EXPECT_THAT(created.languages(), ::testing::ElementsAre("spa_Latn"));
  EXPECT_NEAR(created.reference_audio_seconds(), 4.0, 1e-6);
  EXPECT_NEAR(static_cast<double>(created.create_time().seconds()),
              static_cast<double>(absl::ToUnixSeconds(absl::Now())), 60);

  EXPECT_THAT(ListedNames(), ::testing::ElementsAre("Ana", "Bo", "My Voice"));
  EXPECT_THAT(ListedNames("eng_Latn"), ::testing::ElementsAre("Ana"));
  {
    grpc::ClientContext context;
    v1::GetVoiceRequest request;
    request.set_name("My Voice");
    v1::Voice got;
    ASSERT_TRUE(voices_->GetVoice(&context, request, &got).ok());
    EXPECT_EQ(got.SerializeAsString(), created.SerializeAsString());
  }

  // Synthesize takes it by name; the engine gets the cloned voice the engine made.
  ASSERT_TRUE(Speak("My Voice", "spa_Latn").ok());
  ASSERT_EQ(engine_->cloned_voices_seen().size(), 1u);
  absl::StatusOr<DecodedAudio> decoded =
      DecodeReferenceAudio(Wav(tone, 16000), ReferenceAudioFormat::kWav, 0);
  ASSERT_TRUE(decoded.ok());
  const std::vector<ReferenceClip> clips = {ReferenceClip{decoded->samples, 16000}};
  const ClonedVoice expected = FakeSpeechEngine::FakeClone(kCloneId, clips);
  EXPECT_EQ(engine_->cloned_voices_seen()[0]->gpt_cond_latent, expected.gpt_cond_latent);
  EXPECT_EQ(engine_->cloned_voices_seen()[0]->speaker_embedding, expected.speaker_embedding);
  // Not in a language it was created for.
  grpc::Status wrong = Speak("My Voice", "eng_Latn");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(wrong.error_message(), HasSubstr("does not speak eng_Latn"));

  Start(/*cloning=*/true);  // a new voxd over the same store
  EXPECT_THAT(ListedNames(), ::testing::ElementsAre("Ana", "Bo", "My Voice"));
  ASSERT_TRUE(Speak("My Voice", "spa_Latn").ok());
  ASSERT_EQ(engine_->cloned_voices_seen().size(), 1u);
  EXPECT_EQ(engine_->cloned_voices_seen()[0]->gpt_cond_latent, expected.gpt_cond_latent);
}

TEST_F(VoiceServiceTest, SpeechTranslateSpeaksWithACreatedVoice) {
  ASSERT_TRUE(Create(Config("Clone"), {Wav(Tone(3.5, 22050), 22050)}).ok());
  auto stub = v1::SpeechTranslationService::NewStub(channel_);
  grpc::ClientContext context;
  auto stream = stub->SpeechTranslate(&context);
  v1::SpeechTranslateRequest config;
  config.mutable_config()->set_source_language("eng_Latn");
  config.mutable_config()->set_target_language("spa_Latn");
  config.mutable_config()->set_voice("Clone");
  ASSERT_TRUE(stream->Write(config));
  v1::SpeechTranslateRequest segment;
  segment.mutable_segment()->set_segment_id(1);
  segment.mutable_segment()->set_text("hello");
  ASSERT_TRUE(stream->Write(segment));
  stream->WritesDone();
  v1::SpeechTranslateResponse response;
  while (stream->Read(&response)) {
  }
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(engine_->cloned_voices_seen().size(), 1u);
  EXPECT_EQ(engine_->cloned_voices_seen()[0]->model_id, kCloneId);
}

TEST_F(VoiceServiceTest, SeveralClipsInEveryFormatAddUp) {
  v1::Voice created;
  v1::CreateVoiceConfig config = Config("mixed");
  grpc::Status s = Create(config,
                          {Wav(Tone(2.0, 44100), 44100, /*channels=*/2),
                           OggOpus(Tone(1.5, 24000), 24000)},
                          &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NEAR(created.reference_audio_seconds(), 3.5, 1e-6);
  EXPECT_THAT(created.languages(), ::testing::ElementsAre("eng_Latn", "spa_Latn", "cat_Latn"));
  v1::CreateVoiceConfig raw = Config("raw");
  raw.set_format(v1::REFERENCE_AUDIO_FORMAT_RAW_PCM16);
  raw.set_sample_rate_hz(8000);
  s = Create(raw, {Pcm16(Tone(2.0, 8000)), Pcm16(Tone(2.0, 8000))}, &created, 999);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NEAR(created.reference_audio_seconds(), 4.0, 1e-6);
}

// Every bad input: its code, a message saying what is wrong, and nothing stored.
TEST_F(VoiceServiceTest, BadInputsAreRefusedWithTheirCodeAndNothingIsStored) {
  const std::string good = Wav(Tone(4.0, 16000), 16000);
  struct Case {
    std::string what;
    v1::CreateVoiceConfig config;
    std::vector<std::string> clips;
    grpc::StatusCode code;
    std::string message;
  };
  v1::CreateVoiceConfig raw7k = Config("x");
  raw7k.set_format(v1::REFERENCE_AUDIO_FORMAT_RAW_PCM16);
  raw7k.set_sample_rate_hz(7000);
  v1::CreateVoiceConfig bad_language = Config("x");
  bad_language.add_languages("jpn_Jpan");
  v1::CreateVoiceConfig bad_model = Config("x");
  bad_model.set_model("nope");
  v1::CreateVoiceConfig ogg_format = Config("x");
  ogg_format.set_format(v1::REFERENCE_AUDIO_FORMAT_OGG_OPUS);
  std::vector<float> quiet = Tone(4.0, 16000, 0.0005f);
  std::vector<float> half_silent = Tone(2.0, 16000);
  const std::vector<Case> cases = {
      {"too short", Config("x"), {Wav(Tone(2.9, 16000), 16000)},
       grpc::StatusCode::INVALID_ARGUMENT, "between 3 and 30 s"},
      {"too long", Config("x"), {Wav(Tone(16, 16000), 16000), Wav(Tone(15, 16000), 16000)},
       grpc::StatusCode::INVALID_ARGUMENT, "31 s in all"},
      {"silent", Config("x"), {Wav(quiet, 16000)}, grpc::StatusCode::INVALID_ARGUMENT,
       "clip 0 is silent"},
      {"one silent clip", Config("x"), {good, Wav(std::vector<float>(16000, 0.0f), 16000)},
       grpc::StatusCode::INVALID_ARGUMENT, "clip 1 is silent"},
      {"undecodable", Config("x"), {"this is not audio"}, grpc::StatusCode::INVALID_ARGUMENT,
       "clip 0: unrecognised audio"},
      {"not Ogg", ogg_format, {good}, grpc::StatusCode::INVALID_ARGUMENT, "not an Ogg stream"},
      {"three channels", Config("x"), {Wav(Tone(4.0, 16000), 16000, 3)},
       grpc::StatusCode::INVALID_ARGUMENT, "unsupported channel count 3"},
      {"WAV rate", Config("x"), {Wav(Tone(4.0, 7000), 7000)}, grpc::StatusCode::INVALID_ARGUMENT,
       "unsupported sample rate 7000"},
      {"raw rate", raw7k, {good}, grpc::StatusCode::INVALID_ARGUMENT, "7000 Hz is not supported"},
      {"no audio", Config("x"), {}, grpc::StatusCode::INVALID_ARGUMENT, "no reference audio"},
      {"empty name", Config(""), {good}, grpc::StatusCode::INVALID_ARGUMENT, "name is empty"},
      {"bad name", Config("a/b"), {good}, grpc::StatusCode::INVALID_ARGUMENT, "character"},
      {"built-in name", Config("Ana"), {good}, grpc::StatusCode::ALREADY_EXISTS,
       "built-in voice"},
      {"language", bad_language, {good}, grpc::StatusCode::INVALID_ARGUMENT, "jpn_Jpan"},
      {"model", bad_model, {good}, grpc::StatusCode::INVALID_ARGUMENT, "no speech model 'nope'"},
  };
  for (const Case& c : cases) {
    grpc::Status s = Create(c.config, c.clips);
    EXPECT_EQ(s.error_code(), c.code) << c.what << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.what;
  }
  // Out-of-order clips, and audio before the config.
  {
    grpc::ClientContext context;
    v1::Voice out;
    auto writer = voices_->CreateVoice(&context, &out);
    v1::CreateVoiceRequest r;
    *r.mutable_config() = Config("x");
    writer->Write(r);
    r.mutable_audio()->set_clip(2);
    r.mutable_audio()->set_data(good);
    writer->Write(r);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("out of order"));
  }
  {
    grpc::ClientContext context;
    v1::Voice out;
    auto writer = voices_->CreateVoice(&context, &out);
    v1::CreateVoiceRequest r;
    r.mutable_audio()->set_data(good);
    writer->Write(r);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("first message must be `config`"));
  }
  EXPECT_THAT(ListedNames(), ::testing::ElementsAre("Ana", "Bo"));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(VoiceServiceTest, TakenNamesFullStoreAndDeleteFollowTheirCodes) {
  Start(/*cloning=*/true, /*max_voices=*/2);
  const std::string good = Wav(Tone(3.0, 24000), 24000);
  ASSERT_TRUE(Create(Config("one"), {good}).ok());
  grpc::Status taken = Create(Config("one"), {good});
  EXPECT_EQ(taken.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(Create(Config("two"), {good}).ok());
  grpc::Status full = Create(Config("three"), {good});
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(full.error_message(), HasSubstr("full"));

  auto remove = [&](const std::string& name) {
    grpc::ClientContext context;
    v1::DeleteVoiceRequest request;
    request.set_name(name);
    v1::DeleteVoiceResponse response;
    return voices_->DeleteVoice(&context, request, &response);
  };
  EXPECT_EQ(remove("Ana").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(remove("nobody").error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(remove("one").ok());
  EXPECT_EQ(remove("one").error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status gone = Speak("one", "eng_Latn");
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(gone.error_message(), HasSubstr("two"));  // the voices that exist are listed
  EXPECT_TRUE(Create(Config("three"), {good}).ok());
  EXPECT_THAT(ListedNames(), ::testing::ElementsAre("Ana", "Bo", "three", "two"));
  {
    grpc::ClientContext context;
    v1::GetVoiceRequest request;
    request.set_name("one");
    v1::Voice got;
    EXPECT_EQ(voices_->GetVoice(&context, request, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

// The store's directory stops being writable (replaced by a file: this fails as root too).
TEST_F(VoiceServiceTest, AStoreThatCannotBeWrittenFailsTheCallAndKeepsTheVoices) {
  const std::string good = Wav(Tone(3.0, 16000), 16000);
  ASSERT_TRUE(Create(Config("kept"), {good}).ok());
  const std::string moved = dir_ + ".moved";
  fs::remove_all(moved);
  fs::rename(dir_, moved);
  { std::ofstream(dir_) << "not a directory"; }
  grpc::Status s = Create(Config("lost"), {good});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr(dir_));
  EXPECT_THAT(s.error_message(), HasSubstr("nothing was stored"));
  EXPECT_THAT(ListedNames(), ::testing::ElementsAre("Ana", "Bo", "kept"));
  ASSERT_TRUE(Speak("kept", "eng_Latn").ok());
  fs::remove(dir_);
  fs::rename(moved, dir_);
  Start(/*cloning=*/true);
  EXPECT_THAT(ListedNames(), ::testing::ElementsAre("Ana", "Bo", "kept"));
}

TEST_F(VoiceServiceTest, AnEngineThatCannotCloneIsUnimplemented) {
  Start(/*cloning=*/false);
  grpc::Status s = Create(Config("x"), {Wav(Tone(4.0, 16000), 16000)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(s.error_message(), HasSubstr("cannot clone voices"));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(VoiceServiceTest, WithoutAStoreCreateIsUnavailable) {
  Start(/*cloning=*/true, 10, /*with_store=*/false);
  grpc::Status s = Create(Config("x"), {Wav(Tone(4.0, 16000), 16000)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("--voices"));
}

TEST_F(VoiceServiceTest, AVoiceMadeByOtherWeightsIsListedButNotSpoken) {
  server_->Shutdown(absl::Seconds(5));
  server_.reset();
  {
    auto store = VoiceStore::Open(dir_, VoiceStore::Options(), nullptr);
    ASSERT_TRUE(store.ok());
    StoredVoice v;
    v.name = "old";
    v.languages = {"eng_Latn"};
    v.model = "xtts-2023";
    auto c = std::make_shared<ClonedVoice>(FakeSpeechEngine::FakeClone("other-weights", {}));
    v.voice = c;
    ASSERT_TRUE((*store)->Add(v).ok());
  }
  Start(/*cloning=*/true);
  EXPECT_THAT(ListedNames(), ::testing::ElementsAre("Ana", "Bo", "old"));
  grpc::Status s = Speak("old", "eng_Latn");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("no loaded model has the same weights"));
  EXPECT_TRUE(engine_->cloned_voices_seen().empty());
}

}  // namespace
}  // namespace vox
