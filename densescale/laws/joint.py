"""Joint model-and-data-size law (Fang et al., SIGIR 2024, Eq. 9; Kaplan et al. 2020 form).

    L(N, D) = [ (A / N)^(alpha / beta) + B / D ]^beta + delta

Example:
    >>> law = JointLaw(bootstrap=1000).fit(np.c_[N, D], ce)     # X [n, 2] = (N, D)
    >>> law.to_dict()   # {"A":..., "B":..., "alpha":..., "beta":..., "delta":..., "n_min":...}

Internal parameters ``theta = (a, b, alpha, beta, delta)`` with ``a = log A - mean(log N)`` and
``b = log B - mean(log D)``; evaluated as ``exp(beta * logaddexp(r (a - ln), b - ld)) + delta``
with ``r = alpha / beta`` and centred log sizes ``ln``, ``ld`` (no overflow, O(1) scales).
"""

from __future__ import annotations

import numpy as np

from densescale.laws.base import BaseLaw

_EXP_MAX = 5.0


class JointLaw(BaseLaw):
    """Joint law ``L(N, D)``; ``X`` has two columns (N, D).

    Learned attributes: ``A_, B_, alpha_, beta_, delta_, r2_, rmse_, residuals_, ci_,
    converged_, warnings_, n_min_, n_max_, d_min_, d_max_, bootstrap_draws_``.
    """

    law = "joint"
    features = ("n", "d")
    constants = ("A", "B", "alpha", "beta", "delta")
    _theta_names = ("log A (centred)", "log B (centred)", "alpha", "beta", "delta")

    def _model(self, theta, LX):
        a, b = theta[..., 0:1], theta[..., 1:2]
        al, be, de = theta[..., 2:3], theta[..., 3:4], theta[..., 4:5]
        ln, ld = LX[:, 0], LX[:, 1]                                # [n]
        r = al / be
        du = a - ln                                                # [..., n]
        u = r * du
        v = b - ld
        s = np.logaddexp(u, v)
        w1 = np.exp(u - s)
        w2 = np.exp(v - s)
        t = np.exp(be * s)                                         # [..., n]
        jac = np.stack([t * al * w1, t * be * w2, t * w1 * du, t * (s - r * w1 * du),
                        np.ones_like(t)], axis=-1)                 # [..., n, 5]
        return t + de, jac

    def _bounds(self, y_min):
        lo = np.array([-np.inf, -np.inf, 1e-3, 1e-2, 0.0])
        hi = np.array([np.inf, np.inf, _EXP_MAX, _EXP_MAX, y_min])
        return lo, hi

    def _starts(self, LX, y):
        ln, ld = LX[:, 0], LX[:, 1]
        rich_d = ld >= ld.max() - 1e-9          # data-rich rows: L - delta ~ (A/N)^alpha
        rich_n = ln >= ln.max() - 1e-9          # model-rich rows: L - delta ~ (B/D)^beta
        al, be = np.geomspace(0.1, 2.0, 6), np.geomspace(0.2, 3.0, 6)
        de = np.array([0.0, 0.3, 0.6, 0.85]) * y.min()
        logf = np.log([1.0, 0.5, 0.2])          # share of L - delta given to the other term
        red = np.log(np.maximum(y[None, :] - de[:, None], 1e-12))              # [4, n]

        def level(lx, rich, slope):             # [slopes, deltas, shares]
            z = red[None, :, None, rich] + logf[None, None, :, None]
            return np.median(lx[rich] + z / slope[:, None, None, None], axis=-1)

        a, b = level(ln, rich_d, al), level(ld, rich_n, be)                      # [6, 4, 3]
        ia, ib, f, ja, jb = np.meshgrid(np.arange(6), np.arange(6), np.arange(4), np.arange(3),
                                        np.arange(3), indexing="ij")
        grid = np.stack([a[ia, f, ja], b[ib, f, jb], al[ia], be[ib], de[f]], axis=-1)
        return grid.reshape(-1, 5)                                               # [1296, 5]

    def _to_constants(self, theta, center):
        theta = np.asarray(theta, dtype=float)
        return np.stack([np.exp(theta[..., 0] + center[0]), np.exp(theta[..., 1] + center[1]),
                         theta[..., 2], theta[..., 3], theta[..., 4]], axis=-1)

    @staticmethod
    def _predict_constants(c, X):
        ln, ld = np.log(X[:, 0]), np.log(X[:, 1])
        s = np.logaddexp(c["alpha"] / c["beta"] * (np.log(c["A"]) - ln), np.log(c["B"]) - ld)
        return np.exp(c["beta"] * s) + c["delta"]

    def predict_nd(self, n, d) -> np.ndarray:
        """Broadcasting convenience: predicted metric at sizes ``n`` and ``d`` (any shapes)."""
        n, d = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(d, dtype=float))
        return self.predict(np.c_[n.ravel(), d.ravel()]).reshape(n.shape)
