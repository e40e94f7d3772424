#ifndef VOX_SERVER_IDLE_STREAMS_H_
#define VOX_SERVER_IDLE_STREAMS_H_

#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vox {

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

  // A zero or infinite `timeout` turns the check off (Add and Remove still work).
  explicit IdleStreams(absl::Duration timeout);
  ~IdleStreams();  // stops the thread; every stream must have been removed

  void Add(Stream* stream);
  // After it returns, `stream` is not checked any more (waits for a check of it in progress,
  // unless called from inside that check).
  void Remove(Stream* stream);

  absl::Duration timeout() const { return timeout_; }

 private:
  void Run();

  const absl::Duration timeout_;
  absl::Mutex mu_;
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  Stream* checking_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace vox

#endif  // VOX_SERVER_IDLE_STREAMS_H_
