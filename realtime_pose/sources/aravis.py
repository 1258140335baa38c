"""GigE Vision and USB3 Vision cameras through Aravis (Linux; ``pip install
'realtime-pose[aravis]'`` plus the system's Aravis: Debian ``gir1.2-aravis-0.8``).

Aravis stamps every buffer with the camera's timestamp and frame id (GigE Vision block ids are
16 bit and skip 0) and reports each buffer's status (``missing-packets``, ``timeout``, ...). Its
in-process fake camera (``device: Fake_1``, ``interfaces: [Fake]``) and its fake GigE Vision
camera (``Aravis.GvFakeCamera`` on 127.0.0.1, inside a private network namespace) are what the
tests use; both stamp buffers with the host's real-time clock. The fake cameras emulate software
triggers only: with a line trigger they run free.

``interfaces`` limits which Aravis interfaces are searched: ``[Fake]`` never touches the
network; the default (GigEVision, USB3Vision) sends GigE Vision discovery on every interface.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from pydantic import Field

from realtime_pose.cameras.common import CameraOptions, Grabbed, MachineVisionSource
from realtime_pose.cameras.limits import CameraOptionError, NodeLimits, check, pick_entry
from realtime_pose.cameras.pixels import channels
from realtime_pose.geometry import Size
from realtime_pose.plugins import SOURCES
from realtime_pose.sources.base import SourceError

log = logging.getLogger(__name__)

INTERFACES = ("Fake", "GigEVision", "USB3Vision")
_STATUS = {
    "success": "ok",
    "missing-packets": "missing_packets",
    "timeout": "incomplete",
    "size-mismatch": "failed",
    "wrong-packet-id": "failed",
    "aborted": "failed",
    "cleared": "failed",
    "filling": "incomplete",
    "unknown": "failed",
}


class AravisOptions(CameraOptions):
    """``source: {kind: aravis, ...}``."""

    interfaces: list[str] | None = Field(
        default=None,
        description="Aravis interfaces to search (Fake, GigEVision, USB3Vision); None: Aravis' "
        "default (GigEVision and USB3Vision; GigE Vision discovery broadcasts)",
    )


def _aravis() -> Any:
    try:
        import gi

        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis
    except (ImportError, ValueError) as exc:
        raise SourceError(
            "the aravis source needs Aravis 0.8 and PyGObject: apt-get install gir1.2-aravis-0.8 "
            f"and pip install 'realtime-pose[aravis]' ({exc})"
        ) from exc
    return Aravis


def _select_interfaces(aravis: Any, interfaces: list[str] | None) -> None:
    if interfaces is None:
        return
    unknown = sorted(set(interfaces) - set(INTERFACES))
    if unknown:
        raise SourceError(f"aravis: unknown interface(s) {unknown}; known: {list(INTERFACES)}")
    for name in INTERFACES:
        (aravis.enable_interface if name in interfaces else aravis.disable_interface)(name)


@SOURCES.register("aravis")
class AravisSource(MachineVisionSource):
    """A GenICam camera through Aravis; options are :class:`AravisOptions`.

    ``camera`` is the open ``Aravis.Camera`` and ``stream`` its ``Aravis.Stream``.
    """

    Options = AravisOptions
    backend = "aravis"
    frame_id_bits = 16
    frame_id_skips_zero = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.camera: Any = None
        self.stream: Any = None
        self._pixel_format = "Mono8"
        self._shape: tuple[int, ...] = ()
        self._dtype: type = np.uint8
        self._protocol = ""

    # -- discovery ---------------------------------------------------------------------------
    @classmethod
    def discover(cls, options: AravisOptions) -> list[dict[str, Any]]:
        """The cameras the chosen Aravis interfaces see, with their key limits."""
        aravis = _aravis()
        _select_interfaces(aravis, options.interfaces)
        aravis.update_device_list()
        found = []
        for i in range(aravis.get_n_devices()):
            device_id = aravis.get_device_id(i)
            entry: dict[str, Any] = {
                "backend": "aravis",
                "model": aravis.get_device_model(i),
                "serial": aravis.get_device_serial_nbr(i),
                "interface": aravis.get_device_protocol(i),
                "vendor": aravis.get_device_vendor(i),
                "device": device_id,
            }
            try:
                entry["limits"] = _key_limits(aravis.Camera.new(device_id))
            except Exception as exc:
                entry["limits_error"] = str(exc)
            found.append(entry)
        return found

    # -- MachineVisionSource ---------------------------------------------------------------
    def _default_clock(self) -> str:
        # Aravis' fake cameras (in-process and GigE) stamp buffers with g_get_real_time()
        return "host_realtime" if self.camera.get_model_name() == "Fake" else "device"

    def _open_camera(self) -> str:
        aravis = _aravis()
        _select_interfaces(aravis, self.options.interfaces)
        device = self.options.device
        if device is None:  # the first camera the chosen interfaces see
            aravis.update_device_list()
            if aravis.get_n_devices() == 0:
                raise SourceError(
                    f"aravis: no camera found (interfaces {self.options.interfaces or 'default'})"
                )
            device = aravis.get_device_id(0)
        try:
            self.camera = aravis.Camera.new(device)
        except Exception as exc:
            raise SourceError(
                f"aravis: cannot open {self.options.device or 'the first camera'} "
                f"(interfaces {self.options.interfaces or 'default'}): {exc}"
            ) from exc
        self._protocol = "gige" if self.camera.is_gv_device() else "other"
        return str(self.camera.get_device_serial_number() or self.camera.get_device_id())

    def _limits(self, feature: str, unit: str = "") -> NodeLimits:
        cam = self.camera
        node = cam.get_device().get_feature(feature)
        kind = type(node).__name__
        if "Enumeration" in kind:
            return NodeLimits(
                feature, entries=tuple(cam.dup_available_enumerations_as_strings(feature))
            )
        if "Float" in kind or ("Converter" in kind and "Int" not in kind):
            low, high = cam.get_float_bounds(feature)
            return NodeLimits(feature, low, high, None, unit=unit)
        low, high = cam.get_integer_bounds(feature)
        return NodeLimits(feature, low, high, cam.get_integer_increment(feature), unit=unit)

    def _feature(self, *names: str) -> str | None:
        for name in names:
            if self.camera.is_feature_available(name):
                return name
        return None

    def _set(self, option: str, value: Any, *names: str, unit: str = "") -> None:
        feature = self._feature(*names)
        if feature is None:
            raise CameraOptionError(
                f"{self.source_id}: option {option!r} cannot be set: the camera has no "
                f"{' / '.join(names)}"
            )
        limits = self._limits(feature, unit if feature in names[:1] else "")
        if limits.entries is not None:
            value = pick_entry(limits.entries, [str(value), f"{value}Packed"]) or value
        check(self.source_id, option, value, limits)
        try:
            if limits.entries is not None:
                self.camera.set_string(feature, str(value))
            elif limits.increment is not None:
                self.camera.set_integer(feature, int(value))
            else:
                self.camera.set_float(feature, float(value))
        except Exception as exc:
            raise SourceError(
                f"{self.source_id}: setting {feature} = {value} failed: {exc}"
            ) from exc

    def _configure(self) -> tuple[Size, float]:
        o, cam = self.options, self.camera
        if o.pixel_format is not None:
            self._set("pixel_format", o.pixel_format, "PixelFormat")
        if o.binning is not None:
            self._set("binning", o.binning, "BinningHorizontal")
            self._set("binning", o.binning, "BinningVertical")
        if o.width is not None or o.height is not None:
            for name in ("OffsetX", "OffsetY"):
                if self._feature(name):
                    cam.set_integer(name, 0)
            for option, feature in (
                ("width", "Width"),
                ("height", "Height"),
                ("offset_x", "OffsetX"),
                ("offset_y", "OffsetY"),
            ):
                value = getattr(o, option)
                if value is not None:
                    self._set(option, value, feature, unit="px")
        if o.exposure_us is not None:
            if self._feature("ExposureAuto"):
                cam.set_string("ExposureAuto", "Off")
            self._set("exposure_us", o.exposure_us, "ExposureTime", "ExposureTimeAbs", unit="µs")
        if o.gain is not None:
            if self._feature("GainAuto"):
                cam.set_string("GainAuto", "Off")
            self._set("gain", o.gain, "Gain", "GainRaw")
        self._configure_trigger()
        if o.strobe_line is not None:
            self._set("strobe_line", o.strobe_line, "LineSelector")
            if self._feature("LineMode"):
                cam.set_string("LineMode", "Output")
            self._set("strobe_line", "ExposureActive", "LineSource")
        self._pixel_format = cam.get_pixel_format_as_string()
        _, _, width, height = cam.get_region()
        n = channels(self._pixel_format)
        self._shape = (height, width) if n == 1 else (height, width, n)
        self._dtype = np.uint16 if cam.get_payload() >= 2 * width * height * n else np.uint8
        fps = 0.0
        if o.trigger == "off":
            fps = float(cam.get_frame_rate()) if cam.is_frame_rate_available() else 0.0
        elif o.trigger == "software":
            fps = o.fps or 0.0
        return Size(width, height), fps

    def _configure_trigger(self) -> None:
        o, cam = self.options, self.camera
        if o.trigger == "off":
            if o.fps is not None:
                if self._feature("AcquisitionFrameRateEnable"):
                    cam.set_boolean("AcquisitionFrameRateEnable", True)
                self._set(
                    "fps", o.fps, "AcquisitionFrameRate", "AcquisitionFrameRateAbs", unit="Hz"
                )
            if self._feature("TriggerMode"):
                cam.clear_triggers()
            return
        source = "Software" if o.trigger == "software" else o.trigger_line
        option = "trigger_line" if o.trigger == "line" else "trigger"
        if self._feature("TriggerSource"):
            check(self.source_id, option, source, self._limits("TriggerSource"))
        try:
            cam.set_trigger(source)
        except Exception as exc:
            raise SourceError(f"{self.source_id}: trigger on {source} failed: {exc}") from exc
        if o.trigger == "line" and self._feature("TriggerActivation"):
            self._set("trigger_activation", o.trigger_activation, "TriggerActivation")

    def _start(self) -> None:
        aravis = _aravis()
        cam = self.camera
        self.stream = cam.create_stream(None, None)
        if self.stream is None:
            raise SourceError(f"{self.source_id}: Aravis could not create a stream")
        payload = cam.get_payload()
        for _ in range(self.options.buffers):
            self.stream.push_buffer(aravis.Buffer.new_allocate(payload))
        cam.start_acquisition()

    def _software_trigger(self) -> None:
        self.camera.software_trigger()

    def _grab(self, timeout_s: float) -> Grabbed | None:
        buffer = self.stream.timeout_pop_buffer(max(1, round(timeout_s * 1e6)))
        t_arrival = time.monotonic_ns()
        if buffer is None:
            return None
        nick = buffer.get_status().value_nick
        try:
            status = _STATUS.get(nick, "failed")
            frame_id = int(buffer.get_frame_id())
            if status != "ok":
                return Grabbed(status, t_arrival, frame_id=frame_id, message=status)
            data = buffer.get_data()  # a copy (bytes) of the image
            image = np.frombuffer(data, self._dtype, count=int(np.prod(self._shape)))
            image = image.reshape(self._shape)
            t_camera = int(buffer.get_timestamp()) or None
            return Grabbed("ok", t_arrival, image, self._pixel_format, frame_id, t_camera)
        finally:
            if nick == "size-mismatch":  # a buffer of the wrong size fails every time
                buffer = _aravis().Buffer.new_allocate(self.camera.get_payload())
            self.stream.push_buffer(buffer)

    def counters(self) -> dict[str, object]:
        out = super().counters()
        stream = self.stream
        if stream is not None:
            try:
                out["stream_underruns"] = int(stream.get_info_uint64_by_name("n_underruns"))
            except Exception:  # diagnostics only
                log.debug("no n_underruns statistic", exc_info=True)
        return out

    def _stop(self) -> None:
        if self.camera is not None and self.stream is not None:
            try:
                self.camera.stop_acquisition()
            except Exception:
                log.debug("stop_acquisition failed", exc_info=True)
        self.stream = None

    def _close_camera(self) -> None:
        self.camera = None


def _key_limits(camera: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    width, height = camera.get_sensor_size()
    out["sensor"] = f"{width}x{height}"
    if camera.is_exposure_time_available():
        out["exposure_us"] = list(camera.get_exposure_time_bounds())
    if camera.is_gain_available():
        out["gain"] = list(camera.get_gain_bounds())
    if camera.is_frame_rate_available():
        out["fps"] = list(camera.get_frame_rate_bounds())
    if camera.is_binning_available():
        out["binning"] = list(camera.get_x_binning_bounds())
    out["pixel_format"] = list(camera.dup_available_pixel_formats_as_strings())
    out["triggers"] = list(camera.dup_available_trigger_sources())
    return out
