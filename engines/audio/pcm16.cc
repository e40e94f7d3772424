#include "engines/audio/pcm16.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vox {
namespace {

void PutLe(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// WAV sizes are 32-bit: keep data below 4 GiB minus the header.
constexpr int64_t kMaxDataBytes = 0xffffffffLL - 36;

}  // namespace

int16_t FloatToPcm16(float sample) {
  if (!(sample == sample)) return 0;  // NaN
  const float scaled = std::nearbyint(sample * 32767.0f);
  if (scaled >= 32767.0f) return 32767;
  if (scaled <= -32768.0f) return -32768;
  return static_cast<int16_t>(scaled);
}

void AppendPcm16(absl::Span<const float> samples, std::string* out) {
  const size_t base = out->size();
  out->resize(base + 2 * samples.size());
  char* p = &(*out)[base];
  for (float s : samples) {
    const uint16_t v = static_cast<uint16_t>(FloatToPcm16(s));
    *p++ = static_cast<char>(v & 0xff);
    *p++ = static_cast<char>(v >> 8);
  }
}

std::string WavHeader(int sample_rate_hz, int channels, uint32_t data_bytes) {
  std::string h;
  h.reserve(44);
  h += "RIFF";
  PutLe(&h, 36u + data_bytes, 4);
  h += "WAVEfmt ";
  PutLe(&h, 16, 4);                                  // fmt chunk size
  PutLe(&h, 1, 2);                                   // PCM
  PutLe(&h, static_cast<uint32_t>(channels), 2);
  PutLe(&h, static_cast<uint32_t>(sample_rate_hz), 4);
  PutLe(&h, static_cast<uint32_t>(sample_rate_hz) * channels * 2, 4);  // byte rate
  PutLe(&h, static_cast<uint32_t>(channels * 2), 2);                  // block align
  PutLe(&h, 16, 2);                                                   // bits per sample
  h += "data";
  PutLe(&h, data_bytes, 4);
  return h;
}

absl::StatusOr<std::unique_ptr<WavWriter>> WavWriter::Open(const std::string& path,
                                                           int sample_rate_hz) {
  if (sample_rate_hz < 1000 || sample_rate_hz > 384000) {
    return absl::InvalidArgumentError(absl::StrCat("WAV sample rate ", sample_rate_hz,
                                                   " Hz is out of range; allowed: 1000..384000"));
  }
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  const std::string header = WavHeader(sample_rate_hz, 1, 0);
  if (std::fwrite(header.data(), 1, header.size(), file) != header.size()) {
    std::fclose(file);
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<WavWriter>(new WavWriter(file, path, sample_rate_hz));
}

WavWriter::WavWriter(std::FILE* file, std::string path, int sample_rate_hz)
    : file_(file), path_(std::move(path)), sample_rate_(sample_rate_hz) {}

WavWriter::~WavWriter() { (void)Close(); }

absl::Status WavWriter::Write(absl::Span<const float> samples) {
  std::string bytes;
  AppendPcm16(samples, &bytes);
  return WritePcm16(bytes);
}

absl::Status WavWriter::WritePcm16(absl::string_view bytes) {
  if (file_ == nullptr) return absl::FailedPreconditionError("WavWriter: write after Close");
  if (bytes.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("WavWriter: PCM16 data has odd length ", bytes.size()));
  }
  if (data_bytes_ + static_cast<int64_t>(bytes.size()) > kMaxDataBytes) {
    return absl::OutOfRangeError(absl::StrCat(path_, ": WAV data would exceed 4 GiB"));
  }
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    return absl::InternalError(absl::StrCat("cannot write ", path_, ": ", std::strerror(errno)));
  }
  data_bytes_ += static_cast<int64_t>(bytes.size());
  return absl::OkStatus();
}

absl::Status WavWriter::Close() {
  if (file_ == nullptr) return absl::OkStatus();
  std::FILE* file = file_;
  file_ = nullptr;
  const std::string header = WavHeader(sample_rate_, 1, static_cast<uint32_t>(data_bytes_));
  bool ok = std::fseek(file, 0, SEEK_SET) == 0 &&
            std::fwrite(header.data(), 1, header.size(), file) == header.size();
  const int err = errno;
  ok = (std::fclose(file) == 0) && ok;
  if (!ok) return absl::InternalError(absl::StrCat("cannot finish ", path_, ": ", std::strerror(err)));
  return absl::OkStatus();
}

}  // namespace vox
