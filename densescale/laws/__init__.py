"""Scaling-law fitting (Fang et al., SIGIR 2024, sections 4-6).

    ModelSizeLaw  L(N) = (A/N)^alpha + delta_N
    DataSizeLaw   L(D) = (B/D)^beta + delta_D
    JointLaw      L(N,D) = [ (A/N)^(alpha/beta) + B/D ]^beta + delta

Estimators follow scikit-learn (``fit(X, y, sigma=None) -> self``, attributes ending in ``_``).
Also: ``holdout_validate`` (held-out prediction error), ``compare_annotations`` (per-annotation
data laws and crossings), ``read_results`` (CSV / study database / study spec) and ``plots``.
"""

from __future__ import annotations

from densescale.laws.base import (
    BoundaryWarning,
    ConvergenceWarning,
    LawFitWarning,
    NotFittedError,
    PoorFitWarning,
)
from densescale.laws.compare import compare_annotations
from densescale.laws.fit import DataSizeLaw, ModelSizeLaw
from densescale.laws.io import read_results, select_rows
from densescale.laws.joint import JointLaw
from densescale.laws.validate import holdout_mask, holdout_validate

ESTIMATORS = {"model": ModelSizeLaw, "data": DataSizeLaw, "joint": JointLaw}

__all__ = [
    "ESTIMATORS", "BoundaryWarning", "ConvergenceWarning", "DataSizeLaw", "JointLaw",
    "LawFitWarning", "ModelSizeLaw", "NotFittedError", "PoorFitWarning", "compare_annotations",
    "holdout_mask", "holdout_validate", "read_results", "select_rows",
]
