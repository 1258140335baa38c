"""The one small interface every output device implements, and the host-side output limits.

A device owns named *channels*, each mapped to a device *line* (a serial board's output number, a
DAQ line such as ``"Dev1/port0/line0"``). Callers address channels by name (or by integer line).
Every channel has a maximum on-time: whatever the caller does, the host switches a channel off once
it has been on that long (a pulse is clamped to it; a ``set(on=True)`` is followed by an automatic
off). A channel may also have a minimum off-time and a duty-cycle limit
(:mod:`~realtime_pose.hardware.limits`): a switch-on too soon after the last on-period, or with
the duty budget used up, is *held off* (refused and counted, never deferred), and an on-period is
cut when the budget runs out. Boards running the realtime-pose sketch enforce the same limits
themselves, so the output stays within them if the host dies.
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

from pydantic import Field, model_validator

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.deadline_timer import DeadlineTimer
from realtime_pose.hardware.limits import HOLD_MIN_OFF, ChannelLimits
from realtime_pose.hardware.protocol import MAX_TIME_MS
from realtime_pose.plugins import PluginOptions

log = logging.getLogger(__name__)

Line = int | str
ChannelSpec = Mapping[str, Line] | Sequence[Line] | int | None

CAUSE_MAX_ON = "max_on"
CAUSE_PULSE_END = "pulse_end"
CAUSE_DUTY = "duty"

OUTPUT_FIELDS = ("channel", "max_on_ms", "min_off_ms", "max_duty", "duty_window_ms")
"""The fields of an ``outputs:`` entry that belong to the output, not to its device."""


_D = TypeVar("_D", bound="OutputDevice")


class OutputOptions(PluginOptions):
    """One named output under ``outputs:``; a device adds the fields it needs.

    ``channel`` and the limits (``max_on_ms``, ``min_off_ms``, ``max_duty``, ``duty_window_ms``)
    are the output's own; every other field configures the device it is on, and outputs whose
    device fields agree share one device (one port, one task).
    """

    channel: int | str = Field(default=0, description="the device line this output drives")
    max_on_ms: float = Field(
        default=1000.0, gt=0, description="the longest the output may stay on, in ms"
    )
    min_off_ms: float = Field(
        default=0.0,
        ge=0,
        le=MAX_TIME_MS,
        description="after each on-period the output stays off at least this long, in ms: a "
        "switch-on sooner is refused (held off), never deferred; 0: no minimum",
    )
    max_duty: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="the largest fraction of any duty_window_ms the output may be on: a "
        "switch-on with no budget left is refused and an on-period is cut when the budget runs "
        "out (counted in duty_window_ms/8 slots, so a steady pulse train may get 8/9 of it); "
        "1: no limit",
    )
    duty_window_ms: float = Field(
        default=1000.0,
        gt=0,
        le=MAX_TIME_MS,
        description="the sliding window max_duty is measured over, in ms",
    )

    @model_validator(mode="after")
    def _duty_budget_is_measurable(self) -> OutputOptions:
        if self.max_duty < 1 and self.max_duty * self.duty_window_ms < 0.001:
            raise ValueError(
                f"max_duty {self.max_duty:g} of duty_window_ms {self.duty_window_ms:g} is under "
                "1 µs of on-time per window; raise one of them"
            )
        return self

    def device_fields(self) -> dict[str, Any]:
        """The fields that configure the device (everything but the channel and its limits)."""
        return {k: v for k, v in self if k not in OUTPUT_FIELDS}


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
    held_off
        Switch-ons refused by a channel's minimum off-time or duty-cycle limit (the host's own
        and those the board reported); per channel and cause in :meth:`OutputDevice.hold_offs`.
    duty_cuts
        On-periods the host cut short because the duty budget ran out.
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
    held_off: int = 0
    duty_cuts: int = 0
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
    """Base class of output adapters: named channels, ``set``/``pulse``, maximum on-time, minimum
    off-time and duty-cycle limit (:meth:`set_limits`), health.

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
        self._limits = [ChannelLimits() for _ in range(n)]
        self._max_duty = [1.0] * n  # as configured, for messages
        self._held_min_off = [0] * n
        self._held_duty = [0] * n
        self._duty_cuts = [0] * n
        self._last_hold: list[str | None] = [None] * n
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

    def set_limits(
        self,
        channel: str | int,
        *,
        min_off_s: float = 0.0,
        max_duty: float = 1.0,
        duty_window_s: float = 1.0,
    ) -> None:
        """Give a channel a minimum off-time and a duty-cycle limit (µs resolution).

        Parameters
        ----------
        channel
            The channel.
        min_off_s
            After each on-period the channel stays off at least this long; a switch-on sooner
            is held off (refused, counted, never deferred). ``0``: no minimum.
        max_duty, duty_window_s
            At most ``max_duty * duty_window_s`` of on-time in any window of ``duty_window_s``
            (:mod:`~realtime_pose.hardware.limits` says how it is counted); a switch-on with no
            budget left is held off, and an on-period is cut when the budget runs out.
            ``max_duty`` 1: no limit.

        Set them before :meth:`open` (the serial device sends them to the board when it
        connects); set later, they apply from the channel's next switch-on.
        """
        i = self._resolve(channel)
        where = f"channel {self._names[i]!r} of device {self.name!r}"
        max_s = MAX_TIME_MS / 1e3
        for label, value in (("min_off_s", min_off_s), ("duty_window_s", duty_window_s)):
            if not (isinstance(value, int | float) and math.isfinite(value)) or not (
                0 <= value <= max_s
            ):
                raise ValueError(f"{label} for {where} must be 0 .. {max_s:g} s, got {value!r}")
        if not (isinstance(max_duty, int | float) and 0 < max_duty <= 1):
            raise ValueError(f"max_duty for {where} must be in (0, 1], got {max_duty!r}")
        window_ns = round(duty_window_s * 1e6) * 1000
        on_ns = window_ns if max_duty >= 1 else round(max_duty * duty_window_s * 1e6) * 1000
        if window_ns <= 0 or on_ns <= 0:
            raise ValueError(
                f"max_duty {max_duty:g} of duty_window_s {duty_window_s:g} for {where} is under "
                "1 µs of on-time per window"
            )
        with self._lock:
            now = time.monotonic_ns()
            self._settle(i, now)
            limits = self._limits[i]
            limits.set_min_off(round(min_off_s * 1e6) * 1000)
            limits.set_duty(on_ns, window_ns, now)
            self._max_duty[i] = float(max_duty)
            self._limits_changed(i)

    def limits(self, channel: str | int) -> dict[str, float]:
        """A channel's limits: ``max_on_ms``, ``min_off_ms``, ``max_duty``, ``duty_window_ms``."""
        i = self._resolve(channel)
        lim = self._limits[i]
        return {
            "max_on_ms": self._max_on_ns[i] / 1e6,
            "min_off_ms": lim.min_off_ns / 1e6,
            "max_duty": self._max_duty[i] if lim.duty_limited else 1.0,
            "duty_window_ms": lim.duty_window_ns / 1e6 if lim.duty_window_ns else 1000.0,
        }

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
    def set(self, channel: str | int, on: bool) -> str | None:
        """Switch a channel on or off. An ``on`` ends by itself after the channel's max on-time
        (or sooner, when its duty budget runs out).

        The max on-time counts from the channel's off→on edge: switching on a channel that is
        already on does not extend it, so a loop that re-sends "on" every frame cannot hold an
        output on longer than the limit.

        Returns
        -------
        str or None
            ``"min_off"`` or ``"duty"`` when a switch-on was held off (the channel stays off);
            ``None`` otherwise.
        """
        i = self._resolve(channel)
        with self._lock:
            if not self._check_open("set", i):
                return None
            now = time.monotonic_ns()
            if on:
                held = self._begin_on(i, now)
                if held is not None:
                    self._held_off(i, held, now, "set")
                    return held
                deadline, cause = self._on_limit(i)
                self._generation[i] += 1
                self._on_until_ns[i] = deadline
                self._record("set", i, on=True, t_ns=now, off_at_ns=deadline)
                self._write_set(i, True)
                self._schedule(deadline, i, cause)
            else:
                self._generation[i] += 1
                self._record("set", i, on=False, t_ns=now)
                self._write_set(i, False)
                self._end_on(i, time.monotonic_ns())  # counted until the write: never short
        return None

    def pulse(self, channel: str | int, duration_s: float) -> str | None:
        """Switch a channel on for ``duration_s``.

        The pulse is clamped so that the channel is on no longer than its max on-time, counted
        from its off→on edge (a pulse on a channel that is already on ends no later than the
        running on-period's limit), and no longer than its duty budget allows.

        Returns
        -------
        str or None
            ``"min_off"`` or ``"duty"`` when the pulse was held off; ``None`` otherwise.
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
                return None
            now = time.monotonic_ns()
            held = self._begin_on(i, now)
            if held is not None:
                self._held_off(i, held, now, "pulse")
                return held
            deadline, cause = self._on_limit(i)
            requested_ns = round(duration_s * 1e9)
            duration_ns = max(1, min(requested_ns, deadline - now))
            if cause == CAUSE_DUTY and duration_ns < requested_ns:
                self._note_duty_cut(i)
            self._generation[i] += 1
            self._on_until_ns[i] = now + duration_ns
            self._record("pulse", i, duration_s=duration_ns / 1e9, t_ns=now)
            self._write_pulse(i, duration_ns)
            if self.host_timed_pulses:
                self._schedule(now + duration_ns, i, CAUSE_PULSE_END)
        return None

    def _settle(self, index: int, now: int) -> None:
        """Close an on-period that ended by itself (a pulse the device timed, a cut whose timer
        has not run yet) at the time it ended."""
        limits = self._limits[index]
        if limits.on and self._on_until_ns[index] <= now:
            limits.switch_off(max(self._on_until_ns[index], limits.acct_ns))

    def _begin_on(self, index: int, now: int) -> str | None:
        """Open an on-period at ``now`` unless the channel is on already; return the hold-off
        cause when its limits refuse the edge."""
        self._settle(index, now)
        limits = self._limits[index]
        if limits.on:
            return None
        held = limits.switch_on(now)
        if held is None:
            self._on_since_ns[index] = now
        return held

    def _end_on(self, index: int, now: int) -> None:
        """The channel goes off now (or went off earlier, at the end of its pulse)."""
        limits = self._limits[index]
        if limits.on:
            limits.switch_off(max(min(self._on_until_ns[index], now), limits.acct_ns))
        self._on_until_ns[index] = 0

    def _on_limit(self, index: int) -> tuple[int, str]:
        """When the current on-period must end at the latest, and why."""
        deadline = self._on_since_ns[index] + self._max_on_ns[index]
        duty_end = self._limits[index].duty_end_ns()
        if duty_end is not None and duty_end < deadline:
            return duty_end, CAUSE_DUTY
        return deadline, CAUSE_MAX_ON

    def _held_off(self, index: int, cause: str, now: int, action: str) -> None:
        self._count_hold(index, cause)
        self._record("held_off", index, t_ns=now, cause=cause, action=action)

    def _count_hold(self, index: int, cause: str) -> None:
        with self._stats_lock:
            if cause == HOLD_MIN_OFF:
                self._held_min_off[index] += 1
            else:
                self._held_duty[index] += 1
            self._last_hold[index] = cause

    def _note_duty_cut(self, index: int) -> None:
        with self._stats_lock:
            self._duty_cuts[index] += 1
            self._last_hold[index] = CAUSE_DUTY

    def hold_offs(self, channel: str | int) -> dict[str, Any]:
        """How often a channel's limits refused or cut it: ``min_off`` and ``duty`` (switch-ons
        held off, by cause), ``duty_cuts`` (on-periods cut short by the duty budget) and
        ``last_cause`` (``"min_off"``, ``"duty"`` or ``None``)."""
        i = self._resolve(channel)
        with self._stats_lock:
            return {
                "min_off": self._held_min_off[i],
                "duty": self._held_duty[i],
                "duty_cuts": self._duty_cuts[i],
                "last_cause": self._last_hold[i],
            }

    def hold_off_reason(self, channel: str | int, duration_s: float | None = None) -> str | None:
        """Why switching ``channel`` on now (for ``duration_s``) would not do as asked: it is on
        already, its minimum off-time has not passed, or its duty budget is short. ``None`` when
        it would. A check for requests made by hand (the control socket's ``output_test``)."""
        i = self._resolve(channel)
        with self._lock:
            now = time.monotonic_ns()
            self._settle(i, now)
            limits = self._limits[i]
            if limits.on:
                left_ms = (self._on_until_ns[i] - now) / 1e6
                return f"is on for another {left_ms:.3g} ms; a new pulse starts only from off"
            wait_ns = limits.min_off_left_ns(now)
            if wait_ns > 0:
                return (
                    f"must stay off {limits.min_off_ns / 1e6:g} ms after each on-period "
                    f"(min_off_ms): try again in {wait_ns / 1e6:.1f} ms"
                )
            allowance = limits.allowance_ns(now)
            if allowance is None:
                return None
            budget = (
                f"max_duty {self._max_duty[i]:g} of every {limits.duty_window_ns / 1e6:g} ms "
                f"(duty_window_ms), i.e. {limits.duty_on_ns / 1e6:g} ms on"
            )
            if allowance == 0:
                return f"has used up its duty-cycle budget ({budget}): try again later"
            if duration_s is not None and allowance < round(duration_s * 1e9):
                return (
                    f"has only {allowance / 1e6:.1f} ms left of its duty-cycle budget ({budget}):"
                    f" a {duration_s * 1e3:g} ms pulse would be cut; ask for less or try again "
                    "later"
                )
            return None

    def all_off(self, reason: str = "request") -> None:
        """Switch every channel off."""
        with self._lock:
            if not self._opened:
                return
            for i in range(len(self._names)):
                self._generation[i] += 1
            self._record("all_off", reason=reason)
            self._write_all_off()
            now = time.monotonic_ns()
            for i in range(len(self._names)):
                self._end_on(i, now)

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
                held_off=sum(self._held_min_off) + sum(self._held_duty),
                duty_cuts=sum(self._duty_cuts),
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

    def _limits_changed(self, index: int) -> None:
        """A channel's minimum off-time or duty limit changed (a board may want to hear it)."""
        return

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

        Used after a reconnection, when the device may have rebooted with its outputs low. The
        limits' history stays: the host keeps counting the on-time it sent.
        """
        with self._lock:
            now = time.monotonic_ns()
            for i in range(len(self._names)):
                self._generation[i] += 1
                self._end_on(i, now)

    def _forget_on(self, index: int) -> None:
        """The channel is off as far as the host knows (its command did not reach the device)."""
        with self._lock:
            self._end_on(index, time.monotonic_ns())

    def _note_device_hold(self, index: int, cause: str, **fields: Any) -> None:
        """The device itself refused to switch a channel on (its own limits): count it."""
        self._count_hold(index, cause)
        self._record("device_held_off", index, t_ns=time.monotonic_ns(), cause=cause, **fields)

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
            if cause == CAUSE_MAX_ON:
                with self._stats_lock:
                    self._auto_offs += 1
                log.info(
                    "%s: channel %r reached its max on-time; switching it off",
                    self.name,
                    self._names[index],
                )
            elif cause == CAUSE_DUTY:
                self._note_duty_cut(index)
                log.debug("%s: channel %r used up its duty budget", self.name, self._names[index])
            self._record(
                "pulse_end" if cause == CAUSE_PULSE_END else "auto_off", index, cause=cause
            )
            self._write_set(index, False)
            now = time.monotonic_ns()  # the line went off now, however late the timer ran
            self._on_until_ns[index] = now
            self._end_on(index, now)

    def __repr__(self) -> str:
        chans = dict(zip(self._names, self._lines, strict=True))
        return f"{type(self).__name__}(name={self.name!r}, channels={chans})"
