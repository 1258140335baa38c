"""Pose log → DeepLabCut tables, through the API and the ``convert`` command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

from realtime_pose.recording import PoseRecorder, convert_log
from realtime_pose.recording.log_format import read_log
from tests.recording.test_pose_log import KEYPOINTS, pose_for
from tests.stream.child_process import REPO, child_env


def _check_table(h5, frame_indices, poses, scorer="realtime-pose"):
    df = pd.read_hdf(h5)
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    assert list(df.columns.get_level_values("scorer").unique()) == [scorer]
    assert list(df.columns.get_level_values("bodyparts").unique()) == KEYPOINTS
    assert list(df.columns.get_level_values("coords").unique()) == ["x", "y", "likelihood"]
    np.testing.assert_array_equal(df.index.to_numpy(), frame_indices)
    np.testing.assert_allclose(df.to_numpy().reshape(len(df), len(KEYPOINTS), 3), poses)
    return df


def test_stop_converts_to_dlc_tables(tmp_path):
    rec = PoseRecorder(tmp_path / "run1.poselog", KEYPOINTS)
    for i in range(30):
        rec.write_pose(i, 100 + i, i, pose_for(i))
    result = rec.stop(output_dir=tmp_path / "tables", scorer="rig-A")
    assert result.poses == 30
    assert [p.name for p in result.tables] == ["run1.h5", "run1.csv"]
    assert result.as_reply() == {
        "path": str(tmp_path / "run1.poselog"),
        "poses": 30,
        "events": 0,
        "tables": [str(p) for p in result.tables],
    }
    expected = np.stack([pose_for(i)[0] for i in range(30)])
    _check_table(result.tables[0], 100 + np.arange(30), expected, scorer="rig-A")
    csv = pd.read_csv(result.tables[1], header=[0, 1, 2], index_col=0)
    np.testing.assert_allclose(csv.to_numpy().reshape(30, 4, 3), expected)


def test_multi_animal_and_predicted_tables(tmp_path):
    path = tmp_path / "pair.poselog"
    with PoseRecorder(path, KEYPOINTS) as rec:
        for i in range(6):
            pred = (i + 10, pose_for(i, 2) + 1) if i % 2 else None
            rec.write_pose(i, i, i, pose_for(i, 2), pred)
    written = convert_log(path)
    assert sorted(p.name for p in written) == sorted(
        f"pair_animal{a}{s}.{ext}"
        for a in (0, 1)
        for s in ("", "_predicted")
        for ext in ("h5", "csv")
    )
    poses = np.stack([pose_for(i, 2) for i in range(6)])
    _check_table(tmp_path / "pair_animal1.h5", np.arange(6), poses[:, 1])
    _check_table(tmp_path / "pair_animal0_predicted.h5", [1, 3, 5], poses[1::2, 0] + 1)


def test_convert_command_on_a_crashed_log(tmp_path):
    path = tmp_path / "crashed.poselog"
    rec = PoseRecorder(path, KEYPOINTS)
    for i in range(12):
        rec.write_pose(i, i, i, pose_for(i))
    data = path.read_bytes()
    rec.close()
    path.write_bytes(data[:-3])  # SIGKILL during the last write
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "realtime_pose", "convert", str(path), "--output-dir", str(out)],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "11 poses, 0 events, not closed (interrupted)" in result.stdout
    assert "torn bytes ignored" in result.stdout
    expected = np.stack([pose_for(i)[0] for i in range(11)])
    _check_table(out / "crashed.h5", np.arange(11), expected)
    assert len(read_log(path).poses) == 11


def test_convert_command_explains_bad_input(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    for target, message in ((bogus, "not a realtime-pose log"), (tmp_path / "nope", "does not")):
        result = subprocess.run(
            [sys.executable, "-m", "realtime_pose", "convert", str(target)],
            cwd=REPO,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert message in result.stderr and "Traceback" not in result.stderr


def test_empty_recording_converts_to_nothing(tmp_path):
    result = PoseRecorder(tmp_path / "empty.poselog", KEYPOINTS).stop()
    assert result.poses == 0 and result.tables == () and result.conversion_error is None
    assert read_log(result.log_path).closed_cleanly


def test_failed_conversion_keeps_the_log(tmp_path):
    rec = PoseRecorder(tmp_path / "r.poselog", KEYPOINTS)
    rec.write_pose(0, 0, 0, pose_for(0))
    blocker = tmp_path / "tables"
    blocker.write_text("a file where the output folder should go")
    result = rec.stop(output_dir=blocker)
    assert result.tables == () and result.conversion_error
    assert result.as_reply()["conversion_error"] == result.conversion_error
    assert len(read_log(result.log_path).poses) == 1


def _record(path, n, offset=0.0):
    with PoseRecorder(path, KEYPOINTS) as rec:
        for i in range(n):
            rec.write_pose(i, i, i, pose_for(i) + offset)
    return path


def _convert(*args):
    return subprocess.run(
        [sys.executable, "-m", "realtime_pose", "convert", *map(str, args)],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_logs_of_a_day_each_keep_their_tables_and_nothing_is_replaced_unasked(tmp_path):
    # session names hold dots (the bundle's name); the tables keep the whole stem
    logs = [
        _record(tmp_path / f"demo-mobilenet_v2_0.35-20261202-1800{s}.poselog", 5 + k, k)
        for k, s in enumerate(("15", "24", "31"))
    ]
    out = tmp_path / "tables"
    done = _convert(*logs, "--output-dir", out)
    assert done.returncode == 0, done.stderr
    for k, log_path in enumerate(logs):
        expected = np.stack([pose_for(i)[0] + k for i in range(5 + k)])
        _check_table(out / f"{log_path.stem}.h5", np.arange(5 + k), expected)
        assert (out / f"{log_path.stem}.csv").is_file()
    listed = [line for line in done.stdout.splitlines() if line.startswith(str(out))]
    assert len(listed) == len(set(listed)) == 6  # each table once
    # again: refused, naming the table, and the tables are untouched
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = _convert(logs[1], "--output-dir", out)
    assert again.returncode == 1
    assert f"{out / logs[1].stem}.h5 exists; not replaced (pass --overwrite" in again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _convert(logs[1], "--output-dir", out, "--overwrite").returncode == 0


KILL_CONVERT = """
import sys
from realtime_pose.recording.convert import convert_log
while True:
    convert_log(sys.argv[1], sys.argv[2], overwrite=True)
"""


def test_sigkill_during_conversion_leaves_a_complete_table_or_none(tmp_path):
    import os
    import random
    import signal
    import time

    n = 20_000
    log_path = _record(tmp_path / "long.poselog", n)
    out = tmp_path / "out"
    rng = random.Random(0)
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_CONVERT, str(log_path), str(out)], cwd=REPO, env=child_env()
        )
        time.sleep(rng.uniform(2.0, 6.0))  # start-up (~2 s), then inside a conversion (~1.5 s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        h5, csv = out / "long.h5", out / "long.csv"
        if h5.exists():
            assert len(pd.read_hdf(h5)) == n
        if csv.exists():
            assert len(pd.read_csv(csv, header=[0, 1, 2], index_col=0)) == n
    convert_log(log_path, out, overwrite=True)  # and a conversion left alone completes
    assert len(pd.read_hdf(out / "long.h5")) == n
