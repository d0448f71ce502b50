"""``PlanningLaw``: the joint model-data law's constants as the budget planner uses them.

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 6 (arXiv v1 Eq. 9; Kaplan et
al. 2020 form):

    L(N, D) = [ (A/N)^(alpha/beta) + B/D ]^beta + delta

N = non-embedding parameters, D = annotated query-positive pairs, L = contrastive entropy
(lower is better). A frozen record of constants plus the fitted (N, D) range, distinct from the
fitting estimator ``densescale.laws.JointLaw``: planning does not depend on the fitting code; it
reads the fit JSON the laws stage writes (keys A, B, alpha, beta, delta and optionally n_min,
n_max, d_min, d_max, at top level or under "params"/"constants").

A law outside its physical range is refused: delta < 0 (a loss floor below zero), and
constants whose prediction overflows on the planner's search range (``check_finite``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from densescale.errors import ConfigError, DataError, DenseScaleError

PAPER_N_RANGE = (0.5e6, 86e6)  # BERT-Tiny .. BERT-Base non-embedding params (paper Section 3.2)
PAPER_D_RANGE = (None, 5e5)  # up to all ~0.5M MS MARCO training pairs; lower end not stated

V1_NOTE = ("v1 joint constants (arXiv v1 Eq. 10-11) do not reproduce v1's own model-size law at "
           "full data (BERT-Base 0.108 vs 0.051, BERT-Tiny > 1; arXiv v1 Sections 4.1, 6): N may "
           "be in other units there. Treat these predictions with care.")
V2_NOTE = ("v2 joint constants come from third-party notes on the camera-ready version "
           "(unverified; consistent with the SIGIR 2024 version's Fig. 1, Section 4.4).")


@dataclass(frozen=True)
class PlanningLaw:
    """Constants of L(N, D) plus the (N, D) range they were fitted on (None = unknown)."""

    A: float  # model-size scale (parameters)
    B: float  # data-size scale (pairs)
    alpha: float  # model-size exponent
    beta: float  # outer exponent (data-size exponent)
    delta: float  # irreducible loss floor
    n_min: float | None = None  # smallest N in the fit
    n_max: float | None = None  # largest N in the fit
    d_min: float | None = None  # smallest D in the fit
    d_max: float | None = None  # largest D in the fit
    source: str = "flags"  # where the constants came from
    note: str | None = None  # caveat to show with every result

    def __post_init__(self) -> None:
        for name in ("A", "B", "alpha", "beta"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"joint-law constant {name} must be a finite number > 0, "
                                  f"got {v!r}")
        if not isinstance(self.delta, (int, float)) or not math.isfinite(self.delta):
            raise ConfigError("joint-law constant delta must be a finite number, "
                              f"got {self.delta!r}")
        if self.delta < 0:
            raise ConfigError(f"joint-law constant delta = {self.delta:g} < 0 is outside the "
                              "law's physical range: delta is the loss floor and contrastive "
                              "entropy is never negative")

    def check_finite(self, n: float, d: float) -> None:
        """Refuse constants whose L(n, d) overflows or is not finite (n, d: the smallest sizes
        searched; L falls with N and D, so a finite value there bounds every other).

        Raises:
            DenseScaleError: naming the constants and the sizes.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            value = self.predict(n, d)
        if not math.isfinite(value):
            raise DenseScaleError(
                f"the joint law predicts L = {value} at N = {n:.3g}, D = {d:.3g} (A={self.A:g}, "
                f"B={self.B:g}, alpha={self.alpha:g}, beta={self.beta:g}, delta={self.delta:g}): "
                "the prediction overflows, so these constants are outside the law's physical "
                "range; check the fit (or the --A/--B/--alpha/--beta flags)")

    def predict(self, n, d):
        """L(N, D); floats or broadcastable numpy arrays."""
        n = np.asarray(n, dtype=float)
        d = np.asarray(d, dtype=float)
        inner = (self.A / n) ** (self.alpha / self.beta) + self.B / d
        out = inner ** self.beta + self.delta
        return float(out) if out.ndim == 0 else out

    def data_needed(self, n, target: float):
        """D with L(N, D) = target, analytically; inf where no D suffices for this N.

        From B/D = (target - delta)^(1/beta) - (A/N)^(alpha/beta).
        """
        n = np.asarray(n, dtype=float)
        gap = (target - self.delta) ** (1.0 / self.beta) - (self.A / n) ** (self.alpha / self.beta)
        with np.errstate(divide="ignore"):
            out = np.where(gap > 0, self.B / np.where(gap > 0, gap, 1.0), np.inf)
        return float(out) if out.ndim == 0 else out

    def min_model_for(self, target: float) -> float:
        """Smallest N for which some finite D reaches ``target``: A*(target-delta)^(-1/alpha)."""
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return float(self.A * np.float64(target - self.delta) ** (-1.0 / self.alpha))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def preset(cls, name: str) -> PlanningLaw:
        """Paper's MS MARCO joint constants: ``v1`` (arXiv v1) or ``v2`` (third-party notes)."""
        key = name.lower().strip()
        if key not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return PRESETS[key]

    @classmethod
    def from_json(cls, path: str | Path) -> PlanningLaw:
        """Read a fit JSON: constants at top level or under "params"/"constants".

        Top-level keys win (``densescale.laws`` writes constants at top level and its
        hyper-parameters under "params"); a non-finite range bound means "unknown"."""
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError("fit file not found", path) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read fit JSON: {e}", path) from None
        if not isinstance(obj, dict):
            raise DataError("fit JSON must be an object", path)
        if isinstance(obj.get("law"), str) and obj["law"].lower() != "joint":
            raise DataError(f"fit JSON holds a {obj['law']!r} law; budget planning needs the "
                            "joint law L(N, D)", path)
        scopes = [obj] + [obj[k] for k in ("params", "constants", "range", "fit_range",
                                           "fitted_range") if isinstance(obj.get(k), dict)]

        def get(key: str, *aliases: str):
            for scope in scopes:
                for k in (key, *aliases):
                    if k in scope and scope[k] is not None:
                        try:
                            v = float(scope[k])
                        except (TypeError, ValueError):
                            raise DataError(f"{k} must be a number, got {scope[k]!r}",
                                            path) from None
                        return v if math.isfinite(v) else None  # NaN range = unknown
            return None

        vals = {"A": get("A"), "B": get("B"), "alpha": get("alpha", "α"),
                "beta": get("beta", "β"), "delta": get("delta", "δ")}
        missing = [k for k, v in vals.items() if v is None]
        if missing:
            raise DataError(f"fit JSON lacks joint-law constant(s) {', '.join(missing)} (expected "
                            "keys A, B, alpha, beta, delta at top level or under 'params')", path)
        try:
            return cls(**vals, n_min=get("n_min"), n_max=get("n_max"), d_min=get("d_min"),
                       d_max=get("d_max"), source=str(path))
        except ConfigError as e:
            raise DataError(str(e), path) from None

    def with_range(self, **kw) -> PlanningLaw:
        return replace(self, **kw)


PRESETS = {
    "v1": PlanningLaw(A=8.2e5, B=5.2e3, alpha=0.57, beta=1.39, delta=0.03,
                   n_min=PAPER_N_RANGE[0], n_max=PAPER_N_RANGE[1], d_max=PAPER_D_RANGE[1],
                   source="preset v1: arXiv v1 Eq. 10-11 (MS MARCO)", note=V1_NOTE),
    "v2": PlanningLaw(A=3.6e4, B=7.1e3, alpha=0.56, beta=1.31, delta=0.03,
                   n_min=PAPER_N_RANGE[0], n_max=PAPER_N_RANGE[1], d_max=PAPER_D_RANGE[1],
                   source="preset v2: third-party notes on SIGIR/v2 (MS MARCO)", note=V2_NOTE),
}
