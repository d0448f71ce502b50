from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _eval_helpers import ConstantEncoder, HashBowEncoder, OracleEncoder, make_dataset

from densescale.data import open_dataset
from densescale.evaluate import CEResult, contrastive_entropy, sample_negatives
from densescale.evaluate.entropy import contrastive_entropy_from_sample


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return open_dataset(make_dataset(tmp_path_factory.mktemp("ce") / "toy"))


def test_oracle_scorer_gives_about_zero(ds):
    res = contrastive_entropy(OracleEncoder(ds), ds, "test", negatives=256, repeats=3)
    assert isinstance(res, CEResult)
    assert res.greater_is_better is False
    assert 0.0 <= res.mean < 1e-6
    assert res.n_pairs == len(ds.pairs("test")) and res.repeats == 3 and res.negatives == 256


def test_constant_scorer_gives_log_257(ds):
    res = contrastive_entropy(ConstantEncoder(), ds, "test", negatives=256, repeats=2)
    assert res.mean == pytest.approx(math.log(257), abs=1e-5)
    assert math.log(257) == pytest.approx(5.549, abs=1e-3)
    assert res.per_repeat == pytest.approx([math.log(257)] * 2, abs=1e-5)


def _naive(encoder, ds, sample) -> np.ndarray:
    """Per pair and repeat: encode the query and its W+1 passages, float64 softmax."""
    queries = ds.queries()
    out = np.zeros((sample.repeats, sample.n_pairs))
    for r in range(sample.repeats):
        for i, (qid, pos) in enumerate(zip(sample.query_ids, sample.pos_rows)):
            rows = [int(pos)] + [int(sample.pool_rows[j]) for j in sample.negatives[r, i]]
            q = encoder.encode([queries[qid]], kind="query").double()[0]
            p = encoder.encode(ds.corpus.texts(rows), kind="doc").double()
            s = p @ q
            out[r, i] = float(torch.logsumexp(s, 0) - s[0])
    return out


@pytest.mark.parametrize("method", ["dense", "gather"])
def test_fast_matches_naive_reference(ds, method):
    enc = HashBowEncoder(dim=32, scale=0.5)
    sample = sample_negatives(ds, "test", negatives=16, repeats=3, seed=5)
    ref = _naive(enc, ds, sample)
    res = contrastive_entropy_from_sample(enc, ds, sample, method=method, device="cpu")
    assert ref.mean() > 0.5  # a non-trivial case
    assert res.mean == pytest.approx(ref.mean(), abs=1e-5)
    assert res.per_repeat == pytest.approx(ref.mean(axis=1).tolist(), abs=1e-5)
    assert res.stderr == pytest.approx(ref.mean(axis=1).std(ddof=1) / math.sqrt(3), abs=1e-5)
    assert res.pair_stderr == pytest.approx(
        ref.mean(axis=0).std(ddof=1) / math.sqrt(ref.shape[1]), abs=1e-5)


def test_each_passage_and_query_encoded_once(ds):
    enc = HashBowEncoder()
    res = contrastive_entropy(enc, ds, "test", negatives=8, repeats=2, seed=3)
    sample = sample_negatives(ds, "test", negatives=8, repeats=2, seed=3)
    n_docs = sum(n for kind, n in enc.calls if kind == "doc")
    n_q = sum(n for kind, n in enc.calls if kind == "query")
    assert n_docs == res.n_encoded_passages == len(sample.needed_rows())
    assert n_docs < res.n_pairs * 2 * 9  # never pairs x repeats x (W+1)
    assert n_q == len(set(sample.query_ids))


def test_single_repeat_uses_pair_stderr(ds):
    res = contrastive_entropy(HashBowEncoder(), ds, "test", negatives=8, repeats=1)
    assert res.stderr == pytest.approx(res.pair_stderr, rel=1e-9)
    assert res.stderr > 0


def test_max_pairs_and_pool_size(ds):
    res = contrastive_entropy(HashBowEncoder(), ds, "test", negatives=8, repeats=2,
                              max_pairs=10, pool_size=50)
    assert res.n_pairs == 10 and res.pool_size == 50
