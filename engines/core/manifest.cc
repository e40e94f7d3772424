#include "engines/core/manifest.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace vox {
namespace {

// ---- SHA-256 (FIPS 180-4), streaming. ----
class Sha256 {
 public:
  Sha256() { Reset(); }
  void Reset() {
    static constexpr uint32_t kInit[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::memcpy(h_, kInit, sizeof(h_));
    total_ = 0;
    buffered_ = 0;
  }
  void Update(const uint8_t* data, size_t n) {
    total_ += n;
    if (buffered_ > 0) {
      const size_t take = std::min(n, sizeof(block_) - buffered_);
      std::memcpy(block_ + buffered_, data, take);
      buffered_ += take;
      data += take;
      n -= take;
      if (buffered_ == sizeof(block_)) {
        Compress(block_);
        buffered_ = 0;
      }
    }
    while (n >= 64) {
      Compress(data);
      data += 64;
      n -= 64;
    }
    if (n > 0) {
      std::memcpy(block_, data, n);
      buffered_ = n;
    }
  }
  std::string HexDigest() {
    const uint64_t bits = total_ * 8;
    const uint8_t pad = 0x80;
    Update(&pad, 1);
    const uint8_t zero = 0;
    while (buffered_ != 56) Update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    Update(len, 8);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (uint32_t word : h_) {
      for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kHex[(word >> shift) & 0xf]);
    }
    return out;
  }

 private:
  static uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void Compress(const uint8_t* p) {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{p[4 * i]} << 24) | (uint32_t{p[4 * i + 1]} << 16) |
             (uint32_t{p[4 * i + 2]} << 8) | uint32_t{p[4 * i + 3]};
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6],
             h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t s1 = Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25);
      const uint32_t ch = (e & f) ^ (~e & g);
      const uint32_t t1 = h + s1 + ch + k[i] + w[i];
      const uint32_t s0 = Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22);
      const uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      const uint32_t t2 = s0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  uint32_t h_[8];
  uint8_t block_[64];
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};

// Fields each architecture needs beyond the common ones, as dotted paths, with their JSON type.
enum class FieldType { kInt, kString, kArray, kObject };

struct RequiredField {
  const char* path;
  FieldType type;
};


const char* TypeName(FieldType type) {
  switch (type) {
    case FieldType::kInt: return "an integer";
    case FieldType::kString: return "a string";
    case FieldType::kArray: return "an array";
    case FieldType::kObject: return "an object";
  }
  return "?";
}

bool HasType(const nlohmann::json& value, FieldType type) {
  switch (type) {
    case FieldType::kInt: return value.is_number_integer();
    case FieldType::kString: return value.is_string();
    case FieldType::kArray: return value.is_array();
    case FieldType::kObject: return value.is_object();
  }
  return false;
}

// Looks up a dotted path; nullptr when any part is missing.
const nlohmann::json* Find(const nlohmann::json& root, const std::string& dotted) {
  const nlohmann::json* node = &root;
  for (absl::string_view part : absl::StrSplit(dotted, '.')) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(std::string(part));
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

absl::Status CheckField(const std::string& where, const nlohmann::json& root,
                        const RequiredField& field) {
  const nlohmann::json* value = Find(root, field.path);
  if (value == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": field '", field.path, "' missing"));
  }
  if (!HasType(*value, field.type)) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": field '", field.path,
                                                      "' must be ", TypeName(field.type),
                                                      ", got ", value->dump()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Manifest::Path(const std::string& relative) const {
  return absl::StrCat(model_dir, "/", relative);
}

std::string Sha256Hex(const void* data, size_t size) {
  Sha256 sha;
  sha.Update(static_cast<const uint8_t*>(data), size);
  return sha.HexDigest();
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::vector<uint8_t> buffer(1 << 20);
  Sha256 sha;
  while (true) {
    const size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get());
    if (n > 0) sha.Update(buffer.data(), n);
    if (n < buffer.size()) {
      if (std::ferror(file.get())) {
        return absl::DataLossError(absl::StrCat(path, ": read error: ", std::strerror(errno)));
      }
      break;
    }
  }
  return sha.HexDigest();
}

absl::Status VerifyManifestFile(const std::string& path, const ManifestFile& expected,
                                bool verify_checksum) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": listed in the manifest but missing (", std::strerror(errno), ")"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) != expected.size) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": size ", st.st_size,
                                                      " != manifest ", expected.size,
                                                      " (truncated or mismatched file)"));
  }
  if (verify_checksum && !expected.sha256.empty()) {
    absl::StatusOr<std::string> digest = Sha256File(path);
    if (!digest.ok()) return absl::FailedPreconditionError(digest.status().message());
    if (*digest != expected.sha256) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": sha256 ", *digest, " != manifest ", expected.sha256,
          " (corrupt or mismatched file; set verify_checksums = false to skip this check)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Manifest> LoadManifest(const std::string& model_dir, bool verify_checksums) {
  Manifest m;
  m.model_dir = model_dir;
  m.manifest_path = absl::StrCat(model_dir, "/manifest.json");
  const std::string& where = m.manifest_path;

  std::ifstream in(m.manifest_path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": cannot open (", std::strerror(errno),
                     "); an exported model directory must hold manifest.json"));
  }
  std::stringstream text;
  text << in.rdbuf();
  m.json = nlohmann::json::parse(text.str(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (m.json.is_discarded()) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": not valid JSON"));
  }
  if (!m.json.is_object()) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": must be a JSON object"));
  }

  for (const RequiredField& field :
       {RequiredField{"schema_version", FieldType::kInt}, RequiredField{"kind", FieldType::kString},
        RequiredField{"architecture", FieldType::kString},
        RequiredField{"dtype", FieldType::kString}, RequiredField{"files", FieldType::kObject}}) {
    if (absl::Status s = CheckField(where, m.json, field); !s.ok()) return s;
  }
  m.schema_version = m.json["schema_version"].get<int>();
  if (m.schema_version != kManifestSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": field 'schema_version' is ", m.schema_version,
                     "; this build reads version ", kManifestSchemaVersion,
                     " (re-export the model with this version's tools/)"));
  }
  m.kind = m.json["kind"].get<std::string>();
  m.architecture = m.json["architecture"].get<std::string>();
  m.dtype = m.json["dtype"].get<std::string>();
  if (m.json.contains("name") && m.json["name"].is_string()) {
    m.name = m.json["name"].get<std::string>();
  }

  if (m.dtype != "float32" && m.dtype != "float16" && m.dtype != "bfloat16") {
    return absl::FailedPreconditionError(absl::StrCat(
        where, ": field 'dtype' is '", m.dtype, "'; allowed: float32, float16, bfloat16"));
  }
  m.weights = m.dtype;
  if (m.json.contains("weights")) {
    if (!m.json["weights"].is_string()) {
      return absl::FailedPreconditionError(absl::StrCat(where, ": field 'weights' must be a string"));
    }
    m.weights = m.json["weights"].get<std::string>();
    if (m.weights != m.dtype && !(m.dtype == "float32" && (m.weights == "int8" || m.weights == "bfloat16"))) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": field 'weights' is '", m.weights, "' with dtype '", m.dtype,
          "'; allowed: the dtype, or int8 or bfloat16 with dtype float32"));
    }
  }

  // files: {"name": {"size": N, "sha256": "hex"}}
  if (m.json["files"].empty()) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": field 'files' is empty"));
  }
  for (const auto& [file, entry] : m.json["files"].items()) {
    const std::string field = absl::StrCat("files.", file);
    if (file.empty() || file[0] == '/' || file.find("..") != std::string::npos) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": field '", field, "' must be a relative path inside the model directory"));
    }
    if (!entry.is_object() || !entry.contains("size") || !entry["size"].is_number_unsigned()) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": field '", field, ".size' missing or not a non-negative integer"));
    }
    ManifestFile mf;
    mf.size = entry["size"].get<uint64_t>();
    if (entry.contains("sha256")) {
      if (!entry["sha256"].is_string()) {
        return absl::FailedPreconditionError(
            absl::StrCat(where, ": field '", field, ".sha256' must be a string"));
      }
      mf.sha256 = absl::AsciiStrToLower(entry["sha256"].get<std::string>());
      const bool hex = mf.sha256.size() == 64 &&
                       mf.sha256.find_first_not_of("0123456789abcdef") == std::string::npos;
      if (!hex) {
        return absl::FailedPreconditionError(absl::StrCat(
            where, ": field '", field, ".sha256' must be 64 hex digits, got '", mf.sha256, "'"));
      }
    }
    m.files.emplace(file, mf);
  }

  for (const auto& [file, mf] : m.files) {
    if (absl::Status s = VerifyManifestFile(m.Path(file), mf, verify_checksums); !s.ok()) {
      return s;
    }
  }
  return m;
}

}  // namespace vox
