"""Frame -> keypoints through real engines: the marker model puts peaks where markers are drawn."""

import numpy as np
import pytest

from realtime_pose.bundle import load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.geometry import Size
from realtime_pose.inference.crop import CropWindow
from realtime_pose.inference.estimator import NetworkInput, PoseEstimator, size_for_pixels
from tests.builders import draw_markers, write_marker_bundle

CELLS = [(2, 3), (5, 1), (9, 7)]
LOCREF_SHIFT = 7.2801 * 0.25


def _estimator(tmp_path, input_size=None, **kw):
    bundle = load_bundle(write_marker_bundle(tmp_path / "b", **kw))
    return PoseEstimator(bundle, open_engine(bundle), input_size)


def _expected(cells, stride=8, shift=LOCREF_SHIFT):
    return np.array(
        [[ix * stride + stride / 2 + shift, iy * stride + stride / 2 + shift] for ix, iy in cells]
    )


@pytest.mark.parametrize(
    "kw", [{}, {"layout": "NHWC"}, {"with_locref": False}, {"in_graph_peaks": True}]
)
def test_full_frame_keypoints_land_on_markers(tmp_path, kw):
    est = _estimator(tmp_path, **kw)
    stamps = np.zeros(3, np.int64)
    pose = est.estimate(draw_markers(64, 80, CELLS), stamps_ns=stamps)
    shift = LOCREF_SHIFT if not kw or kw.get("layout") else 0.0
    np.testing.assert_allclose(pose[:, :2], _expected(CELLS, shift=shift), atol=1e-4)
    np.testing.assert_allclose(pose[:, 2], 1.0)
    assert (np.diff(stamps) >= 0).all() and stamps[0] > 0


def test_likelihood_clip_bounds_the_likelihood_not_the_peak(tmp_path):
    from realtime_pose.bundle import write_bundle
    from tests.builders import marker_meta, marker_model

    bundle = write_bundle(tmp_path / "b", marker_model(), marker_meta(likelihood_clip=[0.0, 0.5]))
    est = PoseEstimator(bundle, open_engine(bundle))
    pose = est.estimate(draw_markers(64, 80, CELLS))
    np.testing.assert_allclose(pose[:, :2], _expected(CELLS), atol=1e-4)
    np.testing.assert_allclose(pose[:, 2], 0.5)


def test_resize_maps_back_to_frame_pixels(tmp_path):
    # 160x128 frame with 16-px markers, network at half size: keypoints land on marker centres
    est = _estimator(tmp_path, input_size=(80, 64), with_locref=False)
    frame = draw_markers(128, 160, CELLS, stride=16)
    pose = est.estimate(frame)
    # DLC's cell centre (ix*stride + stride/2, network px) mapped through the half-pixel-aligned
    # resize: (u + 0.5) * 2 - 0.5 in frame px.
    expected = np.array(
        [[(ix * 8 + 4 + 0.5) * 2 - 0.5, (iy * 8 + 4 + 0.5) * 2 - 0.5] for ix, iy in CELLS]
    )
    np.testing.assert_allclose(pose[:, :2], expected, atol=1e-4)


def test_crop_maps_back_to_frame_pixels(tmp_path):
    est = _estimator(tmp_path)
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[100:108, 200:208, 2] = 255  # red marker at frame px 200..207
    crop = CropWindow(
        x0=160, y0=68, width=80, height=64, full_frame=False
    )  # marker cell-aligned in the crop
    pose = est.estimate(frame, crop)
    assert pose[0, 0] == pytest.approx(204 + LOCREF_SHIFT, abs=1e-4)
    assert pose[0, 1] == pytest.approx(104 + LOCREF_SHIFT, abs=1e-4)


def test_gray_frames_are_accepted(tmp_path):
    est = _estimator(tmp_path)
    gray = np.zeros((64, 80), np.uint8)
    gray[8:16, 16:24] = 255
    pose = est.estimate(gray)
    assert pose[0, :2] == pytest.approx([20 + LOCREF_SHIFT, 12 + LOCREF_SHIFT], abs=1e-4)


def test_size_for_pixels_keeps_aspect_and_stride():
    assert size_for_pixels(Size(640, 480), 320 * 240) == Size(320, 240)
    w, h = size_for_pixels(Size(640, 480), 10_000)
    assert w % 8 == 0 and h % 8 == 0 and abs(w / h - 4 / 3) < 0.1
    with pytest.raises(ValueError):
        size_for_pixels(Size(640, 480), 0)


def test_loop_sizes_are_the_crop_window_and_the_full_frame():
    sizing = NetworkInput(Size(160, 120))
    assert sizing.loop_sizes(Size(320, 240), Size(128, 96)) == [Size(64, 48), Size(160, 120)]
    assert sizing.loop_sizes(Size(320, 240)) == [Size(160, 120)]
    padded = NetworkInput(Size(160, 120), pad=16)  # 120 rows run padded to 128
    assert padded.loop_sizes(Size(320, 240), Size(128, 96)) == [Size(64, 48), Size(160, 128)]
    assert NetworkInput().loop_sizes(Size(320, 240), Size(128, 96)) == [
        Size(128, 96),
        Size(320, 240),
    ]
    fixed = NetworkInput(Size(96, 96), fixed=True)
    assert fixed.loop_sizes(Size(320, 240), Size(128, 96)) == [Size(96, 96)]


def test_crop_keeps_the_full_frame_scale(tmp_path):
    # full frame 320x240 -> network 160x120; a 128x96 crop runs at 64x48 (same scale)
    est = _estimator(tmp_path, input_size=(160, 120), with_locref=False)
    crop = CropWindow(x0=64, y0=32, width=128, height=96, full_frame=False)
    assert est.network_size(Size(320, 240), crop) == Size(64, 48)
    assert est.network_size(Size(320, 240)) == Size(160, 120)
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[48:64, 96:112, 2] = 255  # 16-px red square: cell (2, 1) of the 64x48 crop network
    pose = est.estimate(frame, crop)
    # network x = 2*8+4 = 20 -> crop px (20.5)*2-0.5 = 40.5 -> frame 104.5; y: 12 -> 24.5+32
    assert pose[0, :2] == pytest.approx([104.5, 56.5], abs=1e-4)


def test_inputs_are_padded_to_16_without_moving_a_pixel(tmp_path):
    """With ``input.pad_to: 16``, a 160x120 frame (120 = 8 x 15: odd at the stride-16 stage)
    runs as 160x128, the frame in the top-left corner and zeros below; keypoints stay in frame
    pixels; a smaller crop after a larger one leaves no stale pixels in the padding. Without it
    (imported models) nothing is padded."""
    from realtime_pose.bundle import write_bundle
    from tests.builders import marker_meta, marker_model

    meta = marker_meta()
    meta["input"]["pad_to"] = 16  # as our Keras exports say
    bundle = write_bundle(tmp_path / "b", marker_model(), meta)
    est = PoseEstimator(bundle, open_engine(bundle))
    frame = draw_markers(120, 160, CELLS)
    image, _ = est.preprocess(frame)
    assert image.shape == (128, 160, 3) and est.network_size(Size(160, 120)) == Size(160, 128)
    np.testing.assert_array_equal(image[:120], frame[:, :, ::-1])
    assert not image[120:].any()
    np.testing.assert_allclose(est.estimate(frame)[:, :2], _expected(CELLS), atol=1e-4)
    white = np.full((240, 320, 3), 255, np.uint8)
    est.preprocess(white, CropWindow(0, 0, 96, 64, False))
    image, _ = est.preprocess(white, CropWindow(0, 0, 88, 56, False))
    assert image.shape == (64, 96, 3) and image[:56, :88].all()
    assert not image[56:].any() and not image[:, 88:].any()
    unpadded = _estimator(tmp_path / "plain")
    assert unpadded.preprocess(frame)[0].shape == (120, 160, 3)


def test_an_input_size_far_below_the_training_scale_is_warned_about(tmp_path):
    from realtime_pose.inference.estimator import undersized_input

    meta = load_bundle(write_marker_bundle(tmp_path / "b")).meta  # trained at scale 1
    frame = Size(640, 480)
    assert undersized_input(meta, frame, None) is None
    assert undersized_input(meta, frame, Size(640, 480)) is None
    assert undersized_input(meta, frame, Size(512, 384)) is None  # 0.8 of it
    warning = undersized_input(meta, frame, Size(160, 120))
    assert "shrinks 640x480 frames to 0.25" in warning and "--input-size 160x120" in warning
    scaled = meta.model_copy(update={"input": meta.input.model_copy(update={"scale": 0.5})})
    assert undersized_input(scaled, frame, Size(320, 240)) is None  # its own training scale
    assert "trained at 0.5" in undersized_input(scaled, frame, Size(160, 120))
