#!/usr/bin/env python3
"""Python eager reference for XTTS v2, written independently of the exporter's modules.

It works on the raw checkpoint directory (model.pth, vocab.json, config.json) with plain
functional torch ops, following Coqui's code paths (shared/XTTS_FACTS.md):
- text ids: Coqui's cleaning for en and es (strip, lowercase, multilingual_cleaners with
  num2words) and a Python port of HF tokenizers' encode (added tokens, Whitespace pre-tokenizer,
  heap-based BPE merge_word), §5;
- generation: greedy or seeded sampling in HF's order (repetition penalty with the prefix quirk,
  temperature, top-k, top-p, multinomial by inverse CDF with splitmix64), docs/model-format.md;
- latents: Coqui's second full pass (§7), not the generation states;
- waveform: HiFi-GAN with F.interpolate as HifiDecoder.forward does (§8).
The tiny-model goldens come from here; tests compare the exported model and the C++ engine to it.
"""
import json
import math
import os
import re
import unicodedata
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# ---------------------------------------------------------------------------------------------
# Text cleaning (Coqui TTS/tts/layers/xtts/tokenizer.py, en and es)
# Runs under Debian's python3 with its num2words 0.5.10, to make the tiny model's goldens; those
# texts clean identically under coqui-tts 0.28.0 / num2words 0.5.14, the reference for everything
# else (0.5.14 differs for some Spanish numbers: "dieciséis", "veintiún", pounds, ordinals above
# 1000). vox's C++ follows 0.5.14; tests/upstream_xtts_text compares it with Coqui itself.

_ABBREVIATIONS = {
    "en": [("mrs", "misess"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"), ("co", "company"),
           ("jr", "junior"), ("maj", "major"), ("gen", "general"), ("drs", "doctors"), ("rev", "reverend"),
           ("lt", "lieutenant"), ("hon", "honorable"), ("sgt", "sergeant"), ("capt", "captain"),
           ("esq", "esquire"), ("ltd", "limited"), ("col", "colonel"), ("ft", "fort")],
    "es": [("sra", "señora"), ("sr", "señor"), ("dr", "doctor"), ("dra", "doctora"), ("st", "santo"),
           ("co", "compañía"), ("jr", "junior"), ("ltd", "limitada")],
}
_SYMBOLS = {
    "en": [("&", " and "), ("@", " at "), ("%", " percent "), ("#", " hash "), ("$", " dollar "),
           ("£", " pound "), ("°", " degree ")],
    "es": [("&", " y "), ("@", " arroba "), ("%", " por ciento "), ("#", " numeral "), ("$", " dolar "),
           ("£", " libra "), ("°", " grados ")],
}
_ORDINAL_RE = {"en": re.compile(r"([0-9]+)(st|nd|rd|th)"), "es": re.compile(r"([0-9]+)(º|ª|er|o|a|os|as)")}
_NUMBER_RE = re.compile(r"[0-9]+")
_CURRENCY_RE = {
    "USD": re.compile(r"((\$[0-9\.\,]*[0-9]+)|([0-9\.\,]*[0-9]+\$))"),
    "GBP": re.compile(r"((£[0-9\.\,]*[0-9]+)|([0-9\.\,]*[0-9]+£))"),
    "EUR": re.compile(r"(([0-9\.\,]*[0-9]+€)|((€[0-9\.\,]*[0-9]+)))"),
}
_COMMA_NUMBER_RE = re.compile(r"\b\d{1,3}(,\d{3})*(\.\d+)?\b")
_DOT_NUMBER_RE = re.compile(r"\b\d{1,3}(.\d{3})*(\,\d+)?\b")
_DECIMAL_NUMBER_RE = re.compile(r"([0-9]+[.,][0-9]+)")
_AND_EQUIVALENTS = {"en": ", ", "es": " con "}


def _num2words(*args, **kwargs) -> str:
    from num2words import num2words  # Debian python3-num2words
    return num2words(*args, **kwargs)


def _expand_currency(m, lang: str, currency: str) -> str:
    amount = float(re.sub(r"[^\d.]", "", m.group(0).replace(",", ".")))
    full = _num2words(amount, to="currency", currency=currency, lang=lang)
    if amount.is_integer():
        last_and = full.rfind(_AND_EQUIVALENTS[lang])
        if last_and != -1:
            full = full[:last_and]
    return full


def expand_numbers(text: str, lang: str) -> str:
    if lang == "en":
        text = _COMMA_NUMBER_RE.sub(lambda m: m.group(0).replace(",", ""), text)
    else:
        text = _DOT_NUMBER_RE.sub(lambda m: m.group(0).replace(".", ""), text)
    try:
        text = _CURRENCY_RE["GBP"].sub(lambda m: _expand_currency(m, lang, "GBP"), text)
        text = _CURRENCY_RE["USD"].sub(lambda m: _expand_currency(m, lang, "USD"), text)
        text = _CURRENCY_RE["EUR"].sub(lambda m: _expand_currency(m, lang, "EUR"), text)
    except Exception:  # noqa: BLE001 - Coqui swallows num2words currency errors the same way
        pass
    text = _DECIMAL_NUMBER_RE.sub(lambda m: _num2words(float(m.group(1).replace(",", ".")), lang=lang), text)
    text = _ORDINAL_RE[lang].sub(lambda m: _num2words(int(m.group(1)), ordinal=True, lang=lang), text)
    text = _NUMBER_RE.sub(lambda m: _num2words(int(m.group(0)), lang=lang), text)
    return text


def clean_text(text: str, lang: str) -> str:
    """Xtts.inference's strip().lower() then multilingual_cleaners (en and es only here)."""
    if lang not in _ABBREVIATIONS:
        raise ValueError(f"reference cleaner supports en and es, not '{lang}'")
    text = text.strip().lower()
    text = text.replace('"', "")
    text = text.lower()
    text = expand_numbers(text, lang)
    for abbr, full in _ABBREVIATIONS[lang]:
        text = re.sub(r"\b%s\." % abbr, full, text, flags=re.IGNORECASE)
    for sym, word in _SYMBOLS[lang]:
        text = re.sub(re.escape(sym), word, text, flags=re.IGNORECASE)
        text = text.replace("  ", " ")
    text = text.strip()
    return re.sub(r"\s+", " ", text)


# ---------------------------------------------------------------------------------------------
# HF tokenizers BPE (XTTS_FACTS §5)


def _is_word_char(c: str) -> bool:
    cat = unicodedata.category(c)
    return cat[0] in ("L", "M") or cat in ("Nd", "Pc") or c in ("\u200c", "\u200d")


class BpeTokenizer:
    def __init__(self, vocab_json: dict):
        model = vocab_json["model"]
        self.vocab: Dict[str, int] = dict(model["vocab"])
        self.added: Dict[str, int] = {t["content"]: int(t["id"]) for t in vocab_json.get("added_tokens", [])}
        self.unk = self.vocab.get(model.get("unk_token") or "[UNK]", self.added.get("[UNK]"))
        self.merges: Dict[Tuple[int, int], Tuple[int, int]] = {}
        for rank, m in enumerate(model["merges"]):
            a, b = m.split(" ") if isinstance(m, str) else m
            if a in self.vocab and b in self.vocab and (a + b) in self.vocab:
                self.merges[(self.vocab[a], self.vocab[b])] = (rank, self.vocab[a + b])  # later wins

    @staticmethod
    def from_file(path: str) -> "BpeTokenizer":
        with open(path, "r", encoding="utf-8") as f:
            return BpeTokenizer(json.load(f))

    def _split_added(self, text: str) -> List[Tuple[str, bool]]:
        out, i, start = [], 0, 0
        names = sorted(self.added, key=len, reverse=True)
        while i < len(text):
            hit = next((n for n in names if text.startswith(n, i)), None)
            if hit is None:
                i += 1
                continue
            if start < i:
                out.append((text[start:i], False))
            out.append((hit, True))
            i += len(hit)
            start = i
        if start < len(text):
            out.append((text[start:], False))
        return out

    @staticmethod
    def _pretokenize(text: str) -> List[str]:
        pieces, cur, kind = [], "", None  # kind: "w" word, "p" punctuation run
        for c in text:
            k = "w" if _is_word_char(c) else (None if c.isspace() else "p")
            if k != kind and cur:
                pieces.append(cur)
                cur = ""
            kind = k
            if k is not None:
                cur += c
        if cur:
            pieces.append(cur)
        return pieces

    def _bpe(self, word: str) -> List[int]:
        import heapq
        syms = [self.vocab.get(c, self.unk) for c in word]
        n = len(syms)
        prev = list(range(-1, n - 1))
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        alive = [True] * n
        heap = []
        for i in range(n - 1):
            m = self.merges.get((syms[i], syms[i + 1]))
            if m:
                heapq.heappush(heap, (m[0], i, m[1]))
        while heap:
            rank, pos, new_id = heapq.heappop(heap)
            if not alive[pos] or nxt[pos] == -1:
                continue
            right = nxt[pos]
            m = self.merges.get((syms[pos], syms[right]))
            if m is None or m[1] != new_id:
                continue
            syms[pos] = new_id
            alive[right] = False
            nxt[pos] = nxt[right]
            if nxt[pos] != -1:
                prev[nxt[pos]] = pos
            if prev[pos] != -1:
                mm = self.merges.get((syms[prev[pos]], syms[pos]))
                if mm:
                    heapq.heappush(heap, (mm[0], prev[pos], mm[1]))
            if nxt[pos] != -1:
                mm = self.merges.get((syms[pos], syms[nxt[pos]]))
                if mm:
                    heapq.heappush(heap, (mm[0], pos, mm[1]))
        return [s for s, a in zip(syms, alive) if a]

    def encode_raw(self, text: str) -> List[int]:
        ids: List[int] = []
        for piece, special in self._split_added(text):
            if special:
                ids.append(self.added[piece])
                continue
            for word in self._pretokenize(piece):
                ids.extend(self._bpe(word))
        return ids

    def encode(self, text: str, lang: str) -> List[int]:
        txt = clean_text(text, lang)
        txt = f"[{lang}]{txt}".replace(" ", "[SPACE]")
        return self.encode_raw(txt)


# ---------------------------------------------------------------------------------------------
# Deterministic sampling (docs/model-format.md, XTTS: Sampling)

MASK64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next_u64() >> 11) * (1.0 / 9007199254740992.0)


def apply_repetition_penalty(logits: Tensor, seen: List[int], penalty: float) -> Tensor:
    if penalty == 1.0 or not seen:
        return logits
    idx = torch.tensor(sorted(set(seen)), dtype=torch.long)
    score = logits.gather(0, idx)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return logits.scatter(0, idx, score)


def warp(logits: Tensor, temperature: float, top_k: int, top_p: float) -> Tensor:
    if temperature != 1.0:
        logits = logits / temperature
    if top_k > 0:
        k = min(top_k, logits.shape[0])
        kth = torch.topk(logits, k)[0][-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(logits, descending=False, stable=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cum <= (1 - top_p)
        remove[-1] = False
        logits = logits.masked_fill(remove.scatter(0, sorted_idx, remove), float("-inf"))
    return logits


def pick(probs: Tensor, u: float) -> int:
    p = probs.tolist()
    total = 0.0
    for x in p:
        total += float(x)  # left to right in double, like the C++ engine
    acc, target = 0.0, u * total
    for i, x in enumerate(p):
        acc += float(x)
        if acc > target:
            return i
    return max(i for i, x in enumerate(p) if x > 0)


# ---------------------------------------------------------------------------------------------
# Model (functional, straight from the raw state dict)


class ReferenceModel:
    def __init__(self, checkpoint_dir: str):
        with open(os.path.join(checkpoint_dir, "config.json"), "r", encoding="utf-8") as f:
            self.config = json.loads(f.read())
        args = self.config["model_args"]
        ckpt = torch.load(os.path.join(checkpoint_dir, "model.pth"), map_location="cpu")
        sd = {(k[5:] if k.startswith("xtts.") else k): v.float() for k, v in ckpt["model"].items()}
        self.w = {}
        for k, v in sd.items():
            for g_s, v_s in ((".weight_g", ".weight_v"),
                             (".parametrizations.weight.original0", ".parametrizations.weight.original1")):
                if k.endswith(v_s):
                    base = k[: -len(v_s)]
                    g = sd[base + g_s]
                    norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape([-1] + [1] * (v.dim() - 1))
                    self.w[base + ".weight"] = v * (g / norm)
                    break
            else:
                self.w[k] = v
        self.tokenizer = BpeTokenizer.from_file(os.path.join(checkpoint_dir, "vocab.json"))
        self.speakers = torch.load(os.path.join(checkpoint_dir, "speakers_xtts.pth"), map_location="cpu")
        self.d = int(args["gpt_n_model_channels"])
        self.heads = int(args["gpt_n_heads"])
        self.layers = int(args["gpt_layers"])
        self.start_audio = int(args["gpt_start_audio_token"])
        self.stop_audio = int(args["gpt_stop_audio_token"])
        self.max_codes = int(args["gpt_max_audio_tokens"]) - 3
        self.start_text = self.tokenizer.added["[START]"]
        self.stop_text = self.tokenizer.added["[STOP]"]

    # GPT ---------------------------------------------------------------------------------------
    def _ln(self, x, name):
        return F.layer_norm(x, (self.d,), self.w[name + ".weight"], self.w[name + ".bias"], 1e-5)

    def _conv1d(self, x, name):  # GPT-2 Conv1D, [in, out]
        return x @ self.w[name + ".weight"] + self.w[name + ".bias"]

    def _forward(self, x: Tensor, cache: Optional[List[Tuple[Tensor, Tensor]]]) -> Tuple[Tensor, list]:
        """x [T,d] new positions; cache per layer (k, v) [H, S, hd]. Returns final_norm(ln_f(h))."""
        hd = self.d // self.heads
        new_cache = []
        t = x.shape[0]
        for i in range(self.layers):
            p = f"gpt.gpt.h.{i}."
            h = self._ln(x, p + "ln_1")
            qkv = self._conv1d(h, p + "attn.c_attn")
            q, k, v = qkv.split(self.d, dim=-1)
            q, k, v = (z.reshape(t, self.heads, hd).transpose(0, 1) for z in (q, k, v))
            if cache is not None:
                k = torch.cat([cache[i][0], k], dim=1)
                v = torch.cat([cache[i][1], v], dim=1)
            new_cache.append((k, v))
            s = k.shape[1]
            att = (q @ k.transpose(1, 2)) / math.sqrt(hd)
            mask = torch.ones(t, s, dtype=torch.bool).triu(s - t + 1)
            att = att.masked_fill(mask, float("-inf")).softmax(-1)
            a = (att @ v).transpose(0, 1).reshape(t, self.d)
            x = x + self._conv1d(a, p + "attn.c_proj")
            h = self._ln(x, p + "ln_2")
            h = self._conv1d(h, p + "mlp.c_fc")
            h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
            x = x + self._conv1d(h, p + "mlp.c_proj")
        return self._ln(self._ln(x, "gpt.gpt.ln_f"), "gpt.final_norm"), new_cache

    def _logits(self, latent: Tensor) -> Tensor:
        return latent @ self.w["gpt.mel_head.weight"].t() + self.w["gpt.mel_head.bias"]

    def _prefix_embeddings(self, cond: Tensor, ids: List[int]) -> Tensor:
        text = torch.tensor([self.start_text] + list(ids) + [self.stop_text])
        emb = self.w["gpt.text_embedding.weight"][text] + self.w["gpt.text_pos_embedding.emb.weight"][: len(text)]
        return torch.cat([cond.reshape(-1, self.d), emb])

    def _mel(self, codes: List[int], start_pos: int) -> Tensor:
        c = torch.tensor(codes)
        pos = torch.arange(start_pos, start_pos + len(codes))
        return self.w["gpt.mel_embedding.weight"][c] + self.w["gpt.mel_pos_embedding.emb.weight"][pos]

    def generate(self, cond: Tensor, ids: List[int], greedy: bool, seed: int = 0,
                 temperature: float = 0.75, top_k: int = 50, top_p: float = 0.85,
                 repetition_penalty: float = 5.0, forced_codes: int = 0) -> Tuple[List[int], Tensor, float]:
        """Codes (stop code kept when produced), the per-step latents [N, d], and the smallest
        top-1/top-2 logit margin seen on a greedy path (XTTS_FACTS §10)."""
        prefix = torch.cat([self._prefix_embeddings(cond, ids), self._mel([self.start_audio], 0)])
        with torch.no_grad():
            lat, cache = self._forward(prefix, None)
        latent = lat[-1]
        seen = [1, self.start_audio]
        rng = SplitMix64(seed)
        codes, latents = [], []
        limit = forced_codes if forced_codes > 0 else self.max_codes
        margin = float("inf")
        while True:
            latents.append(latent)
            logits = self._logits(latent).float()
            logits = apply_repetition_penalty(logits, seen, repetition_penalty)
            if forced_codes > 0:
                logits[self.stop_audio] = float("-inf")
            if greedy:
                top2 = torch.topk(logits, 2)[0]
                margin = min(margin, float(top2[0] - top2[1]))
                code = int(torch.argmax(logits))
            else:
                probs = warp(logits, temperature, top_k, top_p).softmax(-1)
                code = pick(probs, rng.uniform())
            codes.append(code)
            seen.append(code)
            if code == self.stop_audio or len(codes) >= limit:
                break
            with torch.no_grad():
                lat, cache = self._forward(self._mel([code], len(codes)), cache)
            latent = lat[-1]
        return codes, torch.stack(latents), margin

    def coqui_latents(self, cond: Tensor, ids: List[int], codes: List[int]) -> Tensor:
        """XTTS_FACTS §7: one full pass over [start] + codes + [stop]*4, rows for the mel inputs
        [start, c0 .. c_{N-2}]."""
        n = len(codes)
        mel = [self.start_audio] + list(codes) + [self.stop_audio] * 4
        x = torch.cat([self._prefix_embeddings(cond, ids), self._mel(mel, 0)])
        with torch.no_grad():
            lat, _ = self._forward(x, None)
        return lat[-(n + 5):-5]

    # HiFi-GAN ---------------------------------------------------------------------------------
    def vocode(self, latents: Tensor, speaker: Tensor) -> Tensor:
        """latents [N, d], speaker [1, S, 1] -> waveform [256*M] (HifiDecoder.forward)."""
        w = self.w
        p = "hifigan_decoder.waveform_decoder."
        z = F.interpolate(latents.t().unsqueeze(0), scale_factor=[1024 / 256], mode="linear")
        z = F.interpolate(z, scale_factor=[24000 / 22050], mode="linear")
        g = speaker.reshape(1, -1, 1)
        with torch.no_grad():
            o = F.conv1d(z, w[p + "conv_pre.weight"], w[p + "conv_pre.bias"], padding=3)
            o = o + F.conv1d(g, w[p + "cond_layer.weight"], w[p + "cond_layer.bias"])
            for i, (u, k) in enumerate(zip([8, 8, 2, 2], [16, 16, 4, 4])):
                o = F.leaky_relu(o, 0.1)
                o = F.conv_transpose1d(o, w[f"{p}ups.{i}.weight"], w[f"{p}ups.{i}.bias"], stride=u,
                                       padding=(k - u) // 2)
                o = o + F.conv1d(g, w[f"{p}conds.{i}.weight"], w[f"{p}conds.{i}.bias"])
                zs = None
                for j, rk in enumerate([3, 7, 11]):
                    x = o
                    r = f"{p}resblocks.{3 * i + j}."
                    for n, d in enumerate([1, 3, 5]):
                        xt = F.leaky_relu(x, 0.1)
                        xt = F.conv1d(xt, w[f"{r}convs1.{n}.weight"], w[f"{r}convs1.{n}.bias"], dilation=d,
                                      padding=(rk * d - d) // 2)
                        xt = F.leaky_relu(xt, 0.1)
                        xt = F.conv1d(xt, w[f"{r}convs2.{n}.weight"], w[f"{r}convs2.{n}.bias"],
                                      padding=(rk - 1) // 2)
                        x = xt + x
                    zs = x if zs is None else zs + x
                o = zs / 3
            o = F.leaky_relu(o)
            o = torch.tanh(F.conv1d(o, w[p + "conv_post.weight"], None, padding=3))
        return o.reshape(-1)

    def voice(self, name: str) -> Tuple[Tensor, Tensor]:
        v = self.speakers[name]
        return v["gpt_cond_latent"].float(), v["speaker_embedding"].float()
