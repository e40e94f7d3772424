#!/usr/bin/env python3
"""Coqui XTTS as a peer, measured in its own process (bench/peers/run; docs/benchmarks.md, "Peers").

    xtts_peer.py --checkpoint COQUI_DIR --mode stream|full --threads N [--codes 100]
        [--streams 1|4] [--iters 3] [--warmup 1] [--text T] [--lang en]

Runs in the reference environment (.venv-reference). Loads the checkpoint as Coqui's docs do
(XttsConfig + Xtts.load_checkpoint), takes the first built-in speaker, and synthesizes one
sentence greedily (do_sample=False) with exactly --codes acoustic codes: min_new_tokens = --codes
bans the stop code and gpt.max_gen_mel_tokens = --codes ends generation there, the work of vox's
forced_codes mode. The code count is checked.

- stream: Xtts.inference_stream (default chunking: 20 codes, each chunk re-vocodes all latents
  so far); time to first audio = the first chunk yielded.
- full: Xtts.inference; time to first audio = the whole call.
--streams S runs S synthesis calls at once on S Python threads sharing the one model (Coqui has
no batching; torch releases the GIL inside its ops), every thread doing --iters calls after one
warm-up round. Per call: time to first audio, total, real-time factor = total / audio seconds.
Prints one JSON object (medians over all calls of all streams, audio seconds per wall second,
peak RSS of this process) on stdout.
"""
import argparse
import json
import resource
import statistics
import sys
import threading
import time

DEFAULT_TEXT = "The weather is nice today, so we are going to the park with the children."


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="Coqui XTTS directory")
    p.add_argument("--mode", choices=["stream", "full"], required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--codes", type=int, default=100)
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--text", default=DEFAULT_TEXT)
    p.add_argument("--lang", default="en")
    args = p.parse_args()

    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    config = XttsConfig()
    config.load_json(f"{args.checkpoint}/config.json")
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=args.checkpoint, eval=True, use_deepspeed=False)
    load_ms = (time.perf_counter() - t0) * 1000.0
    speaker = next(iter(model.speaker_manager.speakers))
    cond, spk = model.speaker_manager.speakers[speaker].values()
    model.gpt.max_gen_mel_tokens = args.codes
    rate = config.model_args.output_sample_rate
    forced = {"min_new_tokens": args.codes}
    # Counts the codes inference_stream draws from its generator, per thread.
    counted = threading.local()
    get_generator = model.gpt.get_generator

    def counting_generator(*a, **kw):
        for item in get_generator(*a, **kw):
            counted.codes += 1
            yield item
    model.gpt.get_generator = counting_generator

    def one_call():
        """Returns (ttfa_s, total_s, samples, codes)."""
        t_start = time.perf_counter()
        with torch.inference_mode():
            if args.mode == "full":
                out = model.inference(args.text, args.lang, cond, spk, do_sample=False, **forced)
                t_end = time.perf_counter()
                samples = len(out["wav"])
                codes = out["gpt_latents"].shape[1]
                return t_end - t_start, t_end - t_start, samples, codes
            first, samples = None, 0
            counted.codes = 0
            for chunk in model.inference_stream(args.text, args.lang, cond, spk, do_sample=False,
                                                **forced):
                if first is None:
                    first = time.perf_counter()
                samples += chunk.shape[-1]
            t_end = time.perf_counter()
            return first - t_start, t_end - t_start, samples, counted.codes

    results, errors = [], []
    lock = threading.Lock()
    start_barrier = threading.Barrier(args.streams)

    def worker():
        try:
            for _ in range(args.warmup):
                one_call()
            start_barrier.wait()
            for _ in range(args.iters):
                r = one_call()
                with lock:
                    results.append(r)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
            start_barrier.abort()

    threads = [threading.Thread(target=worker) for _ in range(args.streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"xtts_peer: {errors[0]}")
    # Audio seconds per wall second: S streams' audio over the median call time.
    ttfa = [r[0] * 1000 for r in results]
    total = [r[1] * 1000 for r in results]
    rtf = [r[1] / (r[2] / rate) for r in results]
    codes = sorted({r[3] for r in results})
    if codes != [args.codes]:
        raise SystemExit(f"xtts_peer: generated {codes} codes, asked for {args.codes}")
    audio_s = statistics.median(r[2] for r in results) / rate
    print(json.dumps({
        "bench": "xtts_peer", "mode": args.mode, "threads": args.threads, "codes": args.codes,
        "streams": args.streams, "calls": len(results), "load_ms": load_ms,
        "audio_seconds": audio_s, "codes_seen": codes,
        "ttfa_median_ms": statistics.median(ttfa), "total_median_ms": statistics.median(total),
        "rtf_median": statistics.median(rtf),
        "audio_seconds_per_second": args.streams * audio_s / (statistics.median(total) / 1000),
        "ttfa_ms": ttfa, "total_ms": total,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    sys.exit(main())
