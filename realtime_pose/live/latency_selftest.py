"""End-to-end latency self-test: frame ready → the action's byte arrives at the serial device.

The live loop runs on the synthetic camera with a rule that fires on known frames (a ``while``
rule on a likelihood gate that always holds, with a refractory period, so it fires every few
frames) and pulses an output on a serial port. The far end of a pseudo-terminal pair is read by
another process (:class:`~realtime_pose.hardware.testing.far_end.FarEndProcess`, standing in
for the board), which
stamps each command line's arrival with ``time.monotonic_ns()``. Each firing's frame capture
time (the host clock at which the frame was ready) is in the dispatcher's action log with the
command's sequence number, so every pulse is matched to its own arrival.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from realtime_pose.util.stats import Summary

if TYPE_CHECKING:
    from realtime_pose.live.session import LiveSession

log = logging.getLogger(__name__)


@dataclass
class LatencyTestResult:
    """What :func:`run_latency_test` measured."""

    latencies_ns: np.ndarray
    engine_p50_ms: float
    stages: dict[str, Any]
    fps: float
    frames: int
    unmatched: int
    config: dict[str, Any] = field(default_factory=dict)
    segments_ns: dict[str, np.ndarray] = field(default_factory=dict)
    beyond_engine_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """Per firing: frame-ready → byte-received minus that frame's own inference time."""

    def summary(self) -> dict[str, Any]:
        """The JSON document: ``n``, ``p50_ms``, ``p99_ms``, ``max_ms``, ``engine_p50_ms``, the
        loop's stages (``stages_ms``, over every frame) and the firings' path in three legs
        (``path_ms``, :data:`PATH_SEGMENTS`)."""
        total = _percentiles_ms(self.latencies_ns)
        return {
            "n": int(self.latencies_ns.size),
            "p50_ms": total["p50"],
            "p99_ms": total["p99"],
            "max_ms": total["max"],
            "engine_p50_ms": self.engine_p50_ms,
            "budget_ms": round(self.engine_p50_ms + 1.0, 4),
            "fps": round(self.fps, 1),
            "frames": self.frames,
            "unmatched_firings": self.unmatched,
            "stages_ms": self.stages,
            "path_ms": {name: _percentiles_ms(v) for name, v in self.segments_ns.items()},
            "beyond_engine_ms": _percentiles_ms(self.beyond_engine_ns),
            "beyond_engine_goal_p99_ms": 1.0,
            "config": self.config,
        }


def _percentiles_ms(values_ns: np.ndarray) -> dict[str, float | int | None]:
    return Summary.of(values_ns).to_dict()


@dataclass
class _LoopRecords:
    """What one run of the loop left behind: its stage times and the pulses' records."""

    stages: dict[str, Any]
    inference_ns: dict[int, int]
    frames: int
    dispatches: list[dict]
    writes: list[dict]
    arrivals: list[tuple[int, str]]


def run_latency_test(
    bundle: Path,
    seconds: float = 10.0,
    fps: float = 100.0,
    size: tuple[int, int] = (320, 240),
    refractory_ms: float = 20.0,
    threads: int = 0,
    spinning: bool = True,
    loop_cpus: list[int] | None = None,
    spin_duration_us: int | None = None,
    idle_poll_us: int = 0,
    direct_write: bool = True,
    gc_between_frames: bool = True,
) -> LatencyTestResult:
    """Run the loop for ``seconds`` and measure every firing's frame-ready → byte-received.

    ``direct_write`` and ``gc_between_frames`` are the serial output's and the run config's
    options of those names (on by default, as in a rig's config): off, they give the firing
    path as it was with a hand-off to the writer thread and collections anywhere.

    ``loop_cpus`` pins the loop thread there and every other thread (and the far-end reader
    process, started from the session's thread) to the remaining CPUs; see
    :mod:`realtime_pose.live.affinity`. ``spin_duration_us`` and ``idle_poll_us`` are the run
    config's ``engine.spin_duration_us`` and ``idle_poll_us``: ways to keep the CPUs awake
    between frames.
    """
    from realtime_pose.bundle import load_bundle
    from realtime_pose.hardware.testing.loopback import open_pty_pair

    keypoint = load_bundle(bundle, validate_graph=False).keypoints[0]
    with tempfile.TemporaryDirectory(prefix="rp-latency-") as tmp, open_pty_pair() as pty:
        config = _probe_run_config(
            bundle,
            keypoint,
            tmp,
            pty.host_path,
            fps=fps,
            size=size,
            refractory_ms=refractory_ms,
            threads=threads,
            spinning=spinning,
            loop_cpus=loop_cpus,
            spin_duration_us=spin_duration_us,
            idle_poll_us=idle_poll_us,
        )
        config["outputs"]["laser"]["direct_write"] = direct_write
        config["gc_between_frames"] = gc_between_frames
        session = _open_session(config, seconds, fps)
        records = _run_with_far_end(session, pty.far_fd, seconds)
        pulses = (records.dispatches, records.writes, records.arrivals)
        latencies, missing = match_by_sequence(*pulses)
        segments = path_segments(*pulses)
        beyond = beyond_engine(*pulses, records.inference_ns)
    engine_p50 = records.stages.get("inference", {}).get("p50", float("nan"))
    return LatencyTestResult(
        latencies,
        engine_p50,
        records.stages,
        records.frames / max(seconds, 1e-9),
        records.frames,
        missing,
        {
            "seconds": seconds,
            "fps": fps,
            "size": list(size),
            "refractory_ms": refractory_ms,
            "bundle": str(bundle),
            "port": "pty pair (kernel pseudo-terminal)",
            "threads": threads,
            "spinning": spinning,
            "loop_cpus": loop_cpus,
            "spin_duration_us": spin_duration_us,
            "idle_poll_us": idle_poll_us,
            "direct_write": direct_write,
            "gc_between_frames": gc_between_frames,
        },
        segments,
        beyond,
    )


def _probe_run_config(
    bundle: Path,
    keypoint: str,
    recording_dir: str,
    port: str,
    *,
    fps: float,
    size: tuple[int, int],
    refractory_ms: float,
    threads: int,
    spinning: bool,
    loop_cpus: list[int] | None,
    spin_duration_us: int | None,
    idle_poll_us: int,
) -> dict[str, Any]:
    """The run config: the synthetic camera and a ``while`` rule pulsing a serial output."""
    return {
        "source": {"kind": "synthetic", "width": size[0], "height": size[1], "fps": fps},
        "bundle": str(bundle),
        "engine": {
            "threads": threads,
            "spinning": spinning,
            "spin_duration_us": spin_duration_us,
        },
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": None},
        "recording": {"enabled": False, "directory": recording_dir},
        "outputs": {
            "laser": {
                "kind": "serial",
                "port": port,
                "channel": 0,
                "max_on_ms": 50,
                "configure_board": False,
            },
        },
        "rules": [
            {
                "name": "latency-probe",
                "on": "while",
                "condition": {"type": "likelihood", "keypoint": keypoint, "at_least": 0.0},
                "refractory_s": refractory_ms / 1000.0,
                "actions": [{"output": "laser", "action": "pulse", "duration_ms": 1}],
            }
        ],
        "status_interval_s": 1.0,
        "loop_cpus": loop_cpus,
        "idle_poll_us": idle_poll_us,
    }


def _open_session(config: dict[str, Any], seconds: float, fps: float) -> LiveSession:
    """A live session on ``config`` that keeps every frame's and every firing's records."""
    from realtime_pose.live.pipeline import STAGES
    from realtime_pose.live.run_config import parse_config
    from realtime_pose.live.session import LiveSession
    from realtime_pose.util.stats import StageStats

    session = LiveSession(parse_config(config, "latency-test"))
    # keep every frame's stage times, so each firing finds its own frame's inference time
    session.pipeline.stats = StageStats(STAGES, window=int(seconds * fps * 1.5) + 1000)
    # and every firing's records (a few per firing, at most one firing per frame)
    session.dispatcher.action_log.keep(int(seconds * fps * 1.5) * 6 + 1000)
    return session


def _run_with_far_end(session: LiveSession, far_fd: int, seconds: float) -> _LoopRecords:
    """Run ``session`` for ``seconds`` with a far-end reader on ``far_fd``; close both."""
    from realtime_pose.hardware.testing.far_end import FarEndProcess

    reader = None
    try:
        # started once the session is built: with loop_cpus the child inherits the CPUs
        # the session left to every thread but the loop's
        reader = FarEndProcess(far_fd)
        session.run(seconds)
        stages = session.pipeline.stats.summary_ms()
        inference_ns = session.pipeline.stats.by_key("inference")
        frames = session.pipeline.frames
        time.sleep(0.2)  # let the last pulse lines arrive
        action_log = session.dispatcher.action_log
        dispatches = [r for r in action_log.records("dispatch") if r.get("action") == "pulse"]
        writes = [r for r in action_log.records() if r.get("cmd") == "write_pulse"]
    finally:
        session.close()
        arrivals = reader.stop() if reader is not None else []
    return _LoopRecords(stages, inference_ns, frames, dispatches, writes, arrivals)


def beyond_engine(
    dispatches: list[dict],
    writes: list[dict],
    arrivals: list[tuple[int, str]],
    inference_ns: dict[int, int],
) -> np.ndarray:
    """Each firing's frame-ready → byte-received minus its frame's inference time (ns): the
    part of the closed loop that is ours (grab, preprocess, peaks, prediction, rules, dispatch,
    write)."""
    out = []
    for dispatch, _, t_arrival in _matched(dispatches, writes, arrivals)[0]:
        engine = inference_ns.get(int(dispatch.get("frame_index", -1)))
        if engine is not None:
            out.append(t_arrival - int(dispatch["t_frame_ns"]) - engine)
    return np.asarray(out, dtype=np.int64)


def _matched(
    dispatches: list[dict], writes: list[dict], arrivals: list[tuple[int, str]]
) -> tuple[list[tuple[dict, dict, int]], int]:
    """``(dispatch, write, t_arrival_ns)`` of every pulse whose line reached the far end, and how
    many did not. ``dispatches`` and ``writes`` are in submission order, so the n-th of each
    belong together; a write's line ``P ch ms seq`` names the arrival."""
    arrived: dict[str, int] = {}
    for t_ns, line in arrivals:
        parts = line.split()
        if parts and parts[0] == "P" and len(parts) >= 4:
            arrived.setdefault(parts[3], t_ns)
    matched, missing = [], 0
    for dispatch, write in zip(dispatches, writes, strict=False):
        parts = str(write.get("line", "")).split()
        t_arrival = arrived.get(parts[3]) if len(parts) >= 4 else None
        if t_arrival is None:
            missing += 1
        else:
            matched.append((dispatch, write, t_arrival))
    return matched, missing


def match_by_sequence(
    dispatches: list[dict], writes: list[dict], arrivals: list[tuple[int, str]]
) -> tuple[np.ndarray, int]:
    """Latency of each dispatched pulse whose line reached the far end, matched by ``seq``.

    ``dispatches`` (the dispatcher's records, with ``t_frame_ns``) and ``writes`` (the serial
    device's records of each pulse command, sent or failed, with its line ``P ch ms seq``) are in
    submission order, so the n-th of each belong together. Returns the latencies (ns) and how
    many pulses never arrived (dropped as stale or lost with the port).
    """
    matched, missing = _matched(dispatches, writes, arrivals)
    latencies = [t_arrival - int(d["t_frame_ns"]) for d, _, t_arrival in matched]
    return np.asarray(latencies, dtype=np.int64), missing


PATH_SEGMENTS = ("frame_to_dispatch", "dispatch_to_write", "write_to_arrival")
"""The three legs of frame-ready → byte-received: the loop's work up to the rule's action (grab,
network, peaks, prediction, rules); the hand-over to the serial writer thread until its write
begins; the write, the kernel's serial (here pseudo-terminal) transfer and the far end waking to
read."""


def path_segments(
    dispatches: list[dict], writes: list[dict], arrivals: list[tuple[int, str]]
) -> dict[str, np.ndarray]:
    """Each matched pulse's latency split into :data:`PATH_SEGMENTS` (ns).

    Needs the dispatch record's ``t_ns`` and ``t_frame_ns`` and the ``sent`` record's
    ``t_write_ns`` (taken as the write to the port began); pulses missing one are left out.
    """
    legs: dict[str, list[int]] = {name: [] for name in PATH_SEGMENTS}
    for dispatch, write, t_arrival in _matched(dispatches, writes, arrivals)[0]:
        if write.get("event") != "sent" or "t_write_ns" not in write or "t_ns" not in dispatch:
            continue
        t_frame, t_dispatch, t_write = (
            int(dispatch["t_frame_ns"]),
            int(dispatch["t_ns"]),
            int(write["t_write_ns"]),
        )
        legs["frame_to_dispatch"].append(t_dispatch - t_frame)
        legs["dispatch_to_write"].append(t_write - t_dispatch)
        legs["write_to_arrival"].append(t_arrival - t_write)
    return {name: np.asarray(v, dtype=np.int64) for name, v in legs.items()}
