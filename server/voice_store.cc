#include "server/voice_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vox {
namespace {

constexpr absl::string_view kSuffix = ".voice";
constexpr absl::string_view kTempPrefix = ".tmp-";

std::string Errno(int e) { return std::strerror(e); }

// fsync of a directory: makes a rename or unlink in it durable.
int SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

// In pieces of at most 64 KiB (a released-size voice is about 130 KiB): a process killed between
// two of them leaves a short file, which is why the file is written under a temporary name.
int WriteAll(int fd, absl::string_view data) {
  constexpr size_t kPiece = 64 << 10;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, std::min(kPiece, data.size() - done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

std::string VoiceStore::FileName(const std::string& name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : name) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out + std::string(kSuffix);
}

absl::StatusOr<std::unique_ptr<VoiceStore>> VoiceStore::Open(const std::string& dir,
                                                             Options options,
                                                             LoadReport* report) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    return absl::UnavailableError(absl::StrCat("voice store: cannot create the directory ", dir,
                                               ": ", ec ? ec.message() : "not a directory"));
  }
  std::unique_ptr<VoiceStore> store(new VoiceStore(dir, options));
  LoadReport local;
  if (report == nullptr) report = &local;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("voice store: cannot read the directory ", dir, ": ", ec.message()));
  }
  absl::MutexLock lock(&store->mu_);
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string file = it->path().filename().string();
    if (absl::StartsWith(file, kTempPrefix)) {
      // A write that never reached its rename (voxd died): never a voice.
      if (fs::remove(it->path(), ec)) ++report->temp_files_removed;
      continue;
    }
    if (!absl::EndsWith(file, kSuffix)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      report->skipped.push_back(absl::StrCat(file, ": cannot be read"));
      continue;
    }
    absl::StatusOr<StoredVoice> voice = DecodeVoiceFile(bytes);
    if (!voice.ok()) {
      report->skipped.push_back(absl::StrCat(file, ": ", voice.status().message()));
      continue;
    }
    if (FileName(voice->name) != file) {
      report->skipped.push_back(
          absl::StrCat(file, ": holds voice '", voice->name, "' (expected in ",
                       FileName(voice->name), ")"));
      continue;
    }
    const std::string name = voice->name;
    store->voices_[name] = std::make_shared<const StoredVoice>(std::move(*voice));
    ++report->loaded;
  }
  if (report->temp_files_removed > 0) SyncDir(dir);
  return store;
}

absl::Status VoiceStore::CheckAvailable(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  return CheckAvailableLocked(name);
}

absl::Status VoiceStore::CheckAvailableLocked(const std::string& name) const {
  if (voices_.count(name) > 0 || adding_.count(name) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("a voice named '", name, "' already exists"));
  }
  if (static_cast<int>(voices_.size() + adding_.size()) >= options_.max_voices) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the voice store is full: ", options_.max_voices,
                     " voices (max_voices); delete one first"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const StoredVoice>> VoiceStore::Add(StoredVoice voice) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = CheckAvailableLocked(voice.name); !s.ok()) return s;
    adding_.insert(voice.name);  // reserved while the file is written without the lock
  }
  absl::Status written = WriteFile(voice);
  auto stored = std::make_shared<const StoredVoice>(std::move(voice));
  absl::MutexLock lock(&mu_);
  adding_.erase(stored->name);
  if (!written.ok()) return written;
  voices_[stored->name] = stored;
  return stored;
}

absl::Status VoiceStore::WriteFile(const StoredVoice& voice) const {
  static std::atomic<uint64_t> counter{0};
  const std::string bytes = EncodeVoiceFile(voice);
  const std::string final_path = absl::StrCat(dir_, "/", FileName(voice.name));
  const std::string temp_path = absl::StrCat(dir_, "/", kTempPrefix, ::getpid(), "-",
                                             counter.fetch_add(1), "-", FileName(voice.name));
  auto fail = [&](const char* step, int e) {
    ::unlink(temp_path.c_str());
    return absl::UnavailableError(absl::StrCat("voice store ", dir_, ": cannot ", step,
                                               " the file of voice '", voice.name, "': ",
                                               Errno(e), "; nothing was stored"));
  };
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return fail("create", errno);
  if (int e = WriteAll(fd, bytes); e != 0) {
    ::close(fd);
    return fail("write", e);
  }
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    return fail("sync", e);
  }
  if (::close(fd) != 0) return fail("close", errno);
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) return fail("rename", errno);
  if (int e = SyncDir(dir_); e != 0) {
    // Not known to be durable: take it back so the store and the directory agree.
    ::unlink(final_path.c_str());
    return fail("sync the directory for", e);
  }
  return absl::OkStatus();
}

absl::Status VoiceStore::Remove(const std::string& name) {
  absl::MutexLock lock(&mu_);
  if (voices_.count(name) == 0) {
    return absl::NotFoundError(absl::StrCat("no created voice is named '", name, "'"));
  }
  const std::string path = absl::StrCat(dir_, "/", FileName(name));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::UnavailableError(absl::StrCat("voice store ", dir_, ": cannot remove the file of ",
                                               "voice '", name, "': ", Errno(errno),
                                               "; the voice is kept"));
  }
  SyncDir(dir_);
  voices_.erase(name);
  return absl::OkStatus();
}

std::shared_ptr<const StoredVoice> VoiceStore::Find(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = voices_.find(name);
  return it == voices_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const StoredVoice>> VoiceStore::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<const StoredVoice>> out;
  for (const auto& [name, voice] : voices_) out.push_back(voice);
  return out;
}

int VoiceStore::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(voices_.size());
}

}  // namespace vox
