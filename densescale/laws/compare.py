"""Annotation quality (paper section 5, Fig. 5): one data-size law per annotation type, their
slopes side by side, and the data size at which one type's curve crosses another's.

Example:
    >>> cmp = compare_annotations(frame, bootstrap=1000)     # columns d, annotation, y
    >>> cmp.laws["llm"].beta_, cmp.laws["llm"].ci_["beta"]
    >>> [(c.overtaker, c.overtaken, c.d) for c in cmp.crossings]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from densescale.errors import DenseScaleError
from densescale.laws.fit import DataSizeLaw

D_MAX = 1e12
_GRID = 2000


@dataclass
class Crossing:
    """Where ``overtaker`` (worse below ``d``) becomes better than ``overtaken``; ``d`` is None
    when the curves do not cross in [smallest fitted D, d_max] (then ``overtaker`` is the type
    that is better throughout)."""

    overtaker: str
    overtaken: str
    d: float | None
    metric: float | None
    extrapolated: bool = False                     # d beyond both fitted ranges
    ci: tuple[float, float] | None = None          # bootstrap percentile interval of d
    p_cross: float | None = None                   # share of bootstrap draws that cross

    def to_dict(self) -> dict[str, Any]:
        return {"overtaker": self.overtaker, "overtaken": self.overtaken, "d": self.d,
                "metric": self.metric, "extrapolated": self.extrapolated,
                "ci": list(self.ci) if self.ci else None, "p_cross": self.p_cross}


@dataclass
class AnnotationComparison:
    laws: dict[str, DataSizeLaw]
    crossings: list[Crossing] = field(default_factory=list)
    d_max: float = D_MAX

    def to_dict(self) -> dict[str, Any]:
        return {"laws": {k: v.to_dict() for k, v in self.laws.items()},
                "slopes": {k: {"beta": v.beta_, "ci": list(v.ci_["beta"]) if v.ci_ else None}
                           for k, v in self.laws.items()},
                "crossings": [c.to_dict() for c in self.crossings], "d_max": self.d_max}


def _curve(c: np.ndarray, logd: np.ndarray) -> np.ndarray:
    """Data law with constants c [..., 3] = (B, beta, delta) on log D [G] -> [..., G]."""
    B, beta, delta = c[..., 0:1], c[..., 1:2], c[..., 2:3]
    return np.exp(beta * (np.log(B) - logd)) + delta


def crossing_point(a: DataSizeLaw, b: DataSizeLaw, d_lo: float,
                   d_hi: float = D_MAX) -> float | None:
    """Smallest D in [d_lo, d_hi] where the two fitted curves cross (log grid + brentq)."""
    ca = np.array([a.B_, a.beta_, a.delta_])
    cb = np.array([b.B_, b.beta_, b.delta_])
    logd = np.linspace(np.log(d_lo), np.log(d_hi), _GRID)

    def diff(x):
        return float((_curve(ca, np.atleast_1d(x)) - _curve(cb, np.atleast_1d(x)))[0])

    f = _curve(ca, logd) - _curve(cb, logd)
    if f[0] == 0:
        return float(d_lo)
    idx = np.flatnonzero(np.sign(f[1:]) != np.sign(f[:-1]))
    if idx.size == 0:
        return None
    i = int(idx[0])
    return float(np.exp(brentq(diff, logd[i], logd[i + 1], xtol=1e-12)))


def _draw_crossings(a: DataSizeLaw, b: DataSizeLaw, d_lo: float, d_hi: float) -> np.ndarray:
    """First crossing D per paired bootstrap draw (NaN = none), log-linear interpolation."""
    m = min(len(a.bootstrap_draws_), len(b.bootstrap_draws_))
    logd = np.linspace(np.log(d_lo), np.log(d_hi), _GRID)
    with np.errstate(over="ignore", invalid="ignore"):
        f = _curve(a.bootstrap_draws_[:m], logd) - _curve(b.bootstrap_draws_[:m], logd)  # [m, G]
    change = np.sign(f[:, 1:]) != np.sign(f[:, :-1])
    has = change.any(axis=1)
    i = np.argmax(change, axis=1)
    r = np.arange(m)
    f0, f1 = f[r, i], f[r, i + 1]
    t = np.where(f1 != f0, f0 / (f0 - f1), 0.0)
    x = np.where(has, logd[i] + t * (logd[i + 1] - logd[i]), np.nan)
    return np.exp(x)


def compare_annotations(rows: Any, *, metric: str = "y", method: str = "lsq",
                        bootstrap: int = 0, level: float = 0.95, seed: int = 0,
                        d_max: float = D_MAX,
                        huber_delta: float | None = None) -> AnnotationComparison:
    """Fit ``L(D) = (B/D)^beta + delta`` per annotation type and find pairwise crossings.

    Args:
        rows: DataFrame (or list of dicts) with columns ``d``, ``annotation`` and the metric
            (``metric``; the normalised frame of ``read_results`` calls it ``y``); with a column
            ``n``, each type uses the rows of its data sweep (the N with the most distinct D,
            largest on ties; ``frame.sweep_value``).
        method, bootstrap, level, seed, huber_delta: passed to every ``DataSizeLaw``.
        d_max: search crossings up to this data size.

    Returns:
        AnnotationComparison (laws per type, crossings for every pair of types).
    """
    df = pd.DataFrame(rows)
    if metric not in df.columns and "contrastive_entropy" in df.columns and metric == "y":
        metric = "contrastive_entropy"
    for c in ("d", "annotation", metric):
        if c not in df.columns:
            raise DenseScaleError(f"compare_annotations: column {c!r} missing")
    types = sorted(df["annotation"].astype(str).unique())
    if len(types) < 2:
        raise DenseScaleError(f"compare_annotations needs at least two annotation types, "
                              f"got {types}")
    laws: dict[str, DataSizeLaw] = {}
    for t in types:
        sub = df[df["annotation"].astype(str) == t]
        if "n" in sub.columns and sub["n"].notna().any():
            from densescale.laws.frame import sweep_value

            top = sweep_value(sub.astype({"n": float}), "data")
            sub = sub[np.isclose(sub["n"].astype(float), top, rtol=1e-9)]
        sigma = None
        if "sigma" in sub.columns and np.all(np.isfinite(sub["sigma"].to_numpy(float))):
            sigma = sub["sigma"].to_numpy(float)
        law = DataSizeLaw(method=method, bootstrap=bootstrap, level=level, seed=seed,
                          huber_delta=huber_delta)
        try:
            laws[t] = law.fit(sub["d"].to_numpy(float), sub[metric].to_numpy(float), sigma)
        except DenseScaleError as e:
            raise DenseScaleError(f"annotation {t!r}: {e}") from e
    out = AnnotationComparison(laws=laws, d_max=d_max)
    for ta, tb in itertools.combinations(types, 2):
        a, b = laws[ta], laws[tb]
        d_lo = min(a.d_min_, b.d_min_)
        d = crossing_point(a, b, d_lo, d_max)
        probe = d_max if d is None else min(d * 1.05, d_max)
        pa, pb = (float(_curve(np.array([x.B_, x.beta_, x.delta_]), np.log([probe]))[0])
                  for x in (a, b))
        winner, loser = (ta, tb) if pa < pb else (tb, ta)
        cr = Crossing(winner, loser, d, None if d is None else float(a.predict([d])[0]),
                      extrapolated=d is not None and d > max(a.d_max_, b.d_max_))
        if bootstrap and len(a.bootstrap_draws_) and len(b.bootstrap_draws_):
            ds = _draw_crossings(a, b, d_lo, d_max)
            cr.p_cross = float(np.mean(np.isfinite(ds)))
            if np.isfinite(ds).sum() >= 2:
                q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
                lo, hi = np.percentile(ds[np.isfinite(ds)], q)
                cr.ci = (float(lo), float(hi))
        out.crossings.append(cr)
    return out
