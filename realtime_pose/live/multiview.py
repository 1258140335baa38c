"""The live loop of a camera group: one frame set's way to a 3D pose, the outputs and the log.

    frame set ─▶ each view's 2D pose ─▶ triangulation ─▶ 3D forward prediction ─▶ 3D rules
              ─▶ outputs (+ the sync pulse) ─▶ ``pose3d`` on the stream ─▶ the recording

:class:`MultiViewPipeline` is a :class:`~realtime_pose.live.pipeline.Pipeline` whose "frame" is a
:class:`~realtime_pose.live.frame_sets.FrameSet`: the loop, the commands between frames, the
status stream, events and recording control are the single-camera loop's; what a set does is
here. Stage latencies (``latency_ns`` on ``pose3d``, percentiles on ``status``): ``grab`` (the
set's earliest capture → the loop took the set: includes waiting for its last view), ``sync``
(the set's last view reached the host, or the loop asked for a set if that was later → the loop
took the set: the group's own assembly and hand-over, not the wait for a busy loop), ``views``
(every view's preprocessing, network and peaks), ``triangulate``, ``predict``, ``process``
(rules), ``publish``, ``record`` and ``total`` (capture → publish).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from realtime_pose.inference.estimator import PoseEstimator
from realtime_pose.inference.predict import ForwardPredictor, LeadTime
from realtime_pose.inference.triangulate import Triangulator
from realtime_pose.live.frame_sets import FrameSet
from realtime_pose.live.pipeline import Pipeline
from realtime_pose.ports import FrameTap, OutputPort, RecorderFactory
from realtime_pose.stream import messages
from realtime_pose.util.stats import StageStats

STAGES_3D = (
    "grab",
    "sync",
    "views",
    "triangulate",
    "predict",
    "process",
    "publish",
    "record",
    "total",
)


class SyncPulse:
    """A TTL on an output line for every frame set, for aligning poses to electrophysiology.

    Each set's pulse is sent (through the output dispatcher, which never blocks the loop) right
    after the set's pose is known; its send time goes into the ``pose3d`` message and record
    (``sync_t_ns``), so each edge the acquisition system records matches one frame set.
    """

    def __init__(self, output: str, pulse_ms: float = 1.0, every: int = 1) -> None:
        if pulse_ms <= 0 or every < 1:
            raise ValueError("sync pulse_ms must be positive and every at least 1")
        self.output = output
        self.duration_s = pulse_ms / 1000.0
        self.every = int(every)
        self.sent = 0

    def send(self, dispatcher: OutputPort, set_index: int, t_capture_ns: int) -> int | None:
        """Send the pulse for this set (every ``every``-th set); return when it was sent."""
        if set_index % self.every:
            return None
        t_ns = time.monotonic_ns()
        dispatcher.submit(
            self.output, "pulse", self.duration_s, frame_index=set_index, t_frame_ns=t_capture_ns
        )
        self.sent += 1
        return t_ns


class MultiViewPipeline(Pipeline):
    """Per-frame-set processing: 2D per view, triangulation, 3D prediction, rules, outputs.

    Parameters
    ----------
    estimator
        One estimator for every view (views are run one after the other on its engine).
    triangulator
        The calibrated camera group (cameras in the session's ``sources:`` order).
    camera_names
        The cameras, in the frame sets' order.
    predictor
        A 3D :class:`~realtime_pose.inference.predict.ForwardPredictor` (``dims=3``), or
        ``None``.
    sync
        The per-set sync pulse, or ``None``.
    Other parameters
        As :class:`~realtime_pose.live.pipeline.Pipeline`; rules are evaluated on the 3D pose.
    """

    def __init__(
        self,
        estimator: PoseEstimator,
        triangulator: Triangulator,
        camera_names: Sequence[str],
        *,
        predictor: ForwardPredictor | None = None,
        lead: LeadTime | None = None,
        sync: SyncPulse | None = None,
        rules: Any = None,
        dispatcher: OutputPort | None = None,
        publisher: Any = None,
        recorder_factory: RecorderFactory | None = None,
        frame_taps: Sequence[FrameTap] = (),
        status_interval_s: float = 1.0,
        meta: dict[str, Any] | None = None,
        status_fields: Any = None,
    ) -> None:
        super().__init__(
            estimator,
            predictor=None,
            lead=lead or (LeadTime() if predictor is not None else None),
            rules=rules,
            dispatcher=dispatcher,
            publisher=publisher,
            recorder_factory=recorder_factory,
            frame_taps=frame_taps,
            status_interval_s=status_interval_s,
            meta=meta,
            status_fields=status_fields,
        )
        if len(camera_names) != len(triangulator.rig):
            raise ValueError(
                f"{len(camera_names)} cameras in the session, {len(triangulator.rig)} in the "
                "calibration"
            )
        if sync is not None and dispatcher is None:
            raise ValueError(f"the sync pulse needs the output {sync.output!r}")
        self.triangulator = triangulator
        self.camera_names = list(camera_names)
        self.predictor3d = predictor
        self.sync = sync
        k, c = len(self.keypoints), len(self.camera_names)
        self.stats = StageStats(STAGES_3D)
        self._stage_ns = np.zeros(len(STAGES_3D), np.int64)
        self._views2d = np.full((c, k, 3), np.nan)
        self._view_frames = np.full(c, -1, np.int64)
        self._view_frame_ids = np.full(c, -1, np.int64)
        self._view_t_capture = np.full(c, -1, np.int64)
        self._points = np.full((k, 5), np.nan)
        self._measured3d = np.zeros((k, 4))  # x, y, z, weight: what the 3D filter is fed
        self._predicted5 = np.full((k, 5), np.nan)
        self._predicted_out = np.zeros((k, 4))
        self.out_of_order_sets = 0
        """Sets captured before the previous one (a late view): not fed to the 3D filter."""

    def process_frame(self, frame: FrameSet, t_received_ns: int | None = None) -> np.ndarray:  # type: ignore[override]
        """Run every stage on one frame set; return the 3D pose ``[K, 5]`` (reused buffer)."""
        frame_set = frame
        t_received = time.monotonic_ns() if t_received_ns is None else t_received_ns
        t_capture = frame_set.t_capture_ns
        views2d = self._views2d
        first = None
        for c, view in enumerate(frame_set.frames):
            if view is None:
                views2d[c] = np.nan
                views2d[c, :, 2] = 0.0
                self._view_frames[c] = self._view_frame_ids[c] = self._view_t_capture[c] = -1
                continue
            views2d[c] = self.estimator.estimate(view.image)
            self._view_frames[c] = view.frame_index
            self._view_frame_ids[c] = view.camera_frame_id
            self._view_t_capture[c] = view.t_capture_ns
            if first is None:
                first = c
        t_views = time.monotonic_ns()
        points = self.triangulator.triangulate(views2d, out=self._points)
        t_triangulated = time.monotonic_ns()
        predicted = None
        predictor = self.predictor3d
        if predictor is not None:
            measured = self._measured3d
            measured[:, :3] = points[:, :3]
            measured[:, 3] = np.where(np.isfinite(points[:, 0]), 1.0, 0.0)
            if predictor.t_ns is not None and t_capture < predictor.t_ns:
                # a set whose earliest view is older than the last set's (its other views were
                # late): predict from it, but the filter only moves forward in time
                self.out_of_order_sets += 1
            else:
                predictor.update(measured, t_capture)
            t_target = t_capture + self.lead.lead_ns
            out = predictor.predict(t_target, self._predicted_out)
            predicted = (t_target, out[:, :3])
        t_predicted = time.monotonic_ns()
        if self.rules is not None:
            predicted5 = None
            if predicted is not None:
                predicted5 = self._predicted5
                predicted5[:, :3] = predicted[1]
                predicted5[:, 3:] = points[:, 3:]  # the views behind the prediction's last fix
            events = self.rules.evaluate(
                None, t_capture, frame_set.index, pose3d=points, predicted3d=predicted5
            )
            if events:
                self._handle_events(events)
        sync_t_ns = None
        if self.sync is not None and self.dispatcher is not None:
            sync_t_ns = self.sync.send(self.dispatcher, frame_set.index, t_capture)
        t_processed = time.monotonic_ns()
        if self.lead is not None:
            self.lead.observe(t_processed - t_capture)
        s = self._stage_ns
        s[0] = t_received - t_capture
        s[1] = t_received - max(self._view_t_capture.max(), frame_set.t_requested_ns)
        s[2] = t_views - t_received
        s[3] = t_triangulated - t_views
        s[4] = t_predicted - t_triangulated
        s[5] = t_processed - t_predicted
        if self.dispatcher is not None:
            self.dispatcher.kick()
        t_published = t_processed
        if self.publisher is not None:
            latency = {name: int(v) for name, v in zip(STAGES_3D[:6], s, strict=False)}
            latency["total"] = int(t_processed - t_capture)
            views = {
                self.camera_names[c]: {
                    "frame_index": int(self._view_frames[c]),
                    "camera_frame_id": int(self._view_frame_ids[c]),
                    "t_capture_ns": int(self._view_t_capture[c]),
                    "keypoints": views2d[c].tolist(),
                }
                for c, view in enumerate(frame_set.frames)
                if view is not None
            }
            payload = messages.pose3d_payload(
                self.seq,
                frame_set.index,
                frame_set.key,
                t_capture,
                0,
                latency,
                points,
                views,
                frame_set.missing,
                predicted,
                sync_t_ns,
            )
            t_published = self.publisher.publish_pose3d(payload)
        t_after_publish = time.monotonic_ns()
        s[6] = t_after_publish - t_processed
        recorder = self.recorder
        if recorder is not None and not recorder.write_pose3d(
            self.seq,
            frame_set.index,
            frame_set.key,
            t_capture,
            points,
            views2d,
            self._view_frames,
            self._view_frame_ids,
            self._view_t_capture,
            frame_set.missing,
            predicted,
            sync_t_ns,
        ):
            self._recording_failed(frame_set.index)
        if first is not None:
            for tap in self.frame_taps:
                tap.offer(frame_set.frames[first], self.seq, views2d[first], None)
        s[7] = time.monotonic_ns() - t_after_publish
        s[8] = t_published - t_capture
        self.stats.record(s, frame_set.index)
        self.seq += 1
        self.frames += 1
        return points
