"""Evaluation: contrastive entropy (the paper's metric), ranking metrics, and their correlation.

    from densescale.evaluate import contrastive_entropy, ranking_metrics, evaluate_model
    ce = contrastive_entropy(encoder, dataset, "test")          # CEResult, lower is better
    rm = ranking_metrics(encoder, dataset, "test")              # {"ndcg_at_10": ..., ...}

Settings: ``EvalConfig`` (densescale.evaluate.config), passed as ``config=`` or as keyword
overrides; metric names: ``densescale.evaluate.metrics``.

Heavy optional parts (ranking via ir_measures, correlation via scipy/matplotlib) load lazily so
that configs can import ``EvalConfig`` without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from densescale.evaluate.config import EvalConfig

if TYPE_CHECKING:
    from densescale.evaluate.combined import evaluate_model
    from densescale.evaluate.correlation import correlate, plot_correlation
    from densescale.evaluate.encoders import HFEncoder, SentenceTransformerEncoder, load_scorer
    from densescale.evaluate.entropy import CEResult, contrastive_entropy
    from densescale.evaluate.negatives import NegativeSample, sample_negatives
    from densescale.evaluate.ranking import exact_search, ranking_metrics

_LAZY = {  # torch-heavy modules load on first use, so EvalConfig (in every config) is cheap
    "CEResult": "densescale.evaluate.entropy",
    "contrastive_entropy": "densescale.evaluate.entropy",
    "HFEncoder": "densescale.evaluate.encoders",
    "SentenceTransformerEncoder": "densescale.evaluate.encoders",
    "load_scorer": "densescale.evaluate.encoders",
    "NegativeSample": "densescale.evaluate.negatives",
    "sample_negatives": "densescale.evaluate.negatives",
    "ranking_metrics": "densescale.evaluate.ranking",
    "exact_search": "densescale.evaluate.ranking",
    "correlate": "densescale.evaluate.correlation",
    "plot_correlation": "densescale.evaluate.correlation",
    "evaluate_model": "densescale.evaluate.combined",
}

__all__ = [
    "EvalConfig", "CEResult", "contrastive_entropy", "sample_negatives", "NegativeSample",
    "load_scorer", "SentenceTransformerEncoder", "HFEncoder", "ranking_metrics", "exact_search",
    "correlate", "plot_correlation", "evaluate_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'densescale.evaluate' has no attribute {name!r}")
