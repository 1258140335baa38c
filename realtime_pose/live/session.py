"""A live session: every part of the loop built from a :class:`RunConfig`, and torn down again.

``LiveSession`` is what ``realtime-pose run`` and ``realtime-pose demo`` use. Building validates
everything before the first frame (bundle, engine, source, rules against the bundle's keypoints,
outputs), so a broken setup is refused at start with a message naming the field, and whatever was
opened by then is closed again. :meth:`LiveSession.close` releases the parts in
:data:`SHUTDOWN_ORDER`: outputs off first, then the control socket, the recording (converted),
the stream, the engine (whichever runs by then: the control request ``model_swap``
(:mod:`realtime_pose.live.model_swap`) replaces it while the session runs, at the same
:class:`~realtime_pose.live.loop_model.LoopShapes`).
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realtime_pose.bundle import load_bundle
from realtime_pose.calibration import CameraRig
from realtime_pose.engines import Engine
from realtime_pose.geometry import Size
from realtime_pose.inference.crop import DynamicCropper
from realtime_pose.inference.estimator import PoseEstimator
from realtime_pose.inference.predict import ForwardPredictor, LeadTime
from realtime_pose.live.affinity import CpuPlan, allowed_cpus, plan_cpus, set_thread_cpus
from realtime_pose.live.garbage import LoopCollector
from realtime_pose.live.grabber import Grabber
from realtime_pose.live.loop_model import LoopShapes, build_estimator, model_description
from realtime_pose.live.pipeline import Pipeline
from realtime_pose.live.processors import ProcessorChain, load_processor
from realtime_pose.live.run_config import RunConfig
from realtime_pose.ports import FrameRecorderPort, FrameTap, OutputPort, PoseRecorderPort
from realtime_pose.rules import RuleConfig
from realtime_pose.sources import FrameSource
from realtime_pose.stream import messages

log = logging.getLogger(__name__)


SHUTDOWN_ORDER = (
    "outputs",
    "view",
    "control",
    "pipeline",
    "preview",
    "capture",
    "stream",
    "engine",
    "cpu affinity",
)
"""The order :meth:`LiveSession.close` releases the parts in: outputs off before anything else
can fail, the live view's process and then the control socket (no requests while the rest
goes), the recording finished (and converted) while the stream still reports it, the preview
encoder before the stream it feeds, the captured frames' last labels written, the engine
last."""


@dataclass(frozen=True)
class CameraGroup:
    """The cameras of a multi-camera session, in ``sources:`` order, and their calibration."""

    names: list[str]
    sources: list[FrameSource]
    sizes: list[Size]
    rig: CameraRig

    def meta(self, config: RunConfig) -> dict[str, Any]:
        """The ``cameras`` field of ``meta``."""
        return {
            "names": list(self.names),
            "sources": [s.source_id for s in self.sources],
            "frame_sizes": [list(size) for size in self.sizes],
            "calibration": str(config.calibration),
            "sync": config.sync.model_dump(mode="json"),
            "units": "mm",
        }


class LiveSession:
    """Owns the source, grabber, engine, pipeline, stream, control socket and outputs.

    Parameters
    ----------
    config
        A validated run config (paths already resolved).
    config_dir
        Folder that relative processor files are resolved against.
    frame_taps
        Consumers of the newest frame and pose (the live view), handed to the pipeline.
    """

    def __init__(
        self,
        config: RunConfig,
        config_dir: Path | None = None,
        frame_taps: tuple[FrameTap, ...] = (),
    ) -> None:
        self.config = config
        self.rule_configs: list[RuleConfig] = list(config.rules)
        """The rules as they run now (zone edits from the live view change them)."""
        self.previewer = None
        self.capture = None
        self.view = None
        self.group: CameraGroup | None = None
        """The camera group of a ``sources:`` session, else ``None``."""
        self.collector = LoopCollector() if config.gc_between_frames else None
        self.requests = None
        """The control handlers (:class:`~realtime_pose.live.requests.SessionRequests`), or
        ``None`` without a control socket."""
        self.stop_event = threading.Event()
        self.engine: Engine | None = None
        """The engine the loop runs now (a model swap replaces it; shutdown closes it)."""
        self.loop_shapes: LoopShapes | None = None
        """The frame and crop sizes the loop feeds the estimator (set while building)."""
        self._closers: dict[str, Callable[[], Any]] = {}
        try:
            self._build(config, config_dir or Path.cwd(), frame_taps)
        except BaseException:
            self.close()
            raise

    def _on_close(self, part: str, close: Callable[[], Any]) -> None:
        if part not in SHUTDOWN_ORDER:
            raise ValueError(f"{part!r} has no place in SHUTDOWN_ORDER")
        self._closers[part] = close

    # -- building, one part at a time ------------------------------------------------------
    def _build(self, config: RunConfig, config_dir: Path, frame_taps: tuple[FrameTap, ...]):
        self.cpu_plan = self._pin_cpus(config.loop_cpus)
        self.bundle = load_bundle(config.bundle)
        meta = self.bundle.meta
        if meta.animals is not None and config.crop.enabled:
            raise ValueError(
                f"crop.enabled: dynamic cropping follows one animal, and {config.bundle} tracks "
                f"{len(meta.animals.names)} ({', '.join(meta.animals.names)}); set "
                "crop.enabled: false"
            )
        if config.rules:
            from realtime_pose.rules import validate_rules

            validate_rules(
                config.rules,
                meta.keypoints,
                list(config.outputs),
                config.rules_where,
                space="3d" if config.sources is not None else "2d",
            )
        if meta.animals is not None and config.sources is not None:
            raise ValueError(
                f"sources: a camera group triangulates one animal, and {config.bundle} has "
                f"{len(meta.animals.names)}; use a single-animal bundle"
            )
        self.group = self._probe_group(config) if config.sources is not None else None
        if self.group is not None:
            self.source, frame_size = self.group.sources[0], self.group.sizes[0]
        else:
            self.source, frame_size = self._probe_source(config)
        if config.rules and self.group is None:
            from realtime_pose.rules.config import validate_zones

            validate_zones(config.rules, *frame_size, where=config.rules_where)
        if self.group is not None:
            estimator, cropper = self._open_group_estimator(config, self.group.sizes), None
        else:
            estimator, cropper = self._open_estimator(config, frame_size)
        predictor, lead = self._make_predictor(config)
        processors = ProcessorChain([load_processor(c, config_dir) for c in config.processors])
        rules = None
        if config.rules:
            from realtime_pose.rules import RuleEngine

            rules = RuleEngine(config.rules, meta.keypoints)
        self.dispatcher = self._open_outputs(config)
        model = model_description(self.bundle, self.bundle.model_sha256())
        self.meta = messages.meta_payload(
            meta.keypoints,
            meta.skeleton,
            model,
            frame_size=list(frame_size),
            fps=self.source.fps,
            source=self.source.source_id,
            prediction=predictor is not None,
            engine={"backend": config.engine.name, **config.engine.options.model_dump(mode="json")},
            outputs={
                name: {
                    "device": choice.name,
                    "max_on_ms": choice.options.max_on_ms,
                    "min_off_ms": choice.options.min_off_ms,
                    "max_duty": choice.options.max_duty,
                    "duty_window_ms": choice.options.duty_window_ms,
                }
                for name, choice in config.outputs.items()
            },
            rules_file=None if config.rules_file is None else str(config.rules_file),
        )
        if meta.animals is not None:  # several animals: how subscribers split the rows
            self.meta["animals"] = meta.animals.model_dump(mode="json")
        if self.group is not None:  # a camera group: pose3d, per-view 2D poses
            self.meta["cameras"] = self.group.meta(config)
        describe = getattr(self.source, "describe", None)
        if callable(describe):  # a machine-vision camera: backend, clock, trigger, strobe
            self.meta["camera"] = describe()
        self.publisher = None
        self._server_curve, self._view_curve = self._curve_keys(config)
        if config.stream.enabled:
            from realtime_pose.stream import PosePublisher

            self.publisher = PosePublisher(
                config.stream.address, config.stream.sndhwm, curve=self._server_curve
            )
            self._on_close("stream", self.publisher.close)
        if config.view.frames_on and self.publisher is not None:
            from realtime_pose.view.preview import FramePreviewer

            v = config.view
            self.previewer = FramePreviewer(
                self.publisher, v.frame_fps, v.jpeg_quality, v.max_width
            )
            self._on_close("preview", self.previewer.close)
            frame_taps = (*frame_taps, self.previewer)
        self.capture = self._open_capture(config) if config.capture.enabled else None
        if self.capture is not None:
            frame_taps = (*frame_taps, self.capture)
        shared = {  # what either loop hands poses and events to
            "predictor": predictor,
            "lead": lead,
            "rules": rules,
            "dispatcher": self.dispatcher,
            "publisher": self.publisher,
            "recorder_factory": self._make_recorders,
            "frame_taps": frame_taps,
            "status_interval_s": config.status_interval_s,
            "meta": self.meta,
            "status_fields": self._status_fields,
        }
        if self.group is not None:
            self.pipeline = self._group_pipeline(config, estimator, shared)
        else:
            self.pipeline = Pipeline(
                estimator,
                tracking=self._make_tracking(config, meta),
                # a file replayed unpaced: its animals moved at the video's frame rate
                tracking_fps=None if self.source.live else (self.source.fps or None),
                cropper=cropper,
                processors=processors,
                **shared,
            )
        self._on_close("pipeline", self.pipeline.close)
        self._attach_processors(processors)
        self.control = self._open_control(config)
        if config.view.enabled:
            self.view = self._start_view(config)
        if self.group is not None:
            from realtime_pose.live.frame_sets import FrameSetGrabber

            self.grabber = FrameSetGrabber(
                self.group.sources,
                self.group.names,
                mode=config.sync.mode,
                tolerance_ms=config.sync.tolerance_ms,
                wait_ms=config.sync.wait_ms,
                stall_timeout_s=config.grab_timeout_s,
                on_status=self._on_grabber_status,
            )
        else:
            self.grabber = Grabber(
                self.source,  # probed and closed above; the grabber reopens it
                stall_timeout_s=config.grab_timeout_s,
                on_status=self._on_grabber_status,
            )
        if self.publisher is not None:
            self.publisher.publish_meta(self.meta)
        if config.recording.enabled:
            self.pipeline.start_recording(None, config.recording.video)

    def _pin_cpus(self, loop_cpus: list[int] | None) -> CpuPlan | None:
        """Every thread started while building (engine workers, ZeroMQ I/O, output writers,
        recorder) inherits this thread's affinity: give them the CPUs the loop leaves."""
        if not loop_cpus:
            return None
        initial = allowed_cpus()
        plan = plan_cpus(loop_cpus, initial)
        if set_thread_cpus(plan.others):
            self._on_close("cpu affinity", lambda: set_thread_cpus(initial))
        return plan

    def _probe_source(self, config: RunConfig) -> tuple[FrameSource, Size]:
        """Build the source and open it once: fail now, not on the grab thread."""
        choice = config.source
        source: FrameSource = choice.cls.from_options(choice.options)
        source.open()
        size = source.size
        source.close()
        return source, size

    def _probe_group(self, config: RunConfig) -> CameraGroup:
        """Build every camera of the group and open each once (fail now, naming it)."""
        from realtime_pose.calibration import load_calibration

        names, sources, sizes = [], [], []
        for name, choice in (config.sources or {}).items():
            source: FrameSource = choice.cls.from_options(choice.options)
            try:
                source.open()
            except Exception as exc:
                raise ValueError(f"sources.{name}: cannot be opened: {exc}") from exc
            sizes.append(source.size)
            source.close()
            names.append(name)
            sources.append(source)
        rig = load_calibration(config.calibration).subset(names)  # type: ignore[arg-type]
        for name, size, camera in zip(names, sizes, rig.cameras, strict=True):
            if tuple(size) != camera.size:
                raise ValueError(
                    f"sources.{name}: frames are {size.width}x{size.height}, the calibration "
                    f"{config.calibration} has {camera.size[0]}x{camera.size[1]} for camera "
                    f"{name!r}; calibrate at the size the session runs"
                )
        return CameraGroup(names, sources, sizes, rig)

    def _open_group_estimator(self, config: RunConfig, sizes: list[Size]) -> PoseEstimator:
        """One engine for every view, built and warmed up for each view's size."""
        self.loop_shapes = LoopShapes(tuple(sizes))
        return self._start_engine(config)

    def _start_engine(self, config: RunConfig) -> PoseEstimator:
        """The estimator at :attr:`loop_shapes`; its engine becomes the one shutdown closes."""
        assert self.loop_shapes is not None
        estimator = build_estimator(self.bundle, config, self.loop_shapes)
        self.engine = estimator.engine
        self._on_close("engine", self._close_engine)
        return estimator

    def _close_engine(self) -> None:
        """Close whichever engine runs now (a swapped-in model's, or the first)."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()

    def _group_pipeline(
        self, config: RunConfig, estimator: PoseEstimator, shared: dict[str, Any]
    ) -> Pipeline:
        """The camera group's loop (triangulation, 3D prediction, sync pulses) around the
        ``shared`` parts both loops take."""
        from realtime_pose.inference.triangulate import Triangulator
        from realtime_pose.live.multiview import MultiViewPipeline, SyncPulse

        assert self.group is not None
        t = config.triangulation
        triangulator = Triangulator(
            self.group.rig, min_likelihood=t.min_likelihood, outlier_px=t.outlier_px
        )
        triangulator.warmup()
        sync = None
        if config.sync.output is not None:
            sync = SyncPulse(config.sync.output, config.sync.pulse_ms, config.sync.every)
        return MultiViewPipeline(estimator, triangulator, self.group.names, sync=sync, **shared)

    def _make_tracking(self, config: RunConfig, meta: Any) -> Any:
        """The identity-tracking stage for a multi-animal bundle (``None``: one animal, or off)."""
        if meta.animals is None or not config.tracking.enabled:
            return None
        from realtime_pose.inference.tracking_stage import tracking_for

        return tracking_for(meta, **config.tracking.model_dump(exclude={"enabled"}))

    def _open_estimator(
        self, config: RunConfig, frame_size: Size
    ) -> tuple[PoseEstimator, DynamicCropper | None]:
        """The engine at the shapes the loop will feed (crop window, full frame), warmed up."""
        self.loop_shapes = LoopShapes.of_camera(frame_size, config.crop)
        estimator = self._start_engine(config)
        cropper = None
        if self.loop_shapes.crop is not None:
            cropper = DynamicCropper(
                frame_size,
                self.loop_shapes.crop,
                config.crop.min_likelihood,
                config.crop.lost_after_frames,
            )
        return estimator, cropper

    def _make_predictor(self, config: RunConfig) -> tuple[ForwardPredictor | None, LeadTime | None]:
        p = config.prediction
        if not p.enabled:
            return None, None
        predictor = ForwardPredictor(
            len(self.bundle.keypoints),
            model=p.model,
            process_noise=p.process_noise,
            measurement_noise_px=p.measurement_noise_px,
            gate=p.gate,
            reinit_after=p.reinit_after,
            min_likelihood=p.min_likelihood,
            max_coast_s=p.max_coast_s,
            dims=3 if config.sources is not None else 2,  # a camera group predicts in 3D (mm)
        )
        predictor.warmup()  # compile the Numba kernels now, not on the first frame
        return predictor, LeadTime(fixed_ms=p.lead_ms)

    def _open_outputs(self, config: RunConfig) -> OutputPort | None:
        if not config.outputs:
            return None
        from realtime_pose.hardware import build_dispatcher

        dispatcher = build_dispatcher(config.outputs, stall_timeout_s=config.watchdog_timeout_s)
        self._on_close("outputs", dispatcher.close)
        return dispatcher

    def _attach_processors(self, processors: ProcessorChain) -> None:
        """Give processors that want them the outputs and the event stream."""
        submit = self.dispatcher.submit if self.dispatcher is not None else None
        for proc in processors.processors:
            attach = getattr(proc, "attach", None)  # DeepLabCut-Live processors have none
            if callable(attach):
                attach(submit, self.pipeline.post_event)

    def _open_capture(self, config: RunConfig):
        """The capture of doubtful frames (:mod:`realtime_pose.live.capture_plan`); its events
        go out through the loop (the stream and the recording)."""
        from realtime_pose.live.capture_plan import open_capture

        capture = open_capture(
            config.capture,
            self.bundle,
            config.recording.directory / "captures",
            on_event=lambda event: self.pipeline.post_event(dict(event)),
        )
        self._on_close("capture", capture.close)
        self.meta["capture"] = {
            "folder": str(capture.directory),
            "project": str(capture.folder),
            "name": capture.name,
        }
        return capture

    def _start_view(self, config: RunConfig):
        """The live page, served by a child process that reads our stream (see
        :mod:`realtime_pose.view`)."""
        from realtime_pose.view.process import ViewProcess

        assert self.publisher is not None and self.control is not None  # the config checks
        view = ViewProcess(
            self.publisher.bound_address,
            self.control.bound_address,
            config.view.address,
            token=config.stream.token,
            curve=self._view_curve,
            tls=(v.tls_certificate, v.tls_key) if (v := config.view).tls_certificate else None,
            label_folder=None if self.capture is None else self.capture.directory,
        )
        self._on_close("view", view.close)
        return view

    @staticmethod
    def _curve_keys(config: RunConfig) -> tuple[Any, Any]:
        """The stream's CURVE server keys and, when this session serves the live view, a key
        pair for it that lives only in memory (admitted besides the authorized clients)."""
        if config.stream.curve is None:
            return None, None
        server = config.stream.curve.server_keys()
        if not config.view.enabled:
            return server, None
        import zmq

        from realtime_pose.stream.security import CurveClientKeys

        public, secret = zmq.curve_keypair()
        view = CurveClientKeys.from_keys(public, secret, server.public_key())
        return server.with_client(public), view

    def _open_control(self, config: RunConfig):
        if not (config.stream.enabled and config.stream.control_address):
            return None
        from realtime_pose.live.requests import SessionRequests
        from realtime_pose.stream import ControlServer

        self.requests = SessionRequests(self)
        control = ControlServer(
            config.stream.control_address,
            self.requests.handlers(),
            token=config.stream.token,
            curve=self._server_curve,
        )

        def close_control() -> None:
            control.close()  # no new requests; then the conversions and snapshots under way
            self.requests.close()

        self._on_close("control", close_control)
        return control

    # -- parts the pipeline calls back -----------------------------------------------------
    def _make_recorders(
        self, path: Path | None, video: bool
    ) -> tuple[PoseRecorderPort, FrameRecorderPort | None]:
        from realtime_pose.recording import LOG_SUFFIX, PoseRecorder, VideoRecorder

        rec = self.config.recording
        if path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = rec.directory / f"{self.bundle.meta.name}-{stamp}{LOG_SUFFIX}"
            n = 1
            while path.exists():
                path = rec.directory / f"{self.bundle.meta.name}-{stamp}-{n}{LOG_SUFFIX}"
                n += 1
        recorder = PoseRecorder(
            path, self.bundle.keypoints, self.meta, fsync_interval_s=rec.fsync_interval_s
        )
        if not video:
            return recorder, None
        video_path = Path(path).with_suffix(".avi")
        try:
            video_recorder = VideoRecorder(video_path, self.source.fps or 30.0, self.source.size)
        except Exception as exc:  # an unwritable path, a codec OpenCV lacks, a name taken
            # the log holds its header only: close it (file and fsync thread) and take it away,
            # so that nothing half-started stays open and the name is free for the next try
            recorder.close()
            Path(recorder.path).unlink(missing_ok=True)
            raise ValueError(
                f"the video {video_path} cannot be recorded ({type(exc).__name__}: {exc}); "
                f"nothing was recorded (the pose log {recorder.path} was not kept)"
            ) from exc
        return recorder, video_recorder

    def _status_fields(self) -> dict[str, Any]:
        """What the session adds to each status message: free disk where recordings go, and
        which outputs are on (called on the loop thread, once per status)."""
        fields: dict[str, Any] = {}
        folder = self.config.recording.directory
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        with suppress(OSError):
            fields["disk_free_bytes"] = shutil.disk_usage(folder).free
        if self.dispatcher is not None:
            dispatcher = self.dispatcher
            fields["outputs_on"] = {n: dispatcher.is_on(n) for n in self.config.outputs}
        if self.group is not None:
            fields["frame_sets"] = self.grabber.summary()
        if self.capture is not None:
            fields["capture"] = self.capture.stats()
        return fields

    def _on_grabber_status(self, status: dict[str, Any]) -> None:
        log.warning("source %s: %s", status.get("event"), status.get("message"))
        if self.publisher is not None:
            with suppress(Exception):  # called from the grab thread: never raise there
                fields = {k: v for k, v in status.items() if k not in ("kind", "name")}
                self.pipeline.post_event(  # from the grab thread: the loop publishes it
                    messages.event_payload(
                        "source", self.source.source_id, self.pipeline.frames, **fields
                    )
                )

    # -- running --------------------------------------------------------------------------
    def run(self, duration_s: float | None = None, on_status=None) -> None:
        """Run the loop until stopped (signal, source end or ``duration_s``)."""
        loop_cpus = self.cpu_plan.loop if self.cpu_plan is not None else None
        self.pipeline.run(
            self.grabber,
            self.stop_event,
            duration_s,
            on_status,
            loop_cpus,
            idle_poll_s=self.config.idle_poll_us / 1e6 or None,
            collector=self.collector,
            realtime_priority=self.config.realtime_priority,
            lock_memory=self.config.lock_memory,
        )
        if self.collector is not None:
            log.info("garbage collection between frames: %s", self.collector.stats())

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM stop the loop cleanly (files closed, outputs off)."""

        def handler(signum, _frame):
            log.info("signal %d: stopping", signum)
            self.stop_event.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)

    def close(self) -> None:
        """Release everything in :data:`SHUTDOWN_ORDER`; outputs go off first. Safe to call
        twice; a part that fails to close is logged and the others still close."""
        self.stop_event.set()
        closers, self._closers = self._closers, {}
        for part in SHUTDOWN_ORDER:
            close = closers.get(part)
            if close is None:
                continue
            try:
                close()
            except Exception:
                log.exception("closing %s failed", part)

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
