#include "server/work_queue.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace vox {

BoundedWorkQueue::BoundedWorkQueue(std::string name, size_t capacity, Clock* clock)
    : name_(std::move(name)), capacity_(capacity), clock_(clock) {
  worker_ = std::thread([this] { Loop(); });
}

BoundedWorkQueue::~BoundedWorkQueue() { Shutdown(); }

absl::Status BoundedWorkQueue::Submit(WorkItem item) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::UnavailableError(
        absl::StrCat("engine '", name_, "' is shutting down; retry on another server"));
  }
  if (items_.size() >= capacity_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "queue of engine '", name_, "' is full (", capacity_, " requests waiting); retry later"));
  }
  item.enqueued = clock_->Now();
  items_.push_back(std::move(item));
  return absl::OkStatus();
}

void BoundedWorkQueue::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

size_t BoundedWorkQueue::depth() const {
  absl::MutexLock lock(&mu_);
  return items_.size();
}

size_t BoundedWorkQueue::completed() const {
  absl::MutexLock lock(&mu_);
  return completed_;
}

void BoundedWorkQueue::Loop() {
  while (true) {
    WorkItem item;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !items_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (items_.empty()) return;  // stopping, and everything queued has been served
      item = std::move(items_.front());
      items_.pop_front();
    }
    if (clock_->Now() > item.deadline) {
      if (item.reject) {
        item.reject(absl::DeadlineExceededError(absl::StrCat(
            "deadline passed while waiting in the queue of engine '", name_, "'")));
      }
    } else if (item.run) {
      item.run();
    }
    absl::MutexLock lock(&mu_);
    ++completed_;
  }
}

}  // namespace vox
