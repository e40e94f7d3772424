#ifndef VOX_ENGINES_AUDIO_AUDIO_STREAM_ENCODER_H_
#define VOX_ENGINES_AUDIO_AUDIO_STREAM_ENCODER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engines/audio/ogg_opus_writer.h"
#include "engines/audio/opus_encoder.h"
#include "engines/audio/resampler.h"

namespace vox {

// Mirrors vox.v1.AudioEncoding (the server maps UNSPECIFIED to kOggOpus).
enum class AudioEncoding { kOpus, kOggOpus, kPcm16 };

// Mirrors vox.v1.AudioConfig plus server-side knobs.
struct AudioStreamConfig {
  AudioEncoding encoding = AudioEncoding::kOggOpus;
  // 0 = 24000. Opus/Ogg: 24000 or 48000. PCM16: also the engine's native (input) rate.
  int sample_rate_hz = 0;
  int bitrate_bps = 0;  // 0 = libopus auto; else 6000..510000
  int complexity = 5;   // 0..10; -1 = default 5 (as in vox.v1.AudioConfig)
  OpusApplication application = OpusApplication::kAudio;
  ResamplerQuality resampler_quality = ResamplerQuality::kHigh;
  std::optional<uint32_t> ogg_serial;  // unset = random
  int ogg_max_packets_per_page = 25;
};

// Mirrors vox.v1.AudioHeader: what a decoder needs, sent before any audio.
struct AudioHeaderInfo {
  AudioEncoding encoding = AudioEncoding::kOggOpus;
  int sample_rate_hz = 0;
  int channels = 1;
  int pre_skip = 0;       // Opus pre-skip at 48 kHz (RFC 7845); 0 for PCM16
  int frame_samples = 0;  // 20 ms at sample_rate_hz; 0 for PCM16
};

// Mirrors vox.v1.AudioChunk: what one Push/EndSegment/Finish produced (possibly nothing).
struct EncodedAudio {
  std::string data;                  // kOggOpus: Ogg pages; kPcm16: little-endian int16 samples
  std::vector<std::string> packets;  // kOpus: one 20 ms packet each
  // kOpus: sequence number of the first packet; kOggOpus: Ogg page sequence number of the first
  // page; kPcm16: index of this non-empty chunk. All from 0 per stream.
  int64_t sequence = 0;
  // First sample carried, in samples at the output rate. kOpus/kOggOpus count the Opus timeline
  // (packet k starts at k * frame_samples, pre-skip not removed; Ogg from page granules).
  int64_t timestamp_samples = 0;
  // Samples carried. kOpus: packets * frame_samples; kOggOpus: granule advance of these pages
  // (the last page is trimmed); kPcm16: samples.
  int64_t num_samples = 0;

  bool empty() const { return data.empty() && packets.empty(); }
};

// Turns one stream of engine audio (mono float at the engine's rate) into what the API returns:
// resampling (libsoxr) when rates differ, then raw Opus packets, an Ogg Opus stream, or PCM16.
//
// Usage: Create, header() for the first response, Push() as the engine produces audio and send
// each non-empty result, EndSegment() after each SpeechTranslate segment (optional), Finish() once.
// A stream may span any number of segments: one Ogg header, continuous timestamps and granules.
//
// Latency: Push returns everything that can be encoded now: Opus waits only for full 20 ms
// frames, Ogg pages are closed at the end of every Push, and the resampler holds back its filter
// delay (about 8 ms at kHigh) until EndSegment/Finish.
//
// Thread-compatible: one object per stream, used by one thread at a time (the engine worker or
// the reactor, not both at once). Cost is dominated by opus_encode_float (see
// docs/benchmarks.md, "Audio encoding").
class AudioStreamEncoder {
 public:
  // InvalidArgument naming the bad value and the allowed values.
  static absl::Status ValidateConfig(const AudioStreamConfig& config, int input_sample_rate_hz);
  static absl::StatusOr<std::unique_ptr<AudioStreamEncoder>> Create(
      const AudioStreamConfig& config, int input_sample_rate_hz);
  ~AudioStreamEncoder();

  const AudioHeaderInfo& header() const { return header_; }

  // Encodes `samples` (at input_sample_rate_hz); *out is cleared and filled with what is ready.
  // kOggOpus: the first call's output starts with the OpusHead and OpusTags pages.
  absl::Status Push(absl::Span<const float> samples, EncodedAudio* out);
  // End of a segment: emits all audio pushed so far (resampler tail; Opus pads with at most
  // 20 ms + lookahead of silence, which stays in the stream). The stream stays open.
  absl::Status EndSegment(EncodedAudio* out);
  // End of stream: emits the rest (Ogg: the EOS page). Afterwards Push/EndSegment/Finish fail
  // with FailedPrecondition.
  absl::Status Finish(EncodedAudio* out);

  // Samples of output produced so far at header().sample_rate_hz, padding trimmed: after
  // Finish(), the exact decoded length (what Synthesize's summary reports).
  int64_t total_samples() const;
  bool finished() const { return finished_; }

 private:
  AudioStreamEncoder(const AudioStreamConfig& config, int input_rate, int output_rate);
  absl::Status Resample(absl::Span<const float> samples, bool flush,
                        absl::Span<const float>* resampled);
  absl::Status Emit(std::vector<OpusPacket>* packets, bool end_page, EncodedAudio* out);
  absl::Status EmitFinal(std::vector<OpusPacket>* packets, std::vector<OpusPacket>* last,
                         EncodedAudio* out);
  void StartChunk(EncodedAudio* out);

  AudioStreamConfig config_;
  const int input_rate_;
  const int output_rate_;
  AudioHeaderInfo header_;
  std::unique_ptr<Resampler> resampler_;  // null when rates are equal; renewed after EndSegment
  std::unique_ptr<OpusEncoder> opus_;     // kOpus, kOggOpus
  std::unique_ptr<OggOpusWriter> ogg_;    // kOggOpus
  std::vector<float> resampled_;
  std::vector<OpusPacket> packets_;
  int64_t pcm_samples_ = 0;
  int64_t pcm_chunks_ = 0;
  bool finished_ = false;
};

}  // namespace vox

#endif  // VOX_ENGINES_AUDIO_AUDIO_STREAM_ENCODER_H_
