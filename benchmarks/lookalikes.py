"""Animals that look alike, live: tracking quality and per-frame latency of a look-alike bundle
on synthetic crowds of identical animals.

    python benchmarks/lookalikes.py [--bundle DIR] [--animals 2 4 8] [--frames 18000 8000 4000]
                                    [--threads 2] [--work DIR] [--json FILE]

Default bundle: the shipped look-alike bundle (``realtime_pose/assets/lookalike_bundle``,
``trainers/make_lookalike_bundle.py``). For each crowd size the benchmark

1. renders a fresh crowd clip (:func:`~realtime_pose.trainers.synthetic_crowd.write_crowd_clip`,
   the bundle's 320×240, seed ``--seed``, kept in ``--work`` and reused when it is there);
2. runs every frame, causally, frame ``i`` at ``i / fps``, through the estimator (engine +
   part-affinity decoding) and the look-alike tracking stage (``tracking_for``, its defaults,
   ``max_animals`` the number of animals as a rig's config would say), timing each; in blocks of
   ``--block`` frames alternated with a single-animal network of the same backbone
   (MobileNetV2-0.35, 4 keypoints, DeepLabCut heads, untrained: weights do not change latency)
   on the same frames, same engine settings, same process, so drift hits both alike;
3. scores the tracks against the truth with motmetrics (``offline/track_metrics.py``): IDF1, ID
   switches (also per 100 crossings, :func:`~realtime_pose.trainers.synthetic_crowd.
   count_crossings` on the truth), MOTA, recall, precision; a track matches a true animal within
   half a body length (the median snout–tailbase distance of the truth), and the truth is every
   keypoint in the frame, also those under another animal, so an animal hidden by the one
   walking over it must still be followed (the tracker's coasting prediction counts);
4. reruns the tracking alone on the decoder's saved output with one cue changed at a time
   (``motion="last_position"``, ``size_weight_px=0``, ``min_hits=1``, and ``max_animals`` left
   at the bundle's 8 slots) to show what each buys;
5. reports the decoder's own finding of the animals (every 4th frame) for context.

Writes ``results/lookalikes_synthetic.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result  # noqa: E402

LOOKALIKE_BUNDLE = REPO / "realtime_pose" / "assets" / "lookalike_bundle"
REFERENCE_NET = "mobilenet_v2_0.35"
RATIO_GOALS = {2: 1.3, 8: 2.0}
"""Most the look-alike path (estimate + tracking) may cost per frame, as a multiple of the
single-animal network's estimate."""
CUES = {
    "motion_last_position": {"motion": "last_position"},
    "size_weight_px_0": {"size_weight_px": 0.0},
    "min_hits_1": {"min_hits": 1},
    "max_animals_slots": {"max_animals": None},
}
"""Tracking reruns, each changing one option of the measured run."""
DETECTION_EVERY = 4


def crowd_clip(work: Path, animals: int, frames: int, seed: int, fps: float, size: tuple) -> Any:
    """The crowd clip of ``animals`` animals (written, or reused from ``work`` when a clip of
    the same settings is there) and its truth."""
    from realtime_pose.trainers.synthetic_crowd import (
        CrowdClip,
        load_crowd_truth,
        write_crowd_clip,
    )

    width, height = size
    folder = work / f"crowd_{width}x{height}_n{animals}_s{seed}_f{frames}_fps{fps:g}"
    clip = CrowdClip(folder / "crowd.avi", folder / "crowd.slp", folder / "crowd_truth.npz")
    if not (clip.truth.is_file() and clip.video.is_file()):
        t0 = time.monotonic()
        clip = write_crowd_clip(folder, animals, frames, width, height, seed, fps)
        print(f"{animals} animals: rendered {frames} frames in {time.monotonic() - t0:.0f} s")
    return clip, load_crowd_truth(clip.truth)


def _build_reference(
    folder: Path, keypoints: list, skeleton: list, meta: dict, frames: list
) -> str:
    """Build and export the untrained single-animal network (in a child process, so
    TensorFlow never shares the measuring process)."""
    import keras

    from realtime_pose.exporters.keras_onnx import export_bundle
    from realtime_pose.trainers.networks import build_model

    keras.utils.set_random_seed(0)
    model = build_model(REFERENCE_NET, len(keypoints))
    train_dir = folder / "train"
    train_dir.mkdir(parents=True, exist_ok=True)
    model.save(train_dir / "model.keras")
    config = {
        "net": REFERENCE_NET,
        "keypoints": keypoints,
        "skeleton": skeleton,
        "steps": 0,
        **meta,
    }
    (train_dir / "train_config.json").write_text(json.dumps(config))
    name = f"untrained-single-animal-{REFERENCE_NET}"
    export_bundle(train_dir, folder / "bundle", parity_images=frames, name=name, overwrite=True)
    return str(folder / "bundle")


def reference_bundle(work: Path, lookalike: Any, frames_rgb: list[np.ndarray]) -> Path:
    """The single-animal comparison bundle: MobileNetV2-0.35 with one score map per bodypart of
    the look-alike bundle and DeepLabCut heads, at its input scale (reused from ``work``)."""
    meta = lookalike.meta
    keypoints = list(meta.animals.bodyparts)
    folder = work / f"single_animal_{REFERENCE_NET}_k{len(keypoints)}_s{meta.input.scale:g}"
    if (folder / "bundle" / "bundle.json").is_file():
        return folder / "bundle"
    names = meta.animals.names
    # the look-alike skeleton is between slot keypoints (animal0/snout): keep one animal's
    skeleton = [
        [a.split("/", 1)[-1], b.split("/", 1)[-1]]
        for a, b in meta.skeleton
        if a.split("/", 1)[0] == b.split("/", 1)[0] == names[0]
    ] or [[keypoints[0], keypoints[-1]]]
    settings = {
        "stride": meta.stride,
        "locref_stdev": meta.locref_stdev,
        "input_scale": meta.input.scale,
    }
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        done = pool.submit(_build_reference, folder, keypoints, skeleton, settings, frames_rgb)
        return Path(done.result())


def _read_block(capture: Any, count: int) -> list[np.ndarray]:
    frames = []
    for _ in range(count):
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    return frames


def live_run(
    video: Path,
    frames: int,
    lookalike: Any,
    reference: Any,
    stage: Any,
    fps: float,
    block: int,
) -> dict[str, np.ndarray]:
    """Every frame through the look-alike estimator and tracking stage (timed, causal) and
    through the reference estimator (timed), in alternating blocks.

    Returns
    -------
    dict
        ``decoded`` ``[F, S·K, 3]`` (the estimator's animals), ``rows`` ``[F, S·K, 3]`` and
        ``track_ids`` ``[F, S]`` (the tracking stage's slots), and per frame ``estimate_ns``,
        ``tracking_ns``, ``reference_ns``.
    """
    import cv2

    from realtime_pose.inference.tracking_stage import video_time_ns

    S = stage.slots
    width = S * stage.num_bodyparts
    out = {
        "decoded": np.full((frames, width, 3), np.nan, np.float32),
        "rows": np.full((frames, width, 3), np.nan, np.float32),
        "track_ids": np.full((frames, S), -1, np.int64),
        "estimate_ns": np.zeros(frames, np.int64),
        "tracking_ns": np.zeros(frames, np.int64),
        "reference_ns": np.zeros(frames, np.int64),
    }
    capture = cv2.VideoCapture(str(video))
    now = time.perf_counter_ns
    try:
        first = 0
        while first < frames:
            images = _read_block(capture, min(block, frames - first))
            if not images:
                raise RuntimeError(f"{video}: cannot read frame {first}")

            def run_lookalike(images: list[np.ndarray] = images, first: int = first) -> None:
                for j, image in enumerate(images):
                    i = first + j
                    t0 = now()
                    pose = lookalike.estimate(image)
                    t1 = now()
                    out["decoded"][i] = pose
                    t_ns = video_time_ns(i, fps)
                    t2 = now()
                    rows = stage.update(pose, t_ns)
                    t3 = now()
                    out["rows"][i] = rows
                    out["track_ids"][i] = stage.track_ids
                    out["estimate_ns"][i] = t1 - t0
                    out["tracking_ns"][i] = t3 - t2

            def run_reference(images: list[np.ndarray] = images, first: int = first) -> None:
                for j, image in enumerate(images):
                    t0 = now()
                    reference.estimate(image)
                    out["reference_ns"][first + j] = now() - t0

            turns = (run_lookalike, run_reference)
            for turn in turns if (first // block) % 2 == 0 else turns[::-1]:
                turn()
            first += len(images)
    finally:
        capture.release()
    return out


def rerun_tracking(decoded: np.ndarray, meta: Any, fps: float, **options: Any) -> dict:
    """The tracking stage alone on saved decoder output: rows, track ids and update times."""
    from realtime_pose.inference.tracking_stage import tracking_for, video_time_ns

    stage = tracking_for(meta, **options)
    F = len(decoded)
    rows = np.empty_like(decoded)
    ids = np.empty((F, stage.slots), np.int64)
    took = np.empty(F, np.int64)
    for i in range(F):
        t_ns = video_time_ns(i, fps)
        t0 = time.perf_counter_ns()
        rows[i] = stage.update(decoded[i], t_ns)
        took[i] = time.perf_counter_ns() - t0
        ids[i] = stage.track_ids
    return {"rows": rows, "track_ids": ids, "tracking_ns": took, "stage": stage}


def warm_tracking(estimator: Any, meta: Any, sample: list[np.ndarray], fps: float) -> None:
    """Run a throwaway tracking stage on a few decoded frames, so that imports and compiled
    kernels are ready before the first timed frame."""
    from realtime_pose.inference.tracking_stage import tracking_for, video_time_ns

    poses = [estimator.estimate(image[..., ::-1].copy()).copy() for image in sample]
    stage = tracking_for(meta)
    for i in range(20):
        stage.update(poses[i % len(poses)], video_time_ns(i, fps))


def stage_counters(stage: Any) -> dict[str, int]:
    """What the look-alike tracking stage counted over a run."""
    tracker = stage.tracker
    return {
        "tracks_opened": int(tracker.tracks_opened),
        "tracks_closed": int(tracker.tracks_closed),
        "candidates_dropped": int(tracker.candidates_dropped),
        "coasting_slot_frames": int(tracker.coasting_slot_frames),
        "unassigned_detections": int(tracker.unassigned_detections),
    }


def scores(
    truth: np.ndarray, rows: np.ndarray, ids: np.ndarray, match_px: float, crossings: int
) -> dict[str, Any]:
    """:func:`~realtime_pose.offline.track_metrics.tracking_scores` plus switches per 100
    crossings."""
    from realtime_pose.offline.track_metrics import tracking_scores

    F, K = truth.shape[0], truth.shape[2]
    result = tracking_scores(truth, rows.reshape(F, -1, K, 3), ids, match_px)
    result["switches_per_100_crossings"] = (
        100.0 * result["id_switches"] / crossings if crossings else None
    )
    return result


def _ratio(numerator: dict, denominator: dict) -> dict[str, float]:
    return {
        q: round(numerator[f"{q}_ms"] / denominator[f"{q}_ms"], 3) for q in ("p50", "p99", "max")
    }


def measure_count(
    args: argparse.Namespace,
    animals: int,
    frames: int,
    lookalike: Any,
    reference: Any,
    meta: Any,
) -> dict[str, Any]:
    """Everything for one crowd size (see the module's notes)."""
    from realtime_pose.inference.tracking_stage import tracking_for
    from realtime_pose.trainers.make_lookalike_bundle import (
        body_length_px,
        detection_figures,
        keypoints_in_frame,
    )
    from realtime_pose.trainers.synthetic_crowd import count_crossings, crossing_close_px

    width, height = args.size
    clip, truth = crowd_clip(args.work, animals, frames, args.seed, args.fps, args.size)
    in_frame = keypoints_in_frame(truth.keypoints, width, height)
    close_px = crossing_close_px(width, height)
    crossings = count_crossings(in_frame, close_px)
    body_px = body_length_px(truth.keypoints)
    match_px = args.match_fraction * body_px
    stage = tracking_for(meta, max_animals=animals)
    t0 = time.monotonic()
    run = live_run(clip.video, frames, lookalike, reference, stage, args.fps, args.block)
    run_s = time.monotonic() - t0
    tracking = scores(in_frame, run["rows"], run["track_ids"], match_px, crossings)
    tracking["stage"] = stage_counters(stage)
    cues: dict[str, Any] = {}
    for name, change in CUES.items():
        options = {"max_animals": animals, **change}
        again = rerun_tracking(run["decoded"], meta, args.fps, **options)
        cue = scores(in_frame, again["rows"], again["track_ids"], match_px, crossings)
        cue["options"] = {k: v for k, v in change.items()}
        cue["stage"] = stage_counters(again["stage"])
        cue["tracking_latency_ms"] = summarize_ns(again["tracking_ns"], "ms")
        cues[name] = cue
    K = truth.keypoints.shape[2]
    visible = np.where(truth.visible[..., None], truth.keypoints, np.nan)
    sample = slice(0, frames, DETECTION_EVERY)
    decoded = run["decoded"].reshape(frames, -1, K, 3)
    detection = detection_figures(
        decoded[sample], visible[sample], match_px, list(meta.animals.bodyparts)
    )
    estimate = summarize_ns(run["estimate_ns"], "ms")
    track = summarize_ns(run["tracking_ns"], "ms")
    both = summarize_ns(run["estimate_ns"] + run["tracking_ns"], "ms")
    single = summarize_ns(run["reference_ns"], "ms")
    return {
        "animals": animals,
        "clip": {"video": str(clip.video), "seed": args.seed, "frames": frames, "fps": args.fps},
        "body_length_px": round(body_px, 2),
        "match_px": round(match_px, 2),
        "crossing_close_px": round(close_px, 2),
        "crossings": crossings,
        "crossings_per_100_frames": round(100.0 * crossings / frames, 3),
        "tracking": tracking,
        "cues": cues,
        "detection_every_4th_frame": detection,
        "latency_ms": {
            "estimate": estimate,
            "tracking": track,
            "estimate_plus_tracking": both,
            "single_animal_estimate": single,
        },
        "ratio_to_single_animal": {
            "estimate_plus_tracking": _ratio(both, single),
            "estimate": _ratio(estimate, single),
        },
        "wall_s": round(run_s, 1),
    }


def _print_count(result: dict[str, Any]) -> None:
    t = result["tracking"]
    lat = result["latency_ms"]
    ratio = result["ratio_to_single_animal"]["estimate_plus_tracking"]

    def per_100(figures: dict[str, Any]) -> str:
        value = figures["switches_per_100_crossings"]
        return "n/a" if value is None else f"{value:.1f}"

    def p50_p99(name: str) -> str:
        return f"{lat[name]['p50_ms']:.2f}/{lat[name]['p99_ms']:.2f}"

    print(
        f"{result['animals']} animals: {result['crossings']} crossings, {t['id_switches']} "
        f"switches ({per_100(t)} per 100 crossings), IDF1 {t['idf1'] or 0:.3f}, MOTA "
        f"{t['mota'] or 0:.3f}, recall {t['recall'] or 0:.3f}, precision {t['precision'] or 0:.3f}"
    )
    print(
        f"  latency p50/p99 ms: estimate {p50_p99('estimate')}, tracking {p50_p99('tracking')}, "
        f"single animal {p50_p99('single_animal_estimate')}; ratio {ratio['p50']:.2f}× p50, "
        f"{ratio['p99']:.2f}× p99"
    )
    for name, cue in result["cues"].items():
        print(
            f"  {name:22s} switches {cue['id_switches']:5d} ({per_100(cue)} per 100 crossings), "
            f"IDF1 {cue['idf1'] or 0:.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=LOOKALIKE_BUNDLE)
    parser.add_argument("--animals", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument(
        "--frames",
        type=int,
        nargs="+",
        default=[18000, 8000, 4000],
        help="frames per crowd size, one value for all or one per --animals (default 18000 "
        "8000 4000: about 110, 240 and 420 crossings)",
    )
    parser.add_argument("--seed", type=int, default=200, help="seed of every crowd clip")
    parser.add_argument("--fps", type=float, default=30.0, help="frame i is at i/fps s")
    parser.add_argument("--size", type=str, default="320x240", help="frame size (the bundle's)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--spinning", choices=("on", "off"), default="off")
    parser.add_argument(
        "--block", type=int, default=200, help="frames per alternation with the single-animal net"
    )
    parser.add_argument(
        "--match-fraction",
        type=float,
        default=0.5,
        help="a track matches a true animal within this × the body length (default 0.5)",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="a single-animal bundle to compare with (default: an untrained MobileNetV2-0.35 "
        "built here, which needs TensorFlow)",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/realtime-pose-lookalikes"))
    parser.add_argument("--json", type=Path, default=None)
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    from realtime_pose.bundle import load_bundle
    from realtime_pose.engines import engine_section, open_engine
    from realtime_pose.geometry import Size
    from realtime_pose.inference.estimator import PoseEstimator

    args.size = Size.parse(args.size)
    if len(args.frames) not in (1, len(args.animals)):
        parser.error("--frames: give one value, or one per --animals")
    frames = args.frames * len(args.animals) if len(args.frames) == 1 else args.frames
    args.work.mkdir(parents=True, exist_ok=True)
    lookalike_bundle = load_bundle(args.bundle)
    meta = lookalike_bundle.meta
    if meta.animals is None or not meta.animals.grouped:
        parser.error(f"--bundle {args.bundle}: not a look-alike (part-affinity) bundle")
    if max(args.animals) > len(meta.animals.names):
        parser.error(f"--animals: the bundle has {len(meta.animals.names)} slots")

    clip, _ = crowd_clip(args.work, args.animals[0], frames[0], args.seed, args.fps, args.size)
    sample = _sample_frames(clip.video, 4)
    reference_path = args.reference or reference_bundle(args.work, lookalike_bundle, sample)
    reference_bundle_ = load_bundle(reference_path)
    engine_options = {
        "kind": "onnxruntime",
        "threads": args.threads,
        "spinning": args.spinning == "on",
    }
    estimators = {}
    for name, bundle in (("lookalike", lookalike_bundle), ("reference", reference_bundle_)):
        engine = open_engine(bundle, engine_options)
        estimators[name] = PoseEstimator(bundle, engine)
        estimators[name].warmup(args.size, runs=10)
        for image in sample:  # real frames: the decoder's paths with animals in them
            estimators[name].estimate(image[..., ::-1].copy())
    section = engine_section(estimators["lookalike"].engine)
    warm_tracking(estimators["lookalike"], meta, sample, args.fps)

    results = {}
    for animals, count in zip(args.animals, frames, strict=True):
        result = measure_count(
            args, animals, count, estimators["lookalike"], estimators["reference"], meta
        )
        _print_count(result)
        results[str(animals)] = result
    goals = {
        str(n): {
            "goal": goal,
            "p50": results[str(n)]["ratio_to_single_animal"]["estimate_plus_tracking"]["p50"],
            "p99": results[str(n)]["ratio_to_single_animal"]["estimate_plus_tracking"]["p99"],
            "met_at_p50": results[str(n)]["ratio_to_single_animal"]["estimate_plus_tracking"]["p50"]
            <= goal,
        }
        for n, goal in RATIO_GOALS.items()
        if str(n) in results
    }
    from realtime_pose.inference.unmarked_tracking import (
        DEFAULT_MAX_MISSED_S,
        DEFAULT_MIN_HITS,
        DEFAULT_SIZE_WEIGHT_PX,
    )

    payload = {
        "bundle": str(args.bundle),
        "model": meta.name,
        "bundle_steps": (meta.provenance or {}).get("steps"),
        "slots": len(meta.animals.names),
        "reference": {
            "bundle": str(reference_path),
            "model": reference_bundle_.meta.name,
            "what": f"{REFERENCE_NET}, {len(reference_bundle_.meta.keypoints)} keypoints, "
            "DeepLabCut heads (score maps + location refinement), single animal; untrained "
            "unless --reference named another bundle",
        },
        "settings": {
            "frame_size": f"{args.size.width}x{args.size.height}",
            "fps": args.fps,
            "seed": args.seed,
            "frames": dict(zip(map(str, args.animals), frames, strict=True)),
            "engine": section or engine_options,
            "block_frames": args.block,
            "match": f"{args.match_fraction:g} × the median snout–tailbase distance of the "
            "truth (px per crowd size below); truth = every keypoint in the frame, also under "
            "another animal; the tracker's slots count whatever their likelihood",
            "tracking": {
                "max_animals": "the crowd's animals",
                "motion": "kalman",
                "min_hits": DEFAULT_MIN_HITS,
                "size_weight_px": DEFAULT_SIZE_WEIGHT_PX,
                "max_missed_s": DEFAULT_MAX_MISSED_S,
            },
            "cues": CUES,
            "ratio": "per-frame latency percentile of estimate + tracking over the same "
            "percentile of the single-animal estimate",
        },
        "ratio_goals": goals,
        "by_animals": results,
    }
    path = write_result("lookalikes_synthetic", payload, args.json, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def _sample_frames(video: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of ``video``, RGB (the parity check's and warm-up's)."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        return [np.ascontiguousarray(f[..., ::-1]) for f in _read_block(capture, count)]
    finally:
        capture.release()


if __name__ == "__main__":
    sys.exit(main())
