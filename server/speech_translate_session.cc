#include "server/speech_translate_session.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engines/text/unicode.h"
#include "server/call_log.h"

namespace vox {

namespace {

constexpr char kMethod[] = "/vox.v1.SpeechTranslationService/SpeechTranslate";
constexpr char kMetricName[] = "SpeechTranslate";

absl::Status WithPrefix(const absl::Status& s, absl::string_view prefix) {
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

}  // namespace

void SpeechTranslateReactor::Start() {
  service_->sessions_alive_.fetch_add(1);
  {
    absl::MutexLock lock(&service_->sessions_mu_);
    service_->sessions_.insert(this);
  }
  start_ = absl::Now();
  if (IdleStreams* idle = service_->admission_->idle_streams(); idle != nullptr) idle->Add(this);
  request_id_ = RequestIdFrom(context_->client_metadata());
  token_ = TokenNameOf(*context_);
  context_->AddInitialMetadata(kRequestIdKey, request_id_);
  if (Metrics* m = service_->metrics_; m != nullptr) {
    m->StreamOpened(kMetricName);
    m->SessionOpened();
  }
  bool read = false;
  {
    absl::MutexLock lock(&mu_);
    last_active_ = start_;
    if (absl::Status s = service_->admission_->Admit(*context_); !s.ok()) {
      FailLocked(std::move(s));
    } else {
      want_read_ = true;
    }
    read = SettleLocked();
  }
  if (read) StartRead(&request_);
}

void SpeechTranslateReactor::OnReadDone(bool ok) {
  bool read = false;
  {
    absl::MutexLock lock(&mu_);
    reading_ = Reading::kIdle;
    last_active_ = absl::Now();
    if (phase_ == Phase::kEnded || phase_ == Phase::kFailed) {
      // Nothing more to read for a session that is over.
    } else if (!ok) {
      reading_ = Reading::kClosed;
      if (phase_ == Phase::kConfig) {
        FailLocked(absl::InvalidArgumentError(
            "the stream ended before the config: the first message must be `config`"));
      } else if (absl::Status s = EndPartialLocked(); !s.ok()) {
        FailLocked(s);
      } else {
        AdvanceLocked();
      }
    } else if (phase_ == Phase::kConfig && service_->admission_->draining()) {
      FailLocked(Admission::ShuttingDown());
    } else if (phase_ == Phase::kConfig) {
      absl::Status s = ConfigureLocked();
      if (!s.ok()) {
        FailLocked(s);
      } else {
        want_read_ = true;
      }
    } else if (!request_.has_segment()) {
      FailLocked(absl::InvalidArgumentError(
          "only the first message may be `config`; every later one must be a `segment`"));
    } else if (closing_.has_value()) {
      want_read_ = true;  // dropped: the session ends once the segments it took are answered
    } else if (service_->admission_->draining()) {
      // Received after the drain began: refused. The segments before it are still answered;
      // then the session ends (AdvanceLocked) with UNAVAILABLE naming the first refused one.
      if (!refused_segment_.has_value()) refused_segment_ = request_.segment().segment_id();
      AdvanceLocked();
      want_read_ = true;  // a half-close (or more refused segments) may still come
    } else {
      absl::Status s = TakeSegmentLocked(request_.segment());
      if (!s.ok()) {
        FailLocked(s);
      } else if (segments_.size() < service_->limits_.max_open_segments) {
        want_read_ = true;
      }
    }
    read = SettleLocked();
  }
  if (read) StartRead(&request_);
}

void SpeechTranslateReactor::OnWriteDone(bool ok) {
  // Resumes the speech sequence when the queue is back under its mark; a failed write drops it.
  stream_.OnWriteDone(ok);
  bool read = false;
  {
    absl::MutexLock lock(&mu_);
    last_active_ = absl::Now();
    if (!ok) StopLocked(Stop::kClientGone, absl::CancelledError("the client went away"));
    AdvanceLocked();  // the next segment may have waited for room
    read = SettleLocked();
  }
  if (read) StartRead(&request_);
}

void SpeechTranslateReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  StopLocked(Stop::kCancelled, absl::CancelledError("the call was cancelled"));
  SettleLocked();
}

void SpeechTranslateReactor::OnDone() {
  if (IdleStreams* idle = service_->admission_->idle_streams(); idle != nullptr) idle->Remove(this);
  if (Metrics* m = service_->metrics_; m != nullptr) {
    m->StreamClosed(kMetricName);
    m->SessionClosed();
  }
  {
    absl::MutexLock lock(&service_->sessions_mu_);
    service_->sessions_.erase(this);
  }
  service_->sessions_alive_.fetch_sub(1);
  delete this;
}

void SpeechTranslateReactor::Drain() {
  absl::MutexLock lock(&mu_);
  if (phase_ == Phase::kConfig) {
    FailLocked(Admission::ShuttingDown());
  } else {
    AdvanceLocked();
  }
  want_read_ = false;
  SettleLocked();
}

void SpeechTranslateReactor::EndIfIdleSince(absl::Time cutoff) {
  absl::MutexLock lock(&mu_);
  if (phase_ == Phase::kEnded || phase_ == Phase::kFailed) return;
  const bool busy = reading_ != Reading::kInFlight || outstanding_ > 0 || !segments_.empty() ||
                    stream_.size() > 0;
  if (busy || last_active_ > cutoff) return;
  const absl::Status idle = service_->admission_->idle_streams()->Expired(
      token_, "every segment sent was answered");
  if (phase_ == Phase::kConfig) {
    FailLocked(idle);
  } else {
    CloseLocked(idle);
  }
  SettleLocked();
}

void SpeechTranslateReactor::CloseLocked(absl::Status status) {
  if (phase_ == Phase::kConfig) return FailLocked(status);
  if (phase_ != Phase::kRunning || closing_.has_value()) return;
  closing_ = std::move(status);
  if (absl::Status s = EndPartialLocked(); !s.ok()) return FailLocked(s);
  AdvanceLocked();
}

bool SpeechTranslateReactor::AdmitSegmentLocked(const v1::TextSegment& in) {
  const bool new_segment = !partial_id_.has_value();
  const int max = service_->limits_.max_segments;
  if (new_segment && max > 0 && segments_taken_ >= max) {
    if (Metrics* m = service_->metrics_; m != nullptr) {
      m->QuotaRejected(token_, "max_segments_per_session");
    }
    CloseLocked(absl::ResourceExhaustedError(absl::StrCat(
        "segment ", in.segment_id(), " and any sent after it were not accepted: a session may "
        "send ", max, " segments (server.max_segments_per_session); every segment before it "
        "was answered. Open a new session to go on")));
    return false;
  }
  const int64_t characters = static_cast<int64_t>(unicode::CodePoints(in.text()));
  if (absl::Status s = service_->admission_->Charge(token_, characters); !s.ok()) {
    CloseLocked(absl::ResourceExhaustedError(
        absl::StrCat("text from segment ", in.segment_id(),
                     " on was not accepted (everything before it was answered): ", s.message())));
    return false;
  }
  if (new_segment) ++segments_taken_;
  return true;
}

bool SpeechTranslateReactor::SettleLocked() {
  const bool over = phase_ == Phase::kEnded || phase_ == Phase::kFailed;
  if (over && outstanding_ == 0) {
    stream_.Finish(phase_ == Phase::kFailed ? error_ : end_status_);
  }
  const bool read = want_read_ && reading_ == Reading::kIdle && !over;
  want_read_ = false;
  if (read) reading_ = Reading::kInFlight;
  return read;
}

absl::Status SpeechTranslateReactor::ConfigureLocked() {
  if (!request_.has_config()) {
    return absl::InvalidArgumentError(
        "the first message must be `config` (source_language, target_language, voice, audio)");
  }
  config_ = request_.config();
  LiveTextSegmenter::Options cuts;
  cuts.language = config_.source_language();
  partial_text_ = LiveTextSegmenter(cuts);
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
  absl::StatusOr<RoutedSynthesis> synthesis =
      RouteSynthesizeRequest(s, *service_->registry_, service_->voices_);
  if (!synthesis.ok()) {
    return WithPrefix(synthesis.status(), "config (speech in target_language): ");
  }
  synthesis_ = std::move(*synthesis);
  if (Translation() == nullptr || Speech() == nullptr) {
    return Admission::ShuttingDown();
  }
  absl::StatusOr<std::unique_ptr<AudioStreamEncoder>> encoder =
      AudioStreamEncoder::Create(synthesis_.audio, synthesis_.model->engine->sample_rate());
  if (!encoder.ok()) return WithPrefix(encoder.status(), "config: audio: ");
  encoder_ = std::move(*encoder);
  translation_deadline_ =
      DeadlineOnClock(DeadlineOf(*context_), translation_.model->clock);
  speech_deadline_ = DeadlineOnClock(DeadlineOf(*context_), synthesis_.model->clock);
  phase_ = Phase::kRunning;
  v1::SpeechTranslateResponse header;
  AudioHeaderToProto(encoder_->header(), header.mutable_header());
  QueueLocked(std::move(header));
  return absl::OkStatus();
}

absl::Status SpeechTranslateReactor::TakeSegmentLocked(const v1::TextSegment& in) {
  if (partial_id_.has_value() && *partial_id_ != in.segment_id()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segment ", in.segment_id(), " arrived while segment ", *partial_id_,
        " is still partial (end it with a piece whose partial is false)"));
  }
  if (!AdmitSegmentLocked(in)) return absl::OkStatus();
  if (!in.partial() && !partial_id_.has_value()) return AcceptSegmentLocked(in);
  if (!partial_id_.has_value()) {
    partial_id_ = in.segment_id();
    partial_answered_ = false;
  }
  absl::StatusOr<std::vector<std::string>> sentences = partial_text_.Append(in.text());
  if (!sentences.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment ", in.segment_id(), ": ", sentences.status().message()));
  }
  for (const std::string& sentence : *sentences) {
    v1::TextSegment one;
    one.set_segment_id(in.segment_id());
    one.set_text(sentence);
    partial_answered_ = true;
    if (absl::Status s = AcceptSegmentLocked(one); !s.ok()) return s;
  }
  return in.partial() ? absl::OkStatus() : EndPartialLocked();
}

absl::Status SpeechTranslateReactor::EndPartialLocked() {
  if (!partial_id_.has_value()) return absl::OkStatus();
  v1::TextSegment rest;
  rest.set_segment_id(*partial_id_);
  rest.set_text(partial_text_.Flush().value_or(""));
  const bool answer = !rest.text().empty() || !partial_answered_;
  partial_id_.reset();
  return answer ? AcceptSegmentLocked(rest) : absl::OkStatus();
}

absl::Status SpeechTranslateReactor::AcceptSegmentLocked(const v1::TextSegment& in) {
  auto seg = std::make_shared<Segment>();
  seg->id = in.segment_id();
  seg->text = in.text();
  seg->received = absl::Now();
  segments_.push_back(seg);
  const std::string text(absl::StripAsciiWhitespace(seg->text));
  if (text.empty()) {
    seg->translated = true;
    seg->translate_start = seg->translate_end = seg->received;
    AdvanceLocked();
    return absl::OkStatus();
  }
  TranslationEngine* engine = translation_.model->engine.get();
  std::vector<std::string> pieces = {text};
  if (!engine->Validate(pieces, config_.source_language(), config_.target_language(),
                        translation_.params)
           .ok()) {
    pieces = SplitAtSentenceEnds(text, config_.source_language());  // too long as one text
  }
  if (absl::Status s = engine->Validate(pieces, config_.source_language(),
                                        config_.target_language(), translation_.params);
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment ", seg->id, " cannot be translated: ", s.message()));
  }
  seg->outputs.resize(pieces.size());
  RequestOptions options;
  options.priority =
      SchedulerPriority(config_.priority(), translation_.model->options.priority_levels);
  options.deadline = translation_deadline_;
  for (size_t k = 0; k < pieces.size(); ++k) {
    TranslationSequence seq;
    seq.text = pieces[k];
    seq.source = config_.source_language();
    seq.target = config_.target_language();
    seq.params = translation_.params;
    seq.stop = [this] { return StopStatus(translation_.model->clock, translation_deadline_); };
    Segment* raw = seg.get();
    seq.on_join = [this, raw] {
      absl::MutexLock lock(&mu_);
      raw->translate_start = std::min(raw->translate_start, absl::Now());
    };
    TranslationScheduler::Callbacks callbacks;
    callbacks.on_output = [this, seg, k](TranslationOutput out) {
      absl::MutexLock lock(&mu_);
      seg->outputs[k] = std::move(out.text);
    };
    callbacks.on_done = [this, seg](absl::Status s, EndReason why) {
      TranslationDone(seg, std::move(s), why);
    };
    absl::StatusOr<TicketId> ticket =
        Translation()->Submit(std::move(seq), options, std::move(callbacks));
    if (!ticket.ok()) return ticket.status();
    seg->tickets.push_back(*ticket);
    ++seg->translating;
    ++outstanding_;
  }
  return absl::OkStatus();
}

absl::Status SpeechTranslateReactor::StopStatus(Clock* clock, absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kFailed) {
      return error_.ok() ? absl::CancelledError("the session ended") : error_;
    }
  }
  if (clock->Now() >= deadline) {
    return absl::DeadlineExceededError("the call's deadline passed during the session");
  }
  return absl::OkStatus();
}

void SpeechTranslateReactor::TranslationDone(const std::shared_ptr<Segment>& seg,
                                             absl::Status status, EndReason why) {
  bool translated = false;
  bool read = false;
  {
    absl::MutexLock lock(&mu_);
    --outstanding_;
    --seg->translating;
    if (!status.ok()) {
      SequenceFailedLocked(status, why, translation_.model->engine->info().name, "translation");
    } else if (seg->translating == 0 && phase_ != Phase::kFailed) {
      translated = true;
    }
    read = SettleLocked();
  }
  if (translated) {
    if (service_->hooks_.after_translation) service_->hooks_.after_translation(seg->id);
    absl::MutexLock lock(&mu_);
    seg->translate_end = absl::Now();
    if (seg->translate_start == absl::InfiniteFuture()) seg->translate_start = seg->received;
    seg->translation = absl::StrJoin(seg->outputs, " ");
    seg->translated = true;
    AdvanceLocked();
    read = SettleLocked() || read;
  }
  if (read) StartRead(&request_);
}

void SpeechTranslateReactor::SequenceFailedLocked(const absl::Status& status, EndReason why,
                                                  const std::string& engine, const char* what) {
  if (phase_ == Phase::kFailed) {
    service_->jobs_stopped_.fetch_add(1);
    return;
  }
  if (status.code() == absl::StatusCode::kDeadlineExceeded) service_->jobs_stopped_.fetch_add(1);
  FailLocked(EngineError(SlowReaderStatus(status, why), engine, what));
}

absl::Status SpeechTranslateReactor::EngineError(const absl::Status& s, const std::string& engine,
                                                 const char* what) {
  if (ClientVisibleCode(s.code())) return s;
  LogError(request_id_, absl::StrCat("model '", engine, "' failed: ", s.ToString()));
  return absl::InternalError(absl::StrCat(what, " failed in model '", engine, "': ",
                                          s.message(), " (request id ", request_id_, ")"));
}

void SpeechTranslateReactor::AdvanceLocked() {
  while (phase_ == Phase::kRunning && !speech_ticket_.has_value() && !stream_.paused()) {
    if (segments_.empty()) {
      if (closing_.has_value()) {
        EndOfStreamLocked(*closing_);
      } else if (reading_ == Reading::kClosed && !refused_segment_.has_value()) {
        EndOfStreamLocked(absl::OkStatus());
      } else if (service_->admission_->draining()) {
        // Draining and every admitted segment is answered: the session is over.
        EndOfStreamLocked(absl::UnavailableError(
            refused_segment_.has_value()
                ? absl::StrCat("the server is shutting down: segment ", *refused_segment_,
                               " and any sent after it were not accepted (every segment "
                               "before it was answered); send them to another server")
                : std::string("the server is shutting down: every segment sent so far was "
                              "answered; continue on another server")));
      }
      return;
    }
    std::shared_ptr<Segment> seg = segments_.front();
    if (!seg->translated) return;
    if (!seg->speaking) {
      if (!StartSpeakingLocked(seg.get())) return;
      continue;
    }
    if (seg->next_piece < seg->speech_pieces.size()) {
      SubmitSpeechLocked(seg);
      return;
    }
    FinishSegmentLocked(seg.get());
    segments_.pop_front();
    want_read_ = true;  // reading may have paused at max_open_segments
  }
}

bool SpeechTranslateReactor::StartSpeakingLocked(Segment* seg) {
  seg->speaking = true;
  seg->synth_start = absl::Now();
  v1::SpeechTranslateResponse tmsg;
  tmsg.mutable_translation()->set_segment_id(seg->id);
  tmsg.mutable_translation()->set_text(seg->translation);
  QueueLocked(std::move(tmsg));
  const std::string text(absl::StripAsciiWhitespace(seg->translation));
  if (text.empty()) return true;
  SpeechEngine* engine = synthesis_.model->engine.get();
  SynthesisRequest request = synthesis_.request;
  request.text = text;
  seg->speech_pieces = {text};
  if (!engine->Validate(request).ok()) {
    seg->speech_pieces = SplitAtSentenceEnds(text, config_.target_language());
  }
  for (const std::string& piece : seg->speech_pieces) {
    request.text = piece;
    if (absl::Status s = engine->Validate(request); !s.ok()) {
      FailLocked(absl::InvalidArgumentError(absl::StrCat(
          "segment ", seg->id, ": its translation cannot be spoken: ", s.message())));
      return false;
    }
  }
  return true;
}

void SpeechTranslateReactor::SubmitSpeechLocked(const std::shared_ptr<Segment>& seg) {
  SpeechSequence seq;
  seq.request = synthesis_.request;
  seq.request.text = seg->speech_pieces[seg->next_piece];
  seq.stop = [this] { return StopStatus(synthesis_.model->clock, speech_deadline_); };
  if (seg->next_piece == 0 && service_->hooks_.before_synthesis) {
    const uint64_t id = seg->id;
    seq.on_join = [this, id] { service_->hooks_.before_synthesis(id); };
  }
  SpeechScheduler::Callbacks callbacks;
  callbacks.on_output = [this, seg](SpeechChunk chunk) { SpeechOutput(seg.get(), chunk); };
  callbacks.on_done = [this, seg](absl::Status s, EndReason why) {
    SpeechDone(seg.get(), std::move(s), why);
  };
  RequestOptions options;
  options.priority =
      SchedulerPriority(config_.priority(), synthesis_.model->options.priority_levels);
  options.deadline = speech_deadline_;
  absl::StatusOr<TicketId> ticket = Speech()->Submit(std::move(seq), options, std::move(callbacks));
  if (!ticket.ok()) {
    FailLocked(ticket.status());
    return;
  }
  speech_ticket_ = *ticket;
  ++outstanding_;
  // While the queue is over its mark the sequence sits out steps, keeping its slot.
  SpeechScheduler* speech = Speech();
  const TicketId t = *ticket;
  stream_.SetFlowControl([speech, t] { speech->Pause(t); }, [speech, t] { speech->Resume(t); });
}

void SpeechTranslateReactor::SpeechOutput(Segment* seg, SpeechChunk& chunk) {
  absl::MutexLock lock(&mu_);
  if (phase_ == Phase::kFailed) return;
  seg->engine_samples += static_cast<int64_t>(chunk.samples.size());
  if (!chunk.samples.empty() && seg->first_audio == absl::InfiniteFuture()) {
    seg->first_audio = absl::Now();
    if (Metrics* m = service_->metrics_; m != nullptr) {
      m->TimeToFirstAudio(kMetricName, seg->first_audio - seg->received);
    }
  }
  QueueProducerLocked([this, id = seg->id, samples = std::move(chunk.samples)] {
    EncodedAudio out;
    absl::Status s = encoder_->Push(samples, &out);
    if (!s.ok()) {
      EncodingFailed(absl::StrCat("audio encoding failed: ", s.message(), " (request id ",
                                  request_id_, ")"));
    }
    return AudioMessage(id, s, &out);
  });
}

void SpeechTranslateReactor::SpeechDone(Segment* seg, absl::Status status, EndReason why) {
  bool read = false;
  {
    absl::MutexLock lock(&mu_);
    --outstanding_;
    speech_ticket_.reset();
    stream_.SetFlowControl(nullptr, nullptr);
    if (!status.ok()) {
      SequenceFailedLocked(status, why, synthesis_.model->engine->info().name, "synthesis");
    } else if (phase_ != Phase::kFailed) {
      ++seg->next_piece;
      AdvanceLocked();
    }
    read = SettleLocked();
  }
  if (read) StartRead(&request_);
}

void SpeechTranslateReactor::FinishSegmentLocked(Segment* seg) {
  const uint64_t id = seg->id;
  QueueProducerLocked([this, id] {
    EncodedAudio tail;
    absl::Status s = encoder_->EndSegment(&tail);
    if (!s.ok()) EncodingFailed(absl::StrCat("audio encoding failed: ", s.message()));
    return AudioMessage(id, s, &tail);
  });
  const absl::Time end = absl::Now();
  v1::SpeechTranslateResponse emsg;
  v1::SegmentEnd* se = emsg.mutable_segment_end();
  se->set_segment_id(id);
  v1::SegmentTimings* t = se->mutable_timings();
  t->set_queue_seconds(absl::ToDoubleSeconds(seg->translate_start - seg->received));
  t->set_translation_seconds(absl::ToDoubleSeconds(seg->translate_end - seg->translate_start));
  t->set_time_to_first_audio_seconds(
      seg->first_audio == absl::InfiniteFuture()
          ? 0
          : absl::ToDoubleSeconds(seg->first_audio - seg->received));
  t->set_synthesis_seconds(absl::ToDoubleSeconds(end - seg->synth_start));
  const int rate = synthesis_.model->engine->sample_rate();
  t->set_audio_seconds(rate > 0 ? static_cast<double>(seg->engine_samples) / rate : 0);
  t->set_total_seconds(absl::ToDoubleSeconds(end - seg->received));
  // Compute time is the schedulers' (vox_compute_seconds per step); this is the segment's.
  if (Metrics* m = service_->metrics_; m != nullptr) m->SegmentFinished(end - seg->received);
  last_segment_id_ = id;
  // The segment's samples at the output rate: what the encoder produced since the last one.
  QueueProducerLocked([this, emsg = std::move(emsg)]() mutable {
    const int64_t total = encoder_->total_samples();
    emsg.mutable_segment_end()->set_total_samples(total - samples_at_segment_start_);
    samples_at_segment_start_ = total;
    return std::optional<v1::SpeechTranslateResponse>(std::move(emsg));
  });
}

void SpeechTranslateReactor::EndOfStreamLocked(absl::Status status) {
  // The end-of-stream page belongs to the last segment spoken.
  QueueProducerLocked([this, id = last_segment_id_] {
    EncodedAudio tail;
    absl::Status s = encoder_->Finish(&tail);
    if (!s.ok()) EncodingFailed(absl::StrCat("audio encoding failed: ", s.message()));
    return AudioMessage(id, s, &tail);
  });
  phase_ = Phase::kEnded;
  end_status_ = std::move(status);
}

std::optional<v1::SpeechTranslateResponse> SpeechTranslateReactor::AudioMessage(
    uint64_t id, const absl::Status& encoded, EncodedAudio* out) {
  if (!encoded.ok() || out->empty()) return std::nullopt;
  v1::SpeechTranslateResponse msg;
  v1::SegmentAudio* audio = msg.mutable_audio();
  audio->set_segment_id(id);
  AudioChunkToProto(out, audio->mutable_chunk());
  return msg;
}

void SpeechTranslateReactor::EncodingFailed(const std::string& message) {
  absl::MutexLock lock(&mu_);
  FailLocked(absl::InternalError(message));
  SettleLocked();
}

void SpeechTranslateReactor::NoteQueueSize() {
  const int64_t n = static_cast<int64_t>(stream_.size());
  int64_t seen = service_->max_pending_seen_.load();
  while (n > seen && !service_->max_pending_seen_.compare_exchange_weak(seen, n)) {
  }
}

void SpeechTranslateReactor::StopLocked(Stop cause, const absl::Status& status) {
  if (stop_ == Stop::kNone || cause == Stop::kCancelled) stop_ = cause;
  FailLocked(status);
  stream_.Cancel(status);
}

void SpeechTranslateReactor::FailLocked(const absl::Status& status) {
  if (phase_ == Phase::kEnded || phase_ == Phase::kFailed) return;
  phase_ = Phase::kFailed;
  error_ = status;
  stream_.Cancel(status);
  for (const auto& seg : segments_) {
    if (seg->translating > 0) {
      for (TicketId t : seg->tickets) Translation()->Cancel(t);
    }
  }
  if (speech_ticket_.has_value()) Speech()->Cancel(*speech_ticket_);
}

void SpeechTranslateReactor::DoFinish(absl::Status /*stream_status*/) {
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    status = phase_ == Phase::kFailed ? error_ : end_status_;
    if (phase_ != Phase::kFailed && stop_ != Stop::kNone) {
      status = stop_ == Stop::kCancelled ? absl::CancelledError("the call was cancelled")
                                         : absl::CancelledError("the client went away");
    }
  }
  const grpc::Status grpc_status = ToGrpcStatus(status);
  const absl::Duration duration = absl::Now() - start_;
  LogCall(kMethod, grpc_status, duration, request_id_, token_);
  if (Metrics* m = service_->metrics_; m != nullptr) {
    m->RequestFinished(kMetricName, status.code(), duration);
  }
  Finish(grpc_status);  // OnDone (delete) follows once every reaction has returned
}

}  // namespace vox
