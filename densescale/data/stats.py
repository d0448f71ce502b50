"""Dataset statistics: counts, and mean / 95th-percentile lengths in words (whitespace tokens).

Document length counts the words of ``"title text"`` (what an encoder sees). The corpus is read
in batches from the on-disk index; only one int32 per document is kept.
"""

from __future__ import annotations

import numpy as np

from densescale.data.dataset import Dataset


def length_summary(lengths: np.ndarray) -> dict:
    if len(lengths) == 0:
        return {"mean": 0.0, "p95": 0.0, "max": 0}
    return {"mean": round(float(lengths.mean()), 2), "p95": float(np.percentile(lengths, 95)),
            "max": int(lengths.max())}


def dataset_info(ds: Dataset, batch_size: int = 50_000) -> dict:
    """Counts and word-length statistics of a dataset.

    Returns:
        {"name", "layout", "docs", "queries", "splits": {split: {"queries", "qrels", "pairs"}},
        "doc_words": {"mean", "p95", "max"}, "query_words": {...}}
    """
    n = len(ds.corpus)
    doc_len = np.zeros(n, dtype=np.int32)
    for rows, texts in ds.corpus.iter_batches(batch_size):
        doc_len[rows] = [len(t.split()) for t in texts]
    queries = ds.queries()
    q_len = np.fromiter((len(t.split()) for t in queries.values()), np.int32, len(queries))
    splits = {}
    for s in ds.splits():
        qrels = ds.qrels(s)
        splits[s] = {"queries": len(qrels), "qrels": sum(len(v) for v in qrels.values()),
                     "pairs": len(ds.pairs(s))}
    return {"name": ds.name, "layout": ds.layout.name, "docs": n, "queries": len(queries),
            "splits": splits, "doc_words": length_summary(doc_len),
            "query_words": length_summary(q_len)}
