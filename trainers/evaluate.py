"""Measuring a pose model against labelled frames.

Works with a training-output folder (Keras, needs TensorFlow) or an exported bundle (ONNX Runtime
through :class:`realtime_pose.inference.estimator.PoseEstimator`, no TensorFlow). Metrics are
computed over visible (labelled) keypoints only: mean Euclidean error, the same restricted to
predictions with likelihood ≥ ``pcutoff``, per-keypoint means, the 90th percentile and PCK (the
fraction within 5 and 10 px).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.geometry import Size
from realtime_pose.inference.peaks import find_peaks_reference
from realtime_pose.trainers.project import Project, ProjectError, load_project, read_split
from realtime_pose.trainers.targets import LOCREF_STDEV, STRIDE
from realtime_pose.util.safe_write import check_free, write_text, writing

log = logging.getLogger(__name__)

Predictor = Callable[[np.ndarray], np.ndarray]  # RGB uint8 [H, W, 3] -> [K, 3]


def _nan_mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def pose_metrics(
    predictions: np.ndarray,
    labels: np.ndarray,
    bodyparts: Sequence[str],
    pcutoff: float = 0.6,
) -> dict[str, Any]:
    """Error statistics of predictions against labels.

    Parameters
    ----------
    predictions
        ``[N, K, 3]``: x, y (px) and likelihood.
    labels
        ``[N, K, 2]`` px; NaN where the keypoint is not labelled (excluded).
        A prediction with NaN coordinates (a part the decoder of animals that look alike did
        not find) is left out of the error statistics and counts as a miss in PCK and
        ``found``.
    pcutoff
        Likelihood threshold for the ``*_pcutoff`` figures.

    Returns
    -------
    dict
        ``mean_error_px``, ``mean_error_px_pcutoff``, ``n_keypoints`` (visible keypoints),
        ``n_keypoints_pcutoff``, ``median_error_px``, ``p90_error_px``, ``pck5``, ``pck10``,
        ``n_images``, ``pcutoff``, ``found`` (share of visible keypoints predicted at all) and
        ``per_keypoint`` (name → mean error, count, pcutoff mean).
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if predictions.shape[:2] != labels.shape[:2] or predictions.shape[2] != 3:
        raise ValueError(
            f"predictions {list(predictions.shape)} and labels {list(labels.shape)} do not match "
            "([N, K, 3] and [N, K, 2])"
        )
    visible = np.isfinite(labels).all(axis=2)
    errors = np.linalg.norm(predictions[..., :2] - labels, axis=2)
    found = visible & np.isfinite(errors)
    confident = found & (predictions[..., 2] >= pcutoff)
    err_all = errors[found]
    err_conf = errors[confident]
    within = errors[visible]  # NaN (not found) is never within a radius
    per_keypoint = {}
    for j, name in enumerate(bodyparts):
        e = errors[found[:, j], j]
        c = errors[confident[:, j], j]
        per_keypoint[name] = {
            "mean_error_px": _nan_mean(e),
            "n": int(e.size),
            "mean_error_px_pcutoff": _nan_mean(c),
            "n_pcutoff": int(c.size),
            "pck5": _nan_mean((errors[visible[:, j], j] <= 5.0).astype(float)),
        }
    return {
        "mean_error_px": _nan_mean(err_all),
        "mean_error_px_pcutoff": _nan_mean(err_conf),
        "n_keypoints": int(err_all.size),
        "n_keypoints_pcutoff": int(err_conf.size),
        "median_error_px": float(np.median(err_all)) if err_all.size else None,
        "p90_error_px": float(np.percentile(err_all, 90)) if err_all.size else None,
        "pck5": _nan_mean((within <= 5.0).astype(float)),
        "pck10": _nan_mean((within <= 10.0).astype(float)),
        "found": _nan_mean(found[visible].astype(float)),
        "n_images": int(labels.shape[0]),
        "pcutoff": float(pcutoff),
        "per_keypoint": per_keypoint,
    }


def keras_predictor(
    model: Any,
    stride: float = STRIDE,
    locref_stdev: float = LOCREF_STDEV,
    input_scale: float = 1.0,
    decode: Callable[[list[np.ndarray]], np.ndarray] | None = None,
) -> Predictor:
    """A predictor running a Keras pose model in inference mode (graph mode, any frame size).

    With ``input_scale`` the frame is resized as a bundle's ``input.scale`` makes every other
    path resize it (:class:`~realtime_pose.inference.estimator.NetworkInput`); keypoints come back
    in the frame's own pixels. ``decode`` turns the model's NHWC outputs (batch axis dropped)
    into keypoints ``[..., 3]`` in network pixels; default: one peak per score map.
    """
    import cv2
    import tensorflow as tf

    from realtime_pose.geometry import FrameTransform, Size
    from realtime_pose.inference.estimator import NetworkInput

    pad = 2 * max(1, round(stride))
    sizing = NetworkInput(None, False, input_scale, pad, pad)

    @tf.function(reduce_retracing=True)
    def run(x: Any) -> Any:
        return model(x, training=False)

    def predict(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        net = sizing.resize_to(Size(w, h))
        if net is not None:
            image = cv2.resize(image, net, interpolation=cv2.INTER_AREA)
        size = Size.of(image)
        padded = sizing.padded(size)  # as the estimator pads (bottom, right)
        if padded != size:
            image = cv2.copyMakeBorder(
                image,
                0,
                padded.height - size.height,
                0,
                padded.width - size.width,
                cv2.BORDER_CONSTANT,
                value=0,
            )
        outputs = [o.numpy()[0] for o in run(tf.constant(image[None]))]
        if decode is None:
            pose = find_peaks_reference(*outputs[:2], stride, locref_stdev, layout="NHWC")
        else:
            pose = decode(outputs).reshape(-1, 3)
        if net is not None:  # the estimator's mapping (pixel centres aligned, as cv2.resize)
            FrameTransform(0.0, 0.0, net.width / w, net.height / h).to_frame(pose, out=pose)
        return pose

    return predict


def bundle_predictor(
    bundle_path: str | Path,
    engine: Mapping[str, Any] | None = None,
    input_size: Size | None = None,
) -> tuple[Predictor, Any]:
    """A predictor running an exported bundle; returns it and the bundle.

    ``engine`` is a run config's ``engine:`` section (e.g. ``{"kind": "openvino",
    "precision": "bf16"}``, to see what an engine's reduced precision costs on labelled frames);
    default: ONNX Runtime on the CPU. ``input_size`` is the network input a rig feeds for a
    whole frame (``input_size:`` of a run config); default: the bundle's training scale.
    Predictions are in the frame's pixels either way.
    """
    import cv2

    from realtime_pose.bundle import load_bundle
    from realtime_pose.engines import open_engine
    from realtime_pose.inference.estimator import PoseEstimator

    bundle = load_bundle(bundle_path)
    section = {"warmup_runs": 0, **(engine or {"spinning": False})}
    engine = open_engine(bundle, section)
    estimator = PoseEstimator(bundle, engine, input_size)

    def predict(image: np.ndarray) -> np.ndarray:
        pose = estimator.estimate(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return np.array(pose[:, :3], dtype=np.float64)  # the estimator reuses its buffer

    return predict, bundle


def predict_frames(predict: Predictor, project: Project, indices: Iterable[int]) -> np.ndarray:
    """Predictions ``[N, K, 3]`` for the project's frames ``indices``."""
    return np.stack([predict(project.load_image(i)) for i in indices]).astype(np.float64)


def frame_errors(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean keypoint error (px) of each frame over its labelled keypoints; NaN where none is."""
    predictions = np.asarray(predictions, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    visible = np.isfinite(labels).all(axis=2)
    errors = np.where(visible, np.linalg.norm(predictions[..., :2] - labels, axis=2), 0.0)
    counts = visible.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, errors.sum(axis=1) / counts, np.nan)


def worst_first(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Frame positions ordered by :func:`frame_errors`, worst first; unlabelled frames last."""
    errors = frame_errors(predictions, labels)
    return np.argsort(-np.nan_to_num(errors, nan=-np.inf), kind="stable")


def plot_predictions(
    project: Project,
    indices: Sequence[int],
    predictions: np.ndarray,
    path: str | Path,
    pcutoff: float,
    overwrite: bool = False,
    max_images: int = 12,
    title: str = "labels (o) vs predictions (x; faded below pcutoff)",
) -> Path:
    """A PNG grid of frames with labels (circles) and predictions (crosses; faded below pcutoff),
    each titled with its image name and mean error, in the order given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = list(indices)[:max_images]
    errors = frame_errors(predictions[: len(shown)], project.keypoints[shown])
    cols = min(4, max(1, len(shown)))
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    colours = plt.get_cmap("jet")(np.linspace(0, 1, project.num_keypoints))
    for ax in axes.ravel():
        ax.axis("off")
    for n, (ax, i) in enumerate(zip(axes.ravel(), shown, strict=False)):
        ax.imshow(project.load_image(i))
        for j in range(project.num_keypoints):
            lx, ly = project.keypoints[i, j]
            if np.isfinite(lx):
                ax.plot(lx, ly, "o", mfc="none", mec=colours[j], ms=8, mew=1.5)
            px, py, p = predictions[n, j]
            ax.plot(px, py, "x", color=colours[j], ms=7, mew=2, alpha=1.0 if p >= pcutoff else 0.3)
        error = "no labels" if np.isnan(errors[n]) else f"{errors[n]:.1f} px"
        ax.set_title(f"{Path(project.images[i]).name}: {error}", fontsize=8)
    handles = [
        plt.Line2D([], [], marker="o", ls="", mfc="none", mec=colours[j], label=name)
        for j, name in enumerate(project.bodyparts)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(8, len(handles)), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    path = Path(path)
    with writing(path, overwrite) as tmp:
        fig.savefig(tmp, dpi=80, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def _split_from_bundle(bundle: Any) -> dict[str, list[str]] | None:
    provenance = bundle.meta.provenance or {}
    split = provenance.get("split")
    if isinstance(split, dict) and isinstance(split.get("test"), list):
        return {k: [str(p) for p in split.get(k, [])] for k in ("train", "test")}
    train_dir = provenance.get("train_dir")
    if train_dir and (Path(train_dir) / "split.json").is_file():
        return read_split(Path(train_dir) / "split.json")
    return None


def select_frames(
    project: Project, split: str, split_lists: dict[str, list[str]] | None, where: str
) -> list[int]:
    """Indices of the frames to evaluate: ``all``, or the ``train``/``test`` part of a split."""
    if split == "all":
        return list(range(len(project.images)))
    if split_lists is None:
        raise ProjectError(
            f"{where}: no train/test split is known for this model; pass --split all, or "
            "--split-file with a split.json from the training output"
        )
    indices = project.indices_of(split_lists[split], where=where)
    if not indices:
        raise ProjectError(f"{where}: the '{split}' split is empty; use --split all")
    return indices


def evaluate(
    model_path: str | Path,
    project_path: str | Path,
    *,
    split: str = "test",
    split_file: str | Path | None = None,
    pcutoff: float | None = None,
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    overwrite: bool = False,
    engine: Mapping[str, Any] | None = None,
    input_size: Size | None = None,
) -> dict[str, Any]:
    """Evaluate a training-output folder or a bundle on a DeepLabCut project.

    Parameters
    ----------
    model_path
        A training-output folder (``model.keras``) or a bundle (folder/zip with ``bundle.json``).
    project_path
        The DeepLabCut project holding the labels.
    split
        ``"test"``, ``"train"`` or ``"all"``. Train/test come from ``split_file``, else the
        training output's ``split.json``, else the bundle's provenance.
    pcutoff
        Likelihood threshold (default: the project's ``pcutoff``).
    json_path, plot_path
        Where to write the metrics and a picture of the predictions (refused when they exist,
        unless ``overwrite``; checked before the evaluation runs).
    engine
        For a bundle: the ``engine:`` section to run it with (default ONNX Runtime, CPU);
        refused for a training output, which runs in Keras.
    input_size
        For a bundle: the network input for a whole frame, as a rig's ``input_size:`` (errors
        stay in the frame's pixels); default: the bundle's training scale.

    Returns
    -------
    dict
        :func:`pose_metrics` plus ``model``, ``project``, ``split`` and ``images``.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be train, test or all, got {split!r}")
    model_path = Path(model_path).expanduser()
    for out in (json_path, plot_path):
        if out:
            check_free(out, overwrite)
    project = load_project(project_path)
    split_lists = read_split(Path(split_file)) if split_file else None
    if (model_path / "model.keras").is_file():
        if engine is not None or input_size is not None:
            raise ValueError(
                f"{model_path}: a training output runs in Keras at its training scale; export "
                "it to a bundle to evaluate it on another engine or input size"
            )
        import keras

        config = json.loads((model_path / "train_config.json").read_text())
        _check_keypoints(config.get("keypoints"), project, model_path / "train_config.json")
        if split_lists is None and (model_path / "split.json").is_file():
            split_lists = read_split(model_path / "split.json")
        model = keras.models.load_model(model_path / "model.keras", compile=False)
        predict = keras_predictor(
            model,
            config.get("stride", STRIDE),
            config.get("locref_stdev", LOCREF_STDEV),
            config.get("input_scale", 1.0),
        )
    else:
        predict, bundle = bundle_predictor(model_path, engine, input_size)
        _check_keypoints(bundle.keypoints, project, model_path)
        if split_lists is None:
            split_lists = _split_from_bundle(bundle)
    where = str(split_file or model_path)
    indices = select_frames(project, split, split_lists, where)
    cutoff = project.pcutoff if pcutoff is None else pcutoff
    predictions = predict_frames(predict, project, indices)
    metrics = pose_metrics(predictions, project.keypoints[indices], project.bodyparts, cutoff)
    metrics.update(
        model=str(model_path),
        project=str(project.root),
        split=split,
        images=[project.images[i] for i in indices],
    )
    if engine is not None:
        metrics["engine"] = dict(engine)
    if input_size is not None:
        metrics["input_size"] = list(input_size)
    if json_path:
        write_text(json_path, json.dumps(metrics, indent=2) + "\n", overwrite)
    if plot_path:
        plot_worst(project, indices, predictions, plot_path, cutoff, split, overwrite)
    return metrics


def plot_worst(
    project: Project,
    indices: Sequence[int],
    predictions: np.ndarray,
    path: str | Path,
    pcutoff: float,
    split: str,
    overwrite: bool = False,
    max_images: int = 12,
) -> Path:
    """:func:`plot_predictions` of the frames with the largest mean error, worst first: where
    a model fails is what a user needs to see (a mislabelled frame, a pose it never learned)."""
    order = worst_first(predictions, project.keypoints[list(indices)])
    shown = min(max_images, len(order))
    return plot_predictions(
        project,
        [indices[o] for o in order],
        predictions[order],
        path,
        pcutoff,
        overwrite,
        max_images,
        title=f"the {shown} worst of {len(order)} {split} frames by mean error: labels (o) vs "
        "predictions (x; faded below pcutoff)",
    )


def _check_keypoints(model_keypoints: Any, project: Project, where: Path) -> None:
    if model_keypoints is not None and list(model_keypoints) != list(project.bodyparts):
        raise ProjectError(
            f"{where}: the model's keypoints {list(model_keypoints)} differ from the project's "
            f"bodyparts {list(project.bodyparts)}; evaluate on the project it was trained for"
        )


def format_metrics(metrics: dict[str, Any]) -> str:
    """A short human-readable summary."""

    def px(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} px"

    lines = [
        f"{metrics['split']} frames: {metrics['n_images']}, visible keypoints: "
        f"{metrics['n_keypoints']}",
        f"mean error {px(metrics['mean_error_px'])}; with likelihood >= {metrics['pcutoff']}: "
        f"{px(metrics['mean_error_px_pcutoff'])} ({metrics['n_keypoints_pcutoff']} keypoints)",
        f"median {px(metrics['median_error_px'])}, 90th percentile "
        f"{px(metrics['p90_error_px'])}, PCK@5px {metrics['pck5'] or 0:.3f}, "
        f"PCK@10px {metrics['pck10'] or 0:.3f}",
    ]
    for name, m in metrics["per_keypoint"].items():
        lines.append(f"  {name:>16}: {px(m['mean_error_px'])} (n={m['n']})")
    return "\n".join(lines)


__all__: Sequence[str] = (
    "Predictor",
    "bundle_predictor",
    "evaluate",
    "format_metrics",
    "frame_errors",
    "keras_predictor",
    "plot_predictions",
    "plot_worst",
    "pose_metrics",
    "predict_frames",
    "select_frames",
    "worst_first",
)
