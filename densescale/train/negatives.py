"""Per-step sampling keyed by (seed, step): batch order, random negatives, hard negatives.

Every draw uses ``numpy.random.default_rng([seed, step, stream])``, so step k's batch and negatives
do not depend on what ran before: a resumed run draws exactly what an uninterrupted one would.

Negative modes (``TrainConfig.negative_mode``):
  random   the paper's: each step samples ``negatives`` corpus passages shared by the batch,
           excluding the batch's positives (draw negatives + #unique positives, drop, keep first k).
  inbatch  the other queries' positives are the negatives (plus ``negatives`` random ones if > 0).
  hard     ``hard_negatives_per_query`` per query from a file, shared by the batch, plus
           ``negatives`` random ones; a candidate equal to a query's own positive is masked.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from densescale.data import read_hard_negatives
from densescale.errors import DataError

_BATCH, _RANDOM, _HARD = 1, 2, 3  # rng stream ids


class BatchOrder:
    """Epoch-wise seeded permutations of D pairs; ``indices(step)`` -> the step's B pair indices."""

    def __init__(self, n_pairs: int, batch_size: int, seed: int):
        self.n, self.b, self.seed = n_pairs, batch_size, seed
        self._perm_epoch, self._perm = -1, np.empty(0, np.int64)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch, _BATCH]).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def used(self, steps: int) -> np.ndarray | None:
        """The pair indices steps 0 .. ``steps`` - 1 draw, ascending; None when that is every
        pair (the steps reach a second epoch)."""
        if steps * self.b >= self.n:
            return None
        return np.sort(self._permutation(0)[:steps * self.b])

    def indices(self, step: int) -> np.ndarray:
        pos = step * self.b + np.arange(self.b, dtype=np.int64)  # [B] positions in the pair stream
        epochs, offs = pos // self.n, pos % self.n
        out = np.empty(self.b, np.int64)
        for e in np.unique(epochs):  # one or two epochs per step (more only when D < B)
            sel = epochs == e
            out[sel] = self._permutation(int(e))[offs[sel]]
        return out


def random_negatives(n_corpus: int, k: int, exclude: np.ndarray, seed: int,
                     step: int) -> np.ndarray:
    """k distinct corpus rows not in ``exclude``, drawn for ``step`` (the paper's per-step draw)."""
    if k == 0:
        return np.empty(0, np.int64)
    rng = np.random.default_rng([seed, step, _RANDOM])
    excl = np.unique(exclude)
    if n_corpus - len(excl) < k:
        raise DataError(f"corpus has {n_corpus} passages; cannot draw {k} negatives "
                        f"besides {len(excl)} positives")
    draw = min(n_corpus, k + len(excl))
    cand = rng.choice(n_corpus, size=draw, replace=False)
    return cand[~np.isin(cand, excl)][:k].astype(np.int64)


class HardNegatives:
    """Hard negatives per training pair, as a ragged array of corpus rows.

    The file is read by :func:`densescale.data.read_hard_negatives`, which detects its format
    from the first data line: a TREC run ``qid Q0 docid rank score tag`` (tab or space
    separated; a query's documents best first), TSV ``query-id<TAB>doc-id`` (one negative per
    line, optional header) or JSONL ``{"query_id": ..., "doc_ids": [...]}`` (``qid``/``neg``
    accepted too); ``.gz`` is read transparently.
    """

    def __init__(self, path: str | os.PathLike, corpus, pair_qids: list[str]):
        path = Path(path)
        by_q = read_hard_negatives(path)
        lists = [by_q.get(q, []) for q in pair_qids]
        lens = np.fromiter((len(x) for x in lists), np.int64, len(lists))
        if lens.sum() == 0:
            raise DataError("no hard negatives for any training query", path)
        self.offsets = np.concatenate([[0], np.cumsum(lens)])
        ids = [d for x in lists for d in x]
        self.rows = corpus.rows_of(ids, strict=False)  # [sum(lens)]
        if (self.rows < 0).any():
            bad = ids[int(np.flatnonzero(self.rows < 0)[0])]
            raise DataError(f"document {bad!r} is not in the corpus", path)
        self.lens = lens
        self.n_corpus = len(corpus)

    def sample(self, pair_idx: np.ndarray, per_query: int, seed: int, step: int) -> np.ndarray:
        """[B * per_query] rows; queries without hard negatives get random passages."""
        rng = np.random.default_rng([seed, step, _HARD])
        lens = self.lens[pair_idx]  # [B]
        u = rng.random((len(pair_idx), per_query))  # [B, h]
        pick = self.offsets[pair_idx][:, None] + (u * np.maximum(lens, 1)[:, None]).astype(np.int64)
        rand = rng.integers(0, self.n_corpus, size=pick.shape)
        rows = np.where(lens[:, None] > 0, self.rows[np.minimum(pick, len(self.rows) - 1)], rand)
        return rows.reshape(-1)
