"""Run (or resume) the demo study, fit every law, write the report and check the targets."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from densescale.demo.design import DATASET, DEMO_LADDER, METRIC, demo_spec
from densescale.errors import DenseScaleError
from densescale.utils import atomic_write_json, atomic_write_text, prepare_output_dir


def _ict(out: Path, progress: bool) -> Path:
    """ICT pseudo-queries, one per human training pair (reused when already there)."""
    from densescale.annotate.base import run_annotation, select_items
    from densescale.annotate.ict import ICTAnnotator
    from densescale.data import open_dataset

    path = out / "annotations" / "ict"
    if (path / "provenance.json").exists():
        return path
    ds = open_dataset(DATASET)
    items = select_items(ds, "train", None, 0, False, None)
    args = {"data": str(Path(ds.path).resolve()), "split": "train", "seed": 0, "method": "ict",
            "selection": {"mode": "pairs", "split": "train", "unique_passages": False,
                          "limit": None}, "use_title": False}
    run_annotation(ICTAnnotator(0, False), ds, items, path, args, journaled=False,
                   progress=progress)
    return path


def run_demo(out: str | os.PathLike = "demo_out", *, workers: int = 2, bootstrap: int = 200,
             progress: bool = True, full: bool = False) -> dict[str, Any]:
    """Run (or resume) the miniature study, fit every law, write the report, check targets.

    Args:
        out: output folder (reused: finished runs are not run again).
        workers: training processes run side by side (one torch thread each).
        bootstrap: bootstrap resamples for the confidence intervals.
        progress: progress on stderr.
        full: train every point 4x longer (``densescale demo --full``).

    Returns:
        The report summary plus ``targets`` (each: name, met, value, goal), wall time and paths.
    """
    from densescale.demo.targets import FULL_TARGETS, MINI_TARGETS, check_targets
    from densescale.report import make_report
    from densescale.study import read_results, run_study, study_status

    t0 = time.time()
    out = prepare_output_dir(Path(out).resolve())
    ladder_path = out / "ladder.yaml"
    atomic_write_text(ladder_path, yaml.safe_dump({"rungs": DEMO_LADDER}, sort_keys=False))
    ict_path = _ict(out, progress)
    spec_path = out / "demo.yaml"
    spec = demo_spec(out, ict_path, ladder_path, full)
    atomic_write_text(spec_path, "# Written by `densescale demo`; rerun with "
                      f"`densescale study run {spec_path}`.\n"
                      + yaml.safe_dump(spec, sort_keys=False))
    run_study(spec_path, executor="processes" if workers > 1 else "local", num_cpus=workers,
              progress=progress)
    counts = study_status(spec_path)["counts"]
    if counts.get("done", 0) != sum(counts.values()):
        raise DenseScaleError(f"demo study incomplete ({counts}); see `densescale study "
                              f"status {spec_path}`")
    commands = [f"densescale demo --out {out}" + (" --full" if full else ""),
                f"densescale study run {spec_path}",
                f"densescale report --results {spec_path} --out {out / 'report'} "
                f"--metric {METRIC}"]
    summary = make_report(spec_path, out / "report", bootstrap=bootstrap, metric=METRIC,
                          title="densescale demo: scaling laws of dense retrieval on SQuAD",
                          commands=commands, budgets=(1e3, 1e4), inference_budgets=())
    runs = read_results(spec_path, metric=None)
    summary["targets"] = [t.to_dict() for t in check_targets(summary, runs)]
    summary["promised"] = list(FULL_TARGETS if full else MINI_TARGETS)
    summary["full"] = full
    summary["wall_time_s"] = time.time() - t0
    summary["spec"] = str(spec_path)
    atomic_write_json(out / "targets.json", {"targets": summary["targets"],
                                             "wall_time_s": summary["wall_time_s"]})
    return summary
