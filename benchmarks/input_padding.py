"""What padding the network input to a multiple of 16 does to the keypoints.

    python benchmarks/input_padding.py BUNDLE [--rows-off 8] [--json FILE] [--overwrite]

The bundle's held-out frames (its project's test split) are cut by ``--rows-off`` rows at the
bottom, so that the height is 8 times an odd number (480 → 472 = 8·59), the size a camera such
as 1920×1080 (1080 = 8·135) delivers. The keypoints on the cut frame should equal those on the
whole frame (nothing above the cut moved). Measured with the input padded (bottom and right)
to a multiple of 16, as bundles exported with ``input.pad_to: 16`` run, and without padding
(the network at the frame's own size, as before), each as the distance to the whole frame's
keypoints and as the error against the labels, for keypoints at least 40 px above the cut.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, project_labels, write_result
from realtime_pose.bundle import load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.exporters.frames import read_rgb_frames
from realtime_pose.geometry import Size
from realtime_pose.inference.estimator import PoseEstimator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--rows-off", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)

    bundle = load_bundle(args.bundle)
    project = Path(bundle.meta.provenance["project"])
    names = bundle.meta.provenance["split"]["test"]
    frames = [
        np.ascontiguousarray(f[:, :, ::-1]) for f in read_rgb_frames([project / n for n in names])
    ]
    labels = project_labels(project, names)
    if labels is None:
        print(f"{bundle.root}: its project's labels are needed")
        return 2
    engine = open_engine(bundle, dict(threads=2, warmup_runs=0))
    padded = PoseEstimator(bundle, engine)  # padded to 16 (input.pad_to of our exports)
    padded.sizing = dataclasses.replace(padded.sizing, pad=16)
    unpadded = PoseEstimator(bundle, engine)
    unpadded.sizing = dataclasses.replace(unpadded.sizing, pad=1)
    height = frames[0].shape[0]
    cut = height - args.rows_off
    rows = {"whole": [], "cut_padded": [], "cut_unpadded": []}
    for frame in frames:
        rows["whole"].append(padded.estimate(frame).copy())
        rows["cut_padded"].append(padded.estimate(frame[:cut]).copy())
        rows["cut_unpadded"].append(unpadded.estimate(frame[:cut]).copy())
    poses = {k: np.stack(v) for k, v in rows.items()}
    keep = np.isfinite(labels).all(axis=2) & (labels[..., 1] < cut - 40)
    result = {
        "bundle": str(bundle.root),
        "frames": len(frames),
        "frame_height": height,
        "cut_height": cut,
        "network_input_padded": list(padded.network_size(Size.of(frames[0][:cut]))),
        "keypoints_compared": int(keep.sum()),
    }
    for name in ("cut_padded", "cut_unpadded"):
        moved = np.linalg.norm(poses[name][..., :2] - poses["whole"][..., :2], axis=2)[keep]
        error = np.linalg.norm(poses[name][..., :2] - labels, axis=2)[keep]
        result[name] = {
            "vs_whole_frame_mean_px": round(float(moved.mean()), 4),
            "vs_whole_frame_max_px": round(float(moved.max()), 4),
            "vs_labels_mean_px": round(float(error.mean()), 4),
            "mean_dy_px": round(
                float((poses[name][..., 1] - poses["whole"][..., 1])[keep].mean()), 4
            ),
        }
    whole_error = np.linalg.norm(poses["whole"][..., :2] - labels, axis=2)[keep]
    result["whole_vs_labels_mean_px"] = round(float(whole_error.mean()), 4)
    print(result)
    path = write_result("input_padding", result, args.json, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
