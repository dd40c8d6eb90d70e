"""Word error rates: plain WER and cpWER for several talkers.

cpWER (concatenated minimum-permutation WER, CHiME-6): each reference
speaker's utterances are concatenated into one stream, so is each hypothesis
speaker's; hypothesis streams are assigned to reference speakers (the shorter
list padded with empty streams) in the permutation with the fewest errors,
and the errors are summed over the pairs. Texts are normalised with
:func:`hubbub.models.text.normalize_text` first; the edit distance is jiwer's.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from hubbub.models.text import normalize_text

__all__ = ["CpWERResult", "WERResult", "cpwer", "wer"]

Texts = str | Sequence[str]


@dataclass(frozen=True)
class WERResult:
    """Word errors against ``ref_words`` reference words; ``wer = errors / ref_words``."""

    substitutions: int
    deletions: int
    insertions: int
    ref_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Errors per reference word; with no reference words, 0.0 when no errors else ``inf``."""
        return _rate(self.errors, self.ref_words)


@dataclass(frozen=True)
class CpWERResult:
    """cpWER: ``permutation[i]`` is the hypothesis stream assigned to reference speaker ``i``.

    Both lists are padded with empty streams to the same length, so indices at
    or past ``len(refs)`` (or ``len(hyps)``) stand for empty streams.
    """

    errors: int
    ref_words: int
    wer: float
    permutation: tuple[int, ...]
    substitutions: int
    deletions: int
    insertions: int


def _rate(errors: int, ref_words: int) -> float:
    if ref_words == 0:
        return 0.0 if errors == 0 else float("inf")
    return errors / ref_words


def _stream(texts: Texts) -> str:
    """One normalised stream from a text or a list of utterances."""
    if isinstance(texts, str):
        texts = [texts]
    return " ".join(t for t in (normalize_text(u) for u in texts) if t)


def _counts(ref: str, hyp: str) -> WERResult:
    """Edit counts of two normalised streams (empty streams handled here, for any jiwer version)."""
    n_ref, n_hyp = len(ref.split()), len(hyp.split())
    if n_ref == 0 or n_hyp == 0:
        return WERResult(0, n_ref, n_hyp, n_ref)
    out = jiwer.process_words(ref, hyp)
    return WERResult(out.substitutions, out.deletions, out.insertions, n_ref)


def wer(refs: Texts, hyps: Texts) -> WERResult:
    """Corpus WER of utterance pairs (``refs[i]`` against ``hyps[i]``), or of one pair of strings."""
    refs = [refs] if isinstance(refs, str) else list(refs)
    hyps = [hyps] if isinstance(hyps, str) else list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    pairs = [_counts(_stream(r), _stream(h)) for r, h in zip(refs, hyps)]
    return WERResult(
        sum(p.substitutions for p in pairs),
        sum(p.deletions for p in pairs),
        sum(p.insertions for p in pairs),
        sum(p.ref_words for p in pairs),
    )


def cpwer(refs: Sequence[Texts], hyps: Sequence[Texts]) -> CpWERResult:
    """cpWER of per-speaker references and per-speaker hypotheses.

    Each item is one speaker: a text or a list of that speaker's utterances
    (concatenated in order). Every permutation is tried (``n!`` for ``n``
    speakers, fine for the handful a recording has); ties go to the first in
    lexicographic order, so the identity wins when it is as good as any.
    """
    ref_streams = [_stream(r) for r in refs]
    hyp_streams = [_stream(h) for h in hyps]
    n = max(len(ref_streams), len(hyp_streams))
    ref_streams += [""] * (n - len(ref_streams))
    hyp_streams += [""] * (n - len(hyp_streams))
    pair = [[_counts(r, h) for h in hyp_streams] for r in ref_streams]
    best = min(itertools.permutations(range(n)), key=lambda p: sum(pair[i][j].errors for i, j in enumerate(p)))
    chosen = [pair[i][j] for i, j in enumerate(best)]
    errors = sum(c.errors for c in chosen)
    ref_words = sum(len(r.split()) for r in ref_streams)
    return CpWERResult(
        errors=errors,
        ref_words=ref_words,
        wer=_rate(errors, ref_words),
        permutation=tuple(best),
        substitutions=sum(c.substitutions for c in chosen),
        deletions=sum(c.deletions for c in chosen),
        insertions=sum(c.insertions for c in chosen),
    )
