"""Nested subsets: deterministic, nested, exact sizes, clear error beyond the pool."""

from __future__ import annotations

import pytest

from densescale.data import Pair, open_dataset
from densescale.data.subsets import nested_subsets
from densescale.errors import DenseScaleError

PAIRS = [Pair(f"q{i}", f"d{i % 7}") for i in range(50)]


def test_nested_and_deterministic():
    a = nested_subsets(PAIRS, [30, 5, 10], seed=3)
    assert list(a) == [5, 10, 30] and [len(v) for v in a.values()] == [5, 10, 30]
    assert a[10][:5] == a[5] and a[30][:10] == a[10]
    assert a == nested_subsets(PAIRS, [5, 10, 30], seed=3)
    assert nested_subsets(PAIRS, [10], seed=4)[10] != a[10]
    assert sorted(nested_subsets(PAIRS, [50], seed=0)[50]) == sorted(PAIRS)
    assert nested_subsets(PAIRS, [0], seed=0) == {0: []}


def test_too_many_is_an_error():
    with pytest.raises(DenseScaleError, match="subset of 51 pairs but only 50 exist"):
        nested_subsets(PAIRS, [10, 51], seed=0)
    with pytest.raises(DenseScaleError, match=">= 0"):
        nested_subsets(PAIRS, [-1], seed=0)


def test_dataset_convenience(scifact_path):
    ds = open_dataset(scifact_path)
    subs = ds.subsets("train", [100, 919], seed=1)
    assert set(subs[100]) <= set(subs[919]) and sorted(subs[919]) == sorted(ds.pairs("train"))
