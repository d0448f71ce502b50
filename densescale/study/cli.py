"""``densescale study run|status|export``.

    densescale study run configs/tiny.yaml [--executor local|processes|ray] [--quiet] [--json]
    densescale study status configs/tiny.yaml [--json]
    densescale study export configs/tiny.yaml --out results/ [--format csv|parquet|both]
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from densescale.errors import ConfigError
from densescale.utils import dump_json

ExportFormat = StrEnum("ExportFormat", {v: v for v in ("csv", "parquet", "both")})  # type: ignore[misc]

study_app = typer.Typer(help="Run a study (a grid of training runs) and read its results.",
                        no_args_is_help=True)


def _print_status(summary: dict, as_json: bool) -> None:
    if as_json:
        dump_json(summary, indent=None)
        return
    from rich.console import Console
    from rich.table import Table

    c = summary["counts"]
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"{summary['study']} ({summary['spec_hash']}): {c['done']}/"
                        f"{summary['total']} done, {c['running']} running, {c['failed']} failed, "
                        f"{c['pending']} pending")
    for col in ("point", "N", "D", "annotation", "seed", "held out", "status", "tries", "CE",
                "stderr", "learned", "time s"):
        table.add_column(col)
    fmt = lambda v, f: "" if v is None else format(v, f)  # noqa: E731
    for p in summary["points"]:
        table.add_row(p["point_key"], fmt(p["n"], ","), fmt(p["d"], ","), p["annotation"],
                      str(p["seed"]), "yes" if p["heldout"] else "", p["status"],
                      str(p["attempts"]), fmt(p["contrastive_entropy"], ".4f"),
                      fmt(p["contrastive_entropy_stderr"], ".4f"),
                      {True: "yes", False: "NO"}.get(p.get("learned"), ""),
                      fmt(p["wall_time_s"], ".1f"))
    console.print(table)
    for p in summary["points"]:
        if p["status"] == "running" and p.get("owner"):
            console.print(f"{p['point_key']} is running on {p['owner']}")
        if p.get("learned") is False and p["status"] == "done":
            console.print(f"[yellow]{p['point_key']}[/yellow] did not learn: "
                          f"{p.get('invalid_reason')}")
    for p in summary["points"]:
        if p["status"] == "failed" and p["error"]:
            console.print(f"[red]{p['point_key']}[/red]: {p['error']}")


@study_app.command("run")
def run_cmd(
    spec: str = typer.Argument(..., help="Study spec YAML."),
    executor: str = typer.Option("local", help="local (sequential), processes (--num-cpus "
                                 "points side by side on this machine) or ray."),
    address: str = typer.Option(None, help="Ray cluster address (e.g. auto); default: start a "
                                           "local Ray."),
    max_retries: int = typer.Option(2, help="Extra attempts for a failing point."),
    num_cpus: int = typer.Option(None, help="processes: points side by side; ray: CPUs of a local "
                                "Ray instance (default: all)."),
    cpus_per_task: float = typer.Option(1.0, help="Ray: CPUs per point without GPUs."),
    gpus_per_task: float = typer.Option(None, help="Ray: GPUs per point (default 1 if any)."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress",
                                         help="Training progress on stderr (default: on; "
                                         "--no-progress = --quiet)."),
    quiet: bool = typer.Option(False, "--quiet", help="No training progress on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the final status as JSON."),
) -> None:
    """Run every point of SPEC that is not finished yet (resumable; safe to kill and re-run)."""
    from densescale.study.driver import run_study

    progress = not quiet and progress is not False
    summary = run_study(spec, executor=executor, address=address, max_retries=max_retries,
                        num_cpus=num_cpus, cpus_per_task=cpus_per_task,
                        gpus_per_task=gpus_per_task, progress=progress)
    _print_status(summary, as_json)
    if summary["counts"]["failed"]:
        raise typer.Exit(1)


@study_app.command("status")
def status_cmd(
    spec: str = typer.Argument(..., help="Study spec YAML."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Done / running / failed / pending counts and one line per point."""
    from densescale.study.driver import study_status

    _print_status(study_status(spec), as_json)


@study_app.command("export")
def export_cmd(
    spec: str = typer.Argument(..., help="Study spec YAML, or a results database URL/path."),
    out: Path = typer.Option(None, "--out", help="Folder to write results.csv into (and "
                             "results.parquet with --format parquet|both)."),
    fmt: ExportFormat = typer.Option("csv", "--format", help="What --out writes."),
    csv: str = typer.Option(None, "--csv", help="Write CSV to this file (instead of --out)."),
    parquet: str = typer.Option(None, "--parquet",
                                help="Write Parquet to this file (instead of --out)."),
    as_json: bool = typer.Option(False, "--json", help="Print {rows, files} as JSON."),
) -> None:
    """Write the results table (one row per run) for pandas, R or a spreadsheet."""
    from densescale.study.driver import export

    if out is not None:
        from densescale.evaluate.cli import output_folder

        if csv or parquet:
            raise ConfigError("give either --out DIR or --csv/--parquet FILE, not both")
        folder = output_folder(out, "--out", "results.csv / results.parquet")
        csv = str(folder / "results.csv") if str(fmt) in ("csv", "both") else None
        parquet = str(folder / "results.parquet") if str(fmt) in ("parquet", "both") else None
    n = export(spec, csv=csv, parquet=parquet)
    files = [f for f in (csv, parquet) if f]
    if as_json:
        dump_json({"rows": n, "files": files}, indent=None)
    else:
        print(f"wrote {n} rows to {', '.join(files)}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
