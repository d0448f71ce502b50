"""Figures of the fitted laws (paper figure numbering, arXiv v1), written as PNG and SVG.

* ``plot_model_law``: metric vs N, log N axis, linear metric, fitted curve (Fig. 1);
* ``plot_model_law_loglog``: the same on log-log axes (Fig. 3);
* ``plot_data_law``: metric vs D, log-log (Fig. 4);
* ``plot_annotations``: one data law per annotation type, crossings marked (Fig. 5);
* ``plot_joint``: one curve per model size, x = D; fitted points as dots, held-out points as red
  stars (Fig. 6);
* ``plot_residuals``: residuals of the fit and leave-one-out relative errors per point (x = the
  size for single laws, the fitted value for the joint law).

Every function returns the paths it wrote. Uses matplotlib's object API with the Agg canvas
(no pyplot global state, no display needed).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from densescale.utils import atomic_write_bytes

_FIT = dict(color="tab:blue", s=28, zorder=3, label="fitted points")
_HELD = dict(color="red", marker="*", s=140, zorder=4, label="held-out points")


def _save(fig: Figure, out_dir: str | Path, stem: str) -> list[Path]:
    out_dir = Path(out_dir)
    FigureCanvasAgg(fig)
    paths = []
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=150, bbox_inches="tight")
        path = out_dir / f"{stem}.{ext}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths


def _span(x: np.ndarray, pad: float = 1.5, num: int = 200) -> np.ndarray:
    return np.geomspace(x.min() / pad, x.max() * pad, num)


def _mask(heldout: Any, n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool) if heldout is None else np.asarray(heldout, dtype=bool)


def _label(law, keys: tuple[str, ...]) -> str:
    c = law.constants_dict()
    parts = [f"{k}={c[k]:.3g}" for k in keys]
    return ", ".join(parts) + f"  (R²={law.r2_:.3f})"


def _single(law, X, y, out_dir, heldout, stem, title, xlabel, metric, loglog, names=None):
    X = np.asarray(X, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float)
    held = _mask(heldout, len(y))
    fig = Figure(figsize=(5.5, 4))
    ax = fig.add_subplot()
    xs = _span(X)
    ax.plot(xs, law.predict(xs), color="tab:orange", lw=2, label=_label(law, law.constants))
    ax.scatter(X[~held], y[~held], **_FIT)
    if held.any():
        ax.scatter(X[held], y[held], **_HELD)
    for x, v, name in zip(X, y, names or [], strict=False):
        if name:
            ax.annotate(name, (x, v), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    if loglog:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=metric, title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, stem)


def plot_model_law(law, X, y, out_dir, *, heldout=None, names=None,
                   metric: str = "contrastive entropy", stem: str = "fig1_model_size"):
    """Metric vs N (log x, linear y) with the fitted model-size law (Fig. 1)."""
    return _single(law, X, y, out_dir, heldout, stem, "Model-size scaling",
                   "non-embedding parameters N", metric, False, names)


def plot_model_law_loglog(law, X, y, out_dir, *, heldout=None, names=None,
                          metric: str = "contrastive entropy",
                          stem: str = "fig3_model_size_loglog"):
    """Metric vs N on log-log axes with the fitted model-size law (Fig. 3)."""
    return _single(law, X, y, out_dir, heldout, stem, "Model-size scaling (log scale)",
                   "non-embedding parameters N", metric, True, names)


def plot_data_law(law, X, y, out_dir, *, heldout=None, metric: str = "contrastive entropy",
                  stem: str = "fig4_data_size"):
    """Metric vs D on log-log axes with the fitted data-size law (Fig. 4)."""
    return _single(law, X, y, out_dir, heldout, stem, "Data-size scaling (log scale)",
                   "annotated query-passage pairs D", metric, True)


def plot_annotations(comparison, frame, out_dir, *, metric: str = "contrastive entropy",
                     column: str = "y", stem: str = "fig5_annotations"):
    """One fitted data law per annotation type (log-log) with crossings marked (Fig. 5)."""
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    colors = [f"C{i}" for i in range(10)]
    allx = frame["d"].to_numpy(float)
    hi = allx.max() * 3                 # show crossings up to 100x beyond the data
    for c in comparison.crossings:
        if c.d is not None and c.d <= allx.max() * 100:
            hi = max(hi, c.d * 2)
    xs = np.geomspace(allx.min() / 1.5, hi, 200)
    for i, (t, law) in enumerate(comparison.laws.items()):
        sub = frame[frame["annotation"].astype(str) == t]
        col = colors[i % 10]
        ax.scatter(sub["d"], sub[column], color=col, s=22, zorder=3)
        ax.plot(xs, law.predict(xs), color=col, lw=1.8,
                label=f"{t}: β={law.beta_:.3g}, R²={law.r2_:.3f}")
    for c in comparison.crossings:
        if c.d is not None and c.d <= xs.max():
            ax.axvline(c.d, color="grey", ls=":", lw=1)
            ax.annotate(f"{c.overtaker} > {c.overtaken}", (c.d, ax.get_ylim()[1]), fontsize=6,
                        rotation=90, va="top", ha="right")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="annotated query-passage pairs D", ylabel=metric,
           title="Annotation quality (data-size scaling per type)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, stem)


def plot_joint(law, X, y, out_dir, *, heldout=None, metric: str = "contrastive entropy",
               stem: str = "fig6_joint"):
    """Joint law: one curve per model size, x = D; dots fitted, red stars held out (Fig. 6)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    held = _mask(heldout, len(y))
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    ds = _span(X[:, 1])
    sizes = np.unique(X[:, 0])
    for i, n in enumerate(sizes):
        col = f"C{i % 10}"
        ax.plot(ds, law.predict(np.c_[np.full_like(ds, n), ds]), color=col, lw=1.5,
                label=f"N={n / 1e6:.3g}M")
        sel = np.isclose(X[:, 0], n)
        ax.scatter(X[sel & ~held, 1], y[sel & ~held], color=col, s=24, zorder=3)
        if (sel & held).any():
            ax.scatter(X[sel & held, 1], y[sel & held], color="red", marker="*", s=140,
                       zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="annotated query-passage pairs D", ylabel=metric,
           title="Joint law " + _label(law, ("alpha", "beta")))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, out_dir, stem)


def plot_residuals(law, out_dir, *, metric: str = "contrastive entropy",
                   stem: str = "residuals"):
    """Two panels per fitted point: residual ``observed - fitted`` and the leave-one-out
    relative error ``(predicted without the point - observed) / observed``."""
    X, y, res, loo = law.X_, law.y_, law.residuals_, law.loo_
    single = X.shape[1] == 1
    x = X[:, 0] if single else y - res
    xlabel = ({"n": "non-embedding parameters N", "d": "annotated query-passage pairs D"}
              [law.features[0]] if single else f"fitted {metric}")
    fig = Figure(figsize=(9, 3.6))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.axhline(0, color="grey", lw=1)
    ax1.scatter(x, res, **{**_FIT, "label": None})
    ax1.set(xlabel=xlabel, ylabel=f"observed - fitted {metric}",
            title=f"Residuals (R²={law.r2_:.3f}, log-scale R²={law.r2_log_:.3f})")
    ok = np.isfinite(loo)
    ax2.axhline(0, color="grey", lw=1)
    ax2.scatter(x[ok], 100 * (loo[ok] - y[ok]) / y[ok], color="tab:purple", s=28, zorder=3)
    ax2.set(xlabel=xlabel, ylabel="relative error (%)",
            title="Leave-one-out prediction error")
    for ax in (ax1, ax2):
        if single:
            ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out_dir, stem)
