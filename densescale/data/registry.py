"""Dataset names -> local folders; known public collections are fetched on first use.

A name resolves, in order, to: an existing local path; an ``irds:``, ``hf:`` or ``beir/`` spec
(:mod:`densescale.data.sources`); ``<data dir>/<name>`` (``--data-dir`` or
$DENSESCALE_DATA_DIR); a known public collection (:data:`KNOWN`) downloaded into the data dir
(or ``cache_dir()/datasets`` when none is set). Registration is a dict literal: cheap at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from densescale.data.sources import HF, IRDS, Resolved, resolve_alias, split_spec
from densescale.errors import DataError
from densescale.utils import cache_dir

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"
SQUAD_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset"


@dataclass(frozen=True)
class Source:
    """How to obtain a known collection."""

    kind: str                 # "beir" (zip from BEIR_URL) | "squad" | "ir_datasets"
    md5: str | None = None    # published archive checksum (BEIR README table)
    remote: str | None = None  # name at the source, when it differs


# md5 values: the "md5" column of the BEIR README dataset table (beir-cellar/beir).
KNOWN: dict[str, Source] = {
    "scifact": Source("beir", md5="5f7d1de60b170fc8027bb7898e2efca1"),
    "nfcorpus": Source("beir", md5="a89dba18a62ef92f7d323ec890a0d38d"),
    "fiqa": Source("beir", md5="17918ed23cd04fb15047f73e6c3bd9d9"),
    "arguana": Source("beir", md5="8ad3e3c2a5867cdced806d6503f29b99"),
    "squad_v11": Source("squad"),
    "msmarco-passage": Source("ir_datasets", remote="msmarco-passage"),
}


def beir_url() -> str:
    return os.environ.get("DENSESCALE_BEIR_URL", BEIR_URL).rstrip("/")


def squad_url() -> str:
    return os.environ.get("DENSESCALE_SQUAD_URL", SQUAD_URL).rstrip("/")


def resolve_spec(path_or_name: str | os.PathLike, base: Path | None, download: bool = True,
                 progress: bool | None = None) -> Resolved:
    """Folder, name and named split of a dataset given as a path, a name or a source spec.

    Raises:
        DataError: as :func:`resolve`; a spec's source is missing or malformed.
    """
    if Path(path_or_name).is_dir():
        return Resolved(*resolve(path_or_name, base, download))
    parsed = split_spec(str(path_or_name))
    if parsed is None:
        return Resolved(*resolve(path_or_name, base, download))
    kind, rest = parsed
    if kind == IRDS:
        from densescale.data import irds

        return irds.resolve(rest, base, download=download, progress=progress)
    if kind == HF:
        from densescale.data import hf

        return hf.resolve(rest, base, download=download)
    return resolve_alias(rest, lambda name: resolve(name, base, download))


def resolve(path_or_name: str | os.PathLike, base: Path | None,
            download: bool = True) -> tuple[Path, str]:
    """(folder, name) of a dataset given as a path or a plain name (see :func:`resolve_spec`).

    Raises:
        DataError: unknown name, or a known one that is neither present nor downloadable; the
            message says where the files should go.
    """
    p = Path(path_or_name)
    if p.is_dir():
        return p, p.resolve().name
    name = str(path_or_name)
    if base is not None and (base / name).is_dir():
        return base / name, name
    target_root = base if base is not None else cache_dir() / "datasets"
    if (target_root / name).is_dir():
        return target_root / name, name
    if name not in KNOWN:
        raise DataError(f"{_not_found(name, p, base)}; put it there in BEIR layout "
                        f"(corpus.jsonl, queries.jsonl, qrels/<split>.tsv) or MS MARCO "
                        f"layout (collection.tsv, queries.<split>.tsv, qrels.<split>.tsv). "
                        f"Known downloadable names: {', '.join(sorted(KNOWN))}; other sources: "
                        f"irds:<ir_datasets id>, hf:<folder or hub id>, beir/<name>[/<split>]")
    if not download:
        raise DataError(f"known dataset {name!r} is not present at {target_root / name} and "
                        f"downloading is disabled; put its files there")
    return fetch(name, target_root), name


def _not_found(name: str, p: Path, base: Path | None) -> str:
    """Where a missing dataset was looked for: a path as given, or the name in the data dir."""
    if p.is_absolute() or name.startswith(("./", "../", "~")) or p.exists():
        what = "is a file, not a dataset folder" if p.is_file() else "does not exist"
        return f"dataset folder {name} {what}"
    if base is not None:
        return f"dataset {name!r} not found as a path or as {base / name}"
    return (f"dataset {name!r} not found as a path or as $DENSESCALE_DATA_DIR/{p.as_posix()} "
            f"(or --data-dir DIR/{p.as_posix()}; currently unset)")


def fetch(name: str, root: Path) -> Path:
    """Download and prepare a known collection into ``root/name`` (atomically). Returns it."""
    src = KNOWN[name]
    root.mkdir(parents=True, exist_ok=True)
    if src.kind == "beir":
        from densescale.data.download import fetch_beir

        return fetch_beir(src.remote or name, root, md5=src.md5, base_url=beir_url(),
                          target_name=name)
    if src.kind == "squad":
        from densescale.data.squad import fetch_squad

        return fetch_squad(root / name, base_url=squad_url())
    if src.kind == "ir_datasets":
        from densescale.data.download import fetch_ir_datasets

        return fetch_ir_datasets(src.remote or name, root / name)
    raise DataError(f"no fetcher for {name!r}")  # pragma: no cover
