#ifndef VOX_TESTS_AUDIO_AUDIO_TEST_UTIL_H_
#define VOX_TESTS_AUDIO_AUDIO_TEST_UTIL_H_

// Helpers shared by the vox_audio tests: a speech-like test signal defined analytically (so the
// same signal can be generated at any rate), SNR, a libopus decoder, an Ogg page reader built on
// libogg's sync layer (CRC-checked, independent of OggOpusWriter), and a shell runner.

#include <cstdint>
#include <string>
#include <vector>

namespace vox::audio_test {

// A voiced-speech stand-in: f0 = 140 Hz +- 25 Hz vibrato at 3 Hz, harmonics up to 5 kHz with 1/k
// amplitudes, a 4 Hz syllable-like amplitude envelope (0.15..1), peak about 0.6.
// Sample i is the signal at time (i + offset) / rate.
std::vector<float> SpeechLike(int rate_hz, int64_t samples, int64_t offset = 0);

// A sine of `freq_hz`, amplitude `amp`.
std::vector<float> Sine(int rate_hz, int64_t samples, double freq_hz, double amp);

// 10 log10(sum ref^2 / sum (ref - test)^2) over n samples.
double SnrDb(const float* ref, const float* test, int64_t n);

// Decodes mono Opus packets with libopus at `rate_hz`; empty on error (the test then fails).
std::vector<float> DecodeOpus(const std::vector<std::string>& packets, int rate_hz);

struct OggPage {
  int64_t granule = 0;
  bool bos = false;
  bool eos = false;
  bool continued = false;
  uint32_t serial = 0;
  int64_t sequence = 0;
  int packets_completed = 0;
};

struct OggFile {
  bool ok = false;
  std::string error;
  std::vector<OggPage> pages;
  std::vector<std::string> packets;  // every packet of the (single) logical stream, in order
};

// Reads every page of `bytes`; ok=false on a CRC error, garbage, a second logical stream, or
// trailing bytes that do not form a whole page.
OggFile ReadOgg(const std::string& bytes);

// Runs `command` through /bin/sh with stderr merged into stdout; returns the output.
std::string Run(const std::string& command, int* exit_code);

bool WriteFile(const std::string& path, const std::string& bytes);
std::string ReadFile(const std::string& path);

}  // namespace vox::audio_test

#endif  // VOX_TESTS_AUDIO_AUDIO_TEST_UTIL_H_
