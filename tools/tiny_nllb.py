"""The tiny NLLB model for tests and the tiny-model demo (called by make_tiny_models.py).

make(OUT) writes, deterministically (fixed seeds, single-threaded SentencePiece training):
  OUT/checkpoints/nllb-tiny/     a synthetic checkpoint in the published Hugging Face layout,
                                 written by tools/nllb_checkpoint.py (preset tiny, both weight
                                 formats): config.json (real field names), pytorch_model.bin (real
                                 key names, tied copies sharing one storage, as published),
                                 model.safetensors (the same tensors, tied copies left out, as
                                 published), sentencepiece.bpe.model (BPE, trained on
                                 tools/data/nllb_corpus.txt), tokenizer.json,
                                 special_tokens_map.json, tokenizer_config.json
  OUT/models/nllb-tiny/          that checkpoint exported by tools/export_nllb.py (float32)
  OUT/models-bf16/nllb-tiny-bf16/  the same checkpoint exported in bfloat16
  OUT/models-int8/nllb-tiny-int8/  and with int8 weights (--weights int8; needs vox's operators)
  OUT/golden/nllb-tiny.json      golden outputs of the eager reference (tools/nllb_reference.py)
  OUT/golden/nllb-tiny-bf16.json, nllb-tiny-int8.json
                                 golden outputs of those model.ts files run from Python

Golden file format (format 1; all ids are model token ids):
  {"format": 1, "model": "nllb-tiny", "model_dir": "models/nllb-tiny" (relative to OUT),
   "dtype": "float32", ["weights": as in the manifest,] "producer": "...", "max_length": N,
   "cases": [{"text", "source", "target", "src_ids", "tgt_id", "max_length",
              "greedy": {"ids", "text", "ended_with_eos", "min_margin", "margins", "first_logits"},
              "beams": [{"beam_size", "length_penalty", "ids", "text", "score", "ended_with_eos",
                         "min_gap"}, ...],
              "fixed_length": {"max_length", "ids"}}, ...]}
  "ids" exclude [2, tgt] and the final </s>; "text" is the detokenized output; "margins" are the
  top-1 minus top-2 float32 logits at each greedy step (min_margin their minimum: a golden id whose
  margin is tiny may legitimately flip on another kernel); "first_logits" are the float32 logits
  of the first generated step (after feeding [2, tgt]), for logit-closeness tests. A beam's
  "min_gap" is the smallest score difference a decision turned on (BeamResult.min_gap): compare
  beam ids exactly where it is at least 1e-4; below that, float rounding may flip a decision.
  The bf16 and int8 files have no beams and add per case "fp32_greedy_ids", the float32 greedy ids that tests feed both
  models (teacher forcing) to compare their logits step by step.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_nllb  # noqa: E402
import nllb_reference as ref  # noqa: E402
from nllb_languages import FAIRSEQ_LANGUAGE_CODES  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "data", "nllb_corpus.txt")
NAME = "nllb-tiny"
SPM_VOCAB = 400
SEED = 20240601
GOLDEN_MAX_LENGTH = 40
FIXED_LENGTH = 20

TINY_DIMS = {"d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
             "decoder_attention_heads": 4, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
             "max_position_embeddings": 128}

# Spare rows after the language codes and <mask>, as in the released vocabulary (256206 =
# 256000 pieces + 1 + 202 codes + <mask> + 2).
VOCAB_SPARE = 2

SPM_FLAGS = {"model_type": "bpe", "vocab_size": SPM_VOCAB, "character_coverage": 1.0,
             "num_threads": 1, "input_sentence_size": 0, "shuffle_input_sentence": False,
             "unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1}

# (text, source, target): language pairs, lengths, punctuation, accents, unknown characters.
GOLDEN_INPUTS = [
    ("Hello, how are you today?", "eng_Latn", "fra_Latn"),
    ("The weather is nice, so we are going to the park.", "eng_Latn", "spa_Latn"),
    ("Where is the nearest train station?", "eng_Latn", "deu_Latn"),
    ("Thank you!", "eng_Latn", "fra_Latn"),
    ("Je voudrais une tasse de café au lait, s'il vous plaît.", "fra_Latn", "eng_Latn"),
    ("¿Dónde está la estación de tren más cercana?", "spa_Latn", "eng_Latn"),
    ("Übersetzen ist schwieriger, als es aussieht.", "deu_Latn", "cat_Latn"),
    ("L'orquestra va tocar música de Mozart i Bach.", "cat_Latn", "spa_Latn"),
    ("My grandmother tells wonderful stories about her childhood, and the children listen "
     "quietly until the fire goes out; then everyone goes to bed.", "eng_Latn", "fra_Latn"),
    ("Price: 42 € (tax 7%) — ok?", "eng_Latn", "spa_Latn"),
    ("東京 and 😀 are not in the corpus.", "eng_Latn", "fra_Latn"),
    ("Bonjour", "fra_Latn", "deu_Latn"),
    ("The server answered the request in less than ten milliseconds.", "eng_Latn", "ita_Latn"),
]
BEAMS = [(2, 1.0), (4, 1.0), (2, 0.6), (4, 0.6)]


def train_spm(out_dir: str, corpus: str = CORPUS, use_cli: bool = False, vocab_size: int = SPM_VOCAB) -> str:
    """Trains the BPE model deterministically into OUT_DIR/sentencepiece.bpe.model and returns
    its path. Uses the sentencepiece Python module when present (python3-sentencepiece), else (or
    with use_cli) Debian's spm_train with the same flags. Training runs in a scratch directory
    with relative paths because the model file records its input and prefix: the bytes are then
    the same wherever and however it is made (same SentencePiece version)."""
    try:
        import sentencepiece as spm
    except ImportError:
        spm = None
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(corpus, os.path.join(tmp, "corpus.txt"))
        flags = dict(SPM_FLAGS, input="corpus.txt", model_prefix="sentencepiece.bpe", minloglevel=2,
                     vocab_size=vocab_size)
        flags = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in flags.items()}
        if spm is not None and not use_cli:
            cwd = os.getcwd()
            os.chdir(tmp)
            try:
                spm.SentencePieceTrainer.train(**flags)
            finally:
                os.chdir(cwd)
        else:
            subprocess.run(["spm_train"] + [f"--{k}={v}" for k, v in flags.items()], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
        dst = os.path.join(out_dir, "sentencepiece.bpe.model")
        shutil.copyfile(os.path.join(tmp, "sentencepiece.bpe.model"), dst)
    return dst


def hub_config(dims: Dict[str, int], vocab_size: int) -> dict:
    """config.json with the field names (and non-dimension values) of facebook/nllb-200-distilled-600M."""
    cfg = {
        "_name_or_path": "nllb-tiny (synthetic)",
        "activation_dropout": 0.0,
        "activation_function": "relu",
        "architectures": ["M2M100ForConditionalGeneration"],
        "attention_dropout": 0.1,
        "bos_token_id": 0,
        "d_model": 1024,
        "decoder_attention_heads": 16,
        "decoder_ffn_dim": 4096,
        "decoder_layerdrop": 0,
        "decoder_layers": 12,
        "decoder_start_token_id": 2,
        "dropout": 0.1,
        "encoder_attention_heads": 16,
        "encoder_ffn_dim": 4096,
        "encoder_layerdrop": 0,
        "encoder_layers": 12,
        "eos_token_id": 2,
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "max_length": 200,
        "max_position_embeddings": 1024,
        "model_type": "m2m_100",
        "num_hidden_layers": 12,
        "pad_token_id": 1,
        "scale_embedding": True,
        "tokenizer_class": "NllbTokenizer",
        "torch_dtype": "float32",
        "transformers_version": "4.21.0.dev0",
        "use_cache": True,
        "vocab_size": 256206,
    }
    cfg.update(dims)
    cfg["num_hidden_layers"] = dims["encoder_layers"]
    cfg["vocab_size"] = vocab_size
    return cfg


def checkpoint_keys(cfg: dict) -> Dict[str, List[int]]:
    """Every key of a published NLLB checkpoint (tied copies excluded) with its shape."""
    d, v = cfg["d_model"], cfg["vocab_size"]
    keys = {"model.shared.weight": [v, d]}

    def attn(prefix):
        for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
            keys[f"{prefix}.{p}.weight"] = [d, d]
            keys[f"{prefix}.{p}.bias"] = [d]

    def ln(prefix):
        keys[f"{prefix}.weight"] = [d]
        keys[f"{prefix}.bias"] = [d]

    for side in ("encoder", "decoder"):
        ffn = cfg[f"{side}_ffn_dim"]
        for i in range(cfg[f"{side}_layers"]):
            p = f"model.{side}.layers.{i}"
            attn(f"{p}.self_attn")
            ln(f"{p}.self_attn_layer_norm")
            if side == "decoder":
                attn(f"{p}.encoder_attn")
                ln(f"{p}.encoder_attn_layer_norm")
            keys[f"{p}.fc1.weight"] = [ffn, d]
            keys[f"{p}.fc1.bias"] = [ffn]
            keys[f"{p}.fc2.weight"] = [d, ffn]
            keys[f"{p}.fc2.bias"] = [d]
            ln(f"{p}.final_layer_norm")
        ln(f"model.{side}.layer_norm")
    return keys


def random_state_dict(cfg: dict, seed: int = SEED, spm_pieces: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """Random weights shaped so that outputs depend on the input (see shared/MODELS.md, last
    section; the factors were tuned on the golden inputs with tools/nllb_reference.py):
    linear weights ~ N(0, 1/fan_in); random-sign gains of magnitude 0.75-2.25 on the decoder's final
    LayerNorm (large, input-dependent logits); a 4x </s> embedding so that some decodes stop early;
    cross-attention output x3 and decoder self-attention output x0.5 (the source matters more
    than the last token, fewer loops); language-code rows x0.3 (rarely generated); a zero <pad>
    row (as transformers initialises padding_idx). Tied copies share model.shared.weight."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in checkpoint_keys(cfg).items():
        if key == "model.shared.weight":
            t = torch.randn(shape, generator=g) * 0.5
            t[1] = 0.0
            t[2] *= 4.0
            if spm_pieces is not None:
                t[spm_pieces + 1:] *= 0.3
        elif "layer_norm" in key and key.endswith(".weight"):
            if key == "model.decoder.layer_norm.weight":
                sign = torch.randint(0, 2, shape, generator=g) * 2 - 1
                t = sign * (0.5 + torch.rand(shape, generator=g)) * 1.5
            else:
                t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=g)
        else:
            t = torch.randn(shape, generator=g) / (shape[1] ** 0.5)
            if "encoder_attn.out_proj" in key:
                t *= 3.0
            elif key.startswith("model.decoder.") and "self_attn.out_proj" in key:
                t *= 0.5
        sd[key] = t.float().contiguous()
    shared = sd["model.shared.weight"]
    sd["model.encoder.embed_tokens.weight"] = shared
    sd["model.decoder.embed_tokens.weight"] = shared
    sd["lm_head.weight"] = shared
    return sd


def write_checkpoint(ckpt: str, dims: Dict[str, int] = TINY_DIMS, seed: int = SEED,
                     spm_model: Optional[str] = None, vocab_size: Optional[int] = None,
                     weights: str = "bin", shards: int = 2,
                     state_dict: Optional[Dict[str, torch.Tensor]] = None) -> dict:
    """Writes a checkpoint directory in the published layout; returns its config.
    weights: 'bin' | 'sharded-bin' | 'safetensors' | 'sharded-safetensors'. spm_model: an existing
    SentencePiece model to copy (else one is trained). vocab_size defaults to spm + 1 + 202 + 1 + 2."""
    os.makedirs(ckpt, exist_ok=True)
    spm_dst = os.path.join(ckpt, "sentencepiece.bpe.model")
    if spm_model is None:
        train_spm(ckpt)
    elif os.path.abspath(spm_model) != os.path.abspath(spm_dst):
        shutil.copyfile(spm_model, spm_dst)
    n_pieces = export_nllb.spm_size(spm_dst)
    if vocab_size is None:
        vocab_size = n_pieces + 1 + len(FAIRSEQ_LANGUAGE_CODES) + 1 + VOCAB_SPARE
    cfg = hub_config(dims, vocab_size)
    with open(os.path.join(ckpt, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    sd = state_dict if state_dict is not None else random_state_dict(cfg, seed, n_pieces)
    write_weights(ckpt, sd, weights, shards)
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                "sep_token": "</s>", "cls_token": "<s>", "mask_token": "<mask>",
                "additional_special_tokens": list(FAIRSEQ_LANGUAGE_CODES)}
    with open(os.path.join(ckpt, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(specials, f, indent=2)
    tok_cfg = dict(specials, tokenizer_class="NllbTokenizer", model_max_length=cfg["max_position_embeddings"],
                   src_lang=None, tgt_lang=None, sp_model_kwargs={}, legacy_behaviour=False)
    with open(os.path.join(ckpt, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tok_cfg, f, indent=2)
    return cfg


def write_weights(ckpt: str, sd: Dict[str, torch.Tensor], weights: str, shards: int = 2,
                  keep_others: bool = False) -> None:
    """Writes sd in one weight layout, removing any other weight files first (unless keep_others:
    then a checkpoint can carry pytorch_model.bin and model.safetensors side by side, as hub
    repositories do)."""
    import safetensors_reader
    for old in os.listdir(ckpt):
        if old.startswith(("pytorch_model", "model.safetensors", "model-")) and not keep_others:
            os.remove(os.path.join(ckpt, old))
    if weights == "bin":
        torch.save(sd, os.path.join(ckpt, "pytorch_model.bin"))
        return
    if weights == "safetensors":
        # safetensors refuses shared storage: published files keep model.shared.weight only
        only = {k: v for k, v in sd.items() if k not in export_nllb.TIED_ALIASES}
        safetensors_reader.save_file(only, os.path.join(ckpt, "model.safetensors"), {"format": "pt"})
        return
    if weights not in ("sharded-bin", "sharded-safetensors"):
        raise ValueError(f"unknown weights layout {weights!r}")
    keys = [k for k in sd if not (weights == "sharded-safetensors" and k in export_nllb.TIED_ALIASES)]
    per = (len(keys) + shards - 1) // shards
    weight_map = {}
    ext = "bin" if weights == "sharded-bin" else "safetensors"
    stem = "pytorch_model" if weights == "sharded-bin" else "model"
    for i in range(shards):
        name = f"{stem}-{i + 1:05d}-of-{shards:05d}.{ext}"
        part = {k: sd[k] for k in keys[i * per:(i + 1) * per]}
        if ext == "bin":
            torch.save(part, os.path.join(ckpt, name))
        else:
            safetensors_reader.save_file(part, os.path.join(ckpt, name), {"format": "pt"})
        weight_map.update({k: name for k in part})
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in sd.values())},
             "weight_map": weight_map}
    with open(os.path.join(ckpt, f"{stem}.{ext}.index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=2)


# ----------------------------------------------------------------------------------------------
# Goldens.

def golden_cases(model, tok: ref.Tokenizer, inputs=GOLDEN_INPUTS, max_length: int = GOLDEN_MAX_LENGTH,
                 beams=BEAMS) -> List[dict]:
    cases = []
    for text, src, tgt in inputs:
        src_ids = tok.encode(text, src)
        tgt_id = tok.lang_id(tgt)
        g = ref.greedy(model, src_ids, tgt_id, max_length)
        fixed = ref.greedy(model, src_ids, tgt_id, FIXED_LENGTH, fixed_length=True)
        case = {"text": text, "source": src, "target": tgt, "src_ids": src_ids, "tgt_id": tgt_id,
                "max_length": max_length,
                "greedy": {"ids": g.ids, "text": tok.decode(g.ids), "ended_with_eos": g.ended_with_eos,
                           "min_margin": min(g.margins), "margins": g.margins,
                           "first_logits": g.first_logits},
                "beams": [],
                "fixed_length": {"max_length": FIXED_LENGTH, "ids": fixed.ids}}
        for k, lp in beams:
            b = ref.beam_search(model, src_ids, tgt_id, k, lp, max_length)
            case["beams"].append({"beam_size": k, "length_penalty": lp, "ids": b.ids, "text": tok.decode(b.ids),
                                  "score": b.score, "ended_with_eos": b.ended_with_eos,
                                  "min_gap": b.min_gap})
        cases.append(case)
    return cases


def _write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(path + ".tmp", path)


def make(out: str) -> None:
    t0 = time.time()
    torch.set_num_threads(1)
    ckpt = os.path.join(out, "checkpoints", NAME)
    if os.path.isdir(ckpt):
        shutil.rmtree(ckpt)
    import nllb_checkpoint  # the one writer of synthetic checkpoints (it uses this module's pieces)
    nllb_checkpoint.write(ckpt, "tiny", weights="both")
    quiet = lambda *a, **k: None  # noqa: E731
    export_nllb.export(ckpt, os.path.join(out, "models", NAME), "float32", NAME, log=quiet)
    bf16_dir = os.path.join(out, "models-bf16", NAME + "-bf16")
    export_nllb.export(ckpt, bf16_dir, "bfloat16", NAME + "-bf16", log=quiet)

    tok = ref.Tokenizer(os.path.join(ckpt, "sentencepiece.bpe.model"), list(FAIRSEQ_LANGUAGE_CODES))
    reference = ref.ReferenceModel.from_checkpoint(ckpt)
    cases = golden_cases(reference, tok)
    _write_json(os.path.join(out, "golden", NAME + ".json"), {
        "format": 1, "model": NAME, "model_dir": f"models/{NAME}", "dtype": "float32",
        "producer": "tools/nllb_reference.py ReferenceModel (eager, float32) on checkpoints/nllb-tiny",
        "max_length": GOLDEN_MAX_LENGTH, "cases": cases})

    # Reduced precision: goldens from the same model.ts run in Python (greedy, no beams), each
    # case with float32's greedy ids beside it.
    int8_dir = os.path.join(out, "models-int8", NAME + "-int8")
    export_nllb.export(ckpt, int8_dir, "float32", NAME + "-int8", log=quiet, weights="int8")
    for suffix, what in (("bf16", "the bfloat16 model.ts"), ("int8", "the int8-weights model.ts")):
        model = ref.TorchScriptModel(os.path.join(out, f"models-{suffix}", f"{NAME}-{suffix}"))
        reduced = golden_cases(model, tok, beams=[])
        for case, fp32 in zip(reduced, cases):
            case["fp32_greedy_ids"] = fp32["greedy"]["ids"]
        _write_json(os.path.join(out, "golden", f"{NAME}-{suffix}.json"), {
            "format": 1, "model": f"{NAME}-{suffix}", "model_dir": f"models-{suffix}/{NAME}-{suffix}",
            "dtype": model.manifest["dtype"], "weights": model.manifest["weights"],
            "producer": f"tools/nllb_reference.py TorchScriptModel ({what}, run from Python)",
            "max_length": GOLDEN_MAX_LENGTH, "cases": reduced})
    print(f"tiny_nllb: wrote {NAME} (checkpoint, float32 + bfloat16 + int8-weights exports, goldens) to {out} "
          f"in {time.time() - t0:.1f} s")
