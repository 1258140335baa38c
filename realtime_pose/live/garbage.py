"""Python's garbage collector kept out of the frames: collections between frames, on the loop.

CPython collects whenever allocations pass a threshold, on whichever thread allocates: a
collection that lands while a frame is in flight (on the loop, or on the serial writer or the
grabber holding the GIL) delays that frame's firing by its whole length. The oldest generation
also walks every long-lived object (the engine's, the bundle's, NumPy's, ZeroMQ's), tens of
thousands of them.

:class:`LoopCollector` freezes what exists when the loop starts (``gc.freeze``: those objects
are never walked again), turns automatic collection off while the loop runs, and collects
itself right after a frame is done: the young generation when it has grown, an older one now and
then (the same schedule CPython's thresholds give, by count). A frame then never waits for a
collection it did not cause. On stop, automatic collection is back as it was.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field


@dataclass
class LoopCollector:
    """Collections between frames; see the module docstring.

    Parameters
    ----------
    young_threshold
        Net allocations (``gc.get_count()[0]``) after which the young generation is collected.
    middle_every, old_every
        Collect generation 1 every this many young collections, generation 2 every this many
        generation-1 collections (CPython's defaults: 10 and 10).
    """

    young_threshold: int = 700
    middle_every: int = 10
    old_every: int = 10
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    """Collections run per generation since :meth:`start`."""
    pause_ns_max: int = 0
    """The longest collection, ns (it ran between frames)."""
    _young: int = 0
    _middle: int = 0
    _was_enabled: bool = True
    _active: bool = False

    def start(self) -> None:
        """Collect once, freeze what is alive, and take collection over from the interpreter."""
        if self._active:
            return
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        self._active = True

    def after_frame(self) -> None:
        """Collect if due; call when a frame is done and before waiting for the next."""
        if not self._active or gc.get_count()[0] < self.young_threshold:
            return
        self._young += 1
        generation = 0
        if self._young >= self.middle_every:
            self._young = 0
            self._middle += 1
            generation = 1
            if self._middle >= self.old_every:
                self._middle = 0
                generation = 2
        t0 = time.monotonic_ns()
        gc.collect(generation)
        self.pause_ns_max = max(self.pause_ns_max, time.monotonic_ns() - t0)
        self.collections[generation] += 1

    def stop(self) -> None:
        """Give collection back to the interpreter (as it was before :meth:`start`)."""
        if not self._active:
            return
        self._active = False
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    def stats(self) -> dict[str, object]:
        """Collections per generation and the longest pause (for the status)."""
        return {"collections": list(self.collections), "pause_max_ms": self.pause_ns_max / 1e6}
