#!/usr/bin/python3
"""Writes engines/text/unicode_tables.inc: the compact Unicode range tables vox's XTTS text front
end needs (engines/text/unicode.cc). Run it with /usr/bin/python3 after a Unicode update:

    /usr/bin/python3 tools/gen_unicode_tables.py > engines/text/unicode_tables.inc

Two families of tables, because the reference pipeline mixes two regex engines:
  * Rust `regex` (HF tokenizers' Whitespace pre-tokenizer `\\w+|[^\\w\\s]+`): `\\w` = Alphabetic |
    General_Category=Mark | Nd | Pc | Join_Control, `\\s` = White_Space. Read from the Unicode
    Character Database text files of Debian's `unicode-data` package (/usr/share/unicode).
  * Python `re`/`str` (Coqui's cleaners): `\\w` = str.isalnum() or '_', `\\s` = str.isspace(),
    `\\d` = category Nd, str.lower(), and the extra IGNORECASE equivalences of `re`. Taken from this
    interpreter itself, so they match what Coqui gets under the same Python.
Cased / Case_Ignorable (for str.lower()'s final-sigma rule) come from DerivedCoreProperties.txt.
"""
import os
import re
import sys
import unicodedata

UCD = os.environ.get("UCD_DIR", "/usr/share/unicode")
MAXCP = 0x110000


def ucd_property(filename, name):
    cps = set()
    with open(os.path.join(UCD, filename), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            rng, prop = [x.strip() for x in line.split(";")[:2]]
            if prop != name:
                continue
            if ".." in rng:
                a, b = rng.split("..")
                cps.update(range(int(a, 16), int(b, 16) + 1))
            else:
                cps.add(int(rng, 16))
    return cps


def ucd_categories():
    """General_Category per code point from UnicodeData.txt (ranges given as First/Last pairs)."""
    cat = {}
    first = None
    with open(os.path.join(UCD, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fields = line.split(";")
            cp, name, gc = int(fields[0], 16), fields[1], fields[2]
            if name.endswith(", First>"):
                first = cp
                continue
            if name.endswith(", Last>"):
                for c in range(first, cp + 1):
                    cat[c] = gc
                continue
            cat[cp] = gc
    return cat


def ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] + 1 == c:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def emit_ranges(name, cps, comment):
    rs = ranges(cps)
    print(f"// {comment} ({len(rs)} ranges)")
    print(f"static constexpr CodeRange {name}[] = {{")
    line = " "
    for a, b in rs:
        item = f" {{0x{a:X}, 0x{b:X}}},"
        if len(line) + len(item) > 99:
            print(line)
            line = " "
        line += item
    print(line)
    print("};")


def lower_ranges():
    """(first, last, stride, delta): every c = first + k*stride <= last lowers to c + delta."""
    singles = []
    for c in range(MAXCP):
        ch = chr(c)
        lo = ch.lower()
        if lo == ch or len(lo) != 1:
            continue
        singles.append((c, ord(lo) - c))
    out = []  # [first, last, stride, delta]
    for c, d in singles:
        if out:
            f, l, s, dd = out[-1]
            if dd == d and f == l and c - l in (1, 2):
                out[-1] = [f, c, c - l, d]
                continue
            if dd == d and f != l and c - l == s:
                out[-1][1] = c
                continue
        out.append([c, c, 1, d])
    return out


def main():
    cat = ucd_categories()
    alphabetic = ucd_property("DerivedCoreProperties.txt", "Alphabetic")
    join_control = ucd_property("PropList.txt", "Join_Control")
    white_space = ucd_property("PropList.txt", "White_Space")
    cased = ucd_property("DerivedCoreProperties.txt", "Cased")
    case_ignorable = ucd_property("DerivedCoreProperties.txt", "Case_Ignorable")
    rust_word = set(alphabetic) | join_control
    rust_word |= {c for c, g in cat.items() if g in ("Mn", "Mc", "Me", "Nd", "Pc")}

    py_word, py_space, py_digit = set(), set(), set()
    for c in range(MAXCP):
        ch = chr(c)
        if ch.isalnum() or ch == "_":
            py_word.add(c)
        if ch.isspace():
            py_space.add(c)
        if unicodedata.category(ch) == "Nd":
            py_digit.add(c)
    # Python re's \d for str patterns is exactly category Nd; check that claim here.
    assert all(re.fullmatch(r"\d", chr(c)) for c in py_digit)

    multi = {c: chr(c).lower() for c in range(MAXCP) if len(chr(c).lower()) > 1}
    assert multi == {0x130: "i\u0307"}, multi  # the only multi-char str.lower() result

    # Characters that Python re's IGNORECASE lets match an ASCII letter of a pattern, besides the
    # letter itself (after str.lower() only these can still occur: 'ı' for i, 'ſ' for s, ...).
    cased_chars = [c for c in range(MAXCP) if chr(c).lower() != chr(c).upper() or chr(c).lower() != chr(c)]
    pairs = []
    for p in "abcdefghijklmnopqrstuvwxyz":
        rx = re.compile(re.escape(p), re.IGNORECASE)
        for c in cased_chars:
            if chr(c) != p and rx.fullmatch(chr(c)) and chr(c).lower() == chr(c):
                pairs.append((ord(p), c))

    print("// Generated by tools/gen_unicode_tables.py; do not edit by hand.")
    print(f"// Rust-regex side: UCD {open(os.path.join(UCD, 'ReadMe.txt')).read().split('Version ')[1].split()[0] if 'Version ' in open(os.path.join(UCD, 'ReadMe.txt')).read() else '?'} from {UCD};"
          f" Python side: Python {sys.version.split()[0]}, unicodedata {unicodedata.unidata_version}.")
    emit_ranges("kRustWord", rust_word, "Rust regex \\w: Alphabetic | Mark | Nd | Pc | Join_Control")
    emit_ranges("kRustSpace", white_space, "Rust regex \\s: White_Space")
    emit_ranges("kPyWord", py_word, "Python re \\w: str.isalnum() or '_'")
    emit_ranges("kPySpace", py_space, "Python re \\s / str.isspace()")
    emit_ranges("kPyDigit", py_digit, "Python re \\d: General_Category Nd")
    emit_ranges("kCased", cased, "Cased (str.lower() final sigma)")
    emit_ranges("kCaseIgnorable", case_ignorable, "Case_Ignorable (str.lower() final sigma)")
    lr = lower_ranges()
    print(f"// str.lower() single-code-point mappings: c in [first, last] step stride -> c + delta"
          f" ({len(lr)} entries); U+0130 -> U+0069 U+0307 and final sigma are handled in code.")
    print("static constexpr LowerRange kPyLower[] = {")
    line = " "
    for f, l, s, d in lr:
        item = f" {{0x{f:X}, 0x{l:X}, {s}, {d}}},"
        if len(line) + len(item) > 99:
            print(line)
            line = " "
        line += item
    print(line)
    print("};")
    print("// Python re IGNORECASE: extra lowercase characters matching an ASCII pattern letter.")
    print("static constexpr IgnoreCasePair kPyIgnoreCaseExtra[] = {")
    print("  " + " ".join(f"{{0x{p:X}, 0x{c:X}}}," for p, c in pairs))
    print("};")


if __name__ == "__main__":
    main()
