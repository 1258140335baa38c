"""One session, three synchronised cameras: frame sets, live 3D pose on the stream and in the
recording, incomplete sets counted, and the recording converted to anipose's CSV and NWB."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime_pose.live.run_config import ConfigError, parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.recording import read_log
from realtime_pose.sources.synthetic_views import SyntheticViews, virtual_rig
from realtime_pose.util.paths import DEMO_BUNDLE
from tests.view.sessions import StreamLog

pytestmark = pytest.mark.skipif(
    not (DEMO_BUNDLE / "model.onnx").is_file(), reason="demo bundle not built"
)
FRAMES = 60
FPS = 20.0


def group_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Three virtual cameras (the demo bundle's mouse in 3D), their calibration, a recording."""
    calibration = tmp_path / "calibration.toml"
    if not calibration.exists():
        virtual_rig(3).save(calibration)
    camera = {"kind": "synthetic_view", "fps": FPS, "max_frames": FRAMES, "seed": 2}
    config: dict[str, Any] = {
        "sources": {f"cam{c}": {**camera, "camera": f"cam{c}"} for c in range(3)},
        "calibration": "calibration.toml",
        "sync": {"mode": "frame_id", "wait_ms": 40},
        "bundle": str(DEMO_BUNDLE),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": True, "directory": "rec"},
        "prediction": {"enabled": True},
        "status_interval_s": 0.5,
    }
    config.update(overrides)
    return config


def run_session(config: dict[str, Any], base: Path) -> tuple[LiveSession, StreamLog]:
    session = LiveSession(parse_config(config, "rig.yaml", base))
    stream = StreamLog(session.publisher.bound_address, (b"pose3d", b"status", b"meta"))
    try:
        thread = threading.Thread(target=session.run, kwargs={"duration_s": 20})
        thread.start()
        thread.join(30)
    finally:
        session.close()
        stream.close()
    return session, stream


def test_three_cameras_make_one_live_3d_pose_per_frame_set(tmp_path):
    session, stream = run_session(group_config(tmp_path), tmp_path)
    poses = stream.of(b"pose3d")
    assert len(poses) >= FRAMES // 2, "most frame sets are seen live"
    assert [p["seq"] for p in poses] == list(range(poses[0]["seq"], poses[0]["seq"] + len(poses)))
    scene = SyntheticViews(virtual_rig(3), seed=2, fps=FPS)
    errors = []
    for p in poses:
        assert set(p["views"]) | set(p["missing"]) == {"cam0", "cam1", "cam2"}
        ids = {v["camera_frame_id"] for v in p["views"].values()}
        assert ids == {p["key"]}, "every view of a set is the same scene frame"
        points = np.asarray(p["keypoints"][0])
        assert points.shape == (4, 5)
        seen = np.isfinite(points[:, 0])
        errors += list(np.linalg.norm(points[seen, :3] - scene.truth3d(p["key"])[seen], axis=1))
        assert p["predicted"] is not None and len(p["predicted"]["keypoints"]) == 4
        assert {"views", "triangulate", "total"} <= set(p["latency_ns"])
    assert len(errors) >= 3 * len(poses), "most keypoints are triangulated"
    assert np.median(errors) < 5.0, f"median 3D error {np.median(errors):.2f} mm"
    meta = session.meta  # published at start, before this subscriber connected
    assert meta["cameras"]["names"] == ["cam0", "cam1", "cam2"]
    assert meta["cameras"]["units"] == "mm"
    status = stream.of(b"status")[-1]
    assert 0 < status["frame_sets"]["sets"] <= session.grabber.counts["sets"]
    assert session.grabber.counts["sets"] == session.pipeline.frames

    (log_path,) = (tmp_path / "rec").glob("*.poselog")
    rec = read_log(log_path)
    assert rec.sets is not None and len(rec.sets.points) == session.pipeline.frames
    assert np.array_equal(rec.sets.key[-len(poses) :], [p["key"] for p in poses])
    assert np.allclose(
        rec.sets.points[-1], np.asarray(poses[-1]["keypoints"][0], float), equal_nan=True
    )
    csv = log_path.with_name(log_path.stem + "_3d.csv")
    assert csv.is_file(), "the recording was converted to anipose's 3D table on stop"
    assert all(log_path.with_name(f"{log_path.stem}_cam{c}.h5").is_file() for c in range(3))


def test_a_camera_losing_frames_leaves_sets_with_the_other_two_views(tmp_path):
    config = group_config(tmp_path, recording={"enabled": False})
    config["sources"]["cam1"]["drop_every"] = 5
    session, stream = run_session(config, tmp_path)
    poses = stream.of(b"pose3d")
    dropped = [p for p in poses if p["key"] % 5 == 4]
    assert dropped and all("cam1" in p["missing"] for p in dropped), "cam1 never sent these"
    skipped = [p["key"] for p in poses if p["missing"].get("cam1") == "skipped"]
    assert sum(k % 5 == 4 for k in skipped) >= len(skipped) // 2, "mostly the frames it lost"
    for p in dropped:
        points = np.asarray(p["keypoints"][0])
        assert np.all(points[np.isfinite(points[:, 0]), 4] <= 2), "two views at most"
    counts = session.grabber.counts
    by_camera = sum(sum(causes.values()) for causes in session.grabber.missing.values())
    assert by_camera >= counts["incomplete"] >= len(dropped)
    status = stream.of(b"status")[-1]
    assert sum(status["frame_sets"]["missing"]["cam1"].values()) > 0, "the status counts them"


def test_a_camera_group_is_refused_at_start_naming_the_field(tmp_path):
    config = group_config(tmp_path)
    config["sources"]["side"] = config["sources"].pop("cam2")
    with pytest.raises(ConfigError, match=r"rig.yaml: field 'sources'.*\['side'\]"):
        parse_config(config, "rig.yaml", tmp_path)
    no_calibration = group_config(tmp_path)
    del no_calibration["calibration"]
    with pytest.raises(ConfigError, match="calibration"):
        parse_config(no_calibration, "rig.yaml", tmp_path)
    broken = group_config(tmp_path, calibration="broken.toml")
    (tmp_path / "broken.toml").write_text("[cam_0]\nname = 'cam0'\n")
    with pytest.raises(ConfigError, match=r"field 'calibration'.*broken.toml.*\[cam_0\] has no"):
        parse_config(broken, "rig.yaml", tmp_path)
    both = group_config(tmp_path, source={"kind": "synthetic"})
    with pytest.raises(ConfigError, match="not both"):
        parse_config(both, "rig.yaml", tmp_path)
    rule_2d = group_config(
        tmp_path,
        rules=[
            {
                "name": "flat",
                "condition": {"type": "zone", "keypoint": "snout", "circle": [10, 10, 5]},
                "actions": [{"output": "led", "action": "on"}],
            }
        ],
        outputs={"led": {"kind": "log"}},
    )
    with pytest.raises(ValueError, match="3D pose only"):
        LiveSession(parse_config(rule_2d, "rig.yaml", tmp_path)).close()
