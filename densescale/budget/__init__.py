"""Budget planning: cost model Z(N, D) and the budget-optimal (N, D) under the joint law.

Fang et al., "Scaling Laws For Dense Retrieval" (SIGIR 2024), Section 6 (arXiv v1).
"""

from __future__ import annotations

from densescale.budget.cost import CostAssumptions, CostModel
from densescale.budget.law import PlanningLaw
from densescale.budget.optimise import (
    BERT_TINY_PARAMS,
    Allocation,
    cheapest_for_target,
    loss_curve,
    optimise_budget,
)

__all__ = ["CostAssumptions", "CostModel", "PlanningLaw", "Allocation", "optimise_budget",
           "cheapest_for_target", "loss_curve", "BERT_TINY_PARAMS"]
