#!/usr/bin/env python3
"""Exports a Hugging Face NLLB-200 checkpoint (M2M100ForConditionalGeneration) for voxd.

    /usr/bin/python3 tools/export_nllb.py --checkpoint HF_DIR --out MODEL_DIR \\
        [--dtype float32|float16|bfloat16] [--weights int8|bfloat16] [--name NAME]

HF_DIR is a checkpoint directory as published on the hub: config.json, the weights
(model.safetensors, sharded model-0000N-of-0000M.safetensors + model.safetensors.index.json,
pytorch_model.bin, or sharded pytorch_model-0000N-of-0000M.bin + pytorch_model.bin.index.json;
safetensors is preferred when both are present), sentencepiece.bpe.model, and optionally
special_tokens_map.json / tokenizer_config.json (their `additional_special_tokens` give the
language codes; without them the built-in FAIRSEQ_LANGUAGE_CODES list is used).

MODEL_DIR receives model.ts (one TorchScript module: encode / cross_kv / decode_step /
decode_slots, see
docs/model-format.md), sentencepiece.bpe.model and manifest.json. Nothing is downloaded.

How it reads the checkpoint: the modules below are built on the `meta` device (no memory), and
each checkpoint tensor is checked against its parameter's name and shape and assigned into the
module, converted to --dtype, one shard at a time; the shard is then freed. Peak memory is about
one copy of the weights plus one shard. The tied embedding (model.shared.weight) is one
Parameter; model.encoder/decoder.embed_tokens.weight and lm_head.weight, when present, must equal
it and are not stored again.

Exit status 0 on success; 1 with a message naming the file and the key/field on any error.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nllb_languages import FAIRSEQ_LANGUAGE_CODES  # noqa: E402
from compressed_weights import COMPRESSED_WEIGHTS, check_export, compressed_linear, quantize_int8  # noqa: E402
from torchscript_linear import linear_rows  # noqa: E402

EXPORTER_NAME = "export_nllb.py"
# 2: decode_slots; 3: compressed formats attend through vox::attend; 4: float32 few-row products
# on CPU through vox::linear (tools/torchscript_linear.py): every model.ts needs vox's operators;
# 5: float32 products of up to 64 rows through vox::linear; 6: fill_slots; 7: int8 exports
# quantize activations to int8 (INT8_ACTIVATION_BITS), not int16; 8: float32 attends through
# vox::attend on CPU; 9: one product for a self-attention's q, k and v, and one for a
# cross-attention's k and v (Attention.fuse)
EXPORTER_VERSION = 9
# vox::linear's activation_bits for int8 weights: CTranslate2's choice, which halves the AMX
# tile products of a batch or an encoder pass at no cost in agreement with float32 on the peer
# benchmark's texts (docs/benchmarks.md, "int8 activations, the vocoder's upsampling ...").
INT8_ACTIVATION_BITS = 8
# --activation-bits: 7 makes AVX2's batch products a fifth faster for coarser activations
# (docs/benchmarks.md, "7-bit activations").
INT8_ACTIVATION_CHOICES = (8, 7)
SCHEMA_VERSION = 1
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SPM_FILE = "sentencepiece.bpe.model"

# Keys that are copies of model.shared.weight in published checkpoints (tied embeddings).
TIED_ALIASES = ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
                "lm_head.weight")


class ExportError(Exception):
    """A checkpoint the exporter cannot use; the message names the file and the key or field."""


# ----------------------------------------------------------------------------------------------
# Scriptable model. Parameter names map 1:1 onto the checkpoint keys (model.shared.weight,
# model.encoder.layers.N.self_attn.q_proj.weight, ...) until build_model fuses each attention's
# projections of one input (Attention.fuse): self_attn.qkv_proj, encoder_attn.kv_proj.


# Own minimal Linear / LayerNorm / Embedding holders: torch.nn's carry `__constants__` that
# TorchScript emits in hash-set order, which made model.ts differ byte-wise between runs.

class Linear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device), requires_grad=False)
        self.bias = nn.Parameter(torch.empty(out_features, device=device), requires_grad=False) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return linear_rows(x, self.weight, self.bias)


class LayerNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5, device=None):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim, device=device), requires_grad=False)
        self.bias = nn.Parameter(torch.empty(dim, device=device), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, [self.dim], self.weight, self.bias, self.eps)


class Embedding(nn.Module):
    """The tied embedding: token lookups, and the output projection (logits = x @ weight^T)."""

    def __init__(self, num: int, dim: int, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num, dim, device=device), requires_grad=False)

    def lookup(self, ids: Tensor) -> Tensor:
        return F.embedding(ids, self.weight)

    def project(self, x: Tensor) -> Tensor:
        return linear_rows(x, self.weight, None)


class Int8Embedding(nn.Module):
    """The tied embedding in int8 with a scale per token row: lookups dequantize their rows."""

    def __init__(self, emb: Embedding, activation_bits: int):
        super().__init__()
        q, scale = quantize_int8(emb.weight)
        self.weight = nn.Parameter(q, requires_grad=False)
        self.scale = nn.Parameter(scale, requires_grad=False)
        self.activation_bits = activation_bits

    def lookup(self, ids: Tensor) -> Tensor:
        return F.embedding(ids, self.weight).float() * F.embedding(ids, self.scale.unsqueeze(1))

    def project(self, x: Tensor) -> Tensor:
        return torch.ops.vox.linear(x, self.weight, self.scale, None, self.activation_bits)


class Bf16Embedding(nn.Module):
    def __init__(self, emb: Embedding):
        super().__init__()
        self.weight = nn.Parameter(emb.weight.to(torch.bfloat16), requires_grad=False)

    def lookup(self, ids: Tensor) -> Tensor:
        return F.embedding(ids, self.weight).float()

    def project(self, x: Tensor) -> Tensor:
        return torch.ops.vox.linear(x, self.weight, None, None)


class Attention(nn.Module):
    """Loaded as the checkpoint holds it (q_proj, k_proj, v_proj, out_proj), then fused (fuse):
    a self-attention's q, k and v, or a cross-attention's k and v, come from one product, as
    CTranslate2 does: one call and one read of x where there were three, each output row summed
    exactly as before (docs/benchmarks.md, "One product for q, k and v"). Each instance keeps
    only the projections its methods use; TorchScript compiles the methods an instance calls."""

    def __init__(self, d_model: int, heads: int, device=None):
        super().__init__()
        self.heads = heads
        self.head_dim = d_model // heads
        self.scaling = self.head_dim ** -0.5
        self.q_proj = Linear(d_model, d_model, device=device)
        self.k_proj = Linear(d_model, d_model, device=device)
        self.v_proj = Linear(d_model, d_model, device=device)
        self.out_proj = Linear(d_model, d_model, device=device)
        self.core = Attend()

    def fuse(self, cross: bool) -> None:
        """Self-attention: q_proj, k_proj, v_proj -> qkv_proj [3D, D]. Cross-attention: k_proj,
        v_proj -> kv_proj [2D, D] (its query comes from the decoder, its keys from the encoder)."""
        parts = ["k_proj", "v_proj"] if cross else ["q_proj", "k_proj", "v_proj"]
        linears = [getattr(self, name) for name in parts]
        fused = Linear(linears[0].weight.size(1), sum(p.weight.size(0) for p in linears),
                       device=linears[0].weight.device)
        fused.weight = nn.Parameter(torch.cat([p.weight for p in linears]), requires_grad=False)
        fused.bias = nn.Parameter(torch.cat([p.bias for p in linears]), requires_grad=False)
        for name in parts:
            delattr(self, name)
        setattr(self, "kv_proj" if cross else "qkv_proj", fused)

    def split(self, x: Tensor, batch: int) -> Tensor:
        """[B*S, D] (rows may be strided) -> [B, H, S, hd]"""
        return x.view(batch, -1, self.heads, self.head_dim).transpose(1, 2)

    def qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """A fused self-attention's x [B, S, D] -> q (scaled), k, v each [B, H, S, hd]: views of
        one product's columns."""
        b = x.size(0)
        d = self.heads * self.head_dim
        out = self.qkv_proj(x.reshape(-1, x.size(2)))
        return (self.split(out[:, :d] * self.scaling, b), self.split(out[:, d:2 * d], b),
                self.split(out[:, 2 * d:], b))

    def project_kv(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """A fused cross-attention's x [B, S, D] -> k, v each [B, H, S, hd] (views of one
        product's columns)"""
        b = x.size(0)
        d = self.heads * self.head_dim
        out = self.kv_proj(x.reshape(-1, x.size(2)))
        return self.split(out[:, :d], b), self.split(out[:, d:], b)

    def query(self, x: Tensor) -> Tensor:
        b = x.size(0)
        flat = x.reshape(-1, x.size(2))
        return self.split(self.q_proj(flat) * self.scaling, b)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, neg: float) -> Tensor:
        """q [B,H,Sq,hd], k/v [B,H,Sk,hd], key_mask [B,Sk] (1 = real) -> out_proj(...) [B,Sq,D]"""
        out = self.core(q, k, v, key_mask, neg)  # [B,H,Sq,hd]
        b = out.size(0)
        out = out.transpose(1, 2).reshape(-1, self.heads * self.head_dim)
        out = self.out_proj(out)
        return out.view(b, -1, self.heads * self.head_dim)


def plain_attend(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, neg: float) -> Tensor:
    """softmax(q k^T, masked) v with LibTorch's operators: q [B,H,Sq,hd] (scaled), k/v
    [B,H,Sk,hd], key_mask [B,Sk] (1 = real) -> [B,H,Sq,hd].

    On CPU (in a dtype vox::attend does not take) one query per row of 8 rows or more (a
    batch's decoder step) multiplies and sums element-wise: LibTorch 1.13's bmm calls BLAS once
    per (row, head), and those B*H tiny products took 0.9 ms per call at batch 32
    (docs/benchmarks.md, "Batch throughput")."""
    one_query = q.size(2) == 1 and q.size(0) >= 8 and q.device == torch.device("cpu")
    if one_query:
        scores = (q * k).sum(-1).unsqueeze(2)
    else:
        scores = torch.matmul(q, k.transpose(2, 3))
    scores = scores.masked_fill(key_mask.eq(0).view(key_mask.size(0), 1, 1, key_mask.size(1)), neg)
    probs = torch.softmax(scores, dim=-1)
    if one_query:
        return (probs.transpose(2, 3) * v).sum(2, keepdim=True)
    return torch.matmul(probs, v)


class Attend(nn.Module):
    """plain_attend's result; float32 on CPU through vox::attend (engines/torch/ops/attend.h):
    no [B,H,Sq,Sk] temporaries, no per-(row, head) BLAS calls, each (row, head) summed alone
    whatever the batch (docs/benchmarks.md, "float32 attention through vox::attend"). CUDA,
    MPS and other dtypes keep LibTorch's operators."""

    def forward(self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, neg: float) -> Tensor:
        if q.is_cpu and q.dtype == torch.float32:
            return torch.ops.vox.attend(q, k, v, key_mask, neg)
        return plain_attend(q, k, v, key_mask, neg)


class EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int, device=None):
        super().__init__()
        self.self_attn = Attention(d, heads, device)
        self.self_attn_layer_norm = LayerNorm(d, 1e-5, device)
        self.fc1 = Linear(d, ffn, device=device)
        self.fc2 = Linear(ffn, d, device=device)
        self.final_layer_norm = LayerNorm(d, 1e-5, device)

    def ffn(self, x: Tensor) -> Tensor:
        """fc2(relu(fc1(x))) for x [B, S, D], the ReLU in place (a batch's fc1 output is tens of
        MB, and a second buffer that size costs its page faults again). (Each layer class has its own copy: a method
        inherited from a shared base made TorchScript mangle the layer types on a second export
        in one process, and model.ts no longer came out byte-identical.)"""
        return self.fc2(torch.relu_(self.fc1(x.reshape(-1, x.size(2))))).view(x.size(0), -1, x.size(2))

    def forward(self, x: Tensor, mask: Tensor, neg: float) -> Tensor:
        q, k, v = self.self_attn.qkv(self.self_attn_layer_norm(x))
        x = x + self.self_attn.attend(q, k, v, mask, neg)
        h = self.final_layer_norm(x)
        x = x + self.ffn(h)
        if x.dtype == torch.float16:
            # as transformers' M2M100EncoderLayer: keep float16 activations finite
            if bool(torch.isinf(x).any()) or bool(torch.isnan(x).any()):
                x = torch.clamp(x, min=-64504.0, max=64504.0)
        return x


class DecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int, device=None):
        super().__init__()
        self.self_attn = Attention(d, heads, device)
        self.self_attn_layer_norm = LayerNorm(d, 1e-5, device)
        self.encoder_attn = Attention(d, heads, device)
        self.encoder_attn_layer_norm = LayerNorm(d, 1e-5, device)
        self.fc1 = Linear(d, ffn, device=device)
        self.fc2 = Linear(ffn, d, device=device)
        self.final_layer_norm = LayerNorm(d, 1e-5, device)

    def ffn(self, x: Tensor) -> Tensor:
        """As EncoderLayer.ffn."""
        return self.fc2(torch.relu_(self.fc1(x.reshape(-1, x.size(2))))).view(x.size(0), -1, x.size(2))

    def step(self, x: Tensor, q: Tensor, k: Tensor, v: Tensor, self_mask: Tensor, cross_k: Tensor,
             cross_v: Tensor, encoder_mask: Tensor, neg: float) -> Tensor:
        """The layer's decoder step once its self-attention keys and values are in place: q is
        self_attn.qkv(self_attn_layer_norm(x))'s query, k/v what it attends to under self_mask."""
        x = x + self.self_attn.attend(q, k, v, self_mask, neg)
        h = self.encoder_attn_layer_norm(x)
        x = x + self.encoder_attn.attend(self.encoder_attn.query(h), cross_k, cross_v, encoder_mask, neg)
        return x + self.ffn(self.final_layer_norm(x))


class Stack(nn.Module):
    def __init__(self, layers: List[nn.Module], d: int, device=None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.layer_norm = LayerNorm(d, 1e-5, device)


class M2M100Core(nn.Module):
    """Holds the parameters under their checkpoint names: `model.` + shared/encoder/decoder."""

    def __init__(self, cfg: dict, device=None):
        super().__init__()
        d = cfg["d_model"]
        self.shared = Embedding(cfg["vocab_size"], d, device)
        self.encoder = Stack([EncoderLayer(d, cfg["encoder_attention_heads"], cfg["encoder_ffn_dim"], device)
                              for _ in range(cfg["encoder_layers"])], d, device)
        self.decoder = Stack([DecoderLayer(d, cfg["decoder_attention_heads"], cfg["decoder_ffn_dim"], device)
                              for _ in range(cfg["decoder_layers"])], d, device)


def sinusoidal_table(num_positions: int, dim: int, padding_idx: int = 1) -> Tensor:
    """transformers' M2M100SinusoidalPositionalEmbedding.get_embedding, float32:
    [num_positions, dim], [sin | cos] halves, row padding_idx all zero."""
    half = dim // 2
    step = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.int64).float() * -step)
    angles = torch.arange(num_positions, dtype=torch.int64).float().unsqueeze(1) * freqs.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).view(num_positions, -1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(num_positions, 1)], dim=1)
    table[padding_idx, :] = 0
    return table


class NllbModel(nn.Module):
    """The exported module. Methods and shapes: docs/model-format.md (NLLB)."""

    def __init__(self, cfg: dict, dtype: torch.dtype, device=None):
        super().__init__()
        self.model = M2M100Core(cfg, device)
        self.d_model = int(cfg["d_model"])
        self.embed_scale = math.sqrt(self.d_model) if cfg.get("scale_embedding", True) else 1.0
        self.num_decoder_layers = int(cfg["decoder_layers"])
        self.neg = float(torch.finfo(dtype).min)
        # max_position_embeddings + 2 rows (offset 2), as transformers; in the model dtype.
        self.register_buffer("positions_table", sinusoidal_table(
            int(cfg["max_position_embeddings"]) + 2, self.d_model, 1).to(dtype))

    def _embed(self, ids: Tensor, positions: Tensor) -> Tensor:
        x = self.model.shared.lookup(ids) * self.embed_scale
        return x + F.embedding(positions, self.positions_table)

    @torch.jit.export
    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        positions = torch.cumsum(attention_mask, dim=1) * attention_mask + 1
        x = self._embed(input_ids, positions)
        for layer in self.model.encoder.layers:
            x = layer(x, attention_mask, self.neg)
        return self.model.encoder.layer_norm(x)

    @torch.jit.export
    def cross_kv(self, encoder_out: Tensor) -> List[Tensor]:
        out: List[Tensor] = []
        for layer in self.model.decoder.layers:
            k, v = layer.encoder_attn.project_kv(encoder_out)
            out.append(k)
            out.append(v)
        return out

    def _logits(self, x: Tensor) -> Tensor:
        x = self.model.decoder.layer_norm(x)
        return self.model.shared.project(x.reshape(-1, self.d_model)).float()

    @torch.jit.export
    def decode_step(self, input_ids: Tensor, positions: Tensor, self_kv: List[Tensor], self_mask: Tensor,
                    cross_kv: List[Tensor], encoder_mask: Tensor) -> Tuple[Tensor, List[Tensor]]:
        x = self._embed(input_ids, positions)  # [B, 1, D]
        new_kv: List[Tensor] = []
        i = 0
        for layer in self.model.decoder.layers:
            q, k, v = layer.self_attn.qkv(layer.self_attn_layer_norm(x))
            k = torch.cat([self_kv[2 * i], k], dim=2)
            v = torch.cat([self_kv[2 * i + 1], v], dim=2)
            new_kv.append(k)
            new_kv.append(v)
            x = layer.step(x, q, k, v, self_mask, cross_kv[2 * i], cross_kv[2 * i + 1], encoder_mask, self.neg)
            i += 1
        return self._logits(x), new_kv

    @torch.jit.export
    def decode_slots(self, input_ids: Tensor, cache_lens: Tensor, length: int, self_kv: List[Tensor],
                     rows: Optional[Tensor], cross_kv: List[Tensor], encoder_mask: Tensor) -> Tensor:
        """One decoder step over caches preallocated by the caller and written in place: row b's
        token sits at column cache_lens[b] of its cache row (its position is 2 + cache_lens[b]),
        and it attends to columns 0..cache_lens[b]; `length` > max(cache_lens) bounds the columns
        read. Cache row of batch row b: rows[b], or b when rows is None (then no cache is copied:
        pass views holding exactly the batch's rows)."""
        x = self._step_slots(input_ids, cache_lens, length, self_kv, rows, cross_kv, encoder_mask, True)
        return self._logits(x)

    @torch.jit.export
    def fill_slots(self, input_ids: Tensor, cache_lens: Tensor, length: int, self_kv: List[Tensor],
                   rows: Optional[Tensor], cross_kv: List[Tensor], encoder_mask: Tensor) -> None:
        """decode_slots for a token whose next-token logits nobody reads (the forced decoder start):
        writes the same cache columns, but skips the output projection and what follows the last
        layer's queries, keys and values."""
        self._step_slots(input_ids, cache_lens, length, self_kv, rows, cross_kv, encoder_mask, False)

    def _step_slots(self, input_ids: Tensor, cache_lens: Tensor, length: int, self_kv: List[Tensor],
                    rows: Optional[Tensor], cross_kv: List[Tensor], encoder_mask: Tensor,
                    whole_last_layer: bool) -> Tensor:
        b = input_ids.size(0)
        x = self._embed(input_ids, (cache_lens + 2).view(b, 1))
        index = torch.arange(b, device=input_ids.device) if rows is None else rows
        self_mask = (torch.arange(length, device=input_ids.device).unsqueeze(0) <= cache_lens.unsqueeze(1)).long()
        if rows is not None:
            encoder_mask = encoder_mask.index_select(0, rows)
        i = 0
        n = len(self.model.decoder.layers)
        for layer in self.model.decoder.layers:
            q, k, v = layer.self_attn.qkv(layer.self_attn_layer_norm(x))
            k_cache, v_cache = self_kv[2 * i], self_kv[2 * i + 1]
            k_cache[index, :, cache_lens] = k[:, :, 0]
            v_cache[index, :, cache_lens] = v[:, :, 0]
            if whole_last_layer or i < n - 1:  # (a loop over a ModuleList cannot break)
                keys, values = k_cache.narrow(2, 0, length), v_cache.narrow(2, 0, length)
                cross_k, cross_v = cross_kv[2 * i], cross_kv[2 * i + 1]
                if rows is not None:
                    keys, values = keys.index_select(0, rows), values.index_select(0, rows)
                    cross_k, cross_v = cross_k.index_select(0, rows), cross_v.index_select(0, rows)
                x = layer.step(x, q, keys, values, self_mask, cross_k, cross_v, encoder_mask, self.neg)
            i += 1
        return x

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.encode(input_ids, attention_mask)


# ----------------------------------------------------------------------------------------------
# Reading the checkpoint.

REQUIRED_CONFIG = ("d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
                   "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "vocab_size",
                   "max_position_embeddings")


def read_config(checkpoint: str) -> dict:
    path = os.path.join(checkpoint, "config.json")
    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing (an NLLB checkpoint directory has config.json)")
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    for key in REQUIRED_CONFIG:
        if not isinstance(cfg.get(key), int) or cfg[key] <= 0:
            raise ExportError(f"{path}: field {key!r} must be a positive integer, got {cfg.get(key)!r}")
    if cfg.get("model_type", "m2m_100") != "m2m_100":
        raise ExportError(f"{path}: model_type {cfg['model_type']!r} is not supported; allowed: 'm2m_100'")
    if cfg.get("activation_function", "relu") != "relu":
        raise ExportError(f"{path}: activation_function {cfg['activation_function']!r} is not "
                          f"supported; allowed: 'relu'")
    if cfg.get("tie_word_embeddings", True) is not True:
        raise ExportError(f"{path}: tie_word_embeddings must be true (NLLB ties lm_head to model.shared)")
    expected = {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2}
    for key, value in expected.items():
        if cfg.get(key, value) != value:
            raise ExportError(f"{path}: {key} is {cfg[key]!r}; NLLB uses {value}")
    for side in ("encoder", "decoder"):
        if cfg["d_model"] % cfg[f"{side}_attention_heads"]:
            raise ExportError(f"{path}: d_model {cfg['d_model']} is not divisible by "
                              f"{side}_attention_heads {cfg[f'{side}_attention_heads']}")
    if cfg["d_model"] % 2:
        raise ExportError(f"{path}: d_model {cfg['d_model']} must be even")
    return cfg


def _shard_list(checkpoint: str, index_name: str) -> List[str]:
    path = os.path.join(checkpoint, index_name)
    with open(path, encoding="utf-8") as f:
        index = json.load(f)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ExportError(f"{path}: no 'weight_map' object")
    shards = sorted(set(weight_map.values()))
    for s in shards:
        if not os.path.isfile(os.path.join(checkpoint, s)):
            raise ExportError(f"{path}: names shard {s!r}, which is missing from {checkpoint}")
    return shards


def find_weights(checkpoint: str) -> Tuple[str, List[str]]:
    """Returns (format, [files]) where format is 'safetensors' or 'pytorch_model.bin'."""
    def has(name):
        return os.path.isfile(os.path.join(checkpoint, name))
    if has("model.safetensors"):
        return "model.safetensors", ["model.safetensors"]
    if has("model.safetensors.index.json"):
        return "model.safetensors (sharded)", _shard_list(checkpoint, "model.safetensors.index.json")
    if has("pytorch_model.bin"):
        return "pytorch_model.bin", ["pytorch_model.bin"]
    if has("pytorch_model.bin.index.json"):
        return "pytorch_model.bin (sharded)", _shard_list(checkpoint, "pytorch_model.bin.index.json")
    raise ExportError(f"{checkpoint}: no weights found; expected one of model.safetensors, "
                      f"model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json")


def _load_safetensors(path: str) -> Dict[str, Tensor]:
    try:
        from safetensors.torch import load_file  # type: ignore
    except ImportError:
        from safetensors_reader import load_file
    return load_file(path)


def iter_shards(checkpoint: str, files: List[str]) -> Iterator[Tuple[str, Dict[str, Tensor]]]:
    for name in files:
        path = os.path.join(checkpoint, name)
        try:
            if name.endswith(".safetensors"):
                sd = _load_safetensors(path)
            else:
                try:
                    sd = torch.load(path, map_location="cpu", weights_only=True)
                except TypeError:  # torch without weights_only
                    sd = torch.load(path, map_location="cpu")
        except ExportError:
            raise
        except Exception as e:  # noqa: BLE001 - any reader failure names the file
            raise ExportError(f"{path}: cannot read weights: {e}") from None
        if not isinstance(sd, dict):
            raise ExportError(f"{path}: holds {type(sd).__name__}, not a state dict")
        yield path, sd
        del sd


def _set_param(module: nn.Module, key: str, value: Tensor) -> None:
    owner = module
    parts = key.split(".")
    for p in parts[:-1]:
        owner = getattr(owner, p)
    setattr(owner, parts[-1], nn.Parameter(value, requires_grad=False))


def build_model(cfg: dict, shards: Iterator[Tuple[str, Dict[str, Tensor]]], dtype: torch.dtype,
                log=print) -> Tuple[NllbModel, List[str]]:
    """Builds NllbModel from checkpoint shards. Returns (model, unexpected keys).
    Raises ExportError naming the key for a missing or mis-shaped tensor."""
    with torch.no_grad():
        # parameters on `meta` (no memory); the position table is a real CPU buffer
        model = NllbModel(cfg, dtype, device="meta")
    expected = {k: tuple(p.shape) for k, p in model.named_parameters()}
    loaded = set()
    unexpected: List[str] = []
    aliases: Dict[str, Tuple[str, Tensor]] = {}
    for path, sd in shards:
        for key in list(sd.keys()):
            t = sd.pop(key)
            if key in TIED_ALIASES:
                aliases[key] = (path, t)
                continue
            if key not in expected:
                unexpected.append(key)
                continue
            if not torch.is_tensor(t):
                raise ExportError(f"{path}: key {key!r} is not a tensor")
            if tuple(t.shape) != expected[key]:
                raise ExportError(f"{path}: key {key!r} has shape {list(t.shape)}, expected "
                                  f"{list(expected[key])} (from config.json)")
            if not t.is_floating_point():
                raise ExportError(f"{path}: key {key!r} has dtype {t.dtype}, expected a float tensor")
            _set_param(model, key, t.to(dtype).contiguous())
            loaded.add(key)
            del t
        # compare the tied copies as soon as model.shared.weight is in
        if "model.shared.weight" in loaded:
            _check_aliases(model, aliases)
    missing = [k for k in expected if k not in loaded]
    if "model.shared.weight" in missing:
        # A checkpoint may store the embedding under one of its tied names only.
        for alias in TIED_ALIASES:
            if alias in aliases:
                path, t = aliases.pop(alias)
                if tuple(t.shape) != expected["model.shared.weight"]:
                    raise ExportError(f"{path}: key {alias!r} has shape {list(t.shape)}, expected "
                                      f"{list(expected['model.shared.weight'])}")
                _set_param(model, "model.shared.weight", t.to(dtype).contiguous())
                missing.remove("model.shared.weight")
                _check_aliases(model, aliases)
                break
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ExportError(f"checkpoint is missing key {missing[0]!r}{more}; missing: "
                          f"{', '.join(missing[:10])}")
    if unexpected:
        log(f"export_nllb.py: note: {len(unexpected)} unexpected checkpoint keys ignored: "
            f"{', '.join(unexpected[:10])}{' ...' if len(unexpected) > 10 else ''}")
    for layer in model.model.encoder.layers:
        layer.self_attn.fuse(cross=False)
    for layer in model.model.decoder.layers:
        layer.self_attn.fuse(cross=False)
        layer.encoder_attn.fuse(cross=True)
    model.eval()
    return model, unexpected


def _check_aliases(model: NllbModel, aliases: Dict[str, Tuple[str, Tensor]]) -> None:
    shared = model.model.shared.weight
    for alias in list(aliases):
        path, t = aliases.pop(alias)
        if tuple(t.shape) != tuple(shared.shape):
            raise ExportError(f"{path}: key {alias!r} has shape {list(t.shape)}, expected "
                              f"{list(shared.shape)} (tied to model.shared.weight)")
        if not torch.equal(t.to(shared.dtype), shared):
            raise ExportError(f"{path}: key {alias!r} differs from model.shared.weight; untied "
                              f"embeddings are not supported (NLLB ties them)")


# ----------------------------------------------------------------------------------------------
# Tokenizer and languages.

def read_language_codes(checkpoint: str) -> Tuple[List[str], str]:
    """Language codes in token order and where they came from."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = os.path.join(checkpoint, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        tokens = data.get("additional_special_tokens")
        if not tokens:
            continue
        codes = []
        for t in tokens:
            code = t.get("content") if isinstance(t, dict) else t
            if not isinstance(code, str) or len(code) != 8 or code[3] != "_":
                raise ExportError(f"{path}: additional_special_tokens holds {code!r}, not a language "
                                  f"code like 'eng_Latn'")
            codes.append(code)
        if len(set(codes)) != len(codes):
            raise ExportError(f"{path}: additional_special_tokens lists a language code twice")
        return codes, name
    return list(FAIRSEQ_LANGUAGE_CODES), "built-in FAIRSEQ_LANGUAGE_CODES"


def read_explicit_ids(checkpoint: str) -> Tuple[Dict[str, int], str]:
    """Token ids the checkpoint's tokenizer files state explicitly: tokenizer.json's
    `added_tokens` [{"id", "content"}] or tokenizer_config.json's `added_tokens_decoder`
    {"id": {"content"}}. The hub's NLLB checkpoints carry them; transformers uses them as given."""
    path = os.path.join(checkpoint, "tokenizer.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        found = {t["content"]: int(t["id"]) for t in data.get("added_tokens") or []
                 if isinstance(t, dict) and "content" in t and "id" in t}
        if found:
            return found, "tokenizer.json"
    path = os.path.join(checkpoint, "tokenizer_config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        decoder = data.get("added_tokens_decoder") or {}
        found = {t["content"]: int(i) for i, t in decoder.items() if isinstance(t, dict) and "content" in t}
        if found:
            return found, "tokenizer_config.json"
    return {}, ""


def language_ids(checkpoint: str, codes: List[str], n_pieces: int, vocab_size: int) -> Tuple[List[int], str]:
    """Ids of `codes`: the ones the tokenizer files state when they state them for every code,
    else transformers' rule spm_size + 1 + index. Raises ExportError for a partial or
    inconsistent list."""
    explicit, where = read_explicit_ids(checkpoint)
    stated = [c for c in codes if c in explicit]
    if not stated:
        return [n_pieces + 1 + i for i in range(len(codes))], "rule: spm_size + 1 + index"
    path = os.path.join(checkpoint, where)
    if len(stated) != len(codes):
        missing = [c for c in codes if c not in explicit]
        raise ExportError(f"{path}: gives ids for {len(stated)} of {len(codes)} language codes; "
                          f"missing e.g. {missing[:3]}")
    ids = [explicit[c] for c in codes]
    if len(set(ids)) != len(ids):
        raise ExportError(f"{path}: two language codes share an id")
    for c, i in zip(codes, ids):
        if not n_pieces < i < vocab_size:
            raise ExportError(f"{path}: {c} has id {i}, outside the language range "
                              f"({n_pieces}, {vocab_size}) of this model")
    return ids, where


def spm_size(path: str) -> int:
    """Number of pieces in a SentencePiece model: the sentencepiece Python module, else the
    spm_export_vocab command (Debian/Homebrew package sentencepiece)."""
    try:
        import sentencepiece as spm
    except ImportError:
        spm = None
    if spm is not None:
        sp = spm.SentencePieceProcessor()
        try:
            sp.Load(path)
        except Exception as e:  # noqa: BLE001
            raise ExportError(f"{path}: not a SentencePiece model: {e}") from None
        return sp.GetPieceSize()
    import subprocess
    try:
        out = subprocess.run(["spm_export_vocab", f"--model={path}"], capture_output=True, check=True).stdout
    except FileNotFoundError:
        raise ExportError("reading the SentencePiece model needs the sentencepiece Python module "
                          "(Debian: python3-sentencepiece) or the spm_export_vocab command") from None
    except subprocess.CalledProcessError as e:
        raise ExportError(f"{path}: not a SentencePiece model: {e.stderr.decode(errors='replace')}") from None
    return len(out.splitlines())


def file_digest(path: str) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"size": os.path.getsize(path), "sha256": h.hexdigest()}


# ----------------------------------------------------------------------------------------------

def compress_weights(model: NllbModel, weights: str, activation_bits: int = INT8_ACTIVATION_BITS) -> None:
    """Replaces linears and the tied embedding (lookups and output projection) with their int8
    or bfloat16 form, in place. int8 takes every linear: vox::linear's int8 matrix kernel beats
    float32 GEMM on the encoder's many rows; its activations are quantized to activation_bits.
    bfloat16 takes the decoder's only: its kernel is for a few rows, and the encoder stays in
    the model dtype."""
    def make_linear(linear: Linear) -> nn.Module:
        return compressed_linear(weights, linear.weight, linear.bias, activation_bits)

    layers = list(model.model.decoder.layers)
    if weights == "int8":
        layers += list(model.model.encoder.layers)
    for layer in layers:
        attns = [layer.self_attn] + ([layer.encoder_attn] if hasattr(layer, "encoder_attn") else [])
        for attn in attns:
            for proj in ("qkv_proj", "q_proj", "kv_proj", "out_proj"):
                if hasattr(attn, proj):
                    setattr(attn, proj, make_linear(getattr(attn, proj)))
        layer.fc1 = make_linear(layer.fc1)
        layer.fc2 = make_linear(layer.fc2)
    model.model.shared = (Int8Embedding(model.model.shared, activation_bits) if weights == "int8"
                          else Bf16Embedding(model.model.shared))


def export(checkpoint: str, out: str, dtype_name: str = "float32", name: Optional[str] = None,
           log=print, weights: Optional[str] = None, activation_bits: Optional[int] = None) -> dict:
    """Exports CHECKPOINT into OUT; returns the manifest written. Raises ExportError.
    weights: None (the weights in dtype_name) or one of COMPRESSED_WEIGHTS; activation_bits:
    int8's, one of INT8_ACTIVATION_CHOICES (default INT8_ACTIVATION_BITS)."""
    if dtype_name not in DTYPES:
        raise ExportError(f"unknown dtype {dtype_name!r}; allowed: {', '.join(DTYPES)}")
    dtype = DTYPES[dtype_name]
    if (problem := check_export(weights, dtype_name)) is not None:
        raise ExportError(problem)
    if activation_bits is not None and weights != "int8":
        raise ExportError("activation bits are chosen for int8 weights only (--weights int8)")
    if activation_bits is None:
        activation_bits = INT8_ACTIVATION_BITS
    if activation_bits not in INT8_ACTIVATION_CHOICES:
        raise ExportError(f"activation bits {activation_bits}: allowed "
                          f"{', '.join(map(str, INT8_ACTIVATION_CHOICES))}")
    t0 = time.time()
    cfg = read_config(checkpoint)
    spm_path = os.path.join(checkpoint, SPM_FILE)
    if not os.path.isfile(spm_path):
        raise ExportError(f"{spm_path}: missing (the NLLB tokenizer)")
    n_pieces = spm_size(spm_path)
    codes, codes_source = read_language_codes(checkpoint)
    needed = n_pieces + 1 + len(codes)
    if cfg["vocab_size"] < needed:
        raise ExportError(f"{os.path.join(checkpoint, 'config.json')}: vocab_size {cfg['vocab_size']} is "
                          f"smaller than SentencePiece size {n_pieces} + 1 + {len(codes)} language codes")
    lang_ids, lang_ids_from = language_ids(checkpoint, codes, n_pieces, cfg["vocab_size"])
    rule = [n_pieces + 1 + i for i in range(len(codes))]
    if lang_ids != rule:
        log(f"export_nllb.py: note: {lang_ids_from} gives language ids other than spm_size + 1 + index "
            f"(e.g. {codes[0]} {lang_ids[0]} instead of {rule[0]}); using the file's")
    fmt, files = find_weights(checkpoint)
    model, unexpected = build_model(cfg, iter_shards(checkpoint, files), dtype, log)
    if weights is not None:
        compress_weights(model, weights, activation_bits)
    scripted = torch.jit.script(model)
    del model

    os.makedirs(out, exist_ok=True)
    ts_path = os.path.join(out, "model.ts")
    tmp = ts_path + ".tmp"
    scripted.save(tmp)
    os.replace(tmp, ts_path)
    del scripted
    shutil.copyfile(spm_path, os.path.join(out, SPM_FILE))

    max_pos = cfg["max_position_embeddings"]
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "kind": "translation",
        "architecture": "nllb-m2m100",
        "name": name or os.path.basename(os.path.normpath(checkpoint)),
        "dtype": dtype_name,
        "weights": weights or dtype_name,
        **({"activation_bits": activation_bits} if weights == "int8" else {}),
        "exporter": {"name": EXPORTER_NAME, "version": EXPORTER_VERSION, "torch": torch.__version__},
        "source": {"checkpoint": checkpoint, "format": fmt, "weights": files,
                   "languages_from": codes_source, "language_ids_from": lang_ids_from,
                   "unexpected_keys": unexpected},
        "config": {k: cfg[k] for k in REQUIRED_CONFIG},
        "special_ids": {"bos": 0, "pad": 1, "eos": 2, "unk": 3, "decoder_start": 2},
        "tokenizer": {"type": "sentencepiece", "file": SPM_FILE, "spm_size": n_pieces,
                      "fairseq_offset": 1},
        "languages": [{"code": c, "id": i} for c, i in zip(codes, lang_ids)],
        "max_source_tokens": max_pos,
        "default_max_length": min(200, max_pos - 2),
        "files": {f: file_digest(os.path.join(out, f)) for f in ("model.ts", SPM_FILE)},
    }
    manifest["config"]["scale_embedding"] = bool(cfg.get("scale_embedding", True))
    with open(os.path.join(out, "manifest.json.tmp"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(os.path.join(out, "manifest.json.tmp"), os.path.join(out, "manifest.json"))
    log(f"export_nllb.py: wrote {out} ({dtype_name}, weights {manifest['weights']}, {manifest['files']['model.ts']['size']} bytes "
        f"model.ts) in {time.time() - t0:.1f} s")
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="Hugging Face checkpoint directory")
    parser.add_argument("--out", required=True, help="exported model directory to write")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES),
                        help="weights dtype in model.ts (logits are always float32)")
    parser.add_argument("--weights", choices=COMPRESSED_WEIGHTS,
                        help="store every linear and the tied embedding / output projection in int8 "
                             "(a scale per output row), or the decoder's and the embedding in bfloat16, "
                             "run by vox::linear on CPU; needs "
                             "--dtype float32 and the built libvox_torch_ops.so (docs/model-format.md)")
    parser.add_argument("--activation-bits", type=int, choices=INT8_ACTIVATION_CHOICES,
                        help=f"with --weights int8: the bits each linear's input is quantized to per row "
                             f"(default {INT8_ACTIVATION_BITS}; 7 makes batches faster on CPUs without "
                             f"AVX-512 VNNI, docs/model-format.md)")
    parser.add_argument("--name", help="model name for the manifest (default: checkpoint dir name)")
    args = parser.parse_args(argv)
    try:
        export(args.checkpoint, args.out, args.dtype, args.name, weights=args.weights,
               activation_bits=args.activation_bits)
    except ExportError as e:
        print(f"export_nllb.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
