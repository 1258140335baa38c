"""Basler cameras through pypylon (``pip install 'realtime-pose[basler]'``).

Any Basler USB3 Vision or GigE Vision camera, or pylon's camera emulator (``PYLON_CAMEMU=N``
in the environment, ``device_class: BaslerCamEmu``), which the tests use: it plays a folder of
PNG files (``image_folder``), honours software triggers and can be told to fail buffers.

Camera time: pylon's grab results carry the camera's ``TimeStamp`` on real cameras; the
emulator gives 0 there and stamps only its *ExposureEnd events*, with the host's monotonic
clock. The source turns ExposureEnd events on where the camera has them and uses the event's
timestamp (the end of the exposure) for the frame with the same id, else the grab result's.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pydantic import Field

from realtime_pose.geometry import Size
from realtime_pose.plugins import SOURCES
from realtime_pose.sources.base import SourceError
from realtime_pose.sources.camera_limits import NodeLimits
from realtime_pose.sources.genicam_features import apply_camera_options, set_feature
from realtime_pose.sources.machine_vision import CameraOptions, Grabbed, MachineVisionSource

log = logging.getLogger(__name__)

EMULATOR = "BaslerCamEmu"
_IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")
_EVENT_ID = 100


class BaslerOptions(CameraOptions):
    """``source: {kind: basler, ...}``."""

    device_class: str | None = Field(
        default=None,
        description="only this pylon transport layer (BaslerUsb, BaslerGigE, BaslerCamEmu); "
        "None: every transport layer (GigE Vision discovery broadcasts on every interface)",
    )
    image_folder: Path | None = Field(
        default=None, description="emulator: play the images of this folder (sorted by name)"
    )
    test_image: str | None = Field(
        default=None, description="emulator: TestImageSelector (Off, Testimage1, Testimage2)"
    )
    exposure_end_events: bool = Field(
        default=True, description="timestamp frames with ExposureEnd events where available"
    )


def _pylon() -> Any:
    try:
        from pypylon import pylon
    except ImportError as exc:
        raise SourceError(
            "the basler source needs pypylon: pip install 'realtime-pose[basler]'"
        ) from exc
    return pylon


def _transport(pylon: Any, device_class: str | None) -> Any:
    """The transport layer of ``device_class``, or the factory (every transport layer)."""
    factory = pylon.TlFactory.GetInstance()
    if device_class is None:
        return factory
    tl = factory.CreateTl(device_class)
    if tl is None:
        raise SourceError(f"basler: pylon has no transport layer {device_class!r}")
    return tl


def _limits(node: Any, feature: str, unit: str = "") -> NodeLimits:
    if hasattr(node, "GetEntries"):
        from pypylon import genicam

        entries = tuple(e.GetSymbolic() for e in node.GetEntries() if genicam.IsAvailable(e))
        return NodeLimits(feature, entries=entries)
    has_inc = hasattr(node, "GetInc") and (not hasattr(node, "HasInc") or node.HasInc())
    inc = node.GetInc() if has_inc else None
    return NodeLimits(feature, node.GetMin(), node.GetMax(), inc, unit=unit)


class _PylonFeatures:
    """:class:`~realtime_pose.sources.genicam_features.FeatureAccess` over a pylon node map."""

    def __init__(self, nodemap: Any) -> None:
        self.nodemap = nodemap

    def available(self, name: str) -> bool:
        from pypylon import genicam

        node = self.nodemap.GetNode(name)
        return node is not None and genicam.IsWritable(node)

    def limits(self, name: str, unit: str = "") -> NodeLimits:
        node = self.nodemap.GetNode(name)
        if not hasattr(node, "GetMin") and not hasattr(node, "GetEntries"):
            return NodeLimits(name, entries=None)  # a string or boolean: nothing to check
        return _limits(node, name, unit)

    def write(self, name: str, value: Any) -> None:
        node = self.nodemap.GetNode(name)
        if isinstance(value, str):
            node.FromString(value)
        elif isinstance(value, bool) or type(node).__name__ == "BooleanParameter":
            node.SetValue(bool(value))
        elif type(node).__name__ == "IntegerParameter":
            node.SetValue(int(value))
        else:
            node.SetValue(float(value))

    def read(self, *names: str) -> Any:
        """The first readable of ``names`` (``None`` if none)."""
        from pypylon import genicam

        for name in names:
            node = self.nodemap.GetNode(name)
            if node is not None and genicam.IsReadable(node):
                return node.GetValue()
        return None


@SOURCES.register("basler")
class BaslerSource(MachineVisionSource):
    """A Basler camera (or pylon's emulator) through pypylon.

    Options are :class:`BaslerOptions`; each is checked against the camera's node limits when
    the source opens (:class:`~realtime_pose.sources.camera_limits.CameraOptionError` names the
    option and the range). ``camera`` is the open ``pylon.InstantCamera`` (emulator features such as
    ``ForceFailedBuffer`` are reached through it).
    """

    Options = BaslerOptions
    backend = "basler"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.camera: Any = None
        self._events: OrderedDict[int, int] = OrderedDict()
        self._events_lock = threading.Lock()
        self._event_handler: Any = None
        self._tick_ns = 1.0
        self._pixel_format = "Mono8"
        self._image_dir: str | None = None
        self.event_stamped = 0
        """Frames whose time came from an ExposureEnd event."""

    # -- discovery ---------------------------------------------------------------------------
    @classmethod
    def discover(cls, options: BaslerOptions) -> list[dict[str, Any]]:
        """The cameras ``options.device_class`` (or every transport layer) sees, with their key
        limits (each camera is opened briefly; one in use is listed without them)."""
        pylon = _pylon()
        tl = _transport(pylon, options.device_class)
        found = []
        for info in tl.EnumerateDevices():
            entry: dict[str, Any] = {
                "backend": "basler",
                "model": info.GetModelName(),
                "serial": info.GetSerialNumber(),
                "interface": info.GetDeviceClass(),
                "vendor": info.GetVendorName(),
            }
            try:
                camera = pylon.InstantCamera(tl.CreateDevice(info))
                camera.Open()
                try:
                    entry["limits"] = _key_limits(camera)
                finally:
                    camera.Close()
            except Exception as exc:
                entry["limits_error"] = str(exc)
            found.append(entry)
        return found

    # -- MachineVisionSource ---------------------------------------------------------------
    def _default_clock(self) -> str:
        return "host_monotonic" if self.options.device_class == EMULATOR else "device"

    def _open_camera(self) -> str:
        pylon = _pylon()
        tl = _transport(pylon, self.options.device_class)
        devices = list(tl.EnumerateDevices())
        if self.options.device is not None:
            devices = [d for d in devices if self.options.device in (d.GetSerialNumber(),)]
        if not devices:
            where = self.options.device_class or "any transport layer"
            hint = " (set PYLON_CAMEMU=1 for the emulator)" if where == EMULATOR else ""
            raise SourceError(
                f"basler: no camera {self.options.device or ''} found on {where}{hint}".replace(
                    "  ", " "
                )
            )
        try:
            camera = pylon.InstantCamera(tl.CreateDevice(devices[0]))
        except Exception as exc:
            name = devices[0].GetFriendlyName()
            raise SourceError(f"basler: cannot create {name}: {exc}") from exc
        self.camera = camera
        if self.options.exposure_end_events:
            self._register_events(pylon, camera)
        try:
            camera.Open()
        except Exception as exc:
            name = devices[0].GetFriendlyName()
            raise SourceError(f"basler: cannot open {name}: {exc}") from exc
        return devices[0].GetSerialNumber()

    def _register_events(self, pylon: Any, camera: Any) -> None:
        source = self

        class ExposureEnd(pylon.CameraEventHandler):
            def OnCameraEvent(self, cam: Any, user_id: int, node: Any) -> None:  # noqa: N802
                try:
                    frame_id = int(cam.EventExposureEndFrameID.Value)
                    stamp = int(cam.EventExposureEndTimestamp.Value)
                except Exception:  # a partial event must not kill pylon's thread
                    return
                with source._events_lock:
                    source._events[frame_id] = stamp
                    while len(source._events) > 1024:
                        source._events.popitem(last=False)

        self._event_handler = ExposureEnd()
        camera.GrabCameraEvents.Value = True
        camera.RegisterCameraEventHandler(
            self._event_handler,
            "EventExposureEndData",
            _EVENT_ID,
            pylon.RegistrationMode_ReplaceAll,
            pylon.Cleanup_None,
        )

    def _configure(self) -> tuple[Size, float]:
        o, cam = self.options, self.camera
        features = _PylonFeatures(cam.GetNodeMap())
        if o.image_folder is not None:
            self._use_image_folder(features, o.image_folder)
        if o.test_image is not None:
            set_feature(features, self.source_id, "test_image", o.test_image, "TestImageSelector")
        apply_camera_options(features, self.source_id, o)
        self._enable_events()
        tick_hz = features.read("GevTimestampTickFrequency")
        self._tick_ns = 1e9 / tick_hz if tick_hz else 1.0
        self._pixel_format = str(cam.PixelFormat.Value)
        cam.MaxNumBuffer.Value = o.buffers
        fps = 0.0
        if o.trigger == "software":
            fps = o.fps or 0.0
        elif o.trigger == "off":
            fps = float(features.read("ResultingFrameRate", "ResultingFrameRateAbs") or o.fps or 0)
        return Size(int(cam.Width.Value), int(cam.Height.Value)), fps

    def _enable_events(self) -> None:
        if not self.options.exposure_end_events:
            return
        cam = self.camera
        try:
            cam.EventSelector.Value = "ExposureEnd"
            cam.EventNotification.Value = "On"
        except Exception as exc:  # a camera without the event: the grab result's stamp
            log.info("%s: no ExposureEnd events (%s)", self.source_id, exc)

    def _use_image_folder(self, features: _PylonFeatures, folder: Path) -> None:
        """Point the emulator at a folder holding only the images (it reads every file)."""
        folder = Path(folder)
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not images:
            raise SourceError(f"{self.source_id}: no image files in image_folder {folder}")
        self._image_dir = tempfile.mkdtemp(prefix="basler-images-")
        for i, path in enumerate(images):
            os.symlink(path.resolve(), Path(self._image_dir) / f"{i:06d}{path.suffix.lower()}")
        set_feature(features, self.source_id, "test_image", "Off", "TestImageSelector")
        set_feature(features, self.source_id, "image_folder", self._image_dir, "ImageFilename")
        set_feature(features, self.source_id, "image_folder", "On", "ImageFileMode")

    def _start(self) -> None:
        pylon = _pylon()
        with self._events_lock:
            self._events.clear()
        self.camera.StartGrabbing(pylon.GrabStrategy_OneByOne)

    def _software_trigger(self) -> None:
        pylon = _pylon()
        timeout_ms = round(self.options.trigger_timeout_s * 1000)
        if self.camera.WaitForFrameTriggerReady(timeout_ms, pylon.TimeoutHandling_Return):
            self.camera.TriggerSoftware.Execute()

    def _grab(self, timeout_s: float) -> Grabbed | None:
        pylon = _pylon()
        try:
            result = self.camera.RetrieveResult(
                max(1, round(timeout_s * 1000)), pylon.TimeoutHandling_Return
            )
        except Exception as exc:
            raise SourceError(f"{self.source_id}: grabbing failed: {exc}") from exc
        t_arrival = time.monotonic_ns()
        if result is None or not result.IsValid():
            return None
        try:
            frame_id = int(result.BlockID)
            if not result.GrabSucceeded():
                text = str(result.ErrorDescription)
                status = "incomplete" if "incomplete" in text.lower() else "failed"
                return Grabbed(status, t_arrival, frame_id=frame_id, message=text)
            image = result.GetArray()
            t_camera = self._camera_time(frame_id, int(result.TimeStamp))
            return Grabbed("ok", t_arrival, image, self._pixel_format, frame_id, t_camera)
        finally:
            result.Release()

    def _camera_time(self, frame_id: int, stamp: int) -> int | None:
        with self._events_lock:
            event = self._events.pop(frame_id, None)
        if event is not None:
            self.event_stamped += 1
            return round(event * self._tick_ns)
        return round(stamp * self._tick_ns) if stamp else None

    def _stop(self) -> None:
        if self.camera is not None and self.camera.IsGrabbing():
            self.camera.StopGrabbing()

    def _close_camera(self) -> None:
        camera, self.camera = self.camera, None
        if camera is not None:
            try:
                if self._event_handler is not None:
                    camera.DeregisterCameraEventHandler(self._event_handler, "EventExposureEndData")
            except Exception:
                log.debug("deregistering the event handler failed", exc_info=True)
            camera.Close()
            camera.DestroyDevice()
        if self._image_dir is not None:
            shutil.rmtree(self._image_dir, ignore_errors=True)
            self._image_dir = None


def _key_limits(camera: Any) -> dict[str, Any]:
    """Sensor size, exposure, frame rate and pixel formats of an open camera, for listings."""
    from pypylon import genicam

    nodemap = camera.GetNodeMap()
    out: dict[str, Any] = {}
    for key, names in {
        "width": ("Width",),
        "height": ("Height",),
        "exposure_us": ("ExposureTime", "ExposureTimeAbs"),
        "gain": ("Gain",),
        "fps": ("AcquisitionFrameRate", "AcquisitionFrameRateAbs"),
        "binning": ("BinningHorizontal",),
        "pixel_format": ("PixelFormat",),
    }.items():
        for name in names:
            node = nodemap.GetNode(name)
            if node is not None and genicam.IsAvailable(node):
                limits = _limits(node, name)
                out[key] = list(limits.entries or ()) or [limits.minimum, limits.maximum]
                break
    return out
