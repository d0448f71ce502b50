"""``densescale eval`` and ``densescale correlate``.

    densescale eval --model runs/bert-tiny --data squad_v11 --split test --out evals/ --json
    densescale eval --run bm25.trec --data squad_v11 --bm25 --out evals/ --json
    densescale correlate --results evals/ --plot plots/

The evaluation flags (``--negatives``, ``--repeats``, ``--k``, ``--ranking-pool-size`` ...) are
generated from ``EvalConfig``'s fields, so the command and the config cannot drift apart; a flag
left out keeps EvalConfig's default.
"""

from __future__ import annotations

import contextlib
import inspect
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from densescale.errors import ConfigError
from densescale.evaluate.config import EvalConfig
from densescale.utils import DATA_SOURCES, dump_json, json_text
from densescale.utils import json_safe as json_safe  # re-exported: densescale.report.report

_P = inspect.Parameter
FILE_SUFFIXES = (".json", ".jsonl", ".trec", ".run", ".txt", ".tsv", ".csv", ".parquet", ".png",
                 ".svg", ".pdf", ".html")
RESULTS_FILE = "results.jsonl"  # eval --out DIR: one result row appended per evaluation
RUN_FILE = "run.trec"  # eval --run-out DIR: the TREC run of the last evaluation


def output_folder(path: Path, flag: str, inside: str) -> Path:
    """Check (and create) the folder an ``--out``-style flag names; every ``--out`` is a folder.

    Args:
        path: the flag's value.
        flag: the flag, for the message (``--out``).
        inside: the file(s) written inside it, for the message (``results.jsonl``).

    Raises:
        ConfigError: the path names a file (an existing one, or a name ending in .json,
            .jsonl, .trec ... that does not exist yet as a folder).
        OutputError: the folder cannot be created or written (from ``prepare_output_dir``).
    """
    from densescale.utils import prepare_output_dir

    p = Path(path)
    if p.is_file() or (not p.is_dir() and p.suffix.lower() in FILE_SUFFIXES):
        raise ConfigError(f"{flag} takes a folder (the command writes {inside} inside it), "
                          f"not a file: {p}")
    return prepare_output_dir(p)


def _cli_type(annotation: Any) -> type:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        return _cli_type(non_none[0]) if len(non_none) == 1 else str
    return annotation if annotation in (int, float, bool, str) else str


def _config_params() -> list[inspect.Parameter]:
    """One flag per EvalConfig field; the help and the shown default come from the field."""
    defaults = EvalConfig()
    params = []
    for name, field in EvalConfig.model_fields.items():
        t = _cli_type(field.annotation)
        flag = "--" + name.replace("_", "-")
        decls = [f"{flag}/--no-{name.replace('_', '-')}"] if t is bool else [flag]
        value = getattr(defaults, name)
        shown = ",".join(value) if isinstance(value, tuple) else value
        if isinstance(value, tuple):
            help_ = f"{field.description} (comma-separated)"
        else:
            help_ = field.description or ""
        params.append(_P(name, _P.KEYWORD_ONLY, annotation=t | None,
                         default=typer.Option(None, *decls, show_default=False,
                                              help=f"{help_} (default: {shown})")))
    return params


def default_split(ds: Any) -> str:
    """The split ``eval`` reports when ``--split`` is not given: the one the dataset id named
    (``beir/<name>/<split>``, ``irds:<id>`` of one split), else ``test``."""
    return getattr(ds, "default_split", None) or "test"


def config_from_flags(given: dict[str, Any]) -> EvalConfig:
    """EvalConfig from the generated flags (None = not given; "none" clears an optional one)."""
    kw: dict[str, Any] = {}
    for name, v in given.items():
        if v is None:
            continue
        if isinstance(v, str) and v.lower() == "none":
            v = None
        elif isinstance(getattr(EvalConfig(), name), tuple):
            v = tuple(x.strip() for x in v.split(",") if x.strip())
        kw[name] = v
    return EvalConfig.make(**kw)


def _opt(name: str, annotation: Any, default: Any, *decls: str, help: str) -> inspect.Parameter:
    return _P(name, _P.KEYWORD_ONLY, annotation=annotation,
              default=typer.Option(default, *decls, help=help))


def _run_params() -> list[inspect.Parameter]:
    return [
        _opt("model", Path | None, None, "--model", help="Model folder: densescale checkpoint, "
             "sentence-transformers model or Hugging Face encoder (or give --run)."),
        _opt("trec_run", Path | None, None, "--run", help="Score this TREC run instead of a "
             "model (BM25, pyserini, Tevatron ...): ranking metrics on the same queries a "
             "model is ranked on; a query missing from the run scores 0."),
        _opt("data", str, ..., "--data", help=f"Dataset: {DATA_SOURCES}."),
        _opt("split", str | None, None, "--split", help="qrels split to evaluate (reported); "
             "default: the split the dataset id names (beir/scifact/dev -> dev, "
             "irds:.../test -> test), else test."),
        _opt("calibrate", str, "auto", "--calibrate", help="Calibrated contrastive entropy: "
             "auto (declared scale, else a temperature fitted on the selection split when "
             "scores are bounded), declared, fit, none."),
        _opt("bm25", bool, False, "--bm25", help="Also rank with BM25 on the same queries and "
             "pool (bm25_<metric> columns; cached per dataset, split, queries and pool)."),
        _opt("normalized", bool, False, "--normalized", help="Treat the model's embeddings as "
             "unit-norm (bounded scores): report a calibrated value."),
        _opt("query_max_len", int | None, None, "--query-max-len",
             help="Token limit for queries (ST/HF models)."),
        _opt("passage_max_len", int | None, None, "--passage-max-len",
             help="Token limit for passages (ST/HF models)."),
        _opt("device", str | None, None, "--device", help="cpu, cuda, ... (default: auto)."),
        _opt("run_out", Path | None, None, "--run-out", help=f"Folder: write the TREC run "
             f"there as {RUN_FILE} (replaced)."),
        _opt("out", Path | None, None, "--out", help=f"Folder: also append the result row to "
             f"{RESULTS_FILE} there (one line per evaluation; `correlate --results` reads it)."),
        _opt("as_json", bool, False, "--json", help="Print one JSON document (NaN as null)."),
        _opt("quiet", bool, False, "--quiet", help="No progress on stderr (default: bars on a "
             "terminal, a line every 10 s otherwise)."),
    ]


@contextlib.contextmanager
def _third_party_bars(enabled: bool) -> Iterator[None]:
    """Silence the transformers progress bars (model loading) inside, unless ``enabled``."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not enabled:
            hf_logging.enable_progress_bar()


def eval_cmd(**kw: Any) -> None:
    """Contrastive entropy (mean ± stderr over repeats) and ranking metrics of one model, or the
    ranking metrics of an external TREC run (--run)."""
    from densescale.data import open_dataset
    from densescale.evaluate.combined import evaluate_model
    from densescale.evaluate.encoders import load_scorer
    from densescale.evaluate.metrics import canonical, label

    run = {p.name: kw.pop(p.name) for p in _run_params()}
    cfg = config_from_flags(kw)
    if (run["model"] is None) == (run["trec_run"] is None):
        raise ConfigError("give exactly one of --model (a model to evaluate) and --run (a TREC "
                          "run to score)")
    if run["trec_run"] is not None and run["run_out"] is not None:
        raise ConfigError("--run-out writes a model's run; with --run the run is the input")
    if run["run_out"] is not None and not cfg.ranking:
        raise ConfigError("--run-out needs ranking (drop --no-ranking)")
    out = output_folder(run["out"], "--out", RESULTS_FILE) if run["out"] else None
    run_out = output_folder(run["run_out"], "--run-out", RUN_FILE) if run["run_out"] else None
    ds = open_dataset(run["data"])
    run["split"] = run["split"] or default_split(ds)
    if run["trec_run"] is not None:
        return _score_run(run, cfg, ds, out)
    with _third_party_bars(not run["quiet"]):
        scorer = load_scorer(run["model"], run["query_max_len"], run["passage_max_len"],
                             run["device"])
        row = evaluate_model(scorer, ds, run["split"], cfg, bm25=run["bm25"],
                             calibrate=run["calibrate"], normalized=run["normalized"] or None,
                             run_path=run_out / RUN_FILE if run_out else None,
                             device=run["device"],
                             progress=not run["quiet"])
    row["model"] = str(run["model"])
    row["eval_config"] = cfg.to_dict()
    if _record(row, out, run["as_json"]):
        return
    typer.echo(f"{run['model']} on {ds.name}/{run['split']}: {row['n_pairs']} pairs, "
               f"W={cfg.negatives}, R={cfg.repeats}, pool={row['pool_size']}")
    typer.echo(f"contrastive entropy  {row['contrastive_entropy']:.4f} ± "
               f"{row['contrastive_entropy_stderr']:.4f} (stderr over repeats; over pairs "
               f"± {row['contrastive_entropy_pair_stderr']:.4f}); chance ln(W+1) = "
               f"{row['chance']:.4f}")
    if row["contrastive_entropy_calibrated"] is not None:
        typer.echo(f"calibrated           {row['contrastive_entropy_calibrated']:.4f} ± "
                   f"{row['contrastive_entropy_calibrated_stderr']:.4f} (scale "
                   f"{row['calibration_scale']:.3g}, {row['calibration_source']})")
    if cfg.ranking or run["bm25"]:
        head = f"{'':<20} {'model':>8}" if cfg.ranking else f"{'':<20}"
        typer.echo(head + (f" {'BM25':>8}" if run["bm25"] else ""))
        for m in cfg.metrics:
            key = canonical(m)
            line = f"{label(m):<20}" + (f" {row[key]:>8.4f}" if cfg.ranking else "")
            typer.echo(line + (f" {row['bm25_' + key]:>8.4f}" if run["bm25"] else ""))
    typer.echo(f"time {row['seconds_total']:.1f}s")


def _record(row: dict[str, Any], out: Path | None, as_json: bool) -> bool:
    """Append the row to ``out/results.jsonl`` (one write per row) and print it as JSON when
    asked; True when it was printed (the caller then prints nothing else)."""
    if out is not None:
        with open(out / RESULTS_FILE, "a", encoding="utf-8") as f:
            f.write(json_text(row, indent=None) + "\n")
    if as_json:
        dump_json(row)
    return as_json


def _score_run(run: dict[str, Any], cfg: EvalConfig, ds: Any, out: Path | None) -> None:
    """``eval --run``: the ranking metrics of an external TREC run (and BM25 beside them)."""
    from densescale.evaluate.external import run_metrics
    from densescale.evaluate.metrics import canonical, label

    row: dict[str, Any] = {"run": str(run["trec_run"]), "dataset": ds.name,
                           "split": run["split"]}
    row.update(run_metrics(ds, run["split"], run["trec_run"], cfg))
    if run["bm25"]:
        from densescale.evaluate.bm25 import bm25_metrics, prefixed

        row.update(prefixed(bm25_metrics(ds, run["split"], cfg, progress=not run["quiet"])))
    row["eval_config"] = cfg.to_dict()
    if _record(row, out, run["as_json"]):
        return
    typer.echo(f"{run['trec_run']} on {ds.name}/{run['split']}: {row['n_run_queries']} of "
               f"{row['n_ranked_queries']} ranked queries in the run (depth {row['run_depth']})")
    typer.echo(f"{'':<20} {'run':>8}" + (f" {'BM25':>8}" if run["bm25"] else ""))
    for m in cfg.metrics:
        key = canonical(m)
        typer.echo(f"{label(m):<20} {row[key]:>8.4f}"
                   + (f" {row['bm25_' + key]:>8.4f}" if run["bm25"] else ""))


eval_cmd.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    _run_params() + _config_params())


def correlate_cmd(
    results: str = typer.Option(..., "--results", help="Result rows (one per model): a folder "
                                "from `densescale eval --out` (results.jsonl), JSONL, CSV, "
                                "Parquet, a study database (path or URL) or a study spec."),
    metric: str = typer.Option("contrastive_entropy", "--metric", help="x variable."),
    others: str | None = typer.Option(None, "--others", help="Comma-separated metrics "
                                      "(default: ranking metrics found in the rows)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write PNG+SVG scatter plots here."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Pearson/Spearman correlation of contrastive entropy with ranking metrics (paper Fig. 2)."""
    from densescale.evaluate.correlation import correlate, plot_correlation, read_rows

    if plot is not None:
        output_folder(plot, "--plot", "<metric>_vs_<x>.png/.svg")
    rows = read_rows(results)
    other_list = [o.strip() for o in others.split(",")] if others else None
    corr = correlate(rows, metric, other_list)
    if not corr:
        raise ConfigError("no ranking metric columns found; pass --others")
    written = [str(p) for p in plot_correlation(rows, plot, metric, other_list)] if plot else []
    if as_json:
        dump_json({"metric": metric, "n_rows": len(rows), "correlation": corr,
                   "plots": written})
        return
    typer.echo(f"{'metric':<14} {'pearson':>8} {'spearman':>9} {'n':>4}   (x = {metric})")
    for o, c in corr.items():
        typer.echo(f"{o:<14} {c['pearson']:>8.3f} {c['spearman']:>9.3f} {c['n']:>4}")
    for p in written:
        typer.echo(f"wrote {p}")


def register(app: typer.Typer) -> None:
    app.command("eval", context_settings={"max_content_width": 120})(eval_cmd)
    app.command("correlate")(correlate_cmd)
