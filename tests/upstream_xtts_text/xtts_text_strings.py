"""Deterministic test strings for XTTS's 17 languages (tests/upstream_xtts_text).

strings(lang, n_words=1000, n_numbers=300) returns n_words strings of the language's script with
no ASCII digit (words, casing, whitespace runs, punctuation, abbreviations, symbols, emoji,
characters outside the vocab, non-ASCII digits) followed by n_numbers strings built around every
number form Coqui's cleaners expand for that language (cardinals with and without thousands
separators, decimals, ordinals with each suffix of `_ordinal_re`, currencies £ $ € before and
after, percent, degrees). Same arguments, same strings (random.Random with a fixed seed per
language).
"""
import random

LANGUAGES = ["en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu",
             "ko", "ja", "hi"]

WORDS = {
    "en": "the quick brown fox jumps over lazy dog hello world it's don't Smith London and price",
    "es": "el niño pequeño está aquí mañana corazón señor García dónde estación canción año",
    "fr": "le garçon très élève où ça hôtel naïve cœur août déjà forêt noël Dupont fenêtre",
    "de": "der Mädchen schön Straße größer über Fuß weiß Müller Bücher heißen Grüße STRASSE",
    "it": "il perché città già università caffè più così lunedì Rossi sarà però virtù",
    "pt": "o coração ação não pão avó irmã você João órgão lição português Silva",
    "pl": "zażółć gęślą jaźń łódź źdźbło świat Kowalski pięć żółw ćma mąż",
    "tr": "İstanbul ılık ığdır şeker çiçek göğüs üzüm Yılmaz IŞIK İNSAN ıi kedi",
    "ru": "привет мир ёлка съезд объём Иванов Москва щука Ёж эхо быстро Г-н",
    "nl": "het meisje één café ruïne ijs Jansen vrij België zeeën",
    "cs": "příliš žluťoučký kůň úpěl ďábelské ódy Novák čtvrť ěščřžýáíé",
    "ar": "مرحبا بالعالم السلام عليكم كتاب مدرسة القاهرة شكرا جميل إلى",
    "zh-cn": "你好 世界 中国 北京 我们 学习 电量 美元 的 了",
    "hu": "árvíztűrő tükörfúrógép őrült ünnep Szabó köszönöm nővér",
    "ko": "안녕하세요 세계 한국어 배터리 잔량이 입니다 테스트 병사",
    "ja": "こんにちは 世界 日本語 カタカナ ひらがな 東京 ありがとう テスト",
    "hi": "नमस्ते दुनिया भारत हिंदी किताब पानी धन्यवाद सैनिक बैटरी",
}

# Letters of each language's script (pseudo-words), casing included.
SCRIPT = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "en": "", "es": "áéíóúñüÁÉÍÓÚÑÜ", "fr": "àâçéèêëîïôùûüÿœæÀÂÇÉÈÊËÎÏÔÙÛÜŸŒÆ",
    "de": "äöüßÄÖÜẞ", "it": "àèéìòùÀÈÉÌÒÙ", "pt": "áâãàçéêíóôõúÁÂÃÀÇÉÊÍÓÔÕÚ",
    "pl": "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "tr": "çğıİöşüÇĞIÖŞÜ", "nl": "éëïöüÉËÏÖÜĳĲ",
    "cs": "áčďéěíňóřšťúůýžÁČĎÉĚÍŇÓŘŠŤÚŮÝŽ", "hu": "áéíóöőúüűÁÉÍÓÖŐÚÜŰ",
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
    "ar": "ابتثجحخدذرزسشصضطظعغفقكلمنهويءآأؤإئىةًٌٍَُِّْ",
    "hi": "अआइईउऊएऐओऔकखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसहािीुूेैोौंःँ़्",
    "zh-cn": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会",
    "ja": "あいうえおかきくけこさしすせそたちつてとなにぬねのアイウエオカキクケコーン日本語東京",
    "ko": "가나다라마바사아자차카타파하한국어입니다습니까있었는은을를의에서ㄱㄴㅏㅣ",
}

SPACES = [" ", " ", " ", "  ", "   ", "\t", "\n", " \n ", "\u00a0", "\u3000", "\r\n", " \t "]
PUNCT = [".", ",", "!", "?", ";", ":", "...", "…", "-", "—", "(", ")", "'", "\"", "«", "»",
         "¿", "¡", "?!", "،", "؟", "।", "。", "、", "！", "？", "/", "*", "_", "~", "^", "[", "]"]
SYMBOLS = ["&", "@", "%", "#", "$", "£", "°", "€", "§", "+", "=", "<", ">", "|", "\\"]
# Characters outside the generated vocab (and the tiny one): emoji, ZWJ sequences, rare Han,
# other scripts, ligatures, roman numerals, soft hyphen, math letters.
OUTSIDE = ["😀", "🎉", "👍🏽", "👨‍👩‍👧", "❤️", "🇩🇪", "龘", "𠀋", "ש", "ก", "ሰ", "ﬁ", "Ⅻ", "\u00ad",
           "\u200d", "\u200b", "𝔘", "ℌ", "²", "½", "™", "©", "\ufeff"]
# Casing edge cases: Turkish dotted/dotless i, Greek final sigma, German sharp s, title case.
CASING = ["İ", "I", "ı", "İSTANBUL", "ΟΔΟΣ", "ΣΟΦΙΑ ΚΑΙ ΣΟΦΟΣ", "Σ", "ς", "ẞ", "STRAẞE", "ǅ", "ǈ",
          "Ǆ", "ΐ", "ﬀ", "K", "Å"]
# Digits that are not ASCII (Python's \d matches them; Coqui's [0-9] steps do not).
OTHER_DIGITS = ["١٢٣", "٤٬٥٦٧", "१२३", "१.२३४", "１２３", "１,２３４", "৩", "߂"]
ADDED = ["[SPACE]", "[en]", "[es]", "[START]", "[STOP]", "[UNK]", "[zh-cn]", "[ja]", "[EN]"]

# Suffixes of Coqui's `_ordinal_re[lang]` (zh has none: its numbers go through zh_num2words).
ORDINALS = {
    "en": ["st", "nd", "rd", "th"], "es": ["º", "ª", "er", "o", "a", "os", "as"],
    "fr": ["º", "ª", "er", "re", "e", "ème"], "de": ["st", "nd", "rd", "th", "º", "ª", "."],
    "pt": ["º", "ª", "o", "a", "os", "as"], "it": ["º", "°", "ª", "o", "a", "i", "e"],
    "pl": ["º", "ª", "st", "nd", "rd", "th"], "ar": ["ون", "ين", "ث", "ر", "ى"], "cs": ["."],
    "ru": ["-й", "-я", "-е", "-ое", "-ье", "-го"], "nl": ["de", "ste", "e"],
    "tr": [".", "inci", "nci", "uncu", "üncü"], "hu": [".", "adik", "edik", "odik", "ödik", "ik"],
    "ko": ["번째", "번", "차", "째"], "hi": ["st", "nd", "rd", "th"], "zh-cn": [], "ja": [],
}
# Abbreviations of Coqui's `_abbreviations[lang]`, as written in text.
ABBREVIATIONS = {
    "en": ["Mrs.", "Mr.", "Dr.", "St.", "Co.", "Jr.", "Maj.", "Gen.", "Drs.", "Rev.", "Lt.",
           "Hon.", "Sgt.", "Capt.", "Esq.", "Ltd.", "Col.", "Ft.", "MR.", "dr.", "mrs"],
    "es": ["Sra.", "Sr.", "Dr.", "Dra.", "St.", "Co.", "Jr.", "Ltd.", "SRA."],
    "fr": ["Mme.", "Mr.", "Dr.", "St.", "Co.", "Jr.", "Ltd."],
    "de": ["Fr.", "Dr.", "St.", "Co.", "Jr."],
    "pt": ["Sra.", "Sr.", "Dr.", "Dra.", "St.", "Co.", "Jr.", "Ltd."],
    "it": ["Sig.", "Dr.", "St.", "Co.", "Jr.", "Ltd.", "Sig.ra"],
    "pl": ["P.", "M.", "Dr.", "Sw.", "Jr."], "cs": ["Dr.", "Ing.", "P."],
    "ru": ["Г-жа", "Г-н", "Д-р", "г-жа", "д-р."], "nl": ["Dhr.", "Mevr.", "Dr.", "Jhr."],
    "tr": ["B.", "Byk.", "Dr."], "hu": ["Dr.", "B.", "Nőv."],
    "ar": [], "zh-cn": [], "ko": [], "hi": [], "ja": [],
}


def _seed(lang):
    return 1000 + LANGUAGES.index(lang)


def _pseudo_word(rng, lang):
    if lang == "ko" and rng.random() < 0.5:  # any precomposed syllable (romanisation tables)
        return "".join(chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(rng.randint(1, 6)))
    letters = SCRIPT["latin"] + SCRIPT[lang] if lang in (
        "en", "es", "fr", "de", "it", "pt", "pl", "tr", "nl", "cs", "hu") else SCRIPT[lang]
    return "".join(rng.choice(letters) for _ in range(rng.randint(1, 10)))


def _cased(rng, word):
    r = rng.random()
    return word.upper() if r < 0.15 else word.title() if r < 0.3 else word


def _number(rng, lang):
    """One number in a form the cleaners expand."""
    n = rng.choice([rng.randint(0, 20), rng.randint(0, 1000), rng.randint(0, 10 ** 6),
                    rng.randint(0, 10 ** 9), rng.randint(0, 10 ** 15), rng.randint(0, 10 ** 21)])
    d = str(rng.randint(0, 999)).zfill(rng.choice([1, 2, 3]))
    grouped_c = f"{n:,}"
    grouped_d = grouped_c.replace(",", ".")
    forms = [str(n), "0" + str(n), grouped_c, grouped_d, f"{n}.{d}", f"{n},{d}",
             f"{grouped_c}.{d}", f"{grouped_d},{d}", f"${n}", f"{n}$", f"${n}.{d[:2]}",
             f"£{n}", f"£{n}.{d[:2]}", f"{n}£", f"€{n}", f"{n}€", f"{n},{d[:2]}€",
             f"{grouped_d},{d[:2]} €", f"{n}%", f"%{n}", f"{n}°", f"{n}.{d}°", f"#{n}",
             f"{n}-{rng.randint(0, 99)}", f"{n}:{d}", f"{n}/{d}", f"{n}.{d}.{d}", f"v{n}",
             f"{n}x", f".{d}", f"{n}."]
    sufs = ORDINALS[lang]
    if sufs:
        forms += [f"{rng.randint(0, 120)}{rng.choice(sufs)}", f"{n}{rng.choice(sufs)}"]
    return rng.choice(forms)


def _word_piece(rng, lang, words):
    r = rng.random()
    if r < 0.45:
        return _cased(rng, rng.choice(words))
    if r < 0.62:
        return _pseudo_word(rng, lang)
    if r < 0.68:
        return rng.choice(CASING)
    if r < 0.74:
        return rng.choice(OUTSIDE)
    if r < 0.80:
        return rng.choice(SYMBOLS)
    if r < 0.86 and ABBREVIATIONS[lang]:
        return rng.choice(ABBREVIATIONS[lang])
    if r < 0.90:
        return rng.choice(OTHER_DIGITS)
    if r < 0.93:
        return rng.choice(ADDED)
    if r < 0.96:
        return rng.choice("aeoslx") * rng.randint(2, 12)
    return rng.choice(PUNCT) * rng.randint(1, 3)


def _join(rng, pieces):
    out = rng.choice(["", "", "", " ", "  ", "\t", "\n"])
    for i, p in enumerate(pieces):
        if i:
            out += rng.choice(SPACES) if rng.random() < 0.8 else ""
        out += p
        if rng.random() < 0.2:
            out += rng.choice(PUNCT)
    return out + rng.choice(["", "", ".", "!", "?", " ", "  \n"])


def strings(lang, n_words=1000, n_numbers=300):
    rng = random.Random(_seed(lang))
    words = WORDS[lang].split()
    out = []
    while len(out) < n_words:
        s = _join(rng, [_word_piece(rng, lang, words) for _ in range(rng.randint(1, 14))])
        if not any("0" <= c <= "9" for c in s):
            out.append(s)
    for _ in range(n_numbers):
        pieces = [_word_piece(rng, lang, words) for _ in range(rng.randint(0, 6))]
        for _ in range(rng.randint(1, 3)):
            pieces.insert(rng.randint(0, len(pieces)), _number(rng, lang))
        out.append(_join(rng, pieces))
    return out
