"""``densescale fit``: fit a scaling law to a results table.

    densescale fit --results results.csv --law model --bootstrap 1000 --plot figs/
    densescale fit --results study.db --law joint --holdout largest --out fit.json --json
    densescale fit --results results.csv --law annotations --bootstrap 1000
    densescale fit --results spec.yaml --law data --annotation llm --method huber
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import typer

from densescale.errors import DenseScaleError
from densescale.laws import ESTIMATORS
from densescale.laws.compare import compare_annotations
from densescale.laws.io import (
    DEFAULT_METRIC,
    X_of,
    read_holdout_file,
    read_results,
    select_rows,
    sigma_of,
)
from densescale.laws.validate import SPLITS, holdout_mask, holdout_validate
from densescale.utils import atomic_write_json

LAWS = ("model", "data", "joint", "annotations")


def run_fit(results: str, law: str = "model", *, metric: str = DEFAULT_METRIC,
            method: str = "lsq", holdout: str | None = None, bootstrap: int = 0,
            bootstrap_mode: str = "resample", level: float = 0.95, seed: int = 0,
            annotation: str | None = None, out: Path | None = None,
            plot: Path | None = None) -> dict[str, Any]:
    """Everything ``densescale fit`` does, returning the JSON document it prints."""
    from densescale.laws import plots

    if law not in LAWS:
        raise DenseScaleError(f"--law must be one of {LAWS}, got {law!r}")
    frame = read_results(results, metric)
    rows, note = select_rows(frame, law, annotation)
    doc: dict[str, Any] = {"law": law, "source": str(results), "metric": metric,
                           "selection": note, "n_rows": len(rows)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if law == "annotations":
            cmp = compare_annotations(rows, method=method, bootstrap=bootstrap, level=level,
                                      seed=seed)
            doc.update(cmp.to_dict())
            if plot:
                doc["plots"] = [str(p) for p in plots.plot_annotations(cmp, rows, plot,
                                                                       metric=metric)]
            if out:
                atomic_write_json(out, doc)
            return doc
        X, y, sigma = X_of(rows, law), rows["y"].to_numpy(float), sigma_of(rows)
        if holdout in SPLITS:
            mask = holdout_mask(X, law, holdout)
        elif holdout:
            mask = read_holdout_file(holdout, rows)
        else:
            mask = rows["heldout"].to_numpy(bool)
        est = ESTIMATORS[law](method=method, bootstrap=bootstrap,
                              bootstrap_mode=bootstrap_mode, level=level, seed=seed)
        if mask.any():
            res = holdout_validate(est, X, y, mask, sigma)
            hd = res.to_dict()
            hd.pop("fit")
            doc["holdout"] = hd
        else:
            est.fit(X, y, sigma)
    fit = est.to_dict()
    doc["fit"] = fit
    if out:
        atomic_write_json(out, {**fit, "metric": metric, "source": str(results),
                                "selection": note, "holdout": doc.get("holdout")})
    if plot:
        kw = dict(heldout=mask, metric=metric)
        paths = []
        if law == "model":
            paths += plots.plot_model_law(est, X, y, plot, **kw)
            paths += plots.plot_model_law_loglog(est, X, y, plot, **kw)
        elif law == "data":
            paths += plots.plot_data_law(est, X, y, plot, **kw)
        else:
            paths += plots.plot_joint(est, X, y, plot, **kw)
        doc["plots"] = [str(p) for p in paths]
    return doc


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.4g}"


def _print_human(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]{doc['law']} law[/] on {doc['source']} ({doc['metric']}; "
              f"{doc['selection']}; {doc['n_rows']} rows)")
    fits = doc["laws"] if doc["law"] == "annotations" else {"": doc["fit"]}
    for name, fit in fits.items():
        level = fit.get("ci_level")
        t = Table(title=f"{name} " if name else None, show_header=True)
        t.add_column("constant")
        t.add_column("value", justify="right")
        t.add_column(f"{int(round(level * 100))}% CI" if level else "CI", justify="right")
        for k in ("A", "B", "alpha", "beta", "delta"):
            if k in fit:
                ci = fit["ci"].get(k)
                t.add_row(k, _fmt(fit[k]), f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "—")
        t.add_row("R²", f"{fit['r2']:.5f}", "")
        t.add_row("RMSE", _fmt(fit["rmse"]), "")
        con.print(t)
        for w in fit.get("warnings", []):
            con.print(f"[yellow]warning:[/] {w}")
    if "holdout" in doc:
        h = doc["holdout"]
        t = Table(title=f"held-out points ({h['n_heldout']}; fitted on {h['n_fit']})")
        keys = [k for k in ("n", "d") if k in h["points"][0]]
        for c in (*keys, "observed", "predicted", "abs err", "rel err"):
            t.add_column(c, justify="right")
        for p in h["points"]:
            t.add_row(*[_fmt(p[k]) for k in keys], _fmt(p["observed"]), _fmt(p["predicted"]),
                      _fmt(p["abs_error"]), f"{100 * p['rel_error']:.2f}%")
        con.print(t)
        con.print(f"mean abs error {_fmt(h['mean_abs_error'])}, mean rel error "
                  f"{100 * h['mean_rel_error']:.2f}%")
    for c in doc.get("crossings", []):
        if c["d"] is None:
            con.print(f"{c['overtaker']} stays better than {c['overtaken']} up to D = "
                      f"{doc['d_max']:.0e} (no crossing)")
        else:
            ci = f" (CI {_fmt(c['ci'][0])}–{_fmt(c['ci'][1])})" if c.get("ci") else ""
            con.print(f"{c['overtaker']} overtakes {c['overtaken']} at D ≈ {_fmt(c['d'])}{ci}"
                      + (" (extrapolated beyond the fitted D)" if c["extrapolated"] else ""))
    for p in doc.get("plots", []):
        con.print(f"wrote {p}")


def fit_command(
    results: str = typer.Option(..., "--results", help="CSV, study .db/.sqlite, SQLAlchemy URL "
                                "or study spec .yaml"),
    law: str = typer.Option("model", "--law", help="model | data | joint | annotations"),
    metric: str = typer.Option(DEFAULT_METRIC, "--metric", help="metric column (lower = better)"),
    method: str = typer.Option("lsq", "--method", help="lsq (paper) | huber (Chinchilla 3)"),
    holdout: str | None = typer.Option(None, "--holdout", help="largest | largest-n | "
                                          "largest-d | CSV of held-out points (n, d)"),
    bootstrap: int = typer.Option(0, "--bootstrap", help="bootstrap refits for the CIs"),
    bootstrap_mode: str = typer.Option("resample", "--bootstrap-mode",
                                       help="resample | parametric | both (uses stderr)"),
    level: float = typer.Option(0.95, "--level", help="confidence level"),
    seed: int = typer.Option(0, "--seed"),
    annotation: str | None = typer.Option(None, "--annotation",
                                             help="annotation type (default: human)"),
    out: Path | None = typer.Option(None, "--out", help="write the fit JSON here"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    plot: Path | None = typer.Option(None, "--plot", help="write PNG+SVG figures here"),
) -> None:
    """Fit L(N), L(D), L(N,D) or per-annotation L(D) with CIs and held-out errors."""
    doc = run_fit(results, law, metric=metric, method=method, holdout=holdout,
                  bootstrap=bootstrap, bootstrap_mode=bootstrap_mode, level=level, seed=seed,
                  annotation=annotation, out=out, plot=plot)
    if as_json:
        sys.stdout.write(json.dumps(doc, default=_json_default) + "\n")
    else:
        _print_human(doc)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)
