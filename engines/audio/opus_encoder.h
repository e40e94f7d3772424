#ifndef VOX_ENGINES_AUDIO_OPUS_ENCODER_H_
#define VOX_ENGINES_AUDIO_OPUS_ENCODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

struct OpusEncoder;  // libopus' encoder state; only opus_encoder.cc includes <opus.h>.

namespace vox {

// OPUS_APPLICATION_*. kAudio is the default: it keeps the waveform (CELT/hybrid) at the bitrates
// we use and scores a higher round-trip SNR on synthetic speech than kVoip, whose speech
// pre-processing (high-pass, SILK at low rates) is tuned for microphone input. See docs/audio.md.
enum class OpusApplication { kVoip, kAudio };

struct OpusEncoderOptions {
  int sample_rate_hz = 24000;  // 24000 or 48000
  int bitrate_bps = 0;         // 0 = libopus default (auto); otherwise 6000..510000
  int complexity = 5;          // 0..10
  OpusApplication application = OpusApplication::kAudio;
};

// One Opus packet holding one 20 ms mono frame.
struct OpusPacket {
  std::string data;
  int64_t sequence = 0;           // 0, 1, 2, ... per stream
  int64_t timestamp_samples = 0;  // = sequence * frame_samples (RTP-style, before pre-skip)
  int num_samples = 0;            // samples this packet decodes to = frame_samples
};

// Streaming Opus encoder: mono float [-1, 1] in, 20 ms packets out.
//
// Timeline: decoding packets 0..k and dropping the first lookahead_samples() (the pre-skip)
// reproduces the input; the real length is samples_pushed(). Partial frames are buffered
// until a full frame (or Drain/Flush) arrives.
//
// Thread-compatible: one object per stream. Cost: one opus_encode_float per 20 ms of audio
// (about 0.1 ms at complexity 5, 24 kHz); no allocation besides the packets' bytes.
class OpusEncoder {
 public:
  // InvalidArgument naming the bad value and the allowed ones.
  static absl::Status ValidateOptions(const OpusEncoderOptions& options);
  static absl::StatusOr<std::unique_ptr<OpusEncoder>> Create(const OpusEncoderOptions& options);
  ~OpusEncoder();
  OpusEncoder(const OpusEncoder&) = delete;
  OpusEncoder& operator=(const OpusEncoder&) = delete;

  // Appends one packet per completed frame to *packets. FailedPrecondition after Flush().
  absl::Status Encode(absl::Span<const float> samples, std::vector<OpusPacket>* packets);

  // Mid-stream drain (end of a segment): pads with silence until every sample pushed so far is
  // decodable from the packets emitted, and keeps the stream open. The padding (at most one frame
  // plus the lookahead) becomes part of the timeline. No-op when nothing was pushed since the last
  // drain.
  absl::Status Drain(std::vector<OpusPacket>* packets);

  // End of stream: pads the final partial frame with zeros and, when the lookahead requires it,
  // encodes one more frame, so that every pushed sample is decodable. At least one packet is
  // always appended. The padding is not part of the timeline: a container trims it (Ogg: the last
  // granule position). Afterwards the encoder is finished.
  absl::Status Flush(std::vector<OpusPacket>* packets);

  int sample_rate_hz() const { return sample_rate_; }
  int frame_samples() const { return frame_samples_; }  // 480 at 24 kHz, 960 at 48 kHz
  // Encoder delay (OPUS_GET_LOOKAHEAD) at sample_rate_hz().
  int lookahead_samples() const { return lookahead_; }
  // The same delay at 48 kHz, as Ogg Opus (RFC 7845) and AudioHeader.pre_skip want it.
  int pre_skip_48k() const { return lookahead_ * (48000 / sample_rate_); }
  // Samples of the stream's timeline so far: input plus Drain padding (not Flush padding).
  int64_t samples_pushed() const { return samples_pushed_; }
  int64_t packets_encoded() const { return packets_; }
  bool finished() const { return finished_; }

 private:
  OpusEncoder(::OpusEncoder* encoder, int sample_rate, int lookahead);
  absl::Status EncodeFrame(const float* frame, std::vector<OpusPacket>* packets);
  // Pads the partial frame with zeros and encodes frames until packets_ * frame >= target.
  absl::Status PadUntil(int64_t target, bool count_padding, std::vector<OpusPacket>* packets);

  ::OpusEncoder* encoder_;  // owned
  const int sample_rate_;
  const int frame_samples_;
  const int lookahead_;
  std::vector<float> pending_;  // < frame_samples_ samples waiting for a full frame
  std::vector<unsigned char> scratch_;
  int64_t samples_pushed_ = 0;
  int64_t drained_at_ = 0;
  int64_t packets_ = 0;
  bool finished_ = false;
};

}  // namespace vox

#endif  // VOX_ENGINES_AUDIO_OPUS_ENCODER_H_
