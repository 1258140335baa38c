"""Two flies as look-alikes, live: keypoint error, instance recall, IDF1 and identity switches
against the labelled tracks the network never saw, latency, and a social rule.

    python benchmarks/lookalike_flies.py TRAIN_DIR [--work DIR] [--json FILE]

TRAIN_DIR is the output of ``realtime-pose train clip.slp --no-identities --train-frames 0-1099
--test-frames 1100-1199 ...`` on ``../shared/datasets/sleap-flies-clip``: a part-affinity
network trained with the ``female``/``male`` tracks ignored. The benchmark

1. exports it (``realtime-pose export``, with its TF-vs-ONNX parity check) unless ``WORK/bundle``
   already holds this training run's export;
2. runs ``realtime-pose run`` on the whole clip (1500 frames, 1024×1024, free-running: every
   frame is processed), recording every pose and its slots' ``track_ids``, with a social rule
   between any two animals (``animal: any``, thorax to ``other/thorax`` below ``--close-px``) on
   the emulated serial board;
3. scores the recorded slots against the labels (frames 0–1199), names used for scoring only:
   each frame's animals matched to the labelled ones (Hungarian on mean keypoint distance) for
   the keypoint error and instance recall on the held-out frames 1100–1199 and the training
   frames; IDF1, MOTA and identity switches of the tracks over 0–1199 with motmetrics
   (:func:`realtime_pose.offline.track_metrics.tracking_scores`);
4. compares the per-frame latency (capture → recorded, from the pose log) with the demo bundle's
   single-animal network of the same backbone (MobileNetV2 0.35, 4 keypoints) on the same
   1024×1024 frames (the first 300);
5. matches the rule firings against the frames where the labelled flies come within
   ``--close-px``.

Writes ``results/lookalike_flies.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result  # noqa: E402
from benchmarks.multi_animal import (  # noqa: E402
    DEMO_BUNDLE,
    FLIES,
    _exported_from,
    cli,
    crossings,
    live_run,
)
from realtime_pose.trainers.animal_evaluation import best_assignment, instance_recall  # noqa: E402


def slots_on_labelled_frames(log, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recorded slots ``[F, S, K, 3]`` and track ids ``[F, S]`` on the labelled frames, and
    those frames' numbers."""
    K = len(labels.bodyparts)
    poses = log.poses.reshape(len(log.poses), -1, K, 3)
    by_frame = {int(f): i for i, f in enumerate(log.frame_indices)}
    keep = [i for i, f in enumerate(labels.frame_indices) if int(f) in by_frame]
    rows = [by_frame[int(labels.frame_indices[i])] for i in keep]
    return poses[rows], log.track_ids[rows], np.asarray(keep)


def matched_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``[F, A, K]`` distance of each labelled keypoint to the keypoint of the predicted animal
    matched to it (NaN where unlabelled, or no animal matched, or the part not found)."""
    assignment = best_assignment(pred, truth, cutoff=1e-6)
    F, A, K = truth.shape[:3]
    errors = np.full((F, A, K), np.nan)
    for f in range(F):
        for a in range(A):
            i = assignment[f, a]
            if i >= 0:
                errors[f, a] = np.hypot(*(pred[f, i, :, :2] - truth[f, a]).T)
    return errors


def accuracy(pred: np.ndarray, truth: np.ndarray, radius_px: float) -> dict:
    errors = matched_errors(pred, truth)
    labelled = np.isfinite(truth[..., 0])
    return {
        "frames": int(len(truth)),
        "error_px_median": float(np.nanmedian(errors)),
        "error_px_mean": float(np.nanmean(errors)),
        "keypoints_found": float(np.mean(np.isfinite(errors[labelled]))),
        "instance_recall": instance_recall(pred, truth, 0.5, radius_px),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("--labels", type=Path, default=FLIES)
    parser.add_argument("--work", type=Path, default=Path("/tmp/rtp-lookalike-flies"))
    parser.add_argument("--held-out", default="1100-1199", help="held-out labelled frames")
    parser.add_argument("--close-px", type=float, default=120.0)
    parser.add_argument("--radius-px", type=float, default=10.0)
    parser.add_argument("--match-px", type=float, default=50.0, help="tracking-metric gate")
    parser.add_argument("--social-bodypart", default="thorax")
    parser.add_argument("--json", type=Path)
    add_overwrite_argument(parser)
    args = parser.parse_args()

    from realtime_pose.hardware.testing.emulator import read_log as read_emulator_log
    from realtime_pose.hardware.testing.emulator import start_emulator_process
    from realtime_pose.offline.track_metrics import tracking_scores
    from realtime_pose.trainers.animal_labels import load_animal_labels

    labels = load_animal_labels(args.labels)  # female/male: for scoring only
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    bundle = work / "bundle"
    t0 = time.monotonic()
    if not _exported_from(bundle, args.train_dir):
        print(cli("export", str(args.train_dir), "-o", str(bundle), "--overwrite").stdout.strip())
    export_s = time.monotonic() - t0

    part = args.social_bodypart
    social = {"type": "distance", "keypoints": [part, f"other/{part}"], "below": args.close_px}
    rules = [
        {"name": "close", "animal": "any", "on": "enter", "condition": social,
         "actions": [{"output": "close", "action": "pulse", "duration_ms": 5}]},
    ]  # fmt: skip
    link, emu_log = str(work / "board"), work / "board.jsonl"
    emu_log.unlink(missing_ok=True)
    outputs = {"close": {"kind": "serial", "port": link, "channel": 0, "max_on_ms": 50}}
    with start_emulator_process(link, emu_log, max_on_ms=100, watchdog_ms=0):
        log = live_run(work, bundle, labels.video, "flies", rules, outputs)
        time.sleep(0.3)
    board = [r for r in read_emulator_log(emu_log) if r["event"] == "edge" and r["on"]]

    pred, ids, keep = slots_on_labelled_frames(log, labels)
    truth = labels.keypoints[keep]
    frames = labels.frame_indices[keep]
    lo, hi = (int(v) for v in args.held_out.split("-"))
    held = (frames >= lo) & (frames <= hi)
    tracking = tracking_scores(truth, pred, ids, args.match_px, min_likelihood=0.0)

    single = live_run(work, DEMO_BUNDLE, labels.video, "single", [], {}, max_frames=300)
    latency = {
        "lookalike_2_slots_13_keypoints": summarize_ns(log.t_record_ns - log.t_capture_ns, "ms"),
        "single_animal_4_keypoints_same_backbone": summarize_ns(
            single.t_record_ns - single.t_capture_ns, "ms"
        ),
    }
    latency["ratio_p50"] = (
        latency["lookalike_2_slots_13_keypoints"]["p50_ms"]
        / latency["single_animal_4_keypoints_same_backbone"]["p50_ms"]
    )
    latency["ratio_p99"] = (
        latency["lookalike_2_slots_13_keypoints"]["p99_ms"]
        / latency["single_animal_4_keypoints_same_backbone"]["p99_ms"]
    )

    k = labels.bodyparts.index(part)
    label_close = np.hypot(*(truth[:, 0, k] - truth[:, 1, k]).T) < args.close_px
    events = [e["event"] for e in log.events if e["event"]["kind"] == "rule"]
    fired = [e["frame_index"] for e in events if e["state"] == "fired"]
    train_config = json.loads((args.train_dir / "train_config.json").read_text())
    result = {
        "train_dir": str(args.train_dir),
        "training": {
            "steps": train_config.get("steps"),
            "train_wall_time_s": train_config.get("train_wall_time_s"),
            "net": train_config.get("net"),
            "crop_size": train_config.get("crop_size"),
            "input_scale": train_config.get("input_scale"),
            "target_kind": train_config.get("target_kind"),
            "split": {"train": "0-" + str(lo - 1), "test": args.held_out},
        },
        "export_s": round(export_s, 1),
        "frames_processed": int(len(log.poses)),
        "held_out": accuracy(pred[held], truth[held], args.radius_px),
        "training_frames": accuracy(pred[frames < lo], truth[frames < lo], args.radius_px),
        "tracking_0_1199": tracking,
        "tracks_opened": int(len({int(t) for t in log.track_ids.ravel() if t >= 0})),
        "latency_capture_to_recorded": latency,
        "social_rule": {
            "close_px": args.close_px,
            "label_crossings": crossings(label_close),
            "fired_frames": fired,
            "board_pulses": len(board),
        },
    }
    path = write_result("lookalike_flies", result, args.json, overwrite=args.overwrite)
    print(f"wrote {path}")
    print(
        f"held-out median {result['held_out']['error_px_median']:.2f} px, recall "
        f"{result['held_out']['instance_recall']:.3f}; IDF1 {tracking['idf1']}, "
        f"switches {tracking['id_switches']}; latency ratio p50 {latency['ratio_p50']:.2f}"
    )


if __name__ == "__main__":
    main()
