"""Scratch learning-rate sweep: bert-tiny from scratch on squad_v11, a few hundred steps per LR.

    .venv/bin/python bench/train_lr_sweep.py [--steps 300] [--lrs 5e-6,1e-4,3e-4,1e-3,3e-3]

Reduced CPU setting (batch 32, 32 random negatives, passages cut at 64 tokens, corpus WordPiece
vocab 8000, D = 20,000 pairs); contrastive entropy on 500 squad test pairs with 256 negatives from
a 5,000-passage pool. Prints one JSON line per LR; the table goes into bench/results/train.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from densescale.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser()
    data_dir = os.environ.get("DENSESCALE_DATA_DIR", "../shared/datasets")
    ap.add_argument("--data", default=os.path.join(data_dir, "squad_v11"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lrs", default="5e-6,1e-4,3e-4,1e-3,3e-3")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    for lr in [float(x) for x in args.lrs.split(",")]:
        with tempfile.TemporaryDirectory() as out:
            cfg = TrainConfig(data=args.data, model="bert-tiny", init="scratch", vocab_size=8000,
                              train_size=20_000, steps=args.steps, batch_size=32, negatives=32,
                              passage_max_len=64, lr=lr, eval_every=args.steps // 3,
                              selection={"max_pairs": 500, "negatives": 256, "pool_size": 5000},
                              out=out, num_threads=args.threads)
            s = train(cfg, progress=False)
        evals = [(h["step"], round(h["eval"], 4)) for h in s.history if h["eval"] is not None]
        print(json.dumps({"lr": lr, "steps": args.steps, "evals": evals, "best": s.best_ce,
                          "best_step": s.best_step, "learned": s.learned,
                          "selection_split": s.selection_split, "pairs_per_s": s.pairs_per_s}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
