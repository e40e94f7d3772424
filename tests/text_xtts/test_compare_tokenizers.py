#!/usr/bin/python3
"""C++ XTTS tokenizer vs the Python port of HF tokenizers' algorithm (and HF tokenizers itself
where installed) on a few hundred generated strings over the tiny XTTS vocab: unknown characters,
runs of one repeated character, punctuation runs, accents and combining marks, digits, added
tokens; plus the whole en/es pipeline (cleaning + BPE) on sentences with numbers."""
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

SRC = os.environ.get("VOX_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("VOX_BINARY_DIR", "")
TINY = os.environ.get("VOX_TINY_DIR", os.path.join(BIN, "tiny"))
TOOL = os.path.join(SRC, "tools", "compare_tokenizers_xtts.py")
CPP = os.path.join(BIN, "engines", "text", "vox_xtts_tokenize")
VOCAB = os.path.join(TINY, "checkpoints", "xtts-tiny", "vocab.json")


def generated_strings(n=400, seed=7):
    rng = random.Random(seed)
    known = list("abcdefghijklmnopqrstuvwxyz") + list("áéíóúñü¿¡") + list("0123456789")
    punct = list(".,!?'-:;&@%#$€£°")
    unknown = ["ß", "ø", "Ж", "ж", "日", "本", "😀", "🎉", "\u0301", "\u0308", "ç", "Ä", "\u200d",
               "_", "~", "*", "^", "ア", "\u00ad"]
    spaces = [" ", "  ", "\t", "\n", "\u00a0", "\u3000"]
    added = ["[SPACE]", "[en]", "[es]", "[STOP]", "[UNK]", "[START]", "[EN]", "[SPACE", "SPACE]"]
    out = []
    for ch in "aoelsx":  # runs of one repeated character (merges "a a", "aa a", "o o", "oo o", "l l")
        for k in range(1, 14):
            out.append(ch * k)
    for _ in range(n):
        parts = []
        for _ in range(rng.randrange(1, 12)):
            r = rng.random()
            if r < 0.45:
                parts.append("".join(rng.choice(known) for _ in range(rng.randrange(1, 9))))
            elif r < 0.55:
                parts.append(rng.choice("aoel") * rng.randrange(2, 9))
            elif r < 0.68:
                parts.append("".join(rng.choice(punct) for _ in range(rng.randrange(1, 4))))
            elif r < 0.78:
                parts.append(rng.choice(unknown))
            elif r < 0.9:
                parts.append(rng.choice(spaces))
            else:
                parts.append(rng.choice(added))
        out.append("".join(parts))
    return out


SENTENCES = {
    "en": ["Hello, world! This is a tiny test.", "It costs $20.15 today, or 3 pounds.",
           "The 3rd of May, 1999: Dr. Smith & Co. won 14% more.", "Wooo, naïve café — 2,500 songs!",
           "I'd pay £3.50, $1,000,000 or 12.5€ for the 22nd seat.", "Call me at 10:30 #1 @ home.",
           "   Leading and trailing   ", "\"Quotes\" and 'apostrophes' don't matter?!",
           "Aaaa... ooooh!!! llllama 101st.", "Emoji 😀 and ß and Ж stay [UNK]."],
    "es": ["¡Hola, mundo! ¿Dónde está la estación?", "Son las 12,5 de la noche, Sr. García.",
           "El 1er perro cuesta 20€ y 5 centavos.", "Llegaron 1.000 personas al 3er piso.",
           "Aaaa... ¡qué bien!", "La Dra. Pérez pagó $3,50 y 1.234.567,89€.",
           "El 2º y la 3ª, 100% @ casa & #1.", "Ñandú, pingüino y acción: 30° C."],
}


class CompareTokenizersTest(unittest.TestCase):
    def setUp(self):
        for path, what in ((CPP, "vox_xtts_tokenize (target vox_xtts_tokenize)"),
                           (VOCAB, "the tiny XTTS vocab (target tiny_xtts)")):
            self.assertTrue(os.path.exists(path), f"missing {what}: {path}")
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def run_tool(self, texts, *extra, binary=CPP):
        path = os.path.join(self.tmp.name, "texts.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
        report = os.path.join(self.tmp.name, "report.json")
        p = subprocess.run([sys.executable, TOOL, VOCAB, path, "--jsonl", "--binary", binary,
                            "--report", report, *extra], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        rep = json.load(open(report, encoding="utf-8")) if os.path.exists(report) else None
        return p.returncode, p.stdout, rep

    def test_raw_bpe_matches_python_port(self):
        texts = generated_strings()
        self.assertGreater(len(texts), 400)
        rc, out, rep = self.run_tool(texts)
        self.assertEqual(rc, 0, out)
        for name, r in rep["references"].items():
            self.assertEqual(r["compared"], len(texts), name)
            self.assertEqual(r["mismatches"], 0, name)
        print(out)

    def test_full_pipeline_matches_reference(self):
        for lang, texts in SENTENCES.items():
            rc, out, rep = self.run_tool(texts, "--lang", lang)
            self.assertEqual(rc, 0, out)
            print(out)

    def test_tool_reports_mismatches(self):
        # A fake "C++ tokenizer" that answers [] for every line must be caught.
        fake = os.path.join(self.tmp.name, "fake.sh")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\nwhile IFS= read -r line; do echo '[]'; done\n")
        os.chmod(fake, 0o755)
        rc, out, rep = self.run_tool(["hello", "world"], binary=fake)
        self.assertEqual(rc, 1, out)
        self.assertTrue(any(r["mismatches"] == 2 for r in rep["references"].values()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
