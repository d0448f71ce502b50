"""Checkpoint selection: the model's own contrastive entropy on the selection split.

Fang et al. (Scaling Laws for Dense Retrieval, SIGIR 2024, Section 4.1) evaluate every K steps
and keep the best value seen, the initial model included. densescale does the same on
``eval_split`` (default: the dataset's selection split, never reported) with W negatives on a
fixed seeded sample of pairs (``TrainConfig.selection``), so every run of a study is compared on
the same pairs and negatives.

The score is the model's own: the inner product for a dot model ("raw", the paper's value), and
``score_scale`` x cosine for a cosine model ("calibrated" at its declared scale). A constant
scorer gets ln(W + 1) ("chance").
"""

from __future__ import annotations

import math
from typing import Any

import torch

from densescale.errors import TrainingDiverged
from densescale.models.encoder import BiEncoder
from densescale.train.config import TrainConfig


def selection_metric(model: Any) -> str:
    """"calibrated" when the model declares a score scale (cosine), else "raw"."""
    return "calibrated" if getattr(model, "score_scale", None) is not None else "raw"


def chance(cfg: TrainConfig) -> float:
    """ln(W + 1): the contrastive entropy of a scorer that cannot tell passages apart."""
    return math.log(cfg.selection.negatives + 1)


def evaluate(model: BiEncoder, ds: Any, cfg: TrainConfig,
             step: int) -> tuple[float, float, float]:
    """Contrastive entropy of ``cfg.eval_split`` under the model's own score: (value, stderr,
    raw value); the RNG state is left untouched.

    Raises:
        TrainingDiverged: the value is NaN or infinite.
    """
    from densescale.evaluate import contrastive_entropy

    with torch.random.fork_rng(devices=[]):
        res = contrastive_entropy(model, ds, cfg.eval_split, cfg.selection, calibrate="declared")
    ce, se, raw = float(res.own_score), float(res.own_score_stderr), float(res.mean)
    if not math.isfinite(ce):
        raise TrainingDiverged(f"contrastive entropy on {cfg.eval_split!r} is {ce}", step)
    return ce, se, raw
