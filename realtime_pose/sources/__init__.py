"""Frame sources: cameras, video files and synthetic scenes behind one protocol.

Each kind is one module exposing one :class:`FrameSource` subclass; :func:`make_source` builds
one by name from configuration. Modules are imported on demand, so choosing a source never
imports what another kind needs.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from realtime_pose.sources.base import Frame, FrameSource, SourceError

SOURCE_KINDS: dict[str, str] = {
    "camera": "realtime_pose.sources.camera:CameraSource",
    "video": "realtime_pose.sources.video:VideoSource",
    "synthetic": "realtime_pose.sources.synthetic:SyntheticSource",
}


def source_class(kind: str) -> type[FrameSource]:
    """The :class:`FrameSource` subclass registered as ``kind``."""
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source kind {kind!r}; choose one of {sorted(SOURCE_KINDS)}")
    module_name, class_name = SOURCE_KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_source(kind: str, **options: Any) -> FrameSource:
    """Build a source of ``kind`` (``camera``, ``video``, ``synthetic``) from keyword options.

    The options are the class's constructor arguments; an unknown option is an error that lists
    the accepted ones. The source is returned closed.

    Examples
    --------
    >>> source = make_source("synthetic", fps=50, max_frames=10)
    >>> source.source_id
    'synthetic0'
    """
    cls = source_class(kind)
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for a {kind} source; accepted: {', '.join(accepted)}"
        )
    return cls(**options)


__all__ = ["SOURCE_KINDS", "Frame", "FrameSource", "SourceError", "make_source", "source_class"]
