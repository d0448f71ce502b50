"""End-to-end: the 2x2 tiny study on CPU, SIGKILL + restart, the Ray executor, retries."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from densescale.errors import DenseScaleError
from densescale.study import Store, load_spec, results_frame, run_study

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
METRICS = ["contrastive_entropy", "contrastive_entropy_stderr", "ndcg_at_10", "mrr_at_10",
           "recall_at_100", "map"]


def write_tiny(folder: Path, **changes) -> Path:
    """configs/tiny.yaml with absolute paths, its output in `folder`."""
    data = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    data["ladder"]["file"] = str(CONFIGS / data["ladder"]["file"])
    data.update(output_dir=str(folder / "out"), **changes)
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "tiny.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.fixture(scope="module")
def reference(env, tmp_path_factory):
    """The tiny study, uninterrupted, local executor."""
    spec = write_tiny(tmp_path_factory.mktemp("ref"))
    t0 = time.perf_counter()
    summary = run_study(spec)
    return spec, summary, results_frame(spec), time.perf_counter() - t0


def _by_point(df):
    return df.set_index("point_key").to_dict("index")


def _same_metrics(df, ref, rel=1e-6):
    got, want = _by_point(df), _by_point(ref)
    assert got.keys() == want.keys()
    for key in want:
        for m in METRICS:
            a, b = got[key][m], want[key][m]
            assert a == pytest.approx(b, rel=rel, abs=1e-9), (key, m)


def test_tiny_study_completes_on_cpu(reference):
    spec, summary, df, seconds = reference
    assert summary["counts"] == {"done": 4, "running": 0, "failed": 0, "pending": 0}
    assert len(df) == 4 and set(df.status) == {"done"}
    assert sorted(set(df.d)) == [256, 1024] and df.n.nunique() == 2
    assert df.loc[df.heldout, "rung"].unique().tolist() == ["tiny-l2-h64"]  # largest_n
    for m in METRICS:
        assert df[m].notna().all(), m
    # 24 steps from scratch: finite, positive, distinct per point, with a real stderr
    assert df.contrastive_entropy.between(0, 3 * math.log(17)).all()
    assert df.contrastive_entropy.nunique() == 4
    assert (df.contrastive_entropy_stderr > 0).all()
    assert (df.best_step >= 0).all() and (df.n > 0).all()
    # validity columns: chance of the final evaluation, the split that chose the checkpoint
    assert set(df.dataset) == {"squad_v11"} and (df.selection_split == "selection").all()
    assert df.chance.tolist() == pytest.approx([math.log(17)] * 4)
    assert df.learned.notna().all() and df.step0_contrastive_entropy.notna().all()
    assert (df.learned == ~df.invalid_reason.notna()).all()
    # BM25 on the same queries and pool: one reference, the same on every row
    assert df["bm25_ndcg_at_10"].notna().all() and df["bm25_ndcg_at_10"].nunique() == 1
    row = df.iloc[0]
    assert json.loads(row.train_config)["steps"] == 24 and row.eval_negatives == 16
    assert row.wall_time_s > 0 and row.pairs_per_s > 0 and row.densescale_version
    assert json.loads(row.hardware)["cpu_count"] >= 1
    assert all((Path(d) / "best").is_dir() for d in df.artefact_dir)
    tok = spec.parent / "out" / "tokenizer"  # one corpus WordPiece shared by every point
    assert (tok / "tokenizer.json").exists()
    assert {json.loads(c)["tokenizer"] for c in df.train_config} == {str(tok)}
    # a second run has nothing to do and changes nothing
    again = run_study(spec)
    assert again["counts"]["done"] == 4
    _same_metrics(results_frame(spec), df, rel=0)
    print(f"tiny study: {seconds:.1f} s")


def _rows(db: Path) -> list[dict]:
    """Rows as another process sees them mid-run (the database may still be being created)."""
    try:
        return Store(db, create=False).rows()
    except DenseScaleError:
        return []


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "densescale", "study", *args], **kw)


def test_sigkill_mid_run_then_restart_matches(reference, tmp_path):
    spec_path = write_tiny(tmp_path)
    spec = load_spec(spec_path)
    db, runs = tmp_path / "out" / "results.db", tmp_path / "out" / "runs"
    proc = _cli("run", str(spec_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    killed_with = None
    try:
        while time.time() < deadline and proc.poll() is None:
            # kill after the first point is done, or as soon as a second point has a checkpoint
            ckpts = [p for p in runs.glob("*/*/checkpoint*")] if runs.exists() else []
            done = db.exists() and any(r["status"] == "done" for r in _rows(db))
            if done or len(ckpts) >= 1:
                killed_with = "done" if done else "checkpoint"
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert killed_with is not None, proc.stderr.read().decode()[-3000:]
    rows = Store(db).rows(spec.spec_hash)
    assert len(rows) == 4 and any(r["status"] != "done" for r in rows)

    proc = _cli("run", str(spec_path), "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert json.loads(out)["counts"]["done"] == 4
    rows = Store(db).rows()
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert len({r["point_key"] for r in rows}) == 4
    if killed_with == "checkpoint":  # the killed point continued from its checkpoint
        assert b"was running when the last driver stopped; resuming" in err
    _same_metrics(results_frame(spec_path), reference[2], rel=1e-5)


def test_ray_executor_local_mode_same_rows_and_survives_worker_death(reference, tmp_path):
    import ray

    spec_path = write_tiny(tmp_path)
    crash = tmp_path / "crash"
    crash.mkdir()
    victim = reference[2].point_key.iloc[0]
    (crash / f"{victim}.crash").write_text("")  # the first worker running it dies
    os.environ["DENSESCALE_STUDY_CRASH_DIR"] = str(crash)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {k: v for k, v in os.environ.items()
                                           if k.startswith(("DENSESCALE_", "HF_",
                                                            "TRANSFORMERS_"))}})
        summary = run_study(spec_path, executor="ray", max_retries=1)
    finally:
        os.environ.pop("DENSESCALE_STUDY_CRASH_DIR", None)
        ray.shutdown()
    assert not (crash / f"{victim}.crash").exists()  # the crash did happen
    assert summary["counts"]["done"] == 4
    df = results_frame(spec_path)
    ref = reference[2]
    assert df[["point_key", "n", "d", "annotation", "seed", "heldout"]].equals(
        ref[["point_key", "n", "d", "annotation", "seed", "heldout"]])
    # tiny.yaml pins num_threads: 1, so Ray workers compute exactly what the local run did
    _same_metrics(df, ref, rel=1e-6)


def test_failed_point_is_retried_and_traceback_recorded(env, tmp_path):
    spec_path = write_tiny(tmp_path, design={"points": [{"rung": "tiny-l1-h32",
                                                         "d": 10**9}]}, heldout=[])
    summary = run_study(spec_path, max_retries=1)
    assert summary["counts"] == {"done": 0, "running": 0, "failed": 1, "pending": 0}
    (row,) = Store(tmp_path / "out" / "results.db").rows()
    assert row["status"] == "failed" and row["attempts"] == 2
    assert "Traceback" in row["error"] and "D=1000000000" in row["error"]
    out = subprocess.run([sys.executable, "-m", "densescale", "study", "run", str(spec_path),
                          "--max-retries", "0", "--json"], capture_output=True, text=True)
    assert out.returncode == 1 and json.loads(out.stdout)["counts"]["failed"] == 1
    assert Store(tmp_path / "out" / "results.db").rows()[0]["attempts"] == 3


def test_diverged_point_ends_failed_and_a_rerun_retries_it(env, tmp_path):
    """`lr: .inf` is refused when the spec loads, naming the key; a finite lr large enough to
    overflow the weights diverges: the point is `failed` with the divergence named and marked
    not learned, never `done` with an empty value, and a rerun tries it again."""
    from densescale.errors import ConfigError

    data = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    one = {"design": {"points": [{"rung": "tiny-l1-h32", "d": 256}]}, "heldout": []}
    bad = write_tiny(tmp_path / "inf", **one, train={**data["train"], "lr": math.inf})
    with pytest.raises(ConfigError, match=r"tiny.yaml: train.lr: .*finite"):
        load_spec(bad)
    spec_path = write_tiny(tmp_path, **one, train={**data["train"], "lr": 1e30})
    assert run_study(spec_path, max_retries=0)["counts"]["failed"] == 1
    db = tmp_path / "out" / "results.db"
    (row,) = Store(db).rows()
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "TrainingDiverged" in row["error"] and row["contrastive_entropy"] is None
    assert row["learned"] is False and "diverged" in row["invalid_reason"].lower()
    summary = run_study(spec_path, max_retries=0)
    assert summary["counts"] == {"done": 0, "running": 0, "failed": 1, "pending": 0}
    assert Store(db).rows()[0]["attempts"] == 2


def test_two_drivers_sharing_a_database_train_each_point_once(env, tmp_path):
    """Two studies with different output folders and one results database (as on two machines
    sharing a server): every point is claimed in the database, so each is trained once."""
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    specs = [write_tiny(tmp_path / name, database=db) for name in ("a", "b")]
    procs = [_cli("run", str(p), "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for p in specs]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
    rows = Store(tmp_path / "shared.db").rows()
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert [r["attempts"] for r in rows] == [1, 1, 1, 1]
    trained = [d.name for name in ("a", "b")
               for d in (tmp_path / name / "out" / "runs").glob("*/*")
               if (d / "result.json").exists()]
    assert sorted(trained) == sorted(r["point_key"] for r in rows)  # each once, in one folder
    assert {r["owner"] for r in rows} == {None}


def test_report_and_fit_read_the_study(reference, tmp_path):
    """The study's database feeds `report` and `fit` directly; laws with too few points are
    named as not fitted (2 rungs x 2 sizes cannot identify any law)."""
    from densescale.report import make_report

    spec, _, df, _ = reference
    s = make_report(spec, tmp_path / "rep", bootstrap=0)
    html = (tmp_path / "rep" / "index.html").read_text()
    assert s["n_runs"] == 4 and "Runs (4 finished of 4)" in html
    assert set(s["errors"]) == {"model", "data", "joint", "annotations"}
    assert all("at least" in e for e in s["errors"].values())  # names the minimum
    for rung in df.rung:
        assert rung in html
    out = subprocess.run([sys.executable, "-m", "densescale", "fit", "--results", str(spec),
                          "--law", "model"], capture_output=True, text=True)
    assert out.returncode == 1 and "error:" in out.stderr and "at least" in out.stderr
