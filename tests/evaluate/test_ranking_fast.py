"""metrics_from_hits (numpy) gives ir_measures' / pytrec_eval's values on the same hits."""

from __future__ import annotations

import numpy as np
import pytest

from densescale.evaluate.ranking import compute_metrics, hits_to_run, metrics_from_hits

METRICS = ("nDCG@10", "RR@10", "R@5", "R@20", "P@5", "AP", "AP@10", "nDCG")


class _Corpus:
    def __init__(self, n):
        self.ids = [f"d{i:03d}" for i in range(n)] + [f"q{i}" for i in range(5)]
        self._row = {d: i for i, d in enumerate(self.ids)}

    def __len__(self):
        return len(self.ids)

    def __contains__(self, d):
        return d in self._row

    def rows_of(self, ids):
        return np.array([self._row[d] for d in ids], dtype=np.int64)


class _Ds:
    def __init__(self, n):
        self.corpus = _Corpus(n)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_fast_metrics_equal_ir_measures(exclude_self):
    rng = np.random.default_rng(0)
    ds, k, nq = _Ds(60), 20, 40
    qids = [f"q{i}" for i in range(nq)]  # q0..q4 are also documents (self hits)
    qrels = {}
    for q in qids:
        docs = rng.choice(60, size=rng.integers(1, 6), replace=False)
        qrels[q] = {f"d{d:03d}": int(rng.integers(0, 3)) for d in docs}
        qrels[q][f"d{int(docs[0]):03d}"] = 2  # at least one relevant
        if rng.random() < 0.3:
            qrels[q]["missing-doc"] = 1  # judged but not in the corpus
    kk = k + 1 if exclude_self else k
    hits = np.stack([rng.permutation(len(ds.corpus))[:kk] for _ in qids])
    scores = -np.sort(-rng.integers(0, 6, size=(nq, kk)).astype(np.float32), axis=1)  # ties
    for i in range(5):
        hits[i, 0] = 60 + i  # the query itself, ranked first
    fast = metrics_from_hits(ds, qrels, qids, hits, scores, k, exclude_self, METRICS)
    run = hits_to_run(ds, qids, hits, scores, k, exclude_self)
    ref = compute_metrics(qrels, run, METRICS, depth=k)
    assert fast is not None and fast.keys() == ref.keys()
    for key in ref:
        assert fast[key] == pytest.approx(ref[key], abs=1e-12), key


def test_fast_metrics_decline_what_they_do_not_cover():
    ds = _Ds(10)
    hits = np.arange(5)[None, :]
    scores = np.linspace(1, 0, 5, dtype=np.float32)[None, :]
    qrels = {"a": {"d001": 1}}
    assert metrics_from_hits(ds, qrels, ["a"], hits, scores, 5, False, ("nDCG@10",)) is None
    assert metrics_from_hits(ds, qrels, ["a"], hits, scores, 5, False, ("R@5",)) is not None
    assert metrics_from_hits(ds, {"a": {"d001": 0}}, ["a"], hits, scores, 5, False,
                             ("R@5",)) is None  # no relevant document: ir_measures decides
    assert metrics_from_hits(ds, qrels, ["a"], hits, scores, 5, False,
                             ("P(rel=2)@5",)) is None
