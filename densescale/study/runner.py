"""Run one study point: train (resumable) then evaluate the best checkpoint.

A *task* is a plain JSON-able dict built by the driver (:func:`make_task`), so it can travel to a
Ray worker; :func:`run_point` returns a plain dict and never raises: failures come back as
``{"ok": False, "error": traceback}`` for the driver to record. Workers never touch the results
database. The result is also written to ``<artefact dir>/result.json`` (atomically), so a driver
killed after a point finished records it on restart without re-running it.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from densescale.errors import ConfigError, DataError
from densescale.study.design import Point
from densescale.study.ladder import rung_ref
from densescale.study.spec import StudySpec
from densescale.utils import atomic_write_json

RESULT_FILE = "result.json"


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


def make_task(spec: StudySpec, point: Point, progress: bool = False) -> dict[str, Any]:
    """Everything a worker needs to run one point (paths absolute, values JSON-able)."""
    ann = spec.annotation(point.annotation)
    train = {
        "eval_split": spec.eval_split,  # training's model selection uses the study's split
        **spec.train,
        "data": spec.dataset_location(),
        "model": point.rung,
        "init": spec.ladder.init,
        "train_size": point.d,
        "split": ann.split,
        "annotations": str(spec.resolve(ann.path)) if ann.path else None,
        "seed": point.seed,
        "out": str(artefact_dir(spec, point)),
    }
    if spec.ladder.tokenizer is not None:
        train["tokenizer"] = str(spec.resolve(spec.ladder.tokenizer)) if spec.resolve(
            spec.ladder.tokenizer).exists() else spec.ladder.tokenizer
    elif spec.ladder.init == "scratch":
        train["tokenizer"] = str(study_tokenizer_path(spec))
    if spec.ladder.vocab_size is not None:
        train["vocab_size"] = spec.ladder.vocab_size
    if spec.ladder.file is not None:
        train["ladder"] = str(spec.resolve(spec.ladder.file))
    return {
        "spec_hash": spec.spec_hash,
        "point": point.as_dict(),
        "train": train,
        "eval": {"split": spec.eval_split, **spec.eval.model_dump()},
        "progress": progress,
    }


def train_config_fields() -> set[str] | None:
    """Field names of densescale.train.TrainConfig (None while training is not installed)."""
    try:
        from densescale.train import TrainConfig
    except ImportError:
        return None
    return set(TrainConfig.model_fields)


def check_train_settings(spec: StudySpec) -> None:
    """Raise ConfigError for `train:` keys that TrainConfig does not have."""
    fields = train_config_fields()
    if fields is None:
        return
    for key in spec.train:
        if key not in fields:
            raise ConfigError(f"train.{key}: not a training setting (densescale.train.TrainConfig "
                              f"has: {', '.join(sorted(fields))})")


def _available_pairs(train: dict[str, Any]) -> int:
    if train.get("annotations"):
        from densescale.data import read_annotation_set

        return len(read_annotation_set(train["annotations"]).pairs)
    from densescale.data import open_dataset

    return len(open_dataset(train["data"]).pairs(train["split"]))


def _train(train: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Train, or resume, or (training already finished) return the saved summary."""
    from densescale.train import TrainConfig

    fields = train_config_fields() or set()
    cfg_kwargs = {k: v for k, v in train.items() if k in fields}
    dropped = {k for k in train if k not in fields} - {"ladder"}
    if dropped:
        raise ConfigError(f"train settings not understood by TrainConfig: {sorted(dropped)}")
    if "ladder" in train and "ladder" not in fields:
        cfg_kwargs["model"] = rung_ref(train["model"], Path(train["ladder"]))
    make = TrainConfig.make  # raises ConfigError naming the key
    cfg = make(**cfg_kwargs)
    out = Path(train["out"])
    summary_path = out / "summary.json"
    if summary_path.exists() and (out / "last").exists():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        saved = summary.get("config")
        if summary.get("finished", True) and saved and not cfg.diff(make(**saved)):
            return summary  # killed after training, before the final evaluation
    from densescale.train import train as train_fn

    resume = (out / "checkpoint" / "state.json").exists()
    summary = train_fn(cfg, resume=resume, progress=progress)
    if not summary.get("finished", True):
        raise RuntimeError(f"training stopped at step {summary.get('steps_done')} of "
                           f"{summary.get('steps')}")
    return summary


_METRIC_ALIASES = {"ndcg@10": "ndcg@10", "ndcg_cut_10": "ndcg@10", "mrr@10": "mrr@10",
                   "rr@10": "mrr@10", "recip_rank@10": "mrr@10", "recall@100": "recall@100",
                   "r@100": "recall@100", "recall_100": "recall@100", "recall@1000": "recall@1000",
                   "r@1000": "recall@1000", "recall_1000": "recall@1000", "map": "map",
                   "ap": "map", "map@1000": "map", "ap@1000": "map"}


def _normalise_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        name = _METRIC_ALIASES.get(str(k).lower().replace("(rel=1)", ""))
        if name is not None and name not in out and isinstance(v, (int, float)):
            out[name] = float(v)
    return out


def _call(fn, *args, **kwargs):
    """Call with only the keyword arguments fn accepts (evaluation options are optional)."""
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)


def _evaluate(model_dir: Path, data: str, ev: dict[str, Any]) -> dict[str, Any]:
    from densescale import evaluate
    from densescale.data import open_dataset
    from densescale.models import load_encoder

    encoder = load_encoder(str(model_dir))
    ds = open_dataset(data)
    ce = _call(evaluate.contrastive_entropy, encoder, ds, ev["split"], negatives=ev["negatives"],
               repeats=ev["repeats"], seed=ev["seed"], pool_size=ev["pool_size"],
               max_pairs=ev["max_pairs"], batch_size=ev["batch_size"])
    out: dict[str, Any] = {"contrastive_entropy": float(ce.mean),
                           "contrastive_entropy_stderr": float(ce.stderr)}
    if ev["ranking"]:
        if ev.get("ranking_max_queries"):
            ds = QuerySubset(ds, ev["split"], ev["ranking_max_queries"], ev["seed"])
        ranking = _call(evaluate.ranking_metrics, encoder, ds, ev["split"], k=ev["k"],
                        pool_size=ev["ranking_pool_size"], max_pairs=ev["max_pairs"],
                        seed=ev["seed"], batch_size=ev["batch_size"])
        out.update(_normalise_metrics(ranking))
    return out


class QuerySubset:
    """A dataset view whose `split` qrels keep a seeded sample of `n` queries (quick ranking
    evaluation on large test sets); everything else is the underlying dataset's."""

    def __init__(self, dataset: Any, split: str, n: int, seed: int):
        import numpy as np

        self._ds, self._split = dataset, split
        qrels = dataset.qrels(split)
        qids = sorted(qrels)
        if n < len(qids):
            keep = np.random.default_rng(seed).choice(len(qids), size=n, replace=False)
            qids = [qids[i] for i in sorted(keep)]
        self._qrels = {q: qrels[q] for q in qids}

    def qrels(self, split: str) -> dict[str, dict[str, int]]:
        return self._qrels if split == self._split else self._ds.qrels(split)

    def pairs(self, split: str) -> list:
        if split != self._split:
            return self._ds.pairs(split)
        from densescale.data import Pair

        return [Pair(q, d) for q, docs in self._qrels.items() for d, s in docs.items() if s > 0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ds, name)


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one point; returns ``{"ok", "point_key", "values"|"error"}``."""
    key = task["point"]["point_key"]
    out_dir = Path(task["train"]["out"])
    try:
        _crash_hook(out_dir)
        t0 = time.perf_counter()
        train, ev = task["train"], task["eval"]
        have = _available_pairs(train)
        if train["train_size"] > have:
            raise DataError(f"D={train['train_size']} training pairs requested but the "
                            f"{train.get('annotations') or train['split']} annotations have "
                            f"only {have}", train.get("annotations") or train["data"])
        out_dir.mkdir(parents=True, exist_ok=True)
        if train.get("num_threads"):  # training sets it too; the evaluation follows it
            import torch

            torch.set_num_threads(int(train["num_threads"]))
        summary = _train(train, task.get("progress", False))
        t1 = time.perf_counter()
        best = out_dir / "best"
        metrics = _evaluate(best if best.exists() else out_dir / "last", train["data"], ev)
        t2 = time.perf_counter()
        values = _values(task, summary, metrics, t1 - t0, t2 - t1)
        atomic_write_json(out_dir / RESULT_FILE, {"spec_hash": task["spec_hash"],
                                                  "point_key": key, "values": values})
        return {"ok": True, "point_key": key, "values": values}
    except BaseException as e:  # noqa: BLE001 - reported to the driver, which decides
        if isinstance(e, KeyboardInterrupt):
            raise
        return {"ok": False, "point_key": key, "error": traceback.format_exc()}


def _values(task: dict, summary: dict, metrics: dict, train_s: float, eval_s: float) -> dict:
    from densescale import __version__
    from densescale.utils import git_commit, hardware_info

    train, ev = task["train"], task["eval"]
    config = dict(summary.get("config") or train)
    hardware = {**(summary.get("hardware") or hardware_info()), "host": socket.gethostname()}
    return {
        "n": summary.get("n_params"), "n_total": summary.get("n_params_total"),
        "steps": config.get("steps"), "batch_size": config.get("batch_size"),
        "lr": config.get("lr"), "negatives": config.get("negatives"),
        "eval_negatives": ev["negatives"], "eval_repeats": ev["repeats"],
        "eval_seed": ev["seed"],
        "train_config": config, "eval_config": ev,
        **metrics,
        "best_step": summary.get("best_step"),
        "train_best_contrastive_entropy": summary.get("best_contrastive_entropy"),
        "train_final_contrastive_entropy": summary.get("final_contrastive_entropy"),
        "wall_time_s": train_s + eval_s,
        "train_wall_time_s": summary.get("wall_time_s", train_s), "eval_wall_time_s": eval_s,
        "pairs_per_s": summary.get("pairs_per_s"),
        "hardware": hardware, "densescale_version": __version__, "git_commit": git_commit(),
        "artefact_dir": str(Path(train["out"])),
    }


def finished_result(task: dict[str, Any]) -> dict[str, Any] | None:
    """The values a previous worker wrote for this task, if it finished (crash recovery)."""
    path = Path(task["train"]["out"]) / RESULT_FILE
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rec.get("spec_hash") != task["spec_hash"] or rec.get("point_key") != \
            task["point"]["point_key"]:
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
