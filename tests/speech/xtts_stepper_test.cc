// XttsEngine::NewStepper (continuous batching) against XttsEngine::Synthesize on the tiny model:
// every sequence's concatenated stepper audio must equal what Synthesize streams for the same
// request and seed, whatever joins, pauses and leaves happen around it. Device: VOX_TEST_DEVICE
// (default "cpu").
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engines/core/engine_options.h"
#include "engines/speech/xtts_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::HasSubstr;

const std::string kTiny = VOX_TINY_DIR;
const std::string kModel = kTiny + "/models/xtts-tiny";
const std::string kLegacyModel = kTiny + "/legacy/xtts-tiny-v1";  // exported without step_slots

std::string TestDevice() {
  const char* d = std::getenv("VOX_TEST_DEVICE");
  return d != nullptr && *d != '\0' ? d : "cpu";
}

// Stepper vs Synthesize: the same float ops, except that a batched GPT step and a batched
// HiFi-GAN call may round differently from single ones (CPU: <= 1.5e-6 observed). GPU
// convolutions pick algorithms by shape (TF32 with cuDNN), so batches differ more there.
const float kTolerance = TestDevice() == "cpu" ? 1e-5f : 1e-3f;

std::unique_ptr<XttsEngine> LoadOrDie(const std::string& dir, XttsStreamOptions stream = {}) {
  EngineOptions o;
  o.device = TestDevice();
  auto e = XttsEngine::Load("xtts-tiny", dir, o, stream);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

struct Output {
  std::vector<float> audio;
  SynthesisStats stats;
};

Output Reference(XttsEngine& engine, const SynthesisRequest& r) {
  Output out;
  auto st = engine.Synthesize(r, [&](absl::Span<const float> s) {
    out.audio.insert(out.audio.end(), s.begin(), s.end());
    return true;
  }, {});
  EXPECT_TRUE(st.ok()) << st.status();
  if (st.ok()) out.stats = *st;
  return out;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

SynthesisRequest Request(const std::string& text, const std::string& language, bool greedy,
                         uint64_t seed, const std::string& voice = "") {
  SynthesisRequest r;
  r.text = text;
  r.language = language;
  r.voice = voice;
  r.params.greedy = greedy;
  r.params.seed = seed;
  return r;
}

// A sequence in a scripted run: joins at step `join_at`, is left out of the steps in
// [pause_from, pause_to), leaves at step `leave_at` (-1: never).
struct Script {
  SynthesisRequest request;
  int join_at = 0;
  int pause_from = -1, pause_to = -1;
  int leave_at = -1;
};

struct Outcome {
  Output out;
  bool finished = false;
  int results_after_finish = 0;
};

// Drives the stepper step by step until every sequence finished or left.
std::vector<Outcome> Drive(SpeechStepper& stepper, const std::vector<Script>& scripts,
                           int max_steps = 5000) {
  std::vector<Outcome> outcomes(scripts.size());
  std::vector<bool> joined(scripts.size(), false), gone(scripts.size(), false);
  for (int step = 0; step < max_steps; ++step) {
    for (size_t i = 0; i < scripts.size(); ++i) {
      if (!joined[i] && scripts[i].join_at == step) {
        absl::Status st = stepper.Join(i + 100, scripts[i].request);
        EXPECT_TRUE(st.ok()) << st;
        joined[i] = true;
      }
      if (joined[i] && !gone[i] && scripts[i].leave_at == step) {
        stepper.Leave(i + 100);
        gone[i] = true;
      }
    }
    std::vector<uint64_t> active;
    std::vector<size_t> index;
    for (size_t i = 0; i < scripts.size(); ++i) {
      const bool paused = step >= scripts[i].pause_from && step < scripts[i].pause_to;
      if (joined[i] && !gone[i] && !paused) {
        active.push_back(i + 100);
        index.push_back(i);
      }
    }
    bool pending = false;
    for (size_t i = 0; i < scripts.size(); ++i) pending |= !gone[i];
    if (!pending) break;
    const auto results = stepper.Step(active);
    EXPECT_EQ(results.size(), active.size());
    for (size_t k = 0; k < results.size() && k < index.size(); ++k) {
      Outcome& o = outcomes[index[k]];
      const SpeechStepResult& r = results[k];
      EXPECT_TRUE(r.status.ok()) << r.status;
      o.out.audio.insert(o.out.audio.end(), r.audio.begin(), r.audio.end());
      if (r.finished) {
        o.finished = true;
        o.out.stats = r.stats;
        stepper.Leave(active[k]);
        gone[index[k]] = true;
      }
    }
  }
  return outcomes;
}

void ExpectEqualToReference(XttsEngine& engine, const std::vector<Script>& scripts,
                            const std::vector<Outcome>& outcomes) {
  for (size_t i = 0; i < scripts.size(); ++i) {
    if (scripts[i].leave_at >= 0) continue;
    SCOPED_TRACE(absl::StrCat("sequence ", i, ": ", scripts[i].request.text));
    const Output ref = Reference(engine, scripts[i].request);
    ASSERT_TRUE(outcomes[i].finished);
    EXPECT_EQ(outcomes[i].out.stats.codes, ref.stats.codes);
    EXPECT_EQ(outcomes[i].out.stats.samples, ref.stats.samples);
    EXPECT_EQ(outcomes[i].out.stats.samples, static_cast<int64_t>(outcomes[i].out.audio.size()));
    EXPECT_EQ(outcomes[i].out.stats.voice, ref.stats.voice);
    if (scripts[i].request.params.seed != 0 || scripts[i].request.params.greedy) {
      EXPECT_EQ(outcomes[i].out.stats.seed, ref.stats.seed);
    }
    ASSERT_EQ(outcomes[i].out.audio.size(), ref.audio.size());
    EXPECT_LT(MaxAbsDiff(outcomes[i].out.audio, ref.audio), kTolerance);
  }
}

std::vector<Script> MixedScripts() {
  std::vector<Script> s;
  // Two sequences that join together with the same text length vocode chunks of equal windows
  // at the same steps (one batched HiFi-GAN call).
  s.push_back({Request("Hello, world! This is a tiny test.", "eng_Latn", true, 0)});
  s.push_back({Request("Hello, world! This is a tiny test.", "eng_Latn", false, 1000, "Bruno Tiny")});
  s.push_back({Request("¡Hola, mundo! ¿Dónde está la estación?", "spa_Latn", false, 7, "Carla Tiny"), 3});
  s.push_back({Request("It costs $20.15 today, or 3 pounds.", "eng_Latn", true, 0, "Carla Tiny"), 11});
  Script fast{Request("Son las 12,5 de la noche, Sr. García.", "spa_Latn", false, 99), 20};
  fast.request.params.speed = 1.25f;
  s.push_back(fast);
  Script forced{Request("Aaaa... ¡qué bien!", "spa_Latn", true, 0), 25};
  forced.request.params.forced_codes = 30;
  s.push_back(forced);
  return s;
}

class XttsStepperTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = LoadOrDie(kModel).release(); }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(engine_, nullptr); }
  static XttsEngine* engine_;
};
XttsEngine* XttsStepperTest::engine_ = nullptr;

TEST_F(XttsStepperTest, StaggeredJoinsEqualSynthesize) {
  ASSERT_TRUE(engine_->has_batched_step());
  auto stepper = engine_->NewStepper();
  ASSERT_NE(stepper, nullptr);
  const auto scripts = MixedScripts();
  const auto outcomes = Drive(*stepper, scripts);
  EXPECT_EQ(stepper->size(), 0);
  ExpectEqualToReference(*engine_, scripts, outcomes);
}

TEST_F(XttsStepperTest, PausedSequenceKeepsItsStateAndResumes) {
  auto stepper = engine_->NewStepper();
  std::vector<Script> s;
  Script paused{Request("The 3rd of May, 1999: Dr. Smith & Co. won 14% more.", "eng_Latn", false, 5)};
  paused.pause_from = 12;  // mid-generation, between chunks
  paused.pause_to = 70;
  s.push_back(paused);
  s.push_back({Request("Don't stop... really?! Wooo, naïve.", "eng_Latn", false, 6, "Bruno Tiny")});
  s.push_back({Request("Llegaron 1.000 personas al 3er piso.", "spa_Latn", true, 0), 30});
  const auto outcomes = Drive(*stepper, s);
  ExpectEqualToReference(*engine_, s, outcomes);
}

TEST_F(XttsStepperTest, LeavingMidGenerationDoesNotDisturbOthersAndFreesTheSlot) {
  auto stepper = engine_->NewStepper();
  std::vector<Script> s = {
      {Request("I have 2,500 songs and 12.5 hours.", "eng_Latn", false, 11)},
      {Request("El 1er perro cuesta 20€ y 5 centavos.", "spa_Latn", false, 12)},
      {Request("Hello, world! This is a tiny test.", "eng_Latn", true, 0, "Carla Tiny")},
  };
  s[1].leave_at = 15;
  // Joins after the leave: takes the freed slot, whose cache rows still hold the leaver's keys.
  s.push_back({Request("Don't stop... really?! Wooo, naïve.", "eng_Latn", true, 0), 16});
  const auto outcomes = Drive(*stepper, s);
  EXPECT_FALSE(outcomes[1].finished);
  EXPECT_FALSE(outcomes[1].out.audio.empty());  // it had produced audio before leaving
  ExpectEqualToReference(*engine_, s, outcomes);
}

TEST_F(XttsStepperTest, SizeCountsJoinedSequencesUntilTheyLeave) {
  auto stepper = engine_->NewStepper();
  EXPECT_EQ(stepper->size(), 0);
  ASSERT_TRUE(stepper->Join(1, Request("hello there", "eng_Latn", true, 0)).ok());
  ASSERT_TRUE(stepper->Join(2, Request("hola", "spa_Latn", true, 0)).ok());
  EXPECT_EQ(stepper->size(), 2);
  // Finishing does not leave: the caller does.
  SynthesisRequest r = Request("hola", "spa_Latn", true, 0);
  r.params.forced_codes = 3;
  ASSERT_TRUE(stepper->Join(3, r).ok());
  std::vector<SpeechStepResult> res;
  for (int i = 0; i < 3; ++i) res = stepper->Step(std::vector<uint64_t>{3});
  ASSERT_EQ(res.size(), 1u);
  EXPECT_TRUE(res[0].finished);
  EXPECT_EQ(res[0].stats.codes, 3);
  EXPECT_EQ(stepper->size(), 3);
  // A finished sequence stepped again stays finished and produces nothing more.
  res = stepper->Step(std::vector<uint64_t>{3});
  EXPECT_TRUE(res[0].finished);
  EXPECT_TRUE(res[0].audio.empty());
  stepper->Leave(1);
  stepper->Leave(3);
  stepper->Leave(12345);  // unknown: ignored
  EXPECT_EQ(stepper->size(), 1);
  stepper->Leave(2);
  EXPECT_EQ(stepper->size(), 0);
}

TEST_F(XttsStepperTest, RandomSeedIsReportedAndReproducesWithSynthesize) {
  auto stepper = engine_->NewStepper();
  std::vector<Script> s = {{Request("hello there, how are you", "eng_Latn", false, 0)},
                           {Request("hello there, how are you", "eng_Latn", false, 0)}};
  const auto outcomes = Drive(*stepper, s);
  ASSERT_TRUE(outcomes[0].finished && outcomes[1].finished);
  EXPECT_NE(outcomes[0].out.stats.seed, 0u);
  EXPECT_NE(outcomes[0].out.stats.seed, outcomes[1].out.stats.seed);
  SynthesisRequest again = s[0].request;
  again.params.seed = outcomes[0].out.stats.seed;
  const Output ref = Reference(*engine_, again);
  EXPECT_EQ(ref.stats.seed, outcomes[0].out.stats.seed);
  EXPECT_LT(MaxAbsDiff(outcomes[0].out.audio, ref.audio), kTolerance);
}

TEST_F(XttsStepperTest, BadRequestsAndIdsAreRefused) {
  auto stepper = engine_->NewStepper();
  absl::Status st = stepper->Join(1, Request("hello", "xxx_Latn", true, 0));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("xxx_Latn"));
  st = stepper->Join(1, Request("   ", "eng_Latn", true, 0));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stepper->size(), 0);
  ASSERT_TRUE(stepper->Join(1, Request("hello", "eng_Latn", true, 0)).ok());
  EXPECT_EQ(stepper->Join(1, Request("hello", "eng_Latn", true, 0)).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(stepper->size(), 1);
  const auto res = stepper->Step(std::vector<uint64_t>{7, 1, 1});
  ASSERT_EQ(res.size(), 3u);
  EXPECT_EQ(res[0].status.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(res[1].status.ok()) << res[1].status;
  EXPECT_EQ(res[2].status.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(XttsStepperTest, SequencesSteppingTogetherShareOneGptCall) {
  auto stepper = engine_->NewStepper();
  for (uint64_t id = 1; id <= 4; ++id) {
    SynthesisRequest r = Request("Hello, world! This is a tiny test.", "eng_Latn", false, id);
    r.params.forced_codes = 20;
    ASSERT_TRUE(stepper->Join(id, r).ok());
  }
  const std::vector<uint64_t> all = {1, 2, 3, 4};
  stepper->Step(all);  // prefixes (one call each) and the first batched step
  const int64_t steps0 = engine_->steps_run(), calls0 = engine_->gpt_calls_run();
  for (int i = 0; i < 10; ++i) stepper->Step(all);
  EXPECT_EQ(engine_->steps_run() - steps0, 40);
  EXPECT_EQ(engine_->gpt_calls_run() - calls0, 10);
}

TEST_F(XttsStepperTest, LongTextGoesThroughItsPiecesInOrder) {
  std::string text;
  for (int i = 0; i < 30; ++i) text += "The quick brown fox jumps over the lazy dog near the river bank. ";
  std::vector<Script> s;
  Script longer{Request(text, "eng_Latn", false, 21)};
  longer.request.params.forced_codes = 12;
  s.push_back(longer);
  s.push_back({Request("hello there", "eng_Latn", false, 3), 4});
  auto stepper = engine_->NewStepper();
  const auto outcomes = Drive(*stepper, s);
  ExpectEqualToReference(*engine_, s, outcomes);
  EXPECT_GT(outcomes[0].out.stats.codes, 12);  // more than one piece
}

TEST(XttsStepperDTypeTest, BFloat16GptStepsInBatches) {
  EngineOptions o;
  o.device = TestDevice();
  o.dtype = "bfloat16";
  auto e = XttsEngine::Load("xtts-tiny-bf16", kModel, o);
  ASSERT_TRUE(e.ok()) << e.status();
  auto stepper = (*e)->NewStepper();
  std::vector<Script> s;
  for (int i = 0; i < 3; ++i) {
    Script x{Request(i == 1 ? "hola, ¿qué tal?" : "Hello there, friend.", i == 1 ? "spa_Latn" : "eng_Latn",
                     i == 0, 50 + i), i * 2};
    x.request.params.forced_codes = 40;
    s.push_back(x);
  }
  const int64_t calls0 = (*e)->gpt_calls_run(), steps0 = (*e)->steps_run();
  const auto outcomes = Drive(*stepper, s);
  EXPECT_LT((*e)->gpt_calls_run() - calls0, (*e)->steps_run() - steps0);
  ExpectEqualToReference(**e, s, outcomes);
}

TEST(XttsStepperFallbackTest, OneByOneStepsWithoutStepSlotsEqualSynthesize) {
  XttsStreamOptions o;
  o.batched_steps = false;
  auto engine = LoadOrDie(kModel, o);
  ASSERT_NE(engine, nullptr);
  auto stepper = engine->NewStepper();
  const auto scripts = MixedScripts();
  const int64_t steps0 = engine->steps_run(), calls0 = engine->gpt_calls_run();
  const auto outcomes = Drive(*stepper, scripts);
  EXPECT_EQ(engine->gpt_calls_run() - calls0, engine->steps_run() - steps0);  // nothing batched
  ExpectEqualToReference(*engine, scripts, outcomes);
}

TEST(XttsStepperFallbackTest, ModelExportedWithoutStepSlotsStillSteps) {
  auto legacy = LoadOrDie(kLegacyModel);
  ASSERT_NE(legacy, nullptr);
  EXPECT_FALSE(legacy->has_batched_step());
  auto stepper = legacy->NewStepper();
  const auto scripts = MixedScripts();
  const auto outcomes = Drive(*stepper, scripts);
  ExpectEqualToReference(*legacy, scripts, outcomes);
  // Same weights as the current export: same audio.
  auto current = LoadOrDie(kModel);
  ASSERT_NE(current, nullptr);
  const Output a = Reference(*current, scripts[0].request);
  EXPECT_LT(MaxAbsDiff(a.audio, outcomes[0].out.audio), kTolerance);
}

}  // namespace
}  // namespace vox
