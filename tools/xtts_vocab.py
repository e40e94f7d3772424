#!/usr/bin/env python3
"""Make a multilingual XTTS vocab.json (HF tokenizers BPE, the released v2 shape), deterministically.

    xtts_vocab.py OUT.json [--size 6681]

The tiny XTTS checkpoint's vocab (tools/tiny_xtts.py) has Latin letters only, so text in other
scripts would be all [UNK]. This vocab covers every script of XTTS's 17 languages (Latin with the
diacritics of en es fr de it pt pl tr nl cs hu, Greek, Cyrillic, Arabic, Devanagari, Kana, a few
hundred Hangul syllables and Han characters) plus ASCII and common punctuation, with BPE merges
trained by `tokenizers`' BpeTrainer on a corpus made here: num2words output (cardinals and
ordinals) in each language num2words has, Coqui's abbreviation and symbol tables, and pseudo-words
drawn with a fixed seed from each script's letters. Same inputs, same file: the corpus is fixed
and the trainer breaks ties by pair order. Characters left out on purpose (emoji, rare Han, other
scripts) stay [UNK], as with the released vocab.

Layout (shared/XTTS_FACTS.md §5): normalizer null, pre_tokenizer Whitespace, model BPE with
unk_token [UNK], fuse_unk false, merges as "a b" strings; added tokens [STOP]=0, [UNK]=1,
[SPACE]=2 and, after the trained pieces, the 17 language tokens and [START] (special, not
normalized), all also in model.vocab. Total `--size` entries (6681 as released).

Runs in the reference environment (tokenizers, num2words, coqui-tts).
"""
import argparse
import json
import random
import sys

LANGUAGES = ["en", "de", "fr", "es", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu",
             "ko", "ja", "hi"]
SPECIAL = ["[STOP]", "[UNK]", "[SPACE]"]

# Han characters and Hangul syllables kept in the vocab (common ones); the rest of those blocks
# stays out, so CJK text also exercises [UNK].
HAN = ("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家"
       "学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经"
       "头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者"
       "向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气"
       "信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活"
       "难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清"
       "秒内名士兵电量为百分之号美元英镑度在和秒钟")
HANGUL = ("가나다라마바사아자차카타파하거너더러머버서어저처커터퍼허고노도로모보소오조초코토포호구누두루"
          "무부수우주추쿠투푸후그느드르므브스으즈츠크트프흐기니디리미비시이지치키티피히개내대래매배새애"
          "재채캐태패해게네데레메베세에제체케테페헤한국어입니다습니까있었는은을를의에서로과와하고그리고"
          "퍼센트번호달러파운드도배터리잔량이명병사테스트첫째번차초안점다섯십오일이삼사육칠팔구백천만억")


def _range(a, b):
    return [chr(c) for c in range(a, b + 1)]


def script_alphabets():
    """Letters (and marks) per script, for the initial alphabet and the pseudo-words."""
    import unicodedata

    def named(chars):
        return [c for c in chars if unicodedata.name(c, "")]
    latin = list("abcdefghijklmnopqrstuvwxyz") + named(_range(0xDF, 0xFF)) + \
        named(_range(0x100, 0x17F))
    latin = [c for c in latin if c not in "×÷" and c == c.lower()]
    return {
        "latin": latin,
        "greek": named(_range(0x3AC, 0x3CE)),
        "cyrillic": named(_range(0x430, 0x45F)),
        "arabic": named(_range(0x621, 0x63A)) + named(_range(0x641, 0x652)),
        "devanagari": named(_range(0x900, 0x963)) + named(_range(0x971, 0x97F)),
        "kana": named(_range(0x3041, 0x3096)) + named(_range(0x30A1, 0x30FA)) + ["ー"],
        "hangul": list(dict.fromkeys(HANGUL)),
        "han": list(dict.fromkeys(HAN)),
    }


def initial_alphabet():
    import unicodedata
    chars = [chr(c) for c in range(0x21, 0x7F)]                   # ASCII, upper case included
    chars += [c for c in _range(0xA1, 0xDE) if unicodedata.name(c, "") and c != "\u00ad"]
    chars += _range(0x300, 0x308)                                  # combining marks (i̇ from İ)
    chars += [c for c in _range(0x391, 0x3A9) if unicodedata.name(c, "")]
    chars += _range(0x400, 0x42F) + ["ё", "Ё"]
    chars += ["،", "؛", "؟", "ـ"] + _range(0x660, 0x669)           # Arabic punctuation, digits
    chars += ["।", "॥"] + _range(0x966, 0x96F)                     # Devanagari danda, digits
    chars += list("。、「」『』！？，：；（）～・") + list("–—‘’“”„…•‰€₹№")
    for letters in script_alphabets().values():
        chars += letters
    return sorted(set(chars))


def corpus():
    """The training words, in a fixed order."""
    from num2words import num2words
    from TTS.tts.layers.xtts import tokenizer as coqui
    words = []
    for lang in ["en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "hu",
                 "ko", "ja"]:
        for n in list(range(0, 1001)) + [10 ** k + 7 * k for k in range(4, 16)]:
            for kw in ({}, {"ordinal": True}):
                try:
                    words.append(num2words(n, lang=lang, **kw))
                except Exception:  # noqa: BLE001 - a form num2words lacks for that language
                    pass
    for table in (coqui._abbreviations, coqui._symbols_multilingual):
        for pairs in table.values():
            for pattern, replacement in pairs:
                words.append(replacement)
                words.append(pattern.pattern)
    rng = random.Random(20260)
    for name, letters in script_alphabets().items():
        weights = [1.0 / (1 + i % 13) for i in range(len(letters))]
        for _ in range(6000 if name == "latin" else 3000):
            words.append("".join(rng.choices(letters, weights, k=rng.randint(2, 9))))
    return [w.lower() for w in words]


def make_vocab(size=6681):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    langs = LANGUAGES[:2] + ["[START]"] + LANGUAGES[2:]
    lang_tokens = [t if t == "[START]" else f"[{t}]" for t in langs]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=size - len(lang_tokens), special_tokens=SPECIAL,
                                  initial_alphabet=initial_alphabet(), limit_alphabet=100000,
                                  min_frequency=2, show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    trained = json.loads(tok.to_str())
    vocab = sorted(trained["model"]["vocab"].items(), key=lambda kv: kv[1])
    if [k for k, _ in vocab[:3]] != SPECIAL:
        raise RuntimeError(f"unexpected first tokens {vocab[:3]}")
    vocab = dict(vocab)
    for t in lang_tokens:
        vocab[t] = len(vocab)
    if len(vocab) != size:
        raise RuntimeError(f"the corpus gave {len(vocab)} entries, not {size}: enlarge it")
    merges = [m if isinstance(m, str) else " ".join(m) for m in trained["model"]["merges"]]
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for t in SPECIAL + lang_tokens]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
        "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=6681)
    args = ap.parse_args(argv)
    vocab = make_vocab(args.size)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=1)
    print(f"{args.out}: {len(vocab['model']['vocab'])} entries, {len(vocab['model']['merges'])} merges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
