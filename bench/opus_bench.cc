// Opus encoding speed in multiples of real time on one core, per complexity:
//   BM_RawLibopus          opus_encoder_create + opus_encode_float on 20 ms frames (the floor)
//   BM_VoxOpusEncoder      vox::OpusEncoder::Encode on 50 ms blocks (frame buffering, packets)
//   BM_AudioStreamOgg      vox::AudioStreamEncoder, Ogg Opus, 200 ms pushes, 24 kHz in and out
//   BM_AudioStreamOggResample  the same from a 22050 Hz engine (adds libsoxr)
//   BM_Resampler/IN/OUT    vox::Resampler (libsoxr, kHigh) alone, 200 ms blocks
//   BM_Paired              raw libopus, OpusEncoder and AudioStreamEncoder (Ogg) take turns on
//                          the same 200 ms blocks, each timed with the thread's CPU clock: the
//                          ratios are immune to load that drifts between separate benchmarks
//                          (counters raw_x, vox_x, ogg_x, vox_ratio, ogg_ratio)
// Same settings everywhere: 24 kHz mono, OPUS_APPLICATION_AUDIO, bitrate auto (libopus default).
// The counter x_realtime = seconds of audio encoded per CPU second.
//
//   opus_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//              --benchmark_enable_random_interleaving=true   (one command line)
#include <opus.h>

#include <time.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "benchmark/benchmark.h"
#include "engines/audio/audio_stream_encoder.h"
#include "engines/audio/opus_encoder.h"
#include "engines/audio/resampler.h"

namespace {

constexpr int kRate = 24000;
constexpr double kSeconds = 10.0;

// The speech-like test signal of tests/audio (harmonics of a vibrato f0, syllable envelope).
std::vector<float> SpeechLike(int rate, double seconds) {
  const double kPi = 3.14159265358979323846;
  std::vector<float> out(static_cast<size_t>(rate * seconds));
  for (size_t i = 0; i < out.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    const double phase = 2 * kPi * (140.0 * t - 25.0 / (2 * kPi * 3.0) * std::cos(2 * kPi * 3.0 * t));
    double s = 0;
    for (int k = 1; k * 165.0 < 5000.0; ++k) s += std::sin(k * phase + 0.3 * k) / k;
    out[i] = static_cast<float>(0.2 * (0.15 + 0.85 * (0.5 - 0.5 * std::cos(2 * kPi * 4.0 * t))) * s);
  }
  return out;
}

const std::vector<float>& Signal(int rate) {
  static const std::vector<float> s24 = SpeechLike(24000, kSeconds);
  static const std::vector<float> s22 = SpeechLike(22050, kSeconds);
  return rate == 24000 ? s24 : s22;
}

void SetRate(benchmark::State& state) {
  state.counters["x_realtime"] =
      benchmark::Counter(kSeconds * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

void BM_RawLibopus(benchmark::State& state) {
  const int complexity = static_cast<int>(state.range(0));
  int error = 0;
  OpusEncoder* enc = opus_encoder_create(kRate, 1, OPUS_APPLICATION_AUDIO, &error);
  if (error != OPUS_OK) {
    state.SkipWithError("opus_encoder_create failed");
    return;
  }
  opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(complexity));
  opus_encoder_ctl(enc, OPUS_SET_BITRATE(OPUS_AUTO));
  const std::vector<float>& pcm = Signal(kRate);
  const int frame = kRate / 50;
  unsigned char packet[1275];
  for (auto _ : state) {
    for (size_t pos = 0; pos + frame <= pcm.size(); pos += frame) {
      const int n = opus_encode_float(enc, pcm.data() + pos, frame, packet, sizeof(packet));
      benchmark::DoNotOptimize(n);
    }
  }
  opus_encoder_destroy(enc);
  SetRate(state);
}

void BM_VoxOpusEncoder(benchmark::State& state) {
  vox::OpusEncoderOptions o;
  o.sample_rate_hz = kRate;
  o.complexity = static_cast<int>(state.range(0));
  auto enc = vox::OpusEncoder::Create(o);
  if (!enc.ok()) {
    state.SkipWithError("OpusEncoder::Create failed");
    return;
  }
  const std::vector<float>& pcm = Signal(kRate);
  const size_t block = kRate / 20;  // 50 ms: not a multiple of the frame, exercises buffering
  std::vector<vox::OpusPacket> packets;
  for (auto _ : state) {
    for (size_t pos = 0; pos < pcm.size(); pos += block) {
      packets.clear();
      const size_t n = std::min(block, pcm.size() - pos);
      if (!(*enc)->Encode(absl::MakeConstSpan(pcm.data() + pos, n), &packets).ok()) {
        state.SkipWithError("Encode failed");
        return;
      }
      benchmark::DoNotOptimize(packets.data());
    }
  }
  SetRate(state);
}

void StreamBench(benchmark::State& state, int input_rate) {
  vox::AudioStreamConfig c;
  c.encoding = vox::AudioEncoding::kOggOpus;
  c.sample_rate_hz = kRate;
  c.complexity = static_cast<int>(state.range(0));
  c.ogg_serial = 1;
  auto enc = vox::AudioStreamEncoder::Create(c, input_rate);
  if (!enc.ok()) {
    state.SkipWithError("AudioStreamEncoder::Create failed");
    return;
  }
  const std::vector<float>& pcm = Signal(input_rate);
  const size_t block = static_cast<size_t>(input_rate / 5);  // 200 ms pushes, like a vocoder chunk
  vox::EncodedAudio out;
  for (auto _ : state) {
    for (size_t pos = 0; pos < pcm.size(); pos += block) {
      const size_t n = std::min(block, pcm.size() - pos);
      if (!(*enc)->Push(absl::MakeConstSpan(pcm.data() + pos, n), &out).ok()) {
        state.SkipWithError("Push failed");
        return;
      }
      benchmark::DoNotOptimize(out.data.data());
    }
  }
  SetRate(state);
}

void BM_AudioStreamOgg(benchmark::State& state) { StreamBench(state, kRate); }
void BM_AudioStreamOggResample(benchmark::State& state) { StreamBench(state, 22050); }

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void BM_Paired(benchmark::State& state) {
  const int complexity = static_cast<int>(state.range(0));
  int error = 0;
  OpusEncoder* raw = opus_encoder_create(kRate, 1, OPUS_APPLICATION_AUDIO, &error);
  if (error != OPUS_OK) {
    state.SkipWithError("opus_encoder_create failed");
    return;
  }
  opus_encoder_ctl(raw, OPUS_SET_COMPLEXITY(complexity));
  opus_encoder_ctl(raw, OPUS_SET_BITRATE(OPUS_AUTO));
  vox::OpusEncoderOptions o;
  o.sample_rate_hz = kRate;
  o.complexity = complexity;
  auto vox_enc = vox::OpusEncoder::Create(o);
  vox::AudioStreamConfig c;
  c.encoding = vox::AudioEncoding::kOggOpus;
  c.sample_rate_hz = kRate;
  c.complexity = complexity;
  c.ogg_serial = 1;
  auto stream = vox::AudioStreamEncoder::Create(c, kRate);
  if (!vox_enc.ok() || !stream.ok()) {
    opus_encoder_destroy(raw);
    state.SkipWithError("vox encoder creation failed");
    return;
  }
  const std::vector<float>& pcm = Signal(kRate);
  const int frame = kRate / 50;
  const size_t block = static_cast<size_t>(kRate / 5);  // 200 ms = 10 frames
  unsigned char packet[1275];
  std::vector<vox::OpusPacket> packets;
  vox::EncodedAudio out;
  double t_raw = 0, t_vox = 0, t_ogg = 0;
  for (auto _ : state) {
    for (size_t pos = 0; pos + block <= pcm.size(); pos += block) {
      const absl::Span<const float> span(pcm.data() + pos, block);
      double t0 = ThreadCpuSeconds();
      for (size_t f = 0; f < block; f += frame) {
        benchmark::DoNotOptimize(
            opus_encode_float(raw, span.data() + f, frame, packet, sizeof(packet)));
      }
      double t1 = ThreadCpuSeconds();
      packets.clear();
      if (!(*vox_enc)->Encode(span, &packets).ok()) state.SkipWithError("Encode failed");
      benchmark::DoNotOptimize(packets.data());
      double t2 = ThreadCpuSeconds();
      if (!(*stream)->Push(span, &out).ok()) state.SkipWithError("Push failed");
      benchmark::DoNotOptimize(out.data.data());
      double t3 = ThreadCpuSeconds();
      t_raw += t1 - t0;
      t_vox += t2 - t1;
      t_ogg += t3 - t2;
    }
  }
  opus_encoder_destroy(raw);
  const double audio = kSeconds * static_cast<double>(state.iterations());
  state.counters["raw_x"] = audio / t_raw;
  state.counters["vox_x"] = audio / t_vox;
  state.counters["ogg_x"] = audio / t_ogg;
  state.counters["vox_ratio"] = t_raw / t_vox;
  state.counters["ogg_ratio"] = t_raw / t_ogg;
}

void BM_Resampler(benchmark::State& state) {
  const int in_rate = static_cast<int>(state.range(0));
  const int out_rate = static_cast<int>(state.range(1));
  auto r = vox::Resampler::Create(in_rate, out_rate);
  if (!r.ok()) {
    state.SkipWithError("Resampler::Create failed");
    return;
  }
  const std::vector<float>& pcm = Signal(in_rate);
  const size_t block = static_cast<size_t>(in_rate / 5);
  std::vector<float> out;
  for (auto _ : state) {
    for (size_t pos = 0; pos < pcm.size(); pos += block) {
      out.clear();
      const size_t n = std::min(block, pcm.size() - pos);
      if (!(*r)->Process(absl::MakeConstSpan(pcm.data() + pos, n), &out).ok()) {
        state.SkipWithError("Process failed");
        return;
      }
      benchmark::DoNotOptimize(out.data());
    }
  }
  SetRate(state);
}

BENCHMARK(BM_Resampler)->Args({22050, 24000})->Args({24000, 48000})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Paired)->DenseRange(0, 10)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RawLibopus)->DenseRange(0, 10)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VoxOpusEncoder)->DenseRange(0, 10)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AudioStreamOgg)->DenseRange(0, 10)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AudioStreamOggResample)->Arg(0)->Arg(5)->Arg(10)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
