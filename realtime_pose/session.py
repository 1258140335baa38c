"""A live session: every part of the loop built from a :class:`RunConfig`, and torn down again.

``LiveSession`` is what ``realtime-pose run`` and ``realtime-pose demo`` use. Building validates
everything before the first frame (bundle, engine, source, rules against the bundle's keypoints,
outputs), so a broken setup is refused at start with a message naming the field. ``close()``
releases the parts in the safe order: outputs off first, then the recording (converted), the
stream, the engine.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from realtime_pose.affinity import allowed_cpus, plan_cpus, set_thread_cpus
from realtime_pose.bundle import load_bundle
from realtime_pose.config import RunConfig
from realtime_pose.crop import CropWindow, DynamicCropper
from realtime_pose.engines import open_engine
from realtime_pose.estimator import PoseEstimator
from realtime_pose.grabber import Grabber
from realtime_pose.pipeline import Pipeline, finish_recording
from realtime_pose.predict import ForwardPredictor, LeadTime
from realtime_pose.processors import ProcessorChain, load_processor
from realtime_pose.sources import make_source
from realtime_pose.stream import messages

log = logging.getLogger(__name__)


class LiveSession:
    """Owns the source, grabber, engine, pipeline, stream, control socket and outputs.

    Parameters
    ----------
    config
        A validated run config (paths already resolved).
    config_dir
        Folder that relative processor files are resolved against.
    """

    def __init__(self, config: RunConfig, config_dir: Path | None = None) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self._closers: list[tuple[str, Any]] = []
        try:
            self._build(config, config_dir or Path.cwd())
        except BaseException:
            self.close()
            raise

    def _build(self, config: RunConfig, config_dir: Path) -> None:
        self.cpu_plan = None
        if config.loop_cpus:
            # every thread started while building (engine workers, ZeroMQ I/O, output writers,
            # recorder) inherits this thread's affinity: give them the CPUs the loop leaves
            initial = allowed_cpus()
            self.cpu_plan = plan_cpus(config.loop_cpus, initial)
            if set_thread_cpus(self.cpu_plan.others):
                self._closers.append(("cpu affinity", lambda: set_thread_cpus(initial)))
        self.bundle = load_bundle(config.bundle)
        meta = self.bundle.meta
        if config.rules:
            from realtime_pose.rules import RuleEngine, validate_rules

            validate_rules(config.rules, meta.keypoints, list(config.outputs))
        self.source = make_source(config.source.kind, **config.source.options())
        self.source.open()  # fail now, not on the grab thread, if the source is unusable
        frame_w, frame_h = self.source.size
        self.source.close()
        engine = open_engine(self.bundle, config.engine, None)
        self._closers.append(("engine", engine.close))
        estimator = PoseEstimator(self.bundle, engine, config.input_size)
        cropper = None
        if config.crop.enabled:
            cropper = DynamicCropper(
                frame_w,
                frame_h,
                min(config.crop.width, frame_w),
                min(config.crop.height, frame_h),
                config.crop.min_likelihood,
                config.crop.lost_after_frames,
            )
            # two shapes only: the fixed crop window and the full frame (animal lost)
            crop_shape = CropWindow(0, 0, *cropper.crop_wh, False)
            estimator.warmup(frame_w, frame_h, crop_shape, config.engine.warmup_runs)
            estimator.warmup(frame_w, frame_h, None, config.engine.warmup_runs)
        else:
            estimator.warmup(frame_w, frame_h, None, config.engine.warmup_runs)
        predictor = lead = None
        p = config.prediction
        if p.enabled:
            predictor = ForwardPredictor(
                len(meta.keypoints),
                model=p.model,
                process_noise=p.process_noise,
                measurement_noise_px=p.measurement_noise_px,
                gate=p.gate,
                reinit_after=p.reinit_after,
                min_likelihood=p.min_likelihood,
                max_coast_s=p.max_coast_s,
            )
            lead = LeadTime(fixed_ms=p.lead_ms)
            predictor.warmup()  # compile the Numba kernels now, not on the first frame
        processors = ProcessorChain([load_processor(c, config_dir) for c in config.processors])
        rules = RuleEngine(config.rules, meta.keypoints) if config.rules else None
        self.dispatcher = None
        if config.outputs:
            from realtime_pose.hardware import build_dispatcher

            self.dispatcher = build_dispatcher(
                {
                    name: {**o.model_dump(exclude_none=True), **(o.model_extra or {})}
                    for name, o in config.outputs.items()
                },
                stall_timeout_s=config.watchdog_timeout_s,
            )
            self._closers.insert(0, ("outputs", self.dispatcher.close))
        self.publisher = None
        model = {"name": meta.name, "provenance": meta.provenance, "bundle": str(self.bundle.root)}
        self.meta = messages.meta_payload(
            meta.keypoints,
            meta.skeleton,
            model,
            frame_size=[frame_w, frame_h],
            fps=self.source.fps,
            source=self.source.source_id,
            prediction=p.enabled,
        )
        if config.stream.enabled:
            from realtime_pose.stream import PosePublisher

            self.publisher = PosePublisher(config.stream.address, config.stream.sndhwm)
            self._closers.append(("stream", self.publisher.close))
        self.pipeline = Pipeline(
            estimator,
            predictor=predictor,
            lead=lead,
            cropper=cropper,
            processors=processors,
            rules=rules,
            dispatcher=self.dispatcher,
            publisher=self.publisher,
            recorder_factory=self._make_recorders,
            status_interval_s=config.status_interval_s,
            meta=self.meta,
        )
        for proc in processors.processors:
            attach = getattr(proc, "attach", None)
            if callable(attach):
                submit = self.dispatcher.submit if self.dispatcher is not None else None
                attach(submit, self.pipeline.emit_event)
        self._closers.insert(1 if self.dispatcher else 0, ("pipeline", self.pipeline.close))
        self.control = None
        if config.stream.enabled and config.stream.control_address:
            from realtime_pose.stream import ControlServer

            self.control = ControlServer(
                config.stream.control_address, self._control_handlers(), token=config.stream.token
            )
            self._closers.append(("control", self.control.close))
        self.grabber = Grabber(
            self.source,  # probed and closed above; the grabber reopens it
            stall_timeout_s=config.grab_timeout_s,
            on_status=self._on_grabber_status,
        )
        if self.publisher is not None:
            self.publisher.publish_meta(self.meta)
        if config.recording.enabled:
            self.pipeline.start_recording(None, config.recording.video)

    # -- parts ----------------------------------------------------------------------------
    def _make_recorders(self, path: Path | None, video: bool) -> tuple[Any, Any]:
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
        video_recorder = None
        if video:
            fps = self.source.fps or 30.0
            video_recorder = VideoRecorder(Path(path).with_suffix(".avi"), fps, self.source.size)
        return recorder, video_recorder

    def _on_grabber_status(self, status: dict[str, Any]) -> None:
        log.warning("source %s: %s", status.get("event"), status.get("message"))
        if self.publisher is not None:
            with suppress(Exception):  # called from the grab thread: never raise there
                fields = {k: v for k, v in status.items() if k not in ("kind", "name")}
                self.pipeline.emit_event(
                    messages.event_payload(
                        "source", self.source.source_id, self.pipeline.frames, **fields
                    )
                )

    def _control_handlers(self) -> dict[str, Any]:
        pipe = self.pipeline

        def status(_req: dict) -> dict:
            return {"status": pipe.last_status or pipe.call_in_loop(pipe.publish_status)}

        def meta(_req: dict) -> dict:
            if self.publisher is not None:
                self.publisher.publish_meta(self.meta)
            return {"meta": self.meta}

        def record_start(req: dict) -> dict:
            path = Path(req["path"]) if req.get("path") else None
            started = pipe.call_in_loop(lambda: pipe.start_recording(path, bool(req.get("video"))))
            return {"path": str(started)}

        def record_stop(_req: dict) -> dict:
            # detach between frames; close and convert here, on the control thread
            return finish_recording(*pipe.call_in_loop(pipe.detach_recording))

        def rule_switch(enable: bool):
            def handler(req: dict) -> dict:
                if pipe.rules is None:
                    raise ValueError("this run has no rules")
                name = req["name"]
                pipe.call_in_loop(
                    lambda: pipe.rules.enable(name) if enable else pipe.rules.disable(name)
                )
                return {"rule": name, "enabled": enable}

            return handler

        return {
            "status": status,
            "meta": meta,
            "record_start": record_start,
            "record_stop": record_stop,
            "rule_enable": rule_switch(True),
            "rule_disable": rule_switch(False),
        }

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
        )

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM stop the loop cleanly (files closed, outputs off)."""

        def handler(signum, _frame):
            log.info("signal %d: stopping", signum)
            self.stop_event.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)

    def close(self) -> None:
        """Release everything; outputs go off first. Safe to call twice."""
        self.stop_event.set()
        closers, self._closers = self._closers, []
        for name, close in closers:
            try:
                close()
            except Exception:
                log.exception("closing %s failed", name)

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
