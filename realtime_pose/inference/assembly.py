"""Bottom-up multi-animal decoding: score maps + part-affinity fields → animals, no identities.

A bottom-up network predicts, on a stride-``s`` grid, one score map per bodypart shared by all
animals, location refinement, and one part-affinity field (PAF) per edge of a tree over the
bodyparts: on cells along a limb ``a → b`` of any animal the field is the limb's unit vector.
Decoding (OpenPose, Cao et al. 2017) runs in three Numba kernels on preallocated buffers:

1. :func:`find_candidates_nchw` / :func:`find_candidates_nhwc`: per bodypart, the local maxima
   (3×3, a plateau counts once) scoring at least ``threshold``, the best ``max_candidates``
   kept, each refined by locref exactly as :mod:`.peaks` does:
   ``x = ix*s + s/2 + locref_stdev*dx``.
2. :func:`score_connections`: for every edge and every pair of candidates, the mean dot product
   of the PAF with the pair's unit vector over ``PAF_SAMPLES`` points on the segment, plus
   OpenPose's prior against limbs longer than half the image; pairs where at least
   ``VALID_FRACTION`` of the samples exceed ``DOT_THRESHOLD`` and the score exceeds
   ``min_paf_score`` are valid, and are taken greedily by descending score, each candidate once
   per edge.
3. :func:`group_animals`: connections, edge by edge, extend the animal that holds one of their
   candidates, start a new one, or merge two disjoint animals; animals with fewer than
   ``min_parts`` parts are dropped and the best ``max_animals`` by total score (candidate scores
   plus connection scores) are written out.

:class:`BottomUpDecoder` owns the buffers and chains the three. :func:`paf_graph` builds the
edge list from a project's skeleton. Layouts: NCHW maps are ``S[K, H, W]``, ``L[2K, H, W]``,
``P[2E, H, W]``; NHWC maps are ``S[H, W, K]``, ``L[H, W, 2K]``, ``P[H, W, 2E]``; PAF channel
``2e`` is x and ``2e + 1`` is y of edge ``e``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

import numba
import numpy as np

from realtime_pose.inference.peaks import cell_xy_nchw

PAF_SAMPLES = 10
"""Points read along a candidate limb (OpenPose's ``mid_num``)."""
DOT_THRESHOLD = 0.05
"""A sample supports a limb when the PAF's component along it exceeds this (OpenPose's thre2)."""
VALID_FRACTION = 0.8
"""Share of samples that must support a limb (OpenPose)."""

DEFAULT_THRESHOLD = 0.1
DEFAULT_MIN_PAF_SCORE = 0.05
DEFAULT_MIN_PARTS = 3

_EMPTY_MAPS = np.zeros((0, 0, 0), dtype=np.float32)


def paf_graph(bodyparts: Sequence[str], skeleton: Iterable[Sequence[str]]) -> list[tuple[int, int]]:
    """The tree of ``K - 1`` edges whose part-affinity fields a bottom-up network predicts.

    Skeleton edges are used first. The root is the bodypart with the most skeleton edges (the
    first such in ``bodyparts`` on a tie); a breadth-first search from it, neighbours in
    bodypart order, orients every edge parent → child, so that when the edges are processed in
    order each edge's parent is already placed. Edges that would close a cycle are dropped.
    Parts the search does not reach are joined to the root: an isolated part directly, a
    separate piece of the skeleton through its own most connected part (its skeleton edges are
    kept below it).

    Parameters
    ----------
    bodyparts
        The ``K`` bodypart names, in map-channel order.
    skeleton
        Pairs of bodypart names; order within a pair and repeats do not matter.

    Returns
    -------
    list of tuple of int
        ``K - 1`` ``(parent, child)`` bodypart indices in breadth-first order (none for
        ``K == 1``).

    Raises
    ------
    ValueError
        For no bodyparts, repeated names, a skeleton edge naming an unknown bodypart, joining a
        bodypart to itself, or not being a pair.
    """
    names = list(bodyparts)
    if not names:
        raise ValueError("paf_graph needs at least one bodypart, got none")
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in index:
            raise ValueError(f"bodypart {name!r} is listed twice; bodypart names must be unique")
        index[name] = i
    neighbours: list[set[int]] = [set() for _ in names]
    for pair in skeleton:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"skeleton edge {pair!r} must be a pair of bodypart names")
        ends = []
        for name in pair:
            if name not in index:
                raise ValueError(
                    f"skeleton edge {tuple(pair)!r} names {name!r}, which is not a bodypart "
                    f"(bodyparts: {names})"
                )
            ends.append(index[name])
        if ends[0] == ends[1]:
            raise ValueError(f"skeleton edge {tuple(pair)!r} joins a bodypart to itself")
        neighbours[ends[0]].add(ends[1])
        neighbours[ends[1]].add(ends[0])

    # most connected first, bodypart order on ties: the root, then the roots of unreached pieces
    by_degree = sorted(range(len(names)), key=lambda i: (-len(neighbours[i]), i))
    root = by_degree[0]
    placed = [False] * len(names)
    edges: list[tuple[int, int]] = []

    def grow(start: int) -> None:
        queue = deque([start])
        while queue:
            parent = queue.popleft()
            for child in sorted(neighbours[parent]):
                if not placed[child]:
                    placed[child] = True
                    edges.append((parent, child))
                    queue.append(child)

    placed[root] = True
    grow(root)
    for part in by_degree:
        if not placed[part]:
            placed[part] = True
            edges.append((root, part))
            grow(part)
    return edges


# --------------------------------------------------------------------------- candidates


@numba.njit(cache=True, nogil=True)
def _insert_candidate(k, cell, score, cand_cell, cand_score, ncand):
    """Insert into part ``k``'s list, sorted by descending score then ascending cell index."""
    cap = cand_cell.shape[1]
    n = ncand[k]
    if n == cap:
        last_score = cand_score[k, cap - 1]
        if score < last_score or (score == last_score and cell > cand_cell[k, cap - 1]):
            return
        pos = cap - 1
    else:
        pos = n
        ncand[k] = n + 1
    while pos > 0:
        s = cand_score[k, pos - 1]
        if s > score or (s == score and cand_cell[k, pos - 1] < cell):
            break
        cand_score[k, pos] = s
        cand_cell[k, pos] = cand_cell[k, pos - 1]
        pos -= 1
    cand_score[k, pos] = score
    cand_cell[k, pos] = cell


@numba.njit(cache=True, nogil=True, inline="always")
def _no_higher_neighbour(scmap, k, iy, ix, v):
    """Whether no 8-neighbour of cell ``(iy, ix)`` of part ``k`` exceeds ``v``: the cheap test
    that rejects most cells above the threshold before :func:`_consider_peak` runs."""
    height = scmap.shape[1]
    width = scmap.shape[2]
    ok = True
    for ny in range(max(iy - 1, 0), min(iy + 2, height)):
        for nx in range(max(ix - 1, 0), min(ix + 2, width)):
            if scmap[k, ny, nx] > v:
                ok = False
    return ok


@numba.njit(cache=True, nogil=True)
def _consider_peak(scmap, k, iy, ix, v, visited, stamp, queue, cand_cell, cand_score, ncand):
    """Add cell ``(iy, ix)`` of part ``k`` (``scmap`` indexed ``[k, y, x]``) if it is a peak.

    Called for cells no neighbour exceeds (:func:`_no_higher_neighbour`). Such a cell is a
    peak when no neighbour equals it either; otherwise it lies on a plateau, which is
    flood-filled once (cells stamped in ``visited``) and counts as one peak, at the plateau cell
    nearest its centroid, when no plateau cell has a higher neighbour.
    """
    height = scmap.shape[1]
    width = scmap.shape[2]
    flat = False
    for ny in range(max(iy - 1, 0), min(iy + 2, height)):
        for nx in range(max(ix - 1, 0), min(ix + 2, width)):
            if scmap[k, ny, nx] == v and (ny != iy or nx != ix):
                flat = True
    if not flat:
        _insert_candidate(k, iy * width + ix, v, cand_cell, cand_score, ncand)
        return
    if visited[k, iy, ix] == stamp:
        return
    visited[k, iy, ix] = stamp
    queue[0] = iy * width + ix
    size = 1
    head = 0
    is_peak = True
    sum_y = 0.0
    sum_x = 0.0
    while head < size:
        cell = queue[head]
        head += 1
        cy = cell // width
        cx = cell - cy * width
        sum_y += cy
        sum_x += cx
        for ny in range(max(cy - 1, 0), min(cy + 2, height)):
            for nx in range(max(cx - 1, 0), min(cx + 2, width)):
                u = scmap[k, ny, nx]
                if u > v:
                    is_peak = False  # a shoulder: keep filling so it is never revisited
                elif u == v and visited[k, ny, nx] != stamp:
                    visited[k, ny, nx] = stamp
                    queue[size] = ny * width + nx
                    size += 1
    if not is_peak:
        return
    mean_y = sum_y / size
    mean_x = sum_x / size
    best = queue[0]
    best_d2 = np.inf
    for i in range(size):
        cell = queue[i]
        cy = cell // width
        cx = cell - cy * width
        d2 = (cy - mean_y) ** 2 + (cx - mean_x) ** 2
        if d2 < best_d2 or (d2 == best_d2 and cell < best):
            best = cell
            best_d2 = d2
    _insert_candidate(k, best, v, cand_cell, cand_score, ncand)


@numba.njit(cache=True, nogil=True)
def _refine_candidates(locref, width, stride, locref_stdev, cand_cell, cand_score, ncand, cand):
    """Candidate cells → ``cand[k, c] = (x, y, score)`` in input pixels (``locref[2K, H, W]``
    indexing; ``shape[0] == 0`` for none). Returns the number of candidates."""
    total = 0
    for k in range(ncand.shape[0]):
        for c in range(ncand[k]):
            x, y = cell_xy_nchw(cand_cell[k, c], k, width, stride, locref, locref_stdev)
            cand[k, c, 0] = x
            cand[k, c, 1] = y
            cand[k, c, 2] = cand_score[k, c]
        total += ncand[k]
    return total


@numba.njit(cache=True, nogil=True)
def _collect_hits(flat, threshold, hits):
    """Indices of ``flat``'s values ``>= threshold``, in order, into ``hits``; returns how many.

    Blocks of 64 are first counted branch-free (a fixed trip count and an int32 sum, which LLVM
    vectorises) and only blocks with a hit are walked: almost every cell of a score map is
    background, and one branchy loop with the peak test inside measured ~4x slower."""
    size = flat.shape[0]
    thr = flat.dtype.type(threshold)
    n = 0
    n_blocks = size // 64
    for block in range(n_blocks):
        base = block * 64
        count = 0
        for i in range(64):
            count += np.int32(flat[base + i] >= thr)
        if count:
            for i in range(base, base + 64):
                if flat[i] >= thr:
                    hits[n] = i
                    n += 1
    for i in range(n_blocks * 64, size):
        if flat[i] >= thr:
            hits[n] = i
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def find_candidates_nchw(
    scmap: np.ndarray,
    locref: np.ndarray,
    stride: float,
    locref_stdev: float,
    threshold: float,
    stamp: int,
    visited: np.ndarray,
    queue: np.ndarray,
    hits: np.ndarray,
    cand_cell: np.ndarray,
    cand_score: np.ndarray,
    ncand: np.ndarray,
    cand: np.ndarray,
) -> int:
    """Per-part peak candidates from C-contiguous NCHW maps ``S[K, H, W]``, ``L[2K, H, W]``.

    Parameters
    ----------
    scmap, locref
        Score maps and location refinement (``locref.shape[0] == 0`` for none).
    stride, locref_stdev, threshold
        Input pixels per cell, the locref scale, and the lowest score a candidate may have.
    stamp
        A value ``visited`` holds nowhere yet (increase it every call): marks plateau cells.
    visited, queue, hits
        Scratch: int64 ``[K, H, W]``, int64 ``[H*W]`` and int64 ``[K*H*W]``.
    cand_cell, cand_score, ncand
        Per part, the candidates' flat cell indices ``[K, C]`` and scores ``[K, C]`` by
        descending score, and how many ``[K]``.
    cand
        ``[K, C, 3]`` receiving ``x, y, score`` in input pixels.

    Returns
    -------
    int
        The number of candidates over all parts.
    """
    _, height, width = scmap.shape
    cells = height * width
    ncand[:] = 0
    n_hits = _collect_hits(scmap.reshape(-1), threshold, hits)
    for h in range(n_hits):
        k, cell = divmod(hits[h], cells)
        iy, ix = divmod(cell, width)
        v = scmap[k, iy, ix]
        if _no_higher_neighbour(scmap, k, iy, ix, v):
            _consider_peak(scmap, k, iy, ix, v, visited, stamp, queue, cand_cell, cand_score, ncand)
    return _refine_candidates(
        locref, width, stride, locref_stdev, cand_cell, cand_score, ncand, cand
    )


@numba.njit(cache=True, nogil=True)
def find_candidates_nhwc(
    scmap: np.ndarray,
    locref: np.ndarray,
    stride: float,
    locref_stdev: float,
    threshold: float,
    stamp: int,
    visited: np.ndarray,
    queue: np.ndarray,
    hits: np.ndarray,
    cand_cell: np.ndarray,
    cand_score: np.ndarray,
    ncand: np.ndarray,
    cand: np.ndarray,
) -> int:
    """:func:`find_candidates_nchw` for C-contiguous NHWC maps ``S[H, W, K]``, ``L[H, W, 2K]``.

    The threshold scan runs over the maps in memory order; the few cells above it are examined
    through a ``[K, H, W]`` view, so both layouts find the same candidates.
    """
    _, width, k_count = scmap.shape
    by_part = scmap.transpose((2, 0, 1))
    ncand[:] = 0
    n_hits = _collect_hits(scmap.reshape(-1), threshold, hits)
    for h in range(n_hits):
        pixel, k = divmod(hits[h], k_count)
        iy, ix = divmod(pixel, width)
        v = by_part[k, iy, ix]
        if _no_higher_neighbour(by_part, k, iy, ix, v):
            _consider_peak(
                by_part, k, iy, ix, v, visited, stamp, queue, cand_cell, cand_score, ncand
            )
    return _refine_candidates(
        locref.transpose((2, 0, 1)),
        width,
        stride,
        locref_stdev,
        cand_cell,
        cand_score,
        ncand,
        cand,
    )


# --------------------------------------------------------------------------- connections


@numba.njit(cache=True, nogil=True)
def score_connections(
    cand: np.ndarray,
    ncand: np.ndarray,
    edges: np.ndarray,
    paf: np.ndarray,
    stride: float,
    min_paf_score: float,
    conn: np.ndarray,
    conn_score: np.ndarray,
    nconn: np.ndarray,
    pair: np.ndarray,
    pair_score: np.ndarray,
    used: np.ndarray,
) -> int:
    """Greedy per-edge matching of candidates by their part-affinity score.

    For candidates ``A`` (of the edge's parent) and ``B`` (child) with unit vector ``u`` from
    ``A`` to ``B`` and length ``d``, ``PAF_SAMPLES`` evenly spaced points are read on the
    segment, each from the cell containing it; the score is the mean of ``PAF · u`` plus
    ``min(0, 0.5 * H * stride / d - 1)`` (OpenPose's prior against limbs longer than half the
    map height). The samples keep ``min(s/√2, d/4)`` from the ends: the cell holding an
    endpoint straddles the limb's end, where the field is trained to 0 beyond it, and half a
    cell diagonal is as far as such a cell's centre can lie from a point it contains.

    Parameters
    ----------
    cand, ncand
        Candidates ``[K, C, 3]`` (x, y, score) and their counts ``[K]``.
    edges
        int64 ``[E, 2]`` (parent, child) bodypart indices.
    paf
        Part-affinity fields indexed ``[2E, H, W]`` (a transposed view of NHWC maps is fine).
    stride, min_paf_score
        Input pixels per cell; a valid pair scores above ``min_paf_score``.
    conn, conn_score, nconn
        Out: per edge, the chosen pairs ``[E, C, 2]`` (candidate indices), their scores
        ``[E, C]``, and how many ``[E]``; by descending score.
    pair, pair_score, used
        Scratch: int64 ``[C*C, 2]``, float64 ``[C*C]``, bool ``[2, C]``.

    Returns
    -------
    int
        The number of connections over all edges.
    """
    height = paf.shape[1]
    width = paf.shape[2]
    inv_stride = 1.0 / stride
    half_diag = stride * math.sqrt(0.5)
    prior_length = 0.5 * height * stride
    max_misses = PAF_SAMPLES - math.ceil(VALID_FRACTION * PAF_SAMPLES - 1e-9)
    total = 0
    for e in range(edges.shape[0]):
        a = edges[e, 0]
        b = edges[e, 1]
        n_pairs = 0
        for i in range(ncand[a]):
            xa = cand[a, i, 0]
            ya = cand[a, i, 1]
            for j in range(ncand[b]):
                dx = cand[b, j, 0] - xa
                dy = cand[b, j, 1] - ya
                length = math.sqrt(dx * dx + dy * dy)
                if not length >= 1e-6:  # also NaN positions
                    continue
                ux = dx / length
                uy = dy / length
                margin = min(half_diag, 0.25 * length)
                step = (length - 2.0 * margin) / (PAF_SAMPLES - 1)
                dot_sum = 0.0
                misses = 0
                for s in range(PAF_SAMPLES):
                    t = margin + s * step
                    cx = int(math.floor((xa + ux * t) * inv_stride))
                    cy = int(math.floor((ya + uy * t) * inv_stride))
                    cx = min(max(cx, 0), width - 1)
                    cy = min(max(cy, 0), height - 1)
                    dot = paf[2 * e, cy, cx] * ux + paf[2 * e + 1, cy, cx] * uy
                    dot_sum += dot
                    if not dot > DOT_THRESHOLD:  # NaN fields count as misses
                        misses += 1
                        if misses > max_misses:
                            break  # most pairs join two animals: they fail within a few samples
                if misses > max_misses:
                    continue
                score = dot_sum / PAF_SAMPLES + min(0.0, prior_length / length - 1.0)
                if not score > min_paf_score:
                    continue
                # insertion by descending score; ties keep (i, j) order
                pos = n_pairs
                while pos > 0 and pair_score[pos - 1] < score:
                    pair_score[pos] = pair_score[pos - 1]
                    pair[pos, 0] = pair[pos - 1, 0]
                    pair[pos, 1] = pair[pos - 1, 1]
                    pos -= 1
                pair_score[pos] = score
                pair[pos, 0] = i
                pair[pos, 1] = j
                n_pairs += 1
        used[0, : ncand[a]] = False
        used[1, : ncand[b]] = False
        n = 0
        limit = min(ncand[a], ncand[b])
        for p in range(n_pairs):
            i = pair[p, 0]
            j = pair[p, 1]
            if used[0, i] or used[1, j]:
                continue
            used[0, i] = True
            used[1, j] = True
            conn[e, n, 0] = i
            conn[e, n, 1] = j
            conn_score[e, n] = pair_score[p]
            n += 1
            if n == limit:
                break
        nconn[e] = n
        total += n
    return total


# --------------------------------------------------------------------------- grouping


@numba.njit(cache=True, nogil=True)
def group_animals(
    cand: np.ndarray,
    ncand: np.ndarray,
    edges: np.ndarray,
    conn: np.ndarray,
    conn_score: np.ndarray,
    nconn: np.ndarray,
    min_parts: int,
    members: np.ndarray,
    animal_score: np.ndarray,
    animal_parts: np.ndarray,
    owner: np.ndarray,
    chosen: np.ndarray,
    out: np.ndarray,
) -> int:
    """Group connections into animals (OpenPose's subsets) and write the best ones.

    Edges are taken in order. A connection whose two candidates belong to no animal starts one;
    one that shares a candidate with an animal adds the other candidate to it, unless that
    animal already has a different candidate of that part; one that joins two animals merges
    them when they have no part in common. An animal's score is the sum of its candidates' and
    connections' scores. With ``min_parts <= 1`` each candidate left over is an animal by itself.

    Parameters
    ----------
    cand, ncand, edges, conn, conn_score, nconn
        As produced by :func:`score_connections`.
    min_parts
        Animals with fewer parts are dropped.
    members, animal_score, animal_parts
        Scratch rows: int32 ``[R, K]`` (candidate index per part, -1 for none), float64 ``[R]``,
        int64 ``[R]`` (parts held; 0 for a row merged away), with ``R >= E*C + K*C``.
    owner
        Scratch int32 ``[K, C]``: the row holding each candidate.
    chosen
        Scratch int64 ``[max_animals]``.
    out
        ``[max_animals, K, 3]`` receiving ``x, y, likelihood`` per animal by descending score;
        ``NaN, NaN, 0`` for parts an animal lacks and for unused rows.

    Returns
    -------
    int
        The number of animals written.
    """
    k_count = ncand.shape[0]
    for k in range(k_count):
        for c in range(ncand[k]):
            owner[k, c] = -1
    rows = 0
    for e in range(edges.shape[0]):
        a = edges[e, 0]
        b = edges[e, 1]
        for n in range(nconn[e]):
            i = conn[e, n, 0]
            j = conn[e, n, 1]
            w = conn_score[e, n]
            ra = owner[a, i]
            rb = owner[b, j]
            if ra < 0 and rb < 0:
                members[rows, :] = -1
                members[rows, a] = i
                members[rows, b] = j
                animal_score[rows] = cand[a, i, 2] + cand[b, j, 2] + w
                animal_parts[rows] = 2
                owner[a, i] = rows
                owner[b, j] = rows
                rows += 1
            elif rb < 0:
                if members[ra, b] < 0:
                    members[ra, b] = j
                    owner[b, j] = ra
                    animal_score[ra] += cand[b, j, 2] + w
                    animal_parts[ra] += 1
            elif ra < 0:
                if members[rb, a] < 0:
                    members[rb, a] = i
                    owner[a, i] = rb
                    animal_score[rb] += cand[a, i, 2] + w
                    animal_parts[rb] += 1
            elif ra == rb:
                animal_score[ra] += w  # a second path between its parts: more evidence
            else:
                disjoint = True
                for k in range(k_count):
                    if members[ra, k] >= 0 and members[rb, k] >= 0:
                        disjoint = False
                        break
                if disjoint:
                    for k in range(k_count):
                        c = members[rb, k]
                        if c >= 0:
                            members[ra, k] = c
                            owner[k, c] = ra
                    animal_score[ra] += animal_score[rb] + w
                    animal_parts[ra] += animal_parts[rb]
                    animal_parts[rb] = 0
    if min_parts <= 1:
        for k in range(k_count):
            for c in range(ncand[k]):
                if owner[k, c] < 0:
                    members[rows, :] = -1
                    members[rows, k] = c
                    animal_score[rows] = cand[k, c, 2]
                    animal_parts[rows] = 1
                    owner[k, c] = rows
                    rows += 1
    # the best max_animals rows, by descending score then creation order
    max_animals = out.shape[0]
    n_out = 0
    for r in range(rows):
        if animal_parts[r] < max(min_parts, 1):
            continue
        score = animal_score[r]
        if n_out == max_animals and score <= animal_score[chosen[n_out - 1]]:
            continue
        pos = n_out if n_out < max_animals else max_animals - 1
        if n_out < max_animals:
            n_out += 1
        while pos > 0 and animal_score[chosen[pos - 1]] < score:
            chosen[pos] = chosen[pos - 1]
            pos -= 1
        chosen[pos] = r
    for m in range(max_animals):
        for k in range(k_count):
            c = members[chosen[m], k] if m < n_out else -1
            if c >= 0:
                out[m, k, 0] = cand[k, c, 0]
                out[m, k, 1] = cand[k, c, 1]
                out[m, k, 2] = cand[k, c, 2]
            else:
                out[m, k, 0] = np.nan
                out[m, k, 1] = np.nan
                out[m, k, 2] = 0.0
    return n_out


# --------------------------------------------------------------------------- the decoder


class BottomUpDecoder:
    """Decode a bottom-up multi-animal network's maps into animals, on preallocated buffers.

    Parameters
    ----------
    num_parts
        ``K``, the bodyparts (score-map channels).
    edges
        ``(parent, child)`` bodypart indices, one per PAF channel pair, normally
        :func:`paf_graph`'s tree; any graph works (extra edges can rejoin animals that a
        missing part would split), processed in the order given.
    stride, locref_stdev
        Input pixels per map cell, and the locref scale (DeepLabCut: 7.2801).
    layout
        ``"NCHW"`` or ``"NHWC"``.
    max_animals
        Rows of the output; the best animals by total score fill them.
    threshold
        Lowest score of a candidate. 0.1 (default): OpenPose's ``thre1`` and DeepLabCut's
        assembler ``pcutoff``; well below a real detection, high enough that background noise
        does not take candidate slots.
    max_candidates
        Candidates kept per part. ``None`` (default) is ``2 * max_animals``: room for one
        spurious peak beside each animal's part, while pair scoring (which grows with its
        square) stays small.
    min_paf_score
        A connection's score must exceed it. 0.05 (default): DeepLabCut's assembler
        ``min_affinity``; the 80 % sample test rejects most wrong pairs before it.
    min_parts
        Animals with fewer parts are dropped. ``None`` (default) is ``min(3, K)``: two
        consistent connections (DeepLabCut's ``min_n_links = 2``); a single spurious link
        between two stray peaks is the most common false animal. With 1 every leftover
        candidate is an animal by itself (the only way to decode ``K == 1``).

    Raises
    ------
    ValueError
        For an argument out of range.

    Notes
    -----
    A decoder holds the scratch of one frame at a time: use one per thread (the kernels release
    the GIL, so several decoders can run in parallel).
    """

    def __init__(
        self,
        num_parts: int,
        edges: Sequence[tuple[int, int]],
        stride: float,
        locref_stdev: float,
        layout: str,
        max_animals: int,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        max_candidates: int | None = None,
        min_paf_score: float = DEFAULT_MIN_PAF_SCORE,
        min_parts: int | None = None,
    ) -> None:
        if int(num_parts) != num_parts or num_parts < 1:
            raise ValueError(f"num_parts must be a positive integer, got {num_parts!r}")
        self.num_parts = int(num_parts)
        edge_array = np.asarray(list(edges), dtype=np.int64)
        if edge_array.size == 0:
            edge_array = edge_array.reshape(0, 2)
        if edge_array.ndim != 2 or edge_array.shape[1] != 2:
            raise ValueError(f"edges must be (parent, child) index pairs, got {edges!r}")
        for e, (a, b) in enumerate(edge_array.tolist()):
            if not (0 <= a < num_parts and 0 <= b < num_parts) or a == b:
                raise ValueError(
                    f"edge {e} = ({a}, {b}) must join two different bodyparts in 0..{num_parts - 1}"
                )
        if not (stride > 0 and math.isfinite(stride)):
            raise ValueError(f"stride must be a positive number of pixels, got {stride!r}")
        if not (locref_stdev > 0 and math.isfinite(locref_stdev)):
            raise ValueError(f"locref_stdev must be positive, got {locref_stdev!r}")
        if layout not in ("NCHW", "NHWC"):
            raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
        if int(max_animals) != max_animals or max_animals < 1:
            raise ValueError(f"max_animals must be a positive integer, got {max_animals!r}")
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite score, got {threshold!r}")
        if max_candidates is None:
            max_candidates = 2 * int(max_animals)
        if int(max_candidates) != max_candidates or max_candidates < 1:
            raise ValueError(f"max_candidates must be a positive integer, got {max_candidates!r}")
        if not math.isfinite(min_paf_score):
            raise ValueError(f"min_paf_score must be finite, got {min_paf_score!r}")
        if min_parts is None:
            min_parts = min(DEFAULT_MIN_PARTS, self.num_parts)
        if int(min_parts) != min_parts or not 1 <= min_parts <= num_parts:
            raise ValueError(
                f"min_parts must be an integer in 1..num_parts={num_parts}, got {min_parts!r}"
            )
        if len(edge_array) == 0 and min_parts > 1:
            raise ValueError("with no edges nothing can be grouped: min_parts must be 1")
        self.edges = edge_array
        self.stride = float(stride)
        self.locref_stdev = float(locref_stdev)
        self.layout = layout
        self.max_animals = int(max_animals)
        self.threshold = float(threshold)
        self.max_candidates = int(max_candidates)
        self.min_paf_score = float(min_paf_score)
        self.min_parts = int(min_parts)

        k, c, e = self.num_parts, self.max_candidates, len(edge_array)
        self._cand_cell = np.zeros((k, c), np.int64)
        self._cand_score = np.zeros((k, c), np.float32)
        self._ncand = np.zeros(k, np.int64)
        self._cand = np.zeros((k, c, 3), np.float32)
        self._conn = np.zeros((max(e, 1), c, 2), np.int64)
        self._conn_score = np.zeros((max(e, 1), c), np.float64)
        self._nconn = np.zeros(max(e, 1), np.int64)
        self._pair = np.zeros((c * c, 2), np.int64)
        self._pair_score = np.zeros(c * c, np.float64)
        self._used = np.zeros((2, c), np.bool_)
        rows = e * c + k * c
        self._members = np.zeros((rows, k), np.int32)
        self._animal_score = np.zeros(rows, np.float64)
        self._animal_parts = np.zeros(rows, np.int64)
        self._owner = np.zeros((k, c), np.int32)
        self._chosen = np.zeros(self.max_animals, np.int64)
        # plateau scratch, sized by the first maps seen
        self._visited = np.zeros((0, 0, 0), np.int64)
        self._queue = np.zeros(0, np.int64)
        self._hits = np.zeros(0, np.int64)
        self._stamp = 0
        self._map_size = (0, 0)

    @property
    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """The last call's candidates: ``[K, C, 3]`` (x, y, score) and counts ``[K]`` (views)."""
        return self._cand, self._ncand

    def find_candidates(self, scmap: np.ndarray, locref: np.ndarray | None) -> int:
        """Stage 1: find every part's candidates (kept for :meth:`assemble`).

        ``scmap`` and ``locref`` are in the decoder's layout, with or without a batch axis of
        1; ``locref`` may be ``None``. Returns the number of candidates.
        """
        if scmap.ndim == 4:
            scmap = scmap[0]
            locref = None if locref is None else locref[0]
        nhwc = self.layout == "NHWC"
        k = self.num_parts
        if scmap.ndim != 3 or scmap.shape[2 if nhwc else 0] != k:
            raise ValueError(
                f"scmap must be {'[H, W, K]' if nhwc else '[K, H, W]'} with K={k} "
                f"({self.layout}), got {list(scmap.shape)}"
            )
        height, width = scmap.shape[:2] if nhwc else scmap.shape[1:]
        if locref is None:
            locref = _EMPTY_MAPS
        else:
            want = (height, width, 2 * k) if nhwc else (2 * k, height, width)
            if locref.shape != want:
                raise ValueError(f"locref must be {list(want)}, got {list(locref.shape)}")
            if not locref.flags.c_contiguous:
                locref = np.ascontiguousarray(locref)
        if not scmap.flags.c_contiguous:
            scmap = np.ascontiguousarray(scmap)
        if self._visited.shape[1:] != (height, width):
            self._visited = np.zeros((k, height, width), np.int64)
            self._queue = np.zeros(height * width, np.int64)
            self._hits = np.zeros(k * height * width, np.int64)
            self._stamp = 0
        self._map_size = (height, width)
        self._stamp += 1
        kernel = find_candidates_nhwc if nhwc else find_candidates_nchw
        return kernel(
            scmap,
            locref,
            self.stride,
            self.locref_stdev,
            self.threshold,
            self._stamp,
            self._visited,
            self._queue,
            self._hits,
            self._cand_cell,
            self._cand_score,
            self._ncand,
            self._cand,
        )

    def assemble(
        self, paf: np.ndarray | None, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, int]:
        """Stages 2 and 3: connect the candidates of the last :meth:`find_candidates` call
        through ``paf`` (decoder's layout, optional batch axis of 1; ``None`` only without
        edges) and group them into animals.

        Returns ``out`` (float32 ``[max_animals, K, 3]``, allocated when ``None``) and the
        number of animals found.
        """
        if out is None:
            out = np.empty((self.max_animals, self.num_parts, 3), np.float32)
        elif out.shape != (self.max_animals, self.num_parts, 3) or out.dtype != np.float32:
            raise ValueError(
                f"out must be float32 [{self.max_animals}, {self.num_parts}, 3], "
                f"got {out.dtype} {list(out.shape)}"
            )
        e = len(self.edges)
        if e:
            if paf is None:
                raise ValueError(f"paf is required: the decoder has {e} edges")
            if paf.ndim == 4:
                paf = paf[0]
            nhwc = self.layout == "NHWC"
            channels = paf.shape[2 if nhwc else 0] if paf.ndim == 3 else -1
            if channels != 2 * e:
                raise ValueError(
                    f"paf must have 2 x {e} edges = {2 * e} channels ({self.layout}), "
                    f"got shape {list(paf.shape)}"
                )
            paf_khw = paf.transpose(2, 0, 1) if nhwc else paf
            if paf_khw.shape[1:] != self._map_size:
                raise ValueError(
                    f"paf maps are {list(paf_khw.shape[1:])} cells (H, W), the score maps "
                    f"{list(self._map_size)}"
                )
            if not nhwc and not paf.flags.c_contiguous:
                paf_khw = np.ascontiguousarray(paf)
            score_connections(
                self._cand,
                self._ncand,
                self.edges,
                paf_khw,
                self.stride,
                self.min_paf_score,
                self._conn,
                self._conn_score,
                self._nconn,
                self._pair,
                self._pair_score,
                self._used,
            )
        n = group_animals(
            self._cand,
            self._ncand,
            self.edges,
            self._conn,
            self._conn_score,
            self._nconn,
            self.min_parts,
            self._members,
            self._animal_score,
            self._animal_parts,
            self._owner,
            self._chosen,
            out,
        )
        return out, n

    def decode(
        self,
        scmap: np.ndarray,
        locref: np.ndarray | None,
        paf: np.ndarray | None,
        out: np.ndarray | None = None,
    ) -> tuple[np.ndarray, int]:
        """Animals from one frame's maps.

        Parameters
        ----------
        scmap, locref, paf
            Score maps (sigmoid probabilities), location refinement (or ``None``) and
            part-affinity fields, in the decoder's layout, with or without a batch axis of 1.
        out
            float32 ``[max_animals, K, 3]`` to fill (pass one on the hot path); allocated when
            ``None``.

        Returns
        -------
        tuple of (numpy.ndarray, int)
            ``out``: per animal, by descending total score, ``x, y, likelihood`` of each part
            in network-input pixels (``NaN, NaN, 0`` for a part it lacks and for rows beyond the
            animals found), and the number of animals found.
        """
        self.find_candidates(scmap, locref)
        return self.assemble(paf, out)


__all__: Sequence[str] = (
    "DEFAULT_MIN_PAF_SCORE",
    "DEFAULT_MIN_PARTS",
    "DEFAULT_THRESHOLD",
    "DOT_THRESHOLD",
    "PAF_SAMPLES",
    "VALID_FRACTION",
    "BottomUpDecoder",
    "find_candidates_nchw",
    "find_candidates_nhwc",
    "group_animals",
    "paf_graph",
    "score_connections",
)
