#!/usr/bin/env python3
"""One NLLB peer, measured in its own process (bench/peers/run; docs/benchmarks.md, "Peers").

    nllb_peer.py --engine transformers --checkpoint HF_DIR --threads N [--tokens 20] ...
    nllb_peer.py --engine ctranslate2 --ct2-model CT2_DIR --compute-type float32|int8
        --checkpoint HF_DIR --threads N [--batch 32] ...

Runs in the reference environment (.venv-reference). Both engines decode greedily and exactly
--tokens target tokens after the forced target-language token, whatever the random weights
predict (transformers: min_new_tokens = max_new_tokens; CTranslate2: min_decoding_length =
max_decoding_length), the same work as vox's fixed_length mode. Each output's length is checked.

- batch 1: --iters timed calls of one sentence (after --warmup), median in ms.
- --batch B (CTranslate2 only): one translate_batch of B copies of the sentence, timed
  --batch-iters times; ms per sentence = median batch time / B.
Prints one JSON object on stdout; peak RSS is this process's (getrusage), weights included.
With --serve-batches (and --batch B) it times no batch 1: after one warm-up batch it prints
{"ready": true}, then times one batch of B per line read on stdin, printing {"batch_ms": ...}
for each, until end of input (bench/peers/run's turns with voxd).
"""
import argparse
import json
import resource
import statistics
import sys
import time

DEFAULT_TEXT = "The weather is nice today, so we are going to the park with the children."


def median_ms(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), times


def transformers_runner(args, tokenizer):
    import torch
    from transformers import AutoModelForSeq2SeqLM

    torch.set_num_threads(args.threads)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.checkpoint, dtype=torch.float32)
    model.eval()
    model.generation_config.max_length = None  # max_new_tokens decides
    tgt = tokenizer.convert_tokens_to_ids(args.to)
    start = model.config.decoder_start_token_id

    def run(batch):
        enc = tokenizer([args.text] * batch, return_tensors="pt")
        decoder_input_ids = torch.tensor([[start, tgt]] * batch)
        with torch.inference_mode():
            out = model.generate(**enc, decoder_input_ids=decoder_input_ids, num_beams=1,
                                 do_sample=False, min_new_tokens=args.tokens,
                                 max_new_tokens=args.tokens)
        # decoder start + language + exactly --tokens generated
        if out.shape[1] != args.tokens + 2:
            raise SystemExit(f"nllb_peer: transformers generated {out.shape[1] - 2} tokens, "
                             f"asked for {args.tokens}")
    return run


def ctranslate2_runner(args, tokenizer):
    import ctranslate2

    translator = ctranslate2.Translator(args.ct2_model, device="cpu",
                                        compute_type=args.compute_type, inter_threads=1,
                                        intra_threads=args.threads)
    source = tokenizer.convert_ids_to_tokens(tokenizer(args.text).input_ids)

    def run(batch):
        results = translator.translate_batch(
            [source] * batch, target_prefix=[[args.to]] * batch, beam_size=1,
            # CTranslate2 counts the target prefix (the language token) in the decoding length.
            min_decoding_length=args.tokens + 1, max_decoding_length=args.tokens + 1,
            max_batch_size=batch)
        for r in results:
            got = len(r.hypotheses[0]) - 1  # the hypothesis starts with the prefix
            if got != args.tokens:
                raise SystemExit(f"nllb_peer: ctranslate2 generated {got} tokens, asked for "
                                 f"{args.tokens} ({r.hypotheses[0][:4]}...)")
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", choices=["transformers", "ctranslate2"], required=True)
    p.add_argument("--checkpoint", required=True, help="HF M2M100 directory (tokenizer, weights)")
    p.add_argument("--ct2-model", help="CTranslate2 model directory (--engine ctranslate2)")
    p.add_argument("--compute-type", default="float32")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=0, help="also time one batch of this many copies")
    p.add_argument("--batch-iters", type=int, default=3, help="timed batches (median)")
    p.add_argument("--text", default=DEFAULT_TEXT)
    p.add_argument("--from", dest="src", default="eng_Latn")
    p.add_argument("--to", default="spa_Latn")
    p.add_argument("--serve-batches", action="store_true",
                   help="time one batch of --batch per line on stdin (see above)")
    args = p.parse_args()
    if args.engine == "ctranslate2" and not args.ct2_model:
        p.error("--engine ctranslate2 needs --ct2-model")
    if args.serve_batches and not args.batch:
        p.error("--serve-batches needs --batch")

    from transformers import AutoTokenizer

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint, src_lang=args.src)
    run = (transformers_runner if args.engine == "transformers" else ctranslate2_runner)(
        args, tokenizer)
    load_ms = (time.perf_counter() - t0) * 1000.0
    if args.serve_batches:
        run(args.batch)
        print(json.dumps({"ready": True}), flush=True)
        for _ in sys.stdin:
            start = time.perf_counter()
            run(args.batch)
            print(json.dumps({"batch_ms": (time.perf_counter() - start) * 1000.0}), flush=True)
        return 0
    out = {"bench": "nllb_peer", "engine": args.engine, "threads": args.threads,
           "tokens": args.tokens, "load_ms": load_ms,
           "compute_type": args.compute_type if args.engine == "ctranslate2" else "float32",
           "source_tokens": len(tokenizer(args.text).input_ids)}
    out["median_ms"], out["times_ms"] = median_ms(lambda: run(1), args.iters, args.warmup)
    if args.batch:
        batch_ms, times = median_ms(lambda: run(args.batch), args.batch_iters, 1)
        out.update({"batch": args.batch, "batch_median_ms": batch_ms, "batch_times_ms": times,
                    "batch_ms_per_sentence": batch_ms / args.batch})
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
