"""Where captured frames go and the capture that puts them there, from the ``capture:`` section.

The frames land in a DeepLabCut project's ``labeled-data/<name>/`` so that the project's own
tools and ``realtime-pose train --from`` find them: the project given in ``capture.project``,
else the bundle's training project (its provenance names it) when it is on this machine, else
a folder ``captures`` beside the recordings (a project of its own, for the labels only).
Used by the live session and by ``analyze --capture``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from realtime_pose.bundle import Bundle
from realtime_pose.inference.doubt import DoubtDetector
from realtime_pose.live.capture import FrameCapture
from realtime_pose.live.run_config import CaptureConfig

log = logging.getLogger(__name__)


def capture_project(config: CaptureConfig, bundle: Bundle, fallback: Path) -> Path:
    """The folder whose ``labeled-data/`` receives the captures (see the module docstring)."""
    if config.project is not None:
        return config.project
    trained_on = bundle.meta.provenance.get("project")
    if trained_on and (Path(trained_on) / "config.yaml").is_file():
        return Path(trained_on)
    return fallback


def project_scorer(project: Path) -> str | None:
    """The ``scorer`` of a DeepLabCut project's ``config.yaml`` (``None``: no project there)."""
    import yaml

    try:
        config = yaml.safe_load((project / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    scorer = config.get("scorer") if isinstance(config, dict) else None
    return str(scorer) if scorer else None


def open_capture(
    config: CaptureConfig,
    bundle: Bundle,
    fallback: Path,
    *,
    name: str | None = None,
    on_event: Callable[[Mapping[str, Any]], object] | None = None,
    block_when_busy: bool = False,
) -> FrameCapture:
    """The capture for ``bundle``'s poses as ``config`` says (one log line says where).

    ``name`` is the default folder name when ``config.name`` is not set (else
    ``<bundle name>-live-<date>-<time>``). ``block_when_busy``: wait for the writer rather
    than drop a capture (offline analysis, where nothing waits for the frame)."""
    meta = bundle.meta
    shape: dict[str, Any] = {"distance_margin": config.distance_margin}
    if config.distance_margin is None:  # body shape not judged
        shape = {"distance_pairs": None, "distance_min_px": None, "distance_max_px": None}
    detector = DoubtDetector.from_bundle_meta(
        meta,
        min_likelihood=config.min_likelihood,
        confident_frames=config.confident_frames,
        jump_px=config.jump_px,
        uncertain_share=config.uncertain_share,
        **shape,
    )
    folder = capture_project(config, bundle, fallback)
    folder_name = config.name or name or f"{meta.name}-live-{time.strftime('%Y%m%d-%H%M%S')}"
    capture = FrameCapture(
        folder,
        folder_name,
        meta.keypoints,
        detector,
        scorer=meta.name,
        skeleton=meta.skeleton,
        animals=None if meta.animals is None else meta.animals.names,
        min_gap_s=config.min_gap_s,
        max_per_minute=config.max_per_minute,
        clusters=config.clusters,
        per_cluster=config.per_cluster,
        max_frames=config.max_frames,
        disk_budget_mb=config.disk_budget_mb,
        suggestions=config.suggestions,
        on_event=on_event,
        block_when_busy=block_when_busy,
    )
    why = "given" if config.project is not None else (
        "the bundle's training project" if folder != fallback else "no training project here"
    )  # fmt: skip
    log.info("capturing doubtful frames into %s (%s)", capture.directory, why)
    return capture
