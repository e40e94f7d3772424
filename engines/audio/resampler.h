#ifndef VOX_ENGINES_AUDIO_RESAMPLER_H_
#define VOX_ENGINES_AUDIO_RESAMPLER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

struct soxr;  // libsoxr's handle; only resampler.cc includes <soxr.h>.

namespace vox {

// libsoxr quality recipes. kHigh (20-bit, linear phase) is the default: at 24 kHz its group
// delay is about 8 ms, below one 20 ms Opus frame. Lower recipes cut delay and CPU.
enum class ResamplerQuality { kQuick, kLow, kMedium, kHigh, kVeryHigh };

// Streaming mono float sample-rate converter (libsoxr).
//
// Feed blocks of any size with Process(); call Flush() once at the end to get the filter's tail.
// The total output length is exact: after Flush() exactly OutputLength(total input) samples have
// been produced, however the input was split. Before Flush() the output lags the input by the
// filter's delay (delay_samples()).
//
// Equal rates pass samples through unchanged (no filter, no delay).
//
// Thread-compatible: one object per stream; distinct objects may be used from different threads.
// Cost: O(samples); ~10 ns per output sample at kHigh on one core (22050->24000 runs ~4000x
// real time, bench/opus_bench.cc BM_Resampler), i.e. ~8% of Opus encoding at complexity 5.
class Resampler {
 public:
  // InvalidArgument when a rate is outside 1000..384000 Hz.
  static absl::StatusOr<std::unique_ptr<Resampler>> Create(
      int input_rate_hz, int output_rate_hz, ResamplerQuality quality = ResamplerQuality::kHigh);
  ~Resampler();
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;

  // Appends converted samples to *out (possibly none yet). FailedPrecondition after Flush().
  absl::Status Process(absl::Span<const float> input, std::vector<float>* out);
  // Appends the remaining samples to *out; afterwards the total equals OutputLength(input).
  // The object is finished: Process/Flush fail with FailedPrecondition.
  absl::Status Flush(std::vector<float>* out);

  // round(input_samples * output_rate / input_rate), halves rounded up: the exact total.
  static int64_t OutputLength(int64_t input_samples, int input_rate_hz, int output_rate_hz);

  int input_rate_hz() const { return input_rate_; }
  int output_rate_hz() const { return output_rate_; }
  int64_t input_samples() const { return input_samples_; }
  int64_t output_samples() const { return output_samples_; }
  bool finished() const { return finished_; }
  // Current filter delay in output samples (0 for equal rates).
  double delay_samples() const;

 private:
  Resampler(int input_rate, int output_rate, soxr* handle);
  // Runs soxr on `input` (nullptr = flush), appending up to `limit` more output samples.
  absl::Status Run(const float* input, size_t length, std::vector<float>* out);

  const int input_rate_;
  const int output_rate_;
  soxr* handle_;  // owned; nullptr when the rates are equal
  int64_t input_samples_ = 0;
  int64_t output_samples_ = 0;
  bool finished_ = false;
};

}  // namespace vox

#endif  // VOX_ENGINES_AUDIO_RESAMPLER_H_
