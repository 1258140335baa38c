"""A dry-run output device: it drives nothing and records every line edge it would have made."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.base import ChannelSpec, OutputDevice, OutputOptions
from realtime_pose.plugins import OUTPUTS

log = logging.getLogger(__name__)


class LogOnlyOptions(OutputOptions):
    """``outputs: {NAME: {kind: log, channel: N}}``: drives nothing, records every edge."""

    log_path: Path | None = Field(
        default=None, description="a JSON-lines file for the device's own action log"
    )


@OUTPUTS.register("log")
class LogOnlyDevice(OutputDevice):
    """Records ``{"event": "edge", "channel", "line", "on"}`` for every line change, drives nothing.

    Pulses and the maximum on-time are timed by the host exactly as for a DAQ, so a dry run shows
    the edges a real rig would see. ``edges()`` returns ``(t_ns, channel, on)`` tuples.

    Parameters
    ----------
    channels
        As for :class:`~.base.OutputDevice`; default ``8`` (lines 0..7, named "0".."7").
    log_path
        Optional JSONL file for the action log (ignored when ``action_log`` is given).
    """

    Options = LogOnlyOptions
    default_max_on_s = 1.0

    def __init__(
        self,
        channels: ChannelSpec = None,
        *,
        max_on_s: float | Mapping[str, float] | None = None,
        name: str | None = None,
        action_log: ActionLog | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        if action_log is None:
            action_log = ActionLog(log_path)
        super().__init__(channels, max_on_s=max_on_s, name=name, action_log=action_log)
        self._line_state = [False] * len(self._names)
        self._edges: list[tuple[int, str, bool]] = []

    def _default_channels(self) -> ChannelSpec:
        return 8

    def _open(self) -> None:
        self._line_state = [False] * len(self._names)

    def _close(self) -> None:
        pass

    def _write_set(self, index: int, on: bool) -> None:
        t_ns = time.monotonic_ns()
        self._note_sent()
        if self._line_state[index] != on:
            self._line_state[index] = on
            self._edges.append((t_ns, self._names[index], on))
            self._record("edge", index, t_ns=t_ns, on=on)

    def edges(self, channel: str | None = None) -> list[tuple[int, str, bool]]:
        """Line transitions so far as ``(t_ns, channel_name, on)``."""
        with self._lock:
            return [e for e in self._edges if channel is None or e[1] == channel]

    def line_state(self, channel: str | int) -> bool:
        """The simulated line level (what a scope on the output would show)."""
        return self._line_state[self._resolve(channel)]
