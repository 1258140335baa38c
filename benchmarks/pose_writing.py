"""Writing the poses of one long video: DeepLabCut tables (.h5 + .csv) and NWB (ndx-pose).

    python benchmarks/pose_writing.py [--frames 108000] [--repeats 3]

The default is one hour at 30 FPS with the demo bundle's four keypoints: what the driver of a
distributed analysis (``realtime-pose analyze --workers N``) writes on its one writer thread for
each video it completes, so its time bounds how many nodes that driver can keep busy
(docs/scale-out.md). It calls ``analyze``'s own writer, ``pose_files.write_units``, once per
unit, with the provenance ``analyze`` stores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, write_result
from realtime_pose.bundle import load_bundle
from realtime_pose.formats.pose_files import OutputPlan, provenance, write_units
from realtime_pose.util.paths import DEMO_BUNDLE

UNITS = {"dlc": "dlc_h5_csv", "nwb": "nwb"}
"""``write_units`` unit → the name its times are reported under."""


def _poses(frames: int, k: int, seed: int = 0) -> np.ndarray:
    """A random walk per keypoint in a 640x480 frame, likelihoods in [0, 1]: ``[frames, k, 3]``."""
    rng = np.random.default_rng(seed)
    xy = np.cumsum(rng.normal(0, 1.5, size=(frames, k, 2)), axis=0) + np.array([320.0, 240.0])
    likelihood = rng.uniform(0.0, 1.0, size=(frames, k, 1))
    return np.concatenate([xy, likelihood], axis=2)


def _video(path: Path) -> Path:
    """A short real video for NWB's external link (its frames are not read)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=108_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    bundle = load_bundle(DEMO_BUNDLE)
    poses = _poses(args.frames, len(bundle.keypoints))
    times: dict[str, list[float]] = {name: [] for name in UNITS.values()}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="rp-write-") as tmp:
        video = _video(Path(tmp, "video.avi"))
        record = provenance(video, bundle, "benchmark", None)
        for r in range(args.repeats):
            plan = OutputPlan(video, Path(tmp, f"poses{r}"), formats=tuple(UNITS))
            for unit, name in UNITS.items():
                t0 = time.perf_counter()
                written = write_units(
                    plan, [unit], poses, bundle, scorer="benchmark", fps=30.0, provenance=record
                )
                times[name].append(time.perf_counter() - t0)
                sizes.update({f"{f.suffix.lstrip('.')}_bytes": f.stat().st_size for f in written})
    result = {
        "frames": args.frames,
        "keypoints": len(bundle.keypoints),
        "repeats": args.repeats,
        "seconds": {name: [round(t, 3) for t in ts] for name, ts in times.items()},
        "median_s": {name: round(statistics.median(ts), 3) for name, ts in times.items()},
        "sizes": sizes,
    }
    path = write_result("pose_writing", result, args.json, overwrite=args.overwrite)
    print(f"median: .h5 + .csv {result['median_s']['dlc_h5_csv']} s, ", end="")
    print(f".nwb {result['median_s']['nwb']} s ({args.frames} frames); wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
