"""A DeepLabCut project of synthetic arena frames with exact labels (tests, the demo bundle)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from realtime_pose.synthetic import KEYPOINTS, SKELETON, random_sample


def write_synthetic_project(
    folder: str | Path,
    n_frames: int,
    width: int = 320,
    height: int = 240,
    seed: int = 0,
    *,
    scorer: str = "synthetic",
    video: str = "synthetic",
) -> Path:
    """Write a DeepLabCut-format project of ``n_frames`` labelled random samples.

    Layout: ``config.yaml``, ``labeled-data/<video>/img#####.png`` and
    ``labeled-data/<video>/CollectedData_<scorer>.csv`` + ``.h5``.

    Returns
    -------
    Path
        The project folder.
    """
    import pandas as pd
    import yaml

    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    folder = Path(folder)
    labeled = folder / "labeled-data" / video
    labeled.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 0xDA7A])
    rows, coords = [], []
    for i in range(n_frames):
        image, kp = random_sample(rng, width, height)
        name = f"img{i:05d}.png"
        cv2.imwrite(str(labeled / name), image)
        rows.append(f"labeled-data/{video}/{name}")
        coords.append(kp.reshape(-1))
    columns = pd.MultiIndex.from_product(
        [[scorer], list(KEYPOINTS), ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    df = pd.DataFrame(np.asarray(coords, dtype=np.float64), index=rows, columns=columns)
    df.to_hdf(labeled / f"CollectedData_{scorer}.h5", key="df_with_missing", mode="w")
    df.to_csv(labeled / f"CollectedData_{scorer}.csv")
    config = {
        "Task": "synthetic",
        "scorer": scorer,
        "date": "generated",
        "project_path": str(folder.resolve()),
        "video_sets": {},
        "bodyparts": list(KEYPOINTS),
        "skeleton": [list(edge) for edge in SKELETON],
        "pcutoff": 0.6,
        "TrainingFraction": [0.95],
        "iteration": 0,
        "default_net_type": "mobilenet_v2_0.35",
        "synthetic": {"width": width, "height": height, "seed": int(seed)},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder
