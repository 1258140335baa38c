"""The automatic training-crop size: room for the animal at the largest training scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime_pose.trainers.project import load_project
from realtime_pose.trainers.synthetic_project import write_synthetic_project
from realtime_pose.trainers.train import auto_crop_size


def _p90_extent(project) -> float:
    extents = []
    for pose in project.keypoints:
        visible = pose[np.isfinite(pose).all(axis=1)]
        extents.append(float(np.ptp(visible, axis=0).max()))
    return float(np.percentile(extents, 90))


def test_crop_holds_the_animal_at_the_largest_scale_with_margin(tmp_path: Path):
    project = load_project(write_synthetic_project(tmp_path / "p", 12, 640, 480, seed=3))
    indices = list(range(len(project.images)))
    extent = _p90_extent(project)
    for scale_max in (1.25, 2.5, 4.0):
        side = auto_crop_size(project, indices, scale_max)
        need = max(192.0, scale_max * extent + 32.0)
        assert side % 16 == 0
        assert need <= side < need + 16 or side == 512
        assert 192 <= side <= 512


def test_crop_never_exceeds_the_frame(tmp_path: Path):
    project = load_project(write_synthetic_project(tmp_path / "p", 4, 96, 64, seed=3))
    assert auto_crop_size(project, [0, 1, 2, 3]) == 96
