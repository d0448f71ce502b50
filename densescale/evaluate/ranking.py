"""Ranking metrics by exact inner-product search (thin layer over ir_measures / pytrec_eval).

Search is exact and sharded: the corpus (or a seeded pool holding every positive, as the
authors' ``retrieval.py`` did with a 1M pool for MS MARCO) is encoded shard by shard and each
shard's top-k is merged into a running top-k, so memory is O(queries x k + shard) whatever the
corpus size. Metrics come from ir_measures (pytrec_eval backend); ``RR@10`` is MRR@10.

    from densescale.evaluate import ranking_metrics
    ranking_metrics(encoder, ds, "test")   # {"nDCG@10": .., "RR@10": .., "R@100": .., ...}
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from densescale.errors import ConfigError
from densescale.evaluate.encoders import Encoder, encode_rows
from densescale.utils import atomic_write_text

DEFAULT_METRICS = ("nDCG@10", "RR@10", "R@100", "R@1000", "AP")
_ALIASES = {"MRR@10": "RR@10", "MAP": "AP", "Recall@100": "R@100", "Recall@1000": "R@1000",
            "NDCG@10": "nDCG@10"}
_CHUNK_ELEMENTS = 1 << 24  # query-chunk x shard score elements (64 MB fp32)


def exact_search(query_emb: torch.Tensor, shards: Iterable[tuple[np.ndarray, torch.Tensor]],
                 k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k by inner product over passage shards, with a running merge.

    Args:
        query_emb: [Q, d] queries (on the device scoring should use).
        shards: iterable of (corpus rows [S], embeddings [S, d]).
        k: hits per query.

    Returns:
        (scores [Q, k] float32 descending, corpus rows [Q, k] int64; -1 where fewer than k
        passages exist), on CPU.
    """
    dev = query_emb.device
    nq = query_emb.shape[0]
    top_s = torch.full((nq, k), float("-inf"), device=dev)  # [Q, k]
    top_r = torch.full((nq, k), -1, dtype=torch.long, device=dev)  # [Q, k]
    for rows, emb in shards:
        emb = emb.to(dev, torch.float32)  # [S, d]
        rows_t = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=dev)  # [S]
        kk = min(k, emb.shape[0])
        chunk = max(1, _CHUNK_ELEMENTS // max(emb.shape[0], 1))
        for s in range(0, nq, chunk):
            e = min(nq, s + chunk)
            v, i = (query_emb[s:e] @ emb.T).topk(kk, dim=1)  # [C, kk]
            cand_s = torch.cat([top_s[s:e], v], dim=1)  # [C, k + kk]
            cand_r = torch.cat([top_r[s:e], rows_t[i]], dim=1)
            v2, i2 = cand_s.topk(k, dim=1)  # [C, k]
            top_s[s:e], top_r[s:e] = v2, cand_r.gather(1, i2)
    return top_s.cpu(), top_r.cpu()


def ranking_pool(dataset: Any, split: str, pool_size: int | None, seed: int = 1) -> np.ndarray:
    """Sorted corpus rows to search: all, or every positive of the split plus seeded others."""
    n = len(dataset.corpus)
    if pool_size is None or pool_size >= n:
        return np.arange(n, dtype=np.int64)
    pos = np.unique(dataset.corpus.rows_of([d for _, d in dataset.pairs(split)]))
    if pool_size < len(pos):
        raise ConfigError(f"ranking pool_size={pool_size} is smaller than the {len(pos)} "
                          f"positives of split {split!r}")
    rest = np.setdiff1d(np.arange(n, dtype=np.int64), pos)
    rng = np.random.default_rng([seed, 10])
    extra = rng.choice(rest, size=pool_size - len(pos), replace=False)
    return np.sort(np.concatenate([pos, extra]))


def parse_metrics(metrics: Sequence[str]) -> dict[str, Any]:
    """User names -> ir_measures measures (accepts MRR@10, MAP, Recall@k aliases)."""
    import ir_measures

    out = {}
    for m in metrics:
        try:
            out[m] = ir_measures.parse_measure(_ALIASES.get(m, m))
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError) as e:
            raise ConfigError(f"unknown metric {m!r} (ir_measures names, e.g. nDCG@10, RR@10, "
                              f"R@100, AP): {e}") from None
    return out


def compute_metrics(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                    metrics: Sequence[str] = DEFAULT_METRICS,
                    depth: int | None = None) -> dict[str, float]:
    """Aggregate metrics (mean over the qrels' queries) through ir_measures.

    A metric whose cutoff exceeds the search ``depth`` (e.g. R@1000 from a top-100 run over a
    larger pool) is reported as NaN, not as the value at the shallower depth, with a warning.
    """
    import warnings

    import ir_measures

    measures = parse_metrics(metrics)
    truncated = depth is not None and any(len(h) >= depth for h in run.values())
    too_deep = {n for n, m in measures.items() if truncated and m.params.get("cutoff", 0) > depth}
    if too_deep:
        warnings.warn(f"{sorted(too_deep)} cut deeper than the search depth k={depth}: "
                      "reported as NaN (raise k)", stacklevel=2)
    agg = ir_measures.calc_aggregate(list({m for n, m in measures.items() if n not in too_deep}),
                                     qrels, run) if len(too_deep) < len(measures) else {}
    return {name: float("nan") if name in too_deep else float(agg[m])
            for name, m in measures.items()}


def write_trec_run(path: str | os.PathLike, run: dict[str, dict[str, float]],
                   tag: str = "densescale") -> None:
    """TREC run format: ``qid Q0 docid rank score tag`` (rank from 1), written atomically."""
    lines = []
    for qid, hits in run.items():
        for rank, (did, score) in enumerate(sorted(hits.items(), key=lambda x: -x[1]), 1):
            lines.append(f"{qid} Q0 {did} {rank} {score:.6f} {tag}")
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def search_run(
    encoder: Encoder, dataset: Any, split: str, k: int = 1000, pool_size: int | None = None,
    exclude_self: bool = False, shard_size: int = 100_000, batch_size: int = 256,
    seed: int = 1, device: str | None = None, progress: bool = False,
    on_shard: Callable[[np.ndarray, torch.Tensor], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Encode queries and pool shards, search, return the run {qid: {docid: score}}.

    ``on_shard(rows, embeddings)`` sees every encoded shard (evaluate_model reuses them).
    """
    from densescale.evaluate.contrastive_entropy import encode_queries

    if k < 1 or shard_size < 1:
        raise ConfigError("k and shard_size must be >= 1")
    qrels = dataset.qrels(split)
    qids = list(qrels)
    dev = torch.device(device) if device else (
        torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    q_emb, q_idx = encode_queries(encoder, dataset, qids, batch_size, progress)
    q_emb = q_emb[torch.as_tensor(q_idx)].to(dev)  # [Q, d] in qids order
    rows = ranking_pool(dataset, split, pool_size, seed)

    def shards():
        for s in range(0, len(rows), shard_size):
            r = rows[s:s + shard_size]
            emb = encode_rows(encoder, dataset.corpus, r, batch_size, progress)  # [S, d]
            if on_shard is not None:
                on_shard(r, emb)
            yield r, emb

    k_search = k + 1 if exclude_self else k
    scores, hits = exact_search(q_emb, shards(), k_search)  # [Q, k'] each
    hits_l, scores_l = hits.tolist(), scores.tolist()
    uniq = np.unique(hits.numpy())
    ids = dataset.corpus.ids
    id_of = {int(r): ids[int(r)] for r in uniq[uniq >= 0]}  # one id lookup per distinct hit
    run: dict[str, dict[str, float]] = {}
    for qi, qid in enumerate(qids):
        out: dict[str, float] = {}
        for r, s in zip(hits_l[qi], scores_l[qi]):
            if r < 0:
                break
            did = id_of[r]
            if exclude_self and did == qid:
                continue
            if len(out) < k:
                out[did] = s
        run[qid] = out
    return run


def ranking_metrics(
    encoder: Encoder | str | os.PathLike,
    dataset: Any,
    split: str,
    k: int = 1000,
    metrics: Sequence[str] = DEFAULT_METRICS,
    pool_size: int | None = None,
    exclude_self: bool = False,
    run_path: str | os.PathLike | None = None,
    shard_size: int = 100_000,
    batch_size: int = 256,
    seed: int = 1,
    device: str | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Exact dense retrieval over the corpus (or a pool) and standard ranking metrics.

    Args:
        encoder: encoder-protocol object or a model folder (``load_scorer``).
        dataset: Dataset or path/name. split: qrels split (every judged query is ranked).
        k: hits retrieved per query (metrics see the top k).
        metrics: ir_measures names; defaults nDCG@10, RR@10 (= MRR@10), R@100, R@1000, AP.
        pool_size: search a seeded pool of this size holding every positive (None: corpus).
        exclude_self: drop hits whose doc id equals the query id (ArguAna).
        run_path: also write the run there in TREC format.
        shard_size: passages encoded and searched at a time (bounds memory).
        seed: seeds the pool. device: scoring device (None: cuda when available).

    Returns:
        {metric name: mean over queries}.

    Example:
        >>> ranking_metrics(scorer, "scifact", "test", k=100, metrics=("nDCG@10", "R@100"))
    """
    from densescale.evaluate.contrastive_entropy import _as_dataset, _as_encoder

    t0 = time.perf_counter()
    ds = _as_dataset(dataset)
    parse_metrics(metrics)  # fail before any encoding
    run = search_run(_as_encoder(encoder), ds, split, k, pool_size, exclude_self, shard_size,
                     batch_size, seed, device, progress)
    if run_path is not None:
        write_trec_run(run_path, run)
    out = compute_metrics(ds.qrels(split), run, metrics, depth=k)
    if progress:
        import sys

        print(f"ranking: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return out
