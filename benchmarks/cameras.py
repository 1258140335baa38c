"""Camera backends through their vendors' emulators: hand-off latency, FPS, clock residual.

    python benchmarks/cameras.py [--frames N] [--overwrite] [--json FILE]

For each backend (pylon's camera emulator, Aravis's in-process fake camera, Aravis's fake GigE
Vision camera on 127.0.0.1 inside ``unshare -n``, and harvesters with the genicam package's
virtual camera), frames go through the live loop's grabber to a consumer thread that takes each
one as a fast loop would (:func:`realtime_pose.live.camera_report.check_camera`). Per run:

- ``handoff_us``: the camera's timestamp mapped to the host (``t_capture_ns``) → frame in the
  loop's hands; ``arrival_to_loop_us``: the buffer reaching the host → frame in the loop's hands
  (the grabber's own share). Where a backend gives no timestamp (viky), capture = arrival.
- ``fps_requested`` vs ``fps_achieved`` (frames the source delivered per second).
- the clock model: every run's (camera timestamp, arrival) pairs are also fed to a
  ``device``-mode :class:`~realtime_pose.sources.camera_clock.ClockModel`, as for a camera whose
  clock is unknown. These emulators' clocks *are* host clocks, so the exact mapping is known and the
  model can be scored: ``clock_model.error_us`` is its mapped time minus the exact exposure time
  (its median is the smallest transfer delay, which arrival times alone cannot separate from
  the exposure; the spread around it is the fit's own error), ``clock_model.residual_us`` the
  arrivals' distance above the fitted envelope (transfer jitter).

The VM is shared: compare figures within one run. The pylon emulator caps near 96 FPS (and is
slower still when it decodes PNG files): it is measured at its cap, not at 200.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PYLON_CAMEMU", "2")

from benchmarks.common import add_overwrite_argument, write_result
from realtime_pose.live.camera_report import CameraReport, check_camera
from realtime_pose.sources import make_source
from realtime_pose.sources.camera_clock import ClockModel
from realtime_pose.util.stats import Summary

OPENFIELD = Path("/work/shared/datasets/openfield-Pranav-2018-10-30/labeled-data/m4s1")

RUNS: dict[str, dict[str, Any]] = {
    "basler_emulator_mono8_640x480_req100": {
        "kind": "basler",
        "device_class": "BaslerCamEmu",
        "pixel_format": "Mono8",
        "width": 640,
        "height": 480,
        "fps": 100,
    },
    "basler_emulator_mono8_640x480_req200": {
        "kind": "basler",
        "device_class": "BaslerCamEmu",
        "pixel_format": "Mono8",
        "width": 640,
        "height": 480,
        "fps": 200,
    },
    "basler_emulator_openfield_png_req100": {
        "kind": "basler",
        "device_class": "BaslerCamEmu",
        "image_folder": str(OPENFIELD),
        "pixel_format": "BGR8",
        "width": 640,
        "height": 480,
        "fps": 100,
    },
    "aravis_fake_mono8_640x480_req200": {
        "kind": "aravis",
        "device": "Fake_1",
        "interfaces": ["Fake"],
        "width": 640,
        "height": 480,
        "fps": 200,
        "exposure_us": 1000,
    },
    "aravis_fake_mono8_640x480_req500": {
        "kind": "aravis",
        "device": "Fake_1",
        "interfaces": ["Fake"],
        "width": 640,
        "height": 480,
        "fps": 500,
        "exposure_us": 1000,
    },
    "genicam_viky_mono8_400x400_req200": {"kind": "genicam", "fps": 200, "pixel_format": "Mono8"},
}
GIGE = {
    "kind": "aravis",
    "interfaces": ["GigEVision"],
    "device": "127.0.0.1",
    "width": 640,
    "height": 480,
    "fps": 200,
    "exposure_us": 1000,
    "buffers": 32,
}


def clock_scores(report: CameraReport) -> dict[str, Any] | None:
    """Score a device-mode clock model against the exact mapping the emulator's clock allows."""
    timing = report.timing
    if timing is None or not np.any(timing[:, 0] >= 0):
        return None
    timing = timing[timing[:, 0] >= 0]
    camera, arrival, exact = timing[:, 0], timing[:, 1], timing[:, 2]
    model = ClockModel()
    fitted = np.array([model.update(int(c), int(a)) for c, a in zip(camera, arrival, strict=True)])
    settled = slice(min(64, len(fitted) // 4), None)  # after the first envelope points
    error = fitted[settled] - exact[settled]
    spread = error - np.median(error)
    return {
        "error_us": Summary.of(error, "us", 1).to_dict(mean=True),
        "error_minus_median_abs_us": Summary.of(np.abs(spread), "us", 1).to_dict(),
        "residual_us": Summary.of(arrival[settled] - fitted[settled], "us", 1).to_dict(),
        "drift_ppm": round(model.fit.drift_ppm, 2) if model.fit else None,
        "jumps": model.jumps,
    }


def run_one(name: str, section: dict[str, Any], frames: int) -> dict[str, Any]:
    source = make_source(dict(section))
    report, _ = check_camera(source, frames)
    result = report.as_dict()
    result["section"] = section
    result["clock_model"] = clock_scores(report)
    print(f"{name}:")
    print("\n".join(report.lines()))
    return result


def gige_in_namespace(frames: int) -> dict[str, Any]:
    """The GigE fake run in a private network namespace (loopback only)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return {"skipped": "unshare/ip not installed"}
    command = (
        f"ip link set lo up && exec {sys.executable} {Path(__file__).resolve()} --child-gige "
        f"--frames {frames}"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run(
        ["unshare", "-n", "sh", "-c", command], capture_output=True, text=True, env=env, timeout=300
    )
    if out.returncode != 0:
        return {"skipped": f"unshare -n failed: {out.stderr[-500:]}"}
    sys.stdout.write("\n".join(out.stdout.splitlines()[:-1]) + "\n")
    return json.loads(out.stdout.splitlines()[-1])


def child_gige(frames: int) -> None:
    import gi

    gi.require_version("Aravis", "0.8")
    from gi.repository import Aravis

    fake = Aravis.GvFakeCamera.new_full("127.0.0.1", "GV01", None)
    result = run_one("aravis_gige_fake_loopback_640x480_req200", GIGE, frames)
    del fake
    print(json.dumps(result, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--json", type=Path, help="result file (default benchmarks/results/)")
    parser.add_argument("--only", help="comma-separated run names")
    parser.add_argument("--child-gige", action="store_true", help=argparse.SUPPRESS)
    add_overwrite_argument(parser)
    args = parser.parse_args()
    if args.child_gige:
        child_gige(args.frames)
        return
    only = set(args.only.split(",")) if args.only else None
    results: dict[str, Any] = {}
    for name, section in RUNS.items():
        if only and name not in only:
            continue
        if "image_folder" in section and not OPENFIELD.is_dir():
            results[name] = {"skipped": f"{OPENFIELD} not found"}
            continue
        try:
            results[name] = run_one(name, section, args.frames)
        except Exception as exc:  # a backend not installed: say so, measure the others
            results[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            print(f"{name}: skipped ({exc})")
    if not only or "aravis_gige_fake_loopback_640x480_req200" in only:
        results["aravis_gige_fake_loopback_640x480_req200"] = gige_in_namespace(args.frames)
    path = write_result(
        "cameras", {"frames": args.frames, "runs": results}, args.json, overwrite=args.overwrite
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
