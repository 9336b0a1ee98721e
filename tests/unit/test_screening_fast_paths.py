"""The screens' fast paths give exactly what the per-character definitions give.

A query screens every chunk it cites, so the normal form and the glued-word split look only at
what can change: runs of non-ASCII characters, and tokens that start and end with a screen word
(issue 11: 1.1 ms a SciFact abstract before, 0.3 after). The definitions they replaced are kept
here, character by character, as the oracle.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from raas.domain import prompts, screening


def normal_form_by_definition(text: str) -> str:
    def strip(value: str) -> str:
        return "".join(char for char in value if not screening._is_invisible(char))

    text = unicodedata.normalize("NFKC", strip(text))
    decomposed = unicodedata.normalize("NFD", strip(text))
    text = "".join(char for char in decomposed if unicodedata.category(char) != "Mn")
    text = unicodedata.normalize("NFC", text).translate(screening._FOLD_CONFUSABLES).casefold()
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def glued_split_by_definition(screened: str) -> str:
    """Every `\\w+` token offered to the segmenter."""
    return re.sub(r"\w+", lambda match: prompts._segment(match.group()) or match.group(), screened)


PIECES = st.sampled_from(
    [
        *sorted(prompts._SCREEN_WORDS),
        *("ignored", "theory", "data", "alpha", "another", "x", "é", "e\u0301", "ﬁ", "ｉｇｎｏｒｅ", "іgnоre"),
        *("\u200b", "\u00ad", "\u202e", "\U000e0041", "\ufe0f", "\u034f", " ", "  ", "\n", "\r\n", "\t", "_", "1", "ß", "İ", "Σ"),
    ]
)
TEXTS = st.one_of(
    st.lists(PIECES, max_size=30).map("".join),
    st.text(max_size=60),
    st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=20).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_the_normal_form_is_the_definitions(text: str) -> None:
    assert screening.normalise_for_screening(text) == normal_form_by_definition(text)
    assert screening.strip_invisibles(text) == "".join(c for c in text if not screening._is_invisible(c))


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_glued_words_are_split_as_by_the_definition(text: str) -> None:
    screened = screening.normalise_for_screening(text)
    assert prompts.split_glued_keywords(screened) == glued_split_by_definition(screened)


def test_the_candidate_scan_stays_linear_on_long_runs_of_screen_words() -> None:
    """Tokens of short screen words ('a', 'an', 'no', 'do') glued thousands of times are still one
    pass each: the segmenter refuses tokens over its cap, and the scan backs off once per character."""
    for token in ("an" * 5000, "a" * 10000 + "b", "ano" * 3000, "donow" * 2000):
        assert prompts.split_glued_keywords(token) == token
