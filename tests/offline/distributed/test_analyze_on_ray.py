"""`realtime-pose analyze` on embedded Ray: several clips cut into chunks over two workers give
outputs identical to the in-process sequential run, in every format; a corrupt file is named and
the rest go on; a re-run touches nothing that is complete; movement reads every file."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realtime_pose.cli import main
from tests.builders import KEYPOINTS, write_marker_bundle
from tests.nwb_checks import assert_valid_nwb, movement_poses
from tests.offline.distributed.clips import corrupt_video, needs_openfield, openfield_clips

REPO = Path(__file__).resolve().parents[3]
pytest.importorskip("pynwb", reason="the nwb extra is not installed")


def analyze(env, *args):
    cmd = [sys.executable, "-m", "realtime_pose", "analyze", *map(str, args)]
    env = dict(env, PYTHONPATH=str(REPO))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def nwb_poses(path):
    import pynwb

    with pynwb.NWBHDF5IO(str(path), "r") as io:
        series = io.read().processing["behavior"]["PoseEstimation"].pose_estimation_series
        return np.stack(
            [np.column_stack([series[k].data[:], series[k].confidence[:]]) for k in KEYPOINTS], 1
        )


@needs_openfield
def test_chunked_run_matches_the_sequential_one_and_resumes(tmp_path, ray_env):
    bundle = write_marker_bundle(tmp_path / "bundle")
    clips = openfield_clips(tmp_path, [95, 130, 61])
    videos = [clips[0], corrupt_video(tmp_path / "corrupt.mp4"), *clips[1:]]
    common = ["--bundle", bundle, "--format", "dlc,nwb"]

    assert main(["analyze", *map(str, clips), *map(str, common), "--output-dir",
                 str(tmp_path / "seq"), "--workers", "0"]) == 0  # fmt: skip
    run = analyze(ray_env, *videos, *common, "--output-dir", tmp_path / "out",
                  "--workers", "2", "--chunk-frames", "40", "--labeled-video")  # fmt: skip
    assert run.returncode == 1, run.stderr  # the corrupt file failed, the others not
    assert "corrupt.mp4" in run.stderr and "3 analysed" in run.stdout and "1 failed" in run.stdout

    for clip in clips:
        name = f"{clip.stem}_realtime-pose_marker"
        seq, out = tmp_path / "seq" / name, tmp_path / "out" / name
        expected = pd.read_hdf(f"{seq}.h5")
        pd.testing.assert_frame_equal(pd.read_hdf(f"{out}.h5"), expected)
        assert Path(f"{out}.csv").read_text() == Path(f"{seq}.csv").read_text()
        np.testing.assert_array_equal(nwb_poses(f"{out}.nwb"), nwb_poses(f"{seq}.nwb"))
        assert_valid_nwb(Path(f"{out}.nwb"))
        poses = expected.to_numpy().reshape(len(expected), 3, 3)
        for path in (f"{out}.h5", f"{out}.csv", f"{out}.nwb"):
            np.testing.assert_allclose(movement_poses(Path(path), KEYPOINTS), poses, atol=1e-6)
        import cv2

        labeled = cv2.VideoCapture(f"{out}_labeled.mp4")
        assert int(labeled.get(cv2.CAP_PROP_FRAME_COUNT)) == len(expected)
    assert not list((tmp_path / "out").glob(".*partial*"))

    before = {p: os.stat(p) for p in (tmp_path / "out").iterdir()}
    again = analyze(ray_env, *videos, *common, "--output-dir", tmp_path / "out",
                    "--labeled-video")  # fmt: skip
    assert again.returncode == 1 and "3 already complete" in again.stdout, again.stdout
    assert "workers on" not in again.stderr  # nothing to analyse: Ray was not even started
    after = {p: os.stat(p) for p in (tmp_path / "out").iterdir()}
    assert {p: (s.st_ino, s.st_mtime_ns) for p, s in before.items()} == {
        p: (s.st_ino, s.st_mtime_ns) for p, s in after.items()
    }
