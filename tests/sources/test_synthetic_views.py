"""The virtual rig's views: exact 2D/3D truth, one scene shared by every camera, the source."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pydantic
import pytest

from realtime_pose.calibration import CameraModel, CameraRig
from realtime_pose.plugins import SOURCES
from realtime_pose.sources import make_source
from realtime_pose.sources.synthetic_scene import draw_animal
from realtime_pose.sources.synthetic_views import (
    ARENA_TEXELS,
    MM_PER_TEXEL,
    Occluder,
    SyntheticViews,
    SyntheticViewSource,
    texel_to_world,
    virtual_rig,
)

SNOUT, LEFTEAR, RIGHTEAR, TAILBASE = range(4)


@pytest.fixture(scope="module")
def views() -> SyntheticViews:
    """Seed 0 on the default three-camera rig, without sensor noise."""
    return SyntheticViews(seed=0, noise=False)


def _rearing_frame(views: SyntheticViews) -> int:
    heights = [views.height_mm(i) for i in range(0, 3000, 5)]
    return 5 * int(np.argmax(heights))


def _top_down_camera() -> CameraModel:
    """A distortion-free camera straight above the arena whose pixels are the texture's texels."""
    height_mm = 500.0
    f = height_mm / MM_PER_TEXEL
    c = (ARENA_TEXELS - 1) / 2
    rotation = np.diag([1.0, -1.0, -1.0])  # x along world x, y along world -y, looking down
    return CameraModel(
        "top",
        (ARENA_TEXELS, ARENA_TEXELS),
        np.array([[f, 0, c], [0, f, c], [0, 0, 1]]),
        np.zeros(5),
        cv2.Rodrigues(rotation)[0].ravel(),
        -rotation @ np.array([0.0, 0.0, height_mm]),
    )


def test_a_camera_above_sees_exactly_the_drawn_top_down_scene():
    views = SyntheticViews(CameraRig((_top_down_camera(),)), seed=2, noise=False)
    for i in (0, 333):
        assert views.height_mm(i) == 0.0
        image, keypoints = views.render(i, "top")
        reference = views.walk._look.background.copy()
        drawn = draw_animal(reference, views.walk.pose(i))
        np.testing.assert_allclose(keypoints, drawn, atol=1e-3)
        diff = np.abs(image.astype(int) - reference)
        assert diff.max() <= 8 and diff.mean() < 0.01  # rounding where anti-aliased parts overlap


def _at(gray: np.ndarray, xy: np.ndarray) -> float:
    x, y = np.round(xy).astype(int)
    return float(gray[y, x])


@pytest.mark.parametrize("camera", ["cam0", "cam1", "cam2"])
def test_true_keypoints_are_on_the_drawn_parts_in_every_view(views, camera):
    for i in (0, 700, _rearing_frame(views)):
        image, kp = views.render(i, camera)
        gray = image.astype(float).mean(axis=2)
        pose = views.walk.pose(i)
        body, ear = np.mean(pose.body_bgr), np.mean(pose.ear_bgr)

        for j in (LEFTEAR, RIGHTEAR):
            assert abs(_at(gray, kp[j]) - ear) < 12, (i, camera, j)
        toward_tail = (kp[TAILBASE] - kp[SNOUT]) / np.linalg.norm(kp[TAILBASE] - kp[SNOUT])
        assert (
            abs(_at(gray, kp[SNOUT] + 2.0 * toward_tail) - body) < 12
        )  # just inside the head's tip
        assert abs(_at(gray, kp[TAILBASE] - 1.5 * toward_tail) - body) < 12  # where the tail leaves


@pytest.mark.parametrize("camera", ["cam0", "cam2"])
def test_every_texel_of_the_animal_projects_onto_its_colour_in_the_view(views, camera):
    # forward (cv2.projectPoints of each sprite texel) against the renderer's backward mapping
    # (undistort, ray, plane), on the floor and in the air
    model = views.rig.camera(camera)
    for i in (300, _rearing_frame(views)):
        image, _ = views.render(i, camera)
        pose = views.walk.pose(i)
        sprite = np.zeros((ARENA_TEXELS, ARENA_TEXELS, 3), np.uint8)
        draw_animal(sprite, pose)
        checked = 0
        for colour in (pose.body_bgr, pose.ear_bgr):
            same = np.all(sprite == colour, axis=2).astype(np.uint8)
            v, u = np.nonzero(cv2.erode(same, np.ones((5, 5), np.uint8)))  # away from edges
            world = np.column_stack([texel_to_world(u, v), np.full(u.size, views.height_mm(i))])
            px = np.round(model.project(world)).astype(int)
            seen = image[px[:, 1], px[:, 0]].astype(int)
            assert np.abs(seen - colour).max() <= 6, (i, camera, colour)
            checked += len(px)
        assert checked > 300


def test_truth_is_one_scene_seen_by_every_camera_and_repeatable():
    a = SyntheticViewSource("cam0", seed=5, realtime=False, max_frames=40)
    b = SyntheticViewSource("cam2", seed=5, realtime=False, max_frames=40)
    again = SyntheticViewSource("cam0", seed=5, realtime=False, max_frames=40)
    with a, b, again:
        for _ in range(40):
            fa, fb, fc = a.read(), b.read(), again.read()
            i = fa.camera_frame_id
            assert fb.camera_frame_id == i == fc.camera_frame_id
            np.testing.assert_array_equal(a.truth3d(i), b.truth3d(i))
            np.testing.assert_array_equal(fa.image, fc.image)
            for source, frame in ((a, fa), (b, fb)):
                projected = source.camera_model.project(source.truth3d(i))
                np.testing.assert_allclose(frame.ground_truth, projected, atol=1e-4)
                assert frame.ground_truth.shape == (4, 2)
        assert a.read() is None
    assert not np.array_equal(a.truth3d(7), SyntheticViews(seed=6).truth3d(7))


def test_the_animal_rears_off_the_floor_at_times(views):
    heights = np.array([views.height_mm(i) for i in range(3000)])
    assert heights.min() == 0.0 and 10.0 < heights.max() <= 40.0
    assert 0.05 < (heights > 0).mean() < 0.5
    assert np.abs(np.diff(heights)).max() < 3.0  # no jumps: at most 2 mm a frame at 100 fps
    i = int(np.argmax(heights))
    np.testing.assert_allclose(views.truth3d(i)[:, 2], heights[i])
    snout_to_tail = np.linalg.norm(views.truth3d(i)[SNOUT] - views.truth3d(i)[TAILBASE])
    assert 50.0 < snout_to_tail < 75.0  # a mouse-sized animal, mm


def test_the_rig_keeps_the_animal_in_every_view_at_the_trained_size():
    rig = virtual_rig()
    assert rig.names == ["cam0", "cam1", "cam2"]
    lengths = []
    for seed in (0, 1):
        views = SyntheticViews(rig, seed=seed)
        for i in range(0, 4000, 25):
            truth = rig.project(views.truth3d(i))  # [C, K, 2]
            assert (truth >= 0).all() and (truth[..., 0] <= 319).all()
            assert (truth[..., 1] <= 239).all()
            lengths.append(np.linalg.norm(truth[:, SNOUT] - truth[:, TAILBASE], axis=-1))
    # the demo network saw 41-62 px snout to tail base (a sixth of 240 px, +-20 %)
    assert 44.0 < np.median(lengths) < 58.0
    for camera in rig.cameras:
        axis = camera.rotation_matrix[2]
        tilt = np.degrees(np.arccos(-axis[2]))
        assert 25.0 <= tilt <= 45.0
        assert abs(camera.distortions[0]) > 0


def test_drop_every_loses_exactly_those_frames():
    source = make_source(
        "synthetic_view", camera="cam1", realtime=False, max_frames=20, drop_every=3
    )
    with source:
        frames = list(iter(source.read, None))
    ids = [f.camera_frame_id for f in frames]
    assert ids == [i for i in range(20) if i % 3 != 2]
    assert [f.frame_index for f in frames] == list(range(len(ids)))
    assert [f.camera_dropped for f in frames] == [(i + 1) // 3 for i in ids]
    assert all(f.t_camera_ns == round(f.camera_frame_id * 1e7) for f in frames)
    assert source.counters()["camera_dropped"] == 6


def test_occluder_hides_the_animal_in_its_frames_only(views):
    hide = Occluder(start=5, stop=7)
    for i, hidden in ((4, False), (5, True), (6, True), (7, False)):
        image, kp = views.render(i, "cam1", hide)
        values = image[np.round(kp[:, 1]).astype(int), np.round(kp[:, 0]).astype(int)]
        assert np.all(values == 128) == hidden
    box = Occluder(box=(10, 20, 50, 40), gray=30)
    image, _ = views.render(0, "cam1", box)
    assert (image[20:40, 10:50] == 30).all() and not (image[40:60, 10:50] == 30).all()


def test_paced_sources_opened_together_share_one_schedule():
    sources = [SyntheticViewSource(f"cam{c}", fps=50.0) for c in range(3)]
    for source in sources:
        source.open()
    try:
        assert len({s.epoch_ns for s in sources}) == 1
        for source in sources:
            frame = source.read()
            assert frame.t_capture_ns >= source.due_ns(frame.camera_frame_id)  # never early
    finally:
        for source in sources:
            source.close()


def test_a_paced_source_read_too_late_loses_the_frames_it_missed():
    source = SyntheticViewSource("cam0", fps=1000.0)
    with source:
        time.sleep(0.12)  # frame 0 is due at most 52 ms after opening
        frame = source.read()
    assert frame.camera_frame_id >= 60 and frame.camera_dropped >= 60
    assert frame.frame_index == 0


def test_the_plugin_is_listed_and_refuses_a_camera_not_in_the_rig():
    assert "synthetic_view" in SOURCES.names()
    choice = SOURCES.choose({"kind": "synthetic_view", "camera": "cam3", "n_cameras": 4})
    assert choice.options.camera == "cam3"
    with pytest.raises(pydantic.ValidationError, match="'cam3' is not in the virtual rig") as exc:
        SOURCES.choose({"kind": "synthetic_view", "camera": "cam3"})
    assert "cam0, cam1, cam2" in str(exc.value)
    with pytest.raises(pydantic.ValidationError, match="x0 < x1"):
        SOURCES.choose({"kind": "synthetic_view", "occlude": {"box": [50, 0, 10, 10]}})
    with pytest.raises(pydantic.ValidationError, match="drop_every"):
        SOURCES.choose({"kind": "synthetic_view", "drop_every": 1})
    source = make_source("synthetic_view", camera="cam2", occlude={"start": 3}, realtime=False)
    assert isinstance(source, SyntheticViewSource) and source.occluder == Occluder(start=3)
    assert source.size == (320, 240) and source.source_id == "synthetic_view0:cam2"
