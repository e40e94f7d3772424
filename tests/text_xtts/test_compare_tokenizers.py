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


def random_vocab(seed=11, n_merges=400):
    """A BPE vocab whose merge ranks are NOT learned-consistent: merges over a small alphabet in
    random order, some listed twice (the later rank wins), some producing the same token from
    different pairs ("ab"+"c" and "a"+"bc"). This is where heap-based BPE and naive variants
    disagree."""
    rng = random.Random(seed)
    alphabet = list("abcdeé") + ["?", "!", "."]
    specials = ["[STOP]", "[UNK]", "[SPACE]", "[en]", "[es]"]
    vocab = {t: i for i, t in enumerate(specials + alphabet)}
    tokens = list(alphabet[:6])
    merges = []
    while len(merges) < n_merges:
        a, b = rng.choice(tokens), rng.choice(tokens)
        if len(a) + len(b) > 7:
            continue
        m = f"{a} {b}"
        if m in merges and rng.random() < 0.9:
            continue
        merges.append(m)
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            tokens.append(a + b)
    for m in ("? !", "! !", ". ."):
        merges.append(m)
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    rng.shuffle(merges)
    merges += rng.sample(merges, 20)  # later duplicates
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in specials]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
            "decoder": None,
            "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]",
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": False, "vocab": vocab, "merges": merges}}


def random_vocab_strings(n=500, seed=5):
    rng = random.Random(seed)
    out = [c * k for c in "abcde" for k in range(1, 16)]
    for _ in range(n):
        parts = []
        for _ in range(rng.randrange(1, 6)):
            r = rng.random()
            if r < 0.6:
                parts.append("".join(rng.choice("abcdeé") for _ in range(rng.randrange(1, 14))))
            elif r < 0.75:
                parts.append(rng.choice("abcde") * rng.randrange(2, 12))
            elif r < 0.85:
                parts.append("".join(rng.choice("?!.") for _ in range(rng.randrange(1, 5))))
            elif r < 0.92:
                parts.append(rng.choice(["x", "ß", "😀", "[SPACE]", "[en]"]))
            else:
                parts.append(rng.choice([" ", "\t"]))
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

    def run_tool(self, texts, *extra, binary=CPP, vocab=VOCAB):
        path = os.path.join(self.tmp.name, "texts.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
        report = os.path.join(self.tmp.name, "report.json")
        p = subprocess.run([sys.executable, TOOL, vocab, path, "--jsonl", "--binary", binary,
                            "--report", report, *extra], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        rep = None
        if os.path.exists(report):
            with open(report, encoding="utf-8") as f:
                rep = json.load(f)
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

    def test_inconsistent_merge_ranks_match_python_port(self):
        vocab = os.path.join(self.tmp.name, "random_vocab.json")
        with open(vocab, "w", encoding="utf-8") as f:
            json.dump(random_vocab(), f, ensure_ascii=False)
        texts = random_vocab_strings()
        rc, out, rep = self.run_tool(texts, vocab=vocab)
        self.assertEqual(rc, 0, out)
        for name, r in rep["references"].items():
            self.assertEqual((r["compared"], r["mismatches"]), (len(texts), 0), name)
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
