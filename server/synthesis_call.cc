#include "server/synthesis_call.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/call_log.h"

namespace vox {

namespace {

v1::SynthesizeResponse AudioMessage(EncodedAudio* audio) {
  v1::SynthesizeResponse msg;
  AudioChunkToProto(audio, msg.mutable_audio());
  return msg;
}

}  // namespace

SynthesisCall::SynthesisCall(SpeechServiceImpl* service, std::string method,
                             std::function<void(const v1::SynthesizeResponse*)> start_write,
                             std::function<void(const grpc::Status&)> finish)
    : service_(service),
      method_(std::move(method)),
      full_method_(absl::StrCat("/vox.v1.SpeechService/", method_)),
      finish_(std::move(finish)),
      stream_(Watermarks(service->limits_.max_pending_bytes), service->write_pool_.AsExecutor(),
              {std::move(start_write), [this](absl::Status s) { DoFinish(std::move(s)); }}) {}

SynthesisCall::~SynthesisCall() = default;

OutboundStream<v1::SynthesizeResponse>::Options SynthesisCall::Watermarks(
    size_t max_pending_bytes) {
  OutboundStream<v1::SynthesizeResponse>::Options o;
  o.high_water = max_pending_bytes;
  o.low_water = max_pending_bytes;
  return o;
}

bool SynthesisCall::Open(grpc::CallbackServerContext* context) {
  start_ = absl::Now();
  request_id_ = RequestIdFrom(context->client_metadata());
  token_ = TokenNameOf(*context);
  context->AddInitialMetadata(kRequestIdKey, request_id_);
  if (service_->metrics_ != nullptr) service_->metrics_->StreamOpened(method_);
  if (absl::Status s = service_->admission_->Admit(*context); !s.ok()) {
    stream_.Finish(std::move(s));
    return false;
  }
  return true;
}

absl::Status SynthesisCall::Begin(const RoutedSynthesis& routed, v1::Priority priority,
                                  const grpc::CallbackServerContext& context) {
  SpeechModel* model = routed.model;
  if (model->scheduler == nullptr) {
    absl::Status s = Admission::ShuttingDown();
    stream_.Finish(s);
    return s;
  }
  sample_rate_ = model->engine->sample_rate();
  engine_name_ = model->engine->info().name;
  clock_ = model->clock;
  deadline_ = DeadlineOnClock(DeadlineOf(context), clock_);
  absl::StatusOr<std::unique_ptr<AudioStreamEncoder>> encoder =
      AudioStreamEncoder::Create(routed.audio, sample_rate_);
  if (!encoder.ok()) {
    stream_.Finish(encoder.status());
    return encoder.status();
  }
  encoder_ = std::move(*encoder);
  v1::SynthesizeResponse header;
  AudioHeaderToProto(encoder_->header(), header.mutable_header());
  const size_t header_bytes = header.ByteSizeLong();
  stream_.Push(std::move(header), header_bytes);

  RequestOptions options;
  options.priority = SchedulerPriority(priority, model->options.priority_levels);
  options.deadline = deadline_;
  UtteranceQueue::Callbacks callbacks;
  callbacks.on_audio = [this](std::vector<float> samples) { OnAudio(std::move(samples)); };
  callbacks.on_first_audio = [this](const Utterance& u) { OnFirstAudio(u); };
  callbacks.on_stats = [this](const SynthesisStats& stats) { OnStats(stats); };
  callbacks.on_join = [this] {
    absl::MutexLock lock(&mu_);
    if (joined_ == absl::InfinitePast()) joined_ = absl::Now();
  };
  callbacks.on_done = [this](absl::Status s, EndReason why) { OnQueueDone(std::move(s), why); };
  auto queue = std::make_unique<UtteranceQueue>(
      model, options, [this] { return StopStatus(); }, std::move(callbacks));
  UtteranceQueue* q = queue.get();
  bool stopped;
  {
    absl::MutexLock lock(&mu_);
    queue_ = std::move(queue);
    stopped = stop_ != StopCause::kNone;
  }
  // Pauses at once when the header alone is over the limit.
  stream_.SetFlowControl([q] { q->Pause(); }, [q] { q->Resume(); });
  if (stopped) q->Cancel();  // cancelled before the queue existed
  return absl::OkStatus();
}

bool SynthesisCall::Speak(Utterance u) {
  UtteranceQueue* q;
  {
    absl::MutexLock lock(&mu_);
    q = queue_.get();
  }
  return q != nullptr && q->Add(std::move(u)).ok();
}

void SynthesisCall::EndOfInput(absl::Status end) {
  UtteranceQueue* q;
  {
    absl::MutexLock lock(&mu_);
    q = queue_.get();
    end_status_ = std::move(end);
  }
  if (q != nullptr) q->Close();
}

bool SynthesisCall::idle() {
  UtteranceQueue* q;
  {
    absl::MutexLock lock(&mu_);
    q = queue_.get();
  }
  return (q == nullptr || q->idle()) && stream_.size() == 0;
}

void SynthesisCall::Fail(absl::Status status) {
  UtteranceQueue* q;
  {
    absl::MutexLock lock(&mu_);
    q = queue_.get();
  }
  if (q == nullptr) return stream_.Finish(std::move(status));  // nothing started
  Stop(StopCause::kFailed, std::move(status));
}

void SynthesisCall::OnWriteDone(bool ok) {
  if (!ok) Stop(StopCause::kClientGone, absl::CancelledError("the client went away"));
  stream_.OnWriteDone(ok);
}

void SynthesisCall::OnCancel() {
  Stop(StopCause::kCancelled, absl::CancelledError("the call was cancelled"));
}

// The first cause stands: the stream drops what is queued and will end the call with `status`;
// the queue is cancelled (once it exists). Its on_done then finishes the stream.
void SynthesisCall::Stop(StopCause cause, absl::Status status) {
  UtteranceQueue* q;
  {
    absl::MutexLock lock(&mu_);
    if (stop_ == StopCause::kNone) stop_ = cause;
    stop_flag_.store(true);
    q = queue_.get();
  }
  stream_.Cancel(std::move(status));
  if (q != nullptr) q->Cancel();
}

// OK while the call should go on (whole-request engines poll it on the worker thread).
absl::Status SynthesisCall::StopStatus() {
  if (stop_flag_.load()) {
    absl::MutexLock lock(&mu_);
    switch (stop_) {
      case StopCause::kCancelled: return absl::CancelledError("the call was cancelled");
      case StopCause::kClientGone: return absl::CancelledError("the client went away");
      case StopCause::kEncodingFailed: return absl::CancelledError("audio encoding failed");
      case StopCause::kFailed: return absl::CancelledError("the call failed");
      case StopCause::kNone: break;
    }
  }
  if (clock_->Now() >= deadline_) {
    return absl::DeadlineExceededError("the call's deadline passed during synthesis");
  }
  return absl::OkStatus();
}

// Worker thread (or the thread adding a pause): notes the audio and moves its PCM into the
// stream (no encoding here). Every chunk goes through the encoder, as the engine produced it: an
// empty one still carries the Ogg header pages when it comes first.
void SynthesisCall::OnAudio(std::vector<float> samples) {
  if (!samples.empty()) {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (Metrics* metrics = service_->metrics_; metrics != nullptr) {
      if (!have_audio_) {
        metrics->TimeToFirstAudio(method_, now - start_);
      } else {
        metrics->AudioChunkGap(method_, now - last_audio_);
      }
    }
    if (!have_audio_) first_audio_ = now;
    have_audio_ = true;
    last_audio_ = now;
  }
  const size_t bytes = samples.size() * sizeof(float);
  stream_.PushProducer([this, samples = std::move(samples)] { return EncodeChunk(samples); },
                       bytes);
}

void SynthesisCall::OnFirstAudio(const Utterance& u) {
  if (u.completed == absl::InfinitePast() || service_->metrics_ == nullptr) return;
  service_->metrics_->SentenceFirstAudio(method_, absl::Now() - u.completed);
}

void SynthesisCall::OnStats(const SynthesisStats& stats) {
  absl::MutexLock lock(&mu_);
  if (!have_stats_) stats_.seed = stats.seed;  // the first utterance's seed
  have_stats_ = true;
  stats_.codes += stats.codes;
  stats_.voice = stats.voice;
}

// Write path (the stream's producers, one at a time): the only user of encoder_ after Begin.
std::optional<v1::SynthesizeResponse> SynthesisCall::EncodeChunk(const std::vector<float>& samples) {
  EncodedAudio out;
  if (absl::Status s = encoder_->Push(samples, &out); !s.ok()) {
    LogError(request_id_, absl::StrCat("audio encoding failed: ", s.ToString()));
    Stop(StopCause::kEncodingFailed,
         absl::InternalError(absl::StrCat("audio encoding failed: ", s.message(), " (request id ",
                                          request_id_, ")")));
    return std::nullopt;
  }
  if (out.empty()) return std::nullopt;
  return AudioMessage(&out);
}

// Write path, after the last chunk: the encoder's tail (Ogg: the EOS page).
std::optional<v1::SynthesizeResponse> SynthesisCall::EncodeTail() {
  EncodedAudio tail;
  if (absl::Status s = encoder_->Finish(&tail); !s.ok()) {
    stream_.Cancel(absl::InternalError(absl::StrCat("audio encoding failed: ", s.message())));
    return std::nullopt;
  }
  if (tail.empty()) return std::nullopt;
  return AudioMessage(&tail);
}

// Write path, after the tail (the encoder's totals are final). `end`: when the last sequence
// ended.
std::optional<v1::SynthesizeResponse> SynthesisCall::Summary(absl::Time end) {
  const int utterances = queue_->spoken();
  absl::MutexLock lock(&mu_);
  const int rate = encoder_->header().sample_rate_hz;
  v1::SynthesizeResponse summary_msg;
  v1::SynthesisSummary* summary = summary_msg.mutable_summary();
  summary->set_total_samples(encoder_->total_samples());
  const double audio_seconds = rate > 0 ? static_cast<double>(encoder_->total_samples()) / rate : 0;
  summary->set_audio_seconds(audio_seconds);
  summary->set_synthesis_seconds(absl::ToDoubleSeconds(end - start_));
  summary->set_time_to_first_audio_seconds(
      have_audio_ ? absl::ToDoubleSeconds(first_audio_ - start_) : 0);
  summary->set_real_time_factor(audio_seconds > 0 ? summary->synthesis_seconds() / audio_seconds
                                                  : 0);
  summary->set_codes(stats_.codes);
  summary->set_seed(stats_.seed);
  summary->set_voice(stats_.voice);
  summary->set_utterances(utterances);
  if (Metrics* metrics = service_->metrics_; metrics != nullptr) {
    const absl::Time run_start = joined_ == absl::InfinitePast() ? start_ : joined_;
    if (audio_seconds > 0) {
      metrics->RealTimeFactor(engine_name_, absl::ToDoubleSeconds(end - run_start) / audio_seconds);
    }
    metrics->CodesGenerated(engine_name_, stats_.codes);
  }
  return summary_msg;
}

// The queue ended (worker thread, or a thread that cancelled it). The stream's Finish is the
// last thing done here: the call may be gone right after it.
void SynthesisCall::OnQueueDone(absl::Status status, EndReason why) {
  StopCause stop;
  {
    absl::MutexLock lock(&mu_);
    stop = stop_;
  }
  if (stop == StopCause::kCancelled || stop == StopCause::kClientGone ||
      status.code() == absl::StatusCode::kDeadlineExceeded) {
    service_->stopped_early_.fetch_add(1);
  }
  if (stop != StopCause::kNone) {
    return stream_.Finish(std::move(status));  // the stream keeps the stop's status
  }
  if (!status.ok()) {
    status = SlowReaderStatus(status, why);
    if (!ClientVisibleCode(status.code())) {
      LogError(request_id_,
               absl::StrCat("model '", engine_name_, "' failed: ", status.ToString()));
      status = absl::InternalError(absl::StrCat("synthesis failed in model '", engine_name_,
                                                "': ", status.message(), " (request id ",
                                                request_id_, ")"));
    }
    return stream_.Finish(std::move(status));
  }
  const absl::Time end = absl::Now();
  absl::Status end_status;
  {
    absl::MutexLock lock(&mu_);
    end_status = end_status_;
  }
  stream_.PushProducer([this] { return EncodeTail(); }, 0);
  stream_.PushProducer([this, end] { return Summary(end); }, 0);
  stream_.Finish(std::move(end_status));
}

// On the write pool, once: the last thing done with this call.
void SynthesisCall::DoFinish(absl::Status status) {
  const grpc::Status grpc_status = ToGrpcStatus(status);
  const absl::Duration duration = absl::Now() - start_;
  LogCall(full_method_, grpc_status, duration, request_id_, token_);
  if (service_->metrics_ != nullptr) {
    service_->metrics_->RequestFinished(method_, status.code(), duration);
    service_->metrics_->StreamClosed(method_);
  }
  std::function<void(const grpc::Status&)> finish = finish_;
  finish(grpc_status);  // may delete the reactor and this call: nothing after
}

}  // namespace vox
