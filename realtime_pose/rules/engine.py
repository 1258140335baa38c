"""The rule engine: evaluated once per frame, it turns poses into events and output actions.

The engine is pure logic. It never touches hardware: each :class:`RuleEvent` carries the
:class:`Action` records that the live loop hands to the output dispatcher
(``dispatcher.submit(a.output, a.action, a.duration_s, frame_index=e.frame_index,
t_frame_ns=e.t_ns)``) and publishes on the ``event`` topic (:meth:`RuleEvent.to_dict`).

Per rule, per frame::

    condition ──▶ active? ──rising edge──▶ wait min_dwell_s ──▶ refractory ok? ──▶ "fired"
                         └─falling edge (after a firing)───────────────────────▶ "released"
    an `on` output held for max_on_s ──────────────────────────────────────────▶ "max_on_cut"

``active`` is the condition for ``on: enter`` and ``on: while``, and its negation for
``on: exit`` (armed only once the condition has been true, so a keypoint that starts outside a
zone does not "exit" it on the first frame). An ``enter``/``exit`` rule fires at most once per
active episode; a ``while`` rule fires every frame of it, at most once per ``refractory_s``.
Times are the frames' timestamps, so every timing has the resolution of the frame period; the
output devices enforce their own maximum on-time as well.

A rule whose conditions are 3D (:attr:`RuleConfig.space`) looks at the triangulated pose of the
same frame set, handed to :meth:`RuleEngine.evaluate` beside the 2D pose (``pose3d=``): one call
per frame evaluates every rule in config order, so events keep one order and rules that share
an output see each other's ``off`` as they do in 2D.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from realtime_pose.rules.conditions import Condition, PoseRows, compile_condition
from realtime_pose.rules.config import RuleConfig, scoped_condition, validate_rules

EventKind = Literal["fired", "released", "max_on_cut"]


@dataclass(frozen=True, slots=True)
class Action:
    """One output action for the dispatcher.

    Attributes
    ----------
    output
        Name of the output (as in the run config's outputs section).
    action
        ``"pulse"``, ``"on"``, ``"off"`` or ``"toggle"``.
    duration_s
        Pulse length in seconds; ``None`` for the other actions.
    """

    output: str
    action: str
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping for msgpack/JSON."""
        return {"output": self.output, "action": self.action, "duration_s": self.duration_s}


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """Something a rule did on one frame.

    Attributes
    ----------
    rule
        The rule's name.
    kind
        ``"fired"`` (the rule's actions), ``"released"`` (the active episode ended; ``off`` for
        the outputs the rule still held on) or ``"max_on_cut"`` (``off`` for outputs held on
        for ``max_on_s``).
    frame_index, t_ns
        The frame that caused the event and its timestamp (``t_capture_ns``).
    actions
        What the dispatcher should do; may be empty (a release with nothing to switch off).
    source
        The pose the rule looked at: ``"measured"`` or ``"predicted"``.
    """

    rule: str
    kind: EventKind
    frame_index: int
    t_ns: int
    actions: tuple[Action, ...]
    source: str = "measured"

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping for the ``event`` stream topic and the recording."""
        return {
            "rule": self.rule,
            "kind": self.kind,
            "frame_index": self.frame_index,
            "t_ns": self.t_ns,
            "source": self.source,
            "actions": [a.to_dict() for a in self.actions],
        }


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


class _Rule:
    """A compiled rule and its per-frame state (plain attributes: this is the hot path)."""

    __slots__ = (
        "active",
        "active_since_ns",
        "clear_outputs",
        "condition",
        "done",
        "dwell_ns",
        "enabled",
        "ever_true",
        "fire_actions",
        "fired",
        "held",
        "is_3d",
        "last_fire_ns",
        "max_on_ns",
        "name",
        "off_on_release",
        "on_exit",
        "on_outputs",
        "refractory_ns",
        "release_pending",
        "repeat",
        "use_predicted",
    )

    def __init__(self, cfg: RuleConfig, condition: Condition) -> None:
        self.name = cfg.name
        self.condition = condition
        self.enabled = cfg.enabled
        self.use_predicted = cfg.source == "predicted"
        self.is_3d = cfg.space == "3d"
        self.on_exit = cfg.on == "exit"
        self.repeat = cfg.on == "while"
        self.dwell_ns = _ns(cfg.min_dwell_s)
        self.refractory_ns = _ns(cfg.refractory_s)
        self.max_on_ns = None if cfg.max_on_s is None else _ns(cfg.max_on_s)
        self.off_on_release = cfg.off_on_release
        self.fire_actions = tuple(
            Action(a.output, a.action, None if a.duration_ms is None else a.duration_ms / 1e3)
            for a in cfg.actions
        )
        self.on_outputs = tuple(a.output for a in self.fire_actions if a.action == "on")
        # After an off or a toggle the engine no longer knows the output is on.
        self.clear_outputs = tuple(
            a.output for a in self.fire_actions if a.action in ("off", "toggle")
        )
        self.reset()

    def reset(self) -> None:
        self.condition.reset()
        self.active = False  # inside an active episode
        self.active_since_ns = 0
        self.fired = False  # fired in this episode
        self.done = False  # no more firing in this episode (fired once, edge dropped, or cut)
        self.ever_true = False  # for on: exit
        self.last_fire_ns: int | None = None
        self.held: dict[str, int] = {}  # output -> t_ns it was switched on by this rule
        self.release_pending = False

    def is_active(self, rows: PoseRows, t_ns: int) -> bool:
        """Whether this frame is inside an active episode (the condition, or for ``on: exit``
        its negation once the condition has been true)."""
        holds = self.condition.evaluate(rows, t_ns)
        if not self.on_exit:
            return holds
        if holds:
            self.ever_true = True
            return False
        return self.ever_true

    def start_episode(self, t_ns: int) -> None:
        """Begin an active episode at ``t_ns``: the dwell time counts from here."""
        self.active = True
        self.active_since_ns = t_ns
        self.fired = False
        self.done = False

    def may_fire(self, t_ns: int) -> bool:
        """Whether the dwell time and refractory period allow firing now.

        An ``enter``/``exit`` edge that lands inside the refractory period is dropped.
        """
        if self.done or t_ns - self.active_since_ns < self.dwell_ns:
            return False
        last = self.last_fire_ns
        if last is not None and t_ns - last < self.refractory_ns:
            if not self.repeat:
                self.done = True  # an edge inside the refractory period is dropped
            return False
        return True


class RuleEngine:
    """Evaluates rules on each frame's pose and returns what happened.

    Parameters
    ----------
    rules
        Validated rules (:func:`~realtime_pose.rules.config.parse_rules`), evaluated in this
        order; events of one frame come in this order too.
    keypoints
        The model's keypoint names, in the order of the pose rows (of the 2D and the 3D pose).

    Raises
    ------
    ValueError
        When a rule names a keypoint the model does not have, or two rules share a name.
        2D and 3D rules are both accepted: whether the session has the poses its rules need is
        checked at start by :func:`~realtime_pose.rules.config.validate_rules` (``space=``).

    Notes
    -----
    Call :meth:`evaluate`, :meth:`enable`, :meth:`disable` and :meth:`reset` from one thread
    (the live loop's); a :meth:`disable` takes effect, with its ``released`` event, on the next
    :meth:`evaluate`.
    """

    def __init__(self, rules: Sequence[RuleConfig], keypoints: Sequence[str]) -> None:
        validate_rules(rules, keypoints, outputs=None, space="both")
        self._keypoints = tuple(keypoints)
        self._rules = tuple(self._compile(cfg) for cfg in rules)
        self._retired: list[_Rule] = []
        self._index_rules()
        nan = float("nan")
        self._missing: PoseRows = [[nan, nan, 0.0] for _ in self._keypoints]
        self._missing3d: PoseRows = [[nan, nan, nan, nan, 0.0] for _ in self._keypoints]

    def _compile(self, cfg: RuleConfig) -> _Rule:
        index = {name: i for i, name in enumerate(self._keypoints)}
        condition = scoped_condition(cfg, self._keypoints)
        return _Rule(cfg, compile_condition(condition, index, cfg.min_likelihood, cfg.min_views))

    def _index_rules(self) -> None:
        self._by_name = {r.name: r for r in self._rules}
        self._any_2d = any(not r.is_3d for r in self._rules)
        self._any_3d = any(r.is_3d for r in self._rules)
        self._any_predicted = any(r.use_predicted and not r.is_3d for r in self._rules)
        self._any_predicted3d = any(r.use_predicted and r.is_3d for r in self._rules)
        self._off_actions = {
            a.output: Action(a.output, "off")
            for r in (*self._rules, *self._retired)
            for a in r.fire_actions
        }

    @property
    def rule_names(self) -> tuple[str, ...]:
        """Names of all rules, in evaluation order."""
        return tuple(r.name for r in self._rules)

    @property
    def has_2d_rules(self) -> bool:
        """Whether some rule looks at the 2D pose (``pose`` of :meth:`evaluate`)."""
        return self._any_2d

    @property
    def has_3d_rules(self) -> bool:
        """Whether some rule looks at the triangulated pose (``pose3d`` of :meth:`evaluate`)."""
        return self._any_3d

    @property
    def keypoints(self) -> tuple[str, ...]:
        """Keypoint names, in the order of the pose rows."""
        return self._keypoints

    def _rule(self, name: str) -> _Rule:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name) or "none"
            raise KeyError(f"no rule named {name!r}; the rules are: {known}") from None

    def is_enabled(self, name: str) -> bool:
        """Whether the rule ``name`` is evaluated (KeyError for an unknown name)."""
        return self._rule(name).enabled

    def enable(self, name: str) -> None:
        """Start evaluating the rule ``name`` from a fresh state (no-op when already enabled).

        Raises
        ------
        KeyError
            When no rule has this name; the message lists the rules.
        """
        rule = self._rule(name)
        if rule.enabled:
            return
        if rule.release_pending:
            # Disabled and enabled again between two frames: nothing happened.
            rule.release_pending = False
        else:
            rule.reset()
        rule.enabled = True

    def disable(self, name: str) -> None:
        """Stop evaluating the rule ``name`` (no-op when already disabled).

        Outputs the rule holds on are switched off by a ``released`` event on the next
        :meth:`evaluate`.

        Raises
        ------
        KeyError
            When no rule has this name; the message lists the rules.
        """
        rule = self._rule(name)
        if rule.enabled:
            rule.enabled = False
            rule.release_pending = True

    def replace_rule(self, config: RuleConfig) -> None:
        """Run ``config`` in place of the rule of the same name (a zone moved, a threshold
        changed), from the next :meth:`evaluate` on.

        The new rule starts from a fresh state, keeps its place in the evaluation order and
        whether it is enabled now (the switch of :meth:`enable`/:meth:`disable`, not
        ``config.enabled``). Outputs the old rule held on are switched off by its ``released``
        event on the next :meth:`evaluate`, as :meth:`disable` does; if the pose is inside
        the new condition, the new rule fires on that frame as on a fresh start.

        Raises
        ------
        KeyError
            When no rule has this name.
        ValueError
            When the rule names a keypoint the model does not have.
        """
        old = self._rule(config.name)
        validate_rules([config], self._keypoints, outputs=None, space="both")
        new = self._compile(config)
        new.enabled = old.enabled
        if old.held or (old.active and old.fired) or old.release_pending:
            self._retired.append(old)
        self._rules = tuple(new if r is old else r for r in self._rules)
        self._index_rules()

    def _release_retired(self, frame_index: int, t_ns: int) -> list[RuleEvent]:
        events = []
        for rule in self._retired:
            if rule.held or (rule.active and rule.fired):
                events.append(
                    self._off_event(
                        rule, "released", tuple(rule.held), frame_index, t_ns, "measured"
                    )
                )
        self._retired.clear()
        self._index_rules()
        return events

    def reset(self) -> None:
        """Forget all state (edges, timers, held outputs); enabled flags are kept.

        No ``off`` is emitted: switch the outputs off through the dispatcher when needed.
        """
        self._retired.clear()
        for rule in self._rules:
            rule.reset()

    def _rows(self, pose: Any, what: str) -> PoseRows:
        arr = np.asarray(pose)
        if arr.ndim == 3:
            if arr.shape[0] == 0:
                return self._missing  # no animal detected: every keypoint invisible
            arr = arr[0]
        if arr.ndim != 2 or arr.shape[0] != len(self._keypoints) or arr.shape[1] < 3:
            raise ValueError(
                f"{what} has shape {arr.shape}; the rule engine expects [K, 3] or [A, K, 3] "
                f"rows of (x, y, likelihood) with K = {len(self._keypoints)} keypoints "
                f"({', '.join(self._keypoints)})"
            )
        return arr.tolist()

    def _rows3d(self, pose3d: Any, what: str) -> PoseRows:
        arr = np.asarray(pose3d)
        if arr.ndim == 3:
            if arr.shape[0] == 0:
                return self._missing3d  # no animal triangulated: no keypoint counts
            arr = arr[0]
        if arr.ndim != 2 or arr.shape[0] != len(self._keypoints) or arr.shape[1] < 5:
            raise ValueError(
                f"{what} has shape {arr.shape}; 3D rules expect [K, 5] or [A, K, 5] rows of "
                "(x, y, z, reprojection_px, n_views) in mm with K = "
                f"{len(self._keypoints)} keypoints ({', '.join(self._keypoints)})"
            )
        return arr.tolist()

    def _switched_off(self, outputs: Sequence[str]) -> None:
        for rule in self._rules:
            if rule.held:
                for output in outputs:
                    rule.held.pop(output, None)

    def _off_event(
        self,
        rule: _Rule,
        kind: EventKind,
        outputs: Sequence[str],
        frame_index: int,
        t_ns: int,
        source: str,
    ) -> RuleEvent:
        actions = tuple(self._off_actions[o] for o in outputs)
        if outputs:
            self._switched_off(outputs)
        return RuleEvent(rule.name, kind, frame_index, t_ns, actions, source)

    def evaluate(
        self,
        pose: np.ndarray | None,
        t_ns: int,
        frame_index: int,
        predicted: np.ndarray | None = None,
        *,
        pose3d: np.ndarray | None = None,
        predicted3d: np.ndarray | None = None,
    ) -> list[RuleEvent]:
        """Evaluate every enabled rule on one frame (or frame set).

        Parameters
        ----------
        pose
            Measured pose, ``[K, 3]`` rows of ``(x, y, likelihood)`` in frame pixels. A
            multi-animal ``[A, K, 3]`` array uses animal 0 (``A == 0``: every keypoint counts as
            not visible). ``None`` (a session that has only a 3D pose): every keypoint counts
            as not visible for 2D rules; not read at all when there are no 2D rules.
        t_ns
            The frame's timestamp (``t_capture_ns``); must not go backwards.
        frame_index
            The frame's index, copied into the events.
        predicted
            Forward-predicted pose, same layout; 2D rules with ``source: predicted`` use it
            when given and the measured pose otherwise.
        pose3d
            Triangulated pose of the same frame set for 3D rules, ``[K, 5]`` rows of ``(x, y,
            z, reprojection_px, n_views)`` in mm (the keypoints of ``pose``), or ``[A, K, 5]``
            (animal 0). A keypoint with NaN coordinates or fewer than ``min_views`` views
            makes the conditions that need it false; ``None`` (no 3D pose for this frame):
            no keypoint counts. Not read when there are no 3D rules.
        predicted3d
            Forward-predicted 3D pose, same layout; 3D rules with ``source: predicted`` use it
            when given and ``pose3d`` otherwise.

        Returns
        -------
        list of RuleEvent
            In rule order; usually empty.

        Raises
        ------
        ValueError
            When a pose does not have ``K`` rows of at least 3 values (5 for a 3D pose).
        """
        measured = self._missing if pose is None or not self._any_2d else self._rows(pose, "pose")
        projected = measured
        projected_source = "measured"
        if predicted is not None and self._any_predicted:
            projected = self._rows(predicted, "predicted")
            projected_source = "predicted"
        measured3d = projected3d = self._missing3d
        projected3d_source = "measured"
        if self._any_3d:
            if pose3d is not None:
                measured3d = projected3d = self._rows3d(pose3d, "pose3d")
            if predicted3d is not None and self._any_predicted3d:
                projected3d = self._rows3d(predicted3d, "predicted3d")
                projected3d_source = "predicted"
        events = self._release_retired(frame_index, t_ns) if self._retired else []
        for rule in self._rules:
            if not rule.enabled:
                if rule.release_pending:
                    self._release_disabled(rule, frame_index, t_ns, events)
                continue
            if rule.is_3d:
                if rule.use_predicted:
                    rows, source = projected3d, projected3d_source
                else:
                    rows, source = measured3d, "measured"
            elif rule.use_predicted:
                rows, source = projected, projected_source
            else:
                rows, source = measured, "measured"
            active = rule.is_active(rows, t_ns)
            if not active and rule.active:
                self._end_episode(rule, frame_index, t_ns, source, events)
            if rule.held and rule.max_on_ns is not None:
                self._cut_expired(rule, rule.max_on_ns, frame_index, t_ns, source, events)
            if not active:
                continue
            if not rule.active:
                rule.start_episode(t_ns)
            if rule.may_fire(t_ns):
                events.append(self._fire(rule, frame_index, t_ns, source))
        return events

    def _release_disabled(
        self, rule: _Rule, frame_index: int, t_ns: int, events: list[RuleEvent]
    ) -> None:
        """Release what a just-disabled rule holds and reset it."""
        rule.release_pending = False
        if rule.held or (rule.active and rule.fired):
            events.append(
                self._off_event(rule, "released", tuple(rule.held), frame_index, t_ns, "measured")
            )
        rule.reset()

    def _end_episode(
        self, rule: _Rule, frame_index: int, t_ns: int, source: str, events: list[RuleEvent]
    ) -> None:
        """Close the rule's active episode; one that fired emits ``released``."""
        rule.active = False
        if rule.fired:
            outputs = tuple(rule.held) if rule.off_on_release else ()
            events.append(self._off_event(rule, "released", outputs, frame_index, t_ns, source))

    def _cut_expired(
        self,
        rule: _Rule,
        max_on_ns: int,
        frame_index: int,
        t_ns: int,
        source: str,
        events: list[RuleEvent],
    ) -> None:
        """Switch off the outputs the rule has held on for ``max_on_ns`` (``max_on_cut``)."""
        limit = t_ns - max_on_ns
        expired = tuple(o for o, since in rule.held.items() if since <= limit)
        if expired:
            events.append(self._off_event(rule, "max_on_cut", expired, frame_index, t_ns, source))
            if rule.active:
                rule.done = True  # no re-firing until the episode ends

    def _fire(self, rule: _Rule, frame_index: int, t_ns: int, source: str) -> RuleEvent:
        """Fire the rule: note the outputs it switches on or off and return its event."""
        rule.last_fire_ns = t_ns
        rule.fired = True
        rule.done = not rule.repeat
        if rule.clear_outputs:
            self._switched_off(rule.clear_outputs)
        for output in rule.on_outputs:
            if output not in rule.held:
                rule.held[output] = t_ns
        return RuleEvent(rule.name, "fired", frame_index, t_ns, rule.fire_actions, source)
