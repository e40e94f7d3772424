#!/usr/bin/env python3
"""Every preset of tools/xtts_checkpoint.py, at small scale, loads unmodified and offline in Coqui
(coqui-tts in the reference environment: XttsConfig.load_json + Xtts.load_checkpoint, strict) and
exports with tools/export_xtts.py (Debian's python, $VOX_PYTHON).

- tiny-coqui (the build's build/tiny/checkpoints/xtts-tiny-coqui): strict load; its keys, order and
  shapes are exactly a fresh Xtts's state dict; the mel front end's buffers equal the ones Coqui
  computes; the CLI writes the same bytes as the build.
- tiny (build/tiny/checkpoints/xtts-tiny, vox's fast test model): every key matches Coqui's but the
  HiFi-GAN/speaker widths, which Coqui hard-codes (512) and this preset narrows to 32.
- v2, v2-2layer at d 32: strict load, export, manifest dimensions.

Run: ctest --test-dir build -R upstream_xtts_checkpoints --output-on-failure (label `reference`).
"""
import filecmp
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("VOX_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
TINY = os.environ.get("VOX_TINY_DIR", os.path.join(SOURCE, "build", "tiny"))
PYTHON = os.environ.get("VOX_PYTHON", "/usr/bin/python3")
TOOLS = os.path.join(SOURCE, "tools")
sys.path.insert(0, HERE)
import coqui_xtts  # noqa: E402
from TTS.tts.configs.xtts_config import XttsConfig  # noqa: E402
from TTS.tts.models.xtts import Xtts  # noqa: E402

FILES = ("config.json", "model.pth", "vocab.json", "speakers_xtts.pth")
BUFFERS = ("hifigan_decoder.speaker_encoder.torch_spec.0.filter",
           "hifigan_decoder.speaker_encoder.torch_spec.1.spectrogram.window",
           "hifigan_decoder.speaker_encoder.torch_spec.1.mel_scale.fb")


def run_tool(args, timeout=600):
    run = subprocess.run([PYTHON] + args, capture_output=True, timeout=timeout,
                         env=dict(os.environ, PYTHONPATH=TOOLS))
    if run.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({run.returncode}):\n{run.stderr.decode()}")
    return run.stdout.decode()


def fresh(checkpoint_dir):
    """A freshly initialised Coqui Xtts for the checkpoint's config (its own layout and buffers)."""
    config = XttsConfig()
    config.load_json(os.path.join(checkpoint_dir, "config.json"))
    return Xtts(config)


def saved_state(checkpoint_dir):
    return torch.load(os.path.join(checkpoint_dir, "model.pth"), map_location="cpu", weights_only=True)["model"]


class CoquiLoadsCheckpointsTest(unittest.TestCase):
    def assert_coqui_layout(self, checkpoint_dir):
        model, _ = coqui_xtts.load(checkpoint_dir)  # strict: raises on any missing/unexpected/mis-shaped key
        self.assertEqual(sorted(model.speaker_manager.speaker_names),
                         sorted(torch.load(os.path.join(checkpoint_dir, "speakers_xtts.pth"), weights_only=True)))
        own = fresh(checkpoint_dir).state_dict()
        sd = saved_state(checkpoint_dir)
        self.assertEqual(list(sd), list(own), "keys or their order differ from Coqui's state dict")
        for k, v in own.items():
            self.assertEqual(tuple(sd[k].shape), tuple(v.shape), k)
            self.assertEqual(sd[k].dtype, v.dtype, k)
        for k in BUFFERS:
            diff = float((sd[k] - own[k]).abs().max())
            self.assertLess(diff, 1e-5, f"{k}: written buffer differs from Coqui's by {diff}")
        return model

    def assert_exports(self, checkpoint_dir, out, layers):
        run_tool([os.path.join(TOOLS, "export_xtts.py"), "--checkpoint", checkpoint_dir, "--out", out])
        with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
            m = json.load(f)
        self.assertEqual(m["config"]["layers"], layers)
        self.assertEqual(m["config"]["hifigan"]["upsample_initial_channel"], 512)
        return m

    def test_tiny_coqui_loads_and_the_cli_writes_the_builds_bytes(self):
        ckpt = os.path.join(TINY, "checkpoints", "xtts-tiny-coqui")
        model = self.assert_coqui_layout(ckpt)
        self.assertEqual(model.args.gpt_layers, 3)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "ckpt")
            info = json.loads(run_tool([os.path.join(TOOLS, "xtts_checkpoint.py"), "--preset", "tiny-coqui",
                                        "--out", out]).splitlines()[-1])
            self.assertEqual(info["preset"], "tiny-coqui")
            for f in FILES:
                self.assertTrue(filecmp.cmp(os.path.join(out, f), os.path.join(ckpt, f), shallow=False), f)
        with open(os.path.join(TINY, "models-coqui", "xtts-tiny-coqui", "manifest.json"), encoding="utf-8") as f:
            m = json.load(f)
        self.assertEqual(m["config"]["hifigan"]["upsample_initial_channel"], 512)
        self.assertEqual(m["config"]["speaker_dim"], 512)

    def test_tiny_differs_from_coqui_only_in_vocoder_widths(self):
        ckpt = os.path.join(TINY, "checkpoints", "xtts-tiny")
        model = fresh(ckpt)
        with self.assertRaises(RuntimeError) as cm:
            model.load_state_dict(saved_state(ckpt), strict=True)
        message = str(cm.exception)
        self.assertNotIn("Missing key(s)", message)
        self.assertNotIn("Unexpected key(s)", message)
        mismatched = re.findall(r"size mismatch for ([\w.]+):", message)
        self.assertTrue(mismatched)
        others = [k for k in mismatched if not k.startswith("hifigan_decoder.waveform_decoder.")]
        self.assertEqual(others, [])
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "ckpt")
            run_tool([os.path.join(TOOLS, "xtts_checkpoint.py"), "--preset", "tiny", "--out", out])
            for f in FILES:
                self.assertTrue(filecmp.cmp(os.path.join(out, f), os.path.join(ckpt, f), shallow=False), f)

    def test_released_presets_at_small_width_load_and_export(self):
        for preset, layers in (("v2", 30), ("v2-2layer", 2)):
            with self.subTest(preset=preset), tempfile.TemporaryDirectory() as tmp:
                ckpt = os.path.join(tmp, "ckpt")
                run_tool(["-c", "import xtts_checkpoint, sys; "
                                f"xtts_checkpoint.make_random({preset!r}, sys.argv[1], 7, dims=dict(d=32, heads=4))",
                          ckpt])
                model = self.assert_coqui_layout(ckpt)
                self.assertEqual(model.args.gpt_layers, layers)
                self.assertEqual(model.args.gpt_number_text_tokens, 6681)
                m = self.assert_exports(ckpt, os.path.join(tmp, "model"), layers)
                self.assertEqual(m["config"]["num_text_tokens"], 6681)
                self.assertEqual(len(m["voices"]), 2)

    def test_bad_preset_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            run = subprocess.run([PYTHON, os.path.join(TOOLS, "xtts_checkpoint.py"), "--preset", "v3",
                                  "--out", os.path.join(tmp, "x")], capture_output=True)
        self.assertEqual(run.returncode, 2)
        self.assertIn("invalid choice: 'v3'", run.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
