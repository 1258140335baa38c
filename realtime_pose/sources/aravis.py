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

from realtime_pose.geometry import Size
from realtime_pose.plugins import SOURCES
from realtime_pose.sources.base import SourceError
from realtime_pose.sources.camera_limits import NodeLimits
from realtime_pose.sources.genicam_features import apply_camera_options
from realtime_pose.sources.machine_vision import CameraOptions, Grabbed, MachineVisionSource
from realtime_pose.sources.pixel_formats import channels

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


class _AravisFeatures:
    """:class:`~realtime_pose.sources.genicam_features.FeatureAccess` over an ``Aravis.Camera``."""

    def __init__(self, camera: Any) -> None:
        self.camera = camera

    def _kind(self, name: str) -> str:
        return type(self.camera.get_device().get_feature(name)).__name__

    def available(self, name: str) -> bool:
        return bool(self.camera.is_feature_available(name))

    def limits(self, name: str, unit: str = "") -> NodeLimits:
        cam, kind = self.camera, self._kind(name)
        if "Enumeration" in kind:
            return NodeLimits(name, entries=tuple(cam.dup_available_enumerations_as_strings(name)))
        if "Float" in kind or ("Converter" in kind and "Int" not in kind):
            low, high = cam.get_float_bounds(name)
            return NodeLimits(name, low, high, None, unit=unit)
        if "Integer" in kind or "Int" in kind:
            low, high = cam.get_integer_bounds(name)
            return NodeLimits(name, low, high, cam.get_integer_increment(name), unit=unit)
        return NodeLimits(name)  # a boolean or string: nothing to check

    def write(self, name: str, value: Any) -> None:
        cam, kind = self.camera, self._kind(name)
        try:
            if isinstance(value, str):
                cam.set_string(name, value)
            elif isinstance(value, bool) or "Boolean" in kind:
                cam.set_boolean(name, bool(value))
            elif "Float" in kind or ("Converter" in kind and "Int" not in kind):
                cam.set_float(name, float(value))
            else:
                cam.set_integer(name, int(value))
        except Exception as exc:
            raise SourceError(f"aravis: setting {name} = {value} failed: {exc}") from exc


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

    def _configure(self) -> tuple[Size, float]:
        o, cam = self.options, self.camera
        apply_camera_options(_AravisFeatures(cam), self.source_id, o)
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
