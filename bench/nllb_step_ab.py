#!/usr/bin/env python3
"""Two NLLB exports' encodes and decoder steps taken in turns in one process (A B, B A, A B, ...),
so that the host's drift in memory speed, which moves a call by a third on a shared VM, falls on
both alike (docs/benchmarks.md); which export goes first alternates from turn to turn. Each
export runs as voxd runs it: decode_slots over caches written in place, the source's 36 tokens
encoded once per turn.

  OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/nllb_step_ab.py \\
      --threads 2 --batch 1 A/nllb-600M B/nllb-600M

Prints, for the encode and the step, each export's median milliseconds and the median of B's
time over A's in the same turn (below 1: B is faster)."""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import nllb_reference as ref  # noqa: E402


class Runner:
    """One export's encode and decoder steps of a batch of the same source."""

    def __init__(self, path: str, batch: int, capacity: int):
        self.m = ref.TorchScriptModel(path)
        self.batch, self.capacity = batch, capacity
        self.ids, self.mask = self.m.bench_source(batch)
        self.encode()

    def encode(self) -> float:
        s = time.perf_counter()
        self.cross = self.m.cross_kv(self.m.encode(self.ids, self.mask))
        return time.perf_counter() - s

    def restart(self):
        self.kv = self.m.empty_cache(self.batch, self.capacity)
        self.t = 0

    def step(self) -> float:
        s = time.perf_counter()
        self.m.slots_step(self.kv, self.t, self.cross, self.mask)
        self.t += 1
        return time.perf_counter() - s


def report(name: str, a: list, b: list):
    ratios = [y / x for x, y in zip(a, b)]
    print(f"{name}: A {statistics.median(a) * 1e3:.1f} ms, B {statistics.median(b) * 1e3:.1f} ms, "
          f"B/A median {statistics.median(ratios):.3f} (quartiles {statistics.quantiles(ratios, n=4)[0]:.3f}, "
          f"{statistics.quantiles(ratios, n=4)[2]:.3f}; {len(ratios)} turns)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10, help="encodes per export, each followed by --tokens steps")
    ap.add_argument("--tokens", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    runners = [Runner(p, a.batch, a.tokens) for p in (a.a, a.b)]
    for r in runners:  # warm-up: one round each
        r.restart()
        for _ in range(a.tokens):
            r.step()
    # Each turn runs both exports, A first in even turns and B first in odd ones: the second call
    # of a turn measured about 1 % faster (docs/benchmarks.md, "One product for q, k and v").
    def order(turn):
        return (0, 1) if turn % 2 == 0 else (1, 0)

    encodes, steps = ([], []), ([], [])
    turn = 0
    for round_ in range(a.rounds):
        for i in order(round_):
            encodes[i].append(runners[i].encode())
            runners[i].restart()
        for _ in range(a.tokens):
            for i in order(turn):
                steps[i].append(runners[i].step())
            turn += 1
    print(f"threads {a.threads}, batch {a.batch}, {a.rounds} rounds of an encode and {a.tokens} steps; "
          f"A {a.a}, B {a.b}")
    report("encode + cross_kv", *encodes)
    report("decoder step", *steps)


if __name__ == "__main__":
    main()
