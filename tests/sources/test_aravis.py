"""The aravis source through Aravis's in-process fake camera, and its fake GigE Vision camera on
127.0.0.1 inside a private network namespace (``unshare -n``: nothing leaves loopback)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from realtime_pose.sources import make_source
from realtime_pose.sources.camera_limits import CameraOptionError

gi = pytest.importorskip("gi", reason="the aravis extra (PyGObject) is not installed")
try:
    gi.require_version("Aravis", "0.8")
    from gi.repository import Aravis
except (ValueError, ImportError):
    pytest.skip(
        "Aravis 0.8 is not installed (apt-get install gir1.2-aravis-0.8)", allow_module_level=True
    )

REPO = Path(__file__).resolve().parents[2]
FAKE = {"device": "Fake_1", "interfaces": ["Fake"]}


def test_grabs_frames_across_the_16_bit_wrap():
    source = make_source("aravis", **FAKE, width=320, height=240, fps=400, exposure_us=1000)
    with source:
        assert source.size == (320, 240) and source.source_id == "aravis:1"
        frames = [source.read() for _ in range(250)]
        counters = source.counters()
    ids = [f.camera_frame_id for f in frames]
    assert ids[0] == 65401 and 1 in ids and 0 not in ids  # wraps past 65535, skipping 0
    assert counters["camera_dropped"] == 0 and counters["frame_id_restarts"] == 0
    assert frames[0].image.shape == (240, 320, 3)
    # the fake stamps buffers with the host's real-time clock: mapped exactly, before arrival
    assert counters["clock"] == "host_realtime"
    late = np.array([f.t_arrival_ns - f.t_capture_ns for f in frames])
    assert np.all(late >= 0) and np.median(late) < 50_000_000


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("exposure_us", 5, r"'exposure_us' = 5 is outside the camera's ExposureTimeAbs: 10 \.\."),
        ("width", 5000, r"'width' = 5000 is outside the camera's Width: 1 \.\. 2048"),
        ("pixel_format", "YUV422", r"'pixel_format' = YUV422 is not available .*Mono8, RGB8"),
        ("fps", 5000, r"'fps' = 5000 is outside the camera's AcquisitionFrameRate: 0.1 \.\. 1000"),
        ("binning", 32, r"'binning' = 32 is outside the camera's BinningHorizontal: 1 \.\. 16"),
    ],
)
def test_refuses_a_bad_option_naming_the_limit(option, value, message):
    source = make_source("aravis", **FAKE, **{option: value})
    with pytest.raises(CameraOptionError, match=message):
        source.open()
    source.close()


def test_a_size_mismatched_buffer_is_counted_as_failed():
    source = make_source("aravis", **FAKE, width=64, height=48, fps=200, exposure_us=1000)
    with source:
        source.read()
        source.stream.push_buffer(Aravis.Buffer.new_allocate(16))  # too small for an image
        frames = [source.read() for _ in range(20)]
        counters = source.counters()
    assert counters["camera_drops"]["failed"] == 1 and counters["camera_dropped"] == 1
    assert frames[-1].camera_dropped == 1
    assert np.all(np.diff([f.frame_index for f in frames]) == 1)


def test_stop_restart_and_software_trigger():
    source = make_source("aravis", **FAKE, width=64, height=48, exposure_us=1000)
    with source:
        first = source.read()
    with source:
        again = source.read()
    assert again.frame_index == first.frame_index + 1
    triggered = make_source("aravis", **FAKE, trigger="software", fps=100, exposure_us=1000)
    with triggered:
        assert triggered.camera.get_string("TriggerSource") == "Software"
        ids = [triggered.read().camera_frame_id for _ in range(10)]
    assert np.all(np.diff(ids) == 1)


def test_discover_the_fake_camera_only():
    from realtime_pose.sources.aravis import AravisOptions, AravisSource

    found = AravisSource.discover(AravisOptions(interfaces=["Fake"]))
    assert [(c["model"], c["serial"], c["interface"]) for c in found] == [("Fake", "1", "Fake")]
    assert (
        found[0]["limits"]["sensor"] == "2048x2048" and "Software" in found[0]["limits"]["triggers"]
    )


def _in_private_netns(*args: str) -> dict:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare/ip (util-linux, iproute2) are not installed")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n is not permitted here (needs root or user namespaces)")
    command = (
        f"ip link set lo up && exec {sys.executable} -m tests.sources.aravis_gige_child "
        + " ".join(args)
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        ["unshare", "-n", "sh", "-c", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_gige_fake_over_loopback_in_a_private_namespace():
    result = _in_private_netns("0", "300")
    assert result["source_id"] == "aravis:GV01"
    ids = result["ids"]
    assert ids[0] == 65401 and 1 in ids  # GigE Vision block ids wrap at 16 bits, skip 0
    assert result["counters"]["camera_dropped"] == 0
    assert result["triggered"] == list(range(result["triggered"][0], result["triggered"][0] + 10))
    assert result["trigger_mode"] == "On"
    assert min(result["late_ns"]) >= 0


def test_gige_packet_loss_is_counted_as_missing_packets():
    result = _in_private_netns("0.002", "200")
    drops = result["counters"]["camera_drops"]
    assert drops["missing_packets"] > 0
    assert result["counters"]["camera_dropped"] >= result["camera_dropped"][-1] > 0
    # the ids of the frames that came through skip the ones lost or left incomplete: every
    # skipped id is counted (a failed buffer whose id was unusable is counted without a gap)
    ids = np.array(result["ids"])
    steps = np.diff(ids) % 65536 - (np.diff(ids) < 0)
    assert np.all(steps >= 1)
    between = result["camera_dropped"][-1] - result["camera_dropped"][0]
    assert int((steps - 1).sum()) <= between <= int((steps - 1).sum()) + 2


def test_device_clock_model_on_real_buffers_stays_near_the_exact_mapping():
    """The fake's clock is the host's real-time clock, so the exact mapping is known: a
    device-mode clock model fitted to the same buffers lands within the transfer delay."""
    import time

    source = make_source(
        "aravis", **FAKE, width=64, height=48, fps=400, exposure_us=1000, timestamp_clock="device"
    )
    frames, offsets = [], []  # the real-time clock may be slewed (NTP): its offset now and then
    with source:
        for _ in range(300):
            frames.append(source.read())
            offsets.append(time.monotonic_ns() - time.time_ns())
        assert source.counters()["clock"] == "device"
    error = np.array(
        [f.t_capture_ns - (f.t_camera_ns + o) for f, o in zip(frames, offsets, strict=True)][50:]
    )
    assert np.all(error >= -1_000_000)  # never earlier than the exposure (1 ms slack: µs stamps)
    assert np.median(error) < 10_000_000  # the smallest transfer delay, a few ms at most
    assert all(f.t_capture_ns <= f.t_arrival_ns for f in frames)
