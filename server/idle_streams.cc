#include "server/idle_streams.h"

#include <vector>

#include "absl/time/clock.h"

namespace vox {

IdleStreams::IdleStreams(absl::Duration timeout) : timeout_(timeout) {
  if (timeout_ > absl::ZeroDuration() && timeout_ != absl::InfiniteDuration()) {
    thread_ = std::thread([this] { Run(); });
  }
}

IdleStreams::~IdleStreams() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void IdleStreams::Add(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.insert(stream);
}

void IdleStreams::Remove(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
  if (std::this_thread::get_id() == thread_.get_id()) return;  // from inside its own check
  auto done = [this, stream]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return checking_ != stream; };
  mu_.Await(absl::Condition(&done));
}

void IdleStreams::Run() {
  const absl::Duration tick = timeout_ / 4;
  auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
  mu_.Lock();
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping), tick)) {
    const absl::Time cutoff = absl::Now() - timeout_;
    const std::vector<Stream*> all(streams_.begin(), streams_.end());
    for (Stream* s : all) {
      if (stop_) break;
      if (streams_.count(s) == 0) continue;  // removed meanwhile
      checking_ = s;
      mu_.Unlock();
      s->EndIfIdleSince(cutoff);
      mu_.Lock();
      checking_ = nullptr;
    }
  }
  mu_.Unlock();
}

}  // namespace vox
