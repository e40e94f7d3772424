#include "engines/audio/pcm16.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/audio/audio_test_util.h"

namespace vox {
namespace {

int16_t Le16(const std::string& b, size_t i) {
  return static_cast<int16_t>(static_cast<uint8_t>(b[i]) | (static_cast<uint8_t>(b[i + 1]) << 8));
}
uint32_t Le32(const std::string& b, size_t i) {
  uint32_t v = 0;
  for (int k = 3; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(b[i + k]);
  return v;
}

TEST(Pcm16Test, ScalesRoundsAndClips) {
  EXPECT_EQ(FloatToPcm16(0.0f), 0);
  EXPECT_EQ(FloatToPcm16(1.0f), 32767);
  EXPECT_EQ(FloatToPcm16(-1.0f), -32767);
  EXPECT_EQ(FloatToPcm16(0.5f), 16384);  // 16383.5: nearest, ties to even
  EXPECT_EQ(FloatToPcm16(-0.25f), -8192);
  EXPECT_EQ(FloatToPcm16(1.5f), 32767);
  EXPECT_EQ(FloatToPcm16(100.0f), 32767);
  EXPECT_EQ(FloatToPcm16(-1.5f), -32768);
  EXPECT_EQ(FloatToPcm16(-std::numeric_limits<float>::infinity()), -32768);
  EXPECT_EQ(FloatToPcm16(std::numeric_limits<float>::infinity()), 32767);
  EXPECT_EQ(FloatToPcm16(std::numeric_limits<float>::quiet_NaN()), 0);
}

TEST(Pcm16Test, AppendsLittleEndian) {
  std::string out = "x";
  const float in[] = {1.0f, -1.0f, 2.0f, -2.0f, 256.0f / 32767.0f};
  AppendPcm16(in, &out);
  ASSERT_EQ(out.size(), 1u + 2 * 5);
  EXPECT_EQ(out[0], 'x');
  EXPECT_EQ(static_cast<uint8_t>(out[1]), 0xff);  // 32767 = 0x7fff, low byte first
  EXPECT_EQ(static_cast<uint8_t>(out[2]), 0x7f);
  EXPECT_EQ(Le16(out, 3), -32767);
  EXPECT_EQ(Le16(out, 5), 32767);   // clipped
  EXPECT_EQ(Le16(out, 7), -32768);  // clipped
  EXPECT_EQ(static_cast<uint8_t>(out[9]), 0x00);  // 256 = 0x0100
  EXPECT_EQ(static_cast<uint8_t>(out[10]), 0x01);
}

TEST(WavWriterTest, WritesPlayableHeaderWithPatchedSizes) {
  const std::string path = ::testing::TempDir() + "/vox_audio_" + std::to_string(getpid()) + "_test.wav";
  auto w = WavWriter::Open(path, 22050);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::vector<float> a = audio_test::Sine(22050, 1000, 440, 0.5);
  ASSERT_TRUE((*w)->Write(a).ok());
  std::string raw;
  AppendPcm16(a, &raw);
  ASSERT_TRUE((*w)->WritePcm16(raw).ok());
  EXPECT_EQ((*w)->WritePcm16("abc").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ((*w)->Write(a).code(), absl::StatusCode::kFailedPrecondition);
  const std::string file = audio_test::ReadFile(path);
  struct Remover {
    std::string path;
    ~Remover() { std::remove(path.c_str()); }
  } remover{path};
  ASSERT_EQ(file.size(), 44u + 4000u);
  EXPECT_EQ(file.substr(0, 4), "RIFF");
  EXPECT_EQ(Le32(file, 4), file.size() - 8);
  EXPECT_EQ(file.substr(8, 8), "WAVEfmt ");
  EXPECT_EQ(Le32(file, 16), 16u);
  EXPECT_EQ(Le16(file, 20), 1);      // PCM
  EXPECT_EQ(Le16(file, 22), 1);      // mono
  EXPECT_EQ(Le32(file, 24), 22050u);
  EXPECT_EQ(Le32(file, 28), 44100u);  // byte rate
  EXPECT_EQ(Le16(file, 32), 2);
  EXPECT_EQ(Le16(file, 34), 16);
  EXPECT_EQ(file.substr(36, 4), "data");
  EXPECT_EQ(Le32(file, 40), 4000u);
  EXPECT_EQ(file.substr(44 + 2000), raw);
  // Python's wave module agrees, when there is a Python.
  int rc = 0;
  const std::string info = audio_test::Run(
      "python3 -c \"import wave,sys; w=wave.open(sys.argv[1]); print(w.getframerate(), "
      "w.getnframes(), w.getnchannels(), w.getsampwidth())\" " + path, &rc);
  if (rc == 0) {
    EXPECT_EQ(info, "22050 2000 1 2\n");
  }
}

TEST(WavWriterTest, BadRateAndUnwritablePath) {
  EXPECT_EQ(WavWriter::Open(::testing::TempDir() + "/x.wav", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status s = WavWriter::Open("/nonexistent-dir/x.wav", 24000).status();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent-dir/x.wav"), std::string::npos);
}

}  // namespace
}  // namespace vox
