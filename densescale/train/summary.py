"""TrainSummary: what one training run reports (out/summary.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TrainSummary:
    """The result of ``train``; ``to_dict()`` is out/summary.json.

    Attributes:
        rung: ladder rung name. n_params: non-embedding parameters N. n_params_total: all.
        d: training pairs D. steps: planned steps. steps_done: steps done so far.
        finished: all steps done (False when stopped by ``stop_after_steps``).
        wall_time_s: whole call. train_time_s: training steps only. pairs_per_s: throughput.
        tokenize_s: tokenisation time. lr: the learning rate used.
        best_step, best_contrastive_entropy: the selected checkpoint (out/best) and its value.
        final_contrastive_entropy: the last evaluation's value.
        history: loss and evaluation entries. hardware, git_commit, config: provenance.
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
    best_step: int | None
    best_contrastive_entropy: float | None
    final_contrastive_entropy: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    hardware: dict[str, Any] = field(default_factory=dict)
    git_commit: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # dict-style reading, for code written against the summary dict of earlier versions
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)
