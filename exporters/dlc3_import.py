"""DeepLabCut 3 (PyTorch) model → bundle, checked against PyTorch before anything is written.

The network is rebuilt with DeepLabCut's own model code (``PoseModel.build``, no weights
downloaded) and its weights loaded strictly. The ONNX graph takes what every bundle takes, a
uint8 RGB ``[1, H, W, 3]`` frame, and does inside the graph what DeepLabCut-Live's PyTorch runner
does before the network: scale to [0, 1], reflect-pad bottom and right to the config's
``auto_padding`` divisors, normalise with the ImageNet mean and std (``normalize_images``). It
outputs the head's heatmaps (after a sigmoid when the predictor applies one) and location
refinement as NCHW maps.

Decoding is DeepLabCut's ``HeatmapPredictor``: ``x = ix*stride + stride/2 + locref_std*dx``
(locref channels interleaved x, y), which is our pose math with the model's stride; the training
targets of ``HeatmapGaussianGenerator`` sit on that same grid over the map the network produces,
so the maps being a cell or two larger than ``input/stride`` (a 3×3 stride-2 transposed
convolution without padding, stages that round up: 31×41 for 240×320 at stride 8, 17×21 at
stride 16) changes nothing. The stride is DeepLabCut's own ``PoseModel.get_stride`` of the built
network, checked against the map sizes the graph produces at import (:func:`map_sizes`); with
``clip_scores`` the likelihood is clipped to [0, 1] after the argmax
(``likelihood_clip`` in ``bundle.json``).

Parity at import: the same frames through DeepLabCut's network and predictor in PyTorch
(preprocessed in NumPy, as DeepLabCut-Live does it) and through the bundle's graph on ONNX
Runtime with our decode; keypoints within ``tolerance_px`` (1e-3 px) or nothing is written.
"""

from __future__ import annotations

import copy
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.bundle import Bundle, load_bundle, write_bundle
from realtime_pose.exporters.dlc3_source import (
    HEAD,
    Dlc3ImportError,
    Dlc3Model,
    read_dlc3_model,
)
from realtime_pose.exporters.frames import ImagesArg, load_frames, read_rgb_frames
from realtime_pose.exporters.parity import NetworkFn, ParityReport, ort_network, require_parity
from realtime_pose.exporters.provenance import tool_versions
from realtime_pose.exporters.staging import check_target, staged_folder
from realtime_pose.geometry import round_up
from realtime_pose.inference.peaks import find_peaks_reference

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_OPSET, MAX_OPSET = 13, 18
#: how far (cells) a score map's side may be from the network input's side over the stride
MAP_SLACK_CELLS = 3
#: frames of the project used for the parity check when no images are given
PROJECT_FRAMES = 8


@dataclass(frozen=True)
class Preprocessing:
    """What DeepLabCut-Live's PyTorch runner does to a frame before the network.

    Attributes
    ----------
    pad_divisor
        ``(height, width)`` divisors the frame is reflect-padded to (bottom and right), or
        ``None`` (the config has no ``data.inference.auto_padding``).
    normalize
        Subtract the ImageNet mean and divide by its std after scaling to [0, 1].
    """

    pad_divisor: tuple[int, int] | None
    normalize: bool

    @classmethod
    def from_config(cls, config: dict[str, Any], where: Path) -> Preprocessing:
        """Read ``data.inference`` as DeepLabCut-Live 1.1 does."""
        inference = (config.get("data") or {}).get("inference") or {}
        if not isinstance(inference, dict):
            raise Dlc3ImportError(f"{where}: field 'data.inference' is not a mapping")
        padding = inference.get("auto_padding")
        divisor = None
        if padding:
            try:
                divisor = (
                    int(padding.get("pad_height_divisor") or 1),
                    int(padding.get("pad_width_divisor") or 1),
                )
            except (AttributeError, TypeError, ValueError) as exc:
                raise Dlc3ImportError(
                    f"{where}: field 'data.inference.auto_padding' is not a mapping of "
                    f"pad_height_divisor/pad_width_divisor integers ({padding!r})"
                ) from exc
            if min(divisor) < 1:
                raise Dlc3ImportError(
                    f"{where}: field 'data.inference.auto_padding': divisors must be >= 1, got "
                    f"{divisor}"
                )
            if divisor == (1, 1):
                divisor = None
        return cls(divisor, bool(inference.get("normalize_images", False)))

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The network input's size for a ``height`` x ``width`` frame."""
        if self.pad_divisor is None:
            return height, width
        dh, dw = self.pad_divisor
        return round_up(height, dh), round_up(width, dw)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """RGB uint8 ``[H, W, 3]`` → float32 ``[1, 3, H', W']``, in NumPy (the reference)."""
        x = frame.astype(np.float32) / np.float32(255.0)
        height, width = frame.shape[:2]
        ph, pw = self.padded_size(height, width)
        if (ph, pw) != (height, width):
            x = np.pad(x, ((0, ph - height), (0, pw - width), (0, 0)), mode="reflect")
        if self.normalize:
            x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def describe(self) -> dict[str, Any]:
        """For ``bundle.json`` provenance."""
        return {
            "color": "RGB",
            "scale": "1/255",
            "pad_divisor_hw": None if self.pad_divisor is None else list(self.pad_divisor),
            "pad_mode": "reflect, bottom and right",
            "normalize": (
                {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)} if self.normalize else None
            ),
        }


@dataclass(frozen=True)
class Decoding:
    """How DeepLabCut's ``HeatmapPredictor`` turns the head's maps into keypoints."""

    stride: float
    locref_std: float
    location_refinement: bool
    apply_sigmoid: bool
    clip_scores: bool

    @property
    def likelihood_clip(self) -> tuple[float, float] | None:
        """The bundle's ``likelihood_clip``."""
        return (0.0, 1.0) if self.clip_scores else None

    def keypoints(self, maps: dict[str, np.ndarray]) -> np.ndarray:
        """``[K, 3]`` from NCHW ``scmap``/``locref`` maps, batch axis dropped (our decode)."""
        return find_peaks_reference(
            maps["scmap"],
            maps.get("locref"),
            self.stride,
            self.locref_std,
            dtype=np.float64,
            likelihood_clip=self.likelihood_clip,
        )


def build_network(model: Dlc3Model) -> Any:
    """DeepLabCut's ``PoseModel`` for ``model``, weights loaded strictly, in eval mode."""
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    try:
        net = PoseModel.build(copy.deepcopy(model.config["model"]), pretrained_backbone=False)
    except Exception as exc:  # DeepLabCut's registries raise KeyError/TypeError/ValueError
        raise Dlc3ImportError(
            f"{model.config_path}: field 'model': DeepLabCut cannot build this network "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    try:
        net.load_state_dict(model.state_dict, strict=True)
    except RuntimeError as exc:
        raise Dlc3ImportError(
            f"{model.path}: the weights do not match the network its config "
            f"({model.config_path.name}, net_type {model.net_type}) describes: "
            f"{_mismatch_summary(str(exc))}"
        ) from exc
    return net.eval()


def _mismatch_summary(message: str) -> str:
    """PyTorch's multi-line ``load_state_dict`` error, in one line."""
    parts = []
    for label in ("Missing key(s)", "Unexpected key(s)"):
        match = re.search(re.escape(label) + r" in state_dict: ([^\n]*)", message)
        if match:
            keys = [k.strip().strip('"') for k in match.group(1).rstrip(". ").split(",")]
            shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
            parts.append(f"{len(keys)} {label.lower().replace('(s)', 's')} ({shown})")
    sizes = re.findall(r"size mismatch for ([^:]+): (copying [^\n]*)", message)
    if sizes:
        name, detail = sizes[0]
        parts.append(f"{len(sizes)} size mismatches ({name}: {detail.strip()})")
    return "; ".join(parts) or message.splitlines()[0]


def decoding_for(model: Dlc3Model, net: Any) -> Decoding:
    """The predictor's settings, with the stride of the built network."""
    predictor = model.head.get("predictor") or {}
    return Decoding(
        stride=float(net.get_stride(HEAD)),
        locref_std=float(predictor.get("locref_std", 7.2801)),
        location_refinement=bool(predictor.get("location_refinement", True)),
        apply_sigmoid=bool(predictor.get("apply_sigmoid", True)),
        clip_scores=bool(predictor.get("clip_scores", False)),
    )


def bundle_graph(net: Any, pre: Preprocessing, dec: Decoding) -> Any:
    """A ``torch.nn.Module``: uint8 RGB ``[N, H, W, 3]`` → ``scmap`` (and ``locref``), NCHW."""
    import torch
    from torch.nn import functional

    class BundleGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
            x = image.permute(0, 3, 1, 2).to(torch.float32) / 255.0
            if pre.pad_divisor is not None:
                dh, dw = pre.pad_divisor
                height, width = x.shape[2], x.shape[3]
                pads = (0, (dw - width % dw) % dw, 0, (dh - height % dh) % dh)
                x = functional.pad(x, pads, "reflect")
            if pre.normalize:
                x = (x - self.mean) / self.std
            out = self.net(x)[HEAD]
            heatmap = torch.sigmoid(out["heatmap"]) if dec.apply_sigmoid else out["heatmap"]
            if dec.location_refinement:
                return heatmap, out["locref"]
            return (heatmap,)

    return BundleGraph().eval()


def export_onnx(graph: Any, dec: Decoding, opset: int, example_hw: tuple[int, int]) -> bytes:
    """The wrapped network as ONNX (TorchScript exporter; dynamic batch, height and width)."""
    import torch

    names = ["scmap"] + (["locref"] if dec.location_refinement else [])
    axes = {"image": {0: "batch", 1: "height", 2: "width"}}
    axes.update({n: {0: "batch", 2: "grid_height", 3: "grid_width"} for n in names})
    example = torch.zeros((1, *example_hw, 3), dtype=torch.uint8)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on shape arithmetic, deprecation notes
        torch.onnx.export(
            graph,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["image"],
            output_names=names,
            dynamic_axes=axes,
        )
    return buffer.getvalue()


def torch_reference(net: Any, pre: Preprocessing, dec: Decoding) -> NetworkFn:
    """DeepLabCut's network and predictor in PyTorch on one RGB frame: ``scmap``/``locref``
    (as decoded: after the sigmoid if any) and DeepLabCut's own ``keypoints``."""
    import torch

    def run(frame: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            outputs = net(torch.from_numpy(pre.apply(frame)))
            poses = net.get_predictions(outputs)[HEAD]["poses"]
        heatmap = outputs[HEAD]["heatmap"]
        if dec.apply_sigmoid:
            heatmap = torch.sigmoid(heatmap)
        result = {"scmap": heatmap[0].numpy(), "keypoints": poses[0, 0].numpy()}
        if dec.location_refinement:
            result["locref"] = outputs[HEAD]["locref"][0].numpy()
        return result

    return run


def ort_candidate(model_bytes: bytes, dec: Decoding) -> NetworkFn:
    """The bundle's graph on ONNX Runtime, decoded as the estimator decodes it."""
    maps = ort_network(model_bytes)

    def run(frame: np.ndarray) -> dict[str, np.ndarray]:
        out = maps(frame)
        if "keypoints" in out:  # in-graph peaks; the estimator clips the likelihood
            kp = np.asarray(out["keypoints"], np.float64).copy()
            if dec.likelihood_clip is not None:
                kp[:, 2] = np.clip(kp[:, 2], *dec.likelihood_clip)
            return {"keypoints": kp}
        return {**out, "keypoints": dec.keypoints(out)}

    return run


def project_root(model: Dlc3Model) -> Path | None:
    """The model's DeepLabCut project folder, when the config names one that exists here."""
    value = (model.config.get("metadata") or {}).get("project_path")
    if value and Path(value).is_dir():
        return Path(value)
    return None


def project_frames(root: Path | None, limit: int = PROJECT_FRAMES) -> list[Path]:
    """Labelled frames of the project (``labeled-data/<video>/*.png``), evenly picked."""
    if root is None:
        return []
    paths = sorted(
        p for p in (root / "labeled-data").glob("*/*.png") if not p.parent.name.endswith("_labeled")
    )
    if len(paths) > limit:
        picks = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in sorted(set(picks.tolist()))]
    return paths


def project_skeleton(root: Path | None, bodyparts: list[str]) -> list[list[str]]:
    """The project's ``config.yaml`` skeleton, edges between this model's keypoints only."""
    if root is None or not (root / "config.yaml").is_file():
        return []
    import yaml

    try:
        cfg = yaml.safe_load((root / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    edges = cfg.get("skeleton") or []
    known = set(bodyparts)
    return [
        [str(a), str(b)]
        for edge in edges
        if isinstance(edge, (list, tuple)) and len(edge) == 2
        for a, b in [edge]
        if a in known and b in known and a != b
    ]


def parity_frames(model: Dlc3Model, images: ImagesArg | None) -> tuple[list[np.ndarray], str]:
    """The frames for the parity check and a description of where they came from."""
    if images is not None:
        return load_frames(images), "given images"
    paths = project_frames(project_root(model))
    if paths:
        return read_rgb_frames(paths), "project labelled frames"
    return scene_frames_rgb(), "synthetic scene"


def scene_frames_rgb() -> list[np.ndarray]:
    """Frames of the synthetic arena (an animal seen from above: what a pose network expects;
    random blobs drive a BatchNorm network far outside its range): three at 240x320 like a
    rig's network input, and one of an odd size that exercises the padding."""
    from realtime_pose.sources.synthetic_scene import random_sample

    rng = np.random.default_rng(16)
    sizes = [(320, 240)] * 3 + [(297, 203)]
    return [np.ascontiguousarray(random_sample(rng, w, h)[0][:, :, ::-1]) for w, h in sizes]


def map_sizes(
    candidate: NetworkFn, frames: list[np.ndarray], pre: Preprocessing, stride: float
) -> list[dict[str, list[int]]]:
    """Score-map sizes the graph produces per distinct frame size, checked against the stride.

    The maps are up to three cells larger than the input over the stride (each stride-2
    backbone stage rounds up, less than two cells in all at the head's stride, and the 3x3
    stride-2 transposed convolution of the head adds one: CSPNeXt-s gives 17x21 for 240x320 and
    15x21 for 203x297 at stride 16) and DeepLabCut decodes them on the grid
    ``i*stride + stride/2`` all the same; farther apart means the stride does not describe this
    graph (a factor of two, say).

    Raises
    ------
    Dlc3ImportError
        A map whose size is more than three cells from the padded input over the stride.
    """
    sizes = []
    seen: set[tuple[int, int]] = set()
    for frame in frames:
        hw = (int(frame.shape[0]), int(frame.shape[1]))
        if hw in seen:
            continue
        seen.add(hw)
        grid = candidate(frame).get("scmap")
        if grid is None:
            continue
        ph, pw = pre.padded_size(*hw)
        gh, gw = int(grid.shape[1]), int(grid.shape[2])
        if abs(gh - ph / stride) > MAP_SLACK_CELLS or abs(gw - pw / stride) > MAP_SLACK_CELLS:
            raise Dlc3ImportError(
                f"the graph's score map is {gh}x{gw} for a {ph}x{pw} network input, which does "
                f"not fit DeepLabCut's stride {stride:g} for this model"
            )
        sizes.append({"frame_hw": list(hw), "network_input_hw": [ph, pw], "map_hw": [gh, gw]})
    return sizes


def _warn_if_multi_animal(model: Dlc3Model) -> None:
    """Warn that a model of several individuals is read as single-animal."""
    individuals = (model.config.get("metadata") or {}).get("individuals") or []
    if len(individuals) > 1:
        log.warning(
            "%s: %d individuals; the bundle finds one peak per keypoint (single animal)",
            model.path,
            len(individuals),
        )


def _append_keypoints(
    maps_model: bytes,
    model: Dlc3Model,
    dec: Decoding,
    reference: NetworkFn,
    frames: list[np.ndarray],
    checks: dict[str, Any],
) -> tuple[bytes, ParityReport]:
    """``maps_model`` with in-graph peaks appended, checked against DeepLabCut in PyTorch."""
    from realtime_pose.exporters.in_graph_peaks import append_checked_peaks

    return append_checked_peaks(
        maps_model,
        reference,
        lambda candidate: ort_candidate(candidate, dec),
        frames,
        what=str(model.path),
        parity=checks,
        num_keypoints=len(model.bodyparts),
        stride=dec.stride,
        locref_stdev=dec.locref_std,
        locref_name="locref" if dec.location_refinement else None,
    )


def _provenance(
    model: Dlc3Model,
    root: Path | None,
    pre: Preprocessing,
    dec: Decoding,
    grids: list[dict[str, list[int]]],
    opset: int,
    reports: dict[str, ParityReport],
) -> dict[str, Any]:
    """The bundle's ``provenance``: the DeepLabCut model, its pre- and postprocessing, checks."""
    return {
        "exported_from": "deeplabcut-pytorch",
        "dlc_model_kind": model.kind,
        "dlc_model_file": str(model.path.resolve()),
        "dlc_config_file": str(model.config_path.resolve()),
        "snapshot": model.path.name,
        "net": model.net_type,
        "method": str(model.config.get("method", "bu")),
        "head": {"type": model.head.get("type"), "predictor": model.head.get("predictor")},
        "project": None if root is None else str(root.resolve()),
        "preprocessing": pre.describe(),
        "decoding": {
            "stride": dec.stride,
            "offset": "stride/2",
            "locref_std": dec.locref_std,
            "apply_sigmoid": dec.apply_sigmoid,
            "clip_scores": dec.clip_scores,
        },
        "map_sizes": grids,
        "opset": opset,
        "tools": tool_versions("deeplabcut", "torch", "onnx", "onnxruntime"),
        "parity": {k: r.to_dict() for k, r in reports.items()},
    }


def _bundle_meta(
    model: Dlc3Model,
    name: str | None,
    pre: Preprocessing,
    dec: Decoding,
    outputs: dict[str, Any],
    grids: list[dict[str, list[int]]],
    opset: int,
    reports: dict[str, ParityReport],
) -> dict[str, Any]:
    """The bundle's ``bundle.json``, with the project's skeleton when its folder is reachable."""
    root = project_root(model)
    return {
        "name": name or model.path.stem,
        "keypoints": model.bodyparts,
        "skeleton": project_skeleton(root, model.bodyparts),
        "stride": dec.stride,
        "locref_stdev": dec.locref_std,
        "likelihood_clip": dec.likelihood_clip,
        "input": {"name": "image", "layout": "HWC", "dtype": "uint8", "color": "RGB"},
        "outputs": outputs,
        "provenance": _provenance(model, root, pre, dec, grids, opset, reports),
    }


def import_dlc3(
    model_path: str | Path,
    output_dir: str | Path,
    *,
    opset: int = 17,
    in_graph_peaks: bool = False,
    parity_images: ImagesArg | None = None,
    tolerance_px: float = 1e-3,
    raw_tolerance: float = 1e-3,
    name: str | None = None,
    overwrite: bool = False,
) -> Bundle:
    """Convert a DeepLabCut 3 model to a bundle, after a PyTorch vs ONNX Runtime parity check.

    Parameters
    ----------
    model_path
        An exported ``.pt`` (``deeplabcut.export_model``), a training ``snapshot-*.pt`` beside
        its ``pytorch_config.yaml``, or the folder holding either (see
        :func:`.dlc3_source.pick_model_file`).
    output_dir
        The bundle folder to write (appears only when the check passed).
    opset
        ONNX opset, 13–18.
    in_graph_peaks
        Output ``keypoints`` ``[1, K, 3]`` instead of the maps.
    parity_images
        Frames (paths or RGB uint8 arrays) for the check; default the project's labelled
        frames when its folder is reachable, else frames of the synthetic arena scene.
    tolerance_px, raw_tolerance
        Limits of the parity check (keypoints in network pixels, raw outputs).
    name
        Bundle name (default the model file's name without ``.pt``).
    overwrite
        Replace an existing bundle at ``output_dir`` (else refused before any work).

    Raises
    ------
    Dlc3ImportError
        A file that is not a supported DeepLabCut 3 model, or weights that do not fit its config.
    ParityError
        ONNX Runtime disagrees with PyTorch beyond tolerance (nothing is written).
    """
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is not supported: use {MIN_OPSET}–{MAX_OPSET}")
    check_target(output_dir, overwrite)
    model = read_dlc3_model(model_path)
    pre = Preprocessing.from_config(model.config, model.config_path)
    net = build_network(model)
    dec = decoding_for(model, net)
    _warn_if_multi_animal(model)
    maps_model = export_onnx(bundle_graph(net, pre, dec), dec, opset, (64, 64))

    frames, source = parity_frames(model, parity_images)
    reference = torch_reference(net, pre, dec)
    candidate = ort_candidate(maps_model, dec)
    checks = {
        "stride": dec.stride,
        "locref_stdev": dec.locref_std,
        "raw_tolerance": raw_tolerance,
        "tolerance_px": tolerance_px,
        "source": source,
    }
    what = f"import of {model.path}"
    reports: dict[str, ParityReport] = {
        "torch_vs_onnx": require_parity(
            reference, candidate, frames, label="PyTorch vs ONNX Runtime", what=what, **checks
        )
    }
    grids = map_sizes(candidate, frames, pre, dec.stride)

    final_model = maps_model
    outputs: dict[str, Any] = {"scoremap": {"name": "scmap", "layout": "NCHW"}}
    if dec.location_refinement:
        outputs["locref"] = {"name": "locref", "layout": "NCHW"}
    if in_graph_peaks:
        final_model, reports["in_graph_peaks"] = _append_keypoints(
            maps_model, model, dec, reference, frames, checks
        )
        outputs = {"keypoints": {"name": "keypoints"}}

    meta = _bundle_meta(model, name, pre, dec, outputs, grids, opset, reports)
    with staged_folder(output_dir, overwrite) as tmp:
        write_bundle(tmp, final_model, meta)
    return load_bundle(output_dir)
