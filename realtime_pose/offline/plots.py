"""Latency plots people would rather look at than read: per-stage CDFs with p50/p99 marked.

``realtime-pose benchmark`` and ``realtime-pose latency-test`` write one beside their JSON.
matplotlib comes with the ``view`` (and ``train``) extra; without it the plot is skipped with a
one-line note, the JSON is written all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from realtime_pose.util.safe_write import writing
from realtime_pose.util.stats import Summary

log = logging.getLogger(__name__)


def have_matplotlib() -> bool:
    """Whether plots can be drawn here."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def latency_cdf_png(
    path: str | Path,
    panels: Sequence[tuple[str, Mapping[str, np.ndarray]]],
    suptitle: str = "",
    overwrite: bool = False,
) -> Path | None:
    """Write a PNG of latency CDFs: one panel per ``(title, {series name: samples in ns})``,
    each series' p50 (dot) and p99 (cross) marked and listed in the legend.

    Returns the path, or ``None`` (with a logged note) where matplotlib is not installed.
    Raises :class:`~realtime_pose.util.safe_write.OutputExistsError` for an existing file unless
    ``overwrite``.
    """
    if not have_matplotlib():
        log.warning("no plot written: matplotlib is missing (pip install 'realtime-pose[view]')")
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(panels), figsize=(6.4 * len(panels), 4.4), squeeze=False, constrained_layout=True
    )
    for ax, (title, series) in zip(axes[0], panels, strict=True):
        for name, samples_ns in series.items():
            ms = np.sort(np.asarray(samples_ns, dtype=np.float64)) / 1e6
            if ms.size == 0:
                continue
            q = np.arange(1, ms.size + 1) / ms.size
            summary = Summary.of(samples_ns)
            p50, p99 = summary.p50, summary.p99
            (line,) = ax.plot(ms, q, lw=1.4, label=f"{name}: p50 {p50:.3f}, p99 {p99:.3f} ms")
            ax.plot([p50], [0.5], "o", color=line.get_color(), ms=5)
            ax.plot([p99], [0.99], "x", color=line.get_color(), ms=7, mew=2)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of frames at or below")
        ax.set_ylim(0, 1.01)
        ax.axhline(0.5, color="0.8", lw=0.8, zorder=0)
        ax.axhline(0.99, color="0.8", lw=0.8, zorder=0)
        ax.grid(True, which="both", color="0.93")
        ax.set_title(title)
        ax.legend(fontsize=8, loc="lower right")
    if suptitle:
        fig.suptitle(suptitle)
    path = Path(path)
    with writing(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
