"""Frame sources: cameras, video files and synthetic scenes behind one protocol.

Each kind is one module of this package whose :class:`FrameSource` subclass registers itself as a
source plug-in (:data:`realtime_pose.plugins.SOURCES`): ``camera`` (OpenCV), ``video``,
``synthetic``, and the machine-vision cameras ``basler`` (pypylon), ``genicam`` (harvesters) and
``aravis``. Modules are imported on demand, so choosing a source never imports what another kind
needs. Adding a kind is one new module here (or a package of your own registered through the
``realtime_pose.sources`` entry-point group).

Beside the plug-ins live what they share: the :class:`~realtime_pose.sources.base.FrameSource`
protocol (:mod:`.base`); what every machine-vision camera source shares, none of it importing a
camera SDK: camera time on the host clock (:mod:`.camera_clock`), drops counted from the camera's
own frame ids and buffer states (:mod:`.camera_drops`), options checked against the camera's
GenICam limits (:mod:`.camera_limits`), the standard GenICam features (:mod:`.genicam_features`),
pixel formats to BGR (:mod:`.pixel_formats`) and the common options and frame assembly
(:mod:`.machine_vision`); the drawn scene behind the synthetic camera (:mod:`.synthetic_scene`);
and ``source:`` sections given on the command line (:mod:`.sections`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from realtime_pose.plugins import SOURCES, Choice
from realtime_pose.sources.base import Frame, FrameSource, SourceError


def make_source(kind: str | Choice | Mapping[str, Any], **options: Any) -> FrameSource:
    """Build a source (returned closed) from its kind and options, or a ``source:`` section.

    Raises
    ------
    pydantic.ValidationError
        An unknown kind or a bad option; the message names the field.

    Examples
    --------
    >>> source = make_source("synthetic", fps=50, max_frames=10)
    >>> source.source_id
    'synthetic0'
    """
    section = {"kind": kind, **options} if isinstance(kind, str) else kind
    choice = SOURCES.choose(section)
    return choice.cls.from_options(choice.options)


__all__ = ["SOURCES", "Frame", "FrameSource", "SourceError", "make_source"]
