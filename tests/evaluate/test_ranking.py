from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval
import torch
from _eval_helpers import HashBowEncoder, make_dataset

from densescale.data import open_dataset
from densescale.errors import ConfigError
from densescale.evaluate import EvalConfig, evaluate_model, exact_search, ranking_metrics
from densescale.evaluate.metrics import RANKING_KEYS
from densescale.evaluate.ranking import ranking_pool, ranking_queries


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return open_dataset(make_dataset(tmp_path_factory.mktemp("rk") / "toy", n_docs=300,
                                     n_queries=25))


def _brute_run(enc, ds, split, k):
    qrels = ds.qrels(split)
    queries = ds.queries()
    q = enc.encode([queries[x] for x in qrels], kind="query")
    p = enc.encode(ds.corpus.texts(np.arange(len(ds.corpus))), kind="doc")
    s = q @ p.T  # [Q, N]
    v, i = s.topk(k, dim=1)
    return {qid: {ds.corpus.ids[int(r)]: float(x) for r, x in zip(i[n], v[n])}
            for n, qid in enumerate(qrels)}


def test_metrics_agree_with_pytrec_eval(ds, tmp_path):
    enc = HashBowEncoder()
    got = ranking_metrics(enc, ds, "test", EvalConfig(k=100, shard_size=64),
                          run_path=tmp_path / "run.trec")
    run = _brute_run(enc, ds, "test", 100)
    qrels = ds.qrels("test")
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "recall.1000",
                                                "map"})
    per_q = ev.evaluate(run)
    top10 = {q: dict(sorted(h.items(), key=lambda x: -x[1])[:10]) for q, h in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    ref = {
        "ndcg_at_10": np.mean([v["ndcg_cut_10"] for v in per_q.values()]),
        "mrr_at_10": np.mean([v["recip_rank"] for v in rr.values()]),
        "recall_at_100": np.mean([v["recall_100"] for v in per_q.values()]),
        "map": np.mean([v["map"] for v in per_q.values()]),
    }
    assert 0.2 < ref["ndcg_at_10"] < 1.0  # not a degenerate fixture
    assert set(got) == set(RANKING_KEYS)  # canonical keys only
    for name, value in ref.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name
    assert np.isnan(got["recall_at_1000"])  # a top-100 run cannot give Recall@1000
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert len(lines) == 25 * 100
    first = lines[0].split()
    assert first[1] == "Q0" and first[3] == "1" and len(first) == 6


def test_sharded_search_equals_unsharded():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(17, 8, generator=g)
    p = torch.randn(503, 8, generator=g)
    rows = np.arange(503) + 1000
    one_s, one_r = exact_search(q, [(rows, p)], k=20)
    shards = [(rows[s:s + 37], p[s:s + 37]) for s in range(0, 503, 37)]
    many_s, many_r = exact_search(q, shards, k=20)
    assert torch.equal(one_r, many_r)
    assert torch.allclose(one_s, many_s)
    ref = (q @ p.T).topk(20, dim=1)
    assert torch.equal(one_r, torch.as_tensor(rows)[ref.indices])
    few_s, few_r = exact_search(q, [(rows[:5], p[:5])], k=8)  # fewer passages than k
    assert (few_r[:, 5:] == -1).all() and torch.isinf(few_s[:, 5:]).all()


def test_exclude_self(tmp_path):
    ds = open_dataset(make_dataset(tmp_path / "self", n_docs=200, n_queries=12, self_ids=True))
    enc = HashBowEncoder()
    path = tmp_path / "run.trec"
    ranking_metrics(enc, ds, "test", k=50, exclude_self=True, run_path=path)
    hits = [ln.split() for ln in path.read_text().splitlines()]
    assert not any(h[0] == h[2] for h in hits)
    assert len(hits) == 12 * 50
    ranking_metrics(enc, ds, "test", k=199, run_path=path)
    assert any(h[0] == h[2] for h in (ln.split() for ln in path.read_text().splitlines()))


def test_pool_holds_every_positive(ds):
    pool = ranking_pool(ds, "test", 60, seed=3)
    pos = ds.corpus.rows_of([d for _, d in ds.pairs("test")])
    assert len(pool) == 60 and np.isin(pos, pool).all() and len(np.unique(pool)) == 60
    assert np.array_equal(pool, ranking_pool(ds, "test", 60, seed=3))
    with pytest.raises(ConfigError):
        ranking_pool(ds, "test", 3)
    with pytest.raises(ConfigError):
        ranking_metrics(HashBowEncoder(), ds, "test", metrics=("nope@3",))


def test_evaluate_model_encodes_corpus_once(ds):
    enc = HashBowEncoder()
    row = evaluate_model(enc, ds, "test", negatives=32, repeats=3, k=50, shard_size=100)
    n_docs = sum(n for kind, n in enc.calls if kind == "doc")
    assert n_docs == len(ds.corpus) == row["n_encoded_passages"]
    from densescale.evaluate import contrastive_entropy

    ce = contrastive_entropy(HashBowEncoder(), ds, "test", negatives=32, repeats=3)
    assert row["contrastive_entropy"] == pytest.approx(ce.mean, abs=1e-6)
    assert row["contrastive_entropy_stderr"] == pytest.approx(ce.stderr, abs=1e-6)
    assert row["ndcg_at_10"] == pytest.approx(
        ranking_metrics(HashBowEncoder(), ds, "test", k=50)["ndcg_at_10"], abs=1e-9)
    assert row["chance"] == pytest.approx(np.log(33))
    assert row["contrastive_entropy_calibrated"] is None  # dot scores, no declared scale
    assert row["calibration_source"] is None


def test_query_sample_ranks_a_seeded_subset(ds):
    sub = ranking_queries(ds, "test", 10, seed=4)
    qids = sorted(ds.qrels("test"))
    keep = np.random.default_rng(4).choice(len(qids), size=10, replace=False)
    assert list(sub) == [qids[i] for i in sorted(keep)]  # the study's historical sample
    pool = ranking_pool(ds, "test", 40, seed=4, qrels=sub)
    pos = ds.corpus.rows_of([d for docs in sub.values() for d in docs])
    assert len(pool) == 40 and np.isin(pos, pool).all()
    row = evaluate_model(HashBowEncoder(), ds, "test", negatives=8, repeats=1, k=20,
                         ranking_max_queries=10, ranking_pool_size=40, seed=4)
    assert row["n_ranked_queries"] == 10 and row["ranking_max_queries"] == 10
    assert row["n_pairs"] == len(ds.pairs("test"))  # contrastive entropy keeps every pair


def test_metric_deeper_than_search_is_nan():
    import math
    import warnings

    from densescale.evaluate.ranking import compute_metrics

    qrels = {"q1": {"d1": 1}, "q2": {"d9": 1}}
    run = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 2.0, "d4": 1.0}}  # top-2 of a larger pool
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = compute_metrics(qrels, run, ["R@2", "Recall@1000"], depth=2)
    assert out["R@2"] == 0.5 and math.isnan(out["recall_at_1000"]) and w
    exhaustive = compute_metrics(qrels, {"q1": {"d1": 1.0}, "q2": {}}, ["R@1000"], depth=2)
    assert exhaustive["recall_at_1000"] == 0.5  # the pool held fewer than k passages: none cut off
