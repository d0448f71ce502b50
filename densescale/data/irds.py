"""``irds:<id>``: an ``ir_datasets`` collection streamed into a BEIR-layout folder.

    open_dataset("irds:beir/scifact/test")          # corpus + queries + the test qrels
    open_dataset("irds:beir/scifact")               # corpus + queries + every child's qrels
    open_dataset("irds:msmarco-passage/train/judged")

Splits are named after the id relative to the collection that owns the documents
(``ir_datasets.docs_parent_id``), with ``/`` written as ``.`` (the MS MARCO convention of
``dev.small``): ``beir/scifact/test`` -> ``test``, ``msmarco-passage/train/judged`` ->
``train.judged``. An id that is itself the document collection gets the qrels of its direct
children that have any (``beir/scifact`` -> ``test``, ``train``), or its own qrels as ``test``.
An id that names one split records it as the dataset's ``default_split``.

ir_datasets downloads its source files on first use (into ``$IR_DATASETS_HOME``); this module
only reads what ``docs_iter`` / ``queries_iter`` / ``qrels_iter`` yield, one record at a time.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

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


def load_module():
    """The ``ir_datasets`` module, or a DenseScaleError naming the extra to install."""
    return require("ir_datasets", "irds", "reading ir_datasets collections (irds:<id>)")


def _load(irds, dataset_id: str):
    try:
        return irds.load(dataset_id)
    except KeyError:
        close = difflib.get_close_matches(dataset_id, list(irds.registry), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DataError(f"ir_datasets has no dataset {dataset_id!r}{hint} "
                        "(ids: https://ir-datasets.com)") from None


def split_name(dataset_id: str, parent: str) -> str:
    """Split name of ``dataset_id`` below the collection ``parent`` ("test", "train.judged")."""
    rel = dataset_id[len(parent):].strip("/") if dataset_id.startswith(parent) else dataset_id
    return rel.replace("/", ".") or "test"


def plan(irds, dataset_id: str) -> tuple[str, dict[str, str], str | None]:
    """(documents id, {split: id of its qrels and queries}, split the id names or None)."""
    ds = _load(irds, dataset_id)
    if not ds.has_docs():
        raise DataError(f"ir_datasets dataset {dataset_id!r} has no documents")
    parent = irds.docs_parent_id(dataset_id)
    if ds.has_qrels():
        split = split_name(dataset_id, parent)
        return parent, {split: dataset_id}, (split if dataset_id != parent else None)
    depth = dataset_id.count("/") + 1
    children = sorted(k for k in irds.registry
                      if k.startswith(dataset_id + "/") and k.count("/") == depth)
    subsets = {}
    for child in children:
        sub = _load(irds, child)
        if sub.has_qrels() and irds.docs_parent_id(child) == parent:
            subsets[split_name(child, parent)] = child
    return parent, subsets, None


def _text(rec, what: str) -> str:
    text = getattr(rec, "text", None)
    if text is None and hasattr(rec, "default_text"):
        text = rec.default_text()
    if text is None:
        raise DataError(f"ir_datasets {what} record {rec!r} has no text field")
    return str(text)


def _guard(records: Iterator, dataset_id: str, what: str) -> Iterator:
    """Re-raise anything ir_datasets raises while streaming (download, parse) as a DataError."""
    try:
        yield from records
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - third-party failures of any kind become one line
        raise DataError(f"ir_datasets could not provide the {what} of {dataset_id!r}: "
                        f"{type(e).__name__}: {e}") from None


def export(dataset_id: str, target: Path, progress: bool | None = None) -> Path:
    """Write ``dataset_id`` as a BEIR-layout folder at ``target`` (atomically). Returns it."""
    from densescale.data.download import publish, staging

    irds = load_module()
    docs_id, subsets, named = plan(irds, dataset_id)
    docs_ds = _load(irds, docs_id)
    total = docs_ds.docs_count() if hasattr(docs_ds, "docs_count") else None
    show = sys.stderr.isatty() if progress is None else progress
    with staging(target.parent, target.name) as tmp:
        out = tmp / target.name
        writer = BeirWriter(out, f"irds:{dataset_id}")
        docs = ((d.doc_id, getattr(d, "title", "") or "", _text(d, "document"))
                for d in _guard(docs_ds.docs_iter(), docs_id, "documents"))
        writer.corpus(tqdm(docs, total=total, desc=f"irds:{docs_id}", unit="doc",
                           file=sys.stderr, disable=not show))

        def queries():
            sources = [*subsets.values()] or [docs_id]
            for sid in sources:
                ds = _load(irds, sid)
                if ds.has_queries():
                    for q in _guard(ds.queries_iter(), sid, "queries"):
                        yield q.query_id, _text(q, "query")

        writer.queries(queries())
        for split, sid in subsets.items():
            qrels = ((r.query_id, r.doc_id, r.relevance)
                     for r in _guard(_load(irds, sid).qrels_iter(), sid, "qrels"))
            writer.qrels(split, qrels)
        about = {"id": dataset_id, "docs": docs_id, "splits": subsets,
                 "version": getattr(irds, "__version__", None)}
        writer.finish({"source": f"irds:{dataset_id}", "default_split": named,
                       "ir_datasets": about})
        return publish(out, target)


def resolve(dataset_id: str, base: Path | None, download: bool = True,
            progress: bool | None = None) -> Resolved:
    """The local BEIR-layout copy of ``irds:<dataset_id>``, exporting it on first use."""
    dataset_id = dataset_id.strip("/")
    if not dataset_id:
        raise DataError("empty ir_datasets id: use irds:<id>, e.g. irds:beir/scifact/test")
    name = safe_name("irds", dataset_id)
    path = existing(base, name)
    if path is None:
        root = write_root(base)
        if not download:
            raise DataError(f"irds:{dataset_id} is not present at {root / name} and "
                            "downloading is disabled")
        path = export(dataset_id, root / name, progress=progress)
    return Resolved(path, name, read_source(path).get("default_split"),
                    source=f"irds:{dataset_id}")
