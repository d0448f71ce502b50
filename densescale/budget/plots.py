"""Predicted loss against model size for several budgets (paper v1 Figs. 7 and 8).

Each curve spends the budget on N parameters and buys annotations with the rest; the optimum
(N*, L*) is marked and the fitted N range, when known, is shaded.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from densescale.budget.cost import CostModel
from densescale.budget.law import PlanningLaw
from densescale.budget.optimise import Allocation, loss_curve
from densescale.utils import atomic_write_bytes


def plot_budget_curves(law: PlanningLaw, cost: CostModel, allocations: Sequence[Allocation],
                       out_dir: str | Path, *, n_min: float, d_min: float = 1.0,
                       points: int = 300) -> list[Path]:
    """Write ``budget_curves_{inference|no_inference}.{png,svg}`` to ``out_dir``.

    Args:
        law: joint-law constants.
        cost: cost coefficients.
        allocations: optima from ``optimise_budget`` (one per budget, same ``inference`` flag).
        out_dir: output folder (created).
        n_min: left end of every curve.
        d_min: curves stop where the budget leaves fewer annotations than this.
        points: points per curve.

    Returns:
        The written paths (PNG, SVG).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inference = allocations[0].inference if allocations else True
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    tops: list[float] = []
    colours = plt.cm.viridis(np.linspace(0.0, 0.85, max(len(allocations), 1)))
    for a, colour in zip(allocations, colours):
        n_max = (a.budget - cost.z_data * d_min) / cost.z_param(inference)
        ns = np.geomspace(n_min, n_max, points)
        ls = loss_curve(law, cost, a.budget, ns, inference=inference, d_min=d_min)
        tops.append(ls[0])
        ax.plot(ns, ls, color=colour,
                label=f"${a.budget:,.0f}: N*={a.n:.2g}, D*={a.d:.2g}, L*={a.loss:.3g}")
        ax.plot([a.n], [a.loss], marker="*", markersize=12, color=colour, markeredgecolor="k",
                linestyle="none")
    if law.n_min is not None and law.n_max is not None:
        ax.axvspan(law.n_min, law.n_max, color="0.85", zorder=0, label="fitted N range")
    ax.axhline(law.delta, color="0.5", linestyle=":", linewidth=1, label=f"floor δ={law.delta:g}")
    finite = [t for t in tops if np.isfinite(t)]
    if finite:  # curves shoot up where the budget leaves no annotations; keep the U visible
        ax.set_ylim(max(law.delta, 1e-6) * 0.8, max(finite) * 2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model size N (non-embedding parameters)")
    ax.set_ylabel("predicted contrastive entropy L(N, D)")
    ax.set_title(f"Budget allocation {'with' if inference else 'without'} inference cost "
                 f"(paper Fig. {8 if inference else 7})\nlaw: {law.source}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    stem = "budget_curves_" + ("inference" if inference else "no_inference")
    paths = []
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150)
        path = Path(out_dir) / f"{stem}.{fmt}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths
