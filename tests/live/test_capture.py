"""Live capture of doubtful frames: synthetic frames in, DeepLabCut/SLEAP files out."""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np
import pandas as pd
import pytest

from realtime_pose.formats.labeled_data import read_machine_labels
from realtime_pose.inference.doubt import DoubtDetector
from realtime_pose.live.capture import FrameCapture, OnlineKMeans, thumbnail
from realtime_pose.sources.synthetic import SyntheticSource
from realtime_pose.util.safe_write import OutputExistsError

FRAME_NS = 10_000_000  # 100 fps
KP = ["snout", "leftear", "rightear", "tailbase"]


@pytest.fixture(scope="module")
def frames():
    """200 synthetic frames (the animal walks), stamped at 100 fps from t = 1 s."""
    source = SyntheticSource(realtime=False, seed=1)
    source.open()
    out = []
    for i in range(200):
        frame = source.read()
        out.append(dataclasses.replace(frame, t_capture_ns=(100 + i) * FRAME_NS))
    source.close()
    return out


def true_pose(frame, likelihood=0.95) -> np.ndarray:
    pose = np.empty((len(frame.ground_truth), 3), np.float32)
    pose[:, :2] = frame.ground_truth
    pose[:, 2] = likelihood
    return pose


def make_capture(tmp_path, events=None, **kwargs):
    settings = {
        "scorer": "demo-model",
        "min_gap_s": 0.0,
        "max_per_minute": None,
        "per_cluster": 1000,
        "slots": 256,
    }
    if events is not None:
        settings["on_event"] = events.append
    settings.update(kwargs)
    detector = settings.pop("detector", None) or DoubtDetector(KP, confident_frames=1)
    return FrameCapture(tmp_path, "session1", KP, detector, **settings)


def drop_every(frames, capture, period: int, row: int = 1, count: int | None = None) -> list[int]:
    """Offer ``frames``, with keypoint ``row`` dropping in every ``period``-th frame; return
    the frame indices that dropped."""
    dropped = []
    for i, frame in enumerate(frames[:count]):
        pose = true_pose(frame)
        if i % period == period - 1:
            pose[row, 2] = 0.05
            dropped.append(frame.frame_index)
        capture.offer(frame, i, pose, None)
    return dropped


def test_doubtful_frames_become_dlc_labeled_data_and_sleap_suggestions(tmp_path, frames):
    sio = pytest.importorskip("sleap_io")
    events = []
    capture = make_capture(tmp_path, events)
    dropped = drop_every(frames, capture, 25)
    capture.close()
    stats = capture.stats()
    assert stats["offered"] == 200
    assert stats["doubtful"] == stats["captured"] == stats["written"] == len(dropped) == 8
    assert stats["by_reason"]["likelihood_drop"] == 8 and stats["write_errors"] == 0
    folder = tmp_path / "labeled-data" / "session1"
    for index in dropped:
        image = cv2.imread(str(folder / f"img{index:05d}.png"))
        np.testing.assert_array_equal(image, frames[index].image)  # BGR in, BGR out
    images, keypoints, poses = read_machine_labels(folder / "machinelabels-iter0.h5")
    assert images == [f"img{i:05d}.png" for i in dropped]
    assert keypoints == KP
    expected = np.stack([true_pose(frames[i]) for i in dropped])
    expected[:, 1, 2] = 0.05  # the poses as offered, drops included
    np.testing.assert_allclose(poses, expected, rtol=1e-6)
    df = pd.read_hdf(folder / "machinelabels-iter0.h5")
    assert set(df.columns.get_level_values("scorer")) == {"demo-model"}
    assert stats["bytes"] == sum(f.stat().st_size for f in folder.iterdir())
    # the events, decided on the loop thread
    assert [e["frame_index"] for e in events] == dropped
    first = events[0]
    assert first["kind"] == "capture" and first["name"] == "session1"
    assert first["reasons"] == ["likelihood_drop"] and first["keypoints"] == ["leftear"]
    assert first["image"] == f"labeled-data/session1/img{dropped[0]:05d}.png"
    assert first["t_ns"] == frames[dropped[0]].t_capture_ns
    # SLEAP sees the same frames as suggestions
    labels = sio.load_slp(str(folder / "suggestions.slp"))
    assert [s.frame_idx for s in labels.suggestions] == list(range(8))
    assert [str(p).rsplit("/", 1)[-1] for p in labels.videos[0].filename] == images


def test_each_reason_is_captured_with_its_keypoints(tmp_path, frames):
    events = []
    detector = DoubtDetector(
        KP,
        confident_frames=3,
        jump_px=30.0,
        distance_pairs=[(0, 3)],
        distance_min_px=[0.0],
        distance_max_px=[200.0],
    )
    capture = make_capture(tmp_path, events, detector=detector)
    for i, frame in enumerate(frames[:60]):
        pose = true_pose(frame)
        if i == 20:
            pose[2, 0] += 60  # the right ear jumps for one frame
        if i == 40:
            pose[3, :2] = pose[0, :2] + 400  # the tail base jumps far from the snout
        if i == 50:
            pose[1, 2] = 0.2  # the left ear drops out
        capture.offer(frame, i, pose, None)
    capture.close()
    got = [(e["frame_index"], e["reasons"], e["keypoints"]) for e in events]
    assert got == [
        (20, ["jump"], ["rightear"]),
        (40, ["jump", "distance"], ["snout", "tailbase"]),
        (50, ["likelihood_drop"], ["leftear"]),
    ]
    assert capture.stats()["captured_by_reason"] == {
        "likelihood_drop": 1,
        "jump": 2,
        "distance": 1,
        "track_lost": 0,
        "track_reborn": 0,
        "uncertain": 0,
    }


def test_lost_tracks_of_several_animals_are_captured_with_individuals(tmp_path, frames):
    animals = ["female", "male"]
    full = [f"{a}/{b}" for a in animals for b in KP]
    events = []
    detector = DoubtDetector(full, animals=2, jump_px=None, confident_frames=10_000)
    capture = FrameCapture(
        tmp_path,
        "pair",
        KP,
        detector,
        scorer="m",
        animals=animals,
        min_gap_s=0.0,
        max_per_minute=None,
        on_event=events.append,
        slots=64,
    )
    for i, frame in enumerate(frames[:30]):
        pose = np.concatenate([true_pose(frame), true_pose(frame)])
        pose[4:, 0] += 30
        if 10 <= i < 20:
            pose[4:, 2] = 0.0  # the male leaves
        capture.offer(frame, i, pose, None)
    capture.close()
    assert [(e["frame_index"], e["reasons"]) for e in events] == [
        (10, ["track_lost"]),
        (20, ["track_reborn"]),
    ]
    assert events[0]["keypoints"] == [f"male/{k}" for k in KP]
    images, keypoints, _ = read_machine_labels(capture.labels_path)
    assert keypoints == full and images == ["img00010.png", "img00020.png"]
    df = pd.read_hdf(capture.labels_path)
    assert list(df.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]


def test_rate_limits_space_the_captures(tmp_path, frames):
    events = []
    capture = make_capture(tmp_path, events, min_gap_s=0.25)
    drop_every(frames, capture, 5)  # a doubtful frame every 50 ms for 2 s
    capture.close()
    times = [e["t_ns"] for e in events]
    assert len(times) == 8 and np.diff(times).min() >= 250_000_000
    stats = capture.stats()
    assert stats["doubtful"] == 40 and stats["rate_limited"] == 32
    # at most 3 a minute: the first three of a burst, then nothing for the rest of the minute
    capture = make_capture(tmp_path / "b", [], max_per_minute=3.0)
    drop_every(frames, capture, 5)
    capture.close()
    assert capture.stats()["captured"] == 3 and capture.stats()["rate_limited"] == 37


def test_near_identical_doubtful_frames_fill_one_cluster_only(tmp_path, frames):
    capture = make_capture(tmp_path, per_cluster=3, clusters=10)
    still = frames[50]
    for i in range(100):  # the animal does not move; its ear keeps dropping out
        frame = dataclasses.replace(still, frame_index=i, t_capture_ns=(100 + i) * FRAME_NS)
        pose = true_pose(still)
        if i % 2:
            pose[1, 2] = 0.1
        capture.offer(frame, i, pose, None)
    capture.close()
    stats = capture.stats()
    assert stats["doubtful"] == 50
    assert stats["captured"] == 3 and stats["similar"] == 47 and stats["clusters"] == 1
    # frames that differ (the animal walks 0.5-1 s between them) seed clusters of their own
    capture = make_capture(tmp_path / "b", per_cluster=1, clusters=10, cluster_radius=0.7)
    drop_every(frames, capture, 50)
    capture.close()
    assert capture.stats()["captured"] == 4 and capture.stats()["clusters"] == 4


def test_budgets_stop_capturing_with_one_warning(tmp_path, frames, caplog):
    caplog.set_level(logging.WARNING, logger="realtime_pose.live.capture")
    capture = make_capture(tmp_path, max_frames=3)
    drop_every(frames, capture, 10)
    capture.close()
    stats = capture.stats()
    assert stats["captured"] == 3 and stats["budget_reached"] == 17
    assert stats["budget"] == "max_frames"
    warnings = [r for r in caplog.records if "max_frames reached" in r.getMessage()]
    assert len(warnings) == 1
    # each PNG here is ~125 kB, the label files ~40 kB: a 0.32 MB budget holds two PNGs
    capture = make_capture(tmp_path / "disk", disk_budget_mb=0.32)
    drop_every(frames, capture, 10)
    capture.close()
    stats = capture.stats()
    assert stats["budget"] == "disk_budget_mb"
    assert stats["written"] == 2 and stats["budget_reached"] == 18
    folder = tmp_path / "disk" / "labeled-data" / "session1"
    assert sum(f.stat().st_size for f in folder.iterdir()) == stats["bytes"] <= 320_000
    assert len(read_machine_labels(capture.labels_path)[0]) == 2


def test_a_busy_writer_drops_captures_and_the_loop_goes_on(tmp_path, frames):
    big = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
    capture = make_capture(tmp_path, slots=1)
    pose = true_pose(frames[0])
    low = pose.copy()
    low[0, 2] = 0.0
    frame = dataclasses.replace(frames[0], image=big)
    for i, p in enumerate([pose, low, pose, low]):  # two doubtful frames in a row
        capture.offer(dataclasses.replace(frame, frame_index=i), i, p, None)
    stats = capture.stats()
    # the first took the only slot; a 1500×1500 noise PNG takes far longer than one offer
    assert stats["captured"] == 1 and stats["dropped_busy"] == 1
    capture.close()
    assert capture.stats()["written"] == 1


def test_a_writer_that_cannot_write_is_counted_and_the_loop_never_sees_it(tmp_path, frames):
    (tmp_path / "labeled-data").write_text("a file where the folder should be")
    events = []
    capture = make_capture(tmp_path, events)
    dropped = drop_every(frames, capture, 20, count=100)
    capture.close()
    stats = capture.stats()
    assert stats["captured"] == len(dropped) == len(events) == 5
    assert stats["written"] == 0 and stats["write_errors"] == 5
    assert "not written" in stats["last_error"]


def test_a_frame_index_seen_again_replaces_its_image_and_row(tmp_path, frames):
    capture = make_capture(tmp_path)  # a source that restarted: indices 0.. again
    restarted = [dataclasses.replace(f, frame_index=i % 10) for i, f in enumerate(frames[:20])]
    drop_every(restarted, capture, 10)
    capture.close()
    folder = tmp_path / "labeled-data" / "session1"
    images, _, _ = read_machine_labels(capture.labels_path)
    assert capture.stats()["written"] == 2 and images == ["img00009.png"]
    np.testing.assert_array_equal(cv2.imread(str(folder / images[0])), frames[19].image)
    assert sum(f.stat().st_size for f in folder.iterdir()) == capture.stats()["bytes"]


def test_close_is_idempotent_and_offers_after_it_capture_nothing(tmp_path, frames):
    capture = make_capture(tmp_path)
    drop_every(frames, capture, 10, count=20)
    capture.close()
    capture.close()
    before = capture.stats()
    drop_every(frames[20:], capture, 10, count=20)
    after = capture.stats()
    assert after["captured"] == before["captured"] == after["written"] == 2
    assert after["offered"] == 40


def test_a_failing_event_handler_is_counted_not_raised(tmp_path, frames):
    def broken(event):
        raise RuntimeError("subscriber gone")

    capture = make_capture(tmp_path, None, on_event=broken)
    drop_every(frames, capture, 10, count=30)
    capture.close()
    assert capture.stats()["captured"] == 3 and capture.stats()["event_errors"] == 3


def test_constructor_refuses_bad_names_mismatched_keypoints_and_used_folders(tmp_path):
    detector = DoubtDetector(KP)
    with pytest.raises(ValueError, match="cannot be used"):
        FrameCapture(tmp_path, "../up", KP, detector, scorer="m")
    with pytest.raises(ValueError, match="4 rows"):
        FrameCapture(tmp_path, "s", KP[:3], detector, scorer="m")
    used = tmp_path / "labeled-data" / "s"
    used.mkdir(parents=True)
    (used / "img00001.png").write_bytes(b"")
    with pytest.raises(OutputExistsError, match="another name"):
        FrameCapture(tmp_path, "s", KP, detector, scorer="m")
    with pytest.raises(ValueError, match="per_cluster"):
        FrameCapture(tmp_path, "t", KP, detector, scorer="m", per_cluster=0)


def test_thumbnail_is_the_gray_block_mean():
    image = np.zeros((4, 4, 3), np.uint8)
    image[:2, :2] = (255, 0, 0)  # blue block
    image[:2, 2:] = (0, 255, 0)  # green
    image[2:, :2] = (0, 0, 255)  # red
    image[2:, 2:, :] = 100
    image[3, 3] = 200  # one brighter pixel in the last block
    out = np.zeros((2, 2), np.float32)
    thumbnail(image, out)
    np.testing.assert_allclose(out, [[0.114 * 255, 0.587 * 255], [0.299 * 255, 125.0]], rtol=1e-5)
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    thumbnail(gray, out)
    np.testing.assert_allclose(out, [[2.5, 4.5], [10.5, 12.5]])


def test_online_kmeans_seeds_far_points_and_moves_centroids_to_the_mean():
    kmeans = OnlineKMeans(clusters=2, dim=2, radius=1.0)
    assert kmeans.assign(np.array([0.0, 0.0], np.float32)) == 0
    assert kmeans.assign(np.array([1.0, 1.0], np.float32)) == 0  # RMS 1.0: joins
    np.testing.assert_allclose(kmeans.centroids[0], [0.5, 0.5])
    assert kmeans.assign(np.array([10.0, 10.0], np.float32)) == 1  # far: seeds
    assert kmeans.assign(np.array([100.0, 100.0], np.float32)) == 1  # no free centroid: nearest
    np.testing.assert_allclose(kmeans.centroids[1], [55.0, 55.0])
    assert kmeans.members.tolist() == [2, 2]
