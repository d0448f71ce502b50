"""Study specification: a YAML file, safe-loaded and validated with pydantic.

A study is a set of training runs ("points") over model size N (ladder rungs), data size D
(number of annotated query-positive pairs) and annotation source, each trained and evaluated with
the same settings, as in Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Sections 4-6.
Minimal example::

    name: tiny
    dataset: squad_v11      # a path (relative to this file) or a name under $DENSESCALE_DATA_DIR
    eval_split: test        # the reporting split
    selection: selection    # checkpoints chosen on the selection split; `reported`: on eval_split
    ladder: {file: ladders/tiny.yaml, rungs: [tiny-l1-h32, tiny-l2-h64], init: scratch}
    train_sizes: [256, 1024]
    annotations: [{name: human}]
    seeds: [1]
    train: {steps: 30, batch_size: 16}                  # a densescale.train.TrainConfig
    eval: {negatives: 32, repeats: 2, max_pairs: 128}   # a densescale.evaluate.EvalConfig
    design: grid            # model_sweep | data_sweep | grid | {points: [...]} | a list of these
    heldout: [largest_n]
    output_dir: ../runs/tiny

Relative paths (dataset, ladder file, annotation sets, output_dir) resolve against the folder of
the spec file. The ``train:`` block is validated into a ``TrainConfig`` and the ``eval:`` block
is an ``EvalConfig`` (plus ``bm25``), both once, at load time. Every validation error names the
file, the key and the problem, e.g. ``tiny.yaml: train_sizes[2]: must be a positive integer``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from densescale.data.selection import SELECTION
from densescale.errors import ConfigError
from densescale.evaluate.config import EvalConfig
from densescale.study.spec_errors import MESSAGES, ItemProblem, KeyProblem, format_errors
from densescale.train.config import TrainConfig

DESIGNS = ("model_sweep", "data_sweep", "grid")
HELDOUT_RULES = ("largest_n", "largest_d")
# TrainConfig fields the study sets per point; a spec's `train:` block may not set them.
STUDY_OWNED = ("data", "model", "init", "tokenizer", "vocab_size", "train_size", "annotations",
               "split", "seed", "out", "ladder", "eval_split")
STUDY_OWNED_WHY = ("set by the study per point (use dataset/ladder/train_sizes/annotations/seeds/"
                   "selection instead)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError("must be a positive integer")
    return v


class LadderSpec(_Strict):
    """Which model rungs to train and how to initialise them."""

    rungs: list[str] = Field(default_factory=list)  # names; empty = every rung of `file`
    file: str | None = None  # user ladder YAML (densescale.models format); None = built-in ladder
    init: Literal["scratch", "pretrained"] = "pretrained"
    tokenizer: str | None = None  # scratch rungs: named/local tokenizer, None = train on corpus
    vocab_size: int | None = None  # scratch rungs: WordPiece vocabulary size

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, str):  # `ladder: ladders/tiny.yaml`
            return {"file": v}
        if isinstance(v, list):  # `ladder: [bert-tiny, bert-mini]`
            return {"rungs": v}
        return v

    @field_validator("rungs")
    @classmethod
    def _rungs(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("rung names must be unique")
        return v

    @model_validator(mode="after")
    def _nonempty(self) -> LadderSpec:
        if not self.rungs and not self.file:
            raise ValueError("give rung names (rungs:) or a ladder YAML (file:)")
        return self


class AnnotationSpec(_Strict):
    """A source of training pairs: the dataset's human qrels, or an annotation-set folder."""

    name: str
    path: str | None = None  # annotation set (densescale.data.read_annotation_set); None = human
    split: str = "train"  # qrels split used for human annotations

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _human_or_path(self) -> AnnotationSpec:
        if self.name != "human" and self.path is None:
            raise ValueError(f"annotation {self.name!r} needs a path (an annotation set folder); "
                             "only 'human' uses the dataset's qrels")
        return self


class StudyEval(EvalConfig):
    """A study's ``eval:`` block: the final evaluation of each run's chosen checkpoint, an
    EvalConfig (its defaults) plus ``bm25``: also score BM25 on the same queries and pool, once
    per study (the reference line of the report)."""

    bm25: bool = False

    def config(self) -> EvalConfig:
        """The plain EvalConfig (without ``bm25``) that evaluate_model takes."""
        return EvalConfig(**self.model_dump(exclude={"bm25"}))


class PointSpec(_Strict):
    """One explicit (rung, D, annotation) point; annotation defaults to the first source.
    ``seeds`` runs this point under these seeds instead of the study's (e.g. a few points under
    two seeds, to set the seed spread beside the fit residuals)."""

    rung: str
    d: int
    annotation: str | None = None
    seeds: list[int] | None = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or len(set(v)) != len(v)
                              or any(isinstance(s, bool) or s < 0 for s in v)):
            raise ValueError("must list at least one seed >= 0, without repeats")
        return v

    _d = field_validator("d")(classmethod(lambda cls, v: _positive_int(v)))


class PointsDesign(_Strict):
    points: list[PointSpec]


DesignItem = Literal["model_sweep", "data_sweep", "grid"] | PointsDesign


class StudySpec(_Strict):
    """A validated study (see the module docstring for the YAML layout)."""

    name: str
    dataset: str
    eval_split: str = "test"  # the reporting split
    selection: Literal["selection", "reported"] = "selection"  # where checkpoints are chosen
    ladder: LadderSpec
    train_sizes: list[int]
    annotations: list[AnnotationSpec] = Field(
        default_factory=lambda: [AnnotationSpec(name="human")])
    seeds: list[int] = Field(default_factory=lambda: [521])
    train: TrainConfig = Field(default_factory=TrainConfig)  # study-owned fields left default
    eval: StudyEval = Field(default_factory=StudyEval)
    design: list[DesignItem] = Field(default_factory=lambda: ["grid"])
    heldout: list[Literal["largest_n", "largest_d"] | PointSpec] = Field(default_factory=list)
    output_dir: str
    database: str | None = None  # SQLAlchemy URL; None = sqlite:///<output_dir>/results.db
    base_dir: str = Field(default=".", exclude=True)  # folder relative paths resolve against

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\\n"):
            raise ValueError("must be a non-empty name without slashes")
        return v

    @field_validator("train_sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("must list at least one training size")
        if len(set(v)) != len(v):
            raise ValueError("sizes must be unique")
        return v

    @field_validator("train_sizes", mode="before")
    @classmethod
    def _sizes_items(cls, v: Any) -> Any:
        if isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, bool) or not isinstance(x, int) or x <= 0:
                    raise ItemProblem(i, "must be a positive integer")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v):
            raise ValueError("must list at least one seed, without repeats")
        for i, x in enumerate(v):
            if x < 0:
                raise ItemProblem(i, "must be >= 0")
        return v

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, v: list[AnnotationSpec]) -> list[AnnotationSpec]:
        names = [a.name for a in v]
        if not v or len(set(names)) != len(names):
            raise ValueError("must list at least one annotation source, names unique")
        return v

    @field_validator("train", mode="before")
    @classmethod
    def _train(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v  # pydantic names the type error
        for key in v:
            if key in STUDY_OWNED:
                raise KeyProblem(key, STUDY_OWNED_WHY)
        return _train_config(v)

    @field_validator("design", "heldout", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, (str, dict)) else v

    @model_validator(mode="after")
    def _cross(self) -> StudySpec:
        rungs = set(self.ladder.rungs)
        anns = {a.name for a in self.annotations}
        explicit = [(f"design[{i}].points[{j}]", p) for i, item in enumerate(self.design)
                    if isinstance(item, PointsDesign) for j, p in enumerate(item.points)]
        explicit += [(f"heldout[{i}]", p) for i, p in enumerate(self.heldout)
                     if isinstance(p, PointSpec)]
        for where, p in explicit:
            if rungs and p.rung not in rungs:
                raise ValueError(f"{where}.rung: {p.rung!r} is not in ladder.rungs")
            if p.annotation is not None and p.annotation not in anns:
                raise ValueError(f"{where}.annotation: {p.annotation!r} is not a listed "
                                 "annotation source")
        if not self.design:
            raise ValueError("design: must name at least one design")
        return self

    # ----------------------------------------------------------------- derived values
    def resolve(self, path: str) -> Path:
        """A path from the spec, relative to the spec file's folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()

    @property
    def output_path(self) -> Path:
        return self.resolve(self.output_dir)

    @property
    def database_url(self) -> str:
        if self.database:
            return self.database
        return f"sqlite:///{self.output_path / 'results.db'}"

    def dataset_location(self) -> str:
        """Absolute dataset path when `dataset` names one (relative to the spec or
        $DENSESCALE_DATA_DIR), else the name as written (for open_dataset to resolve)."""
        p = self.resolve(self.dataset)
        if p.exists():
            return str(p)
        base = os.environ.get("DENSESCALE_DATA_DIR")
        if base and (Path(base) / self.dataset).exists():
            return str((Path(base) / self.dataset).resolve())
        return self.dataset

    def annotation(self, name: str) -> AnnotationSpec:
        return next(a for a in self.annotations if a.name == name)

    @property
    def selection_split(self) -> str:
        """The split training chooses its checkpoint on: the dataset's selection split, or (the
        paper's practice, ``selection: reported``) the reporting split itself."""
        return self.eval_split if self.selection == "reported" else SELECTION

    def hash_payload(self) -> dict[str, Any]:
        """The settings that define every point's result.

        Excluded: name, output_dir, database (where results go), and the lists that only choose
        points (ladder.rungs, train_sizes, seeds, design, heldout): adding a rung, size or seed to a
        study keeps its finished rows valid. A point's own rung/D/annotation/seed is in its key.
        ``train`` and ``eval`` enter as their fields that differ from the defaults, so two
        spellings of one configuration (legacy flat ``eval_*`` keys, or ``selection:``) hash
        alike, and a densescale that adds a setting keeps finished rows valid.
        """
        return {
            "dataset": self.dataset,
            "eval_split": self.eval_split,
            "ladder": {"file": self.ladder.file, "init": self.ladder.init,
                       "tokenizer": self.ladder.tokenizer, "vocab_size": self.ladder.vocab_size},
            "annotations": {a.name: {"path": a.path, "split": a.split} for a in self.annotations},
            "selection": self.selection,
            "train": self.train.model_dump(mode="json", exclude_defaults=True),
            "eval": self.eval.model_dump(mode="json", exclude_defaults=True),
        }

    @property
    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`hash_payload` (first 16 hex digits)."""
        text = json.dumps(self.hash_payload(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _train_config(train: dict[str, Any]) -> TrainConfig:
    """The `train:` block as a TrainConfig; errors name the key and the problem."""
    try:
        return TrainConfig(**train)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) if err["loc"] else ""
        msg = "not a training setting (see densescale.train.TrainConfig)" if err["type"] == \
            "extra_forbidden" else MESSAGES.get(err["type"]) or err["msg"].removeprefix(
                "Value error, ")
        first, _, rest = msg.partition(" ")
        if not key and first in TrainConfig.model_fields and rest:  # "steps must be > 0"
            key, msg = first, rest
        msg = msg[:1].lower() + msg[1:]
        raise KeyProblem(key, msg) if key else ValueError(msg) from None


def parse_spec(data: Any, source: str = "<spec>", base_dir: str | os.PathLike = ".") -> StudySpec:
    """Validate an already-loaded mapping. Raises ConfigError naming the key and the problem."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the spec must be a YAML mapping of keys to values")
    try:
        return StudySpec.model_validate({**data, "base_dir": str(Path(base_dir).resolve())})
    except ValidationError as e:
        raise ConfigError(format_errors(source, e)) from None


def load_spec(path: str | os.PathLike) -> StudySpec:
    """Safe-load and validate a study YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: study spec not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    if isinstance(data, dict) and "base_dir" in data:
        raise ConfigError(f"{path}: base_dir: unknown key")
    return parse_spec(data, source=path.name, base_dir=path.parent)
