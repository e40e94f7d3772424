#!/usr/bin/env python3
"""Python side of the NLLB C++-against-Python benchmark (issue 2, "C++ against Python").

    /usr/bin/python3 bench/nllb_python_reference.py --dir DIR [--threads N] [--tokens 20]
        [--repeats 5] [--text "..."] [--prepare-only] [--no-bandwidth]

1. Prepares, once, under DIR (made at bench time, never committed, not part of CI):
     DIR/checkpoint/  a synthetic checkpoint with NLLB-200-distilled-600M's full dimensions
                      (12 + 12 layers, d_model 1024, 16 heads, ffn 4096, vocab 256206, 1024
                      positions; random weights from tools/tiny_nllb.py, fixed seed; the tiny
                      SentencePiece model, so a sentence has more pieces than with the real one)
     DIR/model/       that checkpoint exported by tools/export_nllb.py (float32): what the C++
                      engine loads (voxd --models DIR/.. would see it as "model")
   About 2.5 GB each on disk; about 2.7 GB of memory while exporting.
2. Measures the machine's memory read bandwidth at N threads: the best of several read-only
   passes over a 1 GiB float32 tensor (torch.sum, and BLAS sdot of the tensor with itself).
   Bandwidth figures are only meaningful on an otherwise idle machine.
3. Times 20-token fixed-length greedy decoding (docs/model-format.md: never stops at </s>) of a
   typical sentence with tools/nllb_reference.py's ReferenceModel: eager PyTorch written the way
   transformers runs it (nn.Linear layers, KV cache, lm_head tied to the embedding), at N torch
   threads and N OpenBLAS threads (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are set before torch is
   imported). One untimed warm-up run, then --repeats timed runs of encode + all decoder steps.

Output: one JSON object per line on stdout (progress goes to stderr). Every line has
"bench": "nllb_python_reference" and an "event":
  {"event": "prepared", "checkpoint": PATH, "model_dir": PATH, "weights_bytes": INT}
  {"event": "bandwidth", "threads": N, "bytes": INT, "method": "sum"|"dot", "best_s": F, "gb_per_s": F,
       "per_method_gb_per_s": {"sum": F, "dot": F}}
  {"event": "bound", "bytes_per_token": INT, "parts": {"decoder_layers": INT, "lm_head": INT,
       "cross_kv": INT}, "gb_per_s": F, "bound_ms_per_token": F}
       bytes one generated token reads at least: the decoder weights used per step (cross-
       attention k/v projections excluded: their output is cached), the tied 256206 x 1024 output
       projection, and the cross-attention cache; bound = bytes_per_token / bandwidth
  {"event": "result", "impl": "python-eager", "threads": N, "tokens": 20, "decode_steps": INT,
       "src_tokens": INT, "text": STR, "source": "eng_Latn", "target": "fra_Latn", "repeats": R,
       "times_s": [F...], "best_s": F, "median_s": F, "ms_per_token": F (median_s / tokens * 1000),
       "bound_ratio": F (ms_per_token / bound_ms_per_token), "ids": [INT...], "min_margin": F}
  decode_steps counts decode_step calls: [2] and the language token, then one per generated
  token but the last (tokens + 1). "ids" are the generated ids; a C++ run on DIR/model should
  produce the same ones except after a step whose margin is a near-tie.
Exit status 0, or 1 with a message on stderr.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.normpath(os.path.join(HERE, "..", "tools"))

DIMS_600M = {"d_model": 1024, "encoder_layers": 12, "decoder_layers": 12, "encoder_attention_heads": 16,
             "decoder_attention_heads": 16, "encoder_ffn_dim": 4096, "decoder_ffn_dim": 4096,
             "max_position_embeddings": 1024}
VOCAB_600M = 256206
DEFAULT_TEXT = "The weather is nice today, so we are going to the park with the children."


def emit(event: str, **fields) -> None:
    print(json.dumps(dict({"bench": "nllb_python_reference", "event": event}, **fields), ensure_ascii=False),
          flush=True)


def log(msg: str) -> None:
    print(f"nllb_python_reference: {msg}", file=sys.stderr, flush=True)


def prepare(root: str) -> dict:
    import tiny_nllb
    ckpt = os.path.join(root, "checkpoint")
    model = os.path.join(root, "model")
    if not os.path.isfile(os.path.join(ckpt, "pytorch_model.bin")):
        log(f"writing a synthetic NLLB-600M-sized checkpoint to {ckpt} (about 2.5 GB)")
        t0 = time.time()
        tiny_nllb.write_checkpoint(ckpt, DIMS_600M, vocab_size=VOCAB_600M)
        log(f"checkpoint written in {time.time() - t0:.0f} s")
    if not os.path.isfile(os.path.join(model, "manifest.json")):
        log(f"exporting it to {model}")
        subprocess.run([sys.executable, os.path.join(TOOLS, "export_nllb.py"), "--checkpoint", ckpt, "--out", model,
                        "--name", "nllb-600m-synthetic"], check=True, stdout=sys.stderr)
    weights = os.path.getsize(os.path.join(ckpt, "pytorch_model.bin"))
    emit("prepared", checkpoint=ckpt, model_dir=model, weights_bytes=weights)
    return {"checkpoint": ckpt, "model": model}


def bandwidth(threads: int, nbytes: int = 1 << 30, passes: int = 7) -> float:
    """Best read rate of a 1 GiB float32 tensor over `passes` read-only passes with two kernels
    (torch.sum and BLAS sdot of the tensor with itself, which reads it once); the faster kernel
    is reported, since a slow reduction kernel would understate the machine."""
    import torch
    t = torch.ones(nbytes // 4, dtype=torch.float32)
    kernels = {"sum": lambda: float(t.sum()), "dot": lambda: float(torch.dot(t, t))}
    best = {}
    for name, fn in kernels.items():
        best[name] = float("inf")
        for _ in range(passes):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    del t
    method = min(best, key=best.get)
    gbps = nbytes / best[method] / 1e9
    emit("bandwidth", threads=threads, bytes=nbytes, method=method, best_s=best[method], gb_per_s=gbps,
         per_method_gb_per_s={k: nbytes / v / 1e9 for k, v in best.items()})
    return gbps


def bytes_per_token(cfg: dict, src_tokens: int) -> dict:
    d, ffn, layers, v = cfg["d_model"], cfg["decoder_ffn_dim"], cfg["decoder_layers"], cfg["vocab_size"]
    per_layer = (4 * (d * d + d)       # self-attention q, k, v, out
                 + 2 * (d * d + d)     # cross-attention q, out (k, v projections are cached)
                 + (ffn * d + ffn) + (d * ffn + d)
                 + 3 * 2 * d)          # three LayerNorms
    parts = {"decoder_layers": 4 * (layers * per_layer + 2 * d),
             "lm_head": 4 * v * d,
             "cross_kv": 4 * layers * 2 * src_tokens * d}
    return parts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where the checkpoint and exported model live")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--source", default="eng_Latn")
    parser.add_argument("--target", default="fra_Latn")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--no-bandwidth", action="store_true")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.tokens < 1 or args.repeats < 1:
        parser.error("--threads, --tokens and --repeats must be >= 1")

    # OpenBLAS reads its thread count when the library loads, i.e. when torch is imported.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sys.path.insert(0, TOOLS)
    import torch
    torch.set_num_threads(args.threads)
    import nllb_reference as ref

    try:
        paths = prepare(os.path.abspath(args.dir))
    except subprocess.CalledProcessError as e:
        print(f"nllb_python_reference: export failed: {e}", file=sys.stderr)
        return 1
    if args.prepare_only:
        return 0

    gbps = None if args.no_bandwidth else bandwidth(args.threads)

    log("loading the eager reference")
    model = ref.ReferenceModel.from_checkpoint(paths["checkpoint"])
    tok = ref.Tokenizer(os.path.join(paths["checkpoint"], "sentencepiece.bpe.model"), ref.load_codes(paths["model"]))
    src = tok.encode(args.text, args.source)
    tgt = tok.lang_id(args.target)

    calls = {"n": 0}
    step = model.decode_step

    def counting_step(*a):
        calls["n"] += 1
        return step(*a)
    model.decode_step = counting_step

    with torch.no_grad():
        warm = ref.greedy(model, src, tgt, args.tokens, fixed_length=True, keep_first_logits=False)
        steps = calls["n"]
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            r = ref.greedy(model, src, tgt, args.tokens, fixed_length=True, keep_first_logits=False)
            times.append(time.perf_counter() - t0)
    if r.ids != warm.ids:
        print("nllb_python_reference: repeated runs gave different ids", file=sys.stderr)
        return 1

    parts = bytes_per_token(model.cfg, len(src))
    total = sum(parts.values())
    median = statistics.median(times)
    ms_per_token = median / args.tokens * 1000
    bound_ms = None
    if gbps:
        bound_ms = total / (gbps * 1e9) * 1000
        emit("bound", bytes_per_token=total, parts=parts, gb_per_s=gbps, bound_ms_per_token=bound_ms)
    emit("result", impl="python-eager", threads=args.threads, tokens=args.tokens, decode_steps=steps,
         src_tokens=len(src), text=args.text, source=args.source, target=args.target, repeats=args.repeats,
         times_s=times, best_s=min(times), median_s=median, ms_per_token=ms_per_token,
         bound_ratio=(ms_per_token / bound_ms) if bound_ms else None, ids=r.ids, min_margin=min(r.margins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
