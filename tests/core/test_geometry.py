"""The network <-> frame transform agrees with what OpenCV's resize does to pixels."""

import cv2
import numpy as np
import pytest

from realtime_pose.geometry import FrameTransform


def test_crop_and_resize_by_hand_and_identity():
    t = FrameTransform.for_crop_resize(100, 50, 320, 240, 160, 96)
    net = np.array([[0.0, 0.0, 0.3], [159.0, 95.0, 0.9], [12.5, 77.25, 1.0]])
    # pixel centres scale: (x + 0.5) * 2 - 0.5 + x0, (y + 0.5) * 2.5 - 0.5 + y0; extras copied
    expected = net.copy()
    expected[:, 0] = (net[:, 0] + 0.5) * 2.0 - 0.5 + 100
    expected[:, 1] = (net[:, 1] + 0.5) * 2.5 - 0.5 + 50
    np.testing.assert_allclose(t.to_frame(net), expected, atol=1e-9)
    pts = net
    assert FrameTransform.identity().is_identity
    np.testing.assert_allclose(FrameTransform().to_frame(pts), pts)


def test_matches_opencv_resize_of_a_single_bright_pixel():
    # A bright blob in the frame lands, after crop+resize, at the transform's prediction.
    frame = np.zeros((240, 320), np.float32)
    cx, cy = 201.0, 143.0
    cv2.circle(frame, (int(cx), int(cy)), 6, 1.0, -1)
    x0, y0, cw, ch, nw, nh = 40, 20, 256, 200, 128, 100
    net = cv2.resize(frame[y0 : y0 + ch, x0 : x0 + cw], (nw, nh), interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(net > 0)
    w = net[ys, xs]
    centroid_net = np.array([[np.sum(xs * w) / w.sum(), np.sum(ys * w) / w.sum()]])
    t = FrameTransform.for_crop_resize(x0, y0, cw, ch, nw, nh)
    np.testing.assert_allclose(t.to_frame(centroid_net)[0], [cx, cy], atol=0.15)


def test_in_place_and_composition():
    a = FrameTransform(10, 20, 0.5, 0.5)
    b = FrameTransform(4, 2, 2.0, 3.0)
    pts = np.array([[30.0, 40.0], [5.0, 7.0]], np.float32)
    direct = a.to_frame(b.to_frame(pts))  # network -> intermediate -> frame
    np.testing.assert_allclose(a.then(b).to_frame(pts), direct, rtol=1e-5)
    buf = pts.copy()
    assert a.to_frame(buf, out=buf) is buf


def test_rejects_bad_scale():
    with pytest.raises(ValueError):
        FrameTransform(0, 0, 0, 1)
