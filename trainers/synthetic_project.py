"""Synthetic training data with exact labels: a DeepLabCut project of arena frames (tests, the demo
bundle) and a two-animal clip with SLEAP labels (multi-animal tests)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from realtime_pose.sources.synthetic_scene import KEYPOINTS, SKELETON, draw_animal, random_sample


def write_synthetic_project(
    folder: str | Path,
    n_frames: int,
    width: int = 320,
    height: int = 240,
    seed: int = 0,
    *,
    scorer: str = "synthetic",
    video: str = "synthetic",
    animal_scale: float = 1.0,
    coat: str = "dark",
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
        image, kp = random_sample(rng, width, height, animal_scale, coat)
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
        "synthetic": {
            "width": width,
            "height": height,
            "seed": int(seed),
            "animal_scale": animal_scale,
        },
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


TWO_ANIMALS = ("dark", "light")
"""Identities of :func:`write_two_animal_clip`'s animals: a dark and a light body."""
_BODY_LEVEL = {"dark": 40, "light": 120}


def two_animal_poses(frame: int, width: int, height: int) -> list:
    """Where the two animals of :func:`write_two_animal_clip` are in ``frame``: smooth
    laps in opposite directions, one outside the other, that bring them close twice a lap."""
    from realtime_pose.sources.synthetic_scene import AnimalPose

    s = 0.2 * min(width, height)
    poses = []
    for i, name in enumerate(TWO_ANIMALS):
        phase = 2 * math.pi * frame / 40.0 * (1 if i == 0 else -1) + i * math.pi
        radius = 0.3 if i == 0 else 0.12  # an outer and an inner lap: close, rarely on top
        x = width / 2 + radius * width * math.cos(phase)
        y = height / 2 + radius * height * math.sin(phase)
        level = _BODY_LEVEL[name]
        poses.append(
            AnimalPose(
                x=x,
                y=y,
                heading=phase + (math.pi / 2 if i == 0 else -math.pi / 2),
                head_yaw=0.3 * math.sin(frame / 5.0),
                scale_px=s,
                tail_curl=math.sin(frame / 7.0),
                body_bgr=(level, level, level),
                ear_bgr=(level + 90, level + 90, level + 120),
            )
        )
    return poses


def write_two_animal_clip(
    folder: str | Path, n_frames: int, width: int = 160, height: int = 120
) -> Path:
    """A lossless video of two identifiable animals and its SLEAP labels (``clip.slp``, via
    sleap-io, tracks ``dark`` and ``light``); return the ``.slp`` path.

    Both animals are drawn with the openfield-like renderer of
    :mod:`realtime_pose.sources.synthetic_scene`, on one arena; the dark one is drawn last where
    they overlap.
    """
    import sleap_io as sio

    from realtime_pose.sources.synthetic_scene import SKELETON, _arena

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    video_path = folder / "clip.avi"
    look = _arena(np.random.default_rng(7), width, height, n_noise=1)
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write FFV1 video here")
    skeleton = sio.Skeleton(nodes=list(KEYPOINTS), edges=[list(e) for e in SKELETON])
    tracks = [sio.Track(name=n) for n in TWO_ANIMALS]
    video = sio.Video(filename=str(video_path))
    frames = []
    try:
        for f in range(n_frames):
            image = look.background.copy()
            poses = two_animal_poses(f, width, height)
            points = [None, None]
            for i in (1, 0):  # light first, dark on top
                points[i] = draw_animal(image, poses[i])
            writer.write(image)
            instances = [
                sio.Instance.from_numpy(points[i].astype(np.float64), skeleton, track=tracks[i])
                for i in range(2)
            ]
            frames.append(sio.LabeledFrame(video=video, frame_idx=f, instances=instances))
    finally:
        writer.release()
    labels = sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=tracks)
    slp = folder / "clip.slp"
    sio.save_slp(labels, str(slp))
    return slp
