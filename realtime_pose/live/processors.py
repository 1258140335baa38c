"""Pose processors: user code called on every pose, DeepLabCut-Live processors unchanged.

A processor is any object with ``process(pose, **kwargs) -> pose`` — the DeepLabCut-Live
``Processor`` API. It is called with ``frame_time`` (capture time, seconds on the monotonic
clock), ``frame_index`` and, for processors derived from :class:`Processor`, nothing else is
needed: the base class adds access to the run's outputs and event stream.

A processor that raises is logged (once per kind of error) and counted; the loop carries on with
the pose it had.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)


class Processor:
    """Base class for realtime-pose processors (DeepLabCut-Live compatible).

    Subclasses override :meth:`process`. The pipeline calls :meth:`attach` before the first
    frame, giving ``self.outputs`` (``submit(output, action, duration_s=None)``) and
    ``self.emit_event(dict)`` for the event stream.
    """

    outputs: Any = None

    def attach(self, submit: Callable[..., Any] | None, emit_event: Callable[[dict], None]) -> None:
        """Connect the processor to the run's output dispatcher and event stream."""
        self.outputs = submit
        self._emit_event = emit_event

    def emit_event(self, event: Mapping[str, Any], frame_index: int = -1) -> None:
        """Publish (and record) an ``event`` of kind ``processor`` named after this class."""
        emit = getattr(self, "_emit_event", None)
        if emit is not None:
            from realtime_pose.stream.messages import event_payload

            fields = {k: v for k, v in event.items() if k not in ("kind", "name")}
            emit(event_payload("processor", type(self).__name__, frame_index, **fields))

    def process(self, pose, **kwargs):
        """Return the (possibly modified) pose; the default passes it through."""
        return pose

    def save(self, file: str | None = None) -> int:
        """DeepLabCut-Live hook called when the run stops; return 1 on success."""
        return 0


class ProcessorConfig(BaseModel):
    """One processor in the run config: ``class`` as ``module:Name`` or with a ``file``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class_: str = Field(alias="class", description="'package.module:ClassName' or 'ClassName'")
    file: Path | None = Field(default=None, description="a .py file defining the class")
    kwargs: dict[str, Any] = Field(default_factory=dict)


def load_processor(config: ProcessorConfig, base_dir: Path | None = None) -> Any:
    """Import and instantiate a processor; errors say which class or file is at fault."""
    if config.file is not None:
        path = config.file if config.file.is_absolute() else (base_dir or Path()) / config.file
        if not path.is_file():
            raise ValueError(f"processors: file {path} does not exist")
        spec = importlib.util.spec_from_file_location(f"rp_processor_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        class_name = config.class_.split(":")[-1]
    else:
        if ":" not in config.class_:
            raise ValueError(
                f"processors: class {config.class_!r} must be 'module:ClassName' (or give 'file')"
            )
        module_name, class_name = config.class_.split(":", 1)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"processors: cannot import {module_name!r} ({exc})") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"processors: {class_name!r} not found in {module.__name__}")
    try:
        processor = cls(**config.kwargs)
    except TypeError as exc:
        raise ValueError(f"processors: {class_name}(**kwargs) failed: {exc}") from exc
    if not callable(getattr(processor, "process", None)):
        raise ValueError(f"processors: {class_name} has no process(pose, **kwargs) method")
    return processor


class ProcessorChain:
    """Calls each processor in turn; failures are logged once per kind and counted."""

    def __init__(self, processors: list[Any]) -> None:
        self.processors = list(processors)
        self.errors = 0
        self._seen: set[tuple[str, str]] = set()

    def __len__(self) -> int:
        return len(self.processors)

    def __call__(self, pose, frame_time: float, frame_index: int):
        for proc in self.processors:
            try:
                result = proc.process(pose, frame_time=frame_time, frame_index=frame_index)
            except Exception as exc:  # user code: never fatal to the loop
                self.errors += 1
                key = (type(proc).__name__, type(exc).__name__)
                if key not in self._seen:
                    self._seen.add(key)
                    log.exception("processor %s raised at frame %d", key[0], frame_index)
                continue
            if result is not None:
                pose = result
        return pose

    def save_all(self) -> None:
        """Call DeepLabCut-Live's ``save()`` hook where a processor has one."""
        for proc in self.processors:
            save = getattr(proc, "save", None)
            if callable(save):
                try:
                    save()
                except Exception:
                    log.exception("processor %s: save() failed", type(proc).__name__)
