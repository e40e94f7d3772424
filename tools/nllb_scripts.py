"""Every writing system of NLLB-200's language codes, as generated text: a training corpus for a
SentencePiece model whose pieces cover all of them (tools/nllb_checkpoint.py's tiny-scripts
preset) and the tokenizer test strings (tests/upstream_nllb).

Nothing here is language: words are seeded random strings of each script's letters (and its
vowel signs, so that pieces combine letters and marks as real text does). Deterministic: the
same seed gives the same text on any machine and Python 3.

    corpus_lines(seed) -> [str]       about 60 lines per script
    test_strings(seed) -> [(text, code)]  at least 1,000 strings: each script, whitespace runs,
                                     emoji, digits, Unicode normalisation cases, mixed scripts
"""
import random
import unicodedata
from typing import Dict, List, Tuple

from nllb_languages import FAIRSEQ_LANGUAGE_CODES

# script (the code's suffix) -> (letters, marks): inclusive code point ranges.
_R = Tuple[int, int]
SCRIPTS: Dict[str, Tuple[List[_R], List[_R]]] = {
    "Latn": ([(0x61, 0x7A), (0x41, 0x5A), (0xE0, 0xF6), (0xF8, 0xFF), (0x100, 0x17F), (0x1EB9, 0x1EB9),
              (0x1ECD, 0x1ECD), (0x25B, 0x25B), (0x254, 0x254), (0x14B, 0x14B)], []),
    "Arab": ([(0x621, 0x64A), (0x67E, 0x67E), (0x686, 0x686), (0x6A9, 0x6A9), (0x6AF, 0x6AF), (0x6CC, 0x6CC)],
             [(0x64B, 0x650)]),
    "Armn": ([(0x531, 0x556), (0x561, 0x586)], []),
    "Beng": ([(0x985, 0x98C), (0x98F, 0x990), (0x993, 0x9A8), (0x9AA, 0x9B0), (0x9B6, 0x9B9)],
             [(0x9BE, 0x9C4), (0x9CD, 0x9CD)]),
    "Cyrl": ([(0x410, 0x44F), (0x451, 0x451), (0x454, 0x457), (0x491, 0x491), (0x4AF, 0x4AF), (0x4E9, 0x4E9)], []),
    "Deva": ([(0x905, 0x914), (0x915, 0x939)], [(0x93E, 0x94C), (0x94D, 0x94D), (0x902, 0x902)]),
    "Ethi": ([(0x1200, 0x1248), (0x1260, 0x1286), (0x12A0, 0x12D6)], []),
    "Geor": ([(0x10D0, 0x10F0)], []),
    "Grek": ([(0x391, 0x3A1), (0x3A3, 0x3A9), (0x3B1, 0x3C9), (0x3AC, 0x3AF)], []),
    "Gujr": ([(0xA85, 0xA8D), (0xA8F, 0xA91), (0xA93, 0xAA8), (0xAAA, 0xAB0), (0xAB5, 0xAB9)],
             [(0xABE, 0xAC5), (0xACD, 0xACD)]),
    "Guru": ([(0xA05, 0xA0A), (0xA15, 0xA28), (0xA2A, 0xA30), (0xA38, 0xA39)], [(0xA3E, 0xA42), (0xA4D, 0xA4D)]),
    "Hang": ([(0xAC00, 0xAD8F)], []),
    "Hans": ([(0x4E00, 0x4FFF)], []),
    "Hant": ([(0x5000, 0x51FF)], []),
    "Hebr": ([(0x5D0, 0x5EA)], []),
    "Jpan": ([(0x3041, 0x3093), (0x30A1, 0x30F3), (0x5200, 0x52FF)], []),
    "Khmr": ([(0x1780, 0x17A2)], [(0x17B6, 0x17C5), (0x17D2, 0x17D2)]),
    "Knda": ([(0xC85, 0xC8C), (0xC8E, 0xC90), (0xC92, 0xCA8), (0xCAA, 0xCB3), (0xCB5, 0xCB9)],
             [(0xCBE, 0xCC4), (0xCCD, 0xCCD)]),
    "Laoo": ([(0xE81, 0xE82), (0xE84, 0xE84), (0xE87, 0xE88), (0xE8A, 0xE8A), (0xE94, 0xE97), (0xE99, 0xE9F),
              (0xEA1, 0xEA3), (0xEA5, 0xEA5), (0xEA7, 0xEA7), (0xEAA, 0xEAB), (0xEAD, 0xEAE)], [(0xEB4, 0xEB9)]),
    "Mlym": ([(0xD05, 0xD0C), (0xD0E, 0xD10), (0xD12, 0xD39)], [(0xD3E, 0xD44), (0xD4D, 0xD4D)]),
    "Mymr": ([(0x1000, 0x1021)], [(0x102B, 0x1032), (0x1039, 0x1039)]),
    "Orya": ([(0xB05, 0xB0C), (0xB0F, 0xB10), (0xB13, 0xB28), (0xB2A, 0xB30), (0xB32, 0xB33), (0xB35, 0xB39)],
             [(0xB3E, 0xB44), (0xB4D, 0xB4D)]),
    "Sinh": ([(0xD85, 0xD96), (0xD9A, 0xDB1), (0xDB3, 0xDBB), (0xDC0, 0xDC6)], [(0xDCF, 0xDD4), (0xDCA, 0xDCA)]),
    "Taml": ([(0xB85, 0xB8A), (0xB8E, 0xB90), (0xB92, 0xB95), (0xB99, 0xB9A), (0xB9E, 0xB9F), (0xBA3, 0xBA4),
              (0xBA8, 0xBAA), (0xBAE, 0xBB9)], [(0xBBE, 0xBC2), (0xBCD, 0xBCD)]),
    "Telu": ([(0xC05, 0xC0C), (0xC0E, 0xC10), (0xC12, 0xC28), (0xC2A, 0xC39)], [(0xC3E, 0xC44), (0xC4D, 0xC4D)]),
    "Tfng": ([(0x2D30, 0x2D67)], []),
    "Thai": ([(0xE01, 0xE2E)], [(0xE31, 0xE31), (0xE34, 0xE3A), (0xE47, 0xE4C)]),
    "Tibt": ([(0xF40, 0xF47), (0xF49, 0xF6C)], [(0xF71, 0xF7D)]),
}
# Scripts written without spaces between words.
NO_SPACES = {"Hans", "Hant", "Jpan", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"}


def script_codes() -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for code in FAIRSEQ_LANGUAGE_CODES:
        out.setdefault(code.split("_")[1], []).append(code)
    missing = sorted(set(out) - set(SCRIPTS))
    if missing:
        raise ValueError(f"nllb_scripts.SCRIPTS lacks scripts {missing}")
    return out


def _chars(ranges: List[_R]) -> List[str]:
    return [chr(c) for a, b in ranges for c in range(a, b + 1) if unicodedata.category(chr(c)) != "Cn"]


def _word(rng: random.Random, letters: List[str], marks: List[str], common: List[str]) -> str:
    n = rng.randint(1, 7)
    out = []
    for _ in range(n):
        # a Zipf-like choice: frequent letters recur, so BPE learns multi-letter pieces
        pool = common if rng.random() < 0.7 else letters
        out.append(rng.choice(pool))
        if marks and rng.random() < 0.4:
            out.append(rng.choice(marks))
    return "".join(out)


def _sentence(rng: random.Random, script: str, words: int) -> str:
    letters, marks = (_chars(r) for r in SCRIPTS[script])
    common = letters[:: max(1, len(letters) // 12)][:12]
    sep = "" if script in NO_SPACES and rng.random() < 0.7 else " "
    text = sep.join(_word(rng, letters, marks, common) for _ in range(words))
    return text + rng.choice([".", ",", "?", "!", "", "", "।" if script in ("Deva", "Beng") else "。" if script in
                              ("Hans", "Hant", "Jpan") else "."])


def corpus_lines(seed: int = 7, per_script: int = 60) -> List[str]:
    rng = random.Random(seed)
    lines = []
    for script in sorted(SCRIPTS):
        for _ in range(per_script):
            lines.append(_sentence(rng, script, rng.randint(3, 14)))
        letters, marks = (_chars(r) for r in SCRIPTS[script])
        every = letters + marks  # each character at least once: none of them is <unk>
        lines += [" ".join(every[i:i + 40]) for i in range(0, len(every), 40)]
    lines += [" ".join(str(rng.randint(0, 10 ** rng.randint(1, 6))) for _ in range(8)) for _ in range(40)]
    return lines


EMOJI = ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "🙂🙃", "🎉✨", "🧑🏿‍🚀", "☕", "1️⃣"]
SPACES = [" ", "  ", "   ", "\t", "\n", " \t ", "\u00a0", "\u3000", "\u2009", "\u200b", "\r\n"]
DIGITS = ["0123456789", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "０１２３", "3.14159", "1,000,000", "-42", "½ ² ³",
          "১২৩", "๑๒๓", "၁၂၃", "٣٫١٤"]
NORMALISATION = ["ﬁne ﬂow", "Ｆｕｌｌ　ｗｉｄｔｈ", "é vs e\u0301", "Å Å", "ｶﾀｶﾅ", "㍿ ㈱ ℃", "Ⅻ ⅷ",
                 "\ufeffBOM", "a\u200db", "x\u00adsoft", "ǅ ǆ", "ﷺ", "…", "–—", "«»", "“quotes”", "Ω Ω",
                 "가\u1100\u1161", "ア\u3099", "Straße", "İstanbul", "ᾼ"]

# Text that spells a special token: transformers' tokenizer matches added tokens in raw text.
SPECIAL_TEXT = ["</s>", "a </s> b", "<s>x", "<unk>", "<pad>", "<mask> here", "from eng_Latn to fra_Latn",
                "zul_Latn", "deu_Latnx"]


def test_strings(seed: int = 11) -> List[Tuple[str, str]]:
    """(text, source code) pairs, at least 1,000: every script at several lengths (with the
    script's own language codes as source), then whitespace, emoji, digits, normalisation and
    mixed-script strings. No string is empty or only whitespace (voxd refuses those)."""
    rng = random.Random(seed)
    by_script = script_codes()
    out: List[Tuple[str, str]] = []
    for script in sorted(SCRIPTS):
        codes = by_script[script]
        letters, _ = (_chars(r) for r in SCRIPTS[script])
        for i in range(26):
            code = codes[i % len(codes)]
            if i == 0:
                text = rng.choice(letters)                       # one character
            elif i < 4:
                text = "".join(rng.choice(letters) for _ in range(rng.randint(2, 30)))  # rare runs
            else:
                text = _sentence(rng, script, rng.randint(1, 12 if i < 20 else 40))
            out.append((text, code))
    latin = _chars(SCRIPTS["Latn"][0])
    for i in range(260):
        kind = i % 6
        a = _sentence(rng, rng.choice(sorted(SCRIPTS)), rng.randint(1, 5))
        b = _sentence(rng, rng.choice(sorted(SCRIPTS)), rng.randint(1, 5))
        if kind == 0:
            text = rng.choice(SPACES).join([a, b]) + rng.choice(["", " ", "  ", "\t"])
            text = rng.choice(["", " ", "   ", "\n"]) + text
        elif kind == 1:
            text = a + " " + rng.choice(EMOJI) + rng.choice(["", " "]) + rng.choice(EMOJI) + b
        elif kind == 2:
            text = rng.choice(DIGITS) + " " + a + " " + rng.choice(DIGITS)
        elif kind == 3:
            text = rng.choice(NORMALISATION) + " " + a
        elif kind == 4:
            text = a + b  # two scripts with no space between
        else:
            text = "".join(rng.choice(latin) for _ in range(rng.randint(1, 4))) + rng.choice(SPACES) * rng.randint(1, 3) + a
        if not text.strip():
            text = a
        out.append((text, rng.choice(FAIRSEQ_LANGUAGE_CODES)))
    for s in EMOJI + DIGITS + NORMALISATION + SPECIAL_TEXT + ["a", "Z", ".", "?!", "x" * 300]:
        out.append((s, "eng_Latn"))
    return out
