#!/usr/bin/env python3
"""Where an exported NLLB model's decoder step spends its time: LibTorch's profiler over the
same model.ts voxd runs, from Python (docs/benchmarks.md).

  OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/profile_decode_step.py \\
      --model build/peers/models/nllb-int8/nllb-600M --threads 2

Encodes --batch copies of a 36-token source (timing encode and cross_kv; with --encode, also
profiling --steps encodes), runs --warmup decoder steps, then profiles --steps steps and prints
the operators by self time, and the step's median wall time without the profiler. The step is
decode_step (the cache concatenated per step), or with --slots decode_slots over preallocated
caches written in place, as voxd runs it.
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import nllb_reference as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rows", type=int, default=18)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--slots", action="store_true", help="decode_slots instead of decode_step")
    ap.add_argument("--encode", action="store_true", help="also profile --steps encodes of the batch")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = ref.TorchScriptModel(a.model)
    b = a.batch
    ids, mask = m.bench_source(b)
    m.encode(ids, mask)  # warm-up
    s = time.perf_counter()
    enc = m.encode(ids, mask)
    e = time.perf_counter()
    cross = m.cross_kv(enc)
    c = time.perf_counter()
    print(f"batch {b}: encode {(e - s) * 1e3:.1f} ms, cross_kv {(c - e) * 1e3:.1f} ms")
    if a.encode:
        with torch.autograd.profiler.profile() as prof:
            for _ in range(a.steps):
                m.encode(ids, mask)
        print(f"encode, {a.steps} times:")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows))
    # With --slots, capacity for every step this run takes, as voxd's caches would have.
    kv = m.empty_cache(b, a.warmup + 2 * a.steps + 1 if a.slots else 0)
    t = 0

    def step():
        nonlocal kv, t
        if a.slots:
            m.slots_step(kv, t, cross, mask)
        else:
            _, kv = m.decode_step(torch.full((b, 1), 5 + t), torch.full((b, 1), 2 + t), kv,
                                  torch.ones(b, t + 1, dtype=torch.long), cross, mask)
        t += 1
    for _ in range(a.warmup):
        step()
    with torch.autograd.profiler.profile() as prof:
        for _ in range(a.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows))
    times = []
    for _ in range(a.steps):
        s = time.perf_counter()
        step()
        times.append(time.perf_counter() - s)
    print(f"median step without the profiler: {statistics.median(times) * 1e3:.1f} ms "
          f"(threads {a.threads}, steps {a.warmup + a.steps}..{t})")


if __name__ == "__main__":
    main()
