"""Inference engines behind one interface (:class:`~realtime_pose.engines.base.Engine`).

Each backend is one module of this package registered as an engine plug-in
(:data:`realtime_pose.plugins.ENGINES`): ``onnxruntime`` (CPU, CUDA or TensorRT execution
providers), ``openvino`` (Intel's and AMD's CPUs, in fp32 or the reduced precisions the CPU
computes), ``tensorrt`` (a native TensorRT engine from the bundle's cache) and ``auto`` (what
``realtime-pose tune`` chose for this bundle on this CPU, stored by :mod:`.tuned`; ONNX Runtime
where nothing was tuned; the default when a run config has no ``engine:`` section). The run
config's ``engine:`` section names the backend and its options::

    engine: {kind: onnxruntime, provider: cpu, threads: 2}

Adding a backend is one new module here (or a package of your own registered through the
``realtime_pose.engines`` entry-point group).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from realtime_pose.bundle import Bundle
from realtime_pose.engines.base import (
    Engine,
    EngineError,
    EngineOptions,
    EngineUnavailableError,
)
from realtime_pose.geometry import Size
from realtime_pose.plugins import ENGINES, Choice


def open_engine(
    bundle: Bundle,
    engine: Choice | Mapping[str, Any] | None = None,
    input_sizes: Sequence[Size] = (),
) -> Engine:
    """Create the engine a run config's ``engine:`` section asks for, for ``bundle``.

    Parameters
    ----------
    bundle
        The loaded model bundle.
    engine
        The section as validated by the run config (a :class:`~realtime_pose.plugins.Choice`),
        or as a mapping, e.g. ``{"kind": "onnxruntime", "threads": 2}``; ``None``: ONNX
        Runtime on the CPU with its defaults.
    input_sizes
        The network input sizes the caller will feed, when known (GPU engines build one shape
        each); a bundle with a fixed input size always uses that one.

    Raises
    ------
    pydantic.ValidationError
        Unknown backend or bad options (the message names the field).
    EngineError
        The engine could not be created (:class:`EngineUnavailableError`: missing package or
        device; the message says what to install).
    """
    choice = ENGINES.choose(engine if engine is not None else {})
    fixed = bundle.meta.input.fixed_size
    sizes = [fixed] if fixed is not None else list(dict.fromkeys(Size(*s) for s in input_sizes))
    opened = choice.cls.for_bundle(bundle, choice.options, sizes)
    if engine_section(opened) is None:
        with contextlib.suppress(AttributeError):  # a plug-in with __slots__ says nothing
            opened.section = choice.dump()
    return opened


def engine_section(engine: Engine) -> dict[str, Any] | None:
    """The ``engine:`` section that actually runs in ``engine`` (for ``auto``: the tuned one,
    or the fallback, with ``chosen_by``), as :func:`open_engine` noted it; ``None`` if unknown."""
    return getattr(engine, "section", None)


def parse_engine_section(text: str | None, option: str = "--engine") -> dict[str, Any] | None:
    """A command line's engine section (YAML, e.g. ``'{kind: openvino, precision: bf16}'``),
    or ``None``; ``ValueError`` naming ``option`` for anything but a mapping."""
    if text is None:
        return None
    import yaml

    try:
        section = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{option}: not YAML ({exc})") from exc
    if not isinstance(section, dict):
        raise ValueError(f"{option}: expected a mapping like '{{kind: openvino}}', got {text!r}")
    return section


__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "EngineOptions",
    "EngineUnavailableError",
    "engine_section",
    "open_engine",
    "parse_engine_section",
]
