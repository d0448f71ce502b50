"""`densescale report`: the HTML report of a study."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def report(
    results: str = typer.Option(..., "--results", help="Study spec (YAML), results database "
                                "(SQLite path or SQLAlchemy URL) or CSV."),
    out: Path = typer.Option(Path("report"), "--out", help="Output folder."),
    bootstrap: int = typer.Option(200, help="Bootstrap resamples for confidence intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    holdout: str | None = typer.Option(None, help="'largest' or a file; default: the study's "
                                          "held-out marks."),
    metric: str = typer.Option("contrastive_entropy", help="Metric column to fit."),
    method: str = typer.Option("lsq", help="lsq (the paper's least squares) or huber (Huber "
                               "loss on log residuals; robust when the metric spans decades)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write a self-contained HTML report (figures inline) plus PNG/SVG figures and fit JSONs."""
    from densescale.report.report import argv_command, make_report

    summary = make_report(results, out, bootstrap=bootstrap, seed=seed, holdout=holdout,
                          metric=metric, method=method, commands=[argv_command()])
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        typer.echo(f"report: {summary['html']} ({summary['n_runs']} runs, "
                   f"{len(summary['figures'])} figures)")
        for law, err in summary["errors"].items():
            typer.echo(f"  {law} law not fitted: {err}", err=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
