"""The one normal form every prompt-injection screen looks at, and fence-tag escaping.

An attacker who knows we screen for "ignore previous instructions" writes it so a regex misses it
but a model still reads it: zero-width characters inside words (`ig\u200bnore`), fullwidth or
mathematical letters (`ｉｇｎｏｒｅ`), Cyrillic or Greek letters that look Latin (`іgnоre`), bidi
overrides, Unicode tag characters, accents. `normalise_for_screening` undoes all of those.
It is used only to decide; what is stored, shown or cited is never the normalised text.
"""

# This module's subject is look-alike characters; its tables and examples must contain them.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import re
import unicodedata

# Invisible characters that are not in category Cf (format) but that Unicode also lists as
# Default_Ignorable_Code_Point: combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
# Mongolian variation selectors, variation selectors. Source:
# https://www.unicode.org/Public/UCD/latest/ucd/DerivedCoreProperties.txt (Default_Ignorable_Code_Point)
_IGNORABLE_NON_FORMAT = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x3164, 0xFFA0, *range(0xFE00, 0xFE10)]
) | frozenset(range(0xE0100, 0xE01F0))

# Letters that look like ASCII letters, folded to the letter they imitate. A subset of
# https://www.unicode.org/Public/security/latest/confusables.txt: the Cyrillic, Greek, Armenian
# and Latin-extension entries whose prototype is a single ASCII letter. Fullwidth and
# mathematical letters need no entry: NFKC already folds them. Upper and lower case are listed
# separately because a capital and its small form can imitate different letters (Greek Ν is
# "N", ν is "v"); the table is applied before casefolding. One deliberate departure: Greek capital
# iota goes to "I", not to confusables.txt's "l", since the screens match English words.
_CONFUSABLE_LETTERS = {
    # Cyrillic small
    "а": "a", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "ӏ": "l", "о": "o",
    "р": "p", "ԛ": "q", "ѕ": "s", "ԝ": "w", "х": "x", "у": "y", "ѵ": "v",
    # Cyrillic capital
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J", "К": "K", "М": "M",
    "О": "O", "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "l", "Ь": "b",
    # Greek small
    "α": "a", "ι": "i", "ν": "v", "ο": "o", "ρ": "p", "υ": "u", "γ": "y",
    # Greek capital
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Armenian
    "օ": "o", "հ": "h", "ս": "u", "ց": "g",
    # Latin letters outside ASCII that NFKC leaves alone
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ʋ": "u",
}  # fmt: skip
_FOLD_CONFUSABLES = str.maketrans(_CONFUSABLE_LETTERS)


def _is_invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cf" or ord(char) in _IGNORABLE_NON_FORMAT


# Every character the per-character steps below can change is outside ASCII (no ASCII character is a
# format character, a default-ignorable code point or a combining mark, and NFKC, NFD and NFC leave ASCII
# as it is), so they look only at the runs of non-ASCII characters: a chunk of English text is screened
# at C speed instead of one Python call per character (a query screens every chunk it cites).
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def strip_invisibles(text: str) -> str:
    """`text` without format characters (zero-width, bidi controls, soft hyphen, tag characters)
    and the other default-ignorable code points."""
    if text.isascii():
        return text
    return _NON_ASCII_RUN.sub(lambda run: "".join(char for char in run.group() if not _is_invisible(char)), text)


def _drop_combining_marks(text: str) -> str:
    if text.isascii():
        return text
    return _NON_ASCII_RUN.sub(lambda run: "".join(char for char in run.group() if unicodedata.category(char) != "Mn"), text)


def normalise_for_screening(text: str) -> str:
    """The text a screen should match against: invisibles removed, NFKC, accents dropped,
    look-alike letters folded to ASCII, casefolded, whitespace runs collapsed (line breaks kept,
    since some patterns anchor on them)."""
    if not text.isascii():
        # Invisibles go first so that inserting them anywhere cannot change the result.
        text = unicodedata.normalize("NFKC", strip_invisibles(text))
        # Drop combining marks (accents), then fold look-alikes, then case.
        decomposed = unicodedata.normalize("NFD", strip_invisibles(text))
        text = unicodedata.normalize("NFC", _drop_combining_marks(decomposed)).translate(_FOLD_CONFUSABLES)
    text = text.casefold()
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


# Characters a model may read as "<" or "/" in a tag: ASCII, NFKC-folded forms (fullwidth,
# small form variants) and the confusables.txt entries for them.
_LESS_THAN_LOOKALIKES = "<＜﹤‹〈〈⟨❮˂ᐸ"
_SLASH_LOOKALIKES = str.maketrans(dict.fromkeys("⁄∕⧸╱⟋⁁〳Ⳇ", "/"))
_FENCE_TAG_LOOKAHEAD = 48  # enough raw characters to spell "/document" with invisibles and spaces
_FENCE_TAG = re.compile(r"/?document")


def escape_fence_tags(text: str) -> str:
    """`text` with every opening or closing `<document>` tag disarmed, however it is spelled.

    A `<` (or look-alike) is replaced by `&lt;` when what follows it, normalised for screening,
    reads `document` or `/document`: so `</DOCUMENT >`, `</docu\u200bment>`, `＜/document＞` and
    `</dоcument>` (Cyrillic о) cannot close a fence or open a new one. Other `<` are left alone.
    """
    out: list[str] = []
    for index, char in enumerate(text):
        if char in _LESS_THAN_LOOKALIKES:
            following = text[index + 1 : index + 1 + _FENCE_TAG_LOOKAHEAD]
            spelled = "".join(normalise_for_screening(following).translate(_SLASH_LOOKALIKES).split())
            if _FENCE_TAG.match(spelled):
                out.append("&lt;")
                continue
        out.append(char)
    return "".join(out)
