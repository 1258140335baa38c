"""The pose stream's receiving end, with gap and latency accounting.

Latencies are measured against ``time.monotonic_ns()`` at receipt, so they are only meaningful
when the subscriber runs on the publishing host (the monotonic clock is shared by all processes
of one machine, not across machines).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from realtime_pose.stream import messages
from realtime_pose.stream.security import CurveClientKeys, wants_ipv6
from realtime_pose.util.stats import Summary

_INT64 = 2**63


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one latency series, in microseconds (NaN when empty)."""

    p50_us: float
    p99_us: float
    max_us: float
    n: int

    @classmethod
    def of(cls, values_ns: np.ndarray) -> LatencySummary:
        """Summarise nanosecond samples."""
        s = Summary.of(values_ns, "us", digits=3)
        return cls(s.p50, s.p99, s.max, s.n)


@dataclass(frozen=True)
class SubscriberStats:
    """What a :class:`PoseSubscriber` has seen so far.

    Attributes
    ----------
    received
        Messages received, all topics.
    poses
        ``pose`` messages received.
    gaps
        Times ``seq`` jumped forward by more than one.
    missing
        Poses lost in those jumps (sum of jump sizes minus one).
    restarts
        Times ``seq`` went backwards (the publisher restarted).
    publish_to_receive, capture_to_receive
        Latency from ``t_publish_ns`` / ``t_capture_ns`` to receipt (same host only).
    """

    received: int
    poses: int
    gaps: int
    missing: int
    restarts: int
    publish_to_receive: LatencySummary
    capture_to_receive: LatencySummary
    by_topic: dict[str, int] = field(default_factory=dict)


class PoseSubscriber:
    """Subscribe to the pose stream.

    Parameters
    ----------
    address
        Publisher endpoint, e.g. ``tcp://127.0.0.1:5555``.
    topics
        Topics to receive (``"pose"``, ``"event"``, ``"status"``, ``"meta"``).
    rcvhwm
        Receive high-water mark in messages.
    latency_window
        How many recent latency samples :meth:`stats` summarises.
    curve
        CURVE client keys when the publisher uses CURVE.
    """

    def __init__(
        self,
        address: str = messages.DEFAULT_PUB_ADDRESS,
        topics: Iterable[str] = ("pose",),
        *,
        rcvhwm: int = 10_000,
        latency_window: int = 100_000,
        curve: CurveClientKeys | None = None,
    ) -> None:
        self.topics = tuple(topics)
        for topic in self.topics:
            if topic.encode() not in messages.TOPICS:
                known = ", ".join(t.decode() for t in messages.TOPICS)
                raise ValueError(f"unknown topic {topic!r}; known topics: {known}")
        self.address = address
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.rcvhwm = rcvhwm
        self._socket.linger = 0
        if curve is not None:
            curve.apply(self._socket)
        for topic in self.topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._socket.ipv6 = wants_ipv6(address)
        self._socket.connect(address)
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self._publish_lat = np.zeros(latency_window, dtype=np.int64)
        self._capture_lat = np.zeros(latency_window, dtype=np.int64)
        self._n_lat = 0
        self._last_seq: int | None = None
        self._received = 0
        self._poses = 0
        self._gaps = 0
        self._missing = 0
        self._restarts = 0
        self._by_topic: dict[str, int] = {}
        self.undecodable = 0
        """Messages that were not ``[topic, msgpack map]`` (ignored)."""

    def recv(self, timeout_ms: int | None = 1000) -> tuple[str, dict[str, Any]] | None:
        """Wait up to ``timeout_ms`` (``None``: forever) for a message.

        Returns
        -------
        (topic, payload) or None
            ``None`` on timeout. Malformed messages are counted in :attr:`undecodable` and
            skipped.
        """
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1e3
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._poller.poll(None if remaining is None else remaining * 1e3):
                return None
            frames = self._socket.recv_multipart(flags=zmq.NOBLOCK)
            t_receive_ns = time.monotonic_ns()
            message = self._account(frames, t_receive_ns)
            if message is not None:
                return message
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def _account(self, frames: list[bytes], t_receive_ns: int) -> tuple[str, dict] | None:
        if len(frames) != 2:
            self.undecodable += 1
            return None
        try:
            topic = frames[0].decode()
            payload = messages.decode(frames[1])
        except (UnicodeDecodeError, ValueError):
            self.undecodable += 1
            return None
        if not isinstance(payload, dict):
            self.undecodable += 1
            return None
        self._received += 1
        self._by_topic[topic] = self._by_topic.get(topic, 0) + 1
        if topic == "pose":
            self._account_pose(payload, t_receive_ns)
        return topic, payload

    def _account_pose(self, payload: dict, t_receive_ns: int) -> None:
        self._poses += 1
        seq = payload.get("seq")
        if isinstance(seq, int):
            if self._last_seq is not None:
                step = seq - self._last_seq
                if step > 1:
                    self._gaps += 1
                    self._missing += step - 1
                elif step <= 0:
                    self._restarts += 1
            self._last_seq = seq
        t_pub, t_cap = payload.get("t_publish_ns"), payload.get("t_capture_ns")
        if isinstance(t_pub, int) and isinstance(t_cap, int):
            publish_ns, capture_ns = t_receive_ns - t_pub, t_receive_ns - t_cap
            if abs(publish_ns) < _INT64 and abs(capture_ns) < _INT64:  # else not our clock
                i = self._n_lat % len(self._publish_lat)
                self._publish_lat[i] = publish_ns
                self._capture_lat[i] = capture_ns
                self._n_lat += 1

    def stats(self) -> SubscriberStats:
        """Counts, gaps and latency percentiles so far."""
        n = min(self._n_lat, len(self._publish_lat))
        return SubscriberStats(
            received=self._received,
            poses=self._poses,
            gaps=self._gaps,
            missing=self._missing,
            restarts=self._restarts,
            publish_to_receive=LatencySummary.of(self._publish_lat[:n]),
            capture_to_receive=LatencySummary.of(self._capture_lat[:n]),
            by_topic=dict(self._by_topic),
        )

    def close(self) -> None:
        """Close the socket and its context. Idempotent."""
        if not self._socket.closed:
            self._socket.close()
            self._context.term()

    def __enter__(self) -> PoseSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
