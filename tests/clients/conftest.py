"""A live session on loopback with CURVE on, for the clients in other languages to read.

``curve_rig`` yields a :class:`Rig`: the stream and control addresses, the rig's public key
file, an admitted client's key pair and a stranger's (not admitted), and the session itself
(a marker video played in real time at 100 FPS, looping, so poses keep coming).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from realtime_pose.live.session import LiveSession
from realtime_pose.stream import CurveClientKeys, PoseSubscriber
from realtime_pose.stream.security import make_keys
from tests.live.conftest import curve_config, marker_bundle, marker_video  # noqa: F401 (fixtures)
from tests.view.sessions import RunningSession


@dataclass(frozen=True)
class Rig:
    """What a client needs to reach the session, and the session."""

    stream: str
    control: str
    server_public: Path
    client_public: Path
    client_secret: Path
    stranger_secret: Path
    session: LiveSession


@pytest.fixture
def curve_rig(tmp_path, marker_bundle, marker_video) -> Iterator[Rig]:  # noqa: F811
    keys = tmp_path / "keys"
    make_keys(keys, ("lab",))
    make_keys(tmp_path / "other", ("stranger",))
    data = curve_config(marker_bundle, marker_video, tmp_path, keys)
    with RunningSession(data, tmp_path) as run:
        yield Rig(
            stream=run.stream,
            control=run.control,
            server_public=keys / "rig.key",
            client_public=keys / "clients" / "lab.key",
            client_secret=keys / "clients" / "lab.key_secret",
            stranger_secret=tmp_path / "other" / "clients" / "stranger.key_secret",
            session=run.session,
        )


class ReferenceSubscriber:
    """The Python subscriber on the same stream, keeping every pose by seq, to check the
    client's decoding against."""

    def __init__(self, rig) -> None:
        keys = CurveClientKeys(rig.client_secret, rig.server_public)
        self.subscriber = PoseSubscriber(rig.stream, ("pose",), curve=keys)
        self.poses: dict[int, dict] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            message = self.subscriber.recv(100)
            if message is not None:
                self.poses[message[1]["seq"]] = message[1]

    def pose(self, seq: int, timeout_s: float = 5.0) -> dict:
        """The pose numbered ``seq``, waiting for this subscriber to catch up."""
        deadline = time.monotonic() + timeout_s
        while seq not in self.poses and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.poses[seq]

    def __enter__(self) -> ReferenceSubscriber:
        first = self.subscriber.recv(5000)  # connected once a pose came
        assert first is not None, "the rig published nothing to the Python subscriber"
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.subscriber.close()
