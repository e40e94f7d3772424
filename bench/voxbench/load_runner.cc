#include "bench/voxbench/load_runner.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/voxbench/latency_stats.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/speech_translation.grpc.pb.h"
#include "vox/v1/translation.grpc.pb.h"

namespace vox::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t NanosBetween(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

int64_t SecondsToNanos(double seconds) { return static_cast<int64_t>(seconds * 1e9 + 0.5); }

}  // namespace

struct LoadRunner::Stubs {
  std::unique_ptr<v1::TranslationService::Stub> translate;
  std::unique_ptr<v1::SpeechService::Stub> speech;
  std::unique_ptr<v1::SpeechTranslationService::Stub> speech_translate;
};

// Shared by the three call kinds: context set-up and the final bookkeeping.
namespace {

void PrepareContext(const BenchOptions& options, int64_t index, grpc::ClientContext* ctx) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + options.deadline));
  ctx->AddMetadata("x-request-id", absl::StrCat("voxbench-", index));
}

void Finish(const grpc::Status& status, SteadyClock::time_point start, CallResult* result) {
  result->latency_nanos = NanosBetween(start, SteadyClock::now());
  result->code = status.error_code();
  if (!status.ok()) result->error_message = status.error_message();
}

}  // namespace

// Unary Translate through stub->async(): the callback deletes the call.
class LoadRunner::TranslateCall {
 public:
  TranslateCall(LoadRunner* runner, const v1::TranslateRequest* request, int64_t index)
      : runner_(runner), request_(request) {
    PrepareContext(runner->options_, index, &ctx_);
  }
  void Start() {
    result_.timestamp = absl::Now();
    start_ = SteadyClock::now();
    runner_->stubs_->translate->async()->Translate(
        &ctx_, request_, &response_, [this](grpc::Status status) { OnDone(status); });
  }

 private:
  void OnDone(const grpc::Status& status) {
    Finish(status, start_, &result_);
    LoadRunner* runner = runner_;
    CallResult result = std::move(result_);
    delete this;
    runner->Complete(std::move(result));
  }

  LoadRunner* const runner_;
  const v1::TranslateRequest* const request_;
  grpc::ClientContext ctx_;
  v1::TranslateResponse response_;
  SteadyClock::time_point start_;
  CallResult result_;
};

// Server-streaming Synthesize as a ClientReadReactor; deletes itself in OnDone.
class LoadRunner::SynthesizeCall final : public grpc::ClientReadReactor<v1::SynthesizeResponse> {
 public:
  SynthesizeCall(LoadRunner* runner, const v1::SynthesizeRequest* request, int64_t index)
      : runner_(runner), request_(request) {
    PrepareContext(runner->options_, index, &ctx_);
  }
  void Start() {
    result_.timestamp = absl::Now();
    start_ = SteadyClock::now();
    runner_->stubs_->speech->async()->Synthesize(&ctx_, request_, this);
    StartRead(&response_);
    StartCall();
  }

  // Reads are sequential (one in flight), so no lock is needed here.
  void OnReadDone(bool ok) override {
    if (!ok) return;  // end of stream; OnDone follows
    const int64_t now = NanosBetween(start_, SteadyClock::now());  // since the call started
    if (response_.has_header()) {
      result_.sample_rate_hz = response_.header().sample_rate_hz();
    } else if (response_.has_audio() && response_.audio().num_samples() > 0) {
      ++result_.audio_messages;
      result_.audio_samples += response_.audio().num_samples();
      if (result_.time_to_first_audio_nanos < 0) {
        result_.time_to_first_audio_nanos = now;
      } else {
        result_.audio_gaps_nanos.push_back(now - last_audio_nanos_);
      }
      last_audio_nanos_ = now;
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    Finish(status, start_, &result_);
    LoadRunner* runner = runner_;
    CallResult result = std::move(result_);
    delete this;
    runner->Complete(std::move(result));
  }

 private:
  LoadRunner* const runner_;
  const v1::SynthesizeRequest* const request_;
  grpc::ClientContext ctx_;
  v1::SynthesizeResponse response_;
  SteadyClock::time_point start_;
  int64_t last_audio_nanos_ = 0;  // since start_
  CallResult result_;
};

// Bidirectional SpeechTranslate as a ClientBidiReactor: writes the session's messages one at a
// time (one write in flight), half-closes, and reads until the end. Reads and writes complete
// on different threads, so the per-segment send times are guarded.
class LoadRunner::SpeechTranslateCall final
    : public grpc::ClientBidiReactor<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse> {
 public:
  SpeechTranslateCall(LoadRunner* runner, const std::vector<v1::SpeechTranslateRequest>* session,
                      int64_t index)
      : runner_(runner), session_(session) {
    PrepareContext(runner->options_, index, &ctx_);
  }
  void Start() {
    {
      absl::MutexLock lock(&mu_);  // no reaction runs before StartCall; the lock documents it
      result_.timestamp = absl::Now();
    }
    start_ = SteadyClock::now();
    runner_->stubs_->speech_translate->async()->SpeechTranslate(&ctx_, this);
    WriteNext();
    StartRead(&response_);
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();  // !ok: the call is over; OnDone follows
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    const SteadyClock::time_point now = SteadyClock::now();
    absl::MutexLock lock(&mu_);
    switch (response_.payload_case()) {
      case v1::SpeechTranslateResponse::kHeader:
        result_.sample_rate_hz = response_.header().sample_rate_hz();
        break;
      case v1::SpeechTranslateResponse::kAudio: {
        const v1::SegmentAudio& audio = response_.audio();
        if (audio.chunk().num_samples() <= 0) break;
        ++result_.audio_messages;
        result_.audio_samples += audio.chunk().num_samples();
        if (result_.time_to_first_audio_nanos < 0) {
          result_.time_to_first_audio_nanos = NanosBetween(start_, now);
        }
        Segment& seg = segments_[audio.segment_id()];
        if (!seg.had_audio) {
          seg.had_audio = true;
          if (seg.sent) {
            result_.segment_time_to_first_audio_nanos.push_back(NanosBetween(seg.sent_at, now));
          }
        } else {
          result_.audio_gaps_nanos.push_back(NanosBetween(seg.last_audio, now));
        }
        seg.last_audio = now;
        break;
      }
      case v1::SpeechTranslateResponse::kSegmentEnd: {
        Segment& seg = segments_[response_.segment_end().segment_id()];
        if (seg.sent) {
          result_.segment_latency_nanos.push_back(NanosBetween(seg.sent_at, now));
          spans_.push_back({NanosBetween(start_, seg.sent_at), NanosBetween(start_, now)});
        }
        if (response_.segment_end().has_timings()) {
          const v1::SegmentTimings& t = response_.segment_end().timings();
          result_.segment_server_nanos["queue"].push_back(SecondsToNanos(t.queue_seconds()));
          result_.segment_server_nanos["translation"].push_back(
              SecondsToNanos(t.translation_seconds()));
          result_.segment_server_nanos["synthesis"].push_back(
              SecondsToNanos(t.synthesis_seconds()));
        }
        ++result_.segments_done;
        break;
      }
      default:
        break;
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    CallResult result;
    {
      absl::MutexLock lock(&mu_);
      Finish(status, start_, &result_);
      result_.segment_interval_nanos = SegmentIntervals(spans_);
      result = std::move(result_);
    }
    LoadRunner* runner = runner_;
    delete this;
    runner->Complete(std::move(result));
  }

 private:
  struct Segment {
    bool sent = false;
    bool had_audio = false;
    SteadyClock::time_point sent_at;
    SteadyClock::time_point last_audio;
  };

  void WriteNext() {
    if (next_ >= session_->size()) {
      StartWritesDone();
      return;
    }
    const v1::SpeechTranslateRequest& message = (*session_)[next_++];
    if (message.has_segment()) {
      absl::MutexLock lock(&mu_);
      Segment& seg = segments_[message.segment().segment_id()];
      if (!seg.sent) {
        seg.sent = true;
        seg.sent_at = SteadyClock::now();
      }
    }
    StartWrite(&message);
  }

  LoadRunner* const runner_;
  const std::vector<v1::SpeechTranslateRequest>* const session_;
  grpc::ClientContext ctx_;
  v1::SpeechTranslateResponse response_;
  SteadyClock::time_point start_;
  size_t next_ = 0;  // only touched by Start and OnWriteDone (writes are sequential)
  absl::Mutex mu_;
  std::map<uint64_t, Segment> segments_ ABSL_GUARDED_BY(mu_);
  std::vector<SegmentSpan> spans_ ABSL_GUARDED_BY(mu_);
  CallResult result_ ABSL_GUARDED_BY(mu_);
};

namespace {

// What one Synthesize stage of a translate-synthesize call saw. Times in nanoseconds since the
// translate-synthesize call started.
struct StageAudio {
  int64_t first_audio_nanos = -1;
  std::vector<int64_t> gaps_nanos;
  int64_t messages = 0;
  int64_t samples = 0;
  int sample_rate_hz = 0;
  double server_synthesis_seconds = -1;  // from the summary; -1 = none came
};

}  // namespace

// One Synthesize call of a translate-synthesize sequence: a ClientReadReactor that owns its
// request and context, reports to `done` and deletes itself in OnDone.
class LoadRunner::SynthesizeStage final
    : public grpc::ClientReadReactor<v1::SynthesizeResponse> {
 public:
  using Done = std::function<void(const grpc::Status&, StageAudio)>;
  SynthesizeStage(v1::SynthesizeRequest request, SteadyClock::time_point call_start,
                  std::chrono::system_clock::time_point deadline, const std::string& request_id,
                  Done done)
      : request_(std::move(request)), call_start_(call_start), done_(std::move(done)) {
    ctx_.set_deadline(deadline);
    ctx_.AddMetadata("x-request-id", request_id);
  }
  void Start(v1::SpeechService::Stub* stub) {
    stub->async()->Synthesize(&ctx_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    const int64_t now = NanosBetween(call_start_, SteadyClock::now());
    if (response_.has_header()) {
      audio_.sample_rate_hz = response_.header().sample_rate_hz();
    } else if (response_.has_summary()) {
      audio_.server_synthesis_seconds = response_.summary().synthesis_seconds();
    } else if (response_.has_audio() && response_.audio().num_samples() > 0) {
      ++audio_.messages;
      audio_.samples += response_.audio().num_samples();
      if (audio_.first_audio_nanos < 0) {
        audio_.first_audio_nanos = now;
      } else {
        audio_.gaps_nanos.push_back(now - last_audio_nanos_);
      }
      last_audio_nanos_ = now;
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    Done done = std::move(done_);
    StageAudio audio = std::move(audio_);
    delete this;
    done(status, std::move(audio));
  }

 private:
  v1::SynthesizeRequest request_;
  const SteadyClock::time_point call_start_;
  Done done_;
  grpc::ClientContext ctx_;
  v1::SynthesizeResponse response_;
  int64_t last_audio_nanos_ = 0;
  StageAudio audio_;
};

// translate-synthesize: for each segment of the session, Translate (unary) then Synthesize of
// the translation, the next segment starting when the previous Synthesize ended. Stages run one
// at a time, each callback starting the next, so the state needs no lock (gRPC orders a call's
// completion after its start). The first failed stage ends the call with its status. An empty
// translation is answered like SpeechTranslate answers an empty segment: no audio, no
// Synthesize call (voxd would refuse empty text).
class LoadRunner::TranslateSynthesizeCall {
 public:
  TranslateSynthesizeCall(LoadRunner* runner,
                          const std::vector<v1::SpeechTranslateRequest>* session, int64_t index)
      : runner_(runner),
        session_(session),
        request_id_(absl::StrCat("voxbench-", index)),
        config_(session->front().config()) {}

  void Start() {
    result_.timestamp = absl::Now();
    start_ = SteadyClock::now();
    deadline_ = absl::ToChronoTime(absl::Now() + runner_->options_.deadline);
    next_ = 1;  // message 0 is the config
    NextSegment();
  }

 private:
  void NextSegment() {
    while (next_ < session_->size() && !(*session_)[next_].has_segment()) ++next_;
    if (next_ >= session_->size()) {
      End(grpc::Status::OK);
      return;
    }
    const v1::TextSegment& segment = (*session_)[next_++].segment();
    translate_request_.Clear();
    translate_request_.add_texts(segment.text());
    translate_request_.set_source_language(config_.source_language());
    translate_request_.set_target_language(config_.target_language());
    if (config_.has_translate_options()) {
      *translate_request_.mutable_options() = config_.translate_options();
    }
    translate_request_.set_priority(config_.priority());
    translate_response_.Clear();
    translate_ctx_ = std::make_unique<grpc::ClientContext>();
    translate_ctx_->set_deadline(deadline_);
    translate_ctx_->AddMetadata("x-request-id", request_id_);
    segment_sent_ = SteadyClock::now();
    runner_->stubs_->translate->async()->Translate(
        translate_ctx_.get(), &translate_request_, &translate_response_,
        [this](grpc::Status status) { OnTranslated(status); });
  }

  void OnTranslated(const grpc::Status& status) {
    if (!status.ok()) {
      End(status);
      return;
    }
    result_.segment_server_nanos["queue"].push_back(
        SecondsToNanos(translate_response_.queue_seconds()));
    result_.segment_server_nanos["translation"].push_back(
        SecondsToNanos(translate_response_.compute_seconds()));
    std::vector<std::string> texts;
    for (const v1::Translation& t : translate_response_.translations()) {
      if (!t.text().empty()) texts.push_back(t.text());
    }
    if (texts.empty()) {
      SegmentDone(StageAudio{});
      return;
    }
    v1::SynthesizeRequest request;
    request.set_text(absl::StrJoin(texts, " "));
    request.set_language(config_.target_language());
    request.set_voice(config_.voice());
    if (config_.has_audio()) *request.mutable_audio() = config_.audio();
    if (config_.has_synthesis_options()) *request.mutable_options() = config_.synthesis_options();
    request.set_priority(config_.priority());
    auto* stage = new SynthesizeStage(
        std::move(request), start_, deadline_, request_id_,
        [this](const grpc::Status& s, StageAudio audio) { OnSynthesized(s, std::move(audio)); });
    stage->Start(runner_->stubs_->speech.get());
  }

  void OnSynthesized(const grpc::Status& status, StageAudio audio) {
    if (!status.ok()) {
      Absorb(audio);
      End(status);
      return;
    }
    SegmentDone(std::move(audio));
  }

  void Absorb(const StageAudio& audio) {
    if (audio.sample_rate_hz > 0) result_.sample_rate_hz = audio.sample_rate_hz;
    result_.audio_messages += audio.messages;
    result_.audio_samples += audio.samples;
    result_.audio_gaps_nanos.insert(result_.audio_gaps_nanos.end(), audio.gaps_nanos.begin(),
                                    audio.gaps_nanos.end());
    if (audio.first_audio_nanos >= 0 && result_.time_to_first_audio_nanos < 0) {
      result_.time_to_first_audio_nanos = audio.first_audio_nanos;
    }
  }

  void SegmentDone(StageAudio audio) {
    const int64_t sent = NanosBetween(start_, segment_sent_);
    const int64_t end = NanosBetween(start_, SteadyClock::now());
    Absorb(audio);
    if (audio.server_synthesis_seconds >= 0) {
      result_.segment_server_nanos["synthesis"].push_back(
          SecondsToNanos(audio.server_synthesis_seconds));
    }
    if (audio.first_audio_nanos >= 0) {
      result_.segment_time_to_first_audio_nanos.push_back(audio.first_audio_nanos - sent);
    }
    result_.segment_latency_nanos.push_back(end - sent);
    spans_.push_back({sent, end});
    ++result_.segments_done;
    NextSegment();
  }

  void End(const grpc::Status& status) {
    Finish(status, start_, &result_);
    result_.segment_interval_nanos = SegmentIntervals(spans_);
    LoadRunner* runner = runner_;
    CallResult result = std::move(result_);
    delete this;
    runner->Complete(std::move(result));
  }

  LoadRunner* const runner_;
  const std::vector<v1::SpeechTranslateRequest>* const session_;
  const std::string request_id_;
  const v1::SpeechTranslateConfig config_;
  SteadyClock::time_point start_;
  std::chrono::system_clock::time_point deadline_;
  size_t next_ = 1;
  std::unique_ptr<grpc::ClientContext> translate_ctx_;
  v1::TranslateRequest translate_request_;
  v1::TranslateResponse translate_response_;
  SteadyClock::time_point segment_sent_;
  std::vector<SegmentSpan> spans_;
  CallResult result_;
};

LoadRunner::LoadRunner(const BenchOptions& options, const RequestPlan& plan,
                       std::shared_ptr<grpc::Channel> channel,
                       std::function<void(const ProgressSnapshot&, bool)> on_progress)
    : options_(options),
      plan_(plan),
      channel_(std::move(channel)),
      on_progress_(std::move(on_progress)),
      stubs_(std::make_unique<Stubs>()) {
  stubs_->translate = v1::TranslationService::NewStub(channel_);
  stubs_->speech = v1::SpeechService::NewStub(channel_);
  stubs_->speech_translate = v1::SpeechTranslationService::NewStub(channel_);
}

LoadRunner::~LoadRunner() = default;

void LoadRunner::StartCall(int64_t index) {
  switch (options_.call) {
    case CallKind::kTranslate: {
      const auto& r = plan_.translate[static_cast<size_t>(index) % plan_.translate.size()];
      (new TranslateCall(this, &r, index))->Start();
      break;
    }
    case CallKind::kSynthesize: {
      const auto& r = plan_.synthesize[static_cast<size_t>(index) % plan_.synthesize.size()];
      (new SynthesizeCall(this, &r, index))->Start();
      break;
    }
    case CallKind::kSpeechTranslate:
      (new SpeechTranslateCall(this, &plan_.session, index))->Start();
      break;
    case CallKind::kTranslateSynthesize:
      (new TranslateSynthesizeCall(this, &plan_.session, index))->Start();
      break;
  }
}

void LoadRunner::Complete(CallResult result) {
  if (result.code != grpc::StatusCode::OK) errors_.fetch_add(1);
  absl::MutexLock lock(&mu_);
  results_.push_back(std::move(result));
  --in_flight_;
  completed_.fetch_add(1);
  room_.Signal();
}

ProgressSnapshot LoadRunner::Snapshot(absl::Time start) const {
  ProgressSnapshot s;
  s.started = started_.load();
  s.completed = completed_.load();
  s.errors = errors_.load();
  {
    absl::MutexLock lock(&mu_);
    s.in_flight = in_flight_;
  }
  s.elapsed = absl::Now() - start;
  return s;
}

RunResult LoadRunner::Run() {
  RunResult run;
  // Connect first so the first calls do not pay for the handshake (as ghz does), but give up
  // early on TRANSIENT_FAILURE: the calls then fail fast and are counted as UNAVAILABLE.
  {
    const auto deadline = absl::ToChronoTime(absl::Now() + options_.connect_timeout);
    grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
    while (state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_TRANSIENT_FAILURE &&
           state != GRPC_CHANNEL_SHUTDOWN) {
      if (!channel_->WaitForStateChange(state, deadline)) break;
      state = channel_->GetState(true);
    }
    run.connected = state == GRPC_CHANNEL_READY;
  }

  const absl::Time start_wall = absl::Now();
  const SteadyClock::time_point start = SteadyClock::now();
  const bool has_total = options_.total > 0;
  const bool has_duration = options_.duration > absl::ZeroDuration();
  const SteadyClock::time_point end_of_starts =
      start + std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options_.duration));
  absl::Time next_progress = start_wall + absl::Seconds(1);
  run.start = start_wall;

  auto report_progress = [&](bool final) {
    if (on_progress_) on_progress_(Snapshot(start_wall), final);
  };

  int64_t index = 0;
  while (true) {
    if (has_total && index >= options_.total) {
      run.end_reason = EndReason::kNormal;
      break;
    }
    const SteadyClock::time_point now = SteadyClock::now();
    if (has_duration && now >= end_of_starts) {
      run.end_reason = EndReason::kTimeout;
      break;
    }
    // Wake at the earliest of the next progress line and the end of the run.
    absl::Time wake = next_progress;
    if (has_duration) {
      wake = std::min(wake, absl::Now() + absl::Nanoseconds(NanosBetween(now, end_of_starts)));
    }
    // The rate's slot for this call: sleep until then (one thread, never per request).
    const SteadyClock::time_point slot =
        options_.rate > 0
            ? start + std::chrono::nanoseconds(static_cast<int64_t>(
                          static_cast<double>(index) * 1e9 / options_.rate))
            : now;
    if (slot > now) {
      absl::SleepFor(std::min(absl::Nanoseconds(NanosBetween(now, slot)), wake - absl::Now()));
    } else {
      bool may_start = false;
      {
        absl::MutexLock lock(&mu_);
        while (in_flight_ >= options_.concurrency) {
          if (room_.WaitWithDeadline(&mu_, wake)) break;  // timed out
        }
        if (in_flight_ < options_.concurrency &&
            !(has_duration && SteadyClock::now() >= end_of_starts)) {
          ++in_flight_;
          may_start = true;
        }
      }
      if (may_start) {
        started_.fetch_add(1);
        StartCall(index++);
      }
    }
    if (absl::Now() >= next_progress) {
      report_progress(false);
      next_progress += absl::Seconds(1);
    }
  }

  // Let the calls in flight finish (each is bounded by its deadline).
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      while (in_flight_ > 0) {
        if (room_.WaitWithDeadline(&mu_, next_progress)) break;  // timed out
      }
      if (in_flight_ == 0) break;
    }
    report_progress(false);
    next_progress += absl::Seconds(1);
  }
  run.total_nanos = NanosBetween(start, SteadyClock::now());
  report_progress(true);
  absl::MutexLock lock(&mu_);
  run.calls = std::move(results_);
  return run;
}

std::string StatusCodeName(grpc::StatusCode code) {
  // gRPC's and Abseil's canonical codes share their numbers and names.
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

const char* GhzStatusName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "Canceled";
    case grpc::StatusCode::UNKNOWN: return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT: return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND: return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS: return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED: return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FailedPrecondition";
    case grpc::StatusCode::ABORTED: return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE: return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED: return "Unimplemented";
    case grpc::StatusCode::INTERNAL: return "Internal";
    case grpc::StatusCode::UNAVAILABLE: return "Unavailable";
    case grpc::StatusCode::DATA_LOSS: return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED: return "Unauthenticated";
    default: return "Unknown";
  }
}

}  // namespace vox::bench
