#include "server/speech_service.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engines/core/languages.h"
#include "engines/core/status_macros.h"
#include "server/call_log.h"
#include "server/outbound_stream.h"

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
  AudioChunkToProto(audio, msg.mutable_audio());
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
  VOX_RETURN_IF_ERROR(registry.CheckSpeechLanguage(request.language()));
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
      o.repetition_penalty() < 0 || o.speed() < 0 || o.pitch() < 0 || o.pitch() > 100 ||
      o.forced_codes() < 0) {
    return absl::InvalidArgumentError(
        "options: temperature, top_k, repetition_penalty, speed and forced_codes must be >= 0, "
        "top_p in [0, 1], pitch in [0, 100] (0 = default)");
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
  routed.request.params.forced_codes = o.forced_codes();
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
// on_output on the scheduler's worker thread, which only moves their PCM into the call's
// OutboundStream; the stream encodes each chunk in its write path (the service's write pool),
// keeps one write in flight and, while more than max_pending_bytes are queued, pauses the
// sequence (it keeps its slot and sits out steps) until writes drain. Lives until OnDone, which
// follows the stream's finish, which follows the sequence's on_done (or comes at once when no
// sequence was submitted).
class SynthesizeReactor : public grpc::ServerWriteReactor<v1::SynthesizeResponse> {
 public:
  SynthesizeReactor(SpeechServiceImpl* service, grpc::CallbackServerContext* context,
                    const v1::SynthesizeRequest* request)
      : service_(service),
        context_(context),
        request_(request),
        stream_(Watermarks(service->limits_), service->write_pool_.AsExecutor(),
                {[this](const v1::SynthesizeResponse* m) { StartWrite(m); },
                 [this](absl::Status s) { DoFinish(std::move(s)); }}) {}

  void Start() {
    start_ = absl::Now();
    request_id_ = RequestIdFrom(context_->client_metadata());
    context_->AddInitialMetadata(kRequestIdKey, request_id_);
    if (service_->metrics_ != nullptr) service_->metrics_->StreamOpened("Synthesize");
    if (service_->draining_->load()) {
      return stream_.Finish(
          absl::UnavailableError("the server is shutting down; retry on another server"));
    }
    absl::StatusOr<RoutedSynthesis> routed = RouteSynthesizeRequest(*request_, *service_->registry_);
    if (!routed.ok()) return stream_.Finish(routed.status());
    routed_ = std::move(*routed);
    SpeechScheduler* scheduler = routed_.model->scheduler.get();
    if (scheduler == nullptr) {
      return stream_.Finish(
          absl::UnavailableError("the server is shutting down; retry on another server"));
    }
    clock_ = routed_.model->clock;
    deadline_ = DeadlineOnClock(DeadlineOf(*context_), clock_);
    absl::StatusOr<std::unique_ptr<AudioStreamEncoder>> encoder =
        AudioStreamEncoder::Create(routed_.audio, routed_.model->engine->sample_rate());
    if (!encoder.ok()) return stream_.Finish(encoder.status());
    encoder_ = std::move(*encoder);
    v1::SynthesizeResponse header;
    AudioHeaderToProto(encoder_->header(), header.mutable_header());
    const size_t header_bytes = header.ByteSizeLong();
    stream_.Push(std::move(header), header_bytes);

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
    // The sequence may end before Submit returns; the call then finishes on the write pool, and
    // gRPC holds that Finish until this reaction returned, so `this` stays valid here.
    absl::StatusOr<TicketId> ticket = scheduler->Submit(std::move(seq), options, std::move(callbacks));
    if (!ticket.ok()) return stream_.Finish(ticket.status());
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      ticket_ = *ticket;
      cancel = stop_ != StopCause::kNone;
    }
    // Pauses at once when the header alone is over the limit.
    const TicketId t = *ticket;
    stream_.SetFlowControl([scheduler, t] { scheduler->Pause(t); },
                           [scheduler, t] { scheduler->Resume(t); });
    if (cancel) scheduler->Cancel(t);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) Stop(StopCause::kClientGone, absl::CancelledError("the client went away"));
    stream_.OnWriteDone(ok);
  }

  // The sequence stops at the next step boundary (queued: at once).
  void OnCancel() override {
    Stop(StopCause::kCancelled, absl::CancelledError("the call was cancelled"));
  }

  void OnDone() override { delete this; }

 private:
  // Why the call stopped before its sequence ended by itself.
  enum class StopCause { kNone, kCancelled, kClientGone, kEncodingFailed };

  static OutboundStream<v1::SynthesizeResponse>::Options Watermarks(
      const SpeechServiceImpl::Limits& limits) {
    OutboundStream<v1::SynthesizeResponse>::Options o;
    o.high_water = limits.max_pending_bytes;
    o.low_water = limits.max_pending_bytes;
    return o;
  }

  SpeechScheduler* Scheduler() const { return routed_.model->scheduler.get(); }

  // The first cause stands: the stream drops what is queued and will end the call with
  // `status`; the sequence is cancelled (once it is known).
  void Stop(StopCause cause, absl::Status status) {
    std::optional<TicketId> ticket;
    {
      absl::MutexLock lock(&mu_);
      if (stop_ == StopCause::kNone) stop_ = cause;
      stop_flag_.store(true);
      ticket = ticket_;
    }
    stream_.Cancel(std::move(status));
    if (ticket.has_value()) Scheduler()->Cancel(*ticket);
  }

  // OK while the call should go on (whole-request engines poll it on the worker thread).
  absl::Status StopStatus() {
    if (stop_flag_.load()) {
      absl::MutexLock lock(&mu_);
      switch (stop_) {
        case StopCause::kCancelled: return absl::CancelledError("the call was cancelled");
        case StopCause::kClientGone: return absl::CancelledError("the client went away");
        case StopCause::kEncodingFailed: return absl::CancelledError("audio encoding failed");
        case StopCause::kNone: break;
      }
    }
    if (clock_->Now() >= deadline_) {
      return absl::DeadlineExceededError("the call's deadline passed during synthesis");
    }
    return absl::OkStatus();
  }

  // Worker thread: only notes the chunk and moves its PCM into the stream (no encoding here).
  void OnChunk(SpeechChunk chunk) {
    {
      absl::MutexLock lock(&mu_);
      if (chunk.stats.has_value()) stats_ = std::move(*chunk.stats);
      if (!chunk.samples.empty()) {
        const absl::Time now = absl::Now();
        if (Metrics* metrics = service_->metrics_; metrics != nullptr) {
          if (!have_audio_) {
            metrics->TimeToFirstAudio("Synthesize", now - start_);
          } else {
            metrics->AudioChunkGap("Synthesize", now - last_audio_);
          }
        }
        if (!have_audio_) first_audio_ = now;
        have_audio_ = true;
        last_audio_ = now;
      }
    }
    // Every chunk goes through the encoder, as the engine produced it: an empty one still
    // carries the Ogg header pages when it comes first.
    const size_t bytes = chunk.samples.size() * sizeof(float);
    stream_.PushProducer(
        [this, samples = std::move(chunk.samples)] { return EncodeChunk(samples); }, bytes);
  }

  // Write path (the stream's producers, one at a time): the only user of encoder_ after Start.
  std::optional<v1::SynthesizeResponse> EncodeChunk(const std::vector<float>& samples) {
    EncodedAudio out;
    if (absl::Status s = encoder_->Push(samples, &out); !s.ok()) {
      LogError(request_id_, absl::StrCat("audio encoding failed: ", s.ToString()));
      Stop(StopCause::kEncodingFailed,
           absl::InternalError(absl::StrCat("audio encoding failed: ", s.message(),
                                            " (request id ", request_id_, ")")));
      return std::nullopt;
    }
    if (out.empty()) return std::nullopt;
    return AudioMessage(&out);
  }

  // Write path, after the last chunk: the encoder's tail (Ogg: the EOS page).
  std::optional<v1::SynthesizeResponse> EncodeTail() {
    EncodedAudio tail;
    if (absl::Status s = encoder_->Finish(&tail); !s.ok()) {
      stream_.Cancel(absl::InternalError(absl::StrCat("audio encoding failed: ", s.message())));
      return std::nullopt;
    }
    if (tail.empty()) return std::nullopt;
    return AudioMessage(&tail);
  }

  // Write path, after the tail (the encoder's totals are final). `end`: when the sequence ended.
  std::optional<v1::SynthesizeResponse> Summary(absl::Time end) {
    absl::MutexLock lock(&mu_);
    const std::string& engine_name = routed_.model->engine->info().name;
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
    return summary_msg;
  }

  // Worker thread (or a thread that cancelled a queued sequence): the sequence ended. The
  // stream's Finish is the last thing done here: the call may be gone right after it.
  void OnSequenceDone(absl::Status status, EndReason why) {
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
        const std::string& engine_name = routed_.model->engine->info().name;
        LogError(request_id_, absl::StrCat("model '", engine_name, "' failed: ", status.ToString()));
        status = absl::InternalError(absl::StrCat("synthesis failed in model '", engine_name, "': ",
                                                  status.message(), " (request id ", request_id_,
                                                  ")"));
      }
      return stream_.Finish(std::move(status));
    }
    const absl::Time end = absl::Now();
    stream_.PushProducer([this] { return EncodeTail(); }, 0);
    stream_.PushProducer([this, end] { return Summary(end); }, 0);
    stream_.Finish(absl::OkStatus());
  }

  // On the write pool, once: the last thing done with this call.
  void DoFinish(absl::Status status) {
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
  std::unique_ptr<AudioStreamEncoder> encoder_;  // after Start: the write path only
  std::atomic<bool> stop_flag_{false};           // stop_ != kNone

  absl::Mutex mu_;
  std::optional<TicketId> ticket_ ABSL_GUARDED_BY(mu_);
  StopCause stop_ ABSL_GUARDED_BY(mu_) = StopCause::kNone;
  bool have_audio_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time first_audio_ ABSL_GUARDED_BY(mu_);
  absl::Time last_audio_ ABSL_GUARDED_BY(mu_);
  absl::Time joined_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  SynthesisStats stats_ ABSL_GUARDED_BY(mu_);

  // Last: destroyed first, and its callbacks only run while the call is alive.
  OutboundStream<v1::SynthesizeResponse> stream_;
};

SpeechServiceImpl::SpeechServiceImpl(const ModelRegistry* registry,
                                     const std::atomic<bool>* draining, Metrics* metrics,
                                     Limits limits)
    : registry_(registry),
      draining_(draining),
      metrics_(metrics),
      limits_(limits),
      write_pool_(limits.write_threads) {}

void AudioChunkToProto(EncodedAudio* audio, v1::AudioChunk* out) {
  out->set_data(std::move(audio->data));
  for (std::string& p : audio->packets) *out->add_packets() = std::move(p);
  out->set_sequence(audio->sequence);
  out->set_timestamp_samples(audio->timestamp_samples);
  out->set_num_samples(audio->num_samples);
}

void AudioHeaderToProto(const AudioHeaderInfo& h, v1::AudioHeader* out) {
  switch (h.encoding) {
    case AudioEncoding::kOpus: out->set_encoding(v1::AUDIO_ENCODING_OPUS); break;
    case AudioEncoding::kOggOpus: out->set_encoding(v1::AUDIO_ENCODING_OGG_OPUS); break;
    case AudioEncoding::kPcm16: out->set_encoding(v1::AUDIO_ENCODING_PCM16); break;
  }
  out->set_sample_rate_hz(h.sample_rate_hz);
  out->set_channels(h.channels);
  out->set_pre_skip(h.pre_skip);
  out->set_frame_samples(h.frame_samples);
}

grpc::ServerWriteReactor<v1::SynthesizeResponse>* SpeechServiceImpl::Synthesize(
    grpc::CallbackServerContext* context, const v1::SynthesizeRequest* request) {
  auto* reactor = new SynthesizeReactor(this, context, request);
  reactor->Start();
  return reactor;
}

}  // namespace vox
