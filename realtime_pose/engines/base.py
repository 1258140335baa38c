"""The one interface every inference engine implements, and the options they all share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import Field

from realtime_pose.bundle import Bundle
from realtime_pose.geometry import Size
from realtime_pose.plugins import PluginOptions


class EngineError(RuntimeError):
    """An engine could not be created or run; the message says what to install or change."""


class EngineUnavailableError(EngineError):
    """The requested backend or provider is not installed or has no device here."""


class EngineOptions(PluginOptions):
    """Options every engine takes (``engine:`` in a run config); backends add their own."""

    warmup_runs: int = Field(
        default=5, ge=0, description="runs at each input shape before the first real frame"
    )


@runtime_checkable
class Engine(Protocol):
    """Runs one network on one image, batch 1.

    ``run`` takes an ``[H, W, C]`` array laid out as the bundle's input says (uint8 RGB by
    default, or the engine's :attr:`input_color`; the batch axis is added without a copy) and
    returns the outputs in the bundle's order (keypoints, or score map then locref). Returned
    arrays may be reused by the next call: consume them before calling ``run`` again.

    A plug-in engine is a class with ``Options`` (an :class:`EngineOptions` subclass) and a
    ``for_bundle`` class method (see :class:`EngineFactory`), registered with
    ``@ENGINES.register("name")`` (:mod:`realtime_pose.plugins`).
    """

    #: The only input size the engine accepts, or ``None`` when it accepts any.
    fixed_input_size: Size | None
    #: The colour order ``run`` takes when the engine converts colours inside its compiled
    #: model (e.g. ``"BGR"``: camera frames go in as they come, no conversion pass on our
    #: side), or ``None``: the bundle's ``input.color``.
    input_color: str | None

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        """Run the network on one image and return its outputs."""
        ...

    def warmup(self, size: Size, runs: int = 3) -> None:
        """Run a few times at ``size`` so the first real frame is not slow."""
        ...

    def close(self) -> None:
        """Release the session, device buffers and threads."""
        ...


class EngineFactory(Protocol):
    """What a registered engine class provides besides :class:`Engine` itself."""

    Options: ClassVar[type[EngineOptions]]

    @classmethod
    def for_bundle(
        cls, bundle: Bundle, options: EngineOptions, input_sizes: Sequence[Size]
    ) -> Engine:
        """Create the engine for ``bundle``.

        ``input_sizes`` are the network input sizes the caller will feed (the full frame's and,
        with cropping, the crop window's), or empty when not known in advance; engines that
        compile for fixed shapes (TensorRT) build or load one for each.
        """
        ...
