"""The study driver: decide what to run, hand points to an executor, record every outcome.

Crash safety rests on three facts: (1) every row write is one transaction keyed by
(spec_hash, point_key); (2) training resumes from its last checkpoint (``train(..., resume=True)``)
and a finished point leaves ``result.json`` in its folder; (3) on start, any row not ``done`` is
run again: ``pending`` and ``failed`` rows, and ``running`` rows left behind by a dead driver.
So a driver killed with SIGKILL at any moment and restarted ends with exactly one row per point.

Several drivers may share one results database (other machines, other output folders): each
point is claimed in the database before it runs (``densescale.study.claims``), so every point
is trained once; a driver leaves points another live driver holds to it.

A diverged run (training raised ``TrainingDiverged``, or the evaluation gave a non-finite
contrastive entropy) is recorded ``failed`` with its error, never ``done``, so a rerun retries it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from densescale.errors import DenseScaleError
from densescale.study.claims import LEASE_S, Heartbeat, driver_lock, new_owner, owner_prefix
from densescale.study.design import Point, expand
from densescale.study.executors import make_executor
from densescale.study.runner import Task, finished_result, make_task, prepare_study_tokenizer
from densescale.study.spec import StudySpec, load_spec
from densescale.study.store import COLUMNS, Store, now, url_of


def _log(msg: str) -> None:
    print(f"[study {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def open_study(spec: StudySpec | str | os.PathLike) -> tuple[StudySpec, list[Point], Store]:
    if not isinstance(spec, StudySpec):
        spec = load_spec(spec)
    points = expand(spec)
    store = Store(spec.database_url)
    store.sync_points(spec.spec_hash, spec.name, [p.as_dict() for p in points],
                      dataset=spec.dataset)
    return spec, points, store


def run_study(spec: StudySpec | str | os.PathLike, executor: str = "local",
              address: str | None = None, max_retries: int = 2, num_cpus: int | None = None,
              cpus_per_task: float = 1.0, gpus_per_task: float | None = None,
              progress: bool = False, lease_s: float = LEASE_S) -> dict[str, Any]:
    """Run every point of a study that is not done yet; returns the status summary.

    Args:
        spec: a StudySpec or the path of its YAML.
        executor: "local" (sequential, this process) or "ray".
        address: Ray cluster address (None: start a local Ray with ``num_cpus`` CPUs).
        max_retries: extra attempts for a failing point within this invocation (a worker that
            dies is also retried by Ray itself).
        num_cpus, cpus_per_task, gpus_per_task: Ray resources (see RayExecutor).
        progress: show training progress bars (stderr).
        lease_s: a point claimed by another driver sharing the database is taken over when
            that driver has shown no sign of life for this many seconds.
    """
    if max_retries < 0:
        raise DenseScaleError("--max-retries must be >= 0")
    if not isinstance(spec, StudySpec):
        spec = load_spec(spec)
    lock = driver_lock(spec.output_path)  # held until this process ends, even by SIGKILL
    try:
        spec, points, store = open_study(spec)
        owner = new_owner(spec.output_path)
        h = spec.spec_hash
        rows = {r["point_key"]: r for r in store.rows(spec_hash=h)}
        todo = []
        for p in points:
            row = rows[p.key]
            if row["status"] == "done" and _finite(row["contrastive_entropy"]):
                continue  # (a "done" row without a finite value is a diverged run: run it again)
            task = make_task(spec, p, progress=progress)
            values = finished_result(task)
            if values is not None and _finite(values.get("contrastive_entropy")):
                # finished before the last driver died: record, don't re-run
                store.upsert(h, p.key, status="done", error=None, finished_at=now(), owner=None,
                             heartbeat=None, **values)
                _log(f"{p.key}: recovered finished result")
                continue
            todo.append(task)
        _log(f"{spec.name} ({h}): {len(points)} points, {len(todo)} to run, executor {executor}")
        if todo:
            prepare_study_tokenizer(spec)
            ex = make_executor(executor, address, num_cpus, cpus_per_task, gpus_per_task,
                               max_retries)
            beat = Heartbeat(store, owner, lease_s / 4)
            try:
                _drive(store, h, ex, todo, max_retries,
                       _Claim(owner, owner_prefix(spec.output_path), lease_s))
            finally:
                beat.stop()
                ex.close()
        return study_status(spec, store=store, points=points)
    finally:
        lock.close()


def _finite(v: Any) -> bool:
    return v is not None and math.isfinite(float(v))


@dataclass(frozen=True)
class _Claim:
    owner: str
    prefix: str  # claims of dead drivers of this folder are taken over at once
    lease_s: float


def _drive(store: Store, h: str, ex, todo: list[Task], max_retries: int, claim: _Claim) -> None:
    queue, in_flight, tries = deque(todo), 0, {}
    while queue or in_flight:
        while queue and in_flight < ex.capacity:
            task = queue.popleft()
            key = task.key
            row = store.row(h, key)
            if not store.claim(h, key, claim.owner, claim.lease_s, claim.prefix):
                _log(f"{key}: being run by another driver ({row['owner'] or row['status']}); "
                     "left to it")
                continue
            if row["status"] == "running":
                _log(f"{key}: was running when the last driver stopped; resuming")
            ex.submit(task)
            in_flight += 1
            _log(f"{key}: started (attempt {(row['attempts'] or 0) + 1})")
        if not in_flight:
            break
        task, res = ex.next_result()
        in_flight -= 1
        key = task.key
        if res.get("ok"):
            store.upsert(h, key, status="done", error=None, finished_at=now(), owner=None,
                         heartbeat=None, **res["values"])
            v = res["values"]
            verdict = {False: f"; NOT LEARNED: {v.get('invalid_reason')}", True: "; learned"}
            _log(f"{key}: done, contrastive entropy {v['contrastive_entropy']:.4f}"
                 f"{verdict.get(v.get('learned'), '')}")
            continue
        tries[key] = tries.get(key, 0) + 1
        err = res.get("error") or "unknown error"
        last = err.strip().splitlines()[-1] if err.strip() else err
        diverged = {"learned": False, "invalid_reason": last} if "TrainingDiverged" in err else {}
        store.upsert(h, key, status="failed", error=err, finished_at=now(), owner=None,
                     heartbeat=None, **diverged)
        if tries[key] <= max_retries:
            _log(f"{key}: failed ({last}); retry {tries[key]}/{max_retries}")
            queue.append(task)
        else:
            _log(f"{key}: failed ({last}); giving up after {tries[key]} attempts")


# ------------------------------------------------------------------------------ reading
def study_status(spec: StudySpec | str | os.PathLike, store: Store | None = None,
                 points: list[Point] | None = None) -> dict[str, Any]:
    """Counts per status and one entry per point of the study's design."""
    if not isinstance(spec, StudySpec):
        spec = load_spec(spec)
    points = points if points is not None else expand(spec)
    if store is None:
        db = Path(spec.output_path / "results.db")
        if spec.database is None and not db.exists():
            rows = {}
        else:
            rows = {r["point_key"]: r for r in Store(spec.database_url).rows(spec.spec_hash)}
    else:
        rows = {r["point_key"]: r for r in store.rows(spec.spec_hash)}
    table = []
    for p in points:
        r = rows.get(p.key, {})
        table.append({"point_key": p.key, "rung": p.rung, "n": r.get("n") or p.n, "d": p.d,
                      "annotation": p.annotation, "seed": p.seed, "heldout": p.heldout,
                      "status": r.get("status", "pending"), "attempts": r.get("attempts", 0),
                      "contrastive_entropy": r.get("contrastive_entropy"),
                      "contrastive_entropy_stderr": r.get("contrastive_entropy_stderr"),
                      "learned": r.get("learned"), "invalid_reason": r.get("invalid_reason"),
                      "owner": r.get("owner"),
                      "wall_time_s": r.get("wall_time_s"),
                      "error": (r.get("error") or "").strip().splitlines()[-1:] or None})
        if table[-1]["error"]:
            table[-1]["error"] = table[-1]["error"][0]
    counts = {s: sum(1 for t in table if t["status"] == s)
              for s in ("done", "running", "failed", "pending")}
    return {"study": spec.name, "spec_hash": spec.spec_hash, "database": spec.database_url,
            "total": len(table), "counts": counts, "points": table}


def results_frame(spec_or_db: StudySpec | str | os.PathLike) -> pd.DataFrame:
    """The results table as a DataFrame.

    Args:
        spec_or_db: a study spec (YAML path or StudySpec): its design's rows, held-out labels from
            the current spec, and pending rows for points never started; or a database (SQLAlchemy
            URL or SQLite path): every row of every study in it.

    Returns:
        One row per run with columns n, d, annotation, contrastive_entropy,
        contrastive_entropy_stderr, heldout, status and the rest of the ``runs`` table
        (JSON columns as text), sorted by annotation, n, d, seed.

    Example:
        >>> df = results_frame("configs/tiny.yaml")
        >>> df[df.status == "done"][["n", "d", "contrastive_entropy"]]
    """
    if isinstance(spec_or_db, StudySpec) or str(spec_or_db).endswith((".yaml", ".yml")):
        spec = spec_or_db if isinstance(spec_or_db, StudySpec) else load_spec(spec_or_db)
        points = expand(spec)
        db = spec.output_path / "results.db"
        rows = {} if (spec.database is None and not db.exists()) else {
            r["point_key"]: r for r in Store(spec.database_url, create=False).rows(
                spec.spec_hash)}
        records = []
        for p in points:
            r = dict(rows.get(p.key) or {c: None for c in COLUMNS})
            r.update(spec_hash=spec.spec_hash, point_key=p.key, study=spec.name, rung=p.rung,
                     d=p.d, annotation=p.annotation, seed=p.seed, heldout=p.heldout)
            r["n"] = r["n"] if r["n"] is not None else p.n
            r["status"] = r["status"] or "pending"
            r["attempts"] = r["attempts"] or 0
            records.append(r)
        df = pd.DataFrame.from_records(records, columns=COLUMNS)
    else:
        df = pd.DataFrame.from_records(Store(url_of(spec_or_db), create=False).rows(),
                                       columns=COLUMNS)
    df["heldout"] = df["heldout"].astype(bool)
    df = df.sort_values(["annotation", "n", "d", "seed"], kind="stable", na_position="last")
    front = ["n", "d", "annotation", "contrastive_entropy", "contrastive_entropy_stderr",
             "heldout", "status"]
    return df[front + [c for c in df.columns if c not in front]].reset_index(drop=True)


def export(spec_or_db: StudySpec | str | os.PathLike, csv: str | None = None,
           parquet: str | None = None) -> int:
    """Write the results table to CSV and/or Parquet (atomically); returns the row count."""
    from densescale.utils import atomic_write_files

    if not csv and not parquet:
        raise DenseScaleError("export needs --csv FILE or --parquet FILE")
    df = results_frame(spec_or_db)
    files: dict[str, bytes] = {}
    if csv:
        files[csv] = df.to_csv(index=False).encode("utf-8")
    if parquet:
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        files[parquet] = buf.getvalue()
    atomic_write_files(files)  # both or neither
    return len(df)
