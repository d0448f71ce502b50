"""Dataset API (the contract every stage codes against).

NOTE: this first version loads BEIR-layout files into memory; the dataset-layer work replaces the
internals with an on-disk index (random access by id and row) WITHOUT changing these signatures.

    ds = open_dataset("squad_v11")            # a path, or a name under $DENSESCALE_DATA_DIR
    ds.corpus[0]                               # Doc(id, title, text) by row
    ds.corpus.rows_of(["dev-000-000"])         # np.ndarray[int64] rows, DataError on unknown id
    ds.corpus.texts(rows)                      # list[str] "title text" as encoders see it
    ds.queries()                               # dict qid -> text (all queries)
    ds.qrels("test")                           # dict qid -> {doc_id: score}
    ds.pairs("train")                          # list[Pair] of positives (score > 0), file order
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from densescale.data.formats import Doc, Pair
from densescale.errors import DataError


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _find(path: Path, name: str) -> Path | None:
    for cand in (path / name, path / f"{name}.gz"):
        if cand.exists():
            return cand
    return None


class Corpus:
    """Passages with random access by row and by id."""

    def __init__(self, ids: list[str], titles: list[str], texts: list[str]):
        self._ids = ids
        self._titles = titles
        self._texts = texts
        self._row = {d: i for i, d in enumerate(ids)}

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, row: int) -> Doc:
        return Doc(self._ids[row], self._titles[row], self._texts[row])

    @property
    def ids(self) -> Sequence[str]:
        """Row -> doc id."""
        return self._ids

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self._row

    def rows_of(self, doc_ids: Sequence[str]) -> np.ndarray:
        try:
            return np.fromiter((self._row[d] for d in doc_ids), dtype=np.int64, count=len(doc_ids))
        except KeyError as e:
            raise DataError(f"unknown document id {e.args[0]!r}") from None

    def get(self, doc_id: str) -> Doc:
        return self[int(self.rows_of([doc_id])[0])]

    def docs(self, rows: Sequence[int] | np.ndarray) -> list[Doc]:
        return [self[int(r)] for r in rows]

    def texts(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """Encoder input for each row: "title text" (title omitted when empty)."""
        return [d.full_text() for d in self.docs(rows)]

    def iter_batches(self, batch_size: int = 10_000) -> Iterator[tuple[np.ndarray, list[str]]]:
        for start in range(0, len(self), batch_size):
            rows = np.arange(start, min(start + batch_size, len(self)), dtype=np.int64)
            yield rows, self.texts(rows)


class Dataset:
    """A retrieval collection: corpus, queries and qrels per split."""

    def __init__(self, path: Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.name
        self.layout = "beir"
        corpus_path = _find(self.path, "corpus.jsonl")
        if corpus_path is None:
            raise DataError("no corpus.jsonl(.gz) found", self.path)
        ids, titles, texts = [], [], []
        with _open_text(corpus_path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"malformed JSON: {e.msg}", corpus_path, lineno) from None
                ids.append(str(rec["_id"]))
                titles.append(rec.get("title") or "")
                texts.append(rec.get("text") or "")
        self.corpus = Corpus(ids, titles, texts)
        self._queries: dict[str, str] | None = None
        self._qrels: dict[str, dict[str, dict[str, int]]] = {}

    def splits(self) -> list[str]:
        qdir = self.path / "qrels"
        return sorted(p.name.split(".")[0] for p in qdir.glob("*.tsv*")) if qdir.exists() else []

    def queries(self) -> dict[str, str]:
        if self._queries is None:
            qpath = _find(self.path, "queries.jsonl")
            if qpath is None:
                raise DataError("no queries.jsonl(.gz) found", self.path)
            out: dict[str, str] = {}
            with _open_text(qpath) as f:
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rec = json.loads(line)
                        except json.JSONDecodeError as e:
                            raise DataError(f"malformed JSON: {e.msg}", qpath, lineno) from None
                        out[str(rec["_id"])] = rec.get("text") or ""
            self._queries = out
        return self._queries

    def qrels(self, split: str) -> dict[str, dict[str, int]]:
        if split not in self._qrels:
            qpath = _find(self.path / "qrels", f"{split}.tsv")
            if qpath is None:
                raise DataError(f"no qrels for split {split!r} (have: {self.splits()})", self.path)
            out: dict[str, dict[str, int]] = {}
            with _open_text(qpath) as f:
                reader = csv.reader(f, delimiter="\t")
                for lineno, row in enumerate(reader, 1):
                    if lineno == 1 and row and row[0] == "query-id":
                        continue
                    if len(row) != 3:
                        raise DataError(f"expected 3 columns, got {len(row)}", qpath, lineno)
                    out.setdefault(row[0], {})[row[1]] = int(row[2])
            self._qrels[split] = out
        return self._qrels[split]

    def pairs(self, split: str) -> list[Pair]:
        """Positive (query, doc) pairs of a split (score > 0), in file order."""
        return [Pair(q, d) for q, docs in self.qrels(split).items() for d, s in docs.items() if s > 0]


def data_dir() -> Path | None:
    env = os.environ.get("DENSESCALE_DATA_DIR")
    return Path(env) if env else None


def open_dataset(path_or_name: str | os.PathLike, data_dir_override: str | os.PathLike | None = None) -> Dataset:
    """Open a dataset by local path or by name under --data-dir / $DENSESCALE_DATA_DIR."""
    p = Path(path_or_name)
    if p.exists():
        return Dataset(p)
    base = Path(data_dir_override) if data_dir_override else data_dir()
    if base is not None and (base / str(path_or_name)).exists():
        return Dataset(base / str(path_or_name), name=str(path_or_name))
    raise DataError(
        f"dataset {str(path_or_name)!r} not found as a path or under "
        f"{base or '$DENSESCALE_DATA_DIR (unset)'}; put it in BEIR layout there"
    )
