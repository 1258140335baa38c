"""Frames of the drawn scene (:class:`.synthetic_scene.SyntheticScene`) and their true keypoints."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import Field

from realtime_pose.geometry import Size
from realtime_pose.plugins import SOURCES, PluginOptions
from realtime_pose.sources.base import Frame, FrameSource, SourceError
from realtime_pose.sources.synthetic_scene import SyntheticScene


class SyntheticOptions(PluginOptions):
    """``source: {kind: synthetic, ...}``: a drawn animal, no camera needed."""

    width: int = Field(default=320, ge=32, description="frame width, px")
    height: int = Field(default=240, ge=32, description="frame height, px")
    seed: int = Field(default=0, description="the animal's path")
    fps: float = Field(default=100.0, gt=0, description="frame rate")
    realtime: bool = Field(default=True, description="deliver at fps like a camera")
    max_frames: int | None = Field(default=None, ge=0, description="end after this many frames")
    fail_after: int | None = Field(
        default=None, ge=0, description="diagnostics: fail once when this frame is due"
    )
    stall_after: int | None = Field(
        default=None, ge=0, description="diagnostics: stall once before this frame"
    )
    stall_s: float = Field(default=5.0, ge=0, description="length of the stall")
    coat: Literal["dark", "light"] = Field(
        default="dark", description="the animal's coat: dark (as trained) or light (albino)"
    )


@SOURCES.register("synthetic")
class SyntheticSource(FrameSource):
    """A drawn animal walking around an arena; every frame carries ``ground_truth``.

    Parameters
    ----------
    width, height, seed, fps
        Passed to :class:`~realtime_pose.sources.synthetic_scene.SyntheticScene`.
    realtime
        Deliver at ``fps`` like a camera; ``False`` delivers as fast as frames are drawn.
    max_frames
        End of stream after this many frames (``None``: endless).
    fail_after
        Diagnostics: raise :class:`SourceError` when frame ``fail_after`` is due, once; after a
        reopen the stream continues with that frame.
    stall_after
        Diagnostics: block for ``stall_s`` seconds before delivering frame ``stall_after``, once.
    stall_s
        Length of the stall.
    coat
        The animal's coat, ``dark`` or ``light`` (:data:`.synthetic_scene.COATS`).

    Notes
    -----
    ``t_capture_ns`` is host ``time.monotonic_ns()`` when the frame is handed over: after
    waiting for its due time when paced (``realtime=True``, so the timer's overshoot counts as
    latency, as a real camera's delivery delay would), else when it was drawn. Paced frames are
    drawn shortly before they are due, not right after the previous one was handed over, so the
    drawing does not compete with the loop working on that previous frame (a camera's exposure
    and readout cost the host nothing).
    """

    Options = SyntheticOptions

    def __init__(
        self,
        width: int = 320,
        height: int = 240,
        seed: int = 0,
        fps: float = 100.0,
        realtime: bool = True,
        max_frames: int | None = None,
        fail_after: int | None = None,
        stall_after: int | None = None,
        stall_s: float = 5.0,
        coat: str = "dark",
    ) -> None:
        if max_frames is not None and max_frames < 0:
            raise ValueError(f"max_frames must be non-negative or None, got {max_frames}")
        self.scene = SyntheticScene(width=width, height=height, seed=seed, fps=fps, coat=coat)
        self.realtime = realtime
        self.max_frames = max_frames
        self.fail_after = fail_after
        self.stall_after = stall_after
        self.stall_s = float(stall_s)
        self._seed = seed
        self._open = False
        self._next = 0
        self._t_start_ns: int | None = None
        self._paced_from = 0
        self._draw_ns = 0.0  # running mean of the time one frame takes to draw

    @property
    def keypoints(self) -> tuple[str, ...]:
        """Names of the keypoints in ``ground_truth``."""
        return self.scene.keypoints

    @property
    def fps(self) -> float:
        return float(self.scene.fps)

    @property
    def size(self) -> Size:
        return Size(self.scene.width, self.scene.height)

    @property
    def live(self) -> bool:
        return self.realtime

    @property
    def source_id(self) -> str:
        return f"synthetic{self._seed}"

    def open(self) -> None:
        self._open = True
        self._t_start_ns = None

    def close(self) -> None:
        self._open = False

    def _due_ns(self, index: int) -> int | None:
        """When frame ``index`` is due; ``None`` for the first frame after (re)opening, which
        is handed over as soon as it is drawn and anchors the clock."""
        if not self.realtime or self._t_start_ns is None:
            return None
        return self._t_start_ns + round((index - self._paced_from) * 1e9 / self.scene.fps)

    def _draw_lead_ns(self) -> float:
        """How long before a frame is due to start drawing it: twice the recent drawing time
        plus 0.3 ms for the wake-up, at most half a frame period."""
        return min(0.5e9 / self.scene.fps, 2.0 * self._draw_ns + 300_000)

    @staticmethod
    def _sleep_until(t_ns: float) -> None:
        left = t_ns - time.monotonic_ns()
        if left > 0:
            time.sleep(left * 1e-9)

    def read(self) -> Frame | None:
        if not self._open:
            raise SourceError(f"{self.source_id} is not open; call open() first")
        index = self._next
        if self.max_frames is not None and index >= self.max_frames:
            return None
        if self.fail_after is not None and index == self.fail_after:
            self.fail_after = None
            raise SourceError(f"{self.source_id}: simulated failure at frame {index}")
        if self.stall_after is not None and index == self.stall_after:
            self.stall_after = None
            time.sleep(self.stall_s)
            self._t_start_ns = None
        due = self._due_ns(index)
        if due is not None:
            # draw just before the frame is due, as a camera exposes and reads out off the host:
            # drawing right after the previous frame would overlap the loop's work on it
            self._sleep_until(due - self._draw_lead_ns())
        t_draw = time.monotonic_ns()
        image, keypoints = self.scene.frame(index)
        t_ns = time.monotonic_ns()
        self._draw_ns = 0.9 * self._draw_ns + 0.1 * (t_ns - t_draw)
        if due is not None:
            if due > t_ns:
                self._sleep_until(due)
                t_ns = time.monotonic_ns()  # ready when handed over, not when it was due
            elif t_ns - due > 1e9 / self.scene.fps:
                self._t_start_ns, self._paced_from = t_ns, index  # fell behind: re-anchor
        elif self.realtime:
            self._t_start_ns, self._paced_from = t_ns, index
        self._next = index + 1
        return Frame(image, index, t_ns, self.source_id, ground_truth=keypoints)
