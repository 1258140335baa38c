"""Crash-safe recording of poses and events, and optional raw video.

- :class:`~realtime_pose.recording.recorder.PoseRecorder`: append-only pose/event log.
- :func:`~realtime_pose.recording.log_format.read_log`: read a log back (torn tail tolerated).
- :func:`~realtime_pose.recording.convert.convert_log`: log → DeepLabCut ``.h5``/``.csv``.
- :class:`~realtime_pose.recording.video.VideoRecorder`: non-blocking video + frame sidecar.
"""

from realtime_pose.recording.convert import convert_log
from realtime_pose.recording.log_format import LOG_SUFFIX, LogFormatError, PoseLog, read_log
from realtime_pose.recording.recorder import PoseRecorder, RecordingResult
from realtime_pose.recording.video import VideoRecorder

__all__ = [
    "LOG_SUFFIX",
    "LogFormatError",
    "PoseLog",
    "PoseRecorder",
    "RecordingResult",
    "VideoRecorder",
    "convert_log",
    "read_log",
]
