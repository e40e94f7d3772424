#!/usr/bin/python3
"""Scale-out behind nginx (docs/benchmarks.md, "Scale-out behind nginx"): Translate throughput
for one and two voxd through Debian's nginx with deploy/nginx/vox-grpc.conf, against one voxd
called directly, and the latency nginx adds at p50 (one call at a time, so no queueing hides it).
Every process runs on loopback in temp dirs. Throughput: the median over REPS runs, the
configurations alternating run by run so that a noisy machine hits them alike. Added latency: the
median, over PAIRS pairs of short runs (direct, then through nginx, one call at a time), of the
difference of the two runs' p50, so that load from other processes, which changes over seconds,
falls on both halves of a pair alike.

  /usr/bin/python3 bench/nginx_scaleout.py BUILD_DIR [--models DIR] [--reps N] [--seconds S]
      [--concurrency N] [--pairs N] [--pair-seconds S]

BUILD_DIR holds voxd and voxbench (cmake --build BUILD_DIR --target voxd voxbench); --models
defaults to BUILD_DIR/tiny/models (the tiny_models target); "builtin" serves Apertium instead.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "deploy"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("--models", default=None)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", default="1", help="voxd --threads (each replica)")
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--pair-seconds", type=int, default=1)
    args = parser.parse_args()
    os.environ["VOX_BINARY_DIR"] = os.path.abspath(args.build_dir)
    os.environ["VOX_SOURCE_DIR"] = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    import deploylib  # reads the two variables above
    models = None if args.models == "builtin" else (
        args.models or os.path.join(args.build_dir, "tiny", "models"))

    voxd_args = ["--threads", args.threads, "--access-log", "false"]
    a = deploylib.Voxd("bench-a", voxd_args, models_dir=models)
    b = deploylib.Voxd("bench-b", voxd_args, models_dir=models)
    nginx1 = deploylib.Nginx([a.address])
    nginx2 = deploylib.Nginx([a.address, b.address])
    targets = {"direct, 1 voxd": a.address, "nginx, 1 voxd": nginx1.address,
               "nginx, 2 voxd": nginx2.address}
    call = ["--call", "translate", "--from", "eng_Latn", "--to", "spa_Latn",
            "--duration", f"{args.seconds}s", "--total", "100000000", "--no-progress",
            "--no-details"]
    rps = {name: [] for name in targets}
    p50 = {name: [] for name in targets if name != "nginx, 2 voxd"}
    try:
        for name, target in targets.items():  # warm-up: connections, caches, first calls
            deploylib.run_voxbench(target, *call[:-4], "--total", "50", "--no-progress")
        for _ in range(args.reps):
            for name, target in targets.items():
                report, proc = deploylib.run_voxbench(target, *call, "--concurrency",
                                                      str(args.concurrency))
                if deploylib.status_counts(report) != {"OK": report["count"]}:
                    raise SystemExit(f"{name}: failed calls {report['errorDistribution']}")
                rps[name].append(report["rps"])
        pair_call = call[:]
        pair_call[pair_call.index("--duration") + 1] = f"{args.pair_seconds}s"
        for _ in range(args.pairs):
            for name in p50:
                report, proc = deploylib.run_voxbench(targets[name], *pair_call,
                                                      "--concurrency", "1")
                dist = {d["percentage"]: d["latency"] for d in report["latencyDistribution"]}
                p50[name].append(dist[50] / 1e6)
    finally:
        for p in (nginx2, nginx1, b, a):
            p.close()

    print(f"Translate eng_Latn->spa_Latn, models {models or 'built-in (Apertium)'}, "
          f"{args.reps} runs of {args.seconds} s each, median")
    print(f"| path | calls/s at concurrency {args.concurrency} | p50 ms at concurrency 1 "
          f"(median of {args.pairs} runs of {args.pair_seconds} s) |")
    print("|---|---|---|")
    for name in targets:
        lat = f"{statistics.median(p50[name]):.3f}" if name in p50 else "—"
        print(f"| {name} | {statistics.median(rps[name]):.0f} | {lat} |")
    diffs = sorted(n - d for n, d in zip(p50["nginx, 1 voxd"], p50["direct, 1 voxd"]))
    added = statistics.median(diffs)
    q1, q3 = diffs[len(diffs) // 4], diffs[(3 * len(diffs)) // 4]
    print(f"nginx adds {added:.3f} ms at p50 (median of {len(diffs)} paired differences; "
          f"quartiles {q1:.3f} .. {q3:.3f}); 2 voxd / 1 voxd through nginx: "
          f"{statistics.median(rps['nginx, 2 voxd']) / statistics.median(rps['nginx, 1 voxd']):.2f}x")
    print("runs:", {k: [round(x) for x in v] for k, v in rps.items()},
          {k: [round(x, 3) for x in v] for k, v in p50.items()})


if __name__ == "__main__":
    main()
