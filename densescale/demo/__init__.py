"""`densescale demo`: a complete miniature of the paper on real data, on a laptop CPU.

    densescale demo                   # ~15 min on 2 CPU cores; rerun reuses finished runs
    densescale demo --scale paper     # what the same study costs at the paper's scale

On SQuAD v1.1 paragraph retrieval (87,599 human training questions) it runs, as one resumable
study (densescale.study):

* a model-size sweep over five scratch rungs (7.8k to 512k non-embedding parameters, 1.8 orders
  of magnitude; the largest has bert-tiny's shape) at the largest D;
* a data-size sweep of the largest rung over five D values (2 orders of magnitude);
* the same data-size sweep on Inverse Cloze Task pseudo-queries (one per human pair);
* two held-out points to validate the joint law;

then fits L(N), L(D), the joint L(N, D) and the per-annotation laws with bootstrap intervals
(Huber loss on log residuals: at small D the metric is an order of magnitude above the floor,
and plain least squares lets those few points dominate),
plans a budget with the fitted joint law, and writes an HTML report.

The miniature uses 64-token passages, 200 steps and 32 sampled negatives in training so that the
laws show on CPU in minutes; evaluation uses the paper's 256 negatives. Numbers are therefore not
comparable with the paper's MS MARCO values; the shape of the laws is the point.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from densescale.errors import DenseScaleError
from densescale.utils import atomic_write_text

DATASET = "squad_v11"
# Non-embedding parameters (layers + pooler + Linear(H->768)) in the comments.
DEMO_LADDER = [
    {"name": "demo-l1-h8", "layers": 1, "hidden": 8, "heads": 1, "intermediate": 32},  # 7.8k
    {"name": "demo-l1-h16", "layers": 1, "hidden": 16, "heads": 1, "intermediate": 64},  # 16.6k
    {"name": "demo-l1-h32", "layers": 1, "hidden": 32, "heads": 1, "intermediate": 128},  # 39k
    {"name": "demo-l2-h64", "layers": 2, "hidden": 64, "heads": 2, "intermediate": 256},  # 154k
    {"name": "demo-l2-h128", "layers": 2, "hidden": 128, "heads": 2,
     "intermediate": 512},  # 512k: the shape of bert-tiny
]
TRAIN_SIZES = [64, 200, 640, 2000, 6400]  # 2 orders of magnitude; steps x batch = 6,400
TRAIN = {
    "steps": 200,
    "batch_size": 32,
    "lr": 1.0e-3,  # the measured scratch default (bench/RESULTS.md)
    "negatives": 32,
    "query_max_len": 32,
    "passage_max_len": 64,
    "eval_every": 0,  # no periodic evaluation: the study evaluates the final model once
    "checkpoint_every": 50,  # a killed demo resumes mid-run
    "eval_at_start": False,
    "eval_pairs": 32,  # training's own end-of-run check, kept cheap
    "eval_negatives": 16,
    "eval_pool_size": 1000,
}
EVAL = {"negatives": 256, "repeats": 3, "seed": 1, "max_pairs": 1000, "pool_size": 4000,
        "ranking": True, "k": 1000, "ranking_pool_size": 4000, "ranking_max_queries": 1000}


def demo_spec(out: Path, ict_path: Path, ladder_path: Path) -> dict[str, Any]:
    """The demo study as a spec mapping (written to ``<out>/demo.yaml``)."""
    largest = DEMO_LADDER[-1]["name"]
    return {
        "name": "demo",
        "dataset": DATASET,
        "eval_split": "test",
        "ladder": {"file": str(ladder_path), "rungs": [r["name"] for r in DEMO_LADDER],
                   "init": "scratch", "vocab_size": 8000},
        "train_sizes": TRAIN_SIZES,
        "annotations": [{"name": "human"}, {"name": "ict", "path": str(ict_path)}],
        "seeds": [1],
        "train": TRAIN,
        "eval": EVAL,
        "design": [
            {"points": [{"rung": r["name"], "d": TRAIN_SIZES[-1], "annotation": "human"}
                        for r in DEMO_LADDER]},
            {"points": [{"rung": largest, "d": d, "annotation": a}
                        for a in ("human", "ict") for d in TRAIN_SIZES]},
            {"points": [{"rung": DEMO_LADDER[2]["name"], "d": TRAIN_SIZES[2],
                         "annotation": "human"},
                        {"rung": DEMO_LADDER[3]["name"], "d": TRAIN_SIZES[1],
                         "annotation": "human"}]},
        ],
        "heldout": [{"rung": DEMO_LADDER[2]["name"], "d": TRAIN_SIZES[2], "annotation": "human"},
                    {"rung": DEMO_LADDER[3]["name"], "d": TRAIN_SIZES[1], "annotation": "human"}],
        "output_dir": str(out / "study"),
    }


def _ict(out: Path, progress: bool) -> Path:
    """ICT pseudo-queries, one per human training pair (reused when already there)."""
    from densescale.annotate.base import run_annotation, select_items
    from densescale.annotate.ict import ICTAnnotator
    from densescale.data import open_dataset

    path = out / "annotations" / "ict"
    if (path / "provenance.json").exists():
        return path
    ds = open_dataset(DATASET)
    items = select_items(ds, "train", None, 0, False, None)
    args = {"data": str(Path(ds.path).resolve()), "split": "train", "seed": 0, "method": "ict",
            "selection": {"mode": "pairs", "split": "train", "unique_passages": False,
                          "limit": None}, "use_title": False}
    run_annotation(ICTAnnotator(0, False), ds, items, path, args, journaled=False,
                   progress=progress)
    return path


def run_demo(out: str | os.PathLike = "demo_out", *, executor: str = "local",
             bootstrap: int = 200, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the miniature study, fit every law and write the report.

    Returns:
        A summary: wall time, fitted constants with R² and intervals, held-out errors, the budget
        example and the report path.
    """
    from densescale.report import make_report
    from densescale.study import run_study, study_status

    t0 = time.time()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ladder_path = out / "ladder.yaml"
    atomic_write_text(ladder_path, yaml.safe_dump({"rungs": DEMO_LADDER}, sort_keys=False))
    ict_path = _ict(out, progress)
    spec_path = out / "demo.yaml"
    atomic_write_text(spec_path, "# Written by `densescale demo`; rerun with "
                      f"`densescale study run {spec_path}`.\n"
                      + yaml.safe_dump(demo_spec(out, ict_path, ladder_path), sort_keys=False))
    run_study(spec_path, executor=executor, progress=progress)
    counts = study_status(spec_path)["counts"]
    if counts["done"] != sum(counts.values()):
        raise DenseScaleError(f"demo study incomplete ({counts}); see `densescale study "
                              f"status {spec_path}`")
    commands = [f"densescale demo --out {out}",
                f"densescale study run {spec_path}",
                f"densescale report --results {spec_path} --out {out / 'report'} "
                "--method huber"]
    summary = make_report(spec_path, out / "report", bootstrap=bootstrap,
                          title="densescale demo: scaling laws of dense retrieval on SQuAD",
                          commands=commands, budgets=(1e3, 1e4), inference_budgets=(),
                          method="huber")
    summary["wall_time_s"] = time.time() - t0
    summary["spec"] = str(spec_path)
    return summary
