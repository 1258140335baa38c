"""Bottom-up targets at hand-computed cells: shared disks, locref toward the nearest animal, the
part-affinity field on and off a limb, averaged where limbs overlap, and its mask."""

from __future__ import annotations

import math

import numpy as np
import pytest

from realtime_pose.inference.peaks import find_peaks_reference
from realtime_pose.trainers.group_targets import PAF_WIDTH_PX, make_group_targets
from realtime_pose.trainers.targets import make_targets

NAN2 = (np.nan, np.nan)


def test_scmap_is_the_max_over_animals_and_matches_single_animal_targets():
    kp = np.array([[[28.0, 20.0], [100.0, 60.0]], [[92.0, 20.0], NAN2]], np.float32)  # [A, K, 2]
    t = make_group_targets(kp, (10, 16), [(0, 1)])
    assert t.scmap.shape == (1, 10, 16, 2) and t.paf.shape == (1, 10, 16, 2)
    one = make_targets(kp[0], (10, 16)).scmap[0]
    two = make_targets(kp[1], (10, 16)).scmap[0]
    np.testing.assert_array_equal(t.scmap[0], np.maximum(one, two))
    # both animals' part 0 disks are there: cells (iy=2, ix=3) and (iy=2, ix=11)
    assert t.scmap[0, 2, 3, 0] == 1 and t.scmap[0, 2, 11, 0] == 1 and t.scmap[0, 2, 7, 0] == 0


def test_locref_points_to_the_nearest_covering_animal():
    # part 0 of two animals on cell centres (28, 20) and (52, 20), 24 px apart; radius 17
    kp = np.array([[[28.0, 20.0]], [[52.0, 20.0]]], np.float32)
    t = make_group_targets(kp, (6, 9), [], locref_stdev=2.0)
    # cell (2, 4) centre (36, 20): 8 px from the first, 16 from the second -> (-8, 0) / 2
    assert t.locref[0, 2, 4].tolist() == [-4.0, 0.0]
    # cell (2, 5) centre (44, 20): nearer the second -> (+8, 0) / 2
    assert t.locref[0, 2, 5].tolist() == [4.0, 0.0]
    # cell (1, 4) centre (36, 12): sqrt(128) = 11.3 from the first, 18.9 from the second (beyond
    # its disk) -> only the first covers it: (-8, 8) / 2
    assert t.locref[0, 1, 4].tolist() == [-4.0, 4.0]
    # cell (5, 0) centre (4, 44) is 34 px from the nearest: no target
    assert t.locref_mask[0, 5, 0].tolist() == [0.0, 0.0] and t.locref[0, 5, 0].tolist() == [0, 0]
    assert t.locref_mask[0, 2, 4].tolist() == [1.0, 1.0]
    assert np.array_equal(t.locref_mask[0, :, :, 0] > 0, t.scmap[0, :, :, 0] > 0)


@pytest.mark.parametrize("xy", [(31.7, 13.2), (60.5, 44.9)])
def test_every_covered_cell_decodes_to_its_nearest_keypoint(xy):
    kp = np.array([[xy], [(xy[0] + 26.0, xy[1] - 3.0)]], np.float32)
    t = make_group_targets(kp, (12, 16), [], locref_stdev=7.2801)
    cx, cy = np.meshgrid(np.arange(16) * 8 + 4.0, np.arange(12) * 8 + 4.0)
    covered = t.locref_mask[0, :, :, 0] > 0
    x = cx + 7.2801 * t.locref[0, :, :, 0]
    y = cy + 7.2801 * t.locref[0, :, :, 1]
    dist = np.hypot(cx[..., None] - kp[:, 0, 0], cy[..., None] - kp[:, 0, 1])  # [h, w, A]
    nearest = kp[dist.argmin(axis=2), 0]  # [h, w, 2]
    np.testing.assert_allclose(x[covered], nearest[covered, 0], atol=1e-4)
    np.testing.assert_allclose(y[covered], nearest[covered, 1], atol=1e-4)
    assert covered.sum() > 20 and (dist.min(axis=2) <= 17)[covered].all()
    # and single-animal peak finding on the shared map lands on one of the two keypoints
    pose = find_peaks_reference(t.scmap[0], t.locref[0], 8, 7.2801, layout="NHWC")
    assert min(np.hypot(*(pose[0, :2] - kp[a, 0])) for a in range(2)) < 1e-3


def test_paf_is_the_unit_vector_on_the_limb_and_zero_off_it():
    # horizontal limb (4, 20) -> (60, 20): cell centres y = 12, 20, 28 lie within 8 px, x = 4..60
    kp = np.array([[[4.0, 20.0], [60.0, 20.0]]], np.float32)
    t = make_group_targets(kp, (6, 10), [(0, 1)], paf_width_px=8.0)
    on = np.zeros((6, 10), bool)
    on[1:4, 0:8] = True
    np.testing.assert_array_equal(t.paf[0, :, :, 0], on.astype(np.float32))
    assert not t.paf[0, :, :, 1].any()
    assert t.paf_mask.min() == 1.0
    # the reverse edge points the other way
    back = make_group_targets(kp, (6, 10), [(1, 0)], paf_width_px=8.0)
    np.testing.assert_array_equal(back.paf[0, :, :, 0], -on.astype(np.float32))


def test_paf_on_a_diagonal_limb_respects_width_and_the_segments_ends():
    kp = np.array([[[4.0, 4.0], [44.0, 44.0]]], np.float32)  # u = (0.7071, 0.7071)
    t = make_group_targets(kp, (8, 8), [(0, 1)])
    r = math.sqrt(0.5)
    np.testing.assert_allclose(t.paf[0, 2, 2], [r, r], rtol=1e-6)  # centre (20, 20) on the line
    # centre (20, 12): 5.66 px from the line -> on; centre (20, 4): 11.3 px -> off
    np.testing.assert_allclose(t.paf[0, 1, 2], [r, r], rtol=1e-6)
    assert t.paf[0, 0, 2].tolist() == [0.0, 0.0]
    # centre (52, 52) lies on the line beyond b: its projection is off the segment
    assert t.paf[0, 6, 6].tolist() == [0.0, 0.0] and t.paf[0, 5, 5].tolist() == pytest.approx(
        [r, r]
    )


def test_paf_averages_where_two_animals_limbs_overlap():
    # animal 0: (4, 20) -> (60, 20) horizontal; animal 1: (28, 4) -> (28, 60) vertical
    kp = np.array([[[4.0, 20.0], [60.0, 20.0]], [[28.0, 4.0], [28.0, 60.0]]], np.float32)
    t = make_group_targets(kp, (8, 10), [(0, 1)])
    assert t.paf[0, 2, 3].tolist() == [0.5, 0.5]  # centre (28, 20): on both
    assert t.paf[0, 2, 5].tolist() == [1.0, 0.0]  # centre (44, 20): 16 px from the vertical
    assert t.paf[0, 5, 3].tolist() == [0.0, 1.0]  # centre (28, 44): below the horizontal
    # the same limb twice (two animals labelled on top of each other) stays a unit vector
    twice = make_group_targets(np.stack([kp[0], kp[0]]), (8, 10), [(0, 1)])
    assert twice.paf[0, 2, 3].tolist() == [1.0, 0.0]


def test_paf_mask_is_zero_near_a_limb_with_one_end_unlabelled():
    # animal 0's limb is labelled (length 24); animal 1 has only its end a, at (100, 60)
    kp = np.array(
        [[[4.0, 20.0], [28.0, 20.0], [4.0, 60.0]], [[100.0, 60.0], NAN2, [140.0, 60.0]]],
        np.float32,
    )
    t = make_group_targets(kp, (10, 20), [(0, 1), (0, 2)], paf_width_px=8.0)
    mask = t.paf_mask[0]
    # radius = 24 + 8 = 32 px around (100, 60): centre (132, 60) at 32 px -> unknown,
    # (140, 60) at 40 px -> known; centre (100, 20) at 40 px -> known
    assert mask[7, 16, 0:2].tolist() == [0.0, 0.0]
    assert mask[7, 17, 0:2].tolist() == [1.0, 1.0]
    assert mask[2, 12, 0:2].tolist() == [1.0, 1.0]
    assert mask[7, 12, 0:2].tolist() == [0.0, 0.0]
    # the other edge (0, 2) is labelled on both animals: known everywhere
    assert mask[..., 2:4].min() == 1.0
    # no field is painted for the half-labelled limb
    assert not t.paf[0, 7, 13, 0:2].any()


def test_paf_mask_covers_the_image_when_the_edge_is_never_labelled_whole():
    kp = np.array([[[20.0, 20.0], NAN2]], np.float32)
    t = make_group_targets(kp, (4, 4), [(0, 1)])
    assert t.paf_mask.max() == 0.0
    # with neither end labelled the limb counts as not visible: target 0, mask 1
    t = make_group_targets(np.full((1, 2, 2), np.nan, np.float32), (4, 4), [(0, 1)])
    assert t.paf_mask.min() == 1.0 and not t.paf.any()


def test_batch_axis_and_empty_slots():
    kp = np.full((2, 3, 2, 2), np.nan, np.float32)  # 2 images x 3 animal slots
    kp[1, 2] = [[10.0, 10.0], [40.0, 10.0]]
    t = make_group_targets(kp, (4, 6), [(0, 1)])
    assert t.scmap.shape == (2, 4, 6, 2) and t.locref.shape == (2, 4, 6, 4)
    assert t.paf.shape == t.paf_mask.shape == (2, 4, 6, 2)
    assert not t.scmap[0].any() and t.scmap[1, 1, 1, 0] == 1
    assert t.paf[1, 1, 2].tolist() == [1.0, 0.0]
    assert all(a.dtype == np.float32 for a in vars(t).values())


def test_default_width_covers_every_cell_containing_a_limb_point():
    # half a cell diagonal (5.66 px) is the farthest a cell centre can be from a point it holds
    assert 8 * math.sqrt(0.5) <= PAF_WIDTH_PX
    rng = np.random.default_rng(0)
    a, b = np.array([13.3, 71.9]), np.array([150.2, 18.4])
    t = make_group_targets(np.array([[a, b]], np.float32), (16, 24), [(0, 1)])
    u = (b - a) / np.linalg.norm(b - a)
    for f in rng.uniform(0.1, 0.9, 50):
        x, y = a + f * (b - a)
        assert t.paf[0, int(y // 8), int(x // 8)] == pytest.approx(u, abs=1e-6)


@pytest.mark.parametrize(
    ("kp", "edges", "match"),
    [
        (np.zeros((2, 3)), [], r"\[B, A, K, 2\]"),
        (np.zeros((1, 2, 3, 3)), [], r"\[B, A, K, 2\]"),
        (np.zeros((1, 2, 2)), [(0, 2)], "edge 0"),
        (np.zeros((1, 2, 2)), [(1, 1)], "edge 0"),
    ],
)
def test_bad_arguments_are_refused(kp, edges, match):
    with pytest.raises(ValueError, match=match):
        make_group_targets(kp, (4, 4), edges)
