#ifndef VOX_SERVER_SYNTHESIZE_STREAM_REACTOR_H_
#define VOX_SERVER_SYNTHESIZE_STREAM_REACTOR_H_

// The reactor behind SpeechServiceImpl::SynthesizeStream (one per call); only the service
// creates it.

#include <cstddef>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engines/text/live_text_segmenter.h"
#include "server/idle_streams.h"
#include "server/speech_service.h"
#include "server/synthesis_call.h"
#include "vox/v1/speech.grpc.pb.h"

namespace vox {

// One SynthesizeStream call: reads the config, then text pieces and flushes, one read in flight;
// a LiveTextSegmenter (engines/text/live_text_segmenter.h) cuts the text into sentences (long
// clauses, unpunctuated runs), each spoken as an utterance of the call's SynthesisCall as soon
// as it is complete; a flush speaks what is buffered, half-close speaks the rest and ends the
// call after the last utterance. Bad input (no config first, a second config, SSML, an empty
// message, a piece over max_piece_bytes, more than max_stream_text_bytes in all, invalid
// UTF-8, a sentence the engine refuses) ends the call with INVALID_ARGUMENT and stops reading.
//
// Each piece's characters count against the token's characters per day; a piece refused
// ends the input there: what came before is spoken, then the call ends RESOURCE_EXHAUSTED.
// Idle (a read waiting, nothing to speak or write) past the idle-stream timeout, the call
// speaks what is buffered and ends DEADLINE_EXCEEDED.
//
// Threads: the reading state (segmenter, byte counts) belongs to the reactions that read
// (Start, then OnReadDone, one at a time) and to EndIfIdleSince while a read waits (activity_
// decides which); the rest is the SynthesisCall's. Lives until OnDone.
class SynthesizeStreamReactor
    : public grpc::ServerBidiReactor<v1::SynthesizeStreamRequest, v1::SynthesizeResponse>,
      public IdleStreams::Stream {
 public:
  SynthesizeStreamReactor(SpeechServiceImpl* service, grpc::CallbackServerContext* context);

  void Start();
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override { call_.OnCancel(); }
  void OnDone() override;
  void EndIfIdleSince(absl::Time cutoff) override;

 private:
  // Each returns non-OK when the call must end with that status.
  absl::Status Configure(const v1::SynthesizeRequest& config);
  absl::Status TakePiece(const std::string& piece, absl::Time now);
  absl::Status Speak(std::string text, absl::Time completed);
  absl::Status Flush(absl::Time now);
  // Reads the next message unless the input was ended (idle, quota).
  void ReadNext();
  // Ends the input early: speaks what is buffered, then the call ends with `why`.
  void EndInput(absl::Status why);

  SpeechServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  v1::SynthesizeStreamRequest request_;  // the read buffer
  std::optional<RoutedSynthesis> routed_;
  LiveTextSegmenter segmenter_;
  size_t text_bytes_ = 0;
  StreamActivity activity_{absl::Now()};
  SynthesisCall call_;  // last: its callbacks only run while the call is alive
};

}  // namespace vox

#endif  // VOX_SERVER_SYNTHESIZE_STREAM_REACTOR_H_
