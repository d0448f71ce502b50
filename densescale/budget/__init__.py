"""Budget planning: cost model Z(N, D) and the budget-optimal (N, D) under the joint law.

Fang et al., "Scaling Laws For Dense Retrieval" (SIGIR 2024), v1 §6 / PAPER.md §8.
"""

from __future__ import annotations

from densescale.budget.cost import CostAssumptions, CostModel
from densescale.budget.law import JointLaw
from densescale.budget.optimise import (
    BERT_TINY_PARAMS,
    Allocation,
    cheapest_for_target,
    loss_curve,
    optimise_budget,
)

__all__ = ["CostAssumptions", "CostModel", "JointLaw", "Allocation", "optimise_budget",
           "cheapest_for_target", "loss_curve", "BERT_TINY_PARAMS"]
