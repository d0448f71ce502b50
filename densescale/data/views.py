"""Dataset views: a dataset seen through a filter, with the same API as the dataset itself.

    small = QuerySubset(ds, "test", n=500, seed=1)   # 500 seeded test queries, the rest as ds
    ranking_metrics(encoder, small, "test")
"""

from __future__ import annotations

from typing import Any

import numpy as np

from densescale.data.formats import Pair


class QuerySubset:
    """A dataset view whose ``split`` qrels keep a seeded sample of ``n`` queries (quick ranking
    evaluation on large test sets); every other split and attribute is the dataset's own.

    Args:
        dataset: any object with ``qrels(split)`` and ``pairs(split)`` (a Dataset).
        split: the split to subsample.
        n: queries kept (all when the split has at most ``n``).
        seed: sampling seed; the sample is a function of (sorted query ids, n, seed).
    """

    def __init__(self, dataset: Any, split: str, n: int, seed: int):
        self._ds, self._split = dataset, split
        qrels = dataset.qrels(split)
        qids = sorted(qrels)
        if n < len(qids):
            keep = np.random.default_rng(seed).choice(len(qids), size=n, replace=False)
            qids = [qids[i] for i in sorted(keep)]
        self._qrels = {q: qrels[q] for q in qids}

    def qrels(self, split: str) -> dict[str, dict[str, int]]:
        return self._qrels if split == self._split else self._ds.qrels(split)

    def pairs(self, split: str) -> list[Pair]:
        if split != self._split:
            return self._ds.pairs(split)
        return [Pair(q, d) for q, docs in self._qrels.items() for d, s in docs.items() if s > 0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ds, name)
