"""vox's XTTS text front end (XttsTokenizer::Encode, through vox_xtts_tokenize) against coqui-tts
0.28.0 itself (VoiceBpeTokenizer.encode(text.strip().lower(), lang), as Xtts.inference calls it),
for each of XTTS's 17 languages on 1,300 generated strings (tests/upstream_xtts_text/
xtts_text_strings.py), over two vocabs: a multilingual BPE vocab.json in the released shape made
here by tools/xtts_vocab.py (6,681 entries covering every script) and the tiny XTTS checkpoint's.

Per language the outcome must be the documented one (docs/text.md):
  * cs en es fr de hu it ko nl pt: every string gives Coqui's ids (or both refuse: a number num2words cannot read);
  * pl tr ru ar hi: every string without ASCII digits gives Coqui's ids, every
    string with them is refused by vox (InvalidArgument naming the language: vox has no num2words
    for it) -- or by both;
  * zh-cn ja: every string is refused by vox, naming the language (romanisation missing).
A mismatch fails with the text, the first differing position and both id sequences.
Runs in the reference environment (vox_add_pytest REFERENCE)."""
import json
import os
import stat
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("VOX_SOURCE_DIR", os.path.join(HERE, "..", ".."))
BIN = os.environ.get("VOX_BINARY_DIR", os.path.join(SRC, "build"))
TINY = os.environ.get("VOX_TINY_DIR", os.path.join(BIN, "tiny"))
sys.path.insert(0, os.path.join(SRC, "tools"))
sys.path.insert(0, HERE)

import compare_tokenizers_xtts as compare  # noqa: E402
import xtts_text_strings  # noqa: E402
import xtts_vocab  # noqa: E402

CPP = os.path.join(BIN, "engines", "text", "vox_xtts_tokenize")
TINY_VOCAB = os.path.join(TINY, "checkpoints", "xtts-tiny", "vocab.json")
EXACT = ["cs", "en", "es", "fr", "de", "hu", "it", "ko", "nl", "pt"]
NO_NUM2WORDS = ["pl", "tr", "ru", "ar", "hi"]
REFUSED = ["zh-cn", "ja"]
N_WORDS, N_NUMBERS = 1000, 300


def has_ascii_digit(text):
    return any("0" <= c <= "9" for c in text)


def mismatch_report(lang, result):
    lines = [f"{lang}: {len(result['mismatches'])} mismatches against coqui-tts"]
    lines += [compare.describe_mismatch(m) for m in result["mismatches"][:3]]
    return "\n".join(lines)


class CoquiXttsTokenizerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(CPP):
            raise RuntimeError(f"{CPP} missing: build the vox_xtts_tokenize target")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.vocab_json = xtts_vocab.make_vocab()
        cls.vocab = os.path.join(cls.tmp.name, "vocab.json")
        with open(cls.vocab, "w", encoding="utf-8") as f:
            json.dump(cls.vocab_json, f, ensure_ascii=False)
        cls.summary = []

    @classmethod
    def tearDownClass(cls):
        for line in cls.summary:
            print(line)
        cls.tmp.cleanup()

    def test_generated_vocab_shape(self):
        v = self.vocab_json
        vocab = v["model"]["vocab"]
        self.assertEqual(len(vocab), 6681)
        self.assertEqual(v["pre_tokenizer"], {"type": "Whitespace"})
        self.assertIsNone(v["normalizer"])
        self.assertEqual([vocab[t] for t in ("[STOP]", "[UNK]", "[SPACE]")], [0, 1, 2])
        added = {t["content"]: t["id"] for t in v["added_tokens"]}
        for lang in xtts_text_strings.LANGUAGES:
            self.assertIn(f"[{lang}]", added)
        self.assertIn("[START]", added)
        self.assertEqual(sorted(vocab.values()), list(range(len(vocab))))
        for script in ("ж", "ي", "क", "ş", "ő", "ł", "ř", "ά", "あ", "한", "中"):
            self.assertIn(script, vocab, script)
        # Same inputs, same file.
        self.assertEqual(json.dumps(xtts_vocab.make_vocab(), ensure_ascii=False),
                         json.dumps(v, ensure_ascii=False))

    def check_language(self, vocab, lang, label):
        texts = xtts_text_strings.strings(lang, N_WORDS, N_NUMBERS)
        r = compare.compare_coqui(vocab, texts, lang, CPP)
        self.summary.append(
            f"{label} {lang}: {r['compared']} strings, {r['matched']} equal ids, {r['both_refuse']} "
            f"refused by both, {len(r['refused'])} refused by vox only, {len(r['mismatches'])} "
            "mismatches")
        if r["mismatches"]:
            self.fail(mismatch_report(lang, r))
        no_digits = sum(1 for t in texts if not has_ascii_digit(t))
        if lang in EXACT:
            self.assertEqual(r["refused"], [], f"{lang}: vox refused text Coqui reads")
            self.assertEqual(r["matched"] + r["both_refuse"], len(texts))
            self.assertGreaterEqual(r["matched"], N_WORDS + N_NUMBERS // 2)
        elif lang in NO_NUM2WORDS:
            for ref in r["refused"]:
                self.assertTrue(has_ascii_digit(ref["text"]), ref)
                self.assertIn("has digits", ref["error"])
            self.assertEqual(r["matched"], no_digits, lang)
            self.assertGreaterEqual(r["matched"], N_WORDS)
        else:
            self.assertEqual(r["matched"], 0, lang)
            for out in compare.run_cpp(CPP, vocab, texts, lang):
                self.assertIsInstance(out, dict)
                self.assertIn(f"XTTS language '{lang}' is not supported", out["error"])

    def test_languages_generated_vocab(self):
        for lang in xtts_text_strings.LANGUAGES:
            with self.subTest(lang=lang):
                self.check_language(self.vocab, lang, "generated vocab")

    def test_languages_tiny_vocab(self):
        if not os.path.exists(TINY_VOCAB):
            self.fail(f"{TINY_VOCAB} missing: build the tiny_xtts target")
        for lang in xtts_text_strings.LANGUAGES:
            with self.subTest(lang=lang):
                self.check_language(TINY_VOCAB, lang, "tiny vocab")

    def test_comparer_reports_a_difference(self):
        # A vox_xtts_tokenize that adds 1 to the last id of each sequence: every string must be
        # reported, with the first differing position.
        fake = os.path.join(self.tmp.name, "fake_tokenize")
        with open(fake, "w") as f:
            f.write(f"#!/bin/sh\n'{CPP}' \"$@\" | '{sys.executable}' -c '"
                    "import json, sys\n"
                    "for line in sys.stdin:\n"
                    "    x = json.loads(line)\n"
                    "    print(json.dumps(x[:-1] + [x[-1] + 1] if isinstance(x, list) else x))'\n")
        os.chmod(fake, os.stat(fake).st_mode | stat.S_IXUSR)
        texts = ["Hello, world 42!", "Dr. Smith paid $3.50."]
        r = compare.compare_coqui(self.vocab, texts, "en", fake)
        self.assertEqual(len(r["mismatches"]), 2)
        text = compare.describe_mismatch(r["mismatches"][0])
        want = r["mismatches"][0]["expected"]
        self.assertIn(f"first difference at position {len(want) - 1}", text)
        self.assertIn(str(want), text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
