#include "engines/audio/resampler.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/audio/audio_test_util.h"

namespace vox {
namespace {

using ::testing::HasSubstr;
using audio_test::Sine;

// Frequency of a steady sine from its rising zero crossings (linear interpolation), skipping
// `skip` samples at each end.
double MeasureFrequency(const std::vector<float>& x, int rate, size_t skip) {
  double first = -1, last = -1;
  int periods = -1;
  for (size_t i = skip; i + 1 < x.size() - skip; ++i) {
    if (x[i] < 0 && x[i + 1] >= 0) {
      const double t = i + x[i] / (x[i] - x[i + 1]);
      if (first < 0) first = t;
      last = t;
      ++periods;
    }
  }
  if (periods <= 0) return 0;
  return periods * rate / (last - first);
}

double Rms(const std::vector<float>& x, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += x[i] * x[i];
  return std::sqrt(s / (end - begin));
}

std::vector<float> Convert(int in_rate, int out_rate, const std::vector<float>& input,
                           size_t block, ResamplerQuality q = ResamplerQuality::kHigh) {
  auto r = Resampler::Create(in_rate, out_rate, q);
  EXPECT_TRUE(r.ok()) << r.status();
  std::vector<float> out;
  for (size_t i = 0; i < input.size(); i += block) {
    EXPECT_TRUE((*r)->Process(absl::MakeConstSpan(input.data() + i,
                                                  std::min(block, input.size() - i)), &out)
                    .ok());
    EXPECT_EQ((*r)->output_samples(), static_cast<int64_t>(out.size()));
  }
  EXPECT_TRUE((*r)->Flush(&out).ok());
  return out;
}

struct RatePair {
  int in;
  int out;
};

class ResamplerRatesTest : public ::testing::TestWithParam<RatePair> {};

TEST_P(ResamplerRatesTest, PreservesFrequencyAndAmplitude) {
  const auto [in_rate, out_rate] = GetParam();
  for (double freq : {440.0, 3000.0}) {
    const std::vector<float> input = Sine(in_rate, 2 * in_rate, freq, 0.5);
    const std::vector<float> out = Convert(in_rate, out_rate, input, 1024);
    const double measured = MeasureFrequency(out, out_rate, out_rate / 20);
    // A wrong rate ratio (e.g. 22050/24000 treated as 1) is off by percents; this is 10 ppm.
    EXPECT_NEAR(measured, freq, freq * 1e-5) << in_rate << " -> " << out_rate;
    EXPECT_NEAR(Rms(out, out_rate / 20, out.size() - out_rate / 20), 0.5 / std::sqrt(2.0), 0.002);
  }
}

TEST_P(ResamplerRatesTest, ExactTotalLengthForAnySplit) {
  const auto [in_rate, out_rate] = GetParam();
  std::mt19937 rng(7);
  for (int64_t n : {0, 1, 2, 99, 22050, 22051, 24007, 48013}) {
    const std::vector<float> input = Sine(in_rate, n, 300, 0.3);
    // Independent of Resampler::OutputLength: round half up in floating point.
    const int64_t expected =
        static_cast<int64_t>(std::floor(static_cast<double>(n) * out_rate / in_rate + 0.5));
    EXPECT_EQ(Resampler::OutputLength(n, in_rate, out_rate), expected);
    for (size_t block : {1u, 7u, 480u, 100000u}) {
      if (block == 1 && n > 5000) continue;
      EXPECT_EQ(static_cast<int64_t>(Convert(in_rate, out_rate, input, block).size()), expected)
          << "n=" << n << " block=" << block;
    }
    // Random block sizes.
    auto r = *Resampler::Create(in_rate, out_rate);
    std::vector<float> out;
    size_t pos = 0;
    while (pos < input.size()) {
      const size_t b = std::min<size_t>(std::uniform_int_distribution<size_t>(1, 3000)(rng),
                                        input.size() - pos);
      ASSERT_TRUE(r->Process(absl::MakeConstSpan(input.data() + pos, b), &out).ok());
      pos += b;
    }
    ASSERT_TRUE(r->Flush(&out).ok());
    EXPECT_EQ(static_cast<int64_t>(out.size()), expected);
    EXPECT_EQ(r->output_samples(), expected);
    EXPECT_EQ(r->input_samples(), n);
  }
}

TEST_P(ResamplerRatesTest, StreamingMatchesOneShot) {
  const auto [in_rate, out_rate] = GetParam();
  const std::vector<float> input = audio_test::SpeechLike(in_rate, in_rate + 17);
  const std::vector<float> whole = Convert(in_rate, out_rate, input, input.size());
  const std::vector<float> pieces = Convert(in_rate, out_rate, input, 333);
  ASSERT_EQ(whole.size(), pieces.size());
  double max_diff = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(whole[i]) - pieces[i]));
  }
  EXPECT_LT(max_diff, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Rates, ResamplerRatesTest,
                         ::testing::Values(RatePair{22050, 24000}, RatePair{24000, 48000},
                                           RatePair{48000, 24000}, RatePair{16000, 24000}),
                         [](const auto& info) {
                           return std::to_string(info.param.in) + "to" +
                                  std::to_string(info.param.out);
                         });

TEST(ResamplerTest, AlignedWithInputNoDelayInOutput) {
  // soxr removes its own group delay: the output of a sine starts in phase with the input.
  const std::vector<float> input = Sine(22050, 22050, 200, 0.5);
  const std::vector<float> out = Convert(22050, 24000, input, 512);
  const std::vector<float> ref = Sine(24000, static_cast<int64_t>(out.size()), 200, 0.5);
  const double snr = audio_test::SnrDb(ref.data() + 2400, out.data() + 2400,
                                       static_cast<int64_t>(out.size()) - 4800);
  EXPECT_GT(snr, 60.0);
}

TEST(ResamplerTest, EqualRatesPassThrough) {
  auto r = *Resampler::Create(24000, 24000);
  const std::vector<float> input = Sine(24000, 1000, 440, 0.5);
  std::vector<float> out;
  ASSERT_TRUE(r->Process(input, &out).ok());
  EXPECT_EQ(out, input);
  EXPECT_EQ(r->delay_samples(), 0.0);
  ASSERT_TRUE(r->Flush(&out).ok());
  EXPECT_EQ(out.size(), input.size());
}

TEST(ResamplerTest, QualityRecipesAllWork) {
  for (auto q : {ResamplerQuality::kQuick, ResamplerQuality::kLow, ResamplerQuality::kMedium,
                 ResamplerQuality::kHigh, ResamplerQuality::kVeryHigh}) {
    const std::vector<float> out = Convert(22050, 24000, Sine(22050, 22050, 1000, 0.5), 700, q);
    EXPECT_EQ(out.size(), 24000u);
    EXPECT_NEAR(MeasureFrequency(out, 24000, 1200), 1000.0, 0.05);
  }
}

TEST(ResamplerTest, BadRatesAndUseAfterFlush) {
  absl::Status s = Resampler::Create(0, 24000).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("1000..384000"));
  EXPECT_EQ(Resampler::Create(24000, 500000).status().code(), absl::StatusCode::kInvalidArgument);
  auto r = *Resampler::Create(22050, 24000);
  std::vector<float> out;
  ASSERT_TRUE(r->Flush(&out).ok());
  EXPECT_EQ(r->Process(Sine(22050, 10, 100, 0.1), &out).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r->Flush(&out).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace vox
