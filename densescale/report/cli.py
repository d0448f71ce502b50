"""`densescale report`: the HTML report of a study."""

from __future__ import annotations

from pathlib import Path

import typer

from densescale.utils import dump_json


def _check_holdout(value: str | None) -> str | None:
    from densescale.laws.cli import check_holdout

    return check_holdout(value)


def report(
    results: str = typer.Option(..., "--results", help="Study spec (YAML), results database "
                                "(SQLite path or SQLAlchemy URL) or CSV."),
    out: Path = typer.Option(Path("report"), "--out", help="Output folder."),
    bootstrap: int = typer.Option(200, help="Bootstrap resamples for confidence intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    holdout: str | None = typer.Option(
        None, callback=_check_holdout,
        help="Points held out of each fit, as for `fit --holdout`: largest, largest-n, "
        "largest-d (each law takes what applies to it: largest-n the model and joint laws, "
        "largest-d the data and joint laws; the report says why for the others) or a CSV "
        "file of held-out points (n, d); "
        "default: the study's held-out marks."),
    metric: str = typer.Option("contrastive_entropy", help="Metric column to fit: "
                               "contrastive_entropy (raw, the paper's) or "
                               "contrastive_entropy_calibrated (at the model's own scale)."),
    include_not_learned: bool = typer.Option(False, help="Fit the points that did not learn "
                                             "too (left out by default, and named)."),
    method: str = typer.Option("lsq", help="lsq (the paper's least squares) or huber (Huber "
                               "loss on log residuals; robust when the metric spans decades)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write a self-contained HTML report (figures inline) plus PNG/SVG figures and fit JSONs."""
    from densescale.evaluate.cli import output_folder
    from densescale.report.output import missing_folders, remove_empty
    from densescale.report.report import argv_command, make_report

    created = missing_folders(out)  # removed again when the report fails
    try:
        output_folder(out, "--out", "index.html, report.json, figures/, fits/")
        summary = make_report(results, out, bootstrap=bootstrap, seed=seed, holdout=holdout,
                              metric=metric, method=method,
                              include_not_learned=include_not_learned,
                              commands=[argv_command()])
    except BaseException:
        remove_empty(created)
        raise
    if as_json:
        dump_json(summary)
    else:
        typer.echo(f"report: {summary['html']} ({summary['n_runs']} runs, "
                   f"{len(summary['figures'])} figures)")
        for law, err in summary["errors"].items():
            typer.echo(f"  {law} law not fitted: {err}", err=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
