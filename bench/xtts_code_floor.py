#!/usr/bin/env python3
"""What one XTTS code must cost at the least (docs/benchmarks.md, "What XTTS's absolute goals
need"): the bytes a GPT step reads with int8 weights (every product of the 30 blocks and the
mel head, one byte per weight plus a float32 scale per row), the multiply-adds of vocoding one
code (4·24000/22050 frames through the HiFi-GAN, counted with forward hooks on every
convolution), and the multiply-adds of a prefix's products over R rows (its last row alone
through the mel head). Random weights: the counts depend
only on the shapes.

    /usr/bin/python3 bench/xtts_code_floor.py --checkpoint build/peers/checkpoints/xtts-v2 [--rows 43]
"""
import argparse
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import export_xtts  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--rows", type=int, default=43, help="prefix rows after the conditioning")
    parser.add_argument("--frames", type=int, default=435, help="frames vocoded to count per frame")
    args = parser.parse_args()
    model, cfg = export_xtts.build_model(args.checkpoint)[:2]
    products = [m.weight for m in model.gpt.modules() if isinstance(m, export_xtts.Conv1D)]
    products.append(model.gpt.mel_head.weight)
    weights = sum(w.numel() for w in products)
    rows_out = sum(w.shape[-1] for w in products[:-1])
    rows_out += products[-1].shape[0]  # the head is [out, in]; Conv1D weights are [in, out]
    step_bytes = weights + 4 * rows_out
    macs = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.ConvTranspose1d):  # every input sample meets every kernel tap
            macs[0] += inp[0].shape[0] * inp[0].shape[-1] * mod.weight.numel() // mod.groups
        else:
            macs[0] += out.shape[0] * out.shape[-1] * mod.weight.numel()
    for mod in model.hifigan_decoder.modules():
        if isinstance(mod, (nn.Conv1d, nn.ConvTranspose1d)):
            mod.register_forward_hook(hook)
    frames_per_code = 4 * cfg["sample_rate"] / cfg["input_sample_rate"]
    with torch.no_grad():
        model.decode_frames(torch.randn(1, cfg["d_model"], args.frames), torch.zeros(1, cfg["speaker_dim"], 1))
    print(json.dumps({
        "gpt_step_bytes_int8": step_bytes,
        "vocoder_macs_per_frame": macs[0] / args.frames,
        "frames_per_code": frames_per_code,
        "vocoder_macs_per_code": macs[0] / args.frames * frames_per_code,
        "audio_seconds_per_code": frames_per_code * cfg["hifigan"]["hop_length"] / cfg["sample_rate"],
        "prefix_rows": args.rows,
        "prefix_macs": args.rows * (weights - products[-1].numel()) + products[-1].numel(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
