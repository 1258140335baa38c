"""Pose tables in DeepLabCut's layout, so DLC's own tools, movement and SimBA read them.

Columns are a pandas MultiIndex ``scorer / bodyparts / coords`` with coords ``x, y, likelihood``;
one row per frame; ``.h5`` files use the key ``df_with_missing``. A multi-animal model (keypoints
named ``animal/bodypart``) gets DeepLabCut's multi-animal layout, ``scorer / individuals /
bodyparts / coords``, one individual per animal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.bundle import animal_layout
from realtime_pose.util.safe_write import writing_all

H5_KEY = "df_with_missing"
DEFAULT_SCORER = "realtime-pose"


def pose_table(
    poses: np.ndarray,
    keypoints: Sequence[str],
    scorer: str = DEFAULT_SCORER,
    frame_indices: Sequence[int] | np.ndarray | None = None,
):
    """Build a DeepLabCut-layout DataFrame from ``poses`` of shape ``[frames, K, 3]``.

    Rows are indexed by ``frame_indices`` (default ``0..frames-1``).
    """
    import pandas as pd

    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (len(keypoints), 3):
        raise ValueError(
            f"poses must have shape [frames, {len(keypoints)}, 3], got {list(poses.shape)}"
        )
    columns = pd.MultiIndex.from_product(
        [[scorer], list(keypoints), ["x", "y", "likelihood"]],
        names=["scorer", "bodyparts", "coords"],
    )
    layout = animal_layout(keypoints)
    if layout is not None:  # several animals: DeepLabCut's multi-animal layout
        columns = pd.MultiIndex.from_product(
            [[scorer], *layout, ["x", "y", "likelihood"]],
            names=["scorer", "individuals", "bodyparts", "coords"],
        )
    index = np.arange(len(poses)) if frame_indices is None else np.asarray(frame_indices)
    return pd.DataFrame(poses.reshape(len(poses), -1), columns=columns, index=index)


def table_keypoints(table) -> list[str]:
    """The keypoint names of a pose table: ``bodypart``, or ``individual/bodypart`` for the
    multi-animal layout (in column order)."""
    names = table.columns.names
    parts = table.columns.get_level_values("bodyparts")
    if "individuals" in names:
        who = table.columns.get_level_values("individuals")
        return list(dict.fromkeys(f"{a}/{b}" for a, b in zip(who, parts, strict=True)))
    return list(dict.fromkeys(parts))


def table_paths(stem: str | Path) -> tuple[Path, Path]:
    """``<stem>.h5`` and ``<stem>.csv``: the suffix is appended, never substituted, so a stem
    holding dots (``…mobilenet_v2_0.35-20261202-180015``) keeps all of itself."""
    stem = Path(stem)
    return stem.with_name(stem.name + ".h5"), stem.with_name(stem.name + ".csv")


def write_pose_tables(
    stem: str | Path,
    poses: np.ndarray,
    keypoints: Sequence[str],
    scorer: str = DEFAULT_SCORER,
    frame_indices: Sequence[int] | np.ndarray | None = None,
    *,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``<stem>.h5`` and ``<stem>.csv`` (the whole stem kept, dots included) through
    :mod:`realtime_pose.util.safe_write`; return both paths.

    ``provenance`` (JSON-serialisable) is stored as the ``.h5`` table's attribute
    ``realtime_pose`` (:func:`read_provenance`); readers of DeepLabCut files ignore it.

    Raises
    ------
    OutputExistsError
        Either file exists and ``overwrite`` is false (nothing is written then).
    """
    import pandas as pd

    stem = Path(stem)
    df = pose_table(poses, keypoints, scorer, frame_indices)
    h5_path, csv_path = table_paths(stem)
    with writing_all([h5_path, csv_path], overwrite) as (h5_tmp, csv_tmp):
        df.to_hdf(h5_tmp, key=H5_KEY, mode="w", format="table")
        if provenance is not None:
            with pd.HDFStore(h5_tmp, mode="a") as store:
                store.get_storer(H5_KEY).attrs.realtime_pose = json.dumps(
                    dict(provenance), sort_keys=True
                )
        df.to_csv(csv_tmp)
    return h5_path, csv_path


def read_provenance(path: str | Path) -> dict[str, Any] | None:
    """The ``provenance`` stored by :func:`write_pose_tables` in an ``.h5`` table, or ``None``."""
    import pandas as pd

    with pd.HDFStore(Path(path), mode="r") as store:
        storer = store.get_storer(H5_KEY)
        text = getattr(storer.attrs, "realtime_pose", None) if storer is not None else None
    return json.loads(text) if text else None


def read_pose_table(path: str | Path):
    """Read a DeepLabCut-layout ``.h5`` or ``.csv`` pose table."""
    import pandas as pd

    path = Path(path)
    if path.suffix == ".h5":
        return pd.read_hdf(path, key=H5_KEY)
    second = pd.read_csv(path, header=None, nrows=2, usecols=[0]).iat[1, 0]
    header = [0, 1, 2, 3] if second == "individuals" else [0, 1, 2]
    return pd.read_csv(path, header=header, index_col=0)
