"""Run inside a private network namespace (``unshare -n``, loopback only): Aravis's fake GigE
Vision camera on 127.0.0.1 grabbed through the aravis source. Prints one JSON line of results.

Usage: python -m tests.sources.aravis_gige_child LOST_PACKET_RATIO FRAMES
"""

from __future__ import annotations

import json
import sys
import time

import gi

gi.require_version("Aravis", "0.8")
from gi.repository import Aravis  # noqa: E402

from realtime_pose.sources import make_source  # noqa: E402


def main() -> None:
    lost_ratio, frames = float(sys.argv[1]), int(sys.argv[2])
    fake = Aravis.GvFakeCamera.new_full("127.0.0.1", "GV01", None)
    fake.set_property("gvsp-lost-ratio", lost_ratio)
    common = {"kind": "aravis", "interfaces": ["GigEVision"], "device": "127.0.0.1"}
    source = make_source(
        {**common, "width": 320, "height": 240, "fps": 250, "exposure_us": 1000, "buffers": 16}
    )
    with source:
        t0 = time.monotonic()
        grabbed = [source.read() for _ in range(frames)]
        seconds = time.monotonic() - t0
        counters = source.counters()
    trigger = make_source({**common, "trigger": "software", "fps": 100, "trigger_timeout_s": 1.0})
    with trigger:
        triggered = [trigger.read().camera_frame_id for _ in range(10)]
        trigger_mode = trigger.camera.get_string("TriggerMode")
    result = {
        "source_id": source.source_id,
        "fps": (frames - 1) / seconds,
        "ids": [f.camera_frame_id for f in grabbed],
        "camera_dropped": [f.camera_dropped for f in grabbed],
        "late_ns": [f.t_arrival_ns - f.t_capture_ns for f in grabbed],
        "counters": counters,
        "triggered": triggered,
        "trigger_mode": trigger_mode,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
