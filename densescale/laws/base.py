"""Shared machinery of the scaling-law estimators (scikit-learn conventions).

Every law is fitted in a well-conditioned internal parametrisation ``theta`` over *centred log
features* (``log x - mean(log x)``), so that constants spanning 1e-2 .. 1e7 (the paper's own A and
B) are all O(1) numbers for the optimiser. Subclasses describe the law with five hooks:

* ``_model(theta, LX) -> (pred, jac)``: vectorised over leading batch dims of ``theta``
  (``theta`` [..., p], ``LX`` [n, k] -> ``pred`` [..., n], ``jac`` [..., n, p]);
* ``_starts(LX, y) -> candidates`` [m, p]: a grid of starting points;
* ``_bounds(y_min) -> (lo, hi)``; ``_to_constants(theta, center)`` and ``_predict_constants``.

Two fitting methods:

* ``"lsq"`` (the default, the paper's): least squares on the raw metric with
  ``scipy.optimize.least_squares`` (trust-region reflective, analytic Jacobian) from the best few
  grid starts; keep the best.
* ``"huber"`` (Hoffmann et al. 2022, "Chinchilla", approach 3): Huber loss on log residuals
  ``log pred - log y``, L-BFGS-B from the best grid starts; keep the best. The Huber threshold
  is chosen from the data unless given: 1.345 robust standard deviations (1.4826 * MAD) of the
  least-squares fit's log residuals (``diagnostics.huber_scale``).

Every fit reports R² on the raw and the log scale, leave-one-out predictions and a leverage
warning when one point carries R² (see ``densescale.laws.diagnostics``).
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from typing import Any

import numpy as np

from densescale.errors import DataError, DenseScaleError
from densescale.laws import diagnostics
from densescale.laws.frame import plain
from densescale.laws.solve import Solver


class LawFitWarning(UserWarning):
    """A fit finished but its result should not be trusted blindly."""


class ConvergenceWarning(LawFitWarning):
    """The optimiser (or too many bootstrap refits) did not converge."""


class BoundaryWarning(LawFitWarning):
    """A fitted constant sits on the boundary of its allowed range (not identified)."""


class PoorFitWarning(LawFitWarning):
    """The law explains the data worse than a constant (R^2 < 0)."""


class LeverageWarning(LawFitWarning):
    """One point carries R²: without it the same curve explains the rest far worse."""


class NotFittedError(DenseScaleError, AttributeError):
    """``predict``/``to_dict`` called before ``fit``."""


METHODS = ("lsq", "huber")


def _one_blas_thread():
    """Tiny problems: multi-threaded BLAS only adds overhead (10-80x slower L-BFGS-B on a busy
    machine), so fits run with one BLAS thread when threadpoolctl is available."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                                             # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


BOOTSTRAP_MODES = ("resample", "parametric", "both")


class BaseLaw(Solver):
    """Base class; see ModelSizeLaw, DataSizeLaw, JointLaw."""

    law: str = ""                      # "model" | "data" | "joint"
    features: tuple[str, ...] = ()     # column names of X: ("n",), ("d",), ("n", "d")
    constants: tuple[str, ...] = ()    # natural constants, e.g. ("A", "alpha", "delta")

    def __init__(self, *, method: str = "lsq", bootstrap: int = 0,
                 bootstrap_mode: str = "resample", level: float = 0.95, seed: int = 0,
                 weight_by_sigma: bool = False, huber_delta: float | None = None,
                 n_starts: int = 5, loo: bool = True):
        self.method = method                    # "lsq" (paper) | "huber" (Chinchilla approach 3)
        self.bootstrap = bootstrap              # number of bootstrap refits; 0 = no CIs
        self.bootstrap_mode = bootstrap_mode    # resample points | parametric (sigma) | both
        self.level = level                      # confidence level of the percentile intervals
        self.seed = seed                        # fixes the bootstrap draws
        self.weight_by_sigma = weight_by_sigma  # lsq residuals divided by sigma (curve_fit style)
        self.huber_delta = huber_delta          # Huber threshold on log residuals; None: data
        self.n_starts = n_starts                # optimiser runs from the best grid starts
        self.loo = loo                          # leave-one-out predictions (n extra fits)

    # ------------------------------------------------------------------ sklearn plumbing
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params: Any) -> BaseLaw:
        for k, v in params.items():
            if k not in self._param_names():
                raise DenseScaleError(f"{type(self).__name__} has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def n_params(self) -> int:
        return len(self.constants)

    # ------------------------------------------------------------------ hooks
    def _model(self, theta: np.ndarray, LX: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _starts(self, LX: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _bounds(self, y_min: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _to_constants(self, theta: np.ndarray, center: np.ndarray) -> np.ndarray:
        """theta [..., p] -> natural constants [..., p] in the order of ``constants``."""
        raise NotImplementedError

    @staticmethod
    def _predict_constants(c: dict[str, float], X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ validation
    def _check_X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        k = len(self.features)
        if X.ndim == 1 and k == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != k:
            raise DenseScaleError(f"{type(self).__name__} expects X of shape (n, {k}) with "
                                  f"columns {list(self.features)}, got shape {X.shape}")
        for j, name in enumerate(self.features):
            bad = np.flatnonzero(~(np.isfinite(X[:, j]) & (X[:, j] > 0)))
            if bad.size:
                i = int(bad[0])
                raise DataError(f"row {i}: {name} must be a positive number, "
                                f"got {plain(X[i, j])!r}")
        return X

    def _check_Xy(self, X: Any, y: Any, sigma: Any) -> tuple[np.ndarray, ...]:
        X = self._check_X(X)
        y = np.asarray(y, dtype=float).ravel()
        if y.shape[0] != X.shape[0]:
            raise DenseScaleError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        bad = np.flatnonzero(~(np.isfinite(y) & (y > 0)))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"row {i}: the metric must be a positive number (a loss such as "
                            f"contrastive entropy), got {plain(y[i])!r}")
        need = self.n_params + 1
        n_distinct = len(np.unique(X, axis=0))
        if n_distinct < need:
            raise DenseScaleError(
                f"{type(self).__name__} has {self.n_params} constants and needs at least {need} "
                f"points with distinct {'/'.join(self.features)}; got {n_distinct}")
        if sigma is not None:
            sigma = np.asarray(sigma, dtype=float).ravel()
            if sigma.shape != y.shape:
                raise DenseScaleError(f"sigma has {sigma.size} values but y has {y.size}")
            bad = np.flatnonzero(~(np.isfinite(sigma) & (sigma > 0)))
            if bad.size:
                i = int(bad[0])
                raise DataError(f"row {i}: standard error must be positive, "
                                f"got {plain(sigma[i])!r}")
        if self.method not in METHODS:
            raise DenseScaleError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.bootstrap_mode not in BOOTSTRAP_MODES:
            raise DenseScaleError(f"bootstrap_mode must be one of {BOOTSTRAP_MODES}, "
                                  f"got {self.bootstrap_mode!r}")
        if self.bootstrap and self.bootstrap_mode != "resample" and sigma is None:
            raise DenseScaleError(f"bootstrap_mode={self.bootstrap_mode!r} needs per-point "
                                  "standard errors (sigma / contrastive_entropy_stderr)")
        if not 0 < self.level < 1:
            raise DenseScaleError(f"level must be in (0, 1), got {self.level!r}")
        return X, y, sigma

    # ------------------------------------------------------------------ public API
    def fit(self, X: Any, y: Any, sigma: Any = None) -> BaseLaw:
        """Fit the law to points ``X`` (shape (n, k), columns ``features``) and metric ``y``.

        Args:
            X: positive sizes, shape (n,) or (n, 1) for single laws, (n, 2) [N, D] for joint.
            y: metric values (lower is better, e.g. contrastive entropy), shape (n,).
            sigma: optional per-point standard errors of y (parametric bootstrap / weights).

        Returns:
            self, with learned attributes ending in ``_``.
        """
        with _one_blas_thread():
            return self._fit(X, y, sigma)

    def _fit(self, X: Any, y: Any, sigma: Any) -> BaseLaw:
        from densescale.laws.bootstrap import bootstrap_intervals

        X, y, sigma = self._check_Xy(X, y, sigma)
        LX = np.log(X)
        center = LX.mean(axis=0)
        LXc = LX - center
        wres = self._weights(y, sigma)
        self.huber_delta_ = self.huber_delta
        if self.method == "huber" and self.huber_delta is None:   # scale from the LS fit
            th_ls = self._fit_theta(LXc, y, wres, method="lsq")[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                r_log = np.log(self._model(th_ls, LXc)[0]) - np.log(y)
            self.huber_delta_ = diagnostics.huber_scale(r_log[np.isfinite(r_log)])
        theta, cost, ok, lo, hi = self._fit_theta(LXc, y, wres)
        consts = self._to_constants(theta, center)
        bad = [n for n, v in zip(self.constants, consts, strict=True) if not np.isfinite(v)]
        if bad:
            raise DenseScaleError(
                f"{type(self).__name__}: degenerate fit, constant(s) {', '.join(bad)} not finite: "
                "these points do not identify the law (with method='lsq' one very large value "
                "can dominate; check whether that point learned, or add points)")
        for name, v in zip(self.constants, consts, strict=True):
            setattr(self, f"{name}_", float(v))
        self.theta_, self.center_, self.n_points_ = theta, center, int(len(y))
        self.X_, self.y_ = X, y
        for j, name in enumerate(self.features):
            setattr(self, f"{name}_min_", float(X[:, j].min()))
            setattr(self, f"{name}_max_", float(X[:, j].max()))
        pred = self._predict_constants(dict(zip(self.constants, consts, strict=True)), X)
        self.residuals_ = y - pred
        self.r2_ = diagnostics.r2(y, pred)
        self.r2_log_ = diagnostics.r2_log(y, pred)
        self.rmse_ = float(np.sqrt(np.mean(self.residuals_**2)))
        self.leverage_ = diagnostics.leverage(y, pred)
        self.converged_ = ok
        self.warnings_: list[str] = []
        if not ok:
            self._warn("the optimiser did not converge; constants may be unreliable",
                       ConvergenceWarning)
        self._check_bounds(theta, lo, hi)
        if self.r2_ < 0:
            self._warn(f"R^2 = {self.r2_:.3f} < 0: the law fits worse than a constant",
                       PoorFitWarning)
        labels = [", ".join(f"{k}={v:.4g}" for k, v in zip(self.features, x, strict=True))
                  for x in X]
        for msg in diagnostics.leverage_messages(self.leverage_, self.r2_, labels):
            self._warn(msg, LeverageWarning)
        self.loo_ = (diagnostics.loo_predictions(self, LXc, y, wres, theta) if self.loo
                     else np.full(len(y), np.nan))
        bootstrap_intervals(self, LXc, y, sigma, wres, theta)
        return self

    def _warn(self, msg: str, category: type[Warning], depth: int = 0) -> None:
        msg = f"{type(self).__name__}: {msg}"
        self.warnings_.append(msg)
        warnings.warn(msg, category, stacklevel=4 + depth)   # _warn < _fit < fit < caller

    def _check_bounds(self, theta, lo, hi) -> None:
        names = self._theta_names
        for j, name in enumerate(names):
            span = max(1.0, abs(hi[j] - lo[j])) if np.isfinite(hi[j] - lo[j]) else 1.0
            tol = 1e-6 * span
            if np.isfinite(lo[j]) and theta[j] - lo[j] <= tol:
                self._warn(f"{name} is at its lower bound {lo[j]:.4g}: it is not identified by "
                           "these points", BoundaryWarning, depth=1)
            elif np.isfinite(hi[j]) and hi[j] - theta[j] <= tol:
                self._warn(f"{name} is at its upper bound {hi[j]:.4g}: it is not identified by "
                           "these points", BoundaryWarning, depth=1)

    _theta_names: tuple[str, ...] = ()

    def _check_fitted(self) -> None:
        if not hasattr(self, "r2_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    def constants_dict(self) -> dict[str, float]:
        """Fitted natural constants, e.g. {"A": 4.5e4, "alpha": 0.46, "delta": 0.02}."""
        self._check_fitted()
        return {name: float(getattr(self, f"{name}_")) for name in self.constants}

    def predict(self, X: Any) -> np.ndarray:
        """Predicted metric at sizes X (shape as in ``fit``) -> array of shape (n,)."""
        self._check_fitted()
        return self._predict_constants(self.constants_dict(), self._check_X(X))

    def score(self, X: Any, y: Any) -> float:
        """R^2 of the prediction on (X, y), on the raw metric."""
        y = np.asarray(y, dtype=float).ravel()
        res = y - self.predict(X)
        return 1.0 - float(np.sum(res**2) / np.sum((y - y.mean()) ** 2))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: constants at top level (A, alpha, ...), fitted ranges
        (n_min/n_max/d_min/d_max), method (and the Huber scale used), r2 (raw), r2_log (log y),
        rmse, residuals, leave-one-out errors, leverage, ci, warnings and the params."""
        self._check_fitted()
        out: dict[str, Any] = {"law": self.law, **self.constants_dict()}
        for name in self.features:
            out[f"{name}_min"] = getattr(self, f"{name}_min_")
            out[f"{name}_max"] = getattr(self, f"{name}_max_")
        out.update({
            "method": self.method, "huber_delta": self.huber_delta_ if self.method == "huber"
            else None,
            "r2": self.r2_, "r2_log": self.r2_log_, "rmse": self.rmse_,
            "n_points": self.n_points_, "converged": self.converged_,
            "ci": {k: [lo, hi] for k, (lo, hi) in self.ci_.items()},
            "ci_level": self.level if self.ci_ else None,
            "bootstrap_failed": self.bootstrap_failed_,
            "residuals": [float(r) for r in self.residuals_],
            "loo": (diagnostics.loo_summary(self.X_, self.y_, self.loo_, self.features)
                    if len(self.X_) else None),
            "leverage": self.leverage_,
            "warnings": list(self.warnings_),
            "params": self.get_params(),
        })
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaseLaw:
        """Rebuild a fitted estimator from ``to_dict()`` output (predict works; no bootstrap
        draws, no per-point arrays)."""
        missing = [k for k in cls.constants if k not in d]
        if missing:
            raise DenseScaleError(f"{cls.__name__}.from_dict: missing key(s) {missing}")
        params = {k: v for k, v in (d.get("params") or {}).items() if k in cls._param_names()}
        est = cls(**params)
        for name in cls.constants:
            setattr(est, f"{name}_", float(d[name]))
        for name in cls.features:
            for s in ("min", "max"):
                v = d.get(f"{name}_{s}")
                setattr(est, f"{name}_{s}_", float(v) if v is not None else float("nan"))
        nan = float("nan")
        est.r2_, est.r2_log_ = float(d.get("r2", nan)), float(d.get("r2_log") or nan)
        est.rmse_ = float(d.get("rmse", nan))
        est.huber_delta_ = d.get("huber_delta", est.huber_delta)
        est.n_points_ = int(d.get("n_points", 0))
        est.converged_ = bool(d.get("converged", True))
        est.ci_ = {k: (float(v[0]), float(v[1])) for k, v in (d.get("ci") or {}).items()}
        est.residuals_ = np.asarray(d.get("residuals", []), dtype=float)
        est.X_, est.y_ = np.empty((0, len(cls.features))), np.empty(0)
        est.loo_, est.leverage_ = np.empty(0), list(d.get("leverage") or [])
        est.warnings_ = list(d.get("warnings", []))
        est.bootstrap_failed_ = int(d.get("bootstrap_failed", 0))
        est.bootstrap_draws_ = np.empty((0, len(cls.constants)))
        return est
