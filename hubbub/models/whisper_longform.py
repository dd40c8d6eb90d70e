"""Whisper's long-form transcription in hubbub's Whisper model (``whisper.transcribe``'s algorithm).

A recording of any length is read in 30-s windows of its log-mel (computed once over the whole
recording, as Whisper and faster-whisper do). Each window is decoded with timestamp tokens under
Whisper's timestamp rules (a window starts with a timestamp of at most 1 s, timestamps come in
pairs and never go back, text is suppressed when the timestamps are more likely); the window's
segments are its text between timestamp pairs, and the next window starts at the last complete
segment's end (the whole window when it ended on a single timestamp). The previous windows' tokens
(at most 223) prompt the next one (``condition_on_previous_text``, reset after a window decoded at a
temperature above 0.5). A window whose text repeats itself (gzip compression ratio above 2.4) or
is unlikely (average log-probability below -1) is decoded again at the next temperature (0.2,
0.4, ... 1.0, best of 5 samples); a window the model calls silent (no-speech probability above
0.6 and an unlikely text) is skipped. Word times come from the alignment heads (DTW) over the
window, as :mod:`hubbub.models.whisper_decoding` times single utterances.

    segments = transcribe_long(model, wav)              # (T,) at 16 kHz
    for s in segments:
        print(f"{s.start:.2f}-{s.end:.2f} {s.text}")
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from hubbub.models.hypothesis import WordTiming, inference
from hubbub.models.whisper import HOP, N_FFT, SAMPLE_RATE, WhisperASR
from hubbub.models.whisper_decoding import alignment_matrix, compression_ratio, word_times

__all__ = ["LongFormOptions", "LongSegment", "WindowResult", "transcribe_long"]

#: log-mel frames per timestamp step (20 ms): two 10-ms frames
INPUT_STRIDE = 2
#: seconds per timestamp token step
TIME_PRECISION = 0.02
#: latest first timestamp of a window (s)
MAX_INITIAL_TIMESTAMP = 1.0
#: marks that end a sentence (for the bound on words that swallowed a pause)
SENTENCE_END = ".。!！?？"


@dataclass(frozen=True)
class LongFormOptions:
    """How to read a long recording (the keywords of ``whisper.transcribe``, given once).

    temperatures: tried in order until a window passes the checks below (0: greedy).
    best_of: samples drawn at a temperature above 0; the likeliest is kept.
    compression_ratio_threshold: a text whose gzip ratio is above this repeats itself: fall back.
    logprob_threshold: an average log-probability below this is unlikely: fall back.
    no_speech_threshold: a window whose no-speech probability is above this, with an unlikely
        text, is silence: skipped.
    condition_on_previous_text: the previous windows' tokens prompt the next window.
    initial_prompt: text that prompts the first window.
    word_timestamps: time each word (and start the next window after the last word).
    seed: of the sampling at temperatures above 0 (so that a reading is reproducible).
    """

    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    best_of: int = 5
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    condition_on_previous_text: bool = True
    initial_prompt: str | None = None
    word_timestamps: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperatures", tuple(float(t) for t in self.temperatures))
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise ValueError(f"temperatures must be >= 0 and not empty, got {self.temperatures}")
        if self.best_of < 1:
            raise ValueError(f"best_of must be at least 1, got {self.best_of}")


@dataclass(frozen=True)
class LongSegment:
    """One segment of the reading: times in seconds from the start of the recording."""

    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    words: tuple[WordTiming, ...] = ()
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0


@dataclass(frozen=True)
class WindowResult:
    """One decode of one window: ``tokens`` (text and timestamp ids, no end of text)."""

    tokens: tuple[int, ...]
    text: str
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    temperature: float


def long_logmel(model: WhisperASR, wav: torch.Tensor, block: int = 30000) -> torch.Tensor:
    """``model.logmel`` of a ``(T,)`` recording of any length, computed ``block`` frames at a time
    (the STFT of an hour would need 0.6 GB at once): the same frames, the same peak normalisation."""
    logmel = model.logmel
    x = F.pad(wav.float().reshape(-1).to(logmel.window.device), (0, HOP))
    n_frames = x.shape[-1] // HOP - 1  # as WhisperLogMel: the STFT's last frame and the padding's dropped
    if n_frames < 1:
        return logmel(wav.float().reshape(-1))
    pad = N_FFT // 2
    x = F.pad(x[None, None], (pad, pad), mode="reflect")[0, 0]  # the centred STFT's own padding
    parts = []
    for f0 in range(0, n_frames, block):
        f1 = min(n_frames, f0 + block)
        piece = x[f0 * HOP : (f1 - 1) * HOP + N_FFT]
        spec = torch.stft(piece, N_FFT, HOP, window=logmel.window, center=False, return_complex=True)
        parts.append((logmel.filters @ (spec.abs() ** 2)).clamp(min=1e-10).log10())
    log_spec = torch.cat(parts, dim=-1)
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def special_ids(model: WhisperASR) -> dict[str, int]:
    """``sot_prev`` and ``no_speech`` ids: they precede ``<|notimestamps|>`` in every Whisper vocabulary."""
    no_ts = model.config.no_timestamps
    return {"sot_prev": no_ts - 2, "no_speech": no_ts - 1}


def _rules(model: WhisperASR, logits: torch.Tensor, seq: list[int], max_initial: int) -> torch.Tensor:
    """Whisper's logit filters for transcription with timestamps, for one row: ``(V,)`` -> ``(V,)``."""
    cfg = model.config
    tb = cfg.timestamp_begin
    logits = logits.clone()
    logits[list(cfg.suppress_ids)] = float("-inf")
    logits[cfg.eot + 1 : tb] = float("-inf")  # every special token but end of text (notimestamps included)
    if not seq:
        if cfg.suppress_ids_begin:
            logits[list(cfg.suppress_ids_begin)] = float("-inf")
        logits[:tb] = float("-inf")  # a window starts with a timestamp ...
        logits[tb + max_initial + 1 :] = float("-inf")  # ... of at most MAX_INITIAL_TIMESTAMP
        return logits
    last_ts = seq[-1] >= tb
    penultimate_ts = len(seq) < 2 or seq[-2] >= tb
    if last_ts:
        if penultimate_ts:  # a pair just closed: text (or end of text) follows
            logits[tb:] = float("-inf")
        else:  # a segment's end: a timestamp or end of text
            logits[: cfg.eot] = float("-inf")
    stamps = [t for t in seq if t >= tb]
    if stamps:  # timestamps never go back (and a new segment starts after the last one's end)
        floor = stamps[-1] if last_ts and not penultimate_ts else stamps[-1] + 1
        logits[tb:floor] = float("-inf")
    logp = logits.float().log_softmax(-1)
    if torch.logsumexp(logp[tb:], -1) > logp[:tb].max():  # a timestamp is likelier than any text token
        logits[:tb] = float("-inf")
    return logits


def decode_window(model: WhisperASR, memory: torch.Tensor, prompt: list[int], temperature: float = 0.0,
                  best_of: int = 1, generator: torch.Generator | None = None) -> WindowResult:
    """Decode one window's ``(1, S, D)`` memory with timestamps, after ``prompt`` (earlier tokens).

    Greedy at temperature 0; otherwise ``best_of`` samples, the one with the highest
    ``sum log p / (len + 1)`` kept. Returns the tokens up to (not including) end of text.
    """
    cfg = model.config
    ids = special_ids(model)
    sot_seq = [t for t in cfg.prompt if t != cfg.no_timestamps]
    context = [ids["sot_prev"], *prompt[-(cfg.n_text_ctx // 2 - 1) :]] if prompt else []
    initial = [*context, *sot_seq]
    limit = min(cfg.n_text_ctx // 2, cfg.n_text_ctx - len(initial))
    n = 1 if temperature == 0 else best_of
    mem = memory.expand(n, -1, -1)
    cache: dict = {}
    logits, _ = model.decoder(torch.tensor([initial] * n, device=memory.device), mem, cache=cache)
    no_speech = float(logits[0, len(context)].float().softmax(-1)[ids["no_speech"]])
    max_initial = round(MAX_INITIAL_TIMESTAMP / TIME_PRECISION)
    offset = len(initial)
    seqs: list[list[int]] = [[] for _ in range(n)]
    sums = [0.0] * n
    done = [False] * n
    last = logits[:, -1]
    for _ in range(limit):
        nxt = []
        for i in range(n):
            if done[i]:
                nxt.append(cfg.eot)
                continue
            filtered = _rules(model, last[i], seqs[i], max_initial).float()
            logp = filtered.log_softmax(-1)
            if temperature == 0:
                tok = int(logp.argmax())
            else:
                tok = int(torch.multinomial((filtered / temperature).softmax(-1), 1, generator=generator))
            sums[i] += float(logp[tok])
            if tok == cfg.eot:
                done[i] = True
            else:
                seqs[i].append(tok)
            nxt.append(tok)
        if all(done):
            break
        logits, _ = model.decoder(torch.tensor(nxt, device=memory.device)[:, None], mem, cache=cache, offset=offset)
        offset += 1
        last = logits[:, -1]
    best = max(range(n), key=lambda i: sums[i] / (len(seqs[i]) + 1))
    tokens = seqs[best]
    text = model.tokenizer.decode(tokens).strip() if model.tokenizer is not None else ""
    return WindowResult(tuple(tokens), text, sums[best] / (len(tokens) + 1), compression_ratio(text), no_speech,
                        temperature)


def _fallback(model: WhisperASR, memory: torch.Tensor, prompt: list[int], options: LongFormOptions,
              generator: torch.Generator) -> WindowResult:
    """The first temperature whose decode neither repeats itself nor is unlikely (Whisper's rule)."""
    result = None
    for t in options.temperatures:
        result = decode_window(model, memory, prompt, t, options.best_of, generator)
        too_repetitive = (options.compression_ratio_threshold is not None
                          and result.compression_ratio > options.compression_ratio_threshold)
        too_unlikely = options.logprob_threshold is not None and result.avg_logprob < options.logprob_threshold
        silent = (options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold
                  and too_unlikely)
        if silent or not (too_repetitive or too_unlikely):
            break
    return result


def _segments(model: WhisperASR, result: WindowResult, offset: float, size: int) -> tuple[list[tuple], int]:
    """Split a window's tokens at timestamp pairs: ``[(start, end, text tokens, all tokens)]`` in
    seconds, and how many log-mel frames the window consumed (where the next one starts)."""
    tb = model.config.timestamp_begin
    tokens = list(result.tokens)
    is_ts = [t >= tb for t in tokens]
    single_ending = len(is_ts) >= 2 and is_ts[-2:] == [False, True]
    cuts = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    out = []
    if cuts:
        slices = cuts + [len(tokens)] if single_ending else cuts
        start = 0
        for end in slices:
            part = tokens[start:end]
            if len(part) >= 2 and part[0] >= tb and part[-1] >= tb:
                out.append((offset + (part[0] - tb) * TIME_PRECISION, offset + (part[-1] - tb) * TIME_PRECISION,
                            [t for t in part if t < tb], part))
            start = end
        consumed = size if single_ending else (tokens[cuts[-1] - 1] - tb) * INPUT_STRIDE
    else:
        stamps = [t for t in tokens if t >= tb]
        duration = size * HOP / SAMPLE_RATE
        if stamps and stamps[-1] != tb:
            duration = (stamps[-1] - tb) * TIME_PRECISION
        text = [t for t in tokens if t < tb]
        if text:
            out.append((offset, offset + duration, text, tokens))
        consumed = size
    return out, max(1, min(size, consumed))


def transcribe_long(model: WhisperASR, wav: torch.Tensor, options: LongFormOptions | None = None,
                    progress=None) -> list[LongSegment]:
    """Read a ``(T,)`` 16 kHz recording of any length as Whisper does (module docstring).

    ``progress(seconds_done, seconds_total)`` is called after each window. Returns the segments in
    time order, each with its words when ``options.word_timestamps``.
    """
    options = options or LongFormOptions()
    cfg = model.config
    window = 2 * cfg.n_audio_ctx  # 3000 log-mel frames: 30 s
    generator = torch.Generator().manual_seed(options.seed)
    out: list[LongSegment] = []
    with inference(model):
        mel = long_logmel(model, wav)  # (n_mels, F): the whole recording, normalised by its own peak
        frames = mel.shape[-1]
        total = frames * HOP / SAMPLE_RATE
        prompt: list[int] = []
        if options.initial_prompt and model.tokenizer is not None:
            prompt = model.tokenizer.encode(" " + options.initial_prompt.strip())
        reset_since = 0
        seek = 0
        while seek < frames:
            size = min(window, frames - seek)
            part = torch.nn.functional.pad(mel[:, seek : seek + size], (0, window - size))[None]
            memory, _ = model.encode(part, torch.tensor([size], device=part.device))
            offset = seek * HOP / SAMPLE_RATE
            result = _fallback(model, memory, prompt[reset_since:], options, generator)
            skip = (options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold
                    and not (options.logprob_threshold is not None
                             and result.avg_logprob > options.logprob_threshold))
            if skip:
                seek += size
            else:
                found, consumed = _segments(model, result, offset, size)
                found = [f for f in found if f[2]]  # segments with text
                words = _window_words(model, memory, found, offset, size) if options.word_timestamps else None
                window_segments = []
                for k, (start, end, text_tokens, all_tokens) in enumerate(found):
                    seg_words = tuple(words[k]) if words is not None else ()
                    if seg_words:
                        start, end = seg_words[0].start, seg_words[-1].end
                    end = min(end, offset + size * HOP / SAMPLE_RATE)
                    text = model.tokenizer.decode(text_tokens).strip() if model.tokenizer is not None else ""
                    window_segments.append(LongSegment(
                        round(start, 3), round(max(end, start), 3), text, tuple(all_tokens), seg_words,
                        result.avg_logprob, result.compression_ratio, result.no_speech_prob, result.temperature))
                out.extend(window_segments)
                prompt.extend(t for f in found for t in f[3])
                if consumed < size and words is not None and window_segments and window_segments[-1].words:
                    # Whisper with word times: the next window starts at the last word's end
                    last_end = window_segments[-1].words[-1].end
                    if last_end > offset:
                        consumed = max(1, round((last_end - offset) * SAMPLE_RATE / HOP))
                seek += consumed
            if not options.condition_on_previous_text or result.temperature > 0.5:
                reset_since = len(prompt)
            if progress is not None:
                progress(min(seek, frames) * HOP / SAMPLE_RATE, total)
    return out


def _window_words(model: WhisperASR, memory: torch.Tensor, found: list[tuple], offset: float,
                  size: int) -> list[list[WordTiming]] | None:
    """Words of each segment of a window, timed by one alignment of all its text tokens."""
    if model.tokenizer is None or not found:
        return None
    text = [t for f in found for t in f[2]]
    seconds = size * HOP / SAMPLE_RATE
    matrix, _ = alignment_matrix(model, memory, text, max(1, min(memory.shape[1], size // INPUT_STRIDE)))
    timed = word_times(model, text, matrix, seconds)
    owner = []  # segment of each text token position
    for k, f in enumerate(found):
        owner += [k] * len(f[2])
    timed = _bounded(list(timed))
    out: list[list[WordTiming]] = [[] for _ in found]
    for w, (_, positions) in zip(timed, model.tokenizer.words(text)):
        out[owner[positions[0]]].append(dataclasses.replace(w, start=round(offset + w.start, 3),
                                                            end=round(offset + w.end, 3)))
    return out


def _bounded(words: list[WordTiming]) -> list[WordTiming]:
    """Whisper's bound on words that swallowed a pause: a word longer than twice the median word
    (the median at most 0.7 s) that ends a sentence keeps only that much after its start; one that
    starts a sentence keeps only that much before its end."""
    durations = [w.end - w.start for w in words if w.end > w.start]
    if not durations:
        return words
    longest = 2 * min(0.7, float(sorted(durations)[len(durations) // 2]))
    out = list(words)
    for i, w in enumerate(out):
        if w.end - w.start <= longest:
            continue
        if w.word[-1:] in SENTENCE_END:
            out[i] = dataclasses.replace(w, end=round(w.start + longest, 3))
        elif i > 0 and out[i - 1].word[-1:] in SENTENCE_END:
            out[i] = dataclasses.replace(w, start=round(w.end - longest, 3))
    return out
