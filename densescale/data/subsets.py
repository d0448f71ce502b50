"""Nested training subsets by number of annotated pairs D (Fang et al., Scaling Laws for Dense
Retrieval, SIGIR 2024, Section 3).

The paper varies the annotation budget by shuffling the query-positive pairs once and keeping the
first D, so every smaller subset is contained in every larger one and a seed fixes them all.

    subsets = nested_subsets(ds.pairs("train"), sizes=[100, 1000], seed=1)
    assert set(subsets[100]) <= set(subsets[1000])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from densescale.data.formats import Pair
from densescale.errors import DenseScaleError


def shuffled_order(n: int, seed: int) -> np.ndarray:
    """The one permutation of ``range(n)`` that all subsets of a seed are prefixes of."""
    return np.random.default_rng(seed).permutation(n).astype(np.int64)  # [n]


def nested_subsets(pairs: Sequence[Pair], sizes: Iterable[int], seed: int) -> dict[int, list[Pair]]:
    """Shuffle ``pairs`` once with ``seed`` and keep the first D for each D in ``sizes``.

    Args:
        pairs: all (query, positive) pairs of a split, e.g. ``ds.pairs("train")``.
        sizes: the subset sizes D (any order; duplicates collapse).
        seed: fixes the shuffle; the same seed gives the same subsets on every machine.

    Returns:
        D -> list of D pairs (ascending D); ``out[a]`` is a prefix of ``out[b]`` for a < b.

    Raises:
        DenseScaleError: a size is negative or larger than ``len(pairs)``.
    """
    sizes = sorted(set(int(d) for d in sizes))
    n = len(pairs)
    for d in sizes:
        if d < 0:
            raise DenseScaleError(f"subset size must be >= 0, got {d}")
        if d > n:
            raise DenseScaleError(f"asked for a subset of {d:,} pairs but only {n:,} exist")
    order = shuffled_order(n, seed)[: sizes[-1] if sizes else 0].tolist()
    return {d: [pairs[i] for i in order[:d]] for d in sizes}
