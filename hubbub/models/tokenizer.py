"""Text normalisation and tokenizers for the ASR model.

Every tokenizer shares the same special ids so that the model, CTC and the
decoders never need to ask which tokenizer they were given::

    0  <blank>   CTC blank (never a decoder target)
    1  <pad>     padding of token batches
    2  <sos/eos> start and end of a sentence (one id, as in ESPnet)
    3  <unk>     anything the vocabulary cannot spell

Two implementations:

* :class:`CharTokenizer`: letters, digits, apostrophe and ``|`` as the word
  boundary (space). Small vocabulary, no training, saved as ``tokenizer.json``.
* :class:`SentencePieceTokenizer`: unigram or BPE subwords trained with
  ``sentencepiece``, saved as ``tokenizer.model`` (+ ``tokenizer.json``).

Both run :func:`normalize_text` on their input, so ``decode(encode(t)) ==
normalize_text(t)`` for any text made of known symbols.
"""

from __future__ import annotations

import json
import os
import re
import string
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "BLANK_ID",
    "EOS_ID",
    "PAD_ID",
    "SOS_ID",
    "UNK_ID",
    "CharTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "load_tokenizer",
    "normalize_text",
    "spell_numbers",
]

BLANK_ID, PAD_ID, SOS_ID, UNK_ID = 0, 1, 2, 3
EOS_ID = SOS_ID
SPECIALS = ("<blank>", "<pad>", "<sos/eos>", "<unk>")
TOKENIZER_JSON = "tokenizer.json"
SPM_MODEL = "tokenizer.model"

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


class Tokenizer:
    """Interface shared by the tokenizers: specials, encode/decode, save/load."""

    blank_id: int = BLANK_ID
    pad_id: int = PAD_ID
    sos_id: int = SOS_ID
    eos_id: int = EOS_ID
    unk_id: int = UNK_ID
    kind: str = ""

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Normalised text -> token ids (no sos/eos)."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text; special ids are skipped."""
        raise NotImplementedError

    def id_to_piece(self, index: int) -> str:
        raise NotImplementedError

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the tokenizer files into ``directory`` (created if needed)."""
        raise NotImplementedError

    @staticmethod
    def load(directory: str | os.PathLike) -> Tokenizer:
        """Load whichever tokenizer :meth:`save` wrote into ``directory``."""
        return load_tokenizer(directory)

    def is_special(self, index: int) -> bool:
        return index < len(SPECIALS)

    def words(self, ids: Sequence[int]) -> list[tuple[str, list[int]]]:
        """Group ``ids`` into words: ``[(word, positions in ids), ...]``.

        Positions of word-boundary tokens and specials belong to no word; word
        timestamps are the frames of a word's own tokens.
        """
        groups: list[tuple[list[str], list[int]]] = []
        new_word = True
        for pos, index in enumerate(ids):
            if self.is_special(index):
                continue
            starts, piece, ends = self._split_piece(index)
            if starts:
                new_word = True
            if piece:
                if new_word or not groups:
                    groups.append(([], []))
                groups[-1][0].append(piece)
                groups[-1][1].append(pos)
                new_word = False
            if ends:
                new_word = True
        return [("".join(p), positions) for p, positions in groups]

    def _split_piece(self, index: int) -> tuple[bool, str, bool]:
        """``(starts a word, text of the piece, ends a word)``."""
        raise NotImplementedError


class CharTokenizer(Tokenizer):
    """One token per character of :func:`normalize_text` output.

    The vocabulary is fixed and ordered: the specials, ``|`` (space, the word
    boundary), ``'``, ``A``-``Z``, ``0``-``9`` and then any ``extra`` symbols
    (e.g. accented letters), so that two tokenizers built with the same
    arguments always agree. Lowercase input is accepted (it is uppercased).
    """

    kind = "char"
    word_boundary = "|"

    def __init__(self, extra: str = "") -> None:
        base = self.word_boundary + "'" + string.ascii_uppercase + string.digits
        extra = "".join(dict.fromkeys(c for c in normalize_text(extra).replace(" ", "") if c not in base))
        self.extra = extra
        self.symbols: list[str] = [*SPECIALS, *base, *extra]
        self._index = {s: i for i, s in enumerate(self.symbols)}

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        text = normalize_text(text).replace(" ", self.word_boundary)
        return [self._index.get(c, UNK_ID) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        chars = [self.symbols[i] for i in ids if not self.is_special(i) and i < len(self.symbols)]
        return " ".join("".join(chars).replace(self.word_boundary, " ").split())

    def id_to_piece(self, index: int) -> str:
        return self.symbols[index]

    def _split_piece(self, index: int) -> tuple[bool, str, bool]:
        piece = self.symbols[index]
        if piece == self.word_boundary:
            return True, "", True
        return False, piece, False

    def save(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"type": self.kind, "extra": self.extra, "symbols": self.symbols}
        (directory / TOKENIZER_JSON).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        return directory

    @classmethod
    def from_json(cls, meta: dict) -> CharTokenizer:
        tok = cls(meta.get("extra", ""))
        if meta.get("symbols", tok.symbols) != tok.symbols:
            raise ValueError("tokenizer.json symbols differ from the CharTokenizer vocabulary")
        return tok


class SentencePieceTokenizer(Tokenizer):
    """Subword tokenizer backed by a sentencepiece model.

    Our id = sentencepiece id + 3: sentencepiece's own ``<unk>`` (its id 0) is
    our ``UNK_ID`` 3, and ids 0-2 are blank, pad and sos/eos, which
    sentencepiece never produces.

    Args:
        model_file: a ``.model`` file written by :meth:`train` (or any
            sentencepiece model trained with ``unk_id=0`` and no bos/eos/pad).
    """

    kind = "sentencepiece"
    offset = len(SPECIALS) - 1  # sentencepiece <unk> (0) -> UNK_ID (3)

    def __init__(self, model_file: str | os.PathLike) -> None:
        import sentencepiece as spm

        self.model_file = Path(model_file)
        self.sp = spm.SentencePieceProcessor(model_file=str(self.model_file))
        if self.sp.unk_id() != 0 or self.sp.bos_id() >= 0 or self.sp.eos_id() >= 0 or self.sp.pad_id() >= 0:
            raise ValueError(f"{model_file}: expected unk_id=0 and no bos/eos/pad (train with SentencePieceTokenizer)")

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        directory: str | os.PathLike,
        vocab_size: int = 256,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        required_chars: str = string.ascii_uppercase + string.digits + "'",
    ) -> SentencePieceTokenizer:
        """Train on ``texts`` (normalised first) and write ``directory/tokenizer.model``.

        ``vocab_size`` counts our specials too, so the model has
        ``vocab_size - 3`` pieces; on a small corpus sentencepiece may stop
        short of it (``hard_vocab_limit=False``), read :attr:`vocab_size` after.
        ``required_chars`` are in the vocabulary even when the corpus lacks
        them, so that any English :func:`normalize_text` output can be spelled.
        """
        import sentencepiece as spm

        if model_type not in ("unigram", "bpe"):
            raise ValueError(f"model_type must be 'unigram' or 'bpe', got {model_type!r}")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sentences = [t for t in (normalize_text(t) for t in texts) if t]
        if not sentences:
            raise ValueError("no text to train the tokenizer on")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_prefix=str(directory / Path(SPM_MODEL).stem),
            vocab_size=vocab_size - cls.offset,
            model_type=model_type,
            character_coverage=character_coverage,
            required_chars=required_chars,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            hard_vocab_limit=False,
            num_threads=1,
            minloglevel=2,
        )
        tok = cls(directory / SPM_MODEL)
        tok._write_json(directory)
        return tok

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size() + self.offset

    def encode(self, text: str) -> list[int]:
        return [i + self.offset for i in self.sp.encode(normalize_text(text))]

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [i - self.offset for i in ids if not self.is_special(i) and i < self.vocab_size]
        return " ".join(self.sp.decode(pieces).split())

    def id_to_piece(self, index: int) -> str:
        return SPECIALS[index] if index < self.offset else self.sp.id_to_piece(index - self.offset)

    def is_special(self, index: int) -> bool:
        return index < self.offset  # sentencepiece's <unk> is a piece of a word

    def _split_piece(self, index: int) -> tuple[bool, str, bool]:
        if index == UNK_ID:
            return False, "\u2047", False
        piece = self.sp.id_to_piece(index - self.offset)
        starts = piece.startswith("\u2581")
        return starts, piece.lstrip("\u2581"), False

    def _write_json(self, directory: Path) -> None:
        meta = {"type": self.kind, "model": SPM_MODEL}
        (directory / TOKENIZER_JSON).write_text(json.dumps(meta, indent=2) + "\n")

    def save(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / SPM_MODEL
        if target.resolve() != self.model_file.resolve():
            target.write_bytes(self.model_file.read_bytes())
        self._write_json(directory)
        return directory


def load_tokenizer(directory: str | os.PathLike) -> Tokenizer:
    """Load the tokenizer saved in ``directory`` (``tokenizer.json`` says which)."""
    directory = Path(directory)
    meta = json.loads((directory / TOKENIZER_JSON).read_text())
    if meta.get("type") == CharTokenizer.kind:
        return CharTokenizer.from_json(meta)
    if meta.get("type") == SentencePieceTokenizer.kind:
        return SentencePieceTokenizer(directory / meta.get("model", SPM_MODEL))
    raise ValueError(f"{directory}: unknown tokenizer type {meta.get('type')!r}")
