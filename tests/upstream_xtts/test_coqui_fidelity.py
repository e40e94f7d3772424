#!/usr/bin/env python3
"""vox's XTTS against Coqui's `Xtts.inference` on the tiny checkpoint in Coqui's widths
(build/tiny/checkpoints/xtts-tiny-coqui, exported to build/tiny/models-coqui/xtts-tiny-coqui).

For every built-in voice and texts in English and Spanish, Coqui runs greedy
(`do_sample=False`) with the checkpoint config's repetition penalty, generates the codes, recomputes
the GPT latents with a second full pass and decodes the whole utterance with HiFi-GAN at once. vox
(tests/upstream_xtts/xtts_stream_dump, argv[1]) synthesizes the same request through
XttsEngine::Synthesize (greedy, the same repetition penalty) and streams the waveform chunk by
chunk, as voxd does before its Opus encoder. Asserted: identical codes, and the streamed waveform
within 1e-3 (max |diff|) of Coqui's, with the same length. A failure prints the first differing
position and both sequences (codes, or samples around it).

Run: ctest --test-dir build -R upstream_xtts_fidelity --output-on-failure (label `reference`).
"""
import os
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import coqui_xtts  # noqa: E402
from coqui_xtts import WAVEFORM_TOLERANCE  # noqa: E402

TEXTS = [
    ("Hello, world! This is a tiny test.", "en"),
    ("Good morning, where is the station?", "en"),
    ("¡Hola, mundo! ¿Dónde está la estación?", "es"),
    ("Buenos días, señora; qué tal?", "es"),
]


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b)) if len(a) != len(b) else -1


class CoquiFidelityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model, cls.config = coqui_xtts.load(coqui_xtts.CHECKPOINT)
        cls.voices = list(cls.model.speaker_manager.speaker_names)
        cls.cases = [(v, lang, text) for text, lang in TEXTS for v in cls.voices]
        cls.tmp = tempfile.TemporaryDirectory(prefix="upstream_xtts_")
        cls.vox, _ = coqui_xtts.stream_dump(cls.cases, cls.config.repetition_penalty, cls.tmp.name)
        cls.coqui = [coqui_xtts.greedy_inference(cls.model, cls.config, text, lang, v)
                     for v, lang, text in cls.cases]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_builtin_voice_and_text_was_run(self):
        self.assertEqual(sorted(self.voices), ["Ana Tiny", "Bruno Tiny", "Carla Tiny"])
        self.assertEqual(len(self.vox), len(self.cases))
        self.assertEqual(float(self.config.repetition_penalty), 5.0)

    def test_outputs_depend_on_text_and_voice(self):
        # A comparison of constant outputs would prove nothing: codes differ between texts and
        # waveforms between voices, utterances have many codes and end with the stop code.
        codes = {tuple(c) for c, _ in self.coqui}
        self.assertGreater(len(codes), len(TEXTS))
        for (c, wav), (v, lang, text) in zip(self.coqui, self.cases):
            self.assertGreaterEqual(len(c), 8, (v, text))
            self.assertLess(len(c), 602, (v, text))
            self.assertEqual(c[-1], 1025, (v, text))
            self.assertGreater(float(np.abs(wav).max()), 0.01, (v, text))

    def test_codes_identical(self):
        for (c_codes, _), r, (v, lang, text) in zip(self.coqui, self.vox, self.cases):
            with self.subTest(voice=v, text=text):
                i = first_difference(c_codes, r["codes"])
                margin = min(r["margins"]) if r["margins"] else float("nan")
                print(f"{v} | {lang} | {text!r}: {len(c_codes)} codes, smallest vox top-2 margin {margin:.3g}")
                if i >= 0:
                    self.fail(f"codes differ first at position {i} (vox margin there "
                              f"{r['margins'][i] if i < len(r['margins']) else 'n/a'})\n"
                              f"  coqui ({len(c_codes)}): {c_codes}\n  vox   ({len(r['codes'])}): {r['codes']}")

    def test_streamed_waveform_within_tolerance_of_whole_decode(self):
        worst = 0.0
        for (c_codes, c_wav), r, (v, lang, text) in zip(self.coqui, self.vox, self.cases):
            with self.subTest(voice=v, text=text):
                if c_codes != r["codes"]:
                    self.fail("codes differ (see test_codes_identical); waveforms not comparable")
                wav = r["wav"]
                self.assertEqual(len(wav), len(c_wav), f"samples: vox {len(wav)}, coqui {len(c_wav)}")
                diff = np.abs(wav.astype(np.float64) - c_wav.astype(np.float64))
                worst = max(worst, float(diff.max()))
                print(f"{v} | {lang} | {text!r}: {len(wav)} samples in {r['chunks']} chunks, "
                      f"max |vox - coqui| {diff.max():.3g}")
                bad = np.nonzero(diff > WAVEFORM_TOLERANCE)[0]
                if len(bad):
                    i = int(bad[0])
                    lo, hi = max(0, i - 4), min(len(wav), i + 5)
                    self.fail(f"waveforms differ first at sample {i} (chunk seams: see 'chunks'); "
                              f"max |diff| {diff.max():.3g} at {int(diff.argmax())}\n"
                              f"  coqui[{lo}:{hi}]: {c_wav[lo:hi].tolist()}\n"
                              f"  vox  [{lo}:{hi}]: {wav[lo:hi].tolist()}")
        print(f"largest |vox - coqui| over all cases: {worst:.3g} (bound {WAVEFORM_TOLERANCE})")


if __name__ == "__main__":
    coqui_xtts.run_tests()
