#include "engines/audio/reference_audio.h"

#include <ogg/ogg.h>
#include <opus.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vox {
namespace {

constexpr int kSupportedRates[] = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000};

uint16_t Le16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8));
}
uint32_t Le32(const char* p) {
  return static_cast<uint32_t>(Le16(p)) | (static_cast<uint32_t>(Le16(p + 2)) << 16);
}

absl::Status UnsupportedRate(int rate) {
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported sample rate ", rate,
      " Hz (supported: 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)"));
}

// Interleaved little-endian PCM16 with `channels` channels -> mono float.
std::vector<float> Pcm16ToMono(absl::string_view data, int channels) {
  const size_t frames = data.size() / (2 * static_cast<size_t>(channels));
  std::vector<float> out(frames);
  for (size_t f = 0; f < frames; ++f) {
    float sum = 0;
    for (int c = 0; c < channels; ++c) {
      const char* p = data.data() + 2 * (f * static_cast<size_t>(channels) + c);
      sum += static_cast<float>(static_cast<int16_t>(Le16(p))) / 32768.0f;
    }
    out[f] = sum / static_cast<float>(channels);
  }
  return out;
}

absl::StatusOr<DecodedAudio> DecodeWav(absl::string_view bytes) {
  if (bytes.size() < 12 || bytes.substr(0, 4) != "RIFF" || bytes.substr(8, 4) != "WAVE") {
    return absl::InvalidArgumentError("not a WAV file (no RIFF/WAVE header)");
  }
  size_t pos = 12;
  bool have_fmt = false;
  int channels = 0, rate = 0, bits = 0, format = 0;
  while (pos + 8 <= bytes.size()) {
    const absl::string_view id = bytes.substr(pos, 4);
    const uint32_t size = Le32(bytes.data() + pos + 4);
    const size_t body = pos + 8;
    if (id == "fmt ") {
      if (size < 16 || body + size > bytes.size()) {
        return absl::InvalidArgumentError("WAV: truncated fmt chunk");
      }
      format = Le16(bytes.data() + body);
      channels = Le16(bytes.data() + body + 2);
      rate = static_cast<int>(Le32(bytes.data() + body + 4));
      bits = Le16(bytes.data() + body + 14);
      if (format == 0xFFFE && size >= 26) format = Le16(bytes.data() + body + 24);  // extensible
      have_fmt = true;
    } else if (id == "data") {
      if (!have_fmt) return absl::InvalidArgumentError("WAV: data chunk before fmt chunk");
      if (format != 1 || bits != 16) {
        return absl::InvalidArgumentError(absl::StrCat(
            "WAV: only 16-bit PCM is supported (this file: format ", format, ", ", bits,
            "-bit samples)"));
      }
      if (channels != 1 && channels != 2) {
        return absl::InvalidArgumentError(absl::StrCat(
            "WAV: unsupported channel count ", channels, " (supported: 1 or 2)"));
      }
      if (!IsSupportedReferenceRate(rate)) return UnsupportedRate(rate);
      // Streaming writers leave the size at 0 or 0xFFFFFFFF: take what is there then.
      size_t n = size;
      if (size == 0 || size == 0xFFFFFFFFu) {
        n = bytes.size() - body;
      } else if (body + n > bytes.size()) {
        return absl::InvalidArgumentError(absl::StrCat("WAV: truncated data chunk (", n,
                                                       " bytes declared, ",
                                                       bytes.size() - body, " present)"));
      }
      DecodedAudio out;
      out.sample_rate = rate;
      out.samples = Pcm16ToMono(bytes.substr(body, n), channels);
      return out;
    }
    pos = body + size + (size & 1);
  }
  return absl::InvalidArgumentError(have_fmt ? "WAV: no data chunk" : "WAV: no fmt chunk");
}

absl::StatusOr<DecodedAudio> DecodeRaw(absl::string_view bytes, int rate) {
  if (rate == 0) {
    return absl::InvalidArgumentError("raw PCM16 needs sample_rate_hz");
  }
  if (!IsSupportedReferenceRate(rate)) return UnsupportedRate(rate);
  if (bytes.size() % 2 != 0) {
    return absl::InvalidArgumentError("raw PCM16: odd number of bytes (2 bytes a sample)");
  }
  DecodedAudio out;
  out.sample_rate = rate;
  out.samples = Pcm16ToMono(bytes, 1);
  return out;
}

struct OggState {
  ogg_sync_state sync;
  ogg_stream_state stream;
  bool have_stream = false;
  OpusDecoder* decoder = nullptr;
  OggState() { ogg_sync_init(&sync); }
  ~OggState() {
    if (decoder != nullptr) opus_decoder_destroy(decoder);
    if (have_stream) ogg_stream_clear(&stream);
    ogg_sync_clear(&sync);
  }
};

absl::StatusOr<DecodedAudio> DecodeOggOpus(absl::string_view bytes) {
  if (bytes.size() < 4 || bytes.substr(0, 4) != "OggS") {
    return absl::InvalidArgumentError("not an Ogg stream (no OggS capture pattern)");
  }
  OggState st;
  char* buffer = ogg_sync_buffer(&st.sync, static_cast<long>(bytes.size()));
  std::memcpy(buffer, bytes.data(), bytes.size());
  ogg_sync_wrote(&st.sync, static_cast<long>(bytes.size()));
  DecodedAudio out;
  out.sample_rate = 48000;
  int channels = 0;
  int pre_skip = 0;
  int64_t packets = 0;
  int64_t last_granule = -1;  // of the stream's last page: pre-skip + samples (RFC 7845 4.4)
  std::vector<float> pcm(5760 * 2);  // 120 ms at 48 kHz, stereo
  ogg_page page;
  for (;;) {
    const int r = ogg_sync_pageout(&st.sync, &page);
    if (r == 0) break;  // no more whole pages
    if (r < 0) return absl::InvalidArgumentError("Ogg: corrupt data between pages");
    if (!st.have_stream) {
      ogg_stream_init(&st.stream, ogg_page_serialno(&page));
      st.have_stream = true;
    } else if (ogg_page_serialno(&page) != st.stream.serialno) {
      continue;  // another logical stream: only the first is read
    }
    if (ogg_stream_pagein(&st.stream, &page) != 0) {
      return absl::InvalidArgumentError("Ogg: a page does not belong to the stream");
    }
    if (ogg_page_granulepos(&page) >= 0) last_granule = ogg_page_granulepos(&page);
    ogg_packet packet;
    for (;;) {
      const int p = ogg_stream_packetout(&st.stream, &packet);
      if (p == 0) break;
      if (p < 0) return absl::InvalidArgumentError("Ogg: missing or corrupt page (a gap)");
      const absl::string_view data(reinterpret_cast<const char*>(packet.packet),
                                   static_cast<size_t>(packet.bytes));
      if (packets == 0) {
        if (data.size() < 19 || data.substr(0, 8) != "OpusHead") {
          return absl::InvalidArgumentError("Ogg: the stream is not Opus (no OpusHead)");
        }
        channels = static_cast<uint8_t>(data[9]);
        pre_skip = Le16(data.data() + 10);
        const int family = static_cast<uint8_t>(data[18]);
        if (family != 0 || (channels != 1 && channels != 2)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "Ogg Opus: unsupported channel count ", channels, " (mapping family ", family,
              "; supported: 1 or 2 channels)"));
        }
        int err = 0;
        st.decoder = opus_decoder_create(48000, channels, &err);
        if (err != OPUS_OK) return absl::InternalError("cannot create an Opus decoder");
      } else if (packets == 1) {
        if (data.size() < 8 || data.substr(0, 8) != "OpusTags") {
          return absl::InvalidArgumentError("Ogg Opus: the second packet is not OpusTags");
        }
      } else {
        const int n = opus_decode_float(st.decoder, packet.packet,
                                        static_cast<opus_int32>(packet.bytes), pcm.data(), 5760,
                                        0);
        if (n < 0) {
          return absl::InvalidArgumentError(absl::StrCat("Ogg Opus: packet ", packets - 2,
                                                         " does not decode: ", opus_strerror(n)));
        }
        for (int i = 0; i < n; ++i) {
          float s = pcm[static_cast<size_t>(i * channels)];
          if (channels == 2) s = 0.5f * (s + pcm[static_cast<size_t>(i * 2 + 1)]);
          out.samples.push_back(s);
        }
      }
      ++packets;
    }
  }
  if (packets < 2) return absl::InvalidArgumentError("Ogg Opus: truncated before any audio");
  const size_t skip = std::min(out.samples.size(), static_cast<size_t>(pre_skip));
  out.samples.erase(out.samples.begin(), out.samples.begin() + static_cast<long>(skip));
  // The last page's granule position ends the stream: the last frame's padding goes.
  if (last_granule >= pre_skip &&
      out.samples.size() > static_cast<size_t>(last_granule - pre_skip)) {
    out.samples.resize(static_cast<size_t>(last_granule - pre_skip));
  }
  return out;
}

}  // namespace

bool IsSupportedReferenceRate(int sample_rate_hz) {
  for (int r : kSupportedRates) {
    if (r == sample_rate_hz) return true;
  }
  return false;
}

absl::StatusOr<DecodedAudio> DecodeReferenceAudio(absl::string_view bytes,
                                                  ReferenceAudioFormat format,
                                                  int raw_sample_rate) {
  if (bytes.empty()) return absl::InvalidArgumentError("the clip is empty");
  if (format == ReferenceAudioFormat::kDetect) {
    if (absl::StartsWith(bytes, "RIFF")) {
      format = ReferenceAudioFormat::kWav;
    } else if (absl::StartsWith(bytes, "OggS")) {
      format = ReferenceAudioFormat::kOggOpus;
    } else {
      return absl::InvalidArgumentError(
          "unrecognised audio (neither WAV nor Ogg Opus); name the format, "
          "REFERENCE_AUDIO_FORMAT_RAW_PCM16 with its rate for raw samples");
    }
  }
  switch (format) {
    case ReferenceAudioFormat::kWav: return DecodeWav(bytes);
    case ReferenceAudioFormat::kOggOpus: return DecodeOggOpus(bytes);
    case ReferenceAudioFormat::kRawPcm16: return DecodeRaw(bytes, raw_sample_rate);
    case ReferenceAudioFormat::kDetect: break;
  }
  return absl::InvalidArgumentError("unknown reference audio format");
}

}  // namespace vox
