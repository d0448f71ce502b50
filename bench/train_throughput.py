"""Training throughput: densescale vs sentence-transformers MultipleNegativesRankingLoss (CPU).

    .venv/bin/python bench/train_throughput.py [--steps 12] [--batch 32] [--negatives 64] \
        [--passage-max-len 128] [--shapes bert-tiny,bert-mini]

Both sides train the same scratch model (same BertModel weights at step 0, same corpus WordPiece
tokenizer, mean pooling, Linear(H->768)), same batch of squad_v11 (query, positive) pairs, same
maximum lengths, AdamW + linear decay + clipping 1.0, on the same threads, alternating in one run.

Equalising negatives. densescale (the paper's setting) encodes B positives + M random corpus
passages per step, shared by the whole batch. MultipleNegativesRankingLoss takes per-example
negative columns and uses every column of every example as a candidate for every anchor; giving
each example k = M / B negatives (drawn from the same per-step random set) makes ST encode the
same B + M passages per step, and each query then sees M shared random negatives plus the B - 1
other positives. ST tokenises inside its step (its collator does), encodes each column with its
own forward; densescale pre-tokenises and encodes all passages in one padded forward.
pairs/s = B * timed steps / time of the timed steps (the first ``--warmup`` steps are not timed),
reported per wall-clock second and per CPU second of the process (the latter, with one torch
thread, is what to compare on a shared, overloaded machine; wall numbers there are noise).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch


def st_model_from(enc):
    """A SentenceTransformer with the same modules and weights as a densescale BiEncoder."""
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as d:
        enc.save(d)
        m = SentenceTransformer(d, device="cpu")
    return m


def run_sentence_transformers(enc, pairs_q, pairs_p, corpus_texts, cfg, steps, warmup, seed,
                              bf16=False):
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from densescale.train.negatives import BatchOrder, random_negatives

    model = st_model_from(enc)
    model.max_seq_length = cfg["passage_max_len"]
    model.train()
    loss_fn = MultipleNegativesRankingLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.001)
    total = steps + warmup
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (total - s) / total))
    b, m = cfg["batch"], cfg["negatives"]
    k = max(1, m // b)
    order = BatchOrder(len(pairs_q), b, seed)
    t0 = c0 = None
    for s in range(total):
        if s == warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        idx = order.indices(s)
        neg = random_negatives(len(corpus_texts), b * k, np.asarray(pairs_p)[idx], seed, s)
        q = [pairs_q_text[i] for i in idx] if (pairs_q_text := pairs_q) else []
        p = [corpus_texts[pairs_p[i]] for i in idx]
        cols = [q, p] + [[corpus_texts[r] for r in neg[j::k]] for j in range(k)]
        feats = [model.tokenize(c) for c in cols]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(feats, None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return b * steps / (time.perf_counter() - t0), b * steps / (time.process_time() - c0)


def run_densescale(data, shape, cfg, steps, warmup, seed, tokenizer_dir, bf16=False):
    from densescale.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as out:
        tc = TrainConfig(data=data, model=shape, init="scratch", tokenizer=tokenizer_dir,
                         steps=steps + warmup, batch_size=cfg["batch"], negatives=cfg["negatives"],
                         query_max_len=cfg["query_max_len"], passage_max_len=cfg["passage_max_len"],
                         lr=1e-3, eval_split=None, seed=seed, out=out, progress_every=1,
                         train_size=cfg["train_size"], bf16=bf16)
        from densescale.train import step as train_step

        times: list[float] = []
        cpu: list[float] = []
        orig = train_step.contrastive_loss

        def timed_loss(*a, **kw):  # timestamp every step (the loss is computed once per step)
            times.append(time.perf_counter())
            cpu.append(time.process_time())
            return orig(*a, **kw)

        train_step.contrastive_loss = timed_loss
        try:
            t_all = time.perf_counter()
            s = train(tc, progress=False)
            t_all = time.perf_counter() - t_all
        finally:
            train_step.contrastive_loss = orig
    # step k's loss is computed after its forward: the interval between the loss of step
    # `warmup` and of the last step covers steps - 1 whole steps (backward, optimiser, next batch)
    n = len(times) - 1 - warmup
    wall = cfg["batch"] * n / (times[-1] - times[warmup])
    return wall, cfg["batch"] * n / (cpu[-1] - cpu[warmup]), s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    data_dir = os.environ.get("DENSESCALE_DATA_DIR", "../shared/datasets")
    ap.add_argument("--data", default=os.path.join(data_dir, "squad_v11"))
    ap.add_argument("--shapes", default="bert-tiny,bert-mini")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--negatives", type=int, default=64)
    ap.add_argument("--query-max-len", type=int, default=32)
    ap.add_argument("--passage-max-len", type=int, default=128)
    ap.add_argument("--train-size", type=int, default=5000)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternate densescale / ST this many times")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                    help="also compare with bf16 autocast on both sides (CPU)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: CPU time per step is then robust on a busy machine)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from densescale.data import open_dataset
    from densescale.models import build_model
    from densescale.models.tokenizer import corpus_tokenizer
    from densescale.train.config import TrainConfig
    from densescale.train.data import subset_pairs

    ds = open_dataset(args.data)
    tok = corpus_tokenizer(ds.corpus, vocab_size=args.vocab_size)
    tok_dir = tempfile.mkdtemp()
    tok.save_pretrained(tok_dir)
    cfg = {"batch": args.batch, "negatives": args.negatives, "query_max_len": args.query_max_len,
           "passage_max_len": args.passage_max_len, "train_size": args.train_size}
    seed = 521
    pairs = subset_pairs(ds.pairs("train"), args.train_size, seed)
    queries = ds.queries()
    q_texts = [queries[p.query_id] for p in pairs]
    p_rows = ds.corpus.rows_of([p.doc_id for p in pairs]).tolist()
    corpus_texts = ds.corpus.texts(np.arange(len(ds.corpus)))
    results = []
    for shape in args.shapes.split(","):
        enc = build_model(shape, init="scratch", tokenizer=tok_dir, seed=seed,
                          query_max_len=args.query_max_len, passage_max_len=args.passage_max_len)
        runs: dict[str, list] = {"ds_fp32": [], "st_fp32": [], "ds_bf16": [], "st_bf16": []}
        for _ in range(args.rounds):
            for prec in ("fp32", "bf16") if args.bf16 else ("fp32",):
                wall, cpu, summ = run_densescale(args.data, shape, cfg, args.steps, args.warmup,
                                                 seed, tok_dir, bf16=prec == "bf16")
                runs[f"ds_{prec}"].append((wall, cpu))
                runs[f"st_{prec}"].append(run_sentence_transformers(
                    copy.deepcopy(enc), q_texts, p_rows, corpus_texts, cfg, args.steps, args.warmup,
                    seed, bf16=prec == "bf16"))
                print(f"{shape} {prec}: densescale {wall:.1f} pairs/s ({cpu:.1f} per CPU-s), "
                      f"sentence-transformers {runs[f'st_{prec}'][-1][0]:.1f} pairs/s "
                      f"({runs[f'st_{prec}'][-1][1]:.1f} per CPU-s)", file=sys.stderr)
        best = {k: max(r[1] for r in v) for k, v in runs.items() if v}
        row = {"shape": shape, "pairs_per_cpu_s": best,
               "ratio_cpu_fp32": best["ds_fp32"] / best["st_fp32"],
               "ratio_cpu_bf16": best["ds_bf16"] / best["st_bf16"] if "ds_bf16" in best else None,
               "ratio_cpu_ds_bf16_vs_st_fp32": (best["ds_bf16"] / best["st_fp32"]
                                                if "ds_bf16" in best else None),
               "pairs_per_s_wall": {k: max(r[0] for r in v) for k, v in runs.items() if v},
               "runs": runs,
               "densescale_tokenize_s": summ["tokenize_s"], **cfg, "steps_timed": args.steps,
               "threads": torch.get_num_threads()}
        results.append(row)
        print(json.dumps(row))
        sys.stdout.flush()
    _ = TrainConfig  # imported for its side effect-free validation of the settings above


if __name__ == "__main__":
    main()
