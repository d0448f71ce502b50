"""Ranking metrics by exact inner-product search (thin layer over ir_measures / pytrec_eval).

Search is exact and sharded: the corpus (or a seeded pool holding every positive, as the
authors' ``retrieval.py`` did with a 1M pool for MS MARCO) is encoded shard by shard and each
shard's top-k is merged into a running top-k (``torch.topk``), so memory is
O(queries x k + shard) whatever the corpus size. Metrics come from ir_measures
(pytrec_eval backend; the common measures are computed in numpy with the same arithmetic,
``metrics_from_hits``); ``RR@10`` is MRR@10.

    from densescale.evaluate import ranking_metrics
    ranking_metrics(encoder, ds, "test")   # {"ndcg_at_10": .., "mrr_at_10": .., ...}

Result keys are the canonical keys of ``densescale.evaluate.metrics`` (the result-row columns);
settings come from ``EvalConfig`` (k, metrics, ranking_pool_size, ranking_max_queries,
exclude_self, shard_size, batch_size, seed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from densescale.errors import ConfigError
from densescale.evaluate.config import EvalConfig
from densescale.evaluate.encoders import Encoder, encode_rows
from densescale.evaluate.metrics import canonical, measure_name
from densescale.utils import atomic_write_text

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


def ranking_queries(dataset: Any, split: str, max_queries: int | None = None,
                    seed: int = 1) -> dict[str, dict[str, int]]:
    """The qrels of the ranked queries: all of the split's, or a seeded sample of ``max_queries``
    (sorted query ids, ``default_rng(seed)`` choice without replacement)."""
    qrels = dataset.qrels(split)
    if max_queries is None or max_queries >= len(qrels):
        return qrels
    qids = sorted(qrels)
    keep = np.random.default_rng(seed).choice(len(qids), size=max_queries, replace=False)
    return {qids[i]: qrels[qids[i]] for i in sorted(keep)}


def ranking_pool(dataset: Any, split: str, pool_size: int | None, seed: int = 1,
                 qrels: dict[str, dict[str, int]] | None = None) -> np.ndarray:
    """Sorted corpus rows to search: all, or every positive of the split (of ``qrels`` when
    given, e.g. a query sample) plus seeded others."""
    n = len(dataset.corpus)
    if pool_size is None or pool_size >= n:
        return np.arange(n, dtype=np.int64)
    from densescale.evaluate.negatives import positive_rows

    qrels = dataset.qrels(split) if qrels is None else qrels
    pos = np.unique(positive_rows(dataset, split, [d for docs in qrels.values()
                                                   for d, s in docs.items() if s > 0]))
    if pool_size < len(pos):
        raise ConfigError(f"ranking pool_size={pool_size} is smaller than the {len(pos)} "
                          f"positives of split {split!r}")
    rest = np.setdiff1d(np.arange(n, dtype=np.int64), pos)
    rng = np.random.default_rng([seed, 10])
    extra = rng.choice(rest, size=pool_size - len(pos), replace=False)
    return np.sort(np.concatenate([pos, extra]))


def parse_metrics(metrics: Sequence[str]) -> dict[str, Any]:
    """Metric names (keys, labels, ir_measures names or aliases of ``metrics.METRICS``, or any
    ir_measures measure) -> {canonical key: ir_measures measure}."""
    import ir_measures

    out = {}
    for m in metrics:
        try:
            out[canonical(m)] = ir_measures.parse_measure(measure_name(m))
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError) as e:
            raise ConfigError(f"unknown metric {m!r} (ir_measures names, e.g. nDCG@10, RR@10, "
                              f"R@100, AP): {e}") from None
    return out


def compute_metrics(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                    metrics: Sequence[str] = EvalConfig().metrics,
                    depth: int | None = None) -> dict[str, float]:
    """Aggregate metrics (mean over the qrels' queries) through ir_measures, under the
    canonical keys (``ndcg_at_10``, ``mrr_at_10``, ...).

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


_FAST = {"nDCG", "RR", "R", "P", "AP"}


def metrics_from_hits(dataset: Any, qrels: dict[str, dict[str, int]], qids: list[str],
                      hits: np.ndarray, scores: np.ndarray, k: int, exclude_self: bool,
                      metrics: Sequence[str]) -> dict[str, float] | None:
    """``compute_metrics(qrels, hits_to_run(...))`` without the run dict, in numpy.

    trec_eval's arithmetic (what ir_measures' pytrec_eval backend runs): the run ordered by
    score, ties by document id descending; relevant = judgement >= 1; nDCG gains = judgements;
    R@c, P@c, AP and AP@c over the top k; RR@c as ir_measures' msmarco provider (ties by
    document id ascending). Returns None (the caller then goes through
    ir_measures) for anything else: other measures or parameters, negative judgements, a query
    without relevant documents or without hits, or a cutoff deeper than ``k``.
    """
    measures = parse_metrics(metrics)
    if any(m.NAME not in _FAST or set(m.params) - {"cutoff"} or m.params.get("cutoff", 0) > k
           for m in measures.values()):
        return None
    ids = dataset.corpus.ids
    nq = len(qids)
    if exclude_self:  # drop a hit whose document id is the query id, keep the first k
        self_row = _rows(dataset.corpus, qids)  # [Q], -2 where the query id is no document
        drop = (hits == self_row[:, None]) | (hits < 0)
        keep = np.argsort(drop, axis=1, kind="stable")[:, :k]
        hits = np.take_along_axis(np.where(drop, -1, hits), keep, 1)
        scores = np.take_along_axis(scores, keep, 1)
    hits, scores = hits[:, :k].copy(), scores[:, :k].copy()
    valid = hits >= 0  # [Q, k]
    if nq == 0 or not valid[:, 0].all():
        return None
    # trec_eval orders by score descending, ties by document id descending; ir_measures'
    # msmarco provider (RR) by document id ascending: rank the distinct hit ids as strings once
    uniq = np.unique(hits[valid])
    names = [ids[int(r)] for r in uniq]
    name_rank = np.empty(len(uniq), np.int64)
    name_rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(uniq))
    rank = np.where(valid, name_rank[np.searchsorted(uniq, np.where(valid, hits, uniq[0]))], -1)
    neg = np.where(valid, -scores.astype(np.float64), np.inf)  # [Q, k]
    hits_rr = np.take_along_axis(hits, np.lexsort((rank, neg), axis=1), 1)
    hits = np.take_along_axis(hits, np.lexsort((-rank, neg), axis=1), 1)
    n_corpus = len(dataset.corpus)
    q_of, dids, gains, ideal = [], [], [], []
    for qi, qid in enumerate(qids):
        judged = qrels[qid]
        g = sorted((v for v in judged.values() if v > 0), reverse=True)
        if min(judged.values(), default=0) < 0 or not g:
            return None
        ideal.append(g)
        for did, v in judged.items():
            if v > 0:
                q_of.append(qi)
                dids.append(did)
                gains.append(v)
    drow = _rows(dataset.corpus, dids)
    inc = drow >= 0  # judged documents outside the corpus count only in the denominators
    keys_a = np.asarray(q_of, np.int64)[inc] * (n_corpus + 1) + drow[inc]
    gains_a = np.asarray(gains, np.float64)[inc]
    order = np.argsort(keys_a)
    keys_a, gains_a = keys_a[order], gains_a[order]

    def gain_of(h: np.ndarray) -> np.ndarray:  # judgement of each hit [Q, k], 0 = not relevant
        hk = np.arange(nq, dtype=np.int64)[:, None] * (n_corpus + 1) + h  # [Q, k]
        if not len(keys_a):
            return np.zeros(h.shape)
        pos = np.clip(np.searchsorted(keys_a, hk), 0, len(keys_a) - 1)
        return np.where(valid & (keys_a[pos] == hk), gains_a[pos], 0.0)

    gain = gain_of(hits)
    rel = gain >= 1
    rel_rr = gain_of(hits_rr) >= 1
    n_rel = np.array([sum(v >= 1 for v in g) for g in ideal], np.float64)  # [Q]
    disc = 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)  # [k]
    out = {}
    for name, m in measures.items():
        c = int(m.params.get("cutoff", k))
        r, g = rel[:, :c], gain[:, :c]
        if m.NAME == "nDCG":
            idcg = np.array([np.sum(np.asarray(x[:c]) * disc[:min(c, len(x))]) for x in ideal])
            v = (g * disc[:c]).sum(1) / idcg
        elif m.NAME == "RR":
            r = rel_rr[:, :c]
            v = np.where(r.any(1), 1.0 / (np.argmax(r, axis=1) + 1.0), 0.0)
        elif m.NAME == "R":
            v = r.sum(1) / n_rel
        elif m.NAME == "P":
            v = r.sum(1) / c
        else:  # AP
            prec = np.cumsum(r, 1) / np.arange(1, r.shape[1] + 1)
            v = (prec * r).sum(1) / n_rel
        out[name] = float(np.mean(v))
    return out


def _rows(corpus: Any, doc_ids: list[str]) -> np.ndarray:
    """Corpus rows of ``doc_ids`` [n]; -2 for an id that is not in the corpus."""
    out = np.full(len(doc_ids), -2, dtype=np.int64)
    known = [i for i, d in enumerate(doc_ids) if d in corpus]
    if known:
        out[known] = corpus.rows_of([doc_ids[i] for i in known])
    return out


def write_trec_run(path: str | os.PathLike, run: dict[str, dict[str, float]],
                   tag: str = "densescale") -> None:
    """TREC run format: ``qid Q0 docid rank score tag`` (rank from 1), written atomically."""
    lines = []
    for qid, hits in run.items():
        for rank, (did, score) in enumerate(sorted(hits.items(), key=lambda x: -x[1]), 1):
            lines.append(f"{qid} Q0 {did} {rank} {score:.6f} {tag}")
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def hits_to_run(dataset: Any, qids: list[str], hits: np.ndarray, scores: np.ndarray, k: int,
                exclude_self: bool) -> dict[str, dict[str, float]]:
    """Top hits (corpus rows [Q, k'] with -1 padding, scores [Q, k']) -> {qid: {docid: score}},
    at most ``k`` per query, dropping a hit whose doc id is the query id when ``exclude_self``."""
    hits_l, scores_l = hits.tolist(), scores.tolist()
    uniq = np.unique(hits)
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


def search_run(
    encoder: Encoder, dataset: Any, split: str, config: EvalConfig | None = None,
    device: str | None = None, progress: bool = False,
    on_shard: Callable[[np.ndarray, torch.Tensor], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Encode the ranked queries and the pool shard by shard, search, return the run
    {qid: {docid: score}} (queries: ``ranking_queries``; pool: ``ranking_pool``).

    ``on_shard(rows, embeddings)`` sees every encoded shard (evaluate_model reuses them).
    """
    cfg = EvalConfig.resolve(config)
    qids, hits, scores = search_hits(encoder, dataset, split, cfg, device, progress, on_shard)
    return hits_to_run(dataset, qids, hits, scores, cfg.k, cfg.exclude_self)


def search_hits(
    encoder: Encoder, dataset: Any, split: str, config: EvalConfig | None = None,
    device: str | None = None, progress: bool = False,
    on_shard: Callable[[np.ndarray, torch.Tensor], None] | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``search_run`` before the run dict: (query ids, corpus rows [Q, k'] with -1 padding,
    scores [Q, k']), k' = k (+ 1 with ``exclude_self``)."""
    from densescale.evaluate.entropy import encode_queries, pick_device
    cfg = EvalConfig.resolve(config)
    qrels = ranking_queries(dataset, split, cfg.ranking_max_queries, cfg.seed)
    qids = list(qrels)
    dev = pick_device(device)
    q_emb, q_idx = encode_queries(encoder, dataset, qids, cfg.batch_size, progress)
    q_emb = q_emb[torch.as_tensor(q_idx)].to(dev)  # [Q, d] in qids order
    rows = ranking_pool(dataset, split, cfg.ranking_pool_size, cfg.seed, qrels)

    def shards():
        for s in range(0, len(rows), cfg.shard_size):
            r = rows[s:s + cfg.shard_size]
            emb = encode_rows(encoder, dataset.corpus, r, cfg.batch_size, progress)  # [S, d]
            if on_shard is not None:
                on_shard(r, emb)
            yield r, emb

    k_search = cfg.k + 1 if cfg.exclude_self else cfg.k
    scores, hits = exact_search(q_emb, shards(), k_search)  # [Q, k'] each
    return qids, hits.numpy(), scores.numpy()


def ranking_metrics(
    encoder: Encoder | str | os.PathLike,
    dataset: Any,
    split: str,
    config: EvalConfig | None = None,
    *,
    run_path: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> dict[str, float]:
    """Exact dense retrieval over the corpus (or a pool) and standard ranking metrics.

    Args:
        encoder: encoder-protocol object or a model folder (``load_scorer``).
        dataset: Dataset or path/name. split: qrels split (every judged query is ranked, or a
            seeded sample of ``ranking_max_queries``).
        config: EvalConfig (k, metrics, ranking_pool_size, ranking_max_queries, exclude_self,
            shard_size, batch_size, seed); ``**overrides`` replace its fields.
        run_path: also write the run there in TREC format.
        device: scoring device (None: cuda when available). progress: tqdm bars on stderr.

    Returns:
        {canonical metric key: mean over the ranked queries}.

    Example:
        >>> ranking_metrics(scorer, "scifact", "test", k=100, metrics=("nDCG@10", "R@100"))
        {'ndcg_at_10': ..., 'recall_at_100': ...}
    """
    from densescale.evaluate.entropy import as_dataset, as_encoder

    t0 = time.perf_counter()
    cfg = EvalConfig.resolve(config, **overrides)
    ds = as_dataset(dataset)
    parse_metrics(cfg.metrics)  # fail before any encoding
    qids, hits, scores = search_hits(as_encoder(encoder), ds, split, cfg, device, progress)
    qrels = ranking_queries(ds, split, cfg.ranking_max_queries, cfg.seed)
    out = None
    if run_path is None:  # vectorised trec_eval arithmetic (same values as ir_measures)
        out = metrics_from_hits(ds, qrels, qids, hits, scores, cfg.k, cfg.exclude_self,
                                cfg.metrics)
    if out is None:
        run = hits_to_run(ds, qids, hits, scores, cfg.k, cfg.exclude_self)
        if run_path is not None:
            write_trec_run(run_path, run)
        out = compute_metrics(qrels, run, cfg.metrics, depth=cfg.k)
    if progress:
        import sys

        print(f"ranking: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return out
