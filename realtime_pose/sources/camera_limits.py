"""Camera options checked against the camera's own GenICam limits before they are set.

A GenICam feature carries its limits: an integer or float node its minimum, maximum and
increment, an enumeration its available entries. Each camera source reads them from its SDK into
a :class:`NodeLimits` and calls :func:`check`; a value outside them is refused at start with a
:class:`CameraOptionError` naming the option, the camera feature and the allowed range, instead of
the SDK's own exception from deep inside a ``set`` call (or, worse, a silent clamp).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from realtime_pose.sources.base import SourceError


class CameraOptionError(SourceError):
    """An option outside the camera's limits; the message names the option and the range."""


@dataclass(frozen=True)
class NodeLimits:
    """The limits of one GenICam feature (numbers or enumeration entries)."""

    feature: str
    minimum: float | None = None
    maximum: float | None = None
    increment: float | None = None
    entries: tuple[str, ...] | None = None
    unit: str = ""

    def describe(self) -> str:
        """The allowed values in words, e.g. ``100 .. 3000000 µs`` or ``one of Mono8, RGB8``."""
        if self.entries is not None:
            return "one of " + ", ".join(self.entries)
        text = f"{_num(self.minimum)} .. {_num(self.maximum)}"
        if self.increment not in (None, 0, 1) or (
            self.increment == 1 and float(self.minimum or 0).is_integer()
        ):
            text += f" in steps of {_num(self.increment)}"
        return text + (f" {self.unit}" if self.unit else "")


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check(source: str, option: str, value: float | str, limits: NodeLimits) -> None:
    """Refuse ``value`` for ``option`` unless the camera's ``limits`` allow it.

    Raises
    ------
    CameraOptionError
        ``"basler 0815-0000: option 'exposure_us' = 5 is outside the camera's ExposureTimeAbs:
        100 .. 3000000 µs"``.
    """
    if limits.entries is None and limits.minimum is None and limits.maximum is None:
        return  # a string or boolean feature: no limits to check
    if limits.entries is not None:
        if str(value) not in limits.entries:
            raise _refuse(source, option, value, limits, "is not available on")
        return
    number = float(value)
    low, high = limits.minimum, limits.maximum
    if (low is not None and number < low) or (high is not None and number > high):
        raise _refuse(source, option, value, limits, "is outside")
    step = limits.increment
    if step and step > 0 and low is not None:
        k = (number - low) / step
        if not math.isclose(k, round(k), abs_tol=1e-6):
            raise _refuse(source, option, value, limits, "is not a valid step of")


def _refuse(
    source: str, option: str, value: float | str, limits: NodeLimits, how: str
) -> CameraOptionError:
    shown = value if isinstance(value, str) else _num(value)
    return CameraOptionError(
        f"{source}: option {option!r} = {shown} {how} the camera's {limits.feature}: "
        f"{limits.describe()}"
    )


def pick_entry(entries: Sequence[str], wanted: Sequence[str]) -> str | None:
    """The first of ``wanted`` among ``entries`` (e.g. the camera's name for 'BGR8')."""
    for name in wanted:
        if name in entries:
            return name
    return None
