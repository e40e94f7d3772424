"""XTTS v2 voice cloning as one TorchScript module (clone.ts): Coqui's `Xtts.get_conditioning_latents`
from reference audio to (gpt_cond_latent [1, 32, d], speaker_embedding [1, 512, 1]).

Mirrors coqui-tts 0.28 (TTS/tts/models/xtts.py `load_audio`, `wav_to_mel_cloning`,
`get_gpt_cond_latents`, `get_speaker_embedding`, `get_conditioning_latents`;
TTS/tts/layers/tortoise/{autoregressive,arch_utils}.py `ConditioningEncoder`, `AttentionBlock`;
TTS/tts/layers/xtts/perceiver_encoder.py `PerceiverResampler`; TTS/encoder/models/resnet.py
`ResNetSpeakerEncoder` with its torch-spec front end; torchaudio's `functional.resample` and
`MelSpectrogram`). Parameter and buffer names equal the checkpoint keys (`mel_stats`,
`gpt.conditioning_encoder.*`, `gpt.conditioning_perceiver.*`, `hifigan_decoder.speaker_encoder.*`),
so export_xtts.py loads them with the same key-by-key check as the inference modules.

Per clip (any rate): resample to 22,050 Hz (torchaudio's windowed-sinc, kernel computed in
float32 as torchaudio does for a float32 waveform), clip to [-1, 1] (load_audio), keep the first
max_ref_len seconds, optionally peak-normalise to 0.75 (sound_norm_refs); its speaker embedding
is the L2-normalised ResNet output on that audio resampled to 16 kHz. The GPT latents come from
all clips concatenated, cut to gpt_cond_len seconds, in chunks of gpt_cond_chunk_len seconds
(chunks under 0.33 s skipped), each chunk's mel (n_fft 2048, hop 256, win 1024, 80 slaney-normed
HTK mels to 8 kHz, log, / mel_stats) through the conditioning encoder and perceiver; the chunks'
latents are averaged, and so are the clips' speaker embeddings.
"""
import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GPT_RATE = 22050
SPEAKER_RATE = 16000
MIN_CHUNK_SECONDS = 0.33  # get_gpt_cond_latents' MIN_AUDIO_SECONDS
CLONE_VERSION = 1          # bump when clone.ts computes different numbers

# Coqui's fixed front-end settings (xtts.py get_gpt_cond_latents; hifigan_decoder.py's
# speaker_encoder_audio_config).
GPT_N_FFT, GPT_HOP, GPT_WIN, GPT_MELS, GPT_F_MAX = 2048, 256, 1024, 80, 8000.0
SPEAKER_N_FFT, SPEAKER_HOP, SPEAKER_WIN = 512, 160, 400


def melscale_fbanks_slaney(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> Tensor:
    """torchaudio.functional.melscale_fbanks(norm="slaney", mel_scale="htk"): [n_freqs, n_mels]."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min = 2595.0 * math.log10(1.0 + f_min / 700.0)
    m_max = 2595.0 * math.log10(1.0 + f_max / 700.0)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = torch.max(torch.zeros(1), torch.min(down, up))
    enorm = 2.0 / (f_pts[2:n_mels + 2] - f_pts[:n_mels])
    return fb * enorm.unsqueeze(0)


def resample(x: Tensor, orig: int, new: int) -> Tensor:
    """torchaudio.functional.resample(x [1, T] float32, orig, new) with its defaults
    (sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99); the kernel on x's device."""
    if orig == new:
        return x
    g = math.gcd(orig, new)
    o = orig // g
    n = new // g
    width_f = 6.0
    base = float(min(o, n)) * 0.99
    width = int(math.ceil(width_f * o / base))
    idx = torch.arange(-width, width + o, dtype=torch.float32, device=x.device)[None, None] / o
    t = torch.arange(0, -n, -1, dtype=torch.float32, device=x.device)[:, None, None] / n + idx
    t = t * base
    t = t.clamp(-width_f, width_f)
    window = torch.cos(t * math.pi / width_f / 2) ** 2
    t = t * math.pi
    scale = base / o
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels = kernels * (window * scale)
    length = x.shape[-1]
    padded = F.pad(x.view(1, 1, length), [width, width + o])
    out = F.conv1d(padded, kernels, stride=o)
    out = out.transpose(1, 2).reshape(1, -1)
    target = int(math.ceil(float(n * length) / float(o)))
    return out[:, :target]


def power_spectrogram(x: Tensor, n_fft: int, hop: int, win: int, window: Tensor) -> Tensor:
    """torchaudio Spectrogram(power=2, center=True, pad_mode="reflect", onesided): [1, F, frames]."""
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=win, window=window, center=True,
                      pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    return spec.abs().pow(2.0)


# ---------------------------------------------------------------------------------------------
# GPT conditioning: ConditioningEncoder (tortoise) + PerceiverResampler


class AttentionBlock(nn.Module):
    """tortoise AttentionBlock(channels, num_heads), tortoise_norm=False: returns norm(x) + attn."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        groups = 32
        if channels <= 16:
            groups = 8
        elif channels <= 64:
            groups = 16
        while channels % groups != 0:
            groups = groups // 2
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        self.heads = heads

    def forward(self, x: Tensor) -> Tensor:
        b, width, length = x.shape[0], x.shape[1], x.shape[2]
        x_norm = self.norm(x)
        qkv = self.qkv(x_norm)
        ch = 3 * width // (3 * self.heads)
        q, k, v = qkv.reshape(b * self.heads, ch * 3, length).split(ch, dim=1)
        scale = 1.0 / math.sqrt(math.sqrt(ch))
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight, dim=-1)
        a = torch.einsum("bts,bcs->bct", weight, v).reshape(b, -1, length)
        return x_norm + self.proj_out(a)


class ConditioningEncoder(nn.Module):
    def __init__(self, spec_dim: int, d: int, heads: int, blocks: int = 6):
        super().__init__()
        self.init = nn.Conv1d(spec_dim, d, kernel_size=1)
        self.attn = nn.ModuleList([AttentionBlock(d, heads) for _ in range(blocks)])

    def forward(self, x: Tensor) -> Tensor:
        h = self.init(x)
        for block in self.attn:
            h = block(h)
        return h


class PerceiverAttention(nn.Module):
    """perceiver_encoder.Attention(cross_attn_include_queries=True), no mask, not causal."""

    def __init__(self, d: int, dim_head: int = 64, heads: int = 8):
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = nn.Linear(d, inner, bias=False)
        self.to_kv = nn.Linear(d, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, d, bias=False)

    def _split(self, t: Tensor) -> Tensor:  # b n (h d) -> b h n d
        return t.view(t.shape[0], t.shape[1], self.heads, self.dim_head).transpose(1, 2)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        context = torch.cat((x, context), dim=-2)
        q = self._split(self.to_q(x))
        kv = self.to_kv(context).chunk(2, dim=-1)
        k = self._split(kv[0])
        v = self._split(kv[1])
        scale = float(self.dim_head) ** -0.5
        sim = torch.einsum("bhid,bhjd->bhij", q, k) * scale
        attn = sim.softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v)
        out = out.transpose(1, 2).reshape(out.shape[0], out.shape[2], self.heads * self.dim_head)
        return self.to_out(out)


class PerceiverFeedForward(nn.Module):
    """FeedForward(dim, mult=4): Linear(d, 2·inner) → GEGLU (x · gelu(gates), erf gelu) → Linear."""

    def __init__(self, d: int, mult: int = 4):
        super().__init__()
        inner = int(d * mult * 2 / 3)
        # Keys "1.0" and "1.2" of the checkpoint: nn.Sequential(Linear, GEGLU, Linear).
        self.add_module("0", nn.Linear(d, inner * 2))
        self.add_module("1", nn.Identity())
        self.add_module("2", nn.Linear(inner, d))

    def forward(self, x: Tensor) -> Tensor:
        h = getattr(self, "0")(x)
        a, gates = h.chunk(2, dim=-1)
        return getattr(self, "2")(a * F.gelu(gates))


class PerceiverLayer(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.add_module("0", PerceiverAttention(d))
        self.add_module("1", PerceiverFeedForward(d))

    def forward(self, latents: Tensor, context: Tensor) -> Tensor:
        latents = getattr(self, "0")(latents, context) + latents
        return getattr(self, "1")(latents) + latents


class RMSNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.scale = float(d) ** 0.5
        self.gamma = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class PerceiverResampler(nn.Module):
    def __init__(self, d: int, latents: int = 32, depth: int = 2):
        super().__init__()
        self.latents = nn.Parameter(torch.zeros(latents, d))
        self.layers = nn.ModuleList([PerceiverLayer(d) for _ in range(depth)])
        self.norm = RMSNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        latents = self.latents.unsqueeze(0).expand(x.shape[0], -1, -1)
        for layer in self.layers:
            latents = layer(latents, x)
        return self.norm(latents)


class CloneGpt(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.conditioning_encoder = ConditioningEncoder(80, d, heads)
        self.conditioning_perceiver = PerceiverResampler(d)


# ---------------------------------------------------------------------------------------------
# Speaker encoder: ResNetSpeakerEncoder(input_dim=64, proj_dim=512, log_input, use_torch_spec, ASP)


class SELayer(nn.Module):
    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        y = x.mean(dim=[2, 3])
        return x * self.fc(y).view(x.shape[0], x.shape[1], 1, 1)


class SEBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int, downsample: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SELayer(planes)
        self.has_downsample = downsample
        self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                        nn.BatchNorm2d(planes)) if downsample else nn.Sequential()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(F.relu(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        residual = self.downsample(x) if self.has_downsample else x
        return F.relu(out + residual)


class PreEmphasis(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("filter", torch.zeros(1, 1, 2))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(F.pad(x.unsqueeze(1), [1, 0], "reflect"), self.filter).squeeze(1)


class _Holder(nn.Module):
    def __init__(self, name: str, shape: List[int]):
        super().__init__()
        self.register_buffer(name, torch.zeros(shape))


class TorchSpec(nn.Module):
    """Keys torch_spec.0.filter, torch_spec.1.spectrogram.window, torch_spec.1.mel_scale.fb."""

    def __init__(self, n_fft: int, win: int, n_mels: int):
        super().__init__()
        self.add_module("0", PreEmphasis())
        spec = nn.Module()
        spec.add_module("spectrogram", _Holder("window", [win]))
        spec.add_module("mel_scale", _Holder("fb", [n_fft // 2 + 1, n_mels]))
        self.add_module("1", spec)


class SpeakerEncoder(nn.Module):
    def __init__(self, layers: List[int] = [3, 4, 6, 3], filters: List[int] = [32, 64, 128, 256],
                 n_mels: int = 64, proj_dim: int = 512):
        super().__init__()
        self.conv1 = nn.Conv2d(1, filters[0], 3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(filters[0])
        inplanes = filters[0]
        for li, (n, planes) in enumerate(zip(layers, filters)):
            stride = 1 if li == 0 else 2
            blocks = []
            for b in range(n):
                blocks.append(SEBasicBlock(inplanes, planes, stride if b == 0 else 1,
                                           b == 0 and (stride != 1 or inplanes != planes)))
                inplanes = planes
            setattr(self, f"layer{li + 1}", nn.Sequential(*blocks))
        self.torch_spec = TorchSpec(SPEAKER_N_FFT, SPEAKER_WIN, n_mels)
        wide = filters[-1] * (n_mels // 8)
        self.attention = nn.Sequential(nn.Conv1d(wide, 128, 1), nn.ReLU(), nn.BatchNorm1d(128),
                                       nn.Conv1d(128, wide, 1), nn.Softmax(dim=2))
        self.fc = nn.Linear(wide * 2, proj_dim)
        self.n_fft, self.hop, self.win = SPEAKER_N_FFT, SPEAKER_HOP, SPEAKER_WIN

    def forward(self, audio16k: Tensor) -> Tensor:
        """[1, T] at 16 kHz → L2-normalised [1, proj_dim]."""
        x = getattr(self.torch_spec, "0")(audio16k)
        spec_mod = getattr(self.torch_spec, "1")
        window = spec_mod.spectrogram.window
        fb = spec_mod.mel_scale.fb
        spec = power_spectrogram(x, self.n_fft, self.hop, self.win, window)
        x = torch.matmul(spec.transpose(-1, -2), fb).transpose(-1, -2)
        x = (x + 1e-6).log()
        x = F.instance_norm(x).unsqueeze(1)
        x = self.bn1(F.relu(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        w = self.attention(x)
        mu = torch.sum(x * w, dim=2)
        sg = torch.sqrt((torch.sum((x ** 2) * w, dim=2) - mu ** 2).clamp(min=1e-5))
        x = self.fc(torch.cat((mu, sg), 1))
        return F.normalize(x, p=2.0, dim=1)


class CloneHifi(nn.Module):
    def __init__(self):
        super().__init__()
        self.speaker_encoder = SpeakerEncoder()


# ---------------------------------------------------------------------------------------------


class XttsCloner(nn.Module):
    """clone.ts. `clone(clips, rates)`: mono float32 clips [T] at their rates →
    (gpt_cond_latent [1, 32, d], speaker_embedding [1, 512, 1]). Raises when no chunk of the
    concatenated audio reaches 0.33 s (the engine checks lengths before calling)."""

    def __init__(self, d: int, heads: int, gpt_cond_len: int, gpt_cond_chunk_len: int, max_ref_len: int,
                 sound_norm_refs: bool):
        super().__init__()
        self.register_buffer("mel_stats", torch.ones(80))
        self.gpt = CloneGpt(d, heads)
        self.hifigan_decoder = CloneHifi()
        self.register_buffer("mel_window", torch.hann_window(GPT_WIN), persistent=False)
        self.register_buffer("mel_fb", melscale_fbanks_slaney(GPT_N_FFT // 2 + 1, 0.0, GPT_F_MAX,
                                                              GPT_MELS, GPT_RATE), persistent=False)
        self.rate, self.speaker_rate, self.min_chunk = GPT_RATE, SPEAKER_RATE, GPT_RATE * MIN_CHUNK_SECONDS
        self.n_fft, self.hop, self.win = GPT_N_FFT, GPT_HOP, GPT_WIN
        self.gpt_cond_len = gpt_cond_len
        self.gpt_cond_chunk_len = gpt_cond_chunk_len
        self.max_ref_len = max_ref_len
        self.sound_norm_refs = sound_norm_refs

    def _mel(self, chunk: Tensor) -> Tensor:
        """wav_to_mel_cloning: [1, T] → [1, 80, frames]."""
        spec = power_spectrogram(chunk, self.n_fft, self.hop, self.win, self.mel_window)
        mel = torch.matmul(spec.transpose(-1, -2), self.mel_fb).transpose(-1, -2)
        mel = torch.log(torch.clamp(mel, min=1e-5))
        return mel / self.mel_stats.unsqueeze(0).unsqueeze(-1)

    @torch.jit.export
    def gpt_cond_latent(self, audio: Tensor) -> Tensor:
        """get_gpt_cond_latents on 22,050 Hz audio [1, T]: [1, 32, d]."""
        if self.gpt_cond_len > 0:
            audio = audio[:, :self.rate * self.gpt_cond_len]
        step = self.rate * self.gpt_cond_chunk_len
        # Coqui runs each chunk alone; the full-length ones go through as one batch here (every
        # operation is per sample, so each chunk's latent is the same), the short last one alone.
        full: List[Tensor] = []
        last: List[Tensor] = []
        for i in range(0, audio.shape[1], step):
            chunk = audio[:, i:i + step]
            if float(chunk.shape[-1]) < self.min_chunk:
                continue
            if chunk.shape[-1] == step:
                full.append(self._mel(chunk))
            else:
                last.append(self._mel(chunk))
        embs: List[Tensor] = []
        for mels in (full, last):
            if len(mels) > 0:
                conds = self.gpt.conditioning_encoder(torch.cat(mels))
                embs.extend(self.gpt.conditioning_perceiver(conds.permute(0, 2, 1)).split(1))  # [1, 32, d] each
        if len(embs) == 0:
            raise RuntimeError("reference audio too short (minimum length: 0.33 seconds)")
        return torch.stack(embs).mean(dim=0)

    @torch.jit.export
    def speaker_embedding(self, audio: Tensor) -> Tensor:
        """get_speaker_embedding on 22,050 Hz audio [1, T]: [1, 512, 1]."""
        return self.hifigan_decoder.speaker_encoder(resample(audio, self.rate, self.speaker_rate)).unsqueeze(-1)

    @torch.jit.export
    def clone(self, clips: List[Tensor], rates: List[int]) -> Tuple[Tensor, Tensor]:
        audios: List[Tensor] = []
        embs: List[Tensor] = []
        for i in range(len(clips)):
            audio = clips[i].float().reshape(1, -1)
            audio = resample(audio, rates[i], self.rate).clamp(-1.0, 1.0)  # load_audio
            audio = audio[:, :self.rate * self.max_ref_len]
            if self.sound_norm_refs:
                audio = (audio / torch.abs(audio).max()) * 0.75
            embs.append(self.speaker_embedding(audio))
            audios.append(audio)
        latent = self.gpt_cond_latent(torch.cat(audios, dim=-1))
        return latent, torch.stack(embs).mean(dim=0)

    def forward(self, clips: List[Tensor], rates: List[int]) -> Tuple[Tensor, Tensor]:
        return self.clone(clips, rates)
