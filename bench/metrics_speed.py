"""Ranking-metric kernel: densescale metrics_from_hits (numpy) vs run dict + ir_measures.

    .venv/bin/python bench/metrics_speed.py

Random scores and hits (10,570 SQuAD test queries x 1,000 corpus rows, seed 0) over the SQuAD
test qrels; prints both times and the largest metric difference (nDCG@10, RR@10, R@100, R@1000).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from densescale.data import open_dataset
from densescale.evaluate.ranking import compute_metrics, hits_to_run, metrics_from_hits


def main() -> None:
    data = os.environ.get("DENSESCALE_DATA_DIR", "../shared/datasets")
    ds = open_dataset(os.path.join(data, "squad_v11"))
    qrels = ds.qrels("test")
    qids = list(qrels)
    rng = np.random.default_rng(0)
    s = torch.randn(len(qids), 1000).sort(1, descending=True).values.numpy()  # [Q, 1000]
    h = np.stack([rng.choice(len(ds.corpus), 1000, replace=False) for _ in qids])  # [Q, 1000]
    m = ("nDCG@10", "RR@10", "R@100", "R@1000")
    t = time.perf_counter()
    a = metrics_from_hits(ds, qrels, qids, h, s, 1000, False, m)
    t1 = time.perf_counter() - t
    t = time.perf_counter()
    b = compute_metrics(qrels, hits_to_run(ds, qids, h, s, 1000, False), m, depth=1000)
    t2 = time.perf_counter() - t
    print(f"metrics_from_hits {t1:.2f}s; run dict + ir_measures {t2:.2f}s; "
          f"max |diff| {max(abs(a[k] - b[k]) for k in a)}")


if __name__ == "__main__":
    main()
