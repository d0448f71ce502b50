"""The report's own overlay figures: contrastive entropy against chance, nDCG@10 against BM25.

The law figures come from ``densescale.laws.plots`` and show the fits; these two show every
finished run against its references:

* ``ce_vs_n_chance``, ``ce_vs_d_chance``: the fitted contrastive entropy against N (with the
  fitted model-size law) and against D (with the data-size law), and a dashed line at chance,
  ln(W+1) for W evaluation negatives (a model that scores every passage alike gets exactly
  ln(W+1); contrastive entropy is defined in Fang et al., Scaling Laws for Dense Retrieval,
  SIGIR 2024, Section 3). Runs that did not learn are grey crosses.
* ``ndcg_vs_bm25``: nDCG@10 against N with BM25's nDCG@10 on the same queries and pool.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from densescale.report.runs import done_rows, not_learned
from densescale.utils import atomic_write_bytes, require


def chance_levels(runs: pd.DataFrame) -> list[dict[str, float]]:
    """Distinct chance levels of the finished runs: [{"W": negatives, "chance": ln(W+1)}].

    From the ``chance`` column; else from ``eval_config``'s ``negatives``."""
    done = done_rows(runs)
    values: set[float] = set()
    if "chance" in done.columns:
        values = {round(float(v), 9) for v in pd.to_numeric(done["chance"], errors="coerce")
                  if math.isfinite(v) and v > 0}
    if not values and "eval_config" in done.columns:
        for v in done["eval_config"].dropna():
            try:
                w = int(json.loads(v)["negatives"])
            except (TypeError, ValueError, KeyError):
                continue
            values.add(round(math.log(w + 1), 9))
    return [{"W": float(round(math.exp(c) - 1)), "chance": c} for c in sorted(values)]


def bm25_levels(runs: pd.DataFrame, key: str = "ndcg_at_10") -> list[float]:
    """Distinct BM25 values of ``key`` among the finished runs (one per query set and pool)."""
    col = f"bm25_{key}"
    done = done_rows(runs)
    if col not in done.columns:
        return []
    vals = pd.to_numeric(done[col], errors="coerce").dropna()
    return sorted({round(float(v), 9) for v in vals})


def _save(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    paths = []
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=130, bbox_inches="tight")
        atomic_write_bytes(out_dir / f"{stem}.{ext}", buf.getvalue())
        paths.append(out_dir / f"{stem}.{ext}")
    return paths


def _points(ax: Any, done: pd.DataFrame, x: str, y: str) -> None:
    bad = not_learned(done).to_numpy(bool)
    vals = pd.to_numeric(done[y], errors="coerce").to_numpy(float)
    xs = pd.to_numeric(done[x], errors="coerce").to_numpy(float)
    anns = done["annotation"].astype(str).to_numpy() if "annotation" in done.columns else \
        np.full(len(done), "runs")
    for i, a in enumerate(sorted(set(anns[~bad]))):
        sel = ~bad & (anns == a)
        ax.scatter(xs[sel], vals[sel], s=22, color=f"C{i % 10}", zorder=3, label=a)
    if bad.any():
        ax.scatter(xs[bad], vals[bad], s=30, marker="x", color="grey", zorder=3,
                   label="did not learn")


def _curve(ax: Any, doc: dict[str, Any] | None, law: str, xs: np.ndarray) -> None:
    if not doc or "fit" not in doc:
        return
    from densescale.laws import ESTIMATORS

    est = ESTIMATORS[law].from_dict(doc["fit"])
    ax.plot(xs, est.predict(xs), color="tab:orange", lw=1.6, label=f"fitted {law}-size law")


def plot_ce_vs_chance(runs: pd.DataFrame, docs: dict[str, Any], metric: str, label: str,
                      out_dir: Path) -> list[Path]:
    """Metric vs N and vs D for every finished run, fitted laws, and the chance line(s)."""
    require("matplotlib", "plots", "report figures")
    from matplotlib.figure import Figure

    done = done_rows(runs)
    done = done[pd.to_numeric(done.get(metric), errors="coerce").notna()] \
        if metric in done.columns else done.iloc[:0]
    if done.empty:
        return []
    paths: list[Path] = []
    for x, law, xlabel in (("n", "model", "non-embedding parameters N"),
                           ("d", "data", "annotated query-passage pairs D")):
        fig = Figure(figsize=(5.5, 4))
        ax = fig.add_subplot()
        _points(ax, done, x, metric)
        xv = pd.to_numeric(done[x], errors="coerce").to_numpy(float)
        xv = xv[np.isfinite(xv) & (xv > 0)]
        if xv.size:
            _curve(ax, docs.get(law), law, np.geomspace(xv.min() / 1.3, xv.max() * 1.3, 200))
        for c in chance_levels(runs):
            ax.axhline(c["chance"], color="red", ls="--", lw=1.2,
                       label=f"chance ln(W+1) = {c['chance']:.3f} (W={c['W']:.0f})")
        ax.set_xscale("log")
        ax.set(xlabel=xlabel, ylabel=label, title=f"{label} vs {x.upper()}, chance line")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        paths += _save(fig, out_dir, f"ce_vs_{x}_chance")
    return paths


def plot_ndcg_vs_bm25(runs: pd.DataFrame, out_dir: Path, key: str = "ndcg_at_10") -> list[Path]:
    """The ranking metric vs N for every finished run, with the BM25 line(s)."""
    done = done_rows(runs)
    if key not in done.columns or pd.to_numeric(done[key], errors="coerce").notna().sum() == 0:
        return []
    require("matplotlib", "plots", "report figures")
    from matplotlib.figure import Figure

    from densescale.evaluate.metrics import label

    done = done[pd.to_numeric(done[key], errors="coerce").notna()]
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    _points(ax, done, "n", key)
    for v in bm25_levels(runs, key):
        ax.axhline(v, color="tab:green", ls="--", lw=1.2, label=f"BM25 {v:.3f} (same queries)")
    ax.set_xscale("log")
    ax.set(xlabel="non-embedding parameters N", ylabel=label(key),
           title=f"{label(key)} vs N, BM25 reference")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, f"{key.replace('@', '_at_')}_vs_bm25")
