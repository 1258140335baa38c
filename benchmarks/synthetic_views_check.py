"""The demo network on the virtual rig's oblique views, and the 3D error after triangulation.

    python benchmarks/synthetic_views_check.py [--seeds 0 1 2] [--frames 100] [--step 20]
        [--json FILE] [--overwrite]

For each seed, ``--frames`` scene frames ``--step`` apart are rendered by every camera of
:func:`realtime_pose.sources.synthetic_views.virtual_rig` (three 320×240 cameras, 30–40° from
vertical) and run through the demo bundle (ONNX Runtime). Reported: the 2D error per camera
against the true projections (median / p90 px, and the fraction found within 10 px), and the 3D
error against :meth:`SyntheticViews.truth3d` after triangulating the three views (median / p90
mm), by a plain DLT over every view and by :class:`~realtime_pose.inference.triangulate.
Triangulator`'s outlier-view rejection; then the same with ``cam0`` occluded (a grey box over the
animal in every frame), and the rendering rate of a three-camera frame set. The triangulation
of the true 2D keypoints is the floor of the method (undistortion and DLT, no network).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_overwrite_argument, write_result
from realtime_pose.bundle import load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.geometry import Size
from realtime_pose.inference.estimator import PoseEstimator
from realtime_pose.inference.triangulate import Triangulator
from realtime_pose.sources.synthetic_scene import random_sample
from realtime_pose.sources.synthetic_views import Occluder, SyntheticViews, virtual_rig

DEMO_BUNDLE = Path(__file__).resolve().parents[1] / "realtime_pose" / "assets" / "demo_bundle"
FOUND_PX = 10.0


def _stats(values: np.ndarray, unit: str) -> dict[str, float]:
    values = np.asarray(values, np.float64).ravel()
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"n": int(values.size), "finite": 0}
    return {
        f"median_{unit}": round(float(np.median(finite)), 3),
        f"p90_{unit}": round(float(np.percentile(finite, 90)), 3),
        f"mean_{unit}": round(float(finite.mean()), 3),
        f"max_{unit}": round(float(finite.max()), 3),
        "n": int(values.size),
        "finite": int(finite.size),
    }


def _triangulators(rig):
    """name → function ``[C, T, K, 3]`` → ``[T, K, 3]`` world points."""

    def run(tri):
        def triangulate(poses: np.ndarray) -> np.ndarray:
            return np.stack([tri.triangulate(poses[:, t])[:, :3] for t in range(poses.shape[1])])

        return triangulate

    plain = Triangulator(rig, min_likelihood=-1.0, outlier_px=None)
    confident = Triangulator(rig, min_likelihood=0.5, outlier_px=None)
    ransac = Triangulator(rig, min_likelihood=0.5, outlier_px=20.0)
    return {
        "dlt_all_views": run(plain),
        "dlt_likelihood_0.5": run(confident),
        "triangulator_ransac_20px": run(ransac),
    }


def _training_size_px(n: int = 400) -> dict[str, float]:
    """Snout to tail base in the demo network's training images (320×240), px."""
    rng = np.random.default_rng(0)
    lengths = [
        np.linalg.norm(kp[0] - kp[3]) for kp in (random_sample(rng, 320, 240)[1] for _ in range(n))
    ]
    return _stats(np.array(lengths), "px")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=100, help="frames per seed")
    parser.add_argument("--step", type=int, default=20, help="scene frames between two used")
    parser.add_argument("--bundle", type=Path, default=DEMO_BUNDLE)
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)

    rig = virtual_rig()
    bundle = load_bundle(args.bundle)
    estimator = PoseEstimator(bundle, open_engine(bundle))
    estimator.warmup(Size(*rig.cameras[0].size))
    names = rig.names
    occluder = Occluder()  # over the animal, every frame

    pred, occluded_pred, truth2d, truth3d, heights = [], [], [], [], []
    for seed in args.seeds:
        views = SyntheticViews(rig, seed=seed)
        for i in range(0, args.frames * args.step, args.step):
            truth3d.append(views.truth3d(i))
            heights.append(views.height_mm(i))
            per_cam, gt = [], []
            for c, name in enumerate(names):
                image, kp = views.render(i, name)
                per_cam.append(estimator.estimate(image).copy())
                gt.append(kp)
                if c == 0:
                    hidden, _ = views.render(i, name, occluder)
                    occluded_pred.append(estimator.estimate(hidden).copy())
            pred.append(per_cam)
            truth2d.append(gt)
    pred = np.transpose(np.array(pred), (1, 0, 2, 3))  # [C, T, K, 3]
    truth2d = np.transpose(np.array(truth2d), (1, 0, 2, 3))  # [C, T, K, 2]
    truth3d = np.array(truth3d)  # [T, K, 3]
    heights = np.array(heights)
    occluded = pred.copy()
    occluded[0] = np.array(occluded_pred)

    error2d = np.linalg.norm(pred[..., :2] - truth2d, axis=-1)  # [C, T, K]
    per_camera = {}
    for c, name in enumerate(names):
        size = np.linalg.norm(truth2d[c, :, 0] - truth2d[c, :, 3], axis=-1)
        per_camera[name] = {
            **_stats(error2d[c], "px"),
            "found_within_10px": round(float((error2d[c] < FOUND_PX).mean()), 4),
            "rearing_frames": _stats(error2d[c, heights > 0], "px"),
            "snout_to_tailbase_px": _stats(size, "px"),
            "mean_signed_xy_px_per_keypoint": {  # the network's bias, image axes (y down)
                k: np.round(np.mean(pred[c, :, j, :2] - truth2d[c, :, j], axis=0), 3).tolist()
                for j, k in enumerate(bundle.meta.keypoints)
            },
        }
    occluded_error = np.linalg.norm(occluded[0, ..., :2] - truth2d[0], axis=-1)

    triangulators = _triangulators(rig)
    exact = np.concatenate([truth2d, np.ones((*truth2d.shape[:3], 1), np.float32)], axis=-1)
    three_d: dict[str, object] = {
        "true_2d_keypoints": _stats(
            np.linalg.norm(triangulators["dlt_all_views"](exact) - truth3d, axis=-1), "mm"
        )
    }
    for name, triangulate in triangulators.items():
        points = triangulate(pred)
        error = np.linalg.norm(points - truth3d, axis=-1)
        offset = points - truth3d
        three_d[name] = {
            **_stats(error, "mm"),
            "rearing_frames": _stats(error[heights > 0], "mm"),
            "per_keypoint_median_mm": {
                k: round(float(np.nanmedian(error[:, j])), 3)
                for j, k in enumerate(bundle.meta.keypoints)
            },
            "median_abs_xyz_mm": np.round(np.nanmedian(np.abs(offset), axis=(0, 1)), 3).tolist(),
            "mean_signed_z_mm_per_keypoint": {
                k: round(float(np.nanmean(offset[:, j, 2])), 3)
                for j, k in enumerate(bundle.meta.keypoints)
            },
        }
    occluded_3d: dict[str, object] = {
        "cam0_2d": {
            **_stats(occluded_error, "px"),
            "found_within_10px": round(float((occluded_error < FOUND_PX).mean()), 4),
            "median_likelihood": round(float(np.median(occluded[0, ..., 2])), 4),
        }
    }
    for name, triangulate in triangulators.items():
        error = np.linalg.norm(triangulate(occluded) - truth3d, axis=-1)
        occluded_3d[name] = _stats(error, "mm")
    two = rig.subset(names[1:])
    tri_two = Triangulator(two, min_likelihood=0.5, outlier_px=None)
    points_two = np.stack([tri_two.triangulate(pred[1:, t])[:, :3] for t in range(pred.shape[1])])
    occluded_3d["cam1_cam2_only_dlt"] = _stats(np.linalg.norm(points_two - truth3d, axis=-1), "mm")

    views = SyntheticViews(rig, seed=args.seeds[0])
    for name in names:
        views.render(0, name)  # each camera's fixed part is made once, before timing
    n_sets = 300
    t0 = time.perf_counter()
    for i in range(n_sets):
        for name in names:
            views.render(i, name)
    elapsed = time.perf_counter() - t0

    payload = {
        "bundle": str(args.bundle),
        "engine": type(estimator.engine).__name__,
        "rig": {
            "cameras": names,
            "size": list(rig.cameras[0].size),
            "calibration": {c.name: c.to_toml_table() for c in rig.cameras},
        },
        "seeds": args.seeds,
        "frames": int(truth3d.shape[0]),
        "frame_step": args.step,
        "rearing_fraction": round(float((heights > 0).mean()), 3),
        "max_height_mm": round(float(heights.max()), 2),
        "animal_snout_to_tailbase_mm": _stats(
            np.linalg.norm(truth3d[:, 0] - truth3d[:, 3], axis=-1), "mm"
        ),
        "training_snout_to_tailbase_px": _training_size_px(),
        "error_2d_per_camera": per_camera,
        "error_3d": three_d,
        "cam0_occluded": occluded_3d,
        "render": {
            "frame_sets": n_sets,
            "cameras": len(names),
            "frame_sets_per_s": round(n_sets / elapsed, 1),
            "views_per_s": round(n_sets * len(names) / elapsed, 1),
        },
    }
    path = write_result("synthetic_views", payload, args.json, overwrite=args.overwrite)
    print(f"written {path}")
    for name, row in per_camera.items():
        print(f"{name}: 2D median {row['median_px']} px, p90 {row['p90_px']} px")
    for name, row in three_d.items():
        print(f"3D {name}: median {row['median_mm']} mm, p90 {row['p90_mm']} mm")
    for name, row in occluded_3d.items():
        key = "median_px" if name == "cam0_2d" else "median_mm"
        print(f"cam0 occluded, {name}: median {row.get(key)}")
    print(f"render: {payload['render']['frame_sets_per_s']} three-camera frame sets/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
