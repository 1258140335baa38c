"""The live loop: one frame's way from the grabber to the stream, the outputs and the log.

    grab ─▶ preprocess ─▶ network ─▶ peaks ─▶ [tracking] ─▶ forward prediction ─▶ processors + rules
         ─▶ outputs ─▶ publish ─▶ record

:class:`Pipeline` owns the per-frame work and nothing else: the parts (estimator, predictor,
cropper, rules, dispatcher, publisher) are built elsewhere (:mod:`realtime_pose.live.session`) and
handed in, so tests and benchmarks assemble exactly the parts they measure. Every stage is
stamped with ``time.monotonic_ns()``; rolling p50/p99/max per stage go to the status stream.

Control requests arrive on another thread; anything that touches loop state runs *in* the loop,
between frames, through :meth:`Pipeline.call_in_loop`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realtime_pose.inference.crop import DynamicCropper
from realtime_pose.inference.estimator import (
    ESTIMATOR_STAGES,
    STAMP_PEAKS,
    PoseEstimator,
    estimator_stage_ns,
)
from realtime_pose.inference.predict import ForwardPredictor, LeadTime
from realtime_pose.live.affinity import (
    allowed_cpus,
    restore_thread_policy,
    set_thread_cpus,
    set_thread_realtime,
)
from realtime_pose.live.garbage import LoopCollector
from realtime_pose.live.grabber import Grabber
from realtime_pose.live.memory_lock import lock_memory as lock_process_memory
from realtime_pose.live.memory_lock import unlock_memory
from realtime_pose.ports import (
    FrameRecorderPort,
    FrameTap,
    OutputPort,
    PosePublisherPort,
    PoseRecorderPort,
    ProcessorPort,
    RecorderFactory,
    RuleEvaluatorPort,
    RuleEventLike,
    TrackingPort,
)
from realtime_pose.sources.base import Frame
from realtime_pose.stream import messages
from realtime_pose.util.stats import StageStats
from realtime_pose.util.stats import warm_up as warm_up_statistics
from realtime_pose.util.supervision import REGISTRY as THREADS

log = logging.getLogger(__name__)

#: GIL switch interval while the loop runs (seconds); CPython's default is 5 ms.
GIL_SWITCH_INTERVAL_S = 0.0002

#: Stage names in the ``latency_ns`` map and the status stream. ``grab`` is the wait between
#: capture and the loop picking the frame up; ``total`` is capture → publish.
STAGES = ("grab", *ESTIMATOR_STAGES, "predict", "process", "publish", "record", "total")
_PUBLISHED_STAGES = STAGES[:6]  # the stages known when the pose is published


class RecordingStateError(ValueError):
    """A recording request that does not fit the state: already recording, not recording, or
    recording not configured for this run."""


class Pipeline:
    """Per-frame processing and the grab loop.

    Parameters
    ----------
    estimator
        Preprocess + engine + peaks + transform for the bundle.
    tracking
        Several animals: keeps each animal's rows under its name
        (:class:`~realtime_pose.inference.tracking.IdentityChannelTracking`), or each look-alike
        in its slot (:class:`~realtime_pose.inference.unmarked_tracking.LookAlikeTracking`,
        whose ``track_ids`` go to the stream and the recording); ``None``: one animal.
    tracking_fps
        A file replayed as fast as it can be processed (not paced): the tracking stage is
        timed by the frame's own time, ``frame_index / tracking_fps``, because the animals
        moved at the video's pace, not the replay's (replay times come in bursts, and a motion
        model fed them predicts nonsense). ``None``: by capture time, as a camera's frames.
        Its time counts in the ``predict`` stage.
    predictor, lead
        Forward prediction and how far ahead (``None``: no prediction).
    cropper
        Dynamic cropping (``None``: full frames).
    processors
        User processors (DeepLabCut-Live API), called with a copy of each pose.
    rules
        The rules (``None``: no rules).
    dispatcher
        The outputs the rules drive, kicked once per frame (host watchdog); ``None``: none.
    publisher
        The pose stream, or ``None``.
    recorder_factory
        Makes the recorders :meth:`start_recording` uses; ``None`` disables recording.
    frame_taps
        Consumers of the newest frame and its pose (the live view); offered every frame.
    status_interval_s
        How often a ``status`` message is published (and ``on_status`` called).
    meta
        The ``meta`` payload (keypoints, skeleton, model).
    status_fields
        Called for each status message; its fields are added to it (free disk, outputs on).
    """

    def __init__(
        self,
        estimator: PoseEstimator,
        *,
        tracking: TrackingPort | None = None,
        tracking_fps: float | None = None,
        predictor: ForwardPredictor | None = None,
        lead: LeadTime | None = None,
        cropper: DynamicCropper | None = None,
        processors: ProcessorPort | None = None,
        rules: RuleEvaluatorPort | None = None,
        dispatcher: OutputPort | None = None,
        publisher: PosePublisherPort | None = None,
        recorder_factory: RecorderFactory | None = None,
        frame_taps: Sequence[FrameTap] = (),
        status_interval_s: float = 1.0,
        meta: dict[str, Any] | None = None,
        status_fields: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.estimator = estimator
        self.tracking = tracking
        self._tracking_frame_ns = 1e9 / tracking_fps if tracking_fps else None
        self.keypoints = estimator.keypoints
        k = len(self.keypoints)
        self.predictor = predictor
        self.lead = lead or (LeadTime() if predictor is not None else None)
        self.cropper = cropper
        self.processors = processors if processors is not None and len(processors) else None
        self.rules = rules
        self.dispatcher = dispatcher
        self.publisher = publisher
        self.recorder_factory = recorder_factory
        self.frame_taps = tuple(frame_taps)
        self.status_interval_s = status_interval_s
        self.meta = meta or {}
        self.status_fields = status_fields
        self.stats = StageStats(STAGES)
        warm_up_statistics()
        self.seq = 0
        self.frames = 0
        self.events = 0
        self.recorder: PoseRecorderPort | None = None
        self.video_recorder: FrameRecorderPort | None = None
        self.recording_error: str | None = None
        """Why the last recording stopped on its own (disk full...), or ``None``."""
        self.last_status: dict[str, Any] = {}
        self._predicted = np.zeros((k, 3), np.float32)
        self._stamps = np.zeros(3, np.int64)
        self._stage_ns = np.zeros(len(STAGES), np.int64)
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._posted_events: queue.SimpleQueue = queue.SimpleQueue()
        self._loop_thread: int | None = None
        self._grabber: Grabber | None = None
        self._thread_deaths_seen = THREADS.death_count
        self._status_frames = 0
        self._status_mark = 0
        self._status_t_ns = time.monotonic_ns()

    # -- one frame ------------------------------------------------------------------------
    def process_frame(self, frame: Frame, t_received_ns: int | None = None) -> np.ndarray:
        """Run every stage on one frame; return the pose ``[K, 3]`` (frame px, reused buffer)."""
        t_received = time.monotonic_ns() if t_received_ns is None else t_received_ns
        t_capture = frame.t_capture_ns
        stamps = self._stamps
        window = self.cropper.window() if self.cropper is not None else None
        pose = self.estimator.estimate(frame.image, window, stamps)
        track_ids = None
        if self.tracking is not None:
            step = self._tracking_frame_ns
            t_motion = t_capture if step is None else int(frame.frame_index * step)
            pose = self.tracking.update(pose, t_motion)
            track_ids = self.tracking.track_ids
        if self.cropper is not None:
            self.cropper.update(pose)
        predicted = None
        if self.predictor is not None:
            self.predictor.update(pose, t_capture)
            t_target = t_capture + self.lead.lead_ns
            self.predictor.predict(t_target, self._predicted)
            predicted = (t_target, self._predicted)
        t_predicted = time.monotonic_ns()
        if self.processors is not None:
            pose = self.processors(pose.copy(), t_capture / 1e9, frame.frame_index)
        if self.rules is not None:
            events = self.rules.evaluate(
                pose, t_capture, frame.frame_index, self._predicted if predicted else None
            )
            if events:
                self._handle_events(events)
        t_processed = time.monotonic_ns()
        if self.lead is not None:
            self.lead.observe(t_processed - t_capture)
        s = self._stage_ns
        s[0] = t_received - t_capture
        estimator_stage_ns(t_received, stamps, s[1:4])
        s[4] = t_predicted - stamps[STAMP_PEAKS]
        s[5] = t_processed - t_predicted
        if self.dispatcher is not None:
            self.dispatcher.kick()  # before publish/record: their cost is not the outputs'
        t_published = t_processed
        camera = frame.camera_fields()
        if self.publisher is not None:
            latency = {name: int(v) for name, v in zip(_PUBLISHED_STAGES, s, strict=False)}
            latency["total"] = int(t_processed - t_capture)
            t_published = self.publisher.publish_pose(
                self.seq, frame.frame_index, t_capture, latency, pose, predicted, camera, track_ids
            )
        t_after_publish = time.monotonic_ns()
        s[6] = t_after_publish - t_processed
        if self.recorder is not None:
            if not self.recorder.write_pose(
                self.seq, frame.frame_index, t_capture, pose, predicted, camera, track_ids
            ):
                self._recording_failed(frame.frame_index)
            elif self.video_recorder is not None:
                self.video_recorder.write(frame.image, frame.frame_index, t_capture, camera)
        for tap in self.frame_taps:
            tap.offer(frame, self.seq, pose, predicted)
        s[7] = time.monotonic_ns() - t_after_publish
        s[8] = t_published - t_capture
        self.stats.record(s, frame.frame_index)
        self.seq += 1
        self.frames += 1
        return pose

    def _handle_events(self, events: Sequence[RuleEventLike]) -> None:
        """Dispatch each rule event's actions, then publish and record the rule event and one
        ``output`` event per action (docs/protocol.md, topic ``event``)."""
        for event in events:
            self.events += 1
            held: dict[int, str] | None = None  # action index -> the limit that refused it
            if self.dispatcher is not None:
                for k, action in enumerate(event.actions):
                    done = self.dispatcher.submit(
                        action.output,
                        action.action,
                        action.duration_s,
                        frame_index=event.frame_index,
                        t_frame_ns=event.t_ns,
                    )
                    if done is not None and done.get("held_off") is not None:
                        held = held or {}
                        held[k] = done["held_off"]
            actions = [a.to_dict() for a in event.actions]
            if held:
                for k, cause in held.items():
                    actions[k]["held_off"] = cause
            self.emit_event(
                messages.event_payload(
                    "rule",
                    event.rule,
                    event.frame_index,
                    event.t_ns,
                    state=event.kind,
                    source=event.source,
                    actions=actions,
                )
            )
            for action in actions:
                self.emit_event(
                    messages.event_payload(
                        "output",
                        action["output"],
                        event.frame_index,
                        event.t_ns,
                        action=action["action"],
                        duration_s=action["duration_s"],
                        rule=event.rule,
                        **({"held_off": action["held_off"]} if "held_off" in action else {}),
                    )
                )

    def post_event(self, event: dict[str, Any]) -> None:
        """:meth:`emit_event` from any thread: while the loop runs, the event is published and
        recorded by the loop thread between frames (the stream socket and the log belong to
        it; ZeroMQ sockets must not be shared between threads)."""
        if self._loop_thread is None or self._loop_thread == threading.get_ident():
            self.emit_event(event)
        else:
            self._posted_events.put(event)

    def emit_event(self, event: dict[str, Any]) -> None:
        """Publish an ``event`` payload (``messages.event_payload``) and record it; on the loop
        thread (or while the loop is not running): elsewhere use :meth:`post_event`."""
        if self.publisher is not None:
            self.publisher.publish_event(event)
        if self.recorder is not None:
            self.recorder.write_event(
                event.get("frame_index", self.frames), event, event.get("t_ns")
            )

    # -- the loop -------------------------------------------------------------------------
    def run(
        self,
        grabber: Grabber,
        stop: threading.Event,
        duration_s: float | None = None,
        on_status: Callable[[dict[str, Any]], None] | None = None,
        loop_cpus: Iterable[int] | None = None,
        idle_poll_s: float | None = None,
        collector: LoopCollector | None = None,
        realtime_priority: int | None = None,
        lock_memory: bool = False,
    ) -> None:
        """Process frames until ``stop`` is set, the source ends or ``duration_s`` passes.

        With ``collector`` Python's garbage collection runs between frames, on the loop, and
        never inside one (:mod:`realtime_pose.live.garbage`). With ``realtime_priority`` the
        loop thread runs under ``SCHED_FIFO`` at that priority where the OS permits (one log
        line where not; :func:`realtime_pose.live.affinity.set_thread_realtime`). With
        ``lock_memory`` the process's memory stays in RAM while it runs
        (:mod:`realtime_pose.live.memory_lock`).

        With ``idle_poll_s`` the loop thread wakes that often while it waits for a frame
        (:meth:`Grabber.get`'s ``poll_s``).

        With ``loop_cpus`` the calling thread runs on those CPUs while the loop runs (the
        grabber thread, started first, keeps the caller's previous affinity); see
        :mod:`realtime_pose.live.affinity`.

        While it runs, CPython's GIL switch interval is shortened (5 ms → 0.2 ms): a thread
        woken by a new frame or an output command otherwise waits up to 5 ms for another
        Python thread to give up the interpreter, which lands directly in the tail latency.
        """
        self._grabber = grabber
        self._loop_thread = threading.get_ident()
        previous_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        t_end = None if duration_s is None else time.monotonic() + duration_s
        self._status_t_ns = time.monotonic_ns()
        next_status = time.monotonic() + self.status_interval_s
        grabber.start()
        previous_cpus = allowed_cpus()
        pinned = loop_cpus is not None and set_thread_cpus(loop_cpus)
        policy = set_thread_realtime(realtime_priority) if realtime_priority else None
        locked = lock_memory and lock_process_memory()
        if collector is not None:
            collector.start()
        try:
            while not stop.is_set():
                frame = grabber.get(timeout_s=0.05, poll_s=idle_poll_s)
                if frame is not None:
                    self.process_frame(frame, time.monotonic_ns())
                elif grabber.ended:
                    break
                elif self.dispatcher is not None:
                    self.dispatcher.kick()  # idle is not a stall: the loop is alive
                if collector is not None:
                    collector.after_frame()  # a frame is done, or none came: collect now
                if not self._commands.empty():
                    self._drain_commands()
                if not self._posted_events.empty():
                    self._drain_posted_events()
                now = time.monotonic()
                if now >= next_status:
                    next_status = now + self.status_interval_s
                    status = self.publish_status()
                    if on_status is not None:
                        on_status(status)
                if t_end is not None and now >= t_end:
                    break
        finally:
            if collector is not None:
                collector.stop()
            sys.setswitchinterval(previous_switch_interval)
            if pinned:
                set_thread_cpus(previous_cpus)
            if policy is not None:
                restore_thread_policy(policy)
            if locked:
                unlock_memory()
            self._loop_thread = None
            self._drain_commands()
            self._drain_posted_events()
            grabber.stop()

    def publish_status(self) -> dict[str, Any]:
        """Build (and publish) the ``status`` message: fps, drops, stage percentiles over the
        interval since the last one (docs/protocol.md)."""
        now = time.monotonic_ns()
        dt = max(now - self._status_t_ns, 1)
        fps = (self.frames - self._status_frames) * 1e9 / dt
        samples = self.stats.samples_since(self._status_mark)
        self._status_frames, self._status_t_ns = self.frames, now
        self._status_mark = self.stats.count
        grab = self._grabber.stats() if self._grabber is not None else {}
        extra: dict[str, Any] = {
            "source": {k: v for k, v in grab.items() if isinstance(v, int | float | str)},
            "events": self.events,
            "processor_errors": self.processors.errors if self.processors else 0,
            "recording": str(self.recorder.path) if self.recorder is not None else None,
            "recording_error": self.recording_error,
        }
        if "camera_drops" in grab:
            extra["camera_dropped"] = int(grab.get("camera_dropped", 0))
            extra["camera_drops"] = dict(grab["camera_drops"])
            extra["trigger_timeouts"] = int(grab.get("trigger_timeouts", 0))
        if self.lead is not None:
            extra["lead_ms"] = round(self.lead.lead_ns / 1e6, 3)
        threads = THREADS.report()
        if threads:
            extra["threads"] = threads  # supervised threads that died (and were restarted)
        for death in THREADS.deaths_since(self._thread_deaths_seen):
            self._thread_deaths_seen += 1
            self.emit_event(
                messages.event_payload(
                    "thread", death.name, self.frames, error=death.last_error, deaths=death.deaths
                )
            )
        if self.publisher is not None:
            extra["stream_dropped"] = int(self.publisher.dropped)
        if self.dispatcher is not None:
            try:
                extra["outputs"] = self.dispatcher.health()
            except Exception:  # health is diagnostics only
                log.debug("dispatcher health failed", exc_info=True)
        if self.status_fields is not None:
            try:
                extra.update(self.status_fields())
            except Exception:  # diagnostics only
                log.debug("status fields failed", exc_info=True)
        status = messages.status_payload(
            fps, self.frames, int(grab.get("dropped", 0)), samples, **extra
        )
        if self.publisher is not None:
            self.publisher.publish_status(status)
        self.last_status = status
        return status

    # -- commands from other threads ------------------------------------------------------
    def call_in_loop(self, fn: Callable[[], Any], timeout_s: float = 2.0) -> Any:
        """Run ``fn`` on the loop thread between frames (directly if the loop is not running).

        What the caller is told is what happened: a command the loop has not taken within
        ``timeout_s`` (a frame that takes that long, a stalled loop) is cancelled, never run
        later, and :class:`TimeoutError` says nothing was done; one the loop took already is
        waited for to its end, and its result (or error) returned.
        """
        if self._loop_thread is None or self._loop_thread == threading.get_ident():
            return fn()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._commands.put((fn, future))
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            if not future.cancel():  # running (or just finished) on the loop thread
                return future.result()
            raise TimeoutError(
                f"the live loop did not take the command within {timeout_s:g} s (a frame that "
                "slow, or a stalled loop); nothing was done, try again"
            ) from None

    def _drain_posted_events(self) -> None:
        while True:
            try:
                event = self._posted_events.get_nowait()
            except queue.Empty:
                return
            self.emit_event(event)

    def _drain_commands(self) -> None:
        while True:
            try:
                fn, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue  # its caller gave up waiting and was told nothing was done
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)

    # -- recording ------------------------------------------------------------------------
    def start_recording(self, path: Path | None = None, video: bool = False) -> Path:
        """Start the crash-safe pose log (and raw video); return the log path."""
        if self.recorder_factory is None:
            raise RecordingStateError("recording is not configured for this run")
        if self.recorder is not None:
            raise RecordingStateError(f"already recording to {self.recorder.path}")
        self.recorder, self.video_recorder = self.recorder_factory(path, video)
        self.recording_error = None
        log.info("recording to %s", self.recorder.path)
        return Path(self.recorder.path)

    def _recording_failed(self, frame_index: int) -> None:
        """A pose could not be written (disk full, disk gone): stop recording, keep the loop and
        the outputs going, say so in the status and an event; what was written stays intact."""
        recorder, video = self.detach_recording()
        error = recorder.last_error or "write failed"
        self.recording_error = f"{recorder.path}: {error}"
        log.error("recording stopped at frame %d: %s", frame_index, self.recording_error)
        self.emit_event(
            messages.event_payload(
                "recording", str(recorder.path), frame_index, state="failed", error=error
            )
        )
        threading.Thread(  # closing fsyncs: not on the loop thread
            target=finish_recording, args=(recorder, video, False), name="recording-close"
        ).start()

    def detach_recording(self) -> tuple[PoseRecorderPort, FrameRecorderPort | None]:
        """Stop writing to the recording (cheap; call in the loop) and hand its recorders over.

        Closing and converting them (:func:`finish_recording`) is slow and belongs elsewhere.
        """
        if self.recorder is None:
            raise RecordingStateError("not recording")
        recorders = self.recorder, self.video_recorder
        self.recorder = self.video_recorder = None
        return recorders

    def stop_recording(self, convert: bool = True) -> dict[str, Any]:
        """Stop recording and convert the log to DeepLabCut tables (on the calling thread)."""
        return finish_recording(*self.detach_recording(), convert=convert)

    def close(self) -> None:
        """Stop recording (converting it) and release the parts this pipeline owns."""
        if self.recorder is not None:
            try:
                self.stop_recording()
            except Exception:
                log.exception("stopping the recording failed")
        if self.processors is not None:
            self.processors.save_all()


def finish_recording(
    recorder: PoseRecorderPort, video_recorder: FrameRecorderPort | None, convert: bool = True
) -> dict[str, Any]:
    """Close detached recorders and convert the log; return what was written (``path``,
    ``poses``, ``events``, ``tables``, ``conversion_error``): the fields of the ``recording``
    event that ends a ``record_stop``."""
    if video_recorder is not None:
        video_recorder.close()
    result = recorder.stop(convert=convert)
    reply = result.as_reply()
    log.info("recording stopped: %s %s", reply["path"], reply["tables"])
    return reply
