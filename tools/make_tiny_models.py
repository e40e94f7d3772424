#!/usr/bin/env python3
"""Makes the tiny synthetic models used by tests and the tiny-model demo.

For each model it writes a synthetic checkpoint in the exact published layout (real key names,
tiny dimensions, fixed seed), runs the real exporter on it, and writes golden outputs from the
Python eager reference. Nothing it writes is committed; the build runs it.

    /usr/bin/python3 tools/make_tiny_models.py --out DIR [--only nllb|xtts]

Layout: DIR/checkpoints/<name>/, DIR/models/<name>/ (exported), DIR/golden/<name>.json.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--only", choices=["nllb", "xtts"], help="make only this model")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.only in (None, "nllb"):
        import tiny_nllb
        tiny_nllb.make(args.out)
    if args.only in (None, "xtts"):
        import tiny_xtts
        tiny_xtts.make(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
