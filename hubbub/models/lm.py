"""A word n-gram language model and lexicon for CTC beam search (shallow fusion).

The search is flashlight-text's lexicon-constrained CTC beam search (through
:func:`torchaudio.models.decoder.ctc_decoder`, KenLM scoring the ARPA file):
hypotheses are spelled only with words of the lexicon, and each word adds
``lm_weight * log p_lm(word | history) + word_score`` to the CTC score. An ASR
whose CTC head spells words half right gains the most: the language model picks
the real words that the letters point to.

A model folder holds it as ``lm/`` beside the ASR's weights::

    lm/lm.json          LMConfig (weights, beam) and how the LM was made
    lm/lm.arpa.gz       the n-gram model (ARPA, gzip; ``hubbub train lm`` writes it)
    lm/lexicon.txt      word<TAB>pieces of the ASR's tokenizer, one spelling a line

:class:`~hubbub.models.asr.SpeechTransformer` loads it with the weights
(``model.lm``), and :func:`hubbub.models.decoding.decode` uses it by default.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from hubbub.models.tokenizer import SPECIALS, Tokenizer

__all__ = ["LM_DIR", "LMConfig", "NgramLM", "write_lexicon"]

LM_DIR = "lm"
LM_JSON = "lm.json"
ARPA = "lm.arpa.gz"
LEXICON = "lexicon.txt"


@dataclass(frozen=True)
class LMConfig:
    """Search settings of :class:`NgramLM`, stored in ``lm.json``."""

    lm_weight: float = 1.0  # weight of log p_lm (natural log) against the CTC log-probability
    word_score: float = 1.0  # added per word: counters the LM's preference for few words
    beam_size: int = 50
    beam_threshold: float = 25.0  # prune hypotheses this far below the best
    beam_size_token: int | None = 32  # tokens tried per frame (None: all)


class NgramLM:
    """An ARPA word n-gram model and the lexicon that spells its words in an ASR's tokens.

    Args:
        directory: the ``lm/`` folder.
        tokenizer: the ASR's tokenizer (the lexicon's pieces must be its pieces).
        config: search settings (default: those in ``lm.json``).
    """

    def __init__(self, directory: str | os.PathLike, tokenizer: Tokenizer, config: LMConfig | None = None) -> None:
        self.directory = Path(directory)
        for name in (ARPA, LEXICON):
            if not (self.directory / name).is_file():
                raise FileNotFoundError(f"{self.directory / name}: missing (write it with `hubbub train lm`)")
        self.meta = json.loads((self.directory / LM_JSON).read_text()) if (self.directory / LM_JSON).is_file() else {}
        names = {f.name for f in dataclasses.fields(LMConfig)}
        self.config = config or LMConfig(**{k: v for k, v in self.meta.get("search", {}).items() if k in names})
        self.tokenizer = tokenizer
        self._decoder = None

    @classmethod
    def from_model_dir(cls, directory: str | os.PathLike, tokenizer: Tokenizer | None) -> NgramLM | None:
        """The LM in ``directory/lm`` when there is one (and a tokenizer to spell with), else None."""
        path = Path(directory) / LM_DIR
        if tokenizer is None or not (path / LM_JSON).is_file():
            return None
        return cls(path, tokenizer)

    def with_config(self, **changes) -> NgramLM:
        """The same LM with other search settings (e.g. ``lm_weight``), for tuning."""
        return NgramLM(self.directory, self.tokenizer, dataclasses.replace(self.config, **changes))

    def _search(self):
        if self._decoder is None:
            from torchaudio.models.decoder import ctc_decoder  # needs flashlight-text

            cfg = self.config
            tokens = [self.tokenizer.id_to_piece(i) for i in range(self.tokenizer.vocab_size)]
            with _quiet_stderr():  # KenLM draws a progress bar while it reads the ARPA file
                self._decoder = ctc_decoder(
                    lexicon=str(self.directory / LEXICON), tokens=tokens, lm=str(self.directory / ARPA), nbest=1,
                    beam_size=cfg.beam_size, beam_size_token=cfg.beam_size_token, beam_threshold=cfg.beam_threshold,
                    lm_weight=cfg.lm_weight, word_score=cfg.word_score, sil_score=0.0, unk_word="<unk>",
                    blank_token=SPECIALS[self.tokenizer.blank_id], sil_token=_silence(self.tokenizer),
                )
        return self._decoder

    def search(self, log_probs: torch.Tensor) -> tuple[list[int], float]:
        """Best token ids (specials removed) and score of one utterance's CTC ``log_probs (T, V)``."""
        if log_probs.shape[0] == 0:
            return [], 0.0
        hyp = self._search()(log_probs[None].detach().float().cpu().contiguous())[0][0]
        tokens = [t for t in hyp.tokens.tolist() if not self.tokenizer.is_special(t)]
        return tokens, float(hyp.score)


@contextlib.contextmanager
def _quiet_stderr():
    """Send what C++ code writes to file descriptor 2 to /dev/null for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _silence(tokenizer: Tokenizer) -> str:
    """The search's silence token: a character model's word boundary (it may come between words);
    for word pieces, padding, which CTC never emits (the pieces mark where words start)."""
    return getattr(tokenizer, "word_boundary", None) or SPECIALS[tokenizer.pad_id]


def write_lexicon(words: list[str], tokenizer: Tokenizer, path: str | os.PathLike) -> int:
    """Write ``word<TAB>piece piece ...`` for every word the tokenizer can spell; returns how many.
    (A character model's word boundary is the search's silence token, between words.)"""
    lines = []
    for word in words:
        ids = tokenizer.encode(word)
        if ids and not any(tokenizer.is_special(i) for i in ids):
            lines.append(word + "\t" + " ".join(tokenizer.id_to_piece(i) for i in ids))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)
