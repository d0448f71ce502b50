"""Results database, status and export without training (rows written directly)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from densescale.errors import DenseScaleError
from densescale.study import SCHEMA_VERSION, Store, expand, load_spec, results_frame, study_status
from densescale.study.driver import export, open_study


def _spec(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({
        "name": "s", "dataset": "squad_v11", "ladder": ["bert-tiny", "bert-mini"],
        "train_sizes": [10, 20], "heldout": "largest_n", "output_dir": "out"}))
    return p


def test_upsert_is_unique_per_spec_and_point(tmp_path):
    store = Store(tmp_path / "r.db")
    for ce in (1.0, 0.5):
        store.upsert("h1", "p1", rung="bert-tiny", d=10, annotation="human", seed=1,
                     status="done", contrastive_entropy=ce, ndcg_at_10=0.25,
                     hardware={"cpu": 2})
    store.upsert("h2", "p1", rung="bert-tiny", d=10, annotation="human", seed=1)
    rows = store.rows()
    assert len(rows) == 2
    r = store.row("h1", "p1")
    assert r["contrastive_entropy"] == 0.5 and r["ndcg_at_10"] == 0.25
    assert json.loads(r["hardware"]) == {"cpu": 2}
    assert store.row("h2", "p1")["status"] == "pending"
    with pytest.raises(sa.exc.IntegrityError):  # the database itself forbids duplicates
        with store.engine.begin() as c:
            c.execute(sa.text("INSERT INTO runs (spec_hash, point_key, rung, d, annotation, seed,"
                              " heldout, status, attempts) VALUES ('h1','p1','x',1,'h',1,0,"
                              "'done',1)"))
    with pytest.raises(KeyError):
        store.upsert("h1", "p1", not_a_column=1)


def test_schema_version_newer_is_refused(tmp_path):
    db = tmp_path / "r.db"
    assert Store(db).schema_version() == SCHEMA_VERSION
    eng = sa.create_engine(f"sqlite:///{db}")
    with eng.begin() as c:
        c.execute(sa.text("UPDATE meta SET value=:v WHERE key='schema_version'"),
                  {"v": str(SCHEMA_VERSION + 1)})
    eng.dispose()
    with pytest.raises(DenseScaleError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        Store(db)


def test_status_results_frame_and_export(tmp_path):
    p = _spec(tmp_path)
    assert study_status(p)["counts"] == {"done": 0, "running": 0, "failed": 0, "pending": 4}
    assert not (tmp_path / "out").exists()  # status does not create a database

    spec, points, store = open_study(p)
    done = points[0]
    store.upsert(spec.spec_hash, done.key, status="done", n=done.n, contrastive_entropy=1.5,
                 contrastive_entropy_stderr=0.1, attempts=1)
    store.upsert(spec.spec_hash, points[1].key, status="failed", error="Trace\nValueError: x",
                 attempts=3)
    store.upsert("otherhash", "zzz", rung="r", d=1, annotation="human", seed=1, status="done")

    st = study_status(p)
    assert st["counts"] == {"done": 1, "running": 0, "failed": 1, "pending": 2}
    assert st["points"][1]["error"] == "ValueError: x"

    df = results_frame(p)
    assert list(df.columns[:7]) == ["n", "d", "annotation", "contrastive_entropy",
                                    "contrastive_entropy_stderr", "heldout", "status"]
    assert len(df) == 4 and df["heldout"].sum() == 2  # largest_n: bert-mini at both D
    assert df.loc[df.status == "done", "contrastive_entropy"].tolist() == [1.5]
    assert len(results_frame(tmp_path / "out" / "results.db")) == 5  # every study in the db

    out = subprocess.run([sys.executable, "-m", "densescale", "study", "export", str(p),
                          "--csv", str(tmp_path / "r.csv"), "--parquet",
                          str(tmp_path / "r.parquet"), "--json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["rows"] == 4
    assert len(pd.read_csv(tmp_path / "r.csv")) == 4
    assert pd.read_parquet(tmp_path / "r.parquet")["status"].tolist().count("done") == 1
    out = subprocess.run([sys.executable, "-m", "densescale", "study", "export", str(p),
                          "--out", str(tmp_path / "exp"), "--format", "both", "--json"],
                         capture_output=True, text=True, check=True)
    assert sorted(json.loads(out.stdout)["files"]) == [str(tmp_path / "exp" / "results.csv"),
                                                       str(tmp_path / "exp" / "results.parquet")]
    assert len(pd.read_csv(tmp_path / "exp" / "results.csv")) == 4
    bad = subprocess.run([sys.executable, "-m", "densescale", "study", "export", str(p),
                          "--out", str(tmp_path / "r.csv")], capture_output=True, text=True)
    assert bad.returncode == 1 and "takes a folder" in bad.stderr and "r.csv" in bad.stderr
    out = subprocess.run([sys.executable, "-m", "densescale", "study", "status", str(p), "--json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["counts"]["failed"] == 1


def test_cli_reports_spec_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"name": "b", "dataset": "x", "ladder": ["bert-tiny"],
                                 "train_sizes": [1, 0], "output_dir": "o"}))
    out = subprocess.run([sys.executable, "-m", "densescale", "study", "status", str(p)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "error: bad.yaml: train_sizes[1]: must be a positive integer" in out.stderr


def test_expand_matches_rows_created(tmp_path):
    spec, points, store = open_study(_spec(tmp_path))
    assert {r["point_key"] for r in store.rows(spec.spec_hash)} == {p.key for p in points}
    assert len(expand(load_spec(_spec(tmp_path)))) == 4


def test_second_driver_is_refused_while_first_holds_the_lock(tmp_path):
    from densescale.study.claims import driver_lock
    from densescale.study.driver import run_study

    lock = driver_lock(tmp_path / "out")
    try:
        with pytest.raises(DenseScaleError, match="already being run by pid"):
            run_study(_spec(tmp_path))
    finally:
        lock.close()


def test_schema_1_database_is_migrated_in_place(tmp_path):
    """A results database written before the validity columns existed gains them (NULL for old
    rows, which keep every value) and is then written like a new one."""
    from densescale.study.store import V2_COLUMNS, meta_table, runs_table

    db = tmp_path / "old.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    old = sa.MetaData()
    new_names = {c.name for c in V2_COLUMNS}
    meta_table.to_metadata(old)
    sa.Table("runs", old, *[c._copy() for c in runs_table.columns if c.name not in new_names],
             sa.UniqueConstraint("spec_hash", "point_key"))
    with eng.begin() as c:
        old.create_all(c)
        c.execute(sa.text("INSERT INTO meta VALUES ('schema_version', '1')"))
        c.execute(sa.text("INSERT INTO runs (spec_hash, point_key, rung, d, annotation, seed, "
                          "heldout, status, attempts, contrastive_entropy) VALUES "
                          "('h','p','r',10,'human',1,0,'done',1,2.5)"))
    eng.dispose()
    store = Store(db)
    assert store.schema_version() == SCHEMA_VERSION
    (row,) = store.rows()
    assert row["contrastive_entropy"] == 2.5 and row["learned"] is None
    store.upsert("h", "p", learned=False, invalid_reason="not below chance",
                 bm25_ndcg_at_10=0.4)
    row = Store(db).row("h", "p")  # reopening finds the current version: no second migration
    assert row["learned"] is False and row["bm25_ndcg_at_10"] == 0.4


def test_validity_columns_reach_status_and_exports(tmp_path):
    p = _spec(tmp_path)
    spec, points, store = open_study(p)
    assert {r["dataset"] for r in store.rows(spec.spec_hash)} == {"squad_v11"}
    store.upsert(spec.spec_hash, points[0].key, status="done", contrastive_entropy=5.9,
                 chance=5.549, learned=False, step0_contrastive_entropy=5.2, best_step=0,
                 selection_split="selection",
                 invalid_reason="final 5.9 on test not below chance ln(W+1)=5.549")
    store.upsert(spec.spec_hash, points[1].key, status="done", contrastive_entropy=3.1,
                 chance=5.549, learned=True, selection_split="selection")
    st = study_status(p)
    assert [q["learned"] for q in st["points"][:2]] == [False, True]
    out = subprocess.run([sys.executable, "-m", "densescale", "study", "status", str(p)],
                         capture_output=True, text=True, check=True)
    assert f"{points[0].key} did not learn: final 5.9 on test not below chance" in out.stdout
    export(p, csv=str(tmp_path / "r.csv"), parquet=str(tmp_path / "r.parquet"))
    for df in (pd.read_csv(tmp_path / "r.csv"), pd.read_parquet(tmp_path / "r.parquet")):
        for col in ("dataset", "learned", "invalid_reason", "step0_contrastive_entropy",
                    "chance", "best_step", "selection_split", "contrastive_entropy_calibrated",
                    "calibration_scale", "calibration_source", "bm25_ndcg_at_10"):
            assert col in df.columns, col
        done = df[df.status == "done"].set_index("contrastive_entropy")
        assert done.loc[5.9, "learned"] in (False, 0.0) and done.loc[3.1, "learned"] in (True,
                                                                                         1.0)
        assert "not below chance" in done.loc[5.9, "invalid_reason"]
        assert done.loc[5.9, "selection_split"] == "selection"


def test_corrupt_database_is_one_error_line_naming_it(tmp_path):
    p = _spec(tmp_path)
    db = tmp_path / "out" / "results.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not a database" * 200)
    for args in (["status", str(p)], ["export", str(p), "--csv", str(tmp_path / "x.csv")],
                 ["run", str(p)]):
        out = subprocess.run([sys.executable, "-m", "densescale", "study", *args],
                             capture_output=True, text=True)
        assert out.returncode == 1, args
        assert f"error: {db}: results database unreadable" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    assert not (tmp_path / "x.csv").exists()
    assert db.read_bytes().startswith(b"this is not a database")  # left as it was


def test_output_under_a_regular_file_is_one_error_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"name": "s", "dataset": "squad_v11", "ladder": ["bert-tiny"],
                                 "train_sizes": [10], "output_dir": str(blocker / "out")}))
    out = subprocess.run([sys.executable, "-m", "densescale", "study", "run", str(p)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"error: {blocker / 'out'}" in out.stderr and "is a file" in out.stderr
    assert blocker.read_text() == "not a folder"


def test_point_claims_are_exclusive_and_stale_ones_are_taken_over(tmp_path):
    """One conditional UPDATE per claim: a live driver's point is refused to others; a claim
    whose heartbeat is older than the lease, or left by a dead driver of the same folder, is
    taken over; done points are never claimed."""
    import time

    store = Store(tmp_path / "r.db")
    for key in ("p1", "p2", "p3"):
        store.upsert("h", key, rung="r", d=1, annotation="human", seed=1)
    assert store.claim("h", "p1", "hostA|/a|pid 1", lease_s=60)
    assert not store.claim("h", "p1", "hostB|/b|pid 2", lease_s=60)  # A is alive
    assert store.claim("h", "p1", "hostA|/a|pid 9", lease_s=60, takeover_prefix="hostA|/a|")
    assert store.row("h", "p1")["owner"] == "hostA|/a|pid 9"
    assert store.row("h", "p1")["attempts"] == 2
    # a heartbeat keeps the claim; without one past the lease it goes to whoever asks
    assert store.claim("h", "p2", "hostA|/a|pid 1", lease_s=60)
    with store.engine.begin() as c:
        c.execute(sa.text("UPDATE runs SET heartbeat = :t WHERE point_key = 'p2'"),
                  {"t": time.time() - 120})
    store.heartbeat("hostB|/b|pid 2")  # someone else's heartbeat changes nothing
    assert store.claim("h", "p2", "hostB|/b|pid 2", lease_s=60)
    store.upsert("h", "p3", status="done", contrastive_entropy=1.0)
    assert not store.claim("h", "p3", "hostB|/b|pid 2", lease_s=60)


def test_two_processes_syncing_the_same_points_at_once_both_succeed(tmp_path):
    """Drivers of one shared database create the same rows at the same moment: the unique key
    refuses the duplicates and each sync reads again, so both end with one row per point."""
    import threading

    db = tmp_path / "r.db"
    Store(db)
    points = [{"point_key": f"p{i}", "rung": "r", "d": i + 1, "annotation": "human", "seed": 1,
               "heldout": False} for i in range(200)]
    errors: list[BaseException] = []

    def sync() -> None:
        try:
            Store(db).sync_points("h", "s", points)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(Store(db).rows()) == 200



def test_database_being_created_by_another_process_is_waited_for(tmp_path):
    """SQLite commits CREATE TABLE before the version row is inserted: a second driver that
    opens the database in that window waits for the row instead of calling it foreign."""
    import threading
    import time as _time

    from densescale.study.store import meta_table, metadata

    db = tmp_path / "r.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    meta_table.create(eng)  # the first process's CREATE TABLE, committed; no version row yet

    def finish():
        _time.sleep(1.0)
        metadata.create_all(eng)
        with eng.begin() as c:
            c.execute(meta_table.insert(), [{"key": "schema_version",
                                             "value": str(SCHEMA_VERSION)}])

    t = threading.Thread(target=finish)
    t.start()
    store = Store(db)  # before the fix: "schema version 0 ... no migration"
    t.join()
    assert store.schema_version() == SCHEMA_VERSION
    eng.dispose()
