"""Compressed weights (tools/export_nllb.py --weights int8 | bfloat16, run by vox::linear from
libvox_torch_ops.so): what the export stores, the operator's checks, and the exported model
against the eager reference on the same (dequantized) numbers, teacher-forced."""
import os
import subprocess
import sys
import unittest

import nllb_test_util as util  # noqa: E402  (sets sys.path to tools/)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import compressed_weights  # noqa: E402
import export_nllb  # noqa: E402
import nllb_reference as ref  # noqa: E402
import vox_ops  # noqa: E402
from nllb_languages import FAIRSEQ_LANGUAGE_CODES  # noqa: E402

QUIET = lambda *a, **k: None  # noqa: E731
FORCED = [2, 57, 200, 13, 99, 2, 300, 41]


def compressed_key(key, weights):
    """Checkpoint keys the export compresses: the tied embedding and the linears, every one for
    int8, the decoder's for bfloat16."""
    if key in ("model.shared.weight",) + export_nllb.TIED_ALIASES:
        return True
    sides = ("model.decoder.layers.", "model.encoder.layers.") if weights == "int8" else ("model.decoder.layers.",)
    return key.startswith(sides) and key.endswith(("_proj.weight", "fc1.weight", "fc2.weight"))


def rounded_rows(x, bits):
    """x with each row rounded as vox::linear quantizes it (weight_gemv.h, QuantizeRows)."""
    top = float(2 ** (bits - 1) - 1)
    m = x.abs().amax(-1, keepdim=True)
    return torch.where(m > 0, torch.round(x * (top / m)) * (m / top), x)


def teacher_forced(model, ids, mask):
    """Logits [steps, batch, vocab] for FORCED after encoding ids."""
    cross = model.cross_kv(model.encode(ids, mask))
    kv = model.empty_cache(ids.size(0))
    out = []
    for t, tok in enumerate(FORCED):
        step = torch.full((ids.size(0), 1), tok, dtype=torch.long)
        logits, kv = model.decode_step(step, torch.full_like(step, 2 + t), kv,
                                       torch.ones(ids.size(0), t + 1, dtype=torch.long), cross, mask)
        out.append(logits)
    return torch.stack(out)


class WeightFormatsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        vox_ops.load()
        cls.ckpt = util.base_checkpoint()
        cls.sd = torch.load(os.path.join(cls.ckpt, "pytorch_model.bin"))
        cls.dirs = {}
        for weights in (None, "int8", "bfloat16"):
            out = os.path.join(util.workdir(), f"out-{weights or 'float32'}")
            export_nllb.export(cls.ckpt, out, "float32", "w", log=QUIET, weights=weights)
            cls.dirs[weights or "float32"] = out
        out = os.path.join(util.workdir(), "out-int8-a7")
        export_nllb.export(cls.ckpt, out, "float32", "w", log=QUIET, weights="int8", activation_bits=7)
        cls.dirs["int8-a7"] = out
        tok = ref.Tokenizer(os.path.join(cls.ckpt, "sentencepiece.bpe.model"), FAIRSEQ_LANGUAGE_CODES)
        a = tok.encode("The children are playing football in the garden.", "eng_Latn")
        b = tok.encode("Где ближайшая станция?", "rus_Cyrl")
        cls.ids = torch.full((2, len(a)), 1, dtype=torch.long)
        cls.mask = torch.zeros_like(cls.ids)
        cls.ids[0], cls.mask[0] = torch.tensor(a), 1
        cls.ids[1, :len(b)], cls.mask[1, :len(b)] = torch.tensor(b), 1

    @classmethod
    def tearDownClass(cls):
        util.cleanup()

    def reference_on(self, convert, weights):
        """The eager reference on a checkpoint whose keys compressed as `weights` went through
        convert()."""
        sd = {k: (convert(v) if compressed_key(k, weights) else v) for k, v in self.sd.items()}
        return ref.ReferenceModel.from_checkpoint(util.variant(f"ref-{id(convert)}", state_dict=sd))

    def test_int8_export_stores_int8_decoder_and_embedding_with_row_scales(self):
        m = ref.TorchScriptModel(self.dirs["int8"])
        self.assertEqual((m.manifest["dtype"], m.manifest["weights"]), ("float32", "int8"))
        params = dict(m.module.named_parameters())
        shared = params["model.shared.weight"]
        self.assertEqual(shared.dtype, torch.int8)
        self.assertEqual(params["model.shared.scale"].shape, (shared.size(0),))
        fc1 = "model.decoder.layers.0.fc1"
        self.assertEqual(params[fc1 + ".weight"].dtype, torch.int8)
        self.assertEqual(params[fc1 + ".bias"].dtype, torch.float32)
        self.assertEqual(params["model.encoder.layers.0.fc1.weight"].dtype, torch.int8)
        self.assertEqual(params["model.encoder.layers.0.self_attn.qkv_proj.weight"].dtype, torch.int8)
        # each stored row is the checkpoint's row rounded to its scale: |q * s - w| <= s / 2
        w = self.sd[fc1 + ".weight"]
        q, s = params[fc1 + ".weight"].float(), params[fc1 + ".scale"]
        self.assertLessEqual(float(((q * s[:, None] - w).abs() - s[:, None] / 2).max()), 1e-7)
        self.assertEqual(int(q.abs().amax(dim=1).min()), 127)
        # every compressed weight: int8 values and one float32 scale per row; all else float32
        part = [k for k in params if compressed_key(k, "int8")]
        self.assertGreater(len(part), 8)
        for k in part:
            scale = params[k[:-len("weight")] + "scale"]
            self.assertEqual((params[k].dtype, scale.dtype, tuple(scale.shape)),
                             (torch.int8, torch.float32, (params[k].size(0),)), k)
        others = [k for k in params if k not in part and not k.endswith(".scale")]
        self.assertTrue(all(params[k].dtype == torch.float32 for k in others))

    def test_int8_logits_equal_the_reference_on_the_dequantized_weights(self):
        def dequantize(w):
            q, s = compressed_weights.quantize_int8(w)
            return q.float() * s[:, None]
        plain = teacher_forced(self.reference_on(dequantize, "int8"), self.ids, self.mask)
        scale = float(plain.abs().max())
        # The default export's activations (8 bits) and --activation-bits 7's.
        for name, bits in (("int8", export_nllb.INT8_ACTIVATION_BITS), ("int8-a7", 7)):
            exported = ref.TorchScriptModel(self.dirs[name])
            self.assertEqual(exported.manifest["activation_bits"], bits)
            self.assertEqual({m.activation_bits for m in exported.module.modules() if hasattr(m, "activation_bits")},
                             {bits})
            got = teacher_forced(exported, self.ids, self.mask)
            # int8 activations at d_model 32 move the logits by about 1 % of their peak; with 8
            # bits the top-1 tokens stay the reference's (7 bits flip 2 of these 16).
            self.assertLess(float((got - plain).abs().max()), 2e-2 * scale, name)
            if bits == 8:
                self.assertTrue(torch.equal(got.argmax(-1), plain.argmax(-1)), name)
            # The reference with each linear's input rounded per row to `bits` as vox::linear
            # rounds it is nearer on average, with the same top-1 tokens: the export's
            # activations are what differ (after the first layer, rounding flips can make the
            # two drift apart by about a step, so not bit for bit).
            reference = self.reference_on(dequantize, "int8")
            for module in reference.modules():
                if isinstance(module, torch.nn.Linear):
                    module.register_forward_pre_hook(lambda m, inputs, bits=bits: (rounded_rows(inputs[0], bits),))
            rounded = teacher_forced(reference, self.ids, self.mask)
            self.assertLess(float((got - rounded).abs().mean()), 0.75 * float((got - plain).abs().mean()), name)
            self.assertTrue(torch.equal(got.argmax(-1), rounded.argmax(-1)), name)

    def test_operator_rounds_activations_per_row_to_the_bits_asked(self):
        gen = torch.Generator().manual_seed(3)
        x = torch.randn(5, 300, generator=gen) * torch.tensor([1.0, 5.0, 0.01, 0.0, 2.0]).unsqueeze(1)
        q, s = compressed_weights.quantize_int8(torch.randn(70, 300, generator=gen))
        b = torch.randn(70, generator=gen)
        w = q.double() * s.double()[:, None]
        for bits in (16, 8, 7):
            got = torch.ops.vox.linear(x, q, s, b, bits).double()
            want = F.linear(rounded_rows(x, bits).double(), w, b.double())
            self.assertLess(float((got - want).abs().max()), 1e-5 * float(want.abs().max()), bits)
        self.assertTrue(torch.equal(torch.ops.vox.linear(x, q, s, b), torch.ops.vox.linear(x, q, s, b, 16)))
        self.assertFalse(torch.equal(torch.ops.vox.linear(x, q, s, b, 8), torch.ops.vox.linear(x, q, s, b, 16)))
        self.assertFalse(torch.equal(torch.ops.vox.linear(x, q, s, b, 7), torch.ops.vox.linear(x, q, s, b, 8)))

    def test_bfloat16_logits_equal_the_reference_on_the_rounded_weights(self):
        want = teacher_forced(self.reference_on(lambda w: w.bfloat16().float(), "bfloat16"), self.ids, self.mask)
        m = ref.TorchScriptModel(self.dirs["bfloat16"])
        params = dict(m.module.named_parameters())
        self.assertEqual(params["model.decoder.layers.0.fc1.weight"].dtype, torch.bfloat16)
        self.assertEqual(params["model.encoder.layers.0.fc1.weight"].dtype, torch.float32)
        got = teacher_forced(m, self.ids, self.mask)
        self.assertLess(float((got - want).abs().max()), 1e-4 * float(want.abs().max()))

    def test_int8_stays_near_float32(self):
        fp32 = teacher_forced(ref.TorchScriptModel(self.dirs["float32"]), self.ids, self.mask)
        int8 = teacher_forced(ref.TorchScriptModel(self.dirs["int8"]), self.ids, self.mask)
        self.assertLess(float((int8 - fp32).abs().max()), 0.05 * float(fp32.abs().max()))

    def test_steps_of_8_rows_attend_like_steps_of_2(self):
        # A row's logits alone and among others (vox::attend sums each (row, head) alone; the
        # products past 64 rows are LibTorch's): the same within float32 rounding (in int8, as an
        # activation's rounding may then fall the other way, ten times that).
        for weights, tolerance in (("float32", 1e-5), ("int8", 1e-4)):
            m = ref.TorchScriptModel(self.dirs[weights])
            two = teacher_forced(m, self.ids, self.mask)
            eight = teacher_forced(m, self.ids.repeat(4, 1), self.mask.repeat(4, 1))
            for r in range(8):
                self.assertLess(float((eight[:, r] - two[:, r % 2]).abs().max()),
                                tolerance * float(two.abs().max()), (weights, r))

    def test_every_format_attends_through_vox_attend_on_cpu_and_every_export_needs_vox_operators(self):
        for weights in ("float32", "int8", "bfloat16"):
            model = ref.TorchScriptModel(self.dirs[weights]).module.model
            encoder, decoder = getattr(model.encoder.layers, "0"), getattr(model.decoder.layers, "0")
            cores = (encoder.self_attn.core, decoder.self_attn.core, decoder.encoder_attn.core)
            self.assertEqual([c.original_name for c in cores], ["Attend"] * 3, weights)
            self.assertIn("vox::attend", str(cores[0].graph), weights)
        # float32 on CPU takes the operator's bits; another dtype (which vox::attend refuses)
        # LibTorch's operators
        g = torch.Generator().manual_seed(4)
        q, k, v = (torch.randn(2, 4, 3, 16, generator=g) for _ in range(3))
        mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
        neg = float(torch.finfo(torch.float32).min)
        attend = torch.jit.script(export_nllb.Attend())
        self.assertTrue(torch.equal(attend(q, k, v, mask, neg), torch.ops.vox.attend(q, k, v, mask, neg)))
        q, k, v = q.double(), k.double(), v.double()
        self.assertTrue(torch.equal(attend(q, k, v, mask, neg), export_nllb.plain_attend(q, k, v, mask, neg)))
        # every export scripts vox::linear (float32's few-row products too): a process without
        # vox's operators cannot load one, and says which operator it lacks
        load = "import sys, torch; torch.jit.load(sys.argv[1])"
        for weights in ("float32", "int8"):
            done = subprocess.run([sys.executable, "-c", load, os.path.join(self.dirs[weights], "model.ts")],
                                  capture_output=True, text=True)
            self.assertNotEqual(done.returncode, 0, weights)
            self.assertIn("vox::linear", done.stderr, weights)

    def test_float32_few_rows_on_cpu_go_through_vox_linear_and_match_plain_linear(self):
        """linear_rows: up to 64 float32 rows on CPU against a contiguous weight run vox::linear;
        a transposed weight (XTTS's GPT-2 Conv1D) and more rows keep LibTorch's products."""
        import torchscript_linear
        scripted = torch.jit.script(torchscript_linear.linear_rows)
        self.assertIn("vox::linear", str(scripted.graph))
        g = torch.Generator().manual_seed(5)
        weight, bias = torch.randn(37, 300, generator=g), torch.randn(37, generator=g)
        transposed = weight.t().contiguous().t()
        for rows in (1, 3, 4, 6, 36, 64, 65, 200):
            x = torch.randn(rows, 300, generator=g)
            want = x.double() @ weight.double().t() + bias.double()
            for w in (weight, transposed):
                got = scripted(x, w, bias)
                self.assertEqual(tuple(got.shape), (rows, 37))
                self.assertLess(float((got.double() - want).abs().max()), 1e-4, (rows, w.is_contiguous()))
            # vox::linear up to 64 rows, LibTorch's linear past them (on AVX-512 the two differ in
            # their last bits, which pins the threshold; elsewhere vox::linear hands 5 or more rows
            # to linear itself)
            through = torch.ops.vox.linear(x, weight, None, bias) if rows <= 64 else F.linear(x, weight, bias)
            self.assertTrue(torch.equal(scripted(x, weight, bias), through), rows)
            if rows <= 4:
                self.assertTrue(torch.equal(scripted(x, weight, bias), torch.ops.vox.linear(x, weight, None, bias)))
                self.assertTrue(torch.equal(scripted(x, transposed, bias)[-1], torch.addmv(bias, transposed, x[-1])))
                # a row's bits are the same alone and among others (a decoder row in any batch)
                self.assertTrue(torch.equal(scripted(x[-1:], weight, bias)[0], scripted(x, weight, bias)[-1]))

    def test_attend_operator_equals_plain_attention_on_caches_cross_keys_and_many_queries(self):
        g = torch.Generator().manual_seed(3)
        plain = export_nllb.plain_attend
        neg = float(torch.finfo(torch.float32).min)
        for rows, queries in ((1, 1), (3, 1), (9, 1), (2, 5)):
            q = torch.randn(rows, 4, queries, 16, generator=g)
            cache = torch.randn(rows, 4, 30, 16, generator=g)       # a self cache, narrowed to 11
            cross = torch.randn(rows, 7, 4, 16, generator=g).transpose(1, 2)  # projected keys, as views
            for k, keys in ((cache.narrow(2, 0, 11), 11), (cross, 7)):
                v = k * 0.5 + 1
                mask = (torch.arange(keys).unsqueeze(0) <= torch.arange(rows).unsqueeze(1) + 2).long()
                got = torch.ops.vox.attend(q, k, v, mask, neg)
                want = plain(q, k, v, mask, neg)
                self.assertEqual(tuple(got.shape), (rows, 4, queries, 16))
                self.assertLess(float((got - want).abs().max()), 1e-5, (rows, queries, keys))

    def test_attend_operator_refuses_bad_arguments_clearly(self):
        q, k, mask = torch.randn(2, 4, 1, 8), torch.randn(2, 4, 5, 8), torch.ones(2, 5, dtype=torch.long)
        cases = [
            ((q.double(), k, k, mask), "q must be float32 [B, H, Q, D]"),
            ((q[0], k, k, mask), "q must be float32 [B, H, Q, D]"),
            ((q, torch.randn(2, 4, 5, 7), k, mask), "does not fit q"),
            ((q, k, torch.randn(2, 4, 6, 8), mask), "does not fit q"),
            ((q, k, k, torch.ones(2, 4)), "key_mask must be [2, 5]"),
            ((q, torch.randn(2, 4, 8, 5).transpose(2, 3), k, mask), "each key of k must be contiguous"),
        ]
        for args, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(RuntimeError, message.replace("[", r"\[").replace("]", r"\]")):
                    torch.ops.vox.attend(*args, -1e9)

    def test_operator_takes_any_leading_shape_and_rows_alone_equal_rows_together(self):
        x = torch.randn(3, 5, 64)
        w, s = compressed_weights.quantize_int8(torch.randn(48, 64))
        b = torch.randn(48)
        y = torch.ops.vox.linear(x, w, s, b)
        self.assertEqual(tuple(y.shape), (3, 5, 48))
        self.assertTrue(torch.equal(y[1, 2], torch.ops.vox.linear(x[1, 2:3], w, s, b)[0]))

    def test_operator_refuses_bad_arguments_clearly(self):
        x = torch.randn(2, 8)
        q, s = compressed_weights.quantize_int8(torch.randn(4, 8))
        cases = [
            ((x, torch.randn(4, 8).double(), None, None), "weight must be int8, bfloat16 or float32"),
            ((x, q, None, None), "int8 weights need a scale"),
            ((x, q, s[:3], None), "scale must be float32 [4]"),
            ((x, q, s, torch.randn(5)), "bias must be float32 [4]"),
            ((torch.randn(2, 7), q, s, None), "x has 7 features, weight 8"),
            ((x.double(), q, s, None), "x must be float32"),
            ((x, q.bfloat16(), s, None), "bfloat16 weights take no scale"),
            ((x, q.float(), s, None), "float32 weights take no scale"),
            ((x, q.t().contiguous().t(), s, None), "weight must be contiguous [out, in]"),
            ((x, q, s, None, 12), "activation_bits must be 16, 8 or 7, got 12"),
            ((x, q.float(), None, None, 8), "activation_bits must be 16 for non-int8 weights, got 8"),
        ]
        for args, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(RuntimeError, message.replace("[", r"\[").replace("]", r"\]")):
                    torch.ops.vox.linear(*args)

    def test_export_refusals_name_the_problem(self):
        with self.assertRaisesRegex(export_nllb.ExportError, "needs --dtype float32"):
            export_nllb.export(self.ckpt, os.path.join(util.workdir(), "x"), "bfloat16", log=QUIET,
                               weights="int8")
        with self.assertRaisesRegex(export_nllb.ExportError, "int8 weights only"):
            export_nllb.export(self.ckpt, os.path.join(util.workdir(), "x"), log=QUIET, weights="bfloat16",
                               activation_bits=7)
        with self.assertRaisesRegex(export_nllb.ExportError, "activation bits 6: allowed 8, 7"):
            export_nllb.export(self.ckpt, os.path.join(util.workdir(), "x"), log=QUIET, weights="int8",
                               activation_bits=6)
        env = dict(os.environ, VOX_TORCH_OPS="/nonexistent/libvox_torch_ops.so")
        r = subprocess.run([sys.executable, os.path.join(util.TOOLS, "export_nllb.py"), "--checkpoint", self.ckpt,
                            "--out", os.path.join(util.workdir(), "y"), "--weights", "int8"],
                           env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("/nonexistent/libvox_torch_ops.so: missing", r.stderr)
        self.assertIn("--target vox_torch_ops", r.stderr)


if __name__ == "__main__":
    unittest.main()
