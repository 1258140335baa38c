"""The clock model against synthetic camera/host times with known drift, delays and a jump."""

import numpy as np
import pytest

from realtime_pose.sources.camera_clock import ClockModel, KnownClock, RealtimeClock, fit_clock

PERIOD_NS = 5_000_000  # 200 FPS


def synthetic(n, drift_ppm=50.0, offset_ns=7_000_000_000, seed=0, min_delay_ns=300_000):
    """Camera ticks, the true host times of the exposures, and arrivals (true + delay >= min)."""
    rng = np.random.default_rng(seed)
    camera = np.arange(n, dtype=np.int64) * PERIOD_NS + 123_456_789
    true_host = offset_ns + np.round((camera - camera[0]) * (1 + drift_ppm * 1e-6)).astype(np.int64)
    delay = min_delay_ns + rng.exponential(400_000, n).astype(np.int64)
    return camera, true_host, true_host + delay


def test_fit_recovers_drift_and_the_envelope():
    camera, true_host, arrival = synthetic(2000, drift_ppm=80.0)
    fit = fit_clock(camera, arrival)
    assert fit.drift_ppm == pytest.approx(80.0, abs=5.0)
    mapped = np.array([fit.map(int(c)) for c in camera])
    assert np.all(mapped <= arrival)  # never after the arrival
    # mapped = true exposure time + the smallest delay (300 µs), within a few µs
    error = mapped - true_host
    assert np.median(error) == pytest.approx(300_000, abs=20_000)
    assert np.ptp(error) < 40_000


def test_fit_with_one_pair_is_the_offset():
    fit = fit_clock(np.array([10]), np.array([1000]))
    assert fit.slope == 1.0 and fit.map(10) == 1000 and fit.map(20) == 1010


def test_fit_refuses_mismatched_arrays():
    with pytest.raises(ValueError, match="equal non-empty"):
        fit_clock(np.array([1, 2]), np.array([1]))


def test_online_model_tracks_drift():
    camera, true_host, arrival = synthetic(3000, drift_ppm=-120.0, seed=1)
    model = ClockModel(window=512)
    mapped = np.array([model.update(int(c), int(a)) for c, a in zip(camera, arrival, strict=True)])
    late = slice(600, None)  # once the window is full
    error = mapped[late] - true_host[late]
    assert abs(np.median(error) - 300_000) < 60_000
    assert np.percentile(np.abs(error - np.median(error)), 99) < 100_000
    assert model.fit.drift_ppm == pytest.approx(-120.0, abs=30.0)
    assert model.jumps == 0


def test_online_model_survives_a_clock_jump():
    camera, true_host, arrival = synthetic(1500, seed=2)
    camera = camera.copy()
    camera[800:] -= 3_600_000_000_000  # the camera's clock restarted an hour back
    model = ClockModel(window=256, jump_confirm=3)
    mapped = np.array([model.update(int(c), int(a)) for c, a in zip(camera, arrival, strict=True)])
    assert model.jumps == 1
    after = slice(820, None)
    error = mapped[after] - true_host[after]
    assert np.all(np.abs(error) < 3_000_000)  # back on the true times within ms
    # the frames around the jump are never mapped after they arrived
    assert np.all(mapped[790:820] <= arrival[790:820])


def test_one_late_frame_does_not_move_the_mapping():
    camera, true_host, arrival = synthetic(600, seed=3)
    arrival = arrival.copy()
    arrival[400] += 80_000_000  # one frame stuck 80 ms in a driver queue
    model = ClockModel(window=256)
    mapped = [model.update(int(c), int(a)) for c, a in zip(camera, arrival, strict=True)]
    assert model.jumps == 0 and model.outliers == 1
    assert abs(mapped[400] - true_host[400]) < 2_000_000
    assert abs(mapped[599] - true_host[599]) < 1_000_000


def test_known_clock_is_exact():
    clock = KnownClock(offset_ns=-5)
    assert clock.update(100, 999) == 95 and clock.map(0) == -5


def test_realtime_clock_follows_a_slewed_clock():
    """A real-time clock slewed 5,000 ppm against the monotonic one (measured on a fresh CI VM):
    each frame is mapped with the offset at its arrival, never with the offset at open."""
    now = {"monotonic": 0}

    def realtime(monotonic: int) -> int:  # the real-time clock running 0.5 % slow
        return round(monotonic * 0.995) + 1_000

    def offset_now() -> int:
        return now["monotonic"] - realtime(now["monotonic"])

    clock = RealtimeClock(offset_now)
    for frame in range(400):
        exposure = frame * 2_500_000  # 400 fps on the monotonic clock
        stamp = realtime(exposure)  # the camera's real-time stamp
        now["monotonic"] = exposure + 300_000  # arrives 0.3 ms later
        mapped = clock.update(stamp, now["monotonic"])
        assert 0 <= now["monotonic"] - mapped <= 300_000 and abs(mapped - exposure) < 2_000
