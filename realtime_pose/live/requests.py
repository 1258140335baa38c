"""What a running session answers on its control socket: status, recording, rules and the live
view's requests (zones, rules file, manual output pulses, snapshots); see docs/protocol.md.

Each handler takes a validated request (:mod:`realtime_pose.stream.messages`) and returns the
reply's fields, or raises ``ValueError`` with a message the client shows. Anything that changes
the loop's state runs in the loop, between two frames (:meth:`Pipeline.call_in_loop`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from realtime_pose.bundle import Bundle
from realtime_pose.live.pipeline import Pipeline, finish_recording
from realtime_pose.live.run_config import RunConfig
from realtime_pose.ports import OutputPort
from realtime_pose.rules import RuleConfig
from realtime_pose.stream import messages

log = logging.getLogger(__name__)


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


class SessionRequests:
    """The control handlers of one running session."""

    def __init__(self, session: RunningSession) -> None:
        self.session = session

    def handlers(self) -> dict[str, Any]:
        """The control socket's handlers by ``cmd``."""
        session = self.session
        pipe = session.pipeline

        def status(_req: messages.StatusRequest) -> dict:
            return {"status": pipe.last_status or pipe.call_in_loop(pipe.publish_status)}

        def meta(_req: messages.MetaRequest) -> dict:
            if session.publisher is not None:
                session.publisher.publish_meta(session.meta)
            return {"meta": session.meta}

        def record_start(req: messages.RecordStartRequest) -> dict:
            path = None
            if req.path:  # relative to the recording folder, never to the working directory
                path = inside_folder(session.config.recording.directory, req.path)
            started = pipe.call_in_loop(lambda: pipe.start_recording(path, req.video))
            return {"path": str(started)}

        def record_stop(_req: messages.RecordStopRequest) -> dict:
            # detach between frames; close and convert here, on the control thread
            return finish_recording(*pipe.call_in_loop(pipe.detach_recording))

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
        """A manual pulse, refused beyond the output's max on-time (the device clamps too)."""
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
        return {"output": req.output, "duration_ms": req.duration_ms, "max_on_ms": max_on_ms}

    def snapshot(self, _req: messages.SnapshotRequest) -> dict[str, Any]:
        if self.session.previewer is None:
            raise ValueError("snapshots need previews: set view.enabled or view.publish_frames")
        return self.session.previewer.snapshot(self.session.config.recording.directory)
