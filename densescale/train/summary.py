"""TrainSummary: what one training run reports (out/summary.json), with its validity verdict.

A run *learned* when its selected value is below both its own step-0 value and chance,
ln(W + 1) (both finite). Otherwise the point measures no retrieval ability and a scaling law
must not use it; ``not_learned_reason`` says why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


def verdict(step0_ce: float | None, best_ce: float | None, best_step: int | None,
            chance: float, negatives: int) -> tuple[bool, str | None]:
    """(learned, reason when not): best below step 0 (when measured) and below chance."""
    if best_ce is None:
        return False, "no selection evaluation (eval_split is none)"
    if not math.isfinite(best_ce):
        return False, f"best value {best_ce} is not finite"
    if step0_ce is not None and not best_ce < step0_ce:
        return False, (f"best {best_ce:.4f} @ step {best_step} not below step-0 "
                       f"{step0_ce:.4f}")
    if not best_ce < chance:
        return False, f"best {best_ce:.4f} not below chance ln({negatives + 1})={chance:.4f}"
    return True, None


@dataclass
class TrainSummary:
    """The result of ``train``; ``to_dict()`` is out/summary.json.

    Attributes:
        rung: ladder rung name. n_params: non-embedding parameters N. n_params_total: all.
        d: training pairs D. steps: planned steps. steps_done: steps done so far.
        finished: all steps done (False when stopped by ``stop_after_steps``).
        wall_time_s: whole call. train_time_s: training steps only. pairs_per_s: throughput.
        tokenize_s: tokenisation time. lr: the learning rate used.
        similarity: "dot" | "cos". score_scale: the cosine model's declared scale, else None.
        selection_split: the split that chose out/best ("selection", or the reported split as in
            the paper). selection_metric: "raw" (inner product) or "calibrated" (at the
            declared scale). eval_negatives: W. chance: ln(W + 1).
        step0_ce: the initial model's value (None with eval_at_start off).
        best_step, best_ce: the selected checkpoint (out/best) and its value.
        last_step, last_ce: the last evaluation (normally the final step).
        learned: best_ce below step0_ce and chance. not_learned_reason: why not, else None.
        history: loss and evaluation entries. hardware, git_commit, config: provenance.
        model_flops_per_step: forward + backward model FLOPs of a step (queries, positives,
            negatives; non-embedding + attention, true lengths: densescale.models.flops).
        model_flops_per_s: achieved model FLOP/s (all devices). peak_flops: the peak it is
            compared with (all devices) and peak_source: where that peak comes from.
        mfu: model FLOP/s utilisation, model_flops_per_s / peak_flops.
        compile_s: extra seconds of the first step under ``compile`` (None without it).
        dropout_stream: where the dropout masks came from: "bulk" (numpy PCG64 in bulk,
            densescale.models.dropout: the CPU default), "torch" (torch's generator), or "off".
    """

    rung: str | None
    n_params: int
    n_params_total: int
    d: int
    steps: int
    steps_done: int
    finished: bool
    wall_time_s: float
    train_time_s: float
    pairs_per_s: float | None
    tokenize_s: float
    lr: float
    similarity: str
    score_scale: float | None
    selection_split: str | None
    selection_metric: str
    eval_negatives: int
    chance: float
    step0_ce: float | None
    best_step: int | None
    best_ce: float | None
    last_step: int | None
    last_ce: float | None
    learned: bool
    not_learned_reason: str | None
    history: list[dict[str, Any]] = field(default_factory=list)
    hardware: dict[str, Any] = field(default_factory=dict)
    git_commit: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    model_flops_per_step: float | None = None
    model_flops_per_s: float | None = None
    peak_flops: float | None = None
    peak_source: str | None = None
    mfu: float | None = None
    compile_s: float | None = None
    dropout_stream: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> str:
        """One line: best @ step, last, step 0, chance, and the verdict."""
        def f(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.4f}"

        head = (f"selection CE ({self.selection_split}, {self.selection_metric}, "
                f"W={self.eval_negatives}): best {f(self.best_ce)} @ step {self.best_step}; "
                f"last {f(self.last_ce)} @ step {self.last_step}; step 0 {f(self.step0_ce)}; "
                f"chance {self.chance:.4f}")
        return head + ("; learned" if self.learned else
                       f"; NOT LEARNED: {self.not_learned_reason}")

    # dict-style reading, for code written against the summary dict of earlier versions
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)
