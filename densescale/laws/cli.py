"""``densescale fit``: fit a scaling law to a results table.

    densescale fit --results results.csv --law model --bootstrap 1000 --plot figs/
    densescale fit --results study.db --law joint --holdout largest --out fits/ --json
    densescale fit --results results.csv --law annotations --bootstrap 1000
    densescale fit --results spec.yaml --law data --annotation llm --method huber

Reads with ``densescale.study.results.read_results`` and fits with ``densescale.laws.fit_law``
(the same two calls the report makes); warnings go to stderr, ``--json`` prints one document.
"""

from __future__ import annotations

import os
import sys
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from densescale.laws.api import LAWS, fit_law
from densescale.laws.base import BOOTSTRAP_MODES, METHODS
from densescale.laws.validate import SPLITS
from densescale.study.results import DEFAULT_METRIC, read_results
from densescale.utils import dump_json

Law = StrEnum("Law", {v: v for v in LAWS})  # type: ignore[misc]
Method = StrEnum("Method", {v: v for v in METHODS})  # type: ignore[misc]
BootstrapMode = StrEnum("BootstrapMode", {v: v for v in BOOTSTRAP_MODES})  # type: ignore[misc]
HOLDOUT_HELP = ("points held out of the fit and predicted: largest (the largest N and/or D), "
                "largest-n (joint and model laws), largest-d (joint and data laws) or a CSV file "
                "of held-out points (n, d)")


def check_holdout(value: str | None) -> str | None:
    """--holdout callback: one of :data:`SPLITS` or an existing file, else a usage error."""
    if value is None or value in SPLITS or os.path.isfile(value):
        return value
    raise typer.BadParameter(f"{value!r} is not one of {', '.join(SPLITS)} nor an existing "
                             "file of held-out points")


def fit_file(law: str, annotation: str | None = None) -> str:
    """Name of the fit JSON inside ``fit --out DIR``: ``<law>.json`` (``data-llm.json`` for
    the data law of one annotation type), the names ``report`` uses under ``fits/``."""
    return f"{law}-{annotation}.json" if annotation and law == "data" else f"{law}.json"


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.4g}"


def _print_human(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]{doc['law']} law[/] on {doc['source']} ({doc['metric']}; "
              f"{doc['selection']}; {doc['n_rows']} rows; method {doc['method']})")
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
        t.add_row("R² (log y)", f"{fit['r2_log']:.5f}", "")
        t.add_row("RMSE", _fmt(fit["rmse"]), "")
        loo = fit.get("loo") or {}
        if loo.get("mean_abs_rel_error") is not None:
            t.add_row("leave-one-out rel. error", f"mean {100 * loo['mean_abs_rel_error']:.2f}%, "
                      f"max {100 * loo['max_abs_rel_error']:.2f}%", "")
        if fit.get("huber_delta") is not None:
            t.add_row("Huber threshold (log)", _fmt(fit["huber_delta"]), "")
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
    for p in ([doc["out"]] if doc.get("out") else []) + doc.get("plots", []):
        con.print(f"wrote {p}")


def fit_command(
    results: str = typer.Option(..., "--results", help="CSV, study .db/.sqlite, SQLAlchemy URL "
                                "or study spec .yaml"),
    law: Law = typer.Option("model", "--law", help="which law: L(N) model size, L(D) data "
                            "size, L(N, D) joint, or L(D) per annotation type"),
    metric: str = typer.Option(DEFAULT_METRIC, "--metric", help="metric column (lower = better)"),
    method: Method = typer.Option("lsq", "--method", help="lsq (least squares, the paper's) "
                                  "or huber (Huber on log residuals, threshold from the data)"),
    huber_delta: float | None = typer.Option(None, "--huber-delta", help="Huber threshold on "
                                             "log residuals (default: 1.345 x robust SD of the "
                                             "least-squares log residuals)"),
    include_not_learned: bool = typer.Option(False, "--include-not-learned",
                                             help="keep points whose model did not learn "
                                             "(learned = False; left out by default)"),
    holdout: str | None = typer.Option(None, "--holdout", help=HOLDOUT_HELP,
                                       callback=check_holdout),
    bootstrap: int = typer.Option(0, "--bootstrap", help="bootstrap refits for the CIs"),
    bootstrap_mode: BootstrapMode = typer.Option(
        "resample", "--bootstrap-mode", help="resample points, parametric (draws from each "
        "point's stderr), or both"),
    level: float = typer.Option(0.95, "--level", help="confidence level"),
    seed: int = typer.Option(0, "--seed", help="seed of the bootstrap draws (CIs)"),
    annotation: str | None = typer.Option(None, "--annotation",
                                             help="annotation type (default: human)"),
    out: Path | None = typer.Option(None, "--out", help="folder: write the fit JSON there as "
                                    "<law>.json (data-<annotation>.json for --law data "
                                    "--annotation X); PlanningLaw.from_json reads it"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    plot: Path | None = typer.Option(None, "--plot", help="write PNG+SVG figures here"),
) -> None:
    """Fit L(N), L(D), L(N,D) or per-annotation L(D) with CIs, held-out and leave-one-out
    errors; points that did not learn are left out (and named) unless --include-not-learned."""
    from densescale.evaluate.cli import output_folder

    if plot is not None:
        output_folder(plot, "--plot", "PNG and SVG figures")  # fail early, naming the folder
    name = fit_file(law.value, annotation)
    out_file = output_folder(out, "--out", name) / name if out is not None else None
    frame = read_results(results, metric)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")               # printed below from the document
        doc = fit_law(frame, law.value, method=method.value, holdout=holdout,
                      bootstrap=bootstrap, bootstrap_mode=bootstrap_mode.value, level=level,
                      seed=seed, annotation=annotation, include_not_learned=include_not_learned,
                      huber_delta=huber_delta, out=out_file, plot=plot)
    if out_file is not None:
        doc["out"] = str(out_file)
    for w in doc["warnings"]:
        sys.stderr.write(f"warning: {w}\n")
    if as_json:
        dump_json(doc, indent=None)
    else:
        _print_human(doc)


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)
