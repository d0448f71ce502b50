"""Study specification: a YAML file, safe-loaded and validated with pydantic.

A study is a set of training runs ("points") over model size N (ladder rungs), data size D
(number of annotated query-positive pairs) and annotation source, each trained and evaluated with
the same settings, as in Fang et al. (SIGIR 2024) sections 4-6. Minimal example::

    name: tiny
    dataset: squad_v11            # a path (relative to this file) or a name under $DENSESCALE_DATA_DIR
    eval_split: test
    ladder: {file: ladders/tiny.yaml, rungs: [tiny-l1-h32, tiny-l2-h64], init: scratch}
    train_sizes: [256, 1024]
    annotations: [{name: human}]
    seeds: [1]
    train: {steps: 30, batch_size: 16}
    eval: {negatives: 32, repeats: 2, max_pairs: 128}
    design: grid                  # model_sweep | data_sweep | grid | {points: [...]} | a list of these
    heldout: [largest_n]
    output_dir: ../runs/tiny

Relative paths (dataset, ladder file, annotation sets, output_dir) resolve against the folder of
the spec file. Every validation error names the file, the key and the problem, e.g.
``tiny.yaml: train_sizes[2]: must be a positive integer``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from densescale.errors import ConfigError

DESIGNS = ("model_sweep", "data_sweep", "grid")
HELDOUT_RULES = ("largest_n", "largest_d")
# TrainConfig fields the study sets per point; a spec's `train:` block may not set them.
STUDY_OWNED = ("data", "model", "init", "tokenizer", "vocab_size", "train_size", "annotations",
               "split", "seed", "out", "ladder")


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


class EvalSpec(_Strict):
    """Final evaluation of each run's best checkpoint (contrastive entropy + ranking metrics)."""

    negatives: int = 256  # W, sampled negatives per pair (paper: 256)
    repeats: int = 10  # R, fresh draws averaged (authors' code: 10)
    seed: int = 1  # negatives are a function of (dataset, split, seed, W, pool, R): CRN
    pool_size: int | None = None  # negative pool; None = corpus minus evaluation positives
    max_pairs: int | None = None  # evaluate on the first pairs only (quick studies)
    ranking: bool = True  # also compute nDCG@10, MRR@10, Recall@100/1000, MAP
    k: int = 1000  # ranking depth; metrics see the top k only (Recall@1000 needs k >= 1000)
    ranking_pool_size: int | None = None  # rank within positives + random passages; None = corpus
    ranking_max_queries: int | None = None  # rank a seeded sample of queries; None = all
    batch_size: int = 128

    _pos = field_validator("negatives", "repeats", "k", "batch_size")(classmethod(
        lambda cls, v: _positive_int(v)))

    @field_validator("pool_size", "max_pairs", "ranking_pool_size", "ranking_max_queries")
    @classmethod
    def _opt_pos(cls, v: int | None) -> int | None:
        return None if v is None else _positive_int(v)


class PointSpec(_Strict):
    """One explicit (rung, D, annotation) point; annotation defaults to the first source."""

    rung: str
    d: int
    annotation: str | None = None

    _d = field_validator("d")(classmethod(lambda cls, v: _positive_int(v)))


class PointsDesign(_Strict):
    points: list[PointSpec]


DesignItem = Literal["model_sweep", "data_sweep", "grid"] | PointsDesign


class StudySpec(_Strict):
    """A validated study (see the module docstring for the YAML layout)."""

    name: str
    dataset: str
    eval_split: str = "test"
    ladder: LadderSpec
    train_sizes: list[int]
    annotations: list[AnnotationSpec] = Field(default_factory=lambda: [AnnotationSpec(name="human")])
    seeds: list[int] = Field(default_factory=lambda: [521])
    train: dict[str, Any] = Field(default_factory=dict)  # -> densescale.train.TrainConfig
    eval: EvalSpec = Field(default_factory=EvalSpec)
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
                    raise _ItemError(i, "must be a positive integer")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v):
            raise ValueError("must list at least one seed, without repeats")
        return v

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, v: list[AnnotationSpec]) -> list[AnnotationSpec]:
        names = [a.name for a in v]
        if not v or len(set(names)) != len(names):
            raise ValueError("must list at least one annotation source, names unique")
        return v

    @field_validator("train")
    @classmethod
    def _train(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if key in STUDY_OWNED:
                raise _KeyError(key, "set by the study per point (use dataset/ladder/"
                                     "train_sizes/annotations/seeds instead)")
        _check_train_config(v)
        return v

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

    def hash_payload(self) -> dict[str, Any]:
        """The settings that define every point's result.

        Excluded: name, output_dir, database (where results go), and the lists that only choose
        points (ladder.rungs, train_sizes, seeds, design, heldout): adding a rung, size or seed to a
        study keeps its finished rows valid. A point's own rung/D/annotation/seed is in its key.
        """
        return {
            "dataset": self.dataset,
            "eval_split": self.eval_split,
            "ladder": {"file": self.ladder.file, "init": self.ladder.init,
                       "tokenizer": self.ladder.tokenizer, "vocab_size": self.ladder.vocab_size},
            "annotations": {a.name: {"path": a.path, "split": a.split} for a in self.annotations},
            "train": self.train,
            "eval": self.eval.model_dump(),
        }

    @property
    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`hash_payload` (first 16 hex digits)."""
        text = json.dumps(self.hash_payload(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _check_train_config(train: dict[str, Any]) -> None:
    """Validate `train:` against densescale.train.TrainConfig (names the key and the problem)."""
    try:
        from densescale.train.config import TrainConfig
    except ImportError:  # training not installed: checked when the study runs
        return
    try:
        TrainConfig(**train)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) if err["loc"] else ""
        msg = "not a training setting (see densescale.train.TrainConfig)" if err["type"] == \
            "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        first, _, rest = msg.partition(" ")
        if not key and first in TrainConfig.model_fields and rest:  # "steps must be > 0"
            key, msg = first, rest
        msg = msg[:1].lower() + msg[1:]
        raise _KeyError(key, msg) if key else ValueError(msg) from None


class _ItemError(ValueError):
    def __init__(self, index: int, msg: str):
        super().__init__(msg)
        self.suffix, self.msg = f"[{index}]", msg


class _KeyError(ValueError):
    def __init__(self, key: str, msg: str):
        super().__init__(msg)
        self.suffix, self.msg = f".{key}", msg


# ------------------------------------------------------------------------------ loading
_BRANCH_TAGS = {"PointsDesign", "PointSpec", "LadderSpec", "AnnotationSpec", "EvalSpec"}


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _BRANCH_TAGS or "[" in str(part):
            continue  # pydantic's names for union/validator branches
        else:
            out += f".{part}" if out else str(part)
    return out


_MESSAGES = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "literal_error": None,  # pydantic's text lists the allowed values
}


def _format_errors(source: str, err: ValidationError) -> str:
    lines, seen = [], set()
    for e in err.errors():
        branch = any(str(p) in _BRANCH_TAGS for p in e["loc"])
        if (e["type"] == "literal_error" and isinstance(e["input"], dict)) or (
                branch and e["type"] == "model_type" and not isinstance(e["input"], dict)):
            continue  # the other alternative of a `name | {mapping}` union
        loc = _loc(e["loc"])
        ctx_err = (e.get("ctx") or {}).get("error")
        if isinstance(ctx_err, (_ItemError, _KeyError)):
            loc, msg = loc + ctx_err.suffix, ctx_err.msg
        elif e["type"] == "value_error":
            msg = e["msg"].removeprefix("Value error, ")
            if ": " in msg and msg.split(":")[0].replace(".", "").replace("[", "").replace(
                    "]", "").replace("_", "").isalnum() and msg.split(":")[0].startswith(
                    ("design", "heldout")):
                head, msg = msg.split(": ", 1)  # cross-field errors carry their own location
                loc = head
        else:
            msg = _MESSAGES.get(e["type"]) or e["msg"][0].lower() + e["msg"][1:]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        key = f"{loc}: {msg}" if loc else msg
        if key not in seen:
            seen.add(key)
            lines.append(f"{source}: {key}")
    # union branches produce one error per alternative; keep the most specific few
    return "\n".join(lines[:8])


def parse_spec(data: Any, source: str = "<spec>", base_dir: str | os.PathLike = ".") -> StudySpec:
    """Validate an already-loaded mapping. Raises ConfigError naming the key and the problem."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the spec must be a YAML mapping of keys to values")
    try:
        return StudySpec.model_validate({**data, "base_dir": str(Path(base_dir).resolve())})
    except ValidationError as e:
        raise ConfigError(_format_errors(source, e)) from None


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
