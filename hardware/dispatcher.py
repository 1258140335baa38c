"""Route named outputs ("laser", "valve") to device channels without blocking the live loop.

:class:`OutputDispatcher` maps output names to ``(device, channel)``, turns ``submit`` calls into
device actions (the devices' own writer threads do the I/O), records every action with the frame it
answers, and keeps the rig safe: a stall watchdog switches every output off when the loop stops
calling :meth:`OutputDispatcher.kick`, and every output goes off on ``close()``, at interpreter exit
and on SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import signal
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.base import DeviceUnavailableError, OutputDevice, OutputOptions
from realtime_pose.plugins import OUTPUTS, Choice
from realtime_pose.util.supervision import SupervisedThread

log = logging.getLogger(__name__)

ACTIONS = ("pulse", "on", "off", "toggle")


class OutputDispatcher:
    """Named outputs over output devices, with a stall watchdog and all-off on exit.

    Parameters
    ----------
    outputs
        ``{output_name: (device, channel)}``; devices may be shared between outputs. Devices are
        opened here if they are not open yet.
    stall_timeout_s
        When set, every output is switched off if :meth:`kick` is not called for this long (the
        live loop kicks once per frame). The timer starts when the dispatcher is created.
    action_log
        Receives one ``dispatch`` record per :meth:`submit` (plus watchdog and all-off records);
        a fresh in-memory log by default.
    owns_devices
        Close the devices in :meth:`close` (default ``True``).
    register_atexit
        Switch everything off at interpreter exit if :meth:`close` was not called.
    """

    def __init__(
        self,
        outputs: Mapping[str, tuple[OutputDevice, str | int]],
        *,
        stall_timeout_s: float | None = None,
        action_log: ActionLog | None = None,
        owns_devices: bool = True,
        register_atexit: bool = True,
    ) -> None:
        if not outputs:
            raise ValueError("an OutputDispatcher needs at least one output")
        if stall_timeout_s is not None and not (
            math.isfinite(stall_timeout_s) and stall_timeout_s > 0
        ):
            raise ValueError(f"stall_timeout_s must be > 0 seconds, got {stall_timeout_s!r}")
        self._outputs: dict[str, tuple[OutputDevice, str | int]] = {}
        for name, target in outputs.items():
            try:
                device, channel = target
            except (TypeError, ValueError):
                raise ValueError(
                    f"output {name!r} must map to (device, channel), got {target!r}"
                ) from None
            if not isinstance(device, OutputDevice):
                raise ValueError(f"output {name!r}: {device!r} is not an OutputDevice")
            device.line_of(channel)  # raises a ValueError naming the device's channels
            self._outputs[str(name)] = (device, channel)
        self.action_log = action_log if action_log is not None else ActionLog()
        self.owns_devices = owns_devices
        self._devices: list[OutputDevice] = list(
            {id(d): d for d, _ in self._outputs.values()}.values()
        )
        for device in self._devices:
            device.open()
        self.stall_timeout_s = stall_timeout_s
        self._last_kick_ns = time.monotonic_ns()
        self._stalled = False
        self._n_submitted = 0
        self._n_rejected = 0
        self._n_watchdog_trips = 0
        self._closed = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._previous_handlers: dict[int, Any] = {}
        self._watchdog: threading.Thread | None = None
        if stall_timeout_s is not None:
            self._watchdog = SupervisedThread(
                self._watch, "output-watchdog", should_stop=self._wake.is_set
            )
            self._watchdog.start()
        self._atexit_ref: Any = None
        if register_atexit:
            ref = weakref.ref(self)
            self._atexit_ref = _AtExit(ref)
            atexit.register(self._atexit_ref)

    # ------------------------------------------------------------------ actions
    @property
    def output_names(self) -> list[str]:
        """The configured output names."""
        return list(self._outputs)

    def target(self, output_name: str) -> tuple[OutputDevice, str | int]:
        """The ``(device, channel)`` an output drives."""
        try:
            return self._outputs[output_name]
        except KeyError:
            raise ValueError(
                f"unknown output {output_name!r}; configured outputs are {sorted(self._outputs)}"
            ) from None

    def submit(
        self,
        output_name: str,
        action: str,
        duration_s: float | None = None,
        frame_index: int | None = None,
        t_frame_ns: int | None = None,
    ) -> dict[str, Any]:
        """Act on an output now; returns at once (the device's writer thread does the I/O).

        Parameters
        ----------
        output_name
            A configured output.
        action
            ``"pulse"`` (needs ``duration_s``), ``"on"``, ``"off"`` or ``"toggle"``.
        duration_s
            Pulse length in seconds (clamped by the device to the channel's max on-time).
        frame_index, t_frame_ns
            The frame this action answers, recorded for latency analysis.

        Returns
        -------
        dict
            The ``dispatch`` record (``t_ns``, output, action, frame fields, ``t_done_ns``,
            ``held_off``: ``"min_off"`` or ``"duty"`` when the output's limits refused the
            switch-on, else ``None``).

        Raises
        ------
        ValueError
            Unknown output or action, or a pulse without a positive ``duration_s``. Device
            failures never raise: they are counted in the device's health.
        """
        device, channel = self.target(output_name)
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} for output {output_name!r}; use {ACTIONS}")
        if action == "pulse" and (
            duration_s is None or not math.isfinite(duration_s) or duration_s <= 0
        ):
            raise ValueError(
                f"a pulse on output {output_name!r} needs duration_s > 0 seconds, "
                f"got {duration_s!r}"
            )
        t_ns = time.monotonic_ns()
        if self._closed:
            self._n_rejected += 1
            return self.action_log.record(
                "dispatch_rejected",
                device=device.name,
                t_ns=t_ns,
                output=output_name,
                action=action,
                frame_index=frame_index,
                error="dispatcher is closed",
            )
        if action == "pulse":
            assert duration_s is not None
            held = device.pulse(channel, duration_s)
        elif action == "toggle":
            held = device.set(channel, not device.is_on(channel))
        else:
            held = device.set(channel, action == "on")
        self._n_submitted += 1
        return self.action_log.record(
            "dispatch",
            device=device.name,
            t_ns=t_ns,
            output=output_name,
            action=action,
            duration_s=duration_s,
            frame_index=frame_index,
            t_frame_ns=t_frame_ns,
            t_done_ns=time.monotonic_ns(),
            held_off=held,
        )

    def is_on(self, output_name: str) -> bool:
        """Whether the host believes the output is on now."""
        device, channel = self.target(output_name)
        return device.is_on(channel)

    def hold_off(self, output_name: str, duration_s: float | None = None) -> str | None:
        """Why a pulse of ``duration_s`` on the output now would not run as asked (it is on, its
        minimum off-time has not passed, its duty budget is short), as a sentence that starts
        with the output's name; ``None`` when it would."""
        device, channel = self.target(output_name)
        reason = device.hold_off_reason(channel, duration_s)
        return None if reason is None else f"output {output_name!r} {reason}"

    def all_off(self, reason: str = "request") -> None:
        """Switch every output off (on every device the outputs use). Never raises."""
        self.action_log.record("all_off", reason=reason)
        for device in self._devices:
            try:
                device.all_off(reason=reason)
            except Exception:
                log.exception("all-off on %s failed", device.name)

    # ------------------------------------------------------------------ watchdog
    def kick(self) -> None:
        """Tell the watchdog the loop is alive (call once per frame; costs a clock read)."""
        self._last_kick_ns = time.monotonic_ns()
        if self._stalled:
            self._stalled = False
            self.action_log.record("watchdog_rearmed")
            log.info("output watchdog: loop is alive again")

    @property
    def stalled(self) -> bool:
        """Whether the watchdog has switched the outputs off and no kick came since."""
        return self._stalled

    def _watch(self) -> None:
        assert self.stall_timeout_s is not None
        timeout_ns = round(self.stall_timeout_s * 1e9)
        period = min(self.stall_timeout_s / 4, 0.25)
        while not self._wake.wait(period):
            if self._stalled:
                continue
            since = time.monotonic_ns() - self._last_kick_ns
            if since >= timeout_ns:
                self.all_off(reason="watchdog")  # first: the outputs matter more than the log
                self.action_log.record("watchdog_all_off", since_kick_ns=since)
                log.warning(
                    "output watchdog: no kick for %.0f ms (limit %.0f ms); all outputs off",
                    since / 1e6,
                    self.stall_timeout_s * 1e3,
                )
                self._n_watchdog_trips += 1
                self._stalled = True  # only now: stalled means the outputs are off

    # ------------------------------------------------------------------ signals and exit
    def install_signal_handler(self, signum: int = signal.SIGTERM) -> None:
        """Switch every output off on ``signum``, then chain to the handler that was there.

        A previous Python handler is called; the default action (terminate) is re-raised after
        the all-off; an ignored signal stays ignored. Must be called from the main thread.
        """
        previous = signal.getsignal(signum)
        self._previous_handlers[signum] = previous

        def _handler(sig: int, frame: Any) -> None:
            self.all_off(reason=f"signal {signal.Signals(sig).name}")
            if callable(previous):
                previous(sig, frame)
            elif previous in (signal.SIG_DFL, None):
                self.close()
                signal.signal(sig, signal.SIG_DFL)
                os.kill(os.getpid(), sig)

        try:
            signal.signal(signum, _handler)
        except ValueError as err:
            raise RuntimeError(
                f"install_signal_handler must be called from the main thread ({err})"
            ) from None

    def _restore_signal_handlers(self) -> None:
        for signum, previous in self._previous_handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous_handlers.clear()

    # ------------------------------------------------------------------ lifecycle
    def health(self) -> dict[str, Any]:
        """Counters, per-device health and, under ``held_off``, each output's hold-offs
        (:meth:`~.base.OutputDevice.hold_offs`): for the status stream."""
        return {
            "submitted": self._n_submitted,
            "rejected": self._n_rejected,
            "watchdog_trips": self._n_watchdog_trips,
            "stalled": self._stalled,
            "devices": {d.name: d.health().to_dict() for d in self._devices},
            "held_off": {name: d.hold_offs(ch) for name, (d, ch) in self._outputs.items()},
        }

    def close(self) -> None:
        """All outputs off, stop the watchdog, close owned devices (idempotent, never raises)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self.all_off(reason="close")
        if self._watchdog is not None and threading.current_thread() is not self._watchdog:
            self._watchdog.join(timeout=2.0)
        if self.owns_devices:
            for device in self._devices:
                device.close()
        if self._atexit_ref is not None:
            atexit.unregister(self._atexit_ref)
            self._atexit_ref = None
        if threading.current_thread() is threading.main_thread():
            self._restore_signal_handlers()
        self.action_log.record("closed")

    def __enter__(self) -> OutputDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AtExit:
    """An atexit callback that does not keep the dispatcher alive."""

    def __init__(self, ref: weakref.ref[OutputDispatcher]) -> None:
        self._ref = ref

    def __call__(self) -> None:
        dispatcher = self._ref()
        if dispatcher is not None:
            dispatcher.close()


# ---------------------------------------------------------------------------------------------
# Building a dispatcher from the run config's ``outputs:``
# ---------------------------------------------------------------------------------------------


def _validated(name: Any, spec: Any) -> Choice:
    if not isinstance(name, str) or not name:
        raise ValueError(f"output names must be non-empty strings, got {name!r}")
    try:
        return OUTPUTS.choose(spec)
    except ValidationError as err:
        lines = []
        for problem in err.errors():
            field = ".".join(str(p) for p in (name, *problem["loc"]))
            lines.append(f"outputs.{field}: {problem['msg']}")
        raise ValueError("\n".join(lines)) from None


def build_dispatcher(
    outputs_config: Mapping[str, Choice | Mapping[str, Any]],
    *,
    stall_timeout_s: float | None = None,
    action_log: ActionLog | None = None,
    register_atexit: bool = True,
) -> OutputDispatcher:
    """Create the devices an ``outputs`` config names, open them and return a dispatcher.

    Parameters
    ----------
    outputs_config
        ``{output_name: section}``, each section naming its device plug-in and that device's
        options (:data:`realtime_pose.plugins.OUTPUTS`), e.g. ``{"laser": {"kind": "serial",
        "port": "/dev/ttyACM0", "channel": 0, "max_on_ms": 50}, "valve": {"kind": "log",
        "channel": 1}}``; sections already validated by the run config are taken as they are.
        Outputs of the same device kind whose device fields (every field but ``channel`` and
        the limits ``max_on_ms``, ``min_off_ms``, ``max_duty``, ``duty_window_ms``) agree share
        one device; two outputs on the same ``port`` must agree.
    stall_timeout_s, action_log, register_atexit
        As for :class:`OutputDispatcher` (the action log is shared with the devices).

    Raises
    ------
    ValueError
        A field is missing or wrong; the message names ``outputs.<name>.<field>``.
    realtime_pose.hardware.base.DeviceUnavailableError
        A device could not be opened (already opened ones are closed again).
    """
    if not isinstance(outputs_config, Mapping) or not outputs_config:
        raise ValueError(
            "outputs must be a non-empty mapping {output_name: {device, channel, ...}}"
        )
    action_log = action_log if action_log is not None else ActionLog()
    groups: dict[tuple[str, Any], dict[str, Any]] = {}
    for name, spec in outputs_config.items():
        choice = _validated(name, spec)
        options: OutputOptions = choice.options  # type: ignore[assignment]
        fields = options.device_fields()
        identity = fields.get("port", repr(sorted(fields.items())))
        key = (choice.name, identity)
        group = groups.setdefault(
            key,
            {
                "choice": choice,
                "fields": fields,
                "channels": {},
                "max_on_s": {},
                "limits": {},
                "first": name,
            },
        )
        if group["fields"] != fields:
            diff = sorted(k for k in fields if fields[k] != group["fields"].get(k))
            raise ValueError(
                f"outputs.{name}: shares its {choice.name} device with output "
                f"{group['first']!r} but sets {diff} differently; give them the same values"
            )
        for other, line in group["channels"].items():
            if line == options.channel:
                raise ValueError(
                    f"outputs.{name}.channel: {line!r} is already used by output {other!r} "
                    "on the same device"
                )
        group["channels"][name] = options.channel
        group["max_on_s"][name] = options.max_on_ms / 1000.0
        group["limits"][name] = {
            "min_off_s": options.min_off_ms / 1000.0,
            "max_duty": options.max_duty,
            "duty_window_s": options.duty_window_ms / 1000.0,
        }
    outputs: dict[str, tuple[OutputDevice, str | int]] = {}
    devices: list[OutputDevice] = []
    try:
        for (kind, _), group in groups.items():
            port = group["fields"].get("port")
            device = group["choice"].cls.from_options(
                group["fields"],
                group["channels"],
                max_on_s=group["max_on_s"],
                name=f"{kind}:{port}" if port else kind,
                action_log=action_log,
            )
            devices.append(device)
            for name, limits in group["limits"].items():
                device.set_limits(name, **limits)
            try:
                device.open()
            except DeviceUnavailableError as err:
                names = ", ".join(f"outputs.{n}" for n in group["channels"])
                raise DeviceUnavailableError(f"{names}: {err}") from err
            for name in group["channels"]:
                outputs[name] = (device, name)
        return OutputDispatcher(
            outputs,
            stall_timeout_s=stall_timeout_s,
            action_log=action_log,
            register_atexit=register_atexit,
        )
    except BaseException:
        for device in devices:
            device.close()
        raise
