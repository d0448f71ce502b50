"""TrainConfig: every setting of one bi-encoder training run (Fang et al. 2024, Section 3.4).

Defaults follow the paper and the authors' code: 10,000 steps, batch 128, AdamW lr 5e-6 (pretrained)
with weight decay 0.001, no warmup, linear decay, gradient clipping 1.0, 256 random negatives per
step shared by the batch, query/passage lengths 32/180, 768-d projection, mean pooling, seed 521.

Each field's ``description`` is its help text (``densescale train --help`` shows it with the
default and, for a fixed set of values, the choices).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from densescale.errors import ConfigError

PRETRAINED_LR = 5e-6  # authors' code (HF Trainer, training_arguments.py)
SCRATCH_LR = 1e-3  # measured: bench/results/train.md (scratch bert-tiny LR sweep on squad_v11)

# settings that may differ between a run and its --resume (they do not change the weights)
RUNTIME_FIELDS = {"stop_after_steps", "device", "num_threads", "progress_every", "data_dir",
                  "passage_chunk"}


class TrainConfig(BaseModel):
    """One training run. Build from keyword arguments, a dict, or JSON/YAML via ``from_file``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- data
    data: str = Field("", description="dataset path, or name under --data-dir / "
                      "$DENSESCALE_DATA_DIR")
    data_dir: str | None = Field(None, description="folder of named datasets (overrides "
                                 "$DENSESCALE_DATA_DIR)")
    split: str = Field("train", description="qrels split whose positive pairs are the training "
                       "data")
    annotations: str | None = Field(None, description="annotation-set folder used instead of the "
                                    "human qrels")
    train_size: int | None = Field(None, description="D: pairs kept (nested seeded subset); "
                                   "None = all")
    subset_seed: int | None = Field(None, description="seed of the nested subset; None = seed")
    # --- model
    model: str | dict[str, Any] = Field("bert-tiny", description='rung name, "FILE.yaml:name", '
                                        "local folder, or dict")
    init: Literal["scratch", "pretrained"] = Field("scratch", description="random init from the "
                                                   "shape, or checkpoint")
    source: str | None = Field(None, description="pretrained: hub id / local path overriding the "
                               "rung's hub_id")
    tokenizer: str | None = Field(None, description="tokenizer id/path; scratch + None = "
                                  "WordPiece trained on corpus")
    vocab_size: int = Field(30522, description="WordPiece vocabulary size when training one on "
                            "the corpus")
    proj_dim: int = Field(768, description="output dimension of Linear(H -> proj_dim)")
    pooling: Literal["mean", "cls"] = Field("mean", description="masked mean (paper code) or "
                                            "[CLS]")
    query_max_len: int = Field(32, description="query tokens, special tokens included")
    passage_max_len: int = Field(180, description="passage tokens, special tokens included")
    # --- optimisation
    steps: int = Field(10_000, description="optimiser steps (paper: fixed 10,000)")
    batch_size: int = Field(128, description="(query, positive) pairs per step, over all devices")
    lr: float | None = Field(None, description=f"None: {PRETRAINED_LR:g} pretrained, "
                             f"{SCRATCH_LR:g} scratch")
    weight_decay: float = Field(0.001, description="AdamW; not applied to biases and LayerNorm "
                                "weights (HF Trainer)")
    warmup_steps: int = Field(0, description="linear warm-up, then linear decay to 0 at `steps`")
    max_grad_norm: float = Field(1.0, description="gradient clipping (0 disables)")
    temperature: float = Field(1.0, description="scores are divided by it; 1.0 = none (paper)")
    # --- negatives
    negatives: int = Field(256, description="random corpus passages per step, shared by the "
                           "batch (paper: 256)")
    negative_mode: Literal["random", "inbatch", "hard"] = Field(
        "random", description="see densescale.train.negatives")
    hard_negatives: str | None = Field(None, description='file for negative_mode="hard" (TSV '
                                       "qid/docid or JSONL)")
    hard_negatives_per_query: int = Field(1, description="hard negatives drawn per query per "
                                          "step")
    gather_negatives: bool = Field(False, description="DDP: each device encodes a shard of "
                                   "negatives, then all_gather")
    # --- evaluation and checkpoints
    eval_every: int = Field(500, description="steps between contrastive-entropy evaluations "
                            "(0 = only at the end)")
    eval_split: str | None = Field("test", description="human-qrels split scored during "
                                   "training; None = no eval")
    eval_negatives: int = Field(256, description="W negatives per evaluation pair (paper: 256)")
    eval_repeats: int = Field(1, description="R draws per pair (paper code: 10; 1 keeps periodic "
                              "eval cheap)")
    eval_pairs: int | None = Field(None, description="subsample of eval pairs for periodic eval; "
                                   "None = all")
    eval_pool_size: int | None = Field(None, description="negatives drawn from a seeded pool of "
                                       "this many passages (None = whole corpus minus positives; "
                                       "the paper's MS MARCO code used 1,000,000)")
    eval_seed: int = Field(1, description="evaluation sampling seed (paper code: 1)")
    eval_at_start: bool = Field(True, description="evaluate the initial model (step 0) too")
    checkpoint_every: int | None = Field(None, description="steps between resumable "
                                         "checkpoints; None = eval_every")
    # --- runtime
    seed: int = Field(521, description="fixes init, batch order, negatives, dropout (paper "
                      "code: 521)")
    out: str = Field("runs/train", description="output folder (best/, last/, checkpoint/, "
                     "summary.json)")
    device: str | None = Field(None, description='"cpu", "cuda", "cuda:1"; None = cuda when '
                               "available")
    bf16: bool | None = Field(None, description="bf16 autocast: None = on CUDA only; True = on "
                              "CPU too (about 2x faster on AVX512-BF16/AMX CPUs; the paper "
                              "trained in fp32); False = never")
    grad_checkpointing: bool = Field(False, description="recompute activations in backward "
                                     "(saves memory)")
    passage_chunk: int | None = Field(None, description="passages per forward, length-sorted; "
                                      "0 = one forward; None = 64 on CPU (less padding), one "
                                      "forward on CUDA")
    pretokenize_corpus: bool | None = Field(None, description="None = when corpus size <= "
                                            "steps * negatives")
    num_threads: int | None = Field(None, description="torch CPU threads; None = torch default")
    stop_after_steps: int | None = Field(None, description="stop this invocation after N steps "
                                         "(resume continues)")
    progress_every: int = Field(10, description="steps between loss entries in history / "
                                "progress bar updates")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        for k in ("steps", "batch_size", "query_max_len", "passage_max_len", "proj_dim",
                  "vocab_size", "eval_negatives", "eval_repeats", "hard_negatives_per_query",
                  "progress_every"):
            if getattr(self, k) <= 0:
                raise ValueError(f"{k} must be > 0")
        for k in ("negatives", "warmup_steps", "eval_every", "max_grad_norm", "weight_decay"):
            if getattr(self, k) < 0:
                raise ValueError(f"{k} must be >= 0")
        if self.negative_mode == "random" and self.negatives == 0:
            raise ValueError("negative_mode='random' needs negatives > 0")
        if self.negative_mode == "hard" and not self.hard_negatives:
            raise ValueError("negative_mode='hard' needs hard_negatives=FILE")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        if self.lr is not None and self.lr <= 0:
            raise ValueError("lr must be > 0")
        if self.train_size is not None and self.train_size <= 0:
            raise ValueError("train_size must be > 0")
        return self

    @classmethod
    def make(cls, **kw: Any) -> TrainConfig:
        """Like ``TrainConfig(**kw)`` but raising ConfigError (names the key) on bad values."""
        try:
            return cls(**kw)
        except ValidationError as e:
            err = e.errors()[0]
            key = ".".join(str(x) for x in err.get("loc", ())) or "config"
            raise ConfigError(f"{key}: {err['msg'].removeprefix('Value error, ')}") from None

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a JSON or YAML file of fields."""
        text = Path(path).read_text(encoding="utf-8")
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            return cls.make(**(yaml.safe_load(text) or {}))
        return cls.make(**json.loads(text))

    @property
    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return PRETRAINED_LR if self.init == "pretrained" else SCRATCH_LR

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def diff(self, other: TrainConfig, ignore: set[str] = RUNTIME_FIELDS) -> dict[str, tuple]:
        """Fields that differ (self value, other value), ignoring runtime-only ones."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]}
