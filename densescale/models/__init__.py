"""Model ladder and bi-encoder.

Light names (the ladder and parameter counts) import without torch; ``BiEncoder``,
``build_model`` and ``load_encoder`` load torch/transformers on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from densescale.models.ladder import (
    BERT_LADDER,
    ERNIE_LADDER,
    LADDERS,
    Rung,
    count_embedding_params,
    count_non_embedding_params,
    count_total_params,
    get_rung,
    load_ladder_yaml,
    resolve_rung,
)

if TYPE_CHECKING:
    from densescale.models.encoder import BiEncoder, build_model, load_encoder

__all__ = [
    "BERT_LADDER", "ERNIE_LADDER", "LADDERS", "BiEncoder", "Rung", "build_model",
    "count_embedding_params", "count_non_embedding_params", "count_total_params", "get_rung",
    "load_encoder", "load_ladder_yaml", "resolve_rung",
]


def __getattr__(name: str):
    if name in {"BiEncoder", "build_model", "load_encoder"}:
        from densescale.models import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module 'densescale.models' has no attribute {name!r}")
