"""3D poses of a camera rig, and anipose's 3D table (``pose-3d/<session>.csv``).

:class:`Poses3D` is what a rig's triangulation produces, live or offline: one 3D point per
keypoint and frame set, with how well it was triangulated and when its frames were captured.
:func:`realtime_pose.formats.nwb.poses3d_nwbfile` puts it in an NWB file.

The CSV is laid out exactly as anipose's ``triangulate`` step writes it (``anipose/triangulate.py``,
``pandas.DataFrame.to_csv(index=False)``), so anipose's own tools (``label-3d``, ``angles``) and
``movement.io.load_poses.from_anipose_file`` read it:

- per keypoint, in keypoint order: ``{kp}_x, {kp}_y, {kp}_z`` (the calibration's unit, mm),
  ``{kp}_error`` (mean reprojection error, px), ``{kp}_ncams`` (views used, as a float, as anipose
  writes it) and ``{kp}_score`` (0-1); a point that was not triangulated is empty (NaN);
- ``M_00 … M_22`` and ``center_0 … center_2``: anipose's change of axes (its ``axes`` and
  ``reference_point`` options); ours are written in the calibration's own frame, so ``M`` is the
  identity and ``center`` zero;
- ``fnum``: the frame-set index.

The table holds no capture times, camera names or skeleton: :func:`read_anipose_csv` takes the
times (``fps`` or ``t_ns``) from its caller.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime_pose.util.safe_write import writing

KEYPOINT_COLUMNS = ("x", "y", "z", "error", "ncams", "score")
"""Anipose's columns per keypoint, in its order (``{kp}_x`` … ``{kp}_score``)."""

FRAME_COLUMNS = (
    *(f"M_{i}{j}" for i in range(3) for j in range(3)),
    *(f"center_{i}" for i in range(3)),
    "fnum",
)
"""Anipose's columns after the keypoints: the axes change ``M``, ``center``, the frame number."""


def anipose_columns(keypoints: Sequence[str]) -> list[str]:
    """The header of anipose's 3D table for ``keypoints``, in anipose's order."""
    return [f"{kp}_{c}" for kp in keypoints for c in KEYPOINT_COLUMNS] + list(FRAME_COLUMNS)


@dataclass(frozen=True, eq=False)
class Poses3D:
    """Triangulated poses of one animal seen by a rig of synchronised cameras.

    Parameters
    ----------
    keypoints
        Keypoint names ``[K]``.
    points
        ``[T, K, 3]`` positions in the calibration's frame and unit (millimetres); NaN where the
        keypoint was not triangulated.
    errors
        ``[T, K]`` mean reprojection error of each point in the views used (pixels); NaN where
        not triangulated.
    n_views
        ``[T, K]`` number of camera views each point was triangulated from.
    scores
        ``[T, K]`` confidence 0-1 (e.g. the mean 2D likelihood of the views used); NaN where not
        triangulated.
    frame_index
        ``[T]`` frame-set index of each row.
    t_ns
        ``[T]`` the frame set's capture time, monotonic clock, nanoseconds (non-decreasing).
    camera_names
        ``[C]`` the rig's camera names (as in ``calibration.toml``), or ``None``.
    camera_t_ns
        ``[T, C]`` each camera's capture time of its frame in the set (same clock as ``t_ns``),
        ``-1`` where that camera delivered no frame; NaN in a float array is taken as ``-1``.
        Needs ``camera_names``.
    skeleton
        Edges as pairs of keypoint names.

    Raises
    ------
    ValueError
        An array has the wrong shape, times go backwards, or a name is unusable (the message
        says which).
    """

    keypoints: tuple[str, ...]
    points: np.ndarray
    errors: np.ndarray
    n_views: np.ndarray
    scores: np.ndarray
    frame_index: np.ndarray
    t_ns: np.ndarray
    camera_names: tuple[str, ...] | None = None
    camera_t_ns: np.ndarray | None = None
    skeleton: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        keypoints = tuple(str(k) for k in self.keypoints)
        if not keypoints or len(set(keypoints)) != len(keypoints):
            raise ValueError(f"keypoints must be unique names, at least one: got {keypoints}")
        bad = [k for k in keypoints if not k or any(c in k for c in ',"\n\r')]
        if bad:
            raise ValueError(f"keypoint names {bad} cannot be CSV column names")
        object.__setattr__(self, "keypoints", keypoints)
        points = np.asarray(self.points, np.float64)
        T, K = len(points), len(keypoints)
        arrays = {
            "points": (points, (T, K, 3)),
            "errors": (np.asarray(self.errors, np.float64), (T, K)),
            "n_views": (np.asarray(self.n_views), (T, K)),
            "scores": (np.asarray(self.scores, np.float64), (T, K)),
            "frame_index": (np.asarray(self.frame_index), (T,)),
            "t_ns": (np.asarray(self.t_ns), (T,)),
        }
        for name, (value, shape) in arrays.items():
            if value.shape != shape:
                raise ValueError(
                    f"{name} must have shape {list(shape)} ([T, K] = [{T}, {K}]), "
                    f"got {list(value.shape)}"
                )
            if name in ("n_views", "frame_index", "t_ns"):
                value = _integers(value, name)
            object.__setattr__(self, name, value)
        if np.any(np.diff(self.t_ns) < 0):
            first = int(np.argmax(np.diff(self.t_ns) < 0)) + 1
            raise ValueError(f"t_ns goes backwards at row {first}: capture times must not")
        self._check_cameras(T)
        edges = tuple((str(a), str(b)) for a, b in self.skeleton)
        unknown = sorted({n for edge in edges for n in edge} - set(keypoints))
        if unknown:
            raise ValueError(f"skeleton names {unknown}, which are not keypoints {keypoints}")
        object.__setattr__(self, "skeleton", edges)

    def _check_cameras(self, T: int) -> None:
        names = self.camera_names
        if names is not None:
            names = tuple(str(n) for n in names)
            if not names or len(set(names)) != len(names):
                raise ValueError(f"camera_names must be unique names, got {names}")
            object.__setattr__(self, "camera_names", names)
        if self.camera_t_ns is None:
            return
        if names is None:
            raise ValueError("camera_t_ns needs camera_names (which column is which camera)")
        times = np.asarray(self.camera_t_ns)
        if times.shape != (T, len(names)):
            raise ValueError(
                f"camera_t_ns must have shape [{T}, {len(names)}] ([T, cameras]), "
                f"got {list(times.shape)}"
            )
        if times.dtype.kind == "f":
            times = np.where(np.isnan(times), -1, times)
        object.__setattr__(self, "camera_t_ns", _integers(times, "camera_t_ns"))

    @property
    def n_frames(self) -> int:
        """Number of frame sets ``T``."""
        return len(self.points)

    @classmethod
    def from_triangulation(
        cls,
        keypoints: Sequence[str],
        points: np.ndarray,
        views2d: np.ndarray,
        frame_index: np.ndarray,
        t_ns: np.ndarray,
        camera_names: Sequence[str],
        camera_t_ns: np.ndarray,
        skeleton: Sequence[Sequence[str]] = (),
    ) -> Poses3D:
        """What a camera group's triangulation gives (``points`` ``[T, K, 5]``: x, y, z,
        reprojection error, views used; each view's 2D pose ``views2d`` ``[T, C, K, 3]``) as
        :class:`Poses3D`; ``scores`` are the mean 2D likelihood of the views that saw each
        keypoint, NaN (like the errors) where it was not triangulated."""
        triangulated = np.isfinite(points[..., 0])
        likelihood = np.nan_to_num(views2d[..., 2], nan=0.0)  # [T, C, K]
        scores = likelihood.sum(1) / np.maximum((likelihood > 0).sum(1), 1)
        return cls(
            keypoints=tuple(keypoints),
            points=points[..., :3],
            errors=np.where(triangulated, points[..., 3], np.nan),
            n_views=np.where(triangulated, points[..., 4], 0).astype(np.int64),
            scores=np.where(triangulated, scores, np.nan),
            frame_index=frame_index,
            t_ns=t_ns,
            camera_names=tuple(camera_names),
            camera_t_ns=camera_t_ns,
            skeleton=tuple((str(a), str(b)) for a, b in skeleton),
        )


def _integers(value: np.ndarray, name: str) -> np.ndarray:
    if value.dtype.kind in "iu":
        return value.astype(np.int64)
    if value.dtype.kind == "f" and np.all(np.isfinite(value)) and np.all(value == np.round(value)):
        return value.astype(np.int64)
    raise ValueError(f"{name} must be whole numbers, got {value.dtype} values")


def anipose_table(poses: Poses3D):
    """The ``pandas.DataFrame`` anipose's ``triangulate`` would write for ``poses``."""
    import pandas as pd

    columns: dict[str, np.ndarray] = {}
    for k, kp in enumerate(poses.keypoints):
        for axis in range(3):
            columns[f"{kp}_{'xyz'[axis]}"] = poses.points[:, k, axis]
        columns[f"{kp}_error"] = poses.errors[:, k]
        columns[f"{kp}_ncams"] = poses.n_views[:, k].astype(np.float64)
        columns[f"{kp}_score"] = poses.scores[:, k]
    identity = np.eye(3)
    for i in range(3):
        for j in range(3):
            columns[f"M_{i}{j}"] = np.full(poses.n_frames, identity[i, j])
    for i in range(3):
        columns[f"center_{i}"] = np.zeros(poses.n_frames)
    columns["fnum"] = poses.frame_index
    return pd.DataFrame(columns, columns=anipose_columns(poses.keypoints))


def write_anipose_csv(
    path: str | os.PathLike[str], poses: Poses3D, *, overwrite: bool = False
) -> Path:
    """Write ``poses`` as anipose's 3D table (module docstring) through
    :mod:`realtime_pose.util.safe_write`; return the path.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false (nothing is written).
    """
    path = Path(path)
    table = anipose_table(poses)
    with writing(path, overwrite) as tmp:
        table.to_csv(tmp, index=False)
    return path


def read_anipose_csv(
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    t_ns: Sequence[int] | np.ndarray | None = None,
) -> Poses3D:
    """Read an anipose 3D table (ours or anipose's) as :class:`Poses3D`.

    Keypoints keep the file's column order; ``{kp}_ncams`` left empty (anipose empties it below
    two views) reads as 0 views. Coordinates are as the file holds them: in the frame anipose's
    ``axes`` option chose, if it was used (``M`` and ``center`` are not applied).

    Parameters
    ----------
    path
        The ``.csv`` file.
    fps
        Frame-set rate: row times are ``fnum / fps`` (from 0 ns).
    t_ns
        Or each row's capture time (ns); one of ``fps`` and ``t_ns`` is required, as the table
        holds no times.

    Raises
    ------
    ValueError
        The file is not an anipose 3D table (what is missing is named), or the times are
        missing or do not fit it.
    """
    import pandas as pd

    path = Path(path)
    if (fps is None) == (t_ns is None):
        raise ValueError(
            f"{path}: anipose's table holds no capture times: pass fps (times from fnum) "
            "or t_ns (one per row), not both"
        )
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable CSV table ({exc})") from exc
    columns = list(table.columns)
    missing = [c for c in FRAME_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{path}: not an anipose 3D table, no column(s) {missing}")
    keypoints = [c[: -len("_x")] for c in columns if c.endswith("_x") and c not in FRAME_COLUMNS]
    absent = [f"{kp}_{c}" for kp in keypoints for c in KEYPOINT_COLUMNS if f"{kp}_{c}" not in table]
    if not keypoints or absent:
        raise ValueError(f"{path}: not an anipose 3D table, no column(s) {absent or ['*_x']}")
    T = len(table)

    def block(suffix: str) -> np.ndarray:
        return np.stack([table[f"{kp}_{suffix}"].to_numpy(np.float64) for kp in keypoints], 1)

    points = np.stack([block(axis) for axis in "xyz"], -1).reshape(T, len(keypoints), 3)
    frame_index = table["fnum"].to_numpy()
    if t_ns is None:
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        t_ns = np.round(frame_index.astype(np.float64) * (1e9 / fps)).astype(np.int64)
    elif len(t_ns) != T:
        raise ValueError(f"{path}: {T} rows but {len(t_ns)} times in t_ns")
    return Poses3D(
        keypoints=tuple(keypoints),
        points=points,
        errors=block("error"),
        n_views=np.nan_to_num(block("ncams"), nan=0.0).astype(np.int64),
        scores=block("score"),
        frame_index=frame_index,
        t_ns=np.asarray(t_ns),
    )
