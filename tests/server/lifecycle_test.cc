// Integration: voxd's shutdown lifecycle (SIGTERM/SIGINT) against the real binary on loopback
// with the tiny models.
//
// What the drain promises (docs/operations.md, "Shutdown"): on SIGTERM or SIGINT health goes
// NOT_SERVING, new calls get UNAVAILABLE, admitted work finishes (bounded by --shutdown-grace;
// what still runs then is cancelled), and voxd exits 0.
//
// "Admitted", from the server's side: a call is admitted once its service handler has passed the
// draining check and handed the work to an engine queue. A call that reaches the handler after
// the drain began is refused with UNAVAILABLE ("the server is shutting down ..."); one that
// connects after voxd closed its port fails with UNAVAILABLE too. So a call started before the
// signal has exactly two correct outcomes: OK with the full, correct
// answer (it was admitted) or UNAVAILABLE (it was not, and may be retried elsewhere). Any other
// outcome (CANCELLED, INTERNAL, a wrong or truncated answer) is a lost admitted request.
// Admission is also directly visible for streams: Synthesize sends its `header` only once the
// call is admitted, so a call whose header arrived was admitted; for a SpeechTranslate session,
// every segment the server received before the signal is admitted work, later ones are refused.
//
// No test sleeps for timing: each waits on observable events (a header or a translation
// received, the health Watch stream's NOT_SERVING, the process exit); the timeouts on those waits
// only turn a hang into a failure.
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/proto/health.grpc.pb.h"
#include "tests/server/voxd_process.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/speech_translation.grpc.pb.h"
#include "vox/v1/translation.grpc.pb.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ChildProcess;

const std::string kTinyNllb = std::string(VOX_TINY_DIR) + "/models/nllb-tiny";
#if VOX_TEST_XTTS
const std::string kTinyXtts = std::string(VOX_TINY_DIR) + "/models/xtts-tiny";
#endif

// Bounds on waits for events that must happen; reaching one is a failure, not a timing.
constexpr absl::Duration kEventTimeout = absl::Seconds(120);

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

// A models directory holding only `models` (symlinked), under the test's temp dir.
std::string ModelsDir(const std::string& name, const std::vector<std::string>& models) {
  const fs::path root = fs::path(::testing::TempDir()) / ("voxd-lifecycle-" + name);
  fs::remove_all(root);
  fs::create_directories(root);
  for (const std::string& m : models) {
    fs::create_directory_symlink(m, root / fs::path(m).filename());
  }
  return root.string();
}

// Starts voxd and waits for its "listening" line; returns the address ("" on failure, with the
// failure recorded).
std::string StartVoxd(ChildProcess* voxd, const std::vector<std::string>& extra,
                      const std::string& name) {
  std::vector<std::string> argv = {VOXD_BINARY, "--listen", "127.0.0.1:0", "--builtin", "off"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const std::string stderr_path =
      (fs::path(::testing::TempDir()) / ("voxd-lifecycle-" + name + ".stderr")).string();
  absl::Status started = voxd->Start(argv, stderr_path);
  EXPECT_TRUE(started.ok()) << started;
  if (!started.ok()) return "";
  absl::StatusOr<std::string> line = voxd->ReadLine(absl::Seconds(180));
  EXPECT_TRUE(line.ok()) << line.status() << "\nstderr:\n" << voxd->Stderr();
  if (!line.ok()) return "";
  const std::string prefix = "voxd listening on ";
  EXPECT_TRUE(absl::StartsWith(*line, prefix)) << *line;
  if (!absl::StartsWith(*line, prefix)) return "";
  return line->substr(prefix.size());
}

// Golden greedy translations of the tiny NLLB model (tools/nllb_reference.py).
struct GoldenCase {
  std::string text, source, target, translation;
  int max_length = 0;
};

std::vector<GoldenCase> GoldenCases() {
  std::ifstream in(std::string(VOX_TINY_DIR) + "/golden/nllb-tiny.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  std::vector<GoldenCase> cases;
  for (const auto& c : golden["cases"]) {
    // Near-ties may flip on another kernel or batch shape; keep the clear decisions.
    if (c["greedy"]["min_margin"].get<double>() < 1e-3) continue;
    cases.push_back({c["text"].get<std::string>(), c["source"].get<std::string>(),
                     c["target"].get<std::string>(), c["greedy"]["text"].get<std::string>(),
                     c["max_length"].get<int>()});
  }
  return cases;
}

// What the test threads report, guarded by one mutex; the main thread waits on conditions over
// it.
class Board {
 public:
  // Waits until `done()` holds (evaluated under the lock); false after kEventTimeout.
  bool Await(const std::function<bool()>& done) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done, &std::function<bool()>::operator()),
                                kEventTimeout);
  }
  template <typename F>
  void Update(F f) {
    absl::MutexLock lock(&mu_);
    f();
  }
  template <typename F>
  auto Read(F f) {
    absl::MutexLock lock(&mu_);
    return f();
  }

 private:
  absl::Mutex mu_;
};

// Watches health for "" on its own stream and records each status it receives.
class HealthWatch {
 public:
  HealthWatch(std::shared_ptr<grpc::Channel> channel, Board* board) : board_(board) {
    stub_ = grpc::health::v1::Health::NewStub(std::move(channel));
    thread_ = std::thread([this] { Run(); });
  }
  ~HealthWatch() {
    context_.TryCancel();
    thread_.join();
  }
  // Under the board's lock.
  const std::vector<HealthCheckResponse::ServingStatus>& seen() const { return seen_; }
  bool serving() const {
    return !seen_.empty() && seen_.back() == HealthCheckResponse::SERVING;
  }
  bool not_serving() const {
    for (auto s : seen_) {
      if (s == HealthCheckResponse::NOT_SERVING) return true;
    }
    return false;
  }
  bool ended() const { return ended_; }
  const grpc::Status& end_status() const { return end_status_; }
  void Cancel() { context_.TryCancel(); }

 private:
  void Run() {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("");
    auto reader = stub_->Watch(&context_, request);
    HealthCheckResponse response;
    while (reader->Read(&response)) {
      board_->Update([&] { seen_.push_back(response.status()); });
    }
    grpc::Status s = reader->Finish();
    board_->Update([&] {
      ended_ = true;
      end_status_ = s;
    });
  }

  Board* const board_;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
  grpc::ClientContext context_;
  std::vector<HealthCheckResponse::ServingStatus> seen_;
  bool ended_ = false;
  grpc::Status end_status_;
  std::thread thread_;
};

// Sends `signal` to voxd and waits for its exit on a thread of its own (ChildProcess::Wait
// blocks), so the test keeps observing the drain meanwhile. Only this thread touches `voxd`
// until Join().
class Terminator {
 public:
  Terminator(ChildProcess* voxd, int signal, absl::Duration timeout, Board* board)
      : board_(board) {
    sent_ = absl::Now();
    thread_ = std::thread([this, voxd, signal, timeout] {
      absl::StatusOr<int> code = voxd->Wait(signal, timeout);
      const absl::Time now = absl::Now();
      board_->Update([&] {
        code_ = code;
        exited_at_ = now;
        exited_ = true;
      });
    });
  }
  ~Terminator() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  absl::Time sent() const { return sent_; }
  // Under the board's lock (or after Join()).
  bool exited() const { return exited_; }
  const absl::StatusOr<int>& code() const { return code_; }
  absl::Duration drain_time() const { return exited_at_ - sent_; }

 private:
  Board* const board_;
  absl::Time sent_;
  bool exited_ = false;
  absl::StatusOr<int> code_ = absl::UnknownError("not exited");
  absl::Time exited_at_;
  std::thread thread_;
};

// Joins its threads when it goes out of scope (also on a failed assertion).
class Threads {
 public:
  ~Threads() {
    for (auto& t : threads_) t.join();
  }
  template <typename F>
  void Start(F f) {
    threads_.emplace_back(std::move(f));
  }
  void JoinAll() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::thread> threads_;
};

std::string Describe(const grpc::Status& s) {
  return absl::StrCat("code ", s.error_code(), " \"", s.error_message(), "\"");
}

// One Translate call: texts = `copies` copies of the case's text.
struct TranslateCall {
  const GoldenCase* golden = nullptr;
  int copies = 0;
  bool started = false;
  grpc::Status status;
  v1::TranslateResponse response;
  bool done = false;
};

v1::TranslateRequest TranslateRequestFor(const GoldenCase& c, int copies) {
  v1::TranslateRequest r;
  for (int i = 0; i < copies; ++i) r.add_texts(c.text);
  r.set_source_language(c.source);
  r.set_target_language(c.target);
  r.mutable_options()->set_max_length(c.max_length);
  return r;
}

// Runs one Translate call to the end, reporting on `board` into `call`.
void RunTranslate(v1::TranslationService::Stub* stub, Board* board, TranslateCall* call) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(kEventTimeout));
  v1::TranslateResponse response;
  board->Update([&] { call->started = true; });
  grpc::Status s =
      stub->Translate(&context, TranslateRequestFor(*call->golden, call->copies), &response);
  board->Update([&] {
    call->status = s;
    call->response = std::move(response);
    call->done = true;
  });
}

// OK with every text translated as the golden says, or empty (a failure message otherwise).
std::string CheckTranslation(const TranslateCall& call) {
  if (!call.status.ok()) return absl::StrCat("status ", Describe(call.status));
  if (call.response.translations_size() != call.copies) {
    return absl::StrCat(call.response.translations_size(), " translations for ", call.copies,
                        " texts");
  }
  for (const auto& t : call.response.translations()) {
    if (t.text() != call.golden->translation) {
      return absl::StrCat("\"", call.golden->text, "\" -> \"", t.text(), "\", expected \"",
                          call.golden->translation, "\"");
    }
  }
  return "";
}

// Each call started before the signal was either admitted (OK, and correct) or refused
// (UNAVAILABLE); anything else is a lost admitted request. Returns the number admitted.
int CheckTranslateOutcomes(const std::vector<TranslateCall>& calls) {
  int ok = 0;
  for (const TranslateCall& c : calls) {
    if (c.status.ok()) {
      ++ok;
      EXPECT_EQ(CheckTranslation(c), "");
    } else {
      EXPECT_EQ(c.status.error_code(), grpc::StatusCode::UNAVAILABLE)
          << "an admitted Translate was lost: " << Describe(c.status);
    }
  }
  return ok;
}

// --- Translation only: runs whether or not voxd links XTTS. ---

TEST(VoxdLifecycleTest, SigtermUnderTranslateLoadLosesNoAdmittedRequest) {
  const std::vector<GoldenCase> cases = GoldenCases();
  ASSERT_FALSE(cases.empty());
  ChildProcess voxd;
  const absl::Duration grace = absl::Seconds(60);
  const std::string address =
      StartVoxd(&voxd,
                {"--models", ModelsDir("translate", {kTinyNllb}), "--threads", "1",
                 "--shutdown-grace", "60"},
                "translate");
  ASSERT_FALSE(address.empty());
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto translate = v1::TranslationService::NewStub(channel);

  Board board;
  HealthWatch health(channel, &board);
  ASSERT_TRUE(board.Await([&] { return health.serving(); })) << "health never said SERVING";

  constexpr int kCalls = 24;
  std::vector<TranslateCall> calls(kCalls);
  Threads threads;
  for (int i = 0; i < kCalls; ++i) {
    calls[i].golden = &cases[i % cases.size()];
    calls[i].copies = 8;
    threads.Start([&, i] { RunTranslate(translate.get(), &board, &calls[i]); });
  }
  // Every call is on its way and the engine is answering them.
  ASSERT_TRUE(board.Await([&] {
    bool any_done = false;
    for (const auto& c : calls) {
      if (!c.started) return false;
      any_done = any_done || c.done;
    }
    return any_done;
  }));

  Terminator term(&voxd, SIGTERM, grace + absl::Seconds(60), &board);
  ASSERT_TRUE(board.Await([&] { return health.not_serving() || term.exited(); }));
  EXPECT_TRUE(board.Read([&] { return health.not_serving(); }))
      << "health never reported NOT_SERVING during the drain";
  health.Cancel();

  // New work during the drain is refused.
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline(absl::Seconds(60)));
    v1::TranslateResponse response;
    grpc::Status s =
        translate->Translate(&context, TranslateRequestFor(cases[0], 1), &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(s);
  }

  threads.JoinAll();
  term.Join();
  ASSERT_TRUE(term.code().ok()) << term.code().status() << "\n" << voxd.Stderr();
  EXPECT_EQ(*term.code(), 0) << voxd.Stderr();
  EXPECT_LT(term.drain_time(), grace) << "the drain ran into the grace deadline";

  const int ok = CheckTranslateOutcomes(calls);
  EXPECT_GE(ok, 1);
  std::printf("Translate under SIGTERM: %d of %d OK (the rest refused), drain %s\n", ok, kCalls,
              absl::FormatDuration(term.drain_time()).c_str());
  EXPECT_THAT(voxd.Stderr(), HasSubstr("SIGTERM received"));
}

#ifdef __linux__
// The pids of this process's children whose command name is `comm` (from /proc).
std::vector<int> ChildPids(const std::string& comm) {
  std::vector<int> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) state ppid ..."
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::vector<std::string> rest = absl::StrSplit(stat.substr(close + 2), ' ');
    int ppid = 0;
    if (stat.substr(open + 1, close - open - 1) == comm && rest.size() > 1 &&
        absl::SimpleAtoi(rest[1], &ppid) && ppid == ::getpid()) {
      pids.push_back(pid);
    }
  }
  return pids;
}

// A hex signal mask field ("SigBlk:", "SigCgt:") of a /proc status file.
uint64_t SignalMask(const fs::path& status, const std::string& field) {
  std::ifstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field)) {
      return std::strtoull(line.substr(field.size()).c_str(), nullptr, 16);
    }
  }
  return 0;
}

// SIGTERM must start the drain whichever thread the kernel hands it to. voxd takes it with
// sigwait on its main thread, blocking it in the threads it starts; a thread that neither blocks
// nor catches it (e.g. one a library starts before main) makes SIGTERM fatal when the kernel
// picks that thread: voxd then dies at once (exit 143), dropping every admitted call.
TEST(VoxdLifecycleTest, SigtermIsNeverFatalInAnyThread) {
  ChildProcess voxd;
  const std::string address = StartVoxd(
      &voxd, {"--models", ModelsDir("sigmask", {kTinyNllb}), "--threads", "1"}, "sigmask");
  ASSERT_FALSE(address.empty());
  const std::vector<int> pids = ChildPids("voxd");
  ASSERT_EQ(pids.size(), 1u) << "cannot find voxd in /proc";
  const fs::path proc = fs::path("/proc") / std::to_string(pids[0]);
  const uint64_t term = uint64_t{1} << (SIGTERM - 1), intr = uint64_t{1} << (SIGINT - 1);
  const uint64_t caught = SignalMask(proc / "status", "SigCgt:");
  int threads = 0;
  for (const auto& task : fs::directory_iterator(proc / "task")) {
    ++threads;
    const uint64_t blocked = SignalMask(task.path() / "status", "SigBlk:");
    std::ifstream comm_in(task.path() / "comm");
    std::string comm;
    std::getline(comm_in, comm);
    EXPECT_TRUE((blocked & term) || (caught & term))
        << "thread " << task.path().filename() << " (" << comm
        << ") neither blocks nor catches SIGTERM: the kernel may deliver it there and kill voxd";
    EXPECT_TRUE((blocked & intr) || (caught & intr))
        << "thread " << task.path().filename() << " (" << comm
        << ") neither blocks nor catches SIGINT";
  }
  EXPECT_GT(threads, 1);
  absl::StatusOr<int> code = voxd.Wait(SIGTERM, absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << voxd.Stderr();
}
#endif  // __linux__

TEST(VoxdLifecycleTest, SigintDrainsLikeSigterm) {
  ChildProcess voxd;
  const std::string address = StartVoxd(
      &voxd, {"--models", ModelsDir("sigint", {kTinyNllb}), "--threads", "1"}, "sigint");
  ASSERT_FALSE(address.empty());
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  Board board;
  HealthWatch health(channel, &board);
  ASSERT_TRUE(board.Await([&] { return health.serving(); }));
  Terminator term(&voxd, SIGINT, absl::Seconds(60), &board);
  ASSERT_TRUE(board.Await([&] { return health.not_serving() || term.exited(); }));
  EXPECT_TRUE(board.Read([&] { return health.not_serving(); }));
  health.Cancel();
  term.Join();
  ASSERT_TRUE(term.code().ok()) << term.code().status();
  EXPECT_EQ(*term.code(), 0) << voxd.Stderr();
  EXPECT_THAT(voxd.Stderr(), HasSubstr("SIGINT received"));
}

#if VOX_TEST_XTTS

// --- Translation and speech: the tiny NLLB and the tiny XTTS in one voxd. ---

// One Synthesize stream, checked for completeness: header first, PCM16 chunks contiguous in
// sequence and timestamps, summary last with the chunks' sample count.
struct SynthesizeCall {
  std::string text;
  bool header = false;  // admitted
  bool summary_seen = false;
  v1::SynthesisSummary summary;
  int64_t chunk_samples = 0;
  std::string problem;  // the first malformed thing seen in the stream
  grpc::Status status;
  bool done = false;
};

v1::SynthesizeRequest SynthesizeRequestFor(const std::string& text) {
  v1::SynthesizeRequest r;
  r.set_text(text);
  r.set_language("eng_Latn");
  r.mutable_audio()->set_encoding(v1::AUDIO_ENCODING_PCM16);
  r.mutable_options()->set_greedy(true);
  r.mutable_options()->set_seed(7);
  return r;
}

// Runs one Synthesize to the end, reporting progress on `board` into `call`.
void RunSynthesize(v1::SpeechService::Stub* stub, Board* board, SynthesizeCall* call,
                   grpc::ClientContext* context) {
  auto reader = stub->Synthesize(context, SynthesizeRequestFor(call->text));
  v1::SynthesizeResponse msg;
  int64_t next_sequence = 0;
  int64_t next_timestamp = 0;
  bool first = true;
  while (reader->Read(&msg)) {
    board->Update([&] {
      std::string problem;
      if (first != msg.has_header()) problem = "the header is not (only) the first message";
      if (call->summary_seen) problem = "a message after the summary";
      if (msg.has_header()) call->header = true;
      if (msg.has_audio()) {
        const auto& a = msg.audio();
        if (a.sequence() != next_sequence || a.timestamp_samples() != next_timestamp ||
            static_cast<int64_t>(a.data().size()) != 2 * a.num_samples()) {
          problem = absl::StrCat("chunk ", a.sequence(), " at ", a.timestamp_samples(),
                                 " with ", a.data().size(), " bytes for ", a.num_samples(),
                                 " samples; expected chunk ", next_sequence, " at ",
                                 next_timestamp);
        }
        next_sequence = a.sequence() + 1;
        next_timestamp = a.timestamp_samples() + a.num_samples();
        call->chunk_samples += a.num_samples();
      }
      if (msg.has_summary()) {
        call->summary_seen = true;
        call->summary = msg.summary();
      }
      if (!problem.empty() && call->problem.empty()) call->problem = problem;
    });
    first = false;
  }
  grpc::Status s = reader->Finish();
  board->Update([&] {
    call->status = s;
    call->done = true;
  });
}

// OK and complete, with the reference's audio, or empty (a failure message otherwise).
std::string CheckSynthesis(const SynthesizeCall& call, const SynthesizeCall& reference) {
  if (!call.status.ok()) return absl::StrCat("status ", Describe(call.status));
  if (!call.problem.empty()) return call.problem;
  if (!call.summary_seen) return "no summary";
  if (call.summary.total_samples() != call.chunk_samples) {
    return absl::StrCat("summary says ", call.summary.total_samples(), " samples, chunks carried ",
                        call.chunk_samples);
  }
  if (call.summary.total_samples() <= 0) return "no audio";
  if (call.summary.codes() != reference.summary.codes() ||
      call.summary.total_samples() != reference.summary.total_samples()) {
    return absl::StrCat(call.summary.codes(), " codes / ", call.summary.total_samples(),
                        " samples; the same request alone gave ", reference.summary.codes(),
                        " / ", reference.summary.total_samples());
  }
  return "";
}

// One SpeechTranslate session (eng_Latn -> fra_Latn, PCM16) driven by the test: it writes, and a
// reader thread records every message and checks the per-segment order.
class Session {
 public:
  Session(v1::SpeechTranslationService::Stub* stub, Board* board, int max_length)
      : board_(board) {
    context_.set_deadline(Deadline(absl::Seconds(300)));
    stream_ = stub->SpeechTranslate(&context_);
    v1::SpeechTranslateRequest config;
    config.mutable_config()->set_source_language("eng_Latn");
    config.mutable_config()->set_target_language("fra_Latn");
    config.mutable_config()->mutable_audio()->set_encoding(v1::AUDIO_ENCODING_PCM16);
    config.mutable_config()->mutable_translate_options()->set_max_length(max_length);
    config.mutable_config()->mutable_synthesis_options()->set_greedy(true);
    config.mutable_config()->mutable_synthesis_options()->set_seed(7);
    config_written_ = stream_->Write(config);
    reader_ = std::thread([this] { Read(); });
  }
  ~Session() {
    context_.TryCancel();
    reader_.join();
  }
  bool config_written() const { return config_written_; }
  // False when the stream is already closed for writing.
  bool Send(uint64_t id, const std::string& text) {
    v1::SpeechTranslateRequest r;
    r.mutable_segment()->set_segment_id(id);
    r.mutable_segment()->set_text(text);
    return stream_->Write(r);
  }
  void WritesDone() { stream_->WritesDone(); }

  struct Segment {
    bool translated = false;
    std::string translation;
    int64_t chunk_samples = 0;
    bool ended = false;
    int64_t end_samples = 0;
  };
  // Under the board's lock.
  bool header() const { return header_; }
  const std::map<uint64_t, Segment>& segments() const { return segments_; }
  bool translated(uint64_t id) const {
    auto it = segments_.find(id);
    return it != segments_.end() && it->second.translated;
  }
  const std::string& problem() const { return problem_; }
  bool done() const { return done_; }
  const grpc::Status& status() const { return status_; }

 private:
  void Read() {
    v1::SpeechTranslateResponse msg;
    bool first = true;
    int64_t next_timestamp = 0;
    std::optional<uint64_t> open;  // the segment between its translation and its segment_end
    while (stream_->Read(&msg)) {
      board_->Update([&] {
        std::string problem;
        if (first != msg.has_header()) problem = "the header is not (only) the first message";
        if (msg.has_header()) header_ = true;
        if (msg.has_translation()) {
          if (open.has_value()) problem = "a translation before the previous segment ended";
          open = msg.translation().segment_id();
          Segment& s = segments_[*open];
          s.translated = true;
          s.translation = msg.translation().text();
        }
        if (msg.has_audio()) {
          const auto& a = msg.audio();
          if (!open.has_value() || a.segment_id() != *open) {
            problem = absl::StrCat("audio for segment ", a.segment_id(), " outside it");
          } else if (a.chunk().timestamp_samples() != next_timestamp ||
                     static_cast<int64_t>(a.chunk().data().size()) != 2 * a.chunk().num_samples()) {
            problem = absl::StrCat("segment ", a.segment_id(), ": chunk at ",
                                   a.chunk().timestamp_samples(), ", expected ", next_timestamp);
          } else {
            segments_[*open].chunk_samples += a.chunk().num_samples();
          }
          next_timestamp = a.chunk().timestamp_samples() + a.chunk().num_samples();
        }
        if (msg.has_segment_end()) {
          if (!open.has_value() || msg.segment_end().segment_id() != *open) {
            problem = absl::StrCat("segment_end for ", msg.segment_end().segment_id(),
                                   " without its translation");
          } else {
            segments_[*open].ended = true;
            segments_[*open].end_samples = msg.segment_end().total_samples();
            open.reset();
          }
        }
        if (!problem.empty() && problem_.empty()) problem_ = problem;
      });
      first = false;
    }
    grpc::Status s = stream_->Finish();
    board_->Update([&] {
      status_ = s;
      done_ = true;
    });
  }

  Board* const board_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse>>
      stream_;
  bool config_written_ = false;
  std::thread reader_;
  bool header_ = false;
  std::map<uint64_t, Segment> segments_;
  std::string problem_;
  bool done_ = false;
  grpc::Status status_;
};

// Texts for the tiny XTTS: long enough that a batch of them keeps the engine busy past the
// signal.
std::vector<std::string> SpeechTexts() {
  return {"The quick brown fox jumps over the lazy dog, and then it runs far away into the woods.",
          "Please remember to bring your umbrella tomorrow because it is going to rain all day.",
          "Our meeting has been moved to the large room on the third floor next to the kitchen."};
}

class VoxdSpeechLifecycleTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& name, int grace_seconds) {
    address_ = StartVoxd(&voxd_,
                         {"--models", ModelsDir(name, {kTinyNllb, kTinyXtts}), "--threads", "1",
                          "--shutdown-grace", std::to_string(grace_seconds)},
                         name);
    ASSERT_FALSE(address_.empty());
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    translate_ = v1::TranslationService::NewStub(channel_);
    speech_ = v1::SpeechService::NewStub(channel_);
    speech_translate_ = v1::SpeechTranslationService::NewStub(channel_);
  }

  ChildProcess voxd_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TranslationService::Stub> translate_;
  std::unique_ptr<v1::SpeechService::Stub> speech_;
  std::unique_ptr<v1::SpeechTranslationService::Stub> speech_translate_;
};

TEST_F(VoxdSpeechLifecycleTest, SigtermUnderLoadLosesNoAdmittedRequest) {
  const std::vector<GoldenCase> cases = GoldenCases();
  std::vector<const GoldenCase*> eng_fra;
  for (const GoldenCase& c : cases) {
    if (c.source == "eng_Latn" && c.target == "fra_Latn" && c.max_length == cases[0].max_length) {
      eng_fra.push_back(&c);
    }
  }
  ASSERT_GE(eng_fra.size(), 2u) << "the session needs eng_Latn -> fra_Latn goldens";
  const absl::Duration grace = absl::Seconds(60);
  StartServer("load", 60);
  Board board;

  // References: each speech text alone, before any load.
  const std::vector<std::string> texts = SpeechTexts();
  std::vector<SynthesizeCall> references(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    references[i].text = texts[i];
    grpc::ClientContext context;
    context.set_deadline(Deadline(kEventTimeout));
    RunSynthesize(speech_.get(), &board, &references[i], &context);
    ASSERT_TRUE(references[i].status.ok()) << Describe(references[i].status);
    ASSERT_GT(references[i].summary.total_samples(), 0);
  }

  HealthWatch health(channel_, &board);
  ASSERT_TRUE(board.Await([&] { return health.serving(); })) << "health never said SERVING";

  // The session's segments, first alone (half-closed, so it ends OK) for reference.
  const std::vector<const GoldenCase*> before = {eng_fra[0], eng_fra[1], eng_fra[0]};
  std::map<uint64_t, Session::Segment> reference_segments;
  {
    Session reference(speech_translate_.get(), &board, cases[0].max_length);
    for (size_t i = 0; i < before.size(); ++i) ASSERT_TRUE(reference.Send(i, before[i]->text));
    reference.WritesDone();
    ASSERT_TRUE(board.Await([&] { return reference.done(); }));
    board.Read([&] {
      EXPECT_TRUE(reference.status().ok()) << Describe(reference.status());
      EXPECT_EQ(reference.problem(), "");
      reference_segments = reference.segments();
      return 0;
    });
    ASSERT_EQ(reference_segments.size(), before.size());
    int64_t samples = 0;
    for (const auto& [id, seg] : reference_segments) samples += seg.end_samples;
    ASSERT_GT(samples, 0) << "the reference session spoke nothing";
  }

  // The open session: three segments before the signal; the first one's synthesis has begun
  // (its translation came back) before the load below queues behind it.
  Session session(speech_translate_.get(), &board, cases[0].max_length);
  ASSERT_TRUE(session.config_written());
  for (size_t i = 0; i < before.size(); ++i) ASSERT_TRUE(session.Send(i, before[i]->text));
  ASSERT_TRUE(board.Await([&] { return session.translated(0) || session.done(); }));

  // The load: Translate and Synthesize calls, all started before the signal.
  constexpr int kTranslateCalls = 16;
  constexpr int kSynthesizeCalls = 8;
  std::vector<TranslateCall> translations(kTranslateCalls);
  std::vector<SynthesizeCall> syntheses(kSynthesizeCalls);
  std::vector<std::unique_ptr<grpc::ClientContext>> synth_contexts;
  Threads threads;
  for (int i = 0; i < kTranslateCalls; ++i) {
    translations[i].golden = &cases[i % cases.size()];
    translations[i].copies = 4;
    threads.Start([&, i] { RunTranslate(translate_.get(), &board, &translations[i]); });
  }
  for (int i = 0; i < kSynthesizeCalls; ++i) {
    syntheses[i].text = texts[i % texts.size()];
    synth_contexts.push_back(std::make_unique<grpc::ClientContext>());
    synth_contexts.back()->set_deadline(Deadline(absl::Seconds(300)));
    threads.Start([&, i] {
      RunSynthesize(speech_.get(), &board, &syntheses[i], synth_contexts[i].get());
    });
  }

  // Admitted before the signal: every Synthesize has its header (they queue behind the session's
  // first segment), every Translate is on its way.
  ASSERT_TRUE(board.Await([&] {
    for (const auto& s : syntheses) {
      if (!s.header && !s.done) return false;
    }
    for (const auto& t : translations) {
      if (!t.started) return false;
    }
    return true;
  })) << "the load never got going";
  std::vector<bool> admitted(kSynthesizeCalls);
  int unfinished_at_signal = 0;
  board.Read([&] {
    for (int i = 0; i < kSynthesizeCalls; ++i) {
      admitted[i] = syntheses[i].header;
      if (!syntheses[i].done) ++unfinished_at_signal;
    }
    return 0;
  });

  Terminator term(&voxd_, SIGTERM, grace + absl::Seconds(60), &board);

  // Health says NOT_SERVING while admitted work is still running.
  ASSERT_TRUE(board.Await([&] { return health.not_serving() || term.exited(); }));
  ASSERT_TRUE(board.Read([&] { return health.not_serving(); }))
      << "health never reported NOT_SERVING during the drain";
  health.Cancel();

  // A health Check during the drain (what a Kubernetes probe does) answers NOT_SERVING
  // (docs/operations.md: "during the drain health answers NOT_SERVING until the port closes").
  {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(Deadline(absl::Seconds(60)));
    grpc::health::v1::HealthCheckRequest request;
    HealthCheckResponse response;
    grpc::Status s = stub->Check(&context, request, &response);
    EXPECT_TRUE(s.ok()) << "health Check during the drain: " << Describe(s) << ", "
                        << (absl::Now() - term.sent()) << " into the drain";
    if (s.ok()) {
      EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
    }
  }

  // New calls during the drain get UNAVAILABLE: each service, including a new session.
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline(absl::Seconds(60)));
    v1::TranslateResponse response;
    const absl::Time start = absl::Now();
    grpc::Status s = translate_->Translate(&context, TranslateRequestFor(cases[0], 1), &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
        << "Translate: " << Describe(s) << " after " << (absl::Now() - start) << ", "
        << (absl::Now() - term.sent()) << " into the drain";
  }
  {
    SynthesizeCall late;
    late.text = texts[0];
    grpc::ClientContext context;
    context.set_deadline(Deadline(absl::Seconds(60)));
    RunSynthesize(speech_.get(), &board, &late, &context);
    EXPECT_EQ(late.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << "Synthesize: " << Describe(late.status) << ", " << (absl::Now() - term.sent())
        << " into the drain";
    EXPECT_FALSE(late.header) << "a Synthesize started during the drain was admitted";
  }
  {
    Session late(speech_translate_.get(), &board, cases[0].max_length);
    late.Send(0, eng_fra[0]->text);
    late.WritesDone();
    ASSERT_TRUE(board.Await([&] { return late.done(); }));
    board.Read([&] {
      EXPECT_EQ(late.status().error_code(), grpc::StatusCode::UNAVAILABLE)
          << "SpeechTranslate: " << Describe(late.status()) << ", " << (absl::Now() - term.sent())
          << " into the drain";
      EXPECT_TRUE(late.segments().empty()) << "a session opened during the drain was served";
      return 0;
    });
  }

  // A segment sent on the open session after the signal is refused; the ones before it finish.
  constexpr uint64_t kLateSegment = 99;
  session.Send(kLateSegment, eng_fra[1]->text);
  ASSERT_TRUE(board.Await([&] { return session.done(); }))
      << "the open session was never ended by the server";

  threads.JoinAll();
  term.Join();

  // The process: exit 0 before the grace ran out.
  ASSERT_TRUE(term.code().ok()) << term.code().status() << "\n" << voxd_.Stderr();
  EXPECT_EQ(*term.code(), 0) << voxd_.Stderr();
  EXPECT_LT(term.drain_time(), grace)
      << "the drain ran into the grace deadline (something held it open)";
  EXPECT_THAT(voxd_.Stderr(), HasSubstr("SIGTERM received"));

  // Synthesize: every admitted call is complete and identical to the same request alone.
  EXPECT_GE(unfinished_at_signal, 1) << "no Synthesize was still running at the signal; the "
                                        "drain was not exercised";
  for (int i = 0; i < kSynthesizeCalls; ++i) {
    SCOPED_TRACE(absl::StrCat("Synthesize ", i));
    ASSERT_TRUE(admitted[i]) << "ended before its header: " << Describe(syntheses[i].status);
    EXPECT_EQ(CheckSynthesis(syntheses[i], references[i % texts.size()]), "");
  }

  // Translate: OK and correct, or refused; never lost.
  const int translate_ok = CheckTranslateOutcomes(translations);
  EXPECT_GE(translate_ok, 1);

  // The session: the three segments sent before the signal complete (translation, audio,
  // segment_end), in order; the late one is refused with UNAVAILABLE naming it.
  board.Read([&] {
    EXPECT_EQ(session.problem(), "");
    EXPECT_TRUE(session.header());
    for (size_t i = 0; i < before.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("segment ", i));
      auto it = session.segments().find(i);
      EXPECT_NE(it, session.segments().end()) << "an admitted segment got no answer";
      if (it == session.segments().end()) continue;
      EXPECT_EQ(it->second.translation, before[i]->translation);
      EXPECT_TRUE(it->second.ended) << "no segment_end";
      EXPECT_EQ(it->second.end_samples, it->second.chunk_samples);
      EXPECT_EQ(it->second.end_samples, reference_segments[i].end_samples)
          << "the same segment in a session alone";
    }
    EXPECT_EQ(session.segments().count(kLateSegment), 0u)
        << "a segment sent during the drain was answered";
    EXPECT_EQ(session.status().error_code(), grpc::StatusCode::UNAVAILABLE)
        << Describe(session.status());
    EXPECT_THAT(session.status().error_message(), HasSubstr("shutting down"));
    EXPECT_THAT(session.status().error_message(), HasSubstr(std::to_string(kLateSegment)));
    return 0;
  });
  std::printf("drain %s; %d Synthesize running at the signal, %d Translate OK\n",
              absl::FormatDuration(term.drain_time()).c_str(), unfinished_at_signal,
              translate_ok);
}

// A session with nothing left to answer is not work: the drain ends it (UNAVAILABLE, so the
// client goes on elsewhere) instead of waiting out the grace for it.
TEST_F(VoxdSpeechLifecycleTest, AnIdleSessionDoesNotHoldTheDrain) {
  const std::vector<GoldenCase> cases = GoldenCases();
  const absl::Duration grace = absl::Seconds(30);
  StartServer("idle-session", 30);
  Board board;
  Session session(speech_translate_.get(), &board, cases[0].max_length);
  ASSERT_TRUE(session.Send(0, "Hello, how are you today?"));
  ASSERT_TRUE(board.Await([&] {
    auto it = session.segments().find(0);
    return session.done() || (it != session.segments().end() && it->second.ended);
  }));

  Terminator term(&voxd_, SIGTERM, grace + absl::Seconds(60), &board);
  ASSERT_TRUE(board.Await([&] { return session.done(); }));
  term.Join();
  ASSERT_TRUE(term.code().ok()) << term.code().status();
  EXPECT_EQ(*term.code(), 0) << voxd_.Stderr();
  EXPECT_LT(term.drain_time(), grace) << "the idle session held the drain until the grace ran out";
  board.Read([&] {
    EXPECT_EQ(session.problem(), "");
    EXPECT_EQ(session.status().error_code(), grpc::StatusCode::UNAVAILABLE)
        << Describe(session.status());
    EXPECT_THAT(session.status().error_message(), HasSubstr("shutting down"));
    return 0;
  });
}

// With a short grace, a call still running when it ends is cancelled, and voxd still exits 0.
// The call is a Synthesize whose client stops reading after the header, on a channel whose
// HTTP/2 window is 16 KiB and does not grow: the server cannot send the rest of the PCM16 audio
// (hundreds of KiB) nor, after it, the summary, so the call cannot finish on its own.
TEST_F(VoxdSpeechLifecycleTest, ShortGraceCancelsWhatStillRunsAndExitsZero) {
  StartServer("short-grace", 1);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 10);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto stalled = v1::SpeechService::NewStub(
      grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
  auto reader_context = std::make_unique<grpc::ClientContext>();
  reader_context->set_deadline(Deadline(absl::Seconds(300)));
  std::string text;
  for (int i = 0; i < 6; ++i) text += SpeechTexts()[i % 3] + " ";
  auto reader = stalled->Synthesize(reader_context.get(), SynthesizeRequestFor(text));
  v1::SynthesizeResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_TRUE(msg.has_header()) << "admitted: its header arrived";

  Board board;
  Terminator term(&voxd_, SIGTERM, absl::Seconds(120), &board);
  term.Join();
  ASSERT_TRUE(term.code().ok()) << term.code().status() << "\n" << voxd_.Stderr();
  EXPECT_EQ(*term.code(), 0) << voxd_.Stderr();
  EXPECT_GE(term.drain_time(), absl::Seconds(1)) << "the grace was not granted";
  EXPECT_LT(term.drain_time(), absl::Seconds(60)) << "the grace was not enforced";

  // The call did not complete: it ends with an error, without its summary.
  bool summary = false;
  while (reader->Read(&msg)) summary = summary || msg.has_summary();
  const grpc::Status s = reader->Finish();
  EXPECT_FALSE(summary);
  EXPECT_THAT(s.error_code(), AnyOf(grpc::StatusCode::CANCELLED, grpc::StatusCode::UNAVAILABLE))
      << Describe(s);
  // The access log tells the same: the call was cancelled, not served (its sequence may have
  // ended before the deadline, but its audio and summary never reached the client).
  EXPECT_THAT(voxd_.Stderr(), HasSubstr("rpc=/vox.v1.SpeechService/Synthesize status=CANCELLED"));
  EXPECT_THAT(voxd_.Stderr(), Not(HasSubstr("rpc=/vox.v1.SpeechService/Synthesize status=OK")));
}

#endif  // VOX_TEST_XTTS

}  // namespace
}  // namespace vox
