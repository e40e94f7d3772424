#!/usr/bin/env python3
"""Writes a synthetic NLLB-200 checkpoint in the published Hugging Face layout (random weights).

    /usr/bin/python3 tools/nllb_checkpoint.py --preset tiny|600M|600M-2layer --out DIR \\
        [--weights bin|safetensors|both] [--seed N]

DIR receives what facebook/nllb-200-distilled-600M publishes, loadable unmodified and offline by
transformers' AutoModelForSeq2SeqLM.from_pretrained and AutoTokenizer (NllbTokenizerFast):
  config.json              the hub's field names and values, with the preset's dimensions
  pytorch_model.bin        real key names, tied copies sharing one storage (--weights bin|both)
  model.safetensors        the same tensors without the tied copies, as published (safetensors|both)
  sentencepiece.bpe.model  tools/tiny_nllb.py's 400-piece BPE model (tools/data/nllb_corpus.txt)
  tokenizer.json           the tokenizers-library file the hub ships: BPE vocab and merges taken
                           from the SentencePiece model (as transformers converts it), the
                           normalizer's precompiled charsmap, and the language codes as added
                           tokens at the preset's ids
  special_tokens_map.json, tokenizer_config.json

Presets (docs/models.md):
  tiny          d_model 32, 2 + 2 layers, 4 heads, ffn 64, 128 positions; vocab 606 (400 pieces + 1
                + 202 codes + <mask> + 2); codes at 401 + i (the rule spm_size + 1 + index). The
                tests' and demo's checkpoint (tools/tiny_nllb.py).
  600M          facebook/nllb-200-distilled-600M: d_model 1024, 12 + 12 layers, 16 heads, ffn 4096,
                1024 positions, vocab 256206 with the codes at the released ids 256001 + i and
                <mask> 256203. Rows between the 400 pieces and the codes exist but no piece maps
                to them. 2.5 GB per weight file.
  600M-2layer   600M's widths and vocabulary with 2 + 2 layers (1.3 GB per weight file).
  tiny-scripts  tiny's dimensions with a 5,000-piece SentencePiece model trained on text in every
                script of NLLB's language codes (tools/nllb_scripts.py), for tokenizer tests
                whose pieces are real in every script; vocab 5206, codes at 5001 + i.
Weights are tools/tiny_nllb.py's random_state_dict (shaped so outputs depend on the input),
seeded; everything written is reproducible byte for byte with the same torch.

Exit status 0 on success, 1 with a message on error, 2 for a bad command line.
"""
import argparse
import base64
import json
import os
import shutil
import struct
import sys
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import tiny_nllb  # noqa: E402
from nllb_languages import FAIRSEQ_LANGUAGE_CODES  # noqa: E402

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]

# facebook/nllb-200-distilled-600M config.json dimensions (shared/MODELS.md).
DIMS_600M = dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                 decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096,
                 max_position_embeddings=1024)
VOCAB_600M = 256206            # 256000 pieces + 1 + 202 codes + <mask> + 2 spare
FIRST_LANGUAGE_ID_600M = 256001

SCRIPTS_SPM_VOCAB = 5000

# name -> (dims, vocab size or None for the tiny rule, first language id or None for the rule)
PRESETS: Dict[str, Tuple[dict, Optional[int], Optional[int]]] = {
    "tiny": (tiny_nllb.TINY_DIMS, None, None),
    "tiny-scripts": (tiny_nllb.TINY_DIMS, None, None),
    "600M": (DIMS_600M, VOCAB_600M, FIRST_LANGUAGE_ID_600M),
    "600M-2layer": (dict(DIMS_600M, encoder_layers=2, decoder_layers=2), VOCAB_600M, FIRST_LANGUAGE_ID_600M),
}
WEIGHTS = {"bin": ["bin"], "safetensors": ["safetensors"], "both": ["bin", "safetensors"]}


class CheckpointError(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# SentencePiece model file (a protobuf ModelProto), read without the protobuf module: the pieces
# (field 1: piece 1, score 2, type 3) and the normalizer's precompiled charsmap (field 3, its
# field 2). Piece types: 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte.

def _varint(buf: bytes, i: int) -> Tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """Yields (field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def read_spm(path: str) -> Tuple[List[Tuple[str, float, int]], Optional[bytes]]:
    """(pieces [(piece, score, type)], precompiled charsmap or None) of a SentencePiece model."""
    with open(path, "rb") as f:
        buf = f.read()
    pieces, charsmap = [], None
    try:
        for field, wire, value in _fields(buf):
            if field == 1 and wire == 2:
                piece, score, kind = "", 0.0, 1
                for f2, w2, v2 in _fields(value):
                    if f2 == 1:
                        piece = v2.decode("utf-8")
                    elif f2 == 2:
                        score = struct.unpack("<f", v2)[0]
                    elif f2 == 3:
                        kind = v2
                pieces.append((piece, score, kind))
            elif field == 3 and wire == 2:
                for f2, w2, v2 in _fields(value):
                    if f2 == 2 and w2 == 2:
                        charsmap = bytes(v2)
    except (IndexError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not a SentencePiece model ({e})") from None
    if len(pieces) < 3:
        raise CheckpointError(f"{path}: not a SentencePiece model (only {len(pieces)} pieces)")
    return pieces, charsmap


def pad_spm(path: str, total: int) -> int:
    """Appends UNUSED pieces ("<unusedN>", type 5: never produced by encoding) to the
    SentencePiece model at `path` until it has `total` pieces, so that the model ids, the rule
    spm_size + 1 + index and transformers' numbering all put the language codes where the released
    256000-piece model puts them. Returns the number of pieces appended."""
    pieces, _ = read_spm(path)
    if len(pieces) > total:
        raise CheckpointError(f"{path}: {len(pieces)} pieces, more than the {total} the preset needs")
    names = {p for p, _, _ in pieces}
    out = bytearray()
    for i in range(len(pieces), total):
        name = f"<unused{i}>".encode("utf-8")
        assert name.decode() not in names
        msg = b"\x0a" + _encode_varint(len(name)) + name + b"\x15" + struct.pack("<f", 0.0) + b"\x18\x05"
        out += b"\x0a" + _encode_varint(len(msg)) + msg
    with open(path, "ab") as f:
        f.write(out)
    return total - len(pieces)


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def bpe_merges(spm_vocab: Dict[str, int]) -> List[List[str]]:
    """The merges transformers derives from a SentencePiece BPE vocabulary
    (tokenization_utils_base.generate_merges without scores): every split of a piece into two
    pieces, ordered by the merged piece's id, then by the pieces' lengths."""
    merges = []
    for merge, rank in spm_vocab.items():
        local = [(merge[:i], merge[i:], rank) for i in range(1, len(merge))
                 if merge[:i] in spm_vocab and merge[i:] in spm_vocab]
        merges.extend(sorted(local, key=lambda x: (spm_vocab[x[0]], spm_vocab[x[1]])))
    merges.sort(key=lambda v: (v[2], len(v[0]), len(v[1])))
    return [[l, r] for l, r, _ in merges]


def _added(token_id: int, content: str, **kw) -> dict:
    t = {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
    t.update(kw)
    return t


def tokenizer_json(spm_path: str, first_language_id: int, codes: List[str] = FAIRSEQ_LANGUAGE_CODES) -> dict:
    """tokenizer.json in the layout of the hub's NLLB checkpoints and of transformers' NLLB
    conversion: model ids = SentencePiece ids + 1 (<s> 0, <pad> 1, </s> 2, <unk> 3), the codes at
    first_language_id + i, <mask> after them."""
    pieces, charsmap = read_spm(spm_path)
    if [p for p, _, _ in pieces[:3]] != ["<unk>", "<s>", "</s>"]:
        raise CheckpointError(f"{spm_path}: pieces 0..2 are {[p for p, _, _ in pieces[:3]]}, "
                              f"not <unk> <s> </s> (NLLB's SentencePiece layout)")
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for i, (piece, _, _) in enumerate(pieces[3:], start=3):
        vocab.setdefault(piece, i + 1)
    spm_vocab = {p: i for i, (p, _, _) in enumerate(pieces)}
    added = [_added(i, s) for i, s in enumerate(SPECIALS)]
    added += [_added(first_language_id + i, c) for i, c in enumerate(codes)]
    added.append(_added(first_language_id + len(codes), "<mask>", lstrip=True, normalized=True))
    normalizers = [{"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]
    if charsmap:
        normalizers.insert(0, {"type": "Precompiled",
                               "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")})
    metaspace = {"replacement": "\u2581", "prepend_scheme": "always", "split": True}
    eng = first_language_id + codes.index("eng_Latn")
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": dict(type="Metaspace", **metaspace),
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "eng_Latn", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "eng_Latn", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {"</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]},
                               "eng_Latn": {"id": "eng_Latn", "ids": [eng], "tokens": ["eng_Latn"]}}},
        "decoder": dict(type="Metaspace", **metaspace),
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": bpe_merges(spm_vocab)},
    }


def write_tokenizer_files(ckpt: str, first_language_id: int, max_positions: int) -> None:
    """tokenizer.json, special_tokens_map.json and tokenizer_config.json (with added_tokens_decoder,
    as the hub's files state the ids) for the SentencePiece model already in ckpt."""
    spm_path = os.path.join(ckpt, "sentencepiece.bpe.model")
    tok = tokenizer_json(spm_path, first_language_id)
    _write_json(os.path.join(ckpt, "tokenizer.json"), tok, indent=None)
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                "sep_token": "</s>", "cls_token": "<s>", "mask_token": "<mask>",
                "additional_special_tokens": list(FAIRSEQ_LANGUAGE_CODES)}
    _write_json(os.path.join(ckpt, "special_tokens_map.json"), specials)
    decoder = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in tok["added_tokens"]}
    cfg = dict(specials, tokenizer_class="NllbTokenizer", model_max_length=max_positions, src_lang=None,
               tgt_lang=None, sp_model_kwargs={}, legacy_behaviour=False, clean_up_tokenization_spaces=True,
               added_tokens_decoder=decoder)
    _write_json(os.path.join(ckpt, "tokenizer_config.json"), cfg)


def _write_json(path: str, data: dict, indent: Optional[int] = 2) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=indent, ensure_ascii=False)
        f.write("\n")


# ----------------------------------------------------------------------------------------------


def preset_config(preset: str, n_pieces: int = tiny_nllb.SPM_VOCAB) -> Tuple[dict, int]:
    """(config.json, first language id) of a preset."""
    if preset not in PRESETS:
        raise CheckpointError(f"unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
    dims, vocab, first = PRESETS[preset]
    if vocab is None:
        vocab = n_pieces + 1 + len(FAIRSEQ_LANGUAGE_CODES) + 1 + tiny_nllb.VOCAB_SPARE
        first = n_pieces + 1
    cfg = tiny_nllb.hub_config(dims, vocab)
    if not preset.startswith("tiny"):
        cfg["_name_or_path"] = f"nllb-200 {preset} (synthetic random weights)"
    return cfg, first


def write(out: str, preset: str, weights: str = "bin", seed: int = tiny_nllb.SEED,
          spm_model: Optional[str] = None) -> dict:
    """Writes the checkpoint; returns its config. spm_model: a SentencePiece model to copy instead
    of training tools/tiny_nllb.py's."""
    if weights not in WEIGHTS:
        raise CheckpointError(f"unknown --weights {weights!r}; allowed: {', '.join(WEIGHTS)}")
    cfg, _ = preset_config(preset)
    dims, _, first = PRESETS[preset]
    os.makedirs(out, exist_ok=True)
    spm_dst = os.path.join(out, "sentencepiece.bpe.model")
    if spm_model is None and preset == "tiny-scripts":
        import tempfile
        import nllb_scripts
        with tempfile.TemporaryDirectory() as tmp:
            corpus = os.path.join(tmp, "scripts.txt")
            with open(corpus, "w", encoding="utf-8") as f:
                f.write("\n".join(nllb_scripts.corpus_lines()) + "\n")
            tiny_nllb.train_spm(out, corpus, vocab_size=SCRIPTS_SPM_VOCAB)
    elif spm_model is None:
        tiny_nllb.train_spm(out)
    elif os.path.abspath(spm_model) != os.path.abspath(spm_dst):
        shutil.copyfile(spm_model, spm_dst)
    n_real = len(read_spm(spm_dst)[0])
    if first is None:
        first = n_real + 1
    else:
        pad_spm(spm_dst, first - 1)
    if PRESETS[preset][1] is None:
        cfg = tiny_nllb.hub_config(dims, n_real + 1 + len(FAIRSEQ_LANGUAGE_CODES) + 1 + tiny_nllb.VOCAB_SPARE)
    sd = tiny_nllb.random_state_dict(cfg, seed, n_real)
    with torch.no_grad():  # rows of padding pieces: no text maps to them; logit 0, never chosen
        sd["model.shared.weight"][n_real + 1:first] = 0.0
    layouts = WEIGHTS[weights]
    cfg = tiny_nllb.write_checkpoint(out, dims, seed=seed, spm_model=spm_dst, vocab_size=cfg["vocab_size"],
                                     weights=layouts[0], state_dict=sd)
    if not preset.startswith("tiny"):
        cfg["_name_or_path"] = f"nllb-200 {preset} (synthetic random weights)"
        _write_json(os.path.join(out, "config.json"), cfg)
    if len(layouts) > 1:  # the other layout from the same tensors
        tiny_nllb.write_weights(out, sd, layouts[1], keep_others=True)
    del sd
    write_tokenizer_files(out, first, cfg["max_position_embeddings"])
    return cfg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument("--out", required=True, help="checkpoint directory to write")
    parser.add_argument("--weights", default="bin", choices=sorted(WEIGHTS),
                        help="pytorch_model.bin, model.safetensors, or both (default bin)")
    parser.add_argument("--seed", type=int, default=tiny_nllb.SEED)
    args = parser.parse_args(argv)
    t0 = time.time()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    try:
        cfg = write(args.out, args.preset, args.weights, args.seed)
    except (CheckpointError, OSError) as e:
        print(f"nllb_checkpoint.py: error: {e}", file=sys.stderr)
        return 1
    files = sorted(os.listdir(args.out))
    print(json.dumps({"tool": "nllb_checkpoint", "preset": args.preset, "out": args.out, "files": files,
                      "vocab_size": cfg["vocab_size"], "seconds": round(time.time() - t0, 2),
                      "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
