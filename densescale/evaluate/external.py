"""Ranking metrics of an external system's TREC run: ``densescale eval --run bm25.trec``.

The run is scored on the same queries as a model's ranking metrics (``ranking_queries``: the
split's qrels, or the seeded ``ranking_max_queries`` sample) with the same ir_measures call
(``compute_metrics``), under the same keys, so BM25 from pyserini, a Tevatron model or any other
system sits beside densescale's rows. A ranked query missing from the run scores 0 (what every
measure of the table gives an empty ranking), so the mean is over all ranked queries. As in
trec_eval, a cutoff deeper than the run's lists scores what the run lists (the run's own depth
is not known to be a truncation; ``run_depth`` says how deep it goes).

    run_metrics(open_dataset("scifact"), "test", "bm25.trec")   # {"ndcg_at_10": 0.66, ...}
"""

from __future__ import annotations

import os
from typing import Any

from densescale.errors import DataError
from densescale.evaluate.config import EvalConfig


def run_metrics(dataset: Any, split: str, path: str | os.PathLike,
                config: EvalConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """Metrics of a TREC run (``qid Q0 docid rank score tag``; ``.gz`` read as is).

    Args:
        dataset: a Dataset (or anything ``open_dataset`` opens).
        split: qrels split whose queries are ranked.
        path: the run file; its order is its scores' (ties by rank).
        config: EvalConfig (metrics, ranking_max_queries, seed); overrides as keywords.

    Returns:
        {metric key: mean over the ranked queries, "n_ranked_queries": how many,
        "n_run_queries": how many of them the run ranks, "run_depth": its longest list}.

    Raises:
        DataError: a malformed run, or a run that ranks none of the split's queries.
    """
    from densescale.data import read_trec_run
    from densescale.evaluate.entropy import as_dataset
    from densescale.evaluate.ranking import compute_metrics, ranking_queries

    cfg = EvalConfig.resolve(config, **overrides)
    ds = as_dataset(dataset)
    qrels = ranking_queries(ds, split, cfg.ranking_max_queries, cfg.seed)
    ranked = read_trec_run(path)
    run = {q: {d: float(len(docs) - i) for i, d in enumerate(docs)}  # best first -> scores
           for q, docs in ranked.items() if q in qrels}
    if not run:
        raise DataError(f"the run ranks none of the {len(qrels)} queries of split {split!r} "
                        f"of {ds.name} (query ids like {next(iter(ranked))!r})", path)
    depth = max(len(v) for v in run.values())
    got = compute_metrics({q: qrels[q] for q in run}, run, cfg.metrics, depth=None)
    share = len(run) / len(qrels)  # missing queries score 0
    return {**{k: v * share for k, v in got.items()}, "n_ranked_queries": len(qrels),
            "n_run_queries": len(run), "run_depth": depth}
