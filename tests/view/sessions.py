"""Live sessions for the view's tests: the marker bundle on a marker video, run in a thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import yaml

from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from tests.builders import marker_meta, marker_model
from tests.closed_loop.test_zone_laser import write_video

FRAME_W, FRAME_H = 80, 64
REPO = Path(__file__).resolve().parents[2]


def marker_config(
    tmp_path: Path,
    *,
    view: dict | None = None,
    rules: list[dict] | str | None = None,
    outputs: dict | None = None,
    keypoints: list[str] | None = None,
    frames: int = 280,
    token: str | None = None,
) -> dict[str, Any]:
    """A run config (as a mapping) for the marker bundle on a looping marker video."""
    bundle = tmp_path / "bundle"
    if not bundle.exists():
        from realtime_pose.bundle import write_bundle

        overrides = {"keypoints": keypoints, "skeleton": [keypoints[:2]]} if keypoints else {}
        write_bundle(bundle, marker_model(), marker_meta(**overrides))
    video = tmp_path / "markers.avi"
    if not video.exists():
        write_video(video, frames)
    config: dict[str, Any] = {
        "source": {"kind": "video", "path": str(video), "realtime": True, "loop": True},
        "bundle": str(bundle),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {
            "address": "tcp://127.0.0.1:*",
            "control_address": "tcp://127.0.0.1:*",
            "token": token,
        },
        "recording": {"enabled": False, "directory": str(tmp_path / "rec")},
        "prediction": {"enabled": True},
        "view": {"enabled": False, "address": "http://127.0.0.1:0", **(view or {})},
        "status_interval_s": 0.5,
    }
    if outputs:
        config["outputs"] = outputs
    if rules is not None:
        config["rules"] = rules
    return config


def write_rules(path: Path, rules: list[dict]) -> Path:
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


class RunningSession:
    """A :class:`LiveSession` running on a thread; closes it on exit."""

    def __init__(self, config: dict[str, Any], base: Path) -> None:
        self.session = LiveSession(parse_config(config, "test config", base))
        self.thread = threading.Thread(target=self.session.run, name="test-loop", daemon=True)
        self.thread.start()
        self.url = self.session.view.wait_ready(60) if self.session.view is not None else None

    @property
    def stream(self) -> str:
        return self.session.publisher.bound_address

    @property
    def control(self) -> str:
        return self.session.control.bound_address

    def frame_rate(self, seconds: float) -> float:
        """Frames the loop processed per second over the next ``seconds``."""
        n0, t0 = self.session.pipeline.frames, time.monotonic()
        time.sleep(seconds)
        return (self.session.pipeline.frames - n0) / (time.monotonic() - t0)

    def close(self) -> None:
        self.session.stop_event.set()
        self.thread.join(10)
        self.session.close()

    def __enter__(self) -> RunningSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def synthetic_config(tmp_path: Path, fps: float = 30.0) -> dict[str, Any]:
    """The demo bundle on the synthetic camera (320x240), with the view on."""
    from realtime_pose.util.paths import DEMO_BUNDLE

    return {
        "source": {"kind": "synthetic", "width": 320, "height": 240, "fps": fps, "seed": 3},
        "bundle": str(DEMO_BUNDLE),
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": "tcp://127.0.0.1:*"},
        "view": {"enabled": True, "address": "http://127.0.0.1:0", "frame_fps": 30},
        "status_interval_s": 0.5,
    }


class StreamLog:
    """Every message of some topics of a stream, collected on a thread."""

    def __init__(self, address: str, topics: tuple[bytes, ...]) -> None:
        import zmq

        from realtime_pose.stream import messages

        self.messages: list[tuple[bytes, dict]] = []
        self._stop = threading.Event()
        ctx = zmq.Context.instance()
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.rcvhwm = 100_000
        for topic in topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        sub.connect(address)

        def read() -> None:
            try:
                while not self._stop.is_set():
                    if sub.poll(100):
                        topic, payload, *_ = sub.recv_multipart()  # a frame has its JPEG too
                        self.messages.append((topic, messages.decode(payload)))
            finally:
                sub.close()

        self._thread = threading.Thread(target=read, daemon=True)
        self._thread.start()
        time.sleep(0.3)  # the slow joiner

    def of(self, topic: bytes) -> list[dict]:
        return [m for t, m in list(self.messages) if t == topic]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
