#!/usr/bin/env python3
"""vox's voice cloning against Coqui's `Xtts.get_conditioning_latents` on the tiny checkpoint in
Coqui's widths (build/tiny/checkpoints/xtts-tiny-coqui, exported with clone.ts to
build/tiny/models-coqui/xtts-tiny-coqui).

Reference audio is made here, deterministically: voiced signals (a harmonic series on a gliding
pitch, amplitude-modulated, a little seeded noise) at several sample rates, written as float32
WAV files for Coqui and raw float32 for vox. Voices:
- multi: three clips at 22,050, 48,000 and 16,000 Hz (resampling both ways; the GPT chunks run
  across clip boundaries; the speaker embedding is the mean of three);
- long: one 35 s clip at 24,000 Hz (max_ref_len and gpt_cond_len cut it to 30 s);
- short: one 0.5 s clip at 44,100 Hz (a single chunk shorter than gpt_cond_chunk_len).
Coqui runs get_conditioning_latents with the checkpoint config's gpt_cond_len, gpt_cond_chunk_len,
max_ref_len and sound_norm_refs (what Xtts.synthesize passes). Its `load_audio` reads files with
torchaudio.load, which in this torchaudio needs FFmpeg through torchcodec; the test swaps in a
loader that reads the file with soundfile and then does exactly what load_audio does (mono mean,
torchaudio.functional.resample to 22,050 Hz, clip to [-1, 1]). vox clones through
XttsEngine::CloneVoice (tests/upstream_xtts/xtts_stream_dump --clone, argv[1]).

Asserted: latents and speaker embeddings within 1e-4 (max |Δ|, float32) of Coqui's; voices differ
from one another (the comparison could fail); greedy Synthesize with vox's cloned voice gives
the codes of Coqui's `inference` with Coqui's own latents, and a waveform within 1e-3.

Run: ctest --test-dir build -R upstream_xtts_cloning --output-on-failure (label `reference`).
"""
import json
import os
import sys
import tempfile
import unittest

import numpy as np
import soundfile
import torch
import torchaudio

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import coqui_xtts  # noqa: E402
from coqui_xtts import MODEL, WAVEFORM_TOLERANCE  # noqa: E402
import TTS.tts.models.xtts as coqui_xtts_module  # noqa: E402

LATENT_TOLERANCE = 1e-4
TEXTS = [("Hello, world! This is a tiny test.", "en"), ("¡Hola, mundo! ¿Dónde está la estación?", "es")]


def voiced(seconds: float, rate: int, f0: float, seed: int) -> np.ndarray:
    """A few seconds of a voice-like signal: harmonics of a gliding f0, syllable-rate envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / rate
    x = sum((0.5 / k) * np.sin(k * phase) for k in range(1, 12))
    x = x * (0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 1.3 * t)))
    x = x + 0.01 * rng.standard_normal(len(t))
    return (0.6 * x / np.abs(x).max()).astype(np.float32)


VOICES = {
    "multi": [(5.0, 22050, 120.0, 1), (6.5, 48000, 210.0, 2), (3.2, 16000, 150.0, 3)],
    "long": [(35.0, 24000, 100.0, 4)],
    "short": [(0.5, 44100, 180.0, 5)],
}


def coqui_load_audio(path, sampling_rate):
    """Coqui's load_audio (xtts.py) with soundfile reading the file instead of torchaudio.load."""
    data, lsr = soundfile.read(path, dtype="float32", always_2d=True)
    audio = torch.from_numpy(np.ascontiguousarray(data.T))
    if audio.size(0) != 1:
        audio = torch.mean(audio, dim=0, keepdim=True)
    if lsr != sampling_rate:
        audio = torchaudio.functional.resample(audio, lsr, sampling_rate)
    audio.clip_(-1, 1)
    return audio


class CoquiCloningTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        coqui_xtts_module.load_audio = coqui_load_audio
        cls.model, cls.config = coqui_xtts.load(coqui_xtts.CHECKPOINT)
        cls.tmp = tempfile.TemporaryDirectory(prefix="upstream_xtts_clone_")
        tmp = cls.tmp.name
        cls.coqui = {}
        specs = []
        for name, clips in VOICES.items():
            paths, items = [], []
            for i, (seconds, rate, f0, seed) in enumerate(clips):
                x = voiced(seconds, rate, f0, seed)
                wav = os.path.join(tmp, f"{name}_{i}.wav")
                soundfile.write(wav, x, rate, subtype="FLOAT")
                raw = os.path.join(tmp, f"{name}_{i}.f32")
                x.astype("<f4").tofile(raw)
                paths.append(wav)
                items.append(f"{rate}:{raw}")
            specs += ["--clone", f"{name}=" + ",".join(items)]
            lat, emb = cls.model.get_conditioning_latents(
                paths, max_ref_length=cls.config.max_ref_len, gpt_cond_len=cls.config.gpt_cond_len,
                gpt_cond_chunk_len=cls.config.gpt_cond_chunk_len, sound_norm_refs=cls.config.sound_norm_refs)
            cls.coqui[name] = (lat, emb)
        cls.cases = [(name, lang, text) for name in VOICES for text, lang in TEXTS]
        cls.vox_cases, cls.clone_info = coqui_xtts.stream_dump(
            cls.cases, cls.config.repetition_penalty, tmp, specs)
        cls.vox = {}
        for name in VOICES:
            d = cls.clone_info[name]["dim"]
            lat = np.fromfile(os.path.join(tmp, f"clone_{name}_latent.f32"), dtype="<f4").reshape(1, -1, d)
            emb = np.fromfile(os.path.join(tmp, f"clone_{name}_speaker.f32"), dtype="<f4").reshape(1, -1, 1)
            cls.vox[name] = (lat, emb)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_settings_are_the_checkpoints(self):
        with open(os.path.join(MODEL, "manifest.json"), encoding="utf-8") as f:
            cloning = json.load(f)["cloning"]
        self.assertTrue(cloning["available"])
        for k, coqui_name in (("gpt_cond_len", "gpt_cond_len"), ("gpt_cond_chunk_len", "gpt_cond_chunk_len"),
                              ("max_ref_len", "max_ref_len"), ("sound_norm_refs", "sound_norm_refs")):
            self.assertEqual(cloning[k], self.config[coqui_name], k)
        self.assertEqual(self.clone_info["multi"]["model_id"], cloning["voice_model_id"])

    def test_latents_and_embeddings_within_tolerance(self):
        for name in VOICES:
            with self.subTest(voice=name):
                c_lat, c_emb = (t.detach().cpu().float().numpy() for t in self.coqui[name])
                v_lat, v_emb = self.vox[name]
                self.assertEqual(v_lat.shape, c_lat.shape)
                self.assertEqual(v_emb.shape, c_emb.shape)
                d_lat = float(np.abs(v_lat - c_lat).max())
                d_emb = float(np.abs(v_emb - c_emb).max())
                print(f"{name}: max |Δ| latent {d_lat:.3g} (|latent| up to {np.abs(c_lat).max():.3g}), "
                      f"speaker embedding {d_emb:.3g}; vox clone {self.clone_info[name]['seconds']:.3f} s")
                self.assertLessEqual(d_lat, LATENT_TOLERANCE)
                self.assertLessEqual(d_emb, LATENT_TOLERANCE)

    def test_voices_differ(self):
        # Equal outputs for every input would pass the comparison above for a broken front end.
        names = list(VOICES)
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                a, b = self.coqui[names[i]], self.coqui[names[j]]
                self.assertGreater(float((a[0] - b[0]).abs().max()), 1e-2, (names[i], names[j]))
                self.assertGreater(float((a[1] - b[1]).abs().max()), 1e-3, (names[i], names[j]))

    def test_greedy_codes_identical_with_coquis_latents(self):
        worst = 0.0
        for r, (name, lang, text) in zip(self.vox_cases, self.cases):
            with self.subTest(voice=name, text=text):
                lat, emb = self.coqui[name]
                codes, wav = coqui_xtts.greedy_inference_with(self.model, self.config, text, lang, lat, emb)
                margin = min(r["margins"]) if r["margins"] else float("nan")
                print(f"{name} | {lang} | {text!r}: {len(codes)} codes, smallest vox top-2 margin {margin:.3g}")
                self.assertGreaterEqual(len(codes), 8)
                self.assertEqual(codes, r["codes"], f"coqui {codes}\nvox   {r['codes']}")
                self.assertEqual(len(r["wav"]), len(wav))
                diff = float(np.abs(r["wav"].astype(np.float64) - wav.astype(np.float64)).max())
                worst = max(worst, diff)
                self.assertLessEqual(diff, WAVEFORM_TOLERANCE)
        print(f"largest |vox - coqui| waveform difference: {worst:.3g} (bound {WAVEFORM_TOLERANCE})")

    def test_codes_depend_on_the_voice(self):
        by_voice = {}
        for r, (name, lang, text) in zip(self.vox_cases, self.cases):
            by_voice.setdefault(text, set()).add(tuple(r["codes"]))
        self.assertTrue(any(len(s) > 1 for s in by_voice.values()), "every cloned voice gave the same codes")


if __name__ == "__main__":
    coqui_xtts.run_tests()
