"""`realtime-pose analyze --capture`: a model trained on dark mice analyses a video of a light one,
and the frames it doubts land in a DeepLabCut labeled-data folder as the live capture leaves
them, spaced in video time; a video of a dark mouse yields few or none."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from realtime_pose.cli import main
from realtime_pose.formats.labeled_data import read_machine_labels
from realtime_pose.inference.doubt import DoubtDetector
from realtime_pose.live.capture import FrameCapture
from realtime_pose.sources.base import Frame
from realtime_pose.sources.synthetic_scene import SyntheticScene
from realtime_pose.util.paths import DEMO_BUNDLE

REPO = Path(__file__).resolve().parents[2]
FPS = 30.0
MIN_GAP_FRAMES = 15  # CaptureConfig's min_gap_s (0.5 s) at 30 fps
KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]


def write_video(path: Path, coat: str, frames: int) -> Path:
    scene = SyntheticScene(320, 240, seed=3, fps=FPS, coat=coat)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (320, 240))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(scene.frame(i)[0])
    writer.release()
    return path


def decoded(video: Path) -> list[np.ndarray]:
    reader = cv2.VideoCapture(str(video))
    frames = []
    while (read := reader.read())[0]:
        frames.append(read[1])
    reader.release()
    return frames


def pose_table(out: Path, video: Path) -> np.ndarray:
    (h5,) = out.glob(f"{video.stem}_*.h5")
    table = pd.read_hdf(h5)
    return table.to_numpy().reshape(len(table), len(KEYPOINTS), 3)


def captured(folder: Path) -> tuple[list[int], np.ndarray]:
    images, keypoints, poses = read_machine_labels(folder / "machinelabels-iter0.h5")
    assert keypoints == KEYPOINTS
    return [int(Path(name).stem[3:]) for name in images], poses


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {
        "light": write_video(folder / "light mouse.avi", "light", 150),  # 5 s
        "dark": write_video(folder / "dark.avi", "dark", 150),
    }


@dataclasses.dataclass
class Run:
    rc: int
    out: Path
    folder: Path
    printed: str


@pytest.fixture(scope="module")
def light_run(videos, tmp_path_factory) -> Run:
    """The light video analysed in this process with --capture into a DeepLabCut project."""
    root = tmp_path_factory.mktemp("light")
    project = root / "project"
    project.mkdir()
    (project / "config.yaml").write_text(yaml.safe_dump({"scorer": "experimenter"}))
    out = root / "out"
    args = ["analyze", videos["light"], "--bundle", DEMO_BUNDLE, "--output-dir", out,
            "--capture", "--capture-project", project, "--workers", "0"]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(list(map(str, args)))
    folder = project / "labeled-data" / "light_mouse-captured"  # the stem, made a folder name
    return Run(rc, out, folder, printed.getvalue())


def test_doubtful_frames_of_a_light_mouse_are_captured_in_video_time(videos, light_run):
    assert light_run.rc == 0
    folder = light_run.folder
    indices, labels = captured(folder)
    # 5 s of video at 0.5 s spacing allow 10; the wall clock (this pass takes well under a
    # second) would have allowed one or two
    assert len(indices) >= 5
    gaps = np.diff(indices)
    assert gaps.min() == MIN_GAP_FRAMES  # nearly every frame is doubtful: the gap binds exactly
    frames = decoded(videos["light"])
    for index in indices:
        image = cv2.imread(str(folder / f"img{index:05d}.png"))
        np.testing.assert_array_equal(image, frames[index])
    table = pose_table(light_run.out, videos["light"])
    np.testing.assert_allclose(labels, table[indices], rtol=1e-6)
    printed = light_run.printed
    assert f"light mouse.avi: captured {len(indices)} frames into {folder} (" in printed
    assert "uncertain" in printed


def test_a_dark_mouse_gives_few_or_no_captures_beside_the_outputs(videos, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["analyze", videos["dark"], "--bundle", DEMO_BUNDLE, "--output-dir", out,
            "--capture", "--workers", "0"]  # fmt: skip
    assert main(list(map(str, args))) == 0
    folder = out / "captures" / "labeled-data" / "dark-captured"  # no training project here
    pngs = sorted(folder.glob("*.png")) if folder.is_dir() else []
    assert len(pngs) <= 2
    assert f"dark.avi: captured {len(pngs)} frames into {folder}" in capsys.readouterr().out


def test_bad_capture_options_stop_before_any_analysis(videos, tmp_path):
    out = tmp_path / "out"
    common = ["--bundle", str(DEMO_BUNDLE), "--output-dir", str(out)]
    dark, light = str(videos["dark"]), str(videos["light"])
    used = out / "captures" / "labeled-data" / "dark-captured"
    used.mkdir(parents=True)
    (used / "img00003.png").write_bytes(b"an earlier run's")
    assert main(["analyze", dark, *common, "--capture"]) == 2  # it holds captures already
    assert main(["analyze", dark, light, *common, "--capture", "--capture-name", "x"]) == 2
    assert main(["analyze", light, *common, "--capture", "--format", "nwb"]) == 2  # no table
    assert main(["analyze", light, *common, "--capture", "--capture-name", "../up"]) == 2
    assert main(["analyze", light, *common, "--capture-name", "x"]) == 2  # without --capture
    assert not list(out.glob("*.h5")) and list(used.iterdir()) == [used / "img00003.png"]


def test_a_busy_writer_is_waited_for_when_asked(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
    confident = np.full((4, 3), 0.95, np.float32)
    confident[:, :2] = [[100, 100], [110, 95], [110, 105], [150, 100]]
    doubtful = confident.copy()
    doubtful[0, 2] = 0.0
    for block, expected in ((False, 1), (True, 2)):
        capture = FrameCapture(
            tmp_path / str(block), "v", KEYPOINTS, DoubtDetector(KEYPOINTS, confident_frames=1),
            scorer="demo", min_gap_s=0, max_per_minute=None, cluster_radius=0, slots=1,
            block_when_busy=block,
        )  # fmt: skip
        for i, pose in enumerate([confident, doubtful, confident, doubtful]):
            frame = Frame(image, i, i * 10**7, "noise")
            capture.offer(frame, i, pose, None)
        capture.close()
        stats = capture.stats()
        # a 1500×1500 noise PNG takes far longer than an offer: the second capture finds the
        # only slot taken, and either drops or waits
        assert stats["written"] == stats["captured"] == expected
        assert stats["dropped_busy"] == 2 - expected


@pytest.fixture
def ray_env():
    """Environment for an analysis on embedded Ray, as tests/offline/distributed sets it."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("the cluster extra (Ray) is not installed")
    root = tempfile.mkdtemp(prefix="rtp-ray-", dir="/tmp")  # Ray's socket paths must stay short
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        RAY_TMPDIR=root,
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=str(REPO),
    )
    yield env
    shutil.rmtree(root, ignore_errors=True)


def test_the_ray_analysis_captures_what_the_sequential_one_does(videos, light_run, ray_env):
    assert light_run.rc == 0
    ray_out = light_run.out.parent / "ray"
    run = subprocess.run(
        [sys.executable, "-m", "realtime_pose", "analyze", str(videos["light"]), "--bundle",
         str(DEMO_BUNDLE), "--output-dir", str(ray_out), "--capture", "--workers", "1",
         "--chunk-frames", "60"],
        env=ray_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    on_ray = ray_out / "captures" / "labeled-data" / "light_mouse-captured"
    assert "light mouse.avi: captured" in run.stdout and str(on_ray) in run.stdout
    indices, labels = captured(on_ray)
    expected_indices, expected_labels = captured(light_run.folder)
    assert indices == expected_indices
    np.testing.assert_array_equal(labels, expected_labels)
    for index in indices:
        name = f"img{index:05d}.png"
        assert (on_ray / name).read_bytes() == (light_run.folder / name).read_bytes()
