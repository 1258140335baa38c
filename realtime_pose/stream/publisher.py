"""The pose stream's sending end: one ZeroMQ PUB socket, never blocking the live loop."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zmq

from realtime_pose.stream import messages
from realtime_pose.stream.security import CurveServerKeys, secure_server_socket, wants_ipv6

log = logging.getLogger(__name__)

DEFAULT_SNDHWM = 64
"""Messages queued per subscriber before ZeroMQ drops for that subscriber (~64 ms at 1 kHz)."""


class PosePublisher:
    """Publish poses, events, status and meta on a PUB socket.

    Every send is non-blocking. A PUB socket drops messages for a subscriber whose queue
    (``sndhwm`` messages) is full, without telling the sender; subscribers see the drop as a
    gap in ``seq``. A send that ZeroMQ refuses outright (``zmq.Again``) is counted in
    :attr:`dropped`.

    Parameters
    ----------
    address
        Endpoint to bind, e.g. ``tcp://127.0.0.1:5555``, ``tcp://127.0.0.1:*`` (a free port;
        read :attr:`bound_address`) or ``ipc:///tmp/pose``.
    sndhwm
        Send high-water mark in messages, per subscriber.
    curve
        CURVE keys; required to bind beyond loopback.
    linger_ms
        How long ``close()`` may wait to flush queued messages.

    Examples
    --------
    >>> pub = PosePublisher("tcp://127.0.0.1:*")
    >>> t = pub.publish_pose(0, 0, time.monotonic_ns(), {}, np.zeros((4, 3)))
    >>> pub.close()
    """

    def __init__(
        self,
        address: str = messages.DEFAULT_PUB_ADDRESS,
        sndhwm: int = DEFAULT_SNDHWM,
        *,
        curve: CurveServerKeys | None = None,
        linger_ms: int = 100,
    ) -> None:
        if sndhwm < 1:
            raise ValueError(f"sndhwm must be >= 1 message, got {sndhwm}")
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.PUB)
        self._auth = None
        try:
            self._auth = secure_server_socket(self._socket, address, curve=curve)
            self._socket.sndhwm = sndhwm
            self._socket.linger = linger_ms
            self._socket.ipv6 = wants_ipv6(address)
            self._socket.bind(address)
        except zmq.ZMQError as exc:
            self._teardown()
            raise OSError(
                f"cannot bind the pose stream to {address}: {exc}. Is another realtime-pose "
                "running? Choose another port (or tcp://127.0.0.1:* for a free one)."
            ) from exc
        except Exception:
            self._teardown()
            raise
        self.bound_address: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        """The endpoint actually bound (with the port chosen when ``*`` was asked for)."""
        self.sent = 0
        """Messages handed to ZeroMQ."""
        self.dropped = 0
        """Messages ZeroMQ refused (``zmq.Again``); per-subscriber drops show up as seq gaps."""
        self.last_meta: dict[str, Any] | None = None
        """The last meta payload published, for answering ``meta`` control requests."""
        self._closed = False

    def _send(self, topic: bytes, payload: Mapping[str, Any]) -> bool:
        try:
            self._socket.send_multipart(
                (topic, messages.encode(payload)), flags=zmq.NOBLOCK, copy=True
            )
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def publish_pose(
        self,
        seq: int,
        frame_index: int,
        t_capture_ns: int,
        latency_ns: Mapping[str, int],
        keypoints: np.ndarray,
        predicted: tuple[int, np.ndarray] | None = None,
        camera: Mapping[str, int] | None = None,
        track_ids: Sequence[int] | None = None,
    ) -> int:
        """Publish one pose; return its ``t_publish_ns`` (``time.monotonic_ns()``).

        Parameters
        ----------
        seq
            Consecutive message number (the caller's counter; +1 per pose).
        frame_index
            Camera frame index.
        t_capture_ns
            Capture time, ``time.monotonic_ns()`` clock.
        latency_ns
            Per-stage latencies in ns.
        keypoints
            ``[A, K, 3]`` or ``[K, 3]``: ``x, y, likelihood`` in frame pixels.
        predicted
            ``(t_target_ns, keypoints)`` of the forward prediction, or ``None``.
        camera
            The frame's camera fields (``camera_frame_id``, ``t_camera_ns``, ``t_arrival_ns``,
            ``camera_dropped``), added to the payload; ``None`` for sources without them.
        track_ids
            Animals that look alike: the track each animal slot holds (-1: none).
        """
        t_publish_ns = time.monotonic_ns()
        payload = messages.pose_payload(
            seq,
            frame_index,
            t_capture_ns,
            t_publish_ns,
            latency_ns,
            keypoints,
            predicted,
            camera,
            track_ids,
        )
        self._send(messages.TOPIC_POSE, payload)
        return t_publish_ns

    def publish_pose3d(self, payload: dict[str, Any]) -> int:
        """Publish one frame set's 3D pose (a :func:`messages.pose3d_payload` map; its
        ``t_publish_ns`` is set here, in place); return that ``t_publish_ns``."""
        t_publish_ns = time.monotonic_ns()
        payload["t_publish_ns"] = t_publish_ns
        self._send(messages.TOPIC_POSE3D, payload)
        return t_publish_ns

    def publish_event(self, event: Mapping[str, Any]) -> bool:
        """Publish a rule firing or output action (a map; see docs/protocol.md, ``event``)."""
        return self._send(messages.TOPIC_EVENT, messages.with_version(event))

    def publish_status(self, status: Mapping[str, Any]) -> bool:
        """Publish a status map (fps, drops, per-stage latency percentiles)."""
        return self._send(messages.TOPIC_STATUS, messages.with_version(status))

    def publish_meta(self, meta: Mapping[str, Any]) -> bool:
        """Publish (and remember) the meta map; see :func:`messages.meta_payload`."""
        payload = messages.with_version(meta)
        self.last_meta = payload
        return self._send(messages.TOPIC_META, payload)

    def publish_encoded(self, topic: bytes, payload: bytes) -> bool:
        """Send a payload packed elsewhere (``frame`` previews are encoded off the loop): one
        non-blocking send that hands ``payload`` to ZeroMQ without copying it."""
        try:
            self._socket.send_multipart((topic, payload), flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def _teardown(self) -> None:
        self._socket.close()
        if self._auth is not None:
            self._auth.stop()  # type: ignore[attr-defined]
        self._context.term()

    def close(self) -> None:
        """Close the socket (waiting at most ``linger_ms`` to flush). Idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._teardown()

    def __enter__(self) -> PosePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
