#!/usr/bin/env python3
"""Times the first calls of an exported model in a fresh process, with TorchScript's graph
executor optimising (LibTorch's default) or not (what voxd runs with: engines/torch/device.h,
PrepareProcessForModels item 4). docs/benchmarks.md, "XTTS with int8 weights".

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/first_calls.py --model DIR [--optimize on|off]
        [--calls 4] [--threads 1]

One call: for XTTS, prefix of 40 text ids + 20 steps + vocoding them; for NLLB, encoding 20 ids +
12 decoder steps. Prints one JSON line per call.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import vox_ops  # noqa: E402


def xtts_call(model_dir):
    m = torch.jit.load(os.path.join(model_dir, "model.ts"))
    v = torch.jit.load(os.path.join(model_dir, "voices.ts"))
    cond, spk = v.cond_latents[:1], v.speaker_embeddings[:1]
    ids = torch.arange(100, 140).unsqueeze(0)

    def call():
        _, latent, kv = m.prefix(cond, ids, 200)
        cache_len, latents = cond.shape[1] + ids.shape[1] + 3, [latent]
        for i in range(20):
            _, latent = m.step(torch.tensor([[5]]), torch.tensor([[i + 1]]), kv, cache_len + i)
            latents.append(latent)
        m.vocode(torch.stack(latents, 1), spk, 1.0)
    return call


def nllb_call(model_dir):
    import nllb_reference
    m = nllb_reference.TorchScriptModel(model_dir)
    ids = torch.arange(100, 120).unsqueeze(0)
    ids[0, -1] = 2
    mask = torch.ones_like(ids)

    def call():
        cross = m.cross_kv(m.encode(ids, mask))
        kv = m.empty_cache(1)
        for s in range(12):
            step = torch.full((1, 1), 5, dtype=torch.long)
            _, kv = m.decode_step(step, torch.full_like(step, 2 + s), kv, torch.ones(1, s + 1, dtype=torch.long),
                                  cross, mask)
    return call


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--optimize", choices=("on", "off"), default="off")
    p.add_argument("--calls", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch._C._set_graph_executor_optimize(a.optimize == "on")
    with open(os.path.join(a.model, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    vox_ops.load()  # every export scripts vox::linear (tools/torchscript_linear.py)
    call = (xtts_call if manifest["kind"] == "speech" else nllb_call)(a.model)
    for i in range(a.calls):
        t = time.perf_counter()
        with torch.no_grad():
            call()
        print(json.dumps({"call": i, "optimize": a.optimize, "ms": round((time.perf_counter() - t) * 1e3, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
