#!/usr/bin/env python3
"""tools/make_synthetic_model.py --arch xtts at small scale: every preset's structure (its layer
count) with small widths goes through the real exporter path, so a change in
tools/export_xtts.py that breaks the synthetic maker fails here rather than on a user's machine
(the full-size presets write 0.2 to 1.8 GB)."""
import json
import os
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("VOX_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
sys.path.insert(0, os.path.join(SOURCE, "tools"))
import export_xtts  # noqa: E402
import make_synthetic_model as synthetic  # noqa: E402

SMALL = dict(d=32, heads=4, hifi_c0=32, speaker_dim=16)


class SyntheticXttsTest(unittest.TestCase):
    def test_every_preset_exports_at_small_widths(self):
        presets = dict(synthetic.XTTS_PRESETS)
        self.assertIn("v2", presets)
        for name, full in presets.items():
            with self.subTest(preset=name), tempfile.TemporaryDirectory() as tmp:
                small = dict(full, **SMALL)
                synthetic.XTTS_PRESETS[name] = small
                try:
                    out = os.path.join(tmp, "model")
                    manifest = synthetic.make_xtts(name, "float32", out, seed=7)
                finally:
                    synthetic.XTTS_PRESETS[name] = full
                self.assertEqual(manifest["architecture"], "xtts-v2")
                self.assertEqual(manifest["exporter"]["version"], export_xtts.EXPORTER_VERSION)
                with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
                    written = json.load(f)
                self.assertEqual(written["source"]["preset"], name)
                module = torch.jit.load(os.path.join(out, "model.ts"))
                for method in ("prefix", "step", "step_slots", "decode_frames"):
                    self.assertTrue(hasattr(module, method), method)
                layers = sum(1 for n, _ in module.named_parameters() if n.endswith("attn.c_attn.weight"))
                self.assertEqual(layers, full["layers"])
                voices = torch.jit.load(os.path.join(out, "voices.ts"))
                self.assertEqual(tuple(voices.cond_latents.shape), (len(synthetic.XTTS_VOICES), 32, SMALL["d"]))


if __name__ == "__main__":
    unittest.main()
