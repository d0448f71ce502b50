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


class ScaledQueries:
    """An encoder whose query embeddings are multiplied by ``scale``, so that inner products
    are the model's own scores (scale x cosine for a cosine model)."""

    def __init__(self, model: Any, scale: float):
        self.model, self.scale = model, scale
        self.query_max_len = model.query_max_len
        self.passage_max_len = model.passage_max_len

    def encode(self, texts: list[str], kind: str = "doc", batch_size: int = 128) -> torch.Tensor:
        emb = self.model.encode(texts, kind, batch_size)
        return emb * self.scale if kind == "query" else emb


def evaluate(model: BiEncoder, ds: Any, cfg: TrainConfig, step: int) -> tuple[float, float]:
    """Contrastive entropy (mean, stderr) of ``cfg.eval_split`` under the model's own score;
    the RNG state is left untouched.

    Raises:
        TrainingDiverged: the value is NaN or infinite.
    """
    from densescale.evaluate import contrastive_entropy

    sel = cfg.selection
    scale = getattr(model, "score_scale", None)
    scorer = model if scale is None else ScaledQueries(model, scale)
    with torch.random.fork_rng(devices=[]):
        res = contrastive_entropy(scorer, ds, cfg.eval_split, negatives=sel.negatives,
                                  repeats=sel.repeats, seed=sel.seed, pool_size=sel.pool_size,
                                  max_pairs=sel.max_pairs, batch_size=sel.batch_size)
    ce, se = float(res.mean), float(res.stderr)
    if not math.isfinite(ce):
        raise TrainingDiverged(f"contrastive entropy on {cfg.eval_split!r} is {ce}", step)
    return ce, se
