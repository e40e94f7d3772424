#ifndef VOX_SERVER_IDLE_STREAMS_H_
#define VOX_SERVER_IDLE_STREAMS_H_

#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vox {

class Metrics;

// The idle-stream timeout (server.idle_stream_timeout_seconds): calls whose client streams
// register here, and a thread asks each one, about four times per timeout, to end itself if it
// has been idle since before now - timeout. Each stream decides what idle means and how it ends.
// Streams Add themselves as they start and Remove themselves before they are deleted. Owned by
// the server; thread-safe.
class IdleStreams {
 public:
  class Stream {
   public:
    // On the checker's thread, with no lock of IdleStreams held: ends the call (not inline:
    // through its write path) when nothing moved since `cutoff` and nothing is left to do.
    virtual void EndIfIdleSince(absl::Time cutoff) = 0;

   protected:
    ~Stream() = default;
  };

  // A zero or infinite `timeout` turns the check off (Add and Remove still work). `metrics` may
  // be null; it must outlive this.
  explicit IdleStreams(absl::Duration timeout, Metrics* metrics = nullptr);
  ~IdleStreams();  // stops the thread; every stream must have been removed

  void Add(Stream* stream);
  // After it returns, `stream` is not checked any more (waits for a check of it in progress,
  // unless called from inside that check).
  void Remove(Stream* stream);

  absl::Duration timeout() const { return timeout_; }

  // The status a stream that `token` ("" = none) left idle ends with (DEADLINE_EXCEEDED naming
  // the timeout, then `outcome`: what became of what it sent), counted in
  // vox_quota_rejections_total{quota="idle_stream_timeout"}.
  absl::Status Expired(const std::string& token, absl::string_view outcome) const;

 private:
  void Run();

  const absl::Duration timeout_;
  Metrics* const metrics_;
  absl::Mutex mu_;
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  Stream* checking_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once the rest exists
};

// The idle check's view of a stream that reads its client one message at a time: whether a
// read waits, when the last read or write was done, and whether the stream's input was ended
// (by the check or by the stream: then no read starts and a read that completes is dropped).
// Thread-safe.
class StreamActivity {
 public:
  explicit StreamActivity(absl::Time start) : last_(start) {}

  // Before StartRead: false once the input was ended (do not read).
  bool BeginRead();
  // First thing in OnReadDone: false when the input was ended while the read waited (drop it).
  bool ReadDone(absl::Time now);
  void WriteDone(absl::Time now);
  // Ends the input (a refusal): no read starts from now on.
  void End();
  // Ends the input and returns true when a read has waited with nothing moving since `cutoff`
  // and `nothing_left()` (called under this object's lock: it must not call back into it).
  bool EndIfIdle(absl::Time cutoff, absl::FunctionRef<bool()> nothing_left);

 private:
  absl::Mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vox

#endif  // VOX_SERVER_IDLE_STREAMS_H_
