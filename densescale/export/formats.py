"""Writers of ``densescale export``: ``hf`` (transformers + sentence-transformers) and
``tevatron`` (Tevatron's DenseModel).

Both load the model with densescale first and write it again, so every export is a complete,
self-describing folder (densescale.json with an ``export`` key, README.md model card) that
``densescale.models.load_encoder`` reads back too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from densescale.errors import ConfigError, DataError
from densescale.models.folder import CARD_FILE, DENSESCALE_FILE, PROJECTION_FILE, read_info
from densescale.utils import prepare_output_dir

FORMATS = ("hf", "tevatron")
# keys write_folder computes itself; the others (step, selection CE, ...) are carried over
_OWN_KEYS = {"format", "densescale_version", "rung", "n_params", "n_params_total", "proj_dim",
             "pooling", "query_max_len", "passage_max_len", "similarity", "scale", "meta",
             "export"}
TEVATRON_SOURCE = "texttron/tevatron src/tevatron/retriever/modeling/dense.py (DenseModel)"


def resolve_model_dir(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """(model folder, training output folder or None) for a model folder or a run folder.

    A run folder gives its ``best/`` (else ``last/``); a model folder whose parent holds the
    run's config.json gives that parent as the run.

    Raises:
        DataError: neither the folder nor its best/ or last/ holds densescale.json.
    """
    p = Path(path)
    if not p.is_dir():
        raise DataError("no such model or run folder", p)
    if (p / DENSESCALE_FILE).exists():
        run = p.parent if (p.parent / "config.json").exists() else None
        return p, run
    for sub in ("best", "last"):
        if (p / sub / DENSESCALE_FILE).exists():
            return p / sub, p
    raise DataError(f"not a densescale model folder (no {DENSESCALE_FILE}) nor a training run "
                    "(no best/ or last/ holding one)", p)


def export_model(model: str | os.PathLike, fmt: str, out: str | os.PathLike, *,
                 overwrite: bool = False, st_compat: bool = False) -> dict[str, Any]:
    """Write ``model`` (a model folder or a training run) in format ``fmt`` to folder ``out``.

    Args:
        model: model folder (densescale.json) or training output (uses best/, else last/).
        fmt: "hf" or "tevatron".
        out: output folder; must be empty or absent unless ``overwrite``.
        overwrite: replace a non-empty ``out``.
        st_compat: loadable by sentence-transformers 3-5 too: no per-task lengths in the
            Transformer module (their ``encode_query`` cuts queries at the passage length).

    Returns:
        A JSON-able description: format, source, out, files, n_params, dim, similarity, scale,
        pooling, query_max_len, passage_max_len, and for tevatron ``tevatron_args``.

    Raises:
        ConfigError: unknown format, a non-empty ``out`` without overwrite, ``out`` holding the
            source, or a Tevatron export of a model with a projection.
        DataError: ``model`` is not a model or run folder.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    folder, run = resolve_model_dir(model)
    info = read_info(folder)
    out = Path(out)
    _check_out(out, folder, overwrite)
    if fmt == "tevatron" and info.get("proj_dim"):
        raise ConfigError(
            f"--format tevatron: {folder} has a Linear(H -> {info['proj_dim']}) projection after "
            f"pooling, and Tevatron's DenseModel ({TEVATRON_SOURCE}) applies no layer after "
            "pooling, so its embeddings would differ; use --format hf (AutoModel + "
            f"{PROJECTION_FILE}), or train with proj_dim 0")
    from densescale.models import load_encoder
    from densescale.models.folder import write_folder

    enc = load_encoder(folder)
    extra = {k: v for k, v in info.items() if k not in _OWN_KEYS}
    tev = _tevatron_args(enc) if fmt == "tevatron" else None
    extra["export"] = {"format": fmt, "source": str(folder.resolve()),
                       "source_densescale_version": info.get("densescale_version"),
                       **({"tevatron_args": tev} if tev else {})}
    prepare_output_dir(out)
    write_folder(enc, out, extra, root=True, run_dir=run,
                 card_extra=_tevatron_card(tev) if tev else "",
                 task_lengths=False if st_compat else None)
    files = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
    return {"format": fmt, "source": str(folder), "run": str(run) if run else None,
            "out": str(out), "files": files, "n_params": enc.num_non_embedding_params(),
            "n_params_total": enc.num_params(), "dim": enc.dim, "proj_dim": enc.proj_dim,
            "similarity": enc.similarity, "scale": enc.score_scale, "pooling": enc.pooling,
            "query_max_len": enc.query_max_len, "passage_max_len": enc.passage_max_len,
            "card": str(out / CARD_FILE), **({"tevatron_args": tev} if tev else {})}


def _check_out(out: Path, folder: Path, overwrite: bool) -> None:
    src, dst = folder.resolve(), out.resolve()
    if dst == src or dst in src.parents:
        raise ConfigError(f"--out: {out} holds the model being exported ({folder}); choose "
                          "another folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"--out: {out} is not empty; give --overwrite to replace it")


def _tevatron_args(enc: Any) -> list[str]:
    """Tevatron encode/search flags that reproduce densescale's embeddings."""
    args = ["--pooling", enc.pooling]
    if enc.similarity == "cos":
        args.append("--normalize")
    return args + ["--query_max_len", str(enc.query_max_len),
                   "--passage_max_len", str(enc.passage_max_len)]


def _tevatron_card(args: list[str]) -> str:
    return "\n".join([
        "", "## Tevatron", "",
        f"The folder is what Tevatron's `DenseModel.load` reads ({TEVATRON_SOURCE}): the "
        "encoder and tokenizer at the root. Encode with:", "", "```bash",
        "python -m tevatron.retriever.driver.encode --model_name_or_path FOLDER \\",
        f"    {' '.join(args)} ...", "```", "",
        "Tevatron scores by inner product, as densescale does; with `--normalize` that is the "
        "cosine (densescale's own score multiplies it by the declared scale).", ""])
