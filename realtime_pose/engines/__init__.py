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
    return choice.cls.for_bundle(bundle, choice.options, sizes)


__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "EngineOptions",
    "EngineUnavailableError",
    "open_engine",
]
