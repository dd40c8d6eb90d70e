"""Decoding for :class:`~hubbub.models.whisper.WhisperASR`.

Whisper's own recipe for transcription without timestamp tokens: the task
prompt (``<|startoftranscript|><|en|><|transcribe|><|notimestamps|>``),
suppression of non-speech tokens everywhere and of a blank or end of text as
the first token, then greedy search or beam search ranked by
``sum log p / length``, both batched and both with a key/value cache. Word
times come from the cross-attention of the checkpoint's alignment heads,
aligned to the audio by dynamic time warping (as ``whisper.timing`` does).

The log-mel of each utterance is followed by zeros (faster-whisper's padding)
up to 30 s, as Whisper was trained, or, with ``input_padding``, only up to at
least that many seconds past the utterance, rounded up to 5 s (a shorter
encoder input: faster, measured in docs/notes/benchmarks-history.md); utterances are batched
with those of the same input size, so none depends on its batch. Utterances
longer than 30 s are decoded 30 s at a time.
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import torch

from hubbub.models.hypothesis import DecodingOptions, Hypothesis, WordTiming, inference
from hubbub.models.whisper import HOP, WhisperASR

__all__ = ["alignment_matrix", "compression_ratio", "whisper_decode", "word_times"]

FRAMES_PER_SECOND = 100  # log-mel frames
MEDIAN_FILTER = 7


def compression_ratio(text: str) -> float:
    """Whisper's repetition measure: text bytes over gzip-compressed bytes."""
    data = text.encode("utf-8")
    return len(data) / max(1, len(gzip.compress(data)))


def whisper_decode(
    model: WhisperASR, wav: torch.Tensor, lengths: torch.Tensor | None = None, options: DecodingOptions | None = None
) -> list[Hypothesis]:
    """Decode ``(B, T)`` (or ``(T,)``) 16 kHz waveforms with ``lengths`` ``(B,)``:
    one :class:`~hubbub.models.decoding.Hypothesis` each."""
    options = options or DecodingOptions()
    if wav.dim() == 1:
        wav = wav[None]
    if lengths is None:
        lengths = torch.full((wav.shape[0],), wav.shape[-1], dtype=torch.long)
    lengths = torch.as_tensor(lengths).long().cpu()
    chunk = model.config.n_audio_ctx * 2 * HOP  # Whisper's 30 s
    if int(lengths.max()) <= chunk:
        # one batch per encoder input size, which each utterance's own length sets: the words of an
        # utterance do not depend on what it is batched with
        frames = [model.encoder_frames(n[None], options.input_padding) for n in lengths]
        out: list = [None] * len(frames)
        for size in sorted(set(frames)):
            rows = [i for i, f in enumerate(frames) if f == size]
            part = wav[rows, : int(lengths[rows].max())]
            for i, hyp in zip(rows, _decode_batch(model, part, lengths[rows], options)):
                out[i] = hyp
        return out
    # longer than Whisper's context: 30 s pieces, joined
    out = []
    for i in range(wav.shape[0]):
        n = int(lengths[i])
        pieces = [(s, min(n, s + chunk)) for s in range(0, n, chunk)]
        hyps = _decode_batch(
            model, torch.stack([torch.nn.functional.pad(wav[i, s:e], (0, chunk - (e - s))) for s, e in pieces]),
            torch.tensor([e - s for s, e in pieces]), options,
        )
        out.append(_join(hyps, [s / model.sample_rate for s, _ in pieces], model))
    return out


def _join(hyps: list[Hypothesis], offsets: list[float], model: WhisperASR) -> Hypothesis:
    tokens = tuple(t for h in hyps for t in h.tokens)
    words = tuple(WordTiming(w.word, round(w.start + o, 3), round(w.end + o, 3)) for h, o in zip(hyps, offsets)
                  for w in h.words)
    text = model.tokenizer.decode(tokens) if model.tokenizer is not None else ""
    cross = None
    if all(h.cross_attention is not None for h in hyps):  # block-diagonal: each piece's tokens over its frames
        rows = [h.cross_attention[:-1] for h in hyps[:-1]] + [hyps[-1].cross_attention]
        cross = torch.zeros(sum(r.shape[0] for r in rows), sum(r.shape[1] for r in rows))
        r0 = c0 = 0
        for r in rows:
            cross[r0 : r0 + r.shape[0], c0 : c0 + r.shape[1]] = r
            r0, c0 = r0 + r.shape[0], c0 + r.shape[1]
    return Hypothesis(tokens=tokens, text=text.strip(), score=sum(h.score for h in hyps) / len(hyps), words=words,
                      cross_attention=cross)


def _decode_batch(model: WhisperASR, wav: torch.Tensor, lengths: torch.Tensor, options: DecodingOptions):
    cfg = model.config
    with inference(model):
        mel = model.features(wav, lengths, model.encoder_frames(lengths, options.input_padding))
        memory, _ = model.encode(mel, torch.clamp(lengths // HOP, min=1))
        seconds = lengths.float() / model.sample_rate
        limit = _max_tokens(options.max_len, float(seconds.max()), cfg)
        if options.beam_size > 1:
            found = _beam(model, memory, options.beam_size, limit, options.length_penalty)
        else:
            found = _greedy(model, memory, limit)
        hyps = []
        for i, (tokens, score) in enumerate(found):
            hyps.append(_finish(model, memory[i : i + 1], tokens, score, float(seconds[i]), options))
        return hyps


def _max_tokens(max_len: int | None, seconds: float, cfg) -> int:
    """At most ``max_len`` text tokens, and no more than fit the decoder's context
    (Whisper samples at most half of it) or could be spoken in the audio."""
    cap = min(cfg.n_text_ctx // 2, 16 + int(8 * seconds))
    return cap if max_len is None else min(cap, max_len)


def _repeats(tokens: list[int], max_n: int = 8, times: int = 3) -> int:
    """Length of a tail that repeats an n-gram ``times`` times in a row (a
    decoding loop), else 0: the tokens to drop."""
    for n in range(1, max_n + 1):
        if len(tokens) >= n * times:
            tail = tokens[-n:]
            if all(tokens[-(k + 1) * n : len(tokens) - k * n] == tail for k in range(1, times)):
                return n * (times - 1)
    return 0


def _step_mask(model: WhisperASR, first: bool, device) -> torch.Tensor:
    mask = model.suppress_mask.to(device)
    if first and model.config.suppress_ids_begin:
        mask = mask.clone()
        mask[list(model.config.suppress_ids_begin)] = float("-inf")
    return mask


def _greedy(model: WhisperASR, memory: torch.Tensor, limit: int) -> list[tuple[list[int], float]]:
    """Batched argmax search: ``[(tokens, sum log p), ...]``."""
    cfg, b = model.config, memory.shape[0]
    prompt = torch.tensor([cfg.prompt] * b, device=memory.device)
    cache: dict = {}
    logits, _ = model.decoder(prompt, memory, cache=cache)
    offset = prompt.shape[1]
    tokens: list[list[int]] = [[] for _ in range(b)]
    scores = [0.0] * b
    done = [False] * b
    for step in range(limit + 1):
        logp = (logits[:, -1] + _step_mask(model, step == 0, memory.device)).log_softmax(-1)
        best = logp.argmax(-1)
        for i in range(b):
            if done[i]:
                continue
            tok = int(best[i])
            scores[i] += float(logp[i, tok])
            if tok == cfg.eot or step == limit:
                done[i] = True
                continue
            tokens[i].append(tok)
            if cut := _repeats(tokens[i]):
                del tokens[i][-cut:]
                done[i] = True
        if all(done):
            break
        nxt = torch.tensor([[t[-1] if t and not d else cfg.eot] for t, d in zip(tokens, done)], device=memory.device)
        logits, _ = model.decoder(nxt, memory, cache=cache, offset=offset)
        offset += 1
    return list(zip(tokens, scores))


def _beam(model: WhisperASR, memory: torch.Tensor, k: int, limit: int, length_penalty: float):
    """Batched beam search, ``k`` hypotheses per utterance, finished ones ranked
    by ``sum log p / length ** length_penalty`` (Whisper's and faster-whisper's rule)."""
    cfg, b, device = model.config, memory.shape[0], memory.device
    memory = memory.repeat_interleave(k, dim=0)  # (B * k, S, D)
    prompt = torch.tensor([cfg.prompt] * (b * k), device=device)
    cache: dict = {}
    logits, _ = model.decoder(prompt, memory, cache=cache)
    offset = prompt.shape[1]
    self_attn = {layer.self_attn for layer in model.decoder.layers}
    seqs: list[list[int]] = [[] for _ in range(b * k)]
    sums = torch.zeros(b * k, device=device)
    sums.view(b, k)[:, 1:] = float("-inf")  # all beams start equal: keep one
    finished: list[list[tuple[list[int], float, float]]] = [[] for _ in range(b)]

    def rank(total: float, n: int) -> float:
        return total / (max(n, 1) ** length_penalty) if length_penalty else total

    for step in range(limit + 1):
        logp = (logits[:, -1] + _step_mask(model, step == 0, device)).log_softmax(-1)
        cand = (sums[:, None] + logp).view(b, -1)  # (B, k * V)
        top_scores, top_ids = cand.topk(2 * k, dim=-1)
        source, new_seqs, new_sums, new_tokens = [], [], [], []
        for i in range(b):
            kept = 0
            for score, flat in zip(top_scores[i].tolist(), top_ids[i].tolist()):
                if kept == k or len(finished[i]) >= k:
                    break
                row, tok = i * k + flat // cfg.n_vocab, flat % cfg.n_vocab
                if math.isinf(score):
                    continue
                seq = seqs[row]
                if tok == cfg.eot or step == limit:
                    finished[i].append((seq, rank(score, len(seq) + 1), score))
                    continue
                source.append(row)
                new_seqs.append([*seq, tok])
                new_sums.append(score)
                new_tokens.append(tok)
                kept += 1
            while kept < k:  # a finished utterance (or too few candidates): dead rows
                source.append(i * k)
                new_seqs.append(list(seqs[i * k]))
                new_sums.append(float("-inf"))
                new_tokens.append(cfg.eot)
                kept += 1
        if all(len(f) >= k for f in finished):
            break
        idx = torch.tensor(source, device=device)
        for module in self_attn:
            if module in cache:
                key, value = cache[module]
                cache[module] = (key[idx], value[idx])
        seqs, sums = new_seqs, torch.tensor(new_sums, device=device)
        for row, seq in enumerate(seqs):
            if cut := _repeats(seq):
                finished[row // k].append((seq[:-cut], rank(float(sums[row]), len(seq) - cut), float(sums[row])))
                sums[row] = float("-inf")
        logits, _ = model.decoder(torch.tensor(new_tokens, device=device)[:, None], memory, cache=cache, offset=offset)
        offset += 1
    out = []
    for i in range(b):
        if not finished[i]:
            out.append(([], 0.0))
            continue
        seq, _, total = max(finished[i], key=lambda f: f[1])
        out.append((seq, total))
    return out


def _finish(model: WhisperASR, memory: torch.Tensor, tokens: list[int], score: float, seconds: float,
            options: DecodingOptions) -> Hypothesis:
    tok = model.tokenizer
    text = tok.decode(tokens).strip() if tok is not None else ""
    words: tuple[WordTiming, ...] = ()
    cross = None
    want_words = options.word_timestamps and tok is not None and bool(tokens)
    if want_words or options.return_cross_attention:
        frames = max(1, min(memory.shape[1], int(round(seconds / model.frame_shift))))
        matrix, mean = alignment_matrix(model, memory, tokens, frames)  # (len(tokens) + 1, frames) each
        cross = torch.from_numpy(mean) if options.return_cross_attention else None
        if want_words:
            words = word_times(model, tokens, matrix, seconds)
    return Hypothesis(tokens=tuple(tokens), text=text, score=float(score), words=words, cross_attention=cross)


def alignment_matrix(model: WhisperASR, memory: torch.Tensor, tokens: list[int],
                      frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Cross-attention of the alignment heads over the speech frames: normalised
    per head over tokens, median-filtered along time and averaged (for DTW),
    and their plain mean (for display); both ``(len(tokens) + 1, frames)``, row
    ``u`` the query that emitted token ``u`` (the last emitted end of text)."""
    from scipy.ndimage import median_filter

    cfg = model.config
    ys = torch.tensor([[*cfg.prompt, *tokens, cfg.eot]], device=memory.device)
    _, weights = model.decoder(ys, memory, need_weights=True)
    heads = cfg.alignment_heads or tuple((len(weights) - 1 - j // cfg.n_text_head, j % cfg.n_text_head)
                                         for j in range(cfg.n_text_head))  # no heads recorded: the last layer's
    w = torch.stack([weights[layer][0, head] for layer, head in heads])[:, :, :frames].float()  # (H, U, S)
    w = w / w.sum(-1, keepdim=True).clamp(min=1e-9)
    start = len(cfg.prompt) - 1
    rows = slice(start, start + len(tokens) + 1)
    plain = w.mean(0)[rows].numpy().copy()
    std, mean = torch.std_mean(w, dim=-2, keepdim=True, unbiased=False)
    w = ((w - mean) / std.clamp(min=1e-9)).numpy()
    w = median_filter(w, size=(1, 1, MEDIAN_FILTER), mode="nearest") if frames >= MEDIAN_FILTER else w
    return w.mean(0)[rows], plain


def word_times(model: WhisperASR, tokens: list[int], matrix: np.ndarray, seconds: float) -> tuple[WordTiming, ...]:
    """Word start and end times from a DTW path through ``-matrix`` (librosa)."""
    import librosa

    _, path = librosa.sequence.dtw(C=-matrix.astype(np.float64), backtrack=True)
    path = path[::-1]
    text_idx, time_idx = path[:, 0], path[:, 1]
    jumps = np.concatenate([[True], np.diff(text_idx) > 0])
    jump_times = time_idx[jumps] * model.frame_shift  # the first frame of each token
    out = []
    for word, positions in model.tokenizer.words(tokens):
        start = float(jump_times[positions[0]])
        end = float(jump_times[positions[-1] + 1]) if positions[-1] + 1 < len(jump_times) else seconds
        start = min(start, seconds)
        out.append(WordTiming(word, round(start, 3), round(min(max(end, start), seconds), 3)))
    return tuple(out)
