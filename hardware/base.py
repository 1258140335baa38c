"""The one small interface every output device implements, and the host-side maximum on-time.

A device owns named *channels*, each mapped to a device *line* (a serial board's output number, a
DAQ line such as ``"Dev1/port0/line0"``). Callers address channels by name (or by integer line).
Every channel has a maximum on-time: whatever the caller does, the host switches a channel off once
it has been on that long (a pulse is clamped to it; a ``set(on=True)`` is followed by an automatic
off). Boards running the realtime-pose sketch enforce the same limit themselves, so the output also
goes off if the host dies.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import Field

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.deadline_timer import DeadlineTimer
from realtime_pose.plugins import PluginOptions

log = logging.getLogger(__name__)

Line = int | str
ChannelSpec = Mapping[str, Line] | Sequence[Line] | int | None

CAUSE_MAX_ON = "max_on"
CAUSE_PULSE_END = "pulse_end"


_D = TypeVar("_D", bound="OutputDevice")


class OutputOptions(PluginOptions):
    """One named output under ``outputs:``; a device adds the fields it needs.

    ``channel`` and ``max_on_ms`` are the output's own; every other field configures the device
    it is on, and outputs whose device fields agree share one device (one port, one task).
    """

    channel: int | str = Field(default=0, description="the device line this output drives")
    max_on_ms: float = Field(
        default=1000.0, gt=0, description="the longest the output may stay on, in ms"
    )

    def device_fields(self) -> dict[str, Any]:
        """The fields that configure the device (everything but channel and max_on_ms)."""
        return {k: v for k, v in self if k not in ("channel", "max_on_ms")}


class DeviceUnavailableError(RuntimeError):
    """A device cannot be opened (missing port, driver or package). The message says what to do."""


@dataclass(slots=True)
class DeviceHealth:
    """A snapshot of a device's state and counters.

    Attributes
    ----------
    connected
        Whether commands currently reach the device.
    last_error
        The most recent failure, as text (``None`` if none yet).
    sent
        Commands written to the device.
    failed
        Commands that could not be delivered (device gone, write error, stale when dequeued).
    reconnects
        Successful re-openings after the device disappeared.
    auto_offs
        Channels switched off by the host's maximum on-time.
    device_errors
        ``!ERR`` replies and other complaints from the device.
    t_last_error_ns
        ``time.monotonic_ns()`` of ``last_error``.
    pending
        Commands accepted but not yet written (devices with a writer thread).
    """

    connected: bool
    last_error: str | None
    sent: int
    failed: int
    reconnects: int
    auto_offs: int = 0
    device_errors: int = 0
    t_last_error_ns: int | None = None
    pending: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for the status stream)."""
        return asdict(self)


def _normalise_channels(channels: ChannelSpec) -> dict[str, Line]:
    if channels is None:
        return {}
    if isinstance(channels, int):
        if channels < 1:
            raise ValueError(f"a device needs at least one channel, got channels={channels}")
        return {str(i): i for i in range(channels)}
    if isinstance(channels, Mapping):
        out = {str(name): line for name, line in channels.items()}
    else:
        out = {str(line): line for line in channels}
    if not out:
        raise ValueError("a device needs at least one channel; got an empty channel list")
    lines = list(out.values())
    if len(set(map(str, lines))) != len(lines):
        raise ValueError(f"two channels are mapped to the same device line: {out}")
    return out


class OutputDevice(ABC):
    """Base class of output adapters: named channels, ``set``/``pulse``, maximum on-time, health.

    Subclasses implement ``_open``, ``_close`` and ``_write_set`` (and may override ``_write_pulse``
    and ``_write_all_off``). All public methods are thread-safe. ``set``, ``pulse`` and ``all_off``
    do not raise when the device is gone: failures are logged and counted in :meth:`health`.

    Parameters
    ----------
    channels
        ``{name: line}``, a sequence of lines (named ``str(line)``), a channel count ``n`` (lines
        ``0..n-1`` named ``"0"``..), or ``None`` for the device's default.
    max_on_s
        Maximum on-time in seconds: one value for every channel or ``{name: seconds}`` (channels
        not named get ``default_max_on_s``).
    name
        Device name in logs and action records.
    action_log
        Optional :class:`~.action_log.ActionLog` receiving every action and failure.
    """

    plugin_name: ClassVar[str] = "device"
    """The name the class is registered under (``@OUTPUTS.register``): the ``kind:`` of its
    ``outputs:`` entry."""
    Options: ClassVar[type[OutputOptions]] = OutputOptions
    """The ``outputs:`` entry's options; subclasses declare their own device fields."""
    default_max_on_s: ClassVar[float] = 1.0
    nonblocking: ClassVar[bool] = True
    """``set``/``pulse`` return in microseconds (a dispatcher may call them on the loop thread)."""
    host_timed_pulses: ClassVar[bool] = True
    """Whether the host ends pulses itself (``False`` where the device times them)."""

    def __init__(
        self,
        channels: ChannelSpec = None,
        *,
        max_on_s: float | Mapping[str, float] | None = None,
        name: str | None = None,
        action_log: ActionLog | None = None,
    ) -> None:
        chans = _normalise_channels(channels) or _normalise_channels(self._default_channels())
        self.name = name or self.plugin_name
        self.action_log = action_log
        self._names: list[str] = list(chans)
        self._lines: list[Line] = list(chans.values())
        self._index: dict[str | int, int] = {}
        for i, line in enumerate(self._lines):
            if isinstance(line, int):
                self._index[line] = i
        for i, nm in enumerate(self._names):
            self._index[nm] = i
        self._max_on_ns = [self._max_on_for(nm, max_on_s) for nm in self._names]
        n = len(self._names)
        self._on_until_ns = [0] * n
        self._on_since_ns = [0] * n
        self._generation = [0] * n
        self._lock = threading.RLock()
        self._stats_lock = threading.Lock()
        self._sent = self._failed = self._reconnects = self._auto_offs = self._device_errors = 0
        self._last_error: str | None = None
        self._t_last_error_ns: int | None = None
        self._t_last_warning_ns: int | None = None
        self._n_suppressed = 0
        self._timer: DeadlineTimer | None = None
        self._opened = False

    @classmethod
    def from_options(
        cls: type[_D],
        device_fields: Mapping[str, Any],
        channels: ChannelSpec,
        *,
        max_on_s: float | Mapping[str, float] | None = None,
        name: str | None = None,
        action_log: ActionLog | None = None,
    ) -> _D:
        """Build the device for a group of outputs that share it (returned closed).

        ``device_fields`` are :meth:`OutputOptions.device_fields` of those outputs; by default
        they are constructor keyword arguments.
        """
        return cls(  # type: ignore[call-arg]
            channels=channels,
            max_on_s=max_on_s,
            name=name,
            action_log=action_log,
            **device_fields,
        )

    # ------------------------------------------------------------------ configuration
    def _default_channels(self) -> ChannelSpec:
        raise ValueError(f"{type(self).__name__} needs `channels` ({{name: line}} or a list)")

    def _max_on_for(self, name: str, max_on_s: float | Mapping[str, float] | None) -> int:
        if isinstance(max_on_s, Mapping):
            unknown = set(map(str, max_on_s)) - set(self._names)
            if unknown:
                raise ValueError(
                    f"max_on_s names unknown channel(s) {sorted(unknown)}; "
                    f"channels of device {self.name!r} are {self._names}"
                )
            value = max_on_s.get(name, self.default_max_on_s)
        else:
            value = self.default_max_on_s if max_on_s is None else max_on_s
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(
                f"max_on_s for channel {name!r} of device {self.name!r} must be a positive number "
                f"of seconds, got {value!r}"
            )
        return round(float(value) * 1e9)

    @property
    def channel_names(self) -> list[str]:
        """Channel names in line order."""
        return list(self._names)

    def line_of(self, channel: str | int) -> Line:
        """The device line a channel is mapped to."""
        return self._lines[self._resolve(channel)]

    def max_on_s(self, channel: str | int) -> float:
        """The maximum on-time of a channel, in seconds."""
        return self._max_on_ns[self._resolve(channel)] / 1e9

    def _resolve(self, channel: str | int) -> int:
        try:
            return self._index[channel]
        except (KeyError, TypeError):
            raise ValueError(
                f"device {self.name!r} has no channel {channel!r}; its channels are "
                f"{dict(zip(self._names, self._lines, strict=True))}"
            ) from None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> OutputDevice:
        """Open the device (idempotent) and return it.

        Raises
        ------
        DeviceUnavailableError
            The device, its driver or its Python package is missing; the message says which.
        """
        with self._lock:
            if self._opened:
                return self
            self._timer = DeadlineTimer(name=f"{self.name}-deadlines")
            try:
                self._open()
            except BaseException:
                self._timer.stop()
                self._timer = None
                raise
            self._opened = True
        self._record("open")
        return self

    def close(self) -> None:
        """Switch every channel off, then release the device (idempotent, never raises)."""
        with self._lock:
            if not self._opened:
                return
            try:
                self.all_off(reason="close")
            except Exception:
                log.exception("%s: all-off at close failed", self.name)
            self._opened = False
            timer, self._timer = self._timer, None
        try:
            self._close()
        except Exception:
            log.exception("%s: close failed", self.name)
        if timer is not None:
            timer.stop()
        self._record("close")

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` succeeded and :meth:`close` has not been called."""
        return self._opened

    def __enter__(self) -> OutputDevice:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ actions
    def set(self, channel: str | int, on: bool) -> None:
        """Switch a channel on or off. An ``on`` ends by itself after the channel's max on-time.

        The max on-time counts from the channel's off→on edge: switching on a channel that is
        already on does not extend it, so a loop that re-sends "on" every frame cannot hold an
        output on longer than the limit.
        """
        i = self._resolve(channel)
        with self._lock:
            if not self._check_open("set", i):
                return
            now = time.monotonic_ns()
            self._generation[i] += 1
            if on:
                deadline = self._on_since(i, now) + self._max_on_ns[i]
                self._on_until_ns[i] = deadline
            else:
                self._on_until_ns[i] = 0
            if on:
                self._record("set", i, on=True, t_ns=now, off_at_ns=deadline)
            else:
                self._record("set", i, on=False, t_ns=now)
            self._write_set(i, bool(on))
            if on:
                self._schedule(deadline, i, CAUSE_MAX_ON)

    def pulse(self, channel: str | int, duration_s: float) -> None:
        """Switch a channel on for ``duration_s``.

        The pulse is clamped so that the channel is on no longer than its max on-time, counted
        from its off→on edge (a pulse on a channel that is already on ends no later than the
        running on-period's limit).
        """
        if (
            not (isinstance(duration_s, int | float) and math.isfinite(duration_s))
            or duration_s <= 0
        ):
            raise ValueError(
                f"pulse duration must be a positive number of seconds, got {duration_s!r}"
            )
        i = self._resolve(channel)
        with self._lock:
            if not self._check_open("pulse", i):
                return
            now = time.monotonic_ns()
            limit_ns = self._on_since(i, now) + self._max_on_ns[i] - now
            duration_ns = max(1, min(round(duration_s * 1e9), limit_ns))
            self._generation[i] += 1
            self._on_until_ns[i] = now + duration_ns
            self._record("pulse", i, duration_s=duration_ns / 1e9, t_ns=now)
            self._write_pulse(i, duration_ns)
            if self.host_timed_pulses:
                self._schedule(now + duration_ns, i, CAUSE_PULSE_END)

    def _on_since(self, index: int, now: int) -> int:
        """Start of the channel's current on-period (``now`` if it is off: a new edge)."""
        if self._on_until_ns[index] <= now:
            self._on_since_ns[index] = now
        return self._on_since_ns[index]

    def all_off(self, reason: str = "request") -> None:
        """Switch every channel off."""
        with self._lock:
            if not self._opened:
                return
            for i in range(len(self._names)):
                self._generation[i] += 1
                self._on_until_ns[i] = 0
            self._record("all_off", reason=reason)
            self._write_all_off()

    def is_on(self, channel: str | int) -> bool:
        """Whether the host believes the channel is on now (after pulse ends and max on-time)."""
        return self._on_until_ns[self._resolve(channel)] > time.monotonic_ns()

    def health(self) -> DeviceHealth:
        """Connection state and counters."""
        with self._stats_lock:
            return DeviceHealth(
                connected=self._opened and self._is_connected(),
                last_error=self._last_error,
                sent=self._sent,
                failed=self._failed,
                reconnects=self._reconnects,
                auto_offs=self._auto_offs,
                device_errors=self._device_errors,
                t_last_error_ns=self._t_last_error_ns,
                pending=self._pending(),
            )

    # ------------------------------------------------------------------ for subclasses
    @abstractmethod
    def _open(self) -> None:
        """Acquire the device. Raise :class:`DeviceUnavailableError` with an actionable message."""

    @abstractmethod
    def _close(self) -> None:
        """Release the device."""

    @abstractmethod
    def _write_set(self, index: int, on: bool) -> None:
        """Drive line ``self._lines[index]``; must not raise (count failures instead)."""

    def _write_pulse(self, index: int, duration_ns: int) -> None:
        """Start a pulse; the host ends it unless ``host_timed_pulses`` is False."""
        self._write_set(index, True)

    def _write_all_off(self) -> None:
        for i in range(len(self._names)):
            self._write_set(i, False)

    def _is_connected(self) -> bool:
        return True

    def _pending(self) -> int:
        return 0

    def _note_sent(self, n: int = 1) -> None:
        with self._stats_lock:
            self._sent += n

    def _note_failure(self, message: str, index: int | None = None, **fields: Any) -> None:
        t_ns = time.monotonic_ns()
        with self._stats_lock:
            self._failed += 1
            self._last_error = message
            self._t_last_error_ns = t_ns
        self._warn_limited(message, t_ns)
        self._record("failed", index, t_ns=t_ns, error=message, **fields)

    def _warn_limited(self, message: str, t_ns: int) -> None:
        # A dead device fails every command, possibly at frame rate: warn at most once a second.
        last = self._t_last_warning_ns
        if last is not None and t_ns - last < 1_000_000_000:
            self._n_suppressed += 1
            return
        suppressed, self._n_suppressed = self._n_suppressed, 0
        self._t_last_warning_ns = t_ns
        more = f" ({suppressed} similar failures not logged)" if suppressed else ""
        log.warning("%s: %s (t_ns=%d)%s", self.name, message, t_ns, more)

    def _note_device_error(self, message: str) -> None:
        t_ns = time.monotonic_ns()
        with self._stats_lock:
            self._device_errors += 1
            self._last_error = message
            self._t_last_error_ns = t_ns
        log.warning("%s: device error: %s (t_ns=%d)", self.name, message, t_ns)
        self._record("device_error", t_ns=t_ns, error=message)

    def _note_error(self, event: str, message: str, **fields: Any) -> None:
        """Log and record a problem that is not a lost command (e.g. a dropped connection)."""
        t_ns = time.monotonic_ns()
        with self._stats_lock:
            self._last_error = message
            self._t_last_error_ns = t_ns
        log.warning("%s: %s (t_ns=%d)", self.name, message, t_ns)
        self._record(event, t_ns=t_ns, error=message, **fields)

    def _forget_state(self) -> None:
        """Consider every channel off and cancel pending pulse ends / max on-time cuts.

        Used after a reconnection, when the device may have rebooted with its outputs low.
        """
        with self._lock:
            for i in range(len(self._names)):
                self._generation[i] += 1
                self._on_until_ns[i] = 0

    def _note_reconnect(self) -> None:
        with self._stats_lock:
            self._reconnects += 1

    def _record(self, event: str, index: int | None = None, t_ns: int | None = None, **fields: Any):
        if t_ns is None:
            t_ns = time.monotonic_ns()
        if index is not None:
            fields = {"channel": self._names[index], "line": self._lines[index], **fields}
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s t_ns=%d %s", self.name, event, t_ns, fields)
        if self.action_log is not None:
            self.action_log.record(event, device=self.name, t_ns=t_ns, **fields)

    def _check_open(self, action: str, index: int) -> bool:
        if self._opened:
            return True
        self._note_failure(f"{action} on a device that is not open", index)
        return False

    def _schedule(self, deadline_ns: int, index: int, cause: str) -> None:
        if self._timer is not None:
            self._timer.schedule(deadline_ns, self._deadline, index, self._generation[index], cause)

    def _deadline(self, index: int, generation: int, cause: str) -> None:
        with self._lock:
            if not self._opened or generation != self._generation[index]:
                return
            self._generation[index] += 1
            self._on_until_ns[index] = 0
            if cause == CAUSE_MAX_ON:
                with self._stats_lock:
                    self._auto_offs += 1
                log.info(
                    "%s: channel %r reached its max on-time; switching it off",
                    self.name,
                    self._names[index],
                )
            self._record("auto_off" if cause == CAUSE_MAX_ON else "pulse_end", index, cause=cause)
            self._write_set(index, False)

    def __repr__(self) -> str:
        chans = dict(zip(self._names, self._lines, strict=True))
        return f"{type(self).__name__}(name={self.name!r}, channels={chans})"
