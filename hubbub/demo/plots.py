"""Figures of the demo, drawn from :mod:`hubbub.pipeline.maps` and :class:`Result`.

Every function makes a NEW :class:`matplotlib.figure.Figure` on an Agg canvas
(never pyplot's current figure, so calls from concurrent requests do not
interfere) with a title and labelled axes. ``gr.Plot`` encodes the figure and
closes it; :func:`close` does the same for a figure that is not handed over.
Times are seconds in the recording, frequencies Hz.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import librosa.display  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import PowerNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

__all__ = [
    "asr_attention_figure",
    "close",
    "cross_attention_figure",
    "separator_attention_figure",
    "spectrogram_figure",
    "timeline_figure",
]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
WIDTH = 11.0
TIMELINE_WIDTH = 8.5  # it sits in the demo's narrower right-hand column


def _figure(height: float, width: float = WIDTH) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def close(fig: Figure | None) -> None:
    """Release a figure (also one that pyplot never knew about)."""
    if fig is None:
        return
    import matplotlib.pyplot as plt

    fig.clear()
    plt.close(fig)


def _names(names, n: int) -> list[str]:
    names = list(names or [])
    return names + [f"spk{k}" for k in range(len(names) + 1, n + 1)]


def _attention_image(ax, data, extent, cmap="magma"):
    finite = data[np.isfinite(data)]
    vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    return ax.imshow(
        np.ma.masked_invalid(data), origin="lower", aspect="auto", extent=extent, cmap=cmap,
        norm=PowerNorm(0.5, vmin=0.0, vmax=vmax), interpolation="nearest",
    )


# --------------------------------------------------------------------------- spectrograms and masks


def spectrogram_figure(details: dict, names=None) -> Figure:
    """The mixture's spectrogram, each separated voice's, and the separator's masks.

    ``details`` is :func:`~hubbub.pipeline.maps.separator_details` output, or
    just ``{"mixture_spec": spectrogram(...)}`` (no separation: mixture only).
    """
    mix = details["mixture_spec"]
    specs = list(details.get("source_specs") or [])
    masks = details.get("masks")
    n = len(specs)
    names = _names(names, n)
    rows = 1 + n + (n if masks is not None else 0)
    fig = _figure(1.9 * rows + 0.6)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    title = "Spectrograms and separation masks" if n else "Spectrogram of the recording (not separated)"
    if details.get("truncated"):
        title += f" (first {details['seconds']:.1f} s)"
    fig.suptitle(title, fontsize=13)
    panels = [("mixture", mix)] + [(f"{name} (separated)", s) for name, s in zip(names, specs)]
    img = None
    for ax, (label, spec) in zip(axes, panels):
        img = librosa.display.specshow(
            spec["db"], sr=spec["sample_rate"], hop_length=spec["hop_length"], n_fft=spec["n_fft"],
            x_axis="s", y_axis="hz", ax=ax, cmap="magma", vmin=-80, vmax=0,
        )
        ax.set_title(f"{label}: spectrogram", fontsize=10, loc="left")
        ax.set_ylabel("frequency (Hz)")
        ax.set_xlabel("")
    if img is not None:
        fig.colorbar(img, ax=list(axes[: 1 + n]), format="%+.0f dB", label="level (dB)", pad=0.01)
    if masks is not None:
        times = details["mask_times"]
        hz = details["mask_channel_hz"]
        step = (times[1] - times[0]) if len(times) > 1 else details.get("frame_seconds", 0.0)
        extent = [times[0], times[-1] + step, 0, masks.shape[1]]
        mimg = None
        for ax, name, mask in zip(axes[1 + n :], names, masks):
            mimg = ax.imshow(mask, origin="lower", aspect="auto", extent=extent, cmap="viridis",
                             vmin=0.0, vmax=max(1.0, float(np.percentile(masks, 99.5))), interpolation="nearest")
            ticks = np.linspace(0, masks.shape[1] - 1, 5).astype(int)
            ax.set_yticks(ticks + 0.5, [f"{hz[t]:.0f}" for t in ticks])
            ax.set_ylabel("filter peak (Hz)")
            ax.set_title(f"{name}: mask on the learned encoder filters (sorted by frequency)", fontsize=10, loc="left")
            ax.set_xlabel("")
        fig.colorbar(mimg, ax=list(axes[1 + n :]), label="mask", pad=0.01)
    axes[-1].set_xlabel("time (s)")
    return fig


# --------------------------------------------------------------------------- timeline


def timeline_figure(result, activity=None, title: str = "Who spoke when") -> Figure:
    """One row per speaker: a bar per transcribed segment with its text.

    ``activity``: optional per-speaker ``[(start, end), ...]`` speech regions,
    drawn as light bars (what a speaker-attributed timeline looks like before
    there is a transcript).
    """
    speakers = result.speakers
    n = max(1, len(speakers))
    fig = _figure(1.1 + 0.9 * n, width=TIMELINE_WIDTH)
    ax = fig.add_subplot()
    duration = max(float(result.duration), 1e-3)
    any_bar = False
    for row, spk in enumerate(speakers):
        y = n - 1 - row
        color = COLORS[row % len(COLORS)]
        regions = (activity[row] if activity is not None and row < len(activity) else None) or []
        if regions:
            ax.broken_barh([(s, e - s) for s, e in regions], (y - 0.3, 0.6), facecolors=color, alpha=0.25,
                           edgecolor=color, linewidth=0.8)
            any_bar = True
        for seg in spk.segments:
            ax.broken_barh([(seg.start, seg.end - seg.start)], (y - 0.3, 0.6), facecolors=color, alpha=0.85)
            text = seg.text if len(seg.text) <= 60 else seg.text[:57] + "..."
            ax.text(seg.start, y + 0.36, text, fontsize=8, va="bottom", ha="left", clip_on=True)
            any_bar = True
    ax.set_yticks(range(n), [s.id for s in reversed(speakers)] or ["-"])
    ax.set_ylim(-0.6, n - 0.1)
    ax.set_xlim(0, duration)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("speaker")
    ax.grid(axis="x", alpha=0.3)
    if not any_bar:
        ax.text(duration / 2, (n - 1) / 2, "no speech found", ha="center", va="center", color="gray")
    elif activity is not None and not any(s.segments for s in speakers):
        title += " (speech regions; no transcript)"
    ax.set_title(title, fontsize=13)
    return fig


# --------------------------------------------------------------------------- separator attention


def separator_attention_figure(details: dict) -> Figure:
    """Last-block separator attention on the recording's time axis.

    Left: intra-chunk (local) attention pooled over the whole recording, query
    time against key time; middle: the loudest chunk's own map; right:
    inter-chunk attention between chunk centres (global, or banded when the
    window is local).
    """
    fig = _figure(4.2)
    axes = fig.subplots(1, 3)
    window = details.get("inter_window")
    mode = "global" if window is None else f"local, window {window} chunks"
    title = (f"Separator attention, last dual-path block (#{details['n_blocks']}), mean over heads; "
             f"inter-chunk: {mode}")
    if details.get("truncated"):
        title += f", first {details['seconds']:.1f} s"
    fig.suptitle(title, fontsize=13)
    seconds = details["seconds"]
    if "intra" not in details:
        for ax in axes:
            ax.set_axis_off()
        axes[1].text(0.5, 0.5, "no attention maps", ha="center", va="center")
        return fig

    frame = details["frame_seconds"]
    times = details["intra_times"]
    half = (times[1] - times[0]) / 2 if len(times) > 1 else frame / 2
    img = _attention_image(axes[0], details["intra"], [times[0] - half, times[-1] + half] * 2)
    ct = details["intra_chunk_times"]
    axes[0].add_patch(Rectangle((ct[0], ct[0]), ct[-1] + frame - ct[0], ct[-1] + frame - ct[0], fill=False,
                                edgecolor="cyan", linewidth=1.0))
    axes[0].set_xlim(0, seconds)
    axes[0].set_ylim(0, seconds)
    axes[0].set_title(f"intra-chunk (local, {details['chunk_size']} frames)", fontsize=10)
    axes[0].set_xlabel("key time (s)")
    axes[0].set_ylabel("query time (s)")
    fig.colorbar(img, ax=axes[0], label="weight", pad=0.01)

    img = _attention_image(axes[1], details["intra_chunk"], [ct[0], ct[-1] + frame] * 2)
    axes[1].set_title(f"intra-chunk, chunk {details['intra_chunk_index']} "
                      f"({max(ct[0], 0):.3f}-{ct[-1] + frame:.3f} s)", fontsize=10)
    axes[1].set_xlabel("key time (s)")
    axes[1].set_ylabel("query time (s)")
    fig.colorbar(img, ax=axes[1], label="weight", pad=0.01)

    it = details["inter_times"]
    half = (it[1] - it[0]) / 2 if len(it) > 1 else 0.5
    img = _attention_image(axes[2], details["inter"], [it[0] - half, it[-1] + half] * 2, cmap="viridis")
    axes[2].set_xlim(0, seconds)
    axes[2].set_ylim(0, seconds)
    axes[2].set_title(f"inter-chunk ({'global' if window is None else 'local'}), mean over positions",
                      fontsize=10)
    axes[2].set_xlabel("key chunk centre (s)")
    axes[2].set_ylabel("query chunk centre (s)")
    fig.colorbar(img, ax=axes[2], label="weight", pad=0.01)
    return fig


# --------------------------------------------------------------------------- ASR attention


def asr_attention_figure(details_list, names=None) -> Figure:
    """The ASR's time-frequency (2D) attention (mean over channels):
    time against time and frequency against frequency, one row per voice."""
    n = max(1, len(details_list))
    names = _names(names, n)
    fig = _figure(3.4 * n + 0.5)
    axes = fig.subplots(n, 2, squeeze=False)
    fig.suptitle("ASR 2D attention (first block, mean over channels)", fontsize=13)
    for row, (name, d) in enumerate(zip(names, details_list)):
        ax_t, ax_f = axes[row]
        if "time_attention" not in d:
            for ax in (ax_t, ax_f):
                ax.set_axis_off()
            ax_t.text(0.5, 0.5, f"{name}: no 2D attention block", ha="center", va="center")
            continue
        times = d["times"]
        shift = d["frame_shift"]
        img = _attention_image(ax_t, d["time_attention"], [times[0], times[-1] + shift] * 2)
        ax_t.set_title(f"{name}: time attention, {read_span(d)}", fontsize=10, loc="left")
        ax_t.set_xlabel("key time (s)")
        ax_t.set_ylabel("query time (s)")
        fig.colorbar(img, ax=ax_t, label="weight", pad=0.01)
        hz = d["freq_hz"]
        fa = d["freq_attention"]
        img = ax_f.pcolormesh(hz, hz, fa, shading="nearest", cmap="magma",
                              norm=PowerNorm(0.5, vmin=0.0, vmax=max(float(fa.max()), 1e-6)))
        ax_f.set_title(f"{name}: frequency attention", fontsize=10, loc="left")
        ax_f.set_xlabel("key frequency (Hz)")
        ax_f.set_ylabel("query frequency (Hz)")
        fig.colorbar(img, ax=ax_f, label="weight", pad=0.01)
    return fig


def _token_label(piece: str) -> str:
    piece = piece.replace("\u2581", "_")
    return "[space]" if piece == " " else piece


def read_span(d: dict) -> str:
    """``read of A-B s of the SOURCE``: the stretch a map's read decoded."""
    a = d.get("offset", 0.0)
    b = a + len(d.get("times", ())) * d.get("frame_shift", 0.0)
    return f"read of {a:.2f}-{b:.2f} s" + (f" of the {d['source']}" if d.get("source") else "")


def read_caption(name: str, d: dict, width: int = 90) -> str:
    """What a map spans: the read (its seconds, and of what), its text, and how many of its
    words are ``name``'s (``d["kept"]``; in an overlap the recording's read also hears the other voice)."""
    text = d.get("text") or ""
    shown = text if len(text) <= width else text[: width - 3] + "..."
    head = f"{name}: {read_span(d)}"
    kept = d.get("kept")
    tail = f"\n({sum(kept)} of its {len(kept)} words are in {name}'s transcript)" if kept and not all(kept) else ""
    return f"{head}: \u201c{shown}\u201d{tail}"


def cross_attention_figure(details_list, names=None) -> Figure:
    """Decoder cross-attention: each emitted token (y) against time (x), one panel per voice."""
    n = max(1, len(details_list))
    names = _names(names, n)
    counts = [len(d.get("tokens", [])) for d in details_list] or [1]
    heights = [max(2.0, min(0.1 * c + 1.2, 5.5)) for c in counts]
    fig = _figure(sum(heights) + 0.6)
    axes = fig.subplots(n, 1, squeeze=False, height_ratios=heights)[:, 0]
    fig.suptitle("ASR cross-attention: token-by-time alignment (last decoder layer, mean over heads)", fontsize=13)
    for ax, name, d in zip(axes, names, details_list):
        cross = d.get("cross_attention")
        if cross is None or cross.size == 0:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{name}: nothing decoded", ha="center", va="center")
            continue
        shift, offset = d["frame_shift"], d.get("offset", 0.0)
        extent = [offset, offset + cross.shape[1] * shift, cross.shape[0] - 0.5, -0.5]
        finite = cross[np.isfinite(cross)]
        ax.imshow(cross, aspect="auto", extent=extent, cmap="Greens", interpolation="nearest",
                  vmin=0.0, vmax=max(float(finite.max()) if finite.size else 1.0, 1e-6))
        tokens = [_token_label(t) for t in d["tokens"]]
        every = max(1, -(-len(tokens) // 36))
        idx = list(range(0, len(tokens), every))
        ax.set_yticks(idx, [tokens[i] for i in idx], fontsize=7 if len(tokens) > 25 else 9)
        ax.set_title(read_caption(name, d), fontsize=10, loc="left")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("token")
    return fig
