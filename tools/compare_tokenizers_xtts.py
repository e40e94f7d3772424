#!/usr/bin/python3
"""Compare vox's C++ XTTS tokenizer (vox_xtts_tokenize) with HF `tokenizers` and a Python port.

    compare_tokenizers_xtts.py VOCAB_JSON TEXTS_FILE [--lang LANG [--coqui]] [--jsonl]
                               [--binary PATH] [--report OUT.json]

TEXTS_FILE holds one string per line (with --jsonl: one JSON string per line, so strings may
contain newlines or control characters).
  * without --lang, each string is already prepared ("[en]hello[SPACE]world") and is encoded as is:
    C++ XttsTokenizer::EncodeRaw vs tokenizers.Tokenizer.from_file(VOCAB_JSON).encode(s).ids;
  * with --lang (en or es), each string is raw text: C++ XttsTokenizer::Encode(s, LANG) vs the
    Python reference's cleaning (tools/xtts_reference.py: Coqui's cleaners with num2words) + the
    same encoders.
  * with --lang LANG --coqui (run in the reference environment, coqui-tts 0.28.0): C++
    XttsTokenizer::Encode(s, LANG) vs Coqui itself, as Xtts.inference calls it:
    VoiceBpeTokenizer(VOCAB_JSON).encode(s.strip().lower(), LANG.split("-")[0]). Where vox refuses
    a string (InvalidArgument) the refusal is counted apart ("refused"), and is a mismatch unless
    its message names the language in quotes; where Coqui raises, vox must refuse too.
The second reference is a pure-Python port of tokenizers' BPE (tools/xtts_reference.py's
BpeTokenizer when importable, else the small port below), so the comparison is useful where the
`tokenizers` wheel is not installed. Exit status: 0 all equal, 1 any mismatch, 2 usage/setup
error. --report writes the counts (and the first mismatches) as JSON, for the record.
"""
import argparse
import decimal
import glob
import heapq
import json
import os
import subprocess
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


# ---- Fallback port of tokenizers' encode (added tokens, Whitespace, BPE merge_word/merge_all). --
class _PortTokenizer:
    def __init__(self, vocab_json):
        model = vocab_json["model"]
        self.vocab = dict(model["vocab"])
        self.added = {t["content"]: int(t["id"]) for t in vocab_json.get("added_tokens", [])}
        self.unk = self.vocab.get(model.get("unk_token") or "[UNK]")
        self.merges = {}
        for rank, m in enumerate(model["merges"]):
            a, b = m.split(" ") if isinstance(m, str) else m
            self.merges[(self.vocab[a], self.vocab[b])] = (rank, self.vocab[a + b])

    @staticmethod
    def _word(c):
        cat = unicodedata.category(c)
        return cat[0] in "LM" or cat in ("Nd", "Pc", "Nl") or c in "\u200c\u200d"

    def _bpe(self, word):
        syms = [self.vocab.get(c, self.unk) for c in word]
        syms = [s for s in syms if s is not None]
        n = len(syms)
        nxt = list(range(1, n)) + [-1]
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = [(self.merges[(syms[i], syms[i + 1])][0], i, self.merges[(syms[i], syms[i + 1])][1])
                for i in range(n - 1) if (syms[i], syms[i + 1]) in self.merges]
        heapq.heapify(heap)
        while heap:
            _, pos, new_id = heapq.heappop(heap)
            if not alive[pos] or nxt[pos] == -1:
                continue
            r = nxt[pos]
            m = self.merges.get((syms[pos], syms[r]))
            if m is None or m[1] != new_id:
                continue
            syms[pos], alive[r], nxt[pos] = new_id, False, nxt[r]
            if nxt[pos] != -1:
                prv[nxt[pos]] = pos
            for a in ((prv[pos], pos), (pos, nxt[pos])):
                if a[0] != -1 and a[1] != -1:
                    m = self.merges.get((syms[a[0]], syms[a[1]]))
                    if m:
                        heapq.heappush(heap, (m[0], a[0], m[1]))
        return [s for s, a in zip(syms, alive) if a]

    def encode_raw(self, text):
        names = sorted(self.added, key=len, reverse=True)
        ids, i, start = [], 0, 0
        pieces = []
        while i < len(text):
            hit = next((nm for nm in names if text.startswith(nm, i)), None)
            if hit is None:
                i += 1
                continue
            pieces.append((text[start:i], None))
            pieces.append((hit, self.added[hit]))
            i += len(hit)
            start = i
        pieces.append((text[start:], None))
        for piece, special in pieces:
            if special is not None:
                ids.append(special)
                continue
            cur, kind = "", None
            for c in piece + " ":
                k = "w" if self._word(c) else (None if c.isspace() else "p")
                if k != kind and cur:
                    ids.extend(self._bpe(cur))
                    cur = ""
                kind = k
                if k is not None:
                    cur += c
        return ids


def first_difference(a, b):
    """Index of the first differing element of two id lists (len of the shorter if a prefix)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe_mismatch(m):
    """The lines printed for one mismatch: the text, the first differing position, both sequences."""
    lines = [f"  text={m['text']!r}"]
    want, got = m["expected"], m["cpp"]
    if isinstance(want, list) and isinstance(got, list):
        lines.append(f"    first difference at position {first_difference(want, got)}")
    lines.append(f"    expected={want}")
    lines.append(f"    cpp     ={got}")
    return "\n".join(lines)


def compare_coqui(vocab, texts, lang, binary):
    """vox's Encode(s, lang) against Coqui's VoiceBpeTokenizer, string by string.

    Returns {"compared", "matched", "both_refuse", "refused": [texts vox refused, Coqui did not],
    "mismatches": [{"text", "expected", "cpp"}]}. Needs coqui-tts (the reference environment)."""
    import logging
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    logging.getLogger("TTS.tts.layers.xtts.tokenizer").setLevel(logging.ERROR)
    coqui = VoiceBpeTokenizer(vocab)
    coqui_lang = lang.split("-")[0]  # Xtts.inference: language.split("-")[0]
    cpp = run_cpp(binary, vocab, texts, lang)
    out = {"compared": len(texts), "matched": 0, "both_refuse": 0, "refused": [], "mismatches": []}
    for t, c in zip(texts, cpp):
        # num2words' Arabic converter sets the thread's decimal precision (lang_AR.py), after which
        # Coqui reads currency amounts of more than 28 digits that a fresh process skips: compare
        # with a fresh process's state, which is what vox reproduces.
        decimal.setcontext(decimal.Context())
        try:
            want = coqui.encode(t.strip().lower(), coqui_lang)  # Xtts.inference: strip().lower()
        except Exception as e:  # noqa: BLE001 - Coqui (num2words, romanisers) raised
            want = {"error": f"{type(e).__name__}: {e}"}
        if isinstance(c, dict):
            if isinstance(want, dict):
                out["both_refuse"] += 1
            elif f"'{lang}'" in c.get("error", ""):
                out["refused"].append({"text": t, "error": c["error"]})
            else:
                out["mismatches"].append({"text": t, "expected": want, "cpp": c})
        elif want == c:
            out["matched"] += 1
        else:
            out["mismatches"].append({"text": t, "expected": want, "cpp": c})
    return out


def find_binary():
    root = os.path.dirname(HERE)
    for pattern in ("build*/engines/text/vox_xtts_tokenize", "*/engines/text/vox_xtts_tokenize"):
        hits = sorted(glob.glob(os.path.join(root, pattern)), key=os.path.getmtime, reverse=True)
        if hits:
            return hits[0]
    return None


def run_cpp(binary, vocab, texts, lang):
    cmd = [binary, vocab, "--jsonl"] + (["--lang", lang] if lang else [])
    stdin = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    out = subprocess.run(cmd, input=stdin.encode("utf-8"), stdout=subprocess.PIPE, check=True).stdout
    lines = out.decode("utf-8").splitlines()
    if len(lines) != len(texts):
        raise RuntimeError(f"{binary} printed {len(lines)} lines for {len(texts)} texts")
    return [json.loads(line) for line in lines]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("vocab")
    ap.add_argument("texts")
    ap.add_argument("--lang", default=None)
    ap.add_argument("--coqui", action="store_true", help="with --lang: compare with coqui-tts itself")
    ap.add_argument("--jsonl", action="store_true")
    ap.add_argument("--binary", default=os.environ.get("VOX_XTTS_TOKENIZE") or None)
    ap.add_argument("--report", default=None)
    args = ap.parse_args(argv)

    with open(args.texts, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts = [json.loads(x) for x in lines] if args.jsonl else lines
    if not texts:
        print("no texts to compare", file=sys.stderr)
        return 2
    binary = args.binary or find_binary()
    if not binary or not os.path.exists(binary):
        print("vox_xtts_tokenize not found: build it (cmake --build BUILD --target vox_xtts_tokenize) "
              "or pass --binary", file=sys.stderr)
        return 2
    if args.coqui:
        if not args.lang:
            print("--coqui needs --lang", file=sys.stderr)
            return 2
        r = compare_coqui(args.vocab, texts, args.lang, binary)
        print(f"C++ vs coqui-tts ({args.lang}): {r['compared']} strings, {r['matched']} equal, "
              f"{r['both_refuse']} refused by both, {len(r['refused'])} refused by vox only, "
              f"{len(r['mismatches'])} mismatches")
        for m in r["mismatches"][:5]:
            print(describe_mismatch(m))
        if args.report:
            with open(args.report, "w", encoding="utf-8") as f:
                json.dump(dict(r, refused=r["refused"][:5], mismatches=r["mismatches"][:5],
                               refused_count=len(r["refused"]), mismatch_count=len(r["mismatches"])),
                          f, ensure_ascii=False, indent=1)
        return 1 if r["mismatches"] else 0
    with open(args.vocab, encoding="utf-8") as f:
        vocab_json = json.load(f)

    ref_clean = None
    try:
        import xtts_reference
        port = xtts_reference.BpeTokenizer(vocab_json)
        port_name = "tools/xtts_reference.py BpeTokenizer"
        ref_clean = xtts_reference.clean_text
    except Exception as e:  # noqa: BLE001 - fall back to the local port
        port = _PortTokenizer(vocab_json)
        port_name = f"compare_tokenizers_xtts.py port (xtts_reference unavailable: {e})"
    if args.lang:
        if ref_clean is None:
            print("--lang needs tools/xtts_reference.py (Coqui's cleaning with num2words)", file=sys.stderr)
            return 2
        lang_tok = "[zh-cn]" if args.lang in ("zh", "zh-cn") else f"[{args.lang}]"
        prepared = []
        for t in texts:
            try:
                prepared.append((lang_tok + ref_clean(t, args.lang)).replace(" ", "[SPACE]"))
            except Exception as e:  # noqa: BLE001 - the reference itself refuses this text
                prepared.append(e)
    else:
        prepared = list(texts)

    try:
        from tokenizers import Tokenizer  # noqa: WPS433
        hf = Tokenizer.from_file(args.vocab)
        import tokenizers
        hf_name = f"tokenizers {tokenizers.__version__}"
    except ImportError:
        hf, hf_name = None, None

    cpp = run_cpp(binary, args.vocab, texts, args.lang)
    refs = {port_name: lambda p: port.encode_raw(p)}
    if hf is not None:
        refs[hf_name] = lambda p: hf.encode(p).ids
    report = {"vocab": os.path.abspath(args.vocab), "texts": len(texts), "lang": args.lang,
              "binary": os.path.abspath(binary), "references": {}}
    failed = False
    for name, enc in refs.items():
        mism = []
        for t, p, c in zip(texts, prepared, cpp):
            want = {"error": str(p)} if isinstance(p, Exception) else enc(p)
            if isinstance(want, dict) or isinstance(c, dict):
                ok = isinstance(want, dict) and isinstance(c, dict)  # both refuse
            else:
                ok = want == c
            if not ok:
                mism.append({"text": t, "prepared": p if isinstance(p, str) else None,
                             "expected": want, "cpp": c})
        report["references"][name] = {"compared": len(texts), "mismatches": len(mism),
                                      "first_mismatches": mism[:5]}
        print(f"C++ vs {name}: {len(texts)} strings, {len(mism)} mismatches")
        for m in mism[:5]:
            print(describe_mismatch(m))
        failed |= bool(mism)
    if hf is None:
        print("HF tokenizers not installed here: compared with the Python port only")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
