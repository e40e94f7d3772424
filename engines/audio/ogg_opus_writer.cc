#include "engines/audio/ogg_opus_writer.h"

#include <ogg/ogg.h>
#include <opus.h>

#include "absl/strings/str_cat.h"

namespace vox {
namespace {

void PutLe(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

}  // namespace

struct OggOpusWriter::State {
  ogg_stream_state stream;
};

std::string MakeOpusHead(int pre_skip_48k, int input_sample_rate_hz) {
  std::string head = "OpusHead";
  head.push_back(1);  // version
  head.push_back(1);  // channels
  PutLe(&head, static_cast<uint16_t>(pre_skip_48k), 2);
  PutLe(&head, static_cast<uint32_t>(input_sample_rate_hz), 4);
  PutLe(&head, 0, 2);  // output gain (Q7.8 dB)
  head.push_back(0);   // channel mapping family 0: mono/stereo, no table
  return head;
}

std::string MakeOpusTags(const std::string& vendor, const std::vector<std::string>& comments) {
  std::string tags = "OpusTags";
  PutLe(&tags, vendor.size(), 4);
  tags += vendor;
  PutLe(&tags, comments.size(), 4);
  for (const std::string& c : comments) {
    PutLe(&tags, c.size(), 4);
    tags += c;
  }
  return tags;
}

absl::StatusOr<std::unique_ptr<OggOpusWriter>> OggOpusWriter::Create(
    const OggOpusWriterOptions& options) {
  if (options.stream_sample_rate_hz != 24000 && options.stream_sample_rate_hz != 48000) {
    return absl::InvalidArgumentError(absl::StrCat("Ogg Opus stream sample rate ",
                                                   options.stream_sample_rate_hz,
                                                   " Hz is not supported; allowed: 24000, 48000"));
  }
  if (options.input_sample_rate_hz < 0) {
    return absl::InvalidArgumentError(absl::StrCat("Ogg Opus input sample rate ",
                                                   options.input_sample_rate_hz,
                                                   " Hz is negative; allowed: 0 (unknown) or >0"));
  }
  if (options.pre_skip_48k < 0 || options.pre_skip_48k > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("Ogg Opus pre-skip ", options.pre_skip_48k,
                                                   " is out of range; allowed: 0..65535"));
  }
  if (options.max_packets_per_page < 1 || options.max_packets_per_page > 255) {
    return absl::InvalidArgumentError(absl::StrCat("Ogg max_packets_per_page ",
                                                   options.max_packets_per_page,
                                                   " is out of range; allowed: 1..255"));
  }
  return std::unique_ptr<OggOpusWriter>(new OggOpusWriter(options));
}

OggOpusWriter::OggOpusWriter(const OggOpusWriterOptions& options)
    : options_(options), state_(std::make_unique<State>()) {
  if (options_.vendor.empty()) options_.vendor = absl::StrCat("vox (", opus_get_version_string(), ")");
  scale_ = 48000 / options_.stream_sample_rate_hz;
  ogg_stream_init(&state_->stream, static_cast<int>(options_.serial));
}

OggOpusWriter::~OggOpusWriter() { ogg_stream_clear(&state_->stream); }

void OggOpusWriter::TakePages(bool flush, std::string* out) {
  ogg_page page;
  while (flush ? ogg_stream_flush(&state_->stream, &page) : ogg_stream_pageout(&state_->stream, &page)) {
    out->append(reinterpret_cast<const char*>(page.header), static_cast<size_t>(page.header_len));
    out->append(reinterpret_cast<const char*>(page.body), static_cast<size_t>(page.body_len));
    ++pages_written_;
    const int64_t granule = ogg_page_granulepos(&page);
    if (granule >= 0) last_page_granule_ = granule;
  }
}

absl::Status OggOpusWriter::WriteHeaders(std::string* out) {
  if (headers_written_) return absl::OkStatus();
  headers_written_ = true;
  // RFC 7845 section 3: OpusHead alone on the first page, OpusTags on its own page(s), and audio
  // starting on a fresh page; header pages have granule position 0.
  const std::string packets[2] = {MakeOpusHead(options_.pre_skip_48k, options_.input_sample_rate_hz),
                                  MakeOpusTags(options_.vendor, options_.comments)};
  for (int i = 0; i < 2; ++i) {
    ogg_packet op{};
    op.packet = reinterpret_cast<unsigned char*>(const_cast<char*>(packets[i].data()));
    op.bytes = static_cast<long>(packets[i].size());
    op.b_o_s = i == 0;
    op.e_o_s = 0;
    op.granulepos = 0;
    op.packetno = packetno_++;
    if (ogg_stream_packetin(&state_->stream, &op) != 0) {
      return absl::InternalError("ogg_stream_packetin failed on a header packet");
    }
    TakePages(/*flush=*/true, out);
  }
  return absl::OkStatus();
}

absl::Status OggOpusWriter::Add(const OpusPacket& packet, int64_t granule, bool eos,
                                std::string* out) {
  if (packet.data.empty()) return absl::InvalidArgumentError("Ogg Opus: empty Opus packet");
  ogg_packet op{};
  op.packet = reinterpret_cast<unsigned char*>(const_cast<char*>(packet.data.data()));
  op.bytes = static_cast<long>(packet.data.size());
  op.b_o_s = 0;
  op.e_o_s = eos ? 1 : 0;
  op.granulepos = granule;
  op.packetno = packetno_++;
  if (ogg_stream_packetin(&state_->stream, &op) != 0) {
    return absl::InternalError("ogg_stream_packetin failed");
  }
  // libogg closes a page by itself past ~4 KiB or 255 segments; take those pages too.
  ++packets_in_page_;
  if (eos || packets_in_page_ >= options_.max_packets_per_page) {
    TakePages(/*flush=*/true, out);
    packets_in_page_ = 0;
  } else {
    const int64_t before = pages_written_;
    TakePages(/*flush=*/false, out);
    if (pages_written_ != before) packets_in_page_ = 0;
  }
  return absl::OkStatus();
}

absl::Status OggOpusWriter::AddPacket(const OpusPacket& packet, std::string* out) {
  if (finished_) return absl::FailedPreconditionError("Ogg Opus writer: AddPacket after Finish");
  if (absl::Status s = WriteHeaders(out); !s.ok()) return s;
  granule_ += static_cast<int64_t>(packet.num_samples) * scale_;
  return Add(packet, granule_, /*eos=*/false, out);
}

absl::Status OggOpusWriter::FlushPage(std::string* out) {
  if (finished_) return absl::FailedPreconditionError("Ogg Opus writer: FlushPage after Finish");
  if (absl::Status s = WriteHeaders(out); !s.ok()) return s;
  if (packets_in_page_ > 0) {
    TakePages(/*flush=*/true, out);
    packets_in_page_ = 0;
  }
  return absl::OkStatus();
}

absl::Status OggOpusWriter::Finish(absl::Span<const OpusPacket> last_packets,
                                   int64_t total_samples, std::string* out) {
  if (finished_) return absl::FailedPreconditionError("Ogg Opus writer: Finish called twice");
  if (last_packets.empty()) {
    return absl::FailedPreconditionError(
        "Ogg Opus writer: Finish needs the final packet(s) to carry the end-of-stream flag");
  }
  if (absl::Status s = WriteHeaders(out); !s.ok()) return s;
  int64_t before_last = granule_;
  for (size_t i = 0; i + 1 < last_packets.size(); ++i) {
    before_last += static_cast<int64_t>(last_packets[i].num_samples) * scale_;
  }
  const int64_t full = before_last + static_cast<int64_t>(last_packets.back().num_samples) * scale_;
  const int64_t end = options_.pre_skip_48k + total_samples * scale_;
  // RFC 7845 section 4.5: end trimming may only drop samples of the last packet.
  if (end > full || end <= before_last) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Ogg Opus writer: final granule ", end, " must lie within the last packet (",
        before_last, ", ", full, "]; total_samples ", total_samples, " does not match the packets"));
  }
  finished_ = true;
  for (size_t i = 0; i + 1 < last_packets.size(); ++i) {
    granule_ += static_cast<int64_t>(last_packets[i].num_samples) * scale_;
    if (absl::Status s = Add(last_packets[i], granule_, false, out); !s.ok()) return s;
  }
  granule_ = end;
  return Add(last_packets.back(), end, /*eos=*/true, out);
}

}  // namespace vox
