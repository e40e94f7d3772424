#include "server/speech_service.h"

#include <algorithm>
#include <deque>
#include <exception>
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

bool ClientVisibleCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      return true;
    default:
      return false;
  }
}

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

v1::AudioEncoding EncodingToProto(AudioEncoding e) {
  switch (e) {
    case AudioEncoding::kOpus: return v1::AUDIO_ENCODING_OPUS;
    case AudioEncoding::kOggOpus: return v1::AUDIO_ENCODING_OGG_OPUS;
    case AudioEncoding::kPcm16: return v1::AUDIO_ENCODING_PCM16;
  }
  return v1::AUDIO_ENCODING_UNSPECIFIED;
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

// One Synthesize call. Lives until OnDone; the engine worker touches it only between Start()
// and Complete(), and Finish() (hence OnDone) happens only after Complete().
class SynthesizeReactor : public grpc::ServerWriteReactor<v1::SynthesizeResponse> {
 public:
  SynthesizeReactor(SpeechServiceImpl* service, grpc::CallbackServerContext* context,
                    const v1::SynthesizeRequest* request)
      : service_(service), context_(context), request_(request) {}

  void Start() {
    start_ = absl::Now();
    deadline_ = DeadlineOf(*context_);
    request_id_ = RequestIdFrom(context_->client_metadata());
    context_->AddInitialMetadata(kRequestIdKey, request_id_);
    if (service_->metrics_ != nullptr) service_->metrics_->StreamOpened("Synthesize");
    if (service_->draining_->load()) {
      return Complete(absl::UnavailableError("the server is shutting down; retry on another server"));
    }
    absl::StatusOr<RoutedSynthesis> routed = RouteSynthesizeRequest(*request_, *service_->registry_);
    if (!routed.ok()) return Complete(routed.status());
    routed_ = std::move(*routed);
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
    Send(std::move(header), /*may_wait=*/false);
    WorkItem item;
    item.deadline = deadline_;
    item.priority = request_->priority();
    item.run = [this] { Run(); };
    item.reject = [this](const absl::Status& s) { Complete(s); };
    if (absl::Status s = routed_.model->queue->Submit(std::move(item)); !s.ok()) {
      if (service_->metrics_ != nullptr) {
        service_->metrics_->Rejected(routed_.model->engine->info().name,
                                     s.code() == absl::StatusCode::kResourceExhausted
                                         ? "queue_full"
                                         : "draining");
      }
      Complete(s);
    }
  }

  void OnWriteDone(bool ok) override {
    const v1::SynthesizeResponse* next = nullptr;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      pending_bytes_ -= pending_.front().ByteSizeLong();
      pending_.pop_front();
      writing_ = false;
      if (!ok) {
        broken_ = true;
        pending_.clear();
        pending_bytes_ = 0;
      }
      if (!pending_.empty()) {
        writing_ = true;
        next = &pending_.front();
      } else if (completed_ && !finish_called_) {
        finish = finish_called_ = true;
      }
    }
    if (next != nullptr) {
      StartWrite(next);
    } else if (finish) {
      DoFinish();
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

  void OnDone() override { delete this; }

 private:
  // Engine worker thread.
  void Run() {
    const absl::Time run_start = absl::Now();
    SpeechEngine* engine = routed_.model->engine.get();
    const std::string& engine_name = engine->info().name;
    Metrics* metrics = service_->metrics_;
    absl::Status sink_error;
    bool asked_to_stop = false;
    absl::Time last_audio;
    bool have_audio = false;
    auto deliver = [&](EncodedAudio* out) -> bool {
      if (out->empty()) return true;
      const absl::Time now = absl::Now();
      if (!have_audio) {
        first_audio_ = now;
        if (metrics != nullptr) metrics->TimeToFirstAudio("Synthesize", now - start_);
      } else if (metrics != nullptr) {
        metrics->AudioChunkGap("Synthesize", now - last_audio);
      }
      have_audio = true;
      last_audio = now;
      return Send(AudioMessage(out), /*may_wait=*/true);
    };
    AudioSink sink = [&](absl::Span<const float> samples) {
      EncodedAudio out;
      if (absl::Status s = encoder_->Push(samples, &out); !s.ok()) {
        sink_error = s;
        return false;
      }
      if (!deliver(&out)) {
        asked_to_stop = true;
        return false;
      }
      return true;
    };
    StopCheck stop = [this, &asked_to_stop]() -> absl::Status {
      absl::Status s = StopStatus();
      if (!s.ok()) asked_to_stop = true;
      return s;
    };
    absl::StatusOr<SynthesisStats> stats;
    try {
      stats = engine->Synthesize(routed_.request, sink, stop);
    } catch (const std::exception& e) {
      stats = absl::InternalError(absl::StrCat("engine threw: ", e.what()));
    } catch (...) {
      stats = absl::InternalError("engine threw an unknown exception");
    }
    if (asked_to_stop || !StopStatus().ok()) {
      service_->stopped_early_.fetch_add(1);
      absl::Status s = StopStatus();
      return Complete(s.ok() ? absl::CancelledError("synthesis stopped") : s);
    }
    if (!sink_error.ok()) {
      LogError(request_id_, absl::StrCat("audio encoding failed: ", sink_error.ToString()));
      return Complete(absl::InternalError(absl::StrCat("audio encoding failed: ",
                                                       sink_error.message(), " (request id ",
                                                       request_id_, ")")));
    }
    if (!stats.ok()) {
      absl::Status s = stats.status();
      if (!ClientVisibleCode(s.code())) {
        LogError(request_id_, absl::StrCat("model '", engine_name, "' failed: ", s.ToString()));
        s = absl::InternalError(absl::StrCat("synthesis failed in model '", engine_name, "': ",
                                             s.message(), " (request id ", request_id_, ")"));
      }
      return Complete(s);
    }
    EncodedAudio tail;
    if (absl::Status s = encoder_->Finish(&tail); !s.ok()) {
      return Complete(absl::InternalError(absl::StrCat("audio encoding failed: ", s.message())));
    }
    if (!deliver(&tail)) {
      service_->stopped_early_.fetch_add(1);
      absl::Status s = StopStatus();
      return Complete(s.ok() ? absl::CancelledError("synthesis stopped") : s);
    }
    const absl::Time end = absl::Now();
    const int rate = encoder_->header().sample_rate_hz;
    v1::SynthesizeResponse summary_msg;
    v1::SynthesisSummary* summary = summary_msg.mutable_summary();
    summary->set_total_samples(encoder_->total_samples());
    const double audio_seconds = rate > 0 ? static_cast<double>(encoder_->total_samples()) / rate : 0;
    summary->set_audio_seconds(audio_seconds);
    summary->set_synthesis_seconds(absl::ToDoubleSeconds(end - start_));
    summary->set_time_to_first_audio_seconds(
        have_audio ? absl::ToDoubleSeconds(first_audio_ - start_) : 0);
    const double compute = absl::ToDoubleSeconds(end - run_start);
    summary->set_real_time_factor(audio_seconds > 0 ? summary->synthesis_seconds() / audio_seconds
                                                    : 0);
    summary->set_codes(stats->codes);
    summary->set_seed(stats->seed);
    summary->set_voice(stats->voice);
    if (metrics != nullptr) {
      if (audio_seconds > 0) metrics->RealTimeFactor(engine_name, compute / audio_seconds);
      metrics->CodesGenerated(engine_name, stats->codes);
      metrics->Compute(engine_name, "synthesize", end - run_start);
    }
    if (!Send(std::move(summary_msg), /*may_wait=*/true)) {
      service_->stopped_early_.fetch_add(1);
      absl::Status s = StopStatus();
      return Complete(s.ok() ? absl::CancelledError("synthesis stopped") : s);
    }
    Complete(absl::OkStatus());
  }

  // OK while the call should go on.
  absl::Status StopStatus() {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return absl::CancelledError("the call was cancelled");
    if (broken_) return absl::CancelledError("the client went away");
    if (!slow_.ok()) return slow_;
    if (absl::Now() > deadline_) {
      return absl::DeadlineExceededError("the call's deadline passed during synthesis");
    }
    return absl::OkStatus();
  }

  // Queues one message; starts a write when none is in flight. With `may_wait`, waits while more
  // than max_pending_bytes are queued (a slow reader), up to slow_reader_timeout. False: the
  // call is over (cancelled, client gone, too slow); the message is dropped.
  bool Send(v1::SynthesizeResponse msg, bool may_wait) {
    const v1::SynthesizeResponse* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (may_wait) {
        auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return pending_bytes_ <= service_->limits_.max_pending_bytes || cancelled_ || broken_;
        };
        if (!mu_.AwaitWithTimeout(absl::Condition(&room), service_->limits_.slow_reader_timeout)) {
          slow_ = absl::ResourceExhaustedError(absl::StrCat(
              "the client read too slowly: more than ", service_->limits_.max_pending_bytes,
              " bytes unread for ", absl::FormatDuration(service_->limits_.slow_reader_timeout)));
          return false;
        }
      }
      if (cancelled_ || broken_) return false;
      pending_bytes_ += msg.ByteSizeLong();
      pending_.push_back(std::move(msg));
      if (!writing_) {
        writing_ = true;
        start = &pending_.front();
      }
    }
    if (start != nullptr) StartWrite(start);
    return true;
  }

  // The last thing the worker (or Start) does with this call.
  void Complete(const absl::Status& status) {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      final_ = status;
      completed_ = true;
      if (!writing_ && !finish_called_) finish = finish_called_ = true;
    }
    if (finish) DoFinish();
  }

  void DoFinish() {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      status = final_;
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
  absl::Time deadline_;
  absl::Time first_audio_;
  std::string request_id_;
  RoutedSynthesis routed_;
  std::unique_ptr<AudioStreamEncoder> encoder_;  // used by the worker after Start

  absl::Mutex mu_;
  std::deque<v1::SynthesizeResponse> pending_ ABSL_GUARDED_BY(mu_);
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status slow_ ABSL_GUARDED_BY(mu_);
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_ ABSL_GUARDED_BY(mu_);
};

SpeechServiceImpl::SpeechServiceImpl(const ModelRegistry* registry,
                                     const std::atomic<bool>* draining, Metrics* metrics,
                                     Limits limits)
    : registry_(registry), draining_(draining), metrics_(metrics), limits_(limits) {}

grpc::ServerWriteReactor<v1::SynthesizeResponse>* SpeechServiceImpl::Synthesize(
    grpc::CallbackServerContext* context, const v1::SynthesizeRequest* request) {
  auto* reactor = new SynthesizeReactor(this, context, request);
  reactor->Start();
  return reactor;
}

}  // namespace vox
