#ifndef VOX_ENGINES_TORCH_OPS_AMX_INT8_H_
#define VOX_ENGINES_TORCH_OPS_AMX_INT8_H_

// The AMX tile kernel behind WeightGemvInt8 (weight_gemv.h) on CPUs with AMX-INT8. AMX
// multiplies int8 by int8, so each int16 activation is split exactly into a signed high byte
// and an unsigned low byte (x = 256 * hi + lo) and both halves are summed in int32 tiles;
// activations that fit in int8 (QuantizeRows with 8 bits) are packed as one signed byte, and
// each tile product then serves two groups of rows instead of two bytes of one. Either way the
// dots are exact integer sums, equal to every other kernel's. Internal to vox_cpu_kernels.
// AmxActivations is one thread's; the functions are thread-safe.

#include <cstdint>
#include <memory>

namespace vox {

// Outputs per AmxLinear call (at most), activation rows per group, input columns per tile step.
constexpr int64_t kAmxOutputs = 32;
constexpr int64_t kAmxRows = 16;
constexpr int64_t kAmxColumns = 64;
// The longest input the int32 tiles sum without overflow: |lo * w| <= 255 * 128 per column.
constexpr int64_t kAmxMaxIn = 65536;

// True when this CPU has AMX-INT8 and Linux gave this process the tile state (asked once).
bool AmxInt8Usable();

// Activation rows in the tiles' layout: for each group of kAmxRows rows (the last padded with
// zero rows) and each step of kAmxColumns columns, a 16 x 64-byte block of low bytes and one of
// high bytes (or, with one byte, a block of the int8 values), where bytes 4n..4n+3 of block row
// k hold columns 4k..4k+3 of the group's row n. Only the first in / kAmxColumns * kAmxColumns
// columns are packed; callers add the rest.
class AmxActivations {
 public:
  // bytes: 2, or 1 when every |xq| <= 127.
  void Pack(const int16_t* xq, int64_t rows, int64_t in, int bytes);
  int64_t groups() const { return groups_; }
  int64_t steps() const { return steps_; }
  int bytes() const { return bytes_; }
  // Groups one AmxLinear call computes from `group` on: 2 with one byte (but not past the last).
  int64_t groups_at(int64_t group) const { return bytes_ == 1 && group + 1 < groups_ ? 2 : 1; }
  const uint8_t* block(int64_t group, int64_t step, int part) const {
    return data_.get() + ((group * steps_ + step) * bytes_ + part) * kAmxRows * kAmxColumns;
  }

 private:
  std::unique_ptr<uint8_t[]> data_;  // uninitialised: Pack writes every byte it reads
  int64_t size_ = 0, groups_ = 0, steps_ = 0;
  int bytes_ = 2;
};

// Loads the tile configuration on this thread for its lifetime and releases the tiles after.
class AmxTiles {
 public:
  AmxTiles();
  ~AmxTiles();
  AmxTiles(const AmxTiles&) = delete;
  AmxTiles& operator=(const AmxTiles&) = delete;
};

// For outputs o in [o0, o0 + outputs) (outputs: 16 or 32) and the rows r of x.groups_at(group)
// groups from `group` on, writes
// y[r * out + o] = float(double(dot) * wscale[o] * xscale[r]) + (bias ? bias[o] : 0), the
// result WeightGemvInt8 documents, where dot is the exact dot of w's row o with xq's row r
// (xq: all rows, unpacked, for the columns past the packed ones). Needs an AmxTiles on this
// thread.
void AmxLinear(const AmxActivations& x, int64_t group, const int16_t* xq, const float* xscale, int64_t rows,
               int64_t in, const int8_t* w, const float* wscale, const float* bias, float* y, int64_t out,
               int64_t o0, int64_t outputs);

}  // namespace vox

#endif  // VOX_ENGINES_TORCH_OPS_AMX_INT8_H_
