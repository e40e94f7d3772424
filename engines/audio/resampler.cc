#include "engines/audio/resampler.h"

#include <soxr.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vox {
namespace {

constexpr int kMinRate = 1000;
constexpr int kMaxRate = 384000;

unsigned long Recipe(ResamplerQuality quality) {
  switch (quality) {
    case ResamplerQuality::kQuick: return SOXR_QQ;
    case ResamplerQuality::kLow: return SOXR_LQ;
    case ResamplerQuality::kMedium: return SOXR_MQ;
    case ResamplerQuality::kHigh: return SOXR_HQ;
    case ResamplerQuality::kVeryHigh: return SOXR_VHQ;
  }
  return SOXR_HQ;
}

}  // namespace

int64_t Resampler::OutputLength(int64_t input_samples, int input_rate_hz, int output_rate_hz) {
  // Exact integer arithmetic: input_samples * output_rate fits in int64 for any real stream
  // (2^63 / 384000 samples is centuries of audio).
  return (input_samples * output_rate_hz + input_rate_hz / 2) / input_rate_hz;
}

absl::StatusOr<std::unique_ptr<Resampler>> Resampler::Create(int input_rate_hz,
                                                            int output_rate_hz,
                                                            ResamplerQuality quality) {
  for (int rate : {input_rate_hz, output_rate_hz}) {
    if (rate < kMinRate || rate > kMaxRate) {
      return absl::InvalidArgumentError(absl::StrCat("resampler: sample rate ", rate,
                                                     " Hz is out of range; allowed: ", kMinRate,
                                                     "..", kMaxRate, " Hz"));
    }
  }
  soxr* handle = nullptr;
  if (input_rate_hz != output_rate_hz) {
    soxr_error_t error = nullptr;
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t q = soxr_quality_spec(Recipe(quality), 0);
    // One thread: the server sizes its own thread pools; soxr must not spawn OpenMP threads.
    const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
    handle = soxr_create(input_rate_hz, output_rate_hz, 1, &error, &io, &q, &runtime);
    if (error != nullptr || handle == nullptr) {
      if (handle != nullptr) soxr_delete(handle);
      return absl::InternalError(absl::StrCat("soxr_create(", input_rate_hz, " -> ",
                                              output_rate_hz, "): ", error ? error : "failed"));
    }
  }
  return std::unique_ptr<Resampler>(new Resampler(input_rate_hz, output_rate_hz, handle));
}

Resampler::Resampler(int input_rate, int output_rate, soxr* handle)
    : input_rate_(input_rate), output_rate_(output_rate), handle_(handle) {}

Resampler::~Resampler() {
  if (handle_ != nullptr) soxr_delete(handle_);
}

double Resampler::delay_samples() const {
  return handle_ == nullptr ? 0.0 : soxr_delay(handle_);
}

absl::Status Resampler::Run(const float* input, size_t length, std::vector<float>* out) {
  // Never emit more than the exact total the input so far can produce (+ nothing more at flush).
  const int64_t limit = OutputLength(input_samples_ + static_cast<int64_t>(length), input_rate_,
                                     output_rate_);
  size_t consumed = 0;
  while (true) {
    // Room for everything this call can produce, plus slack for soxr's internal block size.
    const size_t room =
        static_cast<size_t>(std::max<int64_t>(limit - output_samples_, 0)) + 1024;
    const size_t base = out->size();
    out->resize(base + room);
    size_t in_done = 0;
    size_t out_done = 0;
    const soxr_error_t error =
        soxr_process(handle_, input == nullptr ? nullptr : input + consumed,
                     input == nullptr ? 0 : length - consumed, input == nullptr ? nullptr : &in_done,
                     out->data() + base, room, &out_done);
    if (error != nullptr) {
      out->resize(base);
      return absl::InternalError(absl::StrCat("soxr_process: ", error));
    }
    consumed += in_done;
    // Clamp to the exact total (soxr rounds the same way; this is a guard, not a fix-up).
    const int64_t allowed = std::max<int64_t>(limit - output_samples_, 0);
    const size_t kept = std::min<size_t>(out_done, static_cast<size_t>(allowed));
    out->resize(base + kept);
    output_samples_ += static_cast<int64_t>(kept);
    if (input != nullptr) {
      if (consumed >= length && out_done < room) break;
    } else if (out_done == 0) {
      break;
    }
  }
  input_samples_ += static_cast<int64_t>(length);
  return absl::OkStatus();
}

absl::Status Resampler::Process(absl::Span<const float> input, std::vector<float>* out) {
  if (finished_) return absl::FailedPreconditionError("resampler: Process after Flush");
  if (input.empty()) return absl::OkStatus();
  if (handle_ == nullptr) {
    out->insert(out->end(), input.begin(), input.end());
    input_samples_ += static_cast<int64_t>(input.size());
    output_samples_ += static_cast<int64_t>(input.size());
    return absl::OkStatus();
  }
  return Run(input.data(), input.size(), out);
}

absl::Status Resampler::Flush(std::vector<float>* out) {
  if (finished_) return absl::FailedPreconditionError("resampler: Flush called twice");
  finished_ = true;
  if (handle_ == nullptr) return absl::OkStatus();
  absl::Status status = Run(nullptr, 0, out);
  if (!status.ok()) return status;
  // soxr's flush yields exactly the rounded total; pad with silence if it ever falls short so the
  // length contract (and Opus/Ogg durations built on it) holds.
  const int64_t total = OutputLength(input_samples_, input_rate_, output_rate_);
  if (output_samples_ < total) {
    out->insert(out->end(), static_cast<size_t>(total - output_samples_), 0.0f);
    output_samples_ = total;
  }
  return absl::OkStatus();
}

}  // namespace vox
