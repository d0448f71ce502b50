"""TrainConfig: every setting of one bi-encoder training run.

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 3.4 (training setup).

Defaults follow the paper and the authors' code: 10,000 steps, batch 128, AdamW lr 5e-6 (pretrained)
with weight decay 0.001, no warmup, linear decay, gradient clipping 1.0, 256 random negatives per
step shared by the batch, query/passage lengths 32/180, 768-d projection, mean pooling, inner
product score, seed 521. One departure: the best checkpoint is chosen on the dataset's selection
split (``eval_split: selection``, step 0 included), never on the reported split; the paper's
practice stays available as ``eval_split: test``.

Scratch models on small data learn far better with ``similarity: cos`` (normalised embeddings,
score = 20 x cosine): the inner product's scale otherwise grows until unseen queries rank at
random.

Each field's ``description`` is its help text (``densescale train --help`` shows it with the
default and, for a fixed set of values, the choices).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from densescale.data.selection import SELECTION
from densescale.errors import ConfigError, DataError
from densescale.evaluate.config import EvalConfig
from densescale.models.similarity import DEFAULT_COS_SCALE

PRETRAINED_LR = 5e-6  # authors' code (HF Trainer, training_arguments.py)
SCRATCH_LR = 1e-3  # measured: bench/results/train.md (scratch bert-tiny LR sweep on squad_v11)

# periodic selection evaluation: W = 256 (paper), one draw, a fixed seeded sample of 500 pairs
SELECTION_EVAL = EvalConfig(negatives=256, repeats=1, seed=1, max_pairs=500, ranking=False)
# flat keys of earlier versions -> fields of `selection` (read from old configs and study specs)
LEGACY_EVAL_KEYS = {"eval_negatives": "negatives", "eval_repeats": "repeats",
                    "eval_pairs": "max_pairs", "eval_pool_size": "pool_size", "eval_seed": "seed"}

# settings that may differ between a run and its --resume (they do not change the weights)
RUNTIME_FIELDS = {"stop_after_steps", "device", "num_threads", "progress_every", "data_dir",
                  "passage_chunk", "report_to", "pooled_ffn"}  # pooled_ffn: same weights


class TrainConfig(BaseModel):
    """One training run. Build from keyword arguments, a dict, or JSON/YAML via ``from_file``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- data
    data: str = Field("", description="dataset folder (BEIR or MS MARCO layout), name under "
                      "--data-dir / $DENSESCALE_DATA_DIR, beir/NAME(/SPLIT), irds:ID or hf:PATH")
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
    proj_dim: int = Field(768, description="output dimension of Linear(H -> proj_dim); 0 = no "
                          "projection (the pooled hidden states are the embedding)")
    similarity: Literal["dot", "cos"] = Field("dot", description="score function: dot = inner "
                                              "product (paper); cos = scale * cosine "
                                              "(normalised embeddings)")
    scale: float = Field(DEFAULT_COS_SCALE, description="the cosine score's fixed multiplier "
                         "(similarity=cos only)")
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
    hard_negatives: str | None = Field(None, description='file for negative_mode="hard": TREC '
                                       "run (qid Q0 docid rank score tag), TSV qid/docid or "
                                       "JSONL; format detected")
    hard_negatives_per_query: int = Field(1, description="hard negatives drawn per query per "
                                          "step")
    gather_negatives: bool = Field(False, description="DDP: each device encodes a shard of "
                                   "negatives, then all_gather")
    # --- checkpoint selection (the paper's Section 4.1 protocol, on a selection split)
    eval_every: int = Field(500, description="steps between selection evaluations (0 = only at "
                            "the end)")
    eval_split: str | None = Field(SELECTION, description='split whose contrastive entropy picks '
                                   'out/best: "selection" (held out from training, never '
                                   'reported), or the reported split as in the paper (reports '
                                   "label it); None = no evaluation")
    eval_at_start: bool = Field(True, description="evaluate the initial model (step 0), a "
                                "candidate like every other step")
    selection: EvalConfig = Field(SELECTION_EVAL, description="how the periodic evaluation "
                                  "scores (densescale.evaluate.EvalConfig): W negatives on a "
                                  "fixed seeded sample of max_pairs pairs, the same for every run")
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
    packed: bool | None = Field(None, description="unpadded encoder forward (no FLOPs on "
                                "padding; densescale.models.packed); None = off (measured "
                                "slower than padded on CPU)")
    dropout: bool = Field(True, description="the encoder's dropout (paper code: BERT's 0.1); "
                          "False = off (faster; not the paper's recipe)")
    fast_dropout: bool | None = Field(None, description="draw CPU dropout masks in bulk "
                                      "(densescale.models.dropout: the same dropout, another "
                                      "random stream, faster steps); None = on for CPU "
                                      "training of the padded path; CUDA keeps torch's")
    pooled_ffn: bool | None = Field(None, description="BERT's feed-forward blocks on buffers "
                                    "reused across steps (densescale.models.pooled: the same "
                                    "arithmetic bit for bit, no page faults); None = on for "
                                    "the padded path (acts on CPU float32 training only)")
    fused_adamw: bool | None = Field(None, description="torch's fused AdamW kernel; None = on "
                                     "CUDA only (no measurable gain on CPU)")
    compile: bool = Field(False, description="torch.compile the packed encoder (compile time "
                          "in the summary)")
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
    report_to: Literal["none", "tensorboard"] = Field(
        "none", description="training curves (loss, lr, selection CE) to a tracker: "
        "tensorboard writes <out>/tensorboard (needs the tensorboard extra)")

    @model_validator(mode="before")
    @classmethod
    def _legacy_eval_keys(cls, data: Any) -> Any:
        """Map the flat eval_* keys of earlier versions into ``selection``; a partial
        ``selection`` mapping is completed from the selection defaults (SELECTION_EVAL), not
        from EvalConfig's reporting defaults."""
        if not isinstance(data, dict):
            return data
        given = data.get("selection")
        if not LEGACY_EVAL_KEYS.keys() & data.keys() and not isinstance(given, dict):
            return data
        data = dict(data)
        sel = SELECTION_EVAL.model_dump()
        if isinstance(given, EvalConfig):
            sel = given.model_dump()
        elif isinstance(given, dict):
            sel.update(given)
        moved = {}
        for old, new in LEGACY_EVAL_KEYS.items():
            if old in data:
                sel[new], moved[new] = data.pop(old), old
        if moved:
            _check_legacy_keys(sel, moved)
        data["selection"] = sel
        return data

    @field_validator("proj_dim", mode="before")
    @classmethod
    def _no_projection(cls, v: Any) -> Any:
        return 0 if v is None else v

    @field_validator("steps", "batch_size", "query_max_len", "passage_max_len", "vocab_size",
                     "hard_negatives_per_query", "progress_every")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be > 0")
        return v

    @field_validator("train_size", "checkpoint_every", "stop_after_steps", "num_threads")
    @classmethod
    def _positive_or_none(cls, v: int | None) -> int | None:
        if v is not None and v <= 0:
            raise ValueError("must be > 0")
        return v

    @field_validator("negatives", "warmup_steps", "eval_every", "proj_dim", "seed", "subset_seed")
    @classmethod
    def _non_negative(cls, v: int | None) -> int | None:
        if v is not None and v < 0:
            raise ValueError("must be >= 0")
        return v

    @field_validator("lr", "temperature", "scale")
    @classmethod
    def _finite_positive(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(f"must be a finite number > 0, got {v}")
        return v

    @field_validator("max_grad_norm", "weight_decay")
    @classmethod
    def _finite_non_negative(cls, v: float) -> float:
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"must be a finite number >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.negative_mode == "random" and self.negatives == 0:
            raise ValueError("negative_mode='random' needs negatives > 0")
        if self.negative_mode == "hard" and not self.hard_negatives:
            raise ValueError("negative_mode='hard' needs hard_negatives=FILE")
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
        """Read a JSON or YAML file of fields.

        Raises:
            DataError: the file is missing, unreadable, not valid JSON/YAML, or not a mapping
                (names the file, and the line where known).
            ConfigError: a bad value (names the file and the key).
        """
        data = _read_mapping(Path(path))
        try:
            return cls.make(**data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

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


def _check_legacy_keys(sel: dict[str, Any], moved: dict[str, str]) -> None:
    """Validate the ``selection`` fields that came from legacy flat keys, so that an error
    names the key the user wrote: ``eval_pairs (= selection.max_pairs): must be ...``.

    Args:
        sel: the ``selection`` mapping, legacy values already moved in.
        moved: ``selection`` field -> the legacy key it came from.

    Raises:
        ValidationError: a moved value is invalid (located at the legacy key).
    """
    try:
        EvalConfig(**sel)
    except ValidationError as e:
        errors = [
            {"type": PydanticCustomError(err["type"], "{msg}", {
                "msg": err["msg"].removeprefix("Value error, ")}),
             "loc": (f"{moved[err['loc'][0]]} (= selection.{err['loc'][0]})", *err["loc"][1:]),
             "input": err["input"]}
            for err in e.errors() if err["loc"] and err["loc"][0] in moved]
        if errors:  # the others are reported where they are (selection.KEY)
            raise ValidationError.from_exception_data("TrainConfig", errors) from None


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read config file: {getattr(e, 'strerror', None) or e}",
                        path) from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise DataError(f"invalid YAML: {getattr(e, 'problem', None) or e}", path,
                            line) from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON: {e.msg}", path, e.lineno) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataError(f"expected a mapping of settings, got {type(data).__name__}", path)
    return data
