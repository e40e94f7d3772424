#include "server/speech_translation_service.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
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

// One session. Lives until OnDone. Every sequence it submitted holds `this` in its callbacks;
// Finish() is called only once none is queued or running and no write is in flight, so OnDone
// (delete) happens after all of them.
//
// Threads: reactions (gRPC), the translation scheduler's worker (translation callbacks), the speech
// scheduler's worker (speech callbacks). All session state, the encoder included, is guarded by
// mu_. Lock order: mu_ before a scheduler's lock (Submit/Cancel/Pause/Resume are called under mu_;
// schedulers never hold their lock while calling back).
class SpeechTranslateReactor
    : public grpc::ServerBidiReactor<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse> {
 public:
  SpeechTranslateReactor(SpeechTranslationServiceImpl* service,
                         grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  void Start() {
    service_->sessions_alive_.fetch_add(1);
    {
      absl::MutexLock lock(&service_->sessions_mu_);
      service_->sessions_.insert(this);
    }
    start_ = absl::Now();
    request_id_ = RequestIdFrom(context_->client_metadata());
    context_->AddInitialMetadata(kRequestIdKey, request_id_);
    if (Metrics* m = service_->metrics_; m != nullptr) {
      m->StreamOpened(kMetricName);
      m->SessionOpened();
    }
    Actions act;
    {
      absl::MutexLock lock(&mu_);
      if (service_->draining_->load()) {
        FailLocked(absl::UnavailableError("the server is shutting down; retry on another server"));
      } else {
        reading_ = true;
        act.read = true;
      }
      CollectLocked(&act);
    }
    Run(act);
  }

  void OnReadDone(bool ok) override {
    Actions act;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      bool read_more = false;
      if (failed_ || done_ || finish_called_) {
        // Nothing more to read for a session that is over.
      } else if (!ok) {
        read_closed_ = true;
        if (!have_config_) {
          FailLocked(absl::InvalidArgumentError(
              "the stream ended before the config: the first message must be `config`"));
        } else {
          AdvanceLocked();
        }
      } else if (!have_config_ && service_->draining_->load()) {
        FailLocked(absl::UnavailableError("the server is shutting down; retry on another server"));
      } else if (!have_config_) {
        absl::Status s = ConfigureLocked();
        if (!s.ok()) {
          FailLocked(s);
        } else {
          read_more = true;
        }
      } else if (!request_.has_segment()) {
        FailLocked(absl::InvalidArgumentError(
            "only the first message may be `config`; every later one must be a `segment`"));
      } else if (service_->draining_->load()) {
        // Received after the drain began: refused. The segments before it are still answered;
        // then the session ends (AdvanceLocked) with UNAVAILABLE naming the first refused one.
        if (!refused_segment_.has_value()) refused_segment_ = request_.segment().segment_id();
        AdvanceLocked();
        read_more = !done_;  // a half-close (or more refused segments) may still come
      } else {
        absl::Status s = AcceptSegmentLocked(request_.segment());
        if (!s.ok()) {
          FailLocked(s);
        } else if (segments_.size() < service_->limits_.max_open_segments) {
          read_more = true;
        }
      }
      if (read_more) {
        reading_ = true;
        act.read = true;
      }
      CollectLocked(&act);
    }
    Run(act);
  }

  void OnWriteDone(bool ok) override {
    Actions act;
    {
      absl::MutexLock lock(&mu_);
      pending_.pop_front();
      writing_ = false;
      if (!ok) {
        broken_ = true;
        FailLocked(absl::CancelledError("the client went away"));
      }
      if (speech_paused_ && !QueueFullLocked() && speech_in_flight_) {
        speech_paused_ = false;
        Speech()->Resume(speech_ticket_);
      }
      AdvanceLocked();  // the next segment may have waited for room
      CollectLocked(&act);
    }
    Run(act);
  }

  void OnCancel() override {
    Actions act;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      FailLocked(absl::CancelledError("the call was cancelled"));
      CollectLocked(&act);
    }
    Run(act);
  }

  void OnDone() override {
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

  // What to do after unlocking.
  struct Actions {
    const v1::SpeechTranslateResponse* write = nullptr;
    bool read = false;
    bool finish = false;
    std::vector<uint64_t> translated;  // segment ids for the after_translation hook
  };

  // The drain began (BeginDrain, under the service's sessions_mu_): a session without a config
  // ends at once (UNAVAILABLE), one with nothing left to answer too; the others end once their
  // admitted segments are answered. Returns what the caller must Run once it has released
  // sessions_mu_: a write or the finish, never a read. Finish is only ever called by whoever
  // claimed finish_called_ and never while a write is claimed, so the session stays alive
  // until the caller has run them.
  Actions DrainActions();
  static void RunDrain(SpeechTranslateReactor* session, const Actions& act) { session->Run(act); }

 private:
  struct Segment {
    uint64_t id = 0;
    std::string text;
    absl::Time received;
    // Translation: one sequence per piece (the whole text, or its sentences when too long).
    std::vector<TicketId> tickets;
    std::vector<std::string> outputs;
    int translating = 0;  // translation sequences not yet ended
    absl::Time translate_start = absl::InfiniteFuture();
    absl::Time translate_end;
    bool translated = false;
    std::string translation;
    // Speech: one sequence per piece, in order, one at a time.
    bool speaking = false;  // its translation message went out
    std::vector<std::string> speech_pieces;
    size_t next_piece = 0;
    absl::Time synth_start;
    absl::Time first_audio = absl::InfiniteFuture();
    int64_t samples_before = 0;
    int64_t engine_samples = 0;
  };

  TranslationScheduler* Translation() const { return translation_.model->scheduler.get(); }
  SpeechScheduler* Speech() const { return synthesis_.model->scheduler.get(); }

  void CollectLocked(Actions* act) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!writing_ && !pending_.empty()) {
      writing_ = true;
      act->write = &pending_.front();
    }
    if (want_read_ && !reading_ && !failed_ && !done_ && !finish_called_ && !read_closed_) {
      reading_ = true;
      act->read = true;
    }
    want_read_ = false;
    if (ShouldFinishLocked()) act->finish = finish_called_ = true;
  }

  void Run(const Actions& act) {
    if (act.write != nullptr) StartWrite(act.write);
    if (act.read) StartRead(&request_);
    if (act.finish) DoFinish();  // may delete this: nothing after
  }

  // --- Reading side (reactor threads, under mu_).

  absl::Status ConfigureLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
    if (Translation() == nullptr || Speech() == nullptr) {
      return absl::UnavailableError("the server is shutting down; retry on another server");
    }
    absl::StatusOr<std::unique_ptr<AudioStreamEncoder>> encoder =
        AudioStreamEncoder::Create(synthesis_.audio, synthesis_.model->engine->sample_rate());
    if (!encoder.ok()) return WithPrefix(encoder.status(), "config: audio: ");
    encoder_ = std::move(*encoder);
    translation_deadline_ =
        DeadlineOnClock(DeadlineOf(*context_), translation_.model->clock);
    speech_deadline_ = DeadlineOnClock(DeadlineOf(*context_), synthesis_.model->clock);
    have_config_ = true;
    const AudioHeaderInfo& h = encoder_->header();
    v1::SpeechTranslateResponse header;
    header.mutable_header()->set_encoding(EncodingToProto(h.encoding));
    header.mutable_header()->set_sample_rate_hz(h.sample_rate_hz);
    header.mutable_header()->set_channels(h.channels);
    header.mutable_header()->set_pre_skip(h.pre_skip);
    header.mutable_header()->set_frame_samples(h.frame_samples);
    QueueLocked(std::move(header));
    return absl::OkStatus();
  }

  // Submits the segment's translation (one sequence per piece) at once: translations of later
  // segments run while earlier ones are spoken.
  absl::Status AcceptSegmentLocked(const v1::TextSegment& in) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
      pieces = SplitAtSentenceEnds(text);  // too long as one text: sentence by sentence
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

  // --- Scheduler callbacks.

  // OK while the session should go on (polled by whole-call engines on worker threads).
  absl::Status StopStatus(Clock* clock, absl::Time deadline) {
    {
      absl::MutexLock lock(&mu_);
      if (failed_) return error_.ok() ? absl::CancelledError("the session ended") : error_;
    }
    if (clock->Now() >= deadline) {
      return absl::DeadlineExceededError("the call's deadline passed during the session");
    }
    return absl::OkStatus();
  }

  // Translation worker thread: one piece of `seg` ended.
  void TranslationDone(const std::shared_ptr<Segment>& seg, absl::Status status, EndReason why) {
    bool translated = false;
    Actions act;
    {
      absl::MutexLock lock(&mu_);
      --outstanding_;
      --seg->translating;
      if (!status.ok()) {
        SequenceFailedLocked(status, why, translation_.model->engine->info().name, "translation");
      } else if (seg->translating == 0 && !failed_) {
        translated = true;
      }
      CollectLocked(&act);
    }
    if (translated) {
      if (service_->hooks_.after_translation) service_->hooks_.after_translation(seg->id);
      absl::MutexLock lock(&mu_);
      seg->translate_end = absl::Now();
      if (seg->translate_start == absl::InfiniteFuture()) seg->translate_start = seg->received;
      seg->translation = absl::StrJoin(seg->outputs, " ");
      seg->translated = true;
      AdvanceLocked();
      CollectLocked(&act);
    }
    Run(act);
  }

  // A sequence ended non-OK: counted as stopped when the session was already over, else its
  // status (engine failures as INTERNAL) ends the session.
  void SequenceFailedLocked(const absl::Status& status, EndReason why, const std::string& engine,
                            const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_) {
      service_->jobs_stopped_.fetch_add(1);
      return;
    }
    if (status.code() == absl::StatusCode::kDeadlineExceeded) service_->jobs_stopped_.fetch_add(1);
    FailLocked(EngineError(SlowReaderStatus(status, why), engine, what));
  }

  absl::Status EngineError(const absl::Status& s, const std::string& engine, const char* what) {
    if (ClientVisibleCode(s.code())) return s;
    LogError(request_id_, absl::StrCat("model '", engine, "' failed: ", s.ToString()));
    return absl::InternalError(absl::StrCat(what, " failed in model '", engine, "': ",
                                            s.message(), " (request id ", request_id_, ")"));
  }

  // The outbound queue is at its high-water mark: the running speech sequence is paused and no
  // segment starts. One below max_pending_messages, so that the segment_end a finishing
  // sequence adds still fits.
  bool QueueFullLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t max = std::max<size_t>(service_->limits_.max_pending_messages, 2);
    return pending_.size() >= max - 1;
  }

  // Starts the next output of the session when its turn has come: the oldest open segment's
  // translation message, then its speech pieces one sequence at a time, then its segment_end;
  // after the last segment of a half-closed session, the stream's tail.
  void AdvanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!failed_ && !done_ && !speech_in_flight_ && !QueueFullLocked()) {
      if (segments_.empty()) {
        if (read_closed_ && !refused_segment_.has_value()) {
          EndOfStreamLocked(absl::OkStatus());
        } else if (have_config_ && service_->draining_->load()) {
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

  // Queues the translation and decides the speech pieces. False when the session failed.
  bool StartSpeakingLocked(Segment* seg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    seg->speaking = true;
    seg->synth_start = absl::Now();
    seg->samples_before = encoder_->total_samples();
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
    if (!engine->Validate(request).ok()) seg->speech_pieces = SplitAtSentenceEnds(text);
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

  void SubmitSpeechLocked(const std::shared_ptr<Segment>& seg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
    speech_in_flight_ = true;
    speech_paused_ = false;
    ++outstanding_;
  }

  // Speech worker thread: one step's audio of the segment being spoken.
  void SpeechOutput(Segment* seg, const SpeechChunk& chunk) {
    Actions act;
    {
      absl::MutexLock lock(&mu_);
      if (failed_) return;
      seg->engine_samples += static_cast<int64_t>(chunk.samples.size());
      EncodedAudio out;
      if (absl::Status s = encoder_->Push(chunk.samples, &out); !s.ok()) {
        FailLocked(absl::InternalError(absl::StrCat("audio encoding failed: ", s.message(),
                                                    " (request id ", request_id_, ")")));
      } else {
        QueueAudioLocked(seg, &out);
        if (!speech_paused_ && QueueFullLocked()) {
          speech_paused_ = true;  // sits out steps, keeping its slot, until writes drain
          Speech()->Pause(speech_ticket_);
        }
      }
      CollectLocked(&act);
    }
    Run(act);
  }

  void QueueAudioLocked(Segment* seg, EncodedAudio* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (out->empty()) return;
    if (seg->first_audio == absl::InfiniteFuture()) {
      seg->first_audio = absl::Now();
      if (Metrics* m = service_->metrics_; m != nullptr) {
        m->TimeToFirstAudio(kMetricName, seg->first_audio - seg->received);
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
    QueueLocked(std::move(msg));
  }

  // Speech worker thread (or the cancelling thread for a queued sequence): a piece ended.
  void SpeechDone(Segment* seg, absl::Status status, EndReason why) {
    Actions act;
    {
      absl::MutexLock lock(&mu_);
      --outstanding_;
      speech_in_flight_ = false;
      speech_paused_ = false;
      if (!status.ok()) {
        SequenceFailedLocked(status, why, synthesis_.model->engine->info().name, "synthesis");
      } else if (!failed_) {
        ++seg->next_piece;
        AdvanceLocked();
      }
      CollectLocked(&act);
    }
    Run(act);
  }

  // The segment's audio is complete: close it in the stream, then segment_end with its timings.
  void FinishSegmentLocked(Segment* seg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EncodedAudio tail;
    if (absl::Status s = encoder_->EndSegment(&tail); !s.ok()) {
      FailLocked(absl::InternalError(absl::StrCat("audio encoding failed: ", s.message())));
      return;
    }
    QueueAudioLocked(seg, &tail);
    const absl::Time end = absl::Now();
    v1::SpeechTranslateResponse emsg;
    v1::SegmentEnd* se = emsg.mutable_segment_end();
    se->set_segment_id(seg->id);
    se->set_total_samples(encoder_->total_samples() - seg->samples_before);
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
    last_segment_id_ = seg->id;
    QueueLocked(std::move(emsg));
  }

  // After the last segment of a half-closed session (status OK), or of a session the drain ends
  // (UNAVAILABLE): the stream's tail (Ogg: the EOS page), then the call ends with `status` once
  // it is written.
  void EndOfStreamLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EncodedAudio tail;
    if (absl::Status s = encoder_->Finish(&tail); !s.ok()) {
      FailLocked(absl::InternalError(absl::StrCat("audio encoding failed: ", s.message())));
      return;
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
      QueueLocked(std::move(msg));
    }
    done_ = true;
    end_status_ = std::move(status);
  }

  // --- Writing side.

  void QueueLocked(v1::SpeechTranslateResponse msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_) return;
    pending_.push_back(std::move(msg));
    const int64_t n = static_cast<int64_t>(pending_.size());
    int64_t seen = service_->max_pending_seen_.load();
    while (n > seen && !service_->max_pending_seen_.compare_exchange_weak(seen, n)) {
    }
  }

  // Ends the session with `status`: drops what is queued but not being written and cancels
  // every sequence it still has (they stop at their next step; queued ones at once).
  void FailLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_ || done_) return;
    failed_ = true;
    error_ = status;
    while (pending_.size() > (writing_ ? 1u : 0u)) pending_.pop_back();
    if (!have_config_) return;
    for (const auto& seg : segments_) {
      if (seg->translating > 0) {
        for (TicketId t : seg->tickets) Translation()->Cancel(t);
      }
    }
    if (speech_in_flight_) Speech()->Cancel(speech_ticket_);
  }

  bool ShouldFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (failed_ || done_) && outstanding_ == 0 && !writing_ && pending_.empty() &&
           !finish_called_;
  }

  void DoFinish() {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      status = failed_ ? error_ : end_status_;
      // Ended (done_) but cancelled or the client gone before the last writes went out: what
      // was queued never reached the client, so the call is not logged as it would have ended.
      if (!failed_ && (cancelled_ || broken_)) {
        status = cancelled_ ? absl::CancelledError("the call was cancelled")
                            : absl::CancelledError("the client went away");
      }
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
  std::string request_id_;
  v1::SpeechTranslateRequest request_;  // the read buffer; one read in flight at a time

  // Set by the config (under mu_), then read-only.
  v1::SpeechTranslateConfig config_;
  RoutedTranslation translation_;
  RoutedSynthesis synthesis_;
  absl::Time translation_deadline_ = absl::InfiniteFuture();  // on the translation clock
  absl::Time speech_deadline_ = absl::InfiniteFuture();       // on the speech clock

  absl::Mutex mu_;
  std::unique_ptr<AudioStreamEncoder> encoder_ ABSL_GUARDED_BY(mu_);
  uint64_t last_segment_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool have_config_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::shared_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);  // open, in order
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;  // sequences submitted and not yet ended
  bool speech_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool speech_paused_ ABSL_GUARDED_BY(mu_) = false;
  TicketId speech_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool want_read_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::SpeechTranslateResponse> pending_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);  // the call's status when done_ (not failed_)
  std::optional<uint64_t> refused_segment_ ABSL_GUARDED_BY(mu_);  // the first one the drain refused
};

SpeechTranslateReactor::Actions SpeechTranslateReactor::DrainActions() {
  Actions act;
  absl::MutexLock lock(&mu_);
  if (!have_config_) {
    FailLocked(absl::UnavailableError("the server is shutting down; retry on another server"));
  } else {
    AdvanceLocked();
  }
  want_read_ = false;
  CollectLocked(&act);
  return act;
}

SpeechTranslationServiceImpl::SpeechTranslationServiceImpl(const ModelRegistry* registry,
                                                           const std::atomic<bool>* draining,
                                                           Metrics* metrics, Limits limits,
                                                           Hooks hooks)
    : registry_(registry),
      draining_(draining),
      metrics_(metrics),
      limits_(limits),
      hooks_(std::move(hooks)) {}

void SpeechTranslationServiceImpl::BeginDrain() {
  // A session is deleted only after its Finish, which only the holder of its finish_called_
  // calls; so one with a write or a finish to run here stays alive until it is run.
  std::vector<std::pair<SpeechTranslateReactor*, SpeechTranslateReactor::Actions>> runs;
  {
    absl::MutexLock lock(&sessions_mu_);
    for (SpeechTranslateReactor* session : sessions_) {
      SpeechTranslateReactor::Actions act = session->DrainActions();
      if (act.write != nullptr || act.finish) runs.emplace_back(session, std::move(act));
    }
  }
  for (const auto& [session, act] : runs) SpeechTranslateReactor::RunDrain(session, act);
}

grpc::ServerBidiReactor<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse>*
SpeechTranslationServiceImpl::SpeechTranslate(grpc::CallbackServerContext* context) {
  auto* reactor = new SpeechTranslateReactor(this, context);
  reactor->Start();
  return reactor;
}

}  // namespace vox
