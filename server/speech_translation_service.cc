#include "server/speech_translation_service.h"

#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engines/audio/audio_stream_encoder.h"
#include "server/call_log.h"
#include "server/speech_service.h"
#include "server/translation_service.h"

namespace vox {

namespace {

constexpr char kMethod[] = "/vox.v1.SpeechTranslationService/SpeechTranslate";
constexpr char kMetricName[] = "SpeechTranslate";

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

v1::AudioEncoding EncodingToProto(AudioEncoding e) {
  switch (e) {
    case AudioEncoding::kOpus: return v1::AUDIO_ENCODING_OPUS;
    case AudioEncoding::kOggOpus: return v1::AUDIO_ENCODING_OGG_OPUS;
    case AudioEncoding::kPcm16: return v1::AUDIO_ENCODING_PCM16;
  }
  return v1::AUDIO_ENCODING_UNSPECIFIED;
}

absl::Status WithPrefix(const absl::Status& s, absl::string_view prefix) {
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

bool IsSentenceEnd(const std::string& text, size_t i, size_t* len) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  if (c == '.' || c == '!' || c == '?' || c == ';') {
    *len = 1;
    return true;
  }
  if (text.compare(i, 3, "\xE2\x80\xA6") == 0) {  // …
    *len = 3;
    return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> SplitAtSentenceEnds(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  size_t i = 0;
  while (i < text.size()) {
    size_t len = 0;
    if (IsSentenceEnd(text, i, &len)) {
      current.append(text, i, len);
      i += len;
      if (i == text.size() || absl::ascii_isspace(static_cast<unsigned char>(text[i]))) {
        std::string piece(absl::StripAsciiWhitespace(current));
        if (!piece.empty()) out.push_back(std::move(piece));
        current.clear();
      }
      continue;
    }
    current.push_back(text[i]);
    ++i;
  }
  std::string piece(absl::StripAsciiWhitespace(current));
  if (!piece.empty()) out.push_back(std::move(piece));
  return out;
}

// One session. Lives until OnDone. Engine jobs hold `this`; Finish() is called only once no job
// is queued or running and no write is in flight, so OnDone (delete) happens after all of them.
class SpeechTranslateReactor
    : public grpc::ServerBidiReactor<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse> {
 public:
  SpeechTranslateReactor(SpeechTranslationServiceImpl* service,
                         grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  void Start() {
    service_->sessions_alive_.fetch_add(1);
    start_ = absl::Now();
    deadline_ = DeadlineOf(*context_);
    request_id_ = RequestIdFrom(context_->client_metadata());
    context_->AddInitialMetadata(kRequestIdKey, request_id_);
    if (Metrics* m = service_->metrics_; m != nullptr) {
      m->StreamOpened(kMetricName);
      m->SessionOpened();
    }
    if (service_->draining_->load()) {
      bool finish = false;
      {
        absl::MutexLock lock(&mu_);
        FailLocked(absl::UnavailableError("the server is shutting down; retry on another server"));
        if (ShouldFinishLocked()) finish = finish_called_ = true;
      }
      if (finish) DoFinish();
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      reading_ = true;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    bool finish = false;
    bool read_more = false;
    const v1::SpeechTranslateResponse* write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (failed_ || finish_called_) {
        // Nothing more to read for a session that is over.
      } else if (!ok) {
        read_closed_ = true;
        if (!have_config_) {
          FailLocked(absl::InvalidArgumentError(
              "the stream ended before the config: the first message must be `config`"));
        } else {
          AdvanceLocked();
        }
      } else if (!have_config_) {
        absl::Status s = ConfigureLocked(&write);
        if (!s.ok()) {
          FailLocked(s);
        } else {
          read_more = true;
        }
      } else if (!request_.has_segment()) {
        FailLocked(absl::InvalidArgumentError(
            "only the first message may be `config`; every later one must be a `segment`"));
      } else {
        absl::Status s = AcceptSegmentLocked(request_.segment());
        if (!s.ok()) {
          FailLocked(s);
        } else if (segments_.size() < service_->limits_.max_open_segments) {
          read_more = true;
        }
      }
      if (read_more) reading_ = true;
      if (ShouldFinishLocked()) finish = finish_called_ = true;
    }
    if (write != nullptr) StartWrite(write);
    if (read_more) StartRead(&request_);
    if (finish) DoFinish();
  }

  void OnWriteDone(bool ok) override {
    const v1::SpeechTranslateResponse* next = nullptr;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      pending_.pop_front();
      writing_ = false;
      if (!ok) {
        broken_ = true;
        FailLocked(absl::CancelledError("the client went away"));
      }
      if (!pending_.empty()) {
        writing_ = true;
        next = &pending_.front();
      } else if (ShouldFinishLocked()) {
        finish = finish_called_ = true;
      }
    }
    if (next != nullptr) StartWrite(next);
    if (finish) DoFinish();
  }

  void OnCancel() override {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      FailLocked(absl::CancelledError("the call was cancelled"));
      if (ShouldFinishLocked()) finish = finish_called_ = true;
    }
    if (finish) DoFinish();
  }

  void OnDone() override {
    if (Metrics* m = service_->metrics_; m != nullptr) {
      m->StreamClosed(kMetricName);
      m->SessionClosed();
    }
    service_->sessions_alive_.fetch_sub(1);
    delete this;
  }

 private:
  struct Segment {
    uint64_t id = 0;
    std::string text;
    absl::Time received;
    absl::Time translate_start;
    absl::Time translate_end;
    bool translated = false;
    std::string translation;
  };

  // --- Reading side (reactor threads, under mu_).

  // On success the header is queued and *write is set when the caller must start writing it.
  absl::Status ConfigureLocked(const v1::SpeechTranslateResponse** write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!request_.has_config()) {
      return absl::InvalidArgumentError(
          "the first message must be `config` (source_language, target_language, voice, audio)");
    }
    config_ = request_.config();
    // Check the config exactly as Translate and Synthesize check theirs, with a placeholder text.
    v1::TranslateRequest t;
    t.add_texts("a");
    t.set_source_language(config_.source_language());
    t.set_target_language(config_.target_language());
    *t.mutable_options() = config_.translate_options();
    t.set_priority(config_.priority());
    absl::StatusOr<RoutedTranslation> translation =
        RouteTranslateRequest(t, *service_->registry_, /*max_texts_per_call=*/1);
    if (!translation.ok()) return WithPrefix(translation.status(), "config: ");
    translation_ = std::move(*translation);
    v1::SynthesizeRequest s;
    s.set_text("a");
    s.set_language(config_.target_language());
    s.set_voice(config_.voice());
    *s.mutable_audio() = config_.audio();
    *s.mutable_options() = config_.synthesis_options();
    s.set_priority(config_.priority());
    absl::StatusOr<RoutedSynthesis> synthesis = RouteSynthesizeRequest(s, *service_->registry_);
    if (!synthesis.ok()) {
      return WithPrefix(synthesis.status(), "config (speech in target_language): ");
    }
    synthesis_ = std::move(*synthesis);
    absl::StatusOr<std::unique_ptr<AudioStreamEncoder>> encoder =
        AudioStreamEncoder::Create(synthesis_.audio, synthesis_.model->engine->sample_rate());
    if (!encoder.ok()) return WithPrefix(encoder.status(), "config: audio: ");
    encoder_ = std::move(*encoder);
    have_config_ = true;
    const AudioHeaderInfo& h = encoder_->header();
    v1::SpeechTranslateResponse header;
    header.mutable_header()->set_encoding(EncodingToProto(h.encoding));
    header.mutable_header()->set_sample_rate_hz(h.sample_rate_hz);
    header.mutable_header()->set_channels(h.channels);
    header.mutable_header()->set_pre_skip(h.pre_skip);
    header.mutable_header()->set_frame_samples(h.frame_samples);
    *write = QueueLocked(std::move(header));
    return absl::OkStatus();
  }

  absl::Status AcceptSegmentLocked(const v1::TextSegment& in) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto seg = std::make_shared<Segment>();
    seg->id = in.segment_id();
    seg->text = in.text();
    seg->received = absl::Now();
    segments_.push_back(seg);
    WorkItem item;
    item.deadline = deadline_;
    item.priority = config_.priority();
    item.run = [this, seg] { RunTranslation(seg.get()); };
    item.reject = [this](const absl::Status& s) { JobEnded(s, /*stopped=*/true); };
    ++outstanding_jobs_;
    absl::Status s = translation_.model->queue->Submit(std::move(item));
    if (!s.ok()) {
      --outstanding_jobs_;
      if (Metrics* m = service_->metrics_; m != nullptr) {
        m->Rejected(translation_.model->engine->info().name,
                    s.code() == absl::StatusCode::kResourceExhausted ? "queue_full" : "draining");
      }
      return s;
    }
    return absl::OkStatus();
  }

  // --- Engine jobs.

  // OK while the session should go on.
  absl::Status StopStatus() {
    absl::MutexLock lock(&mu_);
    return StopStatusLocked();
  }
  absl::Status StopStatusLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_) return error_.ok() ? absl::CancelledError("the session ended") : error_;
    if (absl::Now() > deadline_) {
      return absl::DeadlineExceededError("the call's deadline passed during the session");
    }
    return absl::OkStatus();
  }

  // Translation worker thread.
  void RunTranslation(Segment* seg) {
    seg->translate_start = absl::Now();
    if (absl::Status s = StopStatus(); !s.ok()) return JobEnded(s, /*stopped=*/true);
    TranslationEngine* engine = translation_.model->engine.get();
    std::string translation;
    if (!absl::StripAsciiWhitespace(seg->text).empty()) {
      std::vector<std::string> texts = {std::string(absl::StripAsciiWhitespace(seg->text))};
      if (!engine->Validate(texts, config_.source_language(), config_.target_language(),
                            translation_.params)
               .ok()) {
        texts = SplitAtSentenceEnds(texts[0]);  // too long as one text: sentence by sentence
      }
      if (absl::Status s = engine->Validate(texts, config_.source_language(),
                                            config_.target_language(), translation_.params);
          !s.ok()) {
        return JobEnded(absl::InvalidArgumentError(absl::StrCat(
                            "segment ", seg->id, " cannot be translated: ", s.message())),
                        false);
      }
      StopCheck stop = [this] { return StopStatus(); };
      absl::StatusOr<std::vector<TranslationOutput>> outputs;
      try {
        outputs = engine->Translate(texts, config_.source_language(), config_.target_language(),
                                    translation_.params, stop);
      } catch (const std::exception& e) {
        outputs = absl::InternalError(absl::StrCat("engine threw: ", e.what()));
      } catch (...) {
        outputs = absl::InternalError("engine threw an unknown exception");
      }
      if (!outputs.ok()) {
        if (!StopStatus().ok()) return JobEnded(StopStatus(), /*stopped=*/true);
        return JobEnded(EngineError(outputs.status(), engine->info().name, "translation"), false);
      }
      std::vector<std::string> parts;
      for (TranslationOutput& o : *outputs) parts.push_back(std::move(o.text));
      translation = absl::StrJoin(parts, " ");
      if (Metrics* m = service_->metrics_; m != nullptr) {
        m->Compute(engine->info().name, "translate", absl::Now() - seg->translate_start);
      }
    }
    if (service_->hooks_.after_translation) service_->hooks_.after_translation(seg->id);
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      seg->translate_end = absl::Now();
      seg->translation = std::move(translation);
      seg->translated = true;
      --outstanding_jobs_;
      AdvanceLocked();
      if (ShouldFinishLocked()) finish = finish_called_ = true;
    }
    if (finish) DoFinish();
  }

  absl::Status EngineError(const absl::Status& s, const std::string& engine, const char* what) {
    if (ClientVisibleCode(s.code())) return s;
    LogError(request_id_, absl::StrCat("model '", engine, "' failed: ", s.ToString()));
    return absl::InternalError(absl::StrCat(what, " failed in model '", engine, "': ",
                                            s.message(), " (request id ", request_id_, ")"));
  }

  // Starts the next synthesis (or the end of stream) when its turn has come.
  void AdvanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_ || synthesis_in_flight_ || end_submitted_) return;
    WorkItem item;
    item.deadline = deadline_;
    item.priority = config_.priority();
    item.reject = [this](const absl::Status& s) { JobEnded(s, /*stopped=*/true); };
    if (!segments_.empty()) {
      if (!segments_.front()->translated) return;
      std::shared_ptr<Segment> seg = segments_.front();
      item.run = [this, seg] { RunSynthesis(seg.get()); };
      synthesis_in_flight_ = true;
    } else if (read_closed_) {
      item.run = [this] { RunEndOfStream(); };
      end_submitted_ = true;
    } else {
      return;
    }
    ++outstanding_jobs_;
    if (absl::Status s = synthesis_.model->queue->Submit(std::move(item)); !s.ok()) {
      --outstanding_jobs_;
      if (Metrics* m = service_->metrics_; m != nullptr) {
        m->Rejected(synthesis_.model->engine->info().name,
                    s.code() == absl::StatusCode::kResourceExhausted ? "queue_full" : "draining");
      }
      FailLocked(s);
    }
  }

  // Speech worker thread: translation, audio, segment_end of the oldest open segment.
  void RunSynthesis(Segment* seg) {
    if (service_->hooks_.before_synthesis) service_->hooks_.before_synthesis(seg->id);
    const absl::Time synth_start = absl::Now();
    if (absl::Status s = StopStatus(); !s.ok()) return JobEnded(s, /*stopped=*/true);
    v1::SpeechTranslateResponse tmsg;
    tmsg.mutable_translation()->set_segment_id(seg->id);
    tmsg.mutable_translation()->set_text(seg->translation);
    if (!Send(std::move(tmsg))) return JobEnded(StopStatus(), /*stopped=*/true);

    SpeechEngine* engine = synthesis_.model->engine.get();
    const int64_t samples_before = encoder_->total_samples();
    int64_t engine_samples = 0;
    absl::Time first_audio = absl::InfiniteFuture();
    absl::Status sink_error;
    bool stopped = false;
    auto deliver = [&](EncodedAudio* out) -> bool {
      if (out->empty()) return true;
      if (first_audio == absl::InfiniteFuture()) {
        first_audio = absl::Now();
        if (Metrics* m = service_->metrics_; m != nullptr) {
          m->TimeToFirstAudio(kMetricName, first_audio - seg->received);
        }
      }
      v1::SpeechTranslateResponse msg;
      v1::SegmentAudio* audio = msg.mutable_audio();
      audio->set_segment_id(seg->id);
      v1::AudioChunk* chunk = audio->mutable_chunk();
      chunk->set_data(std::move(out->data));
      for (std::string& p : out->packets) *chunk->add_packets() = std::move(p);
      chunk->set_sequence(out->sequence);
      chunk->set_timestamp_samples(out->timestamp_samples);
      chunk->set_num_samples(out->num_samples);
      return Send(std::move(msg));
    };
    const std::string text(absl::StripAsciiWhitespace(seg->translation));
    if (!text.empty()) {
      SynthesisRequest request = synthesis_.request;
      request.text = text;
      std::vector<std::string> pieces = {text};
      if (!engine->Validate(request).ok()) pieces = SplitAtSentenceEnds(text);
      AudioSink sink = [&](absl::Span<const float> samples) {
        engine_samples += static_cast<int64_t>(samples.size());
        EncodedAudio out;
        if (absl::Status s = encoder_->Push(samples, &out); !s.ok()) {
          sink_error = s;
          return false;
        }
        if (!deliver(&out)) {
          stopped = true;
          return false;
        }
        return true;
      };
      StopCheck stop = [this, &stopped]() -> absl::Status {
        absl::Status s = StopStatus();
        if (!s.ok()) stopped = true;
        return s;
      };
      for (const std::string& piece : pieces) {
        request.text = piece;
        if (absl::Status s = engine->Validate(request); !s.ok()) {
          return JobEnded(absl::InvalidArgumentError(absl::StrCat(
                              "segment ", seg->id, ": its translation cannot be spoken: ",
                              s.message())),
                          false);
        }
        absl::StatusOr<SynthesisStats> stats;
        try {
          stats = engine->Synthesize(request, sink, stop);
        } catch (const std::exception& e) {
          stats = absl::InternalError(absl::StrCat("engine threw: ", e.what()));
        } catch (...) {
          stats = absl::InternalError("engine threw an unknown exception");
        }
        if (stopped || !StopStatus().ok()) return JobEnded(StopStatus(), /*stopped=*/true);
        if (!sink_error.ok()) {
          return JobEnded(absl::InternalError(absl::StrCat("audio encoding failed: ",
                                                           sink_error.message(),
                                                           " (request id ", request_id_, ")")),
                          false);
        }
        if (!stats.ok()) {
          return JobEnded(EngineError(stats.status(), engine->info().name, "synthesis"), false);
        }
      }
    }
    EncodedAudio tail;
    if (absl::Status s = encoder_->EndSegment(&tail); !s.ok()) {
      return JobEnded(absl::InternalError(absl::StrCat("audio encoding failed: ", s.message())),
                      false);
    }
    if (!deliver(&tail)) return JobEnded(StopStatus(), /*stopped=*/true);
    const absl::Time end = absl::Now();
    v1::SpeechTranslateResponse emsg;
    v1::SegmentEnd* se = emsg.mutable_segment_end();
    se->set_segment_id(seg->id);
    se->set_total_samples(encoder_->total_samples() - samples_before);
    v1::SegmentTimings* t = se->mutable_timings();
    t->set_queue_seconds(absl::ToDoubleSeconds(seg->translate_start - seg->received));
    t->set_translation_seconds(absl::ToDoubleSeconds(seg->translate_end - seg->translate_start));
    t->set_time_to_first_audio_seconds(
        first_audio == absl::InfiniteFuture() ? 0
                                              : absl::ToDoubleSeconds(first_audio - seg->received));
    t->set_synthesis_seconds(absl::ToDoubleSeconds(end - synth_start));
    const int rate = engine->sample_rate();
    t->set_audio_seconds(rate > 0 ? static_cast<double>(engine_samples) / rate : 0);
    t->set_total_seconds(absl::ToDoubleSeconds(end - seg->received));
    if (Metrics* m = service_->metrics_; m != nullptr && engine_samples > 0) {
      m->Compute(engine->info().name, "synthesize", end - synth_start);
    }
    if (!Send(std::move(emsg))) return JobEnded(StopStatus(), /*stopped=*/true);
    if (Metrics* m = service_->metrics_; m != nullptr) m->SegmentFinished(end - seg->received);

    bool finish = false;
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      segments_.pop_front();
      synthesis_in_flight_ = false;
      --outstanding_jobs_;
      if (!read_closed_ && !reading_ && !failed_ && !finish_called_ &&
          segments_.size() < service_->limits_.max_open_segments) {
        reading_ = read_more = true;  // reading was paused at max_open_segments
      }
      AdvanceLocked();
      if (ShouldFinishLocked()) finish = finish_called_ = true;
    }
    if (read_more) StartRead(&request_);
    if (finish) DoFinish();
  }

  // Speech worker thread, after the last segment of a half-closed session: the stream's tail
  // (Ogg: the EOS page), then OK.
  void RunEndOfStream() {
    if (absl::Status s = StopStatus(); !s.ok()) return JobEnded(s, /*stopped=*/true);
    EncodedAudio tail;
    if (absl::Status s = encoder_->Finish(&tail); !s.ok()) {
      return JobEnded(absl::InternalError(absl::StrCat("audio encoding failed: ", s.message())),
                      false);
    }
    if (!tail.empty()) {
      v1::SpeechTranslateResponse msg;
      v1::SegmentAudio* audio = msg.mutable_audio();
      // The end-of-stream page belongs to the last segment spoken.
      audio->set_segment_id(last_segment_id_);
      v1::AudioChunk* chunk = audio->mutable_chunk();
      chunk->set_data(std::move(tail.data));
      for (std::string& p : tail.packets) *chunk->add_packets() = std::move(p);
      chunk->set_sequence(tail.sequence);
      chunk->set_timestamp_samples(tail.timestamp_samples);
      chunk->set_num_samples(tail.num_samples);
      if (!Send(std::move(msg))) return JobEnded(StopStatus(), /*stopped=*/true);
    }
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      --outstanding_jobs_;
      if (ShouldFinishLocked()) finish = finish_called_ = true;
    }
    if (finish) DoFinish();
  }

  // A job ends without its normal completion: `stopped` when the session was already over (it is
  // counted), else `status` is the error that ends the session.
  void JobEnded(const absl::Status& status, bool stopped) {
    if (stopped) service_->jobs_stopped_.fetch_add(1);
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      --outstanding_jobs_;
      FailLocked(status.ok() ? absl::CancelledError("the session ended") : status);
      if (ShouldFinishLocked()) finish = finish_called_ = true;
    }
    if (finish) DoFinish();
  }

  // --- Writing side.

  // Worker threads: queues one message, waiting while the queue is full. False: the session is
  // over (or the reader stayed too slow); the message is dropped.
  bool Send(v1::SpeechTranslateResponse msg) {
    const v1::SpeechTranslateResponse* start = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return pending_.size() < service_->limits_.max_pending_messages || failed_;
      };
      if (!mu_.AwaitWithTimeout(absl::Condition(&room), service_->limits_.slow_reader_timeout)) {
        FailLocked(absl::ResourceExhaustedError(absl::StrCat(
            "the client read too slowly: ", service_->limits_.max_pending_messages,
            " messages unread for ",
            absl::FormatDuration(service_->limits_.slow_reader_timeout))));
        return false;
      }
      if (failed_) return false;
      if (msg.has_segment_end()) last_segment_id_ = msg.segment_end().segment_id();
      start = QueueLocked(std::move(msg));
    }
    if (start != nullptr) StartWrite(start);
    return true;
  }

  // Appends; returns the message to StartWrite when no write was in flight (the caller starts it
  // after unlocking).
  const v1::SpeechTranslateResponse* QueueLocked(v1::SpeechTranslateResponse msg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    pending_.push_back(std::move(msg));
    const int64_t n = static_cast<int64_t>(pending_.size());
    int64_t seen = service_->max_pending_seen_.load();
    while (n > seen && !service_->max_pending_seen_.compare_exchange_weak(seen, n)) {
    }
    if (writing_) return nullptr;
    writing_ = true;
    return &pending_.front();
  }

  void FailLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_ || done_) return;
    failed_ = true;
    error_ = status;
    // Drop what is queued but not being written: the call ends with `status`.
    while (pending_.size() > (writing_ ? 1u : 0u)) pending_.pop_back();
  }

  bool ShouldFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (failed_ || done_) && outstanding_jobs_ == 0 && !writing_ && !finish_called_;
  }

  void DoFinish() {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      status = failed_ ? error_ : absl::OkStatus();
    }
    const grpc::Status grpc_status = ToGrpcStatus(status);
    const absl::Duration duration = absl::Now() - start_;
    LogCall(kMethod, grpc_status, duration, request_id_);
    if (Metrics* m = service_->metrics_; m != nullptr) {
      m->RequestFinished(kMetricName, status.code(), duration);
    }
    Finish(grpc_status);  // OnDone (delete) follows once every reaction has returned
  }

  SpeechTranslationServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  absl::Time start_;
  absl::Time deadline_;
  std::string request_id_;
  v1::SpeechTranslateRequest request_;  // the read buffer; one read in flight at a time

  // Set by the config (under mu_), then read-only.
  v1::SpeechTranslateConfig config_;
  RoutedTranslation translation_;
  RoutedSynthesis synthesis_;
  // Used only by the speech jobs, which run one at a time per session.
  std::unique_ptr<AudioStreamEncoder> encoder_;
  uint64_t last_segment_id_ = 0;  // speech jobs only (written under mu_ in Send)

  absl::Mutex mu_;
  bool have_config_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::shared_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);  // open, in order
  int outstanding_jobs_ ABSL_GUARDED_BY(mu_) = 0;
  bool synthesis_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool end_submitted_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::SpeechTranslateResponse> pending_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

SpeechTranslationServiceImpl::SpeechTranslationServiceImpl(const ModelRegistry* registry,
                                                           const std::atomic<bool>* draining,
                                                           Metrics* metrics, Limits limits,
                                                           Hooks hooks)
    : registry_(registry),
      draining_(draining),
      metrics_(metrics),
      limits_(limits),
      hooks_(std::move(hooks)) {}

grpc::ServerBidiReactor<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse>*
SpeechTranslationServiceImpl::SpeechTranslate(grpc::CallbackServerContext* context) {
  auto* reactor = new SpeechTranslateReactor(this, context);
  reactor->Start();
  return reactor;
}

}  // namespace vox
