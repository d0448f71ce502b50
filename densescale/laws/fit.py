"""Single-variable scaling laws: model size L(N) and data size L(D).

Fang et al., "Scaling Laws For Dense Retrieval", SIGIR 2024, Eq. 7-8:

    L(N) = (A / N)^alpha + delta_N        (N = non-embedding parameters)
    L(D) = (B / D)^beta  + delta_D        (D = annotated query-positive pairs)

Example:
    >>> law = ModelSizeLaw(bootstrap=1000).fit(N, ce)      # N [n], ce [n]
    >>> law.A_, law.alpha_, law.delta_, law.r2_, law.ci_["alpha"]
    >>> law.predict([1e9])

Internally ``theta = (c, slope, delta)`` with ``(K/x)^slope = exp(c - slope * (log x - m))``,
``m`` the mean of log x; hence ``log K = c / slope + m``. Starting points: for a grid of
``delta0`` in [0, min y) the log-log linear fit of ``y - delta0`` (closed form).
"""

from __future__ import annotations

import numpy as np

from densescale.laws.base import BaseLaw

_DELTA_FRACS = np.array([0.0, 0.2, 0.4, 0.6, 0.75, 0.85, 0.92, 0.96, 0.99])
_SLOPE_MAX = 5.0


class _PowerLaw(BaseLaw):
    """(K / x)^slope + delta with K, slope, delta named by the subclass."""

    def _model(self, theta, LX):
        c, s, d = theta[..., 0:1], theta[..., 1:2], theta[..., 2:3]
        lx = LX[:, 0]                                              # [n]
        t = np.exp(c - s * lx)                                     # [..., n]
        jac = np.stack([t, -t * lx, np.ones_like(t)], axis=-1)     # [..., n, 3]
        return t + d, jac

    def _bounds(self, y_min):
        return np.array([-np.inf, 1e-4, 0.0]), np.array([np.inf, _SLOPE_MAX, y_min])

    def _starts(self, LX, y):
        lx = LX[:, 0]
        deltas = _DELTA_FRACS * y.min()                            # [m]
        z = np.log(y[None, :] - deltas[:, None] * (1 - 1e-9))      # [m, n]
        xc = lx - lx.mean()
        slope = -(z @ xc) / max(float(xc @ xc), 1e-12)             # [m]
        slope = np.clip(slope, 1e-3, _SLOPE_MAX)
        c = z.mean(axis=1) + slope * lx.mean()                     # [m]
        grid = np.stack([c, slope, deltas], axis=1)
        # a few slope-only starts, in case the data are not monotone
        extra = [[np.log(np.median(y) * f), s, 0.0] for s in (0.1, 0.5, 1.5) for f in (0.5,)]
        return np.vstack([grid, np.array(extra)])

    def _to_constants(self, theta, center):
        theta = np.asarray(theta, dtype=float)
        c, s, d = theta[..., 0], theta[..., 1], theta[..., 2]
        return np.stack([np.exp(c / s + center[0]), s, d], axis=-1)

    @classmethod
    def _predict_constants(cls, c, X):
        k, s, d = (c[name] for name in cls.constants)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return np.exp(s * (np.log(k) - np.log(X[:, 0]))) + d


class ModelSizeLaw(_PowerLaw):
    """Model-size law ``L(N) = (A/N)^alpha + delta_N`` (paper Eq. 7).

    Learned attributes: ``A_, alpha_, delta_, r2_, rmse_, residuals_, ci_, converged_,
    warnings_, n_min_, n_max_, bootstrap_draws_``.
    """

    law = "model"
    features = ("n",)
    constants = ("A", "alpha", "delta")
    _theta_names = ("log-scale term", "alpha", "delta")


class DataSizeLaw(_PowerLaw):
    """Data-size law ``L(D) = (B/D)^beta + delta_D`` (paper Eq. 8).

    Learned attributes: ``B_, beta_, delta_, r2_, rmse_, residuals_, ci_, converged_,
    warnings_, d_min_, d_max_, bootstrap_draws_``.
    """

    law = "data"
    features = ("d",)
    constants = ("B", "beta", "delta")
    _theta_names = ("log-scale term", "beta", "delta")
