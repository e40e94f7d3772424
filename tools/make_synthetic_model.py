#!/usr/bin/env python3
"""Writes an exported model directory with random weights at real NLLB-200 / XTTS v2 dimensions.

    python3 tools/make_synthetic_model.py --arch nllb --preset 600M|1.3B|3.3B|600M-2layer \\
        --dtype bfloat16|float16|float32 --out DIR [--device cpu|cuda] [--spm PATH] [--seed N]
    python3 tools/make_synthetic_model.py --arch xtts --preset v2|v2-2layer \\
        --dtype float32|bfloat16|float16 --out DIR [--seed N]

For latency and memory measurements where the real checkpoints are not at hand (the GPU check,
scripts/gpu-check; docs/gpu.md): the compute and the bytes read per token depend only on the
dimensions, not on the weights' values. The output is exactly what the exporters write
(docs/model-format.md), because it is written BY the exporters: tools/export_nllb.py's export()
and tools/export_xtts.py's export() run unchanged, only their checkpoint readers are replaced by
generators of random tensors (normal, std 0.02; layer norms 1, biases 0, so activations stay
finite in bfloat16 through every layer). Nothing here is a real translation or voice.

XTTS is "write the checkpoint, then export it": tools/xtts_checkpoint.py writes a checkpoint
directory in Coqui's published layout (the keys Coqui 0.28 loads) to a scratch directory and
tools/export_xtts.py exports it unchanged.

Memory: NLLB tensors are created one at a time directly in --dtype (on --device), so the peak is
one copy of the weights. XTTS (467M values in Coqui's layout at v2 dimensions, 1.9 GB
model.pth) is written in float32, then read back and converted by the exporter, as a real
export is; the scratch checkpoint needs its size on the temporary disk.

Tokenizers: NLLB gets a small SentencePiece model (tools/tiny_nllb.py's training, or --spm) padded
with unused pieces to the released 256000, and the 202 language codes at the released ids
256001 + i (tools/nllb_checkpoint.py's tokenizer files), consistent with the 256206-row vocabulary.
Synthetic NLLB checkpoints that transformers can load (a real checkpoint directory, for fidelity
tests) are tools/nllb_checkpoint.py's; for NLLB this tool writes only the exported model. XTTS gets
tools/tiny_xtts.py's BPE vocab.json padded with unused tokens to the released 6681 ids, and 17
languages.

Exit status 0 on success, 1 with a message on error, 2 for a bad command line.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_nllb  # noqa: E402
import export_xtts  # noqa: E402
import xtts_checkpoint  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# facebook/nllb-200-distilled-600M, -distilled-1.3B and nllb-200-3.3B config.json dimensions;
# 600M-2layer keeps the 600M widths and vocabulary with two layers each side (CPU smoke tests).
NLLB_PRESETS = {
    "600M": dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                 decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096),
    "1.3B": dict(d_model=1024, encoder_layers=24, decoder_layers=24, encoder_attention_heads=16,
                 decoder_attention_heads=16, encoder_ffn_dim=8192, decoder_ffn_dim=8192),
    "3.3B": dict(d_model=2048, encoder_layers=24, decoder_layers=24, encoder_attention_heads=16,
                 decoder_attention_heads=16, encoder_ffn_dim=8192, decoder_ffn_dim=8192),
    "600M-2layer": dict(d_model=1024, encoder_layers=2, decoder_layers=2, encoder_attention_heads=16,
                        decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096),
}
NLLB_VOCAB = 256206          # 256000 pieces + 1 + 202 language codes + <mask> + 2 spare
NLLB_FIRST_LANGUAGE_ID = 256001
NLLB_MAX_POSITIONS = 1024

# coqui/XTTS-v2 dimensions: the checkpoint presets of tools/xtts_checkpoint.py that have random
# weights (v2: d 1024, 30 layers, 16 heads, 6681 text tokens; v2-2layer: 2 layers).
XTTS_PRESETS = {k: v for k, v in xtts_checkpoint.PRESETS.items() if v is not None}

STD = 0.02


class SyntheticError(Exception):
    pass


def _fill_(name: str, t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """In place: biases 0, 1-D norm weights 1, everything else normal(0, STD)."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "bias":
        return t.zero_()
    if t.dim() == 1:
        return t.fill_(1.0)
    return t.normal_(0.0, STD, generator=gen)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


# ------------------------------------------------------------------------------------------------
# NLLB


def _nllb_shards(cfg: dict, dtype: torch.dtype, device: torch.device, seed: int
                 ) -> Iterator[Tuple[str, Dict[str, torch.Tensor]]]:
    """Stands in for export_nllb.iter_shards: one 'shard' per parameter of NllbModel, created in
    `dtype` on `device` (the exporter's .to(dtype) is then a no-op: no second copy)."""
    with torch.no_grad():
        shapes = [(k, tuple(p.shape)) for k, p in
                  export_nllb.NllbModel(cfg, dtype, device="meta").named_parameters()]
    gen = _generator(device, seed)
    for key, shape in shapes:
        t = torch.empty(shape, dtype=dtype, device=device)
        _fill_(key, t, gen)
        yield "synthetic", {key: t}
        del t


def make_nllb(preset: str, dtype_name: str, out: str, device: str, spm: str, seed: int) -> dict:
    import tiny_nllb  # tools/tiny_nllb.py: SentencePiece training and the hub config layout

    dims = NLLB_PRESETS[preset]
    dev = torch.device(device)
    with tempfile.TemporaryDirectory(prefix="synthetic-nllb-") as ckpt:
        if spm:
            import shutil
            shutil.copyfile(spm, os.path.join(ckpt, export_nllb.SPM_FILE))
        else:
            tiny_nllb.train_spm(ckpt)
        cfg = tiny_nllb.hub_config(dict(dims, max_position_embeddings=NLLB_MAX_POSITIONS), NLLB_VOCAB)
        cfg["_name_or_path"] = f"nllb-200 {preset} (synthetic random weights)"
        cfg["torch_dtype"] = dtype_name
        with open(os.path.join(ckpt, "config.json"), "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2)
        # The released vocabulary layout: SentencePiece padded to 256000 pieces (unused ones),
        # codes at 256001 + i, stated in the tokenizer files the way hub checkpoints state them
        # (tools/nllb_checkpoint.py, the one writer of synthetic NLLB tokenizer files).
        import nllb_checkpoint
        nllb_checkpoint.pad_spm(os.path.join(ckpt, export_nllb.SPM_FILE), NLLB_FIRST_LANGUAGE_ID - 1)
        nllb_checkpoint.write_tokenizer_files(ckpt, NLLB_FIRST_LANGUAGE_ID, NLLB_MAX_POSITIONS)

        # The exporter, with its checkpoint reader replaced by the random-tensor generator.
        saved = export_nllb.find_weights, export_nllb.iter_shards
        export_nllb.find_weights = lambda _ckpt: ("synthetic", [f"random normal(0, {STD}) seed {seed}"])
        export_nllb.iter_shards = lambda _ckpt, _files: _nllb_shards(cfg, DTYPES[dtype_name], dev, seed)
        try:
            manifest = export_nllb.export(ckpt, out, dtype_name, name=f"nllb-200-{preset}-synthetic")
        except export_nllb.ExportError as e:
            raise SyntheticError(str(e)) from None
        finally:
            export_nllb.find_weights, export_nllb.iter_shards = saved
    # The manifest must not point at the deleted scratch directory as if it were a checkpoint.
    manifest["source"] = {"checkpoint": None, "format": "synthetic", "preset": preset, "seed": seed,
                          "init": f"normal(0, {STD}), layer norms 1, biases 0"}
    _rewrite_manifest(out, manifest)
    return manifest


# ------------------------------------------------------------------------------------------------
# XTTS


def make_xtts(preset: str, dtype_name: str, out: str, seed: int, dims: dict = None) -> dict:
    """Writes the synthetic checkpoint in Coqui's layout (tools/xtts_checkpoint.py) into a scratch
    directory, then exports it with tools/export_xtts.py: the path a real checkpoint takes.
    `dims` overrides the preset's dimensions (small-scale tests)."""
    with tempfile.TemporaryDirectory(prefix="synthetic-xtts-") as ckpt:
        try:
            info = xtts_checkpoint.make_random(preset, ckpt, seed, dims)
            manifest = export_xtts.export(ckpt, out, dtype_name, name=f"xtts-{preset}-synthetic")
        except (export_xtts.ExportError, xtts_checkpoint.CheckpointError) as e:
            raise SyntheticError(str(e)) from None
    manifest["source"] = {"checkpoint": None, "format": "synthetic", "preset": preset, "seed": seed,
                          "dims": info["dims"],
                          "init": f"tools/xtts_checkpoint.py: GPT normal(0, {xtts_checkpoint.STD}), norms 1, "
                                  f"biases 0; HiFi-GAN normal(0, 1/sqrt(fan_in))"}
    _rewrite_manifest(out, manifest)
    return manifest


def _rewrite_manifest(out: str, manifest: dict) -> None:
    tmp = os.path.join(out, "manifest.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, os.path.join(out, "manifest.json"))


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, choices=["nllb", "xtts"])
    parser.add_argument("--preset", required=True,
                        help=f"nllb: {', '.join(NLLB_PRESETS)}; xtts: {', '.join(XTTS_PRESETS)}")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--device", default="cpu",
                        help="where NLLB weights are generated (cpu, cuda); the file is the same")
    parser.add_argument("--spm", help="NLLB: SentencePiece model to use instead of training a small one")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    presets = NLLB_PRESETS if args.arch == "nllb" else XTTS_PRESETS
    if args.preset not in presets:
        parser.error(f"--preset {args.preset!r} is not a {args.arch} preset; allowed: {', '.join(presets)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"make_synthetic_model.py: error: --device {args.device} but this torch "
              f"({torch.__version__}) has no CUDA device", file=sys.stderr)
        return 1
    t0 = time.time()
    try:
        if args.arch == "nllb":
            m = make_nllb(args.preset, args.dtype, args.out, args.device, args.spm, args.seed)
        else:
            m = make_xtts(args.preset, args.dtype, args.out, args.seed)
    except SyntheticError as e:
        print(f"make_synthetic_model.py: error: {e}", file=sys.stderr)
        return 1
    size = sum(f["size"] for f in m["files"].values())
    print(json.dumps({"tool": "make_synthetic_model", "arch": args.arch, "preset": args.preset,
                      "dtype": args.dtype, "out": args.out, "bytes": size,
                      "seconds": round(time.time() - t0, 2), "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
