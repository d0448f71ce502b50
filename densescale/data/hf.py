"""``hf:<path or hub id>``: a Hugging Face ``datasets`` dataset or a folder of parquet / JSONL.

Accepted forms (converted once into a BEIR-layout folder, then indexed like any other):

- ``hf:PATH`` with a ``DatasetDict`` saved by ``save_to_disk``: keys ``corpus`` and ``queries``,
  every other key a qrels split (``test``, ``train``...). Needs ``datasets``
  (``pip install 'densescale[hf]'``).
- ``hf:PATH`` with ``corpus``, ``queries`` and ``qrels`` entries, each a ``save_to_disk`` folder
  (a Dataset, or a DatasetDict: for qrels one split per key) or data files:
  ``corpus.{parquet,jsonl,jsonl.gz}``, ``queries.{...}``, ``qrels/<split>.{parquet,jsonl,tsv}``.
  Parquet files need pyarrow (``pip install 'densescale[parquet]'``); JSONL and TSV need nothing.
- ``hf:<owner>/<name>`` otherwise: the hub dataset in BEIR form (``hf:BeIR/scifact``: configs
  ``corpus`` and ``queries``, qrels from ``<owner>/<name>-qrels``), through ``datasets``.

Columns (first match wins): documents ``_id|doc_id|docid|corpus-id|id|pid``, ``title``
(optional), ``text|contents|passage|body``; queries ``_id|query_id|qid|query-id|id``,
``text|query``; qrels ``query-id|query_id|qid``, ``corpus-id|corpus_id|doc_id|docid|pid``,
``score|relevance|label`` (1 when absent).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from densescale.data.formats import iter_lines
from densescale.data.sources import (
    BeirWriter,
    Resolved,
    existing,
    read_source,
    safe_name,
    write_root,
)
from densescale.errors import DataError
from densescale.utils import require

DOC_ID = ("_id", "doc_id", "docid", "corpus-id", "id", "pid")
DOC_TEXT = ("text", "contents", "passage", "body")
QUERY_ID = ("_id", "query_id", "qid", "query-id", "id")
QUERY_TEXT = ("text", "query")
QREL_QID = ("query-id", "query_id", "qid")
QREL_DID = ("corpus-id", "corpus_id", "doc_id", "docid", "pid")
QREL_SCORE = ("score", "relevance", "label")
FILE_EXTS = (".parquet", ".jsonl", ".jsonl.gz", ".tsv")
SAVED_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")


def _datasets():
    return require("datasets", "hf", "reading Hugging Face datasets (hf:<path or id>)")


def _is_saved(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for m in SAVED_MARKERS)


def _column(columns: list[str], names: tuple[str, ...], what: str, where: str,
            required: bool = True) -> str | None:
    for n in names:
        if n in columns:
            return n
    if required:
        raise DataError(f"no {what} column (tried {', '.join(names)}; have "
                        f"{', '.join(columns) or 'none'})", where)
    return None


class Table:
    """Rows of one part (corpus, queries, a qrels split): a saved Dataset or a data file."""

    def __init__(self, source, where: str):
        self.source, self.where = source, where

    def columns(self) -> list[str]:
        if isinstance(self.source, Path):
            return _file_columns(self.source)
        return list(self.source.column_names)

    def rows(self) -> Iterator[dict]:
        if isinstance(self.source, Path):
            yield from _file_rows(self.source)
        else:
            for batch in self.source.iter(batch_size=4096):
                keys = list(batch)
                yield from (dict(zip(keys, vals)) for vals in zip(*batch.values()))

    def records(self, *specs: tuple[tuple[str, ...], str, bool]) -> Iterator[tuple]:
        """Tuples of the requested columns; an absent optional column reads as ""."""
        cols = self.columns()
        keys = [_column(cols, names, what, self.where, req) for names, what, req in specs]
        for row in self.rows():
            yield tuple(row[k] if k is not None and row[k] is not None else "" for k in keys)


def _file_columns(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        pq = require("pyarrow.parquet", "parquet", f"reading {path.name}")
        return list(pq.ParquetFile(path).schema_arrow.names)
    for row in _file_rows(path):
        return list(row)
    return []


def _file_rows(path: Path) -> Iterator[dict]:
    if path.suffix == ".parquet":
        pq = require("pyarrow.parquet", "parquet", f"reading {path.name}")
        for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
            yield from batch.to_pylist()
    elif path.name.endswith(".tsv"):
        header: list[str] | None = None
        for lineno, line in iter_lines(path):
            cols = line.decode("utf-8", "replace").split("\t")
            if header is None:
                header = [c.strip() for c in cols]
                continue
            if len(cols) != len(header):
                raise DataError(f"expected {len(header)} columns, got {len(cols)}", path, lineno)
            yield dict(zip(header, cols))
    else:
        for lineno, line in iter_lines(path):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"malformed JSON: {e.msg}", path, lineno) from None
            if not isinstance(rec, dict):
                raise DataError("expected a JSON object", path, lineno)
            yield rec


def _file(folder: Path, stem: str) -> Path | None:
    for ext in FILE_EXTS:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return None


def _saved_parts(path: Path, name: str) -> dict[str, Table]:
    """{split: Table} of a save_to_disk folder (a Dataset is one part named ``name``)."""
    obj = _datasets().load_from_disk(str(path))
    if hasattr(obj, "column_names") and not isinstance(obj.column_names, dict):
        return {name: Table(obj, str(path))}
    return {k: Table(v, f"{path}[{k}]") for k, v in obj.items()}


def local_parts(path: Path) -> tuple[Table, Table, dict[str, Table]]:
    """(corpus, queries, {split: qrels}) of a local ``hf:`` folder."""
    if _is_saved(path) and (path / "dataset_dict.json").is_file():
        parts = _saved_parts(path, "corpus")
        missing = [k for k in ("corpus", "queries") if k not in parts]
        if missing:
            raise DataError(f"saved DatasetDict lacks {', '.join(missing)} (keys: "
                            f"{', '.join(parts)}); expected corpus, queries and qrels splits",
                            path)
        return parts.pop("corpus"), parts.pop("queries"), parts
    found: dict[str, Table] = {}
    for part in ("corpus", "queries"):
        if _is_saved(path / part):
            saved = _saved_parts(path / part, part)
            if len(saved) != 1:
                raise DataError(f"expected one split in the saved {part}, got "
                                f"{', '.join(saved)}", path / part)
            found[part] = next(iter(saved.values()))
        elif (f := _file(path, part)) is not None:
            found[part] = Table(f, str(f))
        else:
            raise DataError(f"no {part} found: expected {part}/ (save_to_disk) or "
                            f"{part}.parquet / {part}.jsonl", path)
    qdir = path / "qrels"
    if _is_saved(qdir):
        qrels = _saved_parts(qdir, "test")
    elif qdir.is_dir():
        qrels = {}
        for f in sorted(qdir.iterdir()):
            ext = next((e for e in FILE_EXTS if f.name.endswith(e)), None)
            if ext and f.is_file():
                qrels[f.name[:-len(ext)]] = Table(f, str(f))
    else:
        raise DataError("no qrels/ folder (qrels/<split>.parquet|jsonl|tsv or save_to_disk)",
                        path)
    return found["corpus"], found["queries"], qrels


def hub_parts(repo: str) -> tuple[Table, Table, dict[str, Table]]:
    """(corpus, queries, {split: qrels}) of a hub dataset in BEIR form."""
    datasets = _datasets()
    try:
        corpus = datasets.load_dataset(repo, "corpus")
        queries = datasets.load_dataset(repo, "queries")
        qrels = datasets.load_dataset(f"{repo}-qrels")
    except Exception as e:  # noqa: BLE001 - hub/network failures of any kind become one line
        raise DataError(f"cannot load hf:{repo} (BEIR form: configs corpus and queries, qrels "
                        f"in {repo}-qrels): {type(e).__name__}: {e}") from None
    return (Table(next(iter(corpus.values())), f"hf:{repo}[corpus]"),
            Table(next(iter(queries.values())), f"hf:{repo}[queries]"),
            {k: Table(v, f"hf:{repo}-qrels[{k}]") for k, v in qrels.items()})


def _fingerprint(path: Path) -> str:
    """Changes when any file under ``path`` changes (size, mtime), so copies stay current."""
    items = sorted((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in path.rglob("*") if p.is_file())
    return hashlib.sha1(json.dumps([str(path.resolve()), items]).encode()).hexdigest()[:10]


def convert(parts: tuple[Table, Table, dict[str, Table]], target: Path, spec: str) -> Path:
    """Write corpus, queries and qrels as a BEIR-layout folder at ``target``."""
    from densescale.data.download import publish, staging

    corpus, queries, qrels = parts
    with staging(target.parent, target.name) as tmp:
        out = tmp / target.name
        w = BeirWriter(out, spec)
        w.corpus(corpus.records((DOC_ID, "document id", True), (("title",), "title", False),
                                (DOC_TEXT, "document text", True)))
        w.queries(queries.records((QUERY_ID, "query id", True), (QUERY_TEXT, "query text", True)))
        for split, table in qrels.items():
            w.qrels(split, table.records((QREL_QID, "query id", True), (QREL_DID, "doc id", True),
                                         (QREL_SCORE, "score", False)))
        w.finish({"source": spec, "splits": sorted(qrels)})
        return publish(out, target)


def resolve(ident: str, base: Path | None, download: bool = True) -> Resolved:
    """The local BEIR-layout copy of ``hf:<ident>``, converting it on first use."""
    if not ident.strip("/"):
        raise DataError("empty hf: spec: use hf:<folder> or hf:<owner>/<name>")
    local = Path(ident).expanduser()
    spec = f"hf:{ident}"
    if local.exists():
        if not local.is_dir():
            raise DataError("hf: expects a folder (save_to_disk output or parquet/JSONL files)",
                            local)
        name = safe_name("hf", f"{local.resolve().name}-{_fingerprint(local)}")
    else:
        name = safe_name("hf", ident)
    path = existing(base, name)
    if path is None:
        if not local.exists() and not download:
            raise DataError(f"{spec} is not present locally and downloading is disabled")
        parts = local_parts(local) if local.exists() else hub_parts(ident)
        path = convert(parts, write_root(base) / name, spec)
    return Resolved(path, name, read_source(path).get("default_split"), source=spec)
