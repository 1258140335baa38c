"""Stream v1 wire format: topic names, payload builders and control-request models.

This module is the single source of truth for field names; ``docs/protocol.md`` documents the
same fields for consumers that do not import realtime-pose. Payloads are msgpack maps with string
keys. Hot-path builders (:func:`pose_payload`) use plain dicts and ``ndarray.tolist()``; control
requests, which come from outside, are validated with pydantic (:func:`parse_request`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from realtime_pose.util.stats import Summary

SCHEMA_VERSION = 1
"""Value of the ``v`` field of every payload; bumped on any incompatible change."""

TOPIC_POSE = b"pose"
TOPIC_EVENT = b"event"
TOPIC_STATUS = b"status"
TOPIC_META = b"meta"
TOPIC_FRAME = b"frame"
TOPIC_POSE3D = b"pose3d"
TOPICS = (TOPIC_POSE, TOPIC_EVENT, TOPIC_STATUS, TOPIC_META, TOPIC_FRAME, TOPIC_POSE3D)

DEFAULT_PUB_ADDRESS = "tcp://127.0.0.1:5555"
DEFAULT_CONTROL_ADDRESS = "tcp://127.0.0.1:5556"

MAX_REQUEST_BYTES = 64 * 1024
"""Control requests larger than this are refused (``zmq.MAXMSGSIZE`` and an explicit check)."""

_packer = msgpack.Packer(use_bin_type=True)


def encode(payload: Mapping[str, Any]) -> bytes:
    """Serialise a payload map to msgpack bytes."""
    return _packer.pack(payload)


def decode(data: bytes) -> Any:
    """Deserialise msgpack bytes (strings as ``str``, binary as ``bytes``).

    Raises
    ------
    ValueError
        If ``data`` is not one complete msgpack object, or one Python cannot represent (a map
        whose key is itself a map or a list is valid msgpack but unhashable here).
    """
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as exc:
        detail = str(exc) or type(exc).__name__
        raise ValueError(f"not a msgpack message ({detail})") from exc
    except (TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise ValueError(f"not a usable msgpack message ({type(exc).__name__}: {exc})") from exc


def wall_offset_ns() -> int:
    """``time.time_ns() - time.monotonic_ns()``: add it to a stream timestamp to get Unix time."""
    return time.time_ns() - time.monotonic_ns()


def keypoints_as_list(keypoints: np.ndarray) -> list:
    """``[A, K, 3]`` (or ``[K, 3]``, taken as one animal) → nested lists of floats."""
    arr = np.asarray(keypoints)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(
            f"keypoints must have shape [animals, K, 3] or [K, 3], got {list(arr.shape)}"
        )
    return arr.tolist()


def pose_payload(
    seq: int,
    frame_index: int,
    t_capture_ns: int,
    t_publish_ns: int,
    latency_ns: Mapping[str, int],
    keypoints: np.ndarray,
    predicted: tuple[int, np.ndarray] | None = None,
    camera: Mapping[str, int] | None = None,
    track_ids: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Build a ``pose`` payload.

    Parameters
    ----------
    seq
        Message sequence number, +1 per published pose; consumers detect drops from gaps.
    frame_index
        Index of the camera frame the pose was estimated from.
    t_capture_ns, t_publish_ns
        ``time.monotonic_ns()`` of the publishing host at capture and at publication.
    latency_ns
        Per-stage latency in nanoseconds, e.g. ``{"grab": ..., "network": ...}``.
    keypoints
        ``[A, K, 3]`` or ``[K, 3]`` array of ``x, y, likelihood`` in frame pixels.
    predicted
        ``(t_target_ns, keypoints)`` for the forward-predicted pose, or ``None``.
    camera
        Machine-vision cameras: ``camera_frame_id``, ``t_camera_ns`` (the camera's raw
        timestamp), ``t_arrival_ns`` (host time the frame reached the host) and
        ``camera_dropped`` (frames the camera lost so far), added as they are.
    track_ids
        Animals that look alike (``meta.animals.decoding: part_affinity``): the track each
        animal slot holds, -1 for an empty slot; the field ``track_ids`` (additive to v1).
    """
    payload = {
        "v": SCHEMA_VERSION,
        "seq": int(seq),
        "frame_index": int(frame_index),
        "t_capture_ns": int(t_capture_ns),
        "t_publish_ns": int(t_publish_ns),
        "latency_ns": {str(k): int(v) for k, v in latency_ns.items()},
        "keypoints": keypoints_as_list(keypoints),
        "predicted": None
        if predicted is None
        else {"t_target_ns": int(predicted[0]), "keypoints": keypoints_as_list(predicted[1])},
    }
    if camera is not None:
        payload.update(camera)
    if track_ids is not None:
        payload["track_ids"] = [int(t) for t in track_ids]
    return payload


def pose3d_payload(
    seq: int,
    set_index: int,
    key: int,
    t_capture_ns: int,
    t_publish_ns: int,
    latency_ns: Mapping[str, int],
    points: np.ndarray,
    views: Mapping[str, Mapping[str, Any]],
    missing: Mapping[str, str],
    predicted: tuple[int, np.ndarray] | None = None,
    sync_t_ns: int | None = None,
) -> dict[str, Any]:
    """Build a ``pose3d`` payload: one frame set's triangulated pose (docs/protocol.md).

    Parameters
    ----------
    seq
        +1 per published ``pose3d``; consumers detect drops from gaps.
    set_index
        The frame set's index (:class:`~realtime_pose.live.frame_sets.FrameSet`).
    key
        What matched its views: the cameras' frame id (``sync.mode: frame_id``) or the
        earliest capture time (``timestamp``).
    t_capture_ns, t_publish_ns
        The set's earliest capture time and the publication time (``monotonic_ns``).
    latency_ns
        Per-stage latency in ns.
    points
        ``[K, 5]`` (or ``[A, K, 5]``): ``x, y, z`` in the calibration's unit (mm),
        reprojection error (px) and the number of views used; ``x, y, z`` are NaN where fewer
        than two views saw the keypoint.
    views
        Camera name → ``{"frame_index", "camera_frame_id", "t_capture_ns", "keypoints"}``
        (``keypoints``: that view's 2D pose, ``[K, 3]`` lists) for the views the set has.
    missing
        Camera name → why the set lacks its view.
    predicted
        ``(t_target_ns, [K, 3])``: the forward-predicted 3D pose, or ``None``.
    sync_t_ns
        When the set's sync pulse (for electrophysiology) was sent, or ``None``.
    """
    arr = np.asarray(points)
    payload: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "seq": int(seq),
        "set_index": int(set_index),
        "key": int(key),
        "t_capture_ns": int(t_capture_ns),
        "t_publish_ns": int(t_publish_ns),
        "latency_ns": {str(k): int(v) for k, v in latency_ns.items()},
        "keypoints": (arr[None] if arr.ndim == 2 else arr).tolist(),
        "views": {str(k): dict(v) for k, v in views.items()},
        "missing": {str(k): str(v) for k, v in missing.items()},
        "predicted": None
        if predicted is None
        else {"t_target_ns": int(predicted[0]), "keypoints": np.asarray(predicted[1]).tolist()},
    }
    if sync_t_ns is not None:
        payload["sync_t_ns"] = int(sync_t_ns)
    return payload


def frame_payload(
    seq: int,
    frame_index: int,
    t_capture_ns: int,
    jpeg: bytes,
    size: tuple[int, int],
    keypoints: np.ndarray,
    predicted: tuple[int, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Build a ``frame`` payload: a JPEG preview of one frame and the pose estimated on it.

    Parameters
    ----------
    seq, frame_index, t_capture_ns
        As in the ``pose`` payload of the same frame.
    jpeg
        The JPEG bytes (possibly scaled down from the camera's frame).
    size
        ``(width, height)`` of the camera frame, the coordinate system of ``keypoints``.
    keypoints, predicted
        As in :func:`pose_payload`.
    """
    return {
        "v": SCHEMA_VERSION,
        "seq": int(seq),
        "frame_index": int(frame_index),
        "t_capture_ns": int(t_capture_ns),
        "t_encoded_ns": time.monotonic_ns(),
        "width": int(size[0]),
        "height": int(size[1]),
        "jpeg": bytes(jpeg),
        "keypoints": keypoints_as_list(keypoints),
        "predicted": None
        if predicted is None
        else {"t_target_ns": int(predicted[0]), "keypoints": keypoints_as_list(predicted[1])},
    }


def meta_payload(
    keypoints: Sequence[str],
    skeleton: Sequence[Sequence[str]] = (),
    model: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build a ``meta`` payload: keypoint names, skeleton, model description and clocks.

    ``extra`` fields (e.g. ``fps``, ``frame_size``) are added as they are.
    """
    payload: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "keypoints": [str(k) for k in keypoints],
        "skeleton": [[str(a), str(b)] for a, b in skeleton],
        "model": dict(model or {}),
        "clock": "monotonic_ns",
        "wall_offset_ns": wall_offset_ns(),
    }
    payload.update(extra)
    return payload


def status_payload(
    fps: float,
    frames: int,
    dropped_frames: int,
    stage_latency_ns: Mapping[str, np.ndarray],
    **extra: Any,
) -> dict[str, Any]:
    """Build a ``status`` payload (published about once a second).

    Parameters
    ----------
    fps
        Frames processed per second over the last interval.
    frames
        Frames processed since the start.
    dropped_frames
        Frames the grabber discarded since the start (the camera was faster than the loop);
        frames the camera itself lost are ``camera_dropped`` (an ``extra`` field).
    stage_latency_ns
        Per stage, the latency samples (ns) of the last interval; summarised as
        ``{"p50", "p99", "max"}`` in microseconds under ``latency_us``.
    extra
        Further fields as they are (e.g. ``recording=True``, ``stream_dropped=0``).
    """
    payload: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "t_publish_ns": time.monotonic_ns(),
        "fps": round(float(fps), 2),
        "frames": int(frames),
        "dropped_frames": int(dropped_frames),
        "latency_us": {
            str(k): v.to_dict(empty=0.0)
            for k, v in Summary.of_each(dict(stage_latency_ns), "us", 1).items()
        },
    }
    payload.update(extra)
    return payload


def event_payload(
    kind: str, name: str, frame_index: int, t_ns: int | None = None, **fields: Any
) -> dict[str, Any]:
    """Build an ``event`` payload: a rule firing (``kind="rule"``) or an output action
    (``kind="output"``), caused by the pose of ``frame_index``; ``fields`` are added as they are
    (e.g. ``state="on"``, ``value=1``)."""
    payload: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "kind": str(kind),
        "name": str(name),
        "frame_index": int(frame_index),
        "t_ns": time.monotonic_ns() if t_ns is None else int(t_ns),
    }
    payload.update(fields)
    return payload


def with_version(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` carrying ``v`` and ``t_publish_ns`` when not already present."""
    out = {"v": SCHEMA_VERSION, "t_publish_ns": time.monotonic_ns()}
    out.update(payload)
    return out


# --- control requests --------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    cmd: str

    token: str | None = Field(default=None, description="shared secret when the server has one")
    id: int | str | None = Field(default=None, description="echoed back in the reply")


class PingRequest(_Request):
    """Liveness check; the reply carries the server's monotonic clock."""

    cmd: Literal["ping"]


class MetaRequest(_Request):
    """Ask for the current ``meta`` payload (keypoint names, skeleton, model, clocks)."""

    cmd: Literal["meta"]


class StatusRequest(_Request):
    """Ask for the latest status (fps, drops, latency percentiles)."""

    cmd: Literal["status"]


class RecordStartRequest(_Request):
    """Start recording poses (and events) to a crash-safe log."""

    cmd: Literal["record_start"]
    path: str | None = Field(
        default=None,
        max_length=4096,
        description=(
            "log path inside the session's recording folder (relative to it; a path that leaves "
            "it is refused); default: a new name"
        ),
    )
    video: bool = Field(default=False, description="also record the raw video")


class RecordStopRequest(_Request):
    """Stop recording and convert the log to DeepLabCut tables."""

    cmd: Literal["record_stop"]


class RuleEnableRequest(_Request):
    """Enable the rule called ``name``."""

    cmd: Literal["rule_enable"]
    name: str = Field(min_length=1, max_length=256)


class RuleDisableRequest(_Request):
    """Disable the rule called ``name``."""

    cmd: Literal["rule_disable"]
    name: str = Field(min_length=1, max_length=256)


class RulesRequest(_Request):
    """Ask for the rules as configured now (zones included), which are enabled, and the file
    they are saved to."""

    cmd: Literal["rules"]


class ZoneSetRequest(_Request):
    """Replace the shape of one zone of a rule in the running session.

    The rule is re-validated exactly as the run config is (the whole ``rules:`` list against
    the model's keypoints and the configured outputs); a refused change says why and leaves the
    running rule as it was.
    """

    cmd: Literal["zone_set"]
    rule: str = Field(min_length=1, max_length=256, description="the rule's name")
    path: str = Field(
        default="condition",
        max_length=256,
        description="where the zone sits in the rule: 'condition', "
        "'condition.conditions.1', 'condition.condition', ...",
    )
    zone: dict[str, Any] = Field(
        description="the new shape: exactly one of rectangle [x0, y0, x1, y1], circle "
        "[cx, cy, r] or polygon [[x, y], ...]; the zone's other fields are kept"
    )


class RulesSaveRequest(_Request):
    """Write the rules as they run now back to the rig's rules file."""

    cmd: Literal["rules_save"]


class OutputTestRequest(_Request):
    """Pulse one output by hand (a test), at most its configured maximum on-time."""

    cmd: Literal["output_test"]
    output: str = Field(min_length=1, max_length=256)
    duration_ms: float = Field(gt=0, le=60_000, description="pulse length")


class SnapshotRequest(_Request):
    """Save the newest preview frame as a PNG and its pose as JSON, on the rig."""

    cmd: Literal["snapshot"]


class ModelSwapRequest(_Request):
    """Put another model bundle into the running session, between two frames.

    The bundle is loaded and checked against the running model at once (the reply says
    whether it fits, and confirms its keypoints); its engine is then built and warmed up on
    the rig while the loop goes on, and an ``event`` of kind ``model`` says when it runs
    (``state: "swapped"``, with ``since_seq``) or why it does not (``state: "failed"``).
    """

    cmd: Literal["model_swap"]
    bundle: str = Field(
        min_length=1,
        max_length=4096,
        description="the bundle (folder or .zip) on the rig: absolute, or relative to the "
        "session's working directory",
    )


ControlRequest = Annotated[
    PingRequest
    | MetaRequest
    | StatusRequest
    | RecordStartRequest
    | RecordStopRequest
    | RuleEnableRequest
    | RuleDisableRequest
    | RulesRequest
    | ZoneSetRequest
    | RulesSaveRequest
    | OutputTestRequest
    | SnapshotRequest
    | ModelSwapRequest,
    Field(discriminator="cmd"),
]
COMMANDS = (
    "ping",
    "meta",
    "status",
    "record_start",
    "record_stop",
    "rule_enable",
    "rule_disable",
    "rules",
    "zone_set",
    "rules_save",
    "output_test",
    "snapshot",
    "model_swap",
)
ControlRequestModel = _Request
"""The base of every validated control request (``cmd``, ``id``, ``token`` and its fields)."""

_request_adapter: TypeAdapter[Any] = TypeAdapter(ControlRequest)


class RequestError(ValueError):
    """A control request that is not valid msgpack, not a map, or fails validation."""


def parse_request(data: bytes) -> ControlRequestModel:
    """Decode and validate one control request.

    Raises
    ------
    RequestError
        With a one-line message saying what is wrong (it becomes the reply's ``error``).
    """
    try:
        obj = decode(data)
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    return validate_request(obj)


def validate_request(obj: Any) -> ControlRequestModel:
    """Validate a decoded control request (see :func:`parse_request`)."""
    if not isinstance(obj, dict):
        raise RequestError(f"request must be a msgpack map with a 'cmd' field, got {_kind(obj)}")
    cmd = obj.get("cmd")
    if cmd not in COMMANDS:
        raise RequestError(f"unknown cmd {_short(cmd)}; known: {', '.join(COMMANDS)}")
    try:
        return _request_adapter.validate_python(obj)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'request'}: {err['msg']}"
            for err in exc.errors()
        )
        raise RequestError(f"invalid {cmd!r} request: {problems}") from None


def _short(obj: Any, limit: int = 60) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(obj: Any) -> str:
    return "nil" if obj is None else type(obj).__name__


def ok_reply(request_id: int | str | None = None, **fields: Any) -> dict[str, Any]:
    """A success reply: ``{"ok": true, ...fields}``."""
    reply: dict[str, Any] = {"v": SCHEMA_VERSION, "ok": True}
    if request_id is not None:
        reply["id"] = request_id
    reply.update(fields)
    return reply


def error_reply(error: str, request_id: int | str | None = None) -> dict[str, Any]:
    """A failure reply: ``{"ok": false, "error": "..."}``."""
    reply: dict[str, Any] = {"v": SCHEMA_VERSION, "ok": False, "error": error}
    if request_id is not None:
        reply["id"] = request_id
    return reply
