#include "server/synthesize_stream_reactor.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engines/text/ssml_parser.h"
#include "engines/text/unicode.h"

namespace vox {

SynthesizeStreamReactor::SynthesizeStreamReactor(SpeechServiceImpl* service,
                                                 grpc::CallbackServerContext* context)
    : service_(service),
      context_(context),
      segmenter_(LiveTextSegmenter::Options{}),
      call_(service, "SynthesizeStream",
            [this](const v1::SynthesizeResponse* m) { StartWrite(m); },
            [this](const grpc::Status& s) { Finish(s); }) {}

void SynthesizeStreamReactor::Start() {
  if (IdleStreams* idle = service_->admission_->idle_streams(); idle != nullptr) idle->Add(this);
  if (!call_.Open(context_)) return;
  ReadNext();
}

void SynthesizeStreamReactor::OnDone() {
  if (IdleStreams* idle = service_->admission_->idle_streams(); idle != nullptr) idle->Remove(this);
  delete this;
}

void SynthesizeStreamReactor::OnWriteDone(bool ok) {
  activity_.WriteDone(absl::Now());
  call_.OnWriteDone(ok);
}

void SynthesizeStreamReactor::ReadNext() {
  if (activity_.BeginRead()) StartRead(&request_);
}

void SynthesizeStreamReactor::EndInput(absl::Status why) {
  const absl::Status flushed = Flush(absl::Now());
  if (!flushed.ok()) return call_.Fail(flushed);
  call_.EndOfInput(std::move(why));
}

void SynthesizeStreamReactor::EndIfIdleSince(absl::Time cutoff) {
  // Once ended, OnReadDone leaves the reading state to this.
  if (!activity_.EndIfIdle(cutoff, [this] { return call_.idle(); })) return;
  const absl::Status idle = service_->admission_->idle_streams()->Expired(
      call_.token(), "the text sent was spoken");
  if (!routed_.has_value()) return call_.Fail(idle);  // no config yet: nothing to speak
  EndInput(idle);
}

void SynthesizeStreamReactor::OnReadDone(bool ok) {
  const absl::Time now = absl::Now();
  if (!activity_.ReadDone(now)) return;  // the input was ended while this read waited
  absl::Status status;
  if (!ok) {  // half-close (or the call broke: then the call is already stopping)
    if (!routed_.has_value()) {
      return call_.Fail(absl::InvalidArgumentError(
          "the stream ended before its first message, the config, arrived"));
    }
    status = Flush(now);
    if (!status.ok()) return call_.Fail(std::move(status));
    return call_.EndOfInput();
  }
  switch (request_.payload_case()) {
    case v1::SynthesizeStreamRequest::kConfig:
      status = routed_.has_value()
                   ? absl::InvalidArgumentError("a second config message (only the first may be one)")
                   : Configure(request_.config());
      break;
    case v1::SynthesizeStreamRequest::kText:
      status = routed_.has_value() ? TakePiece(request_.text(), now)
                                   : absl::InvalidArgumentError(
                                         "the first message must be the config, not a text piece");
      break;
    case v1::SynthesizeStreamRequest::kFlush:
      status = routed_.has_value() ? Flush(now)
                                   : absl::InvalidArgumentError(
                                         "the first message must be the config, not a flush");
      break;
    case v1::SynthesizeStreamRequest::PAYLOAD_NOT_SET:
      status = absl::InvalidArgumentError("a message with no payload (config, text or flush)");
      break;
  }
  if (!status.ok()) return call_.Fail(std::move(status));  // and read no more
  ReadNext();
}

absl::Status SynthesizeStreamReactor::Configure(const v1::SynthesizeRequest& config) {
  if (LooksLikeSsml(config.text())) {
    return absl::InvalidArgumentError(
        "SynthesizeStream takes plain text; SSML is for Synthesize");
  }
  absl::StatusOr<RoutedSynthesis> routed =
      RouteSynthesizeRequest(config, *service_->registry_, service_->voices_,
                             /*text_required=*/false);
  if (!routed.ok()) return routed.status();
  routed_ = std::move(*routed);
  routed_->request.text.clear();
  LiveTextSegmenter::Options cuts;
  cuts.language = routed_->request.language;
  segmenter_ = LiveTextSegmenter(cuts);
  // Begin ends the call itself when it fails (the caller's Fail then changes nothing) and
  // nothing more is read.
  if (absl::Status s = call_.Begin(*routed_, config.priority(), *context_); !s.ok()) return s;
  return config.text().empty() ? absl::OkStatus() : TakePiece(config.text(), absl::Now());
}

absl::Status SynthesizeStreamReactor::TakePiece(const std::string& piece, absl::Time now) {
  const size_t max_piece = service_->limits_.max_piece_bytes;
  if (piece.size() > max_piece) {
    return absl::InvalidArgumentError(absl::StrCat("a text piece of ", piece.size(),
                                                   " bytes; at most ", max_piece, " are allowed"));
  }
  text_bytes_ += piece.size();
  const size_t max_total = service_->limits_.max_stream_text_bytes;
  if (text_bytes_ > max_total) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the stream's text reached ", text_bytes_, " bytes; at most ", max_total,
        " are allowed per call"));
  }
  const int64_t characters = static_cast<int64_t>(unicode::CodePoints(piece));
  if (absl::Status s = service_->admission_->Charge(call_.token(), characters); !s.ok()) {
    activity_.End();
    EndInput(absl::ResourceExhaustedError(absl::StrCat(
        "text from this piece on was not spoken (everything before it was): ", s.message())));
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> sentences = segmenter_.Append(piece);
  if (!sentences.ok()) return sentences.status();
  for (std::string& s : *sentences) {
    if (absl::Status spoken = Speak(std::move(s), now); !spoken.ok()) return spoken;
  }
  return absl::OkStatus();
}

absl::Status SynthesizeStreamReactor::Flush(absl::Time now) {
  std::optional<std::string> rest = segmenter_.Flush();
  return rest.has_value() ? Speak(std::move(*rest), now) : absl::OkStatus();
}

absl::Status SynthesizeStreamReactor::Speak(std::string text, absl::Time completed) {
  if (!routed_.has_value()) return absl::OkStatus();  // Begin failed: the call is ending
  Utterance u;
  u.request = routed_->request;
  u.request.text = std::move(text);
  u.completed = completed;
  if (absl::Status s = routed_->model->engine->Validate(u.request); !s.ok()) return s;
  call_.Speak(std::move(u));  // false once the call is over (cancelled): nothing to do
  return absl::OkStatus();
}

}  // namespace vox
