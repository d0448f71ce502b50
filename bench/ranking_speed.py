"""Ranking speed: densescale ``ranking_metrics`` vs sentence-transformers'
InformationRetrievalEvaluator, same model, same queries, same metrics (checked to 1e-6).

    .venv/bin/python bench/ranking_speed.py [--data .../squad_v11] [--k 1000] [--rounds 2]

Model: the random bert-tiny-shaped sentence-transformers model of bench/eval_speed.py (L=2,
H=128, 4 heads, bert-base-uncased vocabulary, mean pooling), query / passage max length 32 /
180, SQuAD v1.1 test: 10,570 queries over the 20,958-passage corpus, top-1000 by inner product.
Both sides get the same ``SentenceTransformer`` object and run the same modules on it;
densescale wraps it in SentenceTransformerEncoder, which tokenises each block of texts once and
batches by token length (sentence-transformers' encode batches by character length and
tokenises batch by batch). Sides alternate, ``--rounds`` times; wall and process CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

PAIRS = {"nDCG@10": "dot_ndcg@10", "RR@10": "dot_mrr@10", "R@100": "dot_recall@100",
         "R@1000": "dot_recall@1000"}  # densescale measure -> ST evaluator key (k = 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" /
                                          "datasets" / "squad_v11"))
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None, help="also append the JSON result to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from eval_speed import build_model, st_evaluator

    from densescale.data import open_dataset
    from densescale.evaluate import SentenceTransformerEncoder
    from densescale.evaluate.ranking import ranking_metrics
    from densescale.utils import hardware_info

    ds = open_dataset(args.data)
    model = build_model(Path(tempfile.mkdtemp(prefix="densescale-rank-")))
    enc = SentenceTransformerEncoder(model, query_max_len=32, passage_max_len=180, device="cpu")
    qrels = ds.qrels("test")
    k = args.k
    ir = st_evaluator(ds, k)
    res: dict = {"hardware": hardware_info(), "load_avg_start": os.getloadavg(),
                 "queries": len(qrels), "corpus": len(ds.corpus), "k": k,
                 "densescale": [], "sentence_transformers": []}
    for _ in range(args.rounds):
        t, c = time.perf_counter(), time.process_time()
        ours = ranking_metrics(enc, ds, "test", k=k, batch_size=256,
                               metrics=("nDCG@10", "RR@10", "R@100", f"R@{k}"))
        res["densescale"].append((time.perf_counter() - t, time.process_time() - c))
        model.max_seq_length = 180
        t, c = time.perf_counter(), time.process_time()
        theirs = ir(model)
        res["sentence_transformers"].append((time.perf_counter() - t, time.process_time() - c))
        print(f"densescale {res['densescale'][-1]}, ST {res['sentence_transformers'][-1]}",
              file=sys.stderr)
    from densescale.evaluate.metrics import canonical

    diffs = {key: abs(ours[canonical(key)] - float(theirs[st])) for key, st in PAIRS.items()
             if st in theirs}
    res.update(metrics_densescale=ours, metrics_st={k2: float(v) for k2, v in theirs.items()},
               max_abs_metric_diff=max(diffs.values()), metric_diffs=diffs,
               best_wall_s={"densescale": min(r[0] for r in res["densescale"]),
                            "sentence_transformers": min(r[0] for r in
                                                         res["sentence_transformers"])},
               best_cpu_s={"densescale": min(r[1] for r in res["densescale"]),
                           "sentence_transformers": min(r[1] for r in
                                                        res["sentence_transformers"])},
               load_avg_end=os.getloadavg())
    res["speedup_wall"] = (res["best_wall_s"]["sentence_transformers"]
                           / res["best_wall_s"]["densescale"])
    res["speedup_cpu"] = (res["best_cpu_s"]["sentence_transformers"]
                          / res["best_cpu_s"]["densescale"])
    text = json.dumps(res, default=float)
    print(text)
    if args.json:
        with open(args.json, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
