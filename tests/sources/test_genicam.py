"""The genicam source through harvesters and the genicam package's virtual GenTL camera (viky)."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("harvesters", reason="the genicam extra (harvesters) is not installed")
pytest.importorskip("genicam", reason="the genicam extra (genicam) is not installed")

from realtime_pose.sources import make_source
from realtime_pose.sources.camera_limits import CameraOptionError


def test_grabs_frames_from_the_virtual_camera():
    source = make_source(
        "genicam", device="0", fps=200, pixel_format="Mono8", width=320, height=240
    )
    with source:
        assert source.size == (320, 240) and source.source_id == "genicam:0"
        frames = [source.read() for _ in range(210)]
        counters = source.counters()
    ids = [f.camera_frame_id for f in frames]
    assert np.all(np.diff(ids) >= 1)
    assert counters["camera_dropped"] == sum(np.diff(ids) - 1)
    assert frames[0].image.shape == (240, 320, 3)
    assert all(f.t_camera_ns == -1 and f.t_capture_ns == f.t_arrival_ns for f in frames)


def test_colour_frames_are_converted_to_bgr():
    source = make_source("genicam", device="VikyTL_DEV_blue", pixel_format="RGBa8")
    with source:
        frame = source.read()
    assert frame.image.shape == (400, 400, 3) and frame.image.dtype == np.uint8


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("width", 5000, r"'width' = 5000 is outside the camera's Width: 100 \.\. 800"),
        ("pixel_format", "BGR8", r"'pixel_format' = BGR8 is not available .*RGBa8, Mono8"),
        ("fps", 500, r"'fps' = 500 is outside the camera's AcquisitionFrameRate: 1 \.\. 200"),
        ("trigger", "software", r"'trigger' cannot be set: the camera has no writable TriggerMode"),
        (
            "exposure_us",
            100,
            r"'exposure_us' cannot be set: the camera has no writable ExposureTime",
        ),
    ],
)
def test_refuses_a_bad_option_naming_the_limit(option, value, message):
    source = make_source("genicam", **{option: value})
    with pytest.raises(CameraOptionError, match=message):
        source.open()
    source.close()


def test_frames_lost_for_want_of_a_buffer_are_counted():
    """Two buffers and a slow reader: the producer drops frames, seen as frame-id gaps."""
    source = make_source("genicam", fps=200, buffers=2, pixel_format="Mono8")
    with source:
        frames = []
        for _ in range(8):
            frames.append(source.read())
            time.sleep(0.03)
        counters = source.counters()
    ids = np.array([f.camera_frame_id for f in frames])
    assert counters["camera_drops"]["skipped"] == int((np.diff(ids) - 1).sum()) > 0
    assert frames[-1].camera_dropped == counters["camera_dropped"]
    assert [f.frame_index for f in frames] == list(range(8))


def test_stop_restart():
    source = make_source("genicam", fps=100)
    with source:
        first = source.read()
    with source:
        again = source.read()
    assert again.frame_index == first.frame_index + 1 and again.camera_frame_id >= 1


def test_discover_the_virtual_cameras():
    from realtime_pose.sources.genicam import GenicamOptions, GenicamSource

    found = GenicamSource.discover(GenicamOptions())
    assert [c["device"] for c in found] == ["VikyTL_DEV_red", "VikyTL_DEV_green", "VikyTL_DEV_blue"]
    assert found[0]["limits"]["fps"] == [1.0, 200.0]
