"""What the comparisons of vox's XTTS with Coqui's share: the tiny checkpoint in Coqui's widths
and its export; Coqui's XTTS (coqui-tts in the reference environment), loaded the way its docs
show: `XttsConfig.load_json` + `Xtts.load_checkpoint(checkpoint_dir=...)` (strict), voices from
speakers_xtts.pth through its speaker manager; and vox's side, run by xtts_stream_dump, whose
path the test takes as its first argument (run_tests).
"""
import json
import os
import subprocess
import sys
import unittest

import numpy as np
import torch
from TTS.tts.configs.xtts_config import XttsConfig
from TTS.tts.models.xtts import Xtts

_HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("VOX_SOURCE_DIR", os.path.abspath(os.path.join(_HERE, "..", "..")))
TINY = os.environ.get("VOX_TINY_DIR", os.path.join(SOURCE, "build", "tiny"))
CHECKPOINT = os.path.join(TINY, "checkpoints", "xtts-tiny-coqui")
MODEL = os.path.join(TINY, "models-coqui", "xtts-tiny-coqui")
NLLB = {"en": "eng_Latn", "es": "spa_Latn"}
# vox's streamed waveform against Coqui's whole decode of the same codes: max |diff|.
WAVEFORM_TOLERANCE = 1e-3

_stream_dump = None  # tests/upstream_xtts/xtts_stream_dump, set by run_tests


def run_tests():
    """unittest.main for a test run as `SCRIPT PATH/TO/xtts_stream_dump [unittest arguments]`."""
    global _stream_dump
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        _stream_dump = sys.argv.pop(1)
    unittest.main(module="__main__", verbosity=2)


def stream_dump(cases, repetition_penalty, out_dir, extra_args=()):
    """Runs xtts_stream_dump on MODEL with `cases` [(voice, language as in NLLB, text)], greedy
    with `repetition_penalty`, writing into `out_dir`; `extra_args` (e.g. --clone NAME=...) go
    to it as they are. Returns (the JSON line of each case in order, each with its streamed
    waveform read into "wav" as float32; {clone name: its JSON line})."""
    if not _stream_dump or not os.path.isfile(_stream_dump):
        raise RuntimeError(f"usage: {os.path.basename(sys.argv[0])} PATH/TO/xtts_stream_dump")
    tsv = "".join(f"{v}\t{NLLB[lang]}\t{text}\n" for v, lang, text in cases)
    run = subprocess.run([_stream_dump, "--model", MODEL, "--out", out_dir, "--repetition-penalty",
                          repr(float(repetition_penalty)), *extra_args],
                         input=tsv.encode("utf-8"), capture_output=True, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"xtts_stream_dump failed ({run.returncode}): {run.stderr.decode()}")
    lines = [json.loads(line) for line in run.stdout.decode().splitlines() if line.startswith("{")]
    vox_cases = [r for r in lines if "case" in r]
    for r in vox_cases:
        r["wav"] = np.fromfile(os.path.join(out_dir, f"case_{r['case']}.f32"), dtype="<f4")
    return vox_cases, {r["clone"]: r for r in lines if "clone" in r}


def load(checkpoint_dir: str):
    """(Xtts in eval mode, its XttsConfig)."""
    config = XttsConfig()
    config.load_json(f"{checkpoint_dir}/config.json")
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=checkpoint_dir, eval=True)
    return model, config


def voice(model, name: str):
    """(gpt_cond_latent, speaker_embedding) of a built-in voice, as Xtts.synthesize unpacks them."""
    gpt_cond_latent, speaker_embedding = model.speaker_manager.speakers[name].values()
    return gpt_cond_latent, speaker_embedding


def greedy_inference(model, config, text: str, language: str, name: str):
    """Xtts.inference with greedy decoding and the checkpoint's repetition penalty; returns
    (codes as generated, stop code included when produced; waveform as float32 numpy)."""
    lat, emb = voice(model, name)
    return greedy_inference_with(model, config, text, language, lat, emb)


def greedy_inference_with(model, config, text: str, language: str, lat, emb):
    """greedy_inference with a voice given as (gpt_cond_latent, speaker_embedding)."""
    recorded = []
    generate = model.gpt.generate

    def recording(*args, **kwargs):
        codes = generate(*args, **kwargs)
        recorded.append(codes[0].tolist())
        return codes

    model.gpt.generate = recording
    try:
        with torch.no_grad():
            out = model.inference(text, language, lat, emb, do_sample=False,
                                  repetition_penalty=config.repetition_penalty)
    finally:
        del model.gpt.generate
    if len(recorded) != 1:
        raise AssertionError(f"expected one generate() call, saw {len(recorded)}")
    wav = out["wav"]
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    return recorded[0], wav.astype("float32").reshape(-1)
