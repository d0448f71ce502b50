"""Correlation between contrastive entropy and ranking metrics across models (paper Fig. 2).

The paper (Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 3.5, Fig. 2)
plots ranking metrics against contrastive entropy for models of different sizes on MS MARCO and
calls the relation strong (Recall@1000 close to linear) but gives no coefficients; here we
report Pearson's r and Spearman's rho (scipy) per metric.

    rows = [evaluate_model(m, ds, "test") for m in models]
    correlate(rows)              # {"ndcg_at_10": {"pearson": -0.97, "spearman": -1.0, ...}, ...}
    plot_correlation(rows, "plots/")
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from densescale.evaluate.metrics import RANKING_KEYS, canonical, label

CE = "contrastive_entropy"


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Result rows of a results source, through ``densescale.study.results.read_results``:
    CSV, Parquet, JSON lines (``eval --out``), the results database (path or URL), a study
    spec, or a folder holding one of them; finished rows only where a ``status`` column
    exists. Old metric columns (``ndcg@10``) arrive under their keys (``ndcg_at_10``)."""
    from densescale.study.results import read_results

    frame = read_results(path, metric=None, done_only=True)
    return frame.drop(columns=["row"]).to_dict("records")


def _name(row: dict[str, Any]) -> str:
    """A model's label in the scatter: its ``model`` (eval rows), else its ``rung``."""
    for k in ("model", "rung"):
        v = row.get(k)
        if isinstance(v, str) and v:
            return v
    return ""


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _pairs(rows: Sequence[dict], x: str, y: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in rows:
        a, b = _num(r.get(x)), _num(r.get(y))
        if math.isfinite(a) and math.isfinite(b):
            xs.append(a)
            ys.append(b)
    return xs, ys


def correlate(rows: Sequence[dict[str, Any]], metric: str = CE,
              others: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Pearson and Spearman correlation of ``metric`` with each other metric across rows.

    Args:
        rows: one dict per evaluated model (``evaluate_model`` rows, or CSV/JSONL records).
        metric: the x variable (default contrastive entropy; lower is better, so good agreement
            shows as a *negative* correlation with nDCG/MRR/recall/MAP).
        others: metrics to correlate with (default: the columns of the rows that name a ranking
            metric of ``densescale.evaluate.metrics``, canonical keys or older aliases, in
            table order, and hold at least one number).

    Returns:
        {other: {"pearson", "pearson_p", "spearman", "spearman_p", "n"}} (nan when n < 3 or a
        column is constant).
    """
    from scipy import stats

    if others is None:
        present = set().union(*(r.keys() for r in rows)) if rows else set()
        found = [c for c in present if canonical(c) in RANKING_KEYS   # with values
                 and any(math.isfinite(_num(r.get(c))) for r in rows)]
        others = sorted(found, key=lambda c: (RANKING_KEYS.index(canonical(c)), c))
    out: dict[str, dict[str, float]] = {}
    for o in others:
        xs, ys = _pairs(rows, metric, o)
        res = {"pearson": math.nan, "pearson_p": math.nan, "spearman": math.nan,
               "spearman_p": math.nan, "n": len(xs)}
        if len(xs) >= 3 and len(set(xs)) > 1 and len(set(ys)) > 1:
            pr = stats.pearsonr(xs, ys)
            sr = stats.spearmanr(xs, ys)
            res.update(pearson=float(pr.statistic), pearson_p=float(pr.pvalue),
                       spearman=float(sr.statistic), spearman_p=float(sr.pvalue))
        out[o] = res
    return out


def plot_correlation(rows: Sequence[dict[str, Any]], out_dir: str | os.PathLike,
                     metric: str = CE, others: Sequence[str] | None = None) -> list[Path]:
    """One scatter per ranking metric vs contrastive entropy (PNG + SVG), like paper Fig. 2.

    Returns:
        Paths written (``<out_dir>/<metric>_vs_contrastive_entropy.{png,svg}``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from densescale.utils import atomic_write_bytes

    corr = correlate(rows, metric, others)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for o, c in corr.items():
        xs, ys = _pairs(rows, metric, o)
        labels = [_name(r) for r in rows
                  if math.isfinite(_num(r.get(metric))) and math.isfinite(_num(r.get(o)))]
        fig, ax = plt.subplots(figsize=(4.2, 3.4))
        ax.scatter(xs, ys, s=28, color="tab:blue", zorder=3)
        if len(labels) <= 12:
            for x, y, lab in zip(xs, ys, labels):
                ax.annotate(Path(lab).name, (x, y), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xlabel("contrastive entropy (lower is better)" if metric == CE else metric)
        ax.set_ylabel(label(o))
        ax.set_title(f"Pearson {c['pearson']:.3f}, Spearman {c['spearman']:.3f} (n={c['n']})",
                     fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        stem = f"{o.replace('@', '_at_').replace('/', '_')}_vs_{metric}"
        for ext in ("png", "svg"):
            import io

            buf = io.BytesIO()
            fig.savefig(buf, format=ext, dpi=150)
            atomic_write_bytes(out / f"{stem}.{ext}", buf.getvalue())
            written.append(out / f"{stem}.{ext}")
        plt.close(fig)
    return written
