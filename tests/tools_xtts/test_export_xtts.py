#!/usr/bin/env python3
"""Tests of tools/export_xtts.py, tools/tiny_xtts.py and tools/xtts_reference.py.

Run by ctest (tests/tools_xtts/CMakeLists.txt) with PYTHONPATH=tools and VOX_TINY_DIR set; the
tiny model must exist (target tiny_xtts). The exported TorchScript module is compared with the
independent eager reference's goldens.
"""
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("VOX_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
sys.path.insert(0, os.path.join(SOURCE, "tools"))
import compressed_weights  # noqa: E402
import export_xtts  # noqa: E402
import tiny_xtts  # noqa: E402
import vox_ops  # noqa: E402
import xtts_reference  # noqa: E402

TINY = os.environ.get("VOX_TINY_DIR", "")


def tiny_paths():
    if not TINY or not os.path.isfile(os.path.join(TINY, "golden", "xtts-tiny.json")):
        raise RuntimeError(f"tiny model missing under VOX_TINY_DIR={TINY!r}: build target tiny_xtts")
    return (os.path.join(TINY, "checkpoints", "xtts-tiny"), os.path.join(TINY, "models", "xtts-tiny"),
            os.path.join(TINY, "golden", "xtts-tiny.json"))


def load_blob(golden_path, golden, entry):
    n = 1
    for s in entry["shape"]:
        n *= s
    with open(os.path.join(os.path.dirname(golden_path), golden["blob"]), "rb") as f:
        f.seek(entry["offset"] * 4)
        data = f.read(n * 4)
    return torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(entry["shape"])


class GoldenExportTest(unittest.TestCase):
    """The exported model.ts reproduces the eager reference's goldens."""

    @classmethod
    def setUpClass(cls):
        if not TINY or not os.path.isfile(os.path.join(TINY, "golden", "xtts-tiny.json")):
            raise RuntimeError(f"tiny model missing under VOX_TINY_DIR='{TINY}': build target tiny_xtts")
        cls.ckpt, cls.model_dir, cls.golden_path = tiny_paths()
        with open(cls.golden_path, encoding="utf-8") as f:
            cls.golden = json.load(f)
        cls.model = torch.jit.load(os.path.join(cls.model_dir, "model.ts"))
        cls.voices = torch.jit.load(os.path.join(cls.model_dir, "voices.ts"))
        with open(os.path.join(cls.model_dir, "manifest.json"), encoding="utf-8") as f:
            cls.manifest = json.load(f)

    def generate(self, ids, voice_index, greedy, seed, params, forced=0):
        cond = self.voices.cond_latents[voice_index:voice_index + 1]
        return tiny_xtts.generate_scripted(self.model, cond, ids, self.manifest, greedy, seed, params, forced)

    def test_text_ids_are_recomputed_identically(self):
        tok = xtts_reference.BpeTokenizer.from_file(os.path.join(self.model_dir, "vocab.json"))
        for t in self.golden["texts"]:
            self.assertEqual(tok.encode(t["text"], t["lang"]), t["ids"], t["text"])
            self.assertEqual(t["ids"][0], tok.added[f"[{t['lang']}]"])

    def test_codes_latents_waveform_match_reference(self):
        tol = self.golden["tolerances"]
        for run in self.golden["runs"]:
            ids = self.golden["texts"][run["text_index"]]["ids"]
            with torch.no_grad():
                codes, lats = self.generate(ids, run["voice_index"], run["mode"] == "greedy", run["seed"],
                                            run["params"])
            self.assertEqual(codes, run["codes"], f"run {run['text_index']} {run['mode']}")
            ref_lat = load_blob(self.golden_path, self.golden, run["latents"])
            self.assertLess(float((lats - ref_lat).abs().max()), tol["latents_abs"])
            if "waveform" in run:
                spk = self.voices.speaker_embeddings[run["voice_index"]:run["voice_index"] + 1]
                with torch.no_grad():
                    wav = self.model.vocode(ref_lat.unsqueeze(0), spk, 1.0)[0]
                ref_wav = load_blob(self.golden_path, self.golden, run["waveform"])
                self.assertEqual(wav.shape, ref_wav.shape)
                n = len(run["codes"])
                self.assertEqual(wav.numel(), 256 * ((4 * n * 24000) // 22050))
                self.assertLess(float((wav - ref_wav).abs().max()), tol["waveform_abs"])
                self.assertGreater(float(wav.abs().max()), 0.05, "waveform is silent")

    def test_forced_length(self):
        f = self.golden["forced"]
        ids = self.golden["texts"][f["text_index"]]["ids"]
        with torch.no_grad():
            codes, _ = self.generate(ids, 0, True, 0, f["params"], forced=f["forced_codes"])
        self.assertEqual(codes, f["codes"])
        self.assertEqual(len(codes), f["forced_codes"])
        self.assertNotIn(self.manifest["special_ids"]["stop_audio"], codes)

    def test_goldens_are_informative(self):
        runs = self.golden["runs"]
        greedy = [tuple(r["codes"]) for r in runs if r["mode"] == "greedy"]
        self.assertEqual(len(set(greedy)), len(greedy))
        self.assertTrue(any(r["stopped"] for r in runs))
        sampled = [r for r in runs if r["mode"] == "sample"]
        self.assertTrue(sampled)
        for r in sampled:
            g = next(x for x in runs if x["mode"] == "greedy" and x["text_index"] == r["text_index"])
            self.assertNotEqual(r["codes"], g["codes"])

    def test_batch_of_two_equals_two_batches_of_one(self):
        lat = load_blob(self.golden_path, self.golden, self.golden["runs"][0]["latents"])[:40]
        spk = self.voices.speaker_embeddings[:2]
        with torch.no_grad():
            both = self.model.vocode(torch.stack([lat, lat.flip(0)]), spk, 1.0)
            one = self.model.vocode(lat.unsqueeze(0), spk[:1], 1.0)
            two = self.model.vocode(lat.flip(0).unsqueeze(0), spk[1:2], 1.0)
        self.assertLess(float((both[0] - one[0]).abs().max()), 1e-5)
        self.assertLess(float((both[1] - two[0]).abs().max()), 1e-5)

    def test_interpolate_window_equals_whole_interpolation(self):
        torch.manual_seed(0)
        d = self.manifest["config"]["d_model"]
        for n in list(range(1, 30)) + [97, 150, 301, 602]:
            x = torch.randn(1, n, d)
            with torch.no_grad():
                whole = self.model.interpolate(x, 1.0)
            m = whole.shape[2]
            self.assertEqual(m, (4 * n * 24000) // 22050, n)
            for start, count in [(0, m), (m // 3, max(1, m // 2 - m // 3)), (m - 1, 1)]:
                with torch.no_grad():
                    win = self.model.interpolate_window(x, start, count, 1.0)
                err = float((win - whole[:, :, start:start + count]).abs().max())
                self.assertLess(err, 1e-6, f"n={n} window {start}+{count}: {err}")

    def test_interpolate_window_with_speed_equals_coqui_stretch(self):
        torch.manual_seed(1)
        d = self.manifest["config"]["d_model"]
        for speed in (0.8, 1.25, 0.5, 2.0):
            for n in (1, 2, 3, 5, 17, 60, 211):
                if int(n / speed) < 1:
                    continue  # torch refuses an empty stretch (Coqui would fail the same way)
                x = torch.randn(1, n, d)
                with torch.no_grad():
                    whole = self.model.interpolate(x, speed)
                    # Coqui: stretch the latents by 1/speed first, then the decoder's two stretches.
                    y = torch.nn.functional.interpolate(x.transpose(1, 2), scale_factor=1.0 / speed, mode="linear")
                    ref = self.model.interpolate(y.transpose(1, 2), 1.0)
                    self.assertEqual(whole.shape, ref.shape)
                    self.assertLess(float((whole - ref).abs().max()), 1e-6)
                    m = whole.shape[2]
                    if m == 0:
                        continue
                    win = self.model.interpolate_window(x, m // 4, m - m // 4, speed)
                self.assertLess(float((win - whole[:, :, m // 4:]).abs().max()), 1e-6, f"speed {speed} n {n}")

    def test_receptive_field_bounds_windowed_decoding(self):
        rf = self.manifest["config"]["hifigan"]["receptive_field_frames"]
        lat = load_blob(self.golden_path, self.golden, self.golden["runs"][0]["latents"])
        spk = self.voices.speaker_embeddings[:1]
        with torch.no_grad():
            frames = self.model.interpolate(lat.unsqueeze(0), 1.0)
            whole = self.model.decode_frames(frames, spk)[0]
            a, b = 120, 200
            win = self.model.decode_frames(frames[:, :, a - rf:b + rf], spk)[0]
        inner = win[rf * 256:(rf + b - a) * 256]
        self.assertLess(float((inner - whole[a * 256:b * 256]).abs().max()), 1e-5)
        # And the field is not absurdly loose: 2 frames of context are not enough.
        with torch.no_grad():
            short = self.model.decode_frames(frames[:, :, a - 2:b + 2], spk)[0][2 * 256:(2 + b - a) * 256]
        self.assertGreater(float((short - whole[a * 256:b * 256]).abs().max()), 1e-4)

    def test_step_slots_equals_step_per_sequence(self):
        self.check_step_slots_equals_step_per_sequence(self.model)

    def test_step_slots_equals_step_per_sequence_with_int8_weights(self):
        vox_ops.load()  # vox::linear and vox::attend
        self.check_step_slots_equals_step_per_sequence(
            torch.jit.load(os.path.join(TINY, "models-int8", "xtts-tiny-int8", "model.ts")))

    def check_step_slots_equals_step_per_sequence(self, m):
        """Three sequences of different lengths in slots 3, 0, 4 of shared caches, stepped together,
        give the logits and latents each gets alone from `step` on its own cache."""
        cfg = self.manifest["config"]
        layers, heads, d = cfg["layers"], cfg["heads"], cfg["d_model"]
        runs = [r for r in self.golden["runs"] if r["mode"] == "greedy"][:3]
        slots, lens, alone = [3, 0, 4], [], []
        with torch.no_grad():
            kv = [torch.full([5, heads, 200, d // heads], 7.0) for _ in range(2 * layers)]  # stale rows
            for slot, r in zip(slots, runs):
                ids = self.golden["texts"][r["text_index"]]["ids"]
                cond = self.voices.cond_latents[r["voice_index"]:r["voice_index"] + 1]
                _, _, own = m.prefix(cond, torch.tensor([ids]), 32 + len(ids) + 3 + 8)
                p = 32 + len(ids) + 3
                for i in range(2 * layers):
                    kv[i][slot, :, :p] = own[i][0, :, :p]
                alone.append(own)
                lens.append(p)
            for k in range(1, 6):
                codes = torch.tensor([[r["codes"][k - 1]] for r in runs])
                pos = torch.full([3, 1], k, dtype=torch.long)
                logits, latent = m.step_slots(codes, pos, kv, torch.tensor(slots), torch.tensor(lens),
                                              max(lens) + 1)
                for b in range(3):
                    l1, t1 = m.step(codes[b:b + 1], pos[b:b + 1], alone[b], lens[b])
                    self.assertLess(float((logits[b] - l1[0]).abs().max()), 1e-5)
                    self.assertLess(float((latent[b] - t1[0]).abs().max()), 1e-5)
                lens = [x + 1 for x in lens]

    def test_prefix_conditioned_equals_prefix(self):
        """Under the optimising graph executor (LibTorch's default, which once dropped the blocks
        of `condition` from its second call on) and without it (voxd), as loaded and frozen (voxd
        freezes with the optimisations on)."""
        methods = ["prefix", "condition", "prefix_conditioned"]
        for path in (self.model_dir, os.path.join(TINY, "models-int8", "xtts-tiny-int8")):
            for optimize in (True, False):
                loaded = torch.jit.load(os.path.join(path, "model.ts"))
                frozen = torch.jit.freeze(torch.jit.load(os.path.join(path, "model.ts")).eval(), methods)
                torch._C._set_graph_executor_optimize(optimize)
                try:
                    for m in (loaded, frozen):
                        for _ in range(3):
                            self.check_prefix_conditioned_equals_prefix(m)
                finally:
                    torch._C._set_graph_executor_optimize(True)

    def check_prefix_conditioned_equals_prefix(self, m):
        """A voice's `condition` k/v are the first rows of its prefix's caches, and
        `prefix_conditioned` from them gives `prefix`'s logits, latent and caches, for every voice
        and with another voice's k/v computed in between."""
        conds = self.voices.cond_latents
        c = conds.shape[1]
        ids = torch.tensor([self.golden["texts"][0]["ids"]])
        with torch.no_grad():
            kept = [m.condition(conds[v:v + 1].clone()) for v in range(conds.shape[0])]
            for v in range(conds.shape[0]):
                logits, latent, kv = m.prefix(conds[v:v + 1], ids, 60)
                l2, t2, kv2 = m.prefix_conditioned(kept[v], ids, 60)
                self.assert_close(l2, logits)
                self.assert_close(t2, latent)
                for a, b, k in zip(kv, kv2, kept[v]):
                    self.assertEqual(a.shape, b.shape)
                    self.assert_close(b, a)
                    self.assert_close(k, a[:, :, :c])
            if conds.shape[0] > 1:  # the voices' k/v differ, so a mix-up would show
                self.assertGreater(float((kept[0][0] - kept[1][0]).abs().max()), 1e-3)

    def assert_close(self, got, want):
        """Equal but for float32 sums in another grouping of rows (kernels picked by row count and
        CPU), so within 1e-4 of the values' size, as in CompressedWeightsTest; a wrong or dropped
        voice block differs by whole units."""
        self.assertLess(float((got - want).abs().max()), 1e-4 * max(1.0, float(want.abs().max())))

    def test_legacy_export_has_no_step_slots(self):
        legacy = os.path.join(TINY, "legacy", "xtts-tiny-v1")
        model = torch.jit.load(os.path.join(legacy, "model.ts"))
        self.assertFalse(hasattr(model, "step_slots"))
        self.assertFalse(hasattr(model, "condition"))
        self.assertTrue(hasattr(self.model, "step_slots"))
        self.assertTrue(hasattr(self.model, "condition"))
        with open(os.path.join(legacy, "manifest.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["exporter"]["version"], 1)
        self.assertEqual(self.manifest["exporter"]["version"], export_xtts.EXPORTER_VERSION)

    def test_manifest(self):
        m = self.manifest
        self.assertEqual(m["architecture"], "xtts-v2")
        self.assertEqual(m["sample_rate"], 24000)
        self.assertEqual(m["max_generated_codes"], 602)
        self.assertEqual([v["name"] for v in m["voices"]], tiny_xtts.VOICES)
        self.assertEqual(m["sampling"], {"temperature": 0.75, "top_k": 50, "top_p": 0.85, "repetition_penalty": 5.0})
        self.assertIn({"code": "es", "nllb": "spa_Latn"}, m["languages"])
        for name, entry in m["files"].items():
            self.assertEqual(os.path.getsize(os.path.join(self.model_dir, name)), entry["size"])
            self.assertEqual(export_xtts.file_entry(os.path.join(self.model_dir, name))["sha256"], entry["sha256"])


class CheckpointValidationTest(unittest.TestCase):
    """Broken checkpoints fail naming the key; both weight-norm styles export identically."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xtts_export_test_")
        cls.ckpt = os.path.join(cls.tmp, "ckpt")
        tiny_xtts.make_checkpoint(cls.ckpt)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def mutated(self, name, fn):
        d = os.path.join(self.tmp, name)
        shutil.copytree(self.ckpt, d)
        ck = torch.load(os.path.join(d, "model.pth"))
        fn(ck["model"])
        torch.save(ck, os.path.join(d, "model.pth"))
        return d

    def test_config_has_infinity_literals(self):
        with open(os.path.join(self.ckpt, "config.json")) as f:
            text = f.read()
        self.assertIn("Infinity", text)
        self.assertEqual(export_xtts.load_config(os.path.join(self.ckpt, "config.json"))["max_text_len"], float("inf"))

    def test_missing_key_is_named(self):
        d = self.mutated("missing", lambda sd: sd.pop("gpt.gpt.h.1.mlp.c_fc.bias"))
        with self.assertRaisesRegex(export_xtts.ExportError, r"'gpt\.gpt\.h\.1\.mlp\.c_fc\.bias' missing"):
            export_xtts.export(d, os.path.join(self.tmp, "out_missing"))

    def test_misshaped_key_is_named(self):
        def f(sd):
            sd["gpt.final_norm.weight"] = torch.ones(63)
        d = self.mutated("shape", f)
        with self.assertRaisesRegex(export_xtts.ExportError, r"'gpt\.final_norm\.weight' has shape \[63\]"):
            export_xtts.export(d, os.path.join(self.tmp, "out_shape"))

    def test_transposed_conv1d_is_named(self):
        def f(sd):
            sd["gpt.gpt.h.0.attn.c_attn.weight"] = sd["gpt.gpt.h.0.attn.c_attn.weight"].t().contiguous()
        d = self.mutated("transposed", f)
        with self.assertRaisesRegex(export_xtts.ExportError, r"gpt\.gpt\.h\.0\.attn\.c_attn\.weight"):
            export_xtts.export(d, os.path.join(self.tmp, "out_t"))

    def test_polyphase_upsample_equals_the_transposed_convolution(self):
        # XTTS v2's upsampling shapes (rates 8, 8, 2, 2; kernels 16, 16, 4, 4), two rows.
        gen = torch.Generator().manual_seed(5)
        for cin, u, k, t in [(64, 8, 16, 9), (32, 2, 4, 50), (16, 3, 6, 7)]:
            up = torch.nn.ConvTranspose1d(cin, cin // 2, k, u, padding=(k - u) // 2)
            with torch.no_grad():
                up.weight.copy_(torch.randn(up.weight.shape, generator=gen))
                up.bias.copy_(torch.randn(up.bias.shape, generator=gen))
                x = torch.randn(2, cin, t, generator=gen)
                want = up(x)
                got = torch.jit.script(export_xtts.PolyphaseUpsample(up))(x)
            self.assertEqual(got.shape, want.shape)
            scale = float(want.abs().max())
            self.assertLess(float((got - want).abs().max()), 1e-5 * scale, (cin, u, k))
        with self.assertRaisesRegex(export_xtts.ExportError, "PolyphaseUpsample"):
            export_xtts.PolyphaseUpsample(torch.nn.ConvTranspose1d(4, 2, 5, 2))  # 5 taps, stride 2

    def test_unexpected_key_is_named(self):
        def f(sd):
            sd["gpt.something_new.weight"] = torch.ones(3)
        d = self.mutated("extra", f)
        with self.assertRaisesRegex(export_xtts.ExportError, r"unexpected key 'gpt\.something_new\.weight'"):
            export_xtts.export(d, os.path.join(self.tmp, "out_extra"))

    def test_half_weight_norm_pair_is_named(self):
        key = "hifigan_decoder.waveform_decoder.ups.2.parametrizations.weight.original0"
        d = self.mutated("halfwn", lambda sd: sd.pop(key))
        with self.assertRaisesRegex(export_xtts.ExportError, r"ups\.2\.parametrizations\.weight\.original1"):
            export_xtts.export(d, os.path.join(self.tmp, "out_halfwn"))

    def test_cloning_only_keys_are_present_and_ignored(self):
        sd = torch.load(os.path.join(self.ckpt, "model.pth"))["model"]
        for k in ("mel_stats", "gpt.conditioning_perceiver.latents", "hifigan_decoder.speaker_encoder.conv1.weight",
                  "gpt.text_head.weight", "gpt.conditioning_encoder.attn.5.qkv.weight",
                  "hifigan_decoder.speaker_encoder.layer4.0.bn1.num_batches_tracked"):
            self.assertIn(k, sd)
            self.assertTrue(export_xtts.is_ignored(k), k)
        # Causal-mask buffers of older transformers releases (not in Coqui 0.28's state dict).
        self.assertTrue(export_xtts.is_ignored("gpt.gpt.h.0.attn.bias"))
        self.assertTrue(export_xtts.is_ignored("gpt.gpt.h.0.attn.masked_bias"))
        self.assertFalse(export_xtts.is_ignored("gpt.gpt.h.0.attn.c_attn.bias"))

    def test_both_weight_norm_styles_and_xtts_prefix_export_identically(self):
        d = os.path.join(self.tmp, "old_style")
        shutil.copytree(self.ckpt, d)
        vocab = tiny_xtts.make_vocab()
        num_text = max(vocab["model"]["vocab"].values()) + 1
        sd = tiny_xtts.make_state_dict(num_text, vocab, style="weight_g")
        self.assertTrue(any(k.endswith(".weight_g") for k in sd))
        sd = {"xtts." + k: v for k, v in sd.items()}  # GPTTrainer-style prefix
        torch.save({"model": sd}, os.path.join(d, "model.pth"))
        a = export_xtts.export(self.ckpt, os.path.join(self.tmp, "out_new"))
        b = export_xtts.export(d, os.path.join(self.tmp, "out_old"))
        self.assertEqual(a["config"], b["config"])
        ma = torch.jit.load(os.path.join(self.tmp, "out_new", "model.ts")).state_dict()
        mb = torch.jit.load(os.path.join(self.tmp, "out_old", "model.ts")).state_dict()
        self.assertEqual(sorted(ma), sorted(mb))
        for k in ma:
            self.assertTrue(torch.equal(ma[k], mb[k]), k)
        # The folded weight is v*g/||v||, not v.
        raw = torch.load(os.path.join(self.ckpt, "model.pth"))["model"]
        key = "hifigan_decoder.waveform_decoder.resblocks.0.convs1.0"
        v = raw[key + ".parametrizations.weight.original1"]
        folded = ma[key + ".weight"]
        self.assertFalse(torch.allclose(v, folded))
        g = raw[key + ".parametrizations.weight.original0"]
        self.assertTrue(torch.allclose(folded.reshape(folded.shape[0], -1).norm(dim=1), g.reshape(-1), rtol=1e-5))

    def test_bfloat16_export_runs_on_cpu_close_to_float32(self):
        out32, out16 = os.path.join(self.tmp, "f32"), os.path.join(self.tmp, "bf16")
        export_xtts.export(self.ckpt, out32, "float32")
        m = export_xtts.export(self.ckpt, out16, "bfloat16")
        self.assertEqual(m["dtype"], "bfloat16")
        a, b = (torch.jit.load(os.path.join(d, "model.ts")) for d in (out32, out16))
        self.assertEqual(b.gpt.mel_head.weight.dtype, torch.bfloat16)
        self.assertEqual(b.hifigan_decoder.waveform_decoder.conv_pre.weight.dtype, torch.float32)
        v = torch.jit.load(os.path.join(out32, "voices.ts"))
        ids = torch.tensor([[5, 6, 7, 8]])
        with torch.no_grad():
            la, lat_a, _ = a.prefix(v.cond_latents[:1], ids, 50)
            lb, lat_b, _ = b.prefix(v.cond_latents[:1], ids, 50)
            self.assertEqual(lb.dtype, torch.float32)
            diff = float((lat_a - lat_b).abs().max())
            print(f"bf16 vs fp32 prefix latents: max |diff| {diff:.4g}, max |latent| {float(lat_a.abs().max()):.4g}")
            self.assertLess(diff, 0.2)
            w = b.vocode(lat_b.unsqueeze(1).repeat(1, 5, 1), v.speaker_embeddings[:1], 1.0)
        self.assertEqual(w.dtype, torch.float32)
        with self.assertRaisesRegex(export_xtts.ExportError, "--dtype 'int8' not one of"):
            export_xtts.export(self.ckpt, os.path.join(self.tmp, "i8"), "int8")

    def test_missing_file_is_named(self):
        d = os.path.join(self.tmp, "nospeakers")
        shutil.copytree(self.ckpt, d)
        os.remove(os.path.join(d, "speakers_xtts.pth"))
        with self.assertRaisesRegex(export_xtts.ExportError, "speakers_xtts.pth"):
            export_xtts.export(d, os.path.join(self.tmp, "out_nospk"))


# Greedy paths whose top two logits come closer than this somewhere are not compared code for
# code: the activations' int16 rounding (int8) or the kernel's float32 sums (bfloat16) may tip
# such a tie, and the reference's own BLAS differs by CPU.
MIN_MARGIN = 2e-3
GPT_PRODUCTS = re.compile(r"^gpt\.gpt\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$")


class CompressedWeightsTest(unittest.TestCase):
    """--weights int8 | bfloat16: the GPT's products and mel head through vox::linear, checked
    against the eager reference on the same rounded weights."""

    @classmethod
    def setUpClass(cls):
        vox_ops.load()
        cls.ckpt, cls.model_dir, cls.golden_path = tiny_paths()
        with open(cls.golden_path, encoding="utf-8") as f:
            cls.golden = json.load(f)
        cls.int8_dir = os.path.join(TINY, "models-int8", "xtts-tiny-int8")
        with open(os.path.join(TINY, "golden", "xtts-tiny-int8.json"), encoding="utf-8") as f:
            cls.int8_golden = json.load(f)
        cls.tmp = tempfile.mkdtemp(prefix="xtts_weights_test_")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def reference_on(self, convert):
        """The eager reference with every GPT product and the mel head rounded by convert(w [out, in])."""
        ref = xtts_reference.ReferenceModel(self.ckpt)
        for k in list(ref.w):
            if GPT_PRODUCTS.match(k):  # GPT-2 Conv1D: stored [in, out]
                ref.w[k] = convert(ref.w[k].t()).t()
            elif k == "gpt.mel_head.weight":
                ref.w[k] = convert(ref.w[k])
        return ref

    def greedy_runs(self):
        return [r for r in self.golden["runs"] if r["mode"] == "greedy"]

    def scripted_codes(self, model_dir, run):
        model = torch.jit.load(os.path.join(model_dir, "model.ts"))
        voices = torch.jit.load(os.path.join(model_dir, "voices.ts"))
        with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        v = run["voice_index"]
        ids = self.golden["texts"][run["text_index"]]["ids"]
        return tiny_xtts.generate_scripted(model, voices.cond_latents[v:v + 1], ids, manifest, True, 0,
                                           run["params"])

    def test_int8_export_stores_the_gpt_products_in_int8_with_row_scales(self):
        with open(os.path.join(self.int8_dir, "manifest.json"), encoding="utf-8") as f:
            m = json.load(f)
        self.assertEqual((m["dtype"], m["weights"]), ("float32", "int8"))
        params = dict(torch.jit.load(os.path.join(self.int8_dir, "model.ts")).named_parameters())
        d = m["config"]["d_model"]
        w = params["gpt.gpt.h.0.attn.c_attn.linear.weight"]
        self.assertEqual((w.dtype, tuple(w.shape)), (torch.int8, (3 * d, d)))  # [out, in]
        compressed = [k for k in params if k.endswith(".weight") and params[k].dtype == torch.int8]
        self.assertEqual(len(compressed), 4 * m["config"]["layers"] + 1)
        self.assertIn("gpt.mel_head.weight", compressed)
        for k in compressed:
            scale = params[k[:-len("weight")] + "scale"]
            self.assertEqual((scale.dtype, tuple(scale.shape)), (torch.float32, (params[k].size(0),)), k)
        others = [k for k in params if k not in compressed and not k.endswith(".scale")]
        self.assertTrue(others)
        self.assertTrue(all(params[k].dtype == torch.float32 for k in others))

    def test_int8_codes_equal_the_reference_on_the_dequantized_weights(self):
        def dequantize(w):
            q, s = compressed_weights.quantize_int8(w)
            return q.float() * s[:, None]
        ref = self.reference_on(dequantize)
        compared = 0
        for run in self.greedy_runs():
            cond, _ = ref.voice(run["voice"])
            ids = self.golden["texts"][run["text_index"]]["ids"]
            want, want_lat, margin = ref.generate(cond, ids, True, **run["params"])
            if margin < MIN_MARGIN:
                continue
            got, got_lat = self.scripted_codes(self.int8_dir, run)
            self.assertEqual(got, want, f"text {run['text_index']} (smallest greedy margin {margin:.3g})")
            # Only the activations' int16 rounding differs.
            self.assertLess(float((got_lat - want_lat).abs().max()), 1e-3 * float(want_lat.abs().max()))
            compared += 1
        self.assertGreaterEqual(compared, 5)

    def test_int8_goldens_are_the_int8_model_run_and_differ_from_float32(self):
        runs = self.int8_golden["runs"]
        self.assertEqual(len(runs), len(self.greedy_runs()))
        self.assertEqual(self.int8_golden["weights"], "int8")
        for g in runs[:2]:
            run = next(r for r in self.greedy_runs() if r["text_index"] == g["text_index"])
            self.assertEqual(self.scripted_codes(self.int8_dir, run)[0], g["codes"])
        # Rounding the weights changes some codes (the C++ test would not tell int8 from float32 otherwise).
        self.assertTrue(any(g["codes"] != g["fp32_codes"] for g in runs))

    def test_bfloat16_weights_equal_the_reference_on_the_rounded_weights(self):
        out = os.path.join(self.tmp, "bf16w")
        m = export_xtts.export(self.ckpt, out, "float32", weights="bfloat16")
        self.assertEqual((m["dtype"], m["weights"]), ("float32", "bfloat16"))
        params = dict(torch.jit.load(os.path.join(out, "model.ts")).named_parameters())
        self.assertEqual(params["gpt.mel_head.weight"].dtype, torch.bfloat16)
        self.assertEqual(params["gpt.gpt.h.0.mlp.c_fc.linear.weight"].dtype, torch.bfloat16)
        self.assertEqual(params["gpt.gpt.h.0.ln_1.weight"].dtype, torch.float32)
        ref = self.reference_on(lambda w: w.bfloat16().float())
        for run in self.greedy_runs()[:3]:
            cond, _ = ref.voice(run["voice"])
            want, want_lat, margin = ref.generate(cond, self.golden["texts"][run["text_index"]]["ids"], True,
                                                  **run["params"])
            self.assertGreater(margin, MIN_MARGIN)
            got, got_lat = self.scripted_codes(out, run)
            self.assertEqual(got, want)
            self.assertLess(float((got_lat - want_lat).abs().max()), 1e-4 * float(want_lat.abs().max()))

    def test_bad_weights_arguments_are_refused(self):
        with self.assertRaisesRegex(export_xtts.ExportError, "needs --dtype float32"):
            export_xtts.export(self.ckpt, os.path.join(self.tmp, "x"), "bfloat16", weights="int8")
        with self.assertRaisesRegex(export_xtts.ExportError, "unknown weights 'int4'; allowed: int8, bfloat16"):
            export_xtts.export(self.ckpt, os.path.join(self.tmp, "y"), "float32", weights="int4")


class CacheAttendTest(unittest.TestCase):
    """vox::cache_attend (a step's attention in float32 on CPU) against StepAttend and
    SlotsAttend in float64, which take LibTorch's operators, and those modules in float32 on
    CPU, which take the operator."""

    HEADS, DIM, CAPACITY = 4, 16, 40

    @classmethod
    def setUpClass(cls):
        vox_ops.load()

    def caches(self, slots, g):
        k = torch.randn(slots, self.HEADS, self.CAPACITY, self.DIM, generator=g)
        return k, k * 0.5 + torch.randn(k.shape, generator=g)

    def test_slots_equal_slots_attend_and_write_only_their_rows(self):
        g = torch.Generator().manual_seed(5)
        module = torch.jit.script(export_xtts.SlotsAttend(self.HEADS))
        for slots, lens in (([0], [0]), ([2], [17]), ([3, 0, 4], [11, 30, 2]), ([1, 2, 0, 3, 4], [39, 0, 5, 6, 38])):
            qkv = torch.randn(len(slots), 1, 3 * self.HEADS * self.DIM, generator=g)
            k, v = self.caches(5, g)
            k2, v2, k3, v3 = k.double(), v.double(), k.clone(), v.clone()
            s, n = torch.tensor(slots), torch.tensor(lens)
            got = torch.ops.vox.cache_attend(qkv, k, v, s, n, 0.25)
            want = module(qkv.double(), k2, v2, s, n, max(lens) + 1, 0.25)
            self.assertEqual(tuple(got.shape), (len(slots), 1, self.HEADS * self.DIM))
            self.assertLess(float((got.double() - want).abs().max()), 1e-5, (slots, lens))
            # the new rows are written exactly where SlotsAttend writes them, and nothing else moves
            self.assertTrue(torch.equal(k.double(), k2) and torch.equal(v.double(), v2), (slots, lens))
            self.assertTrue(torch.equal(module(qkv, k3, v3, s, n, max(lens) + 1, 0.25), got), (slots, lens))
            self.assertTrue(torch.equal(k3, k) and torch.equal(v3, v), (slots, lens))

    def test_batch_in_slots_0_to_b_equals_step_attend(self):
        """StepAttend (LibTorch's operators, which GPU steps take) in float64 and float32."""
        g = torch.Generator().manual_seed(6)
        module = torch.jit.script(export_xtts.StepAttend(self.HEADS))
        for rows, length in ((1, 0), (1, 25), (3, 12)):
            qkv = torch.randn(rows, 1, 3 * self.HEADS * self.DIM, generator=g)
            k, v = self.caches(rows, g)
            k2, v2, k3, v3 = k.double(), v.double(), k.clone(), v.clone()
            got = torch.ops.vox.cache_attend(qkv, k, v, torch.arange(rows), torch.full([rows], length), 0.25)
            want = module(qkv.double(), k2, v2, length, 0.25)
            self.assertLess(float((got.double() - want).abs().max()), 1e-5, (rows, length))
            self.assertTrue(torch.equal(k.double(), k2) and torch.equal(v.double(), v2), (rows, length))
            self.assertLess(float((module(qkv, k3, v3, length, 0.25) - got).abs().max()), 1e-5, (rows, length))
            self.assertTrue(torch.equal(k3, k) and torch.equal(v3, v), (rows, length))

    def test_float32_step_on_cpu_is_step_slots_in_slots_0_to_b(self):
        """A float32 `step` on CPU attends through the operator, as step_slots does with row b
        in slot b: the same bits, caches included."""
        _, model_dir, _ = tiny_paths()
        m = torch.jit.load(os.path.join(model_dir, "model.ts"))
        with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as f:
            cfg = json.load(f)["config"]
        g = torch.Generator().manual_seed(8)
        layers, heads, d = cfg["layers"], cfg["heads"], cfg["d_model"]
        with torch.no_grad():
            kv = [torch.randn(2, heads, 40, d // heads, generator=g) for _ in range(2 * layers)]
            kv2 = [t.clone() for t in kv]
            codes, pos = torch.tensor([[5], [9]]), torch.tensor([[3], [3]])
            got = m.step(codes, pos, kv, 17)
            want = m.step_slots(codes, pos, kv2, torch.arange(2), torch.full([2], 17), 18)
        for a, b in zip(got, want):
            self.assertTrue(torch.equal(a, b))
        for a, b in zip(kv, kv2):
            self.assertTrue(torch.equal(a, b))

    def test_refuses_bad_arguments_clearly(self):
        k, v = self.caches(3, torch.Generator().manual_seed(7))
        qkv = torch.randn(2, 1, 3 * self.HEADS * self.DIM)
        s, n = torch.tensor([0, 2]), torch.tensor([3, 4])
        cases = [
            ((qkv, k, v, torch.tensor([0, 3]), n), "row 1's slot 3 is not one of the caches' 3"),
            ((qkv, k, v, torch.tensor([1, 1]), n), "rows 0 and 1 share slot 1"),
            ((qkv, k, v, s, torch.tensor([3, 40])), "row 1's cache length 40 leaves no room"),
            ((qkv, k, v, s, torch.tensor([-1, 4])), "row 0's cache length -1"),
            ((qkv[..., 1:], k, v, s, n), "qkv must be float32 [B, 1, 192]"),
            ((qkv.double(), k, v, s, n), "qkv must be float32"),
            ((qkv, k, v[:, :, :20], s, n), "v_cache [3, 4, 20, 16] differs from k_cache"),
            ((qkv, k.double(), v, s, n), "k_cache must be float32 [S, H, C, D]"),
            ((qkv, k.transpose(2, 3), v, s, n), "each row of k_cache must be contiguous"),
            ((qkv, k, v, s.int(), n), "slots must be int64 [2]"),
            ((qkv, k, v, s, n[:1]), "cache_lens must be int64 [2]"),
        ]
        for args, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(RuntimeError, re.escape(message)):
                    torch.ops.vox.cache_attend(*args, 0.25)


class TableAndTokenizerTest(unittest.TestCase):
    def test_language_table_matches_languages_cc(self):
        with open(os.path.join(SOURCE, "engines", "core", "languages.cc"), encoding="utf-8") as f:
            src = f.read()
        rows = re.findall(r'\{"(\w+_\w+)", "([\w-]+)",', src)
        self.assertEqual(dict((x, n) for n, x in rows), export_xtts.XTTS_TO_NLLB)

    def test_bpe_heap_order_on_runs(self):
        vocab = {"version": "1.0", "added_tokens": [{"id": 0, "content": "[STOP]"}, {"id": 1, "content": "[UNK]"}],
                 "model": {"type": "BPE", "unk_token": "[UNK]",
                           "vocab": {"[STOP]": 0, "[UNK]": 1, "a": 2, "b": 3, "aa": 4, "aaa": 5, "ab": 6},
                           "merges": ["a a", "aa a", "a b"]}}
        tok = xtts_reference.BpeTokenizer(vocab)
        # "aaaa": (0,1) merges first -> [aa, a, a]; then rank 0 (a a) at 2 beats rank 1 (aa a) -> [aa, aa].
        self.assertEqual(tok.encode_raw("aaaa"), [4, 4])
        self.assertEqual(tok.encode_raw("aaa"), [5])
        self.assertEqual(tok.encode_raw("aab"), [4, 3])  # a a (rank 0) before a b (rank 2)
        # '?!' is one piece of two unknown chars → [UNK] each (not fused); 'c' unknown; space dropped.
        self.assertEqual(tok.encode_raw("a?!b c"), [2, 1, 1, 3, 1])
        self.assertEqual(tok.encode_raw("[STOP]ab"), [0, 6])

    def test_pretokenizer_splits_words_and_punctuation(self):
        self.assertEqual(xtts_reference.BpeTokenizer._pretokenize("don't?! señor"), ["don", "'", "t", "?!", "señor"])

    def test_cleaner_expands_numbers_symbols_abbreviations(self):
        c = xtts_reference.clean_text
        self.assertEqual(c('  Dr. Smith paid $20 & "50%".', "en"), "doctor smith paid twenty dollars and fifty percent .")
        self.assertEqual(c("Son 12,5 y 3er.", "es"), "son doce punto cinco y tercero.")
        self.assertEqual(c("That's 100,000.5.", "en"), "that's one hundred thousand point five.")

    def test_splitmix64_known_values(self):
        # Reference values of splitmix64 seeded with 0 (Vigna's splitmix64.c).
        r = xtts_reference.SplitMix64(0)
        self.assertEqual(r.next_u64(), 0xE220A8397B1DCDAF)
        self.assertEqual(r.next_u64(), 0x6E789E6AA1B965F4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
