"""``densescale data ...``: validate, info, subset, index, fetch.

    densescale data validate PATH [--json] [--max-problems N]
    densescale data info PATH [--json]
    densescale data subset PATH --split train --sizes 100,1000 --seed 1 [--out DIR] [--json]
    densescale data index PATH [--rebuild] [--json]
    densescale data fetch NAME [--data-dir DIR]

PATH is a dataset folder, a name under --data-dir / $DENSESCALE_DATA_DIR (known public
collections are downloaded on first use), beir/NAME[/SPLIT], irds:ID or hf:PATH.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from densescale.errors import DenseScaleError
from densescale.utils import DATA_SOURCES, dump_json

app = typer.Typer(help="Dataset tools: validate, statistics, nested subsets, index, fetch.",
                  no_args_is_help=True)

_DATA_DIR = typer.Option(None, "--data-dir", help="Folder of named datasets "
                         "(default: $DENSESCALE_DATA_DIR).")
_JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
_PATH = typer.Argument(..., help=f"Dataset: {DATA_SOURCES}.")


def _echo_json(obj) -> None:
    dump_json(obj)


def _resolve(path: str, data_dir: Path | None) -> tuple[Path, str]:
    from densescale.data.dataset import data_dir as default_dir
    from densescale.data.registry import resolve_spec

    r = resolve_spec(path, default_dir(data_dir))
    return r.path, r.name


@app.command("validate")
def validate_cmd(
    path: str = _PATH,
    json_out: bool = _JSON,
    max_problems: int = typer.Option(100, "--max-problems", min=1,
                                     help="Show at most this many problems (all are counted)."),
    data_dir: Path | None = _DATA_DIR,
) -> None:
    """Check every file; print counts per split. Exit 1 when any problem is found."""
    from densescale.data.validate import validate_dataset

    folder, _ = _resolve(path, data_dir)
    report = validate_dataset(folder, max_problems=max_problems)
    if json_out:
        _echo_json(report.to_dict())
    else:
        typer.echo(report.to_text())
    if not report.ok:
        raise typer.Exit(1)


@app.command("info")
def info_cmd(
    path: str = _PATH,
    json_out: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
) -> None:
    """Counts and mean / 95th-percentile lengths (in words) of documents and queries."""
    from densescale.data.dataset import open_dataset
    from densescale.data.stats import dataset_info

    info = dataset_info(open_dataset(path, data_dir_override=data_dir))
    if json_out:
        _echo_json(info)
        return
    typer.echo(f"{info['name']} ({info['layout']}): {info['docs']:,} docs, "
               f"{info['queries']:,} queries")
    for s, v in info["splits"].items():
        typer.echo(f"  {s:<12} {v['queries']:>9,} queries {v['qrels']:>10,} qrels "
                   f"{v['pairs']:>10,} positive pairs")
    for key, label in (("doc_words", "doc words"), ("query_words", "query words")):
        w = info[key]
        typer.echo(f"  {label:<12} mean {w['mean']:.1f}  p95 {w['p95']:.0f}  max {w['max']}")


def _parse_sizes(sizes: str) -> list[int]:
    try:
        out = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise DenseScaleError(f"--sizes must be comma-separated integers, got {sizes!r}") from None
    if not out:
        raise DenseScaleError("--sizes is empty")
    return out


@app.command("subset")
def subset_cmd(
    path: str = _PATH,
    split: str = typer.Option("train", "--split", help="Split whose positive pairs are sampled."),
    sizes: str = typer.Option(..., "--sizes",
                              help="Comma-separated subset sizes D, e.g. 100,1000."),
    seed: int = typer.Option(1, "--seed", help="Shuffle seed (fixes every subset)."),
    out: Path | None = typer.Option(None, "--out", help="Write OUT/<split>-<D>.tsv qrels files."),
    json_out: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
) -> None:
    """Nested subsets of query-positive pairs: shuffle once with SEED, keep the first D."""
    from densescale.data.dataset import open_dataset
    from densescale.utils import atomic_write_files, prepare_output_dir

    ds = open_dataset(path, data_dir_override=data_dir)
    subsets = ds.subsets(split, _parse_sizes(sizes), seed)
    files = {}
    if out is not None:
        prepare_output_dir(out)
        files = {d: str(out / f"{split}-{d}.tsv") for d in subsets}
        atomic_write_files({files[d]: ("query-id\tcorpus-id\tscore\n" + "".join(
            f"{p.query_id}\t{p.doc_id}\t1\n" for p in pairs)).encode("utf-8")
            for d, pairs in subsets.items()})  # all files or none
    summary = {"dataset": ds.name, "split": split, "seed": seed,
               "available_pairs": len(ds.pairs(split)),
               "subsets": {str(d): {"pairs": len(p), "queries": len({x.query_id for x in p}),
                                    "docs": len({x.doc_id for x in p}),
                                    **({"file": files[d]} if d in files else {})}
                           for d, p in subsets.items()}}
    if json_out:
        _echo_json(summary)
        return
    typer.echo(f"{ds.name}/{split}: {summary['available_pairs']:,} pairs, seed {seed}")
    for d, v in summary["subsets"].items():
        typer.echo(f"  D={int(d):>9,}  queries {v['queries']:>9,}  docs {v['docs']:>9,}"
                   + (f"  -> {v['file']}" if "file" in v else ""))


@app.command("index")
def index_cmd(
    path: str = _PATH,
    rebuild: bool = typer.Option(False, "--rebuild", help="Build again even if up to date."),
    json_out: bool = _JSON,
    data_dir: Path | None = _DATA_DIR,
) -> None:
    """Build (or reuse) the on-disk corpus index, with a progress bar on stderr."""
    from densescale.data.index import ensure_index
    from densescale.data.layouts import detect_layout

    folder, _ = _resolve(path, data_dir)
    t0 = time.perf_counter()
    idx = ensure_index(detect_layout(folder), progress=True, rebuild=rebuild)
    meta = json.loads((idx / "meta.json").read_text())
    res = {"dataset": str(folder), "index": str(idx), "docs": meta["n"],
           "duplicate_ids": meta["duplicate_ids"], "seconds": round(time.perf_counter() - t0, 3)}
    if json_out:
        _echo_json(res)
    else:
        typer.echo(f"{res['docs']:,} docs indexed at {idx} ({res['seconds']} s)")


@app.command("fetch")
def fetch_cmd(
    name: str = typer.Argument(..., help="Known collection: scifact, nfcorpus, fiqa, arguana, "
                               "squad_v11, msmarco-passage."),
    data_dir: Path | None = _DATA_DIR,
) -> None:
    """Download a known public collection into the data folder (no-op when present)."""
    folder, _ = _resolve(name, data_dir)
    typer.echo(str(folder))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
