"""Chunk planning and merging, and the frame-exact seeking they rely on (checked on the
openfield H.264 video, B-frames included, and on an MPEG-4 clip)."""

import numpy as np
import pytest

from realtime_pose.offline.analysis import video_frames
from realtime_pose.offline.distributed.chunks import (
    Chunk,
    ChunkMismatchError,
    ChunkResult,
    frame_hash,
    merge_chunks,
    plan_chunks,
)
from tests.offline.distributed.clips import OPENFIELD, needs_openfield, openfield_clips


def test_plan_covers_the_video_and_leaves_the_end_open():
    chunks = plan_chunks(0, "v.mp4", 250, 100)
    assert [(c.start, c.stop) for c in chunks] == [(0, 100), (100, 200), (200, None)]
    assert [c.index for c in chunks] == [0, 1, 2]


def test_plan_with_max_frames_unknown_count_and_whole_videos():
    assert [(c.start, c.stop) for c in plan_chunks(0, "v", 250, 100, max_frames=150)] == [
        (0, 100),
        (100, 150),
    ]
    assert [(c.start, c.stop) for c in plan_chunks(0, "v", 0, 100)] == [(0, None)]
    assert [(c.start, c.stop) for c in plan_chunks(0, "v", 0, 100, max_frames=30)] == [(0, 30)]
    assert [(c.start, c.stop) for c in plan_chunks(0, "v", 5000, 0)] == [(0, None)]


def _result(index, start, stop, values, lead=None, tail=None):
    poses = np.asarray(values, np.float32).reshape(-1, 1, 3)
    return ChunkResult(Chunk(0, "v", index, start, stop), poses, lead, tail, 0.0, "w")


def test_merge_joins_in_order_and_checks_each_boundary():
    parts = [
        _result(1, 2, None, [[2, 2, 2]], lead="b", tail="c"),
        _result(0, 0, 2, [[0, 0, 0], [1, 1, 1]], tail="b"),
    ]
    merged = merge_chunks(parts, 1)
    assert merged[:, 0, 0].tolist() == [0, 1, 2]
    parts[0].lead_hash = "x"  # the seek landed on another frame
    with pytest.raises(ChunkMismatchError, match="frame 1 decoded after seeking"):
        merge_chunks(parts, 1)


def test_merge_accepts_a_video_shorter_than_its_header_but_not_a_gap():
    short = [_result(0, 0, 2, [[0, 0, 0]], tail="a"), _result(1, 2, None, [])]
    assert len(merge_chunks(short, 1)) == 1
    gap = [_result(0, 0, 2, [[0, 0, 0]], tail="a"), _result(1, 2, None, [[9, 9, 9]], lead="a")]
    with pytest.raises(ChunkMismatchError, match="stopped at frame 1"):
        merge_chunks(gap, 1)
    with pytest.raises(ChunkMismatchError, match="missing"):
        merge_chunks([_result(1, 2, None, [])], 1)


def _hashes(path, n, start=0):
    return [frame_hash(f.image) for f in video_frames(path, n, start)]


@needs_openfield
def test_seeking_is_frame_exact_on_the_openfield_video():
    # keyframes of this H.264 file are at 0, 182, 366...; B-frames lie in between
    reference = _hashes(OPENFIELD, 200)
    assert len(set(reference)) == 200
    for start in (1, 57, 120, 181, 182, 183, 197):
        got = _hashes(OPENFIELD, 3, start)
        assert got == reference[start : start + 3], f"seek to {start}"


@needs_openfield
def test_seeking_is_frame_exact_on_an_mpeg4_clip(tmp_path):
    (clip,) = openfield_clips(tmp_path, [90])
    reference = _hashes(clip, 90)
    for start in (1, 11, 12, 13, 47, 88):
        assert _hashes(clip, 2, start) == reference[start : start + 2], f"seek to {start}"
