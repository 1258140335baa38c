"""Putting another model into a running session between two frames (control ``model_swap``).

    request ─▶ load the bundle, check it fits      (control thread, quick: the reply)
            ─▶ engine + estimator at the loop's shapes, warmed up          (a worker)
            ─▶ the swap, between two frames        (the loop: estimator, meta, ``model`` event)
            ─▶ the previous engine closed          (the worker)

The loop never waits for a model to load: all it does is the swap itself (a few references
replaced, ``meta`` republished, one event), so the event lands in the stream and the recording
between the old model's last pose and the new one's first, and ``seq`` goes on without a gap.
Whatever fails before the swap leaves the running model as it was and says why: at once in the
reply (a broken bundle, keypoints or animals that differ from the running model's), or in a
``model`` event with ``state: "failed"`` (an engine that cannot be built, a graph that cannot
run at the loop's frame or crop sizes). Subscribers tell which model made a pose from
``meta.model``: poses with ``seq >= since_seq`` are the model whose ``model.onnx`` has that
``sha256``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from realtime_pose.bundle import Bundle, BundleMeta, load_bundle
from realtime_pose.engines import Engine
from realtime_pose.inference.estimator import NetworkInput, PoseEstimator
from realtime_pose.live.loop_model import LoopShapes, build_estimator, model_description
from realtime_pose.live.pipeline import Pipeline
from realtime_pose.live.run_config import RunConfig
from realtime_pose.stream import messages

log = logging.getLogger(__name__)

SWAP_LOOP_TIMEOUT_S = 5.0
"""How long the worker waits for the loop to take the swap (between two frames) before it
gives up; nothing is swapped then (:meth:`Pipeline.call_in_loop`)."""


class ModelSwapError(RuntimeError):
    """A model that was checked but could not be swapped in; the running model goes on."""


class SwappableSession(Protocol):
    """What a model swap uses of a running session
    (:class:`~realtime_pose.live.session.LiveSession` is one)."""

    config: RunConfig
    bundle: Bundle
    pipeline: Pipeline
    publisher: Any  # a PosePublisher, or None when the stream is off
    meta: dict[str, Any]
    engine: Engine | None
    loop_shapes: LoopShapes | None
    stop_event: threading.Event


def keypoint_difference(new: list[str], running: list[str]) -> str | None:
    """How the keypoints ``new`` differ from the running model's, or ``None`` if they are the
    same names in the same order (poses, rules, prediction and recordings keep their rows)."""
    if list(new) == list(running):
        return None
    missing = [k for k in running if k not in new]
    extra = [k for k in new if k not in running]
    parts = []
    if missing:
        parts.append(f"lacks {missing}")
    if extra:
        parts.append(f"has {extra}, which the running model does not")
    if not parts:  # the same names (a bundle's are unique), another order
        pairs = enumerate(zip(new, running, strict=True))
        moved = [f"{i}: {n!r} (running: {r!r})" for i, (n, r) in pairs if n != r]
        parts.append(f"has the same keypoints in another order (at {', '.join(moved[:4])})")
    return f"keypoints differ: it {'; '.join(parts)}"


def animals_difference(new: BundleMeta, running: BundleMeta) -> str | None:
    """How the animals of ``new`` differ from the running model's, or ``None``."""
    if new.animals == running.animals:
        return None

    def tracked(meta: BundleMeta) -> str:
        if meta.animals is None:
            return "one animal"
        return f"animals {meta.animals.names} ({meta.animals.decoding})"

    return f"animals differ: it has {tracked(new)}, the running model {tracked(running)}"


def fit_problems(new: BundleMeta, running: BundleMeta) -> list[str]:
    """What keeps a model from replacing the running one mid-session: keypoints (names and
    order: the rows of every pose, rule, filter and recording) and animals; ``[]`` if it fits.
    Input size, stride, outputs and weights may all differ."""
    problems = [keypoint_difference(new.keypoints, running.keypoints)]
    problems.append(animals_difference(new, running))
    return [p for p in problems if p is not None]


@dataclass(frozen=True)
class PlannedSwap:
    """A bundle that was loaded and fits the running model, reserved for swapping in."""

    bundle: Bundle
    sha256: str
    previous_sha256: str | None
    t_requested_ns: int

    def reply(self, shapes: LoopShapes) -> dict[str, Any]:
        """The ``model_swap`` reply: what is being loaded, and that its keypoints match."""
        meta = self.bundle.meta
        return {
            "loading": True,
            "bundle": str(self.bundle.root),
            "name": meta.name,
            "sha256": self.sha256,
            "previous_sha256": self.previous_sha256,
            "keypoints_match": True,
            "keypoints": list(meta.keypoints),
            "animals": None if meta.animals is None else list(meta.animals.names),
            "shapes": shapes.describe(),
        }

    def event(self, frame_index: int, **fields: Any) -> dict[str, Any]:
        """A ``model`` event about this bundle (``state``, and its other fields)."""
        return messages.event_payload(
            "model",
            self.bundle.meta.name,
            frame_index,
            bundle=str(self.bundle.root),
            sha256=self.sha256,
            previous_sha256=self.previous_sha256,
            **fields,
        )


class ModelSwapper:
    """Swaps models into one running session, one at a time.

    :meth:`plan` checks a bundle (quick; on the control thread), :meth:`run` builds it and swaps
    it in (slow; on a worker). A second :meth:`plan` while one swap is under way is refused.

    Parameters
    ----------
    session
        The running session.
    loop_timeout_s
        How long :meth:`run` waits for the loop to take the swap.
    """

    def __init__(self, session: SwappableSession, loop_timeout_s: float = SWAP_LOOP_TIMEOUT_S):
        self.session = session
        self.loop_timeout_s = loop_timeout_s
        self._lock = threading.Lock()
        self._under_way: Path | None = None

    @property
    def under_way(self) -> Path | None:
        """The bundle being swapped in now, or ``None``."""
        return self._under_way

    def plan(self, requested: str | Path) -> PlannedSwap:
        """Load ``requested`` (absolute, or relative to the working directory) and check that
        it can replace the running model; reserve the session's one swap for it.

        Raises
        ------
        ValueError
            A swap is under way; the bundle is broken (:class:`~realtime_pose.bundle.BundleError`
            names the file and the field); its keypoints or animals differ from the running
            model's (the message names what differs).
        """
        path = Path(requested).expanduser()
        path = path if path.is_absolute() else Path.cwd() / path
        with self._lock:
            if self._under_way is not None:
                raise ValueError(
                    f"a model swap is already under way ({self._under_way}); wait for its "
                    "'model' event on the stream, then ask again"
                )
            self._under_way = path
        try:
            t_requested = time.monotonic_ns()
            if self.session.loop_shapes is None:
                raise ValueError("this session has no model loop to swap a model into")
            bundle = load_bundle(path)
            running = self.session.bundle
            problems = fit_problems(bundle.meta, running.meta)
            if problems:
                raise ValueError(
                    f"{bundle.root} cannot replace the running model {running.meta.name!r} "
                    f"({running.root}): {'; '.join(problems)}. The running model goes on"
                )
            planned = PlannedSwap(
                bundle,
                bundle.model_sha256(),
                self.session.meta.get("model", {}).get("sha256"),
                t_requested,
            )
        except BaseException:
            self._release()
            raise
        return planned

    def abandon(self, planned: PlannedSwap) -> None:
        """Give up a planned swap that will not :meth:`run` (frees the reservation)."""
        self._release()

    def run(self, planned: PlannedSwap) -> None:
        """Build ``planned``'s engine and estimator at the loop's shapes, warm them up, swap
        them in between two frames and close the previous engine. Call on a worker thread.

        Raises
        ------
        ModelSwapError
            The model could not be built or run at the loop's shapes, or the loop did not take
            the swap; nothing was swapped and the running model goes on.
        """
        session = self.session
        shapes = session.loop_shapes
        assert shapes is not None  # plan() checked
        swapped, previous = False, None
        try:
            estimator = self._build(planned.bundle, shapes)
            try:
                if session.stop_event.is_set():
                    raise ModelSwapError("the session is stopping; the model was not swapped")
                previous = session.pipeline.call_in_loop(
                    lambda: self._swap(planned, estimator), timeout_s=self.loop_timeout_s
                )
                swapped = True
            except TimeoutError as exc:
                raise ModelSwapError(str(exc)) from exc
            finally:
                if not swapped:
                    estimator.engine.close()
        finally:
            if not swapped:
                self._release()
        if previous is not None:
            try:
                previous.close()
            except Exception:  # the new model runs: a leak to report, not a failed swap
                log.exception("closing the previous engine after the model swap failed")

    def _build(self, bundle: Bundle, shapes: LoopShapes) -> PoseEstimator:
        config = self.session.config
        try:
            return build_estimator(bundle, config, shapes)
        except Exception as exc:
            sizing = NetworkInput.for_bundle(bundle.meta, config.input_size)
            sizes = ", ".join(f"{s.width}x{s.height}" for s in shapes.network_sizes(sizing))
            raise ModelSwapError(
                f"{bundle.root}: could not be built and run at the loop's shapes "
                f"({shapes.describe()}; network input {sizes}) with engine "
                f"{config.engine.name!r}: {type(exc).__name__}: {exc}. The running model goes on"
            ) from exc

    def _swap(self, planned: PlannedSwap, estimator: PoseEstimator) -> Engine | None:
        """On the loop, between two frames: the new estimator takes the next frame; return the
        previous engine (to be closed off the loop)."""
        session, pipe = self.session, self.session.pipeline
        if session.stop_event.is_set():
            raise ModelSwapError("the session is stopping; the model was not swapped")
        previous = session.engine
        since_seq = pipe.seq  # the next pose is the new model's
        swaps = int(session.meta.get("model", {}).get("swaps", 0)) + 1
        model = model_description(planned.bundle, planned.sha256, since_seq, swaps)
        pipe.estimator = estimator  # the only reference the loop reads per frame
        pipe.keypoints = estimator.keypoints
        session.engine = estimator.engine
        session.bundle = planned.bundle
        # assigning existing keys: a thread encoding meta meanwhile never sees it resized
        session.meta["model"] = model
        session.meta["skeleton"] = [[a, b] for a, b in planned.bundle.meta.skeleton]
        self._release()  # before the event: a client that reacts to it may swap again
        load_ms = (time.monotonic_ns() - planned.t_requested_ns) / 1e6
        try:
            if session.publisher is not None:
                session.publisher.publish_meta(session.meta)
            pipe.emit_event(
                planned.event(
                    pipe.frames,
                    state="swapped",
                    since_seq=since_seq,
                    swaps=swaps,
                    load_ms=round(load_ms, 3),
                )
            )
        except Exception:  # the model runs; meta.model says so on request
            log.exception("the swap to %s could not be announced", planned.bundle.root)
        log.info(
            "model %s (%s) swapped in from pose %d, %.0f ms after the request",
            planned.bundle.meta.name,
            planned.sha256[:12],
            since_seq,
            load_ms,
        )
        return previous

    def _release(self) -> None:
        with self._lock:
            self._under_way = None
