"""Output adapters for realtime-pose: one small interface, several devices.

Devices (:class:`~realtime_pose.hardware.base.OutputDevice`): ``serial`` (the realtime-pose line protocol on a
microcontroller, :mod:`realtime_pose.hardware.serial`), ``daq`` (NI-DAQmx digital lines, :mod:`realtime_pose.hardware.daq`) and
``log`` (a dry run that records edges, :mod:`realtime_pose.hardware.log_only`). :class:`OutputDispatcher` routes
named outputs to them; :func:`build_dispatcher` builds one from plain config. This package imports
nothing else of realtime-pose.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.base import DeviceHealth, DeviceUnavailableError, OutputDevice
from realtime_pose.hardware.dispatcher import OutputDispatcher, build_dispatcher

__all__ = [
    "DEVICE_KINDS",
    "ActionLog",
    "DeviceHealth",
    "DeviceUnavailableError",
    "OutputDevice",
    "OutputDispatcher",
    "build_dispatcher",
    "create_device",
    "device_class",
    "open_device",
]

DEVICE_KINDS = {
    "serial": ("realtime_pose.hardware.serial", "SerialDevice"),
    "daq": ("realtime_pose.hardware.daq", "DaqDevice"),
    "log": ("realtime_pose.hardware.log_only", "LogOnlyDevice"),
}
"""``kind -> (module, class name)``; modules are imported on first use."""


def device_class(kind: str) -> type[OutputDevice]:
    """The device class for ``kind`` (imports its module on first use).

    Raises
    ------
    ValueError
        Unknown kind.
    DeviceUnavailableError
        The module cannot be imported (e.g. a missing optional package).
    """
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown output device {kind!r}; use one of {sorted(DEVICE_KINDS)}")
    module_name, class_name = DEVICE_KINDS[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise DeviceUnavailableError(
            f"the {kind!r} output device is unavailable: {err}. Install what it needs "
            f"(see docs) or choose another device."
        ) from err
    cls = getattr(module, class_name, None)
    if cls is None:  # fall back to the module's device whose kind matches
        found = [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, OutputDevice) and c.kind == kind and not inspect.isabstract(c)
        ]
        if not found:
            raise DeviceUnavailableError(f"{module_name} defines no {kind!r} OutputDevice")
        cls = found[0]
    return cls


def create_device(kind: str, **options: Any) -> OutputDevice:
    """Construct (but do not open) a device of ``kind`` with its constructor ``options``."""
    return device_class(kind)(**options)


def open_device(kind: str, **options: Any) -> OutputDevice:
    """Construct and open a device: ``open_device("serial", port="/dev/ttyACM0", channels=2)``.

    Raises
    ------
    ValueError
        Unknown kind or bad options.
    DeviceUnavailableError
        The device or its driver/package is missing; the message says what to do.
    """
    return create_device(kind, **options).open()
