"""Contrastive entropy: the paper's evaluation metric (Fang et al., SIGIR 2024, V1 Eq. 6).

For a test pair (q, p+) and W negatives p-_1..p-_W drawn uniformly without replacement from a
pool of corpus passages that contains no positive of the split:

    L(q, p+) = -log( e^{s(q,p+)} / (e^{s(q,p+)} + sum_j e^{s(q,p-_j)}) ),   s = <f(q), f(p)>

(no temperature, no normalisation). The reported value averages L over every (query, positive)
pair of the split, repeated R times with fresh negatives (the authors' code: W=256, R=10, seed 1,
pool 1M for MS MARCO). Lower is better; 0 is perfect, an uninformative scorer gives ln(W+1).

Cost: every distinct passage (positives plus the union of all drawn negatives) is encoded once,
each query once; scores then come from chunked matrix products / gathers, never pairs x (W+1)
encodes.

    from densescale.evaluate import contrastive_entropy
    res = contrastive_entropy(encoder, open_dataset("squad_v11"), "test")
    print(f"{res.mean:.4f} ± {res.stderr:.4f}")
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from densescale.evaluate.encoders import Encoder, encode_rows, encode_texts
from densescale.evaluate.negatives import NegativeSample, sample_negatives

_CHUNK_ELEMENTS = 1 << 24  # score-matrix / gathered-embedding elements per chunk (64 MB fp32)


@dataclass(frozen=True)
class CEResult:
    """Contrastive entropy of one model on one split.

    Attributes:
        mean: mean over the R repeats of the mean loss over pairs (nats).
        stderr: standard error of ``mean`` from negative sampling: std(repeat means, ddof=1) /
            sqrt(R) when R > 1; with R = 1, the per-pair standard error std(losses)/sqrt(P).
        per_repeat: mean loss over pairs for each repeat.
        n_pairs: P, scored (query, positive) pairs.
        negatives: W. repeats: R.
        n_encoded_passages: distinct passages encoded (positives + union of negatives).
        seconds: wall time of the whole call.
        pair_stderr: standard error over pairs of the per-pair loss (averaged over repeats): the
            test-set sampling uncertainty, which ``stderr`` does not include.
        pool_size: size of the negative pool actually used.
    """

    mean: float
    stderr: float
    per_repeat: list[float]
    n_pairs: int
    negatives: int
    repeats: int
    n_encoded_passages: int
    seconds: float
    pair_stderr: float = float("nan")
    pool_size: int = 0
    greater_is_better: ClassVar[bool] = False  # lower is better

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


greater_is_better = False


def pair_losses(q: torch.Tensor, docs: torch.Tensor, pos: np.ndarray, neg: np.ndarray,
                neg_map: np.ndarray | None = None, method: str = "auto") -> torch.Tensor:
    """Per-(repeat, pair) losses from embeddings (the kernel, no encoding).

    Args:
        q: query embedding of each pair, [P, d].
        docs: passage embeddings, [N, d].
        pos: index into ``docs`` of each pair's positive, [P].
        neg: negatives, [R, P, W], indices into ``docs`` (or into ``neg_map`` when given).
        neg_map: optional lookup applied to ``neg`` (e.g. pool index -> docs index).
        method: "dense" (scores against all N passages per chunk, then gathers; best when N is
            not much larger than R*W), "gather" (gathers the W negative embeddings per pair),
            or "auto".

    Returns:
        float64 CPU tensor [R, P]: -log softmax of the positive among the W+1 candidates.
    """
    r, p, w = neg.shape
    n, d = docs.shape
    if method == "auto":
        method = "dense" if n <= 16 * r * w else "gather"
    dev = docs.device
    pos_t = torch.as_tensor(np.asarray(pos, dtype=np.int64), device=dev)
    out = torch.empty(r, p, dtype=torch.float64)
    per_pair = n if method == "dense" else w * d
    chunk = max(1, _CHUNK_ELEMENTS // max(per_pair, 1))
    for s in range(0, p, chunk):
        e = min(p, s + chunk)
        qc = q[s:e]  # [C, d]
        s_pos = (qc * docs[pos_t[s:e]]).sum(-1, keepdim=True)  # [C, 1]
        full = qc @ docs.T if method == "dense" else None  # [C, N]
        for k in range(r):
            idx = neg[k, s:e].astype(np.int64)
            if neg_map is not None:
                idx = neg_map[idx]
            idx_t = torch.as_tensor(idx, device=dev)  # [C, W]
            if full is not None:
                s_neg = full.gather(1, idx_t)  # [C, W]
            else:
                s_neg = torch.bmm(docs[idx_t], qc.unsqueeze(-1)).squeeze(-1)  # [C, W]
            logits = torch.cat([s_pos, s_neg], dim=1)  # [C, W+1]
            out[k, s:e] = (torch.logsumexp(logits, dim=1) - s_pos[:, 0]).double().cpu()
    return out


def summarise(losses: torch.Tensor) -> tuple[float, float, list[float], float]:
    """(mean, stderr, per_repeat, pair_stderr) from losses [R, P] (see CEResult)."""
    r, p = losses.shape
    per_repeat = losses.mean(dim=1)  # [R]
    mean = float(per_repeat.mean())
    if r > 1:
        stderr = float(per_repeat.std(unbiased=True)) / math.sqrt(r)
    else:
        stderr = float(losses[0].std(unbiased=True)) / math.sqrt(p) if p > 1 else float("nan")
    pair_mean = losses.mean(dim=0)  # [P]
    pair_stderr = float(pair_mean.std(unbiased=True)) / math.sqrt(p) if p > 1 else float("nan")
    return mean, stderr, per_repeat.tolist(), pair_stderr


def _as_dataset(dataset: Any):
    if isinstance(dataset, (str, os.PathLike)):
        from densescale.data import open_dataset

        return open_dataset(dataset)
    return dataset


def _as_encoder(encoder: Any) -> Encoder:
    if isinstance(encoder, (str, os.PathLike)):
        from densescale.evaluate.encoders import load_scorer

        return load_scorer(encoder)
    return encoder


def encode_queries(encoder: Encoder, dataset: Any, query_ids: list[str], batch_size: int,
                   progress: bool = False) -> tuple[torch.Tensor, np.ndarray]:
    """Encode each distinct query once. Returns (embeddings [Q, d], index of each input id)."""
    from densescale.errors import DataError

    uniq, inverse = np.unique(np.asarray(query_ids, dtype=object).astype(str), return_inverse=True)
    queries = dataset.queries()
    missing = [q for q in uniq if q not in queries]
    if missing:
        raise DataError(f"{len(missing)} query ids from the qrels are not in queries "
                        f"(first: {missing[0]!r})", dataset.path)
    emb = encode_texts(encoder, [queries[q] for q in uniq], "query", batch_size, progress)
    return emb, inverse.reshape(-1)


def contrastive_entropy_from_sample(
    encoder: Encoder, dataset: Any, sample: NegativeSample, batch_size: int = 256,
    device: str | None = None, progress: bool = False,
    passage_cache: tuple[np.ndarray, torch.Tensor] | None = None, method: str = "auto",
) -> CEResult:
    """Contrastive entropy on a given negative sample.

    Args:
        passage_cache: optional (sorted corpus rows, embeddings [len(rows), d]) already computed
            (e.g. by ranking); rows of the sample not in it are encoded here.
    """
    t0 = time.perf_counter()
    needed = sample.needed_rows()  # sorted corpus rows
    if passage_cache is not None:
        have_rows, have_emb = passage_cache
        pos_in = np.searchsorted(have_rows, needed).clip(max=max(len(have_rows) - 1, 0))
        hit = (have_rows[pos_in] == needed) if len(have_rows) else np.zeros(len(needed), bool)
        docs = torch.empty(len(needed), have_emb.shape[1])
        docs[torch.from_numpy(np.flatnonzero(hit))] = have_emb[torch.from_numpy(pos_in[hit])]
        if (~hit).any():
            docs[torch.from_numpy(np.flatnonzero(~hit))] = encode_rows(
                encoder, dataset.corpus, needed[~hit], batch_size, progress)
        n_encoded = int((~hit).sum())
    else:
        docs = encode_rows(encoder, dataset.corpus, needed, batch_size, progress)  # [N, d]
        n_encoded = len(needed)
    q_emb, q_idx = encode_queries(encoder, dataset, sample.query_ids, batch_size, progress)
    dev = torch.device(device) if device else (
        torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    docs = docs.to(dev)
    q = q_emb.to(dev)[torch.as_tensor(q_idx, device=dev)]  # [P, d]
    pos = np.searchsorted(needed, sample.pos_rows)  # [P]
    pool_to_doc = np.searchsorted(needed, sample.pool_rows)  # [M] (valid where used)
    losses = pair_losses(q, docs, pos, sample.negatives, pool_to_doc, method)  # [R, P]
    mean, stderr, per_repeat, pair_se = summarise(losses)
    return CEResult(mean=mean, stderr=stderr, per_repeat=per_repeat, n_pairs=sample.n_pairs,
                    negatives=sample.width, repeats=sample.repeats, n_encoded_passages=n_encoded,
                    seconds=time.perf_counter() - t0, pair_stderr=pair_se,
                    pool_size=len(sample.pool_rows))


def contrastive_entropy(
    encoder: Encoder | str | os.PathLike,
    dataset: Any,
    split: str,
    negatives: int = 256,
    repeats: int = 10,
    seed: int = 1,
    pool_size: int | None = None,
    max_pairs: int | None = None,
    batch_size: int = 256,
    device: str | None = None,
    progress: bool = False,
) -> CEResult:
    """Contrastive entropy of a scorer on a split (lower is better).

    Args:
        encoder: an object following the encoder protocol, or a model folder (``load_scorer``).
        dataset: a ``densescale.data.Dataset`` or a path/name for ``open_dataset``.
        split: qrels split to score; every positive (score > 0) is one pair.
        negatives: W negatives per pair (paper: 256).
        repeats: R fresh draws per pair (paper's code: 10).
        seed: seeds the pair subsample, the pool and the draws (common random numbers: the
            sample is cached and identical for every model).
        pool_size: seeded random pool of non-positive passages (None: the whole corpus minus
            the split's positives; the paper's MS MARCO code used 1,000,000).
        max_pairs: score only a seeded subsample of pairs (fast periodic eval in training).
            Cost is set by the distinct passages, about min(pool, P*R*W): with a small
            corpus the union still covers the whole pool, so for cheap periodic evaluation
            also pass a small ``pool_size`` (e.g. 5000) and/or ``repeats=1``.
        batch_size: encoder batch size.
        device: where scores are computed (None: cuda when available).
        progress: tqdm bars on stderr.

    Returns:
        CEResult (mean, stderr over repeats, per_repeat, counts, seconds).

    Example:
        >>> res = contrastive_entropy(scorer, "scifact", "test", repeats=10)
        >>> res.mean, res.stderr
    """
    t0 = time.perf_counter()
    ds = _as_dataset(dataset)
    enc = _as_encoder(encoder)
    sample = sample_negatives(ds, split, negatives=negatives, repeats=repeats, seed=seed,
                              pool_size=pool_size, max_pairs=max_pairs)
    res = contrastive_entropy_from_sample(enc, ds, sample, batch_size, device, progress)
    return CEResult(**{**res.to_dict(), "seconds": time.perf_counter() - t0})
