"""Slow: a synthetic checkpoint with NLLB-200-distilled-600M's real dimensions (d_model 1024,
vocab 256206, 16 heads, ffn 4096, 1024 positions) but two layers per stack exports through the
command line, stays within one copy of the weights in memory, and runs; the exported model and the
eager reference agree. About 1.3 GB of weights: one model in memory at a time."""
import gc
import json
import os
import subprocess
import sys
import unittest

import nllb_test_util as util  # noqa: E402  (sets sys.path to tools/)

import torch  # noqa: E402

import nllb_reference as ref  # noqa: E402
import tiny_nllb  # noqa: E402

DIMS = {"d_model": 1024, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 16,
        "decoder_attention_heads": 16, "encoder_ffn_dim": 4096, "decoder_ffn_dim": 4096,
        "max_position_embeddings": 1024}
VOCAB = 256206

RUN_AND_REPORT_PEAK = """
import runpy, sys
sys.argv = sys.argv[1:]
code = 0
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    code = e.code
try:
    with open("/proc/self/status") as f:
        peak = [l.split()[1] for l in f if l.startswith("VmHWM:")][0]
except OSError:
    peak = "unknown"
print("VmHWM_kB", peak)
sys.exit(code)
"""


class Nllb600mDimsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        cls.ckpt = os.path.join(util.workdir(), "ckpt-600m-dims")
        tiny_nllb.write_checkpoint(cls.ckpt, DIMS, vocab_size=VOCAB)
        gc.collect()
        cls.weights_bytes = os.path.getsize(os.path.join(cls.ckpt, "pytorch_model.bin"))
        cls.out = os.path.join(util.workdir(), "model-600m-dims")
        # Runs the command-line exporter and reports its own peak RSS (VmHWM starts afresh at exec;
        # a fork's ru_maxrss would include the parent's pages).
        p = subprocess.run([sys.executable, "-c", RUN_AND_REPORT_PEAK, os.path.join(util.TOOLS, "export_nllb.py"),
                            "--checkpoint", cls.ckpt, "--out", cls.out, "--name", "nllb-600m-dims"],
                           capture_output=True, text=True)
        cls.export_rc, cls.export_err = p.returncode, p.stderr
        peaks = [line.split()[1] for line in p.stdout.splitlines() if line.startswith("VmHWM_kB ")]
        cls.export_peak = int(peaks[0]) * 1024 if peaks and peaks[0] != "unknown" else None

    def test_export_succeeds_with_one_copy_of_the_weights(self):
        self.assertEqual(self.export_rc, 0, self.export_err)
        with open(os.path.join(self.out, "manifest.json"), encoding="utf-8") as f:
            m = json.load(f)
        self.assertEqual(m["config"], dict(DIMS, vocab_size=VOCAB, scale_embedding=True))
        self.assertEqual(m["max_source_tokens"], 1024)
        # the tied embedding once: model.ts is about the size of the unique weights
        shared = VOCAB * 1024 * 4
        self.assertGreater(m["files"]["model.ts"]["size"], shared)
        self.assertLess(m["files"]["model.ts"]["size"], self.weights_bytes + 16 * 2**20)
        if self.export_peak is not None:
            # import torch ~ 0.25 GB; two copies of the weights would need > 2x
            self.assertLess(self.export_peak, 1.6 * self.weights_bytes,
                            f"exporter peak RSS {self.export_peak / 2**30:.2f} GiB for "
                            f"{self.weights_bytes / 2**30:.2f} GiB of weights")

    def test_exported_model_runs_and_matches_the_reference(self):
        self.assertEqual(self.export_rc, 0, self.export_err)
        tok = ref.Tokenizer(os.path.join(self.ckpt, "sentencepiece.bpe.model"), ref.load_codes(self.out))
        src = tok.encode("The weather is nice today, so we are going to the park.", "eng_Latn")
        tgt = tok.lang_id("fra_Latn")
        ts = ref.TorchScriptModel(self.out)
        a = ref.greedy(ts, src, tgt, 6)
        self.assertEqual(len(a.first_logits), VOCAB)
        self.assertTrue(torch.isfinite(torch.tensor(a.first_logits)).all())
        del ts
        gc.collect()
        reference = ref.ReferenceModel.from_checkpoint(self.ckpt)
        b = ref.greedy(reference, src, tgt, 6)
        del reference
        gc.collect()
        la, lb = torch.tensor(a.first_logits), torch.tensor(b.first_logits)
        self.assertLess(float((la - lb).abs().max()), 1e-3 * max(1.0, float(la.abs().max())))
        n = len(a.ids)
        for t, margin in enumerate(b.margins):
            if margin < 1e-3:  # a near-tie may flip between kernels
                n = t
                break
        self.assertEqual(a.ids[:n], b.ids[:n])


def tearDownModule():
    util.cleanup()


if __name__ == "__main__":
    unittest.main()
