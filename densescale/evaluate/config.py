"""EvalConfig: the one owner of every evaluation setting (Fang et al. 2024, Section 3.5).

Contrastive entropy, ranking, the ``eval`` command, a study's ``eval:`` block and the periodic
evaluation of training (``TrainConfig.selection``) all take an ``EvalConfig``; their defaults come
from here and nowhere else.

Paper defaults (the authors' evaluate.py): W = 256 negatives per pair drawn from the corpus minus
every positive of the split, R = 10 repeats, seed 1; ranking depth 1000.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from densescale.errors import ConfigError

PAPER_NEGATIVES = 256  # W (paper Section 3.5)
PAPER_REPEATS = 10  # R (authors' evaluate.py)
DEFAULT_RANKING_METRICS = ("nDCG@10", "RR@10", "R@100", "R@1000", "AP")


class EvalConfig(BaseModel):
    """How one model is scored. Frozen: build a changed copy with ``cfg.replace(**kw)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    negatives: int = Field(PAPER_NEGATIVES,
                           description="W, sampled negatives per pair (paper: 256)")
    repeats: int = Field(PAPER_REPEATS,
                         description="R, fresh negative draws averaged (paper code: 10)")
    seed: int = Field(1, description="seeds the pair subsample, the pool and the draws "
                      "(paper code: 1)")
    pool_size: int | None = Field(None, description="negative pool of this many passages; None = "
                                  "corpus minus the split's positives (paper code: 1,000,000)")
    max_pairs: int | None = Field(None, description="score a seeded subsample of pairs; None = all")
    batch_size: int = Field(256, description="encoder batch size")
    ranking: bool = Field(True, description="also rank and compute ranking metrics")
    k: int = Field(1000, description="ranking depth (metrics cut deeper than k are NaN)")
    metrics: tuple[str, ...] = Field(DEFAULT_RANKING_METRICS,
                                     description="ranking metrics (ir_measures names or aliases)")
    ranking_pool_size: int | None = Field(None, description="rank within every positive plus "
                                          "seeded other passages; None = whole corpus")
    ranking_max_queries: int | None = Field(None, description="rank a seeded sample of queries")
    exclude_self: bool = Field(False, description="drop hits whose doc id equals the query id "
                               "(ArguAna)")
    shard_size: int = Field(100_000, description="passages encoded and searched at a time "
                            "(bounds memory)")

    @field_validator("negatives", "repeats", "k", "batch_size", "shard_size")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be a positive integer")
        return v

    @field_validator("pool_size", "max_pairs", "ranking_pool_size", "ranking_max_queries")
    @classmethod
    def _opt_positive(cls, v: int | None) -> int | None:
        if v is not None and v <= 0:
            raise ValueError("must be a positive integer")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0")
        return v

    @classmethod
    def make(cls, **kw: Any) -> EvalConfig:
        """Like ``EvalConfig(**kw)`` but raising ConfigError that names the key."""
        try:
            return cls(**kw)
        except ValidationError as e:
            err = e.errors()[0]
            key = ".".join(str(x) for x in err.get("loc", ())) or "eval"
            raise ConfigError(f"{key}: {err['msg'].removeprefix('Value error, ')}") from None

    @classmethod
    def resolve(cls, config: EvalConfig | None = None, **overrides: Any) -> EvalConfig:
        """``config`` (default: ``EvalConfig()``) with keyword overrides applied; the one way the
        evaluation functions turn ``(config, **overrides)`` into settings."""
        base = config if config is not None else cls()
        if not isinstance(base, EvalConfig):
            raise ConfigError(f"config must be an EvalConfig, got {type(base).__name__}")
        return base.replace(**overrides) if overrides else base

    def replace(self, **kw: Any) -> EvalConfig:
        return type(self).make(**{**self.model_dump(), **kw})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
