#include "tests/audio/audio_test_util.h"

#include <ogg/ogg.h>
#include <opus.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

namespace vox::audio_test {

std::vector<float> SpeechLike(int rate_hz, int64_t samples, int64_t offset) {
  const double kPi = 3.14159265358979323846;
  const double f0 = 140.0, vib = 25.0, vib_hz = 3.0, env_hz = 4.0;
  std::vector<float> out(static_cast<size_t>(samples));
  for (int64_t i = 0; i < samples; ++i) {
    const double t = static_cast<double>(i + offset) / rate_hz;
    // Phase of the fundamental: the integral of f0 + vib * sin(2 pi vib_hz t).
    const double phase = 2 * kPi * (f0 * t - vib / (2 * kPi * vib_hz) * std::cos(2 * kPi * vib_hz * t));
    double s = 0;
    for (int k = 1; k * (f0 + vib) < 5000.0; ++k) s += std::sin(k * phase + 0.3 * k) / k;
    const double env = 0.15 + 0.85 * (0.5 - 0.5 * std::cos(2 * kPi * env_hz * t));
    out[static_cast<size_t>(i)] = static_cast<float>(0.2 * env * s);
  }
  return out;
}

std::vector<float> Sine(int rate_hz, int64_t samples, double freq_hz, double amp) {
  std::vector<float> out(static_cast<size_t>(samples));
  for (int64_t i = 0; i < samples; ++i) {
    out[static_cast<size_t>(i)] =
        static_cast<float>(amp * std::sin(2 * 3.14159265358979323846 * freq_hz * i / rate_hz));
  }
  return out;
}

double SnrDb(const float* ref, const float* test, int64_t n) {
  double signal = 0, noise = 0;
  for (int64_t i = 0; i < n; ++i) {
    signal += static_cast<double>(ref[i]) * ref[i];
    const double d = static_cast<double>(ref[i]) - test[i];
    noise += d * d;
  }
  if (noise == 0) return 200.0;
  return 10.0 * std::log10(signal / noise);
}

std::vector<float> DecodeOpus(const std::vector<std::string>& packets, int rate_hz) {
  int error = 0;
  OpusDecoder* dec = opus_decoder_create(rate_hz, 1, &error);
  if (error != OPUS_OK) return {};
  std::vector<float> out;
  std::vector<float> frame(static_cast<size_t>(rate_hz) * 120 / 1000);
  for (const std::string& p : packets) {
    const int n = opus_decode_float(dec, reinterpret_cast<const unsigned char*>(p.data()),
                                    static_cast<opus_int32>(p.size()), frame.data(),
                                    static_cast<int>(frame.size()), 0);
    if (n < 0) {
      opus_decoder_destroy(dec);
      return {};
    }
    out.insert(out.end(), frame.begin(), frame.begin() + n);
  }
  opus_decoder_destroy(dec);
  return out;
}

OggFile ReadOgg(const std::string& bytes) {
  OggFile file;
  ogg_sync_state sync;
  ogg_sync_init(&sync);
  char* buffer = ogg_sync_buffer(&sync, static_cast<long>(bytes.size()));
  std::memcpy(buffer, bytes.data(), bytes.size());
  ogg_sync_wrote(&sync, static_cast<long>(bytes.size()));
  ogg_stream_state stream;
  bool have_stream = false;
  ogg_page page;
  while (true) {
    const int r = ogg_sync_pageout(&sync, &page);
    if (r == 0) break;
    if (r < 0) {
      file.error = "lost sync (bad CRC or garbage) before page " + std::to_string(file.pages.size());
      break;
    }
    OggPage info;
    info.granule = ogg_page_granulepos(&page);
    info.bos = ogg_page_bos(&page) != 0;
    info.eos = ogg_page_eos(&page) != 0;
    info.continued = ogg_page_continued(&page) != 0;
    info.serial = static_cast<uint32_t>(ogg_page_serialno(&page));
    info.sequence = ogg_page_pageno(&page);
    info.packets_completed = ogg_page_packets(&page);
    file.pages.push_back(info);
    if (!have_stream) {
      ogg_stream_init(&stream, ogg_page_serialno(&page));
      have_stream = true;
    }
    if (ogg_stream_pagein(&stream, &page) != 0) {
      file.error = "page " + std::to_string(info.sequence) + " belongs to another stream";
      break;
    }
    ogg_packet op;
    int pr;
    while ((pr = ogg_stream_packetout(&stream, &op)) != 0) {
      if (pr < 0) {
        file.error = "gap in packet sequence";
        break;
      }
      file.packets.emplace_back(reinterpret_cast<const char*>(op.packet),
                                static_cast<size_t>(op.bytes));
    }
  }
  if (file.error.empty() && sync.returned != sync.fill) {
    file.error = std::to_string(sync.fill - sync.returned) + " trailing bytes";
  }
  file.ok = file.error.empty() && !file.pages.empty();
  if (have_stream) ogg_stream_clear(&stream);
  ogg_sync_clear(&sync);
  return file;
}

std::string Run(const std::string& command, int* exit_code) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    *exit_code = -1;
    return output;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace vox::audio_test
