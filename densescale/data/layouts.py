"""Per-collection layouts: which file holds the corpus, the queries and the qrels of each split.

Three layouts are recognised from the file names alone (``.gz`` variants too):

- ``beir``: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` (header row).
- ``msmarco``: ``collection.tsv``, ``queries.<split>.tsv``, ``qrels.<split>.tsv`` (TREC 4-column).
- ``t2ranking``: ``collection.tsv``, ``queries.<split>.tsv``, ``qrels.retrieval.<split>.tsv``
  (all with header rows; Chinese text).

Readers are thin: a :class:`Layout` only names files and the parser of
:mod:`densescale.data.formats` that reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from densescale.data import formats
from densescale.errors import DataError


@dataclass(frozen=True)
class Layout:
    """Where the parts of one collection live and how to parse them."""

    name: str                              # "beir" | "msmarco" | "t2ranking"
    root: Path
    corpus: Path
    queries: tuple[Path, ...]              # all query files (merged into one id -> text map)
    qrels: dict[str, Path] = field(default_factory=dict)  # split -> qrels file
    corpus_tsv: bool = False               # corpus is TSV (pid, passage), else BEIR JSONL
    queries_tsv: bool = False

    @property
    def parse_doc(self) -> formats.DocParser:
        return formats.parse_tsv_doc if self.corpus_tsv else formats.parse_jsonl_doc

    @property
    def parse_query(self) -> formats.QueryParser:
        return formats.parse_tsv_query if self.queries_tsv else formats.parse_jsonl_query

    def files(self) -> list[Path]:
        return [self.corpus, *self.queries, *self.qrels.values()]


def find(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists."""
    for cand in (folder / name, folder / f"{name}.gz"):
        if cand.is_file():
            return cand
    return None


def _strip(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def _glob_splits(folder: Path, pattern: str) -> dict[str, Path]:
    """split -> file for names matching ``pattern`` (a regex with one group, the split)."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        m = re.fullmatch(pattern, _strip(p.name))
        if m and p.is_file():
            out.setdefault(m.group(1), p)
    return out


def detect_layout(root: str | Path) -> Layout:
    """Recognise the layout of a dataset folder from its file names.

    Raises:
        DataError: no known layout, naming the files each layout expects.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("not a folder", root)
    corpus = find(root, "corpus.jsonl")
    if corpus is not None:
        queries = find(root, "queries.jsonl")
        if queries is None:
            raise DataError("BEIR layout without queries.jsonl(.gz)", root)
        qrels = _glob_splits(root / "qrels", r"(.+)\.tsv")
        return Layout("beir", root, corpus, (queries,), qrels)
    collection = find(root, "collection.tsv")
    if collection is not None:
        queries = _glob_splits(root, r"queries\.(.+)\.tsv")
        if not queries:
            raise DataError("collection.tsv without any queries.<split>.tsv", root)
        t2 = _glob_splits(root, r"qrels\.retrieval\.(.+)\.tsv")
        if t2:
            return Layout("t2ranking", root, collection, tuple(queries.values()), t2,
                          corpus_tsv=True, queries_tsv=True)
        qrels = _glob_splits(root, r"qrels\.(.+)\.tsv")
        return Layout("msmarco", root, collection, tuple(queries.values()), qrels,
                      corpus_tsv=True, queries_tsv=True)
    raise DataError(
        "no known dataset layout: expected BEIR (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) "
        "or MS MARCO / T2Ranking (collection.tsv, queries.<split>.tsv, "
        "qrels[.retrieval].<split>.tsv); .gz variants accepted", root)
