"""Scaling-law fitting (Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Sections 4-6).

    ModelSizeLaw  L(N) = (A/N)^alpha + delta_N
    DataSizeLaw   L(D) = (B/D)^beta + delta_D
    JointLaw      L(N,D) = [ (A/N)^(alpha/beta) + B/D ]^beta + delta

Estimators follow scikit-learn (``fit(X, y, sigma=None) -> self``, attributes ending in ``_``);
least squares (the paper's method) by default, Huber on log residuals as an option. Also:
``fit_law`` (a results DataFrame -> the ``fit`` command's JSON document, with validity checks and
diagnostics), ``holdout_validate`` (held-out prediction error), ``compare_annotations``
(per-annotation data laws and crossings), ``select_rows`` / ``split_learned`` and ``plots``.
The laws take DataFrames; reading a study's results is ``densescale.study.results``.
"""

from __future__ import annotations

from densescale.laws.api import ESTIMATORS, LAWS, ValidityWarning, fit_law
from densescale.laws.base import (
    BoundaryWarning,
    ConvergenceWarning,
    LawFitWarning,
    LeverageWarning,
    NotFittedError,
    PoorFitWarning,
)
from densescale.laws.compare import compare_annotations
from densescale.laws.fit import DataSizeLaw, ModelSizeLaw
from densescale.laws.frame import select_rows, split_learned
from densescale.laws.joint import JointLaw
from densescale.laws.validate import holdout_mask, holdout_validate

__all__ = [
    "ESTIMATORS", "LAWS", "BoundaryWarning", "ConvergenceWarning", "DataSizeLaw", "JointLaw",
    "LawFitWarning", "LeverageWarning", "ModelSizeLaw", "NotFittedError", "PoorFitWarning",
    "ValidityWarning", "compare_annotations", "fit_law", "holdout_mask", "holdout_validate",
    "select_rows", "split_learned",
]
