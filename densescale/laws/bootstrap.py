"""Bootstrap confidence intervals for the constants of a scaling law.

Modes (``bootstrap_mode``):

* ``"resample"``: resample the points with replacement (Efron's pairs bootstrap). A resample is
  a vector of integer counts ``w`` [n], so the refit is a weighted least-squares problem on the
  original points; resamples with fewer distinct sizes than constants are redrawn.
* ``"parametric"``: ``y* = f(x; theta_hat) + sigma * eps`` with the per-point standard errors
  ``sigma`` (e.g. of contrastive entropy over the evaluation's negative draws).
* ``"both"``: resample points and perturb the observed ``y`` by ``sigma * eps``.

Intervals are percentile intervals of the refitted constants.

For ``method="lsq"`` all refits run at once in a batched, bound-projected Levenberg-Marquardt
solver warm-started at the full-data solution (numpy, [B, n, p] Jacobians); the few that do not
converge are refitted one by one with ``scipy.optimize.least_squares``. ``method="huber"``
refits one by one with L-BFGS-B from the full-data solution.
"""

from __future__ import annotations

import warnings

import numpy as np


def _draw(est, LX, y, sigma, theta_hat, rng) -> tuple[np.ndarray, np.ndarray]:
    """Counts W [B, n] and responses Y [B, n] for ``est.bootstrap`` resamples."""
    n_boot, n = int(est.bootstrap), len(y)
    W = np.ones((n_boot, n))
    Y = np.tile(y, (n_boot, 1))
    if est.bootstrap_mode in ("resample", "both"):
        _, groups = np.unique(LX, axis=0, return_inverse=True)
        onehot = np.eye(groups.max() + 1)[groups.ravel()]                  # [n, G]
        W = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
        for _ in range(1000):
            bad = np.flatnonzero(((W @ onehot) > 0).sum(axis=1) < est.n_params)
            if bad.size == 0:
                break
            W[bad] = rng.multinomial(n, np.full(n, 1.0 / n), size=bad.size)
    if est.bootstrap_mode == "parametric":
        Y = est._model(theta_hat, LX)[0] + sigma * rng.standard_normal((n_boot, n))
    elif est.bootstrap_mode == "both":
        Y = y + sigma * rng.standard_normal((n_boot, n))
    return W, np.maximum(Y, 1e-9 * float(np.max(y)))


def batched_lm(est, theta0: np.ndarray, LX: np.ndarray, Y: np.ndarray, W: np.ndarray,
               wres: np.ndarray, max_iter: int = 200,
               tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares for B problems at once (same X, own Y and counts W).

    Minimises ``sum_i W[b,i] * (wres[i] * (f(x_i; theta_b) - Y[b,i]))^2`` for every b with
    Levenberg-Marquardt (Marquardt diagonal scaling), steps projected onto the box bounds.

    Returns:
        theta [B, p] and a boolean mask ``converged`` [B].
    """
    n_boot, p = Y.shape[0], theta0.size
    lo1, hi1 = est._bounds(1.0)
    lo = np.tile(lo1, (n_boot, 1))
    hi = np.tile(hi1, (n_boot, 1))
    hi[:, -1] = np.where(W > 0, Y, np.inf).min(axis=1)          # delta < min y of the resample
    sw = np.sqrt(W) * wres                                        # [B, n]
    theta = np.clip(np.tile(theta0, (n_boot, 1)), lo, hi)        # [B, p]
    with np.errstate(over="ignore", invalid="ignore"):
        pred, J = est._model(theta, LX)                           # [B, n], [B, n, p]
    r = sw * (pred - Y)
    cost = np.sum(r**2, axis=1)
    lam = np.full(n_boot, 1e-3)
    done = np.zeros(n_boot, dtype=bool)
    eye = np.eye(p)
    for _ in range(max_iter):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        Ja = sw[act, :, None] * J[act]                            # [b, n, p]
        g = np.einsum("bnp,bn->bp", Ja, r[act])
        H = np.einsum("bnp,bnq->bpq", Ja, Ja)
        diag = np.maximum(np.diagonal(H, axis1=1, axis2=2), 1e-12)
        A = H + lam[act, None, None] * eye * diag[:, None, :]
        # active set: a constant on a bound whose descent direction points outside stays fixed
        th_a = theta[act]
        blocked = (((th_a <= lo[act] + 1e-12) & (g > 0))
                   | ((th_a >= hi[act] - 1e-12) & (g < 0)))                # [b, p]
        if blocked.any():
            free = ~blocked
            A = A * free[:, :, None] * free[:, None, :] + eye * blocked[:, None, :]
            g = np.where(blocked, 0.0, g)
        try:
            step = -np.linalg.solve(A, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -g / diag
        new = np.clip(theta[act] + step, lo[act], hi[act])
        with np.errstate(over="ignore", invalid="ignore"):
            pred_n, J_n = est._model(new, LX)
        r_n = sw[act] * (pred_n - Y[act])
        c_n = np.sum(r_n**2, axis=1)
        c_n = np.where(np.isfinite(c_n), c_n, np.inf)
        better = c_n < cost[act]
        rel = (cost[act] - c_n) / np.maximum(cost[act], 1e-300)
        moved = np.max(np.abs(new - theta[act]) / (np.abs(theta[act]) + 1e-8), axis=1)
        ia = act[better]
        theta[ia], r[ia], J[ia], cost[ia] = new[better], r_n[better], J_n[better], c_n[better]
        lam[ia] = np.maximum(lam[ia] / 3, 1e-12)
        lam[act[~better]] *= 4
        conv = (better & ((rel < tol) | (moved < 1e-10))) | (lam[act] > 1e12)
        done[act[conv]] = True
    return theta, done


def bootstrap_constants(est, LX: np.ndarray, y: np.ndarray, sigma: np.ndarray | None,
                        wres: np.ndarray, theta_hat: np.ndarray) -> tuple[np.ndarray, int]:
    """Refit ``est.bootstrap`` resamples; returns natural constants [B_ok, p] and #failed."""
    rng = np.random.default_rng(est.seed)
    W, Y = _draw(est, LX, y, sigma, theta_hat, rng)
    n_boot = W.shape[0]
    if est.method == "lsq":
        theta, ok = batched_lm(est, theta_hat, LX, Y, W, wres)
        todo = np.flatnonzero(~ok)
    else:
        theta, ok = np.tile(theta_hat, (n_boot, 1)), np.zeros(n_boot, dtype=bool)
        todo = np.arange(n_boot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in todo:
            try:
                th, _, conv, _, _ = est._fit_theta(LX, Y[b], wres, W[b], theta0=theta_hat)
            except Exception:                                      # noqa: BLE001 - dropped draw
                continue
            theta[b], ok[b] = th, conv
    consts = est._to_constants(theta[ok], est.center_)
    return consts, int(n_boot - ok.sum())


def bootstrap_intervals(est, LX: np.ndarray, y: np.ndarray, sigma: np.ndarray | None,
                        wres: np.ndarray, theta_hat: np.ndarray) -> None:
    """Set ``ci_`` (percentile intervals at ``est.level``), ``bootstrap_draws_`` and
    ``bootstrap_failed_`` on a just-fitted ``est``; warn when > 5% of the refits failed."""
    from densescale.laws.base import ConvergenceWarning

    est.ci_ = {}
    est.bootstrap_draws_ = np.empty((0, est.n_params))
    est.bootstrap_failed_ = 0
    if not est.bootstrap:
        return
    draws, failed = bootstrap_constants(est, LX, y, sigma, wres, theta_hat)
    est.bootstrap_draws_, est.bootstrap_failed_ = draws, failed
    q = 100 * np.array([(1 - est.level) / 2, (1 + est.level) / 2])
    for j, name in enumerate(est.constants):
        lo_q, hi_q = np.percentile(draws[:, j], q)
        est.ci_[name] = (float(lo_q), float(hi_q))
    if failed > 0.05 * est.bootstrap:
        est._warn(f"{failed} of {est.bootstrap} bootstrap refits did not converge and were "
                  "dropped; intervals may be too narrow", ConvergenceWarning, depth=1)
