// XttsEngine's voice cloning on the tiny models (fidelity against Coqui is
// tests/upstream_xtts/test_coqui_cloning.py): refusals (exports without clone.ts, bad clips,
// another model's voice), replicas sharing the clone module, the stepper and Synthesize speaking
// a cloned voice. Device: VOX_TEST_DEVICE (default "cpu").
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engines/core/engine_options.h"
#include "engines/speech/xtts_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::HasSubstr;

const std::string kTiny = VOX_TINY_DIR;
const std::string kCoquiModel = kTiny + "/models-coqui/xtts-tiny-coqui";  // has clone.ts
const std::string kNoCloneModel = kTiny + "/models/xtts-tiny";             // speaker width 16: none
const std::string kLegacyModel = kTiny + "/legacy/xtts-tiny-v1";           // exporter version 1

EngineOptions Options() {
  EngineOptions o;
  const char* d = std::getenv("VOX_TEST_DEVICE");
  o.device = d != nullptr && *d != '\0' ? d : "cpu";
  o.intra_op_threads = 1;
  o.blas_threads = 1;
  return o;
}

// A voiced signal: harmonics of a gliding pitch under a syllable-rate envelope.
ReferenceClip Voiced(double seconds, int rate, double f0) {
  ReferenceClip clip;
  clip.sample_rate = rate;
  const int n = static_cast<int>(seconds * rate);
  double phase = 0;
  for (int i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    phase += 2 * M_PI * f0 * (1 + 0.1 * std::sin(2 * M_PI * 0.7 * t)) / rate;
    double x = 0;
    for (int k = 1; k < 12; ++k) x += 0.5 / k * std::sin(k * phase);
    clip.samples.push_back(static_cast<float>(0.3 * x * (0.5 + 0.5 * std::abs(std::sin(2 * M_PI * 1.3 * t)))));
  }
  return clip;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

std::vector<float> Speak(SpeechEngine& engine, const SynthesisRequest& r) {
  std::vector<float> audio;
  auto st = engine.Synthesize(r, [&](absl::Span<const float> s) {
    audio.insert(audio.end(), s.begin(), s.end());
    return true;
  }, {});
  EXPECT_TRUE(st.ok()) << st.status();
  return audio;
}

class XttsCloneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto e = XttsEngine::Load("xtts-coqui", kCoquiModel, Options());
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = e->release();
    const ReferenceClip clips[] = {Voiced(3.0, 24000, 130), Voiced(2.0, 48000, 200)};
    auto v = engine_->CloneVoice(clips);
    ASSERT_TRUE(v.ok()) << v.status();
    voice_ = new std::shared_ptr<const ClonedVoice>(std::make_shared<const ClonedVoice>(*std::move(v)));
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete voice_;
  }

  SynthesisRequest Request(bool cloned) const {
    SynthesisRequest r;
    r.text = "Hello, world! This is a tiny test.";
    r.language = "eng_Latn";
    r.params.greedy = true;
    if (cloned) {
      r.voice = "my voice";
      r.cloned_voice = *voice_;
    }
    return r;
  }

  static XttsEngine* engine_;
  static std::shared_ptr<const ClonedVoice>* voice_;
};
XttsEngine* XttsCloneTest::engine_ = nullptr;
std::shared_ptr<const ClonedVoice>* XttsCloneTest::voice_ = nullptr;

TEST_F(XttsCloneTest, ClonedVoiceHasTheModelsIdAndShapes) {
  const ClonedVoice& v = **voice_;
  EXPECT_FALSE(engine_->voice_model_id().empty());
  EXPECT_EQ(v.model_id, engine_->voice_model_id());
  EXPECT_EQ(v.cond_rows, 32);
  EXPECT_EQ(v.cond_dim, engine_->d_model());
  EXPECT_EQ(v.gpt_cond_latent.size(), static_cast<size_t>(32 * engine_->d_model()));
  ASSERT_EQ(v.speaker_embedding.size(), 512u);
  double norm = 0;  // the mean of two unit vectors: at most 1, and not tiny for similar voices
  for (float x : v.speaker_embedding) norm += double{x} * x;
  EXPECT_LE(std::sqrt(norm), 1.0 + 1e-5);
  EXPECT_GT(std::sqrt(norm), 0.5);
}

TEST_F(XttsCloneTest, DifferentAudioGivesADifferentVoiceAndTheSameAudioTheSame) {
  const ReferenceClip a[] = {Voiced(3.0, 24000, 130), Voiced(2.0, 48000, 200)};
  const ReferenceClip b[] = {Voiced(4.0, 16000, 95)};
  auto again = engine_->CloneVoice(a);
  auto other = engine_->CloneVoice(b);
  ASSERT_TRUE(again.ok() && other.ok());
  EXPECT_EQ(MaxAbsDiff(again->gpt_cond_latent, (*voice_)->gpt_cond_latent), 0.0f);
  EXPECT_GT(MaxAbsDiff(other->gpt_cond_latent, (*voice_)->gpt_cond_latent), 1e-2f);
  EXPECT_GT(MaxAbsDiff(other->speaker_embedding, (*voice_)->speaker_embedding), 1e-3f);
}

TEST_F(XttsCloneTest, ReplicaSharesTheCloneModuleAndClonesFromAnotherThread) {
  auto replica = engine_->NewReplica();
  ASSERT_TRUE(replica.ok()) << replica.status();
  EXPECT_EQ((*replica)->voice_model_id(), engine_->voice_model_id());
  const ReferenceClip a[] = {Voiced(3.0, 24000, 130), Voiced(2.0, 48000, 200)};
  absl::StatusOr<ClonedVoice> from_thread = absl::UnknownError("not run");
  std::thread t([&] { from_thread = (*replica)->CloneVoice(a); });
  t.join();
  ASSERT_TRUE(from_thread.ok()) << from_thread.status();
  EXPECT_LE(MaxAbsDiff(from_thread->gpt_cond_latent, (*voice_)->gpt_cond_latent), 1e-6f);
}

TEST_F(XttsCloneTest, SynthesizeSpeaksTheClonedVoice) {
  ASSERT_TRUE(engine_->Validate(Request(true)).ok());
  const std::vector<float> cloned = Speak(*engine_, Request(true));
  const std::vector<float> builtin = Speak(*engine_, Request(false));
  ASSERT_FALSE(cloned.empty());
  EXPECT_TRUE(cloned.size() != builtin.size() || MaxAbsDiff(cloned, builtin) > 1e-2f)
      << "the cloned voice sounded exactly like the first built-in voice";
  // Every language of the model, whatever the built-in voices list.
  SynthesisRequest es = Request(true);
  es.language = "spa_Latn";
  es.text = "Buenos días.";
  EXPECT_TRUE(engine_->Validate(es).ok());
}

// A voice's conditioning rows run once (model.ts `condition`, docs/speech.md "Prefix"): a cloned
// voice is known by its content though each request brings a fresh copy, the ninth voice evicts
// the least recently used, and every voice speaks as it did the first time. Older exports run
// the whole prefix.
TEST_F(XttsCloneTest, EachVoiceIsConditionedOnceWhileAmongTheLastEight) {
  auto loaded = XttsEngine::Load("xtts-coqui", kCoquiModel, Options());  // counts from zero
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  XttsEngine& engine = **loaded;
  auto request = [&](int voice) {  // voice < 0: the built-in one
    SynthesisRequest r = Request(voice >= 0);
    r.params.forced_codes = 6;
    if (voice >= 0) {
      ClonedVoice v = **voice_;
      v.gpt_cond_latent[0] += 0.25f * static_cast<float>(voice);
      r.cloned_voice = std::make_shared<const ClonedVoice>(std::move(v));
    }
    return r;
  };
  const std::vector<float> first = Speak(engine, request(0));
  EXPECT_EQ(engine.conditionings_run(), 1);
  EXPECT_EQ(Speak(engine, request(0)), first);
  EXPECT_EQ(engine.conditionings_run(), 1);
  const std::vector<float> other = Speak(engine, request(1));
  EXPECT_EQ(engine.conditionings_run(), 2);
  EXPECT_NE(other, first);
  Speak(engine, request(-1));
  for (int v = 2; v < 7; ++v) Speak(engine, request(v));
  EXPECT_EQ(engine.conditionings_run(), 8);  // voices 0..6 and the built-in one: all kept
  Speak(engine, request(0));
  EXPECT_EQ(engine.conditionings_run(), 8);
  Speak(engine, request(7));  // the ninth evicts the least recently used: voice 1
  EXPECT_EQ(engine.conditionings_run(), 9);
  EXPECT_EQ(Speak(engine, request(1)), other);
  EXPECT_EQ(engine.conditionings_run(), 10);

  auto legacy = XttsEngine::Load("legacy", kLegacyModel, Options());
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  SynthesisRequest r = Request(false);
  r.params.forced_codes = 6;
  EXPECT_FALSE(Speak(**legacy, r).empty());
  EXPECT_EQ((*legacy)->conditionings_run(), 0);
}

TEST_F(XttsCloneTest, StepperSpeaksTheClonedVoiceAsSynthesizeDoes) {
  const std::vector<float> whole = Speak(*engine_, Request(true));
  auto stepper = engine_->NewStepper();
  ASSERT_TRUE(stepper->Join(7, Request(true)).ok());
  ASSERT_TRUE(stepper->Join(8, Request(false)).ok());  // a built-in voice in the same batch
  std::vector<float> stepped;
  std::string voice;
  const uint64_t ids[] = {7, 8};
  bool done7 = false, done8 = false;
  for (int i = 0; i < 2000 && !(done7 && done8); ++i) {
    std::vector<uint64_t> active;
    if (!done7) active.push_back(7);
    if (!done8) active.push_back(8);
    auto results = stepper->Step(active);
    for (size_t k = 0; k < active.size(); ++k) {
      ASSERT_TRUE(results[k].status.ok()) << results[k].status;
      if (active[k] == 7) stepped.insert(stepped.end(), results[k].audio.begin(), results[k].audio.end());
      if (results[k].finished) {
        if (active[k] == 7) voice = results[k].stats.voice;
        (active[k] == 7 ? done7 : done8) = true;
        stepper->Leave(active[k]);
      }
    }
  }
  (void)ids;
  ASSERT_TRUE(done7 && done8);
  EXPECT_EQ(voice, "my voice");
  EXPECT_LE(MaxAbsDiff(stepped, whole), 1e-4f);
}

TEST_F(XttsCloneTest, ValidateRefusesAnotherModelsVoiceOrDimensions) {
  SynthesisRequest r = Request(true);
  ClonedVoice foreign = **voice_;
  foreign.model_id = "xtts-v2-0000000000000000-c1";
  r.cloned_voice = std::make_shared<const ClonedVoice>(foreign);
  absl::Status st = engine_->Validate(r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("create the voice again"));
  auto synth = engine_->Synthesize(r, [](absl::Span<const float>) { return true; }, {});
  EXPECT_EQ(synth.status().code(), absl::StatusCode::kInvalidArgument);

  ClonedVoice narrow = **voice_;
  narrow.speaker_embedding.resize(16);
  r.cloned_voice = std::make_shared<const ClonedVoice>(narrow);
  st = engine_->Validate(r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("16-dim speaker embedding"));
}

TEST_F(XttsCloneTest, BadClipsAreRefusedClearly) {
  struct Case {
    std::vector<ReferenceClip> clips;
    std::string message;
  };
  ReferenceClip silent;
  silent.sample_rate = 16000;
  silent.samples.assign(32000, 0.0f);
  ReferenceClip nan = Voiced(1.0, 16000, 120);
  nan.samples[100] = std::nanf("");
  ReferenceClip odd_rate = Voiced(1.0, 44101, 120);
  const std::vector<Case> cases = {
      {{}, "at least one reference clip"},
      {{Voiced(1.0, 4000, 120)}, "sample rate 4000 Hz is not in 8000..192000"},
      {{odd_rate}, "cannot be resampled"},
      {{Voiced(0.05, 16000, 120)}, "at least 0.1 s"},
      {{Voiced(0.2, 16000, 120), Voiced(0.12, 22050, 150)}, "too short"},
      {{silent}, "silent"},
      {{nan}, "not a finite number"},
  };
  for (const Case& c : cases) {
    auto v = engine_->CloneVoice(c.clips);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << c.message << ": " << v.status();
    EXPECT_THAT(v.status().message(), HasSubstr(c.message));
  }
  // Just enough: 0.34 s in all makes one chunk.
  const ReferenceClip enough[] = {Voiced(0.2, 16000, 120), Voiced(0.14, 22050, 150)};
  EXPECT_TRUE(engine_->CloneVoice(enough).ok());
}

TEST(XttsCloneRefusal, ExportsWithoutCloneModulesRefuseClearly) {
  for (const auto& [dir, why] : {std::pair<std::string, std::string>{kNoCloneModel, "speaker width 16"},
                                 {kLegacyModel, "exported before voice cloning (exporter version 1)"}}) {
    auto e = XttsEngine::Load("xtts", dir, Options());
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)->voice_model_id(), "");
    const ReferenceClip clips[] = {Voiced(3.0, 24000, 130)};
    auto v = (*e)->CloneVoice(clips);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kUnimplemented) << dir;
    EXPECT_THAT(v.status().message(), HasSubstr("cannot clone voices"));
    EXPECT_THAT(v.status().message(), HasSubstr(why));
    // Nor can it speak a voice another export made.
    SynthesisRequest r;
    r.text = "Hello.";
    r.language = "eng_Latn";
    r.voice = "my voice";
    ClonedVoice foreign;
    foreign.model_id = "xtts-v2-0000000000000000-c1";
    r.cloned_voice = std::make_shared<const ClonedVoice>(foreign);
    const absl::Status st = (*e)->Validate(r);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr("cannot speak cloned voices"));
  }
}

}  // namespace
}  // namespace vox
