"""Whether an engine setting that computes in reduced precision keeps the bundle's accuracy.

An engine section such as ``{kind: openvino, precision: bf16}`` runs the bundle's fp32 graph
with fewer mantissa bits (on CPUs with AMX or AVX-512 BF16 it is much faster at large inputs).
Whether the keypoints survive depends on the network, so it is measured, not assumed: the
bundle's labelled held-out frames (its training project's test split, as ``realtime-pose
evaluate`` reads them) are run on ONNX Runtime in fp32 and on the candidate, and the candidate is
accepted when its mean error grows by at most a tolerance, the same rule ``export --int8``
applies to an int8 graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from realtime_pose.bundle import Bundle
from realtime_pose.geometry import Size

REDUCED_PRECISIONS = frozenset({"bf16", "f16"})
"""Engine ``precision`` values that compute below fp32."""

DEFAULT_PRECISION_TOLERANCE_PX = 0.1
"""Mean held-out error (original-frame px) reduced precision may add: engine precisions and
int8 export alike."""


def is_reduced(section: Mapping[str, Any]) -> bool:
    """Whether an engine section computes in reduced precision."""
    return section.get("precision") in REDUCED_PRECISIONS


def labelled_project(bundle: Bundle, project: str | Path | None = None) -> Path | None:
    """The DeepLabCut project to judge ``bundle`` on: ``project`` when given, else the one its
    provenance names when it is a folder on this machine; ``None`` when there is none."""
    candidate = project or bundle.meta.provenance.get("project")
    if candidate and Path(candidate).expanduser().is_dir():
        return Path(candidate).expanduser()
    return None


def held_out_change(
    bundle: Bundle,
    section: Mapping[str, Any],
    project_dir: str | Path,
    tolerance_px: float = DEFAULT_PRECISION_TOLERANCE_PX,
    input_size: Size | None = None,
) -> dict[str, Any]:
    """Mean error on the project's labelled test frames: ONNX Runtime fp32 vs ``section``.

    ``input_size`` is the network input the rig feeds for a whole frame: what reduced
    precision costs depends on it (measured on openfield: int8 +0.09 px at 640×480, its
    keypoints several px from fp32's at 160×120), so a rig is judged at its own size.

    Returns
    -------
    dict
        ``project``, ``input_size`` and :func:`accuracy_verdict`'s fields: ``frames``,
        ``keypoints``, ``fp32_mean_px``, ``mean_px``, their medians, ``change_px`` (candidate
        minus fp32), ``tolerance_px`` and ``accepted`` (``change_px <= tolerance_px``).

    Raises
    ------
    realtime_pose.trainers.project.ProjectError
        The project or its test split cannot be read.
    realtime_pose.engines.EngineError
        The candidate engine cannot run here.
    """
    from realtime_pose.trainers.evaluate import evaluate

    reference = evaluate(bundle.root, project_dir, split="test", input_size=input_size)
    candidate = evaluate(
        bundle.root, project_dir, split="test", engine=dict(section), input_size=input_size
    )
    return {
        "project": str(project_dir),
        "input_size": list(input_size) if input_size is not None else "training scale",
        **accuracy_verdict(reference, candidate, tolerance_px, source=project_dir),
    }


def accuracy_verdict(
    reference: Mapping[str, Any],
    candidate: Mapping[str, Any],
    tolerance_px: float,
    *,
    source: str | Path,
    name: str = "",
) -> dict[str, Any]:
    """The rule every reduced-precision path is judged by (engine precisions and ``export
    --int8``): the candidate may add at most ``tolerance_px`` to the fp32 mean error.

    ``reference`` and ``candidate`` are :func:`realtime_pose.trainers.evaluate.evaluate` results
    on the same frames; ``name`` prefixes the candidate's keys (``int8`` gives
    ``int8_mean_px``; empty gives ``mean_px``).

    Raises
    ------
    ValueError
        ``source`` (the project) has no labelled keypoints in the frames evaluated.
    """
    if reference["mean_error_px"] is None or candidate["mean_error_px"] is None:
        raise ValueError(f"{source}: the test split has no labelled keypoints")
    prefix = f"{name}_" if name else ""
    change = candidate["mean_error_px"] - reference["mean_error_px"]
    return {
        "frames": reference["n_images"],
        "keypoints": reference["n_keypoints"],
        "fp32_mean_px": round(reference["mean_error_px"], 4),
        f"{prefix}mean_px": round(candidate["mean_error_px"], 4),
        "fp32_median_px": round(reference["median_error_px"], 4),
        f"{prefix}median_px": round(candidate["median_error_px"], 4),
        "change_px": round(change, 4),
        "tolerance_px": tolerance_px,
        "accepted": bool(change <= tolerance_px),
    }


__all__ = [
    "DEFAULT_PRECISION_TOLERANCE_PX",
    "REDUCED_PRECISIONS",
    "accuracy_verdict",
    "held_out_change",
    "is_reduced",
    "labelled_project",
]
