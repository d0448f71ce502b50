from __future__ import annotations

import numpy as np
import pytest
from _eval_helpers import make_dataset

from densescale.data import open_dataset
from densescale.errors import ConfigError
from densescale.evaluate import negatives as negmod
from densescale.evaluate import sample_negatives


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return open_dataset(make_dataset(tmp_path_factory.mktemp("neg") / "toy", n_docs=400))


def test_sample_is_deterministic_cached_and_valid(ds):
    a = sample_negatives(ds, "test", negatives=64, repeats=4, seed=7)
    files = list((negmod.cache_dir() / "negatives").glob(f"toy-test-{a.key}.npz"))
    assert len(files) == 1  # written once to the cache
    negmod._MEMORY.clear()
    b = sample_negatives(ds, "test", negatives=64, repeats=4, seed=7)  # from disk
    c = sample_negatives(ds, "test", negatives=64, repeats=4, seed=7, use_cache=False)  # redrawn
    for s in (b, c):
        assert s.key == a.key and s.query_ids == a.query_ids
        assert np.array_equal(s.negatives, a.negatives)
        assert np.array_equal(s.pool_rows, a.pool_rows)
    assert a.negatives.shape == (4, len(ds.pairs("test")), 64)
    positives = ds.corpus.rows_of([d for _, d in ds.pairs("test")])
    drawn = a.pool_rows[a.negatives.astype(np.int64)]  # [R, P, W] corpus rows
    assert not np.isin(drawn, positives).any()
    srt = np.sort(drawn, axis=2)
    assert (np.diff(srt, axis=2) > 0).all()  # no duplicates within a draw
    assert not np.array_equal(a.negatives[0], a.negatives[1])  # fresh draws per repeat
    d = sample_negatives(ds, "test", negatives=64, repeats=4, seed=8)
    assert d.key != a.key and not np.array_equal(d.negatives, a.negatives)


def test_draws_are_uniform_over_pool():
    rng = np.random.default_rng(0)
    x = negmod._draw_distinct(rng, 50, (1, 20000, 10)).astype(np.int64)
    counts = np.bincount(x.ravel(), minlength=50)
    expected = 20000 * 10 / 50
    assert abs(counts - expected).max() < 5 * np.sqrt(expected)
    dense = negmod._draw_distinct(rng, 12, (2, 5, 10)).astype(np.int64)  # W close to pool
    assert all(len(set(row)) == 10 for row in dense.reshape(-1, 10))


def test_pool_and_pair_subsample(ds):
    s = sample_negatives(ds, "test", negatives=16, repeats=2, seed=1, pool_size=100, max_pairs=7)
    assert len(s.pool_rows) == 100 and s.n_pairs == 7
    assert s.negatives.max() < 100
    full = sample_negatives(ds, "test", negatives=16, repeats=2, seed=1)
    assert set(s.query_ids) <= set(full.query_ids)
    with pytest.raises(ConfigError):
        sample_negatives(ds, "test", negatives=10_000, repeats=1)


def test_unknown_document_names_the_qrels_line(tmp_path):
    from densescale.errors import DataError

    root = make_dataset(tmp_path / "bad", n_docs=100, n_queries=5)
    qrels = root / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q0\tnope\t1\n")
    n_lines = len(qrels.read_text().splitlines())
    with pytest.raises(DataError, match="nope") as e:
        sample_negatives(open_dataset(root), "test", negatives=4, repeats=1)
    assert f"test.tsv:{n_lines}" in str(e.value)
