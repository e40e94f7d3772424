#!/usr/bin/env python3
"""Python eager reference for NLLB-200 (M2M100ForConditionalGeneration) and the decoding rules of
docs/model-format.md, used to make golden outputs and to check exported models.

Two independent model implementations share one interface (the one model.ts exports):
  * ReferenceModel: eager PyTorch written the way transformers runs it (nn.Linear / nn.LayerNorm
    modules, scaled queries, additive finfo.min masks, KV cache, lm_head tied to model.shared),
    loaded straight from a checkpoint directory. This is the reference; it shares no model code
    with tools/export_nllb.py.
  * TorchScriptModel: an exported model.ts loaded with torch.jit.load.
Both have encode(ids, mask), cross_kv(enc), decode_step(ids, positions, self_kv, self_mask,
cross_kv, enc_mask) with the shapes of docs/model-format.md.

Decoding (batch of one; exactly the rules of docs/model-format.md):
  greedy(model, src_ids, tgt_id, max_length, fixed_length=False) -> GreedyResult
  beam_search(model, src_ids, tgt_id, beam_size, length_penalty, max_length) -> BeamResult
Tokenizer(spm_path, spm_size, codes): encode(text, src_lang) -> ids; decode(ids) -> text.

Command line (prints one JSON line per text):
  /usr/bin/python3 tools/nllb_reference.py --checkpoint HF_DIR [--model MODEL_DIR] \\
      --source eng_Latn --target fra_Latn [--beam N] [--length-penalty LP] [--max-length N] TEXT...
"""
import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

EOS = 2
PAD = 1
UNK = 3
DECODER_START = 2


# ----------------------------------------------------------------------------------------------
# Tokenizer (transformers' NllbTokenizer rules: fairseq offset 1, spm unk -> 3, no BOS).

class Tokenizer:
    def __init__(self, spm_path: str, codes: List[str]):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor()
        self.sp.Load(spm_path)
        self.spm_size = self.sp.GetPieceSize()
        self.codes = list(codes)
        self.lang_ids = {c: self.spm_size + 1 + i for i, c in enumerate(self.codes)}

    def lang_id(self, code: str) -> int:
        if code not in self.lang_ids:
            raise KeyError(f"unknown language {code!r}")
        return self.lang_ids[code]

    def pieces(self, text: str) -> List[int]:
        return [p + 1 if p != 0 else UNK for p in self.sp.EncodeAsIds(text)]

    def encode(self, text: str, src_lang: str) -> List[int]:
        """[src_lang] + pieces + [</s>]"""
        return [self.lang_id(src_lang)] + self.pieces(text) + [EOS]

    def decode(self, ids: List[int]) -> str:
        """Drops special ids (< 4, language codes, <mask>, padding rows) and detokenizes with
        SentencePiece (the C++ engine uses the same library)."""
        keep = [i - 1 for i in ids if 4 <= i <= self.spm_size]
        return self.sp.DecodeIds(keep)


# ----------------------------------------------------------------------------------------------
# Eager reference model, transformers style.

class RefAttention(nn.Module):
    def __init__(self, d: int, heads: int, dev=None):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.scaling = self.head_dim ** -0.5
        self.q_proj = nn.Linear(d, d, device=dev)
        self.k_proj = nn.Linear(d, d, device=dev)
        self.v_proj = nn.Linear(d, d, device=dev)
        self.out_proj = nn.Linear(d, d, device=dev)

    def _shape(self, x: Tensor) -> Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2).contiguous()

    def kv(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        return self._shape(self.k_proj(x)), self._shape(self.v_proj(x))

    def forward(self, x: Tensor, k: Tensor, v: Tensor, additive_mask: Tensor) -> Tensor:
        b, s, d = x.shape
        q = self._shape(self.q_proj(x) * self.scaling)  # [B,H,s,hd]
        h = self.heads
        weights = torch.bmm(q.reshape(b * h, s, -1), k.reshape(b * h, k.size(2), -1).transpose(1, 2))
        weights = weights.view(b, h, s, -1) + additive_mask
        probs = F.softmax(weights, dim=-1)
        out = torch.bmm(probs.view(b * h, s, -1), v.reshape(b * h, v.size(2), -1))
        out = out.view(b, h, s, self.head_dim).transpose(1, 2).reshape(b, s, d)
        return self.out_proj(out)


class RefEncoderLayer(nn.Module):
    def __init__(self, d, heads, ffn, dev=None):
        super().__init__()
        self.self_attn = RefAttention(d, heads, dev)
        self.self_attn_layer_norm = nn.LayerNorm(d, device=dev)
        self.fc1 = nn.Linear(d, ffn, device=dev)
        self.fc2 = nn.Linear(ffn, d, device=dev)
        self.final_layer_norm = nn.LayerNorm(d, device=dev)

    def forward(self, x, mask):
        residual = x
        h = self.self_attn_layer_norm(x)
        k, v = self.self_attn.kv(h)
        x = residual + self.self_attn(h, k, v, mask)
        residual = x
        x = residual + self.fc2(F.relu(self.fc1(self.final_layer_norm(x))))
        if x.dtype == torch.float16 and (torch.isinf(x).any() or torch.isnan(x).any()):
            c = torch.finfo(x.dtype).max - 1000
            x = torch.clamp(x, min=-c, max=c)
        return x


class RefDecoderLayer(nn.Module):
    def __init__(self, d, heads, ffn, dev=None):
        super().__init__()
        self.self_attn = RefAttention(d, heads, dev)
        self.self_attn_layer_norm = nn.LayerNorm(d, device=dev)
        self.encoder_attn = RefAttention(d, heads, dev)
        self.encoder_attn_layer_norm = nn.LayerNorm(d, device=dev)
        self.fc1 = nn.Linear(d, ffn, device=dev)
        self.fc2 = nn.Linear(ffn, d, device=dev)
        self.final_layer_norm = nn.LayerNorm(d, device=dev)


class RefStack(nn.Module):
    def __init__(self, layers, d, dev=None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.layer_norm = nn.LayerNorm(d, device=dev)


class RefCore(nn.Module):
    """Built on the `meta` device: parameters are assigned from the checkpoint afterwards."""

    def __init__(self, cfg, dev="meta"):
        super().__init__()
        d = cfg["d_model"]
        self.shared = nn.Embedding(cfg["vocab_size"], d, padding_idx=PAD, device=dev)
        self.encoder = RefStack([RefEncoderLayer(d, cfg["encoder_attention_heads"], cfg["encoder_ffn_dim"], dev)
                                 for _ in range(cfg["encoder_layers"])], d, dev)
        self.decoder = RefStack([RefDecoderLayer(d, cfg["decoder_attention_heads"], cfg["decoder_ffn_dim"], dev)
                                 for _ in range(cfg["decoder_layers"])], d, dev)


def m2m100_positions_table(num_embeddings: int, dim: int, padding_idx: int) -> Tensor:
    """transformers M2M100SinusoidalPositionalEmbedding.get_embedding (float32)."""
    half_dim = dim // 2
    emb = math.log(10000) / (half_dim - 1)
    emb = torch.exp(torch.arange(half_dim, dtype=torch.int64).float() * -emb)
    emb = torch.arange(num_embeddings, dtype=torch.int64).float().unsqueeze(1) * emb.unsqueeze(0)
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1).view(num_embeddings, -1)
    if dim % 2 == 1:
        emb = torch.cat([emb, torch.zeros(num_embeddings, 1)], dim=1)
    emb[padding_idx, :] = 0
    return emb


class ReferenceModel(nn.Module):
    """M2M100ForConditionalGeneration's inference path, eager, with the model.ts interface."""

    def __init__(self, cfg: dict, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.cfg = cfg
        self.model = RefCore(cfg, "meta")
        self.lm_head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False, device="meta")
        self.embed_scale = math.sqrt(cfg["d_model"]) if cfg.get("scale_embedding", True) else 1.0
        self.dtype = dtype
        self.register_buffer("positions", m2m100_positions_table(
            cfg["max_position_embeddings"] + 2, cfg["d_model"], PAD).to(dtype))

    @classmethod
    def from_checkpoint(cls, checkpoint: str, dtype: torch.dtype = torch.float32) -> "ReferenceModel":
        import export_nllb  # only for reading files (config, shards); no model code is shared
        cfg = export_nllb.read_config(checkpoint)
        _, files = export_nllb.find_weights(checkpoint)
        m = cls(cfg, dtype)
        names = dict(m.named_parameters())
        names.pop("lm_head.weight")
        seen = set()
        for _, sd in export_nllb.iter_shards(checkpoint, files):
            for key, t in sd.items():
                if key in names:
                    if tuple(t.shape) != tuple(names[key].shape):
                        raise ValueError(f"{key}: shape {list(t.shape)} != {list(names[key].shape)}")
                    _assign(m, key, t.to(dtype))
                    seen.add(key)
                elif key == "lm_head.weight":
                    pass  # tied
        missing = set(names) - seen
        if "model.shared.weight" in missing:
            raise ValueError("checkpoint has no model.shared.weight")
        if missing:
            raise ValueError(f"missing keys: {sorted(missing)[:5]}")
        m.lm_head.weight = m.model.shared.weight  # tied, as transformers
        m.eval()
        return m

    def _embed(self, ids: Tensor, positions: Tensor) -> Tensor:
        return self.model.shared(ids) * self.embed_scale + self.positions.index_select(
            0, positions.reshape(-1)).view(ids.size(0), ids.size(1), -1)

    def _additive(self, mask: Tensor) -> Tensor:
        """[B, S] 1/0 -> [B, 1, 1, S] of 0 / finfo.min (transformers' inverted mask)."""
        inverted = 1.0 - mask[:, None, None, :].to(self.dtype)
        return inverted.masked_fill(inverted.bool(), torch.finfo(self.dtype).min)

    @torch.no_grad()
    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        # transformers derives positions from input_ids != pad; with right padding by pad ids
        # that equals cumsum(mask) * mask + 1
        mask = input_ids.ne(PAD).int()
        positions = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + PAD
        x = self._embed(input_ids, positions)
        add = self._additive(attention_mask)
        for layer in self.model.encoder.layers:
            x = layer(x, add)
        return self.model.encoder.layer_norm(x)

    @torch.no_grad()
    def cross_kv(self, encoder_out: Tensor) -> List[Tensor]:
        out = []
        for layer in self.model.decoder.layers:
            out.extend(layer.encoder_attn.kv(encoder_out))
        return out

    @torch.no_grad()
    def decode_step(self, input_ids, positions, self_kv, self_mask, cross_kv, encoder_mask):
        x = self._embed(input_ids, positions)
        self_add = self._additive(self_mask)
        cross_add = self._additive(encoder_mask)
        new_kv = []
        for i, layer in enumerate(self.model.decoder.layers):
            residual = x
            h = layer.self_attn_layer_norm(x)
            k, v = layer.self_attn.kv(h)
            k = torch.cat([self_kv[2 * i], k], dim=2)
            v = torch.cat([self_kv[2 * i + 1], v], dim=2)
            new_kv += [k, v]
            x = residual + layer.self_attn(h, k, v, self_add)
            residual = x
            h = layer.encoder_attn_layer_norm(x)
            x = residual + layer.encoder_attn(h, cross_kv[2 * i], cross_kv[2 * i + 1], cross_add)
            residual = x
            x = residual + layer.fc2(F.relu(layer.fc1(layer.final_layer_norm(x))))
        x = self.model.decoder.layer_norm(x)
        logits = self.lm_head(x)[:, -1, :]
        return logits.float(), new_kv

    def empty_cache(self, batch: int) -> List[Tensor]:
        cfg = self.cfg
        h = cfg["decoder_attention_heads"]
        hd = cfg["d_model"] // h
        return [torch.zeros(batch, h, 0, hd, dtype=self.dtype) for _ in range(2 * cfg["decoder_layers"])]

    @property
    def device(self) -> torch.device:
        return self.model.shared.weight.device


def _assign(module: nn.Module, key: str, value: Tensor) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        module = getattr(module, p)
    setattr(module, parts[-1], nn.Parameter(value.contiguous(), requires_grad=False))


class TorchScriptModel:
    """An exported model.ts with the same interface as ReferenceModel, on `device`."""

    def __init__(self, model_dir: str, device: str = "cpu"):
        with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as f:
            self.manifest = json.load(f)
        self.device = torch.device(device)
        import vox_ops  # every export scripts vox::linear (tools/torchscript_linear.py)
        vox_ops.load()
        self.module = torch.jit.load(os.path.join(model_dir, "model.ts"), map_location=self.device)
        self.module.eval()
        cfg = self.manifest["config"]
        self.cfg = cfg
        self.dtype = {"float32": torch.float32, "float16": torch.float16,
                      "bfloat16": torch.bfloat16}[self.manifest["dtype"]]

    @torch.no_grad()
    def encode(self, ids, mask):
        return self.module.encode(ids, mask)

    @torch.no_grad()
    def cross_kv(self, enc):
        return self.module.cross_kv(enc)

    @torch.no_grad()
    def decode_step(self, *args):
        return self.module.decode_step(*args)

    def empty_cache(self, batch: int, capacity: int = 0) -> List[Tensor]:
        """2 * layers zeroed self-attention caches [batch, H, capacity, hd]: empty ones for
        decode_step (capacity 0), or decode_slots's, written in place up to capacity columns."""
        h = self.cfg["decoder_attention_heads"]
        hd = self.cfg["d_model"] // h
        return [torch.zeros(batch, h, capacity, hd, dtype=self.dtype, device=self.device)
                for _ in range(2 * self.cfg["decoder_layers"])]

    def bench_source(self, batch: int) -> Tuple[Tensor, Tensor]:
        """The step benches' source: 36 ids drawn with seed 0 from [5, min(1000, vocabulary)),
        the same in each of `batch` rows, and its mask (all ones)."""
        top = min(1000, self.cfg["vocab_size"])
        ids = torch.randint(5, top, (1, 36), generator=torch.Generator().manual_seed(0)).repeat(batch, 1)
        return ids, torch.ones_like(ids)

    @torch.no_grad()
    def slots_step(self, kv: List[Tensor], t: int, cross: List[Tensor], mask: Tensor) -> Tensor:
        """One decode_slots step of every row of caches `kv` holding t columns, as voxd runs a
        batch (the benches' step: token 5 + t, every row at cache length t) -> logits."""
        b = kv[0].size(0)
        return self.module.decode_slots(torch.full((b, 1), 5 + t), torch.full((b,), t), t + 1, kv, None,
                                        cross, mask)


# ----------------------------------------------------------------------------------------------
# Decoding rules (docs/model-format.md).

@dataclass
class GreedyResult:
    ids: List[int]                 # generated ids, without [2, tgt] and without the final </s>
    ended_with_eos: bool
    margins: List[float]           # top1 - top2 logit at each generated step
    first_logits: List[float] = field(default_factory=list)  # logits of the first generated step


@dataclass
class BeamResult:
    ids: List[int]
    score: float                   # final = score / n ** lp
    ended_with_eos: bool
    # Smallest score difference on which a decision turned: between neighbours among the top
    # 2k + 1 candidates of any step, and between the best two finished hypotheses. Another
    # implementation may decide differently (within float rounding) only where this is tiny.
    min_gap: float = float("inf")


class _Decoder:
    """Encoder output, cross cache and self cache of one source sentence (batch of beams)."""

    def __init__(self, model, src_ids: List[int]):
        self.model = model
        self.device = getattr(model, "device", torch.device("cpu"))
        ids = torch.tensor([src_ids], dtype=torch.long, device=self.device)
        self.enc_mask = torch.ones_like(ids)
        enc = model.encode(ids, self.enc_mask)
        self.cross = model.cross_kv(enc)
        self.kv = model.empty_cache(1)
        self.length = 0  # tokens in the self cache

    def step(self, tokens: List[int]) -> Tensor:
        """Feeds one token per row; returns float32 logits [rows, V]."""
        rows = len(tokens)
        ids = torch.tensor(tokens, dtype=torch.long, device=self.device).view(rows, 1)
        pos = torch.full((rows, 1), 2 + self.length, dtype=torch.long, device=self.device)
        self_mask = torch.ones(rows, self.length + 1, dtype=torch.long, device=self.device)
        enc_mask = self.enc_mask.expand(rows, -1)
        logits, self.kv = self.model.decode_step(ids, pos, self.kv, self_mask, self.cross, enc_mask)
        self.length += 1
        return logits.cpu()

    def reorder(self, rows: List[int]) -> None:
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.kv = [t.index_select(0, index) for t in self.kv]
        if self.cross[0].size(0) != len(rows):
            self.cross = [t[:1].expand(len(rows), -1, -1, -1).contiguous() for t in self.cross]


def greedy(model, src_ids: List[int], tgt_id: int, max_length: int,
           fixed_length: bool = False, keep_first_logits: bool = True) -> GreedyResult:
    dec = _Decoder(model, src_ids)
    dec.step([DECODER_START])          # its logits are ignored: the language token is forced
    logits = dec.step([tgt_id])
    out, margins = [], []
    first = logits[0].tolist() if keep_first_logits else []
    ended = False
    for t in range(max_length):
        row = logits[0]
        top2 = torch.topk(row, 2).values
        margins.append(float(top2[0] - top2[1]))
        token = int(torch.argmax(row))  # lowest id on ties
        if token == EOS and not fixed_length:
            ended = True
            break
        out.append(token)
        if t + 1 < max_length:
            logits = dec.step([token])
    return GreedyResult(out, ended, margins, first)


def _f32(x: float) -> float:
    return float(torch.tensor(x, dtype=torch.float32))


def beam_search(model, src_ids: List[int], tgt_id: int, beam_size: int, length_penalty: float,
                max_length: int) -> BeamResult:
    k = beam_size
    if k < 2:
        raise ValueError("beam_size must be >= 2 (1 is greedy)")
    dec = _Decoder(model, src_ids)
    dec.step([DECODER_START])
    logits = dec.step([tgt_id])
    live: List[Tuple[List[int], Tensor]] = [([], torch.tensor(0.0))]  # (tokens, float32 score)
    finished: List[Tuple[float, int, List[int], bool]] = []  # (final, order, tokens, eos)
    order = 0
    min_gap = float("inf")
    for t in range(1, max_length + 1):
        V = logits.size(1)
        scores = torch.stack([s for _, s in live]).view(-1, 1)
        cand = (scores + F.log_softmax(logits, dim=-1)).view(-1)  # float32
        # top 2k, score descending, ties by lower b*V + v (stable sort keeps index order)
        sorted_scores, sorted_idx = torch.sort(cand, descending=True, stable=True)
        top = sorted_idx[: 2 * k].tolist()
        head = sorted_scores[: 2 * k + 1]
        min_gap = min(min_gap, float((head[:-1] - head[1:]).min()))
        next_live, rows = [], []
        for rank, idx in enumerate(top):
            b, v = divmod(idx, V)
            if v == EOS:
                if rank < k:
                    n = 1 + len(live[b][0]) + 1
                    final = float(cand[idx] / _f32(n ** length_penalty))
                    finished.append((final, order, live[b][0], True))
                    order += 1
                continue
            next_live.append((live[b][0] + [v], cand[idx].clone()))
            rows.append(b)
            if len(next_live) == k:
                break
        finished.sort(key=lambda f: (-f[0], f[1]))
        del finished[k:]
        live = next_live
        if t == max_length:
            n = 1 + max_length
            for tokens, s in live:
                finished.append((float(s / _f32(n ** length_penalty)), order, tokens, False))
                order += 1
            break
        if len(finished) == k:
            best = float(live[0][1] / _f32((1 + t) ** length_penalty))
            if best <= finished[-1][0]:
                break
        dec.reorder(rows)
        logits = dec.step([tokens[-1] for tokens, _ in live])
    finished.sort(key=lambda f: (-f[0], f[1]))
    final, _, tokens, eos = finished[0]
    if len(finished) > 1:
        min_gap = min(min_gap, final - finished[1][0])
    return BeamResult(tokens, final, eos, min_gap)


def load_codes(checkpoint_or_model: str) -> List[str]:
    manifest = os.path.join(checkpoint_or_model, "manifest.json")
    if os.path.isfile(manifest):
        with open(manifest, encoding="utf-8") as f:
            return [lang["code"] for lang in json.load(f)["languages"]]
    import export_nllb
    return export_nllb.read_language_codes(checkpoint_or_model)[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--model", help="run this exported model dir instead of the eager reference")
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--length-penalty", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=200)
    parser.add_argument("texts", nargs="+")
    args = parser.parse_args(argv)
    tok = Tokenizer(os.path.join(args.checkpoint, "sentencepiece.bpe.model"), load_codes(args.checkpoint))
    model = TorchScriptModel(args.model) if args.model else ReferenceModel.from_checkpoint(args.checkpoint)
    for text in args.texts:
        src = tok.encode(text, args.source)
        tgt = tok.lang_id(args.target)
        if args.beam == 1:
            r = greedy(model, src, tgt, args.max_length)
            ids = r.ids
        else:
            ids = beam_search(model, src, tgt, args.beam, args.length_penalty, args.max_length).ids
        print(json.dumps({"text": text, "src_ids": src, "ids": ids, "translation": tok.decode(ids)},
                         ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
