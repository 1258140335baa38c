"""The crash-safe pose log: round trip, SIGKILL mid-run, torn tails, refusals."""

from __future__ import annotations

import signal
import struct
import sys
import time

import numpy as np
import pytest

from realtime_pose.recording import LogFormatError, PoseRecorder, read_log
from realtime_pose.recording.log_format import MAGIC
from tests.stream.child_process import Child

KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]


def pose_for(i: int, animals: int = 1) -> np.ndarray:
    """A pose whose values say which record it is."""
    kp = np.empty((animals, len(KEYPOINTS), 3))
    kp[..., 0] = i + np.arange(len(KEYPOINTS)) / 10
    kp[..., 1] = -i - np.arange(animals)[:, None]
    kp[..., 2] = (i % 100) / 100
    return kp


def record(path, n, animals=1, predicted_every=0, events=()):
    with PoseRecorder(
        path, KEYPOINTS, {"model": "test", "skeleton": [["snout", "tailbase"]]}
    ) as rec:
        for i in range(n):
            pred = (
                (1000 + i, pose_for(i, animals) + 0.5)
                if predicted_every and i % predicted_every == 0
                else None
            )
            rec.write_pose(i, 10 + 2 * i, 5_000 + i, pose_for(i, animals), pred)
            for frame_index, event in events:
                if frame_index == 10 + 2 * i:
                    rec.write_event(frame_index, event, t_ns=7)
    return rec


def test_round_trip(tmp_path):
    path = tmp_path / "session.poselog"
    events = [(14, {"kind": "rule", "name": "zone", "state": "on"}), (20, {"kind": "output"})]
    rec = record(path, 20, animals=2, predicted_every=3, events=events)
    assert rec.poses == 20 and rec.events == 2 and rec.errors == 0
    log = read_log(path)
    assert log.closed_cleanly and log.torn_bytes == 0
    assert log.keypoints == KEYPOINTS
    assert log.header["meta"] == {"model": "test", "skeleton": [["snout", "tailbase"]]}
    assert abs(log.header["wall_offset_ns"] - (time.time_ns() - time.monotonic_ns())) < 5e9
    assert log.poses.shape == (20, 2, 4, 3)
    for i in range(20):
        np.testing.assert_array_equal(log.poses[i], pose_for(i, 2))
    np.testing.assert_array_equal(log.seq, np.arange(20))
    np.testing.assert_array_equal(log.frame_indices, 10 + 2 * np.arange(20))
    np.testing.assert_array_equal(log.t_capture_ns, 5000 + np.arange(20))
    assert np.all(np.diff(log.t_record_ns) >= 0)
    has = np.arange(20) % 3 == 0
    np.testing.assert_array_equal(log.t_target_ns[has], 1000 + np.arange(20)[has])
    assert np.all(log.t_target_ns[~has] == -1)
    np.testing.assert_array_equal(log.predicted[has], log.poses[has] + 0.5)
    assert np.isnan(log.predicted[~has]).all()
    assert log.events == [
        {"frame_index": 14, "t_ns": 7, "event": {"kind": "rule", "name": "zone", "state": "on"}},
        {"frame_index": 20, "t_ns": 7, "event": {"kind": "output"}},
    ]


def test_single_animal_pose_as_k_by_3_and_no_prediction(tmp_path):
    path = tmp_path / "a.poselog"
    with PoseRecorder(path, KEYPOINTS, fsync_interval_s=0) as rec:
        rec.write_pose(0, 0, 0, pose_for(0)[0])
    log = read_log(path)
    assert log.poses.shape == (1, 1, 4, 3)
    assert log.predicted is None and log.t_target_ns is None


def test_varying_number_of_animals_is_padded_with_nan(tmp_path):
    path = tmp_path / "multi.poselog"
    with PoseRecorder(path, KEYPOINTS) as rec:
        rec.write_pose(0, 0, 0, pose_for(0, 1))
        rec.write_pose(1, 1, 0, pose_for(1, 3))
    log = read_log(path)
    assert log.poses.shape == (2, 3, 4, 3)
    assert np.isnan(log.poses[0, 1:]).all()
    np.testing.assert_array_equal(log.poses[1], pose_for(1, 3))


def test_refuses_to_overwrite_and_bad_input(tmp_path):
    path = tmp_path / "x.poselog"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="never overwritten"):
        PoseRecorder(path, KEYPOINTS)
    assert path.read_bytes() == b"precious"
    with pytest.raises(ValueError, match="msgpack-serialisable"):
        PoseRecorder(tmp_path / "y.poselog", KEYPOINTS, {"bad": object()})
    with PoseRecorder(tmp_path / "z.poselog", KEYPOINTS) as rec:
        with pytest.raises(ValueError, match=r"shape \[animals, 4, 3\]"):
            rec.write_pose(0, 0, 0, np.zeros((1, 5, 3)))
        assert rec.write_event(0, {"bad": object()}) is False
        assert rec.write_event(0, {"good": 1}) is True
    assert rec.errors == 1
    with pytest.raises(RuntimeError, match="closed"):
        rec.write_pose(0, 0, 0, pose_for(0))
    assert len(read_log(tmp_path / "z.poselog").events) == 1


def test_not_a_log_is_refused(tmp_path):
    path = tmp_path / "video.avi"
    path.write_bytes(b"RIFF....AVI ")
    with pytest.raises(LogFormatError, match="not a realtime-pose log"):
        read_log(path)
    (tmp_path / "empty.poselog").write_bytes(MAGIC)
    with pytest.raises(LogFormatError, match="no readable header"):
        read_log(tmp_path / "empty.poselog")


def _open_log_bytes(tmp_path, n):
    """Bytes of a log with ``n`` poses and no close record (as after a crash), and the offset
    where each pose record starts."""
    path = tmp_path / "open.poselog"
    rec = PoseRecorder(path, KEYPOINTS)
    offsets = []
    for i in range(n):
        offsets.append(path.stat().st_size)
        rec.write_pose(i, i, i, pose_for(i))
    data = path.read_bytes()  # before close: what a SIGKILL would leave
    rec.close()
    return data, offsets


@pytest.mark.parametrize("cut", [1, 5, 8, 9, 40])
def test_torn_final_record_is_ignored(tmp_path, cut):
    data, offsets = _open_log_bytes(tmp_path, 10)
    torn = tmp_path / "torn.poselog"
    torn.write_bytes(data[:-cut])
    log = read_log(torn)
    assert len(log.poses) == 9
    np.testing.assert_array_equal(log.seq, np.arange(9))
    assert log.torn_bytes == len(data) - cut - offsets[9]
    assert not log.closed_cleanly


def test_garbage_tail_and_bad_crc(tmp_path):
    data, offsets = _open_log_bytes(tmp_path, 10)
    path = tmp_path / "garbage.poselog"
    path.write_bytes(data + b"\x00\x01garbage after the last record")
    log = read_log(path)
    assert len(log.poses) == 10 and log.torn_bytes == 31

    flipped = bytearray(data)
    flipped[-3] ^= 0xFF  # inside the last record's payload: its CRC no longer matches
    path.write_bytes(bytes(flipped))
    log = read_log(path)
    assert len(log.poses) == 9 and log.torn_bytes == len(data) - offsets[9]

    huge = bytearray(data)
    huge[offsets[9] : offsets[9] + 4] = struct.pack("<I", 2**31)  # absurd length
    path.write_bytes(bytes(huge))
    assert len(read_log(path).poses) == 9


CHILD = """
import sys, numpy as np
from realtime_pose.recording import PoseRecorder
from tests.recording.test_pose_log import KEYPOINTS, pose_for

rec = PoseRecorder(sys.argv[1], KEYPOINTS, {"child": True}, fsync_interval_s=0.05)
i = 0
while True:
    rec.write_pose(i, i, i, pose_for(i))
    if i % 7 == 0:
        rec.write_event(i, {"kind": "rule", "i": i})
    print(i, flush=True)
    i += 1
"""


@pytest.mark.timeout(60)
def test_sigkill_mid_run_keeps_every_written_pose(tmp_path):
    path = tmp_path / "killed.poselog"
    child = Child([sys.executable, "-c", CHILD, str(path)])
    last_acknowledged = -1
    try:
        while last_acknowledged < 300:
            line = child.next_line(20)
            assert line is not None, child.finish()[1]
            last_acknowledged = int(line)
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait(10)
    finally:
        child.kill()
    assert child.proc.returncode == -signal.SIGKILL
    log = read_log(path)
    assert not log.closed_cleanly
    n = len(log.poses)
    assert n >= last_acknowledged + 1  # everything whose write returned is there
    np.testing.assert_array_equal(log.seq, np.arange(n))
    for i in (0, n // 2, n - 1):
        np.testing.assert_array_equal(log.poses[i, 0], pose_for(i)[0])
    assert [e["frame_index"] for e in log.events] == list(range(0, n, 7))[: len(log.events)]
    assert len(log.events) >= (n - 1) // 7


def test_camera_fields_round_trip_and_default_where_absent(tmp_path):
    path = tmp_path / "cam.poselog"
    with PoseRecorder(path, KEYPOINTS) as rec:
        rec.write_pose(0, 0, 100, pose_for(0))
        camera = {"camera_frame_id": 3, "t_camera_ns": 90, "t_arrival_ns": 150, "camera_dropped": 1}
        rec.write_pose(1, 1, 110, pose_for(1), None, camera)
    log = read_log(path)
    assert log.camera_frame_id.tolist() == [-1, 3]
    assert log.t_camera_ns.tolist() == [-1, 90] and log.t_arrival_ns.tolist() == [-1, 150]
    assert log.camera_dropped.tolist() == [0, 1]
