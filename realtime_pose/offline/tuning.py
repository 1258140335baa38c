"""Which engine and settings are fastest for a bundle on this CPU: measured, stored, reused.

``realtime-pose tune BUNDLE`` times every candidate (:func:`candidates`: ONNX Runtime with 1 and
2 threads, spinning on and off; OpenVINO with 1 and 2 threads where it is installed, in fp32
and in the reduced precisions the CPU computes natively, bf16 on AMX/AVX-512 BF16 parts) at the
size the rig feeds, in alternating blocks so a noisy spell hits all of them alike, and stores
the fastest (lowest p50, then p99) in ``BUNDLE/engines/tuned.json``
(:mod:`realtime_pose.engines.tuned`) under this machine's CPU model, core count and instruction
sets (:func:`realtime_pose.util.machine.cpu_key`). A reduced-precision candidate is chosen only
when it kept the bundle's accuracy on labelled held-out frames
(:mod:`realtime_pose.offline.precision`). When ONNX Runtime wins, how its idle threads spin is
then chosen against the closed loop's own tail, not the engine's alone
(:func:`tune_spinning`: the latency self-test, frame ready → byte at a serial device, with each
spinning mode): spinning threads make the engine faster and hold the cores the grabber, the
outputs and the stream need. The ``auto`` engine (:mod:`realtime_pose.engines.auto`,
the default when a run config has no ``engine:`` section) loads that choice, and ignores it on
another CPU.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from realtime_pose.bundle import Bundle
from realtime_pose.engines import open_engine
from realtime_pose.engines.base import EngineError
from realtime_pose.engines.tuned import TuneResult
from realtime_pose.geometry import Size
from realtime_pose.inference.estimator import NetworkInput
from realtime_pose.offline.precision import is_reduced
from realtime_pose.util.machine import cpu_key
from realtime_pose.util.stats import Summary

log = logging.getLogger(__name__)


def candidates() -> list[dict[str, Any]]:
    """The engine sections :func:`tune` compares (those whose backend is installed)."""
    sections: list[dict[str, Any]] = [
        {"kind": "onnxruntime", "threads": t, "spinning": s} for t in (1, 2) for s in (True, False)
    ]
    try:
        import openvino  # noqa: F401
    except ImportError:
        log.info("openvino is not installed: tuning ONNX Runtime only")
    else:
        from realtime_pose.engines.openvino import reduced_precisions

        sections += [{"kind": "openvino", "threads": t} for t in (1, 2)]
        sections += [
            {"kind": "openvino", "threads": t, "precision": p}
            for p in reduced_precisions()
            for t in (1, 2)
        ]
    return sections


Judge = Callable[[dict[str, Any], Size], dict[str, Any]]
"""``judge(section, input_size=SIZE)``: what a reduced-precision section does to accuracy at the
rig's input size; returns a dict with ``accepted``
(:func:`realtime_pose.offline.precision.held_out_change` bound to a project)."""


def tune(
    bundle: Bundle,
    size: Size,
    sections: Sequence[dict[str, Any]] | None = None,
    runs: int = 200,
    block: int = 20,
    judge: Judge | None = None,
) -> TuneResult:
    """Time each candidate engine on ``bundle`` at ``size`` (padded as the estimator pads it);
    return the timings and the fastest that keeps the bundle's accuracy.

    A candidate that cannot be created here (missing package or device) is listed with its
    error and never chosen. A reduced-precision candidate (bf16, f16) is timed and listed, but
    chosen only when ``judge`` accepted it (its verdict is in the row's ``accuracy``); without a
    judge it is listed as not judged.
    """
    sections = list(sections) if sections is not None else candidates()

    feed = size
    size = NetworkInput.for_bundle(bundle.meta, size).size(size)  # padded, as the rig runs it

    engines, rows = {}, []
    for i, section in enumerate(sections):
        try:
            engine = open_engine(bundle, section, [size])
            engine.warmup(size, runs=10)
            engines[i] = engine
        except EngineError as exc:
            rows.append({"engine": section, "error": str(exc)})
    if not engines:
        raise EngineError(f"{bundle.root}: no engine could run here: {rows}")
    image = np.random.default_rng(0).integers(0, 255, (*size.shape, 3), dtype=np.uint8)
    samples: dict[int, list[int]] = {i: [] for i in engines}
    while min(len(s) for s in samples.values()) < runs:
        for i, engine in engines.items():
            engine.run(image)  # the previous candidate's threads go quiet first
            for _ in range(block):
                t0 = time.perf_counter_ns()
                engine.run(image)
                samples[i].append(time.perf_counter_ns() - t0)
    for engine in engines.values():
        engine.close()
    timed = []
    for i, values in samples.items():
        summary = Summary.of(values)
        timed.append({"engine": sections[i], **summary.to_dict(suffix=True), "n": summary.n})
    timed.sort(key=lambda r: (r["p50_ms"], r["p99_ms"]))
    verdicts: dict[tuple[str, str], dict[str, Any]] = {}
    judged = partial(judge, input_size=feed) if judge is not None else None
    chosen = next((r for r in timed if _keeps_accuracy(r, judged, verdicts)), None)
    if chosen is None:
        raise EngineError(f"{bundle.root}: no candidate kept the bundle's accuracy: {timed}")
    return TuneResult(size, cpu_key(), timed + rows, chosen["engine"])


SPINNING_MODES: tuple[dict[str, Any], ...] = (
    {"spinning": True, "spin_after_run": True},
    {"spinning": True, "spin_after_run": False},
    {"spinning": False},
)
"""ONNX Runtime's idle threads: spinning between frames (its default), spinning only inside a
run, never spinning."""


def tune_spinning(
    bundle: Bundle,
    chosen: dict[str, Any],
    size: Size,
    fps: float,
    seconds: float = 8.0,
    rounds: int = 2,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """For an ONNX Runtime choice: run the latency self-test
    (:func:`realtime_pose.live.latency_selftest.run_latency_test`: the synthetic camera at
    ``size`` and ``fps``, a rule pulsing a serial output) with each of :data:`SPINNING_MODES`,
    alternated for ``rounds`` rounds of ``seconds``, and return the mode with the lowest mean
    frame ready → byte received p99, and one row per mode. Another backend is returned as it
    is, with no rows."""
    if chosen.get("kind") != "onnxruntime" or seconds <= 0:
        return chosen, []
    from realtime_pose.live.latency_selftest import LoopSettings, run_latency_test

    sections = [{**chosen, **mode} for mode in SPINNING_MODES]
    runs: list[list[dict[str, Any]]] = [[] for _ in sections]
    for r in range(rounds):
        order = range(len(sections)) if r % 2 == 0 else reversed(range(len(sections)))
        for i in order:
            result = run_latency_test(
                bundle.root,
                seconds,
                fps,
                (size.width, size.height),
                loop=LoopSettings(engine=sections[i]),
            )
            runs[i].append(result.summary())
    rows = []
    for section, summaries in zip(sections, runs, strict=True):
        rows.append(
            {
                "engine": section,
                "loop_p99_ms": _mean(s["p99_ms"] for s in summaries),
                "loop_p50_ms": _mean(s["p50_ms"] for s in summaries),
                "beyond_engine_p99_ms": _mean(s["beyond_engine_ms"]["p99"] for s in summaries),
                "engine_p50_ms": _mean(s["engine_p50_ms"] for s in summaries),
                "rounds": len(summaries),
                "seconds": seconds,
                "fps": fps,
            }
        )
    # a mode whose pulses never arrived (no p99) is never the best
    best = min(rows, key=lambda row: (math.isnan(row["loop_p99_ms"]), row["loop_p99_ms"]))
    return best["engine"], rows


def _mean(values: Any) -> float:
    values = [float(v) for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else float("nan")


def _keeps_accuracy(
    row: dict[str, Any],
    judge: Callable[[dict[str, Any]], dict[str, Any]] | None,
    verdicts: dict[tuple[str, str], dict[str, Any]],
) -> bool:
    """Whether a timed candidate may be chosen. A reduced-precision one is judged when it is
    the fastest left (judging runs the labelled frames twice), once per backend and precision,
    and the verdict is noted in its row."""
    section = row["engine"]
    if not is_reduced(section):
        return True
    key = (section.get("kind", ""), section["precision"])
    if key not in verdicts:
        if judge is None:
            verdicts[key] = {"accepted": False, "why": "not judged: no labelled frames"}
        else:
            try:
                verdicts[key] = judge(section)
            except (EngineError, ValueError, OSError) as exc:
                verdicts[key] = {"accepted": False, "why": f"could not be judged: {exc}"}
            log.info("%s %s on labelled frames: %s", *key, verdicts[key])
    row["accuracy"] = verdicts[key]
    return bool(verdicts[key].get("accepted"))
