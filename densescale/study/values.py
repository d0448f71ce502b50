"""The result row of one finished point: training summary + final evaluation -> database columns.

Column names are the canonical keys (``densescale.evaluate.metrics``): the same in
``densescale eval --json``, the results database and CSV/Parquet exports.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densescale.evaluate.metrics import RANKING_KEYS, lookup

if TYPE_CHECKING:
    from densescale.study.runner import Task

# evaluation keys copied as they come from evaluate_model
EVAL_KEYS = ("contrastive_entropy", "contrastive_entropy_stderr")


def _first(d: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` that ``d`` has a value for (summary names across versions)."""
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def ranking_values(row: dict[str, Any]) -> dict[str, float]:
    """Ranking metrics of an evaluation row under their canonical keys."""
    out: dict[str, float] = {}
    for k, v in row.items():
        m = lookup(k)
        if m is not None and m.key in RANKING_KEYS and isinstance(v, (int, float)):
            out.setdefault(m.key, float(v))
    return out


def point_values(task: Task, summary: dict[str, Any], row: dict[str, Any], train_s: float,
                 eval_s: float) -> dict[str, Any]:
    """Database columns of a finished point.

    Args:
        task: the point's task.
        summary: the training summary (``TrainSummary.to_dict()`` or summary.json).
        row: ``evaluate_model``'s row on the reporting split.
        train_s, eval_s: wall seconds of training and of the final evaluation.
    """
    from densescale import __version__
    from densescale.utils import git_commit, hardware_info

    config = dict(summary.get("config") or task.train.to_dict())
    ev = task.eval
    hardware = {**(summary.get("hardware") or hardware_info()), "host": socket.gethostname()}
    return {
        "n": summary.get("n_params"), "n_total": summary.get("n_params_total"),
        "steps": config.get("steps"), "batch_size": config.get("batch_size"),
        "lr": config.get("lr"), "negatives": config.get("negatives"),
        "eval_negatives": ev.negatives, "eval_repeats": ev.repeats, "eval_seed": ev.seed,
        "train_config": config, "eval_config": {"split": task.split, **ev.to_dict()},
        **{k: row.get(k) for k in EVAL_KEYS},
        **ranking_values(row),
        "best_step": summary.get("best_step"),
        "train_best_contrastive_entropy": _first(summary, "best_ce", "best_contrastive_entropy"),
        "train_final_contrastive_entropy": _first(summary, "last_ce",
                                                  "final_contrastive_entropy"),
        "wall_time_s": train_s + eval_s,
        "train_wall_time_s": summary.get("wall_time_s", train_s), "eval_wall_time_s": eval_s,
        "pairs_per_s": summary.get("pairs_per_s"),
        "hardware": hardware, "densescale_version": __version__, "git_commit": git_commit(),
        "artefact_dir": str(Path(task.train.out)),
    }
