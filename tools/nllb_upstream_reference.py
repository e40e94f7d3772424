#!/usr/bin/env python3
"""Outputs of transformers (the upstream implementation of NLLB-200) on a checkpoint, for the
fidelity tests of tests/upstream_nllb, which compare vox's outputs with them.

Runs in the reference environment (.venv-reference: transformers, tokenizers), offline:

    nllb_upstream_reference.py translate --set tiny --checkpoint CKPT --model MODEL_DIR --out FILE.json
    nllb_upstream_reference.py translate --set 600M-2layer --workdir DIR --out FILE.json
    nllb_upstream_reference.py tokenize --workdir DIR --out FILE.json

translate: AutoModelForSeq2SeqLM.from_pretrained(CKPT) (float32, CPU) runs `generate` on the
set's cases (greedy and beam search, explicit GenerationConfig with forced_bos_token_id, as
transformers' translation pipeline does); the source ids come from AutoTokenizer (the
checkpoint's tokenizer.json). With --workdir the checkpoint is first made there by
tools/nllb_checkpoint.py and exported by tools/export_nllb.py, both run with $VOX_PYTHON
(Debian's python, the exporters' torch).
tokenize: AutoTokenizer on a tiny-scripts checkpoint (tools/nllb_checkpoint.py; pieces in every
script NLLB has) over tools/nllb_scripts.py's test strings, each with its language code as
src_lang.

Output (format 1): {"format", "producer", "checkpoint", "model_dir", "cases": [...]}; a translate
case is {"text", "source", "target", "src_ids", "tgt_id", "beam_size", "length_penalty",
"max_length", "ids", "ended_with_eos", "min_gap", "voxd"}: "ids" exclude [2, tgt] and the final
</s>; "max_length" counts generated tokens after the language token (vox's TranslateOptions);
"min_gap" is the smallest score difference a decision turned on: for greedy the top-1 minus
top-2 raw logit over the steps (transformers' own logits), for beam search the eager
reference's BeamResult.min_gap (tools/nllb_reference.py; the goldens' rule). Where it is below
NEAR_TIE, float rounding may legitimately flip a decision; the tests then accept a difference
and count it. "voxd": the case is also sent through a real voxd over gRPC. A tokenize case is
{"text", "source", "ids"}.

Exit status 0 on success, 1 on an error (message on stderr).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from typing import List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tiny_nllb  # noqa: E402  (its golden inputs open the tiny set)

NEAR_TIE = 1e-4
EOS = 2

# (text, source, target) for the tiny checkpoint: the goldens' inputs, then Latin text from the SentencePiece corpus's
# languages, non-Latin scripts (mostly <unk> for its 400 Latin pieces), one-character inputs,
# punctuation only, digits, emoji, and a text filled to the source limit (added at run time).
TINY_TEXTS = tiny_nllb.GOLDEN_INPUTS + [
    ("a", "eng_Latn", "fra_Latn"),
    ("?", "eng_Latn", "spa_Latn"),
    ("é", "fra_Latn", "eng_Latn"),
    ("Привет, как дела?", "rus_Cyrl", "eng_Latn"),
    ("مرحبا بالعالم", "arb_Arab", "fra_Latn"),
    ("नमस्ते दुनिया", "hin_Deva", "eng_Latn"),
    ("你好，世界", "zho_Hans", "eng_Latn"),
    ("こんにちは世界", "jpn_Jpan", "spa_Latn"),
    ("Γειά σου κόσμε", "ell_Grek", "deu_Latn"),
    ("שלום עולם", "heb_Hebr", "eng_Latn"),
    ("안녕하세요", "kor_Hang", "fra_Latn"),
    ("สวัสดีชาวโลก", "tha_Thai", "eng_Latn"),
    ("Good morning", "eng_Latn", "rus_Cyrl"),
    ("Il fait beau aujourd'hui.", "fra_Latn", "zho_Hans"),
    ("1234567890", "eng_Latn", "arb_Arab"),
    ("   spaces    everywhere   ", "eng_Latn", "fra_Latn"),
    ("Bon dia a tothom", "cat_Latn", "eng_Latn"),
    ("Wir fahren morgen mit dem Zug nach Berlin.", "deu_Latn", "eng_Latn"),
    ("La casa es muy grande y tiene un jardín precioso.", "spa_Latn", "fra_Latn"),
    ("Can you help me, please?", "eng_Latn", "hin_Deva"),
]
# (beam, length penalty, max length): greedy, beam 4 with both penalties, and a max length
# short enough to cut most generations.
TINY_MODES = [(1, 1.0, 40), (4, 1.0, 40), (4, 0.6, 40), (1, 1.0, 5), (4, 1.0, 5)]
# Cases also sent through voxd: the first VOXD_TEXTS texts in every mode.
VOXD_TEXTS = 8

# 600M dimensions with 2 layers: greedy only (each decoder step runs the 256206-row projection).
BIG_TEXTS = [
    ("Hello, how are you today?", "eng_Latn", "fra_Latn"),
    ("Where is the nearest train station?", "eng_Latn", "deu_Latn"),
    ("Je voudrais une tasse de café au lait, s'il vous plaît.", "fra_Latn", "eng_Latn"),
    ("Привет, как дела?", "rus_Cyrl", "spa_Latn"),
    ("a", "eng_Latn", "zho_Hans"),
    ("L'orquestra va tocar música de Mozart i Bach.", "cat_Latn", "eng_Latn"),
]
BIG_MODES = [(1, 1.0, 16)]


def log(msg: str) -> None:
    print(f"nllb_upstream_reference: {msg}", file=sys.stderr, flush=True)


def run_debian(args: List[str]) -> None:
    python = os.environ.get("VOX_PYTHON", "/usr/bin/python3")
    t0 = time.time()
    subprocess.run([python] + args, check=True, stdout=subprocess.DEVNULL)
    log(f"{os.path.basename(args[0])} {' '.join(a for a in args[1:] if a.startswith('--'))}: "
        f"{time.time() - t0:.0f} s")


def make_checkpoint(workdir: str, preset: str) -> Tuple[str, str]:
    """tools/nllb_checkpoint.py + tools/export_nllb.py into workdir (Debian's python)."""
    ckpt, model = os.path.join(workdir, "checkpoint"), os.path.join(workdir, "model")
    run_debian([os.path.join(HERE, "nllb_checkpoint.py"), "--preset", preset, "--out", ckpt,
                "--weights", "safetensors"])
    run_debian([os.path.join(HERE, "export_nllb.py"), "--checkpoint", ckpt, "--out", model,
                "--dtype", "float32"])
    return ckpt, model


def hf_ids(sequence, tgt_id: int) -> Tuple[List[int], bool]:
    """[2, tgt, tokens..., (2), pad...] -> tokens, ended_with_eos"""
    seq = [int(x) for x in sequence]
    if seq[:2] != [EOS, tgt_id]:
        raise RuntimeError(f"transformers output does not start with [2, {tgt_id}]: {seq[:5]}")
    out = []
    for t in seq[2:]:
        if t == EOS:
            return out, True
        out.append(t)
    return out, False


def fill_to_limit(tok, src: str, limit: int) -> str:
    """A text whose source ids (language code + pieces + </s>) are exactly `limit` long."""
    words = open(os.path.join(HERE, "data", "nllb_corpus.txt"), encoding="utf-8").read().split()
    text = ""
    tok.src_lang = src  # (setting it rebuilds the tokenizer's post-processor: once)
    for w in words:
        candidate = (text + " " + w).strip()
        n = len(tok(candidate).input_ids)
        if n > limit:
            continue
        text = candidate
        if n == limit:
            return text
    raise RuntimeError(f"could not fill a text to {limit} source ids")


def translate(args) -> dict:
    import torch
    import transformers
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, GenerationConfig

    # the tiny model gains nothing from a second thread, and on a busy machine loses to spinning
    torch.set_num_threads(1 if args.set == "tiny" else max(1, min(2, os.cpu_count() or 1)))
    torch.manual_seed(0)
    if args.workdir:
        ckpt, model_dir = make_checkpoint(args.workdir, args.set)
    else:
        ckpt, model_dir = args.checkpoint, args.model
    tok = AutoTokenizer.from_pretrained(ckpt)
    hf = AutoModelForSeq2SeqLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    if type(hf).__name__ != "M2M100ForConditionalGeneration" or hf.dtype != torch.float32:
        raise RuntimeError(f"transformers loaded {type(hf).__name__} in {hf.dtype}")
    texts, modes = (TINY_TEXTS, TINY_MODES) if args.set == "tiny" else (BIG_TEXTS, BIG_MODES)
    texts = list(texts)
    if args.set == "tiny":
        limit = json.load(open(os.path.join(model_dir, "manifest.json")))["max_source_tokens"]
        texts.append((fill_to_limit(tok, "eng_Latn", limit), "eng_Latn", "spa_Latn"))
    reference = None
    if any(k > 1 for k, _, _ in modes):
        import nllb_reference as ref
        reference = ref.ReferenceModel.from_checkpoint(ckpt)
    cases = []
    t0 = time.time()
    encoded = {}
    for text, src, _ in texts:
        if tok.src_lang != src:
            tok.src_lang = src
        encoded[(text, src)] = tok(text).input_ids
    for beam, lp, max_length in modes:
        for i, (text, src, tgt) in enumerate(texts):
            src_ids = encoded[(text, src)]
            tgt_id = tok.convert_tokens_to_ids(tgt)
            input_ids = torch.tensor([src_ids])
            gen = GenerationConfig(decoder_start_token_id=2, bos_token_id=0, eos_token_id=2, pad_token_id=1,
                                   forced_bos_token_id=tgt_id, max_new_tokens=max_length + 1,
                                   num_beams=beam, length_penalty=lp, early_stopping=False, do_sample=False,
                                   num_return_sequences=1, return_dict_in_generate=True, output_logits=True)
            with torch.no_grad():
                out = hf.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                  generation_config=gen)
            ids, eos = hf_ids(out.sequences[0], tgt_id)
            if beam == 1:
                # logits[0] chose the forced language token; the rest chose ids (and </s>)
                gaps = [float(t[0].topk(2).values[0] - t[0].topk(2).values[1]) for t in out.logits[1:]]
                min_gap = min(gaps) if gaps else float("inf")
            else:
                min_gap = ref.beam_search(reference, src_ids, tgt_id, beam, lp, max_length).min_gap
            cases.append({"text": text, "source": src, "target": tgt, "src_ids": src_ids, "tgt_id": tgt_id,
                          "beam_size": beam, "length_penalty": lp, "max_length": max_length, "ids": ids,
                          "ended_with_eos": eos, "min_gap": min(min_gap, 1e9),
                          "voxd": args.set == "tiny" and i < VOXD_TEXTS})
    log(f"{len(cases)} generations in {time.time() - t0:.1f} s")
    return {"format": 1, "producer": f"transformers {transformers.__version__}, torch {torch.__version__}",
            "checkpoint": os.path.abspath(ckpt), "model_dir": os.path.abspath(model_dir), "near_tie": NEAR_TIE,
            "cases": cases}


def tokenize(args) -> dict:
    import transformers
    from transformers import AutoTokenizer

    import nllb_scripts
    ckpt, model_dir = make_checkpoint(args.workdir, "tiny-scripts")
    tok = AutoTokenizer.from_pretrained(ckpt)
    if not getattr(tok, "is_fast", False):
        raise RuntimeError(f"AutoTokenizer gave {type(tok).__name__}, not a tokenizers-backed tokenizer")
    cases = []
    for text, src in sorted(nllb_scripts.test_strings(), key=lambda c: c[1]):
        if tok.src_lang != src:
            tok.src_lang = src  # rebuilds the post-processor: once per language
        cases.append({"text": text, "source": src, "ids": tok(text).input_ids})
    unk = sum(c["ids"].count(3) for c in cases)
    pieces = sum(len(c["ids"]) - 2 for c in cases)
    log(f"{len(cases)} strings, {pieces} pieces, {unk} <unk>, {type(tok).__name__}")
    return {"format": 1, "producer": f"transformers {transformers.__version__} {type(tok).__name__}",
            "checkpoint": os.path.abspath(ckpt), "model_dir": os.path.abspath(model_dir), "cases": cases}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("translate")
    t.add_argument("--set", required=True, choices=["tiny", "600M-2layer"])
    t.add_argument("--checkpoint")
    t.add_argument("--model", help="the checkpoint's export (vox's model directory)")
    t.add_argument("--workdir", help="make the set's checkpoint and export here first")
    t.add_argument("--out", required=True)
    k = sub.add_parser("tokenize")
    k.add_argument("--workdir", required=True)
    k.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "translate" and not args.workdir and not (args.checkpoint and args.model):
        parser.error("translate needs --workdir, or --checkpoint and --model")
    try:
        import transformers  # noqa: F401
    except ImportError:
        print("nllb_upstream_reference.py: error: transformers is not installed here; run this in the "
              "reference environment (.venv-reference, made by scripts/install-reference-env)", file=sys.stderr)
        return 1
    try:
        data = translate(args) if args.command == "translate" else tokenize(args)
    except (RuntimeError, OSError, subprocess.CalledProcessError, ImportError) as e:
        print(f"nllb_upstream_reference.py: error: {e}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".tmp", "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
    os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
