"""A calibrated camera rig: each camera's intrinsics and pose, in anipose's ``calibration.toml``.

The file is the one anipose and aniposelib write (and sleap-io reads): one ``[cam_N]`` table per
camera (``name``, ``size`` ``[w, h]``, 3×3 ``matrix``, ``distortions`` ``[k1, k2, p1, p2, k3]``,
Rodrigues ``rotation``, ``translation`` in the board's unit, millimetres by convention) and an
optional ``[metadata]`` table. A calibration anipose made is accepted as it is.

The rig reads it with the standard library (``tomllib``), so a rig needs neither aniposelib nor
its dependencies; ``realtime-pose calibrate`` (:mod:`realtime_pose.offline.calibrate`) makes one
with aniposelib, and the tests check that both read the same numbers.

Conventions are OpenCV's, as anipose's: a world point ``X`` is seen by a camera at
``x_cam = R X + t``; its pixel is ``cv2.projectPoints(X, rotation, translation, matrix,
distortions)``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realtime_pose.util.safe_write import write_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True, eq=False)
class CameraModel:
    """One calibrated camera (OpenCV's pinhole model with radial and tangential distortion)."""

    name: str
    size: tuple[int, int]
    """Image ``(width, height)`` in pixels."""
    matrix: np.ndarray
    """3×3 intrinsic matrix."""
    distortions: np.ndarray
    """``[k1, k2, p1, p2, k3]``."""
    rotation: np.ndarray
    """Rodrigues vector of the world → camera rotation."""
    translation: np.ndarray
    """World → camera translation, in the calibration's unit (mm)."""

    def __post_init__(self) -> None:
        for name, shape in (
            ("matrix", (3, 3)),
            ("distortions", (5,)),
            ("rotation", (3,)),
            ("translation", (3,)),
        ):
            value = np.asarray(getattr(self, name), np.float64)
            if value.shape == (4,) and name == "distortions":
                value = np.append(value, 0.0)  # [k1, k2, p1, p2]: k3 = 0
            if value.shape != shape:
                raise ValueError(f"camera {self.name!r}: {name} must have shape {shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"camera {self.name!r}: {name} must be finite")
            object.__setattr__(self, name, value)
        w, h = (int(v) for v in self.size)
        if w <= 0 or h <= 0:
            raise ValueError(f"camera {self.name!r}: size must be two positive integers")
        object.__setattr__(self, "size", (w, h))

    @property
    def rotation_matrix(self) -> np.ndarray:
        """3×3 world → camera rotation."""
        return cv2.Rodrigues(self.rotation)[0]

    @property
    def extrinsics(self) -> np.ndarray:
        """3×4 ``[R | t]``: world → camera coordinates."""
        return np.hstack([self.rotation_matrix, self.translation[:, None]])

    @property
    def position(self) -> np.ndarray:
        """The camera centre in world coordinates (``-Rᵀ t``)."""
        return -self.rotation_matrix.T @ self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``[..., 3]`` → pixels ``[..., 2]`` (with distortion)."""
        pts = np.asarray(points, np.float64)
        flat = np.ascontiguousarray(pts.reshape(-1, 3))  # OpenCV refuses strided views
        if flat.shape[0] == 0:
            return np.zeros((*pts.shape[:-1], 2))
        px, _ = cv2.projectPoints(
            flat, self.rotation, self.translation, self.matrix, self.distortions
        )
        return px.reshape(*pts.shape[:-1], 2)

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels ``[..., 2]`` → normalised, undistorted image coordinates ``[..., 2]``."""
        px = np.asarray(pixels, np.float64)
        flat = np.ascontiguousarray(px.reshape(-1, 1, 2))
        if flat.shape[0] == 0:
            return np.zeros(px.shape)
        out = cv2.undistortPoints(flat, self.matrix, self.distortions)
        return out.reshape(px.shape)

    def to_toml_table(self) -> dict[str, Any]:
        """The camera as anipose writes it."""
        return {
            "name": self.name,
            "size": list(self.size),
            "matrix": self.matrix.tolist(),
            "distortions": self.distortions.tolist(),
            "rotation": self.rotation.tolist(),
            "translation": self.translation.tolist(),
        }


@dataclass(frozen=True, eq=False)
class CameraRig:
    """The calibrated cameras of one rig, in file order."""

    cameras: tuple[CameraModel, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if not self.cameras:
            raise ValueError("a camera rig needs at least one camera")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def names(self) -> list[str]:
        """The cameras' names, in order."""
        return [c.name for c in self.cameras]

    def camera(self, name: str) -> CameraModel:
        """The camera called ``name``."""
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise KeyError(f"no camera named {name!r} in the calibration (it has {self.names})")

    def subset(self, names: Sequence[str]) -> CameraRig:
        """The cameras called ``names``, in that order (a session's ``sources:`` order)."""
        return CameraRig(tuple(self.camera(n) for n in names), dict(self.metadata))

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``[..., 3]`` → pixels in every camera ``[C, ..., 2]``."""
        return np.stack([c.project(points) for c in self.cameras])

    def extrinsics(self) -> np.ndarray:
        """``[C, 3, 4]`` world → camera matrices."""
        return np.stack([c.extrinsics for c in self.cameras])

    def save(self, path: Path, overwrite: bool = False) -> Path:
        """Write anipose's ``calibration.toml`` (atomically); return the path."""
        return save_calibration(self, path, overwrite)


def _number_list(value: Any, where: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where} must be numbers of shape {shape}") from None
    if array.shape != shape and not (shape == (5,) and array.shape == (4,)):
        raise CalibrationError(f"{where} must have shape {list(shape)}, got {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise CalibrationError(f"{where} must be finite numbers")
    return array


def read_toml(
    path: Path | str, what: str = "calibration", error: type[ValueError] = ValueError
) -> dict[str, Any]:
    """The tables of a TOML file; a missing or unparsable one raises ``error`` naming the file
    as ``what`` (calibration, board)."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not a TOML {what} file ({exc})") from None


def load_calibration(path: Path | str) -> CameraRig:
    """Read anipose's ``calibration.toml``; a broken file is refused naming the file and field."""
    return rig_from_tables(read_toml(path, "calibration", CalibrationError), str(path))


def rig_from_tables(data: Mapping[str, Any], where: str = "calibration") -> CameraRig:
    """A :class:`CameraRig` from the parsed tables of a ``calibration.toml``."""
    keys = sorted(
        (k for k in data if k.startswith("cam_")),
        key=lambda k: int(k[4:]) if k[4:].isdigit() else math.inf,
    )
    if not keys:
        raise CalibrationError(f"{where}: no [cam_N] tables (not an anipose calibration)")
    cameras = []
    for key in keys:
        table = data[key]
        at = f"{where}: [{key}]"
        if not isinstance(table, Mapping):
            raise CalibrationError(f"{at} must be a table")
        for name in ("name", "size", "matrix", "distortions", "rotation", "translation"):
            if name not in table:
                raise CalibrationError(f"{at} has no {name!r}")
        size = _number_list(table["size"], f"{at} size", (2,))
        if np.any(size <= 0) or np.any(size != np.round(size)):
            raise CalibrationError(f"{at} size must be two positive integers [width, height]")
        try:
            cameras.append(
                CameraModel(
                    name=str(table["name"]),
                    size=(int(size[0]), int(size[1])),
                    matrix=_number_list(table["matrix"], f"{at} matrix", (3, 3)),
                    distortions=_number_list(table["distortions"], f"{at} distortions", (5,)),
                    rotation=_number_list(table["rotation"], f"{at} rotation", (3,)),
                    translation=_number_list(table["translation"], f"{at} translation", (3,)),
                )
            )
        except ValueError as exc:
            raise CalibrationError(f"{at}: {exc}") from None
    metadata = data.get("metadata", {})
    try:
        return CameraRig(tuple(cameras), dict(metadata) if isinstance(metadata, Mapping) else {})
    except ValueError as exc:
        raise CalibrationError(f"{where}: {exc}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else repr(value))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, np.generic):
        return _toml_value(value.item())
    if isinstance(value, Iterable):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a calibration file")


def calibration_text(rig: CameraRig) -> str:
    """The ``calibration.toml`` text of ``rig`` (anipose's layout)."""
    lines: list[str] = []
    for k, camera in enumerate(rig.cameras):
        lines.append(f"[cam_{k}]")
        lines += [f"{key} = {_toml_value(v)}" for key, v in camera.to_toml_table().items()]
        lines.append("")
    if rig.metadata:
        lines.append("[metadata]")
        lines += [f"{key} = {_toml_value(v)}" for key, v in rig.metadata.items()]
        lines.append("")
    return "\n".join(lines)


def save_calibration(rig: CameraRig, path: Path | str, overwrite: bool = False) -> Path:
    """Write ``rig`` as anipose's ``calibration.toml`` (atomically, never half a file; an
    existing file only with ``overwrite``)."""
    return write_text(path, calibration_text(rig), overwrite=overwrite)
