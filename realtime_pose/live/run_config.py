"""The run configuration (``realtime-pose run rig.yaml``), validated at start.

Every error names the file and the field, e.g. ``rig.yaml: field 'crop.width': Input should be
greater than 0``. Relative paths (bundle, recording folder, processor files) are resolved against
the config file's folder.

A minimal config::

    source: {kind: camera, device: 0, width: 640, height: 480, fps: 100}
    bundle: models/mouse_bundle

The ``source:``, ``engine:`` and each ``outputs:`` section are validated by the options model of
the plug-in they name (:mod:`realtime_pose.plugins`; ``realtime-pose plugins`` lists them and
their options).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from realtime_pose.geometry import Size
from realtime_pose.live.processors import ProcessorConfig
from realtime_pose.plugins import ENGINES, OUTPUTS, SOURCES, Choice, path_fields
from realtime_pose.rules import RuleConfig, RuleList, parse_rules
from realtime_pose.stream.security import (
    CurveServerKeys,
    insecure_bind_message,
    is_loopback,
)
from realtime_pose.util.validation import format_validation_error
from realtime_pose.view.access import weak_token

SourceSection = SOURCES.section_type()
EngineSection = ENGINES.section_type()
OutputSection = OUTPUTS.section_type()


_S = TypeVar("_S", bound=BaseModel)


class ConfigError(ValueError):
    """A run config that cannot be used; the message names the file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CropConfig(_Section):
    """``crop:``: dynamic cropping around the last confident pose."""

    enabled: bool = False
    width: int = Field(default=192, gt=0, description="crop window width, frame px")
    height: int = Field(default=192, gt=0, description="crop window height, frame px")
    min_likelihood: float = Field(default=0.5, ge=0, le=1)
    lost_after_frames: int = Field(default=3, ge=1)


class TrackingConfig(_Section):
    """``tracking:``: following several animals (multi-animal bundles only).

    Identity channels: motion matches each frame's animals to tracks; identity votes, averaged
    over ``identity_memory_frames``, name the tracks (:mod:`realtime_pose.inference.tracking`).
    Animals that look alike (part affinity): motion (and body size) alone keep each animal in
    its pose slot, a new animal is followed once seen in ``min_hits`` frames, a lost one
    coasts for ``max_missed_s`` (:mod:`realtime_pose.inference.unmarked_tracking`). Options of
    the other kind are ignored.
    """

    enabled: bool = True
    max_distance_px: float = Field(
        default=100.0, gt=0, description="farthest an animal may be from its track's prediction"
    )
    identity_memory_frames: float = Field(
        default=25.0, ge=1, description="frames of identity votes that rename a track"
    )
    identity_weight_px: float = Field(
        default=50.0,
        ge=0,
        description="pixels of motion the network's naming outweighs: rows move to another "
        "name only on stronger motion evidence",
    )
    max_missed_s: float | None = Field(
        default=None,
        gt=0,
        description="a track unseen this long ends (default 1.0 s with identity channels, 0.5 s "
        "for animals that look alike: beyond it a look-alike found there is as likely another)",
    )
    min_hits: int = Field(
        default=3, ge=1, description="look-alikes: frames a new animal is seen before it is tracked"
    )
    motion: Literal["kalman", "last_position"] = Field(
        default="kalman",
        description="look-alikes: match on the Kalman filter's constant-velocity prediction, or "
        "on the last seen pose (which loses animals that cross)",
    )
    size_weight_px: float = Field(
        default=20.0, ge=0, description="look-alikes: pixels a 2.7x body-size difference costs"
    )
    max_animals: int | None = Field(
        default=None, ge=1, description="look-alikes: follow at most this many (default: slots)"
    )


class PredictionConfig(_Section):
    """``prediction:``: Kalman forward prediction to ``t_capture + lead``."""

    enabled: bool = True
    model: Literal["cv", "ca"] = "cv"
    lead_ms: float | None = Field(
        default=None, ge=0, description="fixed lead; null = the measured pipeline latency"
    )
    process_noise: float | None = Field(default=None, gt=0)
    measurement_noise_px: float = Field(default=2.0, gt=0)
    gate: float = Field(default=6.0, gt=0, description="innovation gate, standard deviations")
    reinit_after: int = Field(
        default=3, ge=1, description="consecutive gated measurements before re-initialising"
    )
    min_likelihood: float = Field(default=0.5, ge=0, le=1)
    max_coast_s: float = Field(default=0.5, gt=0)


class CurveConfig(_Section):
    """``stream.curve:``: CURVE encryption and authentication of the stream and control socket.

    Make the files with ``realtime-pose keys --output keys/``; paths are relative to the config.
    """

    secret_key: Path = Field(description="the rig's .key_secret file (keys/rig.key_secret)")
    authorized_clients: Path = Field(
        description="folder of the client .key files admitted (keys/clients/); read at each "
        "connection"
    )

    def server_keys(self) -> CurveServerKeys:
        """The keys as the stream's sockets take them."""
        return CurveServerKeys(self.secret_key, self.authorized_clients)


class StreamConfig(_Section):
    """``stream:``: the ZeroMQ pose stream and control socket (docs/protocol.md).

    Beyond loopback, both sockets need ``curve`` (the control socket may use ``token`` instead;
    it authenticates requests but does not encrypt them).
    """

    enabled: bool = True
    address: str = "tcp://127.0.0.1:5555"
    control_address: str | None = "tcp://127.0.0.1:5556"
    sndhwm: int = Field(default=64, ge=1)
    token: str | None = Field(default=None, description="shared secret for control requests")
    curve: CurveConfig | None = Field(
        default=None, description="CURVE keys for the stream and control socket"
    )


class ViewConfig(_Section):
    """``view:``: the live page in the browser and the JPEG previews it shows.

    The page is served by a child process (``realtime-pose view``, the ``view`` extra) that
    reads the session's stream and sends the page's actions to its control socket, so the
    stream and its control socket must be on. Previews go on the stream's ``frame`` topic
    (docs/protocol.md), encoded off the loop thread, at most ``frame_fps`` a second.
    """

    enabled: bool = Field(default=False, description="serve the live page while the session runs")
    address: str = Field(
        default="http://127.0.0.1:8080",
        description="where the page is served; beyond loopback it must be https:// and needs "
        "stream.token (at least 128 bits)",
    )
    tls_certificate: Path | None = Field(
        default=None,
        description="https: the certificate (PEM); none: one made for the rig and reused",
    )
    tls_key: Path | None = Field(default=None, description="https: the certificate's key (PEM)")
    publish_frames: bool = Field(
        default=False,
        description="publish previews on the stream even without serving the page here (for "
        "`realtime-pose view --stream` on another computer)",
    )
    frame_fps: float = Field(default=30.0, gt=0, le=120, description="previews per second, at most")
    jpeg_quality: int = Field(default=80, ge=10, le=100, description="JPEG quality of previews")
    max_width: int = Field(
        default=640, ge=64, description="previews wider than this are scaled down (px)"
    )

    @field_validator("address")
    @classmethod
    def _http_address(cls, v: str) -> str:
        from realtime_pose.view.access import HttpAddress

        HttpAddress.parse(v)
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> ViewConfig:
        if (self.tls_certificate is None) != (self.tls_key is None):
            raise ValueError("give both view.tls_certificate and view.tls_key, or neither")
        return self

    @property
    def frames_on(self) -> bool:
        """Whether the session publishes previews."""
        return self.enabled or self.publish_frames


class SyncConfig(_Section):
    """``sync:``: how a camera group's frames become frame sets, and the sync line.

    ``frame_id`` matches the cameras' own frame counters (cameras on one hardware trigger line,
    or one software trigger clock, started together); ``timestamp`` matches capture times within
    ``tolerance_ms`` (free-running cameras). See :mod:`realtime_pose.live.frame_sets`.
    """

    mode: Literal["frame_id", "timestamp"] = "frame_id"
    tolerance_ms: float = Field(
        default=2.0, ge=0, description="timestamp mode: views this close form one set"
    )
    wait_ms: float = Field(
        default=5.0, ge=0, description="how long a set waits for a late view before it goes on"
    )
    output: str | None = Field(
        default=None,
        description="an output (under outputs:) that gets a TTL pulse per frame set, for "
        "aligning electrophysiology (Open Ephys, SpikeGLX) to the poses",
    )
    pulse_ms: float = Field(default=1.0, gt=0, description="length of each sync pulse")
    every: int = Field(default=1, ge=1, description="a pulse every this many frame sets")


class TriangulationConfig(_Section):
    """``triangulation:``: turning the views' 2D poses into 3D (camera groups only)."""

    min_likelihood: float = Field(
        default=0.5, ge=0, le=1, description="views below this likelihood are not used"
    )
    outlier_px: float | None = Field(
        default=20.0,
        gt=0,
        description="views reprojecting farther than this from the consensus of the others are "
        "left out (RANSAC over view pairs); null: use every view",
    )


class RecordingConfig(_Section):
    """``recording:``: the crash-safe pose log (and optional raw video)."""

    enabled: bool = False
    directory: Path = Path("recordings")
    video: bool = False
    convert_on_stop: bool = True
    fsync_interval_s: float = Field(default=1.0, ge=0)


class CaptureConfig(_Section):
    """``capture:``: keep the frames the model is unsure of, for relabelling
    (docs/model-improvement.md).

    A frame is doubtful when a keypoint's likelihood drops below ``min_likelihood`` after
    ``confident_frames`` confident ones, when a keypoint jumps more than ``jump_px`` away from
    where its motion put it, when two body parts are closer or farther apart than the training
    labels ever had them (by ``distance_margin``; needs the bundle's ``label_distances``), or
    when an animal's track is lost or re-born, or (one animal) when at least
    ``uncertain_share`` of the keypoints are below ``min_likelihood``. Captures are spaced by
    ``min_gap_s``, at most ``max_per_minute``, clustered by look (``clusters`` ×
    ``per_cluster`` at most), up to ``max_frames`` and ``disk_budget_mb``.
    """

    enabled: bool = False
    project: Path | None = Field(
        default=None,
        description="the DeepLabCut project whose labeled-data/ receives the frames; default: "
        "the bundle's training project when it is on this machine, else "
        "<recording.directory>/captures",
    )
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$",
        description="the labeled-data folder's name; default: <bundle name>-live-<date-time>",
    )
    min_likelihood: float = Field(default=0.5, ge=0, le=1)
    confident_frames: int = Field(default=3, ge=1)
    jump_px: float | None = Field(default=30.0, gt=0, description="None: not judged")
    distance_margin: float | None = Field(
        default=0.25, ge=0, lt=1, description="beyond the labelled range by this share; None: off"
    )
    uncertain_share: float | None = Field(
        default=0.5,
        gt=0,
        le=1,
        description="one animal: this share of keypoints below min_likelihood; None: off",
    )
    min_gap_s: float = Field(default=0.5, ge=0)
    max_per_minute: float = Field(default=30.0, gt=0)
    clusters: int = Field(default=10, ge=1)
    per_cluster: int = Field(default=5, ge=1)
    max_frames: int = Field(default=200, ge=1)
    disk_budget_mb: float = Field(default=200.0, gt=0)
    suggestions: bool = Field(default=True, description="also write SLEAP suggestions (.slp)")


class RunConfig(_Section):
    """The whole run config."""

    _file: str = PrivateAttr(default="the run config")

    source: SourceSection = Field(default_factory=SOURCES.default_choice)
    sources: dict[str, SourceSection] | None = Field(
        default=None,
        description="a camera group in one session: camera name (as in the calibration) → "
        "source section; needs calibration, replaces source",
    )
    calibration: Path | None = Field(
        default=None, description="anipose's calibration.toml of the camera group"
    )
    sync: SyncConfig = Field(default_factory=SyncConfig)
    triangulation: TriangulationConfig = Field(default_factory=TriangulationConfig)
    bundle: Path
    engine: EngineSection = Field(
        default_factory=lambda: ENGINES.choose({"kind": "auto"}),
        description="the engine and its options; none: what `realtime-pose tune` chose here",
    )
    input_size: Size | None = Field(
        default=None, description="network input [width, height]; null = frame (or crop) size"
    )
    crop: CropConfig = Field(default_factory=CropConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    prediction: PredictionConfig = Field(default_factory=PredictionConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    processors: list[ProcessorConfig] = Field(default_factory=list)
    outputs: dict[str, OutputSection] = Field(default_factory=dict)
    rules: RuleList = Field(default_factory=list)
    rules_file: Path | None = Field(
        default=None,
        description="the YAML file the rules were read from (write `rules: FILE` to read them "
        "from one); the live view saves zone edits there",
    )
    view: ViewConfig = Field(default_factory=ViewConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    status_interval_s: float = Field(default=1.0, gt=0)
    watchdog_timeout_s: float = Field(
        default=0.5, gt=0, description="all outputs off when no frame is processed this long"
    )
    grab_timeout_s: float = Field(default=2.0, gt=0, description="camera stall timeout")
    loop_cpus: list[int] | None = Field(
        default=None,
        description="pin the loop thread (engine included) to these CPUs and every other "
        "thread to the rest (Linux); null = let the scheduler place them",
    )
    realtime_priority: int | None = Field(
        default=None,
        ge=1,
        le=99,
        description="run the loop thread under SCHED_FIFO at this priority (Linux; needs "
        "CAP_SYS_NICE or an rtprio limit, else one log line and normal scheduling); null = off",
    )
    lock_memory: bool = Field(
        default=False,
        description="lock the process's memory in RAM while the loop runs (mlockall): no "
        "page fault waits for the disk mid-frame (Linux; needs root, CAP_IPC_LOCK or an "
        "unlimited memlock limit, else one log line)",
    )
    gc_between_frames: bool = Field(
        default=True,
        description="run Python's garbage collection on the loop between frames, never inside "
        "one (objects alive at start are frozen); false: the interpreter collects whenever",
    )
    idle_poll_us: int = Field(
        default=0,
        ge=0,
        le=100_000,
        description="while it waits for a frame, the loop thread wakes every this many µs "
        "(0 = sleeps until the frame arrives): keeps its CPU out of deep idle states, and in "
        "a virtual machine keeps the host from taking the CPU away between frames",
    )

    @field_validator("loop_cpus")
    @classmethod
    def _cpus_available(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            from realtime_pose.live.affinity import plan_cpus

            plan_cpus(v)  # raises naming the CPUs that are not there
        return v

    @field_validator("input_size")
    @classmethod
    def _positive_size(cls, v: Size | None) -> Size | None:
        if v is not None and min(v) <= 0:
            raise ValueError("input_size must be two positive integers [width, height]")
        return v

    @model_validator(mode="after")
    def _view_needs_stream(self) -> RunConfig:
        if not self.view.enabled:
            return self
        if not (self.stream.enabled and self.stream.control_address):
            raise ValueError(
                "view.enabled: the live view reads the stream and drives the session through "
                "its control socket; turn on stream.enabled and set stream.control_address"
            )
        from realtime_pose.view.access import HttpAddress, check_bind

        check_bind(HttpAddress.parse(self.view.address), self.stream.token)
        return self

    @model_validator(mode="after")
    def _camera_group(self) -> RunConfig:
        if self.sources is None:
            if self.calibration is not None:
                raise ValueError("calibration: a calibration is for a camera group; add sources:")
            if self.sync.output is not None:
                raise ValueError("sync.output: a sync pulse per frame set needs sources:")
            return self
        if "source" in self.model_fields_set:
            raise ValueError("give source: (one camera) or sources: (a camera group), not both")
        if len(self.sources) < 2:
            raise ValueError("sources: a camera group needs at least two cameras")
        if self.calibration is None:
            raise ValueError("calibration: a camera group needs its calibration.toml")
        if self.crop.enabled:
            raise ValueError("crop.enabled: a camera group runs on full frames; set it false")
        if self.processors:
            raise ValueError("processors: not run in a camera group yet (they take 2D poses)")
        if self.recording.video:
            raise ValueError("recording.video: not recorded for a camera group yet")
        if self.capture.enabled:
            raise ValueError("capture.enabled: not built for a camera group yet (one view each)")
        if self.sync.output is not None and self.sync.output not in self.outputs:
            raise ValueError(
                f"sync.output: {self.sync.output!r} is not declared under 'outputs' "
                f"(declared: {sorted(self.outputs)})"
            )
        return self

    @model_validator(mode="after")
    def _rule_outputs_exist(self) -> RunConfig:
        for i, rule in enumerate(self.rules):
            for j, action in enumerate(rule.actions):
                if action.output not in self.outputs:
                    raise ValueError(
                        f"rules.{i}.actions.{j}.output: {action.output!r} is not declared under "
                        f"'outputs' (declared: {sorted(self.outputs)})"
                    )
        return self

    @property
    def where(self) -> str:
        """The file this config was read from (for messages), or ``"the run config"``."""
        return self._file

    @property
    def rules_where(self) -> str:
        """The file the rules were read from: the rules file, else the config's."""
        return str(self.rules_file) if self.rules_file is not None else self.where

    def resolve_paths(self, base: Path) -> RunConfig:
        """A copy with relative paths made absolute against ``base`` (the config's folder): the
        bundle, the rules file, the recording folder, the CURVE keys, the view's certificate and
        every path-typed option of the plug-ins."""
        update: dict[str, Any] = _relative_paths(self, base)
        update["recording"] = _resolve_section(self.recording, base)
        update["view"] = _resolve_section(self.view, base)
        update["capture"] = _resolve_section(self.capture, base)
        if self.stream.curve is not None:
            curve = _resolve_section(self.stream.curve, base)
            update["stream"] = self.stream.model_copy(update={"curve": curve})
        update["source"] = _resolve_choice(self.source, base)
        if self.sources is not None:
            update["sources"] = {k: _resolve_choice(v, base) for k, v in self.sources.items()}
        update["engine"] = _resolve_choice(self.engine, base)
        update["outputs"] = {k: _resolve_choice(v, base) for k, v in self.outputs.items()}
        return self.model_copy(update=update)


def _relative_paths(model: BaseModel, base: Path) -> dict[str, Path]:
    """``model``'s relative path fields, made absolute against ``base``."""
    return {
        name: base / getattr(model, name)
        for name in path_fields(model)
        if not Path(getattr(model, name)).is_absolute()
    }


def _resolve_section(section: _S, base: Path) -> _S:
    """``section`` with its relative path fields made absolute against ``base``."""
    relative = _relative_paths(section, base)
    return section.model_copy(update=relative) if relative else section


def _resolve_choice(choice: Choice, base: Path) -> Choice:
    relative = _relative_paths(choice.options, base)
    return choice.with_options(**relative) if relative else choice


def parse_config(data: Any, where: str = "config", base: Path | None = None) -> RunConfig:
    """Validate a config mapping; raise :class:`ConfigError` naming ``where`` and the field."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a mapping at the top level, got {type(data).__name__}"
        )
    if isinstance(data.get("rules"), str):
        data = {**data, **read_rules_file(data["rules"], where, base)}
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from exc
    if base is not None:
        config = config.resolve_paths(base)
    config._file = where
    check_stream_security(config.stream, where)
    if config.sources is not None:
        check_calibration(config, where)
    return config


def check_calibration(config: RunConfig, where: str) -> None:
    """Refuse a camera group whose calibration cannot be read or lacks one of its cameras."""
    from realtime_pose.calibration import CalibrationError, load_calibration

    try:
        rig = load_calibration(config.calibration)  # type: ignore[arg-type]
    except CalibrationError as exc:
        raise ConfigError(f"{where}: field 'calibration': {exc}") from None
    unknown = [name for name in config.sources or {} if name not in rig.names]
    if unknown:
        raise ConfigError(
            f"{where}: field 'sources': camera(s) {unknown} are not in the calibration "
            f"{config.calibration} (it has {rig.names}); name each source as its camera there"
        )


def check_stream_security(stream: StreamConfig, where: str) -> None:
    """Refuse a stream or control socket reachable from other hosts without authentication,
    and CURVE key files that cannot be used; the message names ``where`` and the field."""
    if not stream.enabled:
        return
    if stream.curve is not None:
        try:
            stream.curve.server_keys().load()
        except ValueError as exc:
            raise ConfigError(f"{where}: field 'stream.curve': {exc}") from None
        return
    sockets = [("stream.address", stream.address, False)]
    if stream.control_address:
        sockets.append(("stream.control_address", stream.control_address, True))
    for field, address, token_allowed in sockets:
        try:
            loopback = is_loopback(address)
        except ValueError as exc:
            raise ConfigError(f"{where}: field '{field}': {exc}") from None
        if loopback:
            continue
        if token_allowed and stream.token:
            weak = weak_token(stream.token)
            if weak:
                raise ConfigError(f"{where}: field 'stream.token': {weak}")
            continue
        raise ConfigError(
            f"{where}: field '{field}': {insecure_bind_message(address, token_allowed)}"
        )


def read_rules_file(name: str, where: str, base: Path | None) -> dict[str, Any]:
    """``rules: FILE`` in a run config: the rules read from ``FILE`` (a YAML list, or a mapping
    with a ``rules:`` list), validated there so errors name that file; returns the
    ``rules`` and ``rules_file`` fields."""
    path = Path(name)
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        rules = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{where}: field 'rules': no such rules file {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if isinstance(rules, dict) and set(rules) == {"rules"}:
        rules = rules["rules"]
    try:
        parse_rules(rules)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from exc
    return {"rules": rules, "rules_file": str(path)}


def dump_rules(rules: list[RuleConfig]) -> str:
    """The YAML a rules file holds for ``rules`` (the fields each rule was given, so a file
    read and written back keeps its shape; :func:`read_rules_file` reads it)."""
    return yaml.safe_dump(
        [rule.model_dump(mode="json", exclude_unset=True) for rule in rules],
        sort_keys=False,
        default_flow_style=None,
    )


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    return parse_config(data, str(path), path.resolve().parent)
