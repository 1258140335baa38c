"""Forward prediction on synthetic trajectories with known motion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from realtime_pose.inference.predict import ForwardPredictor, LeadTime, kalman_update

MS = 1_000_000


def feed(predictor: ForwardPredictor, times_ns, positions, likelihood=1.0) -> None:
    """Update with one keypoint per row of ``positions [T, K, 2]``."""
    for t, xy in zip(times_ns, positions, strict=True):
        pose = np.concatenate([xy, np.full((len(xy), 1), likelihood)], axis=1)
        predictor.update(pose, int(t))


def constant_velocity(t_s: np.ndarray) -> np.ndarray:
    """Two keypoints moving in straight lines; ``[T, 2, 2]``."""
    a = np.stack([100 + 150 * t_s, 80 - 60 * t_s], axis=-1)
    b = np.stack([20 + 40 * t_s, 30 + 200 * t_s], axis=-1)
    return np.stack([a, b], axis=1)


def test_constant_velocity_is_predicted_exactly_after_convergence():
    times_ns = np.arange(60) * 10 * MS
    predictor = ForwardPredictor(2, model="cv")
    feed(predictor, times_ns, constant_velocity(times_ns * 1e-9))
    target = int(times_ns[-1]) + 25 * MS
    predicted = predictor.predict(target)
    expected = constant_velocity(np.array([target * 1e-9]))[0]
    np.testing.assert_allclose(predicted[:, :2], expected, atol=1e-3)
    np.testing.assert_allclose(predicted[:, 2], 1.0)
    # Holding the last pose would be 3.75 px off: the test can tell prediction from holding.
    assert np.abs(predicted[0, :2] - constant_velocity(times_ns[-1:] * 1e-9)[0][0]).max() > 3


def test_constant_acceleration_needs_the_ca_model():
    times_ns = np.arange(80) * 10 * MS
    t_s = times_ns * 1e-9

    def track(t):
        return np.stack([50 + 20 * t + 0.5 * 400 * t**2, 200 - 0.5 * 300 * t**2], axis=-1)[
            :, None, :
        ]

    target = int(times_ns[-1]) + 30 * MS
    expected = track(np.array([target * 1e-9]))[0, 0]
    errors = {}
    for model in ("ca", "cv"):
        predictor = ForwardPredictor(1, model=model)
        feed(predictor, times_ns, track(t_s))
        errors[model] = np.abs(predictor.predict(target)[0, :2] - expected).max()
    assert errors["ca"] < 1e-2
    assert errors["cv"] > 0.1  # a constant-velocity model lags behind an accelerating point


def test_irregular_time_steps_use_the_measured_dt():
    rng = np.random.default_rng(3)
    times_ns = np.cumsum(rng.integers(3 * MS, 40 * MS, size=80))
    predictor = ForwardPredictor(2, model="cv")
    feed(predictor, times_ns, constant_velocity(times_ns * 1e-9))
    target = int(times_ns[-1]) + 17 * MS
    expected = constant_velocity(np.array([target * 1e-9]))[0]
    np.testing.assert_allclose(predictor.predict(target)[:, :2], expected, atol=1e-3)


def test_a_single_outlier_is_rejected_by_the_gate():
    times_ns = np.arange(60) * 10 * MS
    positions = constant_velocity(times_ns * 1e-9)
    positions[40, 0] += (80.0, -60.0)  # one wild detection of keypoint 0
    predictor = ForwardPredictor(2, model="cv", reinit_after=3)
    feed(predictor, times_ns, positions)
    assert predictor.rejected.tolist() == [1, 0]
    target = int(times_ns[-1]) + 10 * MS
    expected = constant_velocity(np.array([target * 1e-9]))[0]
    np.testing.assert_allclose(predictor.predict(target)[:, :2], expected, atol=1e-2)


def test_without_a_gate_the_outlier_would_pull_the_estimate():
    times_ns = np.arange(42) * 10 * MS
    positions = constant_velocity(times_ns * 1e-9)
    positions[-1, 0] += (80.0, -60.0)
    gated = ForwardPredictor(2, gate=6.0)
    ungated = ForwardPredictor(2, gate=1e9)
    feed(gated, times_ns, positions)
    feed(ungated, times_ns, positions)
    truth = constant_velocity(times_ns[-1:] * 1e-9)[0, 0]
    t = int(times_ns[-1])
    assert np.abs(gated.predict(t)[0, :2] - truth).max() < 0.01
    assert np.abs(ungated.predict(t)[0, :2] - truth).max() > 10


def test_a_real_teleport_is_accepted_after_reinit_after_frames():
    times_ns = np.arange(70) * 10 * MS
    positions = np.zeros((70, 1, 2))
    positions[:, 0] = (100.0, 100.0)
    positions[50:, 0] = (400.0, 300.0)  # the animal really is somewhere else now
    predictor = ForwardPredictor(1, model="cv", reinit_after=4)
    for i, (t, xy) in enumerate(zip(times_ns, positions, strict=True)):
        predictor.update(np.array([[*xy[0], 1.0]]), int(t))
        if i == 52:  # three rejections so far: still believes the old place
            np.testing.assert_allclose(predictor.predict(int(t))[0, :2], (100, 100), atol=0.5)
    assert predictor.rejected[0] == 4
    np.testing.assert_allclose(predictor.predict(int(times_ns[-1]))[0, :2], (400, 300), atol=0.5)


def test_coasting_through_a_dropout_keeps_moving_and_grows_uncertain():
    times_ns = np.arange(51) * 10 * MS
    positions = constant_velocity(times_ns * 1e-9)
    predictor = ForwardPredictor(2, model="cv", max_coast_s=0.2, min_likelihood=0.5)
    feed(predictor, times_ns[:40], positions[:40])
    var_before = predictor.covariance()[0, 0, 0, 0]
    for t, xy in zip(times_ns[40:], positions[40:], strict=True):
        # Keypoint 0 is lost for 110 ms (likelihood 0.1 at a wrong place); keypoint 1 is seen.
        predictor.update(np.array([[0.0, 0.0, 0.1], [*xy[1], 1.0]]), int(t))
    assert predictor.covariance()[0, 0, 0, 0] > 10 * var_before
    assert predictor.covariance()[1, 0, 0, 0] < 2 * var_before
    target = int(times_ns[-1])
    expected = constant_velocity(np.array([target * 1e-9]))[0]
    predicted = predictor.predict(target)
    np.testing.assert_allclose(predicted[:, :2], expected, atol=1e-2)  # coasted along its velocity
    assert predicted[0, 2] == 1.0  # 110 ms unmeasured < max_coast_s
    assert predictor.predict(target + 100 * MS)[0, 2] == 0.0  # 210 ms > max_coast_s
    assert predictor.predict(target + 100 * MS)[1, 2] == 1.0
    assert predictor.rejected.tolist() == [0, 0]  # coasting is not rejecting


def test_reappearing_after_max_coast_restarts_from_the_new_position():
    predictor = ForwardPredictor(1, model="cv", max_coast_s=0.1)
    for i in range(30):  # moving right at 100 px/s
        predictor.update(np.array([[10 + i, 50.0, 1.0]]), i * 10 * MS)
    for i in range(30, 60):  # lost for 300 ms
        predictor.update(np.array([[0.0, 0.0, 0.0]]), i * 10 * MS)
    predictor.update(np.array([[500.0, 20.0, 0.9]]), 60 * 10 * MS)
    assert predictor.rejected[0] == 0  # re-initialised, not gated
    predicted = predictor.predict(70 * 10 * MS)  # 100 ms later: the stale velocity is gone
    np.testing.assert_allclose(predicted[0], (500.0, 20.0, 0.9), atol=1e-9)


def test_low_likelihood_measurements_move_the_estimate_less():
    moved = {}
    for likelihood in (1.0, 0.6):
        predictor = ForwardPredictor(1, model="cv", min_likelihood=0.5)
        for i in range(40):
            predictor.update(np.array([[100.0, 100.0, 1.0]]), i * 10 * MS)
        predictor.update(np.array([[104.0, 100.0, likelihood]]), 40 * 10 * MS)
        moved[likelihood] = predictor.predict(40 * 10 * MS)[0, 0] - 100.0
    assert 0 < moved[0.6] < moved[1.0]
    assert moved[0.6] < 0.7 * moved[1.0]


def test_below_min_likelihood_is_ignored():
    predictor = ForwardPredictor(1, min_likelihood=0.5)
    for i in range(10):
        predictor.update(np.array([[100.0, 100.0, 1.0]]), i * 10 * MS)
    predictor.update(np.array([[110.0, 90.0, 0.49]]), 100 * MS)
    np.testing.assert_allclose(predictor.predict(100 * MS)[0, :2], (100, 100), atol=1e-6)


def test_one_step_matches_the_textbook_kalman_equations():
    """The kernel against a dense NumPy filter with F, Q and R written out by hand."""
    dt, q, sigma, lik = 0.02, 3.0e4, 2.0, 0.8
    for n in (2, 3):
        rng = np.random.default_rng(n)
        x = rng.normal(size=(1, 2, n)) * 10
        A = rng.normal(size=(n, n))
        P = np.broadcast_to(A @ A.T + np.eye(n), (1, 2, n, n)).copy()
        z = x[0, :, 0] + (1.5, -1.0)
        F = np.array([[1, dt, dt**2 / 2], [0, 1, dt], [0, 0, 1]])[:n, :n]
        if n == 2:
            Q = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
        else:
            Q = q * np.array(
                [
                    [dt**5 / 20, dt**4 / 8, dt**3 / 6],
                    [dt**4 / 8, dt**3 / 3, dt**2 / 2],
                    [dt**3 / 6, dt**2 / 2, dt],
                ]
            )
        R = (sigma / lik) ** 2
        H = np.eye(n)[:1]
        expected_x, expected_P = [], []
        for c in range(2):
            xp = F @ x[0, c]
            Pp = F @ P[0, c] @ F.T + Q
            S = H @ Pp @ H.T + R
            gain = Pp @ H.T / S
            expected_x.append(xp + (gain * (z[c] - xp[0])).ravel())
            expected_P.append((np.eye(n) - gain @ H) @ Pp)
        pose = np.array([[z[0], z[1], lik]])
        kalman_update(
            x,
            P,
            pose,
            dt,
            q,
            sigma,
            100.0,
            0.1,
            3,
            10.0,
            np.ones(n),
            np.array([True]),
            np.zeros(1),
            np.zeros(1, dtype=np.int64),
            np.zeros(1, dtype=np.int64),
            np.zeros(1),
        )
        np.testing.assert_allclose(x[0], np.array(expected_x), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(P[0], np.array(expected_P), rtol=1e-9, atol=1e-9)


def test_predict_before_any_update_and_unseen_keypoints():
    predictor = ForwardPredictor(2)
    out = np.empty((2, 3))
    assert predictor.predict(0, out=out) is out
    assert np.isnan(out[:, :2]).all() and (out[:, 2] == 0).all()
    predictor.update(np.array([[5.0, 6.0, 0.9], [0.0, 0.0, 0.0]]), 0)
    out = predictor.predict(5 * MS)
    np.testing.assert_allclose(out[0], (5.0, 6.0, 0.9))
    assert np.isnan(out[1, :2]).all() and out[1, 2] == 0.0


def test_float32_poses_are_accepted():
    predictor = ForwardPredictor(1)
    for i in range(5):
        predictor.update(np.array([[1.0 + i, 2.0, 1.0]], dtype=np.float32), i * 10 * MS)
    assert predictor.predict(40 * MS)[0, 0] == pytest.approx(5.0, abs=0.5)


def test_reset_forgets_everything():
    predictor = ForwardPredictor(1)
    predictor.update(np.array([[1.0, 2.0, 1.0]]), 10 * MS)
    predictor.reset()
    assert predictor.t_ns is None
    predictor.update(np.array([[7.0, 8.0, 1.0]]), 0)  # time may restart after a reset
    np.testing.assert_allclose(predictor.predict(0)[0, :2], (7.0, 8.0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "kalman"}, "model"),
        ({"process_noise": -1.0}, "process_noise"),
        ({"min_likelihood": 1.5}, "min_likelihood"),
        ({"reinit_after": 0}, "reinit_after"),
        ({"max_coast_s": math.inf}, "max_coast_s"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ForwardPredictor(3, **kwargs)


def test_time_going_backwards_is_an_error_and_wrong_shapes_too():
    predictor = ForwardPredictor(2)
    predictor.update(np.zeros((2, 3)), 100)
    with pytest.raises(ValueError, match="backwards"):
        predictor.update(np.zeros((2, 3)), 50)
    with pytest.raises(ValueError, match=r"\[2, 3\]"):
        predictor.update(np.zeros((3, 3)), 200)


def test_lead_time_fixed_and_running_median():
    assert LeadTime(fixed_ms=7.5).lead_ns == 7_500_000
    fixed = LeadTime(fixed_ms=2.0)
    fixed.observe(50 * MS)
    assert fixed.lead_ns == 2 * MS

    lead = LeadTime(window=5, initial_ms=1.0)
    assert lead.lead_ns == 1 * MS
    for latency_ms in (3, 100, 4, 5):
        lead.observe(latency_ms * MS)
    assert lead.lead_ns == 4.5 * MS  # median of 3, 4, 5, 100: one outlier does not move it
    for latency_ms in (20, 21, 22, 23, 24):  # the window forgets the old values
        lead.observe(latency_ms * MS)
    assert lead.lead_ns == 22 * MS
    with pytest.raises(ValueError, match="fixed_ms"):
        LeadTime(fixed_ms=-1.0)


def test_warmup_leaves_no_trace_and_float32_outputs_work():
    predictor = ForwardPredictor(2)
    predictor.warmup()
    assert predictor.t_ns is None and predictor.rejected.sum() == 0
    out = np.empty((2, 3), np.float32)
    predictor.update(np.array([[1.0, 2.0, 1.0], [3.0, 4.0, 1.0]], np.float32), 0)
    assert predictor.predict(0, out=out) is out
    np.testing.assert_allclose(out, [[1, 2, 1], [3, 4, 1]])


def test_noisy_curved_motion_is_predicted_better_than_holding():
    """A point circling at 200 px/s, measured with 1 px noise, predicted 50 ms ahead."""
    rng = np.random.default_rng(7)
    fps, lead = 100, 5
    t_s = np.arange(600) / fps
    truth = np.stack([320 + 100 * np.cos(2 * t_s), 240 + 100 * np.sin(2 * t_s)], axis=-1)
    measured = truth + rng.normal(0, 1.0, truth.shape)
    predictor = ForwardPredictor(1, model="cv", measurement_noise_px=1.0)
    out = np.empty((1, 3))
    predict_err, hold_err = [], []
    for i in range(len(t_s) - lead):
        predictor.update(np.array([[*measured[i], 1.0]]), i * 10 * MS)
        predictor.predict((i + lead) * 10 * MS, out=out)
        if i >= 50:
            predict_err.append(np.linalg.norm(out[0, :2] - truth[i + lead]))
            hold_err.append(np.linalg.norm(measured[i] - truth[i + lead]))
    assert np.mean(hold_err) == pytest.approx(10.0, abs=1.0)  # 200 px/s x 50 ms
    assert np.mean(predict_err) < 0.4 * np.mean(hold_err)  # ~0.27 with the defaults
    assert predictor.rejected[0] == 0  # 1 px noise never trips the gate


def test_lead_time_follows_a_change_in_latency_over_a_long_window():
    lead = LeadTime(window=100)
    for _ in range(60):
        lead.observe(10 * MS)
    assert lead.lead_ns == 10 * MS
    for _ in range(100):  # the pipeline got slower: after a window the lead has followed
        lead.observe(25 * MS)
    assert lead.lead_ns == 25 * MS
