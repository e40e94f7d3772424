#!/usr/bin/env python3
"""Compares tools/nllb_reference.py with transformers' M2M100ForConditionalGeneration.generate.

The reference is our own reading of transformers, so it can share our mistakes; this script runs
the real thing on the same checkpoint and inputs and compares token ids (greedy and beam search)
and the first step's logits. It needs `transformers` (not packaged for Debian 12; run it where
it is installed, e.g. `pip install transformers sentencepiece`).

    python3 tools/compare_transformers_nllb.py CHECKPOINT_DIR [--max-length 40] [--device cpu]
    python3 tools/compare_transformers_nllb.py --make-tiny DIR   # builds the tiny checkpoint first

--make-tiny writes DIR/checkpoints/nllb-tiny with tools/tiny_nllb.py (SentencePiece trained with
the sentencepiece Python module when present, else spm_train) and compares on it.

generate() is called with an explicit GenerationConfig so that nothing from config.json leaks
in: decoder_start_token_id 2, forced_bos_token_id = target language, max_new_tokens =
max_length + 1 (the forced language token counts in transformers), num_beams k,
length_penalty lp, early_stopping False, no sampling, no repetition or n-gram rules.

Prints one table row per (input, mode) and a summary. Exit status: 0 all ids equal; 1 a mismatch
(a beam mismatch where the reference saw a score near-tie, min_gap < 1e-4, is listed as "tie"
and not counted); 2 transformers missing or another set-up error.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import nllb_reference as ref  # noqa: E402
import tiny_nllb  # noqa: E402

NEAR_TIE = 1e-4


def hf_ids(sequence, tgt_id: int):
    """[2, tgt, tokens..., (2), pad...] -> tokens, ended_with_eos"""
    seq = [int(x) for x in sequence]
    if seq[:2] != [2, tgt_id]:
        raise RuntimeError(f"transformers output does not start with [2, {tgt_id}]: {seq[:5]}")
    out = []
    for t in seq[2:]:
        if t == 2:
            return out, True
        out.append(t)
    return out, False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", help="Hugging Face NLLB checkpoint directory")
    parser.add_argument("--make-tiny", metavar="DIR", help="build the tiny checkpoint in DIR and compare on it")
    parser.add_argument("--max-length", type=int, default=tiny_nllb.GOLDEN_MAX_LENGTH)
    parser.add_argument("--device", default="cpu", help="torch device for transformers (default cpu)")
    args = parser.parse_args(argv)
    if bool(args.checkpoint) == bool(args.make_tiny):
        parser.error("give either CHECKPOINT_DIR or --make-tiny DIR")

    try:
        import transformers
        from transformers import GenerationConfig, M2M100ForConditionalGeneration
    except ImportError:
        print("compare_transformers_nllb.py: transformers is not installed here; run this where it is "
              "(pip install transformers sentencepiece)", file=sys.stderr)
        return 2

    ckpt = args.checkpoint
    if args.make_tiny:
        ckpt = os.path.join(args.make_tiny, "checkpoints", tiny_nllb.NAME)
        tiny_nllb.write_checkpoint(ckpt)
    torch.manual_seed(0)
    codes = ref.load_codes(ckpt)
    tok = ref.Tokenizer(os.path.join(ckpt, "sentencepiece.bpe.model"), codes)
    reference = ref.ReferenceModel.from_checkpoint(ckpt)
    try:  # transformers >= 4.56 calls it dtype; older ones torch_dtype
        hf = M2M100ForConditionalGeneration.from_pretrained(ckpt, dtype=torch.float32)
    except TypeError:
        hf = M2M100ForConditionalGeneration.from_pretrained(ckpt, torch_dtype=torch.float32)
    hf = hf.to(args.device).eval()
    if hf.dtype != torch.float32:
        print(f"transformers loaded the model as {hf.dtype}, not float32", file=sys.stderr)
        return 2
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    hf_tok = None
    try:  # the checkpoint's own tokenizer files, as users load them
        from transformers import AutoTokenizer
        hf_tok = AutoTokenizer.from_pretrained(ckpt)
    except Exception as e:  # noqa: BLE001 - the tokenizer check is optional
        try:
            from transformers import NllbTokenizer
            hf_tok = NllbTokenizer(os.path.join(ckpt, "sentencepiece.bpe.model"), additional_special_tokens=codes)
        except Exception as e2:  # noqa: BLE001
            print(f"note: no transformers NLLB tokenizer ({e}; {e2}); tokenization not compared")

    if hf_tok is not None:
        probe = [codes[0], "eng_Latn", codes[-1], "<mask>"]
        print("language ids (ours / transformers' tokenizer): " + ", ".join(
            f"{c} {tok.lang_ids.get(c, tok.spm_size + 1 + len(codes))} / {hf_tok.convert_tokens_to_ids(c)}"
            for c in probe) + f"; has tokenizer.json: {os.path.isfile(os.path.join(ckpt, 'tokenizer.json'))}")
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, checkpoint {ckpt}, "
          f"max_length {args.max_length}, device {args.device}")
    header = f"{'#':>2} {'pair':<19} {'mode':<11} {'result':<8} {'ref len':>7} {'hf len':>6}  note"
    print(header)
    print("-" * len(header))
    mismatches = ties = compared = 0
    worst_logit_diff = 0.0
    for i, (text, src, tgt) in enumerate(tiny_nllb.GOLDEN_INPUTS):
        src_ids = tok.encode(text, src)
        tgt_id = tok.lang_id(tgt)
        pair = f"{src}>{tgt}"
        if hf_tok is not None:
            # Pieces (everything after the language token) must be equal. The language token's id
            # is compared separately: transformers 5 numbers the codes itself when a checkpoint
            # has no tokenizer.json (the hub's checkpoints have one with the published ids).
            hf_tok.src_lang = src
            theirs = hf_tok(text).input_ids
            same = theirs[1:] == src_ids[1:]
            compared += 1
            if not same:
                mismatches += 1
            lang_note = "" if theirs[:1] == src_ids[:1] else f"language id ours {src_ids[0]} theirs {theirs[0]}"
            print(f"{i:>2} {pair:<19} {'tokenize':<11} {'ok' if same else 'MISMATCH':<8} {len(src_ids):>7} "
                  f"{len(theirs):>6}  {'' if same else f'ours {src_ids} theirs {theirs} '}{lang_note}")
        input_ids = torch.tensor([src_ids], device=args.device)
        mask = torch.ones_like(input_ids)
        with torch.no_grad():
            logits = hf(input_ids=input_ids, attention_mask=mask,
                        decoder_input_ids=torch.tensor([[2, tgt_id]], device=args.device)).logits[0, -1].float().cpu()
        g = ref.greedy(reference, src_ids, tgt_id, args.max_length)
        diff = float((logits - torch.tensor(g.first_logits)).abs().max())
        worst_logit_diff = max(worst_logit_diff, diff)
        modes = [(1, 1.0)] + list(tiny_nllb.BEAMS)
        for k, lp in modes:
            gen = GenerationConfig(decoder_start_token_id=2, bos_token_id=0, eos_token_id=2, pad_token_id=1,
                                   forced_bos_token_id=tgt_id, max_new_tokens=args.max_length + 1,
                                   max_length=args.max_length + 2,
                                   num_beams=k, length_penalty=lp, early_stopping=False, do_sample=False,
                                   num_return_sequences=1)
            with torch.no_grad():
                out = hf.generate(input_ids=input_ids, attention_mask=mask, generation_config=gen)
            theirs, _ = hf_ids(out[0].cpu(), tgt_id)
            if k == 1:
                ours, gap, mode = g.ids, min(g.margins), "greedy"
            else:
                b = ref.beam_search(reference, src_ids, tgt_id, k, lp, args.max_length)
                ours, gap, mode = b.ids, b.min_gap, f"beam{k} lp{lp:g}"
            compared += 1
            if ours == theirs:
                result, note = "ok", ""
            elif gap < NEAR_TIE:
                result, note = "tie", f"reference near-tie (gap {gap:.1e})"
                ties += 1
            else:
                result, note = "MISMATCH", f"ours {ours} theirs {theirs}"
                mismatches += 1
            if k == 1:
                note = (note + " " if note else "") + f"first-step logits max |diff| {diff:.2e}"
            print(f"{i:>2} {pair:<19} {mode:<11} {result:<8} {len(ours):>7} {len(theirs):>6}  {note}")
    print("-" * len(header))
    print(f"{compared} comparisons: {mismatches} mismatches, {ties} near-ties; worst first-step logit "
          f"difference {worst_logit_diff:.2e}")
    if worst_logit_diff > 1e-3:
        print("first-step logits differ by more than 1e-3: the models are not the same")
        return 1
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
