#!/usr/bin/env python3
"""The tiny synthetic XTTS v2 model: checkpoint in the published layout, export, goldens.

make(out) writes
  out/checkpoints/xtts-tiny/   model.pth (every key of Coqui 0.28's Xtts.state_dict at tiny GPT
                               dims, weight norm in the parametrizations style; written through
                               tools/xtts_checkpoint.py), config.json (with Infinity literals),
                               vocab.json (HF tokenizers BPE), speakers_xtts.pth. Its HiFi-GAN is
                               32 channels wide (fast tests); Coqui hard-codes 512, so Coqui loads
                               every key but the vocoder's.
  out/checkpoints/xtts-tiny-coqui/  the same GPT with Coqui's fixed widths (HiFi-GAN 512, speaker
                               embedding 512) and shorter utterances: Coqui loads it unmodified
  out/models-coqui/xtts-tiny-coqui/  its export (outside models/: voxd --models out/models skips it)
  out/models/xtts-tiny/        exported by tools/export_xtts.py (the path real checkpoints take)
  out/legacy/xtts-tiny-v1/     the same checkpoint exported without `step_slots` (exporter
                               version 1's methods): engines must still run such models
  out/models-int8/xtts-tiny-int8/  the same checkpoint with int8 GPT weights (--weights int8;
                               needs vox's operators); out/golden/xtts-tiny-int8.json: its greedy
                               codes from its own model.ts run in Python, float32's beside them
  out/golden/xtts-tiny.json    from tools/xtts_reference.py: text ids, greedy and seeded-sampling
  out/golden/xtts-tiny.bin     codes; latents and waveforms as float32 little-endian (offsets in
                               the json)
The random weights are shaped so that codes depend on text and voice and some utterances stop
before the 602-code limit; make() asserts it.
"""
import json
import math
import os
import sys
from typing import Dict, List

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_xtts  # noqa: E402
import vox_ops  # noqa: E402
import xtts_checkpoint  # noqa: E402
import xtts_reference  # noqa: E402

NAME = "xtts-tiny"
COQUI_NAME = "xtts-tiny-coqui"
D, LAYERS, HEADS = 64, 3, 4
SPEAKER_DIM = 16
HIFI_C0 = 32
COQUI_DRIFT = 4.0   # xtts-tiny-coqui: utterances of tens of codes (Coqui's HiFi-GAN is 512 wide)
AUDIO_TOKENS = 1026
ACTIVE = 200        # codes with strong head rows
DRIFT = 25.0        # mel position drift: 1 unit per DRIFT codes
STOP_GAIN = 3.0
STOP_BIAS = -1.0
MAX_TEXT, MAX_AUDIO = 402, 605
VOICES = ["Ana Tiny", "Bruno Tiny", "Carla Tiny"]
LANGUAGES = ["en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi"]

CHARS = list("abcdefghijklmnopqrstuvwxyz") + list("áéíóúñü¿¡") + list("0123456789") + list(".,!?'-:;&@%#$€£°")
MERGES = ["t h", "th e", "e s", "d e", "q u", "e n", "a r", "o n", "i n", "e r", "a n", "o r", "l a", "r e",
          "e l", "o s", "a s", "t e", "i s", "h e", "an d", "c i", "ci ó", "ció n", "y e", "n t", "e n",
          "o o", "oo o", "l l", "ll o", "w o", "wo r", "t w", "tw e", "f i", "fi v", "h u", "hu n",
          "s e", "se n", "c e", "ce n", "t o", "a a", "aa a", "p e", "r o"]
ADDED = ["[STOP]", "[UNK]", "[SPACE]"]  # then chars and merges, then the language tokens and [START]

TEXTS = [
    ("Hello, world! This is a tiny test.", "en"),
    ("It costs $20.15 today, or 3 pounds.", "en"),
    ("The 3rd of May, 1999: Dr. Smith & Co. won 14% more.", "en"),
    ("Don't stop... really?! Wooo, naïve.", "en"),
    ("I have 2,500 songs and 12.5 hours.", "en"),
    ("¡Hola, mundo! ¿Dónde está la estación?", "es"),
    ("Son las 12,5 de la noche, Sr. García.", "es"),
    ("El 1er perro cuesta 20€ y 5 centavos.", "es"),
    ("Llegaron 1.000 personas al 3er piso.", "es"),
    ("Aaaa... ¡qué bien!", "es"),
]


def make_vocab() -> dict:
    vocab: Dict[str, int] = {}
    for t in ADDED:
        vocab[t] = len(vocab)
    for c in CHARS:
        vocab[c] = len(vocab)
    merges = []
    for m in MERGES:
        a, b = m.split(" ")
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
        merges.append(m)
    langs = [f"[{l}]" for l in LANGUAGES[:3]] + ["[START]"] + [f"[{l}]" for l in LANGUAGES[3:]]
    for t in langs:
        vocab[t] = len(vocab)
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in ADDED + langs]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None, "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "vocab": vocab, "merges": merges},
    }


def make_config(num_text_tokens: int, speaker_dim: int = SPEAKER_DIM) -> dict:
    return xtts_checkpoint.coqui_config(D, LAYERS, HEADS, num_text_tokens, speaker_dim, LANGUAGES)


def _wn(sd: dict, key: str, w: torch.Tensor, style: str, gen: torch.Generator) -> None:
    """Stores weight `w` weight-normed: v random-scaled copy, g chosen so that v*g/||v|| == w."""
    scale = torch.rand(w.shape[0], *([1] * (w.dim() - 1)), generator=gen) + 0.5
    v = w * scale
    g = w.reshape(w.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (w.dim() - 1)))
    if style == "parametrizations":
        sd[key + ".parametrizations.weight.original0"] = g
        sd[key + ".parametrizations.weight.original1"] = v
    elif style == "weight_g":
        sd[key + ".weight_g"] = g
        sd[key + ".weight_v"] = v
    else:
        raise ValueError(style)


def make_state_dict(num_text_tokens: int, vocab: dict, style: str = "parametrizations", seed: int = 1234,
                    hifi_c0: int = HIFI_C0, speaker_dim: int = SPEAKER_DIM, drift: float = DRIFT) -> dict:
    """The weights inference reads (plus a few cloning-only keys); xtts_checkpoint.complete adds
    the rest of Coqui's keys."""
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=1.0):
        return torch.randn(*shape, generator=gen) * std

    def sign(n):
        return torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)

    sd = {"mel_stats": torch.rand(80, generator=gen) + 1.0}  # cloning only, first key like the real file
    sd["gpt.conditioning_encoder.init.weight"] = rnd(D, 80, 1, std=0.1)       # cloning only
    sd["gpt.conditioning_encoder.init.bias"] = rnd(D, std=0.1)
    sd["gpt.conditioning_perceiver.latents"] = rnd(32, D, std=0.1)             # cloning only
    sd["gpt.text_embedding.weight"] = rnd(num_text_tokens, D, std=1.0)
    sd["gpt.mel_embedding.weight"] = rnd(AUDIO_TOKENS, D, std=1.0)
    sd["gpt.text_pos_embedding.emb.weight"] = rnd(MAX_TEXT + 2, D, std=0.3)
    # Mel positions: a slow drift along one direction `u` that the stop row of mel_head reads, so
    # the stop logit rises with the number of codes (text and voice shift when it wins).
    u = torch.nn.functional.normalize(rnd(D), dim=0)
    pos = torch.arange(MAX_AUDIO + 3, dtype=torch.float32).unsqueeze(1)
    sd["gpt.mel_pos_embedding.emb.weight"] = rnd(MAX_AUDIO + 3, D, std=0.3) + (pos / drift) * u
    for i in range(LAYERS):
        p = f"gpt.gpt.h.{i}."
        sd[p + "ln_1.weight"] = 1.0 + rnd(D, std=0.1)
        sd[p + "ln_1.bias"] = rnd(D, std=0.1)
        sd[p + "attn.c_attn.weight"] = rnd(D, 3 * D, std=1.5 / math.sqrt(D))
        sd[p + "attn.c_attn.bias"] = rnd(3 * D, std=0.1)
        sd[p + "attn.c_proj.weight"] = rnd(D, D, std=1.0 / math.sqrt(D))
        sd[p + "attn.c_proj.bias"] = rnd(D, std=0.1)
        sd[p + "ln_2.weight"] = 1.0 + rnd(D, std=0.1)
        sd[p + "ln_2.bias"] = rnd(D, std=0.1)
        sd[p + "mlp.c_fc.weight"] = rnd(D, 4 * D, std=1.0 / math.sqrt(D))
        sd[p + "mlp.c_fc.bias"] = rnd(4 * D, std=0.1)
        sd[p + "mlp.c_proj.weight"] = rnd(4 * D, D, std=0.5 / math.sqrt(4 * D))
        sd[p + "mlp.c_proj.bias"] = rnd(D, std=0.1)
    sd["gpt.gpt.ln_f.weight"] = sign(D) * (1.0 + rnd(D, std=0.2).abs())
    sd["gpt.gpt.ln_f.bias"] = rnd(D, std=0.1)
    sd["gpt.final_norm.weight"] = sign(D) * (1.0 + rnd(D, std=0.2).abs())
    sd["gpt.final_norm.bias"] = rnd(D, std=0.1)
    # Only ACTIVE codes get strong head rows (wider top-1/top-2 margins than 1026 dense logits);
    # the stop row reads the position drift through both LayerNorms' gains.
    head = rnd(AUDIO_TOKENS, D, std=0.05)
    head[:ACTIVE] = rnd(ACTIVE, D, std=0.8)
    head[1024] = 0.0                       # start code: never predicted
    eff = u * sd["gpt.gpt.ln_f.weight"] * sd["gpt.final_norm.weight"]
    head[1025] = torch.nn.functional.normalize(eff, dim=0) * STOP_GAIN
    bias = rnd(AUDIO_TOKENS, std=0.3)
    bias[ACTIVE:] -= 3.0
    bias[1024] = -10.0
    bias[1025] = STOP_BIAS
    sd["gpt.mel_head.weight"] = head
    sd["gpt.mel_head.bias"] = bias
    sd["gpt.text_head.weight"] = rnd(num_text_tokens, D, std=0.1)  # unused at inference
    sd["gpt.text_head.bias"] = rnd(num_text_tokens, std=0.1)
    # HiFi-GAN
    wd = "hifigan_decoder.waveform_decoder."
    sd[wd + "conv_pre.weight"] = rnd(hifi_c0, D, 7, std=1.0 / math.sqrt(D * 7))
    sd[wd + "conv_pre.bias"] = rnd(hifi_c0, std=0.1)
    sd[wd + "cond_layer.weight"] = rnd(hifi_c0, speaker_dim, 1, std=1.0 / math.sqrt(speaker_dim))
    sd[wd + "cond_layer.bias"] = rnd(hifi_c0, std=0.1)
    ch = hifi_c0
    for i, (u_, k) in enumerate(zip([8, 8, 2, 2], [16, 16, 4, 4])):
        _wn(sd, f"{wd}ups.{i}", rnd(ch, ch // 2, k, std=1.0 / math.sqrt(ch * k / u_)), style, gen)
        sd[f"{wd}ups.{i}.bias"] = rnd(ch // 2, std=0.05)
        c = ch // 2
        for r, rk in enumerate([3, 7, 11]):
            j = 3 * i + r
            for n in range(3):
                for conv in ("convs1", "convs2"):
                    _wn(sd, f"{wd}resblocks.{j}.{conv}.{n}", rnd(c, c, rk, std=0.5 / math.sqrt(c * rk)), style, gen)
                    sd[f"{wd}resblocks.{j}.{conv}.{n}.bias"] = rnd(c, std=0.05)
        sd[f"{wd}conds.{i}.weight"] = rnd(c, speaker_dim, 1, std=0.3 / math.sqrt(speaker_dim))
        sd[f"{wd}conds.{i}.bias"] = rnd(c, std=0.05)
        ch = c
    sd[wd + "conv_post.weight"] = rnd(1, ch, 7, std=1.0 / math.sqrt(ch * 7))
    return sd


def make_speakers(seed: int = 99, speaker_dim: int = SPEAKER_DIM) -> dict:
    return xtts_checkpoint.random_speakers(VOICES, D, speaker_dim, torch.Generator().manual_seed(seed))


def make_checkpoint(ckpt_dir: str, style: str = "parametrizations", coqui_widths: bool = False) -> dict:
    """Writes the tiny checkpoint with every key of Coqui's layout (tools/xtts_checkpoint.py);
    coqui_widths: Coqui's fixed HiFi-GAN and speaker widths (512) and shorter utterances."""
    vocab = make_vocab()
    num_text = max(vocab["model"]["vocab"].values()) + 1
    hifi_c0 = xtts_checkpoint.COQUI_VOCODER_CHANNELS if coqui_widths else HIFI_C0
    speaker_dim = xtts_checkpoint.COQUI_SPEAKER_DIM if coqui_widths else SPEAKER_DIM
    sd = make_state_dict(num_text, vocab, "parametrizations", hifi_c0=hifi_c0, speaker_dim=speaker_dim,
                         drift=COQUI_DRIFT if coqui_widths else DRIFT)
    shapes = xtts_checkpoint.layout(D, LAYERS, HEADS, num_text, hifi_c0, speaker_dim)
    sd = xtts_checkpoint.complete(sd, shapes, torch.Generator().manual_seed(4321))
    if style == "weight_g":
        sd = xtts_checkpoint.to_weight_g_style(sd)
    elif style != "parametrizations":
        raise ValueError(style)
    xtts_checkpoint.write(ckpt_dir, make_config(num_text, speaker_dim), vocab, sd,
                          make_speakers(speaker_dim=speaker_dim))
    return {"dims": {"d": D, "layers": LAYERS, "heads": HEADS, "hifi_c0": hifi_c0, "speaker_dim": speaker_dim},
            "parameters": sum(v.numel() for v in sd.values())}


class _Blob:
    def __init__(self):
        self.parts: List[bytes] = []
        self.offset = 0  # in floats

    def add(self, t: torch.Tensor) -> dict:
        data = t.detach().float().contiguous().numpy().astype("<f4").tobytes()
        entry = {"offset": self.offset, "shape": list(t.shape)}
        self.parts.append(data)
        self.offset += t.numel()
        return entry


def make_goldens(ckpt_dir: str, model_dir: str, golden_json: str) -> dict:
    ref = xtts_reference.ReferenceModel(ckpt_dir)
    blob = _Blob()
    texts = []
    for text, lang in TEXTS:
        texts.append({"text": text, "lang": lang, "nllb": export_xtts.XTTS_TO_NLLB[lang],
                      "cleaned": xtts_reference.clean_text(text, lang),
                      "ids": ref.tokenizer.encode(text, lang)})
    sampling = {"temperature": 0.75, "top_k": 50, "top_p": 0.85, "repetition_penalty": 5.0}
    runs = []
    for i, t in enumerate(texts):
        voice = VOICES[i % len(VOICES)]
        cond, spk = ref.voice(voice)
        modes = [("greedy", True, 0)]
        if i % 2 == 0:
            modes.append(("sample", False, 1000 + i))
        for mode, greedy, seed in modes:
            codes, step_latents, margin = ref.generate(cond, t["ids"], greedy, seed, **sampling)
            latents = ref.coqui_latents(cond, t["ids"], codes)
            diff = float((latents - step_latents).abs().max())
            assert diff < 1e-4, f"reference: step latents differ from Coqui's full pass by {diff}"
            run = {"text_index": i, "voice": voice, "voice_index": VOICES.index(voice), "mode": mode,
                   "seed": seed, "params": sampling, "codes": codes,
                   "stopped": codes[-1] == ref.stop_audio, "min_greedy_margin": margin if greedy else None,
                   "latents": blob.add(latents)}
            if i < 4 or mode == "sample":
                run["waveform"] = blob.add(ref.vocode(latents, spk))
            runs.append(run)
    # Forced length (benchmark mode): exactly 30 codes, stop suppressed.
    cond, spk = ref.voice(VOICES[0])
    codes, lat, _ = ref.generate(cond, texts[0]["ids"], True, 0, forced_codes=30, **sampling)
    forced = {"text_index": 0, "voice": VOICES[0], "voice_index": 0, "mode": "greedy", "forced_codes": 30,
              "params": sampling, "codes": codes, "latents": blob.add(lat)}
    # Self-checks: outputs depend on the input, use many codes, some stop early, some hit the limit.
    greedy = [r for r in runs if r["mode"] == "greedy"]
    distinct = {tuple(r["codes"]) for r in greedy}
    assert len(distinct) == len(greedy), "tiny xtts: two texts gave the same greedy codes"
    for r in runs:
        assert len(set(r["codes"])) >= min(8, len(r["codes"]) // 2), f"tiny xtts: few distinct codes {r['codes'][:20]}"
    assert any(r["stopped"] for r in runs), "tiny xtts: no utterance stopped before the limit"
    lengths = sorted({len(r["codes"]) for r in runs})
    assert len(lengths) >= 4, f"tiny xtts: utterance lengths barely vary: {lengths}"
    golden = {
        "model": NAME, "model_dir": os.path.relpath(model_dir, os.path.dirname(golden_json)),
        "blob": os.path.basename(golden_json)[:-5] + ".bin", "blob_dtype": "float32-le",
        "sample_rate": 24000, "stop_code": ref.stop_audio, "max_codes": ref.max_codes,
        "voices": VOICES, "texts": texts, "runs": runs, "forced": forced,
        "tolerances": {"latents_abs": 1e-4, "waveform_abs": 1e-4},
    }
    with open(golden_json, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
    with open(golden_json[:-5] + ".bin", "wb") as f:
        for p in blob.parts:
            f.write(p)
    return golden


def generate_scripted(model, cond: torch.Tensor, ids: List[int], manifest: dict, greedy: bool, seed: int,
                      params: dict, forced: int = 0):
    """Codes and step latents [N, d] of an exported model.ts (`prefix`, then `step` per code),
    decoded with the reference's sampling rules: what the C++ engine does, driven from Python."""
    stop = manifest["special_ids"]["stop_audio"]
    limit = forced or manifest["max_generated_codes"]
    cond_len = cond.shape[1]
    with torch.no_grad():
        logits, latent, kv = model.prefix(cond, torch.tensor([ids]), cond_len + len(ids) + 3 + limit)
    cache_len = cond_len + len(ids) + 3
    seen = [1, manifest["special_ids"]["start_audio"]]
    rng = xtts_reference.SplitMix64(seed)
    codes, lats = [], []
    while True:
        lats.append(latent[0])
        l = xtts_reference.apply_repetition_penalty(logits[0], seen, params["repetition_penalty"])
        if forced:
            l[stop] = float("-inf")
        if greedy:
            code = int(torch.argmax(l))
        else:
            probs = xtts_reference.warp(l, params["temperature"], params["top_k"], params["top_p"]).softmax(-1)
            code = xtts_reference.pick(probs, rng.uniform())
        codes.append(code)
        seen.append(code)
        if code == stop or len(codes) >= limit:
            break
        with torch.no_grad():
            logits, latent = model.step(torch.tensor([[code]]), torch.tensor([[len(codes)]]), kv, cache_len)
        cache_len += 1
    return codes, torch.stack(lats)


def make_int8_goldens(model_dir: str, golden: dict, golden_json: str) -> dict:
    """Greedy codes of the int8-weights export run from Python, for each greedy golden run."""
    vox_ops.load()
    model = torch.jit.load(os.path.join(model_dir, "model.ts"))
    voices = torch.jit.load(os.path.join(model_dir, "voices.ts"))
    with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    runs = []
    for run in golden["runs"]:
        if run["mode"] != "greedy":
            continue
        v = run["voice_index"]
        codes, _ = generate_scripted(model, voices.cond_latents[v:v + 1], golden["texts"][run["text_index"]]["ids"],
                                     manifest, True, 0, run["params"])
        runs.append({"text_index": run["text_index"], "voice_index": v, "codes": codes,
                     "stopped": codes[-1] == manifest["special_ids"]["stop_audio"], "fp32_codes": run["codes"]})
    out = {"model": manifest["name"], "model_dir": os.path.relpath(model_dir, os.path.dirname(golden_json)),
           "weights": manifest["weights"],
           "producer": "tools/tiny_xtts.py generate_scripted (the int8-weights model.ts, run from Python)",
           "runs": runs}
    with open(golden_json, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    return out


def make(out: str) -> None:
    ckpt_dir = os.path.join(out, "checkpoints", NAME)
    model_dir = os.path.join(out, "models", NAME)
    golden_dir = os.path.join(out, "golden")
    os.makedirs(golden_dir, exist_ok=True)
    make_checkpoint(ckpt_dir)
    export_xtts.export(ckpt_dir, model_dir, "float32", NAME)
    # Outside models/ so that `voxd --models out/models` does not load it.
    export_xtts.export(ckpt_dir, os.path.join(out, "legacy", NAME + "-v1"), "float32", NAME + "-v1",
                       batched_step=False)
    g = make_goldens(ckpt_dir, model_dir, os.path.join(golden_dir, NAME + ".json"))
    int8_dir = os.path.join(out, "models-int8", NAME + "-int8")
    export_xtts.export(ckpt_dir, int8_dir, "float32", NAME + "-int8", weights="int8")
    make_int8_goldens(int8_dir, g, os.path.join(golden_dir, NAME + "-int8.json"))
    coqui_ckpt = os.path.join(out, "checkpoints", COQUI_NAME)
    make_checkpoint(coqui_ckpt, coqui_widths=True)
    export_xtts.export(coqui_ckpt, os.path.join(out, "models-coqui", COQUI_NAME), "float32", COQUI_NAME)
    lens = [len(r["codes"]) for r in g["runs"]]
    print(f"tiny xtts: {len(g['texts'])} texts, {len(g['runs'])} runs, codes per run {lens}")


if __name__ == "__main__":
    make(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny")
