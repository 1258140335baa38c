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
    windows_ns: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    """Per firing in ``beyond_engine_ns``: its frame-ready and byte-received times
    (``monotonic_ns``), to line up with a scheduler trace."""

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
    far_end: str | None = None
    """How the far-end reader was scheduled (``FarEndProcess.realtime``)."""


@dataclass(frozen=True)
class LoopSettings:
    """The loop's knobs the self-test varies: the run config's options of these names.

    ``threads``, ``spinning``, ``spin_duration_us`` and ``spin_after_run`` are ``engine.*``;
    ``direct_write`` the serial output's; ``loop_cpus``, ``idle_poll_us``, ``gc_between_frames``,
    ``realtime_priority`` and ``lock_memory`` the run config's own. Defaults are a rig's
    defaults. Off, ``direct_write`` and ``gc_between_frames`` give the firing path as it was (a
    hand-off to the writer thread, collections anywhere).

    ``far_end_priority`` is the test's own: the far-end reader process, standing in for the
    board's own microcontroller (which never waits for the host's scheduler), runs under
    ``SCHED_FIFO`` at this priority where permitted, so the host's other threads do not delay
    the stamp; ``None`` leaves it a normal process.
    """

    threads: int = 0
    spinning: bool = True
    spin_duration_us: int | None = None
    spin_after_run: bool = True
    loop_cpus: list[int] | None = None
    idle_poll_us: int = 0
    direct_write: bool = True
    gc_between_frames: bool = True
    realtime_priority: int | None = None
    lock_memory: bool = False
    far_end_priority: int | None = None
    engine: dict[str, Any] | None = None
    """A whole engine section to run instead (``threads``, ``spinning``, ``spin_duration_us``
    and ``spin_after_run`` are then ignored): how ``tune`` tries its choice in the loop."""

    def as_dict(self) -> dict[str, Any]:
        """The settings for the result's ``config``."""
        return dict(self.__dict__)


def run_latency_test(
    bundle: Path,
    seconds: float = 10.0,
    fps: float = 100.0,
    size: tuple[int, int] = (320, 240),
    refractory_ms: float = 20.0,
    loop: LoopSettings | None = None,
) -> LatencyTestResult:
    """Run the loop for ``seconds`` and measure every firing's frame-ready → byte-received.

    ``loop`` sets the loop's knobs (:class:`LoopSettings`; default: a rig's defaults). With
    ``loop_cpus`` the loop thread is pinned there and every other thread (and the far-end
    reader process, started from the session's thread) to the remaining CPUs; see
    :mod:`realtime_pose.live.affinity`.
    """
    from realtime_pose.bundle import load_bundle
    from realtime_pose.hardware.testing.loopback import open_pty_pair

    loop = loop or LoopSettings()
    keypoint = load_bundle(bundle, validate_graph=False).keypoints[0]
    with tempfile.TemporaryDirectory(prefix="rp-latency-") as tmp, open_pty_pair() as pty:
        config = _probe_run_config(
            bundle, keypoint, tmp, pty.host_path, fps, size, refractory_ms, loop
        )
        session = _open_session(config, seconds, fps)
        records = _run_with_far_end(session, pty.far_fd, seconds, loop.far_end_priority)
        pulses = (records.dispatches, records.writes, records.arrivals)
        latencies, missing = match_by_sequence(*pulses)
        segments = path_segments(*pulses)
        beyond, windows = beyond_engine(*pulses, records.inference_ns)
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
            **loop.as_dict(),
            "far_end_scheduling": records.far_end or "normal",
        },
        segments,
        beyond,
        windows,
    )


def _probe_run_config(
    bundle: Path,
    keypoint: str,
    recording_dir: str,
    port: str,
    fps: float,
    size: tuple[int, int],
    refractory_ms: float,
    loop: LoopSettings,
) -> dict[str, Any]:
    """The run config: the synthetic camera and a ``while`` rule pulsing a serial output."""
    return {
        "source": {"kind": "synthetic", "width": size[0], "height": size[1], "fps": fps},
        "bundle": str(bundle),
        "engine": loop.engine
        or {
            "threads": loop.threads,
            "spinning": loop.spinning,
            "spin_duration_us": loop.spin_duration_us,
            "spin_after_run": loop.spin_after_run,
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
                "direct_write": loop.direct_write,
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
        "loop_cpus": loop.loop_cpus,
        "idle_poll_us": loop.idle_poll_us,
        "gc_between_frames": loop.gc_between_frames,
        "realtime_priority": loop.realtime_priority,
        "lock_memory": loop.lock_memory,
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


def _run_with_far_end(
    session: LiveSession, far_fd: int, seconds: float, far_end_priority: int | None
) -> _LoopRecords:
    """Run ``session`` for ``seconds`` with a far-end reader on ``far_fd``; close both."""
    from realtime_pose.hardware.testing.far_end import FarEndProcess

    reader = None
    try:
        # started once the session is built: with loop_cpus the child inherits the CPUs
        # the session left to every thread but the loop's
        reader = FarEndProcess(far_fd, realtime_priority=far_end_priority)
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
    far_end = reader.realtime if reader is not None else None
    if far_end is not None and not far_end.startswith("fifo"):
        log.warning("the far-end reader runs as a normal process: SCHED_FIFO %s", far_end)
    return _LoopRecords(stages, inference_ns, frames, dispatches, writes, arrivals, far_end)


def beyond_engine(
    dispatches: list[dict],
    writes: list[dict],
    arrivals: list[tuple[int, str]],
    inference_ns: dict[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Each firing's frame-ready → byte-received minus its frame's inference time (ns): the
    part of the closed loop that is ours (grab, preprocess, peaks, prediction, rules, dispatch,
    write); and beside it, each such firing's ``[frame ready, byte received]`` (ns)."""
    out, windows = [], []
    for dispatch, _, t_arrival in _matched(dispatches, writes, arrivals)[0]:
        engine = inference_ns.get(int(dispatch.get("frame_index", -1)))
        if engine is not None:
            t_frame = int(dispatch["t_frame_ns"])
            out.append(t_arrival - t_frame - engine)
            windows.append((t_frame, t_arrival))
    return np.asarray(out, dtype=np.int64), np.asarray(windows, dtype=np.int64).reshape(-1, 2)


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
