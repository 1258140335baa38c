"""What the live loop hands poses and frames to: one small typed port per consumer.

:class:`~realtime_pose.live.pipeline.Pipeline` depends on these protocols only, so a test, a
benchmark or a new consumer (the live view) plugs in whatever implements them; the implementations
in the package are :class:`~realtime_pose.stream.PosePublisher` (:class:`PosePublisherPort`),
:class:`~realtime_pose.recording.PoseRecorder` and :class:`~realtime_pose.recording.VideoRecorder`
(:class:`PoseRecorderPort`, :class:`FrameRecorderPort`), :class:`~realtime_pose.rules.RuleEngine`
(:class:`RuleEvaluatorPort`), :class:`~realtime_pose.hardware.OutputDispatcher`
(:class:`OutputPort`), :class:`~realtime_pose.live.processors.ProcessorChain`
(:class:`ProcessorPort`) and :class:`~realtime_pose.view.frame_tap.LatestFrameTap`
(:class:`FrameTap`).

Every method here is called on the loop thread, once per frame or per event, and must return
quickly: a port that does slow work (I/O to a device, encoding an image) hands it to a thread of
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from realtime_pose.sources.base import Frame

Predicted = tuple[int, np.ndarray]
"""``(t_target_ns, keypoints)`` of a forward-predicted pose."""


@runtime_checkable
class PosePublisherPort(Protocol):
    """Publishes poses, events, status and meta (the ZeroMQ stream, docs/protocol.md)."""

    @property
    def dropped(self) -> int:
        """Messages dropped because a subscriber was too slow."""
        ...

    def publish_pose(
        self,
        seq: int,
        frame_index: int,
        t_capture_ns: int,
        latency_ns: Mapping[str, int],
        keypoints: np.ndarray,
        predicted: Predicted | None = None,
        camera: Mapping[str, int] | None = None,
        track_ids: Sequence[int] | None = None,
    ) -> int:
        """Publish one pose; return its ``t_publish_ns``. ``camera``: the frame's camera fields
        (:meth:`~realtime_pose.sources.base.Frame.camera_fields`), added to the payload;
        ``track_ids``: the track in each animal slot (-1: none), animals that look alike."""
        ...

    def publish_event(self, event: Mapping[str, Any]) -> bool:
        """Publish an ``event`` map."""
        ...

    def publish_status(self, status: Mapping[str, Any]) -> bool:
        """Publish a ``status`` map."""
        ...

    def publish_meta(self, meta: Mapping[str, Any]) -> bool:
        """Publish the ``meta`` map."""
        ...


class RecordingResultLike(Protocol):
    """What stopping a recording reports."""

    def as_reply(self) -> dict[str, Any]:
        """The fields of a ``record_stop`` reply (path, poses, events, tables, error)."""
        ...


@runtime_checkable
class PoseRecorderPort(Protocol):
    """Appends poses and events to a crash-safe log."""

    path: Path
    last_error: str | None

    def write_pose(
        self,
        seq: int,
        frame_index: int,
        t_capture_ns: int,
        keypoints: np.ndarray,
        predicted: Predicted | None = None,
        camera: Mapping[str, int] | None = None,
        track_ids: Sequence[int] | None = None,
    ) -> bool:
        """Append one pose (with the frame's camera fields, when it has them, and the track in
        each animal slot)."""
        ...

    def write_event(
        self, frame_index: int, event: Mapping[str, Any], t_ns: int | None = None
    ) -> bool:
        """Append one event."""
        ...

    def stop(self, convert: bool = True) -> RecordingResultLike:
        """Close the log (and convert it); slow, never called on the loop thread."""
        ...


@runtime_checkable
class FrameRecorderPort(Protocol):
    """Appends raw frames to a video beside the pose log."""

    def write(
        self,
        frame: np.ndarray,
        frame_index: int,
        t_capture_ns: int,
        camera: Mapping[str, int] | None = None,
    ) -> bool:
        """Append one frame (its camera fields go to the sidecar)."""
        ...

    def close(self) -> None:
        """Finish the video."""
        ...


RecorderFactory = Callable[[Path | None, bool], tuple[PoseRecorderPort, FrameRecorderPort | None]]
"""``(path or None for a fresh name, record video) -> (pose recorder, frame recorder or None)``."""


class RuleActionLike(Protocol):
    """One output action of a rule firing."""

    output: str
    action: str
    duration_s: float | None

    def to_dict(self) -> dict[str, Any]:
        """The action as published in events."""
        ...


class RuleEventLike(Protocol):
    """A rule firing (or switching off)."""

    rule: str
    kind: str
    frame_index: int
    t_ns: int
    source: str

    @property
    def actions(self) -> Sequence[RuleActionLike]:
        """The output actions the firing asks for."""
        ...


@runtime_checkable
class RuleEvaluatorPort(Protocol):
    """Evaluates the rules on each pose; rules can be switched on and off by name."""

    def evaluate(
        self,
        pose: np.ndarray,
        t_ns: int,
        frame_index: int,
        predicted: np.ndarray | None = None,
    ) -> Sequence[RuleEventLike]:
        """The rule events this frame causes (usually none)."""
        ...

    def enable(self, name: str) -> None:
        """Enable a rule."""
        ...

    def disable(self, name: str) -> None:
        """Disable a rule (its outputs go off)."""
        ...


@runtime_checkable
class OutputPort(Protocol):
    """Drives the named outputs (lasers, valves) without blocking; watches the loop."""

    def submit(
        self,
        output_name: str,
        action: str,
        duration_s: float | None = None,
        frame_index: int | None = None,
        t_frame_ns: int | None = None,
    ) -> Any:
        """Act on an output now; returns at once. The returned record's ``held_off`` names the
        limit that refused a switch-on (``"min_off"``, ``"duty"``), else ``None``."""
        ...

    def hold_off(self, output_name: str, duration_s: float | None = None) -> str | None:
        """Why a pulse on the output now would not run as asked (on already, minimum off-time,
        duty budget), or ``None``."""
        ...

    def kick(self) -> None:
        """Tell the stall watchdog the loop is alive."""
        ...

    def health(self) -> dict[str, Any]:
        """Counters and per-device state for the status stream."""
        ...


@runtime_checkable
class TrackingPort(Protocol):
    """Keeps several animals' rows apart from frame to frame (identity channels: under their
    names; animals that look alike: one slot per followed animal)."""

    @property
    def track_ids(self) -> np.ndarray | None:
        """The track in each animal slot after the last :meth:`update` (``None``: the rows are
        named by identity, not slots)."""
        ...

    def update(self, pose: np.ndarray, t_ns: int) -> np.ndarray:
        """The frame's pose ``[A·K, 3]`` with each animal's rows where they belong."""
        ...


class ProcessorPort(Protocol):
    """User processors (DeepLabCut-Live's API) called on every pose."""

    errors: int

    def __len__(self) -> int: ...

    def __call__(self, pose: np.ndarray, frame_time: float, frame_index: int) -> np.ndarray:
        """The (possibly modified) pose."""
        ...

    def save_all(self) -> None:
        """Call each processor's ``save()`` at the end of the run."""
        ...


@runtime_checkable
class FrameTap(Protocol):
    """Sees the newest frame with its pose (the live view's feed).

    :meth:`offer` is called on the loop thread for every frame and must never block or do
    slow work: keep the newest offer in one slot
    (:class:`~realtime_pose.view.frame_tap.LatestFrameTap`) and let the consumer take it at its own
    pace.
    """

    def offer(self, frame: Frame, seq: int, pose: np.ndarray, predicted: Predicted | None) -> None:
        """Hand over a frame and its pose (arrays are reused by the loop: copy what you keep)."""
        ...
