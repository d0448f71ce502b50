"""One call that scores a model with contrastive entropy and ranking metrics, encoding once.

The ranking search streams over corpus shards; every passage the contrastive-entropy samples
need (positives + drawn negatives of the reported split, and of the selection split when a
temperature is fitted) is kept from those shards, so nothing is encoded twice.

    from densescale.evaluate import evaluate_model
    row = evaluate_model("runs/bert-tiny", "squad_v11", "test")
    row["contrastive_entropy"], row["contrastive_entropy_calibrated"], row["ndcg_at_10"]
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from densescale.evaluate.calibration import (
    DECLARED,
    FITTED,
    Calibration,
    fit_selection_scale,
    plan,
    selection_sample,
)
from densescale.evaluate.config import EvalConfig
from densescale.evaluate.entropy import (
    as_dataset,
    as_encoder,
    contrastive_entropy_from_sample,
    passage_cache_for,
)
from densescale.evaluate.negatives import sample_negatives
from densescale.evaluate.ranking import (
    compute_metrics,
    parse_metrics,
    ranking_queries,
    search_run,
    write_trec_run,
)


def evaluate_model(
    model_or_path: Any,
    dataset: Any,
    split: str = "test",
    config: EvalConfig | None = None,
    *,
    bm25: bool = False,
    calibrate: str = "auto",
    normalized: bool | None = None,
    run_path: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Contrastive entropy (+ ranking metrics) of one model as one flat result row.

    Args:
        model_or_path: encoder-protocol object or model folder (``load_scorer``).
        dataset: Dataset or path/name. split: the reported split.
        config: EvalConfig (``**overrides`` replace its fields): contrastive entropy settings
            (negatives, repeats, seed, pool_size, max_pairs) and ranking settings (ranking, k,
            metrics, ranking_pool_size, ranking_max_queries, exclude_self, shard_size).
        bm25: also report BM25 on the same queries and pool as ``bm25_<metric key>`` columns
            (``densescale.evaluate.bm25``; cached per dataset, split, queries and pool).
        calibrate / normalized: as ``contrastive_entropy`` (a fitted temperature uses the
            selection split only).
        run_path: also write the TREC run there.
        device: scoring device. progress: tqdm bars on stderr.

    Returns:
        {"model", "dataset", "split", "contrastive_entropy", "contrastive_entropy_stderr",
        "contrastive_entropy_pair_stderr", "contrastive_entropy_per_repeat",
        "contrastive_entropy_calibrated", "contrastive_entropy_calibrated_stderr",
        "calibration_scale", "calibration_source", "chance", "n_pairs", "negatives",
        "repeats", "seed", "pool_size", "n_encoded_passages", <metric key>: value ...,
        ["bm25_<metric key>": value ...,] "seconds_total"}: the row format ``correlate`` and
        the study read (metric keys from ``densescale.evaluate.metrics``: ndcg_at_10, mrr_at_10,
        recall_at_100, recall_at_1000, map).
    """
    t0 = time.perf_counter()
    cfg = EvalConfig.resolve(config, **overrides)
    ds = as_dataset(dataset)
    enc = as_encoder(model_or_path)
    if cfg.ranking:
        parse_metrics(cfg.metrics)
    what, declared = plan(enc, calibrate, normalized)
    sample = sample_negatives(ds, split, cfg)
    sel = selection_sample(ds, cfg, strict=calibrate == "fit") if what == "fit" else None
    row: dict[str, Any] = {
        "model": str(model_or_path) if isinstance(model_or_path, (str, os.PathLike))
        else type(model_or_path).__name__,
        "dataset": ds.name, "split": split,
    }
    cache = None
    n_ranking_encoded = 0
    if cfg.ranking:
        needed = sample.needed_rows()
        if sel is not None:
            needed = np.union1d(needed, sel.needed_rows())
        kept_rows: list[np.ndarray] = []
        kept_emb: list[torch.Tensor] = []

        def keep(rows: np.ndarray, emb: torch.Tensor) -> None:
            nonlocal n_ranking_encoded
            n_ranking_encoded += len(rows)
            m = np.isin(rows, needed)
            kept_rows.append(rows[m])
            kept_emb.append(emb[torch.from_numpy(m)])

        t1 = time.perf_counter()
        run = search_run(enc, ds, split, cfg, device, progress, on_shard=keep)
        if run_path is not None:
            write_trec_run(run_path, run)
        qrels = ranking_queries(ds, split, cfg.ranking_max_queries, cfg.seed)
        row.update(compute_metrics(qrels, run, cfg.metrics, depth=cfg.k))
        row["n_ranked_queries"] = len(qrels)
        row["seconds_ranking"] = time.perf_counter() - t1
        if kept_rows:
            rows = np.concatenate(kept_rows)
            order = np.argsort(rows, kind="stable")
            cache = (rows[order], torch.cat(kept_emb)[torch.from_numpy(order)])
    cal = Calibration(declared, DECLARED) if what == DECLARED else Calibration(None, None)
    n_fit_encoded = 0
    if sel is not None:  # passages of both samples not kept from ranking, encoded once
        cache, n_fit_encoded = passage_cache_for(enc, ds, [sample, sel], cfg.batch_size,
                                                 progress, cache)
        scale, n_more = fit_selection_scale(enc, ds, cfg, device=device, progress=progress,
                                            passage_cache=cache, sample=sel)
        n_fit_encoded += n_more
        cal = Calibration(scale, FITTED)
    ce = contrastive_entropy_from_sample(enc, ds, sample, cfg, device=device, progress=progress,
                                         passage_cache=cache, scale=cal.scale,
                                         calibration_source=cal.source)
    row.update({
        "contrastive_entropy": ce.mean,
        "contrastive_entropy_stderr": ce.stderr,
        "contrastive_entropy_pair_stderr": ce.pair_stderr,
        "contrastive_entropy_per_repeat": ce.per_repeat,
        "contrastive_entropy_calibrated": ce.calibrated,
        "contrastive_entropy_calibrated_stderr": ce.calibrated_stderr,
        "calibration_scale": ce.calibration_scale,
        "calibration_source": ce.calibration_source,
        "chance": ce.chance,
        "n_pairs": ce.n_pairs, "negatives": ce.negatives, "repeats": ce.repeats,
        "seed": cfg.seed, "pool_size": ce.pool_size,
        "n_encoded_passages": ce.n_encoded_passages + n_ranking_encoded + n_fit_encoded,
        "seconds_ce": ce.seconds,
    })
    if bm25:
        from densescale.evaluate.bm25 import bm25_metrics, prefixed

        t2 = time.perf_counter()
        row.update(prefixed(bm25_metrics(ds, split, cfg, progress=progress)))
        row["seconds_bm25"] = time.perf_counter() - t2
    if cfg.ranking or bm25:
        row.update({"k": cfg.k, "ranking_pool_size": cfg.ranking_pool_size,
                    "ranking_max_queries": cfg.ranking_max_queries,
                    "exclude_self": cfg.exclude_self})
    row["seconds_total"] = time.perf_counter() - t0
    return row
