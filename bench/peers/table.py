#!/usr/bin/env python3
"""Prints bench/peers/run's tables (markdown) from OUT_DIR/results.jsonl.

    bench/peers/table.py OUT_DIR

Translation: batch 1 = median latency of one sentence (vox in process: vox_latency; through
voxd: voxbench p50 at concurrency 1; peers: their driver's median); batch B = ms per sentence of
B concurrent requests, the median of BATCH_ROUNDS rounds (voxd: 1000 / voxbench rps of a round
of B calls at concurrency B; CTranslate2: one translate_batch of B / B). tokens/s = TOKENS /
seconds per sentence. Turns: voxd and CTranslate2 at int8 taking rounds of B in turns, the ratio
of their tokens/s per turn and its median. Ratios: the row's time over vox's at the same precision (float32 or int8
weights; in process for batch 1, voxd for batch B); above 1 = vox is faster. voxd's scheduler
runs per round of B calls show whether they ran as one batch. Bandwidth floor: the bytes vox
reads per generated token (decoder and output projection) over the read bandwidth measured in
the same run, against vox's time per token after the first.
Speech: time to first audio and real-time factor (call time / audio seconds) are medians per
call; audio s/s = seconds of audio produced per wall second by all streams together.
Peak RSS: each engine's own process (voxd: VmHWM; the others: getrusage).
"""
import json
import os
import statistics
import sys


def pct(report, p=50):
    for d in report["latencyDistribution"]:
        if d["percentage"] == p:
            return d["latency"] / 1e6
    raise KeyError(p)


def batch_ms_per_sentence(voxd):
    """Median over voxd's timed rounds of B concurrent calls, ms per sentence."""
    return statistics.median(1000.0 / r["rps"] for r in voxd["batch_rounds"])


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
        vox = {w: rows.get(f"translate vox{s} t{t}") for w, s in (("float32", ""), ("int8", " int8"))}
        voxd = {w: rows.get(f"translate voxd{s} t{t}") for w, s in (("float32", ""), ("int8", " int8"))}
        if not vox["float32"]:
            continue
        tokens = vox["float32"]["tokens"]
        base1 = {w: v["median_ms"] for w, v in vox.items() if v}
        base_b = {w: batch_ms_per_sentence(v) for w, v in voxd.items() if v}
        batch = voxd["float32"]["batch_rounds"][0]["options"]["c"] if voxd["float32"] else 32
        lines += [f"Translation, {t} thread(s), {tokens} tokens, greedy:", "",
                  f"| engine | batch 1 ms | tokens/s | ratio to vox | batch {batch}: ms per sentence "
                  f"| tokens/s | ratio to voxd | peak RSS |", "|---|---|---|---|---|---|---|---|"]

        def row(name, precision, ms1, msb, rss):
            b1 = base1.get(precision)
            cells = [name, f(ms1), f(tokens * 1000 / ms1), f(ms1 / b1) if b1 else ""]
            if msb is None:
                cells += ["", "", ""]
            else:
                bb = base_b.get(precision)
                cells += [f(msb), f(tokens * 1000 / msb), f(msb / bb) if bb else ""]
            cells.append(mb(rss))
            lines.append("| " + " | ".join(cells) + " |")

        for w in ("float32", "int8"):
            weights = "" if w == "float32" else ", int8 weights"
            if vox[w]:
                row(f"vox{weights}, in process (vox_latency)", w, base1[w], None, vox[w]["peak_rss_bytes"])
            if voxd[w]:
                row(f"vox{weights} through voxd (gRPC, voxbench)", w, pct(voxd[w]["c1"]), base_b[w],
                    voxd[w]["peak_rss_bytes"])
        for key, name, precision in [("ctranslate2 float32", "CTranslate2 float32", "float32"),
                                     ("ctranslate2 int8", "CTranslate2 int8", "int8"),
                                     ("transformers float32", "transformers eager generate", "float32")]:
            d = rows.get(f"translate {key} t{t}")
            if d:
                row(name, precision, d["median_ms"], d.get("batch_ms_per_sentence"), d["peak_rss_bytes"])
        lines.append("")
        for w in ("float32", "int8"):
            events = voxd[w].get("batch_compute_events") if voxd[w] else None
            if events:  # runs from before the script recorded them have none
                rounds = len(voxd[w]["batch_rounds"])
                lines.append(f"voxd {w}, per round of {batch} calls: {events['events'] / rounds:g} scheduler "
                             f"runs, {events['rows'] / rounds:g} rows (one batch: {tokens} runs, "
                             f"{batch * tokens} rows).")
        if any(v and v.get("batch_compute_events") for v in voxd.values()):
            lines.append("")
        bw = rows.get(f"bandwidth t{t}")
        if bw:
            lines += [f"Bandwidth floor, {t} thread(s): read bandwidth {bw['read_gb_per_s']:.1f} GB/s", "",
                      "| vox weights | bytes per token | floor ms per token | vox ms per token | ratio to floor "
                      "| voxd peak RSS / parameter bytes |", "|---|---|---|---|---|---|"]
            for w in ("float32", "int8"):
                size = rows.get(f"weights {w}")
                if not (size and vox[w]):
                    continue
                floor = size["per_token_bytes"] / (bw["read_gb_per_s"] * 1e9) * 1e3
                rss = f(voxd[w]["peak_rss_bytes"] / size["parameter_bytes"]) if voxd[w] else ""
                lines.append("| " + " | ".join([
                    w, f"{size['per_token_bytes'] / 1e9:.3f} GB", f(floor), f(vox[w]["ms_per_token"]),
                    f(vox[w]["ms_per_token"] / floor), rss]) + " |")
            lines.append("")

    for name in sorted(n for n in rows if n.startswith("translate turns int8 t")):
        d = rows[name]
        lines += [f"voxd and CTranslate2 int8 in turns, {name.split()[-1][1:]} thread(s), rounds of {d['batch']} "
                  f"sentences, {d['tokens']} tokens: median ratio **{f(d['median_ratio'])}** "
                  f"(voxd tokens/s ÷ CTranslate2's in the same turn; above 1 = voxd is faster)", "",
                  "| turn | voxd tokens/s | CTranslate2 tokens/s | ratio |", "|---|---|---|---|"]
        for i, (v, c, r) in enumerate(zip(d["voxd_tokens_per_s"], d["ctranslate2_tokens_per_s"], d["ratios"]), 1):
            lines.append(f"| {i} | {f(v)} | {f(c)} | {f(r)} |")
        lines.append("")

    fidelity = [rows[k] for k in ("fidelity vox", "fidelity ctranslate2") if k in rows]
    if fidelity:
        lines += ["int8 against float32 on the same weights, teacher-forced top-1 agreement:", "",
                  "| engine | positions | agree | rate |", "|---|---|---|---|"]
        for d in fidelity:
            lines.append(f"| {d['engine']} | {d['positions']} | {d['agree']} | {d['rate']:.3f} |")
        lines.append("")

    speech = [(n, d) for n, d in rows.items() if n.startswith("speech ")]
    if speech:
        lines += ["Speech, forced codes, greedy:", "",
                  "| engine | streams | time to first audio | real-time factor | audio s/s "
                  "| ratio TTFA to vox | ratio RTF to vox | peak RSS |",
                  "|---|---|---|---|---|---|---|---|"]
        base = {}
        for name, d in speech:
            words = name.split()  # "speech vox[d] [WEIGHTS] sN"
            weights = f" {words[2]}" if len(words) == 4 else ""
            if words[1] == "vox":
                streams, ttfa, rtf = 1, d["time_to_first_audio"]["median_ms"], d["rtf_median"]
                aps = 1 / rtf
                label = f"vox{weights}, in process (vox_latency)"
            elif words[1] == "voxd":
                b = d["batch"]
                streams = b["options"]["c"]
                per_call_audio = b["audio"]["seconds"] / b["count"]
                ttfa, rtf = pct(b["timeToFirstAudio"]), pct(b) / 1000 / per_call_audio
                aps = b["audio"]["secondsPerSecond"]
                label = f"vox{weights} through voxd (gRPC, voxbench)"
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
        lines += ["", "Ratios: each row against the last vox row above it with as many streams.", ""]
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
