"""Frame sets from a camera group: matched by frame id or capture time, incomplete sets counted
by cause, the newest complete set preferred when the loop falls behind."""

from __future__ import annotations

import time

import numpy as np
import pytest

from realtime_pose.geometry import Size
from realtime_pose.live.frame_sets import FrameSetGrabber
from realtime_pose.sources.base import Frame, FrameSource


class PacedSource(FrameSource):
    """A camera that delivers frame ``i`` at ``epoch + i * period`` (a shared epoch keeps a
    group in step), with camera frame ids, optional skipped ids, jitter and an end."""

    def __init__(
        self,
        name: str,
        epoch_ns: int,
        period_s: float = 0.01,
        frames: int = 20,
        skip: tuple[int, ...] = (),
        jitter_ns: tuple[int, ...] = (0,),
        id_offset: int = 0,
    ) -> None:
        self.name, self.epoch_ns, self.period_ns = name, epoch_ns, round(period_s * 1e9)
        self.n, self.skip, self.jitter, self.id_offset = frames, set(skip), jitter_ns, id_offset
        self.i = 0
        self.image = np.zeros((8, 8, 3), np.uint8)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self) -> Frame | None:
        while self.i in self.skip:
            self.i += 1
        if self.i >= self.n:
            return None
        i = self.i
        self.i += 1
        due = self.epoch_ns + i * self.period_ns + self.jitter[i % len(self.jitter)]
        delay = due - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        return Frame(
            self.image, i, due, self.name, camera_frame_id=i + self.id_offset, t_camera_ns=due
        )

    @property
    def fps(self) -> float:
        return 1e9 / self.period_ns

    @property
    def size(self) -> Size:
        return Size(8, 8)

    @property
    def source_id(self) -> str:
        return self.name


def group(sources, **kwargs) -> FrameSetGrabber:
    """A group whose grabbers hold each frame until the loop took it (``lockstep``), so a
    scheduling hiccup of this shared VM loses no frame; the busy-loop test turns it off."""
    kwargs.setdefault("lockstep", True)
    return FrameSetGrabber(sources, [s.name for s in sources], **kwargs)


def all_sets(grabber: FrameSetGrabber, pause_s: float = 0.0):
    sets = []
    grabber.start()
    try:
        while (frame_set := grabber.get(timeout_s=2.0)) is not None:
            sets.append(frame_set)
            time.sleep(pause_s)
    finally:
        grabber.stop()
    return sets


def epoch(lead_s: float = 0.1) -> int:
    return time.monotonic_ns() + round(lead_s * 1e9)


def test_frame_ids_match_every_view_of_every_set():
    t0 = epoch()
    sets = all_sets(group([PacedSource(n, t0) for n in ("a", "b", "c")]))
    assert [s.key for s in sets] == list(range(20))
    assert all(s.complete for s in sets)
    for s in sets:
        assert [f.camera_frame_id for f in s.frames] == [s.key] * 3
        assert s.t_capture_ns == min(f.t_capture_ns for f in s.frames)


def test_a_view_lost_on_one_camera_leaves_an_incomplete_set_counted_by_cause():
    t0 = epoch()
    cams = [PacedSource("a", t0), PacedSource("b", t0, skip=(5, 11)), PacedSource("c", t0)]
    grabber = group(cams, wait_ms=8.0)
    sets = all_sets(grabber)
    assert [s.key for s in sets] == list(range(20)), "nothing lost but the two views"
    incomplete = {s.key: s for s in sets if not s.complete}
    assert sorted(incomplete) == [5, 11]
    for s in incomplete.values():
        assert s.frames[1] is None and s.frames[0] is not None and s.frames[2] is not None
        assert set(s.missing) == {"b"}
    assert sum(grabber.missing["b"].values()) == 2
    assert grabber.missing["b"]["late"] + grabber.missing["b"]["skipped"] == 2
    assert grabber.counts == {
        "sets": 20,
        "complete": 18,
        "incomplete": 2,
        "superseded": 0,
        "gaps": 0,
    }


def test_capture_times_match_within_the_tolerance_in_timestamp_mode():
    t0 = epoch()
    cams = [
        PacedSource("a", t0, id_offset=0),
        PacedSource("b", t0, id_offset=1000, jitter_ns=(300_000, -200_000, 900_000)),
        PacedSource("c", t0, id_offset=77, jitter_ns=(-600_000, 100_000)),
    ]
    sets = all_sets(group(cams, mode="timestamp", tolerance_ms=1.0))
    assert len(sets) == 20 and all(s.complete for s in sets)
    for i, s in enumerate(sets):
        assert [f.frame_index for f in s.frames] == [i, i, i], "ids differ; times decide"


def test_frame_ids_would_not_match_cameras_whose_counters_differ():
    t0 = epoch()
    cams = [PacedSource("a", t0, frames=6), PacedSource("b", t0, frames=6, id_offset=1000)]
    sets = all_sets(group(cams, wait_ms=2.0))
    assert sets and not any(s.complete for s in sets)


def test_a_camera_that_ends_early_leaves_sets_missing_it_as_ended():
    t0 = epoch()
    cams = [PacedSource("a", t0), PacedSource("b", t0, frames=10)]
    grabber = group(cams)
    sets = all_sets(grabber)
    assert [s.key for s in sets] == list(range(20))
    assert all(s.complete for s in sets[:10])
    assert all(s.missing == {"b": "ended"} for s in sets[10:])
    assert grabber.ended


def test_a_busy_loop_gets_the_newest_complete_set_and_older_ones_count_as_superseded():
    t0 = epoch()
    cams = [PacedSource(n, t0, period_s=0.005, frames=40) for n in ("a", "b")]
    grabber = group(cams, lockstep=False)  # newest frame wins, as on a live rig
    sets = all_sets(grabber, pause_s=0.022)  # ~4 frame periods per set
    keys = [s.key for s in sets]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert len(sets) < 20, "a slow loop does not see every set"
    lost = grabber.counts["superseded"] + grabber.counts["gaps"]
    assert sets[0].key + lost + len(sets) == 40, "every frame id is a set or counted lost"
    assert sum(not s.complete for s in sets) <= 2, "the newest *complete* set is preferred"


def test_names_and_options_are_checked():
    t0 = epoch()
    with pytest.raises(ValueError, match="one name per source"):
        FrameSetGrabber([PacedSource("a", t0)], ["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        FrameSetGrabber([PacedSource("a", t0), PacedSource("a", t0)], ["a", "a"])
    with pytest.raises(ValueError, match="sync mode"):
        FrameSetGrabber([PacedSource("a", t0)], ["a"], mode="bogus")  # type: ignore[arg-type]
