"""Reading spans of voice files with the ASR: :func:`decode_spans` decodes ``(file, rate, start, end)``
spans in batches (with the maps the demo shows, where asked), :func:`read_on` decodes again from the last
word where a decode stopped early. The pipeline's turns reading and its overlap reads go through them."""

from __future__ import annotations

import contextlib

import torch

from hubbub.pipeline.audio import resample
from hubbub.pipeline.heap import trim_heap
from hubbub.pipeline.maps import asr_details
from hubbub.pipeline.result import Segment, Word

__all__ = ["ASR_BATCH", "decode_spans", "encoder_maps", "read_on", "read_span"]

#: spans decoded together in one ASR batch
ASR_BATCH = 8


def read_span(path, sample_rate: int, start: float, end: float) -> torch.Tensor:
    """Samples ``[start, end)`` seconds of a mono audio file."""
    import soundfile as sf

    a, b = int(start * sample_rate), int(end * sample_rate)
    data, _ = sf.read(str(path), start=a, stop=b, dtype="float32", always_2d=True)
    return torch.from_numpy(data.mean(axis=1))


@contextlib.contextmanager
def encoder_maps(asr, store: list):
    """While active, every pass of ``asr``'s time-frequency block also computes its 2D-attention maps
    (``store`` gets one list of :class:`~hubbub.models.attention.TwoDMaps` per pass); a model without
    the block gives no maps."""
    block = getattr(asr, "tf", None)

    def ask(module, args, kwargs):
        return args, {**kwargs, "need_weights": True}

    def keep(module, args, kwargs, output):
        store.append([output[1]])

    if block is None:
        yield
        return
    hooks = [block.register_forward_pre_hook(ask, with_kwargs=True),
             block.register_forward_hook(keep, with_kwargs=True)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def decode_spans(asr, decoding, device, spans: list[tuple], detail: set[int] = frozenset(), progress=None
                 ) -> list[tuple]:
    """Decode ``(voice file, sample_rate, start, end)`` spans with ``asr`` as ``decoding`` says
    (:class:`~hubbub.models.decoding.DecodingOptions`), ``ASR_BATCH`` at a time in order of length
    (little padding), on ``device``.

    Returns one ``(Segment or None, details or None)`` per span: None where nothing
    was said; details (:func:`~hubbub.pipeline.maps.asr_details`) for the spans
    in ``detail``, from the same encoder and decoder passes.
    """
    from hubbub.models.attention import TwoDMaps
    from hubbub.models.decoding import decode

    if asr is None or not spans:
        return [(None, None)] * len(spans)
    asr_sr = asr.sample_rate
    order = sorted(range(len(spans)), key=lambda i: spans[i][3] - spans[i][2], reverse=True)
    out: list[tuple] = [(None, None)] * len(spans)
    for i in range(0, len(order), ASR_BATCH):
        group = order[i : i + ASR_BATCH]
        pieces = [resample(read_span(*spans[j]), spans[j][1], asr_sr) for j in group]
        lengths = torch.tensor([len(p) for p in pieces])
        batch = torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True).to(device)
        want = any(j in detail for j in group)
        maps: list = []
        with encoder_maps(asr, maps) if want else contextlib.nullcontext():
            hyps = decode(asr, batch, lengths, decoding, return_cross_attention=want)
        for b, (j, hyp) in enumerate(zip(group, hyps)):
            start, end = spans[j][2], spans[j][3]
            seg = None
            text = hyp.text.strip()
            if text:
                words = tuple(Word(w.word, round(start + w.start, 3), round(start + w.end, 3))
                              for w in hyp.words)
                seg = Segment(start, end, text, words)
            info = None
            if j in detail:
                one = [TwoDMaps(m.time[b : b + 1], m.freq[b : b + 1]) for m in (maps[0] if maps else [])]
                info = asr_details(asr, one, hyp, hyp.cross_attention.shape[-1], offset=start)
            out[j] = (seg, info)
        del batch, hyps, maps, pieces
        trim_heap()
        if progress is not None:
            progress(sum(spans[j][3] - spans[j][2] for j in group))
    return out


def read_on(decode_once, spans: list[tuple], read_on: float, detail: set[int] = frozenset(), progress=None
            ) -> list[tuple]:
    """Decode ``(voice file, sample_rate, start, end)`` spans with ``decode_once`` (:func:`decode_spans`),
    and read on where a decode stopped early: Whisper may end its text before the end of its audio,
    mostly after a change of voice, so a span whose words end ``read_on`` seconds or
    more before its end is decoded again from its last word (as Whisper's long-form
    transcription seeks on from its last timestamp), at most three times. Returns one
    ``(Segment or None, details or None)`` per span. ``progress(seconds)``: called after each
    batch of the first pass with the seconds of the spans it decoded."""
    out = decode_once(spans, detail, progress)
    todo = list(range(len(spans))) if read_on > 0 else []
    for _ in range(3):
        rest, where = [], []
        for j in todo:
            seg = out[j][0]
            source, sr, start, end = spans[j]
            if seg is not None and seg.words and end - seg.words[-1].end >= read_on:
                rest.append((source, sr, seg.words[-1].end, end))
                where.append(j)
        if not rest:
            break
        todo = []
        for j, (more, _) in zip(where, decode_once(rest)):
            if more is None or not more.words:
                continue
            seg = out[j][0]
            words = seg.words + more.words
            out[j] = (Segment(seg.start, seg.end, " ".join(w.word for w in words), words), out[j][1])
            todo.append(j)
    return out
