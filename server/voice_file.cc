#include "server/voice_file.h"

#include <array>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vox {
namespace {

constexpr absl::string_view kMagic = "VOXVOICE";
constexpr size_t kHeaderSize = 8 + 4 + 8 + 4;
constexpr uint32_t kMaxFloats = 1u << 24;  // 64 MiB of floats: far beyond any real voice

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

template <typename T>
void Put(std::string* out, T value) {
  char b[sizeof(T)];
  std::memcpy(b, &value, sizeof(T));  // x86-64 and arm64 are little-endian
  out->append(b, sizeof(T));
}

void PutString(std::string* out, absl::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}

void PutFloats(std::string* out, const std::vector<float>& v) {
  Put<uint32_t>(out, static_cast<uint32_t>(v.size()));
  out->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Reads the payload front to back; any read past the end marks it bad.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  template <typename T>
  T Get() {
    T value{};
    if (!Need(sizeof(T))) return value;
    std::memcpy(&value, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string GetString() {
    const uint32_t n = Get<uint32_t>();
    if (!Need(n)) return "";
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::vector<float> GetFloats() {
    const uint32_t n = Get<uint32_t>();
    if (n > kMaxFloats || !Need(static_cast<size_t>(n) * sizeof(float))) return {};
    std::vector<float> v(n);
    std::memcpy(v.data(), data_.data() + pos_, n * sizeof(float));
    pos_ += n * sizeof(float);
    return v;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  bool Need(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  absl::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

uint32_t Crc32c(absl::string_view data) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string EncodeVoiceFile(const StoredVoice& voice) {
  std::string payload;
  PutString(&payload, voice.name);
  PutString(&payload, voice.model);
  PutString(&payload, voice.voice->model_id);
  Put<uint32_t>(&payload, static_cast<uint32_t>(voice.languages.size()));
  for (const std::string& l : voice.languages) PutString(&payload, l);
  Put<int64_t>(&payload, absl::ToUnixMicros(voice.create_time));
  Put<double>(&payload, voice.reference_seconds);
  Put<int32_t>(&payload, voice.voice->cond_rows);
  Put<int32_t>(&payload, voice.voice->cond_dim);
  PutFloats(&payload, voice.voice->gpt_cond_latent);
  PutFloats(&payload, voice.voice->speaker_embedding);
  std::string out(kMagic);
  Put<uint32_t>(&out, kVoiceFileVersion);
  Put<uint64_t>(&out, payload.size());
  Put<uint32_t>(&out, Crc32c(payload));
  out += payload;
  return out;
}

absl::StatusOr<StoredVoice> DecodeVoiceFile(absl::string_view bytes) {
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError("not a voice file (no VOXVOICE magic)");
  }
  if (bytes.size() < kHeaderSize) return absl::DataLossError("truncated header");
  Reader header(bytes.substr(kMagic.size(), kHeaderSize - kMagic.size()));
  const uint32_t version = header.Get<uint32_t>();
  const uint64_t size = header.Get<uint64_t>();
  const uint32_t crc = header.Get<uint32_t>();
  if (version != kVoiceFileVersion) {
    return absl::DataLossError(absl::StrCat("unknown format version ", version,
                                            " (this voxd reads version ", kVoiceFileVersion,
                                            ")"));
  }
  const absl::string_view payload = bytes.substr(kHeaderSize);
  if (payload.size() != size) {
    return absl::DataLossError(absl::StrCat(payload.size() < size ? "truncated" : "trailing bytes",
                                            ": payload of ", payload.size(), " bytes, header says ",
                                            size));
  }
  if (Crc32c(payload) != crc) return absl::DataLossError("checksum mismatch");
  Reader r(payload);
  StoredVoice v;
  auto cloned = std::make_shared<ClonedVoice>();
  v.name = r.GetString();
  v.model = r.GetString();
  cloned->model_id = r.GetString();
  const uint32_t languages = r.Get<uint32_t>();
  for (uint32_t i = 0; i < languages && r.ok(); ++i) v.languages.push_back(r.GetString());
  v.create_time = absl::FromUnixMicros(r.Get<int64_t>());
  v.reference_seconds = r.Get<double>();
  cloned->cond_rows = r.Get<int32_t>();
  cloned->cond_dim = r.Get<int32_t>();
  cloned->gpt_cond_latent = r.GetFloats();
  cloned->speaker_embedding = r.GetFloats();
  if (!r.ok() || !r.at_end()) return absl::DataLossError("inconsistent payload");
  if (v.name.empty() || cloned->cond_rows < 0 || cloned->cond_dim < 0 ||
      static_cast<size_t>(cloned->cond_rows) * static_cast<size_t>(cloned->cond_dim) !=
          cloned->gpt_cond_latent.size()) {
    return absl::DataLossError("inconsistent sizes (empty name or latents not rows x dim)");
  }
  v.voice = std::move(cloned);
  return v;
}

}  // namespace vox
