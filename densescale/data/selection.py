"""The selection split: queries that choose checkpoints and calibrate, never reported on.

Fang et al. (SIGIR 2024, Section 4.1) keep, for every model, the best contrastive entropy seen on
the *test* set during training. That lets the reported split pick the reported number. densescale
instead selects on a separate, seeded set of queries, disjoint from the reporting split and from
every training subset D:

* a dataset with both a ``dev`` (or ``validation``) and a ``test`` split selects on ``dev``;
* otherwise the selection queries are carved from ``train``, by *group*: whole passages, or whole
  articles when passages share titles (SQuAD paragraphs of one Wikipedia article), so that no
  selection query shares a passage (or article) with any training pair. Training pairs whose
  passage lies in a held-out group are removed from the training pool
  (:meth:`Selection.keep_training`), for human qrels and generated annotations alike.

    sel = ds.selection()             # Selection(source="train", carved=True, ...)
    ds.qrels("selection")            # its qrels, like any split
    ds.training_pairs("train")       # train pairs minus the held-out groups

The paper's own practice (select on the reported split) stays available by naming that split as
the training ``eval_split``; reports then label the numbers as selected on the reported split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from densescale.errors import DataError

if TYPE_CHECKING:
    from densescale.data.dataset import Dataset
    from densescale.data.formats import Pair

SELECTION = "selection"  # the virtual split name
DEV_SPLITS = ("dev", "validation", "val")
SELECTION_SEED = 20240318  # fixed: every run of every study on a dataset selects on the same set
MAX_QUERIES = 1000
GroupBy = Literal["auto", "passage", "title"]


@dataclass(frozen=True)
class Selection:
    """Selection queries of a dataset and what training must leave out because of them.

    Attributes:
        source: the split the queries come from ("dev", or "train" when carved).
        carved: True when carved from ``source`` (training on ``source`` then loses the groups).
        qrels: query id -> {doc id: score} of the selection queries.
        group_by: "passage" or "title" (how the carve keeps passages apart); "" when not carved.
        held_out_docs: every passage of the held-out groups (empty when not carved).
    """

    source: str
    carved: bool
    qrels: dict[str, dict[str, int]]
    group_by: str = ""
    held_out_docs: frozenset[str] = field(default_factory=frozenset)

    @property
    def query_ids(self) -> frozenset[str]:
        return frozenset(self.qrels)

    def keep_training(self, pairs: list[Pair]) -> list[Pair]:
        """``pairs`` without those whose query is a selection query or whose passage is held out
        (a no-op when the selection is a real dev split)."""
        if not self.carved:
            return list(pairs)
        q, d = self.query_ids, self.held_out_docs
        return [p for p in pairs if p.query_id not in q and p.doc_id not in d]


def _rows(ds: Dataset, doc_ids: list[str], split: str) -> np.ndarray:
    """Corpus rows of the positives of ``split``'s qrels.

    Raises:
        DataError: an id not in the corpus, naming the qrels file and line that judges it
            (``Dataset.check_ids``), else the dataset.
    """
    rows = ds.corpus.rows_of(doc_ids, strict=False)
    bad = np.flatnonzero(rows < 0)
    if len(bad):
        check = getattr(ds, "check_ids", None)
        if check is not None and split in ds.splits():
            check(split, positives_only=True)  # raises naming the qrels file:line
        more = f" ({len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"qrels of split {split!r} name unknown document "
                        f"{doc_ids[int(bad[0])]!r}{more}", getattr(ds, "path", None))
    return rows


def _group_keys(ds: Dataset, doc_ids: list[str], group_by: GroupBy,
                split: str) -> tuple[list[str], str]:
    rows = _rows(ds, doc_ids, split)  # every id checked, whatever the grouping
    if group_by == "passage":
        return doc_ids, "passage"
    titles = [d.title or "" for d in ds.corpus.docs(rows)]
    if group_by == "auto":
        uniq_docs = len(set(doc_ids))
        named = [t for t in titles if t]
        # titles name groups of passages (articles) when they repeat: >= 2 passages per title
        if len(named) < len(titles) or len(set(named)) * 2 > uniq_docs:
            return doc_ids, "passage"
    return [f"title:{t}" for t in titles], "title"


def make_selection(ds: Dataset, source: str = "train", size: int | None = None,
                   seed: int = SELECTION_SEED, group_by: GroupBy = "auto") -> Selection:
    """Selection queries of ``ds`` (see the module docstring for the rule).

    Args:
        ds: the dataset.
        source: the training split to carve from when the dataset has no dev split.
        size: target number of selection queries (whole groups are taken until it is reached);
            None = min(1000, 10% of the source's queries), at least 10.
        seed: fixes which groups are held out.
        group_by: "auto" (titles when they repeat, else passages), "passage" or "title".

    Raises:
        DataError: no dev split and no ``source`` split to carve from, or too few queries.
    """
    splits = ds.splits()
    source = ds.split_of(source)  # "train" reads train.judged when the id named that split
    has_test = "test" in splits
    for dev in DEV_SPLITS:
        if dev in splits and has_test:
            return Selection(source=dev, carved=False, qrels=ds.qrels(dev))
    if source not in splits:
        raise DataError(f"no dev split and no {source!r} split to carve selection queries from "
                        f"(have: {splits})", ds.path)
    qrels = ds.qrels(source)
    qids = [q for q, docs in qrels.items() if any(s > 0 for s in docs.values())]
    if len(qids) < 20:
        raise DataError(f"split {source!r} has only {len(qids)} queries with a positive: too "
                        "few to carve selection queries from", ds.path)
    if size is None:
        size = max(10, min(MAX_QUERIES, len(qids) // 10))
    # union-find over queries and groups: a query with positives in two groups ties them
    pos = [(q, d) for q in qids for d, s in qrels[q].items() if s > 0]
    keys, how = _group_keys(ds, [d for _, d in pos], group_by, source)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (q, _), g in zip(pos, keys):
        a, b = find("q:" + q), find("g:" + g)
        if a != b:
            parent[a] = b
    comp_queries: dict[str, list[str]] = {}
    for q in qids:
        comp_queries.setdefault(find("q:" + q), []).append(q)
    comps = sorted(comp_queries)
    order = np.random.default_rng(seed).permutation(len(comps))
    chosen: set[str] = set()
    n = 0
    for i in order:
        if n >= size:
            break
        chosen.add(comps[i])
        n += len(comp_queries[comps[i]])
    if n > len(qids) // 2:
        raise DataError(f"carving {size} selection queries from {source!r} would take {n} of "
                        f"{len(qids)} queries (groups too large); use a dataset with a dev split",
                        ds.path)
    sel_q = {q for c in chosen for q in comp_queries[c]}
    held_groups = {g for (q, _), g in zip(pos, keys) if q in sel_q}
    held_docs = frozenset(d for (_, d), g in zip(pos, keys) if g in held_groups)
    if how == "title":  # every passage of a held-out article, judged or not
        held_titles = {g.removeprefix("title:") for g in held_groups}
        held_docs = frozenset(held_docs | {ds.corpus.ids[r] for r in range(len(ds.corpus))
                                           if ds.corpus[r].title in held_titles})
    return Selection(source=source, carved=True, qrels={q: qrels[q] for q in qids if q in sel_q},
                     group_by=how, held_out_docs=held_docs)
