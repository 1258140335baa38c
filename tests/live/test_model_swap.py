"""Swapping a model into a running session (control ``model_swap``): the live loop on the
synthetic camera at 100 fps, real marker bundles, a real subscriber, control client and
recording.

Bundle A and bundle B are the marker model with different location-refinement weights, so
every pose says which one made it: its keypoints sit ``7.2801 * locref`` px from their
score-map cell's centre (+1.82 px for A, -1.82 px for B), whatever the scene.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from realtime_pose.bundle import BundleMeta, load_bundle, write_bundle
from realtime_pose.geometry import Size
from realtime_pose.inference.estimator import NetworkInput
from realtime_pose.live.loop_model import LoopShapes
from realtime_pose.live.model_swap import fit_problems, keypoint_difference
from realtime_pose.live.run_config import CropConfig
from realtime_pose.recording import read_log
from realtime_pose.stream import ControlClient, messages
from tests.builders import marker_meta, marker_model, write_marker_bundle
from tests.live.conftest import base_config
from tests.view.sessions import RunningSession, StreamLog

LOCREF_A, LOCREF_B = 0.25, -0.25
RULE = {
    "name": "tick",
    "on": "while",
    "refractory_s": 0.05,  # fires about 20 times a second, whatever the pose
    "condition": {"type": "likelihood", "keypoint": "red", "at_least": 0.0},
    "actions": [{"output": "led", "action": "pulse", "duration_ms": 1}],
}


def model_of(keypoints: list[list[float]]) -> str | None:
    """``"A"`` or ``"B"``: which marker model made a pose (``[[x, y, p], ...]``)."""
    offsets = (np.asarray(keypoints)[:, :2] - 4.0) % 8.0
    for name, locref in (("A", LOCREF_A), ("B", LOCREF_B)):
        if np.allclose(offsets, (7.2801 * locref) % 8.0, atol=1e-3):
            return name
    return None


@pytest.fixture
def bundles(tmp_path) -> dict[str, Path]:
    """A (the session's), B (other weights, same keypoints), and bundles that do not fit."""
    a = write_marker_bundle(tmp_path / "a", locref_value=LOCREF_A)
    b = write_marker_bundle(tmp_path / "b", locref_value=LOCREF_B)
    renamed = tmp_path / "renamed"
    write_bundle(
        renamed, marker_model(), marker_meta(keypoints=["nose", "green", "blue"], skeleton=[])
    )
    reordered = tmp_path / "reordered"
    meta = marker_meta(keypoints=["green", "red", "blue"])
    write_bundle(reordered, marker_model(), meta)
    broken = tmp_path / "broken"
    shutil.copytree(b, broken)
    raw = json.loads((broken / "bundle.json").read_text())
    raw["stride"] = -8
    (broken / "bundle.json").write_text(json.dumps(raw))
    return {"a": a, "b": b, "renamed": renamed, "reordered": reordered, "broken": broken}


def fixed_input_bundle(folder: Path) -> Path:
    """The marker model with its input fixed at 32x32 in the graph (not declared in
    bundle.json: it loads, but cannot run at the session's 80x64 frames)."""
    import onnx

    model = onnx.load_from_string(marker_model(locref_value=LOCREF_B))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[1].dim_value, dims[2].dim_value = 32, 32
    write_bundle(folder, model.SerializeToString(), marker_meta())
    return folder


def swap_config(tmp_path: Path, bundle: Path) -> dict:
    source = {"kind": "synthetic", "width": 80, "height": 64, "fps": 100, "realtime": True}
    return base_config(
        bundle,
        tmp_path,
        source,
        rules=[RULE],
        outputs={"led": {"kind": "log", "channel": 0, "max_on_ms": 10}},
    )


def wait_for(predicate, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.01)
    return predicate()


def model_events(log: StreamLog) -> list[dict]:
    return [e for e in log.of(b"event") if e["kind"] == "model"]


def closed(engine) -> bool:
    """Whether ``engine`` was closed: it no longer runs (a closed engine raises)."""
    try:
        engine.run(np.zeros((64, 80, 3), np.uint8))
    except Exception:
        return True
    return False


def dropped_between(poses: list[dict], t0_ns: int, t1_ns: int) -> int:
    """Frames the loop dropped among those captured in ``[t0_ns, t1_ns)``: gaps in
    ``frame_index`` between consecutive poses."""
    frames = [p["frame_index"] for p in poses if t0_ns <= p["t_capture_ns"] < t1_ns]
    return int(np.sum(np.diff(frames) - 1)) if len(frames) > 1 else 0


def test_a_model_swapped_in_mid_run_makes_the_poses_from_since_seq(tmp_path, bundles):
    sha_a = load_bundle(bundles["a"]).model_sha256()
    sha_b = load_bundle(bundles["b"]).model_sha256()
    assert sha_a != sha_b
    with (
        RunningSession(swap_config(tmp_path, bundles["a"]), tmp_path) as run,
        ControlClient(run.control, 5000) as client,
    ):
        log = StreamLog(run.stream, (b"pose", b"event", b"meta"))
        try:
            session = run.session
            assert session.meta["model"]["sha256"] == sha_a
            assert session.meta["model"]["since_seq"] == 0
            old_engine = session.engine
            time.sleep(1.0)  # poses without a swap, to compare drops with
            t_request = time.monotonic_ns()
            reply = client.request("model_swap", bundle=str(bundles["b"]))
            assert reply["ok"], reply
            assert reply["loading"] is True and reply["keypoints_match"] is True
            assert reply["keypoints"] == ["red", "green", "blue"]
            assert reply["sha256"] == sha_b and reply["previous_sha256"] == sha_a
            swapped = wait_for(lambda: [e for e in model_events(log) if e["state"] == "swapped"])
            assert swapped, f"no 'swapped' event: {model_events(log)}"
            new_engine = session.engine
            assert new_engine is not old_engine and not closed(new_engine)
            assert wait_for(lambda: closed(old_engine), 5), "the previous engine was not closed"
            time.sleep(0.6)  # poses and rule firings after the swap
            asked = client.request("meta")["meta"]["model"]
        finally:
            log.close()
    assert session.engine is None and closed(new_engine), "shutdown closes the current engine"

    (event,) = swapped
    since = event["since_seq"]
    assert event["name"] == "marker" and event["bundle"] == str(bundles["b"].resolve())
    assert event["sha256"] == sha_b and event["previous_sha256"] == sha_a
    assert asked["sha256"] == sha_b and asked["since_seq"] == since and asked["swaps"] == 1

    # the stream: seq without a gap, A's poses up to since_seq, B's from it, the new meta and
    # the event between the two
    stream = log.messages
    poses = [m for t, m in stream if t == b"pose"]
    seqs = [p["seq"] for p in poses]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap in seq"
    assert seqs[0] < since < seqs[-1] - 20
    assert {model_of(p["keypoints"][0]) for p in poses if p["seq"] < since} == {"A"}
    assert {model_of(p["keypoints"][0]) for p in poses if p["seq"] >= since} == {"B"}
    order = [(t, m.get("seq"), m.get("kind")) for t, m in stream]
    order = [o for o in order if o[0] != b"event" or o[2] == "model"]  # not rules, outputs
    at_event = order.index((b"event", None, "model"))
    assert order[at_event - 2 : at_event + 2] == [
        (b"pose", since - 1, None),
        (b"meta", None, None),
        (b"event", None, "model"),
        (b"pose", since, None),
    ]
    new_meta = [m for t, m in stream if t == b"meta" and m["model"]["sha256"] == sha_b]
    assert new_meta and new_meta[0]["model"]["since_seq"] == since
    assert new_meta[0]["keypoints"] == ["red", "green", "blue"]

    # the rule kept firing across the swap, at its pace
    t_swap = event["t_ns"]
    ticks = [e["t_ns"] for e in log.of(b"event") if e["kind"] == "rule" and e["name"] == "tick"]
    before = [t for t in ticks if t_swap - 0.5e9 < t < t_swap]
    after = [t for t in ticks if t_swap < t < t_swap + 0.5e9]
    assert len(before) >= 5 and len(after) >= 5, (len(before), len(after))

    # from the request to just after the swap (the old engine closed by then) the loop drops
    # no more than a few frames beyond what as long a window before the request dropped
    window_ns = t_swap + 100_000_000 - t_request
    during = dropped_between(poses, t_request, t_request + window_ns)
    without = dropped_between(poses, t_request - window_ns, t_request)
    assert during <= without + 5, (without, during, window_ns / 1e6)

    # the recording: the event among the poses, right where the models change
    rec = read_log(next((tmp_path / "rec").glob("*.poselog")))
    (recorded,) = [e["event"] for e in rec.events if e["event"]["kind"] == "model"]
    assert recorded["since_seq"] == since and recorded["sha256"] == sha_b
    i = int(np.flatnonzero(rec.seq == since)[0])
    assert rec.seq[i - 1] == since - 1
    assert rec.t_record_ns[i - 1] < recorded["t_ns"] < rec.t_record_ns[i]
    assert {model_of(p[0]) for p in rec.poses[:i]} == {"A"}
    assert {model_of(p[0]) for p in rec.poses[i:]} == {"B"}


def test_a_model_that_does_not_fit_is_refused_and_the_old_one_goes_on(tmp_path, bundles):
    fixed = fixed_input_bundle(tmp_path / "fixed")
    sha_a = load_bundle(bundles["a"]).model_sha256()
    with (
        RunningSession(swap_config(tmp_path, bundles["a"]), tmp_path) as run,
        ControlClient(run.control, 5000) as client,
    ):
        log = StreamLog(run.stream, (b"pose", b"event"))
        try:
            session, pipe = run.session, run.session.pipeline
            estimator = pipe.estimator

            def refused(bundle: str) -> str:
                reply = client.request("model_swap", bundle=bundle)
                assert not reply["ok"], reply
                return reply["error"]

            error = refused(str(bundles["renamed"]))
            assert "keypoints differ" in error and "lacks ['red']" in error and "'nose'" in error
            error = refused(str(bundles["reordered"]))
            assert "another order" in error and "0: 'green' (running: 'red')" in error
            error = refused(str(bundles["broken"]))
            assert str(bundles["broken"] / "bundle.json") in error and "stride" in error
            assert "no such bundle" in refused(str(tmp_path / "nowhere"))

            # loads, but cannot run at the loop's 80x64 frames: a 'failed' event says why
            reply = client.request("model_swap", bundle=str(fixed))
            assert reply["ok"] and reply["keypoints_match"], reply
            failed = wait_for(lambda: [e for e in model_events(log) if e["state"] == "failed"])
            assert failed, model_events(log)
            assert "80x64 frames" in failed[0]["error"], failed[0]["error"]
            assert failed[0]["bundle"] == str(fixed.resolve())

            # one at a time; and a swap the loop does not take in time is not made
            session.requests.models.loop_timeout_s = 0.3
            inside, gate = threading.Event(), threading.Event()

            def hold() -> None:  # the loop, between two frames, until the gate opens
                inside.set()
                gate.wait(10)

            blocker = threading.Thread(
                target=pipe.call_in_loop, args=(hold,), kwargs={"timeout_s": 10}
            )
            blocker.start()
            try:
                assert inside.wait(5)
                assert client.request("model_swap", bundle=str(bundles["b"]))["ok"]
                error = refused(str(bundles["b"]))
                assert "already under way" in error and str(bundles["b"]) in error
                assert wait_for(lambda: session.requests.models.under_way is None, 10)
            finally:
                gate.set()
                blocker.join(10)
            assert wait_for(lambda: len(model_events(log)) == 2), model_events(log)
            timed_out = model_events(log)[-1]
            assert timed_out["state"] == "failed" and "nothing was done" in timed_out["error"]

            seq = pipe.seq
            assert wait_for(lambda: pipe.seq > seq + 50), "poses stopped"
            assert pipe.estimator is estimator
            assert session.meta["model"]["sha256"] == sha_a and session.meta["model"]["swaps"] == 0
            meta = client.request("meta")["meta"]["model"]
            assert meta["sha256"] == sha_a and meta["since_seq"] == 0
            # the stream drops poses for a slow subscriber (a busy machine): wait for enough
            assert wait_for(lambda: len(log.of(b"pose")) > 60), "no poses reached the stream"
        finally:
            log.close()
    poses = log.of(b"pose")
    assert len(poses) > 60 and {model_of(p["keypoints"][0]) for p in poses} == {"A"}
    assert not [e for e in model_events(log) if e["state"] == "swapped"]


def test_fit_names_what_differs():
    running = BundleMeta.model_validate(marker_meta())
    same = BundleMeta.model_validate(marker_meta(stride=16, name="retrained"))
    assert fit_problems(same, running) == []
    two = BundleMeta.model_validate(
        marker_meta(
            keypoints=["a/red", "a/green", "a/blue"],
            skeleton=[],
            animals={"names": ["a"], "bodyparts": ["red", "green", "blue"]},
        )
    )
    problems = fit_problems(two, running)
    assert len(problems) == 2
    assert problems[1] == (
        "animals differ: it has animals ['a'] (identity_channels), the running model one animal"
    )
    assert keypoint_difference(["red", "green"], ["red", "green", "blue"]) == (
        "keypoints differ: it lacks ['blue']"
    )


def test_loop_shapes_cover_the_crop_window_and_each_frame():
    sizing = NetworkInput(pad=16)
    shapes = LoopShapes.of_camera(Size(80, 64), CropConfig(enabled=True, width=40, height=100))
    assert shapes.crop == Size(40, 64)  # clamped to the frame
    assert shapes.network_sizes(sizing) == [Size(48, 64), Size(80, 64)]
    group = LoopShapes((Size(80, 64), Size(100, 50), Size(80, 64)))
    assert group.network_sizes(sizing) == [Size(80, 64), Size(112, 64)]
    assert group.describe() == "80x64, 100x50 frames"


def test_the_request_is_validated_at_the_edge():
    assert "model_swap" in messages.COMMANDS
    ok = messages.validate_request({"cmd": "model_swap", "bundle": "models/b"})
    assert ok.bundle == "models/b"  # type: ignore[attr-defined]
    for bad in ({"bundle": ""}, {"bundle": "x" * 5000}, {"bundle": 3}, {}):
        with pytest.raises(messages.RequestError, match="model_swap"):
            messages.validate_request({"cmd": "model_swap", **bad})
