#ifndef VOX_ENGINES_AUDIO_OGG_OPUS_WRITER_H_
#define VOX_ENGINES_AUDIO_OGG_OPUS_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engines/audio/opus_encoder.h"

namespace vox {

struct OggOpusWriterOptions {
  uint32_t serial = 0;                // Ogg logical stream serial number
  int stream_sample_rate_hz = 24000;  // the Opus encoder's rate (24000 or 48000)
  int input_sample_rate_hz = 0;       // OpusHead "input sample rate": the original rate (0 = unknown)
  int pre_skip_48k = 0;               // OpusEncoder::pre_skip_48k()
  // A page is closed after this many packets even without FlushPage() (1..255). It bounds page
  // duration; latency is bounded by the caller's FlushPage() calls (see docs/audio.md).
  int max_packets_per_page = 25;
  std::string vendor;                 // OpusTags vendor; empty = "vox (libopus x.y.z)"
  std::vector<std::string> comments;  // OpusTags user comments, "KEY=value"
};

// Ogg Opus (RFC 7845) muxer for one logical stream, streaming: every call returns the page bytes
// that became ready, so a server can send them at once; the concatenation of all returned bytes is
// one valid .opus file. Audio may be appended over any number of calls (a SpeechTranslate session
// with many segments): one OpusHead/OpusTags, continuous granule positions, one EOS page.
//
// Granule positions count 48 kHz samples decoded through the last packet completed on the page,
// pre-skip included; the last page's granule is trimmed to pre_skip + the real length, so decoders
// produce exactly the real number of samples.
//
// Thread-compatible: one object per stream. Cost: a copy of each packet into libogg plus a CRC
// per page; negligible next to encoding.
class OggOpusWriter {
 public:
  // InvalidArgument for a bad rate, pre-skip or page size.
  static absl::StatusOr<std::unique_ptr<OggOpusWriter>> Create(
      const OggOpusWriterOptions& options);
  ~OggOpusWriter();
  OggOpusWriter(const OggOpusWriter&) = delete;
  OggOpusWriter& operator=(const OggOpusWriter&) = delete;

  // Appends the OpusHead page and the OpusTags page to *out. Called by the first AddPacket,
  // FlushPage or Finish when the caller has not; a second call appends nothing.
  absl::Status WriteHeaders(std::string* out);

  // Adds one audio packet; appends any page it completes to *out.
  absl::Status AddPacket(const OpusPacket& packet, std::string* out);

  // Closes the current page now (if it holds any packet) and appends it to *out.
  absl::Status FlushPage(std::string* out);

  // Adds the stream's final packets (at least one: OpusEncoder::Flush's output) and ends the
  // stream. total_samples = the real length at stream_sample_rate_hz (OpusEncoder::
  // samples_pushed()); the last page carries EOS and granule pre_skip + total in 48 kHz units.
  // FailedPrecondition when that would trim more than the final packets hold.
  absl::Status Finish(absl::Span<const OpusPacket> last_packets, int64_t total_samples,
                      std::string* out);

  // Pages appended to outputs so far (header pages included) = the next page's sequence number.
  int64_t pages_written() const { return pages_written_; }
  // Granule position of the last page written (0 before any audio page).
  int64_t last_page_granule() const { return last_page_granule_; }
  bool finished() const { return finished_; }

 private:
  struct State;
  explicit OggOpusWriter(const OggOpusWriterOptions& options);
  absl::Status Add(const OpusPacket& packet, int64_t granule, bool eos, std::string* out);
  void TakePages(bool flush, std::string* out);

  OggOpusWriterOptions options_;
  std::unique_ptr<State> state_;  // libogg's stream state
  int scale_ = 2;                 // 48000 / stream rate
  bool headers_written_ = false;
  bool finished_ = false;
  int64_t granule_ = 0;  // 48 kHz samples through the last packet added
  int64_t packets_in_page_ = 0;
  int64_t packetno_ = 0;
  int64_t pages_written_ = 0;
  int64_t last_page_granule_ = 0;
};

// The 19-byte OpusHead packet for mono, channel mapping family 0 (RFC 7845 section 5.1).
std::string MakeOpusHead(int pre_skip_48k, int input_sample_rate_hz);
// The OpusTags packet (RFC 7845 section 5.2).
std::string MakeOpusTags(const std::string& vendor, const std::vector<std::string>& comments);

}  // namespace vox

#endif  // VOX_ENGINES_AUDIO_OGG_OPUS_WRITER_H_
