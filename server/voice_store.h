#ifndef VOX_SERVER_VOICE_STORE_H_
#define VOX_SERVER_VOICE_STORE_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/voice_file.h"

namespace vox {

// The durable store of created voices: a directory (voxd --voices DIR) holding one file per
// voice, "<hex of the name>.voice" (voice_file.h). A voice is written to a temporary file
// ".tmp-*" in the same directory, fsynced, renamed over its name and the directory fsynced, so
// after a crash (even SIGKILL mid-write) a voice file is either absent or complete. Open() loads
// every voice file, skips (and reports) the damaged ones without failing, and removes temporary
// leftovers.
//
// Thread-safe. Reads (Find, List) take a mutex only to copy a pointer; Add writes the file
// without holding it (the name is reserved meanwhile); Remove holds it while unlinking.
class VoiceStore {
 public:
  struct Options {
    int max_voices = 1000;  // created voices; more -> RESOURCE_EXHAUSTED
  };
  // What Open() found.
  struct LoadReport {
    int loaded = 0;
    std::vector<std::string> skipped;  // "FILE: reason" for each voice file not loaded
    int temp_files_removed = 0;
  };

  // Creates `dir` when missing. Fails (UNAVAILABLE, naming the directory) only when the
  // directory cannot be created or read; damaged files are skipped and listed in `*report`.
  static absl::StatusOr<std::unique_ptr<VoiceStore>> Open(const std::string& dir,
                                                          Options options, LoadReport* report);

  // OK when `name` is free and there is room (what Add would check first): ALREADY_EXISTS or
  // RESOURCE_EXHAUSTED otherwise. Lets a caller refuse before doing expensive work.
  absl::Status CheckAvailable(const std::string& name) const;

  // Stores `voice` durably, then makes it visible. ALREADY_EXISTS when the name is taken (or
  // being added), RESOURCE_EXHAUSTED at max_voices, UNAVAILABLE when the file cannot be written
  // (read-only directory, disk full: nothing is left behind and the store is unchanged).
  absl::StatusOr<std::shared_ptr<const StoredVoice>> Add(StoredVoice voice);

  // Removes the file, then the voice. NOT_FOUND when absent; UNAVAILABLE when the file cannot be
  // removed (the voice stays).
  absl::Status Remove(const std::string& name);

  // nullptr when absent.
  std::shared_ptr<const StoredVoice> Find(const std::string& name) const;
  // Every voice, sorted by name.
  std::vector<std::shared_ptr<const StoredVoice>> List() const;
  int size() const;

  const std::string& dir() const { return dir_; }
  const Options& options() const { return options_; }

  // The file name of a voice ("<hex of name>.voice").
  static std::string FileName(const std::string& name);

 private:
  VoiceStore(std::string dir, Options options) : dir_(std::move(dir)), options_(options) {}
  absl::Status CheckAvailableLocked(const std::string& name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteFile(const StoredVoice& voice) const;

  const std::string dir_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const StoredVoice>> voices_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> adding_ ABSL_GUARDED_BY(mu_);  // names reserved by Add in progress
};

}  // namespace vox

#endif  // VOX_SERVER_VOICE_STORE_H_
