#ifndef VOX_ENGINES_TORCH_OPS_ATTEND_H_
#define VOX_ENGINES_TORCH_OPS_ATTEND_H_

// Attention for vox's `vox::attend` operator (attend_op.cc): softmax(q k^T, masked) v per
// (row, head) without the [rows, heads, queries, keys] and [rows, heads, keys, dim] temporaries
// that LibTorch's products make, or the per-(row, head) BLAS calls of its bmm. No LibTorch
// here. Float32 sums; the last bits depend on the kernel. Stateless and thread-safe:
// concurrent calls may write disjoint ranges of the same out.

#include <cstdint>

namespace vox {

// q, out: [rows, heads, queries, dim], contiguous. Key or value (b, h, l) starts at
// b * strides[0] + h * strides[1] + l * strides[2] of k or v (its dim floats contiguous).
// key_mask: [rows, keys], 0 = masked; null: every key counts.
struct AttendShape {
  int64_t rows, heads, queries, keys, dim;
  int64_t k_strides[3], v_strides[3];
};

// For each (b, h) with begin <= b * heads + h < end and each query i: s[l] = key_mask[b, l] ?
// q[b, h, i] . k[b, h, l] : neg, and out[b, h, i] = sum over l of softmax(s)[l] * v[b, h, l]
// (all keys masked: the uniform average, as a softmax over `neg` alone gives).
void Attend(const float* q, const float* k, const float* v, const int64_t* key_mask, const AttendShape& shape,
            float neg, float* out, int64_t begin, int64_t end);

}  // namespace vox

#endif  // VOX_ENGINES_TORCH_OPS_ATTEND_H_
