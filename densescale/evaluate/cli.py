"""``densescale eval`` and ``densescale correlate``.

    densescale eval --model runs/bert-tiny --data squad_v11 --split test --json
    densescale correlate --results results.jsonl --plot plots/
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import typer

from densescale.errors import ConfigError


def eval_cmd(
    model: Path = typer.Option(..., "--model", help="Model folder: densescale checkpoint, "
                               "sentence-transformers model or Hugging Face encoder."),
    data: str = typer.Option(..., "--data", help="Dataset path (BEIR layout) or name."),
    split: str = typer.Option("test", "--split", help="qrels split to evaluate."),
    negatives: int = typer.Option(256, "--negatives", help="W negatives per pair."),
    repeats: int = typer.Option(10, "--repeats", help="R fresh negative draws."),
    seed: int = typer.Option(1, "--seed", help="Seeds negatives, pools and pair subsample."),
    pool_size: int | None = typer.Option(None, "--pool-size",
                                         help="Negative pool size (default: corpus minus "
                                              "positives; paper's MS MARCO code: 1000000)."),
    max_pairs: int | None = typer.Option(None, "--max-pairs",
                                         help="Score a seeded subsample of pairs."),
    k: int = typer.Option(1000, "--k", help="Hits per query for ranking."),
    ranking_pool_size: int | None = typer.Option(
        None, "--ranking-pool-size", help="Search a seeded pool (all positives + others)."),
    exclude_self: bool = typer.Option(False, "--exclude-self",
                                      help="Drop hits whose id equals the query id (ArguAna)."),
    run_out: Path | None = typer.Option(None, "--run-out", help="Write the TREC run here."),
    no_ranking: bool = typer.Option(False, "--no-ranking", help="Contrastive entropy only."),
    metrics: str = typer.Option(",".join(("nDCG@10", "RR@10", "R@100", "R@1000", "AP")),
                                "--metrics", help="Comma-separated ir_measures names."),
    batch_size: int = typer.Option(256, "--batch-size"),
    query_max_len: int | None = typer.Option(None, "--query-max-len",
                                             help="Token limit for queries (ST/HF models)."),
    passage_max_len: int | None = typer.Option(None, "--passage-max-len",
                                               help="Token limit for passages (ST/HF models)."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, ... (default: auto)."),
    out: Path | None = typer.Option(None, "--out", help="Also append the result row (JSONL)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Contrastive entropy (mean ± stderr over repeats) and ranking metrics of one model."""
    from densescale.data import open_dataset
    from densescale.evaluate.combined import evaluate_model
    from densescale.evaluate.encoders import load_scorer

    if run_out is not None and no_ranking:
        raise ConfigError("--run-out needs ranking (drop --no-ranking)")
    names = tuple(m.strip() for m in metrics.split(",") if m.strip())
    ds = open_dataset(data)
    scorer = load_scorer(model, query_max_len, passage_max_len, device)
    row = evaluate_model(scorer, ds, split, negatives=negatives, repeats=repeats, seed=seed,
                         pool_size=pool_size, max_pairs=max_pairs, ranking=not no_ranking, k=k,
                         metrics=names, ranking_pool_size=ranking_pool_size,
                         exclude_self=exclude_self, run_path=run_out, batch_size=batch_size,
                         device=device, progress=sys.stderr.isatty())
    row["model"] = str(model)
    if out is not None:
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    typer.echo(f"{model} on {ds.name}/{split}: {row['n_pairs']} pairs, W={negatives}, "
               f"R={repeats}, pool={row['pool_size']}")
    typer.echo(f"contrastive entropy  {row['contrastive_entropy']:.4f} ± "
               f"{row['contrastive_entropy_stderr']:.4f} (stderr over repeats; over pairs "
               f"± {row['contrastive_entropy_pair_stderr']:.4f})")
    if not no_ranking:
        for m in names:
            typer.echo(f"{m:<20} {row[m]:.4f}")
    typer.echo(f"time {row['seconds_total']:.1f}s")


def correlate_cmd(
    results: Path = typer.Option(..., "--results", help="CSV or JSONL of result rows (one per "
                                 "model), e.g. from `densescale eval --out`."),
    metric: str = typer.Option("contrastive_entropy", "--metric", help="x variable."),
    others: str | None = typer.Option(None, "--others", help="Comma-separated metrics "
                                      "(default: ranking metrics found in the rows)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write PNG+SVG scatter plots here."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Pearson/Spearman correlation of contrastive entropy with ranking metrics (paper Fig. 2)."""
    from densescale.evaluate.correlation import correlate, plot_correlation, read_rows

    rows = read_rows(results)
    other_list = [o.strip() for o in others.split(",")] if others else None
    corr = correlate(rows, metric, other_list)
    if not corr:
        raise ConfigError("no ranking metric columns found; pass --others")
    written = [str(p) for p in plot_correlation(rows, plot, metric, other_list)] if plot else []
    if as_json:
        clean = {o: {k: (None if isinstance(v, float) and math.isnan(v) else v)
                     for k, v in c.items()} for o, c in corr.items()}
        typer.echo(json.dumps({"metric": metric, "n_rows": len(rows), "correlation": clean,
                               "plots": written}, indent=2))
        return
    typer.echo(f"{'metric':<14} {'pearson':>8} {'spearman':>9} {'n':>4}   (x = {metric})")
    for o, c in corr.items():
        typer.echo(f"{o:<14} {c['pearson']:>8.3f} {c['spearman']:>9.3f} {c['n']:>4}")
    for p in written:
        typer.echo(f"wrote {p}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
    app.command("correlate")(correlate_cmd)
