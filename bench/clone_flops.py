#!/usr/bin/env python3
"""Counts the multiply-adds of voice cloning (tools/xtts_clone.py's clone.ts module) at the
released dimensions for N seconds of audio (docs/benchmarks.md, "Voice cloning"): convolutions
through forward hooks (torch 1.13's profiler counts no conv1d), matrix products through
torch.autograd.profiler's with_flops. Random weights: the count depends only on the shapes.

    /usr/bin/python3 bench/clone_flops.py [--seconds 10]
"""
import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import xtts_clone  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    m = xtts_clone.XttsCloner(1024, 16, 30, 4, 30, False).eval()
    t = torch.arange(int(args.seconds * 22050)) / 22050
    audio = (0.3 * sum(torch.sin(k * 2 * math.pi * 120 * t) / k for k in range(1, 10))).float().view(1, -1)
    conv = [0]

    def hook(mod, inp, out):
        conv[0] += 2 * out.numel() * mod.weight[0].numel()

    for mod in m.modules():
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d)):
            mod.register_forward_hook(hook)
    total = 0.0
    with torch.inference_mode():
        for name, fn in (("gpt conditioning (mel, encoder, perceiver)", lambda: m.gpt_cond_latent(audio)),
                         ("speaker encoder (16 kHz resampling, ResNet)", lambda: m.speaker_embedding(audio))):
            conv[0] = 0
            with torch.autograd.profiler.profile(with_flops=True) as prof:
                fn()
            products = sum(e.flops for e in prof.key_averages() if e.flops and e.key != "aten::conv2d")
            gflop = (conv[0] + products) / 1e9
            total += gflop
            print(f"{name}: {gflop:.1f} GFLOP (convolutions {conv[0] / 1e9:.1f}, other products {products / 1e9:.1f})")
    print(f"total for {args.seconds:g} s of audio: {total:.1f} GFLOP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
