"""The demo's design: ladder, annotation amounts, training recipe and evaluation, as a study.

Every value here was chosen by measuring on SQuAD's *selection* split (questions of whole
Wikipedia articles held out from training), never on the reported test split; the measurements
are summarised in the README ("What `make demo` does").

Recipe (scratch rungs; the paper's recipe stays the default for pretrained rungs):
* normalised embeddings with a fixed score scale of 20 (score = 20 x cosine). With the paper's
  unscaled inner product, scratch models on a CPU budget memorise the training pairs and rank
  unseen questions no better than chance (their score scale blows up instead);
* in-batch negatives (batch 64): at equal cost they beat 32 pairs + 32 random negatives;
* AdamW lr 1e-3, 30 warm-up steps, linear decay; 128-token passages, 32-token queries;
* the checkpoint is chosen among step 0 and every 30 steps on 500 selection questions (W = 256
  negatives from a fixed 1,000-passage pool: the same for every run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATASET = "squad_v11"
PROJ_DIM = 128  # a small projection so that N is mostly the encoder, not Linear(H -> 768)

# One depth, widths doubling: N (layers + pooler + Linear(H -> 128)) in the comments. Mixing
# depths added shape noise to L(N) in the measurements; one depth gives a clean ladder.
DEMO_LADDER = [
    {"name": "demo-l1-h16", "layers": 1, "hidden": 16, "heads": 1, "intermediate": 64},  # 5.7k
    {"name": "demo-l1-h32", "layers": 1, "hidden": 32, "heads": 1, "intermediate": 128},  # 18k
    {"name": "demo-l1-h64", "layers": 1, "hidden": 64, "heads": 1, "intermediate": 256},  # 62k
    {"name": "demo-l1-h96", "layers": 1, "hidden": 96, "heads": 2, "intermediate": 384},  # 134k
    {"name": "demo-l1-h128", "layers": 1, "hidden": 128, "heads": 2,
     "intermediate": 512},  # 231k
    # held out, beyond the fitted N range: the laws must predict it
    {"name": "demo-l1-h192", "layers": 1, "hidden": 192, "heads": 3,
     "intermediate": 768},  # 507k
]
FITTED_RUNGS = [r["name"] for r in DEMO_LADDER[:-1]]
BEYOND = DEMO_LADDER[-1]["name"]
SWEEP_RUNG = "demo-l1-h64"  # the data sweeps run here: 5x cheaper than the largest rung
ALL = 86_479  # every SQuAD training pair outside the selection articles
# 300 steps x 64 pairs = 19,200 pairs seen: beyond that D no pair repeats (L(D) flattens there)
TRAIN_SIZES = [2_700, 6_000, 13_000, 29_000, ALL]
ICT_SIZES = [2_700, 6_000, 13_000, ALL]
SEEDS = [1]
SEEDED_POINTS = [("demo-l1-h32", ALL), (SWEEP_RUNG, 6_000)]  # also run under seed 2
HELDOUT = [(BEYOND, ALL), ("demo-l1-h32", 6_000)]

TRAIN: dict[str, Any] = {
    "steps": 300,
    "batch_size": 64,
    "lr": 1.0e-3,
    "warmup_steps": 30,
    "similarity": "cos",
    "scale": 20.0,
    "proj_dim": PROJ_DIM,
    "negative_mode": "inbatch",
    "negatives": 0,
    "query_max_len": 32,
    "passage_max_len": 128,
    "eval_every": 30,
    "eval_at_start": True,
    "selection": {"negatives": 256, "repeats": 1, "seed": 1, "max_pairs": 500,
                  "pool_size": 1000, "ranking": False},
    "checkpoint_every": 100,
    "num_threads": 1,
    # the code path every quoted demo number was measured with (padded encoder forward,
    # for-each AdamW): the packed forward and fused AdamW are the same maths in another
    # summation order, which moves 300-step results by rounding, not by method; torch's
    # dropout stream (fast_dropout draws the same dropout from another stream)
    "packed": False,
    "fused_adamw": False,
    "fast_dropout": False,
}
EVAL: dict[str, Any] = {"negatives": 256, "repeats": 3, "seed": 1, "max_pairs": 2000,
                        "pool_size": 4000, "ranking": True, "k": 1000,
                        "ranking_pool_size": 4000, "ranking_max_queries": 2000, "bm25": True}
METRIC = "contrastive_entropy_calibrated"  # the CE of the model's own score (20 x cosine)


def _point(rung: str, d: int, annotation: str = "human") -> dict[str, Any]:
    return {"rung": rung, "d": d, "annotation": annotation}


FULL_STEPS = 1200  # `densescale demo --full`: the same design trained 4x longer


def demo_spec(out: Path, ict_path: Path, ladder_path: Path, full: bool = False) -> dict[str, Any]:
    """The demo study as a spec mapping (written to ``<out>/demo.yaml``).

    ``full`` trains every point for ``FULL_STEPS`` steps instead of 300 (selection every 75).
    """
    train = {**TRAIN, "steps": FULL_STEPS, "eval_every": 75} if full else TRAIN
    return {
        "name": "demo-full" if full else "demo",
        "dataset": DATASET,
        "eval_split": "test",
        "selection": "selection",
        "ladder": {"file": str(ladder_path), "rungs": [r["name"] for r in DEMO_LADDER],
                   "init": "scratch", "vocab_size": 8000},
        "train_sizes": sorted(set(TRAIN_SIZES) | set(ICT_SIZES)),
        "annotations": [{"name": "human"}, {"name": "ict", "path": str(ict_path)}],
        "seeds": SEEDS,
        "train": train,
        "eval": EVAL,
        "design": [  # costliest first, so the two workers finish together
            {"points": [_point(r, d) for r, d in HELDOUT]},
            {"points": [_point(r, ALL) for r in reversed(FITTED_RUNGS)]},  # L(N)
            {"points": [_point(SWEEP_RUNG, d) for d in reversed(TRAIN_SIZES)]},  # L(D)
            {"points": [_point(SWEEP_RUNG, d, "ict") for d in reversed(ICT_SIZES)]},
            {"points": [{**_point(r, d), "seeds": [1, 2]} for r, d in SEEDED_POINTS]},
        ],
        "heldout": [_point(r, d) for r, d in HELDOUT],
        "output_dir": str(out / "study"),
    }
