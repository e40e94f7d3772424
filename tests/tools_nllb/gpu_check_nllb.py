#!/usr/bin/env python3
"""GPU check of the exported NLLB module (not part of ctest: CI has no GPU). Run where CUDA is:

    python3 tests/tools_nllb/gpu_check_nllb.py OUT_DIR [--device cuda]

Makes the tiny model with tools/tiny_nllb.py (goldens from the CPU eager reference), exports a
float16 copy too, then runs every golden input through model.ts on the device in float32,
float16 and bfloat16:
  * float32: greedy ids equal the goldens up to the first step whose golden margin is below 1e-3
    (a near-tie another kernel may break differently); beam ids equal wherever min_gap >= 1e-4;
  * float16 / bfloat16: first-step logits stay within 5% of the largest logit, and greedy ids
    equal the float32 goldens while the golden margin is at least twice that.
Prints a table; exits 1 on any mismatch, 2 without the device.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "tools")))

import torch  # noqa: E402

import export_nllb  # noqa: E402
import nllb_reference as ref  # noqa: E402
import tiny_nllb  # noqa: E402


def agreed_prefix(margins, threshold):
    n = 0
    for m in margins:
        if m < threshold:
            break
        n += 1
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtypes", default="float32,float16,bfloat16",
                        help="comma-separated (float16 needs CUDA or MPS with torch 1.13)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check_nllb.py: no CUDA device", file=sys.stderr)
        return 2
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    tiny_nllb.make(args.out)
    ckpt = os.path.join(args.out, "checkpoints", tiny_nllb.NAME)
    dirs = {"float32": os.path.join(args.out, "models", tiny_nllb.NAME),
            "bfloat16": os.path.join(args.out, "models-bf16", tiny_nllb.NAME + "-bf16"),
            "float16": os.path.join(args.out, "models-fp16", tiny_nllb.NAME + "-fp16")}
    export_nllb.export(ckpt, dirs["float16"], "float16", tiny_nllb.NAME + "-fp16", log=lambda *a: None)
    import json
    with open(os.path.join(args.out, "golden", tiny_nllb.NAME + ".json"), encoding="utf-8") as f:
        golden = json.load(f)
    failures = 0
    print(f"torch {torch.__version__} on {args.device} "
          f"({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'})")
    print(f"{'dtype':<9} {'#':>2} {'mode':<11} {'compared':>8} {'result':<8} note")
    for dtype, model_dir in dirs.items():
        if dtype not in args.dtypes.split(","):
            continue
        model = ref.TorchScriptModel(model_dir, args.device)
        for i, c in enumerate(golden["cases"]):
            g = c["greedy"]
            r = ref.greedy(model, c["src_ids"], c["tgt_id"], c["max_length"])
            la, lb = torch.tensor(g["first_logits"]), torch.tensor(r.first_logits)
            limit = 1e-4 if dtype == "float32" else 0.05 * float(la.abs().max())
            # steps before the first near-tie are certain: their ids must be equal. A reduced-
            # precision logit may be off by `limit`, so a margin under twice that is a near-tie.
            n = agreed_prefix(g["margins"], 1e-3 if dtype == "float32" else 2 * limit)
            if n == len(g["margins"]):
                ok = r.ids == g["ids"] and r.ended_with_eos == g["ended_with_eos"]
                n = len(g["ids"])
            else:
                ok = r.ids[:n] == g["ids"][:n]
            diff = float((la - lb).abs().max())
            ok = ok and diff <= limit
            failures += not ok
            print(f"{dtype:<9} {i:>2} {'greedy':<11} {n:>8} {'ok' if ok else 'MISMATCH':<8} "
                  f"first-step logits max |diff| {diff:.1e} (limit {limit:.1e})"
                  + ("" if ok else f" ours {r.ids} golden {g['ids']}"))
            if dtype != "float32":
                continue
            for b in c["beams"]:
                if b["min_gap"] < 1e-4:
                    continue
                rb = ref.beam_search(model, c["src_ids"], c["tgt_id"], b["beam_size"], b["length_penalty"],
                                     c["max_length"])
                ok = rb.ids == b["ids"]
                failures += not ok
                mode = f"beam{b['beam_size']} lp{b['length_penalty']:g}"
                print(f"{dtype:<9} {i:>2} {mode:<11} {len(b['ids']):>8} {'ok' if ok else 'MISMATCH':<8}"
                      + ("" if ok else f" ours {rb.ids} golden {b['ids']}"))
    print(f"{failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
