"""Score-map and locref targets on small hand-computed cases, and the decoder that inverts them."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_pose.inference.peaks import find_peaks_reference
from realtime_pose.trainers.targets import cell_centres, make_targets


def test_cell_centres_are_stride_times_index_plus_half_stride():
    assert cell_centres(3, 8).tolist() == [4.0, 12.0, 20.0]


def test_disk_marks_cells_within_radius_of_the_keypoint():
    # keypoint exactly on the centre of cell (iy=2, ix=3): (3*8+4, 2*8+4) = (28, 20)
    t = make_targets(np.array([[28.0, 20.0]]), (6, 8), stride=8, pos_dist_thresh=8.0)
    on = np.argwhere(t.scmap[0, :, :, 0] == 1.0).tolist()
    # radius 8 px reaches the 4-neighbours (distance 8) but not the diagonals (11.3)
    assert sorted(on) == [[1, 3], [2, 2], [2, 3], [2, 4], [3, 3]]
    assert t.scmap.shape == (1, 6, 8, 1) and t.locref.shape == (1, 6, 8, 2)


def test_locref_is_offset_from_cell_centre_over_stdev_and_masked():
    t = make_targets(
        np.array([[30.0, 17.0]]), (6, 8), stride=8, pos_dist_thresh=17.0, locref_stdev=2.0
    )
    # cell (iy=2, ix=3) centre (28, 20): offset (2, -3) / 2
    assert t.locref[0, 2, 3].tolist() == [1.0, -1.5]
    assert t.locref_mask[0, 2, 3].tolist() == [1.0, 1.0]
    # cell (iy=0, ix=0) centre (4, 4) is 29 px away: outside, zero target and mask
    assert t.locref[0, 0, 0].tolist() == [0.0, 0.0] and t.locref_mask[0, 0, 0].sum() == 0
    assert np.all((t.locref_mask[..., 0] > 0) == (t.scmap[..., 0] > 0))


def test_invisible_keypoints_have_empty_maps_and_channels_stay_separate():
    kp = np.array([[[10.0, 10.0], [np.nan, np.nan]]])
    t = make_targets(kp, (4, 4))
    assert t.scmap[0, :, :, 0].sum() > 0 and t.scmap[0, :, :, 1].sum() == 0
    assert t.locref_mask[0, :, :, 2:].sum() == 0


def test_gaussian_peaks_at_the_keypoint_and_decays():
    t = make_targets(np.array([[28.0, 20.0]]), (6, 8), kind="gaussian", pos_dist_thresh=9.0)
    s = t.scmap[0, :, :, 0]
    assert s[2, 3] == pytest.approx(1.0) and 0 < s[2, 4] < 1 and s[2, 4] > s[2, 5]


@pytest.mark.parametrize("xy", [(28.0, 20.0), (31.7, 13.2), (5.5, 44.9)])
def test_decode_recovers_keypoint_from_its_own_targets(xy):
    t = make_targets(np.array([xy]), (6, 8), locref_stdev=7.2801)
    pose = find_peaks_reference(t.scmap[0], t.locref[0], 8, 7.2801, layout="NHWC")
    assert pose[0, :2] == pytest.approx(xy, abs=1e-4)
    assert pose[0, 2] == 1.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\[B, K, 2\]"):
        make_targets(np.zeros((2, 3)), (4, 4))
