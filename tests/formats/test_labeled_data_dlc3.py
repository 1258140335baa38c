"""A live-captured ``labeled-data`` folder, opened by DeepLabCut 3's own code.

Needs DeepLabCut 3 (the ``dlc3`` extra): ``make test-dlc3`` runs it in ``.venv-dlc3``; elsewhere
it is skipped. The folder is made by :class:`~realtime_pose.live.capture.FrameCapture` from
synthetic frames inside a project made by ``deeplabcut.create_new_project``; then the human
step (refining in napari-deeplabcut, which saves ``CollectedData_<scorer>.h5`` from the machine
labels) is done as DeepLabCut's own refinement code does it, and DeepLabCut's training-set code
must find every captured frame, its image and its coordinates.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip(
    "deeplabcut",
    reason="DeepLabCut 3 is not installed: `make test-dlc3` runs these tests in .venv-dlc3",
)

import pandas as pd
from deeplabcut.generate_training_dataset import trainingsetmanipulation as tsm
from deeplabcut.utils import auxiliaryfunctions, conversioncode

from realtime_pose.inference.doubt import DoubtDetector
from realtime_pose.live.capture import FrameCapture
from realtime_pose.sources.synthetic import SyntheticSource

pytestmark = [pytest.mark.dlc3, pytest.mark.slow]
VIDEO = "session1"
SCORER = "lab"
FRAME_NS = 10_000_000


def make_project(base: Path, animals: list[str] | None) -> tuple[Path, list, list[str]]:
    """A DeepLabCut project over a short synthetic video named like the capture, and the
    video's frames."""
    import deeplabcut

    source = SyntheticSource(realtime=False, seed=2, max_frames=120)
    source.open()
    frames = []
    while (frame := source.read()) is not None:
        frames.append(dataclasses.replace(frame, t_capture_ns=(100 + len(frames)) * FRAME_NS))
    height, width = frames[0].image.shape[:2]
    video = base / f"{VIDEO}.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 100, (width, height))
    for frame in frames:
        writer.write(frame.image)
    writer.release()
    config = Path(
        deeplabcut.create_new_project(
            "capture",
            SCORER,
            [str(video)],
            working_directory=str(base),
            copy_videos=False,
            multianimal=animals is not None,
        )
    )
    cfg = auxiliaryfunctions.read_config(config)
    keypoints = list(source.keypoints)
    if animals is None:
        cfg["bodyparts"] = keypoints
    else:
        cfg["individuals"] = animals
        cfg["multianimalbodyparts"] = keypoints
        cfg["uniquebodyparts"] = []
    auxiliaryfunctions.write_config(config, cfg)
    return config, frames, keypoints


def capture_doubtful(config: Path, frames: list, keypoints: list[str], animals) -> list[int]:
    """Run a live capture over ``frames``, a keypoint dropping out every 30th; return the
    captured frame indices."""
    copies = 1 if animals is None else len(animals)
    rows = keypoints if animals is None else [f"{a}/{k}" for a in animals for k in keypoints]
    detector = DoubtDetector(rows, animals=copies, confident_frames=1, jump_px=None)
    capture = FrameCapture(
        config.parent,
        VIDEO,
        keypoints,
        detector,
        scorer="DLC_live_model",
        animals=animals,
        min_gap_s=0.0,
        max_per_minute=None,
        suggestions=False,
    )
    dropped = []
    for i, frame in enumerate(frames):
        one = np.concatenate([frame.ground_truth, np.full((len(keypoints), 1), 0.9)], axis=1)
        pose = np.concatenate([one + np.array([7.0 * a, 0, 0]) for a in range(copies)]).astype(
            np.float32
        )
        if i % 30 == 29:
            pose[1, 2] = 0.1
            dropped.append(frame.frame_index)
        capture.offer(frame, i, pose, None)
    capture.close()
    assert capture.stats()["written"] == len(dropped)
    return dropped


def refine_as_deeplabcut_does(folder: Path, iteration: int = 0) -> Path:
    """The labelling GUI's save: the machine labels under the project's scorer, without
    likelihoods (DeepLabCut's ``gui/tracklet_toolbox.py`` does the same)."""
    df = pd.read_hdf(folder / f"machinelabels-iter{iteration}.h5", "df_with_missing")
    conversioncode.guarantee_multiindex_rows(df)
    df.columns = df.columns.set_levels([SCORER], level="scorer")
    df = df.drop("likelihood", level="coords", axis=1)
    path = folder / f"CollectedData_{SCORER}.h5"
    df.to_hdf(path, key="df_with_missing", mode="w")
    return path


@pytest.mark.parametrize("animals", [None, ["female", "male"]], ids=["single", "multi"])
def test_deeplabcut_builds_a_training_set_from_captured_frames(tmp_path, animals):
    config, frames, keypoints = make_project(tmp_path, animals)
    cfg = auxiliaryfunctions.read_config(config)
    dropped = capture_doubtful(config, frames, keypoints, animals)
    folder = config.parent / "labeled-data" / VIDEO
    rows = [("labeled-data", VIDEO, f"img{i:05d}.png") for i in dropped]

    # the machine labels, as extract_outlier_frames and the refinement GUI read them
    machine = pd.read_hdf(folder / "machinelabels-iter0.h5", "df_with_missing")
    before = list(machine.index)
    conversioncode.guarantee_multiindex_rows(machine)
    assert list(machine.index) == before == rows
    for row in machine.index:  # what dropannotationfileentriesduetodeletedimages checks
        assert Path(cfg["project_path"]).joinpath(*row).is_file(), row
    # DeepLabCut appends its own outlier frames to an existing machine-labels file like this
    # (refine_training_dataset/outlier_frames.py): the two layouts must line up
    own = machine.iloc[:1].copy()
    own.index = pd.MultiIndex.from_tuples([("labeled-data", VIDEO, "img99999.png")])
    combined = pd.concat([machine, own])
    assert combined.index.nlevels == 3 and list(combined.columns) == list(machine.columns)

    refine_as_deeplabcut_does(folder)
    tsm.dropannotationfileentriesduetodeletedimages(str(config))
    tsm.dropimagesduetolackofannotation(str(config))
    assert sorted(p.name for p in folder.glob("*.png")) == [r[2] for r in rows]

    out = tmp_path / "trainingset"
    out.mkdir()
    merged = tsm.merge_annotateddatasets(cfg, out)
    assert merged is not None and list(merged.index) == rows
    copies = 1 if animals is None else len(animals)
    for f, index in enumerate(dropped):
        truth = np.concatenate(
            [frames[index].ground_truth + np.array([7.0 * a, 0]) for a in range(copies)]
        )
        np.testing.assert_allclose(
            merged.iloc[f].to_numpy(dtype=float).reshape(-1, 2), truth, rtol=1e-5
        )
