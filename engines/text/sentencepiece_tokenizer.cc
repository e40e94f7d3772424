#include "engines/text/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#if defined(__APPLE__)
#include <mach-o/dyld.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#ifndef VOX_SPM_SHIM_BUILD_PATH
#define VOX_SPM_SHIM_BUILD_PATH ""
#endif
#ifndef VOX_SPM_SHIM_FILE_NAME
#if defined(__APPLE__)
#define VOX_SPM_SHIM_FILE_NAME "libvox_spm_shim.dylib"
#else
#define VOX_SPM_SHIM_FILE_NAME "libvox_spm_shim.so"
#endif
#endif

namespace vox {
namespace {

// The shim's C interface (engines/text/sentencepiece_shim.cc).
constexpr int kShimAbiVersion = 1;

struct ShimApi {
  int (*abi_version)();
  void* (*create)(const char*);
  void (*destroy)(void*);
  int (*piece_count)(const void*);
  int (*encode)(const void*, const char*, size_t, int32_t*, size_t);
  int (*decode)(const void*, const int32_t*, size_t, char*, size_t);
  int (*id_to_piece)(const void*, int32_t, char*, size_t);
  const char* (*last_error)();
};

int DlopenFlags() {
#ifdef __linux__
  // DEEPBIND: the shim and libsentencepiece resolve their symbols (protobuf 3.14) in their own
  // dependency chain first, never in gRPC's protobuf already loaded into the process.
  return RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#else
  // macOS has no RTLD_DEEPBIND; its two-level namespace already binds each library to the
  // libraries it was linked against.
  return RTLD_NOW | RTLD_LOCAL;
#endif
}

bool FileExists(const std::string& path) {
  struct stat st;
  return !path.empty() && ::stat(path.c_str(), &st) == 0;
}

std::string ExecutableDir() {
  std::string exe;
#if defined(__linux__)
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) exe.assign(buf, static_cast<size_t>(n));
#elif defined(__APPLE__)
  char buf[4096];
  uint32_t size = sizeof(buf);
  if (_NSGetExecutablePath(buf, &size) == 0) exe = buf;
#endif
  const size_t slash = exe.rfind('/');
  return slash == std::string::npos ? std::string() : exe.substr(0, slash);
}

absl::StatusOr<ShimApi> OpenShim(const std::string& path) {
  void* lib = ::dlopen(path.c_str(), DlopenFlags());
  if (lib == nullptr) {
    const char* err = ::dlerror();
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": cannot load the SentencePiece shim: ", err ? err : "unknown dlopen error"));
  }
  ShimApi api{};
  struct Symbol {
    const char* name;
    void** slot;
  };
  const Symbol symbols[] = {
      {"vox_spm_abi_version", reinterpret_cast<void**>(&api.abi_version)},
      {"vox_spm_create", reinterpret_cast<void**>(&api.create)},
      {"vox_spm_destroy", reinterpret_cast<void**>(&api.destroy)},
      {"vox_spm_piece_count", reinterpret_cast<void**>(&api.piece_count)},
      {"vox_spm_encode", reinterpret_cast<void**>(&api.encode)},
      {"vox_spm_decode", reinterpret_cast<void**>(&api.decode)},
      {"vox_spm_id_to_piece", reinterpret_cast<void**>(&api.id_to_piece)},
      {"vox_spm_last_error", reinterpret_cast<void**>(&api.last_error)},
  };
  for (const auto& s : symbols) {
    *s.slot = ::dlsym(lib, s.name);
    if (*s.slot == nullptr) {
      ::dlclose(lib);
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": not a vox SentencePiece shim (symbol ", s.name, " missing)"));
    }
  }
  if (api.abi_version() != kShimAbiVersion) {
    const int found = api.abi_version();
    ::dlclose(lib);
    return absl::FailedPreconditionError(absl::StrCat(path, ": shim interface version ", found,
                                                      ", expected ", kShimAbiVersion));
  }
  return api;  // the library stays loaded for the life of the process
}

// The process-wide shim, loaded on first use.
const absl::StatusOr<ShimApi>& Shim() {
  static const absl::StatusOr<ShimApi>* shim = [] {
    const std::vector<std::string> candidates = SpmShimSearchPath();
    for (const auto& path : candidates) {
      if (FileExists(path)) return new absl::StatusOr<ShimApi>(OpenShim(path));
    }
    return new absl::StatusOr<ShimApi>(absl::FailedPreconditionError(absl::StrCat(
        "SentencePiece shim ", VOX_SPM_SHIM_FILE_NAME, " not found; looked at: ",
        absl::StrJoin(candidates, ", "),
        " (build the vox_spm_shim target, install it next to the executable, or set "
        "VOX_SPM_SHIM to its path)")));
  }();
  return *shim;
}

// Runs a shim call with the "returns total length, retry when too small" buffer protocol.
template <typename T, typename Call>
absl::StatusOr<std::vector<T>> CallWithBuffer(const ShimApi& api, size_t initial, Call call,
                                              absl::StatusCode error_code) {
  std::vector<T> buffer(std::max<size_t>(initial, 16));
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int n = call(buffer.data(), buffer.size());
    if (n < 0) return absl::Status(error_code, api.last_error());
    if (static_cast<size_t>(n) <= buffer.size()) {
      buffer.resize(static_cast<size_t>(n));
      return buffer;
    }
    buffer.resize(static_cast<size_t>(n));
  }
  return absl::InternalError("SentencePiece shim: output size changed between calls");
}

}  // namespace

std::vector<std::string> SpmShimSearchPath() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("VOX_SPM_SHIM"); env != nullptr && *env != '\0') {
    paths.emplace_back(env);
  }
  const std::string exe_dir = ExecutableDir();
  if (!exe_dir.empty()) paths.push_back(absl::StrCat(exe_dir, "/", VOX_SPM_SHIM_FILE_NAME));
  if (std::string(VOX_SPM_SHIM_BUILD_PATH).size() > 0) paths.emplace_back(VOX_SPM_SHIM_BUILD_PATH);
  return paths;
}

absl::Status CheckSpmShim(const std::string& shim_path) {
  if (!FileExists(shim_path)) {
    return absl::FailedPreconditionError(
        absl::StrCat(shim_path, ": SentencePiece shim not found"));
  }
  return OpenShim(shim_path).status();
}

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Load(
    const std::string& path) {
  const auto& shim = Shim();
  if (!shim.ok()) return shim.status();
  if (!FileExists(path)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": SentencePiece model file not found"));
  }
  void* handle = shim->create(path.c_str());
  if (handle == nullptr) return absl::FailedPreconditionError(shim->last_error());
  const int count = shim->piece_count(handle);
  return std::unique_ptr<SentencePieceTokenizer>(
      new SentencePieceTokenizer(handle, path, count));
}

SentencePieceTokenizer::SentencePieceTokenizer(void* handle, std::string path, int piece_count)
    : handle_(handle), path_(std::move(path)), piece_count_(piece_count) {}

SentencePieceTokenizer::~SentencePieceTokenizer() { Shim()->destroy(handle_); }

absl::StatusOr<std::vector<int32_t>> SentencePieceTokenizer::Encode(absl::string_view text) const {
  const ShimApi& api = *Shim();
  return CallWithBuffer<int32_t>(
      api, text.size() + 8,
      [&](int32_t* out, size_t cap) { return api.encode(handle_, text.data(), text.size(), out, cap); },
      absl::StatusCode::kInvalidArgument);
}

absl::StatusOr<std::string> SentencePieceTokenizer::Decode(const std::vector<int32_t>& ids) const {
  const ShimApi& api = *Shim();
  auto bytes = CallWithBuffer<char>(
      api, ids.size() * 8,
      [&](char* out, size_t cap) { return api.decode(handle_, ids.data(), ids.size(), out, cap); },
      absl::StatusCode::kInvalidArgument);
  if (!bytes.ok()) return bytes.status();
  return std::string(bytes->begin(), bytes->end());
}

absl::StatusOr<std::string> SentencePieceTokenizer::IdToPiece(int32_t id) const {
  const ShimApi& api = *Shim();
  auto bytes = CallWithBuffer<char>(
      api, 32, [&](char* out, size_t cap) { return api.id_to_piece(handle_, id, out, cap); },
      absl::StatusCode::kInvalidArgument);
  if (!bytes.ok()) return bytes.status();
  return std::string(bytes->begin(), bytes->end());
}

}  // namespace vox
