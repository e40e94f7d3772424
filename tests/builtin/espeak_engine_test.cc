// The espeak-ng engine: real audio from Debian's espeak-ng-data, checked for duration, energy,
// streaming, parameters, errors and the process-wide serialization.
#include "engines/builtin/espeak_engine.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;

struct Audio {
  std::vector<float> samples;
  int chunks = 0;
  size_t largest_chunk = 0;
  std::string voice;  // SynthesisStats::voice
};

double Rms(const std::vector<float>& x) {
  double sum = 0;
  for (float v : x) sum += static_cast<double>(v) * v;
  return x.empty() ? 0 : std::sqrt(sum / x.size());
}

// RMS of each 20 ms frame at 22050 Hz.
std::vector<double> Envelope(const std::vector<float>& x) {
  constexpr size_t kFrame = 441;
  std::vector<double> out;
  for (size_t start = 0; start + kFrame <= x.size(); start += kFrame) {
    double sum = 0;
    for (size_t i = start; i < start + kFrame; ++i) sum += static_cast<double>(x[i]) * x[i];
    out.push_back(std::sqrt(sum / kFrame));
  }
  return out;
}

// Pearson correlation of two loudness envelopes over their common length. espeak-ng's output is
// not bit-identical from one call to the next (its wave generator keeps state and uses rand()),
// so "same speech" is judged by the envelope: ~1 for the same text, far lower for another.
double EnvelopeCorrelation(const std::vector<float>& a, const std::vector<float>& b) {
  const std::vector<double> x = Envelope(a), y = Envelope(b);
  const size_t n = std::min(x.size(), y.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

// Median fundamental frequency (Hz) of the loud 40 ms frames, by normalized autocorrelation
// over lags for 60–400 Hz.
double MedianF0(const std::vector<float>& x, int rate = 22050) {
  const size_t frame = rate / 25;
  const size_t min_lag = rate / 400, max_lag = rate / 60;
  const double loud = Rms(x);
  std::vector<double> f0s;
  for (size_t start = 0; start + frame + max_lag <= x.size(); start += frame / 2) {
    double energy = 0;
    for (size_t i = start; i < start + frame; ++i) energy += static_cast<double>(x[i]) * x[i];
    if (std::sqrt(energy / frame) < loud) continue;
    double best = 0;
    size_t best_lag = 0;
    for (size_t lag = min_lag; lag <= max_lag; ++lag) {
      double sxy = 0, syy = 0;
      for (size_t i = start; i < start + frame; ++i) {
        sxy += static_cast<double>(x[i]) * x[i + lag];
        syy += static_cast<double>(x[i + lag]) * x[i + lag];
      }
      const double r = sxy / std::sqrt(energy * syy + 1e-12);
      if (r > best) {
        best = r;
        best_lag = lag;
      }
    }
    if (best > 0.5) f0s.push_back(static_cast<double>(rate) / best_lag);
  }
  if (f0s.empty()) return 0;
  std::sort(f0s.begin(), f0s.end());
  return f0s[f0s.size() / 2];
}

// Same speech as `reference`: length within 3 % and a near-identical loudness envelope.
void ExpectSameSpeech(const std::vector<float>& got, const std::vector<float>& reference,
                      const std::string& what) {
  EXPECT_NEAR(static_cast<double>(got.size()), static_cast<double>(reference.size()),
              0.03 * reference.size())
      << what;
  EXPECT_GT(EnvelopeCorrelation(got, reference), 0.95) << what;
}

class EspeakEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto engine = CreateEspeakEngine(EspeakOptions{});
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = engine->release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }

  static absl::StatusOr<Audio> Speak(SpeechEngine& engine, const SynthesisRequest& request,
                                     const StopCheck& stop = {}) {
    Audio audio;
    auto stats = engine.Synthesize(
        request,
        [&](absl::Span<const float> chunk) {
          audio.samples.insert(audio.samples.end(), chunk.begin(), chunk.end());
          ++audio.chunks;
          audio.largest_chunk = std::max(audio.largest_chunk, chunk.size());
          return true;
        },
        stop);
    if (!stats.ok()) return stats.status();
    EXPECT_EQ(stats->samples, static_cast<int64_t>(audio.samples.size()));
    if (!request.voice.empty()) {
      EXPECT_EQ(stats->voice, request.voice);
    }
    audio.voice = stats->voice;
    return audio;
  }

  static SynthesisRequest Spanish(const std::string& text) {
    SynthesisRequest r;
    r.text = text;
    r.language = "spa_Latn";
    r.voice = "espeak:es";
    return r;
  }

  static EspeakEngine* engine_;
};
EspeakEngine* EspeakEngineTest::engine_ = nullptr;

TEST_F(EspeakEngineTest, ReportsNativeRateVoicesAndInfo) {
  EXPECT_EQ(engine_->sample_rate(), 22050);
  const auto& voices = engine_->voices();
  EXPECT_THAT(voices, Contains(Field(&VoiceInfo::name, "espeak:es")));
  EXPECT_THAT(voices, Contains(Field(&VoiceInfo::name, "espeak:en-us")));
  EXPECT_THAT(voices, Contains(Field(&VoiceInfo::name, "espeak:ca")));
  for (const VoiceInfo& v : voices) {
    ASSERT_EQ(v.languages.size(), 1u) << v.name;
  }
  EXPECT_GE(voices.size(), 20u);  // most of the table's languages have an espeak-ng voice
  EXPECT_EQ(engine_->info().architecture, "espeak-ng");
  EXPECT_EQ(engine_->info().kind, "speech");
  EXPECT_EQ(engine_->info().languages.size(), voices.size());
}

TEST_F(EspeakEngineTest, SpanishSentenceHasSpeechLikeDurationAndEnergy) {
  auto audio = Speak(*engine_, Spanish("Hola, ¿cómo estás?"));
  ASSERT_TRUE(audio.ok()) << audio.status();
  const double seconds = audio->samples.size() / 22050.0;
  EXPECT_GT(seconds, 0.8);
  EXPECT_LT(seconds, 3.0);
  EXPECT_GT(Rms(audio->samples), 0.02);  // not silence
  for (float v : audio->samples) ASSERT_LE(std::abs(v), 1.0f);
  // Streamed as produced: several chunks of about chunk_ms (50 ms = 1102 samples).
  EXPECT_GE(audio->chunks, 5);
  EXPECT_LE(audio->largest_chunk, 2 * 1103u);
}

TEST_F(EspeakEngineTest, DefaultVoiceIsTheLanguagesVoice) {
  SynthesisRequest request = Spanish("Buenos días.");
  auto named = Speak(*engine_, request);
  request.voice.clear();
  auto by_default = Speak(*engine_, request);
  ASSERT_TRUE(named.ok() && by_default.ok());
  EXPECT_EQ(by_default->voice, "espeak:es");
  ExpectSameSpeech(by_default->samples, named->samples, "default voice vs espeak:es");
}

TEST_F(EspeakEngineTest, DifferentTextGivesDifferentSpeechSameTextSameSpeech) {
  auto a = Speak(*engine_, Spanish("Hola, ¿cómo estás?"));
  auto b = Speak(*engine_, Spanish("Mañana vamos a la playa."));
  auto a2 = Speak(*engine_, Spanish("Hola, ¿cómo estás?"));
  ASSERT_TRUE(a.ok() && b.ok() && a2.ok());
  ExpectSameSpeech(a2->samples, a->samples, "same text twice");
  EXPECT_LT(EnvelopeCorrelation(a->samples, b->samples), 0.5);
}

TEST_F(EspeakEngineTest, DoubleSpeedIsShorterAndPitchChangesAudio) {
  SynthesisRequest request = Spanish("Mañana vamos a la playa con mis amigos.");
  auto normal = Speak(*engine_, request);
  request.params.speed = 2.0f;
  auto fast = Speak(*engine_, request);
  ASSERT_TRUE(normal.ok() && fast.ok());
  EXPECT_LT(fast->samples.size(), normal->samples.size() * 0.7);
  EXPECT_GT(fast->samples.size(), normal->samples.size() * 0.3);

  request.params.speed = 0;
  request.params.pitch = 90;
  auto high = Speak(*engine_, request);
  request.params.pitch = 10;
  auto low = Speak(*engine_, request);
  ASSERT_TRUE(high.ok() && low.ok());
  const double f0 = MedianF0(normal->samples);
  EXPECT_GT(f0, 60);
  EXPECT_GT(MedianF0(high->samples), 1.2 * f0);
  EXPECT_LT(MedianF0(low->samples), 0.9 * f0);
  // Parameters do not leak into the next request (espeak's state is process-global).
  request.params.pitch = 0;
  auto again = Speak(*engine_, request);
  ASSERT_TRUE(again.ok());
  ExpectSameSpeech(again->samples, normal->samples, "default after pitch 10");
  EXPECT_NEAR(MedianF0(again->samples), f0, 0.1 * f0);
}

TEST_F(EspeakEngineTest, UnknownVoiceAndLanguageListTheValidValues) {
  SynthesisRequest request = Spanish("Hola");
  request.voice = "espeak:klingon";
  absl::Status s = engine_->Validate(request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("espeak:klingon"));
  EXPECT_THAT(s.message(), HasSubstr("espeak:es"));

  request.voice = "espeak:en-us";  // exists, but not for Spanish
  s = engine_->Validate(request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("espeak:es"));

  request.voice.clear();
  request.language = "tlh_Latn";
  s = engine_->Validate(request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tlh_Latn"));
  EXPECT_THAT(s.message(), HasSubstr("spa_Latn"));
  auto synthesized = Speak(*engine_, request);
  EXPECT_EQ(synthesized.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EspeakEngineTest, BadTextAndParametersAreInvalidArgument) {
  struct Case {
    SynthesisRequest request;
    std::string needle;
  };
  std::vector<Case> cases;
  cases.push_back({Spanish(" \n"), "empty"});
  cases.push_back({Spanish(std::string(4001, 'a')), "at most 4000"});
  cases.push_back({Spanish("\xc3"), "UTF-8"});
  cases.push_back({Spanish(std::string("a\0b", 3)), "NUL"});
  Case fast{Spanish("Hola"), "speed 3"};
  fast.request.params.speed = 3.0f;
  cases.push_back(fast);
  Case pitch{Spanish("Hola"), "pitch 101"};
  pitch.request.params.pitch = 101;
  cases.push_back(pitch);
  for (const Case& c : cases) {
    const absl::Status s = engine_->Validate(c.request);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.needle;
    EXPECT_THAT(s.message(), HasSubstr(c.needle));
  }
}

TEST_F(EspeakEngineTest, StopCheckAndSinkAbortAndTheNextRequestWorks) {
  const SynthesisRequest request =
      Spanish("Esta es una frase bastante larga que tardaría varios segundos en decirse entera.");
  auto full = Speak(*engine_, request);
  ASSERT_TRUE(full.ok());

  int polls = 0;
  auto stopped = Speak(*engine_, request, [&]() {
    return ++polls > 3 ? absl::DeadlineExceededError("deadline") : absl::OkStatus();
  });
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kDeadlineExceeded);

  int64_t received = 0;
  auto consumer_gone = engine_->Synthesize(
      request,
      [&](absl::Span<const float> chunk) {
        received += chunk.size();
        return false;
      },
      {});
  EXPECT_EQ(consumer_gone.status().code(), absl::StatusCode::kCancelled);
  EXPECT_GT(received, 0);
  EXPECT_LT(received, static_cast<int64_t>(full->samples.size()) / 2);

  auto after = Speak(*engine_, request);
  ASSERT_TRUE(after.ok()) << after.status();
  ExpectSameSpeech(after->samples, full->samples, "after an aborted synthesis");
}

TEST_F(EspeakEngineTest, ConfiguredLanguagesOnly) {
  EspeakOptions options;
  options.languages = {"spa_Latn", "cat_Latn"};
  auto engine = CreateEspeakEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ASSERT_EQ((*engine)->voices().size(), 2u);
  EXPECT_EQ((*engine)->voices()[0].name, "espeak:es");
  EXPECT_EQ((*engine)->voices()[1].name, "espeak:ca");
  SynthesisRequest english;
  english.text = "Hello";
  english.language = "eng_Latn";
  EXPECT_EQ((*engine)->Validate(english).code(), absl::StatusCode::kInvalidArgument);

  absl::StatusOr<std::unique_ptr<SpeechEngine>> as_interface = CreateEspeakEngine(options);
  ASSERT_TRUE(as_interface.ok());
  EXPECT_EQ((*as_interface)->sample_rate(), 22050);

  options.languages = {"spa_Latn", "xxx_Latn"};
  auto bad = CreateEspeakEngine(options);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("xxx_Latn"));

  options.languages = {};
  options.data_path = "/nonexistent";  // espeak is already initialized with the default path
  EXPECT_EQ(CreateEspeakEngine(options).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EspeakEngineTest, ConcurrentSynthesesAreSerializedAndCorrect) {
  auto other = CreateEspeakEngine(EspeakOptions{});
  ASSERT_TRUE(other.ok());
  SynthesisRequest english;
  english.text = "The weather is nice today.";
  english.language = "eng_Latn";
  const SynthesisRequest spanish = Spanish("Mañana vamos a la playa.");
  auto english_alone = Speak(**other, english);
  auto spanish_alone = Speak(*engine_, spanish);
  ASSERT_TRUE(english_alone.ok() && spanish_alone.ok());

  std::vector<absl::StatusOr<Audio>> results(8, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      results[i] = i % 2 == 0 ? Speak(**other, english) : Speak(*engine_, spanish);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(results[i].ok()) << i;
    ExpectSameSpeech(results[i]->samples,
                     i % 2 == 0 ? english_alone->samples : spanish_alone->samples,
                     "concurrent request " + std::to_string(i));
  }
}

}  // namespace
}  // namespace vox
