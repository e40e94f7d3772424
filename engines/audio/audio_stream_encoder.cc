#include "engines/audio/audio_stream_encoder.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engines/audio/pcm16.h"

namespace vox {
namespace {

constexpr int kDefaultRate = 24000;

int OutputRate(const AudioStreamConfig& config) {
  return config.sample_rate_hz == 0 ? kDefaultRate : config.sample_rate_hz;
}

OpusEncoderOptions OpusOptions(const AudioStreamConfig& config) {
  OpusEncoderOptions o;
  o.sample_rate_hz = OutputRate(config);
  o.bitrate_bps = config.bitrate_bps;
  o.complexity = config.complexity == -1 ? 5 : config.complexity;
  o.application = config.application;
  return o;
}

}  // namespace

absl::Status AudioStreamEncoder::ValidateConfig(const AudioStreamConfig& config,
                                                int input_sample_rate_hz) {
  if (input_sample_rate_hz < 1000 || input_sample_rate_hz > 384000) {
    return absl::InvalidArgumentError(absl::StrCat("engine sample rate ", input_sample_rate_hz,
                                                   " Hz is out of range; allowed: 1000..384000"));
  }
  const int rate = OutputRate(config);
  switch (config.encoding) {
    case AudioEncoding::kPcm16:
      if (rate != 24000 && rate != 48000 && rate != input_sample_rate_hz) {
        return absl::InvalidArgumentError(absl::StrCat(
            "audio sample_rate_hz ", rate, " is not supported for PCM16; allowed: 24000, 48000, ",
            input_sample_rate_hz, " (the engine's native rate)"));
      }
      return absl::OkStatus();
    case AudioEncoding::kOpus:
    case AudioEncoding::kOggOpus:
      if (rate != 24000 && rate != 48000) {
        return absl::InvalidArgumentError(absl::StrCat(
            "audio sample_rate_hz ", rate, " is not supported for Opus; allowed: 24000, 48000"));
      }
      if (config.ogg_max_packets_per_page < 1 || config.ogg_max_packets_per_page > 255) {
        return absl::InvalidArgumentError(absl::StrCat("ogg_max_packets_per_page ",
                                                       config.ogg_max_packets_per_page,
                                                       " is out of range; allowed: 1..255"));
      }
      if (config.complexity < -1 || config.complexity > 10) {
        return absl::InvalidArgumentError(absl::StrCat("Opus complexity ", config.complexity,
                                                       " is out of range; allowed: 0..10 "
                                                       "(-1 = default 5)"));
      }
      return OpusEncoder::ValidateOptions(OpusOptions(config));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown audio encoding ",
                                                 static_cast<int>(config.encoding),
                                                 "; allowed: OPUS, OGG_OPUS, PCM16"));
}

absl::StatusOr<std::unique_ptr<AudioStreamEncoder>> AudioStreamEncoder::Create(
    const AudioStreamConfig& config, int input_sample_rate_hz) {
  if (absl::Status s = ValidateConfig(config, input_sample_rate_hz); !s.ok()) return s;
  std::unique_ptr<AudioStreamEncoder> enc(
      new AudioStreamEncoder(config, input_sample_rate_hz, OutputRate(config)));
  enc->header_.encoding = config.encoding;
  enc->header_.sample_rate_hz = enc->output_rate_;
  enc->header_.channels = 1;
  if (config.encoding != AudioEncoding::kPcm16) {
    absl::StatusOr<std::unique_ptr<OpusEncoder>> opus = OpusEncoder::Create(OpusOptions(config));
    if (!opus.ok()) return opus.status();
    enc->opus_ = *std::move(opus);
    enc->header_.pre_skip = enc->opus_->pre_skip_48k();
    enc->header_.frame_samples = enc->opus_->frame_samples();
  }
  if (config.encoding == AudioEncoding::kOggOpus) {
    OggOpusWriterOptions o;
    o.serial = config.ogg_serial.has_value() ? *config.ogg_serial : std::random_device{}();
    o.stream_sample_rate_hz = enc->output_rate_;
    o.input_sample_rate_hz = input_sample_rate_hz;
    o.pre_skip_48k = enc->opus_->pre_skip_48k();
    o.max_packets_per_page = config.ogg_max_packets_per_page;
    absl::StatusOr<std::unique_ptr<OggOpusWriter>> ogg = OggOpusWriter::Create(o);
    if (!ogg.ok()) return ogg.status();
    enc->ogg_ = *std::move(ogg);
  }
  return enc;
}

AudioStreamEncoder::AudioStreamEncoder(const AudioStreamConfig& config, int input_rate,
                                       int output_rate)
    : config_(config), input_rate_(input_rate), output_rate_(output_rate) {}

AudioStreamEncoder::~AudioStreamEncoder() = default;

int64_t AudioStreamEncoder::total_samples() const {
  return opus_ ? opus_->samples_pushed() : pcm_samples_;
}

absl::Status AudioStreamEncoder::Resample(absl::Span<const float> samples, bool flush,
                                          absl::Span<const float>* resampled) {
  if (input_rate_ == output_rate_) {
    *resampled = samples;
    return absl::OkStatus();
  }
  resampled_.clear();
  if (resampler_ == nullptr) {
    if (flush) {  // nothing pushed since the last flush
      *resampled = {};
      return absl::OkStatus();
    }
    absl::StatusOr<std::unique_ptr<Resampler>> r =
        Resampler::Create(input_rate_, output_rate_, config_.resampler_quality);
    if (!r.ok()) return r.status();
    resampler_ = *std::move(r);
  }
  absl::Status s = resampler_->Process(samples, &resampled_);
  if (s.ok() && flush) {
    s = resampler_->Flush(&resampled_);
    resampler_.reset();
  }
  if (!s.ok()) return s;
  *resampled = absl::MakeConstSpan(resampled_);
  return absl::OkStatus();
}

absl::Status AudioStreamEncoder::Emit(std::vector<OpusPacket>* packets, bool end_page,
                                      EncodedAudio* out) {
  if (config_.encoding == AudioEncoding::kOpus) {
    out->sequence = packets->empty() ? opus_->packets_encoded() : packets->front().sequence;
    out->timestamp_samples = packets->empty()
                                 ? opus_->packets_encoded() * opus_->frame_samples()
                                 : packets->front().timestamp_samples;
    for (OpusPacket& p : *packets) {
      out->num_samples += p.num_samples;
      out->packets.push_back(std::move(p.data));
    }
    packets->clear();
    return absl::OkStatus();
  }
  for (const OpusPacket& p : *packets) {
    if (absl::Status s = ogg_->AddPacket(p, &out->data); !s.ok()) return s;
  }
  packets->clear();
  return end_page ? ogg_->FlushPage(&out->data) : absl::OkStatus();
}

void AudioStreamEncoder::StartChunk(EncodedAudio* out) {
  *out = EncodedAudio();
  if (ogg_ != nullptr) {
    out->sequence = ogg_->pages_written();
    out->timestamp_samples = ogg_->last_page_granule() * opus_->sample_rate_hz() / 48000;
  }
}

absl::Status AudioStreamEncoder::Push(absl::Span<const float> samples, EncodedAudio* out) {
  if (finished_) return absl::FailedPreconditionError("audio stream: Push after Finish");
  StartChunk(out);
  absl::Span<const float> resampled;
  if (absl::Status s = Resample(samples, /*flush=*/false, &resampled); !s.ok()) return s;
  if (config_.encoding == AudioEncoding::kPcm16) {
    AppendPcm16(resampled, &out->data);
    out->sequence = pcm_chunks_;
    out->timestamp_samples = pcm_samples_;
    out->num_samples = static_cast<int64_t>(resampled.size());
    pcm_samples_ += out->num_samples;
    if (!resampled.empty()) ++pcm_chunks_;
    return absl::OkStatus();
  }
  packets_.clear();
  if (absl::Status s = opus_->Encode(resampled, &packets_); !s.ok()) return s;
  absl::Status s = Emit(&packets_, /*end_page=*/true, out);
  if (ogg_ != nullptr) {
    out->num_samples = (ogg_->last_page_granule() * opus_->sample_rate_hz() / 48000) -
                       out->timestamp_samples;
  }
  return s;
}

absl::Status AudioStreamEncoder::EndSegment(EncodedAudio* out) {
  if (finished_) return absl::FailedPreconditionError("audio stream: EndSegment after Finish");
  StartChunk(out);
  absl::Span<const float> tail;
  if (absl::Status s = Resample({}, /*flush=*/true, &tail); !s.ok()) return s;
  if (config_.encoding == AudioEncoding::kPcm16) {
    AppendPcm16(tail, &out->data);
    out->sequence = pcm_chunks_;
    out->timestamp_samples = pcm_samples_;
    out->num_samples = static_cast<int64_t>(tail.size());
    pcm_samples_ += out->num_samples;
    if (!tail.empty()) ++pcm_chunks_;
    return absl::OkStatus();
  }
  packets_.clear();
  if (absl::Status s = opus_->Encode(tail, &packets_); !s.ok()) return s;
  if (absl::Status s = opus_->Drain(&packets_); !s.ok()) return s;
  absl::Status s = Emit(&packets_, /*end_page=*/true, out);
  if (ogg_ != nullptr) {
    out->num_samples = (ogg_->last_page_granule() * opus_->sample_rate_hz() / 48000) -
                       out->timestamp_samples;
  }
  return s;
}

absl::Status AudioStreamEncoder::Finish(EncodedAudio* out) {
  if (finished_) return absl::FailedPreconditionError("audio stream: Finish called twice");
  finished_ = true;
  StartChunk(out);
  absl::Span<const float> tail;
  if (absl::Status s = Resample({}, /*flush=*/true, &tail); !s.ok()) return s;
  if (config_.encoding == AudioEncoding::kPcm16) {
    AppendPcm16(tail, &out->data);
    out->sequence = pcm_chunks_;
    out->timestamp_samples = pcm_samples_;
    out->num_samples = static_cast<int64_t>(tail.size());
    pcm_samples_ += out->num_samples;
    if (!tail.empty()) ++pcm_chunks_;
    return absl::OkStatus();
  }
  packets_.clear();
  if (absl::Status s = opus_->Encode(tail, &packets_); !s.ok()) return s;
  std::vector<OpusPacket> last;
  if (absl::Status s = opus_->Flush(&last); !s.ok()) return s;
  if (config_.encoding == AudioEncoding::kOpus) {
    for (OpusPacket& p : last) packets_.push_back(std::move(p));
    return Emit(&packets_, /*end_page=*/false, out);
  }
  if (absl::Status s = Emit(&packets_, /*end_page=*/false, out); !s.ok()) return s;
  absl::Status s = ogg_->Finish(last, opus_->samples_pushed(), &out->data);
  out->num_samples =
      (ogg_->last_page_granule() * opus_->sample_rate_hz() / 48000) - out->timestamp_samples;
  return s;
}

}  // namespace vox
