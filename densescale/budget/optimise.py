"""Budget-optimal model size and annotation count under the joint law (paper Section 6, Figs. 7-8).

Forward problem: minimise L(N, D) subject to Z(N, D) = z_data*D + z_N*N <= budget, where
z_N = z_train (+ z_infer + z_query with inference). L grows as D falls, so the constraint is
active: D(N) = (budget - z_N*N) / z_data, leaving a 1-D problem in log N on
[log N_min, log N_max], N_max being where D(N) hits the minimum D. The objective
log[(A/N)^(alpha/beta) + B/D(N)] (monotone in L) is convex in N, hence unimodal in log N; we
still scan a coarse log grid first, flag several local minima, then refine with a bounded scipy
``minimize_scalar`` around the best grid point.

Inverse problem: the cheapest (N, D) with L(N, D) <= target. For each N the needed D solves the
law analytically (``PlanningLaw.data_needed``), leaving a 1-D minimisation of Z over log N.

Example:
    >>> from densescale.budget import CostModel, PlanningLaw, optimise_budget
    >>> a = optimise_budget(PlanningLaw.preset("v2"), CostModel.from_assumptions(), 20_000,
    ...                     inference=False)
    >>> round(a.loss, 3)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from densescale.budget.cost import CostModel
from densescale.budget.law import PlanningLaw
from densescale.errors import DenseScaleError

BERT_TINY_PARAMS = 512_128  # non-embedding params of BERT-Tiny (paper Section 3.2)
GRID_POINTS = 400  # coarse log-N grid scanned before the bounded refinement


@dataclass(frozen=True)
class Allocation:
    """An (N, D) choice with its predicted loss and cost."""

    n: float  # non-embedding parameters
    d: float  # annotated query-positive pairs
    loss: float  # predicted L(N, D)
    cost: float  # Z(N, D) in $
    inference: bool  # whether inference cost was counted
    budget: float | None = None  # the budget optimised for (forward problem)
    target: float | None = None  # the target loss (inverse problem)
    at_bound: str | None = None  # "n_min" or "d_min" when the optimum sits on a bound
    extrapolation: dict = field(default_factory=dict)  # {"n"|"d": orders of magnitude outside}
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out


def extrapolation(law: PlanningLaw, n: float, d: float) -> tuple[dict, list[str]]:
    """How far (in orders of magnitude, log10 ratio) N and D lie outside the fitted range."""
    info: dict = {}
    msgs: list[str] = []
    for key, value, lo, hi, what in (("n", n, law.n_min, law.n_max, "parameters"),
                                     ("d", d, law.d_min, law.d_max, "annotated pairs")):
        if hi is not None and value > hi:
            orders, side, edge = math.log10(value / hi), "above the largest", hi
        elif lo is not None and value < lo:
            orders, side, edge = math.log10(lo / value), "below the smallest", lo
        else:
            continue
        info[key] = {"value": value, "orders": orders, "fitted_min": lo, "fitted_max": hi}
        msgs.append(f"EXTRAPOLATION: {key.upper()} = {value:.3g} {what} is {orders:.1f} orders of "
                    f"magnitude {side} fitted {key.upper()} ({edge:.3g}); the law is untested "
                    "there")
    return info, msgs


def _refine(fun, xs: np.ndarray, vals: np.ndarray) -> tuple[float, float, int, list[str]]:
    """Grid argmin of ``fun`` on ``xs``, refined by bounded Brent; returns x, f, index, notes."""
    notes = []
    finite = np.isfinite(vals)
    inner = finite[1:-1] & (vals[1:-1] < vals[:-2]) & (vals[1:-1] <= vals[2:])
    if int(inner.sum()) > 1:
        notes.append(f"objective has {int(inner.sum())} local minima on the log-N grid; "
                     "reporting the global one")
    i = int(np.nanargmin(np.where(finite, vals, np.inf)))
    lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
    x, f = xs[i], vals[i]
    if hi > lo:
        res = minimize_scalar(fun, bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-10 * max(1.0, abs(lo))})
        if np.isfinite(res.fun) and res.fun <= f:
            x, f = float(res.x), float(res.fun)
    return float(x), float(f), i, notes


def optimise_budget(law: PlanningLaw, cost: CostModel, budget: float, *, inference: bool = True,
                    n_min: float = BERT_TINY_PARAMS, d_min: float = 1.0,
                    grid: int = GRID_POINTS) -> Allocation:
    """N*, D*, L* minimising L(N, D) subject to Z(N, D) <= budget.

    Args:
        law: joint-law constants (and fitted range, for the extrapolation warning).
        cost: cost coefficients.
        budget: $ available.
        inference: count corpus encoding (and query traffic) in the per-parameter cost.
        n_min: smallest model considered (default BERT-Tiny, 512,128 non-embedding params).
        d_min: fewest annotations considered (default 1).
        grid: points of the coarse log-N scan.

    Returns:
        The optimal Allocation, with extrapolation warnings.

    Raises:
        DenseScaleError: the budget cannot pay for N_min parameters plus d_min annotations, or
            the law's prediction overflows (constants outside its physical range).
    """
    law.check_finite(n_min, d_min)
    zn = cost.z_param(inference)
    floor = zn * n_min + cost.z_data * d_min
    if not math.isfinite(budget) or budget < floor:
        hint = (" (without the inference term it would cost "
                f"${cost.z_param(False) * n_min + cost.z_data * d_min:,.2f}; try --no-inference)"
                if inference and cost.z_param(False) < zn else "")
        raise DenseScaleError(
            f"budget ${budget:,.2f} cannot pay for the smallest model: N_min = {n_min:,.0f} "
            f"parameters at ${zn:.3g}/parameter ({'with' if inference else 'without'} inference) "
            f"plus {d_min:g} annotation(s) at ${cost.z_data:g} cost ${floor:,.2f}{hint}")
    n_max = (budget - cost.z_data * d_min) / zn

    def objective(x: float) -> float:  # log of the inner term; same minimiser as L
        n = math.exp(x)
        d = max((budget - zn * n) / cost.z_data, d_min)
        return math.log((law.A / n) ** (law.alpha / law.beta) + law.B / d)

    lo, hi = math.log(n_min), math.log(n_max)
    xs = np.linspace(lo, hi, max(grid, 3)) if hi > lo else np.array([lo])
    vals = np.array([objective(x) for x in xs])
    x, _, i, notes = _refine(objective, xs, vals) if len(xs) > 1 else (lo, vals[0], 0, [])
    n = min(max(math.exp(x), n_min), n_max)
    d = max(cost.annotations_affordable(budget, n, inference), d_min)
    at_bound = ("n_min" if i == 0 and n <= n_min * (1 + 1e-6) else
                "d_min" if i == len(xs) - 1 and n >= n_max * (1 - 1e-6) else None)
    if at_bound:
        notes.append(f"optimum sits on the bound {at_bound}; the unconstrained optimum lies beyond")
    return _allocation(law, cost, n, d, inference, notes, budget=budget, at_bound=at_bound)


def cheapest_for_target(law: PlanningLaw, cost: CostModel, target: float, *,
                        inference: bool = True, n_min: float = BERT_TINY_PARAMS,
                        d_min: float = 1.0, grid: int = GRID_POINTS) -> Allocation:
    """The cheapest (N, D) with predicted L(N, D) <= target (inverse of ``optimise_budget``).

    Raises:
        DenseScaleError: target <= delta (the law's floor), so no (N, D) can reach it, or the
            law's prediction overflows (constants outside its physical range).
    """
    if not math.isfinite(target) or target <= law.delta:
        raise DenseScaleError(f"target L = {target:g} is unreachable: the law never goes below its "
                              f"floor delta = {law.delta:g} (L -> delta only as N, D -> infinity)")
    law.check_finite(n_min, d_min)
    zn = cost.z_param(inference)
    n_floor = law.min_model_for(target)  # below this no finite D suffices
    if not math.isfinite(n_floor):
        raise DenseScaleError(f"target L = {target:g} needs N above {n_floor} under this law "
                              "(the smallest sufficient model size overflows)")
    n_lo = max(n_min, n_floor * (1 + 1e-9))

    def total(n: float) -> float:
        return zn * n + cost.z_data * max(law.data_needed(n, target), d_min)

    n0 = max(n_min, 2 * n_floor)
    n_hi = max(total(n0) / zn, n0) * 1.01  # any larger N alone costs more than (n0, D(n0))

    def objective(x: float) -> float:
        c = total(math.exp(x))
        return math.log(c) if math.isfinite(c) else math.inf

    xs = np.linspace(math.log(n_lo), math.log(n_hi), max(grid, 3))
    vals = np.array([objective(x) for x in xs])
    x, _, i, notes = _refine(objective, xs, vals)
    n = math.exp(x)
    d = max(law.data_needed(n, target), d_min)
    at_bound = "n_min" if i == 0 and n_lo == n_min and n <= n_min * (1 + 1e-6) else None
    if d <= d_min:
        at_bound = "d_min"
    return _allocation(law, cost, n, d, inference, notes, target=target, at_bound=at_bound)


def loss_curve(law: PlanningLaw, cost: CostModel, budget: float, ns, *, inference: bool = True,
               d_min: float = 1.0) -> np.ndarray:
    """Predicted L along N when the rest of the budget buys annotations (NaN where D < d_min)."""
    ns = np.asarray(ns, dtype=float)
    d = cost.annotations_affordable(budget, ns, inference)
    ok = d >= d_min
    out = np.full(ns.shape, np.nan)
    out[ok] = law.predict(ns[ok], d[ok])
    return out


def _allocation(law: PlanningLaw, cost: CostModel, n: float, d: float, inference: bool,
                notes: list[str], **kw) -> Allocation:
    loss = float(law.predict(n, d))
    if not all(math.isfinite(v) and v >= 0 for v in (n, d, loss)):
        raise DenseScaleError(f"no finite optimum: N = {n:g}, D = {d:g}, L = {loss:g} (the law "
                              f"{law.source} is outside its physical range here)")
    info, msgs = extrapolation(law, n, d)
    warnings = msgs + notes + ([law.note] if law.note else [])
    return Allocation(n=float(n), d=float(d), loss=loss,
                      cost=float(cost.cost(n, d, inference)), inference=inference,
                      extrapolation=info, warnings=tuple(warnings), **kw)
