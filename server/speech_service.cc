#include "server/speech_service.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engines/core/languages.h"
#include "server/call_log.h"

namespace vox {

namespace {

constexpr char kSynthesizeMethod[] = "/vox.v1.SpeechService/Synthesize";

absl::StatusOr<AudioEncoding> EncodingFromProto(v1::AudioEncoding e) {
  switch (e) {
    case v1::AUDIO_ENCODING_UNSPECIFIED:
    case v1::AUDIO_ENCODING_OGG_OPUS:
      return AudioEncoding::kOggOpus;
    case v1::AUDIO_ENCODING_OPUS:
      return AudioEncoding::kOpus;
    case v1::AUDIO_ENCODING_PCM16:
      return AudioEncoding::kPcm16;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "audio.encoding: ", static_cast<int>(e),
          " is not one of AUDIO_ENCODING_OGG_OPUS, AUDIO_ENCODING_OPUS, AUDIO_ENCODING_PCM16"));
  }
}

v1::SynthesizeResponse AudioMessage(EncodedAudio* audio) {
  v1::SynthesizeResponse msg;
  v1::AudioChunk* chunk = msg.mutable_audio();
  chunk->set_data(std::move(audio->data));
  for (std::string& p : audio->packets) *chunk->add_packets() = std::move(p);
  chunk->set_sequence(audio->sequence);
  chunk->set_timestamp_samples(audio->timestamp_samples);
  chunk->set_num_samples(audio->num_samples);
  return msg;
}

}  // namespace

absl::StatusOr<RoutedSynthesis> RouteSynthesizeRequest(const v1::SynthesizeRequest& request,
                                                       const ModelRegistry& registry) {
  if (absl::StripAsciiWhitespace(request.text()).empty()) {
    return absl::InvalidArgumentError("text is empty");
  }
  const std::vector<std::string> languages = registry.SpeechLanguages();
  if (languages.empty()) return absl::UnavailableError("this server has no speech model loaded");
  if (request.language().empty()) {
    return absl::InvalidArgumentError("language is required: an NLLB code such as eng_Latn");
  }
  if (std::find(languages.begin(), languages.end(), request.language()) == languages.end()) {
    return absl::InvalidArgumentError(UnknownValueMessage("language", request.language(), languages));
  }
  RoutedSynthesis routed;
  routed.model = registry.FindSpeech(request.language(), request.voice());
  if (routed.model == nullptr) {
    std::vector<std::string> voices;
    for (const auto& m : registry.speech()) {
      for (const VoiceInfo& v : m->engine->voices()) {
        if (std::find(v.languages.begin(), v.languages.end(), request.language()) !=
            v.languages.end()) {
          voices.push_back(v.name);
        }
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        UnknownValueMessage("voice", request.voice(), voices), " (voices for ",
        request.language(), ")"));
  }
  if (!v1::Priority_IsValid(request.priority())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "priority: ", request.priority(),
        " is not one of PRIORITY_UNSPECIFIED, PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_HIGH"));
  }
  const v1::SynthesisOptions& o = request.options();
  if (o.temperature() < 0 || o.top_k() < 0 || o.top_p() < 0 || o.top_p() > 1 ||
      o.repetition_penalty() < 0 || o.speed() < 0 || o.pitch() < 0 || o.pitch() > 100) {
    return absl::InvalidArgumentError(
        "options: temperature, top_k, repetition_penalty and speed must be >= 0, top_p in [0, 1], "
        "pitch in [0, 100] (0 = default)");
  }
  routed.request.text = request.text();
  routed.request.language = request.language();
  routed.request.voice = request.voice();
  routed.request.params.greedy = o.greedy();
  routed.request.params.seed = o.seed();
  routed.request.params.temperature = o.temperature();
  routed.request.params.top_k = o.top_k();
  routed.request.params.top_p = o.top_p();
  routed.request.params.repetition_penalty = o.repetition_penalty();
  routed.request.params.speed = o.speed();
  routed.request.params.pitch = o.pitch();
  absl::StatusOr<AudioEncoding> encoding = EncodingFromProto(request.audio().encoding());
  if (!encoding.ok()) return encoding.status();
  routed.audio.encoding = *encoding;
  routed.audio.sample_rate_hz = request.audio().sample_rate_hz();
  routed.audio.bitrate_bps = request.audio().bitrate_bps();
  routed.audio.complexity = request.audio().has_complexity() ? request.audio().complexity() : -1;
  if (absl::Status s =
          AudioStreamEncoder::ValidateConfig(routed.audio, routed.model->engine->sample_rate());
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("audio: ", s.message()));
  }
  if (absl::Status s = routed.model->engine->Validate(routed.request); !s.ok()) return s;
  return routed;
}

absl::Status SlowReaderStatus(const absl::Status& status, EndReason why) {
  if (why == EndReason::kPausedTooLong || why == EndReason::kTooManyPaused) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the client read too slowly: ", status.message()));
  }
  return status;
}

// One Synthesize call: one sequence on the speech model's scheduler. Its chunks arrive through
// on_output on the scheduler's worker thread, are encoded and queued here; while more than
// max_pending_bytes are queued the sequence is paused (it keeps its slot and sits out steps),
// and resumed once writes drain. Lives until OnDone; Finish happens only after the sequence's
// on_done (or when it was never submitted).
class SynthesizeReactor : public grpc::ServerWriteReactor<v1::SynthesizeResponse> {
 public:
  SynthesizeReactor(SpeechServiceImpl* service, grpc::CallbackServerContext* context,
                    const v1::SynthesizeRequest* request)
      : service_(service), context_(context), request_(request) {}

  void Start() {
    start_ = absl::Now();
    request_id_ = RequestIdFrom(context_->client_metadata());
    context_->AddInitialMetadata(kRequestIdKey, request_id_);
    if (service_->metrics_ != nullptr) service_->metrics_->StreamOpened("Synthesize");
    if (service_->draining_->load()) {
      return Complete(absl::UnavailableError("the server is shutting down; retry on another server"));
    }
    absl::StatusOr<RoutedSynthesis> routed = RouteSynthesizeRequest(*request_, *service_->registry_);
    if (!routed.ok()) return Complete(routed.status());
    routed_ = std::move(*routed);
    SpeechScheduler* scheduler = routed_.model->scheduler.get();
    if (scheduler == nullptr) {
      return Complete(absl::UnavailableError("the server is shutting down; retry on another server"));
    }
    clock_ = routed_.model->clock;
    deadline_ = DeadlineOnClock(DeadlineOf(*context_), clock_);
    absl::StatusOr<std::unique_ptr<AudioStreamEncoder>> encoder =
        AudioStreamEncoder::Create(routed_.audio, routed_.model->engine->sample_rate());
    if (!encoder.ok()) return Complete(encoder.status());
    encoder_ = std::move(*encoder);
    const AudioHeaderInfo& h = encoder_->header();
    v1::SynthesizeResponse header;
    header.mutable_header()->set_encoding(EncodingToProto(h.encoding));
    header.mutable_header()->set_sample_rate_hz(h.sample_rate_hz);
    header.mutable_header()->set_channels(h.channels);
    header.mutable_header()->set_pre_skip(h.pre_skip);
    header.mutable_header()->set_frame_samples(h.frame_samples);
    Send(std::move(header));

    SpeechSequence seq;
    seq.request = routed_.request;
    seq.stop = [this] { return StopStatus(); };
    seq.on_join = [this] {
      absl::MutexLock lock(&mu_);
      joined_ = absl::Now();
    };
    SpeechScheduler::Callbacks callbacks;
    callbacks.on_output = [this](SpeechChunk chunk) { OnChunk(std::move(chunk)); };
    callbacks.on_done = [this](absl::Status s, EndReason why) {
      OnSequenceDone(std::move(s), why);
    };
    RequestOptions options;
    options.priority =
        SchedulerPriority(request_->priority(), routed_.model->options.priority_levels);
    options.deadline = deadline_;
    {
      absl::MutexLock lock(&mu_);
      submitting_ = true;
    }
    absl::StatusOr<TicketId> ticket = scheduler->Submit(std::move(seq), options, std::move(callbacks));
    if (!ticket.ok()) {
      {
        absl::MutexLock lock(&mu_);
        submitting_ = false;
      }
      return Complete(ticket.status());
    }
    bool cancel = false, finish = false;
    {
      absl::MutexLock lock(&mu_);
      submitting_ = false;
      ticket_ = *ticket;
      has_ticket_ = true;
      cancel = cancelled_ || broken_;
      paused_ = OverLimitLocked() && !completed_;
      if (paused_) scheduler->Pause(*ticket);
      if (completed_ && !writing_ && !finish_called_) finish = finish_called_ = true;
    }
    if (cancel) scheduler->Cancel(*ticket);
    if (finish) DoFinish();  // the sequence ended before Submit returned
  }

  void OnWriteDone(bool ok) override {
    const v1::SynthesizeResponse* next = nullptr;
    bool finish = false, cancel = false;
    {
      absl::MutexLock lock(&mu_);
      pending_bytes_ -= pending_.front().ByteSizeLong();
      pending_.pop_front();
      writing_ = false;
      if (!ok) {
        broken_ = true;
        stop_flag_.store(true);
        pending_.clear();
        pending_bytes_ = 0;
        cancel = has_ticket_;
      }
      if (paused_ && !OverLimitLocked() && has_ticket_) {
        // Under mu_, so that a Pause from OnChunk cannot land after this Resume.
        paused_ = false;
        Scheduler()->Resume(ticket_);
      }
      if (!pending_.empty()) {
        writing_ = true;
        next = &pending_.front();
      } else if (completed_ && !finish_called_ && !submitting_) {
        finish = finish_called_ = true;
      }
    }
    if (cancel) Scheduler()->Cancel(ticket_);
    if (next != nullptr) {
      StartWrite(next);
    } else if (finish) {
      DoFinish();
    }
  }

  void OnCancel() override {
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      stop_flag_.store(true);
      cancel = has_ticket_;
    }
    // The sequence stops at the next step boundary (queued: at once).
    if (cancel) Scheduler()->Cancel(ticket_);
  }

  void OnDone() override { delete this; }

 private:
  SpeechScheduler* Scheduler() const { return routed_.model->scheduler.get(); }

  bool OverLimitLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pending_bytes_ > service_->limits_.max_pending_bytes;
  }

  // OK while the call should go on (whole-request engines poll it on the worker thread).
  absl::Status StopStatus() {
    if (stop_flag_.load()) {
      absl::MutexLock lock(&mu_);
      if (cancelled_) return absl::CancelledError("the call was cancelled");
      if (broken_) return absl::CancelledError("the client went away");
      if (!sink_error_.ok()) return absl::CancelledError("audio encoding failed");
    }
    if (clock_->Now() >= deadline_) {
      return absl::DeadlineExceededError("the call's deadline passed during synthesis");
    }
    return absl::OkStatus();
  }

  // Worker thread: encode, queue, pause when the reader lags.
  void OnChunk(SpeechChunk chunk) {
    EncodedAudio out;
    absl::Status encoded = encoder_->Push(chunk.samples, &out);
    bool cancel = false;
    const v1::SynthesizeResponse* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      samples_ += static_cast<int64_t>(chunk.samples.size());
      if (chunk.stats.has_value()) stats_ = std::move(*chunk.stats);
      if (!encoded.ok()) {
        if (sink_error_.ok()) sink_error_ = encoded;
        stop_flag_.store(true);
        cancel = has_ticket_;
      } else {
        start = DeliverLocked(&out);
        if (!paused_ && OverLimitLocked()) {
          paused_ = true;  // applied by Start when the ticket is not known yet
          // Under mu_, ordered with OnWriteDone's Resume (lock order: mu_, then the scheduler's).
          if (has_ticket_) Scheduler()->Pause(ticket_);
        }
      }
    }
    if (start != nullptr) StartWrite(start);
    if (cancel) Scheduler()->Cancel(ticket_);
  }

  // Queues an audio message (none for empty output); returns what to StartWrite.
  const v1::SynthesizeResponse* DeliverLocked(EncodedAudio* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (out->empty()) return nullptr;
    const absl::Time now = absl::Now();
    Metrics* metrics = service_->metrics_;
    if (!have_audio_) {
      first_audio_ = now;
      if (metrics != nullptr) metrics->TimeToFirstAudio("Synthesize", now - start_);
    } else if (metrics != nullptr) {
      metrics->AudioChunkGap("Synthesize", now - last_audio_);
    }
    have_audio_ = true;
    last_audio_ = now;
    return QueueLocked(AudioMessage(out));
  }

  // Worker thread (or a thread that cancelled a queued sequence): the sequence ended.
  void OnSequenceDone(absl::Status status, EndReason why) {
    SpeechEngine* engine = routed_.model->engine.get();
    const std::string& engine_name = engine->info().name;
    bool user_stop = false;
    {
      absl::MutexLock lock(&mu_);
      if (!sink_error_.ok()) {
        LogError(request_id_, absl::StrCat("audio encoding failed: ", sink_error_.ToString()));
        status = absl::InternalError(absl::StrCat("audio encoding failed: ", sink_error_.message(),
                                                  " (request id ", request_id_, ")"));
      } else if (cancelled_ || broken_) {
        user_stop = true;
        status = cancelled_ ? absl::CancelledError("the call was cancelled")
                            : absl::CancelledError("the client went away");
      }
    }
    if (user_stop || status.code() == absl::StatusCode::kDeadlineExceeded) {
      service_->stopped_early_.fetch_add(1);
    }
    if (!status.ok()) {
      status = SlowReaderStatus(status, why);
      if (!ClientVisibleCode(status.code())) {
        LogError(request_id_, absl::StrCat("model '", engine_name, "' failed: ", status.ToString()));
        status = absl::InternalError(absl::StrCat("synthesis failed in model '", engine_name, "': ",
                                                  status.message(), " (request id ", request_id_,
                                                  ")"));
      }
      return Complete(status);
    }
    EncodedAudio tail;
    if (absl::Status s = encoder_->Finish(&tail); !s.ok()) {
      return Complete(absl::InternalError(absl::StrCat("audio encoding failed: ", s.message())));
    }
    const v1::SynthesizeResponse* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      start = DeliverLocked(&tail);
      const absl::Time end = absl::Now();
      const absl::Time run_start = joined_ == absl::InfinitePast() ? start_ : joined_;
      const int rate = encoder_->header().sample_rate_hz;
      v1::SynthesizeResponse summary_msg;
      v1::SynthesisSummary* summary = summary_msg.mutable_summary();
      summary->set_total_samples(encoder_->total_samples());
      const double audio_seconds =
          rate > 0 ? static_cast<double>(encoder_->total_samples()) / rate : 0;
      summary->set_audio_seconds(audio_seconds);
      summary->set_synthesis_seconds(absl::ToDoubleSeconds(end - start_));
      summary->set_time_to_first_audio_seconds(
          have_audio_ ? absl::ToDoubleSeconds(first_audio_ - start_) : 0);
      summary->set_real_time_factor(
          audio_seconds > 0 ? summary->synthesis_seconds() / audio_seconds : 0);
      summary->set_codes(stats_.codes);
      summary->set_seed(stats_.seed);
      summary->set_voice(stats_.voice);
      if (Metrics* metrics = service_->metrics_; metrics != nullptr) {
        if (audio_seconds > 0) {
          metrics->RealTimeFactor(engine_name,
                                  absl::ToDoubleSeconds(end - run_start) / audio_seconds);
        }
        metrics->CodesGenerated(engine_name, stats_.codes);
      }
      const v1::SynthesizeResponse* s2 = QueueLocked(std::move(summary_msg));
      if (start == nullptr) start = s2;
    }
    if (start != nullptr) StartWrite(start);
    Complete(absl::OkStatus());
  }

  // Queues one message; returns it when no write was in flight (the caller starts it after
  // unlocking). Dropped (nullptr) once the client is gone.
  const v1::SynthesizeResponse* QueueLocked(v1::SynthesizeResponse msg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (cancelled_ || broken_) return nullptr;
    pending_bytes_ += msg.ByteSizeLong();
    pending_.push_back(std::move(msg));
    if (writing_) return nullptr;
    writing_ = true;
    return &pending_.front();
  }

  void Send(v1::SynthesizeResponse msg) {
    const v1::SynthesizeResponse* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      start = QueueLocked(std::move(msg));
    }
    if (start != nullptr) StartWrite(start);
  }

  // The last thing done with this call outside the reactions.
  void Complete(const absl::Status& status) {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      final_ = status;
      completed_ = true;
      // While Start is still submitting, it finishes the call itself afterwards.
      if (!writing_ && !finish_called_ && !submitting_) finish = finish_called_ = true;
    }
    if (finish) DoFinish();
  }

  void DoFinish() {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      status = final_;
      // The sequence may have ended OK before the call was cancelled (e.g. by the drain's grace
      // deadline) or the client went away: its audio or summary never reached the client, so
      // the call did not succeed, and is not logged or counted as if it had.
      if (status.ok() && (cancelled_ || broken_)) {
        status = cancelled_ ? absl::CancelledError("the call was cancelled")
                            : absl::CancelledError("the client went away");
      }
    }
    const grpc::Status grpc_status = ToGrpcStatus(status);
    const absl::Duration duration = absl::Now() - start_;
    LogCall(kSynthesizeMethod, grpc_status, duration, request_id_);
    if (service_->metrics_ != nullptr) {
      service_->metrics_->RequestFinished("Synthesize", status.code(), duration);
      service_->metrics_->StreamClosed("Synthesize");
    }
    Finish(grpc_status);  // may delete this (OnDone): nothing after
  }

  SpeechServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  const v1::SynthesizeRequest* const request_;
  absl::Time start_;
  Clock* clock_ = nullptr;
  absl::Time deadline_ = absl::InfiniteFuture();
  std::string request_id_;
  RoutedSynthesis routed_;
  std::unique_ptr<AudioStreamEncoder> encoder_;  // worker thread only after Start
  std::atomic<bool> stop_flag_{false};           // cancelled_, broken_ or sink_error_ set
  TicketId ticket_ = 0;                          // valid once has_ticket_

  absl::Mutex mu_;
  std::deque<v1::SynthesizeResponse> pending_ ABSL_GUARDED_BY(mu_);
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool has_ticket_ ABSL_GUARDED_BY(mu_) = false;
  bool submitting_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status sink_error_ ABSL_GUARDED_BY(mu_);
  bool have_audio_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time first_audio_ ABSL_GUARDED_BY(mu_);
  absl::Time last_audio_ ABSL_GUARDED_BY(mu_);
  absl::Time joined_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t samples_ ABSL_GUARDED_BY(mu_) = 0;
  SynthesisStats stats_ ABSL_GUARDED_BY(mu_);
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_ ABSL_GUARDED_BY(mu_);
};

SpeechServiceImpl::SpeechServiceImpl(const ModelRegistry* registry,
                                     const std::atomic<bool>* draining, Metrics* metrics,
                                     Limits limits)
    : registry_(registry), draining_(draining), metrics_(metrics), limits_(limits) {}

v1::AudioEncoding EncodingToProto(AudioEncoding e) {
  switch (e) {
    case AudioEncoding::kOpus: return v1::AUDIO_ENCODING_OPUS;
    case AudioEncoding::kOggOpus: return v1::AUDIO_ENCODING_OGG_OPUS;
    case AudioEncoding::kPcm16: return v1::AUDIO_ENCODING_PCM16;
  }
  return v1::AUDIO_ENCODING_UNSPECIFIED;
}

grpc::ServerWriteReactor<v1::SynthesizeResponse>* SpeechServiceImpl::Synthesize(
    grpc::CallbackServerContext* context, const v1::SynthesizeRequest* request) {
  auto* reactor = new SynthesizeReactor(this, context, request);
  reactor->Start();
  return reactor;
}

}  // namespace vox
