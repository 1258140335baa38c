"""The ZeroMQ pose stream (v1) and the control socket; ``docs/protocol.md`` is the contract.

- :class:`~realtime_pose.stream.publisher.PosePublisher`: PUB socket, topics ``pose``, ``event``,
  ``status``, ``meta``.
- :class:`~realtime_pose.stream.subscriber.PoseSubscriber`: SUB socket with gap/latency stats.
- :class:`~realtime_pose.stream.control.ControlServer` / ``ControlClient``: REP/REQ commands.
- :mod:`~realtime_pose.stream.messages`: field names, payload builders, request models.
"""

from realtime_pose.stream.control import ControlClient, ControlServer, ControlTimeoutError
from realtime_pose.stream.messages import SCHEMA_VERSION
from realtime_pose.stream.publisher import PosePublisher
from realtime_pose.stream.security import CurveClientKeys, CurveServerKeys, InsecureBindError
from realtime_pose.stream.subscriber import PoseSubscriber, SubscriberStats

__all__ = [
    "SCHEMA_VERSION",
    "ControlClient",
    "ControlServer",
    "ControlTimeoutError",
    "CurveClientKeys",
    "CurveServerKeys",
    "InsecureBindError",
    "PosePublisher",
    "PoseSubscriber",
    "SubscriberStats",
]
