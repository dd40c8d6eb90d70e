"""Decoding for :class:`~hubbub.models.asr.SpeechTransformer`.

* :func:`greedy_decode`: batched argmax decoding with the attention decoder.
* :func:`ctc_greedy_decode`: batched best-path CTC decoding (no decoder steps:
  the fastest, and the steadiest while the attention decoder is still young).
* :func:`beam_search`: joint CTC/attention beam search (Watanabe et al., 2017):
  ``score = (1 - w) * log p_att + w * log p_ctc_prefix``, with the CTC prefix
  score computed for every hypothesis and candidate token at once
  (:class:`CTCPrefixScorer`) and a length normalisation of finished hypotheses.

* :func:`ctc_lm_decode`: CTC beam search over the words of a lexicon with a
  word n-gram language model (``model.lm``, :mod:`hubbub.models.lm`).

:func:`decode` picks one of them from ``beam_size``, ``ctc_weight`` and ``lm``; the
pipeline, the evaluation and the recipes' validation all decode through it.

All return one :class:`Hypothesis` per utterance with word timestamps taken
from a CTC forced alignment of the decoded tokens (:func:`ctc_forced_align`),
or from the decoder's cross-attention when the alignment is impossible, and
optionally that cross-attention itself (token x time, for display).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from hubbub.models.asr import SpeechTransformer, as_batch, padding_mask
from hubbub.models.hypothesis import DecodingOptions, Hypothesis, WordTiming, inference
from hubbub.models.tokenizer import BLANK_ID, EOS_ID, PAD_ID, SOS_ID
from hubbub.models.whisper_decoding import whisper_decode

__all__ = [
    "CTCPrefixScorer",
    "DecodingOptions",
    "Hypothesis",
    "WordTiming",
    "inference",
    "beam_search",
    "ctc_forced_align",
    "ctc_greedy_decode",
    "ctc_lm_decode",
    "decode",
    "greedy_decode",
]

NEG_INF = float("-inf")


def _token_mask(vocab_size: int, device) -> torch.Tensor:
    """``(V,)`` additive mask: -inf for ids the decoder must never emit."""
    mask = torch.zeros(vocab_size, device=device)
    mask[[BLANK_ID, PAD_ID]] = NEG_INF
    return mask


# --------------------------------------------------------------------------- greedy


def greedy_decode(
    model: SpeechTransformer,
    wav: torch.Tensor,
    lengths: torch.Tensor | None = None,
    max_len: int | None = None,
    word_timestamps: bool = True,
    return_cross_attention: bool = False,
) -> list[Hypothesis]:
    """Batched greedy decoding with the attention decoder.

    Args:
        wav: ``(B, T)`` or ``(T,)`` waveform(s) at ``model.sample_rate``.
        lengths: ``(B,)`` samples, or None.
        max_len: most tokens per utterance (default and upper bound: its number
            of encoder frames); eos is forced there.
        word_timestamps: fill :attr:`Hypothesis.words`.
        return_cross_attention: fill :attr:`Hypothesis.cross_attention`.

    Returns:
        One :class:`Hypothesis` per utterance, in order.
    """
    _, wav_lengths = as_batch(wav, lengths)
    with inference(model):
        memory, mem_lengths, _ = model.encode(wav, lengths)
        b, t, _ = memory.shape
        mem_pad = padding_mask(mem_lengths, t)
        limit = mem_lengths if max_len is None else mem_lengths.clamp(max=max_len)
        block = _token_mask(model.config.vocab_size, memory.device)
        ys = torch.full((b, 1), SOS_ID, dtype=torch.long, device=memory.device)
        scores = memory.new_zeros(b)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for step in range(int(limit.max()) + 1):
            logits, _ = model.decoder(ys, memory, mem_pad)
            logp = logits[:, -1].float().log_softmax(-1) + block
            nxt = logp.argmax(-1)
            nxt = torch.where(step >= limit, torch.full_like(nxt, EOS_ID), nxt)
            scores += torch.where(done, 0.0, logp.gather(1, nxt[:, None])[:, 0])
            nxt = nxt.masked_fill(done, PAD_ID)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= nxt == EOS_ID
            if bool(done.all()):
                break
        results = []
        for i in range(b):
            row = ys[i, 1:].tolist()
            tokens = row[: row.index(EOS_ID)] if EOS_ID in row else row
            results.append(_Decoded(tokens, float(scores[i]), float(scores[i])))
        return _hypotheses(
            model, memory, mem_lengths, model.ctc_log_probs(memory), wav_lengths, results,
            word_timestamps, return_cross_attention,
        )  # fmt: skip


def ctc_greedy_decode(
    model: SpeechTransformer,
    wav: torch.Tensor,
    lengths: torch.Tensor | None = None,
    word_timestamps: bool = True,
    return_cross_attention: bool = False,
) -> list[Hypothesis]:
    """Batched best-path CTC decoding: the argmax label of every encoder frame,
    repeats merged and blanks removed.

    Args:
        wav: ``(B, T)`` or ``(T,)`` waveform(s) at ``model.sample_rate``.
        lengths: ``(B,)`` samples, or None.
        word_timestamps: fill :attr:`Hypothesis.words`.
        return_cross_attention: fill :attr:`Hypothesis.cross_attention`
            (one decoder pass over the result).

    Returns:
        One :class:`Hypothesis` per utterance; ``score`` is the log-probability
        of the best path, ``att_score`` is nan.
    """
    return _ctc_search(model, wav, lengths, _best_path, word_timestamps, return_cross_attention)


def _best_path(log_probs: torch.Tensor) -> _Decoded:
    """The argmax label of every frame of ``log_probs (T, V)``, repeats merged and blanks removed."""
    best, path = log_probs.max(-1)
    keep = path != BLANK_ID
    keep[1:] &= path[1:] != path[:-1]
    tokens = [t for t in path[keep].tolist() if t not in (PAD_ID, SOS_ID, EOS_ID)]
    return _Decoded(tokens, float(best.sum()))


def _ctc_search(model, wav, lengths, search, word_timestamps, return_cross_attention) -> list[Hypothesis]:
    """Encode a batch, then ``search`` each utterance's CTC log-probabilities ``(T', V) -> _Decoded``."""
    _, wav_lengths = as_batch(wav, lengths)
    with inference(model):
        memory, mem_lengths, _ = model.encode(wav, lengths)
        ctc_lp = model.ctc_log_probs(memory)  # (B, T', V)
        results = [search(ctc_lp[i, : int(mem_lengths[i])]) for i in range(memory.shape[0])]
        return _hypotheses(
            model, memory, mem_lengths, ctc_lp, wav_lengths, results, word_timestamps, return_cross_attention
        )


def ctc_lm_decode(
    model: SpeechTransformer,
    wav: torch.Tensor,
    lengths: torch.Tensor | None = None,
    word_timestamps: bool = True,
    return_cross_attention: bool = False,
) -> list[Hypothesis]:
    """CTC beam search with the model's word n-gram LM and lexicon (``model.lm``, a
    :class:`~hubbub.models.lm.NgramLM`): batched encoder, one search per utterance.

    Returns:
        One :class:`Hypothesis` per utterance; ``score`` is the search's (CTC plus
        weighted LM and word scores), ``att_score`` is nan.
    """
    if model.lm is None:
        raise ValueError("this ASR model has no language model (its folder has no lm/; see `hubbub train lm`)")
    return _ctc_search(model, wav, lengths, lambda lp: _Decoded(*model.lm.search(lp)), word_timestamps,
                       return_cross_attention)


def decode(
    model: torch.nn.Module,
    wav: torch.Tensor,
    lengths: torch.Tensor | None = None,
    options: DecodingOptions | None = None,
    **fields,
) -> list[Hypothesis]:
    """Decode a batch ``(B, T)`` (or ``(T,)``) the way ``options`` say; keyword
    ``fields`` replace fields of ``options`` (``decode(m, wav, beam_size=5)``).

    A :class:`~hubbub.models.whisper.WhisperASR` decodes with
    :func:`hubbub.models.whisper_decoding.whisper_decode`. A
    :class:`SpeechTransformer`: ``lm``: :func:`ctc_lm_decode` with the model's
    language model; None (the default) uses it when the model has one and no
    other search is asked for (``beam_size == 1``, no ``ctc_weight``,
    ``model.config.decoder == "ctc"``). Otherwise, ``beam_size > 1``:
    :func:`beam_search` with ``ctc_weight`` (default: the model's training
    weight). ``beam_size == 1``: :func:`ctc_greedy_decode` when ``ctc_weight ==
    1``, else :func:`greedy_decode` with the attention decoder; without a
    ``ctc_weight``, the one that ``model.config.decoder`` names.
    ``return_cross_attention``: the decoder's cross-attention over the chosen
    tokens, whichever search chose them.
    """
    options = dataclasses.replace(options or DecodingOptions(), **fields)
    if not isinstance(model, SpeechTransformer):
        return whisper_decode(model, wav, lengths, options)
    beam_size, ctc_weight, lm = options.beam_size, options.ctc_weight, options.lm
    if lm is None:
        lm = model.lm is not None and beam_size == 1 and ctc_weight is None and model.config.decoder == "ctc"
    out = {"word_timestamps": options.word_timestamps, "return_cross_attention": options.return_cross_attention}
    if lm:
        return ctc_lm_decode(model, wav, lengths, **out)
    if beam_size == 1 and ctc_weight is None:
        ctc_weight = 1.0 if model.config.decoder == "ctc" else 0.0
    if beam_size > 1:
        return beam_search(model, wav, lengths, beam=beam_size, ctc_weight=ctc_weight, max_len=options.max_len,
                           length_penalty=options.length_penalty, **out)
    if ctc_weight == 1.0:
        return ctc_greedy_decode(model, wav, lengths, **out)
    return greedy_decode(model, wav, lengths, max_len=options.max_len, **out)


# --------------------------------------------------------------------------- CTC prefix score


class CTCPrefixScorer:
    """CTC prefix scores of one utterance, vectorised over hypotheses and candidates.

    For a prefix ``g`` the state holds ``r[t] = (log r^n_t(g), log r^b_t(g))``,
    the probability of ``g`` having been emitted by frame ``t`` with frame
    ``t`` a label (n) or a blank (b). Extending ``g`` by ``c`` (Watanabe et al.
    2017, Algorithm 2; ESPnet's ``CTCPrefixScore``)::

        phi_t     = r^b_t(g) + (r^n_t(g) if c != last(g) else 0)      (sums, in log space)
        r^n_t(h)  = (r^n_{t-1}(h) + phi_{t-1}) * y_t^c
        r^b_t(h)  = (r^b_{t-1}(h) + r^n_{t-1}(h)) * y_t^blank
        psi(h)    = r^n_0(h) + sum_{t>=1} phi_{t-1} * y_t^c           psi(g + eos) = r^n_T(g) + r^b_T(g)

    Both recursions are first-order linear, so they are solved for all ``t``
    at once with cumulative sums and ``logcumsumexp`` (in float64) instead of
    a loop over frames.

    Args:
        log_probs: ``(T, V)`` CTC log-probabilities of one utterance.
    """

    def __init__(self, log_probs: torch.Tensor, blank: int = BLANK_ID, eos: int = EOS_ID) -> None:
        self.x = log_probs.double()  # (T, V)
        self.xt = self.x.t().contiguous()  # (V, T)
        self.blank, self.eos = blank, eos
        self.cum_blank = self.x[:, blank].cumsum(0)  # (T,)

    def initial_state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """State of the empty prefix: ``r (1, 2, T)`` and ``psi (1,)`` (log 1 = 0)."""
        rn = torch.full_like(self.cum_blank, NEG_INF)
        return torch.stack([rn, self.cum_blank])[None], self.x.new_zeros(1)

    def score(
        self, r: torch.Tensor, last: torch.Tensor, candidates: torch.Tensor, empty: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix scores of ``g + c`` for every hypothesis ``g`` and candidate ``c``.

        Args:
            r: ``(K, 2, T)`` states of the hypotheses.
            last: ``(K,)`` last token of each hypothesis (sos for the empty one).
            candidates: ``(K, P)`` token ids to try.
            empty: ``(K,)`` bool, True where the hypothesis is the empty prefix.

        Returns:
            ``psi (K, P)`` log prefix probabilities and the new states ``(K, P, 2, T)``.
        """
        rn_g, rb_g = r[:, 0, None, :], r[:, 1, None, :]  # (K, 1, T)
        xc = self.xt[candidates]  # (K, P, T)
        same = (candidates == last[:, None])[..., None]
        phi = torch.where(same, rb_g, torch.logaddexp(rn_g, rb_g))  # (K, P, T)
        start = torch.where(empty, 0.0, NEG_INF).to(xc)[:, None, None].expand(*xc.shape[:2], 1)
        cum_c = xc.cumsum(-1)
        rn_h = cum_c + torch.cat([start, phi[..., :-1] - cum_c[..., :-1]], -1).logcumsumexp(-1)
        cum_b = self.cum_blank
        rb_h = cum_b + torch.cat([torch.full_like(start, NEG_INF), rn_h[..., :-1] - cum_b[:-1]], -1).logcumsumexp(-1)
        psi = torch.cat([start + xc[..., :1], phi[..., :-1] + xc[..., 1:]], -1).logsumexp(-1)
        end = torch.logaddexp(r[:, 0, -1], r[:, 1, -1])[:, None].expand_as(psi)
        psi = torch.where(candidates == self.eos, end, psi)
        return psi, torch.stack([rn_h, rb_h], dim=2)


# --------------------------------------------------------------------------- beam search


def _end_detect(ended: list[dict], length: int, m: int = 3, d_end: float = -10.0) -> bool:
    """ESPnet's end detection: the best hypotheses that ended at each of the last
    ``m`` steps are all far (``d_end``) below the best one so far. ``length``
    is sos + tokens of the running hypotheses; one that ended at this step has
    ``length - 2`` tokens."""
    if not ended:
        return False
    best = max(h["score"] for h in ended)
    count = 0
    for i in range(m):
        same = [h["score"] for h in ended if len(h["tokens"]) + 2 == length - i]
        if same and max(same) - best < d_end:
            count += 1
    return count == m


def beam_search(
    model: SpeechTransformer,
    wav: torch.Tensor,
    lengths: torch.Tensor | None = None,
    beam: int = 5,
    ctc_weight: float | None = None,
    length_penalty: float = 1.0,
    max_len: int | None = None,
    pre_beam_ratio: float = 1.5,
    word_timestamps: bool = True,
    return_cross_attention: bool = False,
) -> list[Hypothesis]:
    """Joint CTC/attention beam search; one utterance at a time after a batched encoder.

    Args:
        wav: ``(B, T)`` or ``(T,)`` waveform(s); lengths: ``(B,)`` or None.
        beam: hypotheses kept per step.
        ctc_weight: ``w`` in ``(1 - w) * att + w * ctc``; default
            ``model.config.ctc_weight``. 0 is attention only, 1 CTC prefix
            beam search only.
        length_penalty: finished hypotheses are ranked by
            ``score / (len(tokens) + 1) ** length_penalty`` (0: raw score).
        max_len: most tokens (default and upper bound: the encoder frames).
        pre_beam_ratio: the CTC prefix score is computed for the
            ``ceil(pre_beam_ratio * beam)`` best tokens of the attention decoder.

    Returns:
        The best :class:`Hypothesis` of each utterance.
    """
    w = model.config.ctc_weight if ctc_weight is None else float(ctc_weight)
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"ctc_weight must be in [0, 1], got {w}")
    _, wav_lengths = as_batch(wav, lengths)
    with inference(model):
        memory, mem_lengths, _ = model.encode(wav, lengths)
        ctc_lp = model.ctc_log_probs(memory)
        results = []
        for i in range(memory.shape[0]):
            n = int(mem_lengths[i])
            limit = n if max_len is None else min(n, max_len)
            best = _beam_one(
                model, memory[i : i + 1, :n], ctc_lp[i, :n], beam, w, length_penalty, limit, pre_beam_ratio
            )
            att = best["att"] if w < 1 else math.nan
            results.append(_Decoded(best["tokens"], best["norm"], att, best["ctc"] if w > 0 else None))
        return _hypotheses(
            model, memory, mem_lengths, ctc_lp, wav_lengths, results, word_timestamps, return_cross_attention
        )


def _beam_one(model, memory, ctc_lp, beam, w, length_penalty, limit, pre_beam_ratio) -> dict:
    """Beam search over one utterance: ``memory (1, T, D)``, ``ctc_lp (T, V)``."""
    vocab = model.config.vocab_size
    device = memory.device
    block = _token_mask(vocab, device)
    scorer = CTCPrefixScorer(ctc_lp) if w > 0 else None
    ys = torch.full((1, 1), SOS_ID, dtype=torch.long, device=device)
    score = torch.zeros(1, dtype=torch.float64, device=device)
    att_total = torch.zeros(1, dtype=torch.float64, device=device)
    r, psi = scorer.initial_state() if scorer else (None, None)
    n_pre = min(vocab - 2, max(beam, math.ceil(pre_beam_ratio * beam)))
    ended: list[dict] = []
    for step in range(limit + 1):
        k = ys.shape[0]
        if w < 1.0:
            logits, _ = model.decoder(ys, memory.expand(k, -1, -1))
            att = (logits[:, -1].float().log_softmax(-1) + block).double()  # (K, V)
        else:
            att = block.double().expand(k, -1)
        if step == limit:  # out of frames: only eos
            only_eos = torch.full_like(att, NEG_INF)
            only_eos[:, EOS_ID] = att[:, EOS_ID] if w < 1.0 else 0.0
            att = only_eos
        if scorer is not None:
            cand = att.topk(n_pre, dim=-1).indices if w < 1.0 else _all_tokens(k, vocab, device)  # (K, P)
            cand_psi, cand_r = scorer.score(r, ys[:, -1], cand, empty=torch.full((k,), step == 0, device=device))
            cand_att = att.gather(1, cand)
            att_term = torch.where(torch.isinf(cand_att), cand_att, (1.0 - w) * cand_att)  # w = 1 keeps the -inf
            joint = score[:, None] + att_term + w * (cand_psi - psi[:, None])
        else:
            cand = torch.arange(vocab, device=device).expand(k, -1)
            cand_att, joint = att, score[:, None] + att
        flat = joint.reshape(-1)
        top = flat.topk(min(beam, int(torch.isfinite(flat).sum()))).indices
        if top.numel() == 0:
            break  # nothing reachable (CTC has run out of frames)
        src, pos = top // cand.shape[1], top % cand.shape[1]
        tokens = cand[src, pos]
        keep = []
        for j in range(top.numel()):
            s, token = float(flat[top[j]]), int(tokens[j])
            att_j = float(att_total[src[j]] + cand_att[src[j], pos[j]])
            if token == EOS_ID:
                length = ys.shape[1]  # tokens + eos
                ended.append(
                    {
                        "tokens": ys[src[j], 1:].tolist(),
                        "score": s,
                        "norm": s / length**length_penalty,
                        "att": att_j,
                        "ctc": float(cand_psi[src[j], pos[j]]) if scorer else math.nan,
                    }
                )
            else:
                keep.append(j)
        if not keep:
            break
        keep_t = torch.tensor(keep, device=device)
        s_idx, p_idx = src[keep_t], pos[keep_t]
        ys = torch.cat([ys[s_idx], tokens[keep_t, None]], dim=1)
        score = flat[top[keep_t]]
        att_total = att_total[s_idx] + cand_att[s_idx, p_idx]
        if scorer is not None:
            r, psi = cand_r[s_idx, p_idx], cand_psi[s_idx, p_idx]
        if ended and length_penalty == 0 and max(h["score"] for h in ended) >= float(score.max()):
            break  # scores only fall as tokens are added: nothing running can win
        if _end_detect(ended, ys.shape[1]):
            break
    if not ended:  # give back the best unfinished hypothesis rather than nothing
        j = int(score.argmax())
        s = float(score[j])
        return {"tokens": ys[j, 1:].tolist(), "norm": s, "att": float(att_total[j]), "ctc": math.nan}
    return max(ended, key=lambda h: h["norm"])


def _all_tokens(k: int, vocab: int, device) -> torch.Tensor:
    """Every id except blank and pad, ``(K, V - 2)``."""
    ids = [i for i in range(vocab) if i not in (BLANK_ID, PAD_ID)]
    return torch.tensor(ids, device=device).expand(k, -1)


# --------------------------------------------------------------------------- alignment


def ctc_forced_align(
    log_probs: torch.Tensor, tokens: Sequence[int], blank: int = BLANK_ID
) -> list[tuple[int, int]] | None:
    """Viterbi CTC alignment of ``tokens`` to ``log_probs (T, V)``
    (:func:`torchaudio.functional.forced_align`).

    Returns ``(first frame, last frame + 1)`` of each token, or None when no
    path exists (fewer frames than tokens plus repeated neighbours).
    """
    import torchaudio.functional as AF

    n_tok = len(tokens)
    if n_tok == 0:
        return []
    repeats = sum(int(a == b) for a, b in zip(tokens, tokens[1:]))
    if log_probs.shape[0] < n_tok + repeats:
        return None
    lp = log_probs.detach().float().cpu()[None]
    targets = torch.tensor([list(tokens)], dtype=torch.int32)
    labels, scores = AF.forced_align(lp, targets, blank=blank)
    spans = AF.merge_tokens(labels[0], scores[0].exp(), blank=blank)
    if len(spans) != n_tok or not all(torch.isfinite(scores[0])):
        return None
    return [(s.start, s.end) for s in spans]


def _attention_spans(cross: torch.Tensor, n_tok: int) -> list[tuple[int, int]]:
    """Fallback alignment: the frame each token's query attends to most."""
    peak = cross[:n_tok].argmax(-1).tolist()
    return [(p, p + 1) for p in peak]


class _Decoded(NamedTuple):
    """One utterance as a search left it: tokens and scores (None ``ctc``: score it afterwards)."""

    tokens: list[int]
    score: float
    att: float = math.nan
    ctc: float | None = None


def _hypotheses(
    model, memory, mem_lengths, ctc_lp, wav_lengths, results: list[_Decoded], word_timestamps, return_cross_attention
) -> list[Hypothesis]:
    """:func:`_finish` each utterance of a batch: ``memory (B, T, D)``, ``ctc_lp (B, T, V)``."""
    hyps = []
    for i, r in enumerate(results):
        n = int(mem_lengths[i])
        hyps.append(
            _finish(
                model, memory[i : i + 1, :n], ctc_lp[i, :n], r.tokens, score=r.score, att_score=r.att,
                ctc_score=r.ctc, duration=float(wav_lengths[i]) / model.sample_rate,
                word_timestamps=word_timestamps, return_cross_attention=return_cross_attention,
            )
        )  # fmt: skip
    return hyps


def _finish(
    model, memory, ctc_lp, tokens, *, score, att_score, ctc_score, duration, word_timestamps, return_cross_attention
) -> Hypothesis:
    """Text, word timings and cross-attention of one decoded utterance:
    ``memory (1, T, D)``, ``ctc_lp (T, V)``, ``duration`` in seconds."""
    tok = model.tokenizer
    text = tok.decode(tokens) if tok is not None else ""
    cross = None
    spans = None
    want_words = bool(word_timestamps and tok is not None and tokens)
    if want_words:
        spans = ctc_forced_align(ctc_lp, tokens)
    if return_cross_attention or (want_words and spans is None):
        ys = torch.tensor([[SOS_ID, *tokens]], device=memory.device)
        _, weights = model.decoder(ys, memory, need_weights=True)
        cross = weights[0].mean(0).float().cpu() if weights is not None else None  # (U + 1, T)
        if want_words and spans is None and cross is not None:
            spans = _attention_spans(cross, len(tokens))
    words = []
    if want_words and spans is not None:
        shift, n_frames = model.frame_shift, memory.shape[1]
        for word, positions in tok.words(tokens):
            first = min(spans[p][0] for p in positions)
            last = min(max(spans[p][1] for p in positions), n_frames)
            start = min(first * shift, duration)
            words.append(WordTiming(word, round(start, 3), round(min(last * shift, duration), 3)))
    if ctc_score is None and tokens:
        ctc_score = _ctc_log_likelihood(ctc_lp, tokens)
    return Hypothesis(
        tokens=tuple(int(t) for t in tokens),
        text=text,
        score=float(score),
        words=tuple(words),
        att_score=float(att_score),
        ctc_score=math.nan if ctc_score is None else float(ctc_score),
        cross_attention=cross if return_cross_attention else None,
    )


def _ctc_log_likelihood(ctc_lp: torch.Tensor, tokens: Sequence[int]) -> float:
    """``log p_ctc(tokens | x)`` of one utterance (``-inf`` when impossible)."""
    targets = torch.tensor([tokens], device=ctc_lp.device)
    loss = torch.nn.functional.ctc_loss(
        ctc_lp[:, None].float(),
        targets,
        torch.tensor([ctc_lp.shape[0]]),
        torch.tensor([len(tokens)]),
        blank=BLANK_ID,
        reduction="sum",
        zero_infinity=False,
    )
    return -float(loss)
