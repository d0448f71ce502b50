"""Dataset API (the contract every stage codes against).

    ds = open_dataset("squad_v11")            # a path, or a name under $DENSESCALE_DATA_DIR
    ds = open_dataset("irds:beir/scifact/test")  # also hf:<folder|hub id>, beir/scifact/test
    ds.corpus[0]                               # Doc(id, title, text) by row
    ds.corpus.rows_of(["dev-000-000"])         # np.ndarray[int64] rows, DataError on unknown id
    ds.corpus.texts(rows)                      # list[str] "title text" as encoders see it
    ds.queries()                               # dict qid -> text (all queries)
    ds.qrels("test")                           # dict qid -> {doc_id: score}
    ds.pairs("train")                          # list[Pair] of positives (score > 0), file order

The corpus is memory-mapped from an on-disk index built on first open
(:mod:`densescale.data.index`); queries and qrels are read into memory when first asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densescale.data import formats
from densescale.data.corpus import Corpus
from densescale.data.formats import Pair
from densescale.data.index import ensure_index, warn_duplicates
from densescale.data.layouts import Layout, detect_layout
from densescale.data.selection import SELECTION, Selection, make_selection
from densescale.errors import DataError


class Dataset:
    """A retrieval collection: corpus, queries and qrels per split."""

    def __init__(self, path: str | os.PathLike, name: str | None = None,
                 progress: bool | None = None, default_split: str | None = None,
                 source: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.name
        self.default_split = default_split  # the split a spec named (beir/scifact/test), or None
        self.source = source or str(path)   # the spec as given (irds:..., hf:..., a path)
        self.layout: Layout = detect_layout(self.path)
        index = ensure_index(self.layout, progress=progress)
        self.corpus = Corpus.open(index)
        if len(self.corpus) == 0:
            raise DataError("corpus is empty (no documents)", self.layout.corpus)
        warn_duplicates(index, self.layout.corpus)
        self._queries: dict[str, str] | None = None
        self._qrels: dict[str, dict[str, dict[str, int]]] = {}
        self._selection = None

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, layout={self.layout.name!r}, "
                f"docs={len(self.corpus)}, splits={self.splits()})")

    def splits(self) -> list[str]:
        """Names of the splits that have qrels (e.g. ["test", "train"])."""
        return sorted(self.layout.qrels)

    def queries(self) -> dict[str, str]:
        """All queries of all query files: id -> text."""
        if self._queries is None:
            out: dict[str, str] = {}
            for qpath in self.layout.queries:
                for _, (qid, text) in formats.iter_records(qpath, self.layout.parse_query,
                                                           tsv=self.layout.queries_tsv):
                    out[qid] = text
            self._queries = out
        return self._queries

    def split_of(self, split: str) -> str:
        """The split a name reads: itself when the dataset has it, else the split the spec
        named when that is a sub-split of it (``irds:msmarco-passage/train/judged`` names
        ``train.judged``, which ``train`` then reads, so training finds its pairs)."""
        d = self.default_split
        if split in self.layout.qrels or d is None or d not in self.layout.qrels:
            return split
        return d if d.split(".")[0] == split else split

    def qrels(self, split: str) -> dict[str, dict[str, int]]:
        """Judgments of a split: query id -> {doc id: score}, in file order."""
        if split == SELECTION and SELECTION not in self.layout.qrels:
            return self.selection().qrels
        split = self.split_of(split)
        if split not in self._qrels:
            qpath = self.layout.qrels.get(split)
            if qpath is None:
                raise DataError(f"no qrels for split {split!r} (have: {self.splits()})", self.path)
            out: dict[str, dict[str, int]] = {}
            for _, (qid, did, score) in formats.iter_records(qpath, formats.parse_qrel, tsv=True):
                out.setdefault(qid, {})[did] = score
            self._qrels[split] = out
        return self._qrels[split]

    def check_ids(self, split: str, positives_only: bool = False) -> None:
        """Raise DataError naming qrels file:line of the first judgment whose query is not in
        the query files or whose document is not in the corpus (one vectorised corpus lookup).

        Args:
            split: A split with a qrels file.
            positives_only: Check only judgments with score > 0 (the training / eval pairs).
        """
        qpath = self.layout.qrels.get(self.split_of(split))
        if qpath is None:
            raise DataError(f"no qrels for split {split!r} (have: {self.splits()})", self.path)
        queries = self.queries()
        lines, dids = [], []
        for lineno, (qid, did, score) in formats.iter_records(qpath, formats.parse_qrel, tsv=True):
            if positives_only and score <= 0:
                continue
            if qid not in queries:
                raise DataError(f"qrel names unknown query {qid!r}", qpath, lineno)
            lines.append(lineno)
            dids.append(did)
        rows = self.corpus.rows_of(dids, strict=False)
        bad = np.flatnonzero(rows < 0)
        if len(bad):
            i = int(bad[0])
            more = f" ({len(bad) - 1} more)" if len(bad) > 1 else ""
            raise DataError(f"qrel names unknown document {dids[i]!r}{more}", qpath, lines[i])

    def pairs(self, split: str) -> list[Pair]:
        """Positive (query, doc) pairs of a split (score > 0), in file order."""
        return [Pair(q, d) for q, docs in self.qrels(split).items()
                for d, s in docs.items() if s > 0]

    def selection(self) -> Selection:
        """The selection queries (checkpoint choice, calibration), never the reported split:
        the dev split when there is one beside test, else carved from train by passage or
        article (:mod:`densescale.data.selection`). Also available as ``qrels("selection")``."""
        if self._selection is None:
            self._selection = make_selection(self)
        return self._selection

    def training_pairs(self, split: str = "train") -> list[Pair]:
        """Positive pairs of ``split`` usable for training: when the selection queries were
        carved from this split, without them and without any pair whose passage (or article)
        they hold out."""
        pairs = self.pairs(split)
        split = self.split_of(split)
        if SELECTION in self.layout.qrels or split not in self.splits():
            return pairs
        sel = self.selection()
        return sel.keep_training(pairs) if sel.source == split else pairs

    def subsets(self, split: str, sizes: list[int], seed: int) -> dict[int, list[Pair]]:
        """Nested training subsets of this split's pairs (see ``subsets.nested_subsets``)."""
        from densescale.data.subsets import nested_subsets

        return nested_subsets(self.pairs(split), sizes, seed)


def data_dir(override: str | os.PathLike | None = None) -> Path | None:
    """Folder of named datasets: ``override`` (``--data-dir``), else $DENSESCALE_DATA_DIR."""
    if override:
        return Path(override)
    env = os.environ.get("DENSESCALE_DATA_DIR")
    return Path(env) if env else None


def open_dataset(path_or_name: str | os.PathLike,
                 data_dir_override: str | os.PathLike | None = None,
                 download: bool = True, progress: bool | None = None) -> Dataset:
    """Open a dataset by local path, by name under --data-dir / $DENSESCALE_DATA_DIR, or by a
    source spec: ``irds:<ir_datasets id>``, ``hf:<folder or hub id>``, ``beir/<name>[/<split>]``
    (:mod:`densescale.data.sources`).

    Known public collections (``densescale.data.registry.KNOWN``: scifact, nfcorpus, fiqa,
    arguana, squad_v11, msmarco-passage) missing from the data folder are downloaded into it on
    first use when ``download`` is true and the network is reachable.

    Raises:
        DataError: not found (the message says where to put the files) or malformed input.
    """
    from densescale.data.registry import resolve_spec

    r = resolve_spec(path_or_name, data_dir(data_dir_override), download=download,
                     progress=progress)
    return Dataset(r.path, name=r.name, progress=progress, default_split=r.split,
                   source=r.source or str(path_or_name))
