"""Cutting a video into chunks of frames and merging the chunks' poses back, checked.

Pure functions on plain data: no Ray, no decoding. A chunk ``[start, stop)`` is read by seeking
to ``start - 1`` and decoding one frame more than it analyses; the hash of that extra frame must
equal the hash of the previous chunk's last frame. This checks every boundary of every video
against the sequential decode, so a decoder that seeks inexactly (variable frame rate, broken
timestamps) is caught at merge time instead of silently shifting poses by a frame.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_CHUNK_FRAMES = 1000


class ChunkMismatchError(ValueError):
    """Chunks of one video do not join up; the message names the video and the frame."""


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` of one video (``stop=None``: to the end of the file).

    ``video_id`` is the position of the video on the command line, ``index`` the chunk's place
    within its video.
    """

    video_id: int
    video: str
    index: int
    start: int
    stop: int | None

    @property
    def frames(self) -> int | None:
        """Frames this chunk should yield, ``None`` when it runs to the end of the file."""
        return None if self.stop is None else self.stop - self.start

    @property
    def label(self) -> str:
        """``video[start:stop]`` for messages."""
        return f"{self.video}[{self.start}:{'' if self.stop is None else self.stop}]"


@dataclass
class ChunkResult:
    """What a worker returns for one chunk.

    Attributes
    ----------
    chunk
        The chunk analysed.
    poses
        ``[n, K, 3]`` float32 poses of its frames, in order.
    lead_hash
        Hash of frame ``start - 1`` (decoded only to check the seek), ``None`` for ``start == 0``
        or when the file ended before it.
    tail_hash
        Hash of the chunk's last frame (``None`` when it produced none).
    seconds
        Wall time the worker spent on it, decoding included.
    worker
        ``host/pid`` of the process that ran it.
    """

    chunk: Chunk
    poses: np.ndarray
    lead_hash: str | None
    tail_hash: str | None
    seconds: float
    worker: str


def frame_hash(image: np.ndarray) -> str:
    """A short digest of a decoded image's pixels."""
    return hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).hexdigest()


def plan_chunks(
    video_id: int,
    video: str,
    frame_count: int,
    chunk_frames: int,
    max_frames: int | None = None,
) -> list[Chunk]:
    """Chunks covering a video of ``frame_count`` frames (from its header; 0 when unknown).

    The last chunk runs to the end of the file (``stop=None``), so a header that under-counts
    loses no frame; with ``max_frames`` it stops there instead. ``chunk_frames <= 0`` or an
    unknown frame count gives one chunk for the whole video.
    """
    limit = frame_count if max_frames is None else min(frame_count or max_frames, max_frames)
    if chunk_frames <= 0 or limit <= chunk_frames:
        return [Chunk(video_id, video, 0, 0, max_frames)]
    starts = list(range(0, limit, chunk_frames))
    chunks = [Chunk(video_id, video, i, s, s + chunk_frames) for i, s in enumerate(starts[:-1])]
    chunks.append(Chunk(video_id, video, len(starts) - 1, starts[-1], max_frames))
    return chunks


def merge_chunks(results: Sequence[ChunkResult], n_keypoints: int) -> np.ndarray:
    """The poses of a whole video from all its chunk results, checked at every boundary.

    Raises
    ------
    ChunkMismatchError
        A chunk is missing, a chunk other than the last ended early while a later one still
        produced frames, or a chunk's first decoded frame differs from the previous chunk's
        last one (the seek was not frame-exact).
    """
    if not results:
        raise ValueError("no chunk results to merge")
    ordered = sorted(results, key=lambda r: r.chunk.index)
    video = ordered[0].chunk.video
    if [r.chunk.index for r in ordered] != list(range(len(ordered))):
        raise ChunkMismatchError(f"{video}: chunks {[r.chunk.index for r in ordered]} missing some")
    ended_at: int | None = None
    for prev, cur in itertools.pairwise(ordered):
        produced = len(prev.poses)
        if ended_at is None and prev.chunk.frames is not None and produced < prev.chunk.frames:
            ended_at = prev.chunk.start + produced
        if ended_at is not None:
            if len(cur.poses):
                raise ChunkMismatchError(
                    f"{video}: decoding stopped at frame {ended_at} in one chunk but went on "
                    f"from frame {cur.chunk.start} in the next"
                )
            continue
        if len(cur.poses) and cur.lead_hash != prev.tail_hash:
            raise ChunkMismatchError(
                f"{video}: frame {cur.chunk.start - 1} decoded after seeking differs from the "
                "same frame decoded in order; this file does not seek frame-exactly"
            )
    parts = [r.poses for r in ordered if len(r.poses)]
    if not parts:
        return np.zeros((0, n_keypoints, 3), np.float32)
    return np.concatenate(parts)
