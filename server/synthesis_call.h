#ifndef VOX_SERVER_SYNTHESIS_CALL_H_
#define VOX_SERVER_SYNTHESIS_CALL_H_

// The server side of one Synthesize or SynthesizeStream call, less the gRPC reactor: only
// speech_service.cc and synthesize_stream_reactor.cc use it.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engines/audio/audio_stream_encoder.h"
#include "server/outbound_stream.h"
#include "server/speech_service.h"
#include "server/utterance_queue.h"
#include "vox/v1/speech.pb.h"

namespace vox {

// One call's audio path: its utterances go to an UtteranceQueue (one scheduler sequence at a
// time); the scheduler's worker moves each step's PCM into the call's OutboundStream, which
// encodes it (one AudioStreamEncoder for the whole call: one header, one continuous Ogg/Opus or
// PCM stream across utterances) in the write path on the service's write pool, keeps one write
// in flight and, while more than max_pending_bytes are queued, pauses the queue's sequence until
// writes drain. After the last utterance of a closed queue: the encoder's tail, the summary, OK.
// Client cancellation, a failed write, a failed encoder or Fail() stop the queue (the engine
// stops at its next step) and end the call with their status; a sequence's failure ends it with
// that status (a slow reader: RESOURCE_EXHAUSTED; engine errors: INTERNAL with the request id).
//
// The owning reactor forwards OnWriteDone/OnCancel and gives `start_write` (StartWrite) and
// `finish` (Finish; the last thing done with the call, on the write pool). Thread-safe: any
// thread may call any method. Lives until the reactor's OnDone.
class SynthesisCall {
 public:
  SynthesisCall(SpeechServiceImpl* service, std::string method,
                std::function<void(const v1::SynthesizeResponse*)> start_write,
                std::function<void(const grpc::Status&)> finish);
  ~SynthesisCall();

  // At the call's start: request id (echoed in the initial metadata), metrics, Admission::Admit.
  // False when the call is refused (draining: UNAVAILABLE; a quota: RESOURCE_EXHAUSTED): it then
  // ends with that status.
  bool Open(grpc::CallbackServerContext* context);

  // Creates the encoder and the queue and sends the header. Non-OK: the call ends with it.
  absl::Status Begin(const RoutedSynthesis& routed, v1::Priority priority,
                     const grpc::CallbackServerContext& context);

  // Queues an utterance (after Begin). False when the call is over.
  bool Speak(Utterance u);
  // No more utterances: after the last, its tail and summary, the call ends with `end` (OK, or
  // why the rest of the input was refused).
  void EndOfInput(absl::Status end = absl::OkStatus());
  // Ends the call with `status` (bad input): what is queued is dropped, the engine stops.
  void Fail(absl::Status status);

  void OnWriteDone(bool ok);
  void OnCancel();

  const std::string& request_id() const { return request_id_; }
  // The caller's token name (TokenNameOf), "" without tokens; set by Open.
  const std::string& token() const { return token_; }
  // True when nothing is queued to speak or to write (after Begin; before it: true).
  bool idle();
  absl::Time start() const { return start_; }
  // After Begin: the engine's sample rate.
  int sample_rate() const { return sample_rate_; }

 private:
  enum class StopCause { kNone, kCancelled, kClientGone, kEncodingFailed, kFailed };

  static OutboundStream<v1::SynthesizeResponse>::Options Watermarks(size_t max_pending_bytes);

  void Stop(StopCause cause, absl::Status status);
  absl::Status StopStatus();
  void OnAudio(std::vector<float> samples);
  void OnFirstAudio(const Utterance& u);
  void OnStats(const SynthesisStats& stats);
  void OnQueueDone(absl::Status status, EndReason why);
  std::optional<v1::SynthesizeResponse> EncodeChunk(const std::vector<float>& samples);
  std::optional<v1::SynthesizeResponse> EncodeTail();
  std::optional<v1::SynthesizeResponse> Summary(absl::Time end);
  void DoFinish(absl::Status status);

  SpeechServiceImpl* const service_;
  const std::string method_;        // "Synthesize", "SynthesizeStream"
  const std::string full_method_;   // "/vox.v1.SpeechService/Synthesize"
  const std::function<void(const grpc::Status&)> finish_;
  absl::Time start_;
  std::string request_id_;
  std::string token_;  // the caller's token name (TokenNameOf), "" without tokens
  int sample_rate_ = 0;
  std::string engine_name_;
  Clock* clock_ = nullptr;
  absl::Time deadline_ = absl::InfiniteFuture();
  std::unique_ptr<AudioStreamEncoder> encoder_;  // after Begin: the write path only
  std::unique_ptr<UtteranceQueue> queue_;        // set once in Begin
  std::atomic<bool> stop_flag_{false};           // stop_ != kNone

  absl::Mutex mu_;
  StopCause stop_ ABSL_GUARDED_BY(mu_) = StopCause::kNone;
  bool have_audio_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time first_audio_ ABSL_GUARDED_BY(mu_);
  absl::Time last_audio_ ABSL_GUARDED_BY(mu_);
  absl::Time joined_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // the first sequence's join
  SynthesisStats stats_ ABSL_GUARDED_BY(mu_);  // codes summed over utterances
  bool have_stats_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);  // EndOfInput's

  // Last: destroyed first, and its callbacks only run while the call is alive.
  OutboundStream<v1::SynthesizeResponse> stream_;
};

}  // namespace vox

#endif  // VOX_SERVER_SYNTHESIS_CALL_H_
