#include "server/scheduler/translation_batching.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "engines/core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// "Translates" each text to "<target>:<text>"; records every call.
class FakeEngine : public TranslationEngine {
 public:
  struct Call {
    std::vector<std::string> texts;
    std::string source, target;
    int beam_size;
  };
  FakeEngine() { info_.name = "fake"; }
  const ModelInfo& info() const override { return info_; }
  bool SupportsPair(const std::string&, const std::string&) const override { return true; }
  absl::Status Validate(const std::vector<std::string>&, const std::string&, const std::string&,
                        const TranslationParams&) const override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<TranslationOutput>> Translate(
      const std::vector<std::string>& texts, const std::string& source,
      const std::string& target, const TranslationParams& params,
      const StopCheck& stop) override {
    calls.push_back({texts, source, target, params.beam_size});
    if (during) during(stop);
    if (stop) {
      absl::Status s = stop();
      if (!s.ok()) return s;
    }
    if (target == "fail_Latn") return absl::InternalError("engine broke");
    std::vector<TranslationOutput> out;
    for (const auto& t : texts) out.push_back({absl::StrCat(target, ":", t), {}});
    return out;
  }
  std::vector<Call> calls;  // worker thread only while the batcher runs
  std::function<void(const StopCheck&)> during;

 private:
  ModelInfo info_;
};

struct Collected {
  absl::Mutex mu;
  std::map<int, absl::StatusOr<std::vector<TranslationOutput>>> results;
  TranslateBatcher::Callback For(int key) {
    return [this, key](absl::StatusOr<std::vector<TranslationOutput>> r) {
      absl::MutexLock lock(&mu);
      results.emplace(key, std::move(r));
    };
  }
  void WaitFor(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return results.size() >= n; };
    if (!mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60))) {
      ADD_FAILURE() << "only " << results.size() << " of " << n << " jobs completed";
    }
  }
  std::vector<std::string> Texts(int key) {
    absl::MutexLock lock(&mu);
    std::vector<std::string> t;
    for (const auto& o : *results.at(key)) t.push_back(o.text);
    return t;
  }
  absl::Status Status(int key) {
    absl::MutexLock lock(&mu);
    return results.at(key).status();
  }
};

TranslateJob Job(std::vector<std::string> texts, std::string target = "spa_Latn",
                 int beam = 1) {
  TranslateJob j;
  j.texts = std::move(texts);
  j.source = "eng_Latn";
  j.target = std::move(target);
  j.params.beam_size = beam;
  return j;
}

struct Fixture {
  FakeClock clock;
  FakeEngine engine;
  std::unique_ptr<TranslateBatcher> batcher;
  Collected got;
  void Start(int max_batch, int max_texts = 64) {
    SchedulerOptions o;
    o.name = "fake";
    o.max_batch_size = max_batch;
    o.max_queue_delay_us = 1000000;  // batches form by size (or the test advances time)
    auto b = TranslateBatcher::Create(o, MakeTranslateRunFn({&engine}, max_texts), &clock);
    ASSERT_TRUE(b.ok()) << b.status();
    batcher = std::move(*b);
  }
};

TEST(TranslationBatchingTest, SamePairJobsShareOneEngineCallAndGetTheirOwnOutputs) {
  Fixture f;
  f.Start(3);
  ASSERT_TRUE(f.batcher->Submit(Job({"a", "b"}), {}, f.got.For(0)).ok());
  ASSERT_TRUE(f.batcher->Submit(Job({"c"}), {}, f.got.For(1)).ok());
  ASSERT_TRUE(f.batcher->Submit(Job({"d", "e", "f"}), {}, f.got.For(2)).ok());
  f.got.WaitFor(3);
  f.batcher.reset();
  ASSERT_EQ(f.engine.calls.size(), 1u);
  EXPECT_THAT(f.engine.calls[0].texts, ElementsAre("a", "b", "c", "d", "e", "f"));
  EXPECT_THAT(f.got.Texts(0), ElementsAre("spa_Latn:a", "spa_Latn:b"));
  EXPECT_THAT(f.got.Texts(1), ElementsAre("spa_Latn:c"));
  EXPECT_THAT(f.got.Texts(2), ElementsAre("spa_Latn:d", "spa_Latn:e", "spa_Latn:f"));
}

TEST(TranslationBatchingTest, DifferentPairsOrParamsRunAsSeparateCalls) {
  Fixture f;
  f.Start(4);
  ASSERT_TRUE(f.batcher->Submit(Job({"a"}), {}, f.got.For(0)).ok());
  ASSERT_TRUE(f.batcher->Submit(Job({"b"}, "fra_Latn"), {}, f.got.For(1)).ok());
  ASSERT_TRUE(f.batcher->Submit(Job({"c"}, "spa_Latn", /*beam=*/4), {}, f.got.For(2)).ok());
  ASSERT_TRUE(f.batcher->Submit(Job({"d"}), {}, f.got.For(3)).ok());
  f.got.WaitFor(4);
  f.batcher.reset();
  ASSERT_EQ(f.engine.calls.size(), 3u);
  EXPECT_THAT(f.engine.calls[0].texts, ElementsAre("a", "d"));
  EXPECT_EQ(f.engine.calls[1].target, "fra_Latn");
  EXPECT_EQ(f.engine.calls[2].beam_size, 4);
  EXPECT_THAT(f.got.Texts(1), ElementsAre("fra_Latn:b"));
  EXPECT_THAT(f.got.Texts(3), ElementsAre("spa_Latn:d"));
}

TEST(TranslationBatchingTest, CallsStayWithinMaxTextsWithoutSplittingAJob) {
  Fixture f;
  f.Start(3, /*max_texts=*/4);
  ASSERT_TRUE(f.batcher->Submit(Job({"a", "b", "c"}), {}, f.got.For(0)).ok());
  ASSERT_TRUE(f.batcher->Submit(Job({"d", "e"}), {}, f.got.For(1)).ok());
  ASSERT_TRUE(f.batcher->Submit(Job({"f"}), {}, f.got.For(2)).ok());
  f.got.WaitFor(3);
  f.batcher.reset();
  ASSERT_EQ(f.engine.calls.size(), 2u);
  EXPECT_THAT(f.engine.calls[0].texts, ElementsAre("a", "b", "c", "f"));
  EXPECT_THAT(f.engine.calls[1].texts, ElementsAre("d", "e"));
  EXPECT_THAT(f.got.Texts(1), ElementsAre("spa_Latn:d", "spa_Latn:e"));
  EXPECT_THAT(f.got.Texts(2), ElementsAre("spa_Latn:f"));
}

TEST(TranslationBatchingTest, EngineErrorReachesOnlyTheJobsOfThatCall) {
  Fixture f;
  f.Start(2);
  ASSERT_TRUE(f.batcher->Submit(Job({"a"}, "fail_Latn"), {}, f.got.For(0)).ok());
  ASSERT_TRUE(f.batcher->Submit(Job({"b"}), {}, f.got.For(1)).ok());
  f.got.WaitFor(2);
  EXPECT_EQ(f.got.Status(0).code(), absl::StatusCode::kInternal);
  EXPECT_THAT(f.got.Status(0).message(), HasSubstr("engine broke"));
  EXPECT_THAT(f.got.Texts(1), ElementsAre("spa_Latn:b"));
}

TEST(TranslationBatchingTest, CancelledJobGetsCancelledOthersInTheCallFinish) {
  Fixture f;
  f.Start(2);
  auto first = f.batcher->Submit(Job({"a"}), {}, f.got.For(0));
  ASSERT_TRUE(first.ok());
  absl::Status stop_after_one_cancel;
  f.engine.during = [&](const StopCheck& stop) {
    f.batcher->Cancel(*first);
    stop_after_one_cancel = stop();  // the other job still wants its answer
  };
  ASSERT_TRUE(f.batcher->Submit(Job({"b"}), {}, f.got.For(1)).ok());
  f.got.WaitFor(2);
  f.batcher.reset();
  EXPECT_TRUE(stop_after_one_cancel.ok()) << stop_after_one_cancel;
  EXPECT_EQ(f.got.Status(0).code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(f.got.Texts(1), ElementsAre("spa_Latn:b"));
}

TEST(TranslationBatchingTest, MergedCallStopsWhenEveryJobInItIsCancelled) {
  Fixture f;
  f.Start(3);  // two jobs never fill the batch: it runs when the test advances time
  auto a = f.batcher->Submit(Job({"a"}), {}, f.got.For(0));
  auto b = f.batcher->Submit(Job({"b"}), {}, f.got.For(1));
  ASSERT_TRUE(a.ok() && b.ok());
  absl::Status stop_status;
  f.engine.during = [&](const StopCheck& stop) {
    f.batcher->Cancel(*a);
    f.batcher->Cancel(*b);
    stop_status = stop();
  };
  f.clock.Advance(absl::Seconds(1));
  f.got.WaitFor(2);
  f.batcher.reset();
  EXPECT_EQ(stop_status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(f.got.Status(0).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(f.got.Status(1).code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace vox
