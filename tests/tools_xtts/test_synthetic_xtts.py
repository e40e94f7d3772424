#!/usr/bin/env python3
"""tools/make_synthetic_model.py --arch xtts at small scale: every preset's structure (its layer
count) with small widths goes through the real path (tools/xtts_checkpoint.py writes the
checkpoint in Coqui's layout, tools/export_xtts.py exports it), so a change that breaks the
synthetic maker fails here rather than on a user's machine (the full-size presets write 1.9 GB)."""
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
import xtts_checkpoint  # noqa: E402

SMALL = dict(d=32, heads=4)


class SyntheticXttsTest(unittest.TestCase):
    def test_every_preset_exports_at_small_widths(self):
        self.assertEqual(sorted(synthetic.XTTS_PRESETS), ["v2", "v2-2layer"])
        for name, full in synthetic.XTTS_PRESETS.items():
            with self.subTest(preset=name), tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "model")
                manifest = synthetic.make_xtts(name, "float32", out, seed=7, dims=SMALL)
                self.assertEqual(manifest["architecture"], "xtts-v2")
                self.assertEqual(manifest["exporter"]["version"], export_xtts.EXPORTER_VERSION)
                self.assertEqual(manifest["config"]["num_text_tokens"], xtts_checkpoint.RELEASED_TEXT_TOKENS)
                self.assertEqual(manifest["config"]["speaker_dim"], 512)
                self.assertEqual(manifest["config"]["hifigan"]["upsample_initial_channel"], 512)
                with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
                    written = json.load(f)
                self.assertEqual(written["source"]["preset"], name)
                self.assertEqual(written["source"]["dims"]["layers"], full["layers"])
                module = torch.jit.load(os.path.join(out, "model.ts"))
                for method in ("prefix", "step", "step_slots", "decode_frames"):
                    self.assertTrue(hasattr(module, method), method)
                layers = sum(1 for n, _ in module.named_parameters() if n.endswith("attn.c_attn.weight"))
                self.assertEqual(layers, full["layers"])
                voices = torch.jit.load(os.path.join(out, "voices.ts"))
                self.assertEqual(tuple(voices.cond_latents.shape),
                                 (len(xtts_checkpoint.SYNTHETIC_VOICES), 32, SMALL["d"]))
                # The random weights give a waveform that is neither silent nor saturated.
                with torch.no_grad():
                    lat = torch.randn(1, 8, SMALL["d"], generator=torch.Generator().manual_seed(1))
                    wav = module.vocode(lat, voices.speaker_embeddings[:1], 1.0)
                peak = float(wav.abs().max())
                self.assertTrue(0.01 < peak < 0.999, peak)


if __name__ == "__main__":
    unittest.main()
