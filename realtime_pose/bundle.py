"""Model bundles: a folder (or a ``.zip`` of one) holding ``model.onnx`` and ``bundle.json``.

The bundle is the one artefact that travels from the training machine to the rig. ``bundle.json``
says everything the runtime needs to turn the network's outputs into frame-pixel keypoints:
keypoint names, stride, ``locref_stdev``, the input layout and the names and layouts of the
outputs. It is validated at load, and a bundle that does not match its own graph is refused with
a message naming the field.

Example ``bundle.json``::

    {
      "schema_version": 1,
      "name": "openfield-mobilenet_v2_0.35",
      "keypoints": ["snout", "leftear", "rightear", "tailbase"],
      "skeleton": [["snout", "leftear"], ["snout", "rightear"]],
      "stride": 8,
      "locref_stdev": 7.2801,
      "input": {"name": "image", "layout": "HWC", "dtype": "uint8", "color": "RGB",
                "pad_to": 16},
      "outputs": {"scoremap": {"name": "scmap", "layout": "NCHW"},
                  "locref": {"name": "locref", "layout": "NCHW"}},
      "provenance": {"backbone": "mobilenet_v2_0.35", "iterations": 8000}
    }
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from realtime_pose.geometry import Size
from realtime_pose.util.validation import format_validation_error

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MODEL_FILENAME = "model.onnx"
META_FILENAME = "bundle.json"
ENGINE_CACHE_DIRNAME = "engines"
NAME_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._+ -]{0,126}[A-Za-z0-9._+-])?")
"""A bundle's ``name``: it goes into file names (recordings, tables, scorers), so 1-128
letters, digits, spaces and ``. _ + -``, starting with a letter or digit: no path separators,
no hidden files, nothing a shell or another OS reads differently."""
ZIP_LAYOUT = 2
"""Bumped when what is unpacked from a zip changes (2: no engine plans), so older unpacked
copies are not reused."""


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """The network input: one image, batch 1, normalisation inside the graph."""

    name: str = "image"
    layout: Literal["HWC"] = "HWC"
    dtype: Literal["uint8", "float32"] = "uint8"
    color: Literal["RGB", "BGR", "GRAY"] = "RGB"
    height: int | None = Field(default=None, gt=0, description="fixed input height, or None")
    width: int | None = Field(default=None, gt=0, description="fixed input width, or None")
    scale: float = Field(
        default=1.0,
        gt=0,
        le=4,
        description=(
            "frames are resized by this factor before the network (chosen at training from the "
            "animals' size, trainers/scale.py); keypoints are reported in frame pixels"
        ),
    )
    pad_to: int = Field(
        default=1,
        ge=1,
        le=256,
        description=(
            "the runtime pads the network input (bottom and right, zeros) to a multiple of this; "
            "our stride-8 networks need 16, or their stride-16 stage pads a side of 8 x an odd "
            "number on both sides and every keypoint moves by half a stride-16 cell"
        ),
    )

    @model_validator(mode="after")
    def _both_or_neither(self) -> InputSpec:
        if (self.height is None) != (self.width is None):
            raise ValueError("input.height and input.width must be given together (fixed size)")
        return self

    @property
    def channels(self) -> int:
        """Number of colour channels the graph expects."""
        return 1 if self.color == "GRAY" else 3

    @property
    def fixed_size(self) -> Size | None:
        """The one input size the graph accepts, or ``None`` when it accepts any."""
        if self.height is None or self.width is None:
            return None
        return Size(self.width, self.height)


class TensorSpec(_Strict):
    """One graph output: its name and memory layout."""

    name: str
    layout: Literal["NHWC", "NCHW"] = "NHWC"


class KeypointsSpec(_Strict):
    """In-graph peak extraction: an output of shape ``[1, K, 3]`` (x, y, likelihood) in
    network-input pixels."""

    name: str


class OutputsSpec(_Strict):
    """Either score maps (plus optional location refinement) or in-graph keypoints."""

    scoremap: TensorSpec | None = None
    locref: TensorSpec | None = None
    keypoints: KeypointsSpec | None = None
    paf: TensorSpec | None = Field(
        default=None, description="part-affinity fields (animals that look alike), 2 per edge"
    )

    @model_validator(mode="after")
    def _something_to_read(self) -> OutputsSpec:
        if self.scoremap is None and self.keypoints is None:
            raise ValueError("outputs needs 'scoremap' (with optional 'locref') or 'keypoints'")
        if self.locref is not None and self.scoremap is None:
            raise ValueError("outputs.locref needs outputs.scoremap")
        if self.paf is not None and (self.scoremap is None or self.locref is None):
            raise ValueError("outputs.paf needs outputs.scoremap and outputs.locref")
        return self

    def names(self) -> list[str]:
        """Output names in the order engines return them: keypoints, or scoremap then locref."""
        if self.keypoints is not None:
            return [self.keypoints.name]
        names = [self.scoremap.name]  # type: ignore[union-attr]
        if self.locref is not None:
            names.append(self.locref.name)
        if self.paf is not None:
            names.append(self.paf.name)
        return names


def animal_keypoint_names(animals: Sequence[str], bodyparts: Sequence[str]) -> list[str]:
    """``animal/bodypart`` for every animal and bodypart: a multi-animal bundle's keypoints, in
    channel order (all of the first animal's bodyparts, then the second's, ...)."""
    return [f"{a}/{b}" for a in animals for b in bodyparts]


def bodypart_edges(skeleton: Iterable[Sequence[object]]) -> list[tuple[str, str]]:
    """The skeleton between bodyparts: each end's ``animal/`` prefix removed (ends without one
    are kept as they are), each edge once, in first-seen order. A multi-animal skeleton repeats
    its edges per animal; writers and trainers that work per bodypart want them once."""
    ends = ((str(a).split("/", 1)[-1], str(b).split("/", 1)[-1]) for a, b in skeleton)
    return list(dict.fromkeys(ends))


def animal_layout(keypoints: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """The animals and bodyparts of keypoints laid out by :func:`animal_keypoint_names`, or
    ``None`` for any other keypoints (one animal)."""
    if not keypoints or not all("/" in k for k in keypoints):
        return None
    animals = list(dict.fromkeys(k.split("/", 1)[0] for k in keypoints))
    bodyparts = list(dict.fromkeys(k.split("/", 1)[1] for k in keypoints))
    if animal_keypoint_names(animals, bodyparts) != list(keypoints):
        return None
    return animals, bodyparts


class AnimalsSpec(_Strict):
    """Several animals in one network (``animals`` in ``bundle.json``; absent: one animal).

    ``decoding: identity_channels``: every (animal, bodypart) has its own score map, named
    ``animal/bodypart`` in ``keypoints`` (all of the first animal's bodyparts, then the
    second's, ...). Each animal's keypoints are then found exactly like a single animal's, so the
    engine, the peak search, forward prediction and the rules work unchanged; the animals are
    the identities the labels named (``female``, ``male``), which a network can tell apart only
    where they look different (sex, size, markings).

    ``decoding: part_affinity``: animals that look alike. The network has one score map per
    bodypart shared by all animals, location refinement, and a part-affinity field per edge of
    ``edges`` (``outputs.paf``); a Numba kernel groups each frame's peaks into animals
    (:mod:`realtime_pose.inference.assembly`) and a tracker keeps each animal in one pose slot
    for as long as it is followed (:mod:`realtime_pose.inference.unmarked_tracking`). ``names``
    are then the slots (``animal0`` ...), not identities; the stream's ``track_ids`` say which
    track each slot holds.
    """

    decoding: Literal["identity_channels", "part_affinity"] = "identity_channels"
    names: list[str] = Field(
        min_length=1,
        description=(
            "identity_channels: the animals' identities; part_affinity: the pose's animal slots "
            "(as many as are tracked at once), which carry no identity"
        ),
    )
    bodyparts: list[str] = Field(min_length=1, description="each animal's keypoints")
    edges: list[tuple[int, int]] | None = Field(
        default=None,
        description=(
            "part_affinity: the part-affinity graph, bodypart index pairs (parent, child) in "
            "assembly order; edge l's field is channels 2l (x) and 2l+1 (y) of outputs.paf"
        ),
    )

    @field_validator("names", "bodyparts")
    @classmethod
    def _distinct_plain_names(cls, names: list[str]) -> list[str]:
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"names must be unique; repeated: {dupes}")
        slashed = [n for n in names if "/" in n or not n]
        if slashed:
            raise ValueError(f"names must be non-empty and contain no '/': {slashed}")
        return names

    @model_validator(mode="after")
    def _edges_for_part_affinity(self) -> AnimalsSpec:
        if self.decoding == "identity_channels":
            if self.edges is not None:
                raise ValueError("'edges' belongs to decoding: part_affinity")
            return self
        if self.edges is None and len(self.bodyparts) > 1:
            raise ValueError("decoding: part_affinity needs 'edges' (the part-affinity graph)")
        k = len(self.bodyparts)
        bad = [e for e in self.edges or [] if not (0 <= e[0] < k and 0 <= e[1] < k) or e[0] == e[1]]
        if bad:
            raise ValueError(f"edges {bad}: need two different bodypart indices in 0..{k - 1}")
        return self

    @property
    def grouped(self) -> bool:
        """Whether keypoints are grouped into animals after the network (part affinity), not
        named by it (identity channels)."""
        return self.decoding == "part_affinity"

    @property
    def score_channels(self) -> int:
        """Score maps the network outputs: one per bodypart when animals are grouped after the
        network, one per animal and bodypart with identity channels."""
        k = len(self.bodyparts)
        return k if self.grouped else k * len(self.names)

    def keypoint_names(self) -> list[str]:
        """``animal/bodypart`` for every animal (or slot) and bodypart: the pose's rows."""
        return animal_keypoint_names(self.names, self.bodyparts)

    def rows_of(self, animal: str) -> slice:
        """The pose rows of ``animal``."""
        k = len(self.bodyparts)
        start = self.names.index(animal) * k
        return slice(start, start + k)


class LabelDistances(_Strict):
    """How far apart body parts were in the training labels (``label_distances``).

    One entry per keypoint pair (the skeleton's edges, or every pair without a skeleton), in
    frame pixels as the live loop reports poses; written at export from the training labels,
    read by live capture to flag poses whose body is out of shape
    (:mod:`realtime_pose.inference.doubt`). For several animals the pairs name bodyparts and
    hold within each animal.
    """

    pairs: list[tuple[str, str]] = Field(min_length=1)
    min_px: list[float]
    max_px: list[float]
    labelled_frames: int = Field(ge=1, description="how many labelled frames the range is from")

    @model_validator(mode="after")
    def _one_range_per_pair(self) -> LabelDistances:
        n = len(self.pairs)
        if len(self.min_px) != n or len(self.max_px) != n:
            raise ValueError(
                f"min_px and max_px need one value per pair ({n}), got "
                f"{len(self.min_px)} and {len(self.max_px)}"
            )
        bad = [i for i in range(n) if not 0 <= self.min_px[i] <= self.max_px[i]]
        if bad:
            raise ValueError(f"pairs {bad}: need 0 <= min_px <= max_px")
        return self


class BundleMeta(_Strict):
    """Everything in ``bundle.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    schema_version: int
    name: str = "model"
    keypoints: list[str] = Field(min_length=1)
    skeleton: list[tuple[str, str]] = Field(default_factory=list)
    stride: float = Field(gt=0, description="network input pixels per score-map cell")
    locref_stdev: float = Field(default=7.2801, gt=0)
    likelihood_clip: tuple[float, float] | None = Field(
        default=None,
        description=(
            "clip each keypoint's likelihood (the score at its peak) to [low, high] after the "
            "peak is found; the peak search runs on the unclipped map (DeepLabCut 3 heads with "
            "clip_scores, whose maps are not squashed by a sigmoid)"
        ),
    )
    input: InputSpec = Field(default_factory=InputSpec)
    outputs: OutputsSpec
    animals: AnimalsSpec | None = Field(
        default=None, description="several animals in one network; absent: one animal"
    )
    label_distances: LabelDistances | None = Field(
        default=None, description="body-part distances in the training labels; absent: unknown"
    )
    provenance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(
                f"unknown schema_version {v}; this realtime-pose reads version {SCHEMA_VERSION}"
            )
        return v

    @field_validator("name")
    @classmethod
    def _file_name_safe(cls, name: str) -> str:
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"{name!r} cannot be used: the name goes into recording and table file names, "
                "so use 1-128 letters, digits, spaces and . _ + -, starting with a letter or "
                "digit (no '/', '\\', leading '.' or control characters)"
            )
        return name

    @field_validator("keypoints")
    @classmethod
    def _unique_keypoints(cls, names: list[str]) -> list[str]:
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"keypoint names must be unique; repeated: {dupes}")
        return names

    @field_validator("likelihood_clip")
    @classmethod
    def _ordered_clip(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not v[0] < v[1]:
            raise ValueError(f"likelihood_clip must be [low, high] with low < high, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _skeleton_uses_keypoints(self) -> BundleMeta:
        unknown = sorted({n for edge in self.skeleton for n in edge} - set(self.keypoints))
        if unknown:
            raise ValueError(f"skeleton names keypoints that are not in 'keypoints': {unknown}")
        return self

    @model_validator(mode="after")
    def _animals_match_keypoints(self) -> BundleMeta:
        if self.animals is not None and self.keypoints != self.animals.keypoint_names():
            expected = self.animals.keypoint_names()
            raise ValueError(
                "with 'animals', 'keypoints' must be animal/bodypart for every animal and "
                f"bodypart in order ({expected[:3]}...), got {self.keypoints[:3]}..."
            )
        return self

    @model_validator(mode="after")
    def _paf_with_grouped_animals(self) -> BundleMeta:
        grouped = self.animals is not None and self.animals.grouped
        if grouped and self.outputs.paf is None and self.animals.edges:  # type: ignore[union-attr]
            raise ValueError("animals.decoding part_affinity needs outputs.paf")
        if self.outputs.paf is not None and not grouped:
            raise ValueError("outputs.paf needs animals with decoding: part_affinity")
        return self

    @model_validator(mode="after")
    def _label_distances_use_keypoints(self) -> BundleMeta:
        if self.label_distances is None:
            return self
        names = set(self.animals.bodyparts if self.animals is not None else self.keypoints)
        unknown = sorted({n for pair in self.label_distances.pairs for n in pair} - names)
        if unknown:
            raise ValueError(f"label_distances.pairs name unknown keypoints: {unknown}")
        return self

    @property
    def num_keypoints(self) -> int:
        """The number of keypoint rows in a pose (all animals' together)."""
        return len(self.keypoints)

    @property
    def score_channels(self) -> int:
        """Score maps the network outputs (fewer than the pose's rows when animals that look
        alike are grouped after the network)."""
        return self.animals.score_channels if self.animals is not None else len(self.keypoints)


@dataclass(frozen=True)
class Bundle:
    """A loaded, validated model bundle."""

    root: Path
    meta: BundleMeta

    @property
    def model_path(self) -> Path:
        """Path of the ONNX graph."""
        return self.root / MODEL_FILENAME

    @property
    def keypoints(self) -> list[str]:
        """Keypoint names, in output-channel order."""
        return self.meta.keypoints

    @property
    def engine_cache_dir(self) -> Path:
        """Folder where GPU engines built for this bundle are cached."""
        return self.root / ENGINE_CACHE_DIRNAME

    def model_sha256(self) -> str:
        """SHA-256 of ``model.onnx`` (names cached engines and identifies the model in logs)."""
        return _sha256(self.model_path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract_zip(path: Path, cache_root: Path | None) -> Path:
    """Unpack a zipped bundle once into a cache folder keyed by the zip's hash.

    Engine plans in the zip (``engines/``: serialised TensorRT engines, ORT's TensorRT cache)
    are not unpacked: a plan is code for the GPU that TensorRT runs as it is, valid only for the
    GPU and TensorRT it was built with, and a file that came in an archive is not to be trusted
    that far. Engines are built on this machine and cached beside the unpacked bundle.
    """
    cache_root = cache_root or Path.home() / ".cache" / "realtime-pose" / "bundles"
    target = cache_root / f"{_sha256(path)[:16]}-{ZIP_LAYOUT}"
    if (target / META_FILENAME).is_file():
        return target
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            meta_names = [n for n in names if Path(n).name == META_FILENAME]
            if not meta_names:
                raise BundleError(f"{path}: the zip holds no {META_FILENAME}")
            prefix = str(Path(meta_names[0]).parent)
            tmp = target.with_suffix(".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            plans = []
            for name in names:
                rel = Path(name).relative_to(prefix) if prefix != "." else Path(name)
                if name.endswith("/") or ".." in rel.parts or rel.is_absolute():
                    continue
                if rel.parts[0] == ENGINE_CACHE_DIRNAME:
                    plans.append(name)
                    continue
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out)
            tmp.rename(target)
            if plans:
                log.warning(
                    "%s: %d engine plan(s) under %s/ not unpacked (%s): engines are never loaded "
                    "from a zip; they are built on this machine and cached in %s",
                    path,
                    len(plans),
                    ENGINE_CACHE_DIRNAME,
                    ", ".join(plans[:3]) + (", ..." if len(plans) > 3 else ""),
                    target / ENGINE_CACHE_DIRNAME,
                )
    except zipfile.BadZipFile as exc:
        raise BundleError(f"{path}: not a valid zip file ({exc})") from exc
    return target


def read_meta(path: str | Path) -> BundleMeta:
    """Read and validate ``bundle.json`` alone (no graph check)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BundleError(f"{path}: missing; a bundle needs {META_FILENAME}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: expected a JSON object at the top level")
    if "schema_version" not in raw:
        raise BundleError(f"{path}: field 'schema_version' is missing")
    try:
        return BundleMeta.model_validate(raw)
    except ValidationError as exc:
        raise BundleError(format_validation_error(exc, path)) from exc


def _graph_io(model_path: Path) -> tuple[dict[str, list], dict[str, list]]:
    """Input and output names with their (possibly symbolic) shapes, read via ONNX Runtime."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises several private exception types
        raise BundleError(f"{model_path}: ONNX Runtime cannot load the graph ({exc})") from exc
    inputs = {i.name: list(i.shape) for i in sess.get_inputs()}
    outputs = {o.name: list(o.shape) for o in sess.get_outputs()}
    return inputs, outputs


def check_graph(meta: BundleMeta, model_path: Path) -> None:
    """Check that the graph's inputs and outputs match ``meta``; raise :class:`BundleError`."""
    inputs, outputs = _graph_io(model_path)
    where = model_path.parent / META_FILENAME
    if meta.input.name not in inputs:
        raise BundleError(
            f"{where}: field 'input.name' is {meta.input.name!r}, but the graph's inputs are "
            f"{sorted(inputs)}"
        )
    in_shape = inputs[meta.input.name]
    if len(in_shape) != 4:
        raise BundleError(
            f"{where}: the graph input {meta.input.name!r} has shape {in_shape}; "
            "expected [batch, height, width, channels]"
        )
    if isinstance(in_shape[3], int) and in_shape[3] != meta.input.channels:
        raise BundleError(
            f"{where}: field 'input.color' is {meta.input.color} ({meta.input.channels} "
            f"channels) but the graph input has {in_shape[3]} channels"
        )
    k = meta.score_channels
    spec = meta.outputs
    expected: list[tuple[str, str, str, int]] = []  # (field, name, layout, channels)
    if spec.keypoints is not None:
        expected.append(("outputs.keypoints.name", spec.keypoints.name, "NKC", k))
    else:
        assert spec.scoremap is not None
        expected.append(("outputs.scoremap.name", spec.scoremap.name, spec.scoremap.layout, k))
        if spec.locref is not None:
            expected.append(("outputs.locref.name", spec.locref.name, spec.locref.layout, 2 * k))
        if spec.paf is not None and meta.animals is not None:
            edges = 2 * len(meta.animals.edges or ())
            expected.append(("outputs.paf.name", spec.paf.name, spec.paf.layout, edges))
    for field, name, layout, channels in expected:
        if name not in outputs:
            raise BundleError(
                f"{where}: field '{field}' is {name!r}, which is not an output of the graph "
                f"(outputs: {sorted(outputs)})"
            )
        shape = outputs[name]
        if len(shape) != (3 if layout == "NKC" else 4):
            raise BundleError(f"{where}: graph output {name!r} has rank {len(shape)} ({shape})")
        axis = {"NHWC": 3, "NCHW": 1, "NKC": 1}[layout]
        got = shape[axis]
        if isinstance(got, int) and got != channels:
            what = {"outputs.locref.name": "2 x keypoints", "outputs.paf.name": "2 x edges"}
            listed = f"{k} keypoints"
            if meta.animals is not None and meta.animals.grouped:
                listed = f"{k} bodyparts shared by the animals"
            raise BundleError(
                f"{where}: graph output {name!r} has {got} channels ({layout} shape {shape}) "
                f"but the bundle lists {listed}, so {channels} "
                f"({what.get(field, 'keypoints')}) were expected"
            )


def load_bundle(
    path: str | Path, *, validate_graph: bool = True, zip_cache: Path | None = None
) -> Bundle:
    """Load a bundle folder or ``.zip`` and validate it.

    Parameters
    ----------
    path
        Folder holding ``model.onnx`` and ``bundle.json``, or a ``.zip`` of such a folder.
    validate_graph
        Also open the graph and check output names and channel counts against the metadata.
    zip_cache
        Where zipped bundles are unpacked (default ``~/.cache/realtime-pose/bundles``).

    Raises
    ------
    BundleError
        With a message naming the file and field at fault.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise BundleError(f"{root}: no such bundle (expected a folder or .zip)")
    if root.is_file():
        if root.suffix.lower() != ".zip":
            raise BundleError(f"{root}: a bundle is a folder or a .zip, not a {root.suffix} file")
        root = _extract_zip(root, zip_cache)
    meta = read_meta(root / META_FILENAME)
    model_path = root / MODEL_FILENAME
    if not model_path.is_file():
        raise BundleError(f"{model_path}: missing; a bundle needs {MODEL_FILENAME}")
    if validate_graph:
        check_graph(meta, model_path)
    return Bundle(root=root.resolve(), meta=meta)


def write_bundle(
    folder: str | Path,
    model: bytes | str | Path,
    meta: BundleMeta | dict[str, Any],
    *,
    validate_graph: bool = True,
) -> Bundle:
    """Write a bundle folder (used by the exporters) and load it back as a check.

    Parameters
    ----------
    folder
        Target folder; created if needed. An existing ``model.onnx``/``bundle.json`` is replaced.
    model
        The serialised ONNX graph (bytes) or a path to one.
    meta
        Bundle metadata; a dict is validated as :class:`BundleMeta`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(meta, dict):
        meta = dict(meta)
        meta.setdefault("schema_version", SCHEMA_VERSION)
        try:
            meta = BundleMeta.model_validate(meta)
        except ValidationError as exc:
            raise BundleError(format_validation_error(exc, folder / META_FILENAME)) from exc
    model_target = folder / MODEL_FILENAME
    if isinstance(model, bytes):
        model_target.write_bytes(model)
    elif Path(model).resolve() != model_target.resolve():
        shutil.copyfile(model, model_target)
    (folder / META_FILENAME).write_text(meta.model_dump_json(indent=2) + "\n")
    return load_bundle(folder, validate_graph=validate_graph)


def zip_bundle(folder: str | Path, target: str | Path) -> Path:
    """Pack a bundle folder (model and metadata only, no engine cache) into one ``.zip``."""
    folder, target = Path(folder), Path(target)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in (MODEL_FILENAME, META_FILENAME):
            zf.write(folder / name, arcname=name)
    return target


def skeleton_indices(meta: BundleMeta) -> list[tuple[int, int]]:
    """The skeleton as pairs of keypoint indices."""
    index = {n: i for i, n in enumerate(meta.keypoints)}
    return [(index[a], index[b]) for a, b in meta.skeleton]


__all__: Sequence[str] = (
    "SCHEMA_VERSION",
    "Bundle",
    "BundleError",
    "BundleMeta",
    "InputSpec",
    "KeypointsSpec",
    "OutputsSpec",
    "TensorSpec",
    "check_graph",
    "load_bundle",
    "read_meta",
    "skeleton_indices",
    "write_bundle",
    "zip_bundle",
)
