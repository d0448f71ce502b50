"""The common-random-numbers negative sample for contrastive entropy (ids only, cached).

Every model of a study must be scored on the *same* negatives, otherwise the differences between
models are buried under sampling noise. The sample is a deterministic function of
(corpus fingerprint, split and its positive qrels, seed, W, pool size, R, max_pairs); it is
drawn once, written to
``densescale.utils.cache_dir()/negatives/`` and reused by every later call (and kept in memory
for periodic evaluation during training).

Sampling follows the authors' ``evaluate.py`` (Fang et al., Scaling Laws for Dense Retrieval,
SIGIR 2024, Section 3.5, and their released code): the pool is the corpus
minus every positive of the evaluation split (or a seeded random pool of ``pool_size`` such
passages; they used 1M for MS MARCO); for each (query, positive) pair and each of the R repeats,
W passages are drawn uniformly *without replacement* from the pool.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from densescale.errors import ConfigError, DataError
from densescale.evaluate.config import EvalConfig
from densescale.utils import atomic_write_bytes, cache_dir

if TYPE_CHECKING:
    from densescale.data import Dataset

SAMPLE_VERSION = 1  # bump when the drawing procedure changes (invalidates old caches)
_MEMORY: dict[str, NegativeSample] = {}  # key -> sample, most recent few
_MEMORY_MAX = 4
_FINGERPRINTS: dict[tuple[int, int], str] = {}  # (id(corpus), len) -> corpus fingerprint


@dataclass(frozen=True)
class NegativeSample:
    """Which pairs are scored and which pool passages are their negatives (corpus rows only).

    Attributes:
        key: cache key (hex), identical for identical inputs.
        query_ids: query id of each scored pair, length P.
        pos_rows: corpus row of each pair's positive passage, shape [P].
        pool_rows: corpus rows of the negative pool (sorted), shape [M].
        negatives: indices into ``pool_rows``, shape [R, P, W]; distinct within each (r, p).
    """

    key: str
    query_ids: list[str]
    pos_rows: np.ndarray  # [P] int64
    pool_rows: np.ndarray  # [M] int64
    negatives: np.ndarray  # [R, P, W] uint16/uint32 indices into pool_rows

    @property
    def n_pairs(self) -> int:
        return len(self.query_ids)

    @property
    def repeats(self) -> int:
        return int(self.negatives.shape[0])

    @property
    def width(self) -> int:
        return int(self.negatives.shape[2])

    def used_pool(self) -> np.ndarray:
        """Boolean mask over the pool: which pool passages occur as a negative at least once."""
        mask = np.zeros(len(self.pool_rows), dtype=bool)
        mask[self.negatives.reshape(-1)] = True
        return mask

    def needed_rows(self) -> np.ndarray:
        """Sorted distinct corpus rows to encode: positives plus every drawn negative."""
        return np.union1d(self.pos_rows, self.pool_rows[self.used_pool()])


def corpus_fingerprint(dataset: Dataset) -> str:
    """Content hash of the corpus ids in row order (rows are what the sample stores)."""
    corpus = dataset.corpus
    memo = (id(corpus), len(corpus))
    if memo not in _FINGERPRINTS:
        h = hashlib.blake2b(digest_size=16)
        ids = corpus.ids
        for start in range(0, len(ids), 1_000_000):
            h.update("\n".join(ids[start:start + 1_000_000]).encode("utf-8"))
            h.update(b"\n")
        _FINGERPRINTS[memo] = h.hexdigest()
    return _FINGERPRINTS[memo]


def _draw_distinct(rng: np.random.Generator, pool: int, shape: tuple[int, int, int]) -> np.ndarray:
    """Uniform W-subsets of range(pool) for every (r, p): array [R, P, W], distinct per row.

    Draws with replacement and redraws duplicated entries until each row is distinct. The
    procedure commutes with any relabelling of the pool, so each row is a uniformly random
    W-subset (the same law as sampling without replacement), at vectorised numpy speed.
    """
    r, p, w = shape
    if w > pool:
        raise ConfigError(f"negatives={w} exceeds the negative pool size {pool}")
    dtype = np.uint16 if pool <= np.iinfo(np.uint16).max + 1 else np.uint32
    if 2 * w > pool:  # dense case: per-row permutations are cheaper than rejection
        out = np.empty((r * p, w), dtype=dtype)
        for i in range(r * p):
            out[i] = rng.permutation(pool)[:w]
        return out.reshape(r, p, w)
    flat = rng.integers(0, pool, size=(r * p, w), dtype=np.int64)  # [R*P, W]
    while True:
        flat.sort(axis=1)
        dup = np.zeros(flat.shape, dtype=bool)
        dup[:, 1:] = flat[:, 1:] == flat[:, :-1]
        n_dup = int(dup.sum())
        if n_dup == 0:
            break
        flat[dup] = rng.integers(0, pool, size=n_dup, dtype=np.int64)
    # Shuffle within rows so positions carry no order information.
    flat = rng.permuted(flat, axis=1)
    return flat.astype(dtype).reshape(r, p, w)


def sample_negatives(
    dataset: Dataset,
    split: str,
    config: EvalConfig | None = None,
    *,
    use_cache: bool = True,
    **overrides: Any,
) -> NegativeSample:
    """Draw (or load from cache) the negative sample for contrastive entropy.

    Args:
        dataset: an opened ``densescale.data.Dataset``.
        split: qrels split; its positives (score > 0) are the scored pairs and are all excluded
            from the pool ("selection" works like any split).
        config: EvalConfig; this uses negatives (W), repeats (R), seed (fixes the pair
            subsample, the pool and the draws), pool_size (a seeded random pool of non-positive
            passages; None = all of them) and max_pairs (a seeded subsample of pairs; None =
            all). ``**overrides`` replace its fields.
        use_cache: read/write the on-disk cache.

    Returns:
        A NegativeSample (ids/rows only, no embeddings). Its cache key hashes the corpus ids,
        the split name and the split's positive qrels, so a derived split (the selection
        split) that changes gets a new sample.

    Example:
        >>> s = sample_negatives(open_dataset("scifact"), "test", negatives=8, repeats=2)
        >>> s.negatives.shape  # (2, 339, 8)
    """
    cfg = EvalConfig.resolve(config, **overrides)
    negatives, repeats, seed = cfg.negatives, cfg.repeats, cfg.seed
    pool_size, max_pairs = cfg.pool_size, cfg.max_pairs
    pairs = dataset.pairs(split)
    if not pairs:
        raise DataError(f"split {split!r} has no positive pairs", dataset.path)
    fields = [f"v{SAMPLE_VERSION}", corpus_fingerprint(dataset), split,
              hashlib.blake2b("\n".join(f"{q}\t{d}" for q, d in pairs).encode(),
                              digest_size=16).hexdigest(),
              f"seed={seed}", f"W={negatives}", f"pool={pool_size}", f"R={repeats}",
              f"max_pairs={max_pairs}"]
    key = hashlib.blake2b("|".join(fields).encode(), digest_size=16).hexdigest()
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir() / "negatives" / f"{dataset.name}-{split}-{key}.npz"
    sample = _load(path, key) if use_cache else None
    if sample is None:
        sample = _draw(dataset, split, pairs, key, negatives, repeats, seed, pool_size,
                       max_pairs)
        if use_cache:
            _save(path, sample)
    _MEMORY[key] = sample
    while len(_MEMORY) > _MEMORY_MAX:
        _MEMORY.pop(next(iter(_MEMORY)))
    return sample


def positive_rows(dataset: Dataset, split: str, doc_ids: list[str]) -> np.ndarray:
    """Corpus rows of judged documents; an unknown id raises DataError naming the qrels
    file:line when the split has a qrels file (``Dataset.check_ids``)."""
    try:
        return dataset.corpus.rows_of(doc_ids)
    except DataError:
        if split in dataset.splits() and hasattr(dataset, "check_ids"):
            dataset.check_ids(split, positives_only=True)  # raises with file:line
        raise


def _draw(dataset, split, pairs, key, w, r, seed, pool_size, max_pairs) -> NegativeSample:
    corpus = dataset.corpus
    pos_all = positive_rows(dataset, split, [d for _, d in pairs])  # [P_all]
    # Independent streams, so e.g. max_pairs does not change the pool.
    rng_pairs, rng_pool, rng_neg = (np.random.default_rng([seed, i]) for i in range(3))
    keep = np.arange(len(pairs))
    if max_pairs is not None and max_pairs < len(pairs):
        keep = np.sort(rng_pairs.choice(len(pairs), size=max_pairs, replace=False))
    is_pos = np.zeros(len(corpus), dtype=bool)
    is_pos[pos_all] = True
    pool = np.flatnonzero(~is_pos).astype(np.int64)  # [M] candidate rows
    if pool_size is not None and pool_size < len(pool):
        pool = np.sort(rng_pool.choice(pool, size=pool_size, replace=False))
    if len(pool) == 0:
        raise DataError("no passages left for negatives after excluding positives", dataset.path)
    neg = _draw_distinct(rng_neg, len(pool), (r, len(keep), w))
    return NegativeSample(key=key, query_ids=[pairs[i].query_id for i in keep],
                          pos_rows=pos_all[keep], pool_rows=pool, negatives=neg)


def _save(path, sample: NegativeSample) -> None:
    buf = io.BytesIO()
    np.savez(buf, key=np.array(sample.key), query_ids=np.array(sample.query_ids, dtype=str),
             pos_rows=sample.pos_rows, pool_rows=sample.pool_rows, negatives=sample.negatives)
    atomic_write_bytes(path, buf.getvalue())


def _load(path, key: str) -> NegativeSample | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            return NegativeSample(key=key, query_ids=z["query_ids"].tolist(),
                                  pos_rows=z["pos_rows"], pool_rows=z["pool_rows"],
                                  negatives=z["negatives"])
    except (OSError, ValueError, KeyError):
        return None  # a corrupt cache file is redrawn (the draw is deterministic)
