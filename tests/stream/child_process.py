"""Child processes for the stream and recording tests: they import this checkout, and a thread
collects their stdout so the test never blocks on it."""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """Environment for a child Python that imports realtime_pose from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Child:
    """A child process whose stdout lines are collected by a thread (never blocks the test)."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout_s: float) -> str | None:
        try:
            return self.lines.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def finish(self, timeout_s: float = 30) -> tuple[list[str], str]:
        """Wait for exit; return all remaining stdout lines and stderr."""
        _, stderr = self.proc.communicate(timeout=timeout_s)
        self._reader.join(5)
        out = []
        while not self.lines.empty():
            out.append(self.lines.get())
        return out, stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def wait_for_first_line(child: Child, poke, timeout_s: float = 20.0) -> str:
    """Call ``poke()`` every 20 ms until the child prints a line (subscription is live)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        poke()
        line = child.next_line(0.02)
        if line is not None:
            return line
        if child.proc.poll() is not None:
            _, err = child.finish()
            raise AssertionError(f"child exited early with {child.proc.returncode}: {err}")
    raise AssertionError("child never received anything")


def publish_paced(publisher, n: int, fps: float, n_keypoints: int = 4, first_seq: int = 0):
    """Publish ``n`` poses at ``fps`` with seq ``first_seq..``; keypoints encode the seq."""
    import numpy as np

    period_ns = int(1e9 / fps)
    next_ns = time.monotonic_ns()
    kp = np.zeros((1, n_keypoints, 3))
    for i in range(n):
        seq = first_seq + i
        kp[0, :, 0] = seq
        kp[0, :, 1] = np.arange(n_keypoints)
        kp[0, :, 2] = 0.5
        publisher.publish_pose(seq, 1000 + seq, time.monotonic_ns(), {"network": 1000}, kp)
        next_ns += period_ns
        delay = next_ns - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
