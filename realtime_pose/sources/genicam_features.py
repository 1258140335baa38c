"""The standard GenICam (SFNC) features every camera source sets, written once.

Cameras name their features by the GenICam Standard Features Naming Convention: ``Width``,
``ExposureTime`` (older GigE: ``ExposureTimeAbs``), ``TriggerSelector``/``TriggerMode``/
``TriggerSource``, ``LineSelector``/``LineSource``, ... Only how a feature is read and written
differs between SDKs; a backend wraps its node map in a small :class:`FeatureAccess` and
:func:`apply_camera_options` does the rest: each option checked against the camera's limits
(:mod:`~realtime_pose.sources.camera_limits`) before it is written, in an order the camera accepts
(offsets to 0 before a larger region, auto modes off before a manual value).
"""

from __future__ import annotations

from typing import Any, Protocol

from realtime_pose.sources.camera_limits import CameraOptionError, NodeLimits, check, pick_entry
from realtime_pose.sources.machine_vision import CameraOptions


class FeatureAccess(Protocol):
    """One camera's GenICam features through its SDK."""

    def available(self, name: str) -> bool:
        """Whether the camera has the feature and it can be written now."""
        ...

    def limits(self, name: str, unit: str = "") -> NodeLimits:
        """The feature's limits (numbers, or enumeration entries)."""
        ...

    def write(self, name: str, value: Any) -> None:
        """Write a value of the feature's type (a symbolic name for an enumeration)."""
        ...


def set_feature(
    access: FeatureAccess, source: str, option: str, value: Any, *names: str, unit: str = ""
) -> str:
    """Write ``value`` to the first of ``names`` the camera has, after checking its limits.

    ``unit`` describes the values (not of a ``...Raw`` alternative such as ``GainRaw``, which
    counts in the camera's own steps). Returns the feature written.

    Raises
    ------
    CameraOptionError
        The camera has none of ``names``, or ``value`` is outside its limits; names the option.
    """
    feature = next((name for name in names if access.available(name)), None)
    if feature is None:
        raise CameraOptionError(
            f"{source}: option {option!r} cannot be set: the camera has no writable "
            f"{' / '.join(names)}"
        )
    limits = access.limits(feature, "" if feature.endswith("Raw") else unit)
    if limits.entries is not None:  # pylon spells BGR8 as BGR8Packed
        value = pick_entry(limits.entries, [str(value), f"{value}Packed"]) or value
    check(source, option, value, limits)
    access.write(feature, value)
    return feature


def write_if_available(access: FeatureAccess, name: str, value: Any) -> None:
    """Write an auxiliary feature (an auto mode off, an enable flag) where the camera has it."""
    if access.available(name):
        access.write(name, value)


def apply_camera_options(access: FeatureAccess, source: str, o: CameraOptions) -> None:
    """Set the pixel format, binning, region, exposure, gain, frame rate, trigger and strobe
    line of ``o`` (``None`` leaves the camera's value)."""
    if o.pixel_format is not None:
        set_feature(access, source, "pixel_format", o.pixel_format, "PixelFormat")
    if o.binning is not None:
        set_feature(access, source, "binning", o.binning, "BinningHorizontal")
        set_feature(access, source, "binning", o.binning, "BinningVertical")
    if o.width is not None or o.height is not None:
        write_if_available(access, "OffsetX", 0)
        write_if_available(access, "OffsetY", 0)
        for option, feature in (
            ("width", "Width"),
            ("height", "Height"),
            ("offset_x", "OffsetX"),
            ("offset_y", "OffsetY"),
        ):
            value = getattr(o, option)
            if value is not None:
                set_feature(access, source, option, value, feature, unit="px")
    if o.exposure_us is not None:
        write_if_available(access, "ExposureAuto", "Off")
        exposure = ("ExposureTime", "ExposureTimeAbs")
        set_feature(access, source, "exposure_us", o.exposure_us, *exposure, unit="µs")
    if o.gain is not None:
        write_if_available(access, "GainAuto", "Off")
        set_feature(access, source, "gain", o.gain, "Gain", "GainRaw", unit="dB")
    apply_trigger(access, source, o)
    if o.strobe_line is not None:
        set_feature(access, source, "strobe_line", o.strobe_line, "LineSelector")
        write_if_available(access, "LineMode", "Output")
        set_feature(access, source, "strobe_line", "ExposureActive", "LineSource")


def apply_trigger(access: FeatureAccess, source: str, o: CameraOptions) -> None:
    """Free-running at ``o.fps``, or a frame-start trigger from software or a line."""
    if access.available("TriggerSelector"):
        set_feature(access, source, "trigger", "FrameStart", "TriggerSelector")
    if o.trigger == "off":
        write_if_available(access, "TriggerMode", "Off")
        if o.fps is not None:
            write_if_available(access, "AcquisitionFrameRateEnable", True)
            rate = ("AcquisitionFrameRate", "AcquisitionFrameRateAbs")
            set_feature(access, source, "fps", o.fps, *rate, unit="Hz")
        return
    set_feature(access, source, "trigger", "On", "TriggerMode")
    if o.trigger == "software":
        set_feature(access, source, "trigger", "Software", "TriggerSource")
        return
    set_feature(access, source, "trigger_line", o.trigger_line, "TriggerSource")
    if access.available("TriggerActivation"):
        set_feature(access, source, "trigger_activation", o.trigger_activation, "TriggerActivation")
