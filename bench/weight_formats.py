#!/usr/bin/env python3
"""Per-token weight-read time of the NLLB decoder at 600M dimensions, per weight format, in the
torch this runs under (docs/benchmarks.md, "Weight formats and LibTorch").

One "token" = every linear a decoder step runs on one row: per layer self-attention q, k, v, out,
cross-attention q, out (cross k/v are computed once per sentence), fc1 and fc2, then the
256206-row output projection. Every weight is its own tensor, so nothing stays in cache. Prints
one JSON line per format: median ms per token over --iters, and the bytes it reads.

  python bench/weight_formats.py [--threads N] [--iters 7] [--layers 12] [--ops-library PATH]
  python bench/weight_formats.py --threads N --bandwidth-only [--ops-library PATH]
  python bench/weight_formats.py --per-token-bytes MODEL_DIR
  python bench/weight_formats.py --ops-library PATH --small-weights     (1 and 2 threads)

--ops-library loads vox's CPU operators (build/engines/torch/libvox_torch_ops.so) and adds
vox::linear over float32, int8 and bfloat16 weights (and vox::linear's float32 product as a
third reader of the read bandwidth). --bandwidth-only prints the read bandwidth alone (what
bench/peers/run computes bandwidth floors from). --per-token-bytes prints the bytes an exported
NLLB model reads per generated token: the decoder's parameters except the cross-attention k/v
projections (run once per sentence), and the tied embedding as output projection.
--small-weights times vox::linear on 200 distinct 1024 x 1024 int8 weights (one row), on 1 and
on 2 threads: what splitting a small weight across threads costs.
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import compressed_weights  # noqa: E402  (quantize_int8: the exporters' int8 format)
import nllb_reference  # noqa: E402

D, FFN, VOCAB = 1024, 4096, 256206


def set_threads(n):
    """n intra-op threads, and as many OpenBLAS threads, as voxd sets them (engines/torch/device.cc):
    torch.set_num_threads leaves OpenBLAS's own pool at the core count. Returns OpenBLAS's count,
    or None where torch's BLAS is not OpenBLAS."""
    torch.set_num_threads(n)
    try:
        lib = ctypes.CDLL("libblas.so.3")  # the BLAS torch already loaded (Debian: OpenBLAS)
        lib.openblas_set_num_threads(n)
        return lib.openblas_get_num_threads()
    except (AttributeError, OSError):
        return None


def shapes(layers):
    per_layer = [(D, D)] * 6 + [(FFN, D), (D, FFN)]
    return per_layer * layers + [(VOCAB, D)]


def read_bandwidth(iters, have_vox=False):
    """GB/s reading a 1 GiB float32 tensor: the fastest of summing it, of a matrix-vector product
    over it and, with vox's operators loaded, of vox::linear over it (all read-only streams),
    medians of iters."""
    t = torch.ones(256 * 1024, 1024)
    v = torch.ones(1024)
    readers = [lambda: t.sum(), lambda: torch.mv(t, v)]
    if have_vox:
        readers.append(lambda: torch.ops.vox.linear(v.unsqueeze(0), t, None, None))
    fastest_ms = min(timed(r, iters) for r in readers)
    return t.numel() * 4 / fastest_ms / 1e6


def timed(step, iters):
    """Median milliseconds of iters calls, after one untimed call."""
    step()
    times = []
    for _ in range(iters):
        s = time.perf_counter()
        step()
        times.append(time.perf_counter() - s)
    return statistics.median(times) * 1e3


def formats(layers, have_vox):
    """({name: (one state per weight, run(x float32 [1, in], state) -> y)}, {name: bytes})"""
    g = torch.Generator().manual_seed(0)
    fp32 = [torch.randn(o, i, generator=g) * 0.02 for o, i in shapes(layers)]
    int8 = [compressed_weights.quantize_int8(w) for w in fp32]  # (values, scale per row), as exported
    out = {}
    out["float32 mv (BLAS gemv)"] = (fp32, lambda x, w: torch.mv(w, x[0]).unsqueeze(0))
    out["float32 linear"] = (fp32, lambda x, w: F.linear(x, w))
    bf16 = [w.bfloat16() for w in fp32]
    out["bfloat16 mv"] = (bf16, lambda x, w: torch.mv(w, x[0].bfloat16()).unsqueeze(0))
    if torch.backends.quantized.supported_engines:
        engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else \
            ("onednn" if "onednn" in torch.backends.quantized.supported_engines else None)
        if engine:
            torch.backends.quantized.engine = engine
            packed = []
            for w, (_, scale) in zip(fp32, int8):
                q = torch.quantize_per_channel(w, scale.double(), torch.zeros(w.size(0), dtype=torch.long), 0, torch.qint8)
                packed.append(torch.ops.quantized.linear_prepack(q, None))
            out[f"int8 dynamic ({engine}, activations quantized per row)"] = (
                packed, lambda x, p: torch.ops.quantized.linear_dynamic(x, p, True))
    if have_vox:
        out["float32 weights (vox::linear)"] = (fp32, lambda x, w: torch.ops.vox.linear(x, w, None, None))
        out["int8 weights, float32 activations (vox::linear)"] = (
            int8, lambda x, s: torch.ops.vox.linear(x, s[0], s[1], None))
        out["bfloat16 weights, float32 activations (vox::linear)"] = (
            bf16, lambda x, w: torch.ops.vox.linear(x, w, None, None))
    sizes = {}
    for name, (states, _) in out.items():
        sizes[name] = sum(_bytes(s) for s in states)
    return out, sizes


def _bytes(state):
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, tuple):
        return sum(_bytes(s) for s in state)
    w, _ = torch.ops.quantized.linear_unpack(state)
    return w.numel() + w.size(0) * 8  # int8 values + per-channel scale (double)


def per_token_bytes(model_dir):
    model = nllb_reference.TorchScriptModel(model_dir)  # loads vox's operators when needed
    manifest = model.manifest
    total = step = 0
    for name, p in model.module.named_parameters():
        size = p.numel() * p.element_size()
        total += size
        # the cross-attention's k and v: one product from exporter version 9, two before
        once = any(f".encoder_attn.{p}_proj." in name for p in ("kv", "k", "v"))
        if name.startswith("model.shared.") or (name.startswith("model.decoder.") and not once):
            step += size
    return {"model": model_dir, "weights": manifest.get("weights", manifest["dtype"]),
            "per_token_bytes": step, "parameter_bytes": total}


def small_weights(iters):
    g = torch.Generator().manual_seed(0)
    weights = [torch.randint(-127, 128, (1024, 1024), dtype=torch.int8, generator=g) for _ in range(200)]
    scale, x = torch.rand(1024, generator=g), torch.randn(1, 1024, generator=g)
    for threads in (1, 2):
        torch.set_num_threads(threads)

        def run():
            for w in weights:
                torch.ops.vox.linear(x, w, scale, None)
        us = timed(run, iters) * 1e3 / len(weights)
        print(json.dumps({"event": "small_weights", "threads": threads, "us_per_call": round(us, 1)}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--ops-library", default="")
    ap.add_argument("--bandwidth-only", action="store_true")
    ap.add_argument("--per-token-bytes", metavar="MODEL_DIR")
    ap.add_argument("--small-weights", action="store_true")
    a = ap.parse_args()
    if a.small_weights:
        torch.ops.load_library(a.ops_library)
        small_weights(a.iters)
        return
    blas_threads = set_threads(a.threads)
    if a.per_token_bytes:
        print(json.dumps(per_token_bytes(a.per_token_bytes)))
        return
    if a.ops_library:
        torch.ops.load_library(a.ops_library)
    if a.bandwidth_only:
        print(json.dumps({"threads": a.threads, "openblas_threads": blas_threads,
                          "read_gb_per_s": round(read_bandwidth(a.iters, bool(a.ops_library)), 2)}))
        return
    env = {"torch": torch.__version__, "threads": a.threads, "openblas_threads": blas_threads,
           "blas": "mkl" if torch.backends.mkl.is_available() else "other",
           "read_gb_per_s": round(read_bandwidth(a.iters, bool(a.ops_library)), 1)}
    print(json.dumps({"event": "start", **env}), flush=True)
    table, sizes = formats(a.layers, bool(a.ops_library))
    shp = shapes(a.layers)
    for name, (states, run) in table.items():
        xs = [torch.randn(1, i) for _, i in shp]

        def step():
            for x, s in zip(xs, states):
                run(x, s)
        ms = timed(step, a.iters)
        floor = sizes[name] / (env["read_gb_per_s"] * 1e9) * 1e3
        print(json.dumps({"event": "format", "format": name, "ms_per_token": round(ms, 1),
                          "bytes_per_token": sizes[name], "floor_ms": round(floor, 1),
                          "ratio_to_floor": round(ms / floor, 2)}), flush=True)


if __name__ == "__main__":
    main()
