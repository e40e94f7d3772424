"""tools/tiny_nllb.py make(): layout, determinism-relevant settings and the golden files'
properties (outputs depend on the input; some stop at </s>, some at the limit), and the
exported models reproduce the goldens."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import unittest

import nllb_test_util as util  # noqa: E402  (sets sys.path to tools/)

import nllb_reference as ref  # noqa: E402
import tiny_nllb  # noqa: E402


class TinyNllbGoldenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = os.path.join(util.workdir(), "tiny")
        tiny_nllb.make(cls.out)
        with open(os.path.join(cls.out, "golden", "nllb-tiny.json"), encoding="utf-8") as f:
            cls.golden = json.load(f)
        with open(os.path.join(cls.out, "golden", "nllb-tiny-bf16.json"), encoding="utf-8") as f:
            cls.bf16 = json.load(f)

    def test_layout(self):
        ckpt = os.path.join(self.out, "checkpoints", "nllb-tiny")
        self.assertEqual(sorted(os.listdir(ckpt)), ["config.json", "model.safetensors", "pytorch_model.bin",
                                                    "sentencepiece.bpe.model", "special_tokens_map.json",
                                                    "tokenizer.json", "tokenizer_config.json"])
        for d in ("models/nllb-tiny", "models-bf16/nllb-tiny-bf16"):
            self.assertEqual(sorted(os.listdir(os.path.join(self.out, d))),
                             ["manifest.json", "model.ts", "sentencepiece.bpe.model"])
        # voxd's default model dir holds exactly one NLLB model
        self.assertEqual(os.listdir(os.path.join(self.out, "models")), ["nllb-tiny"])

    def test_outputs_depend_on_the_input(self):
        cases = self.golden["cases"]
        self.assertGreaterEqual(len(cases), 12)
        greedy = [tuple(c["greedy"]["ids"]) for c in cases]
        self.assertGreaterEqual(len(set(greedy)), len(cases) - 1, "different inputs must give different outputs")
        # same target language, different sources: different outputs
        by_target = {}
        for c in cases:
            by_target.setdefault(c["target"], set()).add(tuple(c["greedy"]["ids"]))
        self.assertEqual(len(by_target["fra_Latn"]), sum(c["target"] == "fra_Latn" for c in cases))
        tokens = {t for c in cases for t in c["greedy"]["ids"]}
        self.assertGreaterEqual(len(tokens), 30, "outputs must hold many distinct tokens")
        self.assertGreaterEqual(sum(len(set(c["greedy"]["ids"])) >= 4 for c in cases), 8)

    def test_some_stop_at_eos_and_some_at_the_limit(self):
        cases = self.golden["cases"]
        eos = [c for c in cases if c["greedy"]["ended_with_eos"]]
        limit = [c for c in cases if not c["greedy"]["ended_with_eos"]]
        self.assertGreaterEqual(len(eos), 3)
        self.assertGreaterEqual(len(limit), 3)
        for c in limit:
            self.assertEqual(len(c["greedy"]["ids"]), c["max_length"])
        for c in eos:
            self.assertLess(len(c["greedy"]["ids"]), c["max_length"])
        beams = [b for c in cases for b in c["beams"]]
        self.assertTrue(any(b["ended_with_eos"] for b in beams))
        self.assertTrue(any(not b["ended_with_eos"] for b in beams))
        # beam search finds something other than greedy somewhere
        self.assertTrue(any(b["ids"] != c["greedy"]["ids"] for c in cases for b in c["beams"]))

    def test_golden_records(self):
        with open(os.path.join(self.out, "models/nllb-tiny/manifest.json"), encoding="utf-8") as f:
            langs = {lang["code"]: lang["id"] for lang in json.load(f)["languages"]}
        for c in self.golden["cases"]:
            self.assertEqual(c["src_ids"][0], langs[c["source"]])
            self.assertEqual(c["src_ids"][-1], 2)
            self.assertEqual(c["tgt_id"], langs[c["target"]])
            g = c["greedy"]
            self.assertAlmostEqual(g["min_margin"], min(g["margins"]))
            self.assertEqual(len(g["margins"]), len(g["ids"]) + (1 if g["ended_with_eos"] else 0))
            self.assertEqual(len(c["fixed_length"]["ids"]), c["fixed_length"]["max_length"])
            self.assertEqual([(b["beam_size"], b["length_penalty"]) for b in c["beams"]], tiny_nllb.BEAMS)
        unk = [c for c in self.golden["cases"] if "東京" in c["text"]]
        self.assertTrue(unk and 3 in unk[0]["src_ids"], "unknown characters map to <unk> (3)")

    def test_exported_models_reproduce_the_goldens(self):
        model = ref.TorchScriptModel(os.path.join(self.out, self.golden["model_dir"]))
        for c in self.golden["cases"]:
            with self.subTest(text=c["text"]):
                g = ref.greedy(model, c["src_ids"], c["tgt_id"], c["max_length"])
                self.assertEqual(g.ids, c["greedy"]["ids"])
                f = ref.greedy(model, c["src_ids"], c["tgt_id"], c["fixed_length"]["max_length"], fixed_length=True)
                self.assertEqual(f.ids, c["fixed_length"]["ids"])
        bf16 = ref.TorchScriptModel(os.path.join(self.out, self.bf16["model_dir"]))
        for c in self.bf16["cases"]:
            g = ref.greedy(bf16, c["src_ids"], c["tgt_id"], c["max_length"])
            self.assertEqual(g.ids, c["greedy"]["ids"])

    def test_bf16_follows_fp32_within_bf16_rounding(self):
        """Teacher-forced along the float32 greedy ids, every bfloat16 step's logits stay within 16
        bf16 units in the last place of the largest logit, and the argmax is float32's wherever
        float32's top-2 margin exceeds twice that: what holds on every CPU, whichever bf16
        kernels it has (docs/testing.md)."""
        fp32 = ref.TorchScriptModel(os.path.join(self.out, self.golden["model_dir"]))
        bf16 = ref.TorchScriptModel(os.path.join(self.out, self.bf16["model_dir"]))
        steps, worst, scale = 0, 0.0, 0.0
        for c in self.bf16["cases"]:
            ids = c["fp32_greedy_ids"]
            a, b = ref._Decoder(fp32, c["src_ids"]), ref._Decoder(bf16, c["src_ids"])
            for d in (a, b):
                d.step([ref.DECODER_START])
            la, lb = a.step([c["tgt_id"]])[0], b.step([c["tgt_id"]])[0]
            for t in range(len(ids) + 1):
                with self.subTest(text=c["text"], step=t):
                    tolerance = max(1.0, float(la.abs().max())) / 16
                    diff = float((la - lb.float()).abs().max())
                    worst, scale = max(worst, diff), max(scale, float(la.abs().max()))
                    self.assertLessEqual(diff, tolerance)
                    top2 = la.topk(2).values
                    if float(top2[0] - top2[1]) > 2 * tolerance:
                        self.assertEqual(int(lb.argmax()), int(la.argmax()))
                steps += 1
                if t < len(ids):
                    la, lb = a.step([ids[t]])[0], b.step([ids[t]])[0]
        print(f"bf16 vs fp32, teacher-forced over {steps} steps: max |dlogit| {worst:.4g}, "
              f"max |logit| {scale:.4g}")
        self.assertGreater(steps, 100)

    def test_make_is_reproducible(self):
        """The build's tiny model (VOX_TINY_DIR) and this test's fresh one are the same bytes."""
        built = os.environ.get("VOX_TINY_DIR", "")
        if not os.path.isfile(os.path.join(built, "golden", "nllb-tiny.json")):
            self.skipTest("no tiny model built yet (target tiny_nllb)")
        for name in ("golden/nllb-tiny.json", "golden/nllb-tiny-bf16.json"):
            with open(os.path.join(built, name), encoding="utf-8") as f:
                theirs = json.load(f)
            with open(os.path.join(self.out, name), encoding="utf-8") as f:
                ours = json.load(f)
            self.assertEqual(ours, theirs, f"{name}: the build's copy ({built}) differs from a fresh make; "
                                           f"rebuild target tiny_nllb if tools/ changed since, else the "
                                           f"make is not reproducible")
        for model in ("models/nllb-tiny", "models-bf16/nllb-tiny-bf16"):
            with open(os.path.join(built, model, "manifest.json"), encoding="utf-8") as f:
                theirs = json.load(f)["files"]
            with open(os.path.join(self.out, model, "manifest.json"), encoding="utf-8") as f:
                ours = json.load(f)["files"]
            self.assertEqual(ours, theirs, f"{model}: file sizes and SHA-256")


    def test_reference_command_line(self):
        """tools/nllb_reference.py prints the golden ids, eager and through model.ts."""
        c = next(c for c in self.golden["cases"] if c["greedy"]["ended_with_eos"] and c["greedy"]["ids"])
        b = c["beams"][1]
        ckpt = os.path.join(self.out, "checkpoints", "nllb-tiny")
        for extra in ([], ["--model", os.path.join(self.out, "models", "nllb-tiny")]):
            for beam_args, want in (([], c["greedy"]), (["--beam", str(b["beam_size"]), "--length-penalty",
                                                         str(b["length_penalty"])], b)):
                p = subprocess.run([sys.executable, os.path.join(util.TOOLS, "nllb_reference.py"), "--checkpoint", ckpt,
                                    "--source", c["source"], "--target", c["target"],
                                    "--max-length", str(c["max_length"])] + extra + beam_args + [c["text"]],
                                   capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
                line = json.loads(p.stdout.strip().splitlines()[-1])
                self.assertEqual(line["src_ids"], c["src_ids"])
                self.assertEqual(line["ids"], want["ids"], (extra, beam_args))
                self.assertEqual(line["translation"], want["text"])

    def test_transformers_reference_without_transformers_says_so(self):
        try:
            import transformers  # noqa: F401
            self.skipTest("transformers is installed; tests/upstream_nllb runs tools/nllb_upstream_reference.py")
        except ImportError:
            pass
        ckpt = os.path.join(self.out, "checkpoints", "nllb-tiny")
        p = subprocess.run([sys.executable, os.path.join(util.TOOLS, "nllb_upstream_reference.py"), "translate",
                            "--set", "tiny", "--checkpoint", ckpt, "--model", ckpt,
                            "--out", os.path.join(self.out, "x.json")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("transformers is not installed", p.stderr)


class SentencePieceTrainingTest(unittest.TestCase):
    def pieces(self, path):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor()
        sp.Load(path)
        return [(sp.IdToPiece(i), sp.GetScore(i)) for i in range(sp.GetPieceSize())]

    def test_training_is_deterministic_and_matches_spm_train(self):
        d = util.workdir()
        a = tiny_nllb.train_spm(os.path.join(d, "spm-a"))
        b = tiny_nllb.train_spm(os.path.join(d, "spm-b"))

        def digest(path):
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(digest(a), digest(b), "same flags, same corpus: the same bytes")
        pieces = self.pieces(a)
        self.assertEqual(len(pieces), tiny_nllb.SPM_VOCAB)
        self.assertEqual([p for p, _ in pieces[:3]], ["<unk>", "<s>", "</s>"])  # NLLB's layout
        if shutil.which("spm_train") is None:
            self.skipTest("spm_train (Debian package sentencepiece) not installed")
        c = tiny_nllb.train_spm(os.path.join(d, "spm-cli"), use_cli=True)
        self.assertEqual(self.pieces(c), pieces, "the CLI and the module train the same model")


def tearDownModule():
    util.cleanup()


if __name__ == "__main__":
    unittest.main()
