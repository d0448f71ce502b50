"""One call that scores a model with contrastive entropy and ranking metrics, encoding once.

The ranking search streams over corpus shards; every passage the contrastive-entropy sample
needs (positives + drawn negatives) is kept from those shards, so nothing is encoded twice.

    from densescale.evaluate import evaluate_model
    row = evaluate_model("runs/bert-tiny", "squad_v11", "test")
    row["contrastive_entropy"], row["nDCG@10"]
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from densescale.evaluate.contrastive_entropy import (
    _as_dataset,
    _as_encoder,
    contrastive_entropy_from_sample,
)
from densescale.evaluate.negatives import sample_negatives
from densescale.evaluate.ranking import (
    DEFAULT_METRICS,
    compute_metrics,
    parse_metrics,
    search_run,
    write_trec_run,
)


def evaluate_model(
    model_or_path: Any,
    dataset: Any,
    split: str = "test",
    negatives: int = 256,
    repeats: int = 10,
    seed: int = 1,
    pool_size: int | None = None,
    max_pairs: int | None = None,
    ranking: bool = True,
    k: int = 1000,
    metrics: Sequence[str] = DEFAULT_METRICS,
    ranking_pool_size: int | None = None,
    exclude_self: bool = False,
    run_path: str | os.PathLike | None = None,
    shard_size: int = 100_000,
    batch_size: int = 256,
    device: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Contrastive entropy (+ ranking metrics) of one model as one flat result row.

    Args: as ``contrastive_entropy`` (negatives, repeats, seed, pool_size, max_pairs) and
        ``ranking_metrics`` (k, metrics, ranking_pool_size -> its pool_size, exclude_self,
        run_path, shard_size); ``ranking=False`` skips the search.

    Returns:
        {"model", "dataset", "split", "contrastive_entropy", "contrastive_entropy_stderr",
        "contrastive_entropy_pair_stderr", "contrastive_entropy_per_repeat", "n_pairs",
        "negatives", "repeats", "seed", "pool_size", "n_encoded_passages", <metric>: value ...,
        "seconds_total"} — the row format ``correlate`` reads.
    """
    t0 = time.perf_counter()
    ds = _as_dataset(dataset)
    enc = _as_encoder(model_or_path)
    if ranking:
        parse_metrics(metrics)
    sample = sample_negatives(ds, split, negatives=negatives, repeats=repeats, seed=seed,
                              pool_size=pool_size, max_pairs=max_pairs)
    row: dict[str, Any] = {
        "model": str(model_or_path) if isinstance(model_or_path, (str, os.PathLike))
        else type(model_or_path).__name__,
        "dataset": ds.name, "split": split,
    }
    cache = None
    n_ranking_encoded = 0
    if ranking:
        needed = sample.needed_rows()
        kept_rows: list[np.ndarray] = []
        kept_emb: list[torch.Tensor] = []

        def keep(rows: np.ndarray, emb: torch.Tensor) -> None:
            nonlocal n_ranking_encoded
            n_ranking_encoded += len(rows)
            m = np.isin(rows, needed)
            kept_rows.append(rows[m])
            kept_emb.append(emb[torch.from_numpy(m)])

        t1 = time.perf_counter()
        run = search_run(enc, ds, split, k, ranking_pool_size, exclude_self, shard_size,
                         batch_size, seed, device, progress, on_shard=keep)
        if run_path is not None:
            write_trec_run(run_path, run)
        row.update(compute_metrics(ds.qrels(split), run, metrics, depth=k))
        row["seconds_ranking"] = time.perf_counter() - t1
        if kept_rows:
            rows = np.concatenate(kept_rows)
            order = np.argsort(rows, kind="stable")
            cache = (rows[order], torch.cat(kept_emb)[torch.from_numpy(order)])
    ce = contrastive_entropy_from_sample(enc, ds, sample, batch_size, device, progress,
                                         passage_cache=cache)
    row.update({
        "contrastive_entropy": ce.mean,
        "contrastive_entropy_stderr": ce.stderr,
        "contrastive_entropy_pair_stderr": ce.pair_stderr,
        "contrastive_entropy_per_repeat": ce.per_repeat,
        "n_pairs": ce.n_pairs, "negatives": ce.negatives, "repeats": ce.repeats,
        "seed": seed, "pool_size": ce.pool_size,
        "n_encoded_passages": ce.n_encoded_passages + n_ranking_encoded,
        "seconds_ce": ce.seconds,
    })
    if ranking:
        row.update({"k": k, "ranking_pool_size": ranking_pool_size, "exclude_self": exclude_self})
    row["seconds_total"] = time.perf_counter() - t0
    return row
