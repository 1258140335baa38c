"""What a running session answers on its control socket: status, recording, rules, the live
view's requests (zones, rules file, manual output pulses, snapshots) and model swaps; see
docs/protocol.md.

Each handler takes a validated request (:mod:`realtime_pose.stream.messages`) and returns the
reply's fields, or raises ``ValueError`` with a message the client shows. Anything that changes
the loop's state runs in the loop, between two frames (:meth:`Pipeline.call_in_loop`). The
control socket answers one request at a time, so what is slow (converting a stopped recording,
encoding and writing a snapshot) runs on worker threads: the reply says what was started, and
an ``event`` on the stream says when it is done, while ``ping`` and ``status`` go on answering.
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from realtime_pose.bundle import Bundle
from realtime_pose.live.model_swap import ModelSwapper
from realtime_pose.live.pipeline import Pipeline, finish_recording
from realtime_pose.live.run_config import RunConfig
from realtime_pose.ports import OutputPort
from realtime_pose.rules import RuleConfig
from realtime_pose.stream import messages

log = logging.getLogger(__name__)

SNAPSHOT_MIN_INTERVAL_S = 1.0
"""At most one snapshot a second: each is a lossless PNG written on the rig."""
SNAPSHOT_MIN_FREE_BYTES = 512 * 1024 * 1024
"""Snapshots are refused below this much free disk where recordings go: the disk is the
recording's first."""


def inside_folder(folder: Path, requested: str) -> Path:
    """``requested`` (a control request's path) joined to ``folder``; refused if it leaves it.

    A control request names a file relative to the session's recording folder; an absolute path
    or ``..`` that points elsewhere would let any client write anywhere the rig's user can.
    """
    path = folder / requested
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(
            f"field 'path': {requested!r} is outside the recording folder {folder.resolve()}"
        )
    return path


class RunningSession(Protocol):
    """What the handlers use of a running session
    (:class:`~realtime_pose.live.session.LiveSession` is one)."""

    config: RunConfig
    bundle: Bundle
    pipeline: Pipeline
    publisher: Any  # a PosePublisher, or None when the stream is off
    previewer: Any  # a FramePreviewer, or None without previews
    dispatcher: OutputPort | None
    meta: dict[str, Any]
    rule_configs: list[RuleConfig]
    """The rules as they run now; a zone edit replaces them."""
    engine: Any  # the engine that runs now; a model swap replaces it (with bundle and meta)
    loop_shapes: Any  # the frame and crop sizes the loop feeds (LoopShapes)
    stop_event: threading.Event


class SessionRequests:
    """The control handlers of one running session.

    Attributes
    ----------
    snapshot_interval_s, snapshot_min_free_bytes
        A snapshot is refused sooner than this after the last one, or where less disk than
        this is free (:data:`SNAPSHOT_MIN_INTERVAL_S`, :data:`SNAPSHOT_MIN_FREE_BYTES`).
    """

    def __init__(self, session: RunningSession) -> None:
        self.session = session
        self.snapshot_interval_s = SNAPSHOT_MIN_INTERVAL_S
        self.snapshot_min_free_bytes = SNAPSHOT_MIN_FREE_BYTES
        self._last_snapshot = -float("inf")
        self.models = ModelSwapper(session)
        """The session's model swaps (``model_swap``), one at a time."""
        # two workers: a snapshot need not wait for an hour's recording to be converted
        self._work = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="control-work")

    def close(self) -> None:
        """Wait for the conversions and snapshots still running (call after the control
        socket has closed); their files are the user's and their events are still sent."""
        self._work.shutdown(wait=True)

    def _in_background(
        self, what: str, work: Callable[[], dict[str, Any] | None], event: Callable[..., dict]
    ) -> None:
        """Run ``work`` on a worker thread; post the ``event(**its fields)`` it returns (none if
        it returns ``None``: it sent its own, as a model swap does from the loop), or
        ``event(state="failed", error=...)`` if it raised."""
        pipe = self.session.pipeline

        def run() -> None:
            try:
                fields = work()
            except Exception as exc:
                log.exception("%s failed", what)
                fields = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
            if fields is None:
                return
            try:
                pipe.post_event(event(**fields))
            except Exception:  # the stream may be gone at shutdown; the log says what happened
                log.exception("the event after %s could not be sent", what)

        self._work.submit(run)

    def handlers(self) -> dict[str, Any]:
        """The control socket's handlers by ``cmd``."""
        session = self.session
        pipe = session.pipeline

        def status(_req: messages.StatusRequest) -> dict:
            return {"status": pipe.last_status or pipe.call_in_loop(pipe.publish_status)}

        def meta(_req: messages.MetaRequest) -> dict:
            publisher = session.publisher
            if publisher is not None:  # from the loop: the stream socket is its alone
                try:
                    pipe.call_in_loop(lambda: publisher.publish_meta(session.meta))
                except TimeoutError:  # a stalled loop: the reply still carries meta
                    log.warning("meta was not republished: the loop did not take it in time")
            return {"meta": session.meta}

        def record_start(req: messages.RecordStartRequest) -> dict:
            path = None
            if req.path:  # relative to the recording folder, never to the working directory
                path = inside_folder(session.config.recording.directory, req.path)
            started = pipe.call_in_loop(lambda: pipe.start_recording(path, req.video))
            return {"path": str(started)}

        def record_stop(_req: messages.RecordStopRequest) -> dict:
            # detach between frames (quick); close and convert on a worker, then say so
            recorder, video = pipe.call_in_loop(pipe.detach_recording)
            path = str(recorder.path)

            def finish() -> dict[str, Any]:
                reply = finish_recording(recorder, video)
                reply.pop("path")
                return {"state": "stopped", **reply}

            self._in_background(
                f"closing and converting {path}",
                finish,
                lambda **fields: messages.event_payload("recording", path, pipe.frames, **fields),
            )
            return {"path": path, "converting": True}

        def rule_switch(enable: bool):
            def handler(req: messages.RuleEnableRequest | messages.RuleDisableRequest) -> dict:
                rules = pipe.rules
                if rules is None:
                    raise ValueError("this run has no rules")
                switch = rules.enable if enable else rules.disable
                pipe.call_in_loop(lambda: switch(req.name))
                return {"rule": req.name, "enabled": enable}

            return handler

        return {
            "status": status,
            "meta": meta,
            "record_start": record_start,
            "record_stop": record_stop,
            "rule_enable": rule_switch(True),
            "rule_disable": rule_switch(False),
            "rules": lambda _req: self.rules_reply(),
            "zone_set": self.zone_set,
            "rules_save": self.rules_save,
            "output_test": self.output_test,
            "snapshot": self.snapshot,
            "model_swap": self.model_swap,
        }

    def rules_reply(self) -> dict[str, Any]:
        from realtime_pose.rules.edit import zones_of

        rules = self.session.pipeline.rules
        return {
            "rules": [
                r.model_dump(mode="json", exclude_unset=True) for r in self.session.rule_configs
            ],
            "enabled": {r.name: rules.is_enabled(r.name) for r in self.session.rule_configs}
            if rules is not None
            else {},
            "zones": zones_of(self.session.rule_configs),
            "rules_file": None
            if self.session.config.rules_file is None
            else str(self.session.config.rules_file),
        }

    def zone_set(self, req: messages.ZoneSetRequest) -> dict[str, Any]:
        """Validate the edited rules as the config is, then run the new rule from the next
        frame (:meth:`RuleEngine.replace_rule`, in the loop)."""
        from realtime_pose.rules.config import validate_zones
        from realtime_pose.rules.edit import with_zone

        pipe, engine = self.session.pipeline, self.session.pipeline.rules
        if engine is None:
            raise ValueError("this run has no rules")
        edited = with_zone(
            self.session.rule_configs,
            req.rule,
            req.path,
            req.zone,
            self.session.bundle.keypoints,
            list(self.session.config.outputs),
        )
        frame_width, frame_height = self.session.meta["frame_size"]
        validate_zones(edited, frame_width, frame_height)  # as `run` will, with this zone
        rule = next(r for r in edited if r.name == req.rule)

        def apply() -> None:
            engine.replace_rule(rule)  # type: ignore[attr-defined]
            pipe.emit_event(
                messages.event_payload(
                    "rule", rule.name, pipe.frames, state="zone_set", path=req.path, zone=req.zone
                )
            )

        pipe.call_in_loop(apply)
        self.session.rule_configs = edited
        return self.rules_reply()

    def rules_save(self, _req: messages.RulesSaveRequest) -> dict[str, Any]:
        from realtime_pose.live.run_config import dump_rules
        from realtime_pose.util.safe_write import write_text

        path = self.session.config.rules_file
        if path is None:
            raise ValueError(
                "the rules were given inline in the run config, not in a rules file; put them "
                "in a YAML file and write `rules: FILE` in the config to save them from the view"
            )
        # the page asked the user to confirm replacing this file: the request is the overwrite
        write_text(path, dump_rules(self.session.rule_configs), overwrite=True)
        log.info("rules saved to %s", path)
        return {"path": str(path)}

    def output_test(self, req: messages.OutputTestRequest) -> dict[str, Any]:
        """A manual pulse, refused beyond the output's max on-time, and refused when asked
        faster than its limits allow: while it is on, within its minimum off-time, or beyond
        its duty budget (the device holds such pulses off too; this says why)."""
        pipe, dispatcher = self.session.pipeline, self.session.dispatcher
        if dispatcher is None:
            raise ValueError("this run has no outputs")
        choice = self.session.config.outputs.get(req.output)
        if choice is None:
            raise ValueError(
                f"no output named {req.output!r}; outputs: {', '.join(self.session.config.outputs)}"
            )
        max_on_ms = choice.options.max_on_ms  # type: ignore[attr-defined]
        if req.duration_ms > max_on_ms:
            raise ValueError(
                f"{req.duration_ms:g} ms is longer than output {req.output!r} may be on "
                f"(max_on_ms {max_on_ms:g})"
            )

        def act() -> None:
            # in the loop, so nothing switches the output between the check and the pulse
            refusal = dispatcher.hold_off(req.output, req.duration_ms / 1e3)
            if refusal is not None:
                raise ValueError(f"{refusal} (a test pulse is never deferred)")
            dispatcher.submit(req.output, "pulse", req.duration_ms / 1e3, frame_index=pipe.frames)
            pipe.emit_event(
                messages.event_payload(
                    "output",
                    req.output,
                    pipe.frames,
                    action="pulse",
                    duration_s=req.duration_ms / 1e3,
                    rule=None,
                    source="manual test",
                )
            )

        pipe.call_in_loop(act)
        limits = choice.options  # the output's limits, as configured
        return {
            "output": req.output,
            "duration_ms": req.duration_ms,
            "max_on_ms": max_on_ms,
            "min_off_ms": limits.min_off_ms,  # type: ignore[attr-defined]
            "max_duty": limits.max_duty,  # type: ignore[attr-defined]
            "duty_window_ms": limits.duty_window_ms,  # type: ignore[attr-defined]
        }

    def snapshot(self, _req: messages.SnapshotRequest) -> dict[str, Any]:
        """Name the newest previewed frame's files and save them on a worker (PNG encoding is
        slow); an ``event`` of kind ``snapshot`` says when they are written. Refused sooner
        than :attr:`snapshot_interval_s` after the last one, and below
        :attr:`snapshot_min_free_bytes` of free disk."""
        from realtime_pose.view.preview import write_snapshot

        previewer = self.session.previewer
        if previewer is None:
            raise ValueError("snapshots need previews: set view.enabled or view.publish_frames")
        since = time.monotonic() - self._last_snapshot
        if since < self.snapshot_interval_s:
            raise ValueError(
                f"at most one snapshot every {self.snapshot_interval_s:g} s; try again in "
                f"{self.snapshot_interval_s - since:.1f} s"
            )
        folder = self.session.config.recording.directory
        free = free_disk_bytes(folder)
        if free is not None and free < self.snapshot_min_free_bytes:
            raise ValueError(
                f"only {free / 1e6:.0f} MB free where snapshots go ({folder}); snapshots need "
                f"{self.snapshot_min_free_bytes / 1e6:.0f} MB, the rest is kept for recordings"
            )
        planned = previewer.plan_snapshot(folder)
        self._last_snapshot = time.monotonic()

        def save() -> dict[str, Any]:
            write_snapshot(planned)
            return {"state": "saved"}

        self._in_background(
            f"saving the snapshot {planned.png_path}",
            save,
            lambda **fields: messages.event_payload(
                "snapshot",
                str(planned.png_path),
                planned.tapped.frame_index,
                **planned.paths(),
                **fields,
            ),
        )
        return {**planned.paths(), "saving": True}

    def model_swap(self, req: messages.ModelSwapRequest) -> dict[str, Any]:
        """Load and check the bundle now (a broken one, or one whose keypoints or animals
        differ from the running model's, is refused in the reply, which otherwise confirms its
        keypoints match); build, warm up and swap it in on a worker, and say so with a
        ``model`` event: ``state: "swapped"`` (emitted by the loop at the swap, with
        ``since_seq``) or ``state: "failed"`` with ``error`` (the old model goes on)."""
        pipe, swapper = self.session.pipeline, self.models
        planned = swapper.plan(req.bundle)
        try:
            self._in_background(
                f"swapping in the model {planned.bundle.root}",
                lambda: swapper.run(planned),
                lambda **fields: planned.event(pipe.frames, **fields),
            )
        except BaseException:  # no worker (the session is closing): nothing will run it
            swapper.abandon(planned)
            raise
        return planned.reply(self.session.loop_shapes)


def free_disk_bytes(folder: Path) -> int | None:
    """Free bytes on the disk that holds ``folder`` (or would: its nearest existing parent);
    ``None`` where that cannot be read."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None
