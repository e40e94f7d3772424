#!/usr/bin/python3
"""Prints, as JSON, what num2words 0.5.14 and Coqui's cleaning (coqui-tts 0.28.0's
preprocess_text; both in the reference environment) produce for a few thousand numbers and
sentences in cs, en, es, fr, de, hu, it, ko, nl and pt.
tests/text_xtts/number_expansion_test.cc runs this at test time and compares vox's C++ port
with it; nothing here is copied from the C++ side.

Output: {"num2words_version": ..., "cases": [{"kind", "lang", "input", "currency"?, "expected"
or "error"}...], "clean": [{"lang", "text", "expected" or "error"}...]}
"""
import decimal
import importlib.metadata
import json
import random
import sys

import num2words as n2w_module
from num2words import num2words


def run(fn):
    try:
        return {"expected": fn()}
    except Exception as e:  # noqa: BLE001 - the C++ side must fail in the same places
        return {"error": type(e).__name__}


def integers(rng):
    vals = list(range(0, 131)) + [
        199, 200, 201, 300, 315, 400, 500, 501, 555, 600, 700, 777, 800, 900, 999, 1000, 1001,
        1010, 1100, 1111, 1234, 1999, 2000, 2001, 10000, 12345, 21000, 100000, 101000, 999999,
        10**6, 10**6 + 1, 2 * 10**6, 21 * 10**6, 10**9, 10**9 + 7, 10**12, 10**15, 10**18,
        10**18 - 1, 10**21, 10**24, 10**27 - 1, 10**27, 10**30, 10**100, 10**305, 10**306 - 1,
        10**306]
    for digits in range(1, 31):
        for _ in range(4):
            vals.append(rng.randrange(10 ** (digits - 1), 10 ** digits))
    return vals


# The languages of vox's num2words port (engines/text/num2words_languages.cc).
LANGS = ("cs", "en", "es", "fr", "de", "hu", "it", "ko", "nl", "pt")


def main():
    rng = random.Random(20240611)
    cases = []
    ints = integers(rng)
    for lang in LANGS:
        for v in ints:
            s = str(v)
            cases.append({"kind": "cardinal", "lang": lang, "input": s,
                          **run(lambda: num2words(int(s), lang=lang))})
    ords = list(range(0, 131)) + [200, 999, 1000, 1001, 1002, 1234, 1999, 2000, 2500, 9999, 10000,
                                  12345, 99999, 100000, 123456, 10**6, 10**6 + 5, 2 * 10**6,
                                  2500000, 123456789, 10**9, 10**12, 10**15, 10**17 + 3, 10**18,
                                  10**20, 10**27, 10**306,
                                  # es: value / dec * dec rounds above value, a negative remainder
                                  # (num2words raises TypeError; vox must fail, not throw)
                                  9999999999999999, 9928218488686359]
    ords += [rng.randrange(10, 10**rng.randrange(2, 19)) for _ in range(40)]
    for lang in LANGS:
        for v in ords:
            s = str(v)
            cases.append({"kind": "ordinal", "lang": lang, "input": s,
                          **run(lambda: num2words(int(s), ordinal=True, lang=lang))})
    floats = ["12.5", "0.5", "3.14159", "1.05", "100.01", "0.001", "12.0", "1.1", "2.675",
              "0.1", "99.99", "1000.5", "123456.789", "0.00001", "0.000015", "7.000001",
              "1.2345678", "20.15", "3.0000000000000004",
              # integral floats beyond 2**53: num2words' divmods run in doubles
              "99999999999999999999999990.000001", "12345678901234567890123.0", "1" * 30 + ".0",
              "9" * 19 + ".0", "123456789012345678.0"]
    for _ in range(40):
        floats.append(f"{rng.randrange(0, 10**rng.randrange(1, 8))}.{rng.randrange(0, 10**rng.randrange(1, 7))}")
    for lang in LANGS:
        for s in floats:
            cases.append({"kind": "float", "lang": lang, "input": s,
                          **run(lambda: num2words(float(s), lang=lang))})
    amounts = ["20", "20.15", "1", "1.01", "0.5", "21", "1000000", "0.125", "0.145", "2.675",
               "1.999", "31.5", "100000000000000000000", "1000000000000000000000000000000", "0.01",
               "71.71", "1000.1"]
    amounts += [f"{rng.randrange(0, 10**rng.randrange(1, 9))}.{rng.randrange(0, 100):02d}" for _ in range(12)]
    for lang in LANGS:
        for cur in ("USD", "EUR", "GBP"):
            for s in amounts:
                cases.append({"kind": "currency", "lang": lang, "input": s, "currency": cur,
                              **run(lambda: num2words(float(s), to="currency", currency=cur, lang=lang))})

    clean = []
    # Coqui's own cleaning (coqui-tts in the reference environment), as Xtts.inference calls it:
    # VoiceBpeTokenizer.preprocess_text (multilingual_cleaners, then romanisation for ko).
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    coqui = VoiceBpeTokenizer()
    if True:
        sentences = {
            "en": ["In 12.5 seconds.", "There were 50 soldiers.", "This is a 1st test",
                   "That will be $20 sir.", "That will be 20€ sir.", "That will be 20.15€ sir.",
                   "That's 100,000.5.", "I paid £3.50 and $1,000,000 for 2nd place!",
                   "Call 555-1234 at 10:30 on the 21st.", "Mr. Smith & Mrs. Jones @ 50% off #1",
                   "It's 98.6° in St. Louis, Dr. Who's Co. Ltd.", "Version 1.2.3 costs $1.2.3",
                   "\"Quoted\" text  with   spaces\tand\nnewlines ",
                   "1,234,567 people; 1,23 is odd; 12,345.678 too",
                   "He was 3rd, she 22nd, they 101st and 1000th.", "£5 and 5£ and $5 and 5$",
                   "Temperature: -5°C, 0.5%, 1e5", "MR. BIG and mr.small and mrs.x",
                   "x" + "9" * 40, "$" + "9" * 40, "ſt. Louis", "ÉCOLE 2ème",
                   ],
            "es": ["En 12,5 segundos.", "Había 50 soldados.", "Este es un 1er test",
                   "Eso le costará $20 señor.", "Eso le costará 20€ señor.",
                   "Eso le costará 20,15€ señor.", "Hola Sr. Garcia.",
                   "La Dra. Martinez es muy buena.", "Llegaron 1.000 personas al 3er piso.",
                   "El 2º y la 3ª, los 4os y las 5as.", "Cuesta 1.234.567,89€ o $3,50.",
                   "Son 21 euros, 21€ y 1€; 101 dólares.", "Pagué £5 en Londres y 20€ aquí.",
                   "Al 100% @ casa & #1 con 30° C", "Vivo en el 1234 de la calle 5a",
                   "12.5 y 12,5 y 1.5 y 1,5", "Sra. Pérez, Sr. López y St. Tomás",
                   "x" + "9" * 40,
                   ],
        }
        sentences["fr"] = ["En 12,5 secondes.", "Il y avait 50 soldats.", "Ceci est un 1er test",
                           "Cela vous fera $20 monsieur.", "Cela vous fera 20€ monsieur.",
                           "Cela vous fera 20,15€ monsieur.", "Ce sera 100.000,5.",
                           "La 2e, la 3ème et la 1re; 80 et 81, 71, 91, 200, 201, 1000, 2000000.",
                           "Bonjour Mr. Dupond & Mme. Moreau @ 14% #1 à 20° St. Denis.",
                           "Le 21e siècle, 5ème, 9e, 1 000 000 et 1.234.567,89 £"]
        sentences["de"] = ["In 12,5 Sekunden.", "Es gab 50 Soldaten.", "Dies ist ein 1. Test",
                           "Das macht $20 Herr.", "Das macht 20€ Herr.", "Das macht 20,15€ Herr.",
                           "Frau Dr. Müller ist 21 und hat 1.000.000 € und 2 Mio.",
                           "Am 3. Mai 1999 kamen 101, 1001, 21000 und 2000000 Leute. 7.",
                           "Die Rechnung beträgt £ 20, 31% @ Co. & #1 bei 20°"]
        sentences["nl"] = ["In 12,5 seconden.", "Er waren 50 soldaten.", "Dat wordt dan $20 meneer.",
                           "Dat wordt dan 20€ meneer.", "De 1ste, 2de en 3e; 21, 81, 101, 1.000.000.",
                           "Dhr. Jansen & Mevr. de Vries @ 14% #1 bij 20°, £3,50 of 1.234,56€."]
        sentences["pt"] = ["Em 12,5 segundos.", "Havia 50 soldados.", "Este é um 1º teste",
                           "Isso custará $20 senhor.", "Isso custará 20€ senhor.",
                           "Isso custará 20,15€ senhor.", "Custa 21€, 1.200.000€ e £1,01.",
                           "O 1234º, a 2ª, os 3os; 1.000.210 e 100.200.300 e 2.000.000,5."]
        sentences["it"] = ["In 12,5 secondi.", "C'erano 50 soldati.", "Questo è un 1° test",
                           "Ti costerà $20 signore.", "Ti costerà 20€ signore.",
                           "Ti costerà 20,15€ signore.", "£1 e £21,01; 23, 33°, 103a, 1.000.003i.",
                           "Sono 2.000.000,5 e 23.000 e 1.001.023.003 e 0,00001."]
        sentences["hu"] = ["12,5 másodperc alatt.", "50 katona volt.", "Ez az 1. teszt",
                           "2002, 102, 2.000.000,0 és 12,345 meg 0,5 és 1,0001; 3adik, 5ödik.",
                           "Ár: $20, 20,15€, £1; 100.000.000,0 vagy 1000000000000000000,0."]
        sentences["cs"] = ["Za 12,5 vteřiny.", "Bylo tam 50 vojáků.", "To bude stát 20€ pane.",
                           "To bude 20.15€ pane.", "Je 12,0 a 1.000.005 a 22 a 3,04 a 0,00001.",
                           "Stojí $5 a 5€; 2 miliony, 1.000.000.000 a 21.000.000.", "To je 3. den"]
        sentences["ko"] = ["12.5 초 안에.", "50 명의 병사가 있었다.", "이것은 1 번째 테스트입니다",
                           "$20, 23번째, 200번, 1020차, 10000째; 20€ 그리고 £3.",
                           "123456789 와 10,000 와 1.5"]
        # Random strings built from the pieces the regexes care about: digit runs, separators,
        # currency symbols, ordinal suffixes, abbreviations, symbols, quotes, whitespace, case.
        atoms = ["1", "12", "123", "1234", "0", "007", "2.5", "3,50", "1,000", "1.000", ".", ",",
                 ",", ".", "$", "£", "€", "st", "nd", "rd", "th", "º", "ª", "er", "o", "a", "os",
                 "Mr.", "mrs.", "Dr.", "Sra.", "st.", "Co.", "ltd.", "&", "@", "%", "#", "°", "\"",
                 " ", "  ", "\t", "\n", "x", "Ab", "é", "ſ", "ı", "_", "-", "'", "1st", "99$",
                 "$1.2.3", "€0,5", "10.000,25", "1,234.5", "9" * 25, "0.000001", "re", "e",
                 "ème", "Mme.", "80", "71", "200", "de", "ste", "Dhr."]
        for lang in LANGS:
            for _ in range(150):
                sentences[lang].append("".join(rng.choice(atoms) for _ in range(rng.randrange(1, 10))))
        for lang, texts in sentences.items():
            for t in texts:
                # A fresh process's decimal context: num2words' Arabic converter changes it.
                decimal.setcontext(decimal.Context())
                clean.append({"lang": lang, "text": t,
                              **run(lambda: coqui.preprocess_text(t.strip().lower(), lang))})

    json.dump({"num2words_version": importlib.metadata.version("num2words"), "cases": cases,
               "clean": clean}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
