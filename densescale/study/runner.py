"""Run one study point: train (resumable), then evaluate the chosen checkpoint once.

A :class:`Task` holds everything a worker needs: the point, its full ``TrainConfig``, the
``EvalConfig`` of the final evaluation and the reporting split. It serialises to a JSON-able dict
(:meth:`Task.to_dict`) to travel to a Ray worker. :func:`run_point` returns a plain dict and never
raises: failures come back as ``{"ok": False, "error": traceback}`` for the driver to record; a
diverged run (``TrainingDiverged``, or a non-finite contrastive entropy) is such a failure, never
a finished point. Workers never touch the results database. The result is also written to
``<artefact dir>/result.json`` (atomically), so a driver killed after a point finished records it
on restart without re-running it.
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from densescale.errors import DataError, TrainingDiverged
from densescale.evaluate.config import EvalConfig
from densescale.study.design import Point
from densescale.study.rungs import rung_ref
from densescale.study.spec import StudySpec
from densescale.study.values import point_values
from densescale.train.config import TrainConfig
from densescale.utils import atomic_write_json

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class Task:
    """One point to train and evaluate.

    Attributes:
        spec_hash: the study settings' hash (the artefact folder and result rows carry it).
        point: ``Point.as_dict()`` (rung, d, annotation, seed, heldout, n, point_key).
        train: the run's complete TrainConfig (study settings + this point's).
        eval: the final evaluation of the chosen checkpoint.
        split: the reporting split the final evaluation scores.
        selection: "selection" or "reported" (the spec's choice, for labelling results).
        bm25: also score BM25 on the same queries and pool (the reference line).
        progress: show training progress bars.
    """

    spec_hash: str
    point: dict[str, Any]
    train: TrainConfig
    eval: EvalConfig
    split: str
    selection: str = "selection"
    bm25: bool = False
    progress: bool = False

    @property
    def key(self) -> str:
        return self.point["point_key"]

    @property
    def out(self) -> Path:
        return Path(self.train.out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for Ray and for logs); :meth:`from_dict` reads it back."""
        return {"spec_hash": self.spec_hash, "point": dict(self.point),
                "train": self.train.to_dict(), "eval": self.eval.to_dict(), "split": self.split,
                "selection": self.selection, "bm25": self.bm25, "progress": self.progress}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        return cls(**{**d, "train": TrainConfig.make(**d["train"]),
                      "eval": EvalConfig.make(**d["eval"])})


def artefact_dir(spec: StudySpec, point: Point) -> Path:
    """``<output_dir>/runs/<spec_hash>/<point_key>``: changing settings never resumes old runs."""
    return spec.output_path / "runs" / spec.spec_hash / point.key


def study_tokenizer_path(spec: StudySpec) -> Path:
    """Where a scratch study keeps the one WordPiece tokenizer all its points share."""
    return spec.output_path / "tokenizer"


def prepare_study_tokenizer(spec: StudySpec) -> Path | None:
    """Scratch rungs without a named tokenizer: train one on the corpus once per study (cached by
    densescale.models) and copy it into the study, so every point (and every resume, on any
    node) uses the very same vocabulary even if caches are cleared."""
    if spec.ladder.init != "scratch" or spec.ladder.tokenizer is not None:
        return None
    path = study_tokenizer_path(spec)
    if (path / "tokenizer.json").exists():
        return path
    from densescale.data import open_dataset
    from densescale.models.tokenizer import corpus_tokenizer

    kwargs = {"vocab_size": spec.ladder.vocab_size} if spec.ladder.vocab_size else {}
    tok = corpus_tokenizer(open_dataset(spec.dataset_location()).corpus, **kwargs)
    tmp = path.with_name(f".tokenizer.{os.getpid()}.tmp")
    tok.save_pretrained(str(tmp))
    os.replace(tmp, path)
    return path


def make_task(spec: StudySpec, point: Point, progress: bool = False) -> Task:
    """The point's TrainConfig (the spec's ``train:`` plus the study-owned fields) and the
    study's evaluation settings. Paths are absolute."""
    ann = spec.annotation(point.annotation)
    ladder_file = spec.resolve(spec.ladder.file) if spec.ladder.file is not None else None
    owned: dict[str, Any] = {
        "data": spec.dataset_location(),
        "model": rung_ref(point.rung, ladder_file),
        "init": spec.ladder.init,
        "train_size": point.d,
        "split": ann.split,
        "annotations": str(spec.resolve(ann.path)) if ann.path else None,
        "seed": point.seed,
        "out": str(artefact_dir(spec, point)),
        "eval_split": spec.selection_split,
    }
    if spec.ladder.tokenizer is not None:
        tok = spec.resolve(spec.ladder.tokenizer)
        owned["tokenizer"] = str(tok) if tok.exists() else spec.ladder.tokenizer
    elif spec.ladder.init == "scratch":
        owned["tokenizer"] = str(study_tokenizer_path(spec))
    if spec.ladder.vocab_size is not None:
        owned["vocab_size"] = spec.ladder.vocab_size
    train = TrainConfig.make(**{**spec.train.model_dump(exclude_unset=True), **owned})
    return Task(spec_hash=spec.spec_hash, point=point.as_dict(), train=train,
                eval=spec.eval.config(), split=spec.eval_split, selection=spec.selection,
                bm25=spec.eval.bm25, progress=progress)


def _available_pairs(cfg: TrainConfig, ds: Any) -> int:
    if cfg.annotations:
        from densescale.data import read_annotation_set

        return len(read_annotation_set(cfg.annotations).pairs)
    return len(ds.pairs(cfg.split))


def _train(cfg: TrainConfig, progress: bool, ds: Any) -> dict[str, Any]:
    """Train, or resume, or (training already finished) return the saved summary."""
    from densescale.train import train as train_fn
    from densescale.train.state import checkpoint_dir

    out = Path(cfg.out)
    summary_path = out / "summary.json"
    if summary_path.exists() and (out / "last").exists():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        saved = summary.get("config")
        if summary.get("finished", True) and saved and not cfg.diff(TrainConfig.make(**saved)):
            return summary  # killed after training, before the final evaluation
    resume = checkpoint_dir(out) is not None
    # the folder belongs to this point (keyed by the settings' hash): what is not resumed is
    # stale (an unfinished or differently configured run) and is cleared
    summary = train_fn(cfg, resume=resume, overwrite=not resume, progress=progress,
                       dataset=ds).to_dict()
    if not summary.get("finished", True):
        raise RuntimeError(f"training stopped at step {summary.get('steps_done')} of "
                           f"{summary.get('steps')}")
    return summary


def _evaluate(task: Task, model_dir: Path, ds: Any) -> dict[str, Any]:
    """The final evaluation of the chosen checkpoint on the reporting split."""
    from densescale.evaluate import evaluate_model
    from densescale.models import load_encoder

    return evaluate_model(load_encoder(str(model_dir)), ds, task.split, task.eval,
                          bm25=task.bm25)


def check_finite(row: dict[str, Any], split: str) -> None:
    """A non-finite contrastive entropy is a diverged run, never a result."""
    for key in ("contrastive_entropy", "contrastive_entropy_calibrated"):
        v = row.get(key)
        if (key == "contrastive_entropy" and v is None) or (
                v is not None and not math.isfinite(float(v))):
            raise TrainingDiverged(f"{key} on {split} is {v}: the run diverged")


def run_point(task: Task) -> dict[str, Any]:
    """Train and evaluate one point; returns ``{"ok", "point_key", "values"|"error"}``."""
    try:
        _crash_hook(task.out)
        t0 = time.perf_counter()
        cfg = task.train
        from densescale.data import open_dataset

        ds = open_dataset(cfg.data, cfg.data_dir)  # parsed once: training and evaluation
        have = _available_pairs(cfg, ds)
        if cfg.train_size is not None and cfg.train_size > have:
            raise DataError(f"D={cfg.train_size} training pairs requested but the "
                            f"{cfg.annotations or cfg.split} annotations have only {have}",
                            cfg.annotations or cfg.data)
        task.out.mkdir(parents=True, exist_ok=True)
        if cfg.num_threads:  # training sets it too; the evaluation follows it
            import torch

            torch.set_num_threads(int(cfg.num_threads))
        summary = _train(cfg, task.progress, ds)
        t1 = time.perf_counter()
        best = task.out / "best"
        row = _evaluate(task, best if best.exists() else task.out / "last", ds)
        check_finite(row, task.split)
        t2 = time.perf_counter()
        values = point_values(task, summary, row, t1 - t0, t2 - t1)
        atomic_write_json(task.out / RESULT_FILE, {"spec_hash": task.spec_hash,
                                                   "point_key": task.key, "values": values})
        return {"ok": True, "point_key": task.key, "values": values}
    except BaseException as e:  # noqa: BLE001 - reported to the driver, which decides
        if isinstance(e, KeyboardInterrupt):
            raise
        return {"ok": False, "point_key": task.key, "error": traceback.format_exc()}


def run_point_dict(task: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_point` on a task in its dict form (the Ray entry point)."""
    return run_point(Task.from_dict(task))


def finished_result(task: Task) -> dict[str, Any] | None:
    """The values a previous worker wrote for this task, if it finished (crash recovery)."""
    try:
        rec = json.loads((task.out / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rec.get("spec_hash") != task.spec_hash or rec.get("point_key") != task.key:
        return None
    return rec.get("values")


def _crash_hook(out_dir: Path) -> None:
    """Test hook simulating a worker that dies: with $DENSESCALE_STUDY_CRASH_DIR set, a point
    whose ``<dir>/<point_key>.crash`` file exists removes it and kills its own process."""
    crash_dir = os.environ.get("DENSESCALE_STUDY_CRASH_DIR")
    if crash_dir:
        armed = Path(crash_dir) / f"{out_dir.name}.crash"
        if armed.exists():
            armed.unlink()
            os._exit(17)
