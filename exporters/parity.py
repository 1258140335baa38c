"""Numerical parity between a reference network (TensorFlow) and its export (ONNX Runtime).

Two things are compared on every frame: the raw outputs (maximum absolute difference per output)
and the keypoints after DeepLabCut's pose math (largest distance in network-input pixels). The
second is what an experiment sees; the first catches drift that happens not to move a peak on the
frames at hand.

A keypoint whose score map has several cells within ``raw_tolerance`` of its maximum can
legitimately land on a different cell after a rounding-level change. When the export's keypoint
matches the reference keypoint placed at one of those tied cells, it is counted as a *near tie*
and measured against that cell, not treated as a failure (only when ``tolerance_px`` is set).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realtime_pose.inference.peaks import find_peaks_reference

#: A network run on one RGB uint8 ``[H, W, 3]`` frame, batch axis dropped. Keys: ``scmap``
#: ``[K, h, w]`` and ``locref`` ``[2K, h, w]`` (NCHW), or ``keypoints`` ``[K, 3]``.
NetworkFn = Callable[[np.ndarray], dict[str, np.ndarray]]


log = logging.getLogger(__name__)


class ParityError(RuntimeError):
    """The exported graph disagrees with the reference beyond tolerance."""

    def __init__(self, report: ParityReport, what: str = "export") -> None:
        super().__init__(f"{what} failed the parity check: {report.describe()}")
        self.report = report


@dataclass(frozen=True)
class ParityReport:
    """Outcome of :func:`check_parity`.

    Attributes
    ----------
    frames
        Number of frames compared.
    source
        Where the frames came from (``"project test split"``, ``"synthetic"``, ...).
    raw_max_abs_diff
        Per output name, the largest absolute difference over all frames.
    keypoints_max_px_diff
        Largest keypoint distance (network-input pixels) over all frames and keypoints
        (a near tie is measured against the tied cell it chose).
    keypoints_mean_px_diff
        Mean keypoint distance.
    near_ties
        Keypoints whose score map had several cells within ``raw_tolerance`` of the maximum,
        where the two sides picked different ones.
    raw_tolerance, tolerance_px
        The limits the check applied.
    """

    frames: int
    source: str
    raw_max_abs_diff: dict[str, float]
    keypoints_max_px_diff: float
    keypoints_mean_px_diff: float
    near_ties: int
    raw_tolerance: float | None
    tolerance_px: float | None
    frame_shapes: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every difference is within its tolerance (``None`` = not checked)."""
        raw_ok = self.raw_tolerance is None or all(
            d <= self.raw_tolerance for d in self.raw_max_abs_diff.values()
        )
        px_ok = self.tolerance_px is None or self.keypoints_max_px_diff <= self.tolerance_px
        return raw_ok and px_ok

    def describe(self) -> str:
        """One line for logs and error messages."""
        raw = ", ".join(f"{k} {v:.3g}" for k, v in sorted(self.raw_max_abs_diff.items()))
        tol_raw = "unchecked" if self.raw_tolerance is None else f"{self.raw_tolerance:g}"
        tol_px = "unchecked" if self.tolerance_px is None else f"{self.tolerance_px:g} px"
        return (
            f"max abs diff of raw outputs: {raw} (tolerance {tol_raw}); keypoints max "
            f"{self.keypoints_max_px_diff:.4g} px, mean {self.keypoints_mean_px_diff:.4g} px "
            f"(tolerance {tol_px}); {self.near_ties} near ties; {self.frames} frames "
            f"({self.source})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``bundle.json`` provenance."""
        return {
            "frames": self.frames,
            "source": self.source,
            "frame_shapes": [list(s) for s in sorted(set(self.frame_shapes))],
            "raw_max_abs_diff": {k: float(v) for k, v in sorted(self.raw_max_abs_diff.items())},
            "keypoints_max_px_diff": float(self.keypoints_max_px_diff),
            "keypoints_mean_px_diff": float(self.keypoints_mean_px_diff),
            "near_ties": self.near_ties,
            "raw_tolerance": self.raw_tolerance,
            "tolerance_px": self.tolerance_px,
            "passed": self.ok,
        }


def _tied_alternative_dist(
    ref: dict[str, np.ndarray],
    j: int,
    xy: np.ndarray,
    stride: float,
    locref_stdev: float,
    tol: float,
) -> float:
    """Distance from ``xy`` to the nearest reference keypoint ``j`` placed at any cell whose
    score is within ``tol`` of the maximum (``inf`` when there is no such other cell)."""
    scmap = ref["scmap"][j]
    width = scmap.shape[1]
    flat = scmap.ravel().astype(np.float64)
    cells = np.flatnonzero(flat >= flat.max() - tol)
    if cells.size < 2:
        return float("inf")
    iy, ix = np.divmod(cells, width)
    x = ix * stride + stride / 2
    y = iy * stride + stride / 2
    locref = ref.get("locref")
    if locref is not None:
        x = x + locref_stdev * locref[2 * j].ravel()[cells]
        y = y + locref_stdev * locref[2 * j + 1].ravel()[cells]
    return float(np.min(np.hypot(x - xy[0], y - xy[1])))


def check_parity(
    reference: NetworkFn,
    candidate: NetworkFn,
    frames: Iterable[np.ndarray],
    *,
    stride: float,
    locref_stdev: float,
    raw_tolerance: float | None = 1e-3,
    tolerance_px: float | None = 0.01,
    source: str = "frames",
) -> ParityReport:
    """Run both networks on ``frames`` and compare raw outputs and keypoints.

    Parameters
    ----------
    reference
        The original network; must return ``scmap`` (and ``locref`` when it has one), and may
        return its own ``keypoints`` (then used instead of the pose math on its maps).
    candidate
        The exported network; returns maps (compared raw and after the pose math) or
        ``keypoints`` (in-graph peaks; compared with the pose math on the reference maps).
    frames
        RGB uint8 ``[H, W, 3]`` frames.
    stride, locref_stdev
        For the pose math.
    raw_tolerance, tolerance_px
        Limits for :attr:`ParityReport.ok`; ``None`` reports without judging.
    source
        Description of the frames, kept in the report.
    """
    raw_max: dict[str, float] = {}
    dists: list[np.ndarray] = []
    near_ties = 0
    shapes: list[tuple[int, int]] = []
    tie_tol = raw_tolerance if raw_tolerance is not None else 1e-6
    for frame in frames:
        shapes.append((int(frame.shape[0]), int(frame.shape[1])))
        ref = reference(frame)
        cand = candidate(frame)
        if "keypoints" in ref:
            ref_kp = np.asarray(ref["keypoints"], dtype=np.float64).reshape(-1, 3)
        else:
            ref_kp = find_peaks_reference(
                ref["scmap"], ref.get("locref"), stride, locref_stdev, dtype=np.float64
            )
        if "keypoints" in cand:
            cand_kp = np.asarray(cand["keypoints"], dtype=np.float64).reshape(-1, 3)
        else:
            cand_kp = find_peaks_reference(
                cand["scmap"], cand.get("locref"), stride, locref_stdev, dtype=np.float64
            )
        for name, value in cand.items():
            if name == "keypoints":
                ref_value = ref_kp[:, 2]
                value = cand_kp[:, 2]
                name = "keypoints.likelihood"
            elif name in ref:
                ref_value = ref[name]
            else:
                continue
            if np.shape(value) != np.shape(ref_value):
                raise ValueError(
                    f"output {name!r} has shape {np.shape(value)} in the export but "
                    f"{np.shape(ref_value)} in the reference (frame {len(shapes) - 1})"
                )
            diff = float(np.max(np.abs(np.asarray(value, np.float64) - ref_value)))
            raw_max[name] = max(raw_max.get(name, 0.0), diff)
        dist = np.hypot(cand_kp[:, 0] - ref_kp[:, 0], cand_kp[:, 1] - ref_kp[:, 1])
        if tolerance_px is not None:
            for j in np.flatnonzero(dist > tolerance_px):
                alt = _tied_alternative_dist(ref, j, cand_kp[j], stride, locref_stdev, tie_tol)
                if alt <= tolerance_px:
                    near_ties += 1
                    dist[j] = alt
        dists.append(dist)
    if not shapes:
        raise ValueError("parity check needs at least one frame")
    all_d = np.concatenate(dists)
    return ParityReport(
        frames=len(shapes),
        source=source,
        raw_max_abs_diff=raw_max,
        keypoints_max_px_diff=float(all_d.max()) if all_d.size else 0.0,
        keypoints_mean_px_diff=float(all_d.mean()) if all_d.size else 0.0,
        near_ties=near_ties,
        raw_tolerance=raw_tolerance,
        tolerance_px=tolerance_px,
        frame_shapes=shapes,
    )


def require_parity(
    reference: NetworkFn,
    candidate: NetworkFn,
    frames: Iterable[np.ndarray],
    *,
    label: str,
    what: str,
    **kwargs: Any,
) -> ParityReport:
    """:func:`check_parity`, logged as ``parity of <label>``; raise :class:`ParityError` naming
    ``what`` (e.g. ``export of /runs/x``) when it fails. ``kwargs`` go to :func:`check_parity`."""
    report = check_parity(reference, candidate, frames, **kwargs)
    log.info("parity of %s: %s", label, report.describe())
    if not report.ok:
        raise ParityError(report, what)
    return report


def ort_network(model: bytes | str, *, threads: int | None = None) -> NetworkFn:
    """An ONNX Runtime CPU session as a :data:`NetworkFn` (outputs keyed by graph name).

    The graph's outputs must be batch-1 NCHW maps (``scmap``, ``locref``) or ``keypoints``.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    input_name = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]

    def run(frame: np.ndarray) -> dict[str, np.ndarray]:
        results = sess.run(None, {input_name: np.ascontiguousarray(frame[None])})
        return {name: r[0] for name, r in zip(names, results, strict=True)}

    return run
