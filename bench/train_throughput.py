"""Training throughput: densescale vs sentence-transformers MultipleNegativesRankingLoss (CPU).

    .venv/bin/python bench/train_throughput.py [--steps 12] [--batch 32] [--negatives 64] \
        [--passage-max-len 180] [--shapes bert-tiny,bert-mini] [--variants plain,fast,nodrop] \
        [--compile] [--bf16]

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

densescale variants (TrainConfig speed options): ``plain`` = padded forward in length-sorted
chunks + for-loop AdamW + bulk-stream dropout + pooled feed-forward buffers (the CPU
default); ``torch_dropout`` = ``plain`` with torch's own dropout stream (the default before
``fast_dropout``); ``unpooled`` = ``plain``
without the pooled feed-forward buffers (the default before ``pooled_ffn``); ``fast`` = packed
unpadded forward + fused AdamW (the same fp32 arithmetic); ``packed_only``, ``fused_only``;
``nodrop`` / ``plain_nodrop`` = ``fast`` / ``plain`` with dropout off (NOT the paper's recipe:
BERT's dropout 0.1 stays on there);
``compile`` = ``fast`` + torch.compile (compile time reported).
Utilisation: model FLOPs (densescale.models.flops: true token counts of queries, positives
and negatives, forward + backward, non-embedding + attention) per second, and MFU against a
2048^3 fp32 matmul timed in the same process on the same threads.
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
                              bf16=False, flops_fn=None):
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
    flops = 0.0
    for s in range(total):
        if s == warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        idx = order.indices(s)
        neg = random_negatives(len(corpus_texts), b * k, np.asarray(pairs_p)[idx], seed, s)
        q = [pairs_q_text[i] for i in idx] if (pairs_q_text := pairs_q) else []
        p = [corpus_texts[pairs_p[i]] for i in idx]
        cols = [q, p] + [[corpus_texts[r] for r in neg[j::k]] for j in range(k)]
        feats = [model.tokenize(c) for c in cols]
        if s >= warmup and flops_fn is not None:
            flops += flops_fn(np.concatenate([f["attention_mask"].sum(1).numpy() for f in feats]))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(feats, None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return b * steps / wall, b * steps / cpu, flops / cpu


VARIANTS = {"plain": {"packed": False, "fused_adamw": False},
            "torch_dropout": {"packed": False, "fused_adamw": False, "fast_dropout": False},
            "unpooled": {"packed": False, "fused_adamw": False, "pooled_ffn": False},
            "fast": {"packed": True, "fused_adamw": True},
            "packed_only": {"packed": True, "fused_adamw": False},
            "fused_only": {"packed": False, "fused_adamw": True},
            "nodrop": {"packed": True, "fused_adamw": True, "dropout": False},
            "plain_nodrop": {"packed": False, "fused_adamw": False, "dropout": False},
            "compile": {"packed": True, "fused_adamw": True, "compile": True}}


def run_densescale(data, shape, cfg, steps, warmup, seed, tokenizer_dir, bf16=False,
                   options=None):
    from densescale.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as out:
        tc = TrainConfig(data=data, model=shape, init="scratch", tokenizer=tokenizer_dir,
                         steps=steps + warmup, batch_size=cfg["batch"], negatives=cfg["negatives"],
                         query_max_len=cfg["query_max_len"], passage_max_len=cfg["passage_max_len"],
                         lr=1e-3, eval_split=None, seed=seed, out=out, progress_every=1,
                         train_size=cfg["train_size"], bf16=bf16, **(options or {}))
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
    per_cpu = cfg["batch"] * n / (cpu[-1] - cpu[warmup])
    return wall, per_cpu, s.model_flops_per_step * per_cpu / cfg["batch"], s


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
    ap.add_argument("--passage-max-len", type=int, default=180)
    ap.add_argument("--train-size", type=int, default=5000)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternate densescale / ST this many times (best round kept)")
    ap.add_argument("--variants", default="plain,fast",
                    help=f"densescale variants, comma-separated from {sorted(VARIANTS)}")
    ap.add_argument("--compile", action="store_true", help="add the 'compile' variant")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=False,
                    help="also compare with bf16 autocast on both sides (CPU)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: CPU time per step is then robust on a busy machine)")
    ap.add_argument("--json", default=None, help="also append the JSON lines to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from densescale.data import open_dataset
    from densescale.models import build_model
    from densescale.models.flops import train_flops
    from densescale.models.tokenizer import corpus_tokenizer
    from densescale.train.data import subset_pairs

    variants = [v for v in args.variants.split(",") if v] + (["compile"] if args.compile else [])
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
    peak = cpu_matmul_peak()
    print(f"peak: {peak / 1e9:.1f} GFLOP/s per CPU-second (fp32 2048^3 matmul, "
          f"{torch.get_num_threads()} thread(s))", file=sys.stderr)
    for shape in args.shapes.split(","):
        enc = build_model(shape, init="scratch", tokenizer=tok_dir, seed=seed,
                          query_max_len=args.query_max_len, passage_max_len=args.passage_max_len)
        ec = enc.encoder.config
        shp = (ec.num_hidden_layers, ec.hidden_size, ec.intermediate_size)

        def st_flops(lengths, shp=shp):
            return train_flops(lengths, *shp, proj_dim=768)

        runs: dict[str, list] = {}
        extra: dict[str, dict] = {}
        for _ in range(args.rounds):
            for prec in ("fp32", "bf16") if args.bf16 else ("fp32",):
                for v in variants:
                    wall, cpu, fl, summ = run_densescale(args.data, shape, cfg, args.steps,
                                                         args.warmup, seed, tok_dir,
                                                         bf16=prec == "bf16",
                                                         options=VARIANTS[v])
                    runs.setdefault(f"ds_{v}_{prec}", []).append((wall, cpu, fl))
                    extra[f"ds_{v}_{prec}"] = {"compile_s": summ.compile_s,
                                               "tokenize_s": summ.tokenize_s}
                    print(f"{shape} {prec} densescale[{v}]: {wall:.1f} pairs/s ({cpu:.1f} per "
                          f"CPU-s, {fl / 1e9:.1f} GFLOP/CPU-s)", file=sys.stderr)
                st = run_sentence_transformers(copy.deepcopy(enc), q_texts, p_rows, corpus_texts,
                                               cfg, args.steps, args.warmup, seed,
                                               bf16=prec == "bf16", flops_fn=st_flops)
                runs.setdefault(f"st_{prec}", []).append(st)
                print(f"{shape} {prec} sentence-transformers: {st[0]:.1f} pairs/s ({st[1]:.1f} "
                      f"per CPU-s, {st[2] / 1e9:.1f} GFLOP/CPU-s)", file=sys.stderr)
        best = {k: max(r[1] for r in v) for k, v in runs.items()}
        flops = {k: max(r[2] for r in v) for k, v in runs.items()}
        ratios = {f"{k}_vs_st": best[k] / best[f"st_{k.rsplit('_', 1)[1]}"]
                  for k in best if k.startswith("ds_")}
        row = {"shape": shape, "pairs_per_cpu_s": best, "ratio_cpu": ratios,
               "model_gflop_per_cpu_s": {k: v / 1e9 for k, v in flops.items()},
               "mfu_vs_fp32_matmul": {k: v / peak for k, v in flops.items()},
               "peak_gflop_per_cpu_s": peak / 1e9,
               "pairs_per_s_wall": {k: max(r[0] for r in v) for k, v in runs.items()},
               "runs": runs, "extra": extra, **cfg, "steps_timed": args.steps,
               "warmup": args.warmup, "threads": torch.get_num_threads(),
               "load_avg": os.getloadavg()}
        line = json.dumps(row)
        print(line)
        sys.stdout.flush()
        if args.json:
            with open(args.json, "a") as f:
                f.write(line + "\n")


def cpu_matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """Best fp32 n^3 matmul FLOPs per CPU-second of this process (same threads as training)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        c = time.process_time()
        a @ b
        best = min(best, time.process_time() - c)
    return 2.0 * n ** 3 / best


if __name__ == "__main__":
    main()
