"""Training data: the (query, positive) pairs of a run as corpus rows, pre-tokenised.

    data = TrainData(cfg, ds, model.tokenizer)
    data.queries.batch(idx)                       # query tokens of pairs idx
    data.passage_store(idx, neg_rows)             # positives of idx, then the negative rows
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from densescale.data.subsets import nested_subsets
from densescale.errors import ConfigError, DataError
from densescale.train.negatives import BatchOrder
from densescale.train.tokens import TokenStore

if TYPE_CHECKING:
    from densescale.data.formats import Pair
    from densescale.train.config import TrainConfig


def subset_pairs(pairs: list[Pair], size: int | None, seed: int) -> list[Pair]:
    """The first ``size`` pairs of a seeded order (nested: a smaller D is a prefix of a larger).

    Raises:
        ConfigError: ``size`` exceeds the available pairs.
    """
    if size is not None and size > len(pairs):
        raise ConfigError(f"train_size: {size:,} > {len(pairs):,} pairs available for training "
                          "(the split minus the selection hold-out)")
    if size is None or size == len(pairs):
        return list(pairs)  # all of them, in file order
    return list(nested_subsets(pairs, [size], seed)[size])


@dataclass(frozen=True)
class Pool:
    """The pairs a run may train on, before the subset D is drawn.

    Attributes:
        pairs: positive pairs of the split (or annotation set) minus the held-out selection
            groups. queries: query id -> text. positives: query id -> own positive text (ICT
            annotation sets), else None. held_out: pairs removed for the selection split.
    """

    pairs: list[Pair]
    queries: dict[str, str]
    positives: dict[str, str] | None
    held_out: int


def training_pool(cfg: TrainConfig, ds: Any) -> Pool:
    """The training pool of ``cfg`` on dataset ``ds``: ``ds.training_pairs(cfg.split)``, or the
    annotation set's pairs filtered by ``ds.selection().keep_training`` (the largest valid D is
    ``len(pool.pairs)``).

    Raises:
        DataError: the pool is empty.
    """
    from densescale.data import read_annotation_set

    if cfg.annotations:
        aset = read_annotation_set(cfg.annotations)
        pairs = ds.selection().keep_training(aset.pairs)
        pool = Pool(pairs, aset.queries, aset.positives, len(aset.pairs) - len(pairs))
    else:
        pairs = ds.training_pairs(cfg.split)  # without the held-out selection groups
        pool = Pool(pairs, ds.queries(), None, len(ds.pairs(cfg.split)) - len(pairs))
    if not pool.pairs:
        raise DataError(f"no positive pairs in split {cfg.split!r} (after holding out the "
                        "selection queries)", cfg.annotations or ds.path)
    return pool


class TrainData:
    """Pairs (as corpus rows), their tokenised queries, and tokenised passages.

    The pool is the split's pairs (or the annotation set's) minus every pair of a held-out
    selection group (``Dataset.training_pairs``, ``Selection.keep_training``), so no training
    subset D ever shares a query or passage with the selection queries; D is then a nested
    seeded subset of that pool. Only the pairs that steps 0 .. steps - 1 draw are tokenised
    (300 steps of 64 read 19,200 of 86,479 SQuAD pairs); the rows of the others stay empty, and
    ``query_store`` / ``passage_store`` refuse them.

    Attributes:
        pairs: the D training pairs. pos_rows: corpus row of each pair's positive [D].
        qids: query id of each pair. queries: TokenStore of the queries, one per pair.
        passages: TokenStore of the corpus (pre-tokenised) or of the distinct positives.
        positives: TokenStore of each pair's own positive text (ICT annotation sets), or None.
        tokenize_s: seconds spent tokenising. held_out: pairs left out for selection.
    """

    def __init__(self, cfg: TrainConfig, ds: Any, tokenizer: Any,
                 log: Callable[[str], None] = print):
        pool = training_pool(cfg, ds)
        pairs, queries, pos_texts = pool.pairs, pool.queries, pool.positives
        where = cfg.annotations or ds.path
        self.held_out = pool.held_out  # pairs left out for the selection split
        seed = cfg.seed if cfg.subset_seed is None else cfg.subset_seed
        pairs = subset_pairs(pairs, cfg.train_size, seed)
        try:
            q_texts = [queries[p.query_id] for p in pairs]
        except KeyError as e:
            raise DataError(f"pair names unknown query {e.args[0]!r}", where) from None
        self.pairs = pairs
        rows = ds.corpus.rows_of([p.doc_id for p in pairs], strict=False)  # [D]
        if (rows < 0).any():  # name the qrels file:line of the first unknown document
            if not cfg.annotations and cfg.split in ds.splits():
                ds.check_ids(cfg.split, positives_only=True)
            bad = pairs[int(np.flatnonzero(rows < 0)[0])].doc_id
            raise DataError(f"pair names unknown document {bad!r}", where)
        self.pos_rows = rows
        self.qids = [p.query_id for p in pairs]
        self.corpus = ds.corpus
        self.n_corpus = len(ds.corpus)
        self.tokenizer = tokenizer
        self.max_len = cfg.passage_max_len
        t0 = time.perf_counter()
        # only the pairs the run's steps draw are tokenised (e.g. 300 steps x 64 of 86,479);
        # the others stay empty rows, which the steps never read (``query_store`` checks)
        used = BatchOrder(len(pairs), cfg.batch_size, cfg.seed).used(cfg.steps)
        self._used = None if used is None else np.zeros(len(pairs), bool)
        if used is not None:
            self._used[used] = True
            q_texts = [q_texts[i] for i in used]
        self.queries = _spread(TokenStore.from_texts(tokenizer, q_texts, cfg.query_max_len),
                               used, len(pairs))  # one per pair
        pre = cfg.pretokenize_corpus
        if pre is None:  # tokenise the whole corpus once when that is less work than per step
            per_step = cfg.steps * max(cfg.negatives, 1)
            pre = self.n_corpus <= max(per_step, len(set(self.pos_rows.tolist())))
        self.pretokenized = bool(pre)
        self.positives: TokenStore | None = None  # own positive texts (ICT), pair -> row
        drawn = np.arange(len(pairs)) if used is None else used
        if pos_texts is not None:
            self.positives = _spread(TokenStore.from_texts(
                tokenizer, [pos_texts[pairs[i].query_id] for i in drawn], self.max_len),
                used, len(pairs))
        if self.pretokenized:
            self.passages = TokenStore.from_texts(tokenizer, _all_texts(ds.corpus), self.max_len)
            self._pos_index = self.pos_rows  # store row == corpus row
        elif self.positives is None:
            uniq, inv = np.unique(self.pos_rows[drawn], return_inverse=True)
            self.passages = TokenStore.from_texts(tokenizer, ds.corpus.texts(uniq), self.max_len)
            self._pos_index = np.zeros(len(pairs), np.int64)  # pair -> store row
            self._pos_index[drawn] = inv
        else:  # positives come from self.positives, negatives are tokenised per step
            self.passages = self.positives
        self.tokenize_s = time.perf_counter() - t0
        how = "pre-tokenised" if self.pretokenized else "per step"
        log(f"tokenised {len(drawn):,} queries (those the {cfg.steps:,} steps draw of "
            f"{len(pairs):,}) and {len(self.passages):,} passages in "
            f"{self.tokenize_s:.1f}s (corpus {how}; {self.held_out:,} pairs held out for "
            "selection)")

    def __len__(self) -> int:
        return len(self.pairs)

    def query_store(self, pair_idx: np.ndarray) -> TokenStore:
        """Token ids of the pairs' queries."""
        self._check_drawn(pair_idx)
        return self.queries.take(pair_idx)

    def _check_drawn(self, pair_idx: np.ndarray) -> None:
        if self._used is not None and not self._used[pair_idx].all():
            raise RuntimeError("a step drew a training pair that was not tokenised (the batch "
                               "order differs from the one TrainData planned for)")

    def passage_store(self, pair_idx: np.ndarray, neg_rows: np.ndarray) -> TokenStore:
        """Token ids of the pairs' positives followed by the negative rows (B + M texts)."""
        self._check_drawn(pair_idx)
        if self.positives is not None:
            pos = self.positives.take(pair_idx)
            if len(neg_rows) == 0:
                return pos
            return TokenStore.concat([pos, self._negative_tokens(neg_rows)])
        if self.pretokenized:
            return self.passages.take(np.concatenate([self._pos_index[pair_idx], neg_rows]))
        pos = self.passages.take(self._pos_index[pair_idx])
        if len(neg_rows) == 0:
            return pos
        return TokenStore.concat([pos, self._negative_tokens(neg_rows)])

    def _negative_tokens(self, rows: np.ndarray) -> TokenStore:
        if self.pretokenized:
            return self.passages.take(rows)
        return TokenStore.from_texts(self.tokenizer, self.corpus.texts(rows), self.max_len)


def _spread(store: TokenStore, rows: np.ndarray | None, n: int) -> TokenStore:
    return store if rows is None else store.spread(rows, n)


def _all_texts(corpus: Any) -> list[str]:
    out: list[str] = []
    for _, texts in corpus.iter_batches(50_000):
        out.extend(texts)
    return out
