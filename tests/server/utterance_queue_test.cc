// UtteranceQueue over a real speech scheduler with the fake speech engine (5 chunks of a tone per
// utterance; "block" runs until stopped; "fail" fails after one chunk).
#include "server/utterance_queue.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/server/fake_engines.h"

namespace vox {
namespace {

using testing::FakeSpeechEngine;

class UtteranceQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto engine = std::make_unique<FakeSpeechEngine>(
        "fake-voice", std::vector<VoiceInfo>{{"Ana", {"eng_Latn"}}});
    engine_ = engine.get();
    SchedulerOptions options;
    options.max_queue_delay_us = 0;
    ASSERT_TRUE(registry_.AddSpeech(std::move(engine), options).ok());
    model_ = registry_.speech()[0].get();
    UtteranceQueue::Callbacks callbacks;
    callbacks.on_audio = [this](std::vector<float> samples) {
      absl::MutexLock lock(&mu_);
      audio_.insert(audio_.end(), samples.begin(), samples.end());
    };
    callbacks.on_first_audio = [this](const Utterance& u) {
      absl::MutexLock lock(&mu_);
      first_audio_texts_.push_back(u.request.text);
    };
    callbacks.on_stats = [this](const SynthesisStats& s) {
      absl::MutexLock lock(&mu_);
      codes_ += s.codes;
    };
    callbacks.on_done = [this](absl::Status s, EndReason why) {
      absl::MutexLock lock(&mu_);
      ++done_calls_;
      status_ = s;
      why_ = why;
      if (!done_.HasBeenNotified()) done_.Notify();
    };
    queue_ = std::make_unique<UtteranceQueue>(model_, RequestOptions{}, StopCheck(),
                                              std::move(callbacks));
  }

  static Utterance Say(const std::string& text, int64_t silence_before = 0) {
    Utterance u;
    u.request.text = text;
    u.request.language = "eng_Latn";
    u.silence_before_samples = silence_before;
    return u;
  }

  ModelRegistry registry_;
  SpeechModel* model_ = nullptr;
  FakeSpeechEngine* engine_ = nullptr;
  std::unique_ptr<UtteranceQueue> queue_;
  absl::Notification done_;
  absl::Mutex mu_;
  std::vector<float> audio_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> first_audio_texts_ ABSL_GUARDED_BY(mu_);
  int64_t codes_ ABSL_GUARDED_BY(mu_) = 0;
  int done_calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  EndReason why_ ABSL_GUARDED_BY(mu_) = EndReason::kFailed;
};

constexpr int64_t kUtteranceSamples = 5 * 22050 / 10;  // the fake's 5 chunks of 0.1 s

TEST_F(UtteranceQueueTest, SpeaksInOrderWithSilencesIntoOneStream) {
  ASSERT_TRUE(queue_->Add(Say("one")).ok());
  ASSERT_TRUE(queue_->Add(Say("two", 100)).ok());
  ASSERT_TRUE(queue_->Add(Say("", 50)).ok());  // a trailing pause alone
  queue_->Close();
  done_.WaitForNotification();
  absl::MutexLock lock(&mu_);
  EXPECT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(why_, EndReason::kFinished);
  EXPECT_EQ(done_calls_, 1);
  EXPECT_EQ(queue_->spoken(), 2);
  EXPECT_EQ(codes_, 2 * 11);
  EXPECT_EQ(first_audio_texts_, (std::vector<std::string>{"one", "two"}));
  ASSERT_EQ(static_cast<int64_t>(audio_.size()), 2 * kUtteranceSamples + 100 + 50);
  // The tone, then 100 zeros, the tone again from its start, then 50 zeros.
  const std::vector<float> tone = engine_->Tone(0);
  EXPECT_EQ(audio_[1], tone[1]);
  for (int64_t i = kUtteranceSamples; i < kUtteranceSamples + 100; ++i) EXPECT_EQ(audio_[i], 0.0f);
  EXPECT_EQ(audio_[kUtteranceSamples + 100 + 1], tone[1]);
  for (size_t i = audio_.size() - 50; i < audio_.size(); ++i) EXPECT_EQ(audio_[i], 0.0f);
}

TEST_F(UtteranceQueueTest, CloseWithNothingQueuedEndsAtOnceAndAddAfterCloseIsRefused) {
  queue_->Close();
  ASSERT_TRUE(done_.HasBeenNotified());
  EXPECT_EQ(queue_->Add(Say("late")).code(), absl::StatusCode::kFailedPrecondition);
  absl::MutexLock lock(&mu_);
  EXPECT_TRUE(status_.ok());
  EXPECT_TRUE(audio_.empty());
}

TEST_F(UtteranceQueueTest, CancelStopsTheRunningSequenceAndDropsTheRest) {
  ASSERT_TRUE(queue_->Add(Say("block")).ok());
  ASSERT_TRUE(queue_->Add(Say("never")).ok());
  engine_->running().WaitForNotification();
  queue_->Cancel();
  done_.WaitForNotification();
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(status_.code(), absl::StatusCode::kCancelled) << status_;
  EXPECT_EQ(why_, EndReason::kCancelled);
  EXPECT_EQ(done_calls_, 1);
  EXPECT_EQ(queue_->spoken(), 1);
  EXPECT_EQ(queue_->Add(Say("after")).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(UtteranceQueueTest, CancelWhileIdleEndsCancelledOnce) {
  queue_->Cancel();
  queue_->Cancel();
  queue_->Close();
  ASSERT_TRUE(done_.HasBeenNotified());
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(done_calls_, 1);
  EXPECT_EQ(status_.code(), absl::StatusCode::kCancelled);
}

TEST_F(UtteranceQueueTest, AFailureEndsTheQueueWithItsStatus) {
  ASSERT_TRUE(queue_->Add(Say("fail")).ok());
  ASSERT_TRUE(queue_->Add(Say("never")).ok());
  queue_->Close();
  done_.WaitForNotification();
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(status_.code(), absl::StatusCode::kDataLoss) << status_;
  EXPECT_EQ(done_calls_, 1);
  EXPECT_EQ(queue_->spoken(), 1);
  EXPECT_TRUE(first_audio_texts_.empty() || first_audio_texts_ == std::vector<std::string>{"fail"});
}

}  // namespace
}  // namespace vox
