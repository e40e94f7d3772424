"""tools/safetensors_reader.py: round trips through its own writer, a file laid out by hand
from the format description, and malformed files."""
import json
import os
import struct
import tempfile
import unittest

import nllb_test_util  # noqa: F401  (sets sys.path to tools/)

import torch

import safetensors_reader as st


class SafetensorsReaderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "x.safetensors")

    def tearDown(self):
        self.dir.cleanup()

    def test_round_trip_every_dtype(self):
        g = torch.Generator().manual_seed(1)
        tensors = {
            "f32": torch.randn(3, 5, generator=g),
            "f64": torch.randn(2, generator=g).double(),
            "f16": torch.randn(4, 4, generator=g).half(),
            "bf16": torch.randn(2, 3, 7, generator=g).bfloat16(),
            "i64": torch.arange(-5, 5),
            "i32": torch.arange(6, dtype=torch.int32).view(2, 3),
            "i16": torch.tensor([-3, 7], dtype=torch.int16),
            "i8": torch.tensor([-128, 127], dtype=torch.int8),
            "u8": torch.tensor([0, 255], dtype=torch.uint8),
            "bool": torch.tensor([True, False, True]),
            "scalar": torch.tensor(2.5),
            "empty": torch.zeros(0, 4),
        }
        st.save_file(tensors, self.path, {"format": "pt"})
        back = st.load_file(self.path)
        self.assertEqual(sorted(back), sorted(tensors))
        for k, v in tensors.items():
            self.assertEqual(back[k].dtype, v.dtype, k)
            self.assertEqual(back[k].shape, v.shape, k)
            self.assertTrue(torch.equal(back[k], v), k)
        self.assertEqual(sorted(st.load_file(self.path, ["i8", "bf16"])), ["bf16", "i8"])

    def test_reads_a_file_laid_out_by_hand(self):
        # Layout from the format description, independent of save_file: unsorted names, a gap-free
        # buffer, metadata, little-endian values.
        a = struct.pack("<3f", 1.0, -2.5, 3.25)
        b = struct.pack("<2q", -7, 1 << 40)
        header = {"b": {"dtype": "I64", "shape": [2], "data_offsets": [12, 28]},
                  "__metadata__": {"format": "pt"},
                  "a": {"dtype": "F32", "shape": [3, 1], "data_offsets": [0, 12]}}
        raw = json.dumps(header).encode()
        with open(self.path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw + a + b)
        t = st.load_file(self.path)
        self.assertTrue(torch.equal(t["a"], torch.tensor([[1.0], [-2.5], [3.25]])))
        self.assertTrue(torch.equal(t["b"], torch.tensor([-7, 1 << 40])))
        self.assertEqual(st.read_header(self.path)["a"]["shape"], [3, 1])

    def test_malformed_files_fail_naming_the_problem(self):
        st.save_file({"w": torch.ones(4, 4)}, self.path)
        data = open(self.path, "rb").read()
        (n,) = struct.unpack("<Q", data[:8])
        cases = {
            "truncated": (data[:-5], "data_offsets"),
            "short": (data[:5], "too short"),
            "huge header": (struct.pack("<Q", 1 << 40) + data[8:], "header length"),
            "not json": (struct.pack("<Q", 4) + b"{{{{", "not UTF-8 JSON"),
            "bad dtype": (None, "unknown dtype 'F8'"),
            "wrong size": (None, "do not hold"),
        }
        for name, (content, pattern) in cases.items():
            with self.subTest(name=name):
                if name == "bad dtype":
                    content = self._rewrite(data, n, lambda h: h["w"].update(dtype="F8"))
                if name == "wrong size":
                    content = self._rewrite(data, n, lambda h: h["w"].update(shape=[4, 5]))
                bad = os.path.join(self.dir.name, "bad.safetensors")
                with open(bad, "wb") as f:
                    f.write(content)
                with self.assertRaisesRegex(st.SafetensorsError, pattern) as cm:
                    st.load_file(bad)
                self.assertIn(bad, str(cm.exception))

    @staticmethod
    def _rewrite(data, n, edit):
        header = json.loads(data[8:8 + n])
        edit(header)
        raw = json.dumps(header).encode()
        return struct.pack("<Q", len(raw)) + raw + data[8 + n:]


if __name__ == "__main__":
    unittest.main()
