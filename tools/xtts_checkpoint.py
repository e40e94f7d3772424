#!/usr/bin/env python3
"""Writes a synthetic XTTS v2 checkpoint directory in Coqui's published layout (random weights).

    /usr/bin/python3 tools/xtts_checkpoint.py --preset tiny|tiny-coqui|v2|v2-2layer --out DIR [--seed N]

DIR gets config.json (with the `Infinity` literals), model.pth ({"model": state dict}),
vocab.json (HF tokenizers BPE) and speakers_xtts.pth: the files `Xtts.load_checkpoint` reads.
model.pth holds exactly the keys and shapes of coqui-tts 0.28's `Xtts.state_dict()` for the
preset's dimensions (weight norm as `parametrizations.weight.original0/1`, the speaker
encoder's and perceiver's cloning-only weights, BatchNorm statistics, and the mel front end's
buffers with the values Coqui computes), so Coqui loads it unmodified (strict) and offline;
tests/upstream_xtts checks it. Only torch is needed (Debian's /usr/bin/python3).

Presets:
  tiny        tools/tiny_xtts.py's test model (GPT d 64, 3 layers; weights shaped so codes depend
              on text and voice). Its HiFi-GAN is 32 channels wide to keep vox's tests fast;
              Coqui hard-codes 512 (HifiDecoder's upsample_initial_channel_decoder) and so
              refuses this one preset on those shapes alone.
  tiny-coqui  the same GPT with Coqui's fixed widths (HiFi-GAN 512, speaker embedding 512) and
              shorter utterances: what the fidelity test runs through Coqui.
  v2          the released dimensions (d 1024, 30 layers, 16 heads, 6681 text tokens; 1.9 GB).
  v2-2layer   v2 with 2 GPT layers.
Random init for v2*: GPT and cloning weights normal(0, 0.02), norms 1, biases 0, HiFi-GAN
convolutions normal(0, 1/sqrt(fan_in)) (a waveform neither silent nor clipped).

Exit status 0 on success, 1 with a message on error, 2 for a bad command line.
"""
import argparse
import json
import math
import os
import sys
import time
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

COQUI_VOCODER_CHANNELS = 512  # HifiDecoder(upsample_initial_channel_decoder=512): not in config.json
COQUI_SPEAKER_DIM = 512       # ResNetSpeakerEncoder(proj_dim=512) feeds d_vector_dim
AUDIO_TOKENS = 1026
MAX_TEXT, MAX_AUDIO = 402, 605
RELEASED_TEXT_TOKENS = 6681
LANGUAGES = ["en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko",
             "ja", "hi"]
STD = 0.02

# Dimensions per preset; the tiny ones are made by tools/tiny_xtts.py (shaped weights).
PRESETS = {
    "tiny": None,
    "tiny-coqui": None,
    "v2": dict(d=1024, layers=30, heads=16, text_tokens=RELEASED_TEXT_TOKENS),
    "v2-2layer": dict(d=1024, layers=2, heads=16, text_tokens=RELEASED_TEXT_TOKENS),
}
SYNTHETIC_VOICES = ["Synthetic One", "Synthetic Two"]

HIFI_RATES, HIFI_KERNELS = [8, 8, 2, 2], [16, 16, 4, 4]
RESBLOCK_KERNELS = [3, 7, 11]
SPK_LAYERS, SPK_FILTERS, SPK_MELS = [3, 4, 6, 3], [32, 64, 128, 256], 64


class CheckpointError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Layout: Coqui 0.28's Xtts.state_dict() keys, in its order, with shapes.


def layout(d: int, layers: int, heads: int, text_tokens: int, hifi_c0: int = COQUI_VOCODER_CHANNELS,
           speaker_dim: int = COQUI_SPEAKER_DIM) -> "OrderedDict[str, Tuple[int, ...]]":
    """Key -> shape. `heads` only matters to Coqui's attention (not to shapes); kept for clarity."""
    del heads
    s: "OrderedDict[str, Tuple[int, ...]]" = OrderedDict()
    s["mel_stats"] = (80,)
    ce = "gpt.conditioning_encoder."
    s[ce + "init.weight"], s[ce + "init.bias"] = (d, 80, 1), (d,)
    for i in range(6):  # ConditioningEncoder(80, d, attn_blocks=6)
        a = f"{ce}attn.{i}."
        s[a + "norm.weight"], s[a + "norm.bias"] = (d,), (d,)
        s[a + "qkv.weight"], s[a + "qkv.bias"] = (3 * d, d, 1), (3 * d,)
        s[a + "proj_out.weight"], s[a + "proj_out.bias"] = (d, d, 1), (d,)
    s["gpt.text_embedding.weight"] = (text_tokens, d)
    s["gpt.mel_embedding.weight"] = (AUDIO_TOKENS, d)
    for i in range(layers):
        p = f"gpt.gpt.h.{i}."
        for ln in ("ln_1",):
            s[p + ln + ".weight"], s[p + ln + ".bias"] = (d,), (d,)
        s[p + "attn.c_attn.weight"], s[p + "attn.c_attn.bias"] = (d, 3 * d), (3 * d,)
        s[p + "attn.c_proj.weight"], s[p + "attn.c_proj.bias"] = (d, d), (d,)
        s[p + "ln_2.weight"], s[p + "ln_2.bias"] = (d,), (d,)
        s[p + "mlp.c_fc.weight"], s[p + "mlp.c_fc.bias"] = (d, 4 * d), (4 * d,)
        s[p + "mlp.c_proj.weight"], s[p + "mlp.c_proj.bias"] = (4 * d, d), (d,)
    s["gpt.gpt.ln_f.weight"], s["gpt.gpt.ln_f.bias"] = (d,), (d,)
    s["gpt.mel_pos_embedding.emb.weight"] = (MAX_AUDIO + 3, d)
    s["gpt.text_pos_embedding.emb.weight"] = (MAX_TEXT + 2, d)
    s["gpt.final_norm.weight"], s["gpt.final_norm.bias"] = (d,), (d,)
    s["gpt.text_head.weight"], s["gpt.text_head.bias"] = (text_tokens, d), (text_tokens,)
    s["gpt.mel_head.weight"], s["gpt.mel_head.bias"] = (AUDIO_TOKENS, d), (AUDIO_TOKENS,)
    # PerceiverResampler(dim=d, depth=2, dim_context=d, num_latents=32, dim_head=64, heads=8, ff_mult=4)
    pr = "gpt.conditioning_perceiver."
    s[pr + "latents"] = (32, d)
    inner = int(d * 4 * 2 / 3)
    for i in range(2):
        a = f"{pr}layers.{i}."
        s[a + "0.to_q.weight"], s[a + "0.to_kv.weight"], s[a + "0.to_out.weight"] = (512, d), (1024, d), (d, 512)
        s[a + "1.0.weight"], s[a + "1.0.bias"] = (2 * inner, d), (2 * inner,)
        s[a + "1.2.weight"], s[a + "1.2.bias"] = (d, inner), (d,)
    s[pr + "norm.gamma"] = (d,)
    wd = "hifigan_decoder.waveform_decoder."
    s[wd + "conv_pre.bias"], s[wd + "conv_pre.weight"] = (hifi_c0,), (hifi_c0, d, 7)
    ch = hifi_c0
    for i, k in enumerate(HIFI_KERNELS):
        _wn(s, f"{wd}ups.{i}", (ch, ch // 2, k), ch // 2)
        ch //= 2
    ch = hifi_c0
    for i in range(len(HIFI_RATES)):
        ch //= 2
        for r, k in enumerate(RESBLOCK_KERNELS):
            for conv in ("convs1", "convs2"):
                for n in range(3):
                    _wn(s, f"{wd}resblocks.{3 * i + r}.{conv}.{n}", (ch, ch, k), ch)
    s[wd + "conv_post.weight"] = (1, ch, 7)
    s[wd + "cond_layer.weight"], s[wd + "cond_layer.bias"] = (hifi_c0, speaker_dim, 1), (hifi_c0,)
    ch = hifi_c0
    for i in range(len(HIFI_RATES)):
        ch //= 2
        s[f"{wd}conds.{i}.weight"], s[f"{wd}conds.{i}.bias"] = (ch, speaker_dim, 1), (ch,)
    _speaker_encoder(s, "hifigan_decoder.speaker_encoder.")
    return s


def _wn(s: dict, key: str, shape: Tuple[int, ...], out: int) -> None:
    s[key + ".bias"] = (out,)
    s[key + ".parametrizations.weight.original0"] = (shape[0], 1, 1)
    s[key + ".parametrizations.weight.original1"] = shape


def _bn(s: dict, key: str, c: int) -> None:
    for leaf in ("weight", "bias", "running_mean", "running_var"):
        s[f"{key}.{leaf}"] = (c,)
    s[key + ".num_batches_tracked"] = ()


def _speaker_encoder(s: dict, se: str) -> None:
    """ResNetSpeakerEncoder(input_dim=64, proj_dim=512, use_torch_spec=True): fixed in Coqui."""
    f0 = SPK_FILTERS[0]
    s[se + "conv1.weight"], s[se + "conv1.bias"] = (f0, 1, 3, 3), (f0,)
    _bn(s, se + "bn1", f0)
    inplanes = f0
    for li, (n, planes) in enumerate(zip(SPK_LAYERS, SPK_FILTERS)):
        for b in range(n):
            p = f"{se}layer{li + 1}.{b}."
            s[p + "conv1.weight"] = (planes, inplanes if b == 0 else planes, 3, 3)
            _bn(s, p + "bn1", planes)
            s[p + "conv2.weight"] = (planes, planes, 3, 3)
            _bn(s, p + "bn2", planes)
            s[p + "se.fc.0.weight"], s[p + "se.fc.0.bias"] = (planes // 8, planes), (planes // 8,)
            s[p + "se.fc.2.weight"], s[p + "se.fc.2.bias"] = (planes, planes // 8), (planes,)
            if b == 0 and li > 0:  # stride 2: a 1x1 conv + BatchNorm on the shortcut
                s[p + "downsample.0.weight"] = (planes, inplanes, 1, 1)
                _bn(s, p + "downsample.1", planes)
        inplanes = planes
    s[se + "torch_spec.0.filter"] = (1, 1, 2)
    s[se + "torch_spec.1.spectrogram.window"] = (400,)
    s[se + "torch_spec.1.mel_scale.fb"] = (257, SPK_MELS)
    wide = SPK_FILTERS[-1] * (SPK_MELS // 8)
    s[se + "attention.0.weight"], s[se + "attention.0.bias"] = (128, wide, 1), (128,)
    _bn(s, se + "attention.2", 128)
    s[se + "attention.3.weight"], s[se + "attention.3.bias"] = (wide, 128, 1), (wide,)
    s[se + "fc.weight"], s[se + "fc.bias"] = (COQUI_SPEAKER_DIM, 2 * wide), (COQUI_SPEAKER_DIM,)


# ---------------------------------------------------------------------------------------------
# Values


def mel_front_end_buffers() -> Dict[str, torch.Tensor]:
    """The speaker encoder's fixed buffers as Coqui computes them: pre-emphasis 0.97, a periodic
    Hamming window of 400, torchaudio's HTK mel filterbank (257 bins, 64 mels, 0..8000 Hz, no norm)."""
    n_freqs, n_mels, sr = 257, SPK_MELS, 16000
    all_freqs = torch.linspace(0, sr // 2, n_freqs)
    m_min, m_max = 0.0, 2595.0 * math.log10(1.0 + (sr / 2) / 700.0)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = torch.max(torch.zeros(1), torch.min(down, up))
    se = "hifigan_decoder.speaker_encoder."
    return {se + "torch_spec.0.filter": torch.tensor([[[-0.97, 1.0]]]),
            se + "torch_spec.1.spectrogram.window": torch.hamming_window(400),
            se + "torch_spec.1.mel_scale.fb": fb}


def fill(key: str, shape: Tuple[int, ...], gen: torch.Generator, gpt_std: float = STD) -> torch.Tensor:
    """A value for one key: BatchNorm statistics and norms as freshly initialised, biases 0,
    weight-norm magnitudes matching their direction, convolutions 1/sqrt(fan_in), the rest normal."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.zeros((), dtype=torch.long)
    if leaf == "running_var" or leaf == "gamma" or (leaf == "weight" and len(shape) == 1):
        return torch.ones(shape)
    if leaf in ("bias", "running_mean"):
        return torch.zeros(shape)
    if key == "mel_stats":
        return torch.rand(shape, generator=gen) + 1.0
    if len(shape) >= 3 or key.startswith("hifigan_decoder."):
        fan_in = 1
        for n in shape[1:]:
            fan_in *= n
        return torch.randn(shape, generator=gen) / math.sqrt(max(fan_in, 1))
    return torch.randn(shape, generator=gen) * gpt_std


def complete(sd: Dict[str, torch.Tensor], shapes: "OrderedDict[str, Tuple[int, ...]]",
             gen: torch.Generator) -> "OrderedDict[str, torch.Tensor]":
    """`sd` (any subset of the layout, checked for shape) plus every missing key filled, in the
    layout's order. Weight-norm magnitudes of filled pairs are ||v|| (effective weight = v)."""
    extra = [k for k in sd if k not in shapes]
    if extra:
        raise CheckpointError(f"key '{extra[0]}' is not in Coqui's layout ({len(extra)} such keys)")
    buffers = mel_front_end_buffers()
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, shape in shapes.items():
        if k in sd:
            if tuple(sd[k].shape) != tuple(shape):
                raise CheckpointError(f"key '{k}' has shape {list(sd[k].shape)}, Coqui's is {list(shape)}")
            out[k] = sd[k]
        elif k in buffers:
            out[k] = buffers[k]
        elif k.endswith(".parametrizations.weight.original0"):
            continue  # set with its original1 below
        else:
            out[k] = fill(k, shape, gen)
    for k in list(out):
        if k.endswith(".parametrizations.weight.original1"):
            g = k[: -len("1")] + "0"
            if g not in out:
                v = out[k]
                out[g] = v.reshape(v.shape[0], -1).norm(dim=1).reshape(-1, 1, 1)
    return OrderedDict((k, out[k]) for k in shapes)


def to_weight_g_style(sd: Dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """The same weights with weight norm stored the older way (`weight_g` / `weight_v`)."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, v in sd.items():
        k = k.replace(".parametrizations.weight.original0", ".weight_g")
        k = k.replace(".parametrizations.weight.original1", ".weight_v")
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# vocab.json, config.json, speakers


def pad_vocab(vocab: dict, text_tokens: int) -> dict:
    """Adds unused plain tokens (never produced: no merge makes them) up to `text_tokens` ids, so
    Coqui's `number_text_tokens = max id + 1` equals the released 6681."""
    v = json.loads(json.dumps(vocab))
    table = v["model"]["vocab"]
    n = max(table.values()) + 1
    while n < text_tokens:
        table[f"<synthetic_{n}>"] = n
        n += 1
    return v


def coqui_config(d: int, layers: int, heads: int, num_text_tokens: int, speaker_dim: int,
                 languages: List[str] = LANGUAGES) -> dict:
    """config.json as published (model "xtts", model_args, audio, sampling defaults); json.dump
    writes the two infinite lengths as the non-standard `Infinity` literal, as XTTS's file has."""
    inf = float("inf")
    return {
        "model": "xtts",
        "languages": list(languages),
        "audio": {"sample_rate": 22050, "output_sample_rate": 24000},
        "model_args": {
            "gpt_batch_size": 1, "enable_redaction": False, "kv_cache": True,
            "gpt_checkpoint": None, "clvp_checkpoint": None, "decoder_checkpoint": None,
            "num_chars": 255, "tokenizer_file": "", "gpt_max_audio_tokens": MAX_AUDIO,
            "gpt_max_text_tokens": MAX_TEXT, "gpt_max_prompt_tokens": 70, "gpt_layers": layers,
            "gpt_n_model_channels": d, "gpt_n_heads": heads, "gpt_number_text_tokens": num_text_tokens,
            "gpt_start_text_token": None, "gpt_stop_text_token": None, "gpt_num_audio_tokens": AUDIO_TOKENS,
            "gpt_start_audio_token": 1024, "gpt_stop_audio_token": 1025, "gpt_code_stride_len": 1024,
            "gpt_use_masking_gt_prompt_approach": True, "gpt_use_perceiver_resampler": True,
            "input_sample_rate": 22050, "output_sample_rate": 24000, "output_hop_length": 256,
            "decoder_input_dim": d, "d_vector_dim": speaker_dim, "cond_d_vector_in_each_upsampling_layer": True,
            "duration_const": 102400,
        },
        "max_audio_len": inf, "max_text_len": inf,
        "temperature": 0.75, "length_penalty": 1.0, "repetition_penalty": 5.0, "top_k": 50, "top_p": 0.85,
        "num_gpt_outputs": 1, "gpt_cond_len": 30, "gpt_cond_chunk_len": 4, "max_ref_len": 30,
        "sound_norm_refs": False,
    }


def random_speakers(names: List[str], d: int, speaker_dim: int, gen: torch.Generator) -> dict:
    """name -> {"gpt_cond_latent": [1, 32, d], "speaker_embedding": [1, speaker_dim, 1] (unit norm)}."""
    out = {}
    for name in names:
        lat = torch.randn(1, 32, d, generator=gen)
        emb = torch.nn.functional.normalize(torch.randn(1, speaker_dim, generator=gen), dim=1).unsqueeze(-1)
        out[name] = {"gpt_cond_latent": lat, "speaker_embedding": emb}
    return out


def write(out: str, config: dict, vocab: dict, state_dict: Dict[str, torch.Tensor], speakers: dict) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=1)
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    torch.save({"model": state_dict}, os.path.join(out, "model.pth"))
    torch.save(speakers, os.path.join(out, "speakers_xtts.pth"))


def make_random(preset: str, out: str, seed: int = 1234, dims: Optional[dict] = None) -> dict:
    """Writes preset `preset` (v2, v2-2layer) with random weights; `dims` overrides its
    dimensions (the small-scale tests). Returns {"dims":..., "parameters": n}."""
    import tiny_xtts  # the BPE vocab.json in the published format (tools/tiny_xtts.py)

    p = dict(PRESETS[preset], **(dims or {}))
    vocab = pad_vocab(tiny_xtts.make_vocab(), p["text_tokens"])
    num_text = max(vocab["model"]["vocab"].values()) + 1
    gen = torch.Generator().manual_seed(seed)
    shapes = layout(p["d"], p["layers"], p["heads"], num_text)
    sd = complete({}, shapes, gen)
    config = coqui_config(p["d"], p["layers"], p["heads"], num_text, COQUI_SPEAKER_DIM)
    write(out, config, vocab, sd, random_speakers(SYNTHETIC_VOICES, p["d"], COQUI_SPEAKER_DIM, gen))
    return {"dims": p, "parameters": sum(v.numel() for v in sd.values())}


def make(preset: str, out: str, seed: int = 1234) -> dict:
    if preset not in PRESETS:
        raise CheckpointError(f"preset '{preset}' unknown; allowed: {', '.join(PRESETS)}")
    if PRESETS[preset] is None:
        import tiny_xtts
        return tiny_xtts.make_checkpoint(out, coqui_widths=(preset == "tiny-coqui"))
    return make_random(preset, out, seed)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, choices=list(PRESETS))
    parser.add_argument("--out", required=True, help="checkpoint directory to write")
    parser.add_argument("--seed", type=int, default=1234, help="v2 presets: random seed")
    args = parser.parse_args(argv)
    t0 = time.time()
    try:
        info = make(args.preset, args.out, args.seed)
    except CheckpointError as e:
        print(f"xtts_checkpoint.py: error: {e}", file=sys.stderr)
        return 1
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(json.dumps({"tool": "xtts_checkpoint", "preset": args.preset, "out": args.out, "bytes": size,
                      "parameters": info.get("parameters"), "seconds": round(time.time() - t0, 2),
                      "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
