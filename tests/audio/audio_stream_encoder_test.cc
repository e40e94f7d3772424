#include "engines/audio/audio_stream_encoder.h"

#include <array>
#include <cmath>
#include <random>
#include <cstdio>
#include <cstring>
#include <regex>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/audio/audio_test_util.h"

namespace vox {
namespace {

using ::testing::HasSubstr;
using audio_test::ReadOgg;
using audio_test::SnrDb;
using audio_test::SpeechLike;

int64_t Resampled(int64_t n, int in, int out) {  // round half up, computed independently
  return static_cast<int64_t>(std::floor(static_cast<double>(n) * out / in + 0.5));
}

size_t DecodeOpusCount(const std::vector<std::string>& packets, int rate) {
  return audio_test::DecodeOpus(packets, rate).size();
}

std::unique_ptr<AudioStreamEncoder> Make(AudioEncoding encoding, int rate, int input_rate,
                                         std::optional<uint32_t> serial = std::nullopt) {
  AudioStreamConfig c;
  c.encoding = encoding;
  c.sample_rate_hz = rate;
  c.ogg_serial = serial;
  auto e = AudioStreamEncoder::Create(c, input_rate);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

// Pushes `input` in uneven blocks; collects every chunk.
std::vector<EncodedAudio> PushAll(AudioStreamEncoder* enc, const std::vector<float>& input) {
  std::vector<EncodedAudio> chunks;
  const size_t blocks[] = {1, 5000, 123, 4410, 999};
  size_t pos = 0;
  for (int i = 0; pos < input.size(); ++i) {
    const size_t n = std::min(blocks[i % 5], input.size() - pos);
    EncodedAudio out;
    EXPECT_TRUE(enc->Push(absl::MakeConstSpan(input.data() + pos, n), &out).ok());
    chunks.push_back(std::move(out));
    pos += n;
  }
  return chunks;
}

TEST(AudioStreamEncoderTest, HeaderDescribesTheStream) {
  for (int rate : {24000, 48000}) {
    auto e = Make(AudioEncoding::kOpus, rate, 24000);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->header().encoding, AudioEncoding::kOpus);
    EXPECT_EQ(e->header().sample_rate_hz, rate);
    EXPECT_EQ(e->header().channels, 1);
    EXPECT_EQ(e->header().frame_samples, rate / 50);
    // libopus' lookahead is 6.5 ms in all non-low-delay modes: 312 samples at 48 kHz.
    EXPECT_EQ(e->header().pre_skip, 312);
  }
  auto pcm = Make(AudioEncoding::kPcm16, 0, 22050);
  ASSERT_NE(pcm, nullptr);
  EXPECT_EQ(pcm->header().sample_rate_hz, 24000);  // 0 = default 24000
  EXPECT_EQ(pcm->header().pre_skip, 0);
  EXPECT_EQ(pcm->header().frame_samples, 0);
}

TEST(AudioStreamEncoderTest, BadConfigNamesValueAndAllowed) {
  AudioStreamConfig c;
  c.encoding = AudioEncoding::kOpus;
  c.sample_rate_hz = 44100;
  absl::Status s = AudioStreamEncoder::Create(c, 24000).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("44100"));
  EXPECT_THAT(s.message(), HasSubstr("allowed: 24000, 48000"));
  c.encoding = AudioEncoding::kOggOpus;
  EXPECT_EQ(AudioStreamEncoder::Create(c, 24000).status().code(),
            absl::StatusCode::kInvalidArgument);
  c.sample_rate_hz = 24000;
  c.complexity = 11;
  s = AudioStreamEncoder::Create(c, 24000).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("complexity 11"));
  EXPECT_THAT(s.message(), HasSubstr("0..10"));
  c.complexity = -2;
  EXPECT_EQ(AudioStreamEncoder::Create(c, 24000).status().code(),
            absl::StatusCode::kInvalidArgument);
  c.complexity = -1;  // the API's "unset": default 5
  EXPECT_TRUE(AudioStreamEncoder::Create(c, 24000).ok());
  c.complexity = 5;
  c.bitrate_bps = 1000000;
  EXPECT_EQ(AudioStreamEncoder::Create(c, 24000).status().code(),
            absl::StatusCode::kInvalidArgument);
  // PCM16 accepts the engine's native rate, and names it when refusing another.
  c = AudioStreamConfig();
  c.encoding = AudioEncoding::kPcm16;
  c.sample_rate_hz = 22050;
  EXPECT_TRUE(AudioStreamEncoder::Create(c, 22050).ok());
  c.sample_rate_hz = 16000;
  s = AudioStreamEncoder::Create(c, 22050).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("16000"));
  EXPECT_THAT(s.message(), HasSubstr("24000, 48000, 22050"));
  EXPECT_EQ(AudioStreamEncoder::Create(AudioStreamConfig(), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AudioStreamEncoderTest, OpusPacketsSequencedAndDecodeToExactLength) {
  const int64_t n_in = 22050 * 2 + 77;
  const int64_t n_out = Resampled(n_in, 22050, 24000);
  auto e = Make(AudioEncoding::kOpus, 24000, 22050);
  std::vector<EncodedAudio> chunks = PushAll(e.get(), SpeechLike(22050, n_in));
  EncodedAudio last;
  ASSERT_TRUE(e->Finish(&last).ok());
  chunks.push_back(last);
  EXPECT_EQ(e->total_samples(), n_out);
  std::vector<std::string> packets;
  int64_t next_seq = 0;
  for (const EncodedAudio& c : chunks) {
    EXPECT_TRUE(c.data.empty());
    if (c.packets.empty()) continue;
    EXPECT_EQ(c.sequence, next_seq);
    EXPECT_EQ(c.timestamp_samples, next_seq * 480);
    EXPECT_EQ(c.num_samples, static_cast<int64_t>(c.packets.size()) * 480);
    next_seq += static_cast<int64_t>(c.packets.size());
    packets.insert(packets.end(), c.packets.begin(), c.packets.end());
  }
  std::vector<float> decoded = audio_test::DecodeOpus(packets, 24000);
  const int skip = e->header().pre_skip / 2;
  ASSERT_GE(static_cast<int64_t>(decoded.size()), skip + n_out);
  // Compare with the same analytic signal generated at 24 kHz (resampler + codec error).
  const std::vector<float> ref = SpeechLike(24000, n_out);
  const double snr = SnrDb(ref.data(), decoded.data() + skip, n_out);
  std::cout << "22050 -> 24000 Opus round trip SNR " << snr << " dB\n";
  EXPECT_GT(snr, 12.0);
  EXPECT_EQ(e->Push(ref, &last).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(e->Finish(&last).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(AudioStreamEncoderTest, Pcm16ResampledExactLengthAndContiguous) {
  const int64_t n_in = 22050 * 2 + 5;
  for (int rate : {24000, 48000, 22050}) {
    auto e = Make(AudioEncoding::kPcm16, rate, 22050);
    std::vector<EncodedAudio> chunks = PushAll(e.get(), SpeechLike(22050, n_in));
    EncodedAudio seg_end;
    ASSERT_TRUE(e->EndSegment(&seg_end).ok());  // mid-stream flush of the resampler
    chunks.push_back(seg_end);
    // Segments are independent utterances: the second one starts its own time origin.
    std::vector<EncodedAudio> more = PushAll(e.get(), SpeechLike(22050, n_in));
    chunks.insert(chunks.end(), more.begin(), more.end());
    EncodedAudio last;
    ASSERT_TRUE(e->Finish(&last).ok());
    chunks.push_back(last);
    const int64_t expected = 2 * Resampled(n_in, 22050, rate);
    EXPECT_EQ(e->total_samples(), expected);
    std::string bytes;
    int64_t ts = 0, seq = 0;
    for (const EncodedAudio& c : chunks) {
      EXPECT_EQ(c.timestamp_samples, ts);
      EXPECT_EQ(c.num_samples * 2, static_cast<int64_t>(c.data.size()));
      if (!c.data.empty()) {
        EXPECT_EQ(c.sequence, seq++);
      }
      ts += c.num_samples;
      bytes += c.data;
    }
    ASSERT_EQ(static_cast<int64_t>(bytes.size()), 2 * expected);
    std::vector<float> pcm(static_cast<size_t>(expected));
    for (int64_t i = 0; i < expected; ++i) {
      int16_t v;
      std::memcpy(&v, bytes.data() + 2 * i, 2);  // little-endian host
      pcm[i] = v / 32767.0f;
    }
    // Away from the segment seam the resampled signal matches the analytic one closely.
    const int64_t half = expected / 2, guard = rate / 20;
    const std::vector<float> ref = SpeechLike(rate, half);
    const double snr1 = SnrDb(ref.data() + guard, pcm.data() + guard, half - 2 * guard);
    const double snr2 = SnrDb(ref.data() + guard, pcm.data() + half + guard, half - 2 * guard);
    EXPECT_GT(snr1, 40.0) << rate;
    EXPECT_GT(snr2, 40.0) << rate;
  }
}

struct OpusInfo {
  int exit_code = -1;
  std::string output;
  double playback_seconds = -1;
  int original_rate = -1;
};

OpusInfo RunOpusinfo(const std::string& path) {
  OpusInfo info;
  info.output = audio_test::Run("opusinfo " + path, &info.exit_code);
  std::smatch m;
  if (std::regex_search(info.output, m, std::regex("Playback length: *([0-9]+)m:([0-9.]+)s"))) {
    info.playback_seconds = std::stoi(m[1]) * 60 + std::stod(m[2]);
  }
  if (std::regex_search(info.output, m, std::regex("Original sample rate: *([0-9]+) *Hz"))) {
    info.original_rate = std::stoi(m[1]);
  }
  return info;
}

// Decodes with opusdec to raw float at `rate`; returns the samples (empty on failure).
std::vector<float> RunOpusdec(const std::string& path, int rate) {
  const std::string raw = path + ".f32";
  int rc = -1;
  const std::string out = audio_test::Run(
      "opusdec --quiet --float --rate " + std::to_string(rate) + " " + path + " " + raw, &rc);
  EXPECT_EQ(rc, 0) << out;
  const std::string bytes = audio_test::ReadFile(raw);
  std::vector<float> samples(bytes.size() / 4);
  std::memcpy(samples.data(), bytes.data(), samples.size() * 4);
  return samples;
}

bool HaveTool(const char* name) {
  int rc = -1;
  audio_test::Run(std::string("command -v ") + name, &rc);
  return rc == 0;
}

class OggFileTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    // opus-tools is a build dependency (scripts/install-deps); its absence is a failure, not a skip.
    ASSERT_TRUE(HaveTool("opusinfo")) << "opusinfo not found: install opus-tools";
    ASSERT_TRUE(HaveTool("opusdec")) << "opusdec not found: install opus-tools";
  }
};

TEST_P(OggFileTest, OpusinfoAndOpusdecAcceptWithExactDuration) {
  const int rate = GetParam();
  const int64_t n_in = 22050 * 3 / 2 + 1234;  // 1.556 s, not a whole number of frames
  const int64_t n_out = Resampled(n_in, 22050, rate);
  auto e = Make(AudioEncoding::kOggOpus, rate, 22050, 12345);
  std::vector<EncodedAudio> chunks = PushAll(e.get(), SpeechLike(22050, n_in));
  EncodedAudio last;
  ASSERT_TRUE(e->Finish(&last).ok());
  chunks.push_back(last);
  std::string file;
  int64_t ts = 0;
  for (const EncodedAudio& c : chunks) {
    // Chunks tile the timeline (Opus timeline: pre-skip included, final trim applied).
    EXPECT_EQ(c.timestamp_samples, ts);
    ts += c.num_samples;
    file += c.data;
  }
  EXPECT_EQ(ts, e->header().pre_skip * rate / 48000 + n_out);
  EXPECT_EQ(e->total_samples(), n_out);
  // The stream's own structure.
  const audio_test::OggFile ogg = ReadOgg(file);
  ASSERT_TRUE(ogg.ok) << ogg.error;
  EXPECT_EQ(ogg.pages.front().serial, 12345u);
  EXPECT_EQ(ogg.pages.back().granule, 312 + n_out * 48000 / rate);

  const std::string path =
      ::testing::TempDir() + "/vox_audio_" + std::to_string(getpid()) + "_" + std::to_string(rate) + ".opus";
  ASSERT_TRUE(audio_test::WriteFile(path, file));
  const OpusInfo info = RunOpusinfo(path);
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_THAT(info.output, ::testing::Not(HasSubstr("WARNING"))) << info.output;
  EXPECT_THAT(info.output, ::testing::Not(HasSubstr("ERROR"))) << info.output;
  EXPECT_EQ(info.original_rate, 22050) << info.output;
  // opusinfo prints milliseconds.
  EXPECT_NEAR(info.playback_seconds, static_cast<double>(n_out) / rate, 0.0011) << info.output;

  const std::vector<float> decoded = RunOpusdec(path, rate);
  std::remove(path.c_str());
  std::remove((path + ".f32").c_str());
  EXPECT_EQ(static_cast<int64_t>(decoded.size()), n_out);
  if (static_cast<int64_t>(decoded.size()) == n_out) {
    const std::vector<float> ref = SpeechLike(rate, n_out);
    EXPECT_GT(SnrDb(ref.data(), decoded.data(), n_out), 12.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Rates, OggFileTest, ::testing::Values(24000, 48000));

TEST_F(OggFileTest, ManySegmentsMakeOneValidStream) {
  // Three SpeechTranslate segments of different lengths, each ended with EndSegment.
  const int64_t lens[] = {24000 + 100, 12000 + 7, 30000 + 479};
  auto e = Make(AudioEncoding::kOggOpus, 24000, 24000, 99);
  std::string file;
  int64_t offset = 0;
  std::vector<int64_t> starts;
  const int L = e->header().pre_skip / 2;
  for (int s = 0; s < 3; ++s) {
    starts.push_back(e->total_samples());
    for (const EncodedAudio& c : PushAll(e.get(), SpeechLike(24000, lens[s], offset))) file += c.data;
    offset += lens[s];
    EncodedAudio end;
    if (s < 2) {
      ASSERT_TRUE(e->EndSegment(&end).ok());
      // The drained segment is fully playable now: pages up to here cover it.
      const audio_test::OggFile so_far = ReadOgg(file + end.data);
      ASSERT_TRUE(so_far.ok) << so_far.error;
      EXPECT_GE(so_far.pages.back().granule, 2 * (L + starts[s] + lens[s]));
      EXPECT_FALSE(so_far.pages.back().eos);
    } else {
      ASSERT_TRUE(e->Finish(&end).ok());
    }
    file += end.data;
  }
  const int64_t total = e->total_samples();
  // Drain padding is at most one frame plus the lookahead per segment boundary.
  EXPECT_GE(total, lens[0] + lens[1] + lens[2]);
  EXPECT_LE(total, lens[0] + lens[1] + lens[2] + 2 * (480 + L));

  const audio_test::OggFile ogg = ReadOgg(file);
  ASSERT_TRUE(ogg.ok) << ogg.error;
  int bos = 0, eos = 0, heads = 0;
  int64_t prev = 0;
  for (size_t i = 0; i < ogg.pages.size(); ++i) {
    bos += ogg.pages[i].bos;
    eos += ogg.pages[i].eos;
    EXPECT_EQ(ogg.pages[i].sequence, static_cast<int64_t>(i));
    EXPECT_GE(ogg.pages[i].granule, prev);
    prev = ogg.pages[i].granule;
  }
  for (const auto& p : ogg.packets) heads += p.rfind("OpusHead", 0) == 0;
  EXPECT_EQ(bos, 1);
  EXPECT_EQ(eos, 1);
  EXPECT_EQ(heads, 1);
  EXPECT_TRUE(ogg.pages.back().eos);
  EXPECT_EQ(ogg.pages.back().granule, 2 * (L + total));

  const std::string path = ::testing::TempDir() + "/vox_audio_" + std::to_string(getpid()) + "_segments.opus";
  ASSERT_TRUE(audio_test::WriteFile(path, file));
  const OpusInfo info = RunOpusinfo(path);
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_THAT(info.output, ::testing::Not(HasSubstr("WARNING"))) << info.output;
  EXPECT_NEAR(info.playback_seconds, total / 24000.0, 0.0011) << info.output;
  const std::vector<float> decoded = RunOpusdec(path, 24000);
  std::remove(path.c_str());
  std::remove((path + ".f32").c_str());
  ASSERT_EQ(static_cast<int64_t>(decoded.size()), total);
  // Each segment decodes at the position where it started in the timeline.
  offset = 0;
  for (int s = 0; s < 3; ++s) {
    const std::vector<float> ref = SpeechLike(24000, lens[s], offset);
    offset += lens[s];
    const double snr = SnrDb(ref.data(), decoded.data() + starts[s], lens[s]);
    EXPECT_GT(snr, 12.0) << "segment " << s;
  }
}

}  // namespace
}  // namespace vox

namespace vox {
namespace {

// Random segment counts, segment lengths and push sizes, for every encoding and rate: the stream
// invariants hold whatever the engine's chunking.
TEST(AudioStreamEncoderTest, RandomChunkingKeepsInvariants) {
  std::mt19937 rng(20261126);
  for (int round = 0; round < 24; ++round) {
    const AudioEncoding encoding =
        std::array<AudioEncoding, 3>{AudioEncoding::kOpus, AudioEncoding::kOggOpus,
                                     AudioEncoding::kPcm16}[round % 3];
    const int in_rate = (round / 3) % 2 ? 22050 : 24000;
    const int out_rate = (round / 6) % 2 ? 48000 : 24000;
    auto e = Make(encoding, out_rate, in_rate, 7);
    ASSERT_NE(e, nullptr);
    const int segments = 1 + static_cast<int>(rng() % 3);
    std::vector<EncodedAudio> chunks;
    int64_t pushed = 0;
    for (int s = 0; s < segments; ++s) {
      const int64_t len = static_cast<int64_t>(rng() % 20000);
      const std::vector<float> x = SpeechLike(in_rate, len);
      size_t pos = 0;
      while (pos < x.size()) {
        const size_t n = std::min<size_t>(1 + rng() % 6000, x.size() - pos);
        ASSERT_TRUE(e->Push(absl::MakeConstSpan(x.data() + pos, n), &chunks.emplace_back()).ok());
        pos += n;
      }
      pushed += Resampled(len, in_rate, out_rate);
      if (s + 1 < segments) {
        ASSERT_TRUE(e->EndSegment(&chunks.emplace_back()).ok());
      }
    }
    ASSERT_TRUE(e->Finish(&chunks.emplace_back()).ok());
    const int64_t total = e->total_samples();
    const int frame = out_rate / 50;
    const int lookahead = e->header().pre_skip * out_rate / 48000;
    SCOPED_TRACE(::testing::Message() << "round " << round << " total " << total);
    if (encoding == AudioEncoding::kPcm16) {
      EXPECT_EQ(total, pushed);  // resampled per segment, no padding
    } else {
      // Drain padding: less than one frame plus the lookahead per segment boundary.
      EXPECT_GE(total, pushed);
      EXPECT_LT(total, pushed + (segments - 1) * (frame + lookahead) + 1);
    }
    int64_t ts = 0, seq = 0;
    std::string bytes;
    std::vector<std::string> packets;
    for (const EncodedAudio& c : chunks) {
      EXPECT_EQ(c.timestamp_samples, ts);
      ts += c.num_samples;
      bytes += c.data;
      packets.insert(packets.end(), c.packets.begin(), c.packets.end());
      if (encoding == AudioEncoding::kOpus && !c.packets.empty()) {
        EXPECT_EQ(c.sequence, seq);
        seq += static_cast<int64_t>(c.packets.size());
      }
    }
    switch (encoding) {
      case AudioEncoding::kPcm16:
        EXPECT_EQ(static_cast<int64_t>(bytes.size()), 2 * total);
        EXPECT_EQ(ts, total);
        break;
      case AudioEncoding::kOpus: {
        // Enough packets to decode pre-skip + total, and less than one frame more.
        const int64_t decodable = static_cast<int64_t>(packets.size()) * frame;
        EXPECT_EQ(ts, decodable);
        EXPECT_GE(decodable, lookahead + total);
        EXPECT_LT(decodable, lookahead + total + frame);
        EXPECT_EQ(static_cast<int64_t>(DecodeOpusCount(packets, out_rate)), decodable);
        break;
      }
      case AudioEncoding::kOggOpus: {
        const audio_test::OggFile ogg = ReadOgg(bytes);
        ASSERT_TRUE(ogg.ok) << ogg.error;
        EXPECT_TRUE(ogg.pages.back().eos);
        EXPECT_EQ(ogg.pages.back().granule, e->header().pre_skip + total * (48000 / out_rate));
        EXPECT_EQ(ts, lookahead + total);
        int64_t prev = 0;
        for (const auto& p : ogg.pages) {
          EXPECT_GE(p.granule, prev);
          prev = p.granule;
        }
        break;
      }
    }
  }
}

}  // namespace
}  // namespace vox
