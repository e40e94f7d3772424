#ifndef VOX_BENCH_VOXBENCH_LOAD_RUNNER_H_
#define VOX_BENCH_VOXBENCH_LOAD_RUNNER_H_

// Drives one load test against one gRPC channel with the async (callback) client API: one
// dispatcher thread (the caller of Run) starts calls while fewer than `concurrency` are in
// flight and the optional rate allows; gRPC's own threads run the completions. No thread
// blocks per request.
//
// What is measured, per call (all durations in nanoseconds, from a monotonic clock):
//   latency            from just before the call starts to the final status
//   time to first audio  (synthesize, speech-translate) from call start to the first audio
//                      message that carries samples (num_samples > 0: Ogg header pages,
//                      which carry none, do not count)
//   audio gaps         between consecutive audio messages with samples (within one segment
//                      for speech-translate)
//   segment figures    (speech-translate) from handing a segment to gRPC to its first audio
//                      and to its segment_end, and the segment interval (SegmentIntervals in
//                      latency_stats.h: what the segment added to the session's wall time)
//                      (translate-synthesize) the same, with "handing over" = starting the
//                      segment's Translate and "end" = its Synthesize's final status; the whole
//                      sequence shares one deadline (--deadline), as a session does
// Thread-safety: Run is called once, from one thread. Progress() may be called from any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/voxbench/options.h"

namespace vox::bench {

struct CallResult {
  absl::Time timestamp;  // wall-clock start, for the report's details
  int64_t latency_nanos = 0;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string error_message;
  // Streaming calls; -1 = no audio arrived.
  int64_t time_to_first_audio_nanos = -1;
  std::vector<int64_t> audio_gaps_nanos;
  std::vector<int64_t> segment_time_to_first_audio_nanos;
  std::vector<int64_t> segment_latency_nanos;
  std::vector<int64_t> segment_interval_nanos;
  // Segmented calls: what voxd reported per segment, by stage ("queue", "translation",
  // "synthesis"), in nanoseconds. speech-translate: the segment_end timings (queue_seconds,
  // translation_seconds, synthesis_seconds); translate-synthesize: TranslateResponse's
  // queue_seconds and compute_seconds, and the SynthesisSummary's synthesis_seconds.
  std::map<std::string, std::vector<int64_t>> segment_server_nanos;
  int64_t audio_messages = 0;
  int64_t audio_samples = 0;
  int sample_rate_hz = 0;  // from the stream's header; 0 = none seen
  int64_t segments_done = 0;
};

enum class EndReason { kNormal, kTimeout };  // total reached / duration reached

struct RunResult {
  absl::Time start;
  int64_t total_nanos = 0;  // from the first start to the last completion
  EndReason end_reason = EndReason::kNormal;
  bool connected = false;  // the channel was READY before the first call
  std::vector<CallResult> calls;  // in completion order
};

struct ProgressSnapshot {
  int64_t started = 0;
  int64_t completed = 0;
  int64_t errors = 0;
  int64_t in_flight = 0;
  absl::Duration elapsed;
};

class LoadRunner {
 public:
  // `plan` must hold at least one request for `options.call`. `on_progress` (may be empty) is
  // called from Run's thread about once a second and once at the end.
  LoadRunner(const BenchOptions& options, const RequestPlan& plan,
             std::shared_ptr<grpc::Channel> channel,
             std::function<void(const ProgressSnapshot&, bool final)> on_progress);
  ~LoadRunner();
  LoadRunner(const LoadRunner&) = delete;
  LoadRunner& operator=(const LoadRunner&) = delete;

  // Waits up to options.connect_timeout for the channel (stops early on TRANSIENT_FAILURE:
  // the calls then fail fast with UNAVAILABLE and are counted), runs, and returns every call's
  // result once the last one finished.
  RunResult Run();

  // Called by the call objects when a call ends (any thread).
  void Complete(CallResult result);

 private:
  class TranslateCall;
  class SynthesizeCall;
  class SpeechTranslateCall;
  class TranslateSynthesizeCall;
  class SynthesizeStage;

  void StartCall(int64_t index);
  ProgressSnapshot Snapshot(absl::Time start_mono) const;

  const BenchOptions options_;
  const RequestPlan& plan_;
  std::shared_ptr<grpc::Channel> channel_;
  std::function<void(const ProgressSnapshot&, bool)> on_progress_;
  struct Stubs;
  std::unique_ptr<Stubs> stubs_;

  mutable absl::Mutex mu_;
  absl::CondVar room_;  // signalled when a call completes
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<CallResult> results_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> started_{0};
  std::atomic<int64_t> completed_{0};
  std::atomic<int64_t> errors_{0};
};

// The canonical upper-case name of a gRPC status code ("OK", "UNAVAILABLE", ...).
std::string StatusCodeName(grpc::StatusCode code);
// The name ghz uses (Go's codes.Code String(): "OK", "Unavailable", "DeadlineExceeded", ...).
const char* GhzStatusName(grpc::StatusCode code);

}  // namespace vox::bench

#endif  // VOX_BENCH_VOXBENCH_LOAD_RUNNER_H_
