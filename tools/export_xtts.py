#!/usr/bin/env python3
"""Exports a Coqui XTTS v2 checkpoint directory to vox's model format (docs/model-format.md, XTTS).

    /usr/bin/python3 tools/export_xtts.py --checkpoint XTTS_DIR --out MODEL_DIR \
        [--dtype float32|float16|bfloat16] [--weights int8|bfloat16] [--name NAME]

XTTS_DIR is the directory as published: model.pth (state dict under "model"), config.json (with
the non-standard `Infinity` literals), vocab.json, speakers_xtts.pth. Only torch is needed.
The modules below are scriptable re-implementations whose parameter names map 1:1 onto the
checkpoint keys (shared/XTTS_FACTS.md §3); every key is checked for presence and shape, and
cloning-only modules are ignored by an explicit list. Weight norm is accepted in both storage
styles (weight_g/weight_v and parametrizations.weight.original0/1) and folded in.
"""
import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sys
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compressed_weights import COMPRESSED_WEIGHTS, check_export, compressed_linear  # noqa: E402
from torchscript_linear import linear_rows  # noqa: E402
import xtts_clone  # noqa: E402

# 2: model.ts has step_slots; 3: vocoder convolutions run in their weights' dtype;
# 4: clone.ts (voice cloning) and the manifest's `cloning` section; 5: `condition` and
# `prefix_conditioned` (a voice's conditioning rows computed once), the GELU as one operator;
# 6: every model.ts scripts vox::linear (tools/torchscript_linear.py) and needs vox's operators;
# 7: float32 products of up to 64 rows through vox::linear; 8: the vocoder's transposed
# convolutions as ordinary ones (PolyphaseUpsample), held in bfloat16 with the rest at load;
# 9: compressed GPTs attend in a step through one vox::cache_attend per layer (no view, cache
# write or merge operators around it) and pass 3-D rows to vox::linear as they are; 10: so do
# float32 GPTs on CPU; 11: on CPU `step` makes its rows' slots and lengths once, not per layer
EXPORTER_VERSION = 11

# XttsConfig's defaults for the cloning settings config.json may lack (coqui-tts 0.28,
# TTS/tts/configs/xtts_config.py); Xtts.synthesize reads them from the config.
CLONE_DEFAULTS = {"gpt_cond_len": 12, "gpt_cond_chunk_len": 4, "max_ref_len": 10, "sound_norm_refs": False}

# XTTS code -> NLLB code; must equal the XTTS column of engines/core/languages.cc
# (tests/tools_xtts checks it).
XTTS_TO_NLLB = {
    "en": "eng_Latn", "es": "spa_Latn", "fr": "fra_Latn", "de": "deu_Latn", "it": "ita_Latn",
    "pt": "por_Latn", "pl": "pol_Latn", "tr": "tur_Latn", "ru": "rus_Cyrl", "nl": "nld_Latn",
    "cs": "ces_Latn", "ar": "arb_Arab", "zh-cn": "zho_Hans", "ja": "jpn_Jpan", "hu": "hun_Latn",
    "ko": "kor_Hang", "hi": "hin_Deva",
}

# Top-level modules whose keys the inference modules (model.ts) do not use: cloning-only ones
# (clone.ts loads those with its own check, build_cloner) and training-only ones. Everything else
# in model.pth must be used by the inference modules.
IGNORED_PREFIXES = (
    "mel_stats",
    "torch_mel_spectrogram_style_encoder.",
    "torch_mel_spectrogram_dvae.",
    "dvae.",
    "gpt.conditioning_encoder.",
    "gpt.conditioning_perceiver.",
    "gpt.text_head.",
    "gpt.gpt_inference.",          # duplicates of gpt.gpt.* etc. made by init_gpt_for_inference
    "gpt.gpt.wte.",                # GPT-2's own token table: unused (inputs are embeddings)
    "gpt.gpt.wpe.",                # GPT-2's own position table: replaced by zeros in Coqui
    "hifigan_decoder.speaker_encoder.",
)
IGNORED_PATTERNS = (re.compile(r"^gpt\.gpt\.h\.\d+\.attn\.(bias|masked_bias)$"),)

HIFIGAN_DEFAULTS = {  # HifiDecoder.__init__ defaults (XTTS_FACTS §2): not in config.json
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
}


class ExportError(Exception):
    """A checkpoint that does not match what the exporter expects (message names the key/file)."""


# ---------------------------------------------------------------------------------------------
# Checkpoint reading


def load_config(path: str) -> dict:
    """config.json with Python's json, which accepts the `Infinity`/`NaN` literals XTTS writes."""
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)  # json.loads parses Infinity, -Infinity and NaN by default
    except json.JSONDecodeError as e:
        raise ExportError(f"{path}: not valid JSON (even with Infinity literals): {e}")


def load_state_dict(path: str) -> Dict[str, Tensor]:
    """model.pth → the inference-relevant state dict: "model" entry, `xtts.` prefix stripped."""
    try:
        ckpt = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - name the file whatever torch raised
        raise ExportError(f"{path}: cannot be read by torch.load: {e}")
    if isinstance(ckpt, dict) and "model" in ckpt and isinstance(ckpt["model"], dict):
        sd = ckpt["model"]
    elif isinstance(ckpt, dict) and all(isinstance(v, Tensor) for v in ckpt.values()):
        sd = ckpt
    else:
        raise ExportError(f"{path}: expected a dict with the state dict under 'model'")
    out = {}
    for k, v in sd.items():
        if k.startswith("xtts."):
            k = k[len("xtts."):]
        out[k] = v
    return out


def fold_weight_norm(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Replaces every weight-norm pair by its effective weight w = v * g / ||v|| (norm over all
    dims but 0, torch._weight_norm with dim 0). Both storage styles are accepted."""
    out = dict(sd)
    styles = [(".weight_g", ".weight_v"),
              (".parametrizations.weight.original0", ".parametrizations.weight.original1")]
    for g_suffix, v_suffix in styles:
        for k in list(sd.keys()):
            if not k.endswith(g_suffix):
                continue
            base = k[: -len(g_suffix)]
            vk = base + v_suffix
            if vk not in sd:
                raise ExportError(f"weight norm: '{k}' has no matching '{vk}'")
            g, v = sd[k].float(), sd[vk].float()
            if g.dim() != v.dim() or g.shape[0] != v.shape[0] or g.numel() != v.shape[0]:
                raise ExportError(f"weight norm: '{k}' shape {list(g.shape)} does not fit "
                                  f"'{vk}' shape {list(v.shape)}")
            if base + ".weight" in sd:
                raise ExportError(f"'{base}.weight' is stored both plain and weight-normed")
            out[base + ".weight"] = torch._weight_norm(v, g, 0)
            del out[k]
            del out[vk]
    for k in out:
        if k.endswith(".weight_v") or k.endswith(".parametrizations.weight.original1"):
            raise ExportError(f"weight norm: '{k}' has no matching magnitude (g) key")
    return out


def is_ignored(key: str) -> bool:
    return key.startswith(IGNORED_PREFIXES) or any(p.match(key) for p in IGNORED_PATTERNS)


# ---------------------------------------------------------------------------------------------
# Scriptable modules (parameter names = checkpoint keys)


class Conv1D(nn.Module):
    """GPT-2's Conv1D: weight stored [in, out], y = x @ W + b."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        """A GPT step's few rows go through gemv on the weight's transposed view (linear_rows)."""
        shape = x.shape[:-1] + (self.weight.shape[1],)
        return linear_rows(x.reshape(-1, x.shape[-1]), self.weight.t(), self.bias).view(shape)


class CompressedConv1D(nn.Module):
    """Conv1D with its weight transposed to [out, in] and compressed (--weights): vox::linear."""

    def __init__(self, conv: Conv1D, weights: str):
        super().__init__()
        self.linear = compressed_linear(weights, conv.weight.detach().t(), conv.bias.detach())
        self.n_out = int(conv.weight.shape[1])

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)  # vox::linear takes [..., in] as it is


def gelu_new(x: Tensor) -> Tensor:
    """GPT-2's GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as LibTorch's one fused
    operator: a step used to spend 7 operator calls per layer on it (exporter version 5)."""
    return F.gelu(x, approximate="tanh")


class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.c_attn = Conv1D(d, 3 * d)
        self.c_proj = Conv1D(d, d)
        self.heads = heads
        self.scale = 1.0 / math.sqrt(d // heads)
        self.step_core = StepAttend(heads)
        self.slots_core = SlotsAttend(heads)

    def forward_prefix(self, x: Tensor, past_k: Tensor, past_v: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Rows of a causal prefix after `past` (the keys and values [B,H,P,hd] of the rows before
        them; P may be 0): their attention output and their own keys and values [B,H,T,hd].
        Nothing is written in place here: `condition` uses no block's output, and LibTorch's
        optimising graph executor drops blocks whose only effect is a write into a cache."""
        d = x.shape[-1]
        qkv = self.c_attn(x)
        q, k, v = (split_heads(qkv[..., :d], self.heads), split_heads(qkv[..., d:2 * d], self.heads),
                   split_heads(qkv[..., 2 * d:], self.heads))
        start = past_k.shape[2]
        t = x.shape[1]
        keys = torch.cat([past_k, k], dim=2)
        values = torch.cat([past_v, v], dim=2)
        att = torch.matmul(q, keys.transpose(-1, -2)) * self.scale
        causal = torch.ones(t, start + t, dtype=torch.bool, device=x.device).triu(start + 1)
        att = att.masked_fill(causal, float("-inf"))
        att = torch.softmax(att.float(), dim=-1).to(q.dtype)
        return self.c_proj(merge_heads(torch.matmul(att, values))), k.contiguous(), v.contiguous()

    def forward_step(self, x: Tensor, k_cache: Tensor, v_cache: Tensor, cache_len: int) -> Tensor:
        return self.c_proj(self.step_core(self.c_attn(x), k_cache, v_cache, cache_len, self.scale))

    def forward_step_slots(self, x: Tensor, k_cache: Tensor, v_cache: Tensor, slots: Tensor,
                           cache_lens: Tensor, length: int) -> Tensor:
        """Row b of `x` [B,1,d] belongs to cache slot slots[b] ([S,H,C,hd] caches) with
        cache_lens[b] rows filled: writes its k/v at that row, attends to rows 0..cache_lens[b]
        (keys past a row's own length are masked), `length` = max(cache_lens) + 1."""
        return self.c_proj(self.slots_core(self.c_attn(x), k_cache, v_cache, slots, cache_lens, length,
                                           self.scale))


def split_heads(x: Tensor, heads: int) -> Tensor:  # [B,T,d] -> [B,H,T,hd]
    b, t = x.shape[0], x.shape[1]
    return x.view(b, t, heads, x.shape[2] // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:  # [B,H,T,hd] -> [B,T,d]
    b, t = x.shape[0], x.shape[2]
    return x.transpose(1, 2).reshape(b, t, x.shape[1] * x.shape[3])


def cpu_float32(x: Tensor, k_cache: Tensor) -> bool:
    """Whether a step's attention can go through vox::cache_attend: its activations x (or
    c_attn's output) and caches float32 on CPU."""
    return x.is_cpu and x.dtype == torch.float32 and k_cache.dtype == torch.float32


class StepAttend(nn.Module):
    """A step's self-attention with LibTorch's operators (CUDA, MPS, dtypes other than float32):
    qkv [B,1,3d] (c_attn's output), caches [B,H,C,hd] holding cache_len rows: writes each row's
    key and value at row cache_len and attends to rows 0..cache_len -> [B,1,d], reading no row
    past them. float32 steps on CPU take SlotsAttend's vox::cache_attend, row b in slot b
    (XttsModelBase.step)."""

    def __init__(self, heads: int):
        super().__init__()
        self.heads = heads

    def forward(self, qkv: Tensor, k_cache: Tensor, v_cache: Tensor, cache_len: int, scale: float) -> Tensor:
        d = qkv.shape[-1] // 3
        q = split_heads(qkv[..., :d], self.heads)
        k_cache[:, :, cache_len:cache_len + 1] = split_heads(qkv[..., d:2 * d], self.heads)
        v_cache[:, :, cache_len:cache_len + 1] = split_heads(qkv[..., 2 * d:], self.heads)
        keys = k_cache[:, :, :cache_len + 1]
        values = v_cache[:, :, :cache_len + 1]
        att = torch.matmul(q, keys.transpose(-1, -2)) * scale
        att = torch.softmax(att.float(), dim=-1).to(q.dtype)
        return merge_heads(torch.matmul(att, values))


class SlotsAttend(nn.Module):
    """A step's self-attention for rows in slots: qkv [B,1,3d], caches [S,H,C,hd]; row b writes
    at row cache_lens[b] of slot slots[b] and attends to that slot's rows 0..cache_lens[b] ->
    [B,1,d]; `length` = max(cache_lens) + 1. float32 on CPU through one vox::cache_attend (no
    gathered copy of the caches, no mask over other rows' lengths); elsewhere LibTorch's
    operators gather each row's slot (a copy) and mask keys past cache_lens[b]."""

    def __init__(self, heads: int):
        super().__init__()
        self.heads = heads

    def forward(self, qkv: Tensor, k_cache: Tensor, v_cache: Tensor, slots: Tensor, cache_lens: Tensor,
                length: int, scale: float) -> Tensor:
        if cpu_float32(qkv, k_cache):
            return torch.ops.vox.cache_attend(qkv, k_cache, v_cache, slots, cache_lens, scale)
        d = qkv.shape[-1] // 3
        q = split_heads(qkv[..., :d], self.heads)
        k_cache[slots, :, cache_lens] = split_heads(qkv[..., d:2 * d], self.heads)[:, :, 0]
        v_cache[slots, :, cache_lens] = split_heads(qkv[..., 2 * d:], self.heads)[:, :, 0]
        keys = k_cache.narrow(2, 0, length).index_select(0, slots)
        values = v_cache.narrow(2, 0, length).index_select(0, slots)
        att = torch.matmul(q, keys.transpose(-1, -2)) * scale  # [B,H,1,length]
        past = torch.arange(length, device=q.device).unsqueeze(0) > cache_lens.unsqueeze(1)
        att = att.masked_fill(past.view(past.shape[0], 1, 1, length), float("-inf"))
        att = torch.softmax(att.float(), dim=-1).to(q.dtype)
        return merge_heads(torch.matmul(att, values))


class Mlp(nn.Module):
    def __init__(self, d: int, inner: int):
        super().__init__()
        self.c_fc = Conv1D(d, inner)
        self.c_proj = Conv1D(inner, d)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, d: int, heads: int, inner: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = Attention(d, heads)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = Mlp(d, inner)

    def forward_prefix(self, x: Tensor, past_k: Tensor, past_v: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        a, k, v = self.attn.forward_prefix(self.ln_1(x), past_k, past_v)
        x = x + a
        return x + self.mlp(self.ln_2(x)), k, v

    def forward_step(self, x: Tensor, k_cache: Tensor, v_cache: Tensor, cache_len: int) -> Tensor:
        x = x + self.attn.forward_step(self.ln_1(x), k_cache, v_cache, cache_len)
        return x + self.mlp(self.ln_2(x))

    def forward_step_slots(self, x: Tensor, k_cache: Tensor, v_cache: Tensor, slots: Tensor,
                           cache_lens: Tensor, length: int) -> Tensor:
        x = x + self.attn.forward_step_slots(self.ln_1(x), k_cache, v_cache, slots, cache_lens, length)
        return x + self.mlp(self.ln_2(x))


class Gpt2(nn.Module):
    def __init__(self, d: int, layers: int, heads: int, inner: int):
        super().__init__()
        self.h = nn.ModuleList([Block(d, heads, inner) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)


class PosEmbedding(nn.Module):
    def __init__(self, rows: int, d: int):
        super().__init__()
        self.emb = nn.Embedding(rows, d)


class XttsGpt(nn.Module):
    def __init__(self, d: int, layers: int, heads: int, text_tokens: int, audio_tokens: int,
                 text_pos_rows: int, mel_pos_rows: int):
        super().__init__()
        self.gpt = Gpt2(d, layers, heads, 4 * d)
        self.text_embedding = nn.Embedding(text_tokens, d)
        self.mel_embedding = nn.Embedding(audio_tokens, d)
        self.text_pos_embedding = PosEmbedding(text_pos_rows, d)
        self.mel_pos_embedding = PosEmbedding(mel_pos_rows, d)
        self.final_norm = nn.LayerNorm(d, eps=1e-5)
        self.mel_head = nn.Linear(d, audio_tokens)


class Conv1d(nn.Conv1d):
    """nn.Conv1d that runs in its weight's dtype and returns float32: voxd may hold the vocoder's
    convolutions in bfloat16 (EngineOptions::vocoder_dtype); in float32 the casts do nothing."""

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x.to(self.weight.dtype), self.weight, self.bias).float()


class NativeConv1d(nn.Conv1d):
    """Conv1d's product left in the weight's dtype, for a convolution whose output only feeds
    another one through an element-wise op: in bfloat16 that saves a cast each way, and the
    result is the same (LibTorch's bfloat16 leaky_relu computes in float32 and rounds once, as
    the next convolution's cast did)."""

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x.to(self.weight.dtype), self.weight, self.bias)


class ResBlock1(nn.Module):
    def __init__(self, ch: int, k: int, dilations: List[int]):
        super().__init__()
        self.convs1 = nn.ModuleList([NativeConv1d(ch, ch, k, 1, dilation=d, padding=(k * d - d) // 2)
                                     for d in dilations])
        self.convs2 = nn.ModuleList([Conv1d(ch, ch, k, 1, dilation=1, padding=(k - 1) // 2)
                                     for _ in dilations])

    def forward(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = F.leaky_relu(x, 0.1)
            xt = c1(xt)
            xt = F.leaky_relu(xt, 0.1)
            xt = c2(xt)
            x = xt + x
        return x


class PolyphaseUpsample(nn.Module):
    """ConvTranspose1d(cin, cout, k, stride u, padding p) with k a multiple of u, as one Conv1d of
    u * cout output channels and a reshape: output sample t * u + j - p sums taps j = i * u + (j mod
    u) over inputs t - i, so phase j mod u is an ordinary convolution with k / u taps. LibTorch
    1.13 runs transposed convolutions on CPU as im2col products (slow_conv_transpose2d, 4x slower
    here at XTTS v2's sizes) and ordinary ones on oneDNN, which voxd can also hold in bfloat16.
    Equal to the transposed convolution up to float rounding (summation order)."""

    def __init__(self, up: nn.ConvTranspose1d):
        super().__init__()
        cin, cout, k = up.weight.shape
        u, p = int(up.stride[0]), int(up.padding[0])
        if k % u or up.output_padding[0] or up.dilation[0] != 1 or up.groups != 1 or up.bias is None:
            raise ExportError(f"vocoder: transposed convolution {up} is not one PolyphaseUpsample handles")
        taps = k // u
        self.stride, self.padding, self.kernel, self.out_channels = u, p, int(k), int(cout)
        self.conv = Conv1d(cin, u * cout, taps, padding=taps - 1)
        with torch.no_grad():
            # [cin, cout, k] with j = i * u + phase -> [phase, cout, cin, i], taps reversed in time.
            w = up.weight.detach().float().reshape(cin, cout, taps, u).permute(3, 1, 0, 2).flip(-1)
            self.conv.weight.copy_(w.reshape(u * cout, cin, taps))
            self.conv.bias.copy_(up.bias.detach().float().repeat(u))

    def forward(self, x: Tensor) -> Tensor:
        phases = self.conv(x)  # [B, u * cout, T + taps - 1]: phase-major channels
        b, q = phases.size(0), phases.size(2)
        y = phases.view(b, self.stride, self.out_channels, q).permute(0, 2, 3, 1)
        y = y.reshape(b, self.out_channels, q * self.stride)
        length = (x.size(2) - 1) * self.stride - 2 * self.padding + self.kernel
        return y.narrow(2, self.padding, length)


class WaveformDecoder(nn.Module):
    """Coqui's HifiganGenerator as XTTS uses it (XTTS_FACTS §8), any batch size."""

    def __init__(self, in_dim: int, cond_dim: int, channels: List[int], hp: dict):
        super().__init__()
        rates, ks = hp["upsample_rates"], hp["upsample_kernel_sizes"]
        rks, rds = hp["resblock_kernel_sizes"], hp["resblock_dilations"]
        self.num_kernels = len(rks)
        self.conv_pre = Conv1d(in_dim, channels[0], 7, 1, padding=3)
        self.cond_layer = Conv1d(cond_dim, channels[0], 1)
        self.ups = nn.ModuleList([
            nn.ConvTranspose1d(channels[i], channels[i] // 2, k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(rates, ks))])
        self.resblocks = nn.ModuleList()
        self.conds = nn.ModuleList()
        for i in range(len(rates)):
            ch = channels[i] // 2
            for k, d in zip(rks, rds):
                self.resblocks.append(ResBlock1(ch, k, d))
            self.conds.append(Conv1d(cond_dim, ch, 1))
        self.conv_post = Conv1d(channels[-1] // 2, 1, 7, 1, padding=3, bias=False)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        o = self.conv_pre(x) + self.cond_layer(g)
        for i, (up, cond) in enumerate(zip(self.ups, self.conds)):
            o = F.leaky_relu(o, 0.1)
            o = up(o)
            o = o + cond(g)
            z = torch.zeros_like(o)
            for j, rb in enumerate(self.resblocks):
                if j // self.num_kernels == i:
                    z = z + rb(o)
            o = z / self.num_kernels
        o = F.leaky_relu(o, 0.01)
        return torch.tanh(self.conv_post(o))


class HifiDecoder(nn.Module):
    def __init__(self, in_dim: int, cond_dim: int, channels: List[int], hp: dict):
        super().__init__()
        self.waveform_decoder = WaveformDecoder(in_dim, cond_dim, channels, hp)


def _float32(x: float) -> float:
    """x rounded to float32 (the interpolation kernels' ratio type), as a Python float."""
    return float(torch.tensor(x, dtype=torch.float32).item())


class XttsModelBase(nn.Module):
    """The methods of exporter version 1 (no `step_slots`): what models exported before batched
    steps have. Tests export it to check that engines still run such models."""

    def __init__(self, cfg: dict, channels: List[int], cond_dim: int):
        super().__init__()
        d = cfg["d_model"]
        self.gpt = XttsGpt(d, cfg["layers"], cfg["heads"], cfg["num_text_tokens"],
                           cfg["num_audio_tokens"], cfg["text_pos_rows"], cfg["mel_pos_rows"])
        self.hifigan_decoder = HifiDecoder(d, cond_dim, channels, cfg["hifigan"])
        self.start_text = int(cfg["start_text"])
        self.stop_text = int(cfg["stop_text"])
        self.start_audio = int(cfg["start_audio"])
        self.layers = int(cfg["layers"])
        self.heads = int(cfg["heads"])
        self.head_dim = d // int(cfg["heads"])
        self.hop = int(cfg["hifigan"]["hop_length"])
        self.scale1 = float(cfg["code_stride"]) / float(cfg["hifigan"]["hop_length"])  # 4.0
        self.scale2 = float(cfg["sample_rate"]) / float(cfg["input_sample_rate"])      # 1.088..
        self.resample = int(cfg["sample_rate"]) != int(cfg["input_sample_rate"])

    def _dtype(self) -> torch.dtype:
        """The GPT's activation dtype (its LayerNorms are never compressed)."""
        return self.gpt.final_norm.weight.dtype

    def _head(self, h: Tensor) -> Tuple[Tensor, Tensor]:
        latent = self.gpt.final_norm(self.gpt.gpt.ln_f(h))
        logits = self.gpt.mel_head(latent)
        return logits.float(), latent.float()

    def _text_rows(self, text_ids: Tensor) -> Tensor:
        """The prefix's rows after the conditioning: text_emb([START] + ids + [STOP]) +
        text_pos, then mel_emb(start_audio) + mel_pos(0): [B, T + 3, D]."""
        b, t = text_ids.shape[0], text_ids.shape[1]
        dev = text_ids.device
        start = torch.full([b, 1], self.start_text, dtype=torch.long, device=dev)
        stop = torch.full([b, 1], self.stop_text, dtype=torch.long, device=dev)
        text = torch.cat([start, text_ids, stop], dim=1)
        text_pos = torch.arange(t + 2, device=dev)
        text_emb = self.gpt.text_embedding(text) + self.gpt.text_pos_embedding.emb(text_pos).unsqueeze(0)
        mel = torch.full([b, 1], self.start_audio, dtype=torch.long, device=dev)
        mel_pos = torch.zeros([1], dtype=torch.long, device=dev)
        mel_emb = self.gpt.mel_embedding(mel) + self.gpt.mel_pos_embedding.emb(mel_pos).unsqueeze(0)
        return torch.cat([text_emb, mel_emb], dim=1)

    def _run_prefix(self, x: Tensor, past: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """Rows of the prefix after `past` (2*L keys and values [B,H,P,hd], P may be 0) through
        every block: the last block's output and the rows' own 2*L keys and values."""
        rows: List[Tensor] = []
        for i, block in enumerate(self.gpt.gpt.h):
            x, k, v = block.forward_prefix(x, past[2 * i], past[2 * i + 1])
            rows.append(k)
            rows.append(v)
        return x, rows

    def _no_rows(self, x: Tensor) -> List[Tensor]:
        empty = torch.zeros([x.shape[0], self.heads, 0, self.head_dim], dtype=x.dtype, device=x.device)
        return [empty for _ in range(2 * self.layers)]

    def _caches(self, parts: List[List[Tensor]], capacity: int) -> List[Tensor]:
        """2*L caches [B,H,capacity,hd] holding each part's rows one after the other."""
        kv: List[Tensor] = []
        for i in range(len(parts[0])):
            first = parts[0][i]
            cache = torch.zeros([first.shape[0], first.shape[1], capacity, first.shape[3]],
                                dtype=first.dtype, device=first.device)
            at = 0
            for part in parts:
                rows = part[i].shape[2]
                cache[:, :, at:at + rows] = part[i]
                at += rows
            kv.append(cache)
        return kv

    @torch.jit.export
    def prefix(self, cond_latent: Tensor, text_ids: Tensor, capacity: int
               ) -> Tuple[Tensor, Tensor, List[Tensor]]:
        x = torch.cat([cond_latent.to(self._dtype()), self._text_rows(text_ids)], dim=1)
        p = x.shape[1]
        x, rows = self._run_prefix(x, self._no_rows(x))
        logits, latent = self._head(x[:, -1])
        return logits, latent, self._caches([rows], max(capacity, p))

    @torch.jit.export
    def step(self, codes: Tensor, positions: Tensor, kv: List[Tensor], cache_len: int
             ) -> Tuple[Tensor, Tensor]:
        x = self.gpt.mel_embedding(codes) + self.gpt.mel_pos_embedding.emb(positions)
        if cpu_float32(x, kv[0]):  # one vox::cache_attend per layer, row b in slot b
            b = x.shape[0]
            slots = torch.arange(b, device=x.device)
            lens = torch.full([b], cache_len, dtype=torch.long, device=x.device)
            x = self._blocks_in_slots(x, kv, slots, lens, cache_len + 1)
        else:
            for i, block in enumerate(self.gpt.gpt.h):
                x = block.forward_step(x, kv[2 * i], kv[2 * i + 1], cache_len)
        return self._head(x[:, -1])

    def _blocks_in_slots(self, x: Tensor, kv: List[Tensor], slots: Tensor, cache_lens: Tensor,
                         length: int) -> Tensor:
        """Every block's step for rows x [B,1,d] in slot caches (as `step_slots`)."""
        for i, block in enumerate(self.gpt.gpt.h):
            x = block.forward_step_slots(x, kv[2 * i], kv[2 * i + 1], slots, cache_lens, length)
        return x

    @torch.jit.export
    def interpolate(self, latents: Tensor, speed: float) -> Tensor:
        x = latents.float().transpose(1, 2)
        if speed != 1.0:  # Xtts.inference: length_scale = 1 / max(speed, 0.05)
            x = F.interpolate(x, scale_factor=[1.0 / max(speed, 0.05)], mode="linear", align_corners=False)
        z = F.interpolate(x, scale_factor=[self.scale1], mode="linear", align_corners=False)
        if self.resample:
            z = F.interpolate(z, scale_factor=[self.scale2], mode="linear", align_corners=False)
        return z

    def _lerp_index(self, dst: Tensor, ratio: float, in_len: int) -> Tuple[Tensor, Tensor, Tensor]:
        # torch's CPU linear kernel (XTTS_FACTS §8): src = ratio*(dst+0.5)-0.5 in double with the
        # float32-rounded ratio, clamped at 0; weights applied in float32.
        src = (dst.double() + 0.5) * ratio - 0.5
        src = torch.clamp(src, min=0.0)
        i0 = torch.clamp(torch.floor(src).long(), max=in_len - 1)
        i1 = torch.clamp(i0 + 1, max=in_len - 1)
        w1 = torch.clamp(src - i0.double(), 0.0, 1.0).float()
        return i0, i1, w1

    def _stage(self, dst: Tensor, scale: float, in_len: int) -> Tuple[Tensor, Tensor, Tensor]:
        """Source rows and weight of output frames `dst` of one F.interpolate(scale_factor=scale)
        over `in_len` rows; torch copies when the output length equals the input length."""
        out_len = int(math.floor(float(in_len) * scale))
        if out_len == in_len:
            return dst, dst, torch.zeros(dst.shape, device=dst.device)
        ratio = float(torch.tensor(1.0 / scale, dtype=torch.float32).item())
        return self._lerp_index(dst, ratio, in_len)

    @torch.jit.export
    def interpolate_window(self, latents: Tensor, start: int, count: int, speed: float) -> Tensor:
        n = latents.shape[1]
        dev = latents.device
        s0 = 1.0 / max(speed, 0.05)
        n0 = int(math.floor(float(n) * s0)) if speed != 1.0 else n
        n1 = int(math.floor(float(n0) * self.scale1))
        dst = torch.arange(start, start + count, device=dev)
        if self.resample:
            a, b, w2 = self._stage(dst, self.scale2, n1)
        else:
            a, b, w2 = dst, dst, torch.zeros([count], device=dev)
        i0, i1, w1 = self._stage(torch.cat([a, b]), self.scale1, n0)
        k = torch.cat([i0, i1])
        if speed != 1.0:
            r0, r1, w0 = self._stage(k, s0, n)
        else:
            r0, r1, w0 = k, k, torch.zeros(k.shape, device=dev)
        x = latents.float()
        z0 = x.index_select(1, r0) * (1.0 - w0).view(1, -1, 1) + x.index_select(1, r1) * w0.view(1, -1, 1)
        h = z0.shape[1] // 2
        z1 = z0[:, :h] * (1.0 - w1).view(1, -1, 1) + z0[:, h:] * w1.view(1, -1, 1)
        za, zb = z1[:, :count], z1[:, count:]
        out = za * (1.0 - w2).view(1, -1, 1) + zb * w2.view(1, -1, 1)
        return out.transpose(1, 2).contiguous()

    @torch.jit.export
    def decode_frames(self, frames: Tensor, speaker: Tensor) -> Tensor:
        dt = self.hifigan_decoder.waveform_decoder.conv_pre.weight.dtype
        wav = self.hifigan_decoder.waveform_decoder(frames.to(dt), speaker.to(dt))
        return wav.squeeze(1).float()

    @torch.jit.export
    def vocode(self, latents: Tensor, speaker: Tensor, speed: float) -> Tensor:
        return self.decode_frames(self.interpolate(latents, speed), speaker)

    def forward(self, latents: Tensor, speaker: Tensor) -> Tensor:
        return self.vocode(latents, speaker, 1.0)


class XttsModel(XttsModelBase):
    """The exported module (model.ts). Methods per docs/model-format.md, XTTS."""

    @torch.jit.export
    def step_slots(self, codes: Tensor, positions: Tensor, kv: List[Tensor], slots: Tensor,
                   cache_lens: Tensor, length: int) -> Tuple[Tensor, Tensor]:
        """`step` for B sequences of different lengths sharing slot caches: kv tensors are
        [S,H,C,hd]; row b uses slot slots[b] with cache_lens[b] rows filled (int64 [B]) and
        writes its new k/v at that row; `length` = max(cache_lens) + 1."""
        x = self.gpt.mel_embedding(codes) + self.gpt.mel_pos_embedding.emb(positions)
        return self._head(self._blocks_in_slots(x, kv, slots, cache_lens, length)[:, -1])


    @torch.jit.export
    def condition(self, cond_latent: Tensor) -> List[Tensor]:
        """The keys and values of a voice's conditioning rows, the start of every prefix in that
        voice (no later row changes them): 2*L tensors [B,H,cond_len,hd] for `prefix_conditioned`."""
        x = cond_latent.to(self._dtype())
        _, rows = self._run_prefix(x, self._no_rows(x))
        return rows

    @torch.jit.export
    def prefix_conditioned(self, cond_kv: List[Tensor], text_ids: Tensor, capacity: int
                           ) -> Tuple[Tensor, Tensor, List[Tensor]]:
        """`prefix` from the voice's `condition` keys and values: only the text and start rows run."""
        x = self._text_rows(text_ids)
        p = cond_kv[0].shape[2] + x.shape[1]
        x, rows = self._run_prefix(x, cond_kv)
        logits, latent = self._head(x[:, -1])
        return logits, latent, self._caches([cond_kv, rows], max(capacity, p))


class XttsVoices(nn.Module):
    """voices.ts: row i of each buffer is voice i of the manifest."""

    def __init__(self, cond_latents: Tensor, speaker_embeddings: Tensor):
        super().__init__()
        self.register_buffer("cond_latents", cond_latents)
        self.register_buffer("speaker_embeddings", speaker_embeddings)

    def forward(self, index: int) -> Tuple[Tensor, Tensor]:
        return self.cond_latents[index:index + 1], self.speaker_embeddings[index:index + 1]


# ---------------------------------------------------------------------------------------------
# Configuration from the checkpoint


def _shape(sd: Dict[str, Tensor], key: str, ndim: int) -> List[int]:
    if key not in sd:
        raise ExportError(f"model.pth: key '{key}' missing")
    s = list(sd[key].shape)
    if len(s) != ndim:
        raise ExportError(f"model.pth: key '{key}' has shape {s}, expected {ndim} dims")
    return s


def derive_config(config: dict, sd: Dict[str, Tensor], vocab: dict) -> Tuple[dict, List[int], int]:
    """Model dimensions from config.json (model_args), vocab.json and the weight shapes."""
    args = config.get("model_args")
    if not isinstance(args, dict):
        raise ExportError("config.json: field 'model_args' missing")

    def arg(name):
        if name not in args:
            raise ExportError(f"config.json: field 'model_args.{name}' missing")
        return args[name]

    d = int(arg("gpt_n_model_channels"))
    layers = int(arg("gpt_layers"))
    heads = int(arg("gpt_n_heads"))
    if d % heads:
        raise ExportError(f"config.json: gpt_n_model_channels {d} not divisible by gpt_n_heads {heads}")
    added = {t["content"]: t["id"] for t in vocab.get("added_tokens", [])}
    model_vocab = vocab.get("model", {}).get("vocab", {})
    ids = list(model_vocab.values()) + list(added.values())
    if not ids:
        raise ExportError("vocab.json: field 'model.vocab' missing or empty")

    def tok(name):
        if name in added:
            return int(added[name])
        if name in model_vocab:
            return int(model_vocab[name])
        raise ExportError(f"vocab.json: token '{name}' missing")

    max_audio = int(arg("gpt_max_audio_tokens"))
    max_text = int(arg("gpt_max_text_tokens"))
    cfg = {
        "d_model": d, "layers": layers, "heads": heads,
        "num_audio_tokens": int(arg("gpt_num_audio_tokens")),
        "num_text_tokens": max(ids) + 1,
        "cond_latent_len": 32,
        "text_pos_rows": max_text + 2, "mel_pos_rows": max_audio + 3,
        "start_text": tok("[START]"), "stop_text": tok("[STOP]"),
        "start_audio": int(arg("gpt_start_audio_token")), "stop_audio": int(arg("gpt_stop_audio_token")),
        "space": tok("[SPACE]"), "unk": tok("[UNK]"),
        "max_text_tokens": max_text, "max_generated_codes": max_audio - 3,
        "code_stride": int(arg("gpt_code_stride_len")),
        "input_sample_rate": int(arg("input_sample_rate")),
        "sample_rate": int(arg("output_sample_rate")),
    }
    hop = int(arg("output_hop_length"))
    if cfg["code_stride"] % hop:
        raise ExportError(f"config.json: gpt_code_stride_len {cfg['code_stride']} is not a multiple of "
                          f"output_hop_length {hop}")
    hp = dict(HIFIGAN_DEFAULTS)
    hp["hop_length"] = hop
    prod = 1
    for u in hp["upsample_rates"]:
        prod *= u
    if prod != hop:
        raise ExportError(f"config.json: output_hop_length {hop} != product of the HiFi-GAN "
                          f"upsample rates {hp['upsample_rates']} ({prod})")
    # Channel counts off the weight shapes.
    wd = "hifigan_decoder.waveform_decoder."
    c0, in_dim, _ = _shape(sd, wd + "conv_pre.weight", 3)
    if in_dim != int(arg("decoder_input_dim")) or in_dim != d:
        raise ExportError(f"model.pth: '{wd}conv_pre.weight' input dim {in_dim} != decoder_input_dim "
                          f"{arg('decoder_input_dim')} / gpt_n_model_channels {d}")
    channels = []  # input channels of ups[i]; its output (and resblocks') is half of that
    for i in range(len(hp["upsample_rates"])):
        cin, cout, k = _shape(sd, f"{wd}ups.{i}.weight", 3)
        expected_in = c0 if i == 0 else channels[-1] // 2
        if cin != expected_in or cout * 2 != cin or k != hp["upsample_kernel_sizes"][i]:
            raise ExportError(f"model.pth: '{wd}ups.{i}.weight' has shape {[cin, cout, k]}, expected "
                              f"[{expected_in}, {expected_in // 2}, {hp['upsample_kernel_sizes'][i]}]")
        channels.append(cin)
    cond_dim = _shape(sd, wd + "cond_layer.weight", 3)[1]
    if cond_dim != int(arg("d_vector_dim")):
        raise ExportError(f"model.pth: '{wd}cond_layer.weight' has {cond_dim} input channels != "
                          f"d_vector_dim {arg('d_vector_dim')}")
    cfg["speaker_dim"] = cond_dim
    hp["upsample_initial_channel"] = c0
    hp["receptive_field_frames"] = receptive_field_frames(hp)
    cfg["hifigan"] = hp
    return cfg, channels, cond_dim


def receptive_field_frames(hp: dict) -> int:
    """Frames on each side of a vocoder frame whose inputs can reach its output samples: an upper
    bound summed over conv_pre (k7), each transposed conv (output t reads inputs i with
    0 <= t + p - u*i < k, i.e. at most ceil((k-1-p)/u) inputs away), each stage's widest resblock
    (sum over dilations of (k-1)/2*(d+1) samples) and conv_post (k7), in output samples."""
    hop = hp["hop_length"]
    samples = 3 * hop  # conv_pre, k7 at frame rate
    rate = hop  # output samples per input sample of the current stage
    for u, k in zip(hp["upsample_rates"], hp["upsample_kernel_sizes"]):
        p = (k - u) // 2
        samples += -(-(k - 1 - p) // u) * rate
        rate //= u
        samples += max(sum((rk - 1) // 2 * (dd + 1) for dd in dl)
                       for rk, dl in zip(hp["resblock_kernel_sizes"], hp["resblock_dilations"])) * rate
    samples += 3  # conv_post, k7 at the output rate
    return -(-samples // hop)


def check_and_load(model: XttsModelBase, sd: Dict[str, Tensor]) -> None:
    """Loads `sd` into `model` key by key: every module key must be in the checkpoint with the same
    shape; every checkpoint key must be used or on the ignore list."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise ExportError(f"model.pth: key '{missing[0]}' missing ({len(missing)} missing in all)")
    for k, v in own.items():
        if list(sd[k].shape) != list(v.shape):
            raise ExportError(f"model.pth: key '{k}' has shape {list(sd[k].shape)}, expected {list(v.shape)}")
    unused = [k for k in sd if k not in own and not is_ignored(k)]
    if unused:
        raise ExportError(f"model.pth: unexpected key '{unused[0]}' ({len(unused)} unexpected in all: "
                          f"{', '.join(unused[:5])})")
    model.load_state_dict({k: sd[k].float() for k in own}, strict=True)


def load_voices(path: str, d: int, speaker_dim: int) -> Tuple[List[str], Tensor, Tensor]:
    try:
        speakers = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001
        raise ExportError(f"{path}: cannot be read by torch.load: {e}")
    if not isinstance(speakers, dict) or not speakers:
        raise ExportError(f"{path}: expected a non-empty dict name -> voice")
    names, latents, embs = [], [], []
    for name, v in speakers.items():
        if not isinstance(v, dict) or "gpt_cond_latent" not in v or "speaker_embedding" not in v:
            raise ExportError(f"{path}: voice '{name}' lacks 'gpt_cond_latent'/'speaker_embedding'")
        lat, emb = v["gpt_cond_latent"], v["speaker_embedding"]
        if list(lat.shape) != [1, 32, d]:
            raise ExportError(f"{path}: voice '{name}' gpt_cond_latent shape {list(lat.shape)}, expected [1, 32, {d}]")
        if list(emb.shape) != [1, speaker_dim, 1]:
            raise ExportError(f"{path}: voice '{name}' speaker_embedding shape {list(emb.shape)}, "
                              f"expected [1, {speaker_dim}, 1]")
        names.append(str(name))
        latents.append(lat.float())
        embs.append(emb.float())
    return names, torch.cat(latents), torch.cat(embs)


def file_entry(path: str) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"size": os.path.getsize(path), "sha256": h.hexdigest()}


CLONE_PREFIXES = ("mel_stats", "gpt.conditioning_encoder.", "gpt.conditioning_perceiver.",
                  "hifigan_decoder.speaker_encoder.")


def build_cloner(sd: Dict[str, Tensor], cfg: dict, config: dict
                 ) -> Tuple[Optional[xtts_clone.XttsCloner], Optional[str], dict]:
    """The voice-cloning module (clone.ts) from the checkpoint's cloning-only keys, with the
    cloning settings of config.json (XttsConfig's defaults where absent). Returns (module or None,
    why not, settings). A checkpoint without those keys, or whose speaker encoder does not feed
    the vocoder's speaker width, or that lacks some of them, exports without cloning (the reason
    goes into the manifest); keys that are present must have the shapes the module expects."""
    settings = {k: config.get(k, v) for k, v in CLONE_DEFAULTS.items()}
    for k in ("gpt_cond_len", "gpt_cond_chunk_len", "max_ref_len"):
        if not isinstance(settings[k], int) or isinstance(settings[k], bool):
            raise ExportError(f"config.json: field '{k}' must be an integer (seconds), not {settings[k]!r}")
    if not isinstance(settings["sound_norm_refs"], bool):
        raise ExportError("config.json: field 'sound_norm_refs' must be true or false")
    if settings["gpt_cond_chunk_len"] <= 0:
        raise ExportError("config.json: field 'gpt_cond_chunk_len' must be > 0")
    present = [k for k in sd if k.startswith(CLONE_PREFIXES)]
    if not present:
        return None, "model.pth has none of the cloning weights (mel_stats, gpt.conditioning_*, " \
                     "hifigan_decoder.speaker_encoder.*)", settings
    if not config.get("model_args", {}).get("gpt_use_perceiver_resampler", True):
        return None, "config.json: gpt_use_perceiver_resampler is false (XTTS v1 conditioning)", settings
    cloner = xtts_clone.XttsCloner(cfg["d_model"], cfg["heads"], settings["gpt_cond_len"],
                                   settings["gpt_cond_chunk_len"], settings["max_ref_len"],
                                   settings["sound_norm_refs"])
    own = cloner.state_dict()
    for k, v in own.items():
        if k not in sd:
            missing = [m for m in own if m not in sd]
            return None, (f"model.pth lacks the cloning key '{k}' ({len(missing)} of {len(own)} "
                          f"missing)"), settings
        if list(sd[k].shape) != list(v.shape):
            raise ExportError(f"model.pth: key '{k}' has shape {list(sd[k].shape)}, expected {list(v.shape)}")
    unused = [k for k in present if k not in own]
    if unused:
        raise ExportError(f"model.pth: unexpected cloning key '{unused[0]}' ({len(unused)} in all)")
    proj = int(own["hifigan_decoder.speaker_encoder.fc.weight"].shape[0])
    if proj != cfg["speaker_dim"]:
        return None, (f"the speaker encoder's {proj}-dim embedding does not fit the vocoder's "
                      f"speaker width {cfg['speaker_dim']}"), settings
    cloner.load_state_dict({k: sd[k].float() for k in own}, strict=True)
    cloner.eval()
    return cloner, None, settings


def build_model(checkpoint: str, batched_step: bool = True, with_state: bool = False):
    """Reads the checkpoint directory; returns the loaded eager module, derived config, config.json
    (and the state dict when with_state)."""
    for f in ("model.pth", "config.json", "vocab.json", "speakers_xtts.pth"):
        if not os.path.isfile(os.path.join(checkpoint, f)):
            raise ExportError(f"{checkpoint}: file '{f}' missing")
    config = load_config(os.path.join(checkpoint, "config.json"))
    with open(os.path.join(checkpoint, "vocab.json"), "r", encoding="utf-8") as f:
        vocab = json.load(f)
    sd = fold_weight_norm(load_state_dict(os.path.join(checkpoint, "model.pth")))
    cfg, channels, cond_dim = derive_config(config, sd, vocab)
    model = (XttsModel if batched_step else XttsModelBase)(cfg, channels, cond_dim)
    check_and_load(model, sd)
    model.eval()
    if with_state:
        return model, cfg, config, sd
    return model, cfg, config


def compress_gpt(model: XttsModelBase, weights: str) -> None:
    """Replaces the GPT's Conv1D products and the mel head with their int8 or bfloat16 form, in
    place (the bytes read per code); embeddings, LayerNorms and the vocoder stay float32."""
    for block in model.gpt.gpt.h:
        block.attn.c_attn = CompressedConv1D(block.attn.c_attn, weights)
        block.attn.c_proj = CompressedConv1D(block.attn.c_proj, weights)
        block.mlp.c_fc = CompressedConv1D(block.mlp.c_fc, weights)
        block.mlp.c_proj = CompressedConv1D(block.mlp.c_proj, weights)
    head = model.gpt.mel_head
    model.gpt.mel_head = compressed_linear(weights, head.weight.detach(), head.bias.detach())


def export(checkpoint: str, out: str, dtype: str = "float32", name: Optional[str] = None,
           batched_step: bool = True, weights: Optional[str] = None) -> dict:
    """Exports; batched_step=False leaves `step_slots` and cloning out (exporter version 1's).
    weights: None (the GPT in `dtype`) or one of COMPRESSED_WEIGHTS (needs dtype float32)."""
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise ExportError(f"--dtype '{dtype}' not one of {', '.join(dtypes)}")
    if (problem := check_export(weights, dtype)) is not None:
        raise ExportError(problem)
    model, cfg, config, sd = build_model(checkpoint, batched_step, with_state=True)
    if batched_step:  # exporter version 1 (the tests of old exports) kept the transposed ones
        ups = model.hifigan_decoder.waveform_decoder.ups
        for i in range(len(ups)):
            ups[i] = PolyphaseUpsample(ups[i])
    # Exporter version 1 (batched_step=False, for the tests of old exports) had no cloning.
    cloner, no_clone, clone_settings = build_cloner(sd, cfg, config) if batched_step else (None, None, {})
    del sd
    names, latents, embs = load_voices(os.path.join(checkpoint, "speakers_xtts.pth"),
                                       cfg["d_model"], cfg["speaker_dim"])
    langs = config.get("languages") or config.get("model_args", {}).get("languages")
    if not isinstance(langs, list) or not langs:
        raise ExportError("config.json: field 'languages' missing")
    languages = [{"code": c, "nllb": XTTS_TO_NLLB[c]} for c in langs if c in XTTS_TO_NLLB]
    if not languages:
        raise ExportError(f"config.json: none of the languages {langs} is in the language table")
    os.makedirs(out, exist_ok=True)
    # Only the GPT takes the requested dtype: the HiFi-GAN decoder (~26M parameters in v2) stays
    # float32, which every backend runs; voxd may hold it in bfloat16 at load (vocoder_dtype).
    model.gpt.to(dtypes[dtype])
    if weights is not None:
        compress_gpt(model, weights)
    with torch.no_grad():
        scripted = torch.jit.script(model)
    scripted.save(os.path.join(out, "model.ts"))
    torch.jit.script(XttsVoices(latents, embs)).save(os.path.join(out, "voices.ts"))
    if cloner is not None:
        with torch.no_grad():
            torch.jit.script(cloner).save(os.path.join(out, "clone.ts"))
    elif os.path.exists(os.path.join(out, "clone.ts")):
        os.remove(os.path.join(out, "clone.ts"))
    shutil.copyfile(os.path.join(checkpoint, "vocab.json"), os.path.join(out, "vocab.json"))
    nllb = [l["nllb"] for l in languages]
    hp = dict(cfg["hifigan"])
    manifest = {
        "schema_version": 1,
        "kind": "speech",
        "architecture": "xtts-v2",
        "name": name or os.path.basename(os.path.normpath(out)),
        "dtype": dtype,
        "weights": weights or dtype,
        "exporter": {"name": "export_xtts.py", "version": EXPORTER_VERSION if batched_step else 1,
                     "torch": torch.__version__},
        "source": {"checkpoint": checkpoint, "format": "model.pth"},
        "config": {k: cfg[k] for k in ("d_model", "layers", "heads", "num_audio_tokens", "num_text_tokens",
                                       "cond_latent_len", "speaker_dim", "text_pos_rows", "mel_pos_rows")},
        "special_ids": {k: cfg[k] for k in ("start_text", "stop_text", "start_audio", "stop_audio",
                                            "space", "unk")},
        "tokenizer": {"type": "xtts-bpe", "file": "vocab.json"},
        "languages": languages,
        "voices": [{"name": n, "index": i, "languages": nllb} for i, n in enumerate(names)],
        "sample_rate": cfg["sample_rate"],
        "input_sample_rate": cfg["input_sample_rate"],
        "code_stride": cfg["code_stride"],
        "codes_per_second": cfg["input_sample_rate"] / cfg["code_stride"],
        "samples_per_code": cfg["code_stride"] * cfg["sample_rate"] / cfg["input_sample_rate"],
        "max_text_tokens": cfg["max_text_tokens"],
        "max_generated_codes": cfg["max_generated_codes"],
        "sampling": {
            "temperature": float(config.get("temperature", 0.75)),
            "top_k": int(config.get("top_k", 50)),
            "top_p": float(config.get("top_p", 0.85)),
            "repetition_penalty": float(config.get("repetition_penalty", 5.0)),
        },
        "files": {},
    }
    manifest["config"]["hifigan"] = hp
    if batched_step:
        manifest["cloning"] = cloning_manifest(checkpoint, cloner, no_clone, clone_settings)
    for f in ("model.ts", "voices.ts", "vocab.json") + (("clone.ts",) if cloner is not None else ()):
        manifest["files"][f] = file_entry(os.path.join(out, f))
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return manifest


def cloning_manifest(checkpoint: str, cloner, no_clone: Optional[str], settings: dict) -> dict:
    """The manifest's `cloning` section (docs/model-format.md). voice_model_id names the weights a
    cloned voice belongs to: the checkpoint's model.pth content and clone.ts's computation
    version, so every export of one checkpoint (float32, int8, ...) accepts the same voices."""
    if cloner is None:
        return {"available": False, "reason": no_clone}
    digest = file_entry(os.path.join(checkpoint, "model.pth"))["sha256"]
    return {
        "available": True,
        "file": "clone.ts",
        "version": xtts_clone.CLONE_VERSION,
        "voice_model_id": f"xtts-v2-{digest[:16]}-c{xtts_clone.CLONE_VERSION}",
        "gpt_sample_rate": xtts_clone.GPT_RATE,
        "speaker_sample_rate": xtts_clone.SPEAKER_RATE,
        "min_chunk_seconds": xtts_clone.MIN_CHUNK_SECONDS,
        "gpt_cond_len": settings["gpt_cond_len"],
        "gpt_cond_chunk_len": settings["gpt_cond_chunk_len"],
        "max_ref_len": settings["max_ref_len"],
        "sound_norm_refs": settings["sound_norm_refs"],
        "speaker_dim": int(cloner.hifigan_decoder.speaker_encoder.fc.weight.shape[0]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="XTTS v2 directory (model.pth, config.json, ...)")
    parser.add_argument("--out", required=True, help="output model directory")
    parser.add_argument("--dtype", default="float32", help="float32 | float16 | bfloat16")
    parser.add_argument("--weights", choices=COMPRESSED_WEIGHTS,
                        help="store the GPT's products and mel head in int8 (a scale per output row) "
                             "or bfloat16, run by vox::linear on CPU; needs --dtype float32 and the "
                             "built libvox_torch_ops.so (docs/model-format.md)")
    parser.add_argument("--name", help="model name for the manifest (default: the out dir's name)")
    args = parser.parse_args()
    try:
        m = export(args.checkpoint, args.out, args.dtype, args.name, weights=args.weights)
    except ExportError as e:
        print(f"export_xtts: error: {e}", file=sys.stderr)
        return 1
    print(f"exported {m['name']}: {len(m['voices'])} voices, {len(m['languages'])} languages -> {args.out}")
    if not m.get("cloning", {}).get("available"):
        print(f"export_xtts: note: no voice cloning in this export: {m['cloning']['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
