"""Output devices for realtime-pose: one small interface, several devices.

Devices (:class:`~realtime_pose.hardware.base.OutputDevice` subclasses) are output plug-ins
(:data:`realtime_pose.plugins.OUTPUTS`), one module each: ``serial`` (the realtime-pose line
protocol on a microcontroller, :mod:`.serial`), ``daq`` (NI-DAQmx digital lines, :mod:`.daq`)
and ``log`` (a dry run that records edges, :mod:`.log`). :class:`OutputDispatcher` routes
named outputs to them; :func:`build_dispatcher` builds one from the run config's ``outputs:``.
Board stand-ins for tests and bench checks live in :mod:`.testing`. Of the rest of
realtime-pose this package imports only the plug-in registry (:mod:`realtime_pose.plugins`) and
two services of :mod:`realtime_pose.util`: supervised threads and, for the board check, safe
writes.
"""

from __future__ import annotations

from typing import Any

from realtime_pose.hardware.action_log import ActionLog
from realtime_pose.hardware.base import DeviceHealth, DeviceUnavailableError, OutputDevice
from realtime_pose.hardware.dispatcher import OutputDispatcher, build_dispatcher
from realtime_pose.plugins import OUTPUTS

__all__ = [
    "OUTPUTS",
    "ActionLog",
    "DeviceHealth",
    "DeviceUnavailableError",
    "OutputDevice",
    "OutputDispatcher",
    "build_dispatcher",
    "open_device",
]


def open_device(kind: str, **options: Any) -> OutputDevice:
    """Construct and open a device plug-in by name with its constructor ``options``.

    ``open_device("serial", port="/dev/ttyACM0", channels=2)``.

    Raises
    ------
    realtime_pose.plugins.UnknownPluginError
        No device plug-in of that name (a ``ValueError``).
    DeviceUnavailableError
        The device or its driver/package is missing; the message says what to do.
    """
    return OUTPUTS.get(kind)(**options).open()
