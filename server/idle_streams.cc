#include "server/idle_streams.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/metrics/metrics.h"

namespace vox {

IdleStreams::IdleStreams(absl::Duration timeout, Metrics* metrics)
    : timeout_(timeout), metrics_(metrics) {
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

absl::Status IdleStreams::Expired(const std::string& token, absl::string_view outcome) const {
  if (metrics_ != nullptr) metrics_->QuotaRejected(token, "idle_stream_timeout");
  return absl::DeadlineExceededError(absl::StrCat(
      "the stream was idle for ", absl::FormatDuration(timeout_),
      " (no message from the client and nothing left to do; "
      "server.idle_stream_timeout_seconds): ",
      outcome));
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

bool StreamActivity::BeginRead() {
  absl::MutexLock lock(&mu_);
  if (ended_) return false;
  reading_ = true;
  return true;
}

bool StreamActivity::ReadDone(absl::Time now) {
  absl::MutexLock lock(&mu_);
  reading_ = false;
  last_ = now;
  return !ended_;
}

void StreamActivity::WriteDone(absl::Time now) {
  absl::MutexLock lock(&mu_);
  last_ = now;
}

void StreamActivity::End() {
  absl::MutexLock lock(&mu_);
  ended_ = true;
}

bool StreamActivity::EndIfIdle(absl::Time cutoff, absl::FunctionRef<bool()> nothing_left) {
  absl::MutexLock lock(&mu_);
  if (ended_ || !reading_ || last_ > cutoff || !nothing_left()) return false;
  ended_ = true;
  return true;
}

}  // namespace vox
