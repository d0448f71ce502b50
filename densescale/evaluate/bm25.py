"""BM25 reference: a lexical ranker on the same queries and pool as the dense ranking metrics.

A reader of a scaling study needs to see at a glance whether the trained models retrieve at all;
BM25 (Robertson et al.; here the ``bm25s`` package, Lucene variant, k1 = 1.2, b = 0.75, English
stop words) is the usual yardstick. It ranks the queries ``ranking_queries`` picks inside the
passages ``ranking_pool`` picks (the same seeded query sample and pool as ``ranking_metrics``),
and its metrics come from the same ``compute_metrics`` under the same canonical keys.

The result depends only on the data and the ranking settings, never on a model, so it is cached
on disk (``densescale.utils.cache_dir()/bm25/``) per (corpus ids, split, ranked queries with
their texts and qrels, pool, k, metrics): a study computes it once, not once per model.

    from densescale.evaluate.bm25 import bm25_metrics
    bm25_metrics(ds, "test")          # {"ndcg_at_10": 0.66, "mrr_at_10": ..., ...}
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from densescale.evaluate.config import EvalConfig
from densescale.evaluate.metrics import canonical
from densescale.evaluate.negatives import corpus_fingerprint
from densescale.evaluate.ranking import (
    compute_metrics,
    hits_to_run,
    parse_metrics,
    ranking_pool,
    ranking_queries,
)
from densescale.utils import atomic_write_json, cache_dir

BM25_VERSION = 1  # bump when tokenisation or scoring changes (invalidates cached results)
K1, B = 1.2, 0.75  # Lucene / Anserini defaults
PREFIX = "bm25_"
_MEMORY: dict[str, dict[str, Any]] = {}


def _tokenize(texts: list[str], progress: bool) -> Any:
    import bm25s

    return bm25s.tokenize(texts, lower=True, stopwords="en", show_progress=progress)


def bm25_run(dataset: Any, split: str, config: EvalConfig | None = None,
             progress: bool = False) -> dict[str, dict[str, float]]:
    """BM25 run {qid: {docid: score}} of the ranked queries over the ranking pool (top k, only
    passages sharing a term with the query)."""
    import bm25s

    cfg = EvalConfig.resolve(config)
    qrels = ranking_queries(dataset, split, cfg.ranking_max_queries, cfg.seed)
    qids = list(qrels)
    rows = ranking_pool(dataset, split, cfg.ranking_pool_size, cfg.seed, qrels)
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(_tokenize(dataset.corpus.texts(rows), progress), show_progress=progress)
    queries = dataset.queries()
    k_search = min(len(rows), cfg.k + 1 if cfg.exclude_self else cfg.k)
    idx, scores = retriever.retrieve(_tokenize([queries[q] for q in qids], progress),
                                     k=k_search, show_progress=progress)  # [Q, k'] each
    hits = np.where(scores > 0, rows[np.asarray(idx, dtype=np.int64)], -1)  # [Q, k'] rows
    # hits_to_run stops at the first -1: sort so non-matching passages come last
    order = np.argsort(-scores, axis=1, kind="stable")
    hits, scores = np.take_along_axis(hits, order, 1), np.take_along_axis(scores, order, 1)
    return hits_to_run(dataset, qids, hits, scores.astype(np.float64), cfg.k, cfg.exclude_self)


def _key(dataset: Any, split: str, cfg: EvalConfig) -> str:
    qrels = ranking_queries(dataset, split, cfg.ranking_max_queries, cfg.seed)
    texts = dataset.queries()
    q_hash = hashlib.blake2b(json.dumps([[q, texts.get(q), qrels[q]] for q in sorted(qrels)],
                                        sort_keys=True).encode(), digest_size=16)
    rows = ranking_pool(dataset, split, cfg.ranking_pool_size, cfg.seed, qrels)
    fields = [f"v{BM25_VERSION}", f"k1={K1}", f"b={B}", corpus_fingerprint(dataset), split,
              q_hash.hexdigest(), hashlib.blake2b(rows.tobytes(), digest_size=16).hexdigest(),
              f"k={cfg.k}", f"exclude_self={cfg.exclude_self}", ",".join(cfg.metrics)]
    return hashlib.blake2b("|".join(fields).encode(), digest_size=16).hexdigest()


def bm25_metrics(dataset: Any, split: str, config: EvalConfig | None = None, *,
                 use_cache: bool = True, progress: bool = False,
                 **overrides: Any) -> dict[str, float]:
    """BM25's ranking metrics on the same queries and pool as ``ranking_metrics``.

    Args:
        dataset: Dataset or path/name. split: qrels split.
        config: EvalConfig (k, metrics, ranking_pool_size, ranking_max_queries, exclude_self,
            seed); ``**overrides`` replace its fields.
        use_cache: read/write the on-disk cache (keyed by corpus, qrels, queries, pool, k,
            metrics).
        progress: bm25s progress bars on stderr.

    Returns:
        {canonical metric key: mean over the ranked queries} (``evaluate_model(bm25=True)``
        reports them as ``bm25_<key>``).
    """
    from densescale.evaluate.entropy import as_dataset

    cfg = EvalConfig.resolve(config, **overrides)
    ds = as_dataset(dataset)
    parse_metrics(cfg.metrics)
    key = _key(ds, split, cfg)
    path = cache_dir() / "bm25" / f"{ds.name}-{split}-{key}.json"
    if use_cache and key in _MEMORY:
        return dict(_MEMORY[key]["metrics"])
    if use_cache and path.exists():
        try:
            doc = json.loads(path.read_text())
            if doc.get("key") == key:
                _MEMORY[key] = doc
                # keys of an older cache (ndcg@10) -> today's (ndcg_at_10)
                return {canonical(k): v for k, v in doc["metrics"].items()}
        except (OSError, ValueError):
            pass  # a corrupt cache file is recomputed (BM25 is deterministic)
    qrels = ranking_queries(ds, split, cfg.ranking_max_queries, cfg.seed)
    out = compute_metrics(qrels, bm25_run(ds, split, cfg, progress), cfg.metrics, depth=cfg.k)
    doc = {"key": key, "dataset": ds.name, "split": split, "metrics": out}
    _MEMORY[key] = doc
    if use_cache:
        atomic_write_json(path, doc)
    return dict(out)


def prefixed(metrics: dict[str, float]) -> dict[str, float]:
    """``{"ndcg_at_10": v}`` -> ``{"bm25_ndcg_at_10": v}`` (result-row columns)."""
    return {PREFIX + k: v for k, v in metrics.items()}
