"""Any GenICam GenTL camera (FLIR, Allied Vision, IDS, Basler, ...) through harvesters and the
vendor's GenTL producer (``.cti``) (``pip install 'realtime-pose[genicam]'``).

The ``genicam`` package ships ``viky.cti``, a virtual GenTL camera (three devices, 1-200 FPS,
Mono8/RGBa8, no trigger, no timestamps) that the tests use: ``cti: viky`` names it. A real
producer gives frame ids and, for most cameras, buffer timestamps (ns on the camera's clock).

harvesters' fetch holds Python's GIL while it waits (measured: a 2 kHz thread ran 9 % of its
iterations during 0.4 s of waits), so the source polls the stream's count of filled buffers
(``poll_us``) and sleeps in between, and fetches only a buffer that is already there.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
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

VIKY = "viky"


class GenicamOptions(CameraOptions):
    """``source: {kind: genicam, cti: [...], ...}``."""

    cti: list[str] = Field(
        default_factory=lambda: [VIKY],
        min_length=1,
        description="GenTL producer files (.cti); 'viky' is the genicam package's virtual camera",
    )
    poll_us: int = Field(
        default=200,
        ge=0,
        description="wait for a buffer by polling the stream this often (µs), sleeping in "
        "between: harvesters' blocking fetch holds Python's GIL, which stalls the live loop's "
        "thread for the whole wait; 0: use the blocking fetch",
    )


def _resolve_cti(names: list[str]) -> list[str]:
    out = []
    for name in names:
        if name == VIKY:
            try:
                import genicam
            except ImportError as exc:
                raise SourceError(
                    "cti 'viky' needs the genicam package: pip install 'realtime-pose[genicam]'"
                ) from exc
            path = Path(genicam.__file__).parent / "viky.cti"
        else:
            path = Path(name)
        if not path.is_file():
            raise SourceError(f"genicam: GenTL producer {path} does not exist")
        out.append(str(path))
    return out


def _harvester(cti: list[str]) -> Any:
    try:
        from harvesters.core import Harvester
    except ImportError as exc:
        raise SourceError(
            "the genicam source needs harvesters: pip install 'realtime-pose[genicam]'"
        ) from exc
    harvester = Harvester()
    for path in _resolve_cti(cti):
        harvester.add_file(path)
    harvester.update()
    return harvester


def _limits(node: Any, feature: str, unit: str = "") -> NodeLimits:
    if hasattr(node, "symbolics"):
        return NodeLimits(feature, entries=tuple(node.symbolics))
    inc = getattr(node, "inc", None) if type(node).__name__ == "IInteger" else None
    return NodeLimits(feature, node.min, node.max, inc, unit=unit)


class _HarvesterFeatures:
    """:class:`~realtime_pose.sources.genicam_features.FeatureAccess` over a harvesters node map."""

    def __init__(self, nodemap: Any) -> None:
        self.nodemap = nodemap

    def available(self, name: str) -> bool:
        return bool(self.nodemap.has_node(name))

    def limits(self, name: str, unit: str = "") -> NodeLimits:
        node = getattr(self.nodemap, name)
        if not hasattr(node, "symbolics") and not hasattr(node, "min"):
            return NodeLimits(name)  # a boolean or string: nothing to check
        return _limits(node, name, unit)

    def write(self, name: str, value: Any) -> None:
        node = getattr(self.nodemap, name)
        node.value = int(value) if type(node).__name__ == "IInteger" else value


@SOURCES.register("genicam")
class GenicamSource(MachineVisionSource):
    """A GenTL camera through harvesters; options are :class:`GenicamOptions`.

    ``acquirer`` is the open ``harvesters.core.ImageAcquirer``.
    """

    Options = GenicamOptions
    backend = "genicam"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.harvester: Any = None
        self.acquirer: Any = None
        self._pixel_format = "Mono8"

    @classmethod
    def discover(cls, options: GenicamOptions) -> list[dict[str, Any]]:
        """The devices the producers in ``options.cti`` offer, with their key limits."""
        harvester = _harvester(options.cti)
        found = []
        try:
            for i, info in enumerate(harvester.device_info_list):
                entry: dict[str, Any] = {
                    "backend": "genicam",
                    "model": info.model,
                    "serial": info.serial_number,
                    "interface": info.tl_type,
                    "vendor": info.vendor,
                    "device": info.id_,
                }
                try:
                    acquirer = harvester.create(i)
                    try:
                        entry["limits"] = _key_limits(acquirer.remote_device.node_map)
                    finally:
                        acquirer.destroy()
                except Exception as exc:
                    entry["limits_error"] = str(exc)
                found.append(entry)
        finally:
            harvester.reset()
        return found

    def _open_camera(self) -> str:
        self.harvester = _harvester(self.options.cti)
        infos = self.harvester.device_info_list
        wanted = self.options.device
        index = next(
            (
                i
                for i, d in enumerate(infos)
                if wanted is None or wanted in (d.serial_number, d.id_)
            ),
            None,
        )
        if index is None:
            raise SourceError(
                f"genicam: no camera {wanted or ''} among {[d.id_ for d in infos]} "
                f"(producers {self.options.cti})"
            )
        try:
            self.acquirer = self.harvester.create(index)
        except Exception as exc:
            raise SourceError(f"genicam: cannot open {infos[index].id_}: {exc}") from exc
        return str(infos[index].serial_number or infos[index].id_)

    def _configure(self) -> tuple[Size, float]:
        o = self.options
        nodemap = self.acquirer.remote_device.node_map
        apply_camera_options(_HarvesterFeatures(nodemap), self.source_id, o)
        self._pixel_format = str(nodemap.PixelFormat.value)
        self.acquirer.num_buffers = o.buffers
        fps = 0.0
        if o.trigger == "off" and nodemap.has_node("AcquisitionFrameRate"):
            fps = float(nodemap.AcquisitionFrameRate.value)
        elif o.trigger == "software":
            fps = o.fps or 0.0
        return Size(int(nodemap.Width.value), int(nodemap.Height.value)), fps

    def _start(self) -> None:
        self.acquirer.start()

    def _software_trigger(self) -> None:
        self.acquirer.remote_device.node_map.TriggerSoftware.execute()

    def _wait_for_buffer(self, timeout_s: float) -> bool:
        """Poll until the stream holds a filled buffer, releasing the GIL between polls."""
        stream = self.acquirer.data_streams[0].module
        deadline = time.monotonic() + timeout_s
        poll_s = self.options.poll_us / 1e6
        while stream.num_awaiting_delivery == 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        return True

    def _grab(self, timeout_s: float) -> Grabbed | None:
        if self.options.poll_us > 0:
            if not self._wait_for_buffer(timeout_s):
                return None
            timeout_s = 0.1  # a buffer is ready: the fetch returns at once
        buffer = self.acquirer.try_fetch(timeout=max(timeout_s, 0.001))
        t_arrival = time.monotonic_ns()
        if buffer is None:
            return None
        try:
            module = buffer.module
            frame_id = int(module.frame_id)
            if not module.is_complete():
                return Grabbed("incomplete", t_arrival, frame_id=frame_id)
            component = buffer.payload.components[0]
            n = channels(component.data_format)
            shape = (component.height, component.width) + ((n,) if n > 1 else ())
            image = np.array(component.data, copy=True).reshape(shape)
            return Grabbed(
                "ok", t_arrival, image, component.data_format, frame_id, buffer.timestamp or None
            )
        finally:
            buffer.queue()

    def _stop(self) -> None:
        if self.acquirer is not None:
            self.acquirer.stop()

    def _close_camera(self) -> None:
        acquirer, self.acquirer = self.acquirer, None
        if acquirer is not None:
            acquirer.destroy()
        harvester, self.harvester = self.harvester, None
        if harvester is not None:
            harvester.reset()


def _key_limits(nodemap: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in {
        "width": "Width",
        "height": "Height",
        "exposure_us": "ExposureTime",
        "gain": "Gain",
        "fps": "AcquisitionFrameRate",
        "pixel_format": "PixelFormat",
    }.items():
        if nodemap.has_node(name):
            limits = _limits(getattr(nodemap, name), name)
            out[key] = list(limits.entries or ()) or [limits.minimum, limits.maximum]
    return out
