"""Bottom-up assembly: the PAF graph, the Numba kernels on hand-computed maps, and the decoder on
maps painted by the trainer's targets for known animals (score maps = disk targets, PAFs = the
PAF targets), in both layouts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from realtime_pose.inference.assembly import BottomUpDecoder, paf_graph, score_connections
from realtime_pose.trainers.group_targets import make_group_targets

STRIDE = 8
LOCREF_STDEV = 7.2801
NAMES = [
    "snout",
    "left_ear",
    "right_ear",
    "neck",
    "left_forepaw",
    "right_forepaw",
    "spine1",
    "spine2",
    "left_hindpaw",
    "right_hindpaw",
    "tail_base",
    "tail_mid",
    "tail_tip",
]
SKELETON = [
    ("snout", "neck"),
    ("left_ear", "neck"),
    ("right_ear", "neck"),
    ("neck", "spine1"),
    ("spine1", "left_forepaw"),
    ("spine1", "right_forepaw"),
    ("spine1", "spine2"),
    ("spine2", "left_hindpaw"),
    ("spine2", "right_hindpaw"),
    ("spine2", "tail_base"),
    ("tail_base", "tail_mid"),
    ("tail_mid", "tail_tip"),
]
# a mouse seen from above, facing +x, centred on its length; every limb is 35-55 px long
BODY = np.array(
    [
        (80, 0),
        (50, -25),
        (50, 25),
        (25, 0),
        (0, -40),
        (0, 40),
        (-10, 0),
        (-45, 0),
        (-55, -40),
        (-55, 40),
        (-80, 0),
        (-115, 8),
        (-150, 0),
    ],
    dtype=np.float64,
) + np.array([35.0, 0.0])
K = len(NAMES)
EDGES = paf_graph(NAMES, SKELETON)
MAP = (128, 128)  # 1024 x 1024 input pixels


def place(centre, angle_rad=0.0, scale=1.0, body=BODY):
    """The body rotated, scaled and moved to ``centre`` (input pixels)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return (body * scale) @ np.array([[c, -s], [s, c]]).T + np.asarray(centre, np.float64)


def random_animals(n, seed):
    """``n`` distinct mice on a 2-column grid of the 1024 x 1024 image; parts of different
    animals at least 30 px apart, and 48 px for the same part (so that their disks, 17 px in
    radius, never touch even diagonally on the 8 px grid)."""
    rng = np.random.default_rng(seed)
    rows = math.ceil(n / 2)
    cell_w, cell_h = 1024 / 2, 1024 / rows
    animals = []
    for i in range(n):
        r, c = divmod(i, 2)
        centre = (
            (c + 0.5) * cell_w + rng.uniform(-20, 20),
            (r + 0.5) * cell_h + rng.uniform(-8, 8),
        )
        angle = rng.uniform(-0.2, 0.2) + (math.pi if rng.random() < 0.5 else 0.0)
        body = BODY + rng.normal(0.0, 3.0, BODY.shape)
        animals.append(place(centre, angle, rng.uniform(0.85, 1.1), body))
    kp = np.stack(animals).astype(np.float32)
    gaps = np.linalg.norm(kp[:, None, :, None] - kp[None, :, None, :], axis=-1)  # [A, A, K, K]
    others = gaps[~np.eye(n, dtype=bool)]
    assert others.min() > 30.0
    assert np.diagonal(others, axis1=1, axis2=2).min() > 48.0
    return kp


def painted(truth, edges=EDGES, layout="NHWC", weights=None, kind="disk"):
    """Network-like maps of the animals ``truth [A, K, 2]``: score = disk (or Gaussian) targets
    (scaled per animal by ``weights``), locref and PAF = their targets."""
    t = make_group_targets(truth[None], MAP, edges, kind=kind)
    scmap = t.scmap[0]
    if weights is not None:
        per_animal = [make_group_targets(a[None, None], MAP, edges).scmap[0] for a in truth]
        scmap = np.max([w * s for w, s in zip(weights, per_animal, strict=True)], axis=0)
    maps = (scmap, t.locref[0], t.paf[0])
    if layout == "NCHW":
        maps = tuple(np.ascontiguousarray(m.transpose(2, 0, 1)) for m in maps)
    return maps


def decoder(layout="NHWC", max_animals=8, edges=EDGES, **kw):
    return BottomUpDecoder(K, edges, STRIDE, LOCREF_STDEV, layout, max_animals, **kw)


def assert_assembled(out, n, truth):
    """Each animal found is one true animal, every labelled part within 1 px, no part of any
    other animal, and its unlabelled parts NaN/0; every true animal found once."""
    assert n == len(truth)
    matched = set()
    for m in range(n):
        found = out[m]
        err = np.linalg.norm(truth - found[None, :, :2], axis=2)  # [A, K]
        t = int(np.nanargmin(np.nanmean(err, axis=1)))
        assert t not in matched, f"animal {m} repeats true animal {t}"
        matched.add(t)
        labelled = np.isfinite(truth[t, :, 0])
        assert np.all(err[t, labelled] <= 1.0), (m, t, err[t])
        others = np.delete(err, t, axis=0)
        assert not np.any(others[:, labelled] <= 1.0)
        assert np.all(np.isnan(found[~labelled, :2])) and np.all(found[~labelled, 2] == 0)
        assert np.all(found[labelled, 2] > 0)
    assert np.all(np.isnan(out[n:, :, :2])) and np.all(out[n:, :, 2] == 0)


# --------------------------------------------------------------------------- paf_graph


def test_paf_graph_of_a_tree_is_bfs_from_the_most_connected_part():
    # neck, spine1 and spine2 have 4 neighbours each; neck comes first in bodypart order
    assert EDGES == [
        (3, 0),
        (3, 1),
        (3, 2),
        (3, 6),
        (6, 4),
        (6, 5),
        (6, 7),
        (7, 8),
        (7, 9),
        (7, 10),
        (10, 11),
        (11, 12),
    ]


def test_paf_graph_drops_the_edges_that_close_cycles():
    assert paf_graph("abcd", [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [
        (2, 0),
        (2, 1),
        (2, 3),
    ]
    square = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")]
    assert paf_graph("abcd", square) == [(0, 1), (0, 3), (1, 2)]


def test_paf_graph_joins_unreached_parts_to_the_root():
    # d (3 neighbours) is the root; {a, b} hangs from it through a, g by itself
    skeleton = [("a", "b"), ("c", "d"), ("d", "e"), ("f", "d")]
    edges = paf_graph("abcdefg", skeleton)
    assert edges == [(3, 2), (3, 4), (3, 5), (3, 0), (0, 1), (3, 6)]


@pytest.mark.parametrize(
    "skeleton", [[], [("a", "b")], [("c", "a"), ("b", "c"), ("a", "b"), ("e", "d")]]
)
def test_paf_graph_is_a_spanning_tree_with_parents_placed_first(skeleton):
    edges = paf_graph("abcde", skeleton)
    assert len(edges) == 4
    placed = {edges[0][0]}
    for parent, child in edges:
        assert parent in placed and child not in placed
        placed.add(child)
    assert placed == set(range(5))


def test_paf_graph_of_one_part_has_no_edges():
    assert paf_graph(["nose"], []) == []


@pytest.mark.parametrize(
    ("bodyparts", "skeleton", "match"),
    [
        ("ab", [("a", "z")], "'z', which is not a bodypart"),
        ("ab", [("a", "a")], "itself"),
        ("aa", [], "twice"),
        ("ab", [("a", "b", "a")], "pair"),
        ("", [], "at least one"),
    ],
)
def test_paf_graph_refuses_bad_skeletons(bodyparts, skeleton, match):
    with pytest.raises(ValueError, match=match):
        paf_graph(list(bodyparts), skeleton)


# --------------------------------------------------------------------------- kernels


def test_candidates_count_a_plateau_once_and_a_shoulder_never():
    s = np.zeros((1, 8, 10), np.float32)
    s[0, 1:4, 1:4] = 0.5  # a square plateau: one candidate at its centre cell (2, 2)
    s[0, 5, 1:4] = s[0, 6, 1] = s[0, 6, 3] = 0.6  # a U-shaped plateau, not convex: still one
    s[0, 2, 6:9] = 0.4
    s[0, 2, 9] = 0.7  # (2, 6..8) is a shoulder of the peak at (2, 9)
    dec = BottomUpDecoder(1, [], STRIDE, LOCREF_STDEV, "NCHW", 4, min_parts=1)
    assert dec.find_candidates(s, None) == 3
    cand = dec.candidates[0]
    # by descending score; x = ix*8 + 4, y = iy*8 + 4
    np.testing.assert_allclose(cand[0, :3], [[76, 20, 0.7], [20, 44, 0.6], [20, 20, 0.5]])
    # the U's centroid (5.4, 2) lies nearest cell (5, 2)
    out, n = dec.assemble(None)
    assert n == 3 and out[:, 0, 2].tolist() == pytest.approx([0.7, 0.6, 0.5, 0.0])


def test_candidates_below_threshold_and_beyond_max_candidates_are_dropped():
    s = np.zeros((1, 6, 12), np.float32)
    for ix, v in enumerate([0.3, 0.05, 0.9, 0.5, 0.7, 0.2]):
        s[0, 3, 2 * ix] = v
    dec = BottomUpDecoder(1, [], STRIDE, 1.0, "NCHW", 3, min_parts=1, max_candidates=3)
    assert dec.find_candidates(s, None) == 3
    assert dec.candidates[0][0, :, 2].tolist() == pytest.approx([0.9, 0.7, 0.5])
    locref = np.zeros((2, 6, 12), np.float32)
    locref[:, 3, 4] = (0.5, -1.0)  # the 0.9 peak at cell (3, 4): centre (36, 28)
    dec.find_candidates(s, locref)
    assert dec.candidates[0][0, 0].tolist() == pytest.approx([36.5, 27.0, 0.9])


def _one_limb(paf_x, height=8):
    """score_connections for candidates a = (20, 36), b = (100, 36) of edge (0, 1) over a PAF
    whose x channel is ``paf_x`` per column; returns (connections, score)."""
    cand = np.zeros((2, 2, 3), np.float32)
    cand[0, 0] = (20, 36, 1)
    cand[1, 0] = (100, 36, 1)
    paf = np.zeros((2, height, 16), np.float32)
    paf[0] = paf_x
    conn = np.zeros((1, 2, 2), np.int64)
    conn_score = np.zeros((1, 2))
    nconn = np.zeros(1, np.int64)
    n = score_connections(
        cand,
        np.array([1, 1]),
        np.array([[0, 1]]),
        paf,
        8.0,
        0.05,
        conn,
        conn_score,
        nconn,
        np.zeros((4, 2), np.int64),
        np.zeros(4),
        np.zeros((2, 2), bool),
    )
    return n, conn_score[0, 0]


def test_connection_needs_80_percent_of_samples_along_the_limb():
    # length 80, samples from x = 25.66 to 94.34 every 7.63 px: columns 3 4 5 6 7 7 8 9 10 11
    along = np.ones(16, np.float32)
    assert _one_limb(along, height=32) == (1, pytest.approx(1.0))
    two_off = along.copy()
    two_off[10:] = 0  # samples in columns 10 and 11 read nothing: 8 / 10 remain
    assert _one_limb(two_off, height=32) == (1, pytest.approx(0.8))
    three_off = along.copy()
    three_off[9:] = 0
    assert _one_limb(three_off, height=32)[0] == 0
    assert _one_limb(-along, height=32)[0] == 0  # the field points b -> a


def test_connection_score_has_openposes_long_limb_prior():
    # maps 8 cells = 64 px high: a limb of 80 px costs 0.5 * 64 / 80 - 1 = -0.6
    assert _one_limb(np.ones(16, np.float32), height=8) == (1, pytest.approx(0.4))


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("n_animals", [2, 4, 8])
def test_assembles_every_animal_in_both_layouts(n_animals):
    truth = random_animals(n_animals, seed=n_animals)
    nhwc = decoder("NHWC").decode(*painted(truth, layout="NHWC"))
    nchw = decoder("NCHW").decode(*painted(truth, layout="NCHW"))
    assert_assembled(*nhwc, truth)
    np.testing.assert_array_equal(nhwc[0], nchw[0])
    assert nhwc[1] == nchw[1]


@pytest.mark.parametrize("gap_px", [100.0, 90.0, 80.0])
def test_animals_side_by_side_with_paws_close_split_correctly(gap_px):
    # animal 2 is animal 1 moved down: its left paws lie gap - 80 px (20, 10, 0) below
    # animal 1's right paws, and the two animals' paw limbs meet there
    first = place((400, 300))
    truth = np.stack([first, first + np.array([0.0, gap_px])]).astype(np.float32)
    for layout in ("NHWC", "NCHW"):
        out, n = decoder(layout).decode(*painted(truth, layout=layout))
        assert_assembled(out, n, truth)


@pytest.mark.parametrize(("angle", "offset"), [(0.0, (0.0, 16.0)), (0.3, (10.0, 16.0))])
def test_overlapping_animals_with_gaussian_maps_split_correctly(angle, offset):
    # every part 16-19 px from the same part of the other animal, sideways to the bodies:
    # Gaussian score maps still have two peaks per part, and each limb runs beside the other
    # animal's same limb at about the distance (2 x 8 px) below which their fields share cells
    first = place((400, 300), angle)
    truth = np.stack([first, first + offset]).astype(np.float32)
    dec = decoder()
    out, n = dec.decode(*painted(truth, kind="gaussian"))
    assert dec.candidates[1].tolist() == [2] * K
    assert_assembled(out, n, truth)


def test_crossing_limbs_of_two_animals():
    # two mice (scale 1.5) meet head to head at 110 degrees: their neck -> snout limbs (edge 0,
    # 82 px) cross at both midpoints, where the field holds the average of the two vectors
    first = place((500, 400), scale=1.5)
    second = place((0, 0), math.radians(110), scale=1.5)
    crossing = (first[3] + first[0]) / 2
    truth = np.stack([first, second + crossing - (second[3] + second[0]) / 2]).astype(np.float32)
    u = truth[:, 0] - truth[:, 3]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    ix, iy = (crossing // STRIDE).astype(int)
    t = make_group_targets(truth[None], MAP, EDGES)
    np.testing.assert_allclose(t.paf[0, iy, ix, 0:2], u.mean(axis=0), atol=1e-6)
    for layout in ("NHWC", "NCHW"):
        out, n = decoder(layout).decode(*painted(truth, layout=layout))
        assert_assembled(out, n, truth)


def test_a_missing_part_is_nan_and_the_rest_is_grouped():
    truth = random_animals(4, seed=11)
    truth[1, 12] = np.nan  # tail tip of animal 1
    truth[2, 4] = np.nan  # left forepaw of animal 2
    out, n = decoder().decode(*painted(truth))
    assert_assembled(out, n, truth)


def test_a_missing_inner_part_splits_a_tree_and_an_extra_edge_rejoins_it():
    truth = random_animals(2, seed=5)
    truth[0, 7] = np.nan  # spine2: hind paws and tail lose their link to the front half
    out, n = decoder().decode(*painted(truth))
    assert n == 3  # the tail (3 parts) is an animal of its own; the paws alone are dropped
    parts = sorted(int(np.isfinite(out[m, :, 0]).sum()) for m in range(n))
    assert parts == [3, 7, 13]
    extra = [*EDGES, (6, 10)]  # spine1 -> tail_base: merges the tail into its animal
    out, n = decoder(edges=extra).decode(*painted(truth, edges=extra))
    assert n == 2
    without_hind = truth.copy()
    without_hind[0, [8, 9]] = np.nan
    assert_assembled(out, n, without_hind)


def test_more_animals_than_max_animals_keeps_the_best():
    truth = random_animals(4, seed=3)
    weights = [0.5, 0.9, 0.3, 0.7]
    out, n = decoder(max_animals=2).decode(*painted(truth, weights=weights))
    assert n == 2
    assert_assembled(out, n, truth[[1, 3]])
    np.testing.assert_allclose(out[0, :, 2], 0.9)  # sorted by total score
    np.testing.assert_allclose(out[1, :, 2], 0.7)


def test_empty_maps_give_no_animals_and_clear_a_reused_out():
    dec = decoder("NCHW", max_animals=3)
    out = np.full((3, K, 3), 7.0, np.float32)
    maps = (
        np.zeros((K, *MAP), np.float32),
        np.zeros((2 * K, *MAP), np.float32),
        np.zeros((2 * len(EDGES), *MAP), np.float32),
    )
    res, n = dec.decode(*maps, out=out)
    assert n == 0 and res is out
    assert np.isnan(out[..., :2]).all() and (out[..., 2] == 0).all()


def test_out_is_reused_and_batch_axis_accepted():
    truth = random_animals(2, seed=2)
    dec = decoder("NHWC", max_animals=4)
    out = np.zeros((4, K, 3), np.float32)
    res, n = dec.decode(*(m[None] for m in painted(truth)), out=out)
    assert res is out
    assert_assembled(out, n, truth)


def test_one_part_without_edges_decodes_each_peak_as_an_animal():
    truth = np.array([[[100.0, 60.0]], [[300.5, 200.25]]], np.float32)
    t = make_group_targets(truth[None], MAP, [])
    dec = BottomUpDecoder(1, [], STRIDE, LOCREF_STDEV, "NHWC", 4)
    out, n = dec.decode(t.scmap[0], t.locref[0], None)
    assert n == 2
    got = sorted(map(tuple, out[:2, 0, :2].tolist()))
    np.testing.assert_allclose(got, [(100.0, 60.0), (300.5, 200.25)], atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layout": "HWC"}, "layout"),
        ({"max_animals": 0}, "max_animals"),
        ({"edges": [(0, 13)]}, "edge 0"),
        ({"edges": [(2, 2)]}, "edge 0"),
        ({"edges": [(0, 1, 2)]}, "pairs"),
        ({"min_parts": 14}, "min_parts"),
        ({"max_candidates": 0}, "max_candidates"),
        ({"threshold": float("nan")}, "threshold"),
        ({"stride": 0}, "stride"),
    ],
)
def test_constructor_refuses_bad_arguments(kwargs, match):
    args = {"edges": EDGES, "stride": STRIDE, "layout": "NCHW", "max_animals": 2, **kwargs}
    extra = {k: args.pop(k) for k in ("min_parts", "max_candidates", "threshold") if k in args}
    with pytest.raises(ValueError, match=match):
        BottomUpDecoder(
            K,
            args["edges"],
            args["stride"],
            LOCREF_STDEV,
            args["layout"],
            args["max_animals"],
            **extra,
        )


def test_decode_refuses_maps_of_the_wrong_shape():
    dec = decoder("NCHW")
    scmap = np.zeros((K, 16, 16), np.float32)
    with pytest.raises(ValueError, match="scmap"):
        dec.decode(scmap[:-1], None, None)
    with pytest.raises(ValueError, match="paf"):
        dec.decode(scmap, None, np.zeros((4, 16, 16), np.float32))
    with pytest.raises(ValueError, match="locref"):
        dec.decode(scmap, np.zeros((K, 16, 16), np.float32), None)
    with pytest.raises(ValueError, match="paf maps"):
        dec.decode(scmap, None, np.zeros((2 * len(EDGES), 16, 8), np.float32))


def test_nan_fields_connect_nothing():
    truth = random_animals(2, seed=4)
    scmap, locref, paf = painted(truth)
    paf[..., :] = np.nan
    assert decoder().decode(scmap, locref, paf)[1] == 0
    locref[...] = np.nan  # NaN positions: no pair has a length
    assert decoder().decode(scmap, locref, painted(truth)[2])[1] == 0
