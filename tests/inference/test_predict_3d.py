"""Forward prediction of 3D poses (x, y, z, weight): the per-coordinate filters in three
dimensions, and their agreement with the 2D filter they extend."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_pose.inference.predict import ForwardPredictor

MS = 1_000_000


def straight_line_3d(t_s: np.ndarray) -> np.ndarray:
    """Two keypoints moving in straight lines through space (mm); ``[T, 2, 3]``."""
    a = np.stack([10 + 150 * t_s, -40 - 60 * t_s, 300 + 90 * t_s], axis=-1)
    b = np.stack([-20 + 40 * t_s, 30 + 200 * t_s, 250 - 120 * t_s], axis=-1)
    return np.stack([a, b], axis=1)


def with_weight(xyz: np.ndarray, weight: float = 1.0) -> np.ndarray:
    return np.concatenate([xyz, np.full((*xyz.shape[:-1], 1), weight)], axis=-1)


@pytest.mark.parametrize("model", ["cv", "ca"])
def test_constant_velocity_in_3d_is_predicted_exactly(model):
    times_ns = np.arange(80) * 10 * MS
    positions = straight_line_3d(times_ns * 1e-9)
    predictor = ForwardPredictor(2, model=model, dims=3)
    for t, xyz in zip(times_ns, positions, strict=True):
        predictor.update(with_weight(xyz), int(t))
    target = int(times_ns[-1]) + 25 * MS
    predicted = predictor.predict(target)
    assert predicted.shape == (2, 4)
    np.testing.assert_allclose(predicted[:, :3], straight_line_3d(np.array([0.815]))[0], atol=1e-3)
    np.testing.assert_allclose(predicted[:, 3], 1.0)
    # z moved 2.25 mm in those 25 ms: holding the last pose would not pass.
    assert abs(predicted[0, 2] - positions[-1, 0, 2]) > 2.0


@pytest.mark.parametrize("model", ["cv", "ca"])
def test_x_and_y_are_filtered_as_in_2d(model):
    """The same x, y (with a constant z) through a 2D and a 3D filter give the same x, y,
    gating and confidence: the third coordinate adds nothing when it does not move."""
    rng = np.random.default_rng(0)
    steps = 120
    times_ns = np.cumsum(rng.integers(8 * MS, 13 * MS, steps))
    xy = np.cumsum(rng.normal(0, 2.0, (steps, 3, 2)), axis=0) + 200.0
    xy[60, 1] += (90.0, -70.0)  # one wild detection, gated in both
    likelihood = rng.uniform(0.3, 1.0, (steps, 3, 1))
    flat = ForwardPredictor(3, model=model, min_likelihood=0.5)
    spatial = ForwardPredictor(3, model=model, min_likelihood=0.5, dims=3)
    out2, out3 = np.empty((3, 3)), np.empty((3, 4))
    for i in range(steps):
        flat.update(np.concatenate([xy[i], likelihood[i]], axis=1), int(times_ns[i]))
        spatial.update(
            np.concatenate([xy[i], np.full((3, 1), 42.0), likelihood[i]], axis=1),
            int(times_ns[i]),
        )
        target = int(times_ns[i]) + 20 * MS
        flat.predict(target, out=out2)
        spatial.predict(target, out=out3)
        np.testing.assert_array_equal(out3[:, :2], out2[:, :2])
        np.testing.assert_array_equal(out3[:, 3], out2[:, 2])
        np.testing.assert_allclose(out3[:, 2], np.where(np.isnan(out2[:, 0]), np.nan, 42.0))
    np.testing.assert_array_equal(spatial.rejected, flat.rejected)
    assert spatial.rejected[1] == 1


def test_the_gate_sees_a_jump_in_depth_alone():
    times_ns = np.arange(50) * 10 * MS
    positions = straight_line_3d(times_ns * 1e-9)
    positions[40, 0, 2] += 60.0  # only z jumps: x and y agree with the track
    predictor = ForwardPredictor(2, dims=3, measurement_noise_px=1.0)
    for t, xyz in zip(times_ns, positions, strict=True):
        predictor.update(with_weight(xyz), int(t))
    assert predictor.rejected.tolist() == [1, 0]
    expected = straight_line_3d(times_ns[-1:] * 1e-9)[0]
    np.testing.assert_allclose(predictor.predict(int(times_ns[-1]))[:, :3], expected, atol=1e-2)


def test_an_untriangulated_keypoint_coasts():
    """NaN coordinates (fewer than two views) or weight 0: predict only, confidence kept until
    max_coast_s."""
    times_ns = np.arange(40) * 10 * MS
    positions = straight_line_3d(times_ns * 1e-9)
    predictor = ForwardPredictor(2, dims=3, max_coast_s=0.15)
    for i, (t, xyz) in enumerate(zip(times_ns, positions, strict=True)):
        pose = with_weight(xyz)
        if i >= 30:
            pose[0, 2] = np.nan  # keypoint 0 lost its depth: not triangulated
            pose[1, 3] = 0.0  # keypoint 1 given no weight
        predictor.update(pose, int(t))
    target = int(times_ns[-1])
    predicted = predictor.predict(target)
    np.testing.assert_allclose(predicted[:, :3], straight_line_3d(np.array([0.39]))[0], atol=1e-2)
    np.testing.assert_array_equal(predicted[:, 3], 1.0)  # 100 ms unmeasured < 150 ms
    np.testing.assert_array_equal(predictor.predict(target + 60 * MS)[:, 3], 0.0)
    assert predictor.rejected.sum() == 0


def test_never_seen_keypoints_are_nan_in_3d():
    predictor = ForwardPredictor(2, dims=3)
    out = predictor.predict(0)
    assert out.shape == (2, 4) and np.isnan(out[:, :3]).all() and (out[:, 3] == 0).all()
    predictor.update(np.array([[1.0, 2.0, 3.0, 0.8], [np.nan, np.nan, np.nan, 0.0]]), 0)
    out = predictor.predict(0)
    np.testing.assert_allclose(out[0], (1.0, 2.0, 3.0, 0.8))
    assert np.isnan(out[1, :3]).all() and out[1, 3] == 0.0
    assert predictor.covariance().shape == (2, 3, 2, 2)


def test_warmup_compiles_3d_and_leaves_no_trace():
    predictor = ForwardPredictor(3, dims=3)
    predictor.warmup()
    assert predictor.t_ns is None and predictor.rejected.sum() == 0
    out = np.empty((3, 4), np.float32)
    predictor.update(np.ones((3, 4), np.float32), 0)
    assert predictor.predict(0, out=out) is out


@pytest.mark.parametrize("dims", [1, 4, True, 2.5])
def test_dims_must_be_2_or_3(dims):
    with pytest.raises(ValueError, match="dims"):
        ForwardPredictor(2, dims=dims)


def test_a_2d_pose_is_refused_by_a_3d_predictor_and_vice_versa():
    with pytest.raises(ValueError, match=r"\[2, 4\] \(x, y, z, weight\)"):
        ForwardPredictor(2, dims=3).update(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match=r"\[2, 3\] \(x, y, likelihood\)"):
        ForwardPredictor(2).update(np.zeros((2, 4)), 0)
