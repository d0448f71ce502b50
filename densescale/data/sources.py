"""Dataset sources beyond a local folder: ``irds:`` ids, ``hf:`` datasets, BEIR-style names.

What :func:`densescale.data.open_dataset` accepts, besides a folder or a name:

- ``irds:<ir_datasets id>`` (``irds:beir/scifact/test``, ``irds:msmarco-passage/train/judged``):
  read through the optional ``ir_datasets`` package (``pip install 'densescale[irds]'``; the
  ``[msmarco]`` extra installs it too) and streamed once into a BEIR-layout folder, whose corpus
  is then indexed like any other (:mod:`densescale.data.irds`).
- ``hf:<path or hub id>``: a Hugging Face ``datasets`` dataset saved with ``save_to_disk``, a
  folder of parquet / JSONL files with corpus, queries and qrels, or a hub dataset in BEIR form
  (``hf:BeIR/scifact``, qrels from ``BeIR/scifact-qrels``) (:mod:`densescale.data.hf`).
- ``beir/<name>`` and ``beir/<name>/<split>``: aliases of the known name ``<name>``
  (``beir/scifact`` is ``scifact``); a split suffix must be a split of that dataset and becomes
  the dataset's ``default_split``.

Converted copies live in the data folder (``--data-dir`` / $DENSESCALE_DATA_DIR) when it is
writable, else in ``cache_dir()/datasets``, under a path-safe name (``irds_beir__scifact__test``);
a second open reuses them. Every copy is written under a temporary name and renamed into place,
with a ``densescale-source.json`` that records where it came from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from densescale.errors import DataError
from densescale.utils import cache_dir

SOURCE_FILE = "densescale-source.json"
IRDS, HF, BEIR = "irds:", "hf:", "beir/"


@dataclass(frozen=True)
class Resolved:
    """Where a dataset spec led: its folder, a path-safe name, the split it names (if any)."""

    path: Path
    name: str
    split: str | None = None
    source: str | None = None  # the spec as given, for irds:/hf:/beir/ specs


def safe_name(prefix: str, ident: str) -> str:
    """Path-safe folder name of an id: ``irds`` + ``beir/scifact/test`` -> irds_beir__scifact__test.
    """
    body = "".join(c if c.isalnum() or c in "-._" else "_" for c in ident.replace("/", "__"))
    return f"{prefix}_{body.strip('_.') or 'dataset'}"


def write_root(base: Path | None) -> Path:
    """Folder for converted copies: the data folder when writable, else the cache.

    A folder without any write permission bit counts as read-only even for root (a shared,
    read-only data folder is never written into).
    """
    if base is not None and base.is_dir() and os.access(base, os.W_OK) \
            and base.stat().st_mode & 0o222:
        return base
    return cache_dir() / "datasets"


def existing(base: Path | None, name: str) -> Path | None:
    """A complete converted copy named ``name`` in the data folder or the cache."""
    for root in (base, cache_dir() / "datasets"):
        if root is not None and (root / name / SOURCE_FILE).is_file():
            return root / name
    return None


def read_source(folder: Path) -> dict:
    """The provenance record of a converted copy ({} when unreadable)."""
    try:
        doc = json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def split_spec(spec: str) -> tuple[str, str] | None:
    """``(kind, rest)`` for an ``irds:`` / ``hf:`` / ``beir/`` spec, else None."""
    for kind in (IRDS, HF, BEIR):
        if spec.startswith(kind):
            return kind, spec[len(kind):]
    return None


def resolve_alias(rest: str, resolve_name) -> Resolved:
    """``beir/<name>[/<split>]``: the dataset ``<name>`` and the split the suffix names.

    Args:
        rest: the spec after ``beir/``.
        resolve_name: ``name -> (folder, name)``, the plain-name resolver.

    Raises:
        DataError: an empty name, too many parts, or a split the dataset lacks.
    """
    parts = [p for p in rest.split("/") if p]
    if not 1 <= len(parts) <= 2:
        raise DataError(f"cannot read dataset name 'beir/{rest}': expected beir/<name> or "
                        f"beir/<name>/<split> (e.g. beir/scifact/test)")
    path, name = resolve_name(parts[0])
    split = parts[1] if len(parts) == 2 else None
    if split is not None:
        from densescale.data.layouts import detect_layout

        have = sorted(detect_layout(path).qrels)
        if split not in have:
            raise DataError(f"dataset 'beir/{rest}': {name!r} has no split {split!r} "
                            f"(have: {', '.join(have) or 'none'})", path)
    return Resolved(path, name, split, source=f"beir/{rest}")


class BeirWriter:
    """Write a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) record by
    record, checking ids and scores as it goes.

    Args:
        folder: an empty folder (a staging folder that is renamed into place afterwards).
        origin: what the records come from, for error messages (a file or ``irds:...``).
    """

    def __init__(self, folder: Path, origin: str):
        self.folder, self.origin = folder, origin
        (folder / "qrels").mkdir(parents=True, exist_ok=True)
        self.counts: dict[str, int] = {}

    def _where(self, what: str, n: int) -> str:
        return f"{self.origin} ({what} record {n})"

    def corpus(self, docs: Iterable[tuple[str, str, str]]) -> int:
        """Write (id, title, text) records; returns how many."""
        n = 0
        with open(self.folder / "corpus.jsonl", "w", encoding="utf-8") as f:
            for n, (did, title, text) in enumerate(docs, 1):
                if not str(did).strip():
                    raise DataError("empty document id", self._where("corpus", n))
                rec = {"_id": str(did), "title": title or "", "text": text or ""}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.counts["docs"] = n
        return n

    def queries(self, queries: Iterable[tuple[str, str]]) -> int:
        """Write (id, text) records, first copy of a repeated id only; returns how many."""
        seen: set[str] = set()
        with open(self.folder / "queries.jsonl", "w", encoding="utf-8") as f:
            for n, (qid, text) in enumerate(queries, 1):
                qid = str(qid)
                if not qid.strip():
                    raise DataError("empty query id", self._where("queries", n))
                if qid in seen:
                    continue
                seen.add(qid)
                f.write(json.dumps({"_id": qid, "text": text or ""}, ensure_ascii=False) + "\n")
        self.counts["queries"] = len(seen)
        return len(seen)

    def qrels(self, split: str, qrels: Iterable[tuple[str, str, object]]) -> int:
        """Write (query id, doc id, score) judgments of one split; returns how many."""
        if not split or "/" in split or split.startswith("."):
            raise DataError(f"split name {split!r} cannot be a file name", self.origin)
        n = 0
        with open(self.folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for n, (qid, did, score) in enumerate(qrels, 1):
                where = self._where(f"qrels {split}", n)
                if not str(qid).strip() or not str(did).strip():
                    raise DataError("missing query or document id", where)
                f.write(f"{_one_field(qid)}\t{_one_field(did)}\t{_score(score, where)}\n")
        self.counts[f"qrels:{split}"] = n
        return n

    def finish(self, source: dict) -> None:
        """Write the provenance file (last: its presence marks a complete copy)."""
        if not (self.folder / "queries.jsonl").exists():
            self.queries(())
        doc = {**source, "counts": self.counts}
        (self.folder / SOURCE_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _one_field(value: object) -> str:
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ").strip()


def _score(value: object, where: str) -> int:
    if value is None or value == "":
        return 1
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"relevance score {value!r} is not a number", where) from None
    if f != f or f in (float("inf"), float("-inf")) or f != int(f):
        raise DataError(f"relevance score {value!r} is not a finite integer", where)
    return int(f)
