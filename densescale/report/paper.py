"""The paper's published constants, to set beside the fitted ones (different dataset and scale).

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Sections 4.1-4.4: MS MARCO passage
ranking, BERT-family models of 0.5M to 86M non-embedding parameters, up to about 0.5M annotated
pairs, contrastive entropy against 256 sampled negatives. The joint-law constants are the budget
planner's presets (``densescale.budget.PlanningLaw.preset``), not restated here; the v2 joint
values come from third-party notes (unverified; the preset carries that caveat).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

SCOPE = ("Published constants of Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024: "
         "fitted on MS MARCO passage ranking with BERT-family models of 0.5M to 86M "
         "non-embedding parameters and up to about 0.5M annotated pairs. A different dataset "
         "and scale: set beside the fitted constants for orientation, not as a target.")
# Model-size law L(N) = (A/N)^alpha + delta (arXiv v1 Eq. 7, Table 1); data-size law
# L(D) = (B/D)^beta + delta (arXiv v1 Eq. 8, Table 2). v2 = the SIGIR 2024 version, values from
# third-party notes (unverified); v2 quotes no delta for the data law.
_V2 = "v2 (SIGIR 2024, third-party notes)"
PUBLISHED: dict[str, list[dict[str, Any]]] = {
    "model": [
        {"version": "v1 (arXiv v1, Table 1)", "A": 4.54e4, "alpha": 0.46, "delta": 0.02,
         "r2": 0.990},
        {"version": _V2, "A": 3.22e4, "alpha": 0.53, "delta": 0.04, "r2": 0.991},
    ],
    "data": [
        {"version": "v1 (arXiv v1, Table 2)", "B": 2.37e-2, "beta": 0.19, "delta": 0.01,
         "r2": 0.971},
        {"version": _V2, "B": 3.49e3, "beta": 1.05, "delta": None, "r2": 0.954},
    ],
}

def published(law: str) -> list[dict[str, Any]]:
    """The paper's constants for ``law`` ("model", "data" or "joint"), one dict per version.

    Joint constants come from ``densescale.budget.PlanningLaw.preset`` with its caveat as
    ``note``."""
    if law != "joint":
        return [dict(r) for r in PUBLISHED.get(law, [])]
    from densescale.budget import PlanningLaw

    out = []
    for key, version in (("v1", "v1 (arXiv v1, Eq. 10-11)"), ("v2", _V2)):
        p = PlanningLaw.preset(key)
        out.append({"version": version, "A": p.A, "B": p.B, "alpha": p.alpha, "beta": p.beta,
                    "delta": p.delta, "r2": None, "note": p.note})
    return out


def comparison_table(law: str, fit: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """One row of fitted constants (this study) and one per published version (MS MARCO)."""
    rows = [{"source": "this study (fitted)", **{k: fit.get(k) for k in names},
             "R²": fit.get("r2")}]
    for p in published(law):
        rows.append({"source": f"paper {p['version']}, MS MARCO",
                     **{k: p.get(k) for k in names}, "R²": p.get("r2")})
    return pd.DataFrame(rows)
