#!/usr/bin/env python3
"""Where one XTTS code's time goes: LibTorch's profiler over GPT steps of one sequence (`step`,
as voxd runs a single stream) and over vocoding, per operator; before that, the median time
(unprofiled, --repeats calls) of a prefix whole, of a voice's conditioning and of the prefix
from it (exports of version 5), of a step, and of a `step_slots` call for each of --slot-rows
sequences in slots of their own, at cache lengths 80..199 (voxd's concurrent streams); with
--profile-slots N, LibTorch's profiler over --steps `step_slots` calls of N rows as well.
docs/benchmarks.md, "XTTS with int8 weights" and "A voice's conditioning computed once".

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/profile_xtts_code.py --model DIR [--threads 2]
        [--steps 10] [--codes 40] [--vocoder-bfloat16] [--repeats 7] [--slot-rows 1,4,16]
        [--profile-slots 16]

--vocoder-bfloat16 holds the vocoder's convolutions in bfloat16 as voxd's speech.vocoder_dtype
does (exports of version 3 and later). The graph executor's optimising passes are off, as in voxd.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import vox_ops  # noqa: E402


def median_ms(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def table(prof, rows=8):
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def time_step_slots(m, kv, code, rows, repeats: int, profile_rows: int, profile_steps: int) -> None:
    """One step_slots call of each size in `rows`, every sequence in its own slot of caches as wide
    as the prefix's (random keys and values: the time does not depend on them); then, with
    profile_rows, the profile of profile_steps calls of that many rows."""
    if not hasattr(m, "step_slots"):
        return
    g = torch.Generator().manual_seed(0)
    slots_kv = [torch.randn(max(rows + [profile_rows]), t.shape[1], t.shape[2], t.shape[3], generator=g)
                for t in kv]

    def slots_call(n):
        lens = torch.randint(80, 200, (n,), generator=g)
        codes, positions = code.expand(n, 1), torch.full((n, 1), 10)
        return lambda: m.step_slots(codes, positions, slots_kv, torch.arange(n), lens, int(lens.max()) + 1)

    for n in rows:
        print(f"step_slots, rows {n}: {median_ms(slots_call(n), repeats):.2f} ms (median of {repeats}, unprofiled)")
    if profile_rows:
        call = slots_call(profile_rows)
        call()
        with torch.autograd.profiler.profile() as prof:
            for _ in range(profile_steps):
                call()
        print(f"step_slots, rows {profile_rows}: {prof.self_cpu_time_total / 1e3 / profile_steps:.1f} ms "
              f"(profiled, {profile_steps} calls)")
        print(table(prof))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--codes", type=int, default=40, help="codes vocoded at once")
    p.add_argument("--vocoder-bfloat16", action="store_true")
    p.add_argument("--repeats", type=int, default=7, help="calls timed per median")
    p.add_argument("--slot-rows", default="1,4,16", help="rows of the timed step_slots calls")
    p.add_argument("--profile-slots", type=int, default=0, help="profile --steps step_slots calls of this many rows")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch._C._set_graph_executor_optimize(False)
    vox_ops.load()  # every export scripts vox::linear (tools/torchscript_linear.py)
    m = torch.jit.load(os.path.join(a.model, "model.ts"))
    v = torch.jit.load(os.path.join(a.model, "voices.ts"))
    if a.vocoder_bfloat16:
        with open(os.path.join(a.model, "manifest.json")) as f:
            version = json.load(f)["exporter"]["version"]
        for name, child in m.hifigan_decoder.waveform_decoder.named_children():
            if name != "ups" or version >= 8:  # transposed before version 8: float32 only
                child.to(torch.bfloat16)
    cond, spk = v.cond_latents[:1], v.speaker_embeddings[:1]
    ids = torch.arange(100, 140).unsqueeze(0)
    with torch.no_grad():
        timed = {"prefix": lambda: m.prefix(cond, ids, 400)}
        if hasattr(m, "condition"):
            cond_kv = m.condition(cond)
            timed["condition"] = lambda: m.condition(cond)
            timed["prefix_conditioned"] = lambda: m.prefix_conditioned(cond_kv, ids, 400)
        for name, call in timed.items():
            print(f"{name}: {median_ms(call, a.repeats):.1f} ms (median of {a.repeats}, "
                  f"{cond.shape[1]} conditioning rows, {ids.shape[1] + 3} text and start rows)")
        _, latent, kv = m.prefix(cond, ids, 400)
        cache_len = cond.shape[1] + ids.shape[1] + 3
        code = torch.tensor([[5]])
        for i in range(3):  # warm-up
            m.step(code, torch.tensor([[i + 1]]), kv, cache_len + i)
        position = [cache_len + 3]

        def one_step():
            m.step(code, torch.tensor([[position[0] - cache_len + 1]]), kv, position[0])
            position[0] += 1
        print(f"step: {median_ms(one_step, a.repeats):.2f} ms (median of {a.repeats}, unprofiled)")
        time_step_slots(m, kv, code, [int(r) for r in a.slot_rows.split(",")], a.repeats, a.profile_slots, a.steps)
        with torch.autograd.profiler.profile() as steps:
            for i in range(a.steps):
                m.step(code, torch.tensor([[i + 4]]), kv, cache_len + 3 + i)
        latents = torch.randn(1, a.codes, latent.shape[-1])
        m.vocode(latents, spk, 1.0)
        with torch.autograd.profiler.profile() as vocode:
            m.vocode(latents, spk, 1.0)
    step_ms = steps.self_cpu_time_total / 1e3 / a.steps
    vocode_ms = vocode.self_cpu_time_total / 1e3 / a.codes
    calls = len(steps.function_events) / a.steps  # LibTorch operators and TorchScript methods
    print(f"GPT step: {step_ms:.1f} ms (profiled, {a.steps} steps at cache length {cache_len + 3}..), "
          f"{calls:.0f} calls a step")
    print(table(steps))
    print(f"vocoding: {vocode_ms:.1f} ms per code (profiled, {a.codes} codes at once)")
    print(table(vocode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
