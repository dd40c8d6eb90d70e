"""The one text normaliser of hubbub, for training targets and for WER (:func:`normalize_text`)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text", "spell_numbers"]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_NOT_KEPT = re.compile(r"[^\w']|_")
_LONE_APOSTROPHES = re.compile(r"(?<!\w)'+(?!\w)")
#: a number: 1,000 / 3.5 / 42, with an optional ordinal suffix (21st)
_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?)(st|nd|rd|th)?(?![^\W\d_])", re.IGNORECASE)
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def spell_numbers(text: str) -> str:
    """Write the numbers of ``text`` as English words (num2words): ``"2"`` -> ``"two"``,
    ``"1,000"`` -> ``"one thousand"``, ``"21st"`` -> ``"twenty-first"``, ``"3.5"`` -> ``"three point five"``.
    Digits stuck to letters (``"mp3"``), numbers with a leading zero (``"007"``) and numbers of more than
    12 digits (codes, not quantities) are spelled digit by digit."""
    from num2words import num2words

    def spell(match: re.Match) -> str:
        number, suffix = match.group(1).replace(",", ""), match.group(2)
        whole = number.split(".")[0]
        try:
            if len(whole) > 12 or (len(whole) > 1 and whole.startswith("0")):
                raise ValueError(number)
            if suffix and number.isdigit():
                return f" {num2words(int(number), to='ordinal')} "
            return f" {num2words(float(number) if '.' in number else int(number))} "
        except (OverflowError, ValueError, NotImplementedError):
            return " " + " ".join(_DIGIT_WORDS[int(c)] for c in number if c.isdigit()) + " "

    text = _NUMBER.sub(spell, text)
    return re.sub(r"\d", lambda m: f" {_DIGIT_WORDS[int(m.group())]} ", text)  # digits left: inside words


def normalize_text(text: str) -> str:
    """The one text normaliser of hubbub, for training targets and for WER.

    * Unicode NFKC, then uppercase (``"Straße" -> "STRASSE"``).
    * Typographic apostrophes become ``'``; apostrophes inside or at the edge
      of a word are kept (``DON'T``, ``JAMES'``, ``'TIS``), lone ones dropped.
    * Numbers are spelled out in words (:func:`spell_numbers`), as LibriSpeech
      transcripts write them, so ``"5"`` and ``"five"`` score the same.
    * Letters are kept; every other character (punctuation, hyphens, symbols)
      becomes a space.
    * Runs of whitespace collapse to one space; no leading/trailing space.

    >>> normalize_text("  Hello, world -- it's 2 o'clock!  ")
    "HELLO WORLD IT'S TWO O'CLOCK"
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    if any(c.isdigit() for c in text):
        text = spell_numbers(text)
    text = text.upper()
    text = _NOT_KEPT.sub(" ", text)
    text = _LONE_APOSTROPHES.sub(" ", text)
    return " ".join(text.split())
