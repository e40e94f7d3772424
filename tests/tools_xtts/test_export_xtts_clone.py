#!/usr/bin/env python3
"""export_xtts.py's voice-cloning part (tools/xtts_clone.py, clone.ts; the numbers against Coqui
are tests/upstream_xtts/test_coqui_cloning.py): the manifest's `cloning` section, exports that
cannot clone, shape checks, and clone.ts's audio front ends against independent computations.

Run by ctest (tests/tools_xtts/CMakeLists.txt) with PYTHONPATH=tools and VOX_TINY_DIR set.
"""
import json
import math
import os
import shutil
import tempfile
import unittest

import torch

import export_xtts  # noqa: E402
import xtts_clone  # noqa: E402

TINY = os.environ.get("VOX_TINY_DIR", "")
COQUI_CKPT = os.path.join(TINY, "checkpoints", "xtts-tiny-coqui")
COQUI_MODEL = os.path.join(TINY, "models-coqui", "xtts-tiny-coqui")
TINY_MODEL = os.path.join(TINY, "models", "xtts-tiny")
LEGACY_MODEL = os.path.join(TINY, "legacy", "xtts-tiny-v1")


def manifest(d):
    with open(os.path.join(d, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


class CloneExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(os.path.join(COQUI_MODEL, "manifest.json")):
            raise RuntimeError(f"tiny models missing under VOX_TINY_DIR={TINY!r}: build target tiny_xtts")
        cls.tmp = tempfile.mkdtemp(prefix="tools_xtts_clone_")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_manifest_of_an_export_that_clones(self):
        m = manifest(COQUI_MODEL)
        self.assertEqual(m["exporter"]["version"], export_xtts.EXPORTER_VERSION)
        c = m["cloning"]
        self.assertTrue(c["available"])
        self.assertEqual(c["file"], "clone.ts")
        self.assertIn("clone.ts", m["files"])
        self.assertRegex(c["voice_model_id"], r"^xtts-v2-[0-9a-f]{16}-c1$")
        with open(os.path.join(COQUI_CKPT, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        for k in ("gpt_cond_len", "gpt_cond_chunk_len", "max_ref_len", "sound_norm_refs"):
            self.assertEqual(c[k], config[k], k)
        self.assertEqual((c["gpt_sample_rate"], c["speaker_sample_rate"], c["speaker_dim"]), (22050, 16000, 512))

    def test_exports_that_cannot_clone_say_why(self):
        c = manifest(TINY_MODEL)["cloning"]
        self.assertFalse(c["available"])
        self.assertIn("speaker width 16", c["reason"])
        self.assertFalse(os.path.exists(os.path.join(TINY_MODEL, "clone.ts")))
        self.assertNotIn("cloning", manifest(LEGACY_MODEL))  # exporter version 1 had none

    def test_checkpoint_without_cloning_keys_exports_without_cloning(self):
        d = os.path.join(self.tmp, "no_clone")
        shutil.copytree(COQUI_CKPT, d)
        sd = torch.load(os.path.join(d, "model.pth"))["model"]
        sd = {k: v for k, v in sd.items() if not k.startswith(export_xtts.CLONE_PREFIXES)}
        torch.save({"model": sd}, os.path.join(d, "model.pth"))
        m = export_xtts.export(d, os.path.join(self.tmp, "no_clone_out"))
        self.assertFalse(m["cloning"]["available"])
        self.assertIn("none of the cloning weights", m["cloning"]["reason"])
        self.assertNotIn("clone.ts", m["files"])

    def test_a_cloning_key_of_the_wrong_shape_is_an_error(self):
        d = os.path.join(self.tmp, "bad_shape")
        shutil.copytree(COQUI_CKPT, d)
        sd = torch.load(os.path.join(d, "model.pth"))["model"]
        sd["gpt.conditioning_perceiver.latents"] = torch.zeros(16, 64)
        torch.save({"model": sd}, os.path.join(d, "model.pth"))
        with self.assertRaisesRegex(export_xtts.ExportError, "gpt.conditioning_perceiver.latents"):
            export_xtts.export(d, os.path.join(self.tmp, "bad_shape_out"))

    def test_voice_model_id_is_the_checkpoints_not_the_exports(self):
        a = export_xtts.export(COQUI_CKPT, os.path.join(self.tmp, "f32"))
        b = export_xtts.export(COQUI_CKPT, os.path.join(self.tmp, "bf16"), dtype="bfloat16")
        self.assertEqual(a["cloning"]["voice_model_id"], b["cloning"]["voice_model_id"])
        self.assertEqual(a["cloning"]["voice_model_id"], manifest(COQUI_MODEL)["cloning"]["voice_model_id"])

    def test_resample_keeps_a_tone_and_has_torchaudios_length(self):
        # A 1 kHz tone resampled 48 kHz -> 22,050 Hz is a 1 kHz tone at the new rate (away from
        # the edges), ceil(22050·n/48000) samples long.
        n = 48000
        x = torch.sin(2 * math.pi * 1000 * torch.arange(n) / 48000).reshape(1, -1)
        y = xtts_clone.resample(x, 48000, 22050)
        self.assertEqual(y.shape[1], math.ceil(22050 * n / 48000))
        want = torch.sin(2 * math.pi * 1000 * torch.arange(y.shape[1]) / 22050)
        self.assertLess(float((y[0, 200:-200] - want[200:-200]).abs().max()), 2e-2)
        self.assertTrue(torch.equal(xtts_clone.resample(x, 16000, 16000), x))

    def test_slaney_filterbank_has_unit_area_per_band(self):
        # Slaney normalisation: each triangle's area in Hz (height · base / 2) is 1.
        fb = xtts_clone.melscale_fbanks_slaney(1025, 0.0, 8000.0, 80, 22050)
        self.assertEqual(list(fb.shape), [1025, 80])
        hz = 11025 / 1024
        area = fb.sum(dim=0) * hz
        self.assertLess(float((area[10:] - 1).abs().max()), 0.05)

    def test_clone_ts_runs_and_refuses_audio_shorter_than_a_chunk(self):
        m = torch.jit.load(os.path.join(COQUI_MODEL, "clone.ts"))
        x = 0.1 * torch.sin(2 * math.pi * 150 * torch.arange(24000) / 24000)
        lat, emb = m.clone([x], [24000])
        self.assertEqual(list(lat.shape), [1, 32, 64])
        self.assertEqual(list(emb.shape), [1, 512, 1])
        self.assertAlmostEqual(float(emb.norm()), 1.0, places=5)
        with self.assertRaisesRegex(Exception, "too short"):
            m.clone([x[:6000]], [24000])


if __name__ == "__main__":
    unittest.main(verbosity=2)
