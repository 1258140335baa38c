"""Two flies live: accuracy, identity, switches, latency and a social rule, from one live run.

    python benchmarks/multi_animal.py TRAIN_DIR [--labels clip.slp] [--work DIR] [--json FILE]

TRAIN_DIR is the output of ``realtime-pose train clip.slp --train-frames 0-959 --test-frames
960-1199 ...`` on ``../shared/datasets/sleap-flies-clip``. The benchmark

1. exports it (``realtime-pose export``, with its TF-vs-ONNX parity check) unless
   ``WORK/bundle`` already holds this training run's export;
2. runs ``realtime-pose run`` on the whole clip (1500 frames, 1024×1024, free-running: every
   frame is processed), recording every pose, with two social rules on the emulated serial
   board: thorax-to-thorax distance below ``--close-px`` (``on: enter``, channel 0) and its
   release (``on: exit``, channel 1);
3. scores the recorded poses against the labels, by name (female/male): keypoint errors in frame
   pixels, instance recall (half the labelled keypoints within ``--radius-px``), identity
   accuracy (frames where both flies carry the right name) and identity switches over frames
   0–1199 (the labelled ones), on the held-out frames 960–1199 and the training frames 0–959;
4. compares the per-frame latency (capture → recorded, from the pose log) with the demo bundle's
   single-animal network of the same backbone (MobileNetV2 0.35, 4 keypoints) on the same
   1024×1024 frames (the first 300);
5. matches the rule firings against the frames where the labels cross ``--close-px``;
6. runs :class:`~realtime_pose.inference.tracking.IdentityTracker` on the *labelled*
   positions in shuffled order (2 px noise, 5 % of keypoints dropped): the tracker's own
   switches, without a network.

Writes ``results/multi_animal_flies.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import add_overwrite_argument, summarize_ns, write_result  # noqa: E402
from realtime_pose.trainers.animal_evaluation import (  # noqa: E402
    identity_correct,
    identity_switches,
    instance_recall,
    named_errors,
)

FLIES = REPO.parent / "shared" / "datasets" / "sleap-flies-clip" / "clip.slp"
DEMO_BUNDLE = REPO / "realtime_pose" / "assets" / "demo_bundle"


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "realtime_pose", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    return done


def _exported_from(bundle: Path, train_dir: Path) -> bool:
    """Whether ``bundle`` holds the export of ``train_dir``'s model as it is now (same folder,
    same number of steps): a bundle left in WORK by another training run is never reused."""
    meta_path = bundle / "bundle.json"
    if not meta_path.is_file():
        return False
    provenance = json.loads(meta_path.read_text()).get("provenance", {})
    config = json.loads((train_dir / "train_config.json").read_text())
    same_folder = Path(provenance.get("train_dir", "")).resolve() == train_dir.resolve()
    return same_folder and provenance.get("steps") == config.get("steps")


def live_run(work: Path, bundle: Path, video: Path, name: str, rules: list, outputs: dict,
             max_frames: int | None = None, tracking: bool = True):  # fmt: skip
    """``realtime-pose run`` on ``video``; return the pose log."""
    from realtime_pose.recording import read_log

    rec = work / f"rec-{name}"
    config = {
        "source": {"kind": "video", "path": str(video), "realtime": False},
        "bundle": str(bundle),
        "engine": {"spinning": False},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": str(rec)},
        "outputs": outputs,
        "rules": rules,
        "tracking": {"enabled": tracking},
    }
    if max_frames is not None:
        config["source"]["max_frames"] = max_frames
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    cli("run", str(path), "--quiet")
    return read_log(max(rec.glob("*.poselog"), key=lambda p: p.stat().st_mtime))


def matched(log, labels):
    """Recorded poses ``[F, A, K, 3]`` on the labelled frames, their labels, frame numbers,
    and every recorded frame number."""
    A, K = len(labels.animals), len(labels.bodyparts)
    poses = log.poses.reshape(len(log.poses), A, K, 3)
    order = np.argsort(log.frame_indices)
    frames, poses = log.frame_indices[order], poses[order]
    by_frame = {int(f): i for i, f in enumerate(frames)}
    labelled = [i for i, f in enumerate(labels.frame_indices) if int(f) in by_frame]
    pred = poses[[by_frame[int(labels.frame_indices[i])] for i in labelled]]
    return pred, labels.keypoints[labelled], labels.frame_indices[labelled], frames


def scores(pred: np.ndarray, truth: np.ndarray, radius_px: float) -> dict:
    errors = named_errors(pred, truth)
    confident = errors[pred[..., 2] >= 0.5]
    return {
        "frames": int(len(truth)),
        "error_px_mean": float(np.nanmean(errors)),
        "error_px_median": float(np.nanmedian(errors)),
        "error_px_median_likelihood_ge_0.5": float(np.nanmedian(confident)),
        "keypoints_likelihood_ge_0.5": float(
            np.mean(pred[..., 2][np.isfinite(truth[..., 0])] >= 0.5)
        ),
        "instance_recall": instance_recall(pred, truth, 0.5, radius_px),
        "identity_accuracy": float(np.mean(identity_correct(pred, truth))),
    }


def crossings(close: np.ndarray) -> dict[str, list[int]]:
    enter = np.flatnonzero(close[1:] & ~close[:-1]) + 1
    leave = np.flatnonzero(~close[1:] & close[:-1]) + 1
    return {"enter": ([0] if close[0] else []) + enter.tolist(), "exit": leave.tolist()}


def tracker_on_labels(truth: np.ndarray, seed: int = 1) -> dict:
    from realtime_pose.inference.tracking import IdentityTracker

    rng = np.random.default_rng(seed)
    tracker = IdentityTracker(truth.shape[2], truth.shape[1], max_distance_px=60)
    owner: dict[int, int] = {}
    switches = 0
    for frame, labels in enumerate(truth):
        order = rng.permutation(truth.shape[1])
        det = np.zeros((*labels.shape[:2], 3))
        det[..., :2] = np.nan_to_num(labels[order] + rng.normal(0, 2.0, labels.shape))
        keep = np.isfinite(labels[order, :, 0]) & (rng.random(labels.shape[:2]) > 0.05)
        det[..., 2] = np.where(keep, 0.9, 0.0)
        for animal in tracker.update(det, frame * 40_000_000):
            if not animal.detected:
                continue
            true = int(order[animal.detection])  # det[i] holds labelled animal order[i]
            switches += owner.setdefault(animal.track_id, true) != true
            owner[animal.track_id] = true
    return {"frames": int(len(truth)), "switches": switches, "tracks_opened": tracker.tracks_opened}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("--labels", type=Path, default=FLIES)
    parser.add_argument("--work", type=Path, default=Path("/tmp/rtp-multi-animal"))
    parser.add_argument("--close-px", type=float, default=120.0)
    parser.add_argument("--radius-px", type=float, default=10.0)
    parser.add_argument("--social-bodypart", default="thorax")
    parser.add_argument("--json", type=Path)
    add_overwrite_argument(parser)
    args = parser.parse_args()

    from realtime_pose.hardware.testing.emulator import read_log as read_emulator_log
    from realtime_pose.hardware.testing.emulator import start_emulator_process
    from realtime_pose.trainers.animal_labels import load_animal_labels

    labels = load_animal_labels(args.labels)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    bundle = work / "bundle"
    t0 = time.monotonic()
    if not _exported_from(bundle, args.train_dir):
        print(cli("export", str(args.train_dir), "-o", str(bundle), "--overwrite").stdout.strip())
    export_s = time.monotonic() - t0

    first, second = labels.animals[:2]
    part = args.social_bodypart
    social = {"type": "distance", "keypoints": [part, f"{second}/{part}"], "below": args.close_px}
    rules = [
        {"name": "close", "animal": first, "on": "enter", "condition": social,
         "actions": [{"output": "close", "action": "pulse", "duration_ms": 5}]},
        {"name": "apart", "animal": first, "on": "exit", "condition": social,
         "actions": [{"output": "apart", "action": "pulse", "duration_ms": 5}]},
    ]  # fmt: skip
    link, emu_log = str(work / "board"), work / "board.jsonl"
    emu_log.unlink(missing_ok=True)
    outputs = {
        name: {"kind": "serial", "port": link, "channel": ch, "max_on_ms": 50}
        for ch, name in enumerate(("close", "apart"))
    }
    with start_emulator_process(link, emu_log, max_on_ms=100, watchdog_ms=0):
        log = live_run(work, bundle, labels.video, "flies", rules, outputs)
        time.sleep(0.3)
    board = [r for r in read_emulator_log(emu_log) if r["event"] == "edge" and r["on"]]
    untracked = live_run(work, bundle, labels.video, "flies-untracked", [], {}, tracking=False)
    pred, truth, lab_frames, frames = matched(log, labels)
    raw, _, _, _ = matched(untracked, labels)
    held = (lab_frames >= 960) & (lab_frames <= 1199)
    trained = lab_frames <= 959

    single = live_run(work, DEMO_BUNDLE, labels.video, "single", [], {}, max_frames=300)
    latency = {
        "two_flies_26_keypoints": summarize_ns(log.t_record_ns - log.t_capture_ns, "ms"),
        "single_animal_4_keypoints_same_backbone": summarize_ns(
            single.t_record_ns - single.t_capture_ns, "ms"
        ),
    }
    latency["ratio_p50"] = (
        latency["two_flies_26_keypoints"]["p50_ms"]
        / latency["single_animal_4_keypoints_same_backbone"]["p50_ms"]
    )

    k = labels.bodyparts.index(part)
    label_close = np.hypot(*(truth[:, 0, k] - truth[:, 1, k]).T) < args.close_px
    events = [e["event"] for e in log.events if e["event"]["kind"] == "rule"]
    fired = {
        name: [e["frame_index"] for e in events if e["name"] == name and e["state"] == "fired"]
        for name in ("close", "apart")
    }
    result = {
        "train_dir": str(args.train_dir),
        "bundle": str(bundle),
        "export_s": round(export_s, 1),
        "frames_run": int(len(log.poses)),
        "frames_recorded_distinct": len(set(frames.tolist())),
        "held_out_960_1199": scores(pred[held], truth[held], args.radius_px),
        # the held-out frames split by whether the labels put the animals close together
        "held_out_together": scores(
            pred[held & label_close], truth[held & label_close], args.radius_px
        ),
        "held_out_apart": scores(
            pred[held & ~label_close], truth[held & ~label_close], args.radius_px
        ),
        "training_frames_0_959": scores(pred[trained], truth[trained], args.radius_px),
        "identity_switches_0_1199": identity_switches(pred, truth),
        "without_tracking": {
            "held_out_960_1199": scores(raw[held], truth[held], args.radius_px),
            "identity_switches_0_1199": identity_switches(raw, truth),
        },
        "latency_capture_to_recorded": latency,
        "social_rule": {
            "close_px": args.close_px,
            "label_crossings": {
                k: lab_frames[v].tolist() for k, v in crossings(label_close).items()
            },
            "rule_fired": fired,
            "board_on_edges": {
                name: sum(r["channel"] == ch for r in board)
                for ch, name in enumerate(("close", "apart"))
            },
        },
        "tracker_on_labelled_positions": tracker_on_labels(truth),
        "train_config": yaml.safe_load((args.train_dir / "train_config.json").read_text()),
    }
    result["train_config"].pop("augment", None)
    path = write_result("multi_animal_flies", result, args.json, overwrite=args.overwrite)
    print(yaml.safe_dump({k: v for k, v in result.items() if k != "train_config"}, sort_keys=False))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
