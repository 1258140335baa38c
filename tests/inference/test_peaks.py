"""Peak finding against hand-computed values and the NumPy reference."""

import numpy as np
import pytest

from realtime_pose.inference.peaks import find_peaks, find_peaks_reference


def test_hand_computed_single_peak_with_locref():
    s = np.zeros((1, 2, 5, 6), np.float32)
    s[0, 0, 3, 4] = 0.9  # keypoint 0 at cell (ix=4, iy=3)
    s[0, 1, 0, 1] = 0.7
    loc = np.zeros((1, 4, 5, 6), np.float32)
    loc[0, 0, 3, 4], loc[0, 1, 3, 4] = 0.5, -1.0
    pose = find_peaks(s, loc, stride=8, locref_stdev=2.0, layout="NCHW")
    # x = 4*8 + 4 + 2*0.5 = 37 ; y = 3*8 + 4 + 2*(-1) = 26
    np.testing.assert_allclose(pose[0], [37.0, 26.0, 0.9], rtol=1e-6)
    np.testing.assert_allclose(pose[1], [12.0, 4.0, 0.7], rtol=1e-6)
    nhwc = find_peaks(s.transpose(0, 2, 3, 1), loc.transpose(0, 2, 3, 1), 8, 2.0, "NHWC")
    np.testing.assert_allclose(nhwc, pose)


def test_reference_clips_likelihoods_after_the_peak_search():
    s = np.zeros((1, 2, 3, 4), np.float32)
    s[0, 0, 1, 2], s[0, 0, 2, 0] = 1.7, 1.2  # above 1: the larger wins, then is clipped
    s[0, 1] = -0.5
    s[0, 1, 0, 3] = -0.25
    pose = find_peaks_reference(s, None, 8, 7.2801, likelihood_clip=(0.0, 1.0))
    np.testing.assert_allclose(pose, [[20.0, 12.0, 1.0], [28.0, 4.0, 0.0]])


def test_ties_pick_first_in_raster_order_like_argmax():
    s = np.zeros((1, 1, 4, 4), np.float32)
    s[0, 0, 2, 1] = s[0, 0, 1, 3] = 1.0  # (iy=1, ix=3) comes first
    for layout, arr in (("NCHW", s), ("NHWC", s.transpose(0, 2, 3, 1))):
        pose = find_peaks(arr, None, 4, 1.0, layout)
        assert pose[0, :2].tolist() == [3 * 4 + 2, 1 * 4 + 2], layout


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize(("k", "h", "w"), [(1, 1, 1), (4, 60, 80), (20, 30, 17), (3, 7, 130)])
def test_matches_numpy_reference_on_random_maps(layout, k, h, w):
    rng = np.random.default_rng(k * 1000 + h)
    for _ in range(5):
        s = rng.random((1, k, h, w), dtype=np.float32) - rng.random()  # negatives too
        loc = rng.standard_normal((1, 2 * k, h, w)).astype(np.float32)
        if layout == "NHWC":
            s, loc = s.transpose(0, 2, 3, 1).copy(), loc.transpose(0, 2, 3, 1).copy()
        got = find_peaks(s, loc, 8, 7.2801, layout)
        ref = find_peaks_reference(s, loc, 8, 7.2801, layout)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-4)


def test_out_buffer_is_reused_and_non_contiguous_input_accepted():
    rng = np.random.default_rng(1)
    s = rng.random((1, 8, 10, 3), dtype=np.float32).transpose(0, 3, 1, 2)  # NCHW view
    out = np.empty((3, 3), np.float32)
    res = find_peaks(s, None, 8, 1.0, "NCHW", out)
    assert res is out
    np.testing.assert_allclose(out, find_peaks_reference(np.ascontiguousarray(s), None, 8, 1.0))


def test_bad_layout():
    with pytest.raises(ValueError, match="layout"):
        find_peaks(np.zeros((1, 1, 2, 2), np.float32), None, 8, 1, "HWCN")
