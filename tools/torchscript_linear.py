"""The linear product both exporters script into their models (tools/export_nllb.py,
tools/export_xtts.py): few rows on CPU through vox::linear or BLAS gemv, one per row. Models
that script it need vox's operators loaded (tools/vox_ops.py)."""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def linear_rows(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    """x [N, in], weight [out, in] (any strides: a transposed view is read in place) -> [N, out].
    Up to 64 float32 rows on CPU against a contiguous float32 weight (a decoder step of up to 64
    sequences, a sentence's encoder and cross-attention keys) go through vox::linear
    (engines/torch/ops): its one-row kernel reads the weights at memory's speed where OpenBLAS's
    gemv did not, and with AVX-512 its matrix kernel beat OpenBLAS's gemm up to about 64 rows
    even where OpenBLAS knew the CPU; with AVX2 alone its smaller tiles beat it up to about 36
    (docs/benchmarks.md, "An AVX2 float32 matrix kernel"); on x86 a row's bits are then the same
    alone and among up to 64 (elsewhere vox::linear hands more than 4 rows to `linear`). Other few-row products on CPU go through mv (BLAS gemv), one
    per row: with OpenBLAS a one-row `linear` (gemm) of NLLB's
    256206 x 1024 output projection took 154 ms and `mv` 49 ms, for 2-4 rows per-row mv still
    beat gemm by 1.3-3x on every NLLB decoder weight shape (measured here, 2 threads), and on
    XTTS's GPT-2 weights gemm packed the whole weight at every call (39 % of a synthesis;
    docs/benchmarks.md, "Speech: the GPT step's GEMM"). Either way each row is computed exactly
    as it would be alone. Larger inputs (an encoder, a prefix, big batches), CUDA and MPS use
    `linear`, or mv for one row off CPU."""
    rows = x.size(0)
    if rows <= 64 and x.is_cpu and x.dtype == torch.float32 and weight.dtype == torch.float32 \
            and weight.is_contiguous():
        return torch.ops.vox.linear(x, weight, None, bias)
    if rows == 1 or (rows <= 4 and not x.is_cuda):
        out: List[Tensor] = []
        for r in range(rows):
            if bias is None:
                out.append(torch.mv(weight, x[r]))
            else:
                out.append(torch.addmv(bias, weight, x[r]))
        return torch.stack(out)
    return F.linear(x, weight, bias)
