"""Periodic evaluation during training: contrastive entropy of the model on ``eval_split``."""

from __future__ import annotations

from typing import Any

import torch

from densescale.models.encoder import BiEncoder
from densescale.train.config import TrainConfig


def evaluate(model: BiEncoder, ds: Any, cfg: TrainConfig) -> tuple[float, float]:
    """Contrastive entropy (mean, stderr) of ``cfg.eval_split``; RNG state left untouched."""
    from densescale.evaluate import contrastive_entropy

    with torch.random.fork_rng(devices=[]):
        res = contrastive_entropy(model, ds, cfg.eval_split, negatives=cfg.eval_negatives,
                                  repeats=cfg.eval_repeats, seed=cfg.eval_seed,
                                  pool_size=cfg.eval_pool_size, max_pairs=cfg.eval_pairs)
    return float(res.mean), float(res.stderr)
