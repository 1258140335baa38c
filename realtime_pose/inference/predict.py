"""Forward prediction: per-coordinate Kalman filters that predict where each keypoint will be.

The live loop acts on a pose that is already a few milliseconds old when the action reaches the
hardware. :class:`ForwardPredictor` keeps one small Kalman filter per keypoint coordinate and
predicts the pose at ``t_capture + lead`` (:class:`LeadTime` supplies ``lead``). It filters 2D
poses ``[K, 3]`` (x, y in pixels, likelihood; ``dims=2``) or 3D poses ``[K, 4]`` (x, y, z in the
calibration's unit, a weight in place of the likelihood; ``dims=3``): the maths is the same per
coordinate, and "px" below reads "mm" in 3D.

Model
-----
Each coordinate (x, y or z of one keypoint) has the state ``[p, v]`` (``model="cv"``, constant
velocity) or ``[p, v, a]`` (``model="ca"``, constant acceleration), in pixels and seconds. The
highest derivative is driven by continuous white noise of spectral density ``q``
(``process_noise``; px²/s³ for "cv", px²/s⁵ for "ca"), which gives, for a step of ``dt`` seconds
and a state of ``n`` derivatives,

    F[i, j] = dt**(j - i) / (j - i)!                                  (j >= i)
    Q[i, j] = q * dt**(2n - 1 - i - j) / ((n-1-i)! (n-1-j)! (2n-1-i-j))

(for "cv": ``Q = q [[dt³/3, dt²/2], [dt²/2, dt]]``). ``dt`` is the measured time between frames,
so dropped frames and jittery capture are handled without assuming a frame rate.

Measurement noise comes from the network's likelihood ``l``: the measured position has standard
deviation ``measurement_noise_px / l``, i.e. ``R = (measurement_noise_px / l)²``. A likelihood of
1 is trusted at face value; 0.5 gives four times the variance, so it moves the estimate less.

Per keypoint the coordinates' innovations are combined into a Mahalanobis distance
``d = sqrt(νx²/Sx + νy²/Sy [+ νz²/Sz])``. A measurement with ``d > gate`` is treated as missed
(predict only) and counted in :attr:`ForwardPredictor.rejected`; after ``reinit_after``
consecutive rejections the filter is re-initialised on the newest measurement, so a real
relocation is accepted after a few frames instead of being rejected forever. A keypoint with
``l < min_likelihood`` is *coasting*: the filter only predicts and its covariance grows. A keypoint
that has not been measured for more than ``max_coast_s`` is reported with confidence 0 and
re-initialised when it is seen again (its old velocity means nothing by then).

The coordinate filters of all ``K`` keypoints are advanced by one Numba kernel call per frame
(:func:`kalman_update`); prediction is a second, cheaper kernel (:func:`kalman_predict`). In 2D
this is equivalent to DeepLabCut-Live's dense 6K×6K filter (the coordinates are independent in
its model) at a fraction of the cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

MODELS = {"cv": 2, "ca": 3}

# With measurement_noise_px=2 these lie on the ridge of best (process, measurement) noise found by
# benchmarks/prediction.py on the first half of the openfield video (30 fps; model poses and a
# tracked mouse). The point of that ridge the benchmark picked for the model's poses (process
# noise 3.2e6 with measurement noise 8 px: the same ratio to the squared measurement noise) cuts
# the error at a 2-frame lead by about 50 % (median) on the second half
# (benchmarks/results/prediction.json).
DEFAULT_PROCESS_NOISE = {"cv": 2.0e5, "ca": 2.0e7}


@numba.njit(cache=True, nogil=True)
def _transition(n: int, dt: float, F: np.ndarray, Q: np.ndarray, q: float) -> None:
    """Fill ``F`` and ``Q`` (``n × n``) for a step of ``dt`` seconds (see module docstring)."""
    fact = (1.0, 1.0, 2.0, 6.0, 24.0, 120.0)
    for i in range(n):
        for j in range(n):
            F[i, j] = dt ** (j - i) / fact[j - i] if j >= i else 0.0
            e = 2 * n - 1 - i - j
            Q[i, j] = q * dt**e / (fact[n - 1 - i] * fact[n - 1 - j] * e)


@numba.njit(cache=True, nogil=True)
def _initialise(
    x: np.ndarray, P: np.ndarray, k: int, xy: np.ndarray, r: float, init_var: np.ndarray
) -> None:
    n = x.shape[2]
    for c in range(x.shape[1]):
        x[k, c, 0] = xy[c]
        for i in range(1, n):
            x[k, c, i] = 0.0
        for i in range(n):
            for j in range(n):
                P[k, c, i, j] = 0.0
        P[k, c, 0, 0] = r
        for i in range(1, n):
            P[k, c, i, i] = init_var[i]


@numba.njit(cache=True, nogil=True)
def kalman_update(
    x: np.ndarray,
    P: np.ndarray,
    pose: np.ndarray,
    dt: float,
    q: float,
    measurement_noise_px: float,
    gate: float,
    min_likelihood: float,
    reinit_after: int,
    max_coast_s: float,
    init_var: np.ndarray,
    initialised: np.ndarray,
    coast_s: np.ndarray,
    consecutive_rejects: np.ndarray,
    rejected: np.ndarray,
    last_likelihood: np.ndarray,
) -> None:
    """Advance every keypoint's coordinate filters by ``dt`` seconds and fold in ``pose``.

    Parameters
    ----------
    x, P
        State ``[K, D, n]`` and covariance ``[K, D, n, n]`` (float64), updated in place; ``D``
        (2 or 3) is the number of coordinates.
    pose
        Measurements ``[K, D + 1]``: the coordinates (pixels, or mm in 3D), then the likelihood
        (or weight).
    dt
        Seconds since the previous update (ignored for keypoints not yet initialised).
    q, measurement_noise_px, gate, min_likelihood, reinit_after, max_coast_s
        See :class:`ForwardPredictor`.
    init_var
        Initial variance of each state component ``[n]`` (entry 0 unused: it is ``R``).
    initialised, coast_s, consecutive_rejects, rejected, last_likelihood
        Per-keypoint bookkeeping ``[K]``, updated in place: whether the filter holds a state,
        seconds since the last accepted measurement, current run of gate rejections, total gate
        rejections, likelihood of the last accepted measurement.
    """
    K = x.shape[0]
    D = x.shape[1]
    n = x.shape[2]
    F = np.empty((n, n))
    Q = np.empty((n, n))
    FP = np.empty((n, n))
    gain = np.empty(n)
    row0 = np.empty(n)
    _transition(n, dt, F, Q, q)
    xy = np.empty(D)
    for k in range(K):
        lik = pose[k, D]
        observed = lik >= min_likelihood and lik == lik and lik > 0.0
        for c in range(D):
            xy[c] = pose[k, c]
            if not np.isfinite(xy[c]):
                observed = False
        r = 0.0
        if observed:
            sd = measurement_noise_px / lik
            r = sd * sd
        if not initialised[k]:
            if observed:
                _initialise(x, P, k, xy, r, init_var)
                initialised[k] = True
                coast_s[k] = 0.0
                consecutive_rejects[k] = 0
                last_likelihood[k] = lik
            continue
        coast_s[k] += dt
        # Predict: x = F x, P = F P F' + Q.
        for c in range(D):
            for i in range(n):
                acc = 0.0
                for j in range(i, n):
                    acc += F[i, j] * x[k, c, j]
                x[k, c, i] = acc
            for i in range(n):
                for j in range(n):
                    acc = 0.0
                    for m in range(i, n):
                        acc += F[i, m] * P[k, c, m, j]
                    FP[i, j] = acc
            for i in range(n):
                for j in range(n):
                    acc = 0.0
                    for m in range(j, n):
                        acc += FP[i, m] * F[j, m]
                    P[k, c, i, j] = acc + Q[i, j]
        if not observed:
            continue
        if coast_s[k] > max_coast_s:
            # Lost for too long: its velocity is stale; start afresh where it is now.
            _initialise(x, P, k, xy, r, init_var)
            coast_s[k] = 0.0
            consecutive_rejects[k] = 0
            last_likelihood[k] = lik
            continue
        d2 = 0.0
        for c in range(D):
            nu = xy[c] - x[k, c, 0]
            d2 += nu * nu / (P[k, c, 0, 0] + r)
        if d2 > gate * gate:
            rejected[k] += 1
            consecutive_rejects[k] += 1
            if consecutive_rejects[k] >= reinit_after:
                _initialise(x, P, k, xy, r, init_var)
                coast_s[k] = 0.0
                consecutive_rejects[k] = 0
                last_likelihood[k] = lik
            continue
        consecutive_rejects[k] = 0
        coast_s[k] = 0.0
        last_likelihood[k] = lik
        # Update with H = [1, 0, ...]: gain = P[:, 0] / S; x += gain nu; P -= gain P[0, :].
        for c in range(D):
            s = P[k, c, 0, 0] + r
            nu = xy[c] - x[k, c, 0]
            for i in range(n):
                gain[i] = P[k, c, i, 0] / s
                row0[i] = P[k, c, 0, i]
            for i in range(n):
                x[k, c, i] += gain[i] * nu
                for j in range(n):
                    P[k, c, i, j] -= gain[i] * row0[j]


@numba.njit(cache=True, nogil=True)
def kalman_predict(
    x: np.ndarray,
    dt: float,
    initialised: np.ndarray,
    coast_s: np.ndarray,
    last_likelihood: np.ndarray,
    max_coast_s: float,
    out: np.ndarray,
) -> None:
    """Extrapolate every keypoint ``dt`` seconds ahead of the filter time into ``out [K, D + 1]``
    (the coordinates, then the confidence).

    Confidence is the likelihood of the last accepted measurement while the keypoint has been
    unmeasured for at most ``max_coast_s`` seconds (counting ``dt``), else 0; position is NaN for a
    keypoint never measured.
    """
    K = x.shape[0]
    D = x.shape[1]
    n = x.shape[2]
    for k in range(K):
        if not initialised[k]:
            for c in range(D):
                out[k, c] = np.nan
            out[k, D] = 0.0
            continue
        for c in range(D):
            acc = 0.0
            term = 1.0
            for i in range(n):
                acc += x[k, c, i] * term
                term *= dt / (i + 1)
            out[k, c] = acc
        out[k, D] = last_likelihood[k] if coast_s[k] + dt <= max_coast_s else 0.0


class ForwardPredictor:
    """Kalman forward prediction of a single animal's ``K`` keypoints, in 2D or 3D.

    Parameters
    ----------
    num_keypoints
        ``K``.
    model
        ``"cv"`` (constant velocity, 2 states per coordinate) or ``"ca"`` (constant
        acceleration, 3 states).
    process_noise
        Spectral density ``q`` of the white noise driving the highest derivative (px²/s³ for
        "cv", px²/s⁵ for "ca"); larger follows manoeuvres faster but smooths less. ``None``
        picks a default tuned on the openfield video.
    measurement_noise_px
        Standard deviation of a measurement with likelihood 1, in pixels; a likelihood ``l``
        gives ``measurement_noise_px / l``.
    gate
        Mahalanobis distance (in standard deviations, over the coordinates together) beyond
        which a measurement is rejected as an outlier.
    reinit_after
        Consecutive rejections after which the filter re-initialises on the new position.
    min_likelihood
        Measurements below this likelihood are ignored (the keypoint coasts).
    max_coast_s
        How long a keypoint may go unmeasured (counting the prediction lead) before its
        predicted confidence drops to 0.
    initial_velocity_std_px_s, initial_acceleration_std_px_s2
        Prior standard deviations of a newly initialised keypoint's velocity and acceleration.
    dims
        2 (poses ``[K, 3]``: x, y in pixels, likelihood) or 3 (poses ``[K, 4]``: x, y, z in
        the calibration's unit, mm, then a weight in ``[0, 1]`` that plays the likelihood's
        part, e.g. 1 where :class:`~realtime_pose.inference.triangulate.Triangulator` found the
        point and 0 (or NaN coordinates) where it did not). In 3D the parameters above are in mm
        where they say px, and the noise defaults, tuned on pixels, should be re-tuned.

    Notes
    -----
    :meth:`update` and :meth:`predict` allocate nothing when ``out`` is given; ``update`` accepts
    float32 or float64 poses.
    """

    def __init__(
        self,
        num_keypoints: int,
        model: str = "cv",
        process_noise: float | None = None,
        measurement_noise_px: float = 2.0,
        gate: float = 6.0,
        reinit_after: int = 3,
        min_likelihood: float = 0.5,
        max_coast_s: float = 0.5,
        initial_velocity_std_px_s: float = 500.0,
        initial_acceleration_std_px_s2: float = 5000.0,
        dims: int = 2,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be at least 1, got {num_keypoints}")
        if isinstance(dims, bool) or dims not in (2, 3):
            raise ValueError(f"dims must be 2 (x, y) or 3 (x, y, z), got {dims!r}")
        if process_noise is None:
            process_noise = DEFAULT_PROCESS_NOISE[model]
        for name, value in (
            ("process_noise", process_noise),
            ("measurement_noise_px", measurement_noise_px),
            ("gate", gate),
            ("max_coast_s", max_coast_s),
            ("initial_velocity_std_px_s", initial_velocity_std_px_s),
            ("initial_acceleration_std_px_s2", initial_acceleration_std_px_s2),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if not 0 <= min_likelihood <= 1:
            raise ValueError(f"min_likelihood must lie in [0, 1], got {min_likelihood}")
        if reinit_after < 1:
            raise ValueError(f"reinit_after must be at least 1, got {reinit_after}")
        self.num_keypoints = int(num_keypoints)
        self.dims = int(dims)
        self.model = model
        self.process_noise = float(process_noise)
        self.measurement_noise_px = float(measurement_noise_px)
        self.gate = float(gate)
        self.reinit_after = int(reinit_after)
        self.min_likelihood = float(min_likelihood)
        self.max_coast_s = float(max_coast_s)
        n = MODELS[model]
        self._init_var = np.array(
            [0.0, initial_velocity_std_px_s**2, initial_acceleration_std_px_s2**2][:n]
        )
        K = self.num_keypoints
        self._x = np.zeros((K, self.dims, n))
        self._P = np.zeros((K, self.dims, n, n))
        self._initialised = np.zeros(K, dtype=np.bool_)
        self._coast_s = np.zeros(K)
        self._consecutive_rejects = np.zeros(K, dtype=np.int64)
        self.rejected = np.zeros(K, dtype=np.int64)
        """Measurements rejected by the gate so far, per keypoint."""
        self._last_likelihood = np.zeros(K)
        self._t_ns: int | None = None

    def reset(self) -> None:
        """Forget every keypoint (e.g. a new animal or a new session)."""
        self._initialised[:] = False
        self._coast_s[:] = 0.0
        self._consecutive_rejects[:] = 0
        self.rejected[:] = 0
        self._last_likelihood[:] = 0.0
        self._t_ns = None

    def warmup(self) -> None:
        """Compile the kernels for float32 and float64 poses and outputs now, then :meth:`reset`.

        Numba compiles one variant per argument type on first use (~0.5 s; ~0.1 s from its
        on-disk cache): call this before the first frame so the first poses are not late.
        """
        for dtype in (np.float32, np.float64):
            pose = np.zeros((self.num_keypoints, self.dims + 1), dtype)
            self.update(pose, 0)
            self.update(pose, 1)
            self.predict(2, out=np.empty((self.num_keypoints, self.dims + 1), dtype))
            self.reset()

    @property
    def t_ns(self) -> int | None:
        """Capture time of the last update, or ``None`` before the first."""
        return self._t_ns

    def update(self, pose: np.ndarray, t_capture_ns: int) -> None:
        """Fold in one measured pose ``[K, dims + 1]`` (x, y, likelihood in frame pixels; or
        x, y, z, weight in 3D).

        ``t_capture_ns`` must not go backwards; a repeated timestamp is a measurement with no
        time step.
        """
        if pose.shape != (self.num_keypoints, self.dims + 1):
            raise ValueError(
                f"pose must have shape [{self.num_keypoints}, {self.dims + 1}] "
                f"({'x, y, z, weight' if self.dims == 3 else 'x, y, likelihood'}), "
                f"got {pose.shape}"
            )
        if self._t_ns is None:
            dt = 0.0
        else:
            if t_capture_ns < self._t_ns:
                raise ValueError(
                    f"t_capture_ns went backwards ({t_capture_ns} < {self._t_ns}); "
                    "call reset() when the source restarts"
                )
            dt = (t_capture_ns - self._t_ns) * 1e-9
        self._t_ns = int(t_capture_ns)
        kalman_update(
            self._x,
            self._P,
            pose,
            dt,
            self.process_noise,
            self.measurement_noise_px,
            self.gate,
            self.min_likelihood,
            self.reinit_after,
            self.max_coast_s,
            self._init_var,
            self._initialised,
            self._coast_s,
            self._consecutive_rejects,
            self.rejected,
            self._last_likelihood,
        )

    def predict(self, t_target_ns: int, out: np.ndarray | None = None) -> np.ndarray:
        """The pose ``[K, dims + 1]`` (the coordinates, then the confidence) expected at
        ``t_target_ns``.

        Keypoints never measured are NaN with confidence 0; keypoints unmeasured for longer than
        ``max_coast_s`` (at the target time) have confidence 0. Pass a preallocated float64
        ``out`` on the hot path.
        """
        if out is None:
            out = np.empty((self.num_keypoints, self.dims + 1))
        if self._t_ns is None:
            out[:, : self.dims] = np.nan
            out[:, self.dims] = 0.0
            return out
        dt = (t_target_ns - self._t_ns) * 1e-9
        kalman_predict(
            self._x,
            dt,
            self._initialised,
            self._coast_s,
            self._last_likelihood,
            self.max_coast_s,
            out,
        )
        return out

    def covariance(self) -> np.ndarray:
        """A copy of the per-coordinate covariances ``[K, dims, n, n]`` (diagnostics, tests)."""
        return self._P.copy()


@dataclass
class LeadTime:
    """How far ahead to predict: a fixed lead, or the running median of measured latency.

    Parameters
    ----------
    fixed_ms
        A fixed lead in milliseconds, or ``None`` to follow :meth:`observe`.
    window
        Number of recent latencies the running median is taken over. The median is recomputed
        at most every ``max(1, window // 10)`` observations (it barely moves in between).
    initial_ms
        Lead used before the first observation when not fixed.
    """

    fixed_ms: float | None = None
    window: int = 101
    initial_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.fixed_ms is not None and not (self.fixed_ms >= 0 and math.isfinite(self.fixed_ms)):
            raise ValueError(f"fixed_ms must be a non-negative number or None, got {self.fixed_ms}")
        if self.window < 1:
            raise ValueError(f"window must be at least 1, got {self.window}")
        self._samples = np.zeros(self.window, dtype=np.int64)
        self._count = 0
        self._refresh_every = max(1, self.window // 10)
        self._median_ns: int | None = None

    def observe(self, latency_ns: int) -> None:
        """Record one frame's measured latency (capture → action), in nanoseconds."""
        if self.fixed_ms is not None:
            return
        self._samples[self._count % self.window] = latency_ns
        self._count += 1
        if self._count % self._refresh_every == 0:
            self._median_ns = None

    @property
    def lead_ns(self) -> int:
        """The lead to add to ``t_capture_ns``, in nanoseconds."""
        if self.fixed_ms is not None:
            return round(self.fixed_ms * 1e6)
        if self._count == 0:
            return round(self.initial_ms * 1e6)
        if self._median_ns is None:
            self._median_ns = int(np.median(self._samples[: min(self._count, self.window)]))
        return self._median_ns
