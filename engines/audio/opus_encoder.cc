#include "engines/audio/opus_encoder.h"

#include <opus.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vox {
namespace {

constexpr int kFrameMs = 20;
// RFC 6716: a 20 ms mono frame never exceeds 1275 bytes.
constexpr int kMaxPacketBytes = 1275;

absl::Status OpusError(const char* what, int code) {
  return absl::InternalError(absl::StrCat(what, ": ", opus_strerror(code)));
}

}  // namespace

absl::Status OpusEncoder::ValidateOptions(const OpusEncoderOptions& options) {
  if (options.sample_rate_hz != 24000 && options.sample_rate_hz != 48000) {
    return absl::InvalidArgumentError(absl::StrCat("Opus sample rate ", options.sample_rate_hz,
                                                   " Hz is not supported; allowed: 24000, 48000"));
  }
  if (options.complexity < 0 || options.complexity > 10) {
    return absl::InvalidArgumentError(absl::StrCat("Opus complexity ", options.complexity,
                                                   " is out of range; allowed: 0..10"));
  }
  if (options.bitrate_bps != 0 &&
      (options.bitrate_bps < 6000 || options.bitrate_bps > 510000)) {
    return absl::InvalidArgumentError(absl::StrCat("Opus bitrate ", options.bitrate_bps,
                                                   " bps is out of range; allowed: 0 (auto) or "
                                                   "6000..510000"));
  }
  if (options.application != OpusApplication::kVoip &&
      options.application != OpusApplication::kAudio) {
    return absl::InvalidArgumentError("Opus application must be kVoip or kAudio");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<OpusEncoder>> OpusEncoder::Create(
    const OpusEncoderOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  const int application = options.application == OpusApplication::kVoip
                              ? OPUS_APPLICATION_VOIP
                              : OPUS_APPLICATION_AUDIO;
  int error = OPUS_OK;
  ::OpusEncoder* encoder = opus_encoder_create(options.sample_rate_hz, 1, application, &error);
  if (error != OPUS_OK || encoder == nullptr) return OpusError("opus_encoder_create", error);
  auto fail = [encoder](const char* what, int code) {
    opus_encoder_destroy(encoder);
    return OpusError(what, code);
  };
  if (int r = opus_encoder_ctl(encoder, OPUS_SET_COMPLEXITY(options.complexity)); r != OPUS_OK) {
    return fail("OPUS_SET_COMPLEXITY", r);
  }
  const opus_int32 bitrate = options.bitrate_bps == 0 ? OPUS_AUTO : options.bitrate_bps;
  if (int r = opus_encoder_ctl(encoder, OPUS_SET_BITRATE(bitrate)); r != OPUS_OK) {
    return fail("OPUS_SET_BITRATE", r);
  }
  opus_int32 lookahead = 0;
  if (int r = opus_encoder_ctl(encoder, OPUS_GET_LOOKAHEAD(&lookahead)); r != OPUS_OK) {
    return fail("OPUS_GET_LOOKAHEAD", r);
  }
  return std::unique_ptr<OpusEncoder>(
      new OpusEncoder(encoder, options.sample_rate_hz, static_cast<int>(lookahead)));
}

OpusEncoder::OpusEncoder(::OpusEncoder* encoder, int sample_rate, int lookahead)
    : encoder_(encoder),
      sample_rate_(sample_rate),
      frame_samples_(sample_rate * kFrameMs / 1000),
      lookahead_(lookahead),
      scratch_(kMaxPacketBytes) {
  pending_.reserve(frame_samples_);
}

OpusEncoder::~OpusEncoder() { opus_encoder_destroy(encoder_); }

absl::Status OpusEncoder::EncodeFrame(const float* frame, std::vector<OpusPacket>* packets) {
  const opus_int32 bytes = opus_encode_float(encoder_, frame, frame_samples_, scratch_.data(),
                                             static_cast<opus_int32>(scratch_.size()));
  if (bytes < 0) return OpusError("opus_encode_float", bytes);
  OpusPacket& packet = packets->emplace_back();
  packet.data.assign(reinterpret_cast<const char*>(scratch_.data()), static_cast<size_t>(bytes));
  packet.sequence = packets_;
  packet.timestamp_samples = packets_ * frame_samples_;
  packet.num_samples = frame_samples_;
  ++packets_;
  return absl::OkStatus();
}

absl::Status OpusEncoder::Encode(absl::Span<const float> samples,
                                 std::vector<OpusPacket>* packets) {
  if (finished_) return absl::FailedPreconditionError("Opus encoder: Encode after Flush");
  samples_pushed_ += static_cast<int64_t>(samples.size());
  size_t pos = 0;
  const size_t frame = static_cast<size_t>(frame_samples_);
  if (!pending_.empty()) {
    const size_t take = std::min(frame - pending_.size(), samples.size());
    pending_.insert(pending_.end(), samples.begin(), samples.begin() + take);
    pos = take;
    if (pending_.size() < frame) return absl::OkStatus();
    absl::Status s = EncodeFrame(pending_.data(), packets);
    pending_.clear();
    if (!s.ok()) return s;
  }
  // Whole frames straight from the caller's buffer: no copy.
  for (; pos + frame <= samples.size(); pos += frame) {
    if (absl::Status s = EncodeFrame(samples.data() + pos, packets); !s.ok()) return s;
  }
  pending_.insert(pending_.end(), samples.begin() + pos, samples.end());
  return absl::OkStatus();
}

absl::Status OpusEncoder::PadUntil(int64_t target, bool count_padding,
                                   std::vector<OpusPacket>* packets) {
  const size_t frame = static_cast<size_t>(frame_samples_);
  while (packets_ * frame_samples_ < target) {
    const size_t zeros = frame - pending_.size();
    pending_.resize(frame, 0.0f);
    if (count_padding) samples_pushed_ += static_cast<int64_t>(zeros);
    absl::Status s = EncodeFrame(pending_.data(), packets);
    pending_.clear();
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status OpusEncoder::Drain(std::vector<OpusPacket>* packets) {
  if (finished_) return absl::FailedPreconditionError("Opus encoder: Drain after Flush");
  if (samples_pushed_ == drained_at_) return absl::OkStatus();
  absl::Status s = PadUntil(samples_pushed_ + lookahead_, /*count_padding=*/true, packets);
  drained_at_ = samples_pushed_;
  return s;
}

absl::Status OpusEncoder::Flush(std::vector<OpusPacket>* packets) {
  if (finished_) return absl::FailedPreconditionError("Opus encoder: Flush called twice");
  finished_ = true;
  // lookahead_ > 0, so the target always lies beyond the last whole frame: >= 1 packet.
  return PadUntil(samples_pushed_ + std::max(lookahead_, 1), /*count_padding=*/false, packets);
}

}  // namespace vox
