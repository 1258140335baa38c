"""The one interface every inference engine implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class EngineError(RuntimeError):
    """An engine could not be created or run; the message says what to install or change."""


class EngineUnavailableError(EngineError):
    """The requested backend or provider is not installed or has no device here."""


@runtime_checkable
class Engine(Protocol):
    """Runs one network on one image, batch 1.

    ``run`` takes an ``[H, W, C]`` array laid out as the bundle's input says (uint8 RGB by
    default; the batch axis is added without a copy) and returns the outputs in the bundle's
    order (keypoints, or score map then locref). Returned arrays may be reused by the next call:
    consume them before calling ``run`` again.
    """

    #: ``(height, width)`` when the engine only accepts one input size, else ``None``.
    fixed_input_size: tuple[int, int] | None

    def run(self, image: np.ndarray) -> list[np.ndarray]:
        """Run the network on one image and return its outputs."""
        ...

    def warmup(self, height: int, width: int, runs: int = 3) -> None:
        """Run a few times at ``height x width`` so the first real frame is not slow."""
        ...

    def close(self) -> None:
        """Release the session, device buffers and threads."""
        ...
