"""Bi-encoder training: TrainConfig, the paper's contrastive loss, and ``train``.

    from densescale.train import TrainConfig, train
    summary = train(TrainConfig(data="squad_v11", model="bert-tiny", steps=500, out="runs/tiny",
                                similarity="cos"))
    summary.best_ce, summary.best_step, summary.learned     # chosen on the selection split
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from densescale.train.config import TrainConfig

if TYPE_CHECKING:
    from densescale.train.loop import train
    from densescale.train.loss import ContrastiveLoss, contrastive_loss
    from densescale.train.summary import TrainSummary

__all__ = ["ContrastiveLoss", "TrainConfig", "TrainSummary", "contrastive_loss", "train"]


def __getattr__(name: str):
    if name == "train":
        from densescale.train.loop import train

        return train
    if name in ("ContrastiveLoss", "contrastive_loss"):
        from densescale.train import loss

        return getattr(loss, name)
    if name == "TrainSummary":
        from densescale.train.summary import TrainSummary

        return TrainSummary
    raise AttributeError(f"module 'densescale.train' has no attribute {name!r}")
