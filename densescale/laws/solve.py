"""Multi-start optimisation of a law's internal parameters ``theta`` (mixed into BaseLaw).

* ``"lsq"``: weighted least squares on the raw metric, ``scipy.optimize.least_squares``
  (trust-region reflective, analytic Jacobian);
* ``"huber"``: Huber loss on log residuals with threshold ``huber_delta_``, L-BFGS-B.

``_fit_theta`` scores a grid of starts (the law's ``_starts``), runs the local optimiser from the
best ``n_starts`` of them (or from one warm start) and keeps the lowest cost.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares, minimize

from densescale.errors import DenseScaleError


class Solver:
    """Optimiser methods shared by every law; the law supplies ``_model`` and ``_bounds``."""

    def _weights(self, y: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
        """Per-point residual scale: 1/sigma if weighted, else 1/max|y| (keeps cost O(1))."""
        if self.weight_by_sigma and sigma is not None:
            return 1.0 / sigma
        return np.full_like(y, 1.0 / np.max(np.abs(y)))

    def _objective_huber(self, theta, LX, y, w):
        """Huber(log pred - log y) / delta^2, weighted mean, and its gradient."""
        pred, jac = self._model(theta, LX)
        if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
            return np.inf, np.zeros_like(theta)
        r = np.log(pred) - np.log(y)
        h = self.huber_delta_
        a = np.abs(r)
        loss = np.where(a <= h, 0.5 * r**2, h * (a - 0.5 * h)) / h**2
        dloss = np.clip(r, -h, h) / h**2
        f = float(np.sum(w * loss) / np.sum(w))
        g = ((w * dloss / pred) @ jac) / np.sum(w)
        return f, g

    def _solve_one(self, theta0, LX, y, wres, wcount, lo, hi, method):
        """One local optimisation from theta0 -> (theta, cost, converged)."""
        if method == "lsq":
            sw = np.sqrt(wcount) * wres

            def fun(th):
                return sw * (self._model(th, LX)[0] - y)

            def jac(th):
                return sw[:, None] * self._model(th, LX)[1]

            with np.errstate(over="ignore", invalid="ignore"):
                res = least_squares(fun, theta0, jac=jac, bounds=(lo, hi), method="trf",
                                    x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12,
                                    max_nfev=2000)
            return res.x, float(2 * res.cost), bool(res.status > 0)
        with np.errstate(over="ignore", invalid="ignore"):
            res = minimize(self._objective_huber, theta0, args=(LX, y, wcount), jac=True,
                           method="L-BFGS-B", bounds=list(zip(lo, hi, strict=True)),
                           options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10})
        return res.x, float(res.fun), bool(res.success or res.status == 2)

    def _grid_cost(self, cands, LX, y, wres, method):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if method == "lsq":
                pred = self._model(cands, LX)[0]                     # [m, n]
                cost = np.sum(((pred - y) * wres) ** 2, axis=1)
            else:
                cost = np.array([self._objective_huber(c, LX, y, np.ones_like(y))[0]
                                 for c in cands])
        return np.where(np.isfinite(cost), cost, np.inf)

    def _fit_theta(self, LX, y, wres, wcount=None, theta0=None, method=None, n_starts=None):
        """Multi-start fit (or a single warm start when theta0 is given)."""
        method = method or self.method
        n_starts = self.n_starts if n_starts is None else n_starts
        wcount = np.ones_like(y) if wcount is None else wcount
        lo, hi = self._bounds(float(np.min(y[wcount > 0])))
        if theta0 is not None:
            starts = [np.clip(theta0, lo, hi)]
        else:
            cands = np.clip(self._starts(LX, y), lo, hi)
            cost = self._grid_cost(cands, LX, y, wres, method)
            order = np.argsort(cost)[: max(1, n_starts)]
            starts = [cands[i] for i in order if np.isfinite(cost[i])] or [cands[0]]
        best = None
        for s in starts:
            th, cost, ok = self._solve_one(s, LX, y, wres, wcount, lo, hi, method)
            if np.all(np.isfinite(th)) and np.isfinite(cost) and (best is None or cost < best[1]):
                best = (th, cost, ok)
        if best is None:
            raise DenseScaleError(f"{type(self).__name__}: the optimiser failed from every start")
        return best[0], best[1], best[2], lo, hi

