#!/usr/bin/env python3
"""Prints bench/peers/run's tables (markdown) from OUT_DIR/results.jsonl.

    bench/peers/table.py OUT_DIR

Translation: batch 1 = median latency of one sentence (vox in process: vox_latency; through
voxd: voxbench p50 at concurrency 1; peers: their driver's median); batch B = ms per sentence of
B concurrent requests (voxd: 1000 / voxbench rps at concurrency B; CTranslate2: one
translate_batch of B / B). tokens/s = TOKENS / seconds per sentence. Ratios: the row's time over
vox's (in process for batch 1, voxd for batch B); above 1 = vox is faster.
Speech: time to first audio and real-time factor (call time / audio seconds) are medians per
call; audio s/s = seconds of audio produced per wall second by all streams together.
Peak RSS: each engine's own process (voxd: VmHWM; the others: getrusage).
"""
import json
import os
import sys


def pct(report, p=50):
    for d in report["latencyDistribution"]:
        if d["percentage"] == p:
            return d["latency"] / 1e6
    raise KeyError(p)


def mb(b):
    return f"{b / 1048576:.0f} MB"


def f(x, digits=3):
    return f"{x:.{digits}g}" if x < 100 else f"{x:.0f}"


def main():
    out_dir = sys.argv[1]
    rows = {}
    with open(os.path.join(out_dir, "results.jsonl")) as fh:
        for line in fh:
            d = json.loads(line)
            rows[d["name"]] = d
    lines = []
    threads = sorted({n.split()[-1][1:] for n in rows if n.startswith("translate ")}, key=int)
    for t in threads:
        vox = rows.get(f"translate vox t{t}")
        voxd = rows.get(f"translate voxd t{t}")
        if not vox:
            continue
        tokens = vox["tokens"]
        base1 = vox["median_ms"]
        base_b = 1000.0 / voxd["batch"]["rps"] if voxd else None
        batch = voxd["batch"]["options"]["c"] if voxd else 32
        lines += [f"Translation, {t} thread(s), {tokens} tokens, greedy:", "",
                  f"| engine | batch 1 ms | tokens/s | ratio to vox | batch {batch}: ms per sentence "
                  f"| tokens/s | ratio to voxd | peak RSS |", "|---|---|---|---|---|---|---|---|"]

        def row(name, ms1, msb, rss):
            cells = [name, f(ms1), f(tokens * 1000 / ms1), f(ms1 / base1)]
            if msb is None:
                cells += ["", "", ""]
            else:
                cells += [f(msb), f(tokens * 1000 / msb), f(msb / base_b) if base_b else ""]
            cells.append(mb(rss))
            lines.append("| " + " | ".join(cells) + " |")

        row("vox, in process (vox_latency)", base1, None, vox["peak_rss_bytes"])
        if voxd:
            row("vox through voxd (gRPC, voxbench)", pct(voxd["c1"]), base_b,
                voxd["peak_rss_bytes"])
        for key, name in [("ctranslate2 float32", "CTranslate2 float32"),
                          ("ctranslate2 int8", "CTranslate2 int8"),
                          ("transformers float32", "transformers eager generate")]:
            d = rows.get(f"translate {key} t{t}")
            if d:
                row(name, d["median_ms"], d.get("batch_ms_per_sentence"), d["peak_rss_bytes"])
        lines.append("")

    speech = [(n, d) for n, d in rows.items() if n.startswith("speech ")]
    if speech:
        lines += ["Speech, forced codes, greedy:", "",
                  "| engine | streams | time to first audio | real-time factor | audio s/s "
                  "| ratio TTFA to vox | ratio RTF to vox | peak RSS |",
                  "|---|---|---|---|---|---|---|---|"]
        base = {}
        for name, d in speech:
            if name == "speech vox s1":
                streams, ttfa, rtf = 1, d["time_to_first_audio"]["median_ms"], d["rtf_median"]
                aps = 1 / rtf
                label = "vox, in process (vox_latency)"
            elif name.startswith("speech voxd"):
                b = d["batch"]
                streams = b["options"]["c"]
                per_call_audio = b["audio"]["seconds"] / b["count"]
                ttfa, rtf = pct(b["timeToFirstAudio"]), pct(b) / 1000 / per_call_audio
                aps = b["audio"]["secondsPerSecond"]
                label = "vox through voxd (gRPC, voxbench)"
            else:
                streams, ttfa, rtf = d["streams"], d["ttfa_median_ms"], d["rtf_median"]
                aps = d["audio_seconds_per_second"]
                label = "Coqui inference_stream" if d["mode"] == "stream" else "Coqui inference"
            if label.startswith("vox"):
                base[streams] = (ttfa, rtf)
            b_ttfa, b_rtf = base.get(streams, (None, None))
            lines.append("| " + " | ".join([
                label, str(streams), f"{f(ttfa)} ms", f(rtf), f(aps),
                f(ttfa / b_ttfa) if b_ttfa else "", f(rtf / b_rtf) if b_rtf else "",
                mb(d["peak_rss_bytes"])]) + " |")
        lines.append("")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
