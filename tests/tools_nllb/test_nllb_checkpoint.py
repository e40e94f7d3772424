"""tools/nllb_checkpoint.py: every preset at small scale (the 600M presets' configs, key shapes and
tokenizer files without their gigabytes of weights), both weight formats exporting to identical
models, and the tokenizer.json it writes against the SentencePiece model it comes from.
transformers loading these checkpoints is tested by tests/upstream_nllb (reference environment)."""
import json
import os
import shutil
import subprocess
import sys
import unittest

import nllb_test_util as util  # noqa: E402  (sets sys.path to tools/)

import torch  # noqa: E402

import export_nllb  # noqa: E402
import nllb_checkpoint  # noqa: E402
import safetensors_reader  # noqa: E402
import tiny_nllb  # noqa: E402
from nllb_languages import FAIRSEQ_LANGUAGE_CODES  # noqa: E402

TOOL = os.path.join(util.TOOLS, "nllb_checkpoint.py")


def quiet(*_a, **_k):
    pass


class TinyPresetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ckpt = os.path.join(util.workdir(), "preset-tiny")
        subprocess.run([sys.executable, TOOL, "--preset", "tiny", "--out", cls.ckpt, "--weights", "both"],
                       check=True, stdout=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        util.cleanup()

    def test_writes_the_hub_files(self):
        self.assertEqual(sorted(os.listdir(self.ckpt)),
                         ["config.json", "model.safetensors", "pytorch_model.bin", "sentencepiece.bpe.model",
                          "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"])
        cfg = json.load(open(os.path.join(self.ckpt, "config.json")))
        self.assertEqual(cfg["model_type"], "m2m_100")
        self.assertEqual(cfg["vocab_size"], 606)
        self.assertEqual(cfg["d_model"], 32)

    def test_same_weights_as_the_tiny_model(self):
        # tools/tiny_nllb.py's checkpoint is this preset: the goldens' weights
        sd = torch.load(os.path.join(self.ckpt, "pytorch_model.bin"))
        cfg = json.load(open(os.path.join(self.ckpt, "config.json")))
        want = tiny_nllb.random_state_dict(cfg, tiny_nllb.SEED, tiny_nllb.SPM_VOCAB)
        self.assertEqual(sorted(sd), sorted(want))
        for k in want:
            self.assertTrue(torch.equal(sd[k], want[k]), k)
        # tied copies share one storage in the .bin, as published
        self.assertEqual(sd["lm_head.weight"].data_ptr(), sd["model.shared.weight"].data_ptr())

    def test_safetensors_holds_the_same_tensors_without_tied_copies(self):
        bin_sd = torch.load(os.path.join(self.ckpt, "pytorch_model.bin"))
        st = safetensors_reader.load_file(os.path.join(self.ckpt, "model.safetensors"))
        self.assertEqual(sorted(st), sorted(k for k in bin_sd if k not in export_nllb.TIED_ALIASES))
        for k, v in st.items():
            self.assertTrue(torch.equal(v, bin_sd[k]), k)

    def test_both_formats_export_to_identical_models(self):
        outs = {}
        for fmt, drop in (("bin", "model.safetensors"), ("safetensors", "pytorch_model.bin")):
            ckpt = os.path.join(util.workdir(), f"only-{fmt}")
            shutil.copytree(self.ckpt, ckpt)
            os.remove(os.path.join(ckpt, drop))
            out = os.path.join(util.workdir(), f"export-{fmt}")
            manifest = export_nllb.export(ckpt, out, "float32", "nllb-tiny", log=quiet)
            self.assertEqual(manifest["source"]["weights"], [{"bin": "pytorch_model.bin",
                                                             "safetensors": "model.safetensors"}[fmt]])
            outs[fmt] = (out, manifest)
        (a, ma), (b, mb) = outs["bin"], outs["safetensors"]
        with open(os.path.join(a, "model.ts"), "rb") as fa, open(os.path.join(b, "model.ts"), "rb") as fb:
            self.assertEqual(fa.read(), fb.read(), "model.ts differs between the two weight formats")
        for m in (ma, mb):
            m.pop("source")
        self.assertEqual(ma, mb)

    def test_tokenizer_json_follows_the_sentencepiece_model(self):
        tok = json.load(open(os.path.join(self.ckpt, "tokenizer.json")))
        pieces, charsmap = nllb_checkpoint.read_spm(os.path.join(self.ckpt, "sentencepiece.bpe.model"))
        vocab = tok["model"]["vocab"]
        self.assertEqual(len(vocab), len(pieces) + 1)
        self.assertEqual([vocab[s] for s in ("<s>", "<pad>", "</s>", "<unk>")], [0, 1, 2, 3])
        for i, (piece, _, _) in enumerate(pieces[3:], start=3):
            self.assertEqual(vocab[piece], i + 1, piece)  # the fairseq offset
        self.assertTrue(charsmap)
        self.assertEqual(tok["normalizer"]["normalizers"][0]["type"], "Precompiled")
        added = {t["content"]: t["id"] for t in tok["added_tokens"]}
        self.assertEqual(added["ace_Arab"], 401)
        self.assertEqual(added["eng_Latn"], 447)
        self.assertEqual(added["<mask>"], 401 + len(FAIRSEQ_LANGUAGE_CODES))
        # every merge joins two pieces into a third
        for left, right in tok["model"]["merges"]:
            self.assertIn(left + right, vocab)
        # the exporter reads the same ids from it
        ids, where = export_nllb.language_ids(self.ckpt, list(FAIRSEQ_LANGUAGE_CODES), len(pieces), 606)
        self.assertEqual(where, "tokenizer.json")
        self.assertEqual(ids[0], 401)


class BigPresetsTest(unittest.TestCase):
    """600M and 600M-2layer without writing their weights: config, key shapes, tokenizer files."""

    @classmethod
    def tearDownClass(cls):
        util.cleanup()

    def test_configs_have_the_released_dimensions(self):
        for preset, layers in (("600M", 12), ("600M-2layer", 2)):
            cfg, first = nllb_checkpoint.preset_config(preset)
            self.assertEqual((cfg["d_model"], cfg["encoder_layers"], cfg["decoder_layers"], cfg["encoder_ffn_dim"],
                              cfg["encoder_attention_heads"], cfg["vocab_size"], cfg["max_position_embeddings"]),
                             (1024, layers, layers, 4096, 16, 256206, 1024))
            self.assertEqual(first, 256001)
            keys = tiny_nllb.checkpoint_keys(cfg)
            self.assertEqual(keys["model.shared.weight"], [256206, 1024])
            self.assertIn(f"model.decoder.layers.{layers - 1}.encoder_attn.k_proj.weight", keys)
            self.assertNotIn(f"model.decoder.layers.{layers}.fc1.weight", keys)
        params = sum(torch.Size(s).numel() for s in tiny_nllb.checkpoint_keys(
            nllb_checkpoint.preset_config("600M")[0]).values())
        self.assertEqual(params, 615073792)  # nllb-200-distilled-600M's parameter count (tied once)

    def test_padded_sentencepiece_puts_the_codes_at_the_released_ids(self):
        ckpt = os.path.join(util.workdir(), "pad")
        os.makedirs(ckpt)
        shutil.copyfile(os.path.join(util.base_checkpoint(), "sentencepiece.bpe.model"),
                        os.path.join(ckpt, "sentencepiece.bpe.model"))
        added = nllb_checkpoint.pad_spm(os.path.join(ckpt, "sentencepiece.bpe.model"), 256000)
        self.assertEqual(added, 256000 - 400)
        self.assertEqual(export_nllb.spm_size(os.path.join(ckpt, "sentencepiece.bpe.model")), 256000)
        pieces, _ = nllb_checkpoint.read_spm(os.path.join(ckpt, "sentencepiece.bpe.model"))
        self.assertEqual({k for _, _, k in pieces[400:]}, {5})  # UNUSED: never produced
        nllb_checkpoint.write_tokenizer_files(ckpt, 256001, 1024)
        tok = json.load(open(os.path.join(ckpt, "tokenizer.json")))
        added_ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
        self.assertEqual((added_ids["ace_Arab"], added_ids["eng_Latn"], added_ids["fra_Latn"],
                          added_ids["zul_Latn"], added_ids["<mask>"]), (256001, 256047, 256057, 256202, 256203))
        self.assertEqual(len(tok["model"]["vocab"]), 256001)  # transformers appends the codes after it
        cfg = json.load(open(os.path.join(ckpt, "tokenizer_config.json")))
        self.assertEqual(cfg["added_tokens_decoder"]["256047"]["content"], "eng_Latn")
        # SentencePiece itself never produces the padding pieces
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor()
        sp.Load(os.path.join(ckpt, "sentencepiece.bpe.model"))
        self.assertLess(max(sp.encode("Hello <unused500> world, 東京")), 400)

    def test_bad_arguments_fail_clearly(self):
        r = subprocess.run([sys.executable, TOOL, "--preset", "7B", "--out", util.workdir()],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("invalid choice: '7B'", r.stderr)
        with self.assertRaisesRegex(nllb_checkpoint.CheckpointError, "unknown --weights 'gguf'"):
            nllb_checkpoint.write(os.path.join(util.workdir(), "x"), "tiny", weights="gguf")


class TinyScriptsPresetTest(unittest.TestCase):
    @classmethod
    def tearDownClass(cls):
        util.cleanup()

    def test_pieces_cover_every_script(self):
        import nllb_scripts
        ckpt = os.path.join(util.workdir(), "scripts")
        cfg = nllb_checkpoint.write(ckpt, "tiny-scripts", weights="safetensors")
        self.assertEqual(cfg["vocab_size"], 5000 + 1 + 202 + 1 + 2)
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor()
        sp.Load(os.path.join(ckpt, "sentencepiece.bpe.model"))
        chars = pieces = 0
        for script in sorted(nllb_scripts.SCRIPTS):
            text = nllb_scripts._sentence(__import__("random").Random(3), script, 6)
            ids = sp.encode(text)
            self.assertNotIn(0, ids, f"{script}: <unk> in {text!r}")
            chars, pieces = chars + len(text), pieces + len(ids)
        self.assertLess(pieces, 0.9 * chars, "few multi-character pieces")  # 855 of 981 (deterministic)
        self.assertGreaterEqual(len(nllb_scripts.test_strings()), 1000)


if __name__ == "__main__":
    unittest.main()
