"""Held-out validation: fit a law on a subset of points and measure its prediction error on
the rest (paper Fig. 6: dots = fitted, red stars = predicted).

The built-in extrapolation split ``"largest"`` holds out the largest sizes, which is the question
users ask ("does the law fitted on small models predict the big one?"):

* model law: the points at the largest N; data law: the points at the largest D;
* joint law: the points at the largest N **or** the largest D (``"largest-n"`` / ``"largest-d"``
  hold out only one of the two).

A single-axis law takes the split of its own axis (``"largest-n"`` is ``"largest"`` for the
model law, ``"largest-d"`` for the data law); the other axis does not vary along its sweep, so
``holdout_for`` says why it does not apply (the report then fits that law on every point).

Example:
    >>> mask = holdout_mask(X, "joint", "largest")
    >>> res = holdout_validate(JointLaw(), X, y, mask)
    >>> res.mean_rel_error, res.to_dict()["points"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from densescale.errors import DenseScaleError
from densescale.laws.base import BaseLaw

SPLITS = ("largest", "largest-n", "largest-d")
_OWN = {"model": ("largest-n", "N", "D", "model-size"),      # own split, axis, other, name
        "data": ("largest-d", "D", "N", "data-size")}


def holdout_for(law: str, how: str) -> tuple[str | None, str | None]:
    """The built-in split to use for ``law`` when the user asked for ``how``.

    Returns:
        (split, None) when it applies (``"largest-n"`` -> ``"largest"`` for the model law,
        ``"largest-d"`` -> ``"largest"`` for the data law), else (None, the reason).
    """
    if law == "joint":
        return how, None
    if law not in _OWN:
        return None, ("the annotation comparison fits every point of each type (held-out "
                      "validation applies to the model, data and joint laws)")
    own, axis, other, name = _OWN[law]
    if how in ("largest", own):
        return "largest", None
    return None, (f"--holdout {how} holds out the largest {other}, but the points of the {name} "
                  f"law share one {other} (it varies {axis} only), so it is fitted on every "
                  f"point; use largest or {own}")


def holdout_mask(X: Any, law: str, how: str = "largest") -> np.ndarray:
    """Boolean mask [n] of the held-out points for a built-in split.

    Args:
        X: sizes, shape (n,) / (n, 1) for single laws or (n, 2) = (N, D) for the joint law.
        law: "model", "data" or "joint".
        how: "largest" (default), "largest-n" or "largest-d" (for a single-axis law: only the
            split of its own axis, see ``holdout_for``).
    """
    X = np.asarray(X, dtype=float)
    X = X[:, None] if X.ndim == 1 else X
    if how not in SPLITS:
        raise DenseScaleError(f"unknown holdout split {how!r}; choose one of {SPLITS} or a file")
    if law != "joint":
        split, why = holdout_for(law, how)
        if split is None:
            raise DenseScaleError(why)
        return np.isclose(X[:, 0], X[:, 0].max(), rtol=1e-9)
    big_n = np.isclose(X[:, 0], X[:, 0].max(), rtol=1e-9)
    big_d = np.isclose(X[:, 1], X[:, 1].max(), rtol=1e-9)
    return {"largest": big_n | big_d, "largest-n": big_n, "largest-d": big_d}[how]


@dataclass
class HoldoutResult:
    """Prediction error of a law (fitted on the kept points) on the held-out points."""

    law: BaseLaw                  # fitted on the kept points only
    X: np.ndarray                 # held-out sizes [m, k]
    y: np.ndarray                 # observed metric [m]
    pred: np.ndarray              # predicted metric [m]

    @property
    def abs_error(self) -> np.ndarray:
        return np.abs(self.pred - self.y)

    @property
    def rel_error(self) -> np.ndarray:
        return self.abs_error / np.abs(self.y)

    @property
    def mean_abs_error(self) -> float:
        return float(self.abs_error.mean())

    @property
    def mean_rel_error(self) -> float:
        return float(self.rel_error.mean())

    def to_dict(self) -> dict[str, Any]:
        pts = []
        for i in range(len(self.y)):
            row = {name: float(self.X[i, j]) for j, name in enumerate(self.law.features)}
            row.update(observed=float(self.y[i]), predicted=float(self.pred[i]),
                       abs_error=float(self.abs_error[i]), rel_error=float(self.rel_error[i]))
            pts.append(row)
        return {"n_fit": self.law.n_points_, "n_heldout": len(self.y),
                "mean_abs_error": self.mean_abs_error, "mean_rel_error": self.mean_rel_error,
                "max_rel_error": float(self.rel_error.max()), "points": pts,
                "fit": self.law.to_dict()}


def holdout_validate(estimator: BaseLaw, X: Any, y: Any, heldout: Any,
                     sigma: Any = None) -> HoldoutResult:
    """Fit ``estimator`` on the points with ``heldout == False`` and predict the others.

    Args:
        estimator: an unfitted (or refittable) law; it is fitted in place on the kept points.
        X, y, sigma: as in ``estimator.fit``.
        heldout: boolean mask [n] (True = held out), e.g. from ``holdout_mask``.

    Returns:
        HoldoutResult with per-point and mean absolute / relative errors.
    """
    X = estimator._check_X(X)
    y = np.asarray(y, dtype=float).ravel()
    mask = np.asarray(heldout, dtype=bool).ravel()
    if mask.shape != y.shape:
        raise DenseScaleError(f"heldout mask has {mask.size} values but y has {y.size}")
    if not mask.any():
        raise DenseScaleError("no held-out points: the holdout split selected nothing")
    keep = ~mask
    need = estimator.n_params + 1
    if len(np.unique(X[keep], axis=0)) < need:
        raise DenseScaleError(f"after holding out {int(mask.sum())} point(s) only "
                              f"{len(np.unique(X[keep], axis=0))} distinct points remain; "
                              f"{type(estimator).__name__} needs at least {need}")
    s_keep = None if sigma is None else np.asarray(sigma, dtype=float).ravel()[keep]
    estimator.fit(X[keep], y[keep], sigma=s_keep)
    return HoldoutResult(law=estimator, X=X[mask], y=y[mask], pred=estimator.predict(X[mask]))
