"""``densescale models``: print a ladder with its parameter counts."""

from __future__ import annotations

from pathlib import Path

import typer

from densescale.errors import ConfigError
from densescale.models.ladder import (
    LADDERS,
    Rung,
    count_non_embedding_params,
    count_total_params,
    load_ladder_yaml,
)
from densescale.utils import dump_json


def ladder_rows(ladder: str = "all", proj_dim: int = 768) -> list[dict]:
    """One dict per rung: name, L, H, heads, FFN, non-embedding and total parameters, hub id."""
    if ladder == "all":
        rungs: list[Rung] = [r for lad in LADDERS.values() for r in lad.values()]
    elif ladder in LADDERS:
        rungs = list(LADDERS[ladder].values())
    elif Path(ladder).exists():
        rungs = list(load_ladder_yaml(ladder).values())
    else:
        raise ConfigError(f"--ladder: expected {', '.join(LADDERS)}, all, or a YAML file; "
                          f"got {ladder!r}")
    return [{
        "name": r.name, "layers": r.layers, "hidden": r.hidden, "heads": r.heads,
        "intermediate": r.intermediate,
        "non_embedding_params": count_non_embedding_params(r, proj_dim),
        "total_params": count_total_params(r, proj_dim),
        "vocab_size": r.vocab_size, "hub_id": r.hub_id, "family": r.family,
    } for r in rungs]


def models(
    ladder: str = typer.Option("all", "--ladder",
                               help="bert | ernie | all | path to a ladder YAML"),
    proj_dim: int = typer.Option(768, "--proj-dim", help="Output dimension of the projection."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """List model rungs: layers, hidden size, heads, non-embedding (N) and total parameters.

    N counts layers + BERT pooler + Linear(H->proj_dim), as the paper does. Totals add
    word/position/type embeddings with each rung's own vocabulary (BERT 30522 x 512 positions;
    ERNIE-3.0 40000 x 2048 positions, 4 token types, 3 task types).
    """
    rows = ladder_rows(ladder, proj_dim)
    if as_json:
        dump_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"model ladder ({ladder}), proj_dim={proj_dim}")
    for col in ("name", "L", "H", "heads", "FFN", "non-emb N", "N/2^20", "total", "hub id"):
        t.add_column(col, justify="left" if col in ("name", "hub id") else "right")
    for r in rows:
        t.add_row(r["name"], str(r["layers"]), str(r["hidden"]), str(r["heads"]),
                  str(r["intermediate"]), f"{r['non_embedding_params']:,}",
                  f"{r['non_embedding_params'] / 2**20:.4g}", f"{r['total_params']:,}", r["hub_id"])
    Console(width=160).print(t)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
