// OutboundStream without gRPC: a fake writer stands for the reactor's StartWrite/OnWriteDone,
// and the executor is either run by hand (deterministic interleavings) or a ThreadPool (races).
#include "server/outbound_stream.h"

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/thread_pool.h"

namespace vox {
namespace {

using ::testing::ElementsAre;
using Stream = OutboundStream<std::string>;

// Tasks posted by the stream, run when the test says.
class ManualExecutor {
 public:
  Executor executor() {
    return [this](std::function<void()> task) { tasks_.push_back(std::move(task)); };
  }
  // Runs tasks (and the ones they post) until none is left; returns how many ran.
  int RunAll() {
    int n = 0;
    while (!tasks_.empty()) {
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      task();
      ++n;
    }
    return n;
  }
  size_t pending() const { return tasks_.size(); }

 private:
  std::deque<std::function<void()>> tasks_;
};

// Records what the stream does: writes started (and how many at once), finishes, flow control.
struct FakeWriter {
  absl::Mutex mu;
  std::vector<std::string> written;
  int in_flight = 0;
  int max_in_flight = 0;
  int finishes = 0;
  std::optional<absl::Status> status;
  int pauses = 0;
  int resumes = 0;
  std::vector<std::string> events;  // "write:<msg>", "finish:<code>", "pause", "resume"

  Stream::Callbacks Callbacks() {
    Stream::Callbacks cb;
    cb.start_write = [this](const std::string* m) {
      absl::MutexLock lock(&mu);
      written.push_back(*m);
      events.push_back("write:" + *m);
      max_in_flight = std::max(max_in_flight, ++in_flight);
    };
    cb.finish = [this](absl::Status s) {
      absl::MutexLock lock(&mu);
      ++finishes;
      events.push_back("finish:" + std::string(absl::StatusCodeToString(s.code())));
      status = std::move(s);
    };
    return cb;
  }
  void Attach(Stream* stream) {
    stream->SetFlowControl(
        [this] {
          ++pauses;
          events.push_back("pause");
        },
        [this] {
          ++resumes;
          events.push_back("resume");
        });
  }
  // The write in flight completes (the reactor's OnWriteDone).
  void Complete(Stream* stream, bool ok = true) {
    {
      absl::MutexLock lock(&mu);
      --in_flight;
    }
    stream->OnWriteDone(ok);
  }
};

Stream::Options Water(size_t high, size_t low) {
  Stream::Options o;
  o.high_water = high;
  o.low_water = low;
  return o;
}

TEST(OutboundStreamTest, ExactlyOneWriteInFlightInQueueOrder) {
  ManualExecutor ex;
  FakeWriter w;
  Stream stream(Water(100, 100), ex.executor(), w.Callbacks());
  EXPECT_TRUE(stream.Push("a", 1));
  EXPECT_TRUE(stream.Push("b", 1));
  EXPECT_TRUE(stream.Push("c", 1));
  EXPECT_TRUE(w.written.empty());  // nothing runs inside Push
  EXPECT_EQ(stream.size(), 3u);     // the posted write path has not taken one yet
  ex.RunAll();
  EXPECT_THAT(w.written, ElementsAre("a"));
  EXPECT_EQ(stream.size(), 3u);
  ex.RunAll();  // nothing more may start before the write completes
  EXPECT_THAT(w.written, ElementsAre("a"));
  w.Complete(&stream);
  ex.RunAll();
  EXPECT_THAT(w.written, ElementsAre("a", "b"));
  w.Complete(&stream);
  ex.RunAll();
  w.Complete(&stream);
  ex.RunAll();
  EXPECT_THAT(w.written, ElementsAre("a", "b", "c"));
  EXPECT_EQ(w.max_in_flight, 1);
  EXPECT_EQ(stream.size(), 0u);
  EXPECT_EQ(w.finishes, 0);  // not finished until told
}

TEST(OutboundStreamTest, ProducersRunInTheWritePathInOrderAndMayProduceNothing) {
  ManualExecutor ex;
  FakeWriter w;
  Stream stream(Water(100, 100), ex.executor(), w.Callbacks());
  std::vector<std::string> ran;
  stream.PushProducer([&]() -> std::optional<std::string> {
    ran.push_back("p1");
    return "one";
  }, 1);
  stream.PushProducer([&]() -> std::optional<std::string> {
    ran.push_back("p2");
    return std::nullopt;  // e.g. audio shorter than one Opus frame
  }, 1);
  stream.Push("three", 1);
  EXPECT_TRUE(ran.empty()) << "a producer ran on the pushing thread";
  ex.RunAll();
  EXPECT_THAT(ran, ElementsAre("p1"));  // the next one waits for the write path
  w.Complete(&stream);
  ex.RunAll();
  EXPECT_THAT(ran, ElementsAre("p1", "p2"));
  EXPECT_THAT(w.written, ElementsAre("one", "three"));  // p2 wrote nothing; its cost is gone
  EXPECT_EQ(stream.size(), 1u);
}

TEST(OutboundStreamTest, ProducersNeverRunOnThePushingThread) {
  FakeWriter w;
  auto pool = std::make_unique<ThreadPool>(1);
  Stream stream(Water(100, 100), pool->AsExecutor(), w.Callbacks());
  const std::thread::id pusher = std::this_thread::get_id();
  std::atomic<int> on_pusher{0};
  for (int i = 0; i < 20; ++i) {
    stream.PushProducer([&, i]() -> std::optional<std::string> {
      if (std::this_thread::get_id() == pusher) ++on_pusher;
      return std::to_string(i);
    }, 1);
  }
  stream.Finish(absl::OkStatus());
  while (true) {
    {
      absl::MutexLock lock(&w.mu);
      if (w.finishes == 1) break;
      if (w.in_flight == 0) {
        absl::SleepFor(absl::Microseconds(100));
        continue;
      }
    }
    w.Complete(&stream);
  }
  pool.reset();  // every task has run
  EXPECT_EQ(on_pusher.load(), 0);
  EXPECT_EQ(w.written.size(), 20u);
}

TEST(OutboundStreamTest, WatermarksPauseAndResumeOncePerCrossing) {
  ManualExecutor ex;
  FakeWriter w;
  Stream stream(Water(/*high=*/3, /*low=*/1), ex.executor(), w.Callbacks());
  w.Attach(&stream);
  for (int i = 0; i < 3; ++i) stream.Push("m", 1);  // cost 3: at the mark, not over
  EXPECT_EQ(w.pauses, 0);
  stream.Push("m", 1);  // 4 > 3: pause
  stream.Push("m", 1);  // still over: no second pause
  EXPECT_EQ(w.pauses, 1);
  EXPECT_TRUE(stream.paused());
  ex.RunAll();
  w.Complete(&stream);  // 4 left
  ex.RunAll();
  w.Complete(&stream);  // 3 left
  ex.RunAll();
  w.Complete(&stream);  // 2 left: below high, above low: still paused
  EXPECT_EQ(w.resumes, 0);
  ex.RunAll();
  w.Complete(&stream);  // 1 left: at low: resume
  EXPECT_EQ(w.resumes, 1);
  EXPECT_FALSE(stream.paused());
  ex.RunAll();
  w.Complete(&stream);  // 0 left: no second resume
  EXPECT_EQ(w.resumes, 1);
  // The next crossing pauses and resumes again.
  for (int i = 0; i < 4; ++i) stream.Push("n", 1);
  EXPECT_EQ(w.pauses, 2);
  for (int i = 0; i < 4; ++i) {
    ex.RunAll();
    w.Complete(&stream);
  }
  EXPECT_EQ(w.resumes, 2);
  EXPECT_THAT(w.events, ::testing::Contains("pause").Times(2));
}

TEST(OutboundStreamTest, CostCountsUntilTheWriteCompletes) {
  ManualExecutor ex;
  FakeWriter w;
  // Bytes: pause above 10, resume at 4 or below (Synthesize counts bytes, SpeechTranslate 1 per
  // message: the stream only adds what it is given).
  Stream stream(Water(10, 4), ex.executor(), w.Callbacks());
  w.Attach(&stream);
  stream.Push("big", 8);
  ex.RunAll();  // being written: still counted
  stream.Push("small", 3);
  EXPECT_EQ(w.pauses, 1);
  w.Complete(&stream);  // 3 left
  EXPECT_EQ(w.resumes, 1);
}

TEST(OutboundStreamTest, AttachingFlowControlWhileOverTheMarkPausesAtOnce) {
  ManualExecutor ex;
  FakeWriter w;
  Stream stream(Water(1, 1), ex.executor(), w.Callbacks());
  stream.Push("header", 5);  // over the mark before anything is attached (no ticket yet)
  EXPECT_EQ(w.pauses, 0);
  w.Attach(&stream);
  EXPECT_EQ(w.pauses, 1);
  ex.RunAll();
  w.Complete(&stream);
  EXPECT_EQ(w.resumes, 1);
}

TEST(OutboundStreamTest, EverythingQueuedBeforeFinishIsWrittenBeforeTheStatus) {
  ManualExecutor ex;
  FakeWriter w;
  Stream stream(Water(100, 100), ex.executor(), w.Callbacks());
  stream.Push("a", 1);
  stream.PushProducer([] { return std::optional<std::string>("b"); }, 1);
  stream.Push("c", 1);
  stream.Finish(absl::OkStatus());
  EXPECT_FALSE(stream.Push("late", 1));  // closed: refused
  for (int i = 0; i < 3; ++i) {
    ex.RunAll();
    EXPECT_EQ(w.finishes, 0);
    w.Complete(&stream);
  }
  ex.RunAll();
  EXPECT_THAT(w.events, ElementsAre("write:a", "write:b", "write:c", "finish:OK"));
  EXPECT_EQ(stream.state(), Stream::State::kFinished);
}

TEST(OutboundStreamTest, TheFirstFinalStatusWinsAndLaterFinishCallsAreIgnored) {
  ManualExecutor ex;
  FakeWriter w;
  Stream stream(Water(100, 100), ex.executor(), w.Callbacks());
  stream.Finish(absl::DeadlineExceededError("first"));
  stream.Finish(absl::InternalError("second"));
  stream.Finish(absl::OkStatus());
  ex.RunAll();
  EXPECT_EQ(w.finishes, 1);
  EXPECT_EQ(*w.status, absl::DeadlineExceededError("first"));
  stream.Finish(absl::InternalError("after the end"));
  stream.Cancel(absl::CancelledError("after the end"));
  EXPECT_EQ(ex.RunAll(), 0);
  EXPECT_EQ(w.finishes, 1);
}

TEST(OutboundStreamTest, CancellationDropsTheQueueAndWaitsForTheWriteInFlightAndFinish) {
  ManualExecutor ex;
  FakeWriter w;
  Stream stream(Water(100, 100), ex.executor(), w.Callbacks());
  stream.Push("a", 1);
  stream.Push("b", 1);
  stream.PushProducer([] { return std::optional<std::string>("c"); }, 1);
  ex.RunAll();  // "a" in flight
  stream.Cancel(absl::CancelledError("the call was cancelled"));
  EXPECT_FALSE(stream.Push("d", 1));
  EXPECT_EQ(stream.size(), 1u);  // only the write in flight is left
  w.Complete(&stream);
  ex.RunAll();
  EXPECT_THAT(w.written, ElementsAre("a"));
  EXPECT_EQ(w.finishes, 0);  // the owner's sequences have not ended yet
  EXPECT_EQ(stream.state(), Stream::State::kCancelled);
  stream.Finish(absl::OkStatus());  // they did; the cancel's status stands
  ex.RunAll();
  EXPECT_EQ(w.finishes, 1);
  EXPECT_EQ(*w.status, absl::CancelledError("the call was cancelled"));
}

TEST(OutboundStreamTest, CancelAfterAnOkFinishReplacesItButNotAnError) {
  {
    ManualExecutor ex;
    FakeWriter w;
    Stream stream(Water(100, 100), ex.executor(), w.Callbacks());
    stream.Push("a", 1);
    stream.Push("summary", 1);
    stream.Finish(absl::OkStatus());
    ex.RunAll();
    stream.Cancel(absl::CancelledError("the call was cancelled"));  // "summary" never goes out
    w.Complete(&stream);
    ex.RunAll();
    EXPECT_THAT(w.written, ElementsAre("a"));
    EXPECT_EQ(*w.status, absl::CancelledError("the call was cancelled"));
  }
  {
    ManualExecutor ex;
    FakeWriter w;
    Stream stream(Water(100, 100), ex.executor(), w.Callbacks());
    stream.Push("a", 1);
    stream.Finish(absl::ResourceExhaustedError("read too slowly"));
    ex.RunAll();
    stream.Cancel(absl::CancelledError("the call was cancelled"));
    w.Complete(&stream);
    ex.RunAll();
    EXPECT_EQ(*w.status, absl::ResourceExhaustedError("read too slowly"));
  }
}

TEST(OutboundStreamTest, AFailedWriteDropsTheQueueAsTheClientWentAway) {
  ManualExecutor ex;
  FakeWriter w;
  Stream stream(Water(1, 1), ex.executor(), w.Callbacks());
  w.Attach(&stream);
  stream.Push("a", 1);
  stream.Push("b", 1);  // over the mark: paused
  EXPECT_EQ(w.pauses, 1);
  ex.RunAll();
  w.Complete(&stream, /*ok=*/false);
  EXPECT_EQ(w.resumes, 0);  // no longer open: flow control is over
  stream.Finish(absl::OkStatus());
  ex.RunAll();
  EXPECT_THAT(w.written, ElementsAre("a"));
  EXPECT_EQ(*w.status, absl::CancelledError("the client went away"));
}

TEST(OutboundStreamTest, ACancelWhileProducingDropsWhatWasProduced) {
  ManualExecutor ex;
  FakeWriter w;
  Stream stream(Water(100, 100), ex.executor(), w.Callbacks());
  stream.PushProducer([&]() -> std::optional<std::string> {
    stream.Cancel(absl::InternalError("audio encoding failed"));  // the encoder failed
    return std::nullopt;
  }, 1);
  stream.PushProducer([&]() -> std::optional<std::string> {
    ADD_FAILURE() << "ran after the cancel";
    return "x";
  }, 1);
  ex.RunAll();
  stream.Finish(absl::OkStatus());
  ex.RunAll();
  EXPECT_TRUE(w.written.empty());
  EXPECT_EQ(*w.status, absl::InternalError("audio encoding failed"));
}

// Finish and Cancel from two threads at once (a scheduler worker's on_done against a reaction),
// with writes completing on a third: exactly one finish, after the last write, with a status
// one of them gave.
TEST(OutboundStreamTest, FinishHappensExactlyOnceWhenRacedFromTwoThreads) {
  for (int round = 0; round < 300; ++round) {
    FakeWriter w;
    auto pool = std::make_unique<ThreadPool>(2);
    auto stream = std::make_unique<Stream>(Water(2, 1), pool->AsExecutor(), w.Callbacks());
    std::atomic<bool> stop{false};
    std::thread writer([&] {  // the transport: completes each write soon after it starts
      while (!stop.load()) {
        bool complete = false;
        {
          absl::MutexLock lock(&w.mu);
          complete = w.in_flight > 0;
        }
        if (complete) {
          w.Complete(stream.get());
        } else {
          std::this_thread::yield();
        }
      }
    });
    for (int i = 0; i < 5; ++i) stream->Push(std::to_string(i), 1);
    absl::Notification go;
    std::thread a([&] {
      go.WaitForNotification();
      stream->Finish(absl::OkStatus());
    });
    std::thread b([&] {
      go.WaitForNotification();
      if (round % 2 == 0) {
        stream->Finish(absl::DeadlineExceededError("b"));
      } else {
        stream->Cancel(absl::CancelledError("b"));
      }
    });
    go.Notify();
    a.join();
    b.join();
    while (stream->state() != Stream::State::kFinished) std::this_thread::yield();
    stop = true;
    writer.join();
    pool.reset();  // the finish has returned
    absl::MutexLock lock(&w.mu);
    ASSERT_EQ(w.finishes, 1) << "round " << round;
    EXPECT_EQ(w.events.back().rfind("finish:", 0), 0u) << "a write after the finish";
    EXPECT_LE(w.max_in_flight, 1);
    const absl::StatusCode code = w.status->code();
    const absl::StatusCode other = round % 2 == 0 ? absl::StatusCode::kDeadlineExceeded
                                                  : absl::StatusCode::kCancelled;
    EXPECT_TRUE(code == absl::StatusCode::kOk || code == other) << w.status->ToString();
    if (code == absl::StatusCode::kOk) {
      // Finish(OK) came first, and everything was written before the other call arrived (a
      // cancel replaces an OK only while something is left to write).
      EXPECT_EQ(w.written.size(), 5u);
    }
  }
}

}  // namespace
}  // namespace vox
