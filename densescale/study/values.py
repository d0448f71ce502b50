"""The result row of one finished point: training summary + final evaluation -> database columns.

Column names are the canonical keys (``densescale.evaluate.metrics``): the same in
``densescale eval --json``, the results database and CSV/Parquet exports.
"""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densescale.evaluate.metrics import RANKING_KEYS, lookup

if TYPE_CHECKING:
    from densescale.study.runner import Task

# evaluation keys copied as they come from evaluate_model
EVAL_KEYS = ("contrastive_entropy", "contrastive_entropy_stderr", "contrastive_entropy_calibrated",
             "calibration_scale", "calibration_source")


def _first(d: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` that ``d`` has a value for (summary names across versions)."""
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def ranking_values(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Ranking metrics of an evaluation row under their canonical keys (``prefix`` selects the
    BM25 reference, ``bm25_``)."""
    out: dict[str, float] = {}
    for k, v in row.items():
        if not str(k).startswith(prefix) or (not prefix and str(k).startswith("bm25_")):
            continue
        m = lookup(str(k)[len(prefix):])
        if m is not None and m.key in RANKING_KEYS and isinstance(v, (int, float)):
            out.setdefault(prefix + m.key, float(v))
    return out


def step0_value(summary: dict[str, Any]) -> float | None:
    """The initial model's contrastive entropy on the selection split (step-0 evaluation)."""
    v = _first(summary, "step0_ce", "step0_contrastive_entropy")
    if v is None:  # summaries without the field: the step-0 entry of the history
        v = next((h.get("eval") for h in summary.get("history") or []
                  if h.get("step") == 0 and h.get("eval") is not None), None)
    return None if v is None else float(v)


def validity(summary: dict[str, Any], row: dict[str, Any], chance: float,
             split: str) -> tuple[bool | None, str | None]:
    """(learned, invalid_reason) of a point.

    Training's verdict (selected value below both its step-0 value and chance on the selection
    split) comes first; the final evaluation must also be below chance, ln(W+1), on the reporting
    split, judged on the model's own score (the calibrated value when the scale is declared).
    None when training recorded no verdict and the final value is below chance.
    """
    learned = summary.get("learned")
    reasons = [summary["not_learned_reason"]] if summary.get("not_learned_reason") else []
    own = row.get("contrastive_entropy")
    if row.get("calibration_source") == "declared" and \
            row.get("contrastive_entropy_calibrated") is not None:
        own = row["contrastive_entropy_calibrated"]
    if own is not None and float(own) >= chance:
        learned = False
        reasons.append(f"final {float(own):.4g} on {split} not below chance "
                       f"ln(W+1)={chance:.4g}")
    if learned is False and not reasons:
        reasons.append("training marked it not learned")
    return (None if learned is None else bool(learned)), ("; ".join(reasons) or None)


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
    chance = float(row.get("chance") or math.log(ev.negatives + 1))
    learned, reason = validity(summary, row, chance, task.split)
    hardware = {**(summary.get("hardware") or hardware_info()), "host": socket.gethostname()}
    return {
        "n": summary.get("n_params"), "n_total": summary.get("n_params_total"),
        "steps": config.get("steps"), "batch_size": config.get("batch_size"),
        "lr": config.get("lr"), "negatives": config.get("negatives"),
        "eval_negatives": ev.negatives, "eval_repeats": ev.repeats, "eval_seed": ev.seed,
        "train_config": config, "eval_config": {"split": task.split, **ev.to_dict()},
        "dataset": row.get("dataset") or Path(task.train.data).name,
        **{k: row.get(k) for k in EVAL_KEYS},
        "chance": chance, "learned": learned, "invalid_reason": reason,
        **ranking_values(row), **ranking_values(row, "bm25_"),
        "best_step": summary.get("best_step"),
        "step0_contrastive_entropy": step0_value(summary),
        "selection_split": summary.get("selection_split") or task.train.eval_split,
        "selection_metric": summary.get("selection_metric"),
        "train_best_contrastive_entropy": _first(summary, "best_ce", "best_contrastive_entropy"),
        "train_final_contrastive_entropy": _first(summary, "last_ce",
                                                  "final_contrastive_entropy"),
        "wall_time_s": train_s + eval_s,
        "train_wall_time_s": summary.get("wall_time_s", train_s), "eval_wall_time_s": eval_s,
        "pairs_per_s": summary.get("pairs_per_s"),
        "hardware": hardware, "densescale_version": __version__, "git_commit": git_commit(),
        "artefact_dir": str(Path(task.train.out)),
    }
