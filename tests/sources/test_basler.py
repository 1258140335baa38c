"""The Basler source through pylon's camera emulator (emulator transport layer only)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.sources.camera_fixtures import openfield_frames, openfield_paths

pytest.importorskip("pypylon", reason="the basler extra (pypylon) is not installed")

from realtime_pose.live.grabber import Grabber
from realtime_pose.sources import make_source
from realtime_pose.sources.base import TriggerTimeoutError
from realtime_pose.sources.camera_limits import CameraOptionError

EMU = {"device_class": "BaslerCamEmu"}


def openfield_camera(**options):
    return make_source(
        "basler",
        **EMU,
        image_folder=str(openfield_frames()),
        pixel_format="BGR8",
        width=640,
        height=480,
        **options,
    )


def test_grabs_openfield_frames_with_event_timestamps():
    images = [cv2.imread(str(p)) for p in openfield_paths()]
    source = openfield_camera(fps=100)
    with source:
        assert source.size == (640, 480) and source.source_id == "basler:0815-0000"
        frames = [source.read() for _ in range(210)]
    ids = [f.camera_frame_id for f in frames]
    assert ids == list(range(210))
    assert [f.frame_index for f in frames] == list(range(210))
    for f in frames[::7]:  # the emulator plays the folder in name order, looping
        assert np.array_equal(f.image, images[f.camera_frame_id % len(images)])
    # ExposureEnd events time (nearly) every frame; the exposure ends before the frame arrives
    stamped = [f for f in frames if f.t_camera_ns >= 0]
    assert len(stamped) >= 200 and source.event_stamped == len(stamped)
    assert all(f.t_capture_ns == f.t_camera_ns for f in stamped)  # host monotonic already
    assert all(0 <= f.t_arrival_ns - f.t_capture_ns < 1_000_000_000 for f in stamped)
    assert source.counters()["camera_dropped"] == 0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("width", 5000, r"option 'width' = 5000 is outside the camera's Width: 1 \.\. 4096"),
        ("exposure_us", 20_000_000, r"'exposure_us' = 20000000 is outside .*ExposureTime: 1 \.\."),
        ("binning", 8, r"'binning' = 8 is outside the camera's BinningHorizontal: 1 \.\. 4"),
        ("pixel_format", "YUV422", r"'pixel_format' = YUV422 is not available .*Mono8, Mono10"),
        ("gain", 99.0, r"'gain' = 99 is outside the camera's Gain: 0 \.\. 48"),
        ("fps", 9000.0, r"'fps' = 9000 is outside .*AcquisitionFrameRate: 0.01 \.\. 5000"),
    ],
)
def test_refuses_a_bad_option_naming_the_limit(option, value, message):
    source = make_source("basler", **EMU, **{option: value})
    with pytest.raises(CameraOptionError, match=message):
        source.open()
    source.close()


def test_failed_buffers_are_counted_apart_from_grabber_drops():
    source = openfield_camera(fps=100)
    with source:
        frames = [source.read() for _ in range(10)]
        source.camera.ForceFailedBufferCount.Value = 3
        source.camera.ForceFailedBuffer.Execute()
        frames += [source.read() for _ in range(10)]
        counters = source.counters()
    assert counters["camera_drops"]["incomplete"] == 3 and counters["camera_dropped"] == 3
    ids = [f.camera_frame_id for f in frames]
    assert len(set(np.diff(ids))) == 2 and max(np.diff(ids)) == 4  # one gap of three ids
    assert [f.frame_index for f in frames] == list(range(20))  # no grabber drop in between
    assert frames[-1].camera_dropped == 3 and frames[0].camera_dropped == 0


def test_stop_restart_continues_the_index_and_restarts_ids():
    source = openfield_camera(fps=100)
    source.open()
    first = [source.read() for _ in range(5)]
    source.close()
    source.close()  # twice is fine
    source.open()
    again = [source.read() for _ in range(5)]
    source.close()
    assert [f.frame_index for f in first + again] == list(range(10))
    assert again[0].camera_frame_id == 0 and source.counters()["camera_drops"]["skipped"] == 0


def test_software_trigger_delivers_one_frame_per_trigger():
    source = make_source("basler", **EMU, trigger="software", fps=50, trigger_timeout_s=1.0)
    with source:
        frames = [source.read() for _ in range(15)]
        assert source.camera.TriggerMode.Value == "On"
        assert source.camera.TriggerSource.Value == "Software"
    assert [f.camera_frame_id for f in frames] == list(range(15))


def test_a_hardware_trigger_that_never_comes_is_reported_not_fatal():
    source = make_source(
        "basler", **EMU, trigger="line", trigger_line="Line1", trigger_timeout_s=0.2
    )
    events = []
    grabber = Grabber(source, stall_timeout_s=2.0, on_status=events.append)
    grabber.start()
    try:
        assert grabber.get(timeout_s=0.7) is None
    finally:
        grabber.stop()
    kinds = [e["event"] for e in events]
    assert "trigger_timeout" in kinds and "reopened" not in kinds
    assert "no trigger on Line1 within 0.2 s" in events[0]["message"]
    assert source.counters()["camera_drops"]["trigger_timeout"] >= 2
    with source, pytest.raises(TriggerTimeoutError):
        source.read()


def test_strobe_line_drives_exposure_active():
    source = make_source("basler", **EMU, strobe_line="Line2")
    with source:
        cam = source.camera
        assert cam.LineSelector.Value == "Line2" and cam.LineSource.Value == "ExposureActive"


def test_discover_lists_the_emulated_cameras_with_limits():
    from realtime_pose.sources.basler import BaslerOptions, BaslerSource

    found = BaslerSource.discover(BaslerOptions(**EMU))
    assert [c["serial"] for c in found] == ["0815-0000", "0815-0001"]
    assert found[0]["interface"] == "BaslerCamEmu" and found[0]["limits"]["width"] == [1, 4096]
    assert "BGR8Packed" in found[0]["limits"]["pixel_format"]
