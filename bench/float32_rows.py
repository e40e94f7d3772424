#!/usr/bin/env python3
"""float32 products of many rows on CPU: vox::linear against LibTorch's `linear` (BLAS gemm) on
NLLB-600M's weight shapes, per number of rows (docs/benchmarks.md, "The float32 matrix kernel and
OpenBLAS's CPU fallback").

  OMP_WAIT_POLICY=PASSIVE [OPENBLAS_CORETYPE=...] /usr/bin/python3 bench/float32_rows.py \
      --ops-library build/engines/torch/libvox_torch_ops.so [--threads 2] [--iters 7]

Prints one JSON line per shape and row count: median ms of each, their ratio, and the kernels
OpenBLAS runs (openblas_get_corename; OPENBLAS_CORETYPE, read when OpenBLAS loads, changes them)
and OpenBLAS's thread timeout (4 unless OPENBLAS_THREAD_TIMEOUT is set: see below).
"""
import argparse
import ctypes
import json
import os

# OpenBLAS's idle workers spin for about 2^28 cycles after each gemm (its default thread timeout,
# read when it loads); on a 2-core machine they hold the core vox::linear's helper needs, and its
# next calls wait a scheduler tick (about 4 ms). Alternating the two would time that, not the
# kernels: let the workers sleep at once.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from weight_formats import set_threads, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops-library", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--rows", type=int, nargs="+", default=[2, 8, 36, 64, 128, 1152])
    a = ap.parse_args()
    torch.ops.load_library(a.ops_library)
    blas_threads = set_threads(a.threads)
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        core = lib.openblas_get_corename().decode()
    except (AttributeError, OSError):
        core = None
    g = torch.Generator().manual_seed(0)
    for out, inp in ((4096, 1024), (1024, 4096), (1024, 1024)):
        w, b = torch.randn(out, inp, generator=g), torch.randn(out, generator=g)
        for rows in a.rows:
            x = torch.randn(rows, inp, generator=g)
            gemm = timed(lambda: F.linear(x, w, b), a.iters)
            vox = timed(lambda: torch.ops.vox.linear(x, w, None, b), a.iters)
            print(json.dumps({"weight": [out, inp], "rows": rows, "threads": a.threads,
                              "openblas_threads": blas_threads, "openblas_core": core,
                              "openblas_thread_timeout": os.environ["OPENBLAS_THREAD_TIMEOUT"],
                              "linear_ms": round(gemm, 3), "vox_linear_ms": round(vox, 3),
                              "ratio": round(vox / gemm, 3)}), flush=True)


if __name__ == "__main__":
    main()
