"""The ``auto`` engine: what ``realtime-pose tune`` found fastest for this bundle on this CPU.

It is the engine a run config gets when it has no ``engine:`` section. Without a stored tuning
for this CPU model (see :mod:`realtime_pose.engines.tuned`), or when the stored choice cannot
run here (its package uninstalled since), it is ONNX Runtime with its defaults, and says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from realtime_pose.bundle import Bundle
from realtime_pose.engines.base import Engine, EngineOptions, EngineUnavailableError
from realtime_pose.geometry import Size
from realtime_pose.plugins import ENGINES, Choice

log = logging.getLogger(__name__)


class AutoOptions(EngineOptions):
    """``engine: {kind: auto}``: no options of its own but the warm-up."""


@ENGINES.register("auto")
class AutoEngine:
    """Not an engine itself: :meth:`for_bundle` returns the tuned one (or ONNX Runtime)."""

    Options = AutoOptions

    @classmethod
    def for_bundle(
        cls, bundle: Bundle, options: AutoOptions, input_sizes: Sequence[Size]
    ) -> Engine:
        """The engine stored by ``realtime-pose tune`` for this CPU, else ONNX Runtime."""
        from realtime_pose.engines.tuned import tuned_engine

        choice = tuned_engine(bundle)
        if choice is None:
            log.info(
                "%s: not tuned for this CPU (realtime-pose tune %s); using ONNX Runtime",
                bundle.meta.name,
                bundle.root,
            )
            return _opened(ENGINES.choose({"kind": "onnxruntime"}), bundle, input_sizes, "default")
        log.info("%s: tuned engine %s", bundle.meta.name, choice.dump())
        try:
            return _opened(choice, bundle, input_sizes, "tune")
        except EngineUnavailableError as exc:  # uninstalled since, or another machine's choice
            log.warning(
                "%s: the tuned engine cannot run here (%s); using ONNX Runtime (tune again)",
                bundle.meta.name,
                exc,
            )
        return _opened(ENGINES.choose({"kind": "onnxruntime"}), bundle, input_sizes, "fallback")


def _opened(choice: Choice, bundle: Bundle, input_sizes: Sequence[Size], why: str) -> Engine:
    """The engine ``choice`` names, noting which section runs and why (``chosen_by``)."""
    engine = choice.cls.for_bundle(bundle, choice.options, input_sizes)
    with contextlib.suppress(AttributeError):
        engine.section = {**choice.dump(), "chosen_by": f"auto ({why})"}
    return engine
